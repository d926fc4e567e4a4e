/**
 * The status page's script, inlined into the one HTML response. It is plain browser JavaScript kept as a
 * string: the package's tsc build targets Node (no DOM lib), and a string needs no bundler and no second
 * build step. Rules it keeps (test/ui checks them):
 * - API data only ever reaches the DOM through textContent / setAttribute (never innerHTML and friends).
 * - It polls `api/status` every POLL_MS (≤ 2 s) and updates the existing rows in place, so keyboard focus
 *   survives the refresh; the whole view is rebuilt only when the set of VIPs/servers changes (a reload).
 * - Throughput is computed here from the byte counters of consecutive polls (client-side deltas).
 * - The admin token lives in a variable (and in sessionStorage only when the operator ticks the box); it is
 *   sent only as `Authorization: Bearer` on the POST actions. No cookies.
 */
export const STATUS_PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var POLL_MS = 1500;
  var WINDOW_MS = 5 * 60 * 1000;
  var STORAGE_KEY = 'ctera-lb.admin-token';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var STATES = ['UP', 'DOWN', 'DRAIN', 'HALT'];
  var ICON = { UP: '\u25CF', DOWN: '\u2715', DRAIN: '\u25D0', HALT: '\u25A0', UNKNOWN: '?' };
  var ACTIONS = {
    drain: { verb: 'Drain', state: 'DRAIN', danger: true,
      explain: 'No new clients go to this server. Open connections stay until they end by themselves (CTTP sessions can last hours).' },
    halt: { verb: 'Halt', state: 'HALT', danger: true,
      explain: 'No new clients go to this server, and its open connections are closed now.' },
    online: { verb: 'Online', state: 'UP', danger: false,
      explain: 'Clears drain or halt: the server takes new clients again as soon as its health checks pass.' }
  };
  var ACTION_ORDER = ['drain', 'halt', 'online'];
  var EVENTS_SHOWN = 25;

  function $(id) { return document.getElementById(id); }
  var ui = {
    meta: $('meta'), conn: $('conn'), counts: $('counts'), vips: $('vips'),
    token: $('token'), remember: $('remember'), forget: $('forget'), help: $('token-help'), msg: $('action-msg'),
    events: $('events-body'), eventsEmpty: $('events-empty'), eventsTable: $('events-table'), announce: $('announce'),
    dlg: $('confirm'), dlgTitle: $('confirm-title'), dlgText: $('confirm-text'), dlgVip: $('confirm-vip'),
    dlgOk: $('confirm-ok'), dlgCancel: $('confirm-cancel')
  };

  var S = {
    token: '', readOnly: true, loaded: false, sig: null, views: [], hist: {}, prevState: {},
    pending: null, busy: false, inflight: false, again: false, timer: 0, lastOkAt: 0, failing: false
  };

  // ---- DOM helpers: text only, never markup ----
  function el(tag, opts, kids) {
    var n = document.createElement(tag);
    if (opts) {
      Object.keys(opts).forEach(function (k) {
        var v = opts[k];
        if (v === undefined || v === null) return;
        if (k === 'text') n.textContent = String(v);
        else if (k === 'cls') n.className = v;
        else n.setAttribute(k, String(v));
      });
    }
    if (kids) kids.forEach(function (c) { if (c) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return n;
  }
  function svgEl(tag, attrs) {
    var n = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    return n;
  }
  function setText(n, s) { s = String(s); if (n.textContent !== s) n.textContent = s; }
  function setClass(n, c) { if (n.className !== c) n.className = c; }
  function str(v, dflt) { return v === undefined || v === null ? (dflt === undefined ? '' : dflt) : String(v); }
  function num(v) { var n = Number(v); return isFinite(n) ? n : 0; }

  // ---- formatting ----
  function fmtInt(n) { return Math.round(num(n)).toLocaleString('en-US'); }
  function fmtBytes(n) {
    n = num(n); if (n < 0) n = 0;
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
  }
  function fmtRate(n) { return fmtBytes(n) + '/s'; }
  function fmtDuration(sec) {
    sec = Math.max(0, Math.round(num(sec)));
    if (sec < 60) return sec + ' s';
    var m = Math.floor(sec / 60);
    if (m < 60) return m + ' min';
    var h = Math.floor(m / 60);
    if (h < 24) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function fmtMs(ms) { ms = num(ms); return ms >= 1000 && ms % 1000 === 0 ? (ms / 1000) + ' s' : ms >= 1000 ? (ms / 1000).toFixed(1) + ' s' : ms + ' ms'; }
  function fmtLatency(ms) { ms = num(ms); return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + ' ms'; }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function fmtClock(t) {
    var d = new Date(t);
    if (isNaN(d.getTime())) return '';
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  function fmtListener(l) {
    var s = str(l.address) + ':' + str(l.port);
    if (l.tls) s += ' TLS';
    if (l.redirectToHttpsPort) s += ' \u2192 https:' + str(l.redirectToHttpsPort);
    return s;
  }
  function fmtPersistence(p) {
    if (!p || p.type === 'none') return 'None';
    var t = p.type === 'source-ip' ? 'Source IP' : str(p.type);
    return t + ', idle timeout ' + fmtDuration(p.timeoutSeconds);
  }
  function fmtHealth(h) {
    if (!h) return 'None';
    var port = h.port === null || h.port === undefined ? 'server port' : ':' + h.port;
    var what;
    if (h.type === 'connect') what = 'TCP connect ' + port;
    else what = (h.type === 'http-get' ? 'HTTP GET ' : 'HTTPS GET ') + port + ' ' + str(h.path, '/') + (h.host ? ' (Host ' + h.host + ')' : '');
    return what + ', every ' + fmtMs(h.intervalMs) + ', rise ' + str(h.rise) + ' / fall ' + str(h.fall);
  }
  function stateOf(s) { return STATES.indexOf(s) >= 0 ? s : 'UNKNOWN'; }

  // ---- throughput history (client-side deltas of bytesIn + bytesOut) ----
  function sample(key, bytes, t) {
    var h = S.hist[key] || (S.hist[key] = { last: null, rates: [] });
    if (h.last && t > h.last.t) {
      var d = bytes - h.last.b;
      if (d < 0) d = 0; // counters restarted (proxy restart): no negative rates
      h.rates.push({ t: t, r: d * 1000 / (t - h.last.t) });
    }
    h.last = { t: t, b: bytes };
    while (h.rates.length && h.rates[0].t < t - WINDOW_MS) h.rates.shift();
    return h.rates;
  }
  function sparkline(w, h) {
    var svg = svgEl('svg', { viewBox: '0 0 ' + w + ' ' + h, width: w, height: h, 'class': 'spark', role: 'img', 'aria-label': 'Throughput: collecting samples' });
    var title = svgEl('title', {});
    title.textContent = 'Throughput: collecting samples';
    var base = svgEl('line', { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, 'class': 'base' });
    var area = svgEl('path', { d: '', 'class': 'area' });
    var line = svgEl('polyline', { points: '', 'class': 'line' });
    svg.appendChild(title); svg.appendChild(base); svg.appendChild(area); svg.appendChild(line);
    return { svg: svg, title: title, area: area, line: line, w: w, h: h };
  }
  function drawSpark(sp, rates) {
    var label;
    if (!rates.length) {
      sp.line.setAttribute('points', ''); sp.area.setAttribute('d', '');
      label = 'Throughput: collecting samples';
    } else {
      var t1 = rates[rates.length - 1].t, t0 = rates[0].t, span = Math.max(t1 - t0, 1), max = 0;
      rates.forEach(function (p) { if (p.r > max) max = p.r; });
      var pts = rates.map(function (p) {
        var x = rates.length === 1 ? sp.w - 1 : 1 + ((p.t - t0) / span) * (sp.w - 2);
        var y = sp.h - 1 - (max > 0 ? (p.r / max) * (sp.h - 3) : 0);
        return [x, y];
      });
      if (pts.length === 1) pts.unshift([1, pts[0][1]]);
      var s = pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); });
      sp.line.setAttribute('points', s.join(' '));
      sp.area.setAttribute('d', 'M' + pts[0][0].toFixed(1) + ',' + (sp.h - 1) + ' L' + s.join(' L') + ' L' + pts[pts.length - 1][0].toFixed(1) + ',' + (sp.h - 1) + ' Z');
      label = 'Throughput over the last ' + fmtDuration(span / 1000) + ': now ' + fmtRate(rates[rates.length - 1].r) + ', peak ' + fmtRate(max);
    }
    if (sp.svg.getAttribute('aria-label') !== label) { sp.svg.setAttribute('aria-label', label); sp.title.textContent = label; }
  }
  function lastRate(rates) { return rates.length ? fmtRate(rates[rates.length - 1].r) : '\u2014'; }

  // ---- building the view (once per set of VIPs/servers) ----
  function dlItem(dl, label) {
    var dd = el('dd');
    dl.appendChild(el('div', null, [el('dt', { text: label }), dd]));
    return dd;
  }
  function cell(tag, label, attrs) {
    var a = attrs || {}; a['data-label'] = label;
    if (!a.role) a.role = 'cell';
    var wrap = el('div', { cls: 'cell' });
    return { td: el(tag, a, [wrap]), wrap: wrap };
  }
  function buildVip(v, vi) {
    var id = 'vip-' + vi;
    var view = { name: str(v.name), rows: [] };
    view.mode = el('span', { cls: 'pill' });
    view.sum = el('span', { cls: 'vip-sum' });
    var section = el('section', { cls: 'panel vip', 'aria-labelledby': id + '-h', 'data-vip': view.name }, [
      el('div', { cls: 'vip-head' }, [el('h2', { id: id + '-h', text: view.name }), view.mode, view.sum])
    ]);
    var dl = el('dl', { cls: 'settings' });
    view.dd = {
      listeners: dlItem(dl, 'Listeners'), balance: dlItem(dl, 'Balance'), persistence: dlItem(dl, 'Persistence'),
      entries: dlItem(dl, 'Persistence table'), health: dlItem(dl, 'Health check'), clientIp: dlItem(dl, 'Client IP to servers'),
      conns: dlItem(dl, 'Connections (open / total)'), bytes: dlItem(dl, 'Bytes (in / out)'), tp: dlItem(dl, 'Throughput')
    };
    view.spark = sparkline(160, 32);
    view.rate = el('span');
    view.dd.tp.appendChild(el('span', { cls: 'tp' }, [view.spark.svg, view.rate]));
    section.appendChild(dl);

    // Explicit table roles: on phones the table is restyled as cards (display: block), which would
    // otherwise drop its table semantics in some browsers.
    var table = el('table', { cls: 'servers', role: 'table' });
    table.appendChild(el('caption', { text: 'Real servers of ' + view.name }));
    var headRow = el('tr', { role: 'row' });
    ['Server', 'State', 'Last health check', 'Connections (open / total)', 'Bytes (in / out)', 'Throughput', 'Actions'].forEach(function (h) {
      headRow.appendChild(el('th', { scope: 'col', role: 'columnheader', text: h }));
    });
    table.appendChild(el('thead', { role: 'rowgroup' }, [headRow]));
    var tbody = el('tbody', { role: 'rowgroup' });
    (v.servers || []).forEach(function (s, si) { var r = buildRow(view.name, s, id + '-s' + si); view.rows.push(r); tbody.appendChild(r.tr); });
    table.appendChild(tbody);
    section.appendChild(table);
    if (!(v.servers || []).length) section.appendChild(el('p', { cls: 'empty', text: 'This VIP has no real servers.' }));
    view.section = section;
    return view;
  }
  function buildRow(vipName, s, id) {
    var r = { vip: vipName, name: str(s.name), key: vipName + '/' + str(s.name), buttons: [] };
    r.tr = el('tr', { cls: 'server', 'data-server': r.key, id: id, role: 'row' });
    var c;
    c = cell('th', 'Server', { scope: 'row', role: 'rowheader' });
    r.addr = el('span', { cls: 'sub' });
    c.wrap.appendChild(el('span', { cls: 'srv-name', text: r.name })); c.wrap.appendChild(r.addr);
    r.tr.appendChild(c.td);

    c = cell('td', 'State', { cls: 'state' });
    r.badgeIcon = el('span', { 'aria-hidden': 'true' });
    r.badgeText = el('span', { cls: 'state-text' });
    r.badge = el('span', { cls: 'badge' }, [r.badgeIcon, r.badgeText]);
    r.healthNote = el('span', { cls: 'sub' });
    c.wrap.appendChild(r.badge); c.wrap.appendChild(r.healthNote);
    r.tr.appendChild(c.td);

    c = cell('td', 'Last check', { cls: 'lastcheck' });
    r.check = el('span'); r.checkSub = el('span', { cls: 'sub' });
    c.wrap.appendChild(r.check); c.wrap.appendChild(r.checkSub);
    r.tr.appendChild(c.td);

    c = cell('td', 'Connections', { cls: 'num conns' }); r.conns = c.wrap; r.tr.appendChild(c.td);
    c = cell('td', 'Bytes in / out', { cls: 'num bytes' }); r.bytes = c.wrap; r.tr.appendChild(c.td);

    c = cell('td', 'Throughput', { cls: 'throughput' });
    r.spark = sparkline(96, 24); r.rate = el('span');
    c.wrap.appendChild(el('span', { cls: 'tp' }, [r.spark.svg, r.rate]));
    r.tr.appendChild(c.td);

    c = cell('td', 'Actions', { cls: 'actions-cell' });
    var box = el('div', { cls: 'actions', role: 'group', 'aria-label': 'Actions for ' + r.name });
    ACTION_ORDER.forEach(function (a) {
      var b = el('button', {
        type: 'button', cls: 'act act-' + a, id: id + '-' + a, 'data-action': a,
        'aria-label': ACTIONS[a].verb + ' ' + r.name + ' (' + vipName + ')', 'aria-describedby': 'token-help', text: ACTIONS[a].verb
      });
      b.addEventListener('click', function () { openConfirm(r, a, b); });
      r.buttons.push(b);
      box.appendChild(b);
    });
    c.wrap.appendChild(box);
    r.tr.appendChild(c.td);
    return r;
  }
  function rebuild(vips) {
    var focusedId = document.activeElement && document.activeElement.id;
    while (ui.vips.firstChild) ui.vips.removeChild(ui.vips.firstChild);
    S.views = vips.map(function (v, i) { var view = buildVip(v, i); ui.vips.appendChild(view.section); return view; });
    if (!vips.length) ui.vips.appendChild(el('p', { cls: 'panel empty', text: 'No virtual services are configured.' }));
    if (focusedId) { var f = $(focusedId); if (f) f.focus(); }
  }

  // ---- updating the view (every poll) ----
  function render(d, now) {
    S.loaded = true;
    S.readOnly = d.readOnly === true;
    var vips = Array.isArray(d.virtualServices) ? d.virtualServices : [];
    var sig = JSON.stringify(vips.map(function (v) { return [v.name, (v.servers || []).map(function (s) { return s.name; })]; }));
    if (sig !== S.sig) { rebuild(vips); S.sig = sig; }
    var serverNow = Date.parse(d.startedAt) + num(d.uptimeSeconds) * 1000;
    if (!isFinite(serverNow)) serverNow = Date.now();

    setText(ui.meta, 'version ' + str(d.version, '?') + ' \u00B7 up ' + fmtDuration(d.uptimeSeconds) + ' \u00B7 ' + str(d.workers, '?') + ' worker' + (d.workers === 1 ? '' : 's'));
    var counts = { UP: 0, DOWN: 0, DRAIN: 0, HALT: 0 }, total = 0, changes = [];
    vips.forEach(function (v, i) {
      var view = S.views[i];
      updateVip(view, v, now);
      (v.servers || []).forEach(function (s, si) {
        var r = view.rows[si], st = stateOf(s.state);
        total++; if (counts[st] !== undefined) counts[st]++;
        updateRow(r, s, now, serverNow);
        var prev = S.prevState[r.key];
        if (prev && prev !== st) {
          changes.push(r.name + ' (' + r.vip + ') is now ' + st + ', was ' + prev);
          r.tr.classList.remove('flash'); void r.tr.offsetWidth; r.tr.classList.add('flash');
        }
        S.prevState[r.key] = st;
      });
    });
    renderCounts(counts, total, vips.length);
    renderEvents(Array.isArray(d.events) ? d.events : []);
    if (changes.length) announce(changes.join('. ') + '.');
    updateControls();
  }
  function renderCounts(counts, total, nVips) {
    while (ui.counts.firstChild) ui.counts.removeChild(ui.counts.firstChild);
    STATES.forEach(function (st) {
      ui.counts.appendChild(el('li', null, [el('span', { cls: 'badge ' + st }, [
        el('span', { 'aria-hidden': 'true', text: ICON[st] }), el('span', { text: counts[st] + ' ' + st })
      ])]));
    });
    ui.counts.appendChild(el('li', { cls: 'vip-sum', text: total + ' real server entr' + (total === 1 ? 'y' : 'ies') + ' in ' + nVips + ' VIP' + (nVips === 1 ? '' : 's') }));
  }
  function updateVip(view, v, now) {
    setText(view.mode, str(v.mode).toUpperCase());
    var servers = v.servers || [];
    var up = servers.filter(function (s) { return s.state === 'UP'; }).length;
    setText(view.sum, up + ' of ' + servers.length + ' server' + (servers.length === 1 ? '' : 's') + ' up');
    setText(view.dd.listeners, (v.listeners || []).map(fmtListener).join(', ') || 'none');
    setText(view.dd.balance, str(v.balance));
    setText(view.dd.persistence, fmtPersistence(v.persistence));
    var entries = v.persistence && v.persistence.entries;
    setText(view.dd.entries, v.persistence && v.persistence.type === 'none' ? 'not used' : fmtInt(entries) + ' client' + (num(entries) === 1 ? '' : 's'));
    setText(view.dd.health, fmtHealth(v.healthCheck));
    setText(view.dd.clientIp, str(v.clientIp, 'none'));
    setText(view.dd.conns, fmtInt(v.currentConnections) + ' / ' + fmtInt(v.totalConnections));
    setText(view.dd.bytes, fmtBytes(v.bytesIn) + ' / ' + fmtBytes(v.bytesOut));
    var rates = sample('vip:' + view.name, num(v.bytesIn) + num(v.bytesOut), now);
    drawSpark(view.spark, rates);
    setText(view.rate, lastRate(rates));
  }
  function updateRow(r, s, now, serverNow) {
    var st = stateOf(s.state);
    setClass(r.tr, 'server state-' + st + (r.tr.classList.contains('flash') ? ' flash' : ''));
    setText(r.addr, str(s.address) + (s.port ? ':' + s.port : '') + ' \u00B7 weight ' + str(s.weight));
    setClass(r.badge, 'badge ' + st);
    setText(r.badgeIcon, ICON[st]);
    setText(r.badgeText, st === 'UNKNOWN' ? str(s.state, 'unknown') : st);
    var note = '';
    if ((st === 'DRAIN' || st === 'HALT') && s.health) note = 'health: ' + s.health;
    setText(r.healthNote, note);
    var lc = s.lastCheck;
    if (!lc) {
      setText(r.check, 'not checked yet'); setClass(r.check, ''); setText(r.checkSub, '');
    } else {
      setText(r.check, (lc.ok ? '\u2713 ' : '\u2715 ') + str(lc.detail, lc.ok ? 'ok' : 'failed'));
      setClass(r.check, lc.ok ? 'ok-text' : 'bad-text');
      var at = Date.parse(lc.at);
      var ago = isFinite(at) ? fmtDuration(Math.max(0, (serverNow - at) / 1000)) + ' ago' : '';
      setText(r.checkSub, (lc.latencyMs === null || lc.latencyMs === undefined ? '' : fmtLatency(lc.latencyMs) + ' \u00B7 ') + ago);
    }
    setText(r.conns, fmtInt(s.currentConnections) + ' / ' + fmtInt(s.totalConnections));
    setText(r.bytes, fmtBytes(s.bytesIn) + ' / ' + fmtBytes(s.bytesOut));
    var rates = sample('srv:' + r.key, num(s.bytesIn) + num(s.bytesOut), now);
    drawSpark(r.spark, rates);
    setText(r.rate, lastRate(rates));
  }
  function renderEvents(events) {
    var body = ui.events;
    while (body.firstChild) body.removeChild(body.firstChild);
    var list = events.slice(-EVENTS_SHOWN).reverse();
    list.forEach(function (e) {
      var from = stateOf(e.from), to = stateOf(e.to);
      var when = el('time', { datetime: str(e.at), title: str(e.at), text: fmtClock(e.at) });
      body.appendChild(el('tr', { role: 'row' }, [
        el('td', { cls: 'when', role: 'cell' }, [when]),
        el('td', { cls: 'ev-vip', role: 'cell', text: str(e.vip) }),
        el('th', { scope: 'row', role: 'rowheader', text: str(e.server) }),
        el('td', { cls: 'change', role: 'cell' }, [
          el('span', { cls: 'badge ' + from, text: from === 'UNKNOWN' ? str(e.from) : from }),
          el('span', { cls: 'arrow', 'aria-label': 'to', text: '\u2192' }),
          el('span', { cls: 'badge ' + to, text: to === 'UNKNOWN' ? str(e.to) : to })
        ]),
        el('td', { cls: 'reason', role: 'cell', text: str(e.reason) })
      ]));
    });
    setText(ui.eventsEmpty, list.length === 0 ? 'No state changes yet.' : events.length > list.length
      ? 'Showing the latest ' + list.length + ' of ' + events.length + ' changes the load balancer keeps.' : '');
    ui.eventsEmpty.hidden = ui.eventsEmpty.textContent === '';
    ui.eventsTable.hidden = list.length === 0;
  }
  function announce(text) {
    // Re-setting the same text would not be announced again; clear first.
    ui.announce.textContent = '';
    setTimeout(function () { ui.announce.textContent = text; }, 50);
  }

  // ---- token, controls, actions ----
  function canAct() { return S.loaded && !S.readOnly && S.token !== ''; }
  function updateControls() {
    var can = canAct();
    S.views.forEach(function (v) { v.rows.forEach(function (r) { r.buttons.forEach(function (b) { if (b.disabled === can) b.disabled = !can; }); }); });
    var tokenOff = S.loaded && S.readOnly;
    if (ui.token.disabled !== tokenOff) ui.token.disabled = tokenOff;
    ui.remember.disabled = tokenOff;
    var help;
    if (!S.loaded) help = 'Loading\u2026 Actions are off until the status has loaded.';
    else if (S.readOnly) help = 'Read-only: this load balancer has no admin token configured (admin.token is null), so drain, halt and online are off. Set admin.token in its config to enable them.';
    else if (!S.token) help = 'Read-only until you paste the admin token: drain, halt and online need it. The token stays in this tab (memory, or sessionStorage if you tick the box) and is sent only in the Authorization header of an action.';
    else help = 'Actions enabled. The load balancer checks the token on every action; a wrong token is refused (401).';
    setText(ui.help, help);
  }
  function setToken(v) {
    S.token = v.trim();
    try {
      if (ui.remember.checked && S.token) sessionStorage.setItem(STORAGE_KEY, S.token);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) { /* storage unavailable: memory only */ }
    updateControls();
  }
  function showMsg(kind, text) { setClass(ui.msg, 'msg ' + kind); setText(ui.msg, text); }
  function openConfirm(r, action, btn) {
    if (!canAct() || S.busy) return;
    var a = ACTIONS[action];
    S.pending = { vip: r.vip, server: r.name, action: action, btn: btn };
    setText(ui.dlgTitle, a.verb + ' ' + r.name + '?');
    setText(ui.dlgVip, 'Virtual service ' + r.vip + ', real server ' + r.name + '.');
    setText(ui.dlgText, a.explain);
    setText(ui.dlgOk, a.verb + ' ' + r.name);
    setClass(ui.dlgOk, a.danger ? 'danger' : 'primary');
    ui.dlg.returnValue = '';
    ui.dlg.showModal();
    ui.dlgCancel.focus();
  }
  function errorDetail(body) {
    return body && typeof body.error === 'string' && body.error ? ' The load balancer said: \u201C' + body.error.slice(0, 300) + '\u201D.' : '';
  }
  function runAction(p) {
    var a = ACTIONS[p.action];
    var url = 'api/servers/' + encodeURIComponent(p.vip) + '/' + encodeURIComponent(p.server) + '/' + p.action;
    S.busy = true;
    showMsg('info', a.verb + ' ' + p.server + ' (' + p.vip + '): sending\u2026');
    fetch(url, { method: 'POST', cache: 'no-store', credentials: 'omit', headers: { 'Authorization': 'Bearer ' + S.token, 'Accept': 'application/json' } })
      .then(function (res) {
        return res.text().then(function (t) { var b = null; try { b = JSON.parse(t); } catch (e) { b = null; } return { status: res.status, ok: res.ok, body: b }; });
      })
      .then(function (res) {
        if (res.ok) {
          showMsg('ok', 'Done: ' + p.server + ' (' + p.vip + ') is now ' + str(res.body && res.body.state, a.state) + '.');
        } else if (res.status === 401) {
          showMsg('err', 'Refused (401 Unauthorized): the admin token is missing or wrong, so ' + p.server + ' was not changed. Paste the token from the load balancer\u2019s config (admin.token) and try again.' + errorDetail(res.body));
        } else if (res.status === 404) {
          showMsg('err', 'Not found (404): the load balancer has no server ' + p.server + ' in ' + p.vip + ' (was the config reloaded?).' + errorDetail(res.body));
        } else {
          showMsg('err', 'The action failed (HTTP ' + res.status + '); ' + p.server + ' may be unchanged.' + errorDetail(res.body));
        }
      }, function (e) {
        showMsg('err', 'Could not reach the admin API (' + str(e && e.message, 'network error') + '). The action may not have been applied: check the state below.');
      })
      .then(function () { S.busy = false; poll(); });
  }

  // ---- polling ----
  function poll() {
    if (S.inflight) { S.again = true; return; }
    clearTimeout(S.timer);
    S.inflight = true;
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var to = setTimeout(function () { if (ctl) ctl.abort(); }, 5000);
    fetch('api/status', { cache: 'no-store', credentials: 'omit', headers: { 'Accept': 'application/json' }, signal: ctl ? ctl.signal : undefined })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (d) {
        render(d, performance.now());
        S.lastOkAt = Date.now();
        setClass(ui.conn, 'conn ok');
        setText(ui.conn, 'Live \u00B7 updated ' + fmtClock(S.lastOkAt));
        if (S.failing) { S.failing = false; announce('Connection to the load balancer restored.'); }
      })
      .catch(function (e) {
        setClass(ui.conn, 'conn bad');
        var since = S.lastOkAt ? ' \u00B7 showing data from ' + fmtClock(S.lastOkAt) : '';
        setText(ui.conn, 'Cannot reach the admin API (' + (e && e.name === 'AbortError' ? 'timeout' : str(e && e.message, 'error')) + ')' + since + ' \u00B7 retrying');
        if (!S.failing) { S.failing = true; announce('Lost the connection to the load balancer; retrying.'); }
      })
      .then(function () {
        clearTimeout(to);
        S.inflight = false;
        if (S.again) { S.again = false; poll(); } else { S.timer = setTimeout(poll, POLL_MS); }
      });
  }

  // ---- wiring ----
  ui.token.addEventListener('input', function () { setToken(ui.token.value); });
  ui.remember.addEventListener('change', function () { setToken(ui.token.value); });
  ui.forget.addEventListener('click', function () { ui.token.value = ''; setToken(''); showMsg('info', 'Token forgotten: the page is read-only.'); ui.token.focus(); });
  $('token-form').addEventListener('submit', function (e) { e.preventDefault(); setToken(ui.token.value); });
  ui.dlgCancel.addEventListener('click', function () { ui.dlg.close('cancel'); });
  ui.dlgOk.addEventListener('click', function () { ui.dlg.close('ok'); });
  ui.dlg.addEventListener('close', function () {
    var p = S.pending; S.pending = null;
    if (!p) return;
    if (p.btn && document.body.contains(p.btn)) p.btn.focus();
    if (ui.dlg.returnValue === 'ok') runAction(p);
  });
  try {
    var saved = sessionStorage.getItem(STORAGE_KEY);
    if (saved) { ui.token.value = saved; ui.remember.checked = true; S.token = saved; }
  } catch (e) { /* storage unavailable */ }
  updateControls();
  poll();
})();
`;

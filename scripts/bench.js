#!/usr/bin/env node
/*
 * npm run bench [-- --quick] [-- --rounds N --duration S]
 *
 * Our proxy against HAProxy, side by side, on loopback only (block 127.0.40.0/24):
 *   - one nginx (worker_processes 1) listening on 127.0.40.11-13:8080 is the Portal cluster: /small is a
 *     100-byte file, /big a 1 MiB file, keep-alive on;
 *   - one runtime config per scenario group (tcp: the ssl-on-portal design; http + tls: ssl-on-lb) is
 *     rendered with src/config, written as JSON for `ctera-lb serve` and as haproxy.cfg (renderHaproxyConfig)
 *     for HAProxy: same VIPs, same servers, same balance/persistence/health checks, workers = nbthread = 2;
 *   - rounds are interleaved (round 1: ours then HAProxy, round 2: HAProxy then ours, ...), each proxy is
 *     started fresh per round and warmed up, and the MEDIAN over rounds is reported per scenario;
 *   - wrk (2 threads, bounded by -d) measures requests/s, transfer and the latency distribution;
 *   - peak RSS is the peak of the summed VmRSS of the proxy's whole process tree, polled every 100 ms.
 * Writes bench/results.json, prints a table, and as its last line the ratio line (ours ÷ HAProxy).
 * Installs nothing: haproxy, wrk and nginx must be present (Debian: apt-get install haproxy wrk nginx-light).
 * Every process it starts is killed at the end, on error and on Ctrl-C.
 */
"use strict";
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
// CTERA_LB_BENCH_BLOCK=127.0.4X moves the whole run to another /24 of the bench range (two runs at once).
const BLOCK = /^127\.0\.4\d$/.test(process.env.CTERA_LB_BENCH_BLOCK ?? "") ? process.env.CTERA_LB_BENCH_BLOCK : "127.0.40";
const VIP = `${BLOCK}.10`;
const SERVERS = [`${BLOCK}.11`, `${BLOCK}.12`, `${BLOCK}.13`];
const SERVER_PORT = 8080;
const ADMIN = { address: `${BLOCK}.1`, port: 9040 };
/** Worker processes for ours = nbthread for HAProxy (the issue's fair match on this 2-core machine kind). */
let WORKERS = 2;
const PORTS = { tcp: 8001, http: 8002, https: 8443, http2: 8004, https2: 8445, cttp: 8995 };

// ---------------------------------------------------------------------------------------------- arguments
function parseArgs(argv) {
  const a = { cert: "rsa", quick: false, rounds: undefined, duration: undefined, ours: "ctera-lb", only: undefined, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--quick") a.quick = true;
    else if (k === "--rounds") a.rounds = Number(argv[++i]);
    else if (k === "--duration") a.duration = Number(argv[++i]);
    else if (k === "--ours") a.ours = argv[++i]; // "ctera-lb" (default) or "haproxy" (harness self-test)
    else if (k === "--ours-cmd") a.oursCmd = argv[++i]; // experiments: a shell command, {config} = runtime JSON path
    else if (k === "--floor") a.floor = true; // Node's floor (scripts/bench/floor.js) in place of ours
    else if (k === "--only") a.only = argv[++i].split(","); // scenario groups: tcp,http,tls
    else if (k === "--workers") a.workers = Number(argv[++i]); // both proxies: our workers = HAProxy nbthread
    else if (k === "--cert") a.cert = argv[++i]; // rsa (default: RSA-2048) | ec (ECDSA P-256)
    else if (k === "--scenario") a.scenario = argv[++i].split(","); // e.g. tcp_big,http_small
    else if (k === "--keep") a.keep = true; // keep the work directory (configs, logs)
    else if (k === "--profile") a.profile = argv[++i]; // directory: our processes run with --cpu-prof there
    else if (k === "--warmup") a.firstWarmupArg = Number(argv[++i]); // seconds of load before a fresh proxy's first scenario
    else if (k === "--help" || k === "-h") {
      console.log(
        "usage: npm run bench [-- --quick] [--rounds N] [--duration S] [--workers N] [--cert rsa|ec]\n" +
          "                     [--only tcp,http,tls] [--scenario id,...]\n" +
          "                     [--keep] [--profile <dir>] [--warmup S] [--ours-cmd '<shell command; {config} = runtime JSON>']\n" +
          "                     [--floor]  (Node's own floor: bare relays and a canned TLS responder, scripts/bench/floor.js)",
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  a.rounds = a.rounds ?? (a.quick ? 1 : 3);
  if (a.workers !== undefined) {
    if (!Number.isInteger(a.workers) || a.workers < 1) throw new Error("--workers is a whole number >= 1");
    WORKERS = a.workers;
  }
  // wrk takes whole seconds only.
  a.duration = Math.max(1, Math.round(a.duration ?? (a.quick ? 1 : 5)));
  // Seconds of unmeasured load before every scenario (full runs only); the first scenario after a proxy
  // starts gets 3 s (JIT, worker start-up, first health checks), the same for both proxies.
  a.warmup = a.quick ? 0 : 1;
  // --warmup S: longer, to measure our steady state. V8 compiles a hot path after thousands of calls, so in
  // tls_new (a few hundred connections per second per worker) a fresh worker still runs much of the
  // connection set-up in baseline code after 3 s: measured under the same load, a worker warmed by 25 s of
  // tls_new used about 30% less CPU per request than a fresh one. HAProxy has no warm-up to speak of.
  a.firstWarmup = a.firstWarmupArg ?? (a.quick ? 0 : 3);
  if (!Number.isFinite(a.firstWarmup) || a.firstWarmup < 0) throw new Error("--warmup is a number of seconds >= 0");
  return a;
}

// ---------------------------------------------------------------------------------------------- processes
const children = new Set();
/** Spawns in its own process group so that stop() reaches every process it forks (cluster workers). */
function start(cmd, args, opts = {}) {
  const fd = opts.log ? fs.openSync(opts.log, "a") : "ignore";
  const p = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], ...opts.spawn });
  if (typeof fd === "number") fs.closeSync(fd);
  children.add(p);
  p.once("exit", () => children.delete(p));
  return p;
}
function killGroup(p, sig) {
  try {
    process.kill(-p.pid, sig);
  } catch {
    /* already gone */
  }
}
async function stop(p, graceMs = 3000) {
  if (p.exitCode !== null || p.signalCode !== null) {
    killGroup(p, "SIGKILL"); // leftovers of the group, if any
    return;
  }
  const gone = new Promise((r) => p.once("exit", r));
  killGroup(p, "SIGTERM");
  const t = setTimeout(() => killGroup(p, "SIGKILL"), graceMs);
  await gone;
  clearTimeout(t);
  killGroup(p, "SIGKILL");
}
function killAllNow() {
  for (const p of children) killGroup(p, "SIGKILL");
}
process.on("exit", killAllNow);
for (const s of ["SIGINT", "SIGTERM"]) {
  process.on(s, () => {
    killAllNow();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------- RSS
/** Pids of the process tree under root (root included). */
function processTree(root) {
  const kids = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(Number(d));
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    for (const c of kids.get(p) ?? []) todo.push(c);
  }
  return out;
}
function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
/** CPU seconds (user + system) used so far by a process tree: how much machine a proxy spends per request,
 * which other load on a shared machine disturbs far less than requests/s. */
function treeCpuSeconds(root) {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").slice(0).split(") ")[1].split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      /* gone */
    }
  }
  return ticks / 100; // USER_HZ
}

/** Proportional set size: shared pages (the node binary's text, mapped by every process) counted once
 * over the processes sharing them — the memory the tree really takes. */
function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Polls the summed VmRSS (and PSS) of a process tree; .peakMib() is the highest RSS sum seen. */
function rssSampler(root) {
  let peakKb = 0;
  let peakPssKb = 0;
  const sample = () => {
    const pids = processTree(root);
    const kb = pids.reduce((n, pid) => n + statusKb(pid, "VmRSS"), 0);
    if (kb > peakKb) peakKb = kb;
    const pss = pids.reduce((n, pid) => n + pssKb(pid), 0);
    if (pss > peakPssKb) peakPssKb = pss;
  };
  sample();
  const t = setInterval(sample, 100);
  return {
    sample,
    stop: () => clearInterval(t),
    peakMib: () => peakKb / 1024,
    peakPssMib: () => peakPssKb / 1024,
    /** Sum of each process's own high-water mark (an upper bound of the true peak of the sum). */
    hwmMib: () => processTree(root).reduce((n, pid) => n + statusKb(pid, "VmHWM"), 0) / 1024,
  };
}

// ---------------------------------------------------------------------------------------------- tools
function need(tools) {
  const missing = tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t} || test -x /usr/sbin/${t}`], { stdio: "ignore" }).status !== 0);
  if (missing.length) {
    const pkgs = missing.map((t) => (t === "nginx" ? "nginx-light" : t));
    console.error(`bench: missing ${missing.join(", ")}. Install them (Debian/Ubuntu, as root): apt-get install ${pkgs.join(" ")}`);
    process.exit(3);
  }
}
function bin(t) {
  const r = spawnSync("sh", ["-c", `command -v ${t} || echo /usr/sbin/${t}`], { encoding: "utf8" });
  return r.stdout.trim();
}
function version(cmd, args, re) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  const m = re.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1] : "unknown";
}

// ---------------------------------------------------------------------------------------------- nginx
function writeNginx(dir) {
  const www = path.join(dir, "www");
  fs.mkdirSync(www, { recursive: true });
  fs.writeFileSync(path.join(www, "small"), "x".repeat(99) + "\n"); // 100 bytes
  fs.writeFileSync(path.join(www, "big"), Buffer.alloc(1024 * 1024, 0x61)); // 1 MiB
  // nginx workers drop to 'nobody' when started as root: everything they read must be world-readable.
  for (const p of [dir, www]) fs.chmodSync(p, 0o755);
  for (const f of ["small", "big"]) fs.chmodSync(path.join(www, f), 0o644);
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  server {
${SERVERS.map((s) => `    listen ${s}:${SERVER_PORT};`).join("\n")}
    root ${www};
    location = /admin/startup { return 200 "ok\\n"; }
  }
}
`,
  );
  return conf;
}

// ---------------------------------------------------------------------------------------------- configs
function loadConfigModule() {
  const p = path.join(ROOT, "dist/src/config/index.js");
  if (!fs.existsSync(p)) throw new Error("dist/ is missing: run `npm run build` first (npm run bench does)");
  return require(p);
}

function makeCert(dir, type) {
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  // RSA 2048 by default: what most public CAs still issue for a Portal's name; both proxies present the same
  // one. --cert ec: ECDSA P-256 (a far cheaper handshake for both).
  const key = type === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] : ["-newkey", "rsa:2048"];
  execFileSync("openssl", ["req", "-x509", ...key, "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=portal.bench.test"], { stdio: "ignore" });
  return { certFile, keyFile };
}

/** The two runtime configs: "tcp" (ssl-on-portal design) and "lb" (ssl-on-lb: http, tls and cttp VIPs). */
function buildConfigs(cfgmod, cert) {
  const common = {
    vip: VIP,
    realServers: SERVERS,
    workers: WORKERS,
    drainTimeoutMs: 1000,
    admin: { ...ADMIN },
    // nginx has no TLS Portal on 443: probe with a plain TCP connect on the serving port.
    healthCheck: { type: "connect", port: SERVER_PORT, intervalMs: 1000, rise: 1, fall: 2 },
  };
  const tcp = cfgmod.render({
    ...common,
    design: "ssl-on-portal",
    virtualServices: { CTERA_Portal: { ports: [PORTS.tcp], serverPort: SERVER_PORT } },
  });
  const lb = cfgmod.render({
    ...common,
    design: "ssl-on-lb",
    tls: cert,
    virtualServices: {
      CTERA_Portal_Web_1: { ports: [PORTS.http], tlsPorts: [PORTS.https], serverPort: SERVER_PORT, redirectToHttps: false },
      CTERA_Portal_Web_2: { ports: [PORTS.http2], tlsPorts: [PORTS.https2], serverPort: SERVER_PORT },
      CTERA_Portal_CTTP: { ports: [PORTS.cttp], serverPort: SERVER_PORT },
    },
  });
  return { tcp, lb };
}

// ---------------------------------------------------------------------------------------------- scenarios
/** Each load: a wrk run against one URL. group: which config serves it. */
function scenarios() {
  return [
    { id: "tcp_small", group: "tcp", title: "TCP passthrough, 100 B", url: `http://${VIP}:${PORTS.tcp}/small`, conns: 50 },
    { id: "tcp_big", group: "tcp", title: "TCP passthrough, 1 MiB", url: `http://${VIP}:${PORTS.tcp}/big`, conns: 10 },
    { id: "http_small", group: "http", title: "HTTP keep-alive + XFF, 100 B", url: `http://${VIP}:${PORTS.http}/small`, conns: 50 },
    { id: "http_big", group: "http", title: "HTTP keep-alive + XFF, 1 MiB", url: `http://${VIP}:${PORTS.http}/big`, conns: 10 },
    { id: "tls_new", group: "tls", title: "TLS termination, new conn/request", url: `https://${VIP}:${PORTS.https}/small`, conns: 20, close: true },
    { id: "tls_keepalive", group: "tls", title: "TLS termination, keep-alive 100 B", url: `https://${VIP}:${PORTS.https}/small`, conns: 50 },
  ];
}
const CONFIG_OF_GROUP = { tcp: "tcp", http: "lb", tls: "lb" };

// ---------------------------------------------------------------------------------------------- wrk
const UNIT = { us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
const BYTES = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s);
  return m ? Number(m[1]) * UNIT[m[2]] : NaN;
}
function parseWrk(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? m : null;
  };
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  const tr = num(/Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/);
  const p50 = num(/^\s+50%\s+(\S+)/m);
  const p99 = num(/^\s+99%\s+(\S+)/m);
  const total = num(/(\d+) requests in/);
  const non2xx = num(/Non-2xx or 3xx responses:\s+(\d+)/);
  const sock = num(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps: rps ? Number(rps[1]) : 0,
    mibs: tr ? (Number(tr[1]) * BYTES[tr[2]]) / 1024 ** 2 : 0,
    p50ms: p50 ? toMs(p50[1]) : NaN,
    p99ms: p99 ? toMs(p99[1]) : NaN,
    requests: total ? Number(total[1]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}
function runWrk(sc, seconds) {
  const args = ["-t2", `-c${sc.conns}`, `-d${seconds}s`, "--timeout", "5s", "--latency"];
  if (sc.close) args.push("-H", "Connection: close");
  args.push(sc.url);
  return new Promise((resolve) => {
    const p = start(bin("wrk"), args, { spawn: { stdio: ["ignore", "pipe", "pipe"] } });
    let out = "";
    p.stdout.on("data", (c) => (out += c));
    p.stderr.on("data", (c) => (out += c));
    const t = setTimeout(() => killGroup(p, "SIGKILL"), (seconds + 15) * 1000);
    p.once("exit", () => {
      clearTimeout(t);
      resolve({ ...parseWrk(out), raw: out });
    });
  });
}
/** A run counts only when requests went through and almost all of them were answered 2xx. */
function runFailure(r) {
  if (r.requests === 0) return "no request completed";
  if (r.non2xx > r.requests * 0.01) return `${r.non2xx} of ${r.requests} responses were not 2xx/3xx`;
  const e = r.socketErrors;
  if (e.connect + e.timeout > r.requests * 0.01) return `socket errors ${JSON.stringify(e)}`;
  return null;
}

// ---------------------------------------------------------------------------------------------- proxies
function httpGet(url, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}
function httpsGet(url, timeoutMs) {
  const https = require("node:https");
  return new Promise((resolve) => {
    const req = https.get(url, { agent: false, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}
/** Ready = the group's URLs answer 200 through the proxy (servers up, listeners open). */
async function waitReady(p, urls, ms) {
  const until = Date.now() + ms;
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) return `exited (${p.exitCode ?? p.signalCode}) before it was ready`;
    const codes = await Promise.all(urls.map((u) => (u.startsWith("https:") ? httpsGet(u, 1000) : httpGet(u, 1000))));
    if (codes.every((c) => c === 200)) return null;
    if (Date.now() > until) return `not ready within ${ms} ms (status ${codes.join(",")})`;
    await sleep(100);
  }
}

function startProxy(kind, files, logFile, args, tag) {
  if (kind === "haproxy") return start(bin("haproxy"), ["-db", "-f", files.haproxy], { log: logFile });
  // --profile: every Node process of ours writes a CPU profile when it exits cleanly (after SIGTERM and its
  // drain). Cluster workers inherit the primary's execArgv, so the flags reach them too. (Node 20 refuses
  // --cpu-prof in NODE_OPTIONS, hence flags on the command line; --ours-cmd gets them through {node}.)
  const flags = [];
  if (args.profile) {
    const dir = path.resolve(args.profile, tag);
    fs.mkdirSync(dir, { recursive: true });
    flags.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  if (args.oursCmd) {
    const cmd = args.oursCmd.split("{config}").join(files.json).split("{node}").join([process.execPath, ...flags].join(" "));
    return start("sh", ["-c", `exec ${cmd}`], { log: logFile });
  }
  // As the image runs it: the primary with the serving processes' Node flags (workers get them from serve).
  const serveFlags = require(path.join(ROOT, "dist/src/proxy/main.js")).SERVE_NODE_FLAGS;
  if (args.floor) return start(process.execPath, [...flags, ...serveFlags, path.join(__dirname, "bench/floor.js"), files.json], { log: logFile });
  return start(process.execPath, [...flags, ...serveFlags, path.join(ROOT, "bin/ctera-lb"), "serve", "--config", files.json], { log: logFile });
}

// ---------------------------------------------------------------------------------------------- stats
function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

// ---------------------------------------------------------------------------------------------- main
async function main() {
  const args = parseArgs(process.argv.slice(2));
  need(["haproxy", "wrk", "nginx", "openssl"]);
  const t0 = Date.now();
  const cfgmod = loadConfigModule();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ctera-lb-bench-"));
  if (!args.keep) process.on("exit", () => fs.rmSync(work, { recursive: true, force: true }));
  const proxies = args.ours === "haproxy" ? ["ours(haproxy)", "haproxy"] : args.floor ? ["floor", "haproxy"] : ["ours", "haproxy"];
  const kindOf = (name) => (name === "ours" || name === "floor" ? "ctera-lb" : "haproxy");
  const all = scenarios().filter((s) => (!args.only || args.only.includes(s.group)) && (!args.scenario || args.scenario.includes(s.id)));
  const results = {}; // id → proxy → runs[]
  const failures = {}; // id → proxy → reason
  const rss = { [proxies[0]]: 0, [proxies[1]]: 0 };
  const rssHwm = { [proxies[0]]: 0, [proxies[1]]: 0 };
  const pss = { [proxies[0]]: 0, [proxies[1]]: 0 };
  let nginx;
  try {
    if (!["rsa", "ec"].includes(args.cert)) throw new Error("--cert is rsa or ec");
    const cert = makeCert(work, args.cert);
    const configs = buildConfigs(cfgmod, cert);
    const files = {};
    for (const [name, cfg] of Object.entries(configs)) {
      // TLS sessions: HAProxy as rendered by default (no-tls-tickets: its stateful cache, a new ticket on every
      // resumption) and ours (stateless tickets, one key for both processes, a new ticket on every resumption)
      // both resume every reconnection of wrk, which offers the ticket of its previous connection.
      const opts = { tlsBundleDir: path.join(work, "certs"), maxconn: 8000 }; // maxconn: 2 fds per connection, under a 20000 ulimit -n
      cfgmod.writeHaproxyTlsBundles(cfg, opts);
      files[name] = { json: path.join(work, `${name}.json`), haproxy: path.join(work, `${name}.haproxy.cfg`) };
      fs.writeFileSync(files[name].json, JSON.stringify(cfg, null, 2));
      fs.writeFileSync(files[name].haproxy, cfgmod.renderHaproxyConfig(cfg, opts));
    }
    nginx = start(bin("nginx"), ["-c", writeNginx(work), "-p", work], { log: path.join(work, "nginx.log") });
    const nginxReady = await waitReady(nginx, SERVERS.map((s) => `http://${s}:${SERVER_PORT}/small`), 5000);
    if (nginxReady) {
      const logs = ["nginx.log", "nginx-error.log"].map((f) => path.join(work, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, "utf8")).join("");
      throw new Error(`nginx ${nginxReady}: ${logs.trim()}`);
    }

    // Groups of scenarios served by one config; a proxy is started once per (round, config).
    const byConfig = {};
    for (const s of all) (byConfig[CONFIG_OF_GROUP[s.group]] ??= []).push(s);

    for (let round = 0; round < args.rounds; round++) {
      const order = round % 2 === 0 ? proxies : [...proxies].reverse();
      for (const [cfgName, scs] of Object.entries(byConfig)) {
        for (const who of order) {
          const kind = args.ours === "haproxy" ? "haproxy" : kindOf(who);
          const log = path.join(work, `${who}-${cfgName}-${round}.log`);
          const p = startProxy(kind, files[cfgName], log, args, `${cfgName}-round${round + 1}`);
          const rs = rssSampler(p.pid);
          try {
            const notReady = await waitReady(p, [...new Set(scs.map((s) => s.url.replace(/\/(small|big)$/, "/small")))], 15000);
            if (notReady) {
              const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean) : [];
              const firstError = lines.find((l) => /error|alert|cannot|not built/i.test(l));
              const tail = [...new Set([firstError, lines[lines.length - 1]].filter(Boolean))].join(" | ").slice(0, 400);
              for (const s of scs) ((failures[s.id] ??= {})[who] = `${kind} ${notReady}${tail ? `: ${tail}` : ""}`);
              console.error(`bench: ${who} (${cfgName}) ${notReady}${tail ? `\n  ${tail}` : ""}`);
              continue;
            }
            for (const [i, s] of scs.entries()) {
              const warm = i === 0 ? args.firstWarmup : args.warmup;
              if (warm > 0) await runWrk(s, warm);
              const cpu0 = treeCpuSeconds(p.pid);
              const r = await runWrk(s, args.duration);
              r.cpuSeconds = treeCpuSeconds(p.pid) - cpu0;
              r.cpuUsPerReq = r.requests ? (r.cpuSeconds * 1e6) / r.requests : NaN;
              r.round = round + 1;
              rs.sample();
              const bad = runFailure(r);
              if (bad) {
                (failures[s.id] ??= {})[who] = bad;
                console.error(`bench: ${who} ${s.id} round ${round + 1}: ${bad}`);
              } else {
                ((results[s.id] ??= {})[who] ??= []).push(r);
              }
              console.error(
                `  round ${round + 1} ${who.padEnd(8)} ${s.id.padEnd(14)} ${fmt(r.rps).padStart(8)} req/s ${fmt(r.mibs, 1).padStart(8)} MiB/s p99 ${fmt(r.p99ms, 2)} ms`,
              );
            }
          } finally {
            rs.sample();
            rssHwm[who] = Math.max(rssHwm[who], rs.hwmMib());
            rs.stop();
            rss[who] = Math.max(rss[who], rs.peakMib());
            pss[who] = Math.max(pss[who], rs.peakPssMib());
            await stop(p);
          }
        }
      }
    }
  } finally {
    if (nginx) await stop(nginx);
    killAllNow();
    if (args.keep) console.error(`bench: work directory kept: ${work}`);
  }

  // ------------------------------------------------------------------ summary
  const [us, them] = proxies;
  const summary = {};
  for (const s of scenarios()) {
    const row = { title: s.title, url: s.url.replace(VIP, "VIP"), connections: s.conns, connectionClose: !!s.close };
    for (const who of proxies) {
      const runs = results[s.id]?.[who] ?? [];
      const fail = failures[s.id]?.[who];
      row[who] = runs.length
        ? {
            rps: median(runs.map((r) => r.rps)),
            mibs: median(runs.map((r) => r.mibs)),
            p50ms: median(runs.map((r) => r.p50ms)),
            p99ms: median(runs.map((r) => r.p99ms)),
            cpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq)),
            runs: runs.map(({ raw, ...r }) => r),
            ...(fail ? { someRoundsFailed: fail } : {}),
          }
        : { failed: fail ?? "not run", ...(all.some((x) => x.id === s.id) ? {} : { notRun: true }) };
    }
    summary[s.id] = row;
  }
  const val = (id, who, k) => summary[id][who]?.[k] ?? NaN;
  const thr = (id, k) => {
    const r = ratio(val(id, us, k), val(id, them, k));
    return Number.isFinite(r) ? r : summary[id][us].failed && Number.isFinite(val(id, them, k)) ? 0 : NaN;
  };
  // Each ratio of the last line: scenario and measure (p99 is a plain ratio: no 0 for a failed run of ours).
  const KEYS = { tcp_rps: ["tcp_small", "rps"], tcp_mibs: ["tcp_big", "mibs"], http_rps: ["http_small", "rps"], http_mibs: ["http_big", "mibs"], tls_rps: ["tls_new", "rps"], p99_http: ["http_small", "p99ms"] };
  const ratios = {};
  for (const [name, [id, k]] of Object.entries(KEYS)) ratios[name] = k === "p99ms" ? ratio(val(id, us, k), val(id, them, k)) : thr(id, k);
  ratios.rss_mib = rss[us];

  // The same ratios per round (ours and HAProxy ran next to each other in it): how far one round's ratio
  // strays from the median is this machine's noise, which a reader needs to judge a difference of a few %.
  const roundRatios = {};
  for (const [name, [id, k]] of Object.entries(KEYS)) {
    const mine = summary[id][us].runs ?? [];
    const theirs = summary[id][them].runs ?? [];
    roundRatios[name] = mine.map((a) => ratio(a[k], theirs.find((b) => b.round === a.round)?.[k])).filter((x) => Number.isFinite(x));
  }

  const machine = {
    cpus: os.cpus().length,
    nproc: Number(spawnSync("nproc", [], { encoding: "utf8" }).stdout.trim()) || os.cpus().length,
    model: (spawnSync("sh", ["-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"], { encoding: "utf8" }).stdout || "").trim(),
    memMiB: Math.round(os.totalmem() / 1024 ** 2),
    // Other work on the machine skews both proxies; interleaving spreads it, this records how busy it was.
    loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
    kernel: os.release(),
    node: process.version,
    haproxy: version(bin("haproxy"), ["-v"], /HAProxy version (\S+)/),
    nginx: version(bin("nginx"), ["-v"], /nginx\/(\S+)/),
    wrk: version(bin("wrk"), ["-v"], /wrk (\S+)/),
  };
  const doc = {
    date: new Date().toISOString(),
    command: `npm run bench${args.quick ? " -- --quick" : ""}`,
    quick: args.quick,
    machine,
    method: {
      rounds: args.rounds,
      durationSeconds: args.duration,
      warmupSeconds: { firstScenarioAfterStart: args.firstWarmup, others: args.warmup },
      aggregate: "median over rounds; rounds alternate which proxy runs first; each proxy started fresh per round",
      workers: WORKERS,
      backends: `one nginx ${machine.nginx}, worker_processes 1, listening on ${SERVERS.join(", ")}:${SERVER_PORT}; /small 100 B, /big 1 MiB, keep-alive`,
      wrk: "wrk -t2 -cN -dDs --latency (tls_new adds -H 'Connection: close')",
      tls: `${args.cert === "ec" ? "ECDSA P-256" : "RSA-2048"} self-signed certificate; TLS 1.3 negotiated by wrk; wrk resumes the session of its previous connection when it can; both proxies give a resumed session a new ticket (HAProxy: its default session cache; ours: stateless tickets renewed), so after its first connection wrk resumes every connection on both`,
      rss: "peak of the summed VmRSS of the proxy's process tree, polled every 100 ms",
      pss: "peak of the summed PSS (smaps_rollup) of the same tree: pages shared between its processes, such as the node binary, counted once",
      cpu: "CPU µs/req: user+system time of the proxy's process tree during the measured wrk run ÷ requests",
      persistence: "source-IP stick table on (every wrk connection comes from 127.0.0.1, so one server takes all)",
    },
    proxies: {
      [us]: args.ours === "haproxy" ? "haproxy (harness self-test)" : args.floor ? "Node's floor: scripts/bench/floor.js" : args.oursCmd ? `experiment: ${args.oursCmd}` : "ctera-lb serve",
      [them]: "haproxy",
    },
    scenarios: summary,
    peakRssMiB: rss,
    summedHwmMiB: rssHwm,
    peakPssMiB: pss,
    ratios,
    roundRatios,
    elapsedSeconds: Math.round((Date.now() - t0) / 1000),
  };
  fs.mkdirSync(path.join(ROOT, "bench"), { recursive: true });
  // The floor is a reference, not our result: its own file.
  fs.writeFileSync(path.join(ROOT, args.floor ? "bench/floor-results.json" : "bench/results.json"), JSON.stringify(doc, null, 2) + "\n");

  // ------------------------------------------------------------------ table
  const head = ["scenario", "proxy", "req/s", "MiB/s", "p50 ms", "p99 ms", "CPU µs/req", "ours/HAProxy"];
  const rows = [];
  for (const s of scenarios()) {
    const key = s.id.endsWith("_big") ? "mibs" : "rps";
    for (const who of proxies) {
      const r = summary[s.id][who];
      rows.push([
        who === us ? s.title : "",
        who,
        r.notRun ? "not run" : r.failed ? "FAILED" : fmt(r.rps),
        r.failed ? "" : fmt(r.mibs, 1),
        r.failed ? "" : fmt(r.p50ms, 2),
        r.failed ? "" : fmt(r.p99ms, 2),
        r.failed ? "" : fmt(r.cpuUsPerReq, r.cpuUsPerReq < 100 ? 1 : 0),
        who === us ? `${fmt(thr(s.id, key), 2)} (${key === "rps" ? "req/s" : "MiB/s"})` : "",
      ]);
    }
  }
  rows.push(["peak RSS (all processes)", us, "", "", "", "", "", `${fmt(rss[us], 1)} MiB`]);
  rows.push(["", them, "", "", "", "", "", `${fmt(rss[them], 1)} MiB`]);
  rows.push(["peak PSS (shared pages once)", us, "", "", "", "", "", `${fmt(pss[us], 1)} MiB`]);
  rows.push(["", them, "", "", "", "", "", `${fmt(pss[them], 1)} MiB`]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => "| " + r.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ") + " |";
  console.log(line(head));
  console.log("|" + widths.map((w, i) => (i >= 2 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|");
  for (const r of rows) console.log(line(r));
  for (const [id, f] of Object.entries(failures)) {
    for (const [who, why] of Object.entries(f)) console.log(`note: ${id} ${who}: ${why}`);
  }
  console.log(
    `machine: ${machine.nproc} cores (${machine.model}), node ${machine.node}, haproxy ${machine.haproxy}, nginx ${machine.nginx}, wrk ${machine.wrk}; ${args.rounds} round(s) × ${args.duration}s, median; ${doc.elapsedSeconds}s`,
  );
  if (args.profile) {
    const { summarize } = require("./bench/cpuprofile-top");
    for (const tag of fs.readdirSync(args.profile).sort()) {
      const dir = path.join(path.resolve(args.profile), tag);
      const files = fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(dir, f));
      if (!files.length) continue;
      const sum = summarize(files, 12);
      console.log(`profile ${tag} (${files.length} processes, ${sum.totalMs.toFixed(0)} ms): ` + sum.rows.map((r) => `${r.fn} ${r.pct.toFixed(1)}%`).join("; "));
    }
  }
  const r2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  if (args.rounds > 1) console.log(`per round: ${Object.entries(roundRatios).map(([k, v]) => `${k}=${v.length ? v.map(r2).join("/") : "n/a"}`).join(" ")}`);
  console.log(
    `${args.floor ? "floor " : ""}ratios: tcp_rps=${r2(ratios.tcp_rps)} tcp_mibs=${r2(ratios.tcp_mibs)} http_rps=${r2(ratios.http_rps)} http_mibs=${r2(ratios.http_mibs)} tls_rps=${r2(ratios.tls_rps)} p99_http=${r2(ratios.p99_http)} rss_mib=${r2(ratios.rss_mib)}`,
  );
}

main().catch((e) => {
  killAllNow();
  console.error(`bench: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

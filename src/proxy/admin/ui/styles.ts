/**
 * The status page's stylesheet, inlined into the one HTML response (the admin CSP allows inline styles and
 * nothing external). Colour is never the only signal: every state badge also carries its word and a symbol.
 * Below 760 px the server table turns into one card per server (each cell labelled), so a phone shows no
 * horizontal scrolling; the event log keeps its table inside a deliberate scroll container.
 */
export const STATUS_PAGE_CSS = String.raw`
:root {
  --fg: #1f2328; --muted: #59636e; --bg: #f6f8fa; --panel: #ffffff; --line: #d1d9e0;
  --focus: #0a58ca; --accent: #0a58ca;
  --up-bg: #dafbe1; --up-fg: #0f5323; --up-line: #1a7f37;
  --down-bg: #ffebe9; --down-fg: #8c0b1f; --down-line: #cf222e;
  --drain-bg: #fff1c2; --drain-fg: #6b4200; --drain-line: #bf8700;
  --halt-bg: #ece6ff; --halt-fg: #4a2a8c; --halt-line: #8250df;
  color-scheme: light;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
.skip { position: absolute; left: -9999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: .5rem; top: .5rem; }
.sr-only {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
header.top {
  background: #13233a; color: #fff; padding: .75rem 1.25rem;
  display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1.25rem;
}
header.top h1 { font-size: 1.25rem; margin: 0; font-weight: 650; }
header.top .meta { color: #c9d4e3; font-size: .9rem; margin: 0; }
.conn { margin: 0 0 0 auto; font-size: .9rem; display: flex; align-items: center; gap: .4rem; }
.conn::before { content: ""; width: .6rem; height: .6rem; border-radius: 50%; background: #8b949e; flex: none; }
.conn.ok::before { background: #3fb950; }
.conn.bad { color: #ffd8d3; font-weight: 600; }
.conn.bad::before { background: #ff7b72; }
main { max-width: 1400px; margin: 0 auto; padding: 1rem 1.25rem 2rem; }
h2 { font-size: 1.1rem; margin: 0; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; margin-bottom: 1rem; }
.overview { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; }
.overview h2 { margin-right: .25rem; }
.counts { display: flex; flex-wrap: wrap; gap: .4rem; margin: 0; padding: 0; list-style: none; }
.token-form { display: flex; flex-wrap: wrap; gap: .5rem .75rem; align-items: center; margin-top: .6rem; }
.token-form label[for="token"] { font-weight: 600; }
.token-form input[type="password"] {
  font: inherit; padding: .35rem .5rem; border: 1px solid #8c959f; border-radius: 6px; width: min(22rem, 100%);
}
.token-form input:disabled { background: #eaeef2; }
.check { display: inline-flex; gap: .35rem; align-items: center; }
.help { margin: .5rem 0 0; color: var(--muted); font-size: .9rem; }
.msg { margin: .6rem 0 0; padding: 0; font-weight: 600; }
.msg:empty { display: none; }
.msg.ok { color: var(--up-fg); background: var(--up-bg); border-left: 4px solid var(--up-line); padding: .45rem .65rem; }
.msg.err { color: var(--down-fg); background: var(--down-bg); border-left: 4px solid var(--down-line); padding: .45rem .65rem; }
.msg.info { color: var(--fg); background: #ddf4ff; border-left: 4px solid var(--accent); padding: .45rem .65rem; }
button, .btn {
  font: inherit; font-size: .9rem; padding: .3rem .7rem; border-radius: 6px; cursor: pointer;
  border: 1px solid #8c959f; background: #f6f8fa; color: var(--fg); min-height: 2rem;
}
button:hover:not(:disabled) { background: #eaeef2; }
button:disabled { cursor: not-allowed; color: #8c959f; background: #f6f8fa; border-color: #d1d9e0; }
button.danger { background: #cf222e; border-color: #a40e26; color: #fff; }
button.danger:hover:not(:disabled) { background: #a40e26; }
button.primary { background: #1a7f37; border-color: #116329; color: #fff; }
button.primary:hover:not(:disabled) { background: #116329; }
.vip-head { display: flex; flex-wrap: wrap; gap: .4rem .8rem; align-items: center; margin-bottom: .6rem; }
.pill { font-size: .8rem; font-weight: 700; letter-spacing: .03em; border: 1px solid var(--line); border-radius: 999px; padding: .05rem .55rem; background: #f6f8fa; }
.vip-sum { color: var(--muted); font-size: .9rem; }
.vip-head h2, caption, .srv-name, .lastcheck, .state { overflow-wrap: anywhere; min-width: 0; }
dl.settings {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: .5rem 1.25rem; margin: 0 0 .9rem;
}
dl.settings > div { min-width: 0; }
dl.settings dt { font-size: .78rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 650; }
dl.settings dd { margin: 0; overflow-wrap: anywhere; }
.sub { display: block; color: var(--muted); font-size: .82rem; font-weight: 400; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 650; padding: 0 0 .4rem; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-top: 1px solid var(--line); }
thead th { font-size: .78rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); border-top: 0; vertical-align: bottom; }
tbody th { font-weight: 650; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge {
  display: inline-flex; align-items: center; gap: .3rem; font-weight: 700; font-size: .85rem; letter-spacing: .03em;
  border-radius: 6px; padding: .1rem .5rem; border: 1px solid; white-space: nowrap;
}
.badge.UP { background: var(--up-bg); color: var(--up-fg); border-color: var(--up-line); }
.badge.DOWN { background: var(--down-bg); color: var(--down-fg); border-color: var(--down-line); }
.badge.DRAIN { background: var(--drain-bg); color: var(--drain-fg); border-color: var(--drain-line); }
.badge.HALT { background: var(--halt-bg); color: var(--halt-fg); border-color: var(--halt-line); }
.badge.UNKNOWN { background: #eaeef2; color: var(--fg); border-color: #8c959f; }
.ok-text { color: var(--up-fg); }
.bad-text { color: var(--down-fg); font-weight: 600; }
tr.server.state-DOWN > th { box-shadow: inset 4px 0 0 var(--down-line); }
tr.server.state-DRAIN > th { box-shadow: inset 4px 0 0 var(--drain-line); }
tr.server.state-HALT > th { box-shadow: inset 4px 0 0 var(--halt-line); }
tr.server.flash { animation: flash 2.5s ease-out 1; }
@keyframes flash { from { background: #fff8c5; } to { background: transparent; } }
@media (prefers-reduced-motion: reduce) { tr.server.flash { animation: none; } }
.actions { display: flex; flex-wrap: wrap; gap: .35rem; }
/* Fixed column widths on wide screens: columns do not jump as the counters grow, and every VIP's table lines up. */
@media (min-width: 761px) {
  table.servers { table-layout: fixed; }
  table.servers thead th:nth-child(1) { width: 14%; }
  table.servers thead th:nth-child(2) { width: 10%; }
  table.servers thead th:nth-child(3) { width: 15%; }
  table.servers thead th:nth-child(4) { width: 11%; }
  table.servers thead th:nth-child(5) { width: 13%; }
  table.servers thead th:nth-child(6) { width: 18%; }
  table.servers thead th:nth-child(7) { width: 19%; }
  table.servers .tp { flex-wrap: wrap; row-gap: .2rem; }
}
.tp { display: flex; align-items: center; gap: .5rem; white-space: nowrap; font-variant-numeric: tabular-nums; }
svg.spark { display: block; flex: none; overflow: visible; }
svg.spark .area { fill: #0a58ca22; stroke: none; }
svg.spark .line { fill: none; stroke: #0a58ca; stroke-width: 1.5; stroke-linejoin: round; }
svg.spark .base { stroke: #d1d9e0; stroke-width: 1; }
.scroll { overflow-x: auto; max-width: 100%; }
.scroll:focus-visible { outline-offset: 0; }
.events td, .events th { font-size: .9rem; }
.events .when { white-space: nowrap; font-variant-numeric: tabular-nums; }
.events .change { white-space: nowrap; }
.arrow { color: var(--muted); padding: 0 .2rem; }
.empty { color: var(--muted); margin: .4rem 0 0; }
.foot { color: var(--muted); font-size: .85rem; margin: 0; }
a { color: var(--accent); }
dialog {
  border: 1px solid var(--line); border-radius: 10px; padding: 1.1rem 1.2rem; max-width: min(32rem, calc(100vw - 2rem));
  box-shadow: 0 12px 32px rgba(0,0,0,.25); color: var(--fg);
}
dialog::backdrop { background: rgba(15, 23, 42, .55); }
dialog h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
dialog p { margin: 0 0 .5rem; }
.dialog-buttons { display: flex; justify-content: flex-end; gap: .6rem; margin-top: 1rem; flex-wrap: wrap; }
.dialog-buttons button { font-size: 1rem; padding: .4rem 1rem; }

@media (max-width: 760px) {
  body { font-size: 15px; }
  header.top { padding: .6rem .9rem; }
  .conn { margin-left: 0; }
  main { padding: .75rem .6rem 1.5rem; }
  .panel { padding: .75rem .7rem; }
  dl.settings { grid-template-columns: 1fr; gap: .35rem; }
  table.servers, table.servers > tbody, table.servers tr, table.servers th, table.servers td, table.servers caption { display: block; width: auto; }
  table.servers > thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.servers tr.server { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 .6rem; padding: .2rem 0; }
  table.servers tr.server > th, table.servers tr.server > td {
    border-top: 0; padding: .3rem .65rem; display: grid; grid-template-columns: 6.5rem minmax(0, 1fr); gap: .5rem; align-items: start;
  }
  table.servers tr.server > th::before, table.servers tr.server > td::before {
    content: attr(data-label); font-size: .78rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); font-weight: 650; padding-top: .15rem;
  }
  table.servers tr.server > th { font-size: 1.05rem; border-bottom: 1px solid var(--line); padding-bottom: .45rem; margin-bottom: .2rem; }
  table.servers td.num { white-space: normal; }
  table.servers tr.server > td.actions-cell { display: block; padding-top: .5rem; }
  table.servers tr.server > td.actions-cell::before { content: none; }
  table.events, table.events > tbody, table.events tr, table.events td, table.events th { display: block; }
  table.events > thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.events tr { border-top: 1px solid var(--line); padding: .45rem 0; }
  table.events tr > * { display: inline; border: 0; padding: 0 .4rem 0 0; }
  table.events td.change { white-space: nowrap; }
  table.events td.reason { display: block; color: var(--muted); padding-top: .15rem; }
  .actions button { flex: 1 1 0; min-height: 2.75rem; }
}
`;

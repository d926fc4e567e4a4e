/**
 * The status page served at `GET /` of the admin address: one self-contained HTML document (inline style and
 * script, no external file, no CDN, works offline) that fits the admin CSP:
 *   default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;
 *   connect-src 'self'; frame-ancestors 'none'
 * It reads `api/status` (polling) and posts `api/servers/<vip>/<server>/<action>` with the operator's token.
 * The markup here is static: every value from the API is inserted by the script as text (ui/client.ts).
 */
import { STATUS_PAGE_SCRIPT } from "./ui/client";
import { STATUS_PAGE_CSS } from "./ui/styles";

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>CTERA Portal load balancer · status</title>
<link rel="icon" href="data:,">
<style>${STATUS_PAGE_CSS}</style>
</head>
<body>
<a class="skip" href="#vips">Skip to the servers</a>
<header class="top">
  <h1>CTERA Portal load balancer</h1>
  <p class="meta" id="meta">Loading status…</p>
  <p class="conn" id="conn">Connecting…</p>
</header>
<main id="main">
  <section class="panel" aria-labelledby="overview-h">
    <div class="overview">
      <h2 id="overview-h">Real servers</h2>
      <ul class="counts" id="counts" aria-label="Servers by state"></ul>
    </div>
    <form class="token-form" id="token-form" autocomplete="off">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" aria-describedby="token-help">
      <label class="check"><input type="checkbox" id="remember"> Keep for this browser tab</label>
      <button type="button" id="forget">Forget token</button>
    </form>
    <p class="help" id="token-help">Loading… Actions are off until the status has loaded.</p>
    <p class="msg" id="action-msg" role="status" aria-live="assertive" aria-atomic="true"></p>
  </section>
  <div id="vips" tabindex="-1"></div>
  <section class="panel" aria-labelledby="events-h">
    <h2 id="events-h">Latest state changes</h2>
    <div class="scroll" id="events-table" tabindex="0" role="region" aria-labelledby="events-h" hidden>
      <table class="events" role="table" aria-labelledby="events-h">
        <thead role="rowgroup"><tr role="row"><th scope="col" role="columnheader">Time</th><th scope="col" role="columnheader">VIP</th><th scope="col" role="columnheader">Server</th><th scope="col" role="columnheader">Change</th><th scope="col" role="columnheader">Reason</th></tr></thead>
        <tbody id="events-body" role="rowgroup"></tbody>
      </table>
    </div>
    <p class="empty" id="events-empty">No state changes yet.</p>
  </section>
  <div class="sr-only" id="announce" aria-live="polite" aria-atomic="true"></div>
  <p class="foot">Raw data: <a href="api/status">api/status</a> (JSON) · <a href="metrics">metrics</a> (Prometheus) · <a href="healthz">healthz</a></p>
</main>
<dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-vip confirm-text">
  <h2 id="confirm-title">Confirm</h2>
  <p id="confirm-vip"></p>
  <p id="confirm-text"></p>
  <div class="dialog-buttons">
    <button type="button" id="confirm-cancel">Cancel</button>
    <button type="button" id="confirm-ok" class="danger">Confirm</button>
  </div>
</dialog>
<script>${STATUS_PAGE_SCRIPT}</script>
</body>
</html>
`;

/** The whole status page, ready to send with content-type text/html; charset=utf-8. */
export function statusPageHtml(): string {
  return HTML;
}

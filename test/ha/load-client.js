// Bounded load through the VIP for the HA netns test: one new TCP connection and one HTTP GET every
// 1000/rate ms, the source address rotating over <sources>, for <seconds> (hard stop 3 s later). Each request
// ends as ok (with the server that answered) or failed (error or timeout, <timeoutMs>). The result is written
// as JSON to <out> when the run ends; SIGTERM ends it early (and still writes).
// Usage: node load-client.js <vip> <port> <rate> <seconds> <timeoutMs> <out> <source>...
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const [vip, port, rate, seconds, timeoutMs, out, ...sources] = process.argv.slice(2);
const total = Math.floor(Number(rate) * Number(seconds));
const every = 1000 / Number(rate);
const t0 = Date.now();
const results = [];
let sent = 0;
let open = 0;
let done = false;

function one(i) {
  const src = sources[i % sources.length];
  const start = Date.now() - t0;
  open++;
  let settled = false;
  const finish = (ok, server, error) => {
    if (settled) return;
    settled = true;
    open--;
    results.push({ i, src, start, end: Date.now() - t0, ok, server, error });
    if (done && open === 0) write();
  };
  const req = http.get({ host: vip, port: Number(port), path: "/", localAddress: src, agent: false, timeout: Number(timeoutMs) }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (c) => (body += c));
    res.on("end", () => {
      try {
        const j = JSON.parse(body);
        finish(res.statusCode === 200, j.server);
      } catch {
        finish(false, undefined, `bad body (${res.statusCode})`);
      }
    });
    res.on("error", (e) => finish(false, undefined, e.code || e.message));
  });
  req.on("timeout", () => {
    req.destroy(new Error("timeout"));
  });
  req.on("error", (e) => finish(false, undefined, e.code || e.message));
}

let written = false;
function write() {
  if (written) return;
  written = true;
  results.sort((a, b) => a.i - b.i);
  fs.writeFileSync(out, JSON.stringify({ t0, sent, results }));
  process.exit(0);
}

const timer = setInterval(() => {
  // Catch up on timer lag so the rate holds, but never past the total.
  const due = Math.min(total, Math.floor((Date.now() - t0) / every) + 1);
  while (sent < due) one(sent++);
  if (sent >= total) stop();
}, Math.max(1, Math.floor(every / 2)));

function stop() {
  if (done) return;
  done = true;
  clearInterval(timer);
  if (open === 0) write();
  setTimeout(write, Number(timeoutMs) + 500).unref();
}
setTimeout(stop, Number(seconds) * 1000 + 3000).unref();
process.on("SIGTERM", stop);
console.log(JSON.stringify({ started: t0, total }));

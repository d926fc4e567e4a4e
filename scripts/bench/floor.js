#!/usr/bin/env node
/*
 * node scripts/bench/floor.js <runtime-config.json>   (used by `npm run bench -- --floor`)
 *
 * Node's own floor for the bench's scenarios: the least a Node proxy can cost, with none of ours in it.
 * `workers` processes share each listener (the primary passes its listening handles, as `serve` does):
 *  - plain listeners: a bare relay, `socket.pipe` both ways to the first real server (no persistence, no
 *    health checks, no headers, no timeouts, no logs);
 *  - TLS listeners: Node's TLS server answering every request itself with a canned 100-byte response and no
 *    backend at all, i.e. the handshake and one record each way: an upper bound for any TLS terminator on Node
 *    (resumed sessions get a new ticket, as with ctera-lb and HAProxy's default).
 * If this floor is below a target ratio, no design of ours on Node's net/tls reaches it on the same machine.
 */
"use strict";
const net = require("node:net");
const tls = require("node:tls");
const fs = require("node:fs");
const { fork } = require("node:child_process");
const path = require("node:path");
const { renewTicketsOnResumption } = require(path.join(__dirname, "..", "..", "dist", "src", "proxy", "http", "tls.js"));

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const BODY = "x".repeat(100);
const answer = (close) =>
  Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nContent-Type: text/plain\r\n${close ? "Connection: close\r\n" : ""}\r\n${BODY}`);
const KEEP = answer(false);
const CLOSE = answer(true);
const TICKETS = Buffer.alloc(48, 7); // one key set for both processes, as serve shares its keys

function relay(target) {
  return (c) => {
    c.setNoDelay(true);
    const s = net.connect({ host: target.address, port: target.port, noDelay: true });
    c.pipe(s).pipe(c);
    c.on("error", () => s.destroy());
    s.on("error", () => c.destroy());
  };
}

function terminator(l) {
  const server = tls.createServer({ cert: fs.readFileSync(l.tls.certFile), key: fs.readFileSync(l.tls.keyFile), ticketKeys: TICKETS }, (s) => {
    s.on("error", () => undefined);
    s.on("data", (d) => {
      const close = /\r\nconnection: *close/i.test(d.toString("latin1"));
      s.write(close ? CLOSE : KEEP);
      if (close) s.end();
    });
  });
  // Resumed sessions get a new ticket, as ctera-lb and HAProxy's default give one (wrk then resumes every
  // reconnection on all three).
  renewTicketsOnResumption(server._sharedCreds, TICKETS);
  return (c) => server.emit("connection", c);
}

const listeners = [];
for (const vs of cfg.virtualServices) {
  for (const l of vs.listeners) listeners.push({ key: `${l.address}:${l.port}`, l, onConnection: l.tls ? terminator(l) : relay(vs.realServers[0]) });
}

if (process.send && process.env.CTERA_LB_FLOOR_WORKER) {
  process.on("message", (m, handle) => {
    const x = listeners.find((y) => y.key === m);
    if (x && handle) handle.on("connection", x.onConnection);
  });
} else {
  const workers = [];
  let bound = 0;
  for (const x of listeners) {
    const server = net.createServer({ noDelay: true }, x.onConnection);
    server.listen(x.l.port, x.l.address, () => {
      x.server = server;
      if (++bound === listeners.length) {
        for (let i = 1; i < (cfg.workers || 2); i++) {
          const w = fork(__filename, process.argv.slice(2), { env: { ...process.env, CTERA_LB_FLOOR_WORKER: "1" }, execArgv: process.execArgv });
          for (const y of listeners) w.send(y.key, y.server);
          workers.push(w);
        }
      }
    });
  }
  process.on("SIGTERM", () => {
    for (const w of workers) w.kill("SIGTERM");
    process.exit(0);
  });
}

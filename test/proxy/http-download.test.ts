/**
 * Large responses to clients that read slowly, plain and TLS, next to a client doing many small requests:
 * the engine reads server bytes into reused buffers (one shared by all connections, one of its own while a
 * body streams), so a write the client socket could not take at once must never see its bytes overwritten
 * by a later read (nor may a buffer still queued for one client be handed to another connection). Every body
 * is compared byte for byte with what the server sent, and the proxy's queue towards a slow client stays
 * bounded (backpressure reaches the server). Block 127.0.27.0/24.
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import * as tls from "node:tls";
import { selfSignedCert } from "../../src/sim/portal";
import { FakeBackend, FakeVip, listenEngine, RawClient, parseOneResponse } from "./http-fake-vip";

const VIP = "127.0.27.10";
const ORIGIN = "127.0.27.11";
const PLAIN_PORT = 27080;
const TLS_PORT = 27443;
const ORIGIN_PORT = 27081;
const BODY = randomBytes(12 * 1024 * 1024);
const BURSTS = 6 * 1024 * 1024;
const cert = selfSignedCert({ cn: "download.example.test" });

let origin: http.Server;
let vip: FakeVip;
let plain: net.Server;
let secure: net.Server;
/** Client sockets as the engine accepted them (the plain listener's): their write queues are the proxy's. */
const accepted: net.Socket[] = [];

/** Writes BODY in slices of uneven sizes (so reads split at every kind of offset), honouring backpressure. */
function sendBody(res: http.ServerResponse): void {
  let at = 0;
  let step = 1;
  const more = () => {
    while (at < BODY.length) {
      const n = Math.min(BODY.length - at, 7_000 + ((step++ * 40_503) % 150_000));
      const ok = res.write(BODY.subarray(at, at + n));
      at += n;
      if (!ok) {
        res.once("drain", more);
        return;
      }
    }
    res.end();
  };
  more();
}

/** Response n of the medium series: 150-250 KB, a different slice of BODY each. */
const medium = (n: number) => BODY.subarray(n * 10_007, n * 10_007 + 150_000 + ((n * 7_919) % 100_000));

beforeAll(async () => {
  origin = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url === "/cl") {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BODY.length });
        sendBody(res);
      } else if (req.url === "/chunked") {
        res.writeHead(200, { "content-type": "application/octet-stream" }); // node:http chunks it
        sendBody(res);
      } else if (req.url === "/bursts") {
        // 64 KiB then 40 KB every 15 ms: the engine's reads alternate between full and short ones.
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BURSTS });
        let at = 0;
        const t = setInterval(() => {
          for (const n of [65536, 40_000]) {
            res.write(BODY.subarray(at, Math.min(at + n, BURSTS)));
            at = Math.min(at + n, BURSTS);
          }
          if (at >= BURSTS) {
            clearInterval(t);
            res.end();
          }
        }, 15);
        res.on("close", () => clearInterval(t));
      } else if (req.url!.startsWith("/medium/")) {
        const b = medium(Number(req.url!.slice(8)));
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": b.length });
        res.end(b);
      } else {
        res.writeHead(200, { "content-type": "text/plain", "content-length": 100 });
        res.end(req.url!.padEnd(99, ".") + "\n");
      }
    });
  });
  await new Promise<void>((r) => origin.listen(ORIGIN_PORT, ORIGIN, r));
  vip = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)]);
  plain = await listenEngine(vip, { address: VIP, port: PLAIN_PORT });
  plain.on("connection", (s: net.Socket) => accepted.push(s));
  secure = await listenEngine(vip, { address: VIP, port: TLS_PORT, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
});

afterAll(async () => {
  await Promise.all([plain, secure].map((s) => new Promise((r) => s.close(r))));
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});

/**
 * GETs `path` twice on one connection, reading slowly: after every `every` bytes the socket stops reading for
 * `ms`, so the proxy's writes towards it queue again and again. Returns the two bodies.
 */
function slowDownload(path: string, useTls: boolean, every = 256 * 1024, ms = 3): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock: net.Socket = useTls
      ? tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] })
      : net.connect({ host: VIP, port: PLAIN_PORT });
    const req = `GET ${path} HTTP/1.1\r\nHost: portal\r\n\r\n`;
    sock.once(useTls ? "secureConnect" : "connect", () => sock.write(req + req));
    const chunks: Buffer[] = [];
    let got = 0;
    let sincePause = 0;
    const bodies: Buffer[] = [];
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      sincePause += d.length;
      if (sincePause >= every) {
        sincePause = 0;
        sock.pause();
        setTimeout(() => sock.resume(), ms);
      }
      if (got < BODY.length) return;
      let buf = Buffer.concat(chunks);
      chunks.length = 0;
      for (;;) {
        const r = parseOneResponse(buf);
        if (!r) break;
        bodies.push(Buffer.from(r.res.body));
        buf = buf.subarray(r.used);
      }
      chunks.push(buf);
      got = buf.length;
      if (bodies.length === 2) {
        sock.destroy();
        resolve(bodies);
      }
    });
    sock.on("error", reject);
    sock.on("close", () => reject(new Error(`closed after ${bodies.length} bodies`)));
  });
}

/** Small keep-alive requests on one connection until `stop()`; returns how many were checked. */
function smallRequests(): { stop: () => Promise<number> } {
  let running = true;
  const done = (async () => {
    const c = await new RawClient(PLAIN_PORT, VIP).connected();
    let n = 0;
    while (running && n < 5000) {
      const path = `/small-${n}`;
      c.send(`GET ${path} HTTP/1.1\r\nHost: portal\r\n\r\n`);
      const r = await c.response();
      expect(r.body.toString()).toBe(path.padEnd(99, ".") + "\n");
      n++;
    }
    c.close();
    return n;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

test.each([
  ["Content-Length", "/cl"],
  ["chunked", "/chunked"],
])("12 MiB %s bodies reach a slow plain and a slow TLS client intact, beside small requests", async (_name, path) => {
  const small = smallRequests();
  const [plainBodies, tlsBodies] = await Promise.all([slowDownload(path, false), slowDownload(path, true)]);
  const smallDone = await small.stop();
  for (const b of [...plainBodies, ...tlsBodies]) {
    expect(b.length).toBe(BODY.length);
    expect(b.equals(BODY)).toBe(true);
  }
  expect(smallDone).toBeGreaterThan(0);
}, 60_000);

/** Pipelines /medium/0..count-1 on one connection; reads slowly when `slow`. Returns the bodies in order. */
function pipelined(useTls: boolean, count: number, slow: boolean): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock: net.Socket = useTls
      ? tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] })
      : net.connect({ host: VIP, port: PLAIN_PORT });
    let sent = 0;
    const bodies: Buffer[] = [];
    // At most 4 requests ahead (the engine holds only 64 KiB of pipelined requests).
    const send = () => {
      while (sent < count && sent - bodies.length < 4) sock.write(`GET /medium/${sent++} HTTP/1.1\r\nHost: portal\r\n\r\n`);
    };
    sock.once(useTls ? "secureConnect" : "connect", send);
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parseOneResponse(buf);
        if (!r) break;
        bodies.push(Buffer.from(r.res.body));
        buf = buf.subarray(r.used);
      }
      if (bodies.length === count) {
        sock.destroy();
        resolve(bodies);
        return;
      }
      send();
      if (slow) {
        sock.pause();
        setTimeout(() => sock.resume(), 2);
      }
    });
    sock.on("error", reject);
    sock.on("close", () => reject(new Error(`closed after ${bodies.length} bodies`)));
  });
}

test.each([
  ["plain", false],
  ["TLS", true],
])("%s: many medium responses to a slow client, while another client streams, arrive intact", async (_name, useTls) => {
  const [slowBodies, fastBodies] = await Promise.all([pipelined(useTls, 40, true), pipelined(false, 150, false)]);
  for (const bodies of [slowBodies, fastBodies]) {
    bodies.forEach((b, n) => {
      if (!b.equals(medium(n))) throw new Error(`${_name}: response ${n} of ${bodies.length} differs from what the server sent`);
    });
  }
}, 60_000);

/** GETs `path`; reads nothing until `release` resolves, then the whole body. */
function stalled(path: string, release: Promise<void>, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: VIP, port: PLAIN_PORT });
    sock.pause();
    sock.write(`GET ${path} HTTP/1.1\r\nHost: portal\r\n\r\n`);
    const chunks: Buffer[] = [];
    let got = 0;
    void release.then(() => sock.resume());
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      const r = got > length ? parseOneResponse(Buffer.concat(chunks)) : null;
      if (r) {
        sock.destroy();
        resolve(Buffer.from(r.res.body));
      }
    });
    sock.on("error", reject);
  });
}

test("bursts to clients that stopped reading stay intact while other clients stream", async () => {
  let go!: () => void;
  const release = new Promise<void>((r) => (go = r));
  const waiting = Array.from({ length: 6 }, () => stalled("/bursts", release, BURSTS));
  // While they are stalled: other connections start streaming again and again (each takes a read buffer).
  await new Promise((r) => setTimeout(r, 1200));
  await pipelined(false, 60, false);
  go();
  for (const b of await Promise.all(waiting)) expect(b.equals(BODY.subarray(0, BURSTS))).toBe(true);
}, 60_000);

test("a client that stops reading holds the server back: the proxy queues a bounded amount, not the body", async () => {
  accepted.length = 0;
  let peakQueued = 0;
  const sampler = setInterval(() => {
    for (const s of accepted) peakQueued = Math.max(peakQueued, s.writableLength);
  }, 5);
  // Stops for 150 ms after every 3 MiB: meanwhile the server could send the rest of the body many times over.
  const bodies = await slowDownload("/cl", false, 3 * 1024 * 1024, 150).finally(() => clearInterval(sampler));
  expect(bodies[0].equals(BODY)).toBe(true);
  expect(accepted.length).toBe(1);
  // A read is at most 64 KiB; the engine stops reading the server once its write towards the client queues.
  expect(peakQueued).toBeGreaterThan(0);
  expect(peakQueued).toBeLessThanOrEqual(256 * 1024);
}, 60_000);

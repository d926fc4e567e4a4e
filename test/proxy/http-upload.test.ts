/**
 * A 200 MiB upload streams through the engine (Content-Length and chunked) without sitting in memory:
 * backpressure from a slow-reading server holds the client back. The RSS is logged; the bound asserted is
 * generous (a buffered upload would add the whole 200 MiB). Block 127.0.22.0/24.
 */
import * as http from "node:http";
import type * as net from "node:net";
import { FakeBackend, FakeVip, listenEngine, RawClient } from "./http-fake-vip";

const VIP = "127.0.22.10";
const ORIGIN = "127.0.22.11";
const PORT = 22080;
const ORIGIN_PORT = 22081;
const TOTAL = 200 * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

let origin: http.Server;
let engine: net.Server;
let vip: FakeVip;

/** A server that reads slowly (about 100 MiB/s: a 20 ms pause after every 2 MiB): without backpressure the
 * proxy would have to hold what the client sends faster than that (well over 100 MiB of the 200). */
function slowSink(): http.Server {
  return http.createServer((req, res) => {
    let n = 0;
    let mark = 0;
    req.on("data", (d: Buffer) => {
      n += d.length;
      if (n - mark >= 2 * 1048576) {
        mark = n;
        req.pause();
        setTimeout(() => req.resume(), 20);
      }
    });
    req.on("end", () => res.end(JSON.stringify({ bodyBytes: n })));
  });
}

beforeAll(async () => {
  origin = slowSink();
  await new Promise<void>((r) => origin.listen(ORIGIN_PORT, ORIGIN, r));
  vip = new FakeVip([new FakeBackend("sink", ORIGIN, ORIGIN_PORT)]);
  engine = await listenEngine(vip, { address: VIP, port: PORT } as never);
});

afterAll(async () => {
  await new Promise((r) => engine.close(r));
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});

/** Writes `total` bytes (optionally chunk-framed) with the socket's own backpressure; samples RSS meanwhile. */
async function upload(c: RawClient, total: number, chunked: boolean): Promise<void> {
  let sent = 0;
  const s = c.socket;
  while (sent < total) {
    const n = Math.min(CHUNK.length, total - sent);
    const part = n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n);
    if (chunked) {
      s.write(`${n.toString(16)}\r\n`);
      s.write(part);
    }
    const ok = s.write(chunked ? "\r\n" : part);
    sent += n;
    if (!ok) await new Promise((r) => s.once("drain", r));
  }
  if (chunked) s.write("0\r\n\r\n");
}

describe("HTTP engine: large uploads stream", () => {
  test.each([
    ["Content-Length", false],
    ["chunked", true],
  ])("a 200 MiB %s upload reaches the server whole with the proxy's memory bounded", async (_name, chunked) => {
    global.gc?.();
    const base = process.memoryUsage().rss;
    const c = await new RawClient(PORT, VIP).connected();
    c.send(
      `POST /upload HTTP/1.1\r\nHost: h\r\n${chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${TOTAL}`}\r\n\r\n`,
    );
    const t0 = Date.now();
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    await upload(c, TOTAL, !!chunked);
    const res = await c.response({ timeoutMs: 30_000 });
    clearInterval(sampler);
    const secs = (Date.now() - t0) / 1000;
    c.close();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).bodyBytes).toBe(TOTAL);
    const grew = (peak - base) / 1048576;
    // eslint-disable-next-line no-console
    console.log(`${_name} upload 200 MiB: RSS base ${(base / 1048576).toFixed(0)} MiB, peak ${(peak / 1048576).toFixed(0)} MiB (+${grew.toFixed(0)} MiB, client, engine and origin in one process), ${(200 / secs).toFixed(0)} MiB/s`);
    expect(grew).toBeLessThan(100);
  });
});

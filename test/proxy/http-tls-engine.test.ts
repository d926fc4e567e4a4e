/**
 * The two TLS sockets of the HTTP engine, case by case: TLS on Node's TLS handle (the default, tls-handles.ts)
 * and Node's tls.TLSSocket (CTERA_LB_TLS_ENGINE=streams, or a Node without the binding). Keep-alive and
 * pipelining, an upload, a clean close, a reset mid-download, plain HTTP on the TLS port, the client idle
 * timeout — the same cases and the same expectations on both. Block 127.0.33.0/24.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as net from "node:net";
import * as tls from "node:tls";
import { selfSignedCert } from "../../src/sim/portal";
import { TlsOnHandle, tlsEngine, tlsHandles } from "../../src/proxy/http/tls-handles";
import { buildSecureContext } from "../../src/proxy/http/tls";
import { createHttpHandler } from "../../src/proxy/http";
import { FakeBackend, FakeVip, listenEngine, RawClient, json, startOrigin, waitFor, type Origin } from "./http-fake-vip";

const VIP = "127.0.33.10";
const ORIGIN = "127.0.33.11";
const TLS_PORT = 33443;
const LATE_PORT = 33444;
const DIRECT_PORT = 33445;
const ORIGIN_PORT = 33081;
const BIG = Buffer.alloc(8 * 1024 * 1024, 0x61);
const cert = selfSignedCert({ cn: "engine.example.test" });

let origin: Origin;
let vip: FakeVip;
let engine: net.Server;
/** Requests the origin holds without an answer (the idle-timeout case), answered at the end. */
const hanging: (() => void)[] = [];

beforeAll(async () => {
  origin = await startOrigin("portal-1", ORIGIN, ORIGIN_PORT, (req, res) => {
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BIG.length });
      res.end(BIG);
      return true;
    }
    if (req.url === "/hang") {
      hanging.push(() => res.destroy());
      return true;
    }
    return false;
  });
  vip = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)], { timeouts: { clientIdleSeconds: 1 } });
  engine = await listenEngine(vip, { address: VIP, port: TLS_PORT, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
});

afterAll(async () => {
  for (const f of hanging.splice(0)) f();
  await new Promise((r) => engine.close(r));
  await origin.close();
});

test("the TLS handle engine is found on this Node (the binding's shape is checked at load)", () => {
  // If a Node release changes the binding, this fails here (and the proxy falls back to tls.TLSSocket).
  expect(tlsHandles).toBeDefined();
  expect(tlsEngine.mode).toBe("handles");
});

test("CTERA_LB_TLS_ENGINE=streams chooses Node's TLSSocket (the operator's way back)", () => {
  const built = join(__dirname, "..", "..", "dist", "src", "proxy", "http", "tls-handles.js");
  if (!existsSync(built)) throw new Error("build first: npx tsc (npm test does)");
  const mode = (value: string) =>
    execFileSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(built)}).tlsEngine.mode)`], { env: { ...process.env, CTERA_LB_TLS_ENGINE: value } }).toString();
  expect(mode("streams")).toBe("streams");
  expect(mode("")).toBe("handles");
});

test("TlsOnHandle: writes made while one is in flight wait, then leave together and in order; end() follows them", async () => {
  // The TLS handle takes one write at a time and completes each one later: three writes in one tick, a
  // string among them, then end().
  const context = buildSecureContext({ certFile: cert.certFile, keyFile: cert.keyFile });
  const srv = net.createServer({ allowHalfOpen: true }, (raw) => {
    const s = new TlsOnHandle(raw, context);
    s.on("error", () => undefined);
    s.on("end", () => s.destroy());
    s.on("data", () => {
      expect(s.write(Buffer.from("one,"))).toBe(true);
      expect(s.write("two,", "latin1")).toBe(true);
      expect(s.writableLength).toBe(8); // the first in flight, the second waiting
      s.write(Buffer.alloc(40_000, 0x33)); // over the high-water mark: write() said wait for 'drain'
      s.end();
    });
  });
  await new Promise<void>((resolve) => srv.listen(DIRECT_PORT, VIP, resolve));
  try {
    const c = tls.connect({ host: VIP, port: DIRECT_PORT, rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    c.on("data", (d: Buffer) => chunks.push(d));
    await new Promise<void>((resolve) => c.once("secureConnect", resolve));
    c.write("go");
    await new Promise<void>((resolve) => c.once("end", resolve));
    c.end();
    const all = Buffer.concat(chunks);
    expect(all.subarray(0, 8).toString()).toBe("one,two,");
    expect(all.length).toBe(8 + 40_000);
    expect(all.subarray(8).every((b) => b === 0x33)).toBe(true);
  } finally {
    await new Promise((resolve) => srv.close(resolve));
  }
});

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: portal.example.test\r\n${extra}\r\n`;

/** The http-connection log lines of connections from `client` (each case connects from an address of its own). */
const closedFrom = (client: string) => vip.logs.filter((l) => l.event === "http-connection" && l.client === client);

describe.each(["handles", "streams"] as const)("TLS on %s", (mode) => {
  const initial = tlsEngine.mode;
  beforeAll(() => (tlsEngine.mode = mode));
  afterAll(() => (tlsEngine.mode = initial));
  /** A client address of this engine's cases: 127.0.33.(100|150 + n). */
  const client = (n: number) => `127.0.33.${(mode === "handles" ? 100 : 150) + n}`;

  test("keep-alive: three requests on one connection, two of them pipelined in one write, answered in order", async () => {
    const c = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    c.send(GET("/one") + GET("/two"));
    expect(json(await c.response()).url).toBe("/one");
    expect(json(await c.response()).url).toBe("/two");
    c.send(GET("/three"));
    const third = await c.response();
    expect(json(third).url).toBe("/three");
    expect(third.headers["strict-transport-security"]).toEqual(["max-age=31536000"]);
    c.socket.destroy();
  });

  test("an upload of 3 MiB reaches the server whole", async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 0x62);
    const c = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    c.send(`POST /upload HTTP/1.1\r\nHost: portal.example.test\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.send(body);
    const r = await c.response({ timeoutMs: 10_000 });
    expect(r.status).toBe(200);
    expect(json(r).bodyBytes).toBe(body.length);
    c.socket.destroy();
  });

  test("Connection: close — the response in one TLS record (its head rewritten, its body with it), then a clean TLS close (close_notify and FIN: the client sees its end)", async () => {
    const s = tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", (e) => (error = e));
    await new Promise<void>((resolve) => s.once("secureConnect", resolve));
    s.write(GET("/bye", "Connection: close\r\n"));
    await new Promise<void>((resolve) => s.once("end", resolve));
    s.end();
    const text = Buffer.concat(chunks).toString("latin1");
    // A TLS client reads one record per 'data' event: the origin sent head and body in one write, and the
    // rewritten head (Connection: close) leaves with the body instead of in a record of its own.
    expect(chunks.length).toBe(1);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    expect(text).toContain('"url":"/bye"');
    expect(error).toBeUndefined();
  });

  test("a client that resets in the middle of an 8 MiB download: logged, and the next client is served", async () => {
    // TLS over a TCP socket of the test's own, so that the test can reset the TCP connection under it.
    const tcp = net.connect({ host: VIP, port: TLS_PORT, localAddress: client(1) });
    tcp.on("error", () => undefined);
    await new Promise<void>((resolve) => tcp.once("connect", resolve));
    const s = tls.connect({ socket: tcp, rejectUnauthorized: false });
    s.on("error", () => undefined);
    await new Promise<void>((resolve) => s.once("secureConnect", resolve));
    s.write(GET("/big"));
    let got = 0;
    await new Promise<void>((resolve) =>
      s.on("data", (d: Buffer) => {
        got += d.length;
        if (got > 256 * 1024) resolve();
      }),
    );
    tcp.resetAndDestroy();
    await waitFor(() => closedFrom(client(1)).length === 1, 5000, "the reset connection's log line");
    const line = closedFrom(client(1))[0];
    expect(String(line.reason)).toMatch(/ECONNRESET|EPIPE|client error/);
    expect(line.bytesOut as number).toBeLessThan(BIG.length);
    expect(line.requests).toBe(1);
    const next = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    next.send(GET("/after-reset"));
    expect(json(await next.response()).url).toBe("/after-reset");
    next.socket.destroy();
  });

  test("plain HTTP sent to the TLS port: the connection closes with the TLS error logged, the listener lives on", async () => {
    const raw = net.connect({ host: VIP, port: TLS_PORT, localAddress: client(2) });
    raw.on("error", () => undefined);
    raw.write(GET("/plain-on-tls"));
    await new Promise<void>((resolve) => raw.once("close", () => resolve()));
    await waitFor(() => closedFrom(client(2)).length === 1, 3000, "the refused connection's log line");
    expect(String(closedFrom(client(2))[0].reason)).toMatch(/client error: .*(SSL|WRONG_VERSION|HTTP_REQUEST)/i);
    const next = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    next.send(GET("/after-plain"));
    expect(json(await next.response()).url).toBe("/after-plain");
    next.socket.destroy();
  });

  test("a connection handed to the engine only after its ClientHello arrived (it waited in the admission queue): nothing is lost", async () => {
    // The core's queue holds an accepted socket that already reads; its first bytes sit in the socket's buffer.
    const handler = createHttpHandler({ address: VIP, port: LATE_PORT, tls: { certFile: cert.certFile, keyFile: cert.keyFile } }, vip);
    const late = net.createServer({ allowHalfOpen: true, noDelay: true }, (raw) => {
      const waitForHello = () => (raw.readableLength > 0 ? handler(raw) : setTimeout(waitForHello, 5));
      waitForHello();
    });
    await new Promise<void>((resolve) => late.listen(LATE_PORT, VIP, resolve));
    try {
      const c = await new RawClient(LATE_PORT, VIP, undefined, {}).connected();
      c.send(GET("/late"));
      expect(json(await c.response()).url).toBe("/late");
      c.socket.destroy();
    } finally {
      await new Promise((resolve) => late.close(resolve));
    }
  });

  test("a response that does not come: the client idle timeout (1 s here) ends the connection", async () => {
    const c = await new RawClient(TLS_PORT, VIP, client(3), {}).connected();
    c.send(GET("/hang"));
    await waitFor(() => c.closed, 5000, "the close after the idle timeout");
    await waitFor(() => closedFrom(client(3)).length === 1, 3000, "the idle connection's log line");
    expect(closedFrom(client(3))[0]).toMatchObject({ reason: "client idle timeout", requests: 1, bytesOut: 0 });
  });
});

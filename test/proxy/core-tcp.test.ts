/**
 * The TCP byte pipe: half-close, PROXY v2, source address, port translation, the per-VIP connection limit
 * and its queue, idle timeouts, backpressure, resets. Every case runs on both relays: on the TCP handles (the
 * default, tcp-handles.ts) and on the sockets' streams (TLS clients, or a Node without the binding). Block
 * 127.0.15.0/24 with small hand-written servers; clients 127.0.115.x.
 */
import * as net from "node:net";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { validateRuntimeConfig } from "../../src/config";
import type { RuntimeConfigInput } from "../../src/config";
import { startProxy, ProxyHandle, proxyV2Header } from "../../src/proxy";
import { logCapture } from "../helpers/proxy";
import { pooledReadBuffers } from "../../src/proxy/buffers";
import { handles, lent, tcpRelay } from "../../src/proxy/tcp-handles";
import { tcpConnect, waitFor } from "../helpers/net";

const VIP = "127.0.15.10";
const SRV = "127.0.15.11";
const CLIENT = "127.0.115.1";
type VsIn = RuntimeConfigInput["virtualServices"][number];

function config(port: number, vs: Partial<VsIn> = {}) {
  return validateRuntimeConfig({
    version: 1,
    virtualServices: [
      {
        name: "T",
        mode: "tcp",
        listeners: [{ address: VIP, port }],
        realServers: [{ name: "s1", address: SRV }],
        healthCheck: { type: "connect", intervalMs: 1000, timeoutMs: 900, fall: 3 },
        ...vs,
      },
    ],
    admin: { address: "127.0.15.1", port: 19015 },
  });
}

/** A server on SRV:port; `onConn` gets every accepted socket. */
const serverSockets = new WeakMap<net.Server, Set<net.Socket>>();
async function server(port: number, onConn: (s: net.Socket) => void): Promise<net.Server> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.once("close", () => socks.delete(s));
    s.on("error", () => undefined);
    onConn(s);
  });
  serverSockets.set(srv, socks);
  await new Promise<void>((r) => srv.listen(port, SRV, () => r()));
  return srv;
}

const closeServer = (s: net.Server) =>
  new Promise<void>((r) => {
    s.close(() => r());
    for (const c of serverSockets.get(s) ?? []) c.destroy();
  });

function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
  });
}

test("the handle relay is found on this Node (the binding's shape is checked at load)", () => {
  // If a Node release changes the binding, this fails here (and the proxy falls back to the streams).
  expect(handles).toBeDefined();
  expect(tcpRelay.mode).toBe("handles");
});

const BUILT = join(__dirname, "..", "..", "dist", "src", "proxy", "tcp-handles.js");

test("CTERA_LB_TCP_RELAY=streams chooses the socket relay (the operator's way back)", () => {
  const mode = (env: Record<string, string>) =>
    execFileSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(BUILT)}).tcpRelay.mode)`], { env: { ...process.env, ...env } }).toString();
  if (!existsSync(BUILT)) throw new Error("build first: npx tsc (npm test does)");
  expect(mode({ CTERA_LB_TCP_RELAY: "streams" })).toBe("streams");
  expect(mode({ CTERA_LB_TCP_RELAY: "" })).toBe("handles");
});

describe.each(["handles", "streams"] as const)("TCP pipe, relay on the %s", (mode) => {
  const initial = tcpRelay.mode;
  beforeAll(() => (tcpRelay.mode = mode));
  afterAll(() => (tcpRelay.mode = initial));
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  const track = async (p: ProxyHandle) => (open.push(p), p);
  const trackSrv = (s: net.Server) => (open.push({ close: () => closeServer(s) }), s);

  test("passes a half-close through: the client's FIN reaches the server, the server's answer still reaches the client", async () => {
    trackSrv(await server(31001, (s) => {
      let n = 0;
      s.on("data", (d: Buffer) => (n += d.length));
      s.on("end", () => s.end(`got ${n} bytes after your FIN`));
    }));
    await track(await startProxy(config(31001), { log: () => undefined, admin: false }));
    const c = net.connect({ host: VIP, port: 31001, localAddress: CLIENT, allowHalfOpen: true });
    const all = readAll(c);
    c.end("hello");
    expect((await all).toString()).toBe("got 5 bytes after your FIN");
  });

  test("moves 24 MiB each way intact (backpressure, both directions at once)", async () => {
    trackSrv(await server(31002, (s) => s.pipe(s)));
    await track(await startProxy(config(31002), { log: () => undefined, admin: false }));
    const c = await tcpConnect(VIP, 31002, CLIENT);
    const payload = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    const back = readAll(c);
    c.end(payload);
    const got = await back;
    expect(got.length).toBe(payload.length);
    expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(payload).digest("hex"));
  });

  test("sends a PROXY v2 header naming the client and the VIP when clientIp is proxy-v2", async () => {
    let header: Buffer | undefined;
    trackSrv(await server(31003, (s) => s.once("data", (d: Buffer) => { header = d; s.end(); })));
    await track(await startProxy(config(31003, { clientIp: "proxy-v2" }), { log: () => undefined, admin: false }));
    const c = await tcpConnect(VIP, 31003, CLIENT);
    const clientPort = c.localPort!;
    await readAll(c);
    expect(header!.subarray(0, 16).toString("hex")).toBe("0d0a0d0a000d0a515549540a" + "21" + "11" + "000c");
    expect([...header!.subarray(16, 20)].join(".")).toBe(CLIENT);
    expect([...header!.subarray(20, 24)].join(".")).toBe(VIP);
    expect(header!.readUInt16BE(24)).toBe(clientPort);
    expect(header!.readUInt16BE(26)).toBe(31003);
    expect(proxyV2Header("2001:db8::1", 1, "::ffff:192.0.2.1", 2).subarray(16, 48).toString("hex")).toBe(
      "20010db8000000000000000000000001" + "00000000000000000000ffffc0000201",
    );
  });

  test("connects from sourceAddress and to the translated port when set", async () => {
    let seen = "";
    trackSrv(await server(31014, (s) => { seen = `${s.remoteAddress}`; s.end(); }));
    await track(await startProxy(config(31004, { sourceAddress: "127.0.15.5", realServers: [{ name: "s1", address: SRV, port: 31014 }] }), { log: () => undefined, admin: false }));
    const c = await tcpConnect(VIP, 31004, CLIENT);
    await readAll(c);
    expect(seen).toBe("127.0.15.5");
  });

  test("over maxConnections a client waits in the queue for a free slot, and is closed after queueMs without one", async () => {
    trackSrv(await server(31005, (s) => {
      s.write("hi\n");
      s.on("end", () => s.end());
    }));
    const logs = logCapture();
    await track(await startProxy(config(31005, { maxConnections: 2, timeouts: { queueMs: 400 } }), { log: logs.sink, admin: false }));
    const first = (s: net.Socket) => new Promise<string>((r) => s.once("data", (d: Buffer) => r(d.toString())));
    const a = await tcpConnect(VIP, 31005, CLIENT);
    const b = await tcpConnect(VIP, 31005, CLIENT);
    expect(await first(a)).toBe("hi\n");
    expect(await first(b)).toBe("hi\n");
    const c = await tcpConnect(VIP, 31005, CLIENT);
    let cGot = "";
    c.on("data", (d: Buffer) => (cGot += d.toString()));
    await new Promise((r) => setTimeout(r, 150));
    expect(cGot).toBe(""); // held, not served, not closed
    a.destroy();
    expect(await waitFor(() => cGot === "hi\n", 2000)).toBe(true);
    const d = await tcpConnect(VIP, 31005, CLIENT);
    d.on("error", () => undefined);
    await new Promise((r) => d.once("close", r)); // no slot within queueMs
    expect(logs.lines().some((l) => l.event === "rejected" && l.reason === "queue-timeout")).toBe(true);
    b.destroy();
    c.destroy();
  });

  test("closes a connection idle longer than the client idle timeout and logs the reason", async () => {
    trackSrv(await server(31006, () => undefined));
    const logs = logCapture();
    await track(await startProxy(config(31006, { timeouts: { clientIdleSeconds: 1, serverIdleSeconds: 60 } }), { log: logs.sink, admin: false }));
    const c = await tcpConnect(VIP, 31006, CLIENT);
    c.on("error", () => undefined);
    await new Promise((r) => c.once("close", r));
    await waitFor(() => logs.lines().some((l) => l.event === "connection"), 1000);
    expect(logs.lines().find((l) => l.event === "connection")).toMatchObject({ reason: "client-idle", server: "s1", vip: "T", port: 31006 });
  });

  test("a connection that keeps talking outlives the idle timeout; the quiet one after it is closed", async () => {
    trackSrv(await server(31007, (s) => s.on("data", (d: Buffer) => s.write(d))));
    const logs = logCapture();
    await track(await startProxy(config(31007, { timeouts: { clientIdleSeconds: 1, serverIdleSeconds: 60 } }), { log: logs.sink, admin: false }));
    const c = await tcpConnect(VIP, 31007, CLIENT);
    c.on("error", () => undefined);
    let echoed = 0;
    c.on("data", (d: Buffer) => (echoed += d.length));
    let closed = false;
    c.once("close", () => (closed = true));
    // 2.4 s of traffic, a byte every 300 ms: longer than the 1 s timeout, never 1 s quiet.
    for (let i = 0; i < 8; i++) {
      c.write("x");
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(closed).toBe(false);
    expect(echoed).toBe(8);
    await waitFor(() => closed, 3000);
    expect(closed).toBe(true);
    await waitFor(() => logs.lines().some((l) => l.event === "connection"), 1000);
    expect(logs.lines().find((l) => l.event === "connection")).toMatchObject({ reason: "client-idle", bytesIn: 8, bytesOut: 8 });
  });

  test("a client that stops reading holds the server back (backpressure), then gets every byte intact", async () => {
    // 64 MiB: more than the kernel's socket buffers on the way can hold (a few MiB each on loopback).
    const total = 64 * 1024 * 1024;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i += 4) payload.writeUInt32LE(i * 7, i);
    const srvSocks: net.Socket[] = []; // the relayed connection's, and the health checks' (connect and close)
    trackSrv(await server(31008, (s) => { srvSocks.push(s); s.end(payload); }));
    const held = () => Math.max(0, ...srvSocks.map((s) => s.writableLength));
    await track(await startProxy(config(31008), { log: () => undefined, admin: false }));
    const c = await tcpConnect(VIP, 31008, CLIENT);
    c.pause();
    await waitFor(() => held() > 0, 3000);
    await new Promise((r) => setTimeout(r, 300));
    // The proxy stopped taking bytes from the server: most of the 64 MiB still waits in the server's socket
    // (a relay without backpressure would have read it all into its own memory).
    expect(held()).toBeGreaterThan(total / 4);
    const all = readAll(c);
    c.resume();
    const got = await all;
    expect(got.length).toBe(total);
    expect(got.equals(payload)).toBe(true);
    await waitFor(() => lent.buffers === 0, 2000);
    expect(lent.buffers).toBe(0);
    const pool = pooledReadBuffers();
    expect(new Set(pool).size).toBe(pool.length); // no buffer in the pool twice
  });

  test("a client's reset closes the server side and logs client-error ECONNRESET", async () => {
    let serverClosed = false;
    trackSrv(await server(31009, (s) => {
      s.write("hi\n");
      s.once("close", () => (serverClosed = true));
    }));
    const logs = logCapture();
    await track(await startProxy(config(31009), { log: logs.sink, admin: false }));
    const c = await tcpConnect(VIP, 31009, CLIENT);
    await new Promise((r) => c.once("data", r));
    c.resetAndDestroy();
    await waitFor(() => serverClosed, 3000);
    expect(serverClosed).toBe(true);
    await waitFor(() => logs.lines().some((l) => l.event === "connection"), 1000);
    expect(logs.lines().find((l) => l.event === "connection")).toMatchObject({ reason: "client-error", detail: "ECONNRESET", server: "s1" });
  });

  test("a server's reset closes the client side and logs server-error ECONNRESET", async () => {
    trackSrv(await server(31011, (s) => s.once("data", () => s.resetAndDestroy())));
    const logs = logCapture();
    await track(await startProxy(config(31011), { log: logs.sink, admin: false }));
    const c = await tcpConnect(VIP, 31011, CLIENT);
    c.on("error", () => undefined);
    c.write("hello");
    await new Promise((r) => c.once("close", r));
    await waitFor(() => logs.lines().some((l) => l.event === "connection"), 1000);
    expect(logs.lines().find((l) => l.event === "connection")).toMatchObject({ reason: "server-error", detail: "ECONNRESET", server: "s1", bytesIn: 5 });
  });

  test("closing the proxy while a server is sending closes the server side too (nothing written into a closed socket)", async () => {
    let serverClosed = false;
    trackSrv(await server(31010, (s) => {
      const t = setInterval(() => s.write("tick\n"), 5);
      s.once("close", () => {
        clearInterval(t);
        serverClosed = true;
      });
    }));
    const p = await startProxy(config(31010), { log: () => undefined, admin: false });
    const c = await tcpConnect(VIP, 31010, CLIENT);
    c.on("error", () => undefined);
    await new Promise((r) => c.once("data", r));
    await p.close(); // closes the client sockets; the server keeps sending
    await waitFor(() => serverClosed, 3000);
    expect(serverClosed).toBe(true);
  });
});

test("relay on the handles: reads of one size after a write had to wait each carry their own bytes (a reused view never points at a queued buffer)", async () => {
  // The relay reuses its last short view of the read buffer while reads keep the same size; a write that
  // queues keeps that buffer and the next read goes into a fresh one, so the view must not be reused then.
  expect(tcpRelay.mode).toBe("handles");
  let srvSock: net.Socket | undefined;
  const got: Buffer[] = [];
  const srv = await server(31015, (s) => {
    if (srvSock) return; // health checks connect and close
    srvSock = s;
    s.pause(); // reads nothing until the client is done: the proxy's writes to it queue
    s.on("data", (d: Buffer) => got.push(d));
  });
  const proxy = await startProxy(config(31015), { log: () => undefined, admin: false });
  try {
    const c = await tcpConnect(VIP, 31015, CLIENT);
    const sent: Buffer[] = [];
    const send = (b: Buffer) => (sent.push(b), c.write(b));
    // Fill the kernel's buffers towards the server until a write of the proxy's has to wait.
    for (let i = 0; lent.buffers === 0 && i < 2048; i++) {
      send(Buffer.alloc(65536, i % 251));
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(lent.buffers).toBeGreaterThan(0);
    // 100 messages of 100 bytes, each its own read (the proxy runs in this process: a timer between them lets
    // it read each one), each relayed by a write that waits.
    for (let i = 0; i < 100; i++) {
      send(Buffer.from(`message ${String(i).padStart(3, "0")} `.padEnd(100, String.fromCharCode(65 + (i % 26)))));
      await new Promise((r) => setTimeout(r, 2));
    }
    const total = sent.reduce((n, b) => n + b.length, 0);
    srvSock!.resume();
    await waitFor(() => got.reduce((n, b) => n + b.length, 0) >= total, 10_000);
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
    c.destroy();
  } finally {
    await proxy.close();
    await closeServer(srv);
  }
});

/**
 * The TCP byte pipe: half-close, PROXY v2, source address, port translation, the per-VIP connection limit
 * and its queue, idle timeouts. Block 127.0.15.0/24 with small hand-written servers; clients 127.0.115.x.
 */
import * as net from "node:net";
import { createHash } from "node:crypto";
import { validateRuntimeConfig } from "../../src/config";
import type { RuntimeConfigInput } from "../../src/config";
import { startProxy, ProxyHandle, proxyV2Header } from "../../src/proxy";
import { logCapture } from "../helpers/proxy";
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

describe("TCP pipe", () => {
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
});

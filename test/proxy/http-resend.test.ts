/**
 * A Portal server that dies with a request in flight, through the real core (pool with retries, persistence,
 * no health check has noticed yet): an idempotent request without a body is sent again and answered by
 * another server; a POST is not sent twice (502). Block 127.0.29.0/24 (.10 VIP, .11-.12 servers, clients
 * 127.0.129.x).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { validateRuntimeConfig } from "../../src/config";
import { startProxy, type ProxyHandle } from "../../src/proxy";
import { RawClient, waitFor, json } from "./http-fake-vip";

const VIP = "127.0.29.10";
const SERVERS = ["127.0.29.11", "127.0.29.12"];
const PORT = 29080;
const client = (n: number) => `127.0.129.${n}`;

interface Origin {
  name: string;
  server: http.Server;
  /** Every connection the origin accepted (close() resets them all, also ones a test handles itself). */
  sockets: Set<import("node:net").Socket>;
  held: http.ServerResponse[];
  seen: string[];
  close(): Promise<void>;
}

/** An origin that answers JSON naming itself; a holding one never answers /hold. */
async function origin(name: string, address: string, holds: boolean): Promise<Origin> {
  const sockets = new Set<import("node:net").Socket>();
  const o: Origin = { name, server: http.createServer(), sockets, held: [], seen: [], close: async () => undefined };
  o.server.on("connection", (s) => (sockets.add(s), s.on("close", () => sockets.delete(s))));
  o.server.on("request", (req, res) => {
    req.resume();
    req.on("end", () => {
      o.seen.push(`${req.method} ${req.url}`);
      if (holds && req.url === "/hold") return void o.held.push(res);
      const body = JSON.stringify({ server: name, method: req.method, url: req.url });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => o.server.listen(PORT, address, r));
  o.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy(); // like a killed process: its connections reset
      o.server.close(() => r());
    });
  return o;
}

let origins: Origin[];
let proxy: ProxyHandle;
let config: ReturnType<typeof validateRuntimeConfig>;

beforeEach(async () => {
  origins = await Promise.all(SERVERS.map((a, i) => origin(`portal-${i + 1}`, a, i === 0)));
  const cfg = (config = validateRuntimeConfig({
    version: 1,
    virtualServices: [
      {
        name: "WEB",
        mode: "http",
        listeners: [{ address: VIP, port: PORT }],
        realServers: SERVERS.map((address, i) => ({ name: `portal-${i + 1}`, address })),
        // Checks far apart: the tests are about what happens before any check notices.
        healthCheck: { type: "connect", intervalMs: 60000, rise: 1, fall: 1 },
        clientIp: "x-forwarded-for",
      },
    ],
    admin: { address: "127.0.29.1", port: 19129 },
  }));
  proxy = await startProxy(cfg, { log: (l) => void (process.env.DEBUG_RESEND && process.stderr.write(l)), admin: false });
});

afterEach(async () => {
  await proxy.close();
  await Promise.all(origins.map((o) => o.close()));
});

/** A client address that the proxy places on `server` (the rendezvous choice), and that server's origin. */
function clientOn(server: string): string {
  for (let n = 1; n < 250; n++) if (proxy.core.pools.get("WEB")!.choose(client(n))?.name === server) return client(n);
  throw new Error(`no client address lands on ${server}`);
}

test("a GET in flight when its server dies is sent again and answered by the other server", async () => {
  const from = clientOn("portal-1");
  const c = await new RawClient(PORT, VIP, from).connected();
  c.send("GET /hold HTTP/1.1\r\nHost: portal.example\r\n\r\n");
  await waitFor(() => origins[0].held.length === 1);
  await origins[0].close();
  const res = await c.response();
  expect(res.status).toBe(200);
  expect(json(res)).toMatchObject({ server: "portal-2", method: "GET", url: "/hold" });
  // The client stays with its new server.
  c.send("GET /next HTTP/1.1\r\nHost: portal.example\r\n\r\n");
  expect(json(await c.response()).server).toBe("portal-2");
  expect(proxy.pinned("WEB", from)).toBe("portal-2");
  c.close();
});

test("a POST in flight when its server dies gets a 502 and is not delivered a second time", async () => {
  const from = clientOn("portal-1");
  const c = await new RawClient(PORT, VIP, from).connected();
  c.send("POST /hold HTTP/1.1\r\nHost: portal.example\r\nContent-Length: 0\r\n\r\n");
  await waitFor(() => origins[0].held.length === 1);
  await origins[0].close();
  expect((await c.response()).status).toBe(502);
  expect(origins[1].seen).toEqual([]);
  c.close();
});

test("a GET whose second try meets the dying server again (accepted, then reset) goes to the other server the third time", async () => {
  const from = clientOn("portal-1");
  const c = await new RawClient(PORT, VIP, from).connected();
  c.send("GET /hold HTTP/1.1\r\nHost: portal.example\r\n\r\n");
  await waitFor(() => origins[0].held.length === 1);
  // portal-1 is going away but still accepts: every request it takes is answered with a reset (a process
  // being killed: the connection was established, the request sent, then the socket is gone).
  let resetConns = 0;
  origins[0].server.removeAllListeners("request");
  origins[0].server.removeAllListeners("connection");
  origins[0].server.on("connection", (s: import("node:net").Socket) => {
    origins[0].sockets.add(s);
    s.on("close", () => origins[0].sockets.delete(s));
    s.once("data", () => {
      resetConns++;
      s.resetAndDestroy();
    });
  });
  for (const res of origins[0].held) res.socket?.resetAndDestroy();
  const res = await c.response();
  expect(res.status).toBe(200);
  expect(json(res)).toMatchObject({ server: "portal-2", method: "GET", url: "/hold" });
  expect(resetConns).toBe(1); // the second try went to portal-1 (persistence) and was reset there
  expect(origins[1].seen).toEqual(["GET /hold"]); // the third went to portal-2, once
  expect(proxy.pinned("WEB", from)).toBe("portal-2");
  c.close();
});

/** One request from a client placed on `server`; the proxy then keeps that server connection idle in its pool. */
async function poolOne(server: string): Promise<void> {
  const c = await new RawClient(PORT, VIP, clientOn(server)).connected();
  c.send("GET /a HTTP/1.1\r\nHost: portal.example\r\n\r\n");
  expect(json(await c.response()).server).toBe(server);
  c.close();
}

test("closing the proxy closes its idle keep-alive connections to the servers (no socket left behind)", async () => {
  await poolOne("portal-2");
  // The proxy keeps its server connection for the next request: the origin still has it open.
  await new Promise((r) => setTimeout(r, 100));
  expect(origins[1].sockets.size).toBe(1);
  await proxy.close();
  await waitFor(() => origins[1].sockets.size === 0, 3000, "the origin's connections to close");
});

test("a reload that removes a server closes the idle keep-alive connections to it at once; the other server keeps its", async () => {
  await poolOne("portal-1");
  await poolOne("portal-2");
  await new Promise((r) => setTimeout(r, 100));
  expect(origins.map((o) => o.sockets.size)).toEqual([1, 1]);
  const next = JSON.parse(JSON.stringify(config));
  next.virtualServices[0].realServers = next.virtualServices[0].realServers.filter((s: { name: string }) => s.name !== "portal-2");
  await proxy.reload(next);
  // Without the prune the pooled connection would stay until its 30 s idle timeout.
  await waitFor(() => origins[1].sockets.size === 0, 3000, "the removed server's idle connection to close");
  expect(origins[0].sockets.size).toBe(1);
});

/** VIP config as reloaded after `change`. */
type VsChange = (vs: { name: string; mode: string; clientIp: string; listeners: unknown[]; realServers: { name: string }[] }) => void;

/** portal-2's idle pooled connection must close once `change` is reloaded. */
async function idleAcrossReload(change: VsChange): Promise<void> {
  await poolOne("portal-2");
  await new Promise((r) => setTimeout(r, 100));
  expect(origins[1].sockets.size).toBe(1);
  const next = JSON.parse(JSON.stringify(config));
  change(next.virtualServices[0]);
  await proxy.reload(next);
  await waitFor(() => origins[1].sockets.size === 0, 3000, "the idle connection to close");
}

test("a reload that removes the VIP closes its idle keep-alive connections to the servers", async () => {
  await idleAcrossReload((vs) => {
    vs.name = "WEB-NEXT";
    vs.listeners = [{ address: VIP, port: PORT + 1 }];
  });
});

test("a reload that turns the VIP to TCP mode closes its idle HTTP keep-alive connections to the servers", async () => {
  await idleAcrossReload((vs) => {
    vs.mode = "tcp";
    vs.clientIp = "none";
  });
});

/** A request held by portal-1 while `change` is reloaded; then answered: its connection must close, not be pooled. */
async function busyAcrossReload(change: VsChange): Promise<void> {
  const c = await new RawClient(PORT, VIP, clientOn("portal-1")).connected();
  c.send("GET /hold HTTP/1.1\r\nHost: portal.example\r\n\r\n");
  await waitFor(() => origins[0].held.length === 1);
  const next = JSON.parse(JSON.stringify(config));
  change(next.virtualServices[0]);
  await proxy.reload(next);
  const body = JSON.stringify({ server: "portal-1", method: "GET", url: "/hold" });
  origins[0].held[0].writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  origins[0].held[0].end(body);
  expect(json(await c.response()).server).toBe("portal-1");
  c.close();
  await waitFor(() => origins[0].sockets.size === 0, 3000, "the connection to close after its response");
}

test("a connection busy with a response when a reload removes its server is closed when the response ends, not pooled", async () => {
  await busyAcrossReload((vs) => (vs.realServers = vs.realServers.filter((s) => s.name !== "portal-1")));
});

test("a connection busy with a response when a reload removes its VIP is closed when the response ends, not pooled", async () => {
  await busyAcrossReload((vs) => {
    vs.name = "WEB-NEXT";
    vs.listeners = [{ address: VIP, port: PORT + 1 }];
  });
});

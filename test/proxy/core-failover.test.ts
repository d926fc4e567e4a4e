/**
 * Health checks and failover of a TCP VIP. Block 127.0.11.0/24, clients from 127.0.111.x.
 * Intervals are shortened (500 ms, rise 2, fall 2) so a state change takes about a second.
 */
import * as net from "node:net";
import { startProxy, ProxyHandle } from "../../src/proxy";
import { startSimPortal, SimPortal } from "../../src/sim/portal";
import { block, logCapture, startPortals, tcpConfig } from "../helpers/proxy";
import { sleep, tlsFirstLine, waitFor, whoAnswers } from "../helpers/net";

const b = block(11);
const INTERVAL = 500; // check timeout 450 ms: a loaded 2-core machine must not fail checks spuriously
const hc = (extra: Record<string, unknown> = {}) => ({ type: "https-get" as const, port: b.ports.https, path: "/admin/startup", intervalMs: INTERVAL, timeoutMs: 450, rise: 2, fall: 2, ...extra });

type Srv = { name: string; state: string; health: string; lastCheck: { ok: boolean; detail: string } | null };
const server = (p: ProxyHandle, name: string): Srv =>
  ((p.status().virtualServices as { servers: Srv[] }[])[0].servers).find((s) => s.name === name)!;

describe("health checks", () => {
  let portals: SimPortal[];
  beforeAll(async () => {
    portals = await startPortals(b);
  });
  afterAll(async () => {
    await Promise.all(portals.map((p) => p.stop()));
  });

  test("GET /admin/startup carries the configured Host header and SNI", async () => {
    const proxy = await startProxy(tcpConfig(b, { healthCheck: hc({ host: "global.portal.example.test" }) }), { log: () => undefined, admin: false });
    try {
      await waitFor(() => portals[0].healthRequests.length >= 2, 3000);
      const r = portals[0].healthRequests[portals[0].healthRequests.length - 1];
      expect(r).toMatchObject({ method: "GET", path: "/admin/startup", host: "global.portal.example.test", sni: "global.portal.example.test", port: b.ports.https });
    } finally {
      await proxy.close();
    }
  });

  test("without a configured host, Host is the server address and no SNI is sent (an IP is not a server name)", async () => {
    const seen = portals[1].healthRequests.length;
    const proxy = await startProxy(tcpConfig(b, { healthCheck: hc() }), { log: () => undefined, admin: false });
    try {
      // A check of the previous test's proxy may still land after it closed (it names the configured host):
      // look at the new proxy's requests, the ones with the server address as Host.
      const ours = () => portals[1].healthRequests.slice(seen).filter((q) => q.host !== "global.portal.example.test");
      await waitFor(() => ours().length > 0, 3000);
      const r = ours()[0];
      expect(r.host).toBe(`${b.servers[1]}:${b.ports.https}`);
      expect(r.sni).toBeFalsy();
    } finally {
      await proxy.close();
    }
  });

  test("a 503 from /admin/startup takes the server DOWN after fall checks, closes its sessions, and 200 brings it back after rise", async () => {
    const proxy = await startProxy(tcpConfig(b, { healthCheck: hc() }), { log: () => undefined, admin: false });
    try {
      await waitFor(() => server(proxy, "portal-3").lastCheck?.ok === true, 3000);
      // An open CTTP-like session on portal-3.
      let ip = "";
      for (let n = 1; n < 100 && !ip; n++) if (proxy.core.pools.get("CTERA_Portal")!.choose(b.client(n))?.name === "portal-3") ip = b.client(n);
      const { line, socket } = await tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: ip, close: false });
      expect(line).toBe("portal portal-3");
      const closed = new Promise<void>((r) => socket.once("close", () => r()));
      socket.on("error", () => undefined);

      portals[2].setStartupStatus(503);
      expect(await waitFor(() => server(proxy, "portal-3").state === "DOWN", 5000)).toBe(true);
      expect(server(proxy, "portal-3").lastCheck?.ok).toBe(false);
      await closed; // shutdownSessionsOnDown: its open session was closed so the client reconnects elsewhere
      expect(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp")).not.toBe("portal-3");

      portals[2].setStartupStatus(200);
      expect(await waitFor(() => server(proxy, "portal-3").state === "UP", 5000)).toBe(true);
      const ev = (proxy.status().events as { server: string; from: string; to: string; reason: string }[]).filter((e) => e.server === "portal-3");
      expect(ev.map((e) => `${e.from}>${e.to}`)).toEqual(["UP>DOWN", "DOWN>UP"]);
      expect(ev[0].reason).toMatch(/^(HTTP 503|timeout after \d+ ms) x2$/);
    } finally {
      portals[2].setStartupStatus(200);
      await proxy.close();
    }
  });
});

describe("failover when a server dies", () => {
  let portals: SimPortal[];
  let proxy: ProxyHandle;
  const logs = logCapture();
  beforeAll(async () => {
    portals = await startPortals(b);
    proxy = await startProxy(tcpConfig(b, { healthCheck: hc(), timeouts: { connectMs: 1000 } }), { log: logs.sink, admin: false });
    await waitFor(() => ["portal-1", "portal-2", "portal-3"].every((n) => server(proxy, n).lastCheck?.ok), 3000);
  });
  afterAll(async () => {
    await proxy.close();
    await Promise.all(portals.map((p) => p.stop()));
  });

  test("500+ connections across the kill: none fails (connect retries), the dead server is DOWN after fall x interval and no longer tried, and it returns after rise x interval", async () => {
    const failures: string[] = [];
    const answered: { at: number; who: string }[] = [];
    let killedAt = 0;
    // At least 500 connections, and on until 100 have gone after the server was taken DOWN (a fast machine gets
    // through 350 before fall x interval has passed); bounded at 5000.
    const isDown = () => server(proxy, "portal-2").state === "DOWN";
    let afterDown = 0;
    for (let i = 0; i < 5000 && (i < 500 || afterDown < 100); i++) {
      if (killedAt && isDown()) afterDown++;
      if (i === 150) {
        await portals[1].stop();
        killedAt = Date.now();
      }
      const ip = b.client((i % 120) + 1);
      try {
        answered.push({ at: Date.now(), who: await whoAnswers(b.vip, b.ports.cttp, ip, "cttp") });
      } catch (e) {
        failures.push(`${i} ${ip}: ${(e as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
    expect(answered.filter((a) => a.at < killedAt).some((a) => a.who === "portal-2")).toBe(true);
    expect(answered.filter((a) => a.at >= killedAt).some((a) => a.who === "portal-2")).toBe(false);

    // DOWN after fall x interval, then never tried again.
    const events = () => proxy.status().events as { at: string; server: string; to: string; reason: string }[];
    const down = events().find((e) => e.server === "portal-2" && e.to === "DOWN");
    expect(down?.reason).toBe("ECONNREFUSED x2"); // fall (2) failed checks
    expect(Date.parse(down!.at)).toBeLessThan(answered[answered.length - 1].at); // it happened inside the loop
    await sleep(20);
    const triedAfterDown = logs.lines().filter((l) => l.event === "connect-failed" && l.server === "portal-2" && Date.parse(l.time as string) > Date.parse(down!.at));
    expect(triedAfterDown).toEqual([]);
    expect(logs.lines().some((l) => l.event === "connect-failed" && l.server === "portal-2")).toBe(true); // retries did happen

    // Back: the server restarts, rise x interval later it is UP and new clients reach it.
    portals[1] = await startSimPortal({ name: "portal-2", address: b.servers[1], ports: { https: b.ports.https, https2: b.ports.https2, cttp: b.ports.cttp, http: 0, http2: 0 } });
    expect(await waitFor(() => server(proxy, "portal-2").state === "UP", 5000)).toBe(true);
    expect(events().find((e) => e.server === "portal-2" && e.to === "UP")?.reason).toBe("HTTP 200 x2"); // rise (2) passes
    const fresh = new Set<string>();
    for (let n = 200; n < 260; n++) fresh.add(await whoAnswers(b.vip, b.ports.cttp, b.client(n), "cttp"));
    expect(fresh.has("portal-2")).toBe(true);
  });

  test("with no server up a connection is closed at once, never left hanging", async () => {
    for (const n of ["portal-1", "portal-2", "portal-3"]) proxy.setServerState("CTERA_Portal", n, "halt");
    try {
      const s = net.connect({ host: b.vip, port: b.ports.cttp, localAddress: b.client(300) });
      s.on("error", () => undefined);
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        new Promise((r) => s.once("close", () => r("closed"))),
        new Promise((r) => (timer = setTimeout(() => r("hanging"), 2000))),
      ]);
      clearTimeout(timer);
      s.destroy();
      expect(closed).toBe("closed");
      expect(logs.lines().some((l) => l.event === "connection" && l.reason === "no-server")).toBe(true);
    } finally {
      for (const n of ["portal-1", "portal-2", "portal-3"]) proxy.setServerState("CTERA_Portal", n, "online");
    }
  });
});

/**
 * Placement and source-IP persistence of a TCP VIP (ssl-on-portal shape). Block 127.0.10.0/24, clients from
 * 127.0.110.x / 127.0.111.x.
 */
import { startProxy, ProxyHandle } from "../../src/proxy";
import { startSimPortal, SimPortal } from "../../src/sim/portal";
import { block, logCapture, startPortals, tcpConfig } from "../helpers/proxy";
import { sleep, whoAnswers } from "../helpers/net";

const b = block(10);

describe("TCP VIP placement and persistence", () => {
  let portals: SimPortal[];
  let proxy: ProxyHandle;
  const logs = logCapture();

  beforeAll(async () => {
    portals = await startPortals(b);
    proxy = await startProxy(tcpConfig(b, { healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, rise: 2, fall: 3 } }), { log: logs.sink });
  });
  afterAll(async () => {
    await proxy.close();
    await Promise.all(portals.map((p) => p.stop()));
  });

  test("spreads 240 new clients over three equal servers, each within ±35% of a third (80 ± 28)", async () => {
    const counts: Record<string, number> = {};
    for (let n = 1; n <= 240; n++) {
      const who = await whoAnswers(b.vip, b.ports.cttp, b.client(n), "cttp");
      counts[who] = (counts[who] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(["portal-1", "portal-2", "portal-3"]);
    for (const c of Object.values(counts)) {
      expect(c).toBeGreaterThanOrEqual(52);
      expect(c).toBeLessThanOrEqual(108);
    }
  });

  test("keeps each of 50 clients on one server across 443, 995 and 8443 (shifted ports)", async () => {
    const mismatches: string[] = [];
    const seen = new Set<string>();
    for (let n = 301; n <= 350; n++) {
      const ip = b.client(n);
      const a = await whoAnswers(b.vip, b.ports.https, ip, "https");
      const c = await whoAnswers(b.vip, b.ports.cttp, ip, "cttp");
      const d = await whoAnswers(b.vip, b.ports.https2, ip, "https");
      seen.add(a);
      if (a !== c || a !== d) mismatches.push(`${ip}: ${a}/${c}/${d}`);
      expect(proxy.pinned("CTERA_Portal", ip)).toBe(a);
    }
    expect(mismatches).toEqual([]);
    expect(seen.size).toBe(3); // the 50 clients did not all land on one server
  });

  test("a HALTed server's clients move, and only its clients", async () => {
    const ips = Array.from({ length: 30 }, (_, i) => b.client(400 + i));
    const before = new Map<string, string>();
    for (const ip of ips) before.set(ip, await whoAnswers(b.vip, b.ports.cttp, ip, "cttp"));
    expect(proxy.setServerState("CTERA_Portal", "portal-2", "halt")).toBe("HALT");
    try {
      for (const ip of ips) {
        const now = await whoAnswers(b.vip, b.ports.cttp, ip, "cttp");
        if (before.get(ip) === "portal-2") expect(now).not.toBe("portal-2");
        else expect(now).toBe(before.get(ip));
      }
    } finally {
      proxy.setServerState("CTERA_Portal", "portal-2", "online");
    }
    expect([...before.values()]).toContain("portal-2");
  });

  test("a client stays on its server when a new server is added", async () => {
    const ips = Array.from({ length: 20 }, (_, i) => b.client(450 + i));
    const before = new Map<string, string>();
    for (const ip of ips) before.set(ip, await whoAnswers(b.vip, b.ports.https, ip, "https"));
    const extra = [await startSimPortal({ name: "portal-4", address: `${b.net}.14`, ports: { https: b.ports.https, https2: b.ports.https2, cttp: b.ports.cttp, http: 0, http2: 0 } })];
    try {
      const cfg = tcpConfig(b, {}, {}, 4);
      await proxy.reload(cfg);
      for (const ip of ips) expect(await whoAnswers(b.vip, b.ports.https, ip, "https")).toBe(before.get(ip));
      // ...while some brand-new clients do reach the new server.
      const fresh = new Set<string>();
      for (let n = 500; n < 545; n++) fresh.add(await whoAnswers(b.vip, b.ports.https, b.client(n), "https"));
      expect(fresh.has("portal-4")).toBe(true);
      expect(extra[0].hits.get(b.ports.https) ?? 0).toBeGreaterThan(0);
    } finally {
      await proxy.reload(tcpConfig(b, { healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, rise: 2, fall: 3 } }));
      await extra[0].stop();
    }
  });

  test("a persistence entry expires after the (shortened) idle timeout, not before", async () => {
    await proxy.reload(tcpConfig(b, { persistence: { type: "source-ip", timeoutSeconds: 1 }, healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, rise: 2, fall: 3 } }));
    const ip = b.client(600);
    const first = await whoAnswers(b.vip, b.ports.cttp, ip, "cttp");
    // Drain the client's server: new clients avoid it, a remembered client keeps coming while its entry lives.
    proxy.setServerState("CTERA_Portal", first, "drain");
    try {
      for (let i = 0; i < 4; i++) {
        await sleep(400); // each use refreshes the entry, so 1.6 s of use stays well inside it
        expect(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp")).toBe(first);
      }
      await sleep(1300);
      expect(proxy.pinned("CTERA_Portal", ip)).toBeUndefined();
      expect(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp")).not.toBe(first);
    } finally {
      proxy.setServerState("CTERA_Portal", first, "online");
    }
  });

  test("logs one JSON line per closed connection with client, vip, port, server, bytes, duration and reason", async () => {
    await sleep(50);
    const conn = logs.lines().filter((l) => l.event === "connection");
    expect(conn.length).toBeGreaterThan(240);
    expect(conn[0]).toEqual(
      expect.objectContaining({ client: b.client(1), vip: "CTERA_Portal", port: b.ports.cttp, server: expect.stringMatching(/^portal-\d$/), bytesIn: expect.any(Number), bytesOut: expect.any(Number), durationMs: expect.any(Number), reason: expect.any(String) }),
    );
    expect(conn[0].bytesOut as number).toBeGreaterThan(0);
  });
});

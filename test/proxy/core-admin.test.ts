/**
 * The admin API (ADMIN_API.md) of the in-process proxy. Block 127.0.12.0/24 (admin on 127.0.12.1).
 */
import { startProxy, ProxyHandle } from "../../src/proxy";
import type { SimPortal } from "../../src/sim/portal";
import { block, startPortals, tcpConfig } from "../helpers/proxy";
import { getJson, httpGet, tlsFirstLine, whoAnswers } from "../helpers/net";

const b = block(12);
const TOKEN = "test-token-0123456789";

describe("admin API", () => {
  let portals: SimPortal[];
  let proxy: ProxyHandle;
  let admin: { host: string; port: number };
  const post = (path: string, token?: string) =>
    httpGet({ ...admin, path, method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    portals = await startPortals(b);
    proxy = await startProxy(tcpConfig(b, { healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, rise: 2, fall: 3 } }), { log: () => undefined });
    admin = { host: proxy.admin!.address, port: proxy.admin!.port };
  });
  afterAll(async () => {
    await proxy.close();
    await Promise.all(portals.map((p) => p.stop()));
  });

  test("refuses drain without a token, with a wrong token, and names no state change (401)", async () => {
    const none = await post("/api/servers/CTERA_Portal/portal-1/drain");
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text).error).toEqual(expect.any(String));
    const wrong = await post("/api/servers/CTERA_Portal/portal-1/drain", "wrong-token-0123456789");
    expect(wrong.status).toBe(401);
    expect(proxy.control.serverStatus("CTERA_Portal", "portal-1")!.admin).toBeNull();
  });

  test("answers 404 for an unknown server and 405 for GET on an action", async () => {
    expect((await post("/api/servers/CTERA_Portal/portal-9/drain", TOKEN)).status).toBe(404);
    expect((await post("/api/servers/NOPE/portal-1/halt", TOKEN)).status).toBe(404);
    expect((await httpGet({ ...admin, path: "/api/servers/CTERA_Portal/portal-1/drain" })).status).toBe(405);
  });

  test("drain keeps open sessions and sends new clients elsewhere; halt closes sessions; online restores", async () => {
    // A client placed on portal-1 with an open session.
    let ip = "";
    for (let n = 1; n < 100 && !ip; n++) if (proxy.core.pools.get("CTERA_Portal")!.choose(b.client(n))?.name === "portal-1") ip = b.client(n);
    const { socket } = await tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: ip, close: false });
    socket.on("error", () => undefined);
    let closed = false;
    socket.once("close", () => (closed = true));

    const d = await post("/api/servers/CTERA_Portal/portal-1/drain", TOKEN);
    expect(d.status).toBe(200);
    expect(JSON.parse(d.text)).toEqual({ ok: true, vip: "CTERA_Portal", server: "portal-1", state: "DRAIN" });
    const fresh: string[] = [];
    for (let n = 100; n < 140; n++) fresh.push(await whoAnswers(b.vip, b.ports.cttp, b.client(n), "cttp"));
    expect(fresh).not.toContain("portal-1");
    expect(closed).toBe(false);

    const h = await post("/api/servers/CTERA_Portal/portal-1/halt", TOKEN);
    expect(JSON.parse(h.text).state).toBe("HALT");
    await new Promise((r) => (closed ? r(null) : socket.once("close", r)));
    expect(closed).toBe(true);

    const o = await post("/api/servers/CTERA_Portal/portal-1/online", TOKEN);
    expect(JSON.parse(o.text).state).toBe("UP");
    const again: string[] = [];
    for (let n = 200; n < 240; n++) again.push(await whoAnswers(b.vip, b.ports.cttp, b.client(n), "cttp"));
    expect(again).toContain("portal-1");
    const ev = (await getJson({ ...admin, path: "/api/status" })).body.events.map((e: { to: string; reason: string }) => `${e.to} ${e.reason}`);
    expect(ev).toEqual(expect.arrayContaining(["DRAIN operator drain", "HALT operator halt", "UP operator online"]));
  });

  test("/api/status has the documented shape with counters summed per server", async () => {
    const { status, headers, body } = await getJson({ ...admin, path: "/api/status" });
    expect(status).toBe(200);
    expect(headers["cache-control"]).toBe("no-store");
    expect(body).toMatchObject({ version: "0.1.0", workers: 1, readOnly: false, startedAt: expect.any(String), uptimeSeconds: expect.any(Number) });
    // One process (startProxy): it holds every open connection, nothing is passed between processes.
    expect(body.processes).toEqual([{ pid: process.pid, role: "primary", openConnections: expect.any(Number), passedOn: 0, takenOver: 0 }]);
    const vs = body.virtualServices[0];
    expect(vs).toMatchObject({
      name: "CTERA_Portal",
      mode: "tcp",
      balance: "leastconn",
      clientIp: "none",
      persistence: { type: "source-ip", timeoutSeconds: 1800 },
      healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", host: null, intervalMs: 1000, rise: 2, fall: 3 },
    });
    expect(vs.listeners).toEqual([b.ports.https, b.ports.cttp, b.ports.https2].map((port) => ({ address: b.vip, port, tls: false, redirectToHttpsPort: null })));
    expect(vs.persistence.entries).toBeGreaterThanOrEqual(80);
    expect(vs.servers.map((s: { name: string }) => s.name)).toEqual(["portal-1", "portal-2", "portal-3"]);
    const s1 = vs.servers[0];
    expect(s1).toMatchObject({ address: b.servers[0], port: null, weight: 100, state: "UP", health: "UP" });
    expect(s1.lastCheck).toMatchObject({ ok: true, detail: "HTTP 200" });
    const sum = (k: string) => vs.servers.reduce((a: number, s: Record<string, number>) => a + s[k], 0);
    expect(vs.totalConnections).toBe(sum("totalConnections"));
    expect(vs.totalConnections).toBeGreaterThanOrEqual(81) // 1 + 40 + 40 connections above;
    expect(vs.bytesOut).toBe(sum("bytesOut"));
    expect(vs.bytesOut).toBeGreaterThan(0);
  });

  test("/metrics is Prometheus text with the documented series", async () => {
    const r = await httpGet({ ...admin, path: "/metrics" });
    expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toContain('ctera_lb_server_up{vip="CTERA_Portal",server="portal-1"} 1');
    expect(r.text).toContain('ctera_lb_server_state{vip="CTERA_Portal",server="portal-2",state="UP"} 1');
    expect(r.text).toMatch(/ctera_lb_connections_total\{vip="CTERA_Portal",server="portal-1"\} [1-9]/);
    expect(r.text).toMatch(/ctera_lb_bytes_total\{vip="CTERA_Portal",server="portal-1",direction="out"\} [1-9]/);
    expect(r.text).toMatch(/ctera_lb_health_check_duration_seconds\{vip="CTERA_Portal",server="portal-3"\} \d/);
    expect(r.text).toMatch(/ctera_lb_persistence_entries\{vip="CTERA_Portal"\} [1-9]/);
    expect(r.text).toMatch(new RegExp(`^ctera_lb_process_open_connections\\{pid="${process.pid}",role="primary"\\} \\d+$`, "m"));
    expect(r.text).toMatch(/^ctera_lb_accept_handoffs_total 0$/m);
    expect(r.text).toContain("ctera_lb_connections_current");
    for (const line of r.text.trim().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [0-9.e+-]+)$/);
  });

  test("GET / serves the status page with a strict CSP and no cookies; /healthz says ok", async () => {
    const r = await httpGet({ ...admin, path: "/" });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(r.headers["set-cookie"]).toBeUndefined();
    expect(r.text).toMatch(/<html/i);
    const h = await getJson({ ...admin, path: "/healthz" });
    expect(h).toMatchObject({ status: 200, body: { ok: true } });
  });

  test("a read-only proxy (no token) refuses every action with 401", async () => {
    const ro = await startProxy(tcpConfig({ ...b, vip: `${b.net}.20` }, {}, { admin: { address: `${b.net}.2`, port: 19012, token: null } }), { log: () => undefined });
    try {
      const r = await httpGet({ host: `${b.net}.2`, port: 19012, path: "/api/servers/CTERA_Portal/portal-1/drain", method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.status).toBe(401);
      expect((await getJson({ host: `${b.net}.2`, port: 19012, path: "/api/status" })).body.readOnly).toBe(true);
    } finally {
      await ro.close();
    }
  });
});

/**
 * The presets reproduce the VIP tables of "Load balancing CTERA Portal" field by field.
 * The tables below are typed from the guide (shared seed), not derived from our code.
 */
import { render, RuntimeConfig, VirtualService } from "../../src/config";
import { makeCert, TestCert } from "./fixtures";

interface GuideRow {
  name: string;
  mode: "tcp" | "http";
  /** client ports: plain (tcp passthrough or plain http) and TLS-terminated on the LB */
  plainPorts: number[];
  tlsPorts: number[];
  /** the port the real server is reached on; null: the port the client hit */
  serverPort: number | null;
  persistence: "source-ip";
  healthCheck: "https-get" | "connect";
}

const GUIDE: Record<"ssl-on-portal" | "ssl-on-lb", GuideRow[]> = {
  "ssl-on-portal": [
    { name: "CTERA_Portal", mode: "tcp", plainPorts: [443, 995, 8443], tlsPorts: [], serverPort: null, persistence: "source-ip", healthCheck: "https-get" },
  ],
  "ssl-on-lb": [
    { name: "CTERA_Portal_Web_1", mode: "http", plainPorts: [80], tlsPorts: [443], serverPort: 80, persistence: "source-ip", healthCheck: "https-get" },
    { name: "CTERA_Portal_Web_2", mode: "http", plainPorts: [8080], tlsPorts: [8443], serverPort: 8080, persistence: "source-ip", healthCheck: "https-get" },
    { name: "CTERA_Portal_CTTP", mode: "tcp", plainPorts: [995], tlsPorts: [], serverPort: null, persistence: "source-ip", healthCheck: "connect" },
  ],
};

let cert: TestCert;
beforeAll(() => { cert = makeCert(); });
afterAll(() => cert.cleanup());

function renderDesign(design: "ssl-on-portal" | "ssl-on-lb"): RuntimeConfig {
  return render({
    design,
    vip: "127.0.50.10",
    realServers: ["127.0.50.11", "127.0.50.12", "127.0.50.13"],
    ...(design === "ssl-on-lb" ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
  });
}

const rows = (Object.keys(GUIDE) as (keyof typeof GUIDE)[]).flatMap((design) =>
  GUIDE[design].map((row) => [design, row.name, row] as const),
);

describe("presets reproduce the guide's VIP tables", () => {
  test.each(Object.keys(GUIDE) as (keyof typeof GUIDE)[])("%s has exactly the guide's VIPs, in order", (design) => {
    expect(renderDesign(design).virtualServices.map((v) => v.name)).toEqual(GUIDE[design].map((r) => r.name));
  });

  describe.each(rows)("%s %s", (design, name, row) => {
    let vs: VirtualService;
    beforeAll(() => {
      vs = renderDesign(design).virtualServices.find((v) => v.name === name)!;
    });
    test("mode", () => expect(vs.mode).toBe(row.mode));
    test("plain client ports", () => expect(vs.listeners.filter((l) => !l.tls).map((l) => l.port)).toEqual(row.plainPorts));
    test("TLS-terminated client ports", () => expect(vs.listeners.filter((l) => l.tls).map((l) => l.port)).toEqual(row.tlsPorts));
    test("every listener binds the VIP", () => expect(new Set(vs.listeners.map((l) => l.address))).toEqual(new Set(["127.0.50.10"])));
    test("real-server port", () => expect(vs.realServers.map((s) => s.port ?? null)).toEqual([row.serverPort, row.serverPort, row.serverPort]));
    test("source-IP persistence, 30 min", () => expect(vs.persistence).toEqual({ type: row.persistence, timeoutSeconds: 1800 }));
    test("health check type", () => expect(vs.healthCheck.type).toBe(row.healthCheck));
    test("appliance defaults: every 4 s, rise 2, fall 2, leastconn, weight 100", () => {
      expect([vs.healthCheck.intervalMs, vs.healthCheck.rise, vs.healthCheck.fall, vs.balance]).toEqual([4000, 2, 2, "leastconn"]);
      expect(vs.realServers.map((s) => s.weight)).toEqual([100, 100, 100]);
    });
  });

  test("HTTPS GET checks probe CTERA's /admin/startup on the server's 443", () => {
    const checks = [...renderDesign("ssl-on-portal").virtualServices, ...renderDesign("ssl-on-lb").virtualServices]
      .filter((v) => v.healthCheck.type === "https-get")
      .map((v) => [v.healthCheck.port, v.healthCheck.path]);
    expect(checks).toEqual([[443, "/admin/startup"], [443, "/admin/startup"], [443, "/admin/startup"]]);
  });

  test("ssl-on-lb: plain web ports redirect to their TLS port; web VIPs add X-Forwarded-For", () => {
    const [web1, web2, cttp] = renderDesign("ssl-on-lb").virtualServices;
    expect(web1.listeners.find((l) => l.port === 80)?.redirectToHttpsPort).toBe(443);
    expect(web2.listeners.find((l) => l.port === 8080)?.redirectToHttpsPort).toBe(8443);
    expect([web1.clientIp, web2.clientIp, cttp.clientIp]).toEqual(["x-forwarded-for", "x-forwarded-for", "none"]);
  });
});

describe("every preset default is overridable through the typed inputs", () => {
  test("global and per-VIP overrides apply, per-VIP winning", () => {
    const cfg = render({
      design: "ssl-on-lb",
      vip: "127.0.50.10",
      realServers: [{ name: "a", address: "127.0.50.11", weight: 50 }, "127.0.50.12"],
      tls: { certFile: cert.certFile, keyFile: cert.keyFile },
      balance: "roundrobin",
      persistence: { timeoutSeconds: 600 },
      healthCheck: { intervalMs: 1000, rise: 3, fall: 4, host: "global.portal.example.test" },
      virtualServices: {
        CTERA_Portal_CTTP: { ports: [9995], serverPort: 995, persistence: { timeoutSeconds: 7200 }, timeouts: { clientIdleSeconds: 600 } },
        CTERA_Portal_Web_2: { redirectToHttps: false, balance: "leastconn" },
      },
    });
    const [web1, web2, cttp] = cfg.virtualServices;
    expect(web1.balance).toBe("roundrobin");
    expect(web2.balance).toBe("leastconn");
    expect(web1.persistence.timeoutSeconds).toBe(600);
    expect(cttp.persistence.timeoutSeconds).toBe(7200);
    expect(web1.healthCheck).toMatchObject({ intervalMs: 1000, rise: 3, fall: 4, host: "global.portal.example.test", path: "/admin/startup" });
    expect(cttp.healthCheck.type).toBe("connect");
    expect(cttp.listeners.map((l) => l.port)).toEqual([9995]);
    expect(cttp.realServers.map((s) => s.port)).toEqual([995, 995]);
    expect(cttp.timeouts.clientIdleSeconds).toBe(600);
    expect(web2.listeners.find((l) => l.port === 8080)?.redirectToHttpsPort).toBeUndefined();
    expect(web1.realServers.map((s) => [s.name, s.weight])).toEqual([["a", 50], ["portal-2", 100]]);
  });

  test("TCP VIPs default to an idle timeout of hours (CTTP keeps sessions open for hours; CTERA asks >= 300 s)", () => {
    for (const vs of renderDesign("ssl-on-portal").virtualServices) {
      expect(vs.timeouts.clientIdleSeconds).toBeGreaterThanOrEqual(3600);
      expect(vs.timeouts.serverIdleSeconds).toBeGreaterThanOrEqual(3600);
    }
  });
});

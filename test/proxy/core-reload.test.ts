/**
 * Reload of the in-process proxy: a valid config is applied whole (listeners and servers reconciled, open
 * connections untouched); an invalid one is refused and the old config keeps serving.
 * Block 127.0.13.0/24, clients 127.0.113.x.
 */
import * as https from "node:https";
import { ConfigError } from "../../src/config";
import { startProxy, ProxyHandle } from "../../src/proxy";
import { startSimPortal, SimPortal } from "../../src/sim/portal";
import { block, startPortals, tcpConfig } from "../helpers/proxy";
import { tcpConnect, tlsFirstLine, waitFor, whoAnswers } from "../helpers/net";

const b = block(13);
const MiB = 1024 * 1024;

describe("reload", () => {
  let portals: SimPortal[];
  let proxy: ProxyHandle;
  beforeAll(async () => {
    portals = await startPortals(b);
    portals.push(await startSimPortal({ name: "portal-4", address: `${b.net}.14`, ports: { https: b.ports.https, https2: b.ports.https2, cttp: b.ports.cttp, http: 0, http2: 0 } }));
    proxy = await startProxy(tcpConfig(b, { healthCheck: { type: "https-get", port: b.ports.https2, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, fall: 3 } }), { log: () => undefined });
  });
  afterAll(async () => {
    await proxy.close();
    await Promise.all(portals.map((p) => p.stop()));
  });

  test("adding a server and removing a port leaves a 50 MiB transfer on that port unbroken", async () => {
    let received = 0;
    let paused = false;
    let resume: () => void = () => undefined;
    const reachedHalf = new Promise<void>((r) => (resume = r));
    const done = new Promise<{ status: number; length: number; server: string; complete: boolean }>((resolve, reject) => {
      const req = https.get(
        { host: b.vip, port: b.ports.https, path: `/bytes/${50 * MiB}`, localAddress: b.client(1), rejectUnauthorized: false, agent: false },
        (res) => {
          res.on("data", (c: Buffer) => {
            received += c.length;
            if (!paused && received >= 10 * MiB) {
              paused = true;
              res.pause(); // backpressure holds the rest in the pipe while we reload
              resume();
            }
          });
          res.on("end", () => resolve({ status: res.statusCode!, length: received, server: String(res.headers["x-sim-server"]), complete: res.complete }));
          res.on("error", reject);
          pauseHandle = res;
        },
      );
      req.on("error", reject);
    });
    let pauseHandle: { resume(): void } | undefined;
    await reachedHalf;

    const next = tcpConfig(b, { listeners: [b.ports.cttp, b.ports.https2].map((port) => ({ address: b.vip, port })), healthCheck: { type: "https-get", port: b.ports.https2, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, fall: 3 } }, {}, 4);
    await proxy.reload(next);

    // The removed port takes no new connections; the added server takes new clients.
    await expect(tcpConnect(b.vip, b.ports.https, b.client(2))).rejects.toThrow(/ECONNREFUSED/);
    const seen = new Set<string>();
    for (let n = 10; n < 70; n++) seen.add(await whoAnswers(b.vip, b.ports.cttp, b.client(n), "cttp"));
    expect(seen.has("portal-4")).toBe(true);

    pauseHandle!.resume();
    const r = await done;
    expect(r).toMatchObject({ status: 200, length: 50 * MiB, complete: true });
    const srv = (proxy.status().virtualServices as { servers: { name: string; bytesOut: number }[] }[])[0].servers.find((s) => s.name === r.server)!;
    expect(srv.bytesOut).toBeGreaterThanOrEqual(50 * MiB);
  });

  test("an invalid config is refused with its problems and the old config keeps serving", async () => {
    const before = proxy.config;
    const bad = JSON.parse(JSON.stringify(before));
    bad.virtualServices[0].realServers = [];
    bad.virtualServices[0].listeners.push({ address: b.vip, port: 70000 });
    await expect(proxy.reload(bad)).rejects.toThrow(ConfigError);
    expect(proxy.config).toBe(before);
    expect(await whoAnswers(b.vip, b.ports.cttp, b.client(200), "cttp")).toMatch(/^portal-[1-4]$/);
    expect((proxy.status().virtualServices as { servers: unknown[] }[])[0].servers).toHaveLength(4);
  });

  test("a reload that removes a server keeps its open sessions but sends its clients elsewhere", async () => {
    let ip = "";
    for (let n = 300; n < 400 && !ip; n++) if (proxy.core.pools.get("CTERA_Portal")!.choose(b.client(n))?.name === "portal-4") ip = b.client(n);
    const { socket } = await tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: ip, close: false });
    socket.on("error", () => undefined);
    await proxy.reload(tcpConfig(b, { listeners: [b.ports.cttp, b.ports.https2].map((port) => ({ address: b.vip, port })), healthCheck: { type: "https-get", port: b.ports.https2, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, fall: 3 } }, {}, 3));
    expect(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp")).not.toBe("portal-4");
    // The old session still echoes.
    let got = "";
    socket.on("data", (d: string) => (got += d));
    socket.write("still here\n");
    expect(await waitFor(() => got.includes("still here"), 3000)).toBeTruthy();
    socket.destroy();
  });
});

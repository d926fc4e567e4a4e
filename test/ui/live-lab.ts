/**
 * The real thing the status-page tests drive, in one loopback /24 per test file (127.0.X.0/24, X in 30-39):
 * three simulated Portals on .11-.13 (HTTPS 443/8443, the CTTP stand-in on 995), the proxy started
 * in-process with startProxy(render({...})) for the ssl-on-portal design on VIP .10 with short health-check
 * intervals, and the admin API (with its status page) on .1:9090 with a token. Clients come from 127.0.X+100.N.
 */
import { render } from "../../src/config";
import { startProxy, ProxyHandle } from "../../src/proxy";
import { startSimPortal, SimPortal } from "../../src/sim/portal";
import { getJson, httpGet, sleep, waitFor } from "../helpers/net";

const PORTS = { https: 443, https2: 8443, cttp: 995, http: 0, http2: 0 };

export interface LiveLab {
  adminUrl: string;
  proxy: ProxyHandle;
  /** GET /api/status over HTTP, as any client sees it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status(): Promise<any>;
  /** Stops one sim Portal (its listeners and open sockets): the health checks start failing. */
  stopPortal(name: string): Promise<void>;
  /** Restarts stopped Portals, clears drain/halt, and waits until /api/status shows every server UP. */
  resetServers(): Promise<void>;
  /** n HTTPS requests through the VIP (64-256 KiB each) from n client addresses, pauseMs apart: bytes for the graphs. */
  traffic(n: number, pauseMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startLiveLab(o: { token: string; third: number }): Promise<LiveLab> {
  const NET = `127.0.${o.third}`;
  const VIP = `${NET}.10`;
  const ADMIN = { host: `${NET}.1`, port: 9090 };
  const SERVERS = [1, 2, 3].map((i) => ({ name: `portal-${i}`, address: `${NET}.${10 + i}` }));
  const portals = new Map<string, SimPortal | null>();
  const start = async (name: string) => {
    const s = SERVERS.find((x) => x.name === name)!;
    portals.set(name, await startSimPortal({ name, address: s.address, ports: PORTS }));
  };
  let proxy: ProxyHandle | undefined;
  try {
    for (const s of SERVERS) await start(s.name);
    const config = render({
      design: "ssl-on-portal",
      vip: VIP,
      realServers: SERVERS,
      // Short interval so DOWN shows within a second; the timeout is kept near the interval (not the
      // default half of it) so a busy 2-core machine does not make healthy servers flap.
      healthCheck: { intervalMs: 500, timeoutMs: 450, rise: 2, fall: 3 },
      admin: { address: ADMIN.host, port: ADMIN.port, token: o.token },
      workers: 1,
    });
    proxy = await startProxy(config, { log: () => undefined });
  } catch (e) {
    await Promise.all([...portals.values()].map((p) => p?.stop()));
    throw e;
  }
  const p = proxy;
  const status = async () => (await getJson({ ...ADMIN, path: "/api/status" })).body;
  const allUp = async () => {
    const st = await status();
    return st.virtualServices[0].servers.every((s: { state: string }) => s.state === "UP");
  };
  if (!(await waitFor(allUp, 10_000, 100))) throw new Error("live lab: the three sim Portals did not come UP");

  return {
    adminUrl: `http://${ADMIN.host}:${ADMIN.port}/`,
    proxy: p,
    status,
    async stopPortal(name) {
      await portals.get(name)?.stop();
      portals.set(name, null);
    },
    async resetServers() {
      for (const [name, portal] of portals) if (!portal) await start(name);
      for (const s of SERVERS) p.setServerState("CTERA_Portal", s.name, "online");
      if (!(await waitFor(allUp, 10_000, 100))) throw new Error("live lab: servers did not return to UP");
    },
    async traffic(n, pauseMs = 0) {
      for (let i = 1; i <= n; i++) {
        await httpGet({ host: VIP, port: 443, tls: true, path: `/bytes/${(64 + 32 * (i % 7)) * 1024}`, localAddress: `127.0.${o.third + 100}.${i}` });
        if (pauseMs) await sleep(pauseMs);
      }
    },
    async close() {
      await p.close();
      await Promise.all([...portals.values()].map((x) => x?.stop()));
    },
  };
}

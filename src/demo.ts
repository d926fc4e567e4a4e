/**
 * `ctera-lb demo`: the ssl-on-portal design end to end on this machine, in under 30 seconds.
 *
 * Three simulated Portal servers on 127.0.0.11-13 (HTTPS 443/8443 with a self-signed certificate made at
 * start, a TLS echo on 995 standing in for CTTP), the real render() of ssl-on-portal with VIP 127.0.0.10,
 * the proxy serving it in this process, and a short bounded client session from 127.0.1.x source addresses:
 * distribution, persistence across 443/995/8443, and failover when one Portal is stopped.
 * As a normal user every port is shifted by +10000 (binding below 1024 needs root).
 */
import * as https from "node:https";
import * as tls from "node:tls";
import type { RuntimeConfig } from "./config";
import { render } from "./config";
import { startProxy, ProxyHandle } from "./proxy";
import { selfSignedCert, SimPortal, startSimPortal } from "./sim/portal";

type Out = { stdout: (s: string) => void };

const VIP = "127.0.0.10";
const PORTALS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
const CLIENTS = 30;
const INTERVAL_MS = 500;
const client = (n: number) => `127.0.1.${n}`;

export async function demoCommand(_args: string[], out: Out): Promise<number> {
  const say = (s = "") => out.stdout(s + "\n");

  // First what would be deployed: the ssl-on-portal stack's offline plan (Pulumi mocks, no cloud, no CLI).
  say("== offline plan: stack ssl-on-portal (`ctera-lb plan --stack ssl-on-portal`) ==");
  const { planStack } = await import("./plan");
  say((await planStack("ssl-on-portal")).text.trimEnd());
  say();

  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const shift = root ? 0 : 10000;
  const P = { https: 443 + shift, cttp: 995 + shift, https2: 8443 + shift };
  say("== ctera-lb demo: ssl-on-portal on this machine ==");
  if (shift) say(`(running as a normal user: every port is shifted by +${shift}, so 443 is ${P.https}, 995 is ${P.cttp}, 8443 is ${P.https2})`);

  const portals: SimPortal[] = [];
  let proxy: ProxyHandle | undefined;
  try {
    const cert = selfSignedCert();
    for (let i = 0; i < PORTALS.length; i++) {
      portals.push(await startSimPortal({ name: `portal-${i + 1}`, address: PORTALS[i], portOffset: shift, tls: cert }));
    }
    say(`Three simulated Portal servers: ${PORTALS.map((a, i) => `portal-${i + 1} ${a}`).join(", ")}`);
    say(`  each: HTTPS on ${P.https} and ${P.https2} (self-signed certificate made just now), CTTP stand-in (TLS echo) on ${P.cttp}`);

    const config: RuntimeConfig = render({
      design: "ssl-on-portal",
      vip: VIP,
      realServers: PORTALS,
      // A shortened check interval so the failover below happens within seconds (the default is 4 s).
      healthCheck: { intervalMs: INTERVAL_MS, timeoutMs: 400, port: P.https },
      virtualServices: shift ? { CTERA_Portal: { ports: [P.https, P.cttp, P.https2] } } : undefined,
      admin: { address: "127.0.0.1", port: 9090 + shift },
    });
    const vs = config.virtualServices[0];
    const hc = vs.healthCheck;
    say(`Rendered ssl-on-portal: VIP ${vs.name} (${vs.mode}) on ${VIP} ports ${vs.listeners.map((l) => l.port).join(", ")}, ` +
      `persistence ${vs.persistence.type} ${vs.persistence.timeoutSeconds} s, balance ${vs.balance}, ` +
      `health ${hc.type} ${hc.path} on :${hc.port} every ${hc.intervalMs} ms (rise ${hc.rise}, fall ${hc.fall})`);

    const logs: string[] = [];
    proxy = await startProxy(config, { log: (s) => logs.push(s), admin: false });
    say(`Proxy serving ${VIP} (in this process).`);
    await waitUntil(() => serverStates(proxy!).every((s) => s.lastCheck), 5000);
    say();

    // 1. Distribution: each client's first connection (CTTP on 995).
    say(`1) Distribution: ${CLIENTS} clients (127.0.1.1-${CLIENTS}) open a CTTP session each`);
    const home = new Map<number, string>();
    for (let n = 1; n <= CLIENTS; n++) home.set(n, await cttpServer(VIP, P.cttp, client(n)));
    say(table(countBy([...home.values()])));
    say("   New clients are placed by weighted rendezvous hashing of their address: every worker (and the peer");
    say("   load balancer) places a new client on the same server without sharing state.");
    say();

    // 2. Persistence across the three ports.
    say("2) Persistence: the same clients on 443, 995 and 8443");
    let same = 0;
    const shown: string[] = [];
    for (let n = 1; n <= CLIENTS; n++) {
      const a = await httpsServer(VIP, P.https, client(n));
      const c = await cttpServer(VIP, P.cttp, client(n));
      const d = await httpsServer(VIP, P.https2, client(n));
      if (a === c && c === d && d === home.get(n)) same++;
      if (n <= 5) shown.push(`   ${client(n).padEnd(11)} 443 → ${a}   995 → ${c}   8443 → ${d}`);
    }
    say(shown.join("\n"));
    say(`   ...${same} of ${CLIENTS} clients reached the same server on all three ports.`);
    say();

    // 3. Failover.
    const victim = mostLoaded(home);
    const victimIdx = Number(victim.slice("portal-".length)) - 1;
    const its = [...home].filter(([, s]) => s === victim).map(([n]) => n);
    say(`3) Failover: stopping ${victim} (${PORTALS[victimIdx]}), which has ${its.length} of the clients`);
    const stoppedAt = Date.now();
    await portals[victimIdx].stop();
    const down = await waitUntil(() => serverStates(proxy!).find((s) => s.name === victim)?.state === "DOWN", 10000);
    const ev = (proxy.status().events as { server: string; to: string; reason: string }[]).find((e) => e.server === victim && e.to === "DOWN");
    say(down
      ? `   ${victim} marked DOWN after ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s (fall ${hc.fall} x ${hc.intervalMs} ms; reason: ${ev?.reason ?? "?"})`
      : `   ${victim} was not marked DOWN within 10 s (unexpected)`);
    let moved = 0;
    let stayed = 0;
    let failed = 0;
    const after = new Map<number, string>();
    for (let n = 1; n <= CLIENTS; n++) {
      try {
        after.set(n, await cttpServer(VIP, P.cttp, client(n)));
      } catch {
        failed++;
        continue;
      }
      if (home.get(n) === victim) moved += after.get(n) !== victim ? 1 : 0;
      else stayed += after.get(n) === home.get(n) ? 1 : 0;
    }
    say(table(countBy([...after.values()])));
    say(`   ${moved} of ${its.length} clients of ${victim} moved to another server; ${stayed} of ${CLIENTS - its.length} other clients stayed where they were` +
      (failed ? `; ${failed} connections failed` : "; no connection failed"));
    say();

    const st = proxy.status().virtualServices as { totalConnections: number; bytesIn: number; bytesOut: number; persistence: { entries: number } }[];
    // A connection's log line is written once both of its sockets have closed: give the last ones a moment.
    const logged = () => logs.join("").split("\n").filter((l) => l.includes('"event":"connection"')).length;
    await waitUntil(() => logged() >= st[0].totalConnections, 1000);
    const conns = logged();
    say(`Summary: ${st[0].totalConnections} connections proxied, ${st[0].bytesIn} bytes in, ${st[0].bytesOut} bytes out, ` +
      `${st[0].persistence.entries} persistence entries, ${conns} JSON log lines for closed connections.`);
    say(`Server states now: ${serverStates(proxy).map((s) => `${s.name} ${s.state}`).join(", ")}`);
    say();
    say("Next: `ctera-lb render --design ssl-on-portal --vip <ip> --real-server <ip> ... > lb.json` and `ctera-lb serve --config lb.json`.");
    const ok = same === CLIENTS && down && moved === its.length && stayed === CLIENTS - its.length && failed === 0;
    if (!ok) say("DEMO CHECK FAILED: see the lines above.");
    return ok ? 0 : 1;
  } finally {
    await proxy?.close();
    await Promise.all(portals.map((p) => p.stop()));
  }
}

function serverStates(p: ProxyHandle): { name: string; state: string; lastCheck: unknown }[] {
  return (p.status().virtualServices as { servers: { name: string; state: string; lastCheck: unknown }[] }[])[0].servers;
}

async function waitUntil(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function countBy(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs.sort()) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function table(m: Map<string, number>): string {
  const total = [...m.values()].reduce((a, b) => a + b, 0);
  return [...m]
    .map(([k, v]) => `   ${k.padEnd(9)} ${String(v).padStart(3)}  ${"#".repeat(v)}  ${Math.round((100 * v) / total)}%`)
    .join("\n");
}

function mostLoaded(home: Map<number, string>): string {
  return [...countBy([...home.values()])].sort((a, b) => b[1] - a[1])[0][0];
}

/** The sim Portal's 995 writes "portal <name>" first. */
function cttpServer(host: string, port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // tls.connect hands localAddress to net.connect (the type does not list it).
    const opts = { host, port, localAddress, rejectUnauthorized: false, servername: "portal.example.test" } as tls.ConnectionOptions;
    const s = tls.connect(opts);
    let buf = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("timeout"));
    }, 5000);
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.slice(0, i).replace(/^portal /, ""));
      }
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function httpsServer(host: string, port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, localAddress, path: "/demo", agent: false, rejectUnauthorized: false, servername: "portal.example.test", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        try {
          resolve(String(JSON.parse(body).server));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

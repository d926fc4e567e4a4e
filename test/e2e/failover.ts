/**
 * Failover under load: a bounded load (2,000 HTTPS requests and 200 CTTP sessions over 20 s from 40 client
 * addresses in the client namespace) while one Portal namespace's server process is killed. The proxy must
 * notice (health checks every second, fall 2), move only the dead server's clients, and send no new
 * connection there afterwards; on ssl-on-lb no HTTP request may fail at all.
 *
 * "No new connection after detection" is observed from the dead server's side: once the proxy reports it
 * DOWN, a witness listens on the dead server's client-traffic ports (not on its health-check port, so the
 * server stays DOWN) and records every connection that still arrives.
 */
import type { Design } from "../../src/config";
import { LoadRecord, serverOfBody } from "./client-main";
import { Layout, assertCanRun, sleep } from "./harness";
import { Lab, serverStates } from "./lab";

const HTTPS_REQUESTS = 2000;
const CTTP_SESSIONS = 200;
const LOAD_MS = 20_000;
const KILL_AFTER_MS = 6_000;
const DEAD = "portal-3" as const;

export function failoverSpec(layout: Layout, design: Design): void {
  let lab: Lab | undefined;

  beforeAll(async () => {
    assertCanRun();
    lab = await Lab.start({ tag: design === "ssl-on-lb" ? "fol" : "fop", layout });
    await lab.startProxy(design);
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  }, 60_000);

  test(`${layout} ${design}: a Portal killed under load is detected, only its clients move, no new connection reaches it, ${design === "ssl-on-lb" ? "and no HTTP request fails" : "and no new connection after detection fails"}`, async () => {
    if (!lab) throw new Error("the lab did not start");
    const l = lab;
    // Where each client address lives before anything fails (persistence keeps it there).
    const home = new Map<string, string>();
    const homeProbe = await l.probe(l.topo.addrs.CLIENT_ADDRS.map((c) => ({ kind: "https" as const, host: l.vip, port: 443, localAddress: c, path: "/home", timeoutMs: 8000 })));
    for (const r of homeProbe) home.set(r.probe.localAddress, serverOfBody(r.body) ?? `failed: ${r.error}`);
    const deadClients = [...home].filter(([, s]) => s === DEAD).map(([c]) => c);

    const witnessPorts = design === "ssl-on-lb" ? [80, 8080] : [8443, 995];
    const witness = await l.armWitness(DEAD, witnessPorts);

    const loadDone = l.load({
      host: l.vip,
      clients: l.topo.addrs.CLIENT_ADDRS,
      https: { count: HTTPS_REQUESTS, ports: [443, 8443], path: "/load" },
      cttp: { count: CTTP_SESSIONS, port: 995, holdMs: 1500 },
      durationMs: LOAD_MS,
      timeoutMs: 8000,
    });

    await sleep(KILL_AFTER_MS);
    const killAt = Date.now();
    l.sims.get(DEAD)!.kill("SIGKILL");

    // Detection: the admin API shows the server DOWN in every VIP (polled every 50 ms).
    let firstVipDownAt: number | undefined;
    let detectedAt: number | undefined;
    while (Date.now() - killAt < 10_000) {
      try {
        const mine = serverStates(JSON.parse(await l.adminGetAsync("/api/status"))).filter((s) => s.name === DEAD);
        if (mine.some((s) => s.state === "DOWN")) firstVipDownAt ??= Date.now();
        if (mine.length > 0 && mine.every((s) => s.state === "DOWN")) {
          detectedAt = Date.now();
          break;
        }
      } catch {
        /* the admin API may be busy for a moment; keep polling */
      }
      await sleep(50);
    }
    if (detectedAt === undefined) throw new Error(`${DEAD} was not reported DOWN within 10 s of the kill`);
    const witnessFrom = await witness.listen();

    const report = await loadDone;
    // The witness is not blind: a connection made straight to it from the client namespace is recorded.
    const selfCheckFrom = l.topo.addrs.CLIENT_ADDRS[39];
    await l.probe([{ kind: "http", host: l.portalAddress(DEAD), port: witnessPorts[0], localAddress: selfCheckFrom, timeoutMs: 3000 }]);
    await witness.proc.waitFor((j) => j.event === "connection" && j.remoteAddress === selfCheckFrom, 5000, "the witness self-check connection");
    const reached = witness.proc.json.filter((j) => j.event === "connection" && j.remoteAddress !== selfCheckFrom);
    await witness.proc.stop();

    // The proxy's own log line for the state change, when it writes one.
    const logIdx = l.proxy!.proc.lines.findIndex((line, i) => l.proxy!.proc.lineTimes[i] >= killAt && line.includes(DEAD) && /\bDOWN\b/.test(line));
    const logDownAt = logIdx >= 0 ? l.proxy!.proc.lineTimes[logIdx] : undefined;

    const https = report.records.filter((r) => r.kind === "https");
    const cttp = report.records.filter((r) => r.kind === "cttp");
    const failed = https.filter((r) => !r.ok);
    const servedBy = (rs: LoadRecord[]) => rs.reduce<Record<string, number>>((m, r) => {
      const s = r.ok ? r.server ?? "?" : "failed";
      m[s] = (m[s] ?? 0) + 1;
      return m;
    }, {});
    const before = https.filter((r) => r.end < killAt);
    const window = https.filter((r) => r.start >= killAt && r.start < detectedAt!);
    const after = https.filter((r) => r.start >= detectedAt!);
    const cttpAfter = cttp.filter((r) => r.start >= detectedAt!);
    const cttpBrokenByKill = cttp.filter((r) => !r.ok && r.start < killAt && r.end >= killAt);

    // Clients that lived on a live server: did any of them move?
    const moved = after.filter((r) => r.ok && home.get(r.client) !== DEAD && r.server !== home.get(r.client));

    const lines = [
      `[e2e failover ${layout} ${design}] ${HTTPS_REQUESTS} HTTPS requests + ${CTTP_SESSIONS} CTTP sessions over ${report.endedAt - report.startedAt} ms, ${DEAD} killed at +${killAt - report.startedAt} ms`,
      `  detection: ${detectedAt - killAt} ms kill → DOWN in every VIP (admin API, polled every 50 ms; first VIP ${firstVipDownAt! - killAt} ms)` +
        (logDownAt !== undefined ? `; proxy log line ${logDownAt - killAt} ms` : "; no DOWN log line seen"),
      `  HTTPS: ${https.length} done, ${failed.length} failed (${failed.filter((r) => r.reused).length} of them on kept-alive connections); before kill ${JSON.stringify(servedBy(before))}; kill→detection ${JSON.stringify(servedBy(window))} (max ${Math.max(0, ...window.map((r) => r.end - r.start))} ms); after detection ${JSON.stringify(servedBy(after))}`,
      `  clients by home server before the kill: ${JSON.stringify([...home.values()].reduce<Record<string, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {}))}; clients of live servers that moved: ${new Set(moved.map((r) => r.client)).size}`,
      `  CTTP: ${cttp.length} sessions, ${cttp.filter((r) => !r.ok).length} failed (${cttpBrokenByKill.length} were open when the kill came); after detection ${cttpAfter.filter((r) => r.ok).length}/${cttpAfter.length} ok, by server ${JSON.stringify(servedBy(cttpAfter))}`,
      `  witness on ${DEAD} ports ${witnessPorts.join(",")} from +${witnessFrom - detectedAt} ms after detection: ${reached.length} connection(s)`,
      ...failed.slice(0, 10).map((r) => `  failed: ${r.client} :${r.port} +${r.start - report.startedAt}..${r.end - report.startedAt} ms ${r.reused ? "kept-alive" : "new"} connection ${r.status ?? ""} ${r.error ?? ""}`),
    ];
    lines.push(`  server state changes the proxy logged during the run:`, ...l.stateChangesSince(report.startedAt - 1000).map((x) => `    ${x}`));
    // For the first failed clients: what the proxy logged about them (to tell a proxy fault from a client one).
    for (const c of [...new Set(failed.map((r) => r.client))].slice(0, 2)) {
      const pl = l.proxy!.proc;
      const mine = pl.lines.filter((line, i) => pl.lineTimes[i] >= killAt - 2000 && line.includes(`"${c}"`));
      lines.push(`  proxy log about ${c} (home ${home.get(c)}) from 2 s before the kill:`, ...mine.slice(0, 8).map((x) => `    ${x}`));
    }
    process.stdout.write(lines.join("\n") + "\n");

    expect(https).toHaveLength(HTTPS_REQUESTS);
    expect(cttp).toHaveLength(CTTP_SESSIONS);
    // Not vacuous: the dead server had clients, and so did the others.
    expect([...home.values()].filter((s) => s.startsWith("failed"))).toEqual([]);
    expect(deadClients.length).toBeGreaterThan(0);
    expect(deadClients.length).toBeLessThan(home.size);
    if (design === "ssl-on-lb") expect(failed.map((r) => `${r.client}:${r.port} ${r.status ?? r.error}`)).toEqual([]);
    // TLS passes through: a request on a connection that was open to the dead server cannot be saved, but
    // every new connection after detection must get through.
    else expect(after.filter((r) => !r.ok && !r.reused).map((r) => `${r.client}:${r.port} ${r.error}`)).toEqual([]);
    expect(servedBy(after)[DEAD]).toBeUndefined();
    expect(reached).toEqual([]);
    expect([...new Set(moved.map((r) => `${r.client} ${home.get(r.client)}→${r.server}`))]).toEqual([]);
    expect(cttpAfter.filter((r) => !r.ok).map((r) => `${r.client} ${r.error}`)).toEqual([]);
  }, 120_000);
}

/**
 * What both layouts must show for both designs: every client port works through the VIP, real servers see
 * the load balancer's address (and for ssl-on-lb the client's in X-Forwarded-For), and a client address
 * keeps its server across 443, 8443 and 995. one-arm.test.ts and two-arm.test.ts run these on their lab.
 */
import type { Design } from "../../src/config";
import type { Probe, ProbeResult } from "./client-main";
import type { Lab } from "./lab";

/** The Portal server that answered: the sim's JSON answer (HTTP) or its greeting line (995). */
export function serverOf(r: ProbeResult): string | undefined {
  if (!r.ok || r.body === undefined) return undefined;
  const greeting = /^portal (\S+)\n/.exec(r.body);
  if (greeting) return greeting[1];
  try {
    return (JSON.parse(r.body) as { server?: string }).server;
  } catch {
    return undefined;
  }
}

export function answer(r: ProbeResult): { server: string; port: number; tls: boolean; remoteAddress: string; headers: Record<string, string> } {
  if (!r.ok) throw new Error(`request failed: ${JSON.stringify(r.probe)}: ${r.error}`);
  return JSON.parse(r.body ?? "null");
}

function summary(rs: ProbeResult[]): string {
  return rs.map((r) => `${r.probe.kind}:${r.probe.port} from ${r.probe.localAddress} → ${r.ok ? r.status ?? "ok" : r.error} ${serverOf(r) ?? ""}`).join("\n");
}

export function designSpecs(getLab: () => Lab, design: Design, opts: { sourceAddressVariant?: boolean } = {}): void {
  const lab = () => getLab();
  const clients = () => lab().topo.addrs.CLIENT_ADDRS;
  const p = (kind: Probe["kind"], port: number, localAddress: string, extra: Partial<Probe> = {}): Probe => ({
    kind,
    host: lab().vip,
    port,
    localAddress,
    path: "/e2e",
    timeoutMs: 5000,
    ...extra,
  });

  beforeAll(async () => {
    await lab().startProxy(design);
  });

  if (design === "ssl-on-portal") {
    test("ssl-on-portal: 443, 8443 and 995 answer through the VIP, with TLS passed through to the Portal", async () => {
      const c = clients()[0];
      const [a443, a8443, a995] = await lab().probe([p("https", 443, c), p("https", 8443, c), p("tls-echo", 995, c)]);
      expect(summary([a443, a8443, a995])).not.toMatch(/Error|timeout|closed/);
      expect(answer(a443)).toMatchObject({ port: 443, tls: true });
      expect(answer(a8443)).toMatchObject({ port: 8443, tls: true });
      expect(serverOf(a995)).toMatch(/^portal-[123]$/);
      // The certificate the client sees is the Portal's own, not the load balancer's.
      for (const r of [a443, a8443, a995]) expect(r.certSubject).toBe("CN=portal.example.test");
    });
  } else {
    test("ssl-on-lb: 443 and 8443 end TLS on the load balancer and reach the servers' 80 and 8080; 995 passes through", async () => {
      const c = clients()[0];
      const [a443, a8443, a995] = await lab().probe([p("https", 443, c), p("https", 8443, c), p("tls-echo", 995, c)]);
      expect(summary([a443, a8443, a995])).not.toMatch(/Error|timeout|closed/);
      expect(answer(a443)).toMatchObject({ port: 80, tls: false });
      expect(answer(a8443)).toMatchObject({ port: 8080, tls: false });
      expect(a443.certFingerprint256).toBe(lab().cert.fingerprint256);
      expect(a8443.certFingerprint256).toBe(lab().cert.fingerprint256);
      expect(serverOf(a995)).toMatch(/^portal-[123]$/);
      expect(a995.certSubject).toBe("CN=portal.example.test");
    });

    test("ssl-on-lb: plain 80 and 8080 redirect to https on 443 and 8443", async () => {
      const c = clients()[0];
      const [r80, r8080] = await lab().probe([p("http", 80, c), p("http", 8080, c)]);
      expect(r80.status).toBe(301);
      expect(String(r80.headers?.location)).toMatch(new RegExp(`^https://${lab().vip.replace(/\./g, "\\.")}(:443)?/e2e$`));
      expect(r8080.status).toBe(301);
      expect(String(r8080.headers?.location)).toBe(`https://${lab().vip}:8443/e2e`);
    });

    test("ssl-on-lb: the servers get the client's address in X-Forwarded-For", async () => {
      const cs = clients().slice(1, 5);
      const rs = await lab().probe(cs.flatMap((c) => [p("https", 443, c), p("https", 8443, c)]));
      rs.forEach((r) => {
        const a = answer(r);
        expect(a.headers["x-forwarded-for"]).toBe(r.probe.localAddress);
        expect(a.headers["x-forwarded-proto"]).toBe("https");
      });
    });
  }

  test(`${design}: the real servers see the load balancer's own address as the source`, async () => {
    const cs = clients().slice(5, 11);
    const rs = await lab().probe(cs.flatMap((c) => [p("https", 443, c), p("https", 8443, c)]));
    const seen = new Set(rs.map((r) => answer(r).remoteAddress));
    expect([...seen]).toEqual([lab().topo.addrs.LB_ETH0]);
  });

  test(`${design}: a client address keeps its server across 443, 8443 and 995`, async () => {
    const t0 = Date.now();
    const cs = clients().slice(12, 30);
    const rs = await lab().probe(cs.flatMap((c) => [p("https", 443, c), p("https", 8443, c), p("tls-echo", 995, c), p("https", 443, c)]));
    const byClient = new Map<string, string[]>();
    for (const r of rs) byClient.set(r.probe.localAddress, [...(byClient.get(r.probe.localAddress) ?? []), serverOf(r) ?? `failed(${r.probe.port}: ${r.error})`]);
    // Every client's four answers (443, 8443, 995, 443 again) name one server; all mismatches shown at once.
    const mismatches = [...byClient].filter(([, servers]) => servers.some((x) => x !== servers[0])).map(([c, servers]) => `${c}: ${servers.join(" ")}`);
    if (mismatches.length) {
      // Say whether a server changed state meanwhile (a flapping check moves clients legitimately).
      throw new Error(`clients whose 443, 8443, 995, 443 answers name different servers:\n${mismatches.join("\n")}\n` +
        `server state changes the proxy logged since the test began:\n${lab().stateChangesSince(t0).join("\n") || "(none)"}`);
    }
    // Not vacuous: the clients are spread over more than one server.
    expect(new Set([...byClient.values()].map((s) => s[0])).size).toBeGreaterThan(1);
  });

  if (opts.sourceAddressVariant) {
    test(`${design}: with sourceAddress set, the real servers see that address`, async () => {
      const src = lab().vip;
      await lab().startProxy(design, { sourceAddress: src });
      const rs = await lab().probe(clients().slice(31, 34).map((c) => p("https", 443, c)));
      expect(rs.map((r) => answer(r).remoteAddress)).toEqual([src, src, src]);
    });
  }

  test(`${design}: curl and openssl s_client from the client namespace get through the VIP`, () => {
    const c = clients()[35];
    const vip = lab().vip;
    const body = lab().clientExec("curl", ["-sk", "--max-time", "5", "--interface", c, `https://${vip}/curl`]);
    expect(JSON.parse(body)).toMatchObject({ path: "/curl", method: "GET" });
    const s = lab().clientExec(
      "bash",
      ["-c", `(echo hello-cttp; sleep 2) | timeout 8 openssl s_client -quiet -no_ign_eof -bind ${c}:0 -connect ${vip}:995 -servername portal.example.test 2>&1; true`],
    );
    expect(s).toMatch(/^portal portal-[123]\nhello-cttp$/m);
  });
}

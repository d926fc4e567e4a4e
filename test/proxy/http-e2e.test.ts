/**
 * ssl-on-lb end to end through the real core: the design rendered by render() with a self-signed
 * certificate, three simulated Portals on the real ports, clients from their own source addresses.
 * HTTPS on 443 and 8443 ends at the proxy and reaches the Portals' 80 and 8080 with the client's address in
 * X-Forwarded-For; 995 passes through; one client address keeps its Portal across 443, 8443 and 995; the
 * plain ports redirect; a reload serves a new certificate to new connections only. Also driven by curl.
 * Block 127.0.24.0/24 (.10 VIP, .11-.13 Portals, clients 127.0.124.x).
 */
import { execFile } from "node:child_process";
import * as tls from "node:tls";
import { render } from "../../src/config";
import { startProxy, type ProxyHandle } from "../../src/proxy";
import { closeIdleServerConnections } from "../../src/proxy/http";
import { selfSignedCert, startSimPortal, type SimPortal } from "../../src/sim/portal";
import { RawClient, waitFor } from "./http-fake-vip";

const VIP = "127.0.24.10";
const SERVERS = ["127.0.24.11", "127.0.24.12", "127.0.24.13"];
const client = (n: number) => `127.0.124.${n}`;
const cert = selfSignedCert({ cn: "portal.example.test" });
const newCert = selfSignedCert({ cn: "renewed.example.test" });

let portals: SimPortal[];
let proxy: ProxyHandle;
const logLines: string[] = [];

function config(files: { certFile: string; keyFile: string }) {
  return render({
    design: "ssl-on-lb",
    vip: VIP,
    realServers: SERVERS,
    tls: { certFile: files.certFile, keyFile: files.keyFile },
    healthCheck: { intervalMs: 1000, timeoutMs: 900, rise: 1, fall: 3 },
    admin: { address: "127.0.24.1", port: 19124 },
  });
}

beforeAll(async () => {
  portals = await Promise.all(SERVERS.map((address, i) => startSimPortal({ name: `portal-${i + 1}`, address })));
  proxy = await startProxy(config(cert), { log: (l) => void logLines.push(l), admin: false });
  // Ready when every Portal is UP for the web VIPs: each answers through 443 from some client address.
  await waitFor(() => (proxy.status() as { vips?: unknown }) !== undefined, 1000);
  const seen = new Set<string>();
  const deadline = Date.now() + 15_000;
  for (let n = 1; seen.size < 3 && Date.now() < deadline; n = (n % 60) + 1) {
    try {
      seen.add((await get(443, "/ready", client(n))).answer.server);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

afterAll(async () => {
  const changes = logLines.join("").split("\n").filter((l) => /"event":"(health|server-state|state)/.test(l));
  if (changes.length > 6) console.log(changes.join("\n")); // health flaps (a loaded machine) explain odd failures

  await proxy?.close();
  for (const v of proxy?.core.pools.values() ?? []) closeIdleServerConnections(v);
  await Promise.all((portals ?? []).map((p) => p.stop()));
});

async function get(port: number, path: string, from: string, useTls = true) {
  const c = await new RawClient(port, VIP, from, useTls ? { servername: "portal.example.test" } : undefined).connected();
  try {
    c.send(`GET ${path} HTTP/1.1\r\nHost: portal.example.test\r\n\r\n`);
    const res = await c.response();
    const answer = res.status === 200 ? JSON.parse(res.body.toString()) : {};
    return { res, answer, cn: useTls ? String((c.socket as tls.TLSSocket).getPeerCertificate()?.subject?.CN) : "" };
  } finally {
    c.close();
  }
}

/** The Portal a CTTP (995) connection from `from` reaches: TLS passes through to the Portal's own echo. */
function cttpServer(from: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: VIP, port: 995, localAddress: from, rejectUnauthorized: false }, () => undefined);
    s.setEncoding("utf8");
    let buf = "";
    s.on("data", (d: string) => {
      buf += d;
      const m = /^portal (\S+)\n/.exec(buf);
      if (m) {
        s.end();
        resolve(m[1]);
      }
    });
    s.on("error", reject);
  });
}

describe("ssl-on-lb through the real core", () => {
  test("HTTPS on 443 reaches a Portal's port 80 with the client's address in X-Forwarded-For, and carries HSTS", async () => {
    const { res, answer } = await get(443, "/ui/", client(201));
    expect(res.status).toBe(200);
    expect(answer.port).toBe(80);
    expect(answer.tls).toBe(false);
    expect(answer.headers["x-forwarded-for"]).toBe(client(201));
    expect(answer.headers["x-forwarded-proto"]).toBe("https");
    expect(answer.headers["x-forwarded-port"]).toBe("443");
    expect(answer.headers.host).toBe("portal.example.test");
    expect(res.headers["strict-transport-security"]).toEqual(["max-age=31536000"]);
  });

  test("HTTPS on 8443 reaches a Portal's port 8080 with X-Forwarded-For, and carries HSTS", async () => {
    const { res, answer } = await get(8443, "/logs", client(202));
    expect(answer.port).toBe(8080);
    expect(answer.headers["x-forwarded-for"]).toBe(client(202));
    expect(answer.headers["x-forwarded-port"]).toBe("8443");
    expect(res.headers["strict-transport-security"]).toEqual(["max-age=31536000"]);
  });

  test("995 passes through: the client's TLS ends at the Portal itself", async () => {
    expect(await cttpServer(client(203))).toMatch(/^portal-[123]$/);
  });

  test("one client address keeps its Portal across 443, 8443 and 995", async () => {
    const homes = new Set<string>();
    for (let n = 10; n < 22; n++) {
      const from = client(n);
      const web1 = (await get(443, "/p", from)).answer.server;
      const web2 = (await get(8443, "/p", from)).answer.server;
      const cttp = await cttpServer(from);
      expect({ from, web2, cttp }).toEqual({ from, web2: web1, cttp: web1 });
      homes.add(web1);
    }
    expect(homes.size).toBeGreaterThan(1); // the clients are spread, and each one stays home
  });

  test("plain 80 and 8080 redirect to https on 443 and 8443", async () => {
    const r80 = await get(80, "/ajaxui/?a=1", client(204), false);
    expect(r80.res.status).toBe(301);
    expect(r80.res.headers.location).toEqual(["https://portal.example.test/ajaxui/?a=1"]);
    const r8080 = await get(8080, "/x", client(204), false);
    expect(r8080.res.headers.location).toEqual(["https://portal.example.test:8443/x"]);
  });

  test("curl through the proxy: HTTP/1.1 over TLS 1.2+, HSTS, X-Forwarded-For of curl's source address", async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "curl",
        ["-sk", "--interface", client(205), "-D", "-", "--resolve", `portal.example.test:443:${VIP}`, "https://portal.example.test/curl?q=1", "-w", "\n%{http_version} %{ssl_verify_result}"],
        { timeout: 10_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toMatch(/strict-transport-security: max-age=31536000/i);
    const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4, out.lastIndexOf("\n")));
    expect(body.headers["x-forwarded-for"]).toBe(client(205));
    expect(body.path).toBe("/curl?q=1");
  });

  test("a reload serves a new certificate to new connections while an open HTTPS connection keeps working", async () => {
    const old = await new RawClient(443, VIP, client(206), { servername: "portal.example.test" }).connected();
    old.send("GET /before HTTP/1.1\r\nHost: portal.example.test\r\n\r\n");
    expect((await old.response()).status).toBe(200);
    await proxy.reload(config(newCert));
    try {
      expect((await get(443, "/new", client(207))).cn).toBe("renewed.example.test");
      expect((await get(8443, "/new", client(207))).cn).toBe("renewed.example.test");
      old.send("GET /after HTTP/1.1\r\nHost: portal.example.test\r\n\r\n");
      const res = await old.response();
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body.toString()).path).toBe("/after");
      expect(String((old.socket as tls.TLSSocket).getPeerCertificate().subject.CN)).toBe("portal.example.test");
    } finally {
      old.close();
      await proxy.reload(config(cert));
    }
  });
});

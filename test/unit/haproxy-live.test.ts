/**
 * The rendered haproxy.cfg behaves like the design says, checked by running HAProxy on loopback
 * (block 127.0.41.0/24: VIP .10, Portal servers .11-.12, clients 127.0.141.N) with Node servers behind it.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render, renderHaproxyConfig, writeHaproxyTlsBundles } from "../../src/config";
import { makeCert, TestCert } from "./fixtures";

const VIP = "127.0.41.10";
const SERVERS = ["127.0.41.11", "127.0.41.12"];

interface Seen {
  server: string;
  headers: http.IncomingHttpHeaders;
}
const seen: Seen[] = [];
let backends: http.Server[] = [];
let haproxy: ChildProcess | undefined;
let cert: TestCert;
let dir: string;

function requireHaproxy(): void {
  const r = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error("haproxy is not installed: this test runs the rendered config in HAProxy. Install it (Debian: apt-get install haproxy, or scripts/install-test-deps).");
  }
}

async function waitForPort(host: string, port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${host}:${port} did not open within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  requireHaproxy();
  cert = makeCert();
  dir = mkdtempSync(join(tmpdir(), "ctera-lb-haproxy-live-"));
  backends = await Promise.all(
    SERVERS.map(
      (addr) =>
        new Promise<http.Server>((resolve) => {
          const srv = http.createServer((req, res) => {
            if (req.url !== "/admin/startup") seen.push({ server: addr, headers: req.headers });
            if (req.url === "/login") res.setHeader("Set-Cookie", ["JSESSIONID=abc; Path=/", "theme=dark"]);
            if (req.url === "/login-secure") res.setHeader("Set-Cookie", ["JSESSIONID=abc; Path=/; Secure"]);
            res.end(addr);
          });
          srv.listen(80, addr, () => resolve(srv));
        }),
    ),
  );
  const cfg = render({
    design: "ssl-on-lb",
    vip: VIP,
    realServers: SERVERS,
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    balance: "roundrobin",
    // HAProxy starts servers UP; relaxed checks so a busy machine cannot flap them during the test.
    healthCheck: { type: "http-get", port: 80, path: "/admin/startup", intervalMs: 2000, rise: 1, fall: 3 },
    admin: { address: VIP, port: 9090 },
    workers: 1,
  });
  const opts = { tlsBundleDir: join(dir, "certs") };
  writeHaproxyTlsBundles(cfg, opts);
  // Only the web VIP on 80/443: the CTTP VIP's 995 has no server here.
  cfg.virtualServices = cfg.virtualServices.filter((v) => v.name === "CTERA_Portal_Web_1");
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, renderHaproxyConfig(cfg, opts));
  haproxy = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] });
  let errors = "";
  haproxy.stderr!.on("data", (c) => (errors += c));
  await waitForPort(VIP, 443, 5000).catch((e) => {
    throw new Error(`${(e as Error).message}; haproxy said: ${errors}`);
  });
  await waitForPort(VIP, 80, 5000);
});

afterAll(async () => {
  if (haproxy && haproxy.exitCode === null) {
    const gone = new Promise((r) => haproxy!.once("exit", r));
    haproxy.kill("SIGTERM");
    await gone;
  }
  await Promise.all(backends.map((b) => new Promise((r) => b.close(r))));
  cert?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function get(url: string, localAddress: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const mod = url.startsWith("https:") ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { localAddress, rejectUnauthorized: false, agent: false, headers: { host: "portal.example.test" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
  });
}

test("plain port 80 answers 301 to the https URL of the same host and path", async () => {
  const r = await get(`http://${VIP}/files/a?b=1`, "127.0.141.1");
  expect([r.status, r.headers.location]).toEqual([301, "https://portal.example.test/files/a?b=1"]);
});

test("over TLS the Portal server sees X-Forwarded-For/Proto/Port and the client gets HSTS", async () => {
  seen.length = 0;
  const r = await get(`https://${VIP}/`, "127.0.141.2");
  expect(r.headers["strict-transport-security"]).toBe("max-age=31536000");
  expect(seen[0].headers).toMatchObject({ "x-forwarded-for": "127.0.141.2", "x-forwarded-proto": "https", "x-forwarded-port": "443" });
});

test("JSESSIONID gains Secure and HttpOnly over TLS; other cookies and existing flags are left alone", async () => {
  const a = await get(`https://${VIP}/login`, "127.0.141.3");
  expect(a.headers["set-cookie"]).toEqual(["JSESSIONID=abc; Path=/; Secure; HttpOnly", "theme=dark"]);
  const b = await get(`https://${VIP}/login-secure`, "127.0.141.3");
  expect(b.headers["set-cookie"]).toEqual(["JSESSIONID=abc; Path=/; Secure; HttpOnly"]);
});

test("a client stays on one Portal server across requests even though balance is roundrobin", async () => {
  const servers = new Set<string>();
  for (let i = 0; i < 6; i++) servers.add((await get(`https://${VIP}/`, "127.0.141.4")).body);
  expect(servers.size).toBe(1);
  // ...while new clients are spread (roundrobin): without the stick table one client would alternate too.
  const spread = new Set<string>();
  for (let i = 5; i < 9; i++) spread.add((await get(`https://${VIP}/`, `127.0.141.${i}`)).body);
  expect(spread.size).toBe(2);
});

/**
 * `ctera-lb serve` with two serving processes (the primary and one worker) on the ssl-on-lb design: every
 * process terminates TLS with the same session-ticket keys, so a returning client resumes its session
 * whichever process accepts its connection (checked: the connections were spread over both processes).
 * Needs the build (`npm test` builds first). Block 127.0.17.0/24 (.10 VIP, .11-.13 Portals, clients 127.0.117.x).
 */
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { render } from "../../src/config";
import { selfSignedCert, startSimPortal, type SimPortal } from "../../src/sim/portal";
import { waitFor } from "../helpers/net";

const ROOT = join(__dirname, "..", "..");
const VIP = "127.0.17.10";
const SERVERS = ["127.0.17.11", "127.0.17.12", "127.0.17.13"];
const client = (n: number) => `127.0.117.${n}`;

let portals: SimPortal[] = [];
let proc: ChildProcess | undefined;
let out = "";
let dir: string;

const lines = () =>
  out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist", "src", "proxy", "worker.js"))) throw new Error("build first: npx tsc (npm test does)");
  portals = await Promise.all(SERVERS.map((address, i) => startSimPortal({ name: `portal-${i + 1}`, address })));
  const cert = selfSignedCert();
  const cfg = render({
    design: "ssl-on-lb",
    vip: VIP,
    realServers: SERVERS,
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    healthCheck: { intervalMs: 1000, timeoutMs: 900, rise: 1, fall: 3 },
    admin: { address: "127.0.17.1", port: 19117 },
  });
  dir = mkdtempSync(join(tmpdir(), "ctera-lb-resume-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ ...cfg, workers: 2 }));
  proc = spawn(process.execPath, [join(ROOT, "bin", "ctera-lb"), "serve", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  if (!(await waitFor(() => lines().some((l) => l.event === "started"), 20000, 50))) throw new Error(`serve did not start:\n${out}`);
});

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const gone = new Promise((r) => proc!.once("exit", r));
    proc.kill("SIGKILL");
    await gone;
  }
  await Promise.all(portals.map((p) => p.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One HTTPS request on a new connection; resolves with whether the TLS session was resumed and the
 * session to offer next time (TLS 1.3 tickets arrive after the handshake). */
function request(from: string, session?: Buffer): Promise<{ status: string; reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let last: Buffer | undefined;
    const s = tls.connect({ host: VIP, port: 443, localAddress: from, servername: "portal.example.test", rejectUnauthorized: false, session, ALPNProtocols: ["http/1.1"] });
    s.on("session", (t: Buffer) => (last = t));
    let body = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => (body += d));
    let reused = false;
    s.once("secureConnect", () => {
      reused = s.isSessionReused();
      s.write("GET /ready HTTP/1.1\r\nHost: portal.example.test\r\nConnection: close\r\n\r\n");
    });
    s.once("error", reject);
    s.once("close", () => resolve({ status: body.split("\r\n")[0], reused, session: last }));
  });
}

test("a client resumes its TLS session on whichever serving process accepts the connection", async () => {
  const first = await request(client(1));
  expect(first.status).toBe("HTTP/1.1 200 OK");
  expect(first.reused).toBe(false);
  expect(first.session).toBeDefined();
  const results: boolean[] = [];
  for (let n = 0; n < 20; n++) {
    const r = await request(client(1), first.session);
    expect(r.status).toBe("HTTP/1.1 200 OK");
    results.push(r.reused);
  }
  expect(results.filter((r) => !r)).toHaveLength(0);
  // Meaningful only if both processes took some of the connections.
  await waitFor(() => lines().filter((l) => l.event === "http-connection").length >= 21, 3000);
  const pids = new Set(lines().filter((l) => l.event === "http-connection").map((l) => l.pid));
  expect(pids.size).toBe(2);
});

test("a client that keeps only its latest ticket resumes on every reconnection (each resumption brings a new ticket)", async () => {
  let last = await request(client(2));
  expect(last.reused).toBe(false);
  const reused: boolean[] = [];
  for (let n = 0; n < 10; n++) {
    expect(last.session).toBeDefined();
    const r = await request(client(2), last.session);
    expect(r.status).toBe("HTTP/1.1 200 OK");
    reused.push(r.reused);
    last = r;
  }
  expect(reused.filter((r) => !r)).toHaveLength(0);
});

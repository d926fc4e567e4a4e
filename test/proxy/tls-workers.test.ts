/**
 * `ctera-lb serve` with 2 workers terminating TLS: every worker has the same session-ticket keys, so a
 * client's resumption succeeds on whichever worker takes its next connection. Connections are dealt round
 * robin (CTERA_LB_SCHED=rr) so that successive connections alternate between the workers. Needs the build
 * (`npx tsc`). Block 127.0.27.0/24 (.10 VIP, .11 origin, .1 admin).
 */
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { validateRuntimeConfig } from "../../src/config";
import { selfSignedCert } from "../../src/sim/portal";
import { startOrigin, type Origin } from "./http-fake-vip";
import { waitFor } from "../helpers/net";

const ROOT = join(__dirname, "..", "..");
const VIP = "127.0.27.10";
const ORIGIN = "127.0.27.11";
const TLS_PORT = 27443;
const ORIGIN_PORT = 27080;
const cert = selfSignedCert();

let origin: Origin;
let dir: string;
let proc: ChildProcess;
let out = "";

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist", "src", "proxy", "main.js"))) throw new Error("build first: npx tsc (npm test does)");
  origin = await startOrigin("portal-1", ORIGIN, ORIGIN_PORT);
  dir = mkdtempSync(join(tmpdir(), "ctera-lb-tls-workers-"));
  const file = join(dir, "config.json");
  const cfg = validateRuntimeConfig({
    version: 1,
    workers: 2,
    drainTimeoutMs: 500,
    virtualServices: [
      {
        name: "Web",
        mode: "http",
        listeners: [{ address: VIP, port: TLS_PORT, tls: { certFile: cert.certFile, keyFile: cert.keyFile } }],
        realServers: [{ name: "portal-1", address: ORIGIN, port: ORIGIN_PORT }],
        healthCheck: { type: "connect", port: ORIGIN_PORT, intervalMs: 500, rise: 1, fall: 2 },
      },
    ],
    admin: { address: "127.0.27.1", port: 27090 },
  });
  writeFileSync(file, JSON.stringify(cfg));
  proc = spawn(process.execPath, [join(ROOT, "bin", "ctera-lb"), "serve", "--config", file], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CTERA_LB_SCHED: "rr" },
  });
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const up = await waitFor(() => out.includes('"event":"started"'), 20000, 50);
  if (!up) throw new Error(`serve did not start:\n${out}`);
});

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const gone = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await gone;
  }
  await origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One request over TLS (offering `session` if given): whether the session was resumed, and the ticket got. */
function exchange(session?: Buffer): Promise<{ reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    let reused = false;
    const s = tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false, session, maxVersion: "TLSv1.3", minVersion: "TLSv1.3" }, () => {
      reused = s.isSessionReused();
      s.write("GET / HTTP/1.1\r\nHost: portal.example.test\r\nConnection: close\r\n\r\n");
    });
    s.on("session", (b: Buffer) => (ticket = b));
    s.on("data", () => undefined);
    s.on("error", reject);
    s.on("close", () => resolve({ reused, session: ticket }));
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

test("a TLS 1.3 session resumes on every worker, not only on the one that issued the ticket", async () => {
  const first = await exchange();
  expect(first.reused).toBe(false);
  expect(first.session).toBeDefined();
  const reused: boolean[] = [];
  for (let i = 0; i < 6; i++) reused.push((await exchange(first.session)).reused);
  expect(reused).toEqual([true, true, true, true, true, true]);
});

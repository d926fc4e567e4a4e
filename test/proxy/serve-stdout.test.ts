/**
 * `ctera-lb serve` keeps serving when whoever reads its log goes away (stdout becomes a closed pipe).
 * Before the fix, the first log line after that was an uncaught EPIPE that took the proxy down.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../src/config";

const ROOT = join(__dirname, "..", "..");
const ADMIN = { address: "127.0.62.1", port: 9062 };

function healthz(): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: ADMIN.address, port: ADMIN.port, path: "/healthz", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

test("a closed stdout pipe does not stop the proxy", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ctera-lb-stdout-"));
  const file = join(dir, "lb.json");
  // No real server listens on 127.0.62.11: every client connection is refused fast and logged.
  writeFileSync(file, JSON.stringify(render({ design: "ssl-on-portal", vip: "127.0.62.10", realServers: ["127.0.62.11"], admin: ADMIN })));
  const proc = spawn(process.execPath, [join(ROOT, "bin", "ctera-lb"), "serve", "--config", file, "--workers", "1"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  try {
    for (let i = 0; i < 100 && (await healthz()) !== 200; i++) await sleep(100);
    expect(await healthz()).toBe(200);
    proc.stdout!.destroy(); // the log reader goes away
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: "127.0.62.10", port: 443 }, () => s.end());
        s.on("close", () => resolve());
        s.on("error", () => resolve());
      });
    }
    await sleep(500);
    expect(proc.exitCode).toBeNull();
    expect(await healthz()).toBe(200);
    expect(stderr).not.toMatch(/EPIPE/);
  } finally {
    proc.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (proc.exitCode === null) proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

import { execFileSync } from "node:child_process";
import { SERVE_NODE_FLAGS } from "../../src/proxy/main";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { renderUserData } from "../../src/component";

const ROOT = join(__dirname, "..", "..");
const build = (out: string) => JSON.parse(execFileSync("node", ["scripts/build-image", "--out", out], { cwd: ROOT, encoding: "utf8" }));

describe("the proxy image (scripts/build-image)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ctera-lb-image-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let first: { sha256: string; file: string };

  test("same sources give the same bytes: two builds, one sha256", () => {
    first = build(join(dir, "a"));
    const second = build(join(dir, "b"));
    expect(second.sha256).toBe(first.sha256);
    const bytes = readFileSync(join(ROOT, first.file));
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(first.sha256);
    expect(readFileSync(join(ROOT, second.file)).equals(bytes)).toBe(true);
  });

  test("holds the bundle, the scripts and the systemd units, owned by 0:0 with mtime 0", () => {
    const listing = execFileSync("tar", ["-tvzf", join(ROOT, first.file)], { encoding: "utf8" }).trim().split("\n");
    const names = listing.map((l) => l.split(/\s+/).pop()).sort();
    const ha = readdirSync(join(ROOT, "scripts/ha")).map((f) => `./ha/${f}`);
    expect(names).toEqual([
      "./", "./MANIFEST", "./bin/", "./bin/ctera-lb", "./ha/", ...ha, "./lib/", "./lib/ctera-lb.js", "./lib/worker.js", "./sbin/", "./sbin/ctera-lb-boot",
      "./sbin/ctera-lb-config-sync", "./sbin/lb-network-setup", "./systemd/", "./systemd/ctera-lb-config-sync.service",
      "./systemd/ctera-lb-config-sync.timer", "./systemd/ctera-lb.service",
    ].sort());
    for (const l of listing) expect(l).toMatch(/ 0\/0 .* 1970-01-01 00:00 /);
  });

  test("the bundle carries no @pulumi code and runs the CLI's render offline", () => {
    const x = join(dir, "x");
    execFileSync("mkdir", ["-p", x]);
    execFileSync("tar", ["-xzf", join(ROOT, first.file), "-C", x]);
    const js = readFileSync(join(x, "lib/ctera-lb.js"), "utf8");
    expect(js).not.toContain("@pulumi");
    // The worker serve forks is the data plane alone: no CLI, no config validation library.
    const worker = readFileSync(join(x, "lib/worker.js"), "utf8");
    expect(worker).not.toContain("@pulumi");
    expect(worker).not.toMatch(/zod|parseArgs/);
    const out = execFileSync("node", [join(x, "lib/ctera-lb.js"), "render", "--design", "ssl-on-portal", "--vip", "10.0.0.10", "--real-server", "10.0.1.11"], { encoding: "utf8" });
    expect(JSON.parse(out).virtualServices[0].listeners.map((l: { port: number }) => l.port)).toEqual([443, 995, 8443]);
    let planErr = "";
    try {
      execFileSync("node", [join(x, "lib/ctera-lb.js"), "plan", "--stack", "ssl-on-portal"], { encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      planErr = String((e as { stderr: string }).stderr);
    }
    expect(planErr).toMatch(/not part of the proxy image/);
  });

  test("the systemd unit runs serve with the fixed config path, restarts always and reloads with SIGHUP", () => {
    const unit = readFileSync(join(ROOT, "scripts/image/systemd/ctera-lb.service"), "utf8");
    expect(unit).toMatch(/^ExecStart=\/opt\/ctera-lb\/bin\/ctera-lb serve --config \/etc\/ctera-lb\/config.json$/m);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
  });

  test("the image's ctera-lb starts node with the serving processes' flags (the primary cannot set them itself)", () => {
    const wrapper = readFileSync(join(ROOT, "scripts/image/ctera-lb"), "utf8");
    const exec = wrapper.split("\n").find((l) => l.startsWith("exec node "))!;
    expect(exec).toBeDefined();
    for (const f of SERVE_NODE_FLAGS) expect(exec.split(" ")).toContain(f);
  });
});

describe("boot scripts", () => {
  const scripts = ["scripts/lb-network-setup", "scripts/image/ctera-lb-boot", "scripts/image/ctera-lb-config-sync", "scripts/image/ctera-lb"];
  const userData = renderUserData({
    region: "eu-west-1", bucket: "ctera-lb-artifacts", imageKey: `images/ctera-lb-${"a".repeat(64)}.tar.gz`, imageSha256: "a".repeat(64),
    configKey: "config/config.json", tlsSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf", layout: "two-arm",
    clientInterface: "eth1", internalInterface: "eth0", vip: "10.0.2.10", deployment: "p/s/lb",
  });

  test("user data and every shipped script parse with bash -n", () => {
    for (const s of scripts) execFileSync("bash", ["-n", join(ROOT, s)]);
    execFileSync("bash", ["-n"], { input: userData });
  });

  test("shellcheck finds nothing in user data or the shipped scripts", () => {
    const ha = readdirSync(join(ROOT, "scripts/ha")).map((f) => `scripts/ha/${f}`);
    execFileSync("shellcheck", [...scripts, ...ha].map((s) => join(ROOT, s)));
    execFileSync("shellcheck", ["-"], { input: userData });
  });

  test("a boot parameter that could inject shell is refused", () => {
    expect(() => renderUserData({
      region: "eu-west-1", bucket: "b", imageKey: "k", imageSha256: "a".repeat(64), configKey: "c", layout: "one-arm",
      clientInterface: "eth0", internalInterface: "eth0", vip: "10.0.0.1'; rm -rf /; '", deployment: "d",
    })).toThrow(/CTERA_LB_VIP/);
  });
});

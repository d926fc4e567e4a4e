/**
 * scripts/ha/notify on its own, in a network namespace this test creates (one veth pair standing in for the
 * client-facing interface): the local address move on every keepalived transition, and the EC2 path — the
 * real AWS CLI through scripts/ha/ec2-move-vip against the EC2 stub, which runs inside the same namespace
 * (127.0.70.1 there), so nothing leaves it. Needs root; fails (never skips) without it.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildSync } from "esbuild";
import { join, resolve } from "node:path";
import { awsTestEnv } from "./aws";

const ROOT = resolve(__dirname, "..", "..");
const NOTIFY = join(ROOT, "scripts", "ha", "notify");
const NS = `cha-${process.pid}-notify`;
const VIP = "192.0.2.10";
const ENI = "eni-0a1b2c3d4e5f60718";
const ALLOC = "eipalloc-0f1e2d3c4b5a69788";
const INSTANCE = "i-0a1b2c3d4e5f60718";

// The AWS CLI takes a second or more to start, more on a busy machine.
jest.setTimeout(90_000);

let dir: string;
let stub: ChildProcess | undefined;

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8" });
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("the notify netns test needs root (ip netns): run it as root");
  if (!existsSync("/usr/bin/aws")) throw new Error("the AWS CLI is not installed: run scripts/install-test-deps (as root; Debian package awscli)");
  dir = mkdtempSync(join(tmpdir(), "ctera-ha-notify-"));
  execFileSync(join(__dirname, "ha-netns"), ["reap"], { stdio: "inherit" });
  ip("netns", "add", NS);
  ip("-n", NS, "link", "set", "lo", "up");
  ip("-n", NS, "link", "add", "eth1", "type", "veth", "peer", "name", "peer1");
  ip("-n", NS, "link", "set", "eth1", "up");
  ip("-n", NS, "link", "set", "peer1", "up");
  ip("-n", NS, "addr", "add", "192.0.2.5/24", "dev", "eth1");
  // The stub, bundled to plain JS so it can run as a process inside the namespace.
  buildSync({ entryPoints: [join(__dirname, "ec2-stub-main.ts")], outfile: join(dir, "stub.js"), bundle: true, platform: "node", logLevel: "warning" });
});

afterAll(async () => {
  await stopStub();
  spawnSync("ip", ["netns", "del", NS]);
  rmSync(dir, { recursive: true, force: true });
});

async function startStub(fail = 0): Promise<string> {
  await stopStub();
  rmSync(join(dir, "calls.json"), { force: true });
  const p = spawn("ip", ["netns", "exec", NS, process.execPath, join(dir, "stub.js"), "127.0.70.1", join(dir, "calls.json"), String(fail)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  stub = p;
  return new Promise((res, rej) => {
    p.stdout!.setEncoding("utf8").once("data", (line: string) => res((JSON.parse(line) as { url: string }).url));
    p.once("exit", (code) => rej(new Error(`the EC2 stub exited (${code})`)));
  });
}

async function stopStub(): Promise<void> {
  const p = stub;
  stub = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise((r) => {
    p.once("exit", r);
    p.kill("SIGTERM");
  });
}

function calls(): { action: string; params: Record<string, string> }[] {
  const f = join(dir, "calls.json");
  return existsSync(f) ? JSON.parse(readFileSync(f, "utf8")) : [];
}

function notify(event: string, extra: string[] = [], env: Record<string, string> = {}): void {
  execFileSync("ip", ["netns", "exec", NS, NOTIFY, event, "--vip", `${VIP}/32`, "--dev", "eth1", "--state-file", join(dir, "state"), ...extra], {
    env: awsTestEnv(dir, env),
    stdio: ["ignore", "ignore", "pipe"],
  });
}

function hasVip(): boolean {
  return ip("-n", NS, "-4", "-o", "addr", "show", "dev", "eth1").includes(` ${VIP}/32`);
}

function state(): string {
  return readFileSync(join(dir, "state"), "utf8").split(" ")[0];
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; notify.log:\n${readLog()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readLog(): string {
  const f = join(dir, "notify.log");
  return existsSync(f) ? readFileSync(f, "utf8") : "(none)";
}

describe("the notify script (local path)", () => {
  test("master adds the VIP to the interface and records MASTER; backup, fault and stop remove it", () => {
    notify("master");
    expect(hasVip()).toBe(true);
    expect(state()).toBe("MASTER");
    for (const event of ["backup", "fault", "stop"]) {
      notify("master");
      notify(event);
      expect([event, hasVip()]).toEqual([event, false]);
      expect(state()).toBe(event.toUpperCase());
    }
  });

  test("master twice keeps one VIP; backup without the VIP is harmless", () => {
    notify("master");
    notify("master");
    expect(ip("-n", NS, "-4", "-o", "addr", "show", "dev", "eth1").split(` ${VIP}/32`).length - 1).toBe(1);
    notify("backup");
    notify("backup");
    expect(hasVip()).toBe(false);
  });

  test("master announces the VIP with gratuitous ARP", async () => {
    notify("master");
    await waitFor(() => /gratuitous ARP for 192\.0\.2\.10 sent on eth1/.test(readLog()), 5000, "the gratuitous ARP");
    notify("backup");
  });

  test("refuses an unknown event or a missing --vip (exit 2)", () => {
    expect(spawnSync(NOTIFY, ["promote", "--vip", `${VIP}/32`, "--dev", "eth1"]).status).toBe(2);
    expect(spawnSync(NOTIFY, ["master", "--dev", "eth1"]).status).toBe(2);
  });
});

describe("the notify script (EC2 path, real AWS CLI against the stub)", () => {
  test("master with --ec2 moves the VIP to this node's ENI and re-associates the Elastic IP", async () => {
    const url = await startStub();
    notify("master", ["--ec2", "--eni", ENI, "--allocation-id", ALLOC, "--instance-id", INSTANCE], { AWS_ENDPOINT_URL_EC2: url });
    expect(hasVip()).toBe(true); // the local address does not wait for the EC2 API
    await waitFor(() => calls().length >= 3, 60000, "three EC2 calls");
    // The move (in this order) and, beside it, the state published on this node's instance.
    const move = calls().filter((c) => c.action !== "CreateTags");
    expect(move.map((c) => c.action)).toEqual(["AssignPrivateIpAddresses", "AssociateAddress"]);
    expect(move[0].params).toMatchObject({ NetworkInterfaceId: ENI, "PrivateIpAddress.1": VIP, AllowReassignment: "true" });
    expect(move[1].params).toMatchObject({ AllocationId: ALLOC, NetworkInterfaceId: ENI, PrivateIpAddress: VIP, AllowReassociation: "true" });
    const tag = calls().find((c) => c.action === "CreateTags")!;
    expect(tag.params).toMatchObject({ "ResourceId.1": INSTANCE, "Tag.1.Key": "ctera-lb:vrrp-state", "Tag.1.Value": "MASTER", "Tag.2.Key": "ctera-lb:vrrp-since" });
    notify("backup", ["--ec2", "--eni", ENI, "--instance-id", INSTANCE], { AWS_ENDPOINT_URL_EC2: url });
    expect(hasVip()).toBe(false);
    await waitFor(() => calls().some((c) => c.action === "CreateTags" && c.params["Tag.1.Value"] === "BACKUP"), 60000, "BACKUP published");
  });

  test("CTERA_LB_HA_EC2=0 keeps the EC2 API out of it, the local move still happens", async () => {
    const url = await startStub();
    notify("master", ["--ec2", "--eni", ENI, "--instance-id", INSTANCE], { AWS_ENDPOINT_URL_EC2: url, CTERA_LB_HA_EC2: "0" });
    expect(hasVip()).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls()).toEqual([]);
    notify("backup");
  });

  test("backup stops an EC2 move that is still retrying", async () => {
    const url = await startStub(100); // every call fails: ec2-move-vip keeps retrying (1 s, 2 s, 4 s, ...)
    notify("master", ["--ec2", "--eni", ENI, "--instance-id", INSTANCE], { AWS_ENDPOINT_URL_EC2: url });
    const moves = () => calls().filter((c) => c.action === "AssignPrivateIpAddresses").length;
    await waitFor(() => moves() >= 1, 60000, "the first EC2 call");
    const pidFile = join(dir, "ec2-move.pid");
    const pid = Number(readFileSync(pidFile, "utf8"));
    notify("backup", ["--ec2", "--eni", ENI]);
    expect(hasVip()).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    await waitFor(() => !alive(pid), 5000, "the EC2 move to end");
    const n = moves();
    await new Promise((r) => setTimeout(r, 2500));
    expect(moves()).toBe(n);
    expect(readLog()).toMatch(/stopped the pending EC2 move/);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

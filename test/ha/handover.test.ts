/**
 * The rolling image change of the HA pair, its scripts with the real AWS CLI against the local EC2/SSM stub
 * (127.0.73.0/24; dummy credentials, the CLI's own metadata lookups off, so nothing leaves loopback):
 * - ec2-publish-state: a node tags its own instance with its VRRP state (instance id from IMDSv2);
 * - handover (deploy side): waits until the new node is a healthy standby, then makes the active node step
 *   down through SSM, and waits until the new node is MASTER; it never touches the active node otherwise;
 * - step-down (node side, run through SSM): a MASTER restarts keepalived and comes back as BACKUP.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { awsCli, awsTestEnv, runScript } from "./aws";
import { Ec2Stub, ImdsStub, StubInstance, startEc2Stub, startImdsStub } from "./ec2-stub";

const HA = resolve(__dirname, "..", "..", "scripts", "ha");
const STUB_ADDR = "127.0.73.1";
const IMDS_ADDR = "127.0.73.2";
const DEPLOYMENT = "ctera-portal-lb/prod/lb";
const OLD = "i-0aaaaaaaaaaaaaaa0"; // vm-0, the active node about to be replaced
const NEW = "i-0bbbbbbbbbbbbbbb1"; // vm-1, just replaced

jest.setTimeout(120_000);

let home: string;
let stub: Ec2Stub | undefined;
let imds: ImdsStub | undefined;
beforeAll(() => {
  awsCli();
  home = mkdtempSync(join(tmpdir(), "ctera-ha-handover-"));
});
afterEach(async () => {
  await stub?.close();
  await imds?.close();
  stub = imds = undefined;
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

const env = (extra: Record<string, string> = {}) =>
  awsTestEnv(home, { ...(stub ? { AWS_ENDPOINT_URL_EC2: stub.url, AWS_ENDPOINT_URL_SSM: stub.url } : {}), ...extra });
const run = (script: string, args: string[], e: NodeJS.ProcessEnv) => runScript(join(HA, script), args, e);

const node = (id: string, ha: string, vrrp?: string): StubInstance => ({
  id,
  state: "running",
  tags: { "ctera-lb:deployment": DEPLOYMENT, "ctera-lb:ha-node": ha, ...(vrrp ? { "ctera-lb:vrrp-state": vrrp } : {}) },
});
const handover = (extra: string[] = []) =>
  run("handover", ["--deployment", DEPLOYMENT, "--from", "vm-0", "--to", "vm-1", "--poll", "0.2", "--timeout", "60", "--settle", "0", ...extra], env());
const ssmCalls = () => stub!.calls.filter((c) => c.action.startsWith("ssm:"));
const tagOf = (id: string) => stub!.instances.find((i) => i.id === id)!.tags["ctera-lb:vrrp-state"];

/** The pair as the stub holds it; a step-down sent to the MASTER hands over after `delayMs`. */
async function pair(fromState: string | undefined, toState: string | undefined, delayMs = 300, others: StubInstance[] = []) {
  const seenAtStepDown: (string | undefined)[] = [];
  stub = await startEc2Stub(STUB_ADDR, {
    instances: [node(OLD, "vm-0", fromState), node(NEW, "vm-1", toState), ...others],
    onSendCommand: (ids, commands) => {
      seenAtStepDown.push(tagOf(NEW));
      if (ids[0] === OLD && commands[0] === "/opt/ctera-lb/ha/step-down" && tagOf(OLD) === "MASTER" && tagOf(NEW) === "BACKUP") {
        setTimeout(() => {
          stub!.instances.find((i) => i.id === OLD)!.tags["ctera-lb:vrrp-state"] = "BACKUP";
          stub!.instances.find((i) => i.id === NEW)!.tags["ctera-lb:vrrp-state"] = "MASTER";
        }, delayMs);
      }
    },
  });
  return seenAtStepDown;
}

describe("ec2-publish-state (a node tags its own instance)", () => {
  test("learns its instance id through IMDSv2 and tags it with the state and the time", async () => {
    stub = await startEc2Stub(STUB_ADDR, { instances: [node(OLD, "vm-0")] });
    imds = await startImdsStub(IMDS_ADDR, { "instance-id": OLD });
    const r = await run("ec2-publish-state", ["--state", "BACKUP"], env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url }));
    expect(r.code).toBe(0);
    expect(imds.requests.every((q) => q.method === "PUT" || q.token)).toBe(true);
    const call = stub.calls.find((c) => c.action === "CreateTags")!;
    expect(call.params).toMatchObject({ "ResourceId.1": OLD, "Tag.1.Key": "ctera-lb:vrrp-state", "Tag.1.Value": "BACKUP", "Tag.2.Key": "ctera-lb:vrrp-since" });
    expect(Number(call.params["Tag.2.Value"])).toBeGreaterThan(1_700_000_000);
    expect(tagOf(OLD)).toBe("BACKUP");
  });

  test("refuses a state that is not MASTER, BACKUP, FAULT or STOP (exit 2)", () => {
    expect(spawnSync(join(HA, "ec2-publish-state"), ["--state", "PRIMARY"], { env: env() }).status).toBe(2);
  });
});

describe("handover (deploy side, before the active node is replaced)", () => {
  test("the new node is a healthy standby: the active node is asked to step down, and the VIP is on the new node when it exits", async () => {
    const seen = await pair("MASTER", "BACKUP");
    const r = await handover();
    expect(r.code).toBe(0);
    expect(ssmCalls()).toHaveLength(1);
    const body = JSON.parse(ssmCalls()[0].params.body);
    expect(body).toMatchObject({ InstanceIds: [OLD], DocumentName: "AWS-RunShellScript", Parameters: { commands: ["/opt/ctera-lb/ha/step-down"] } });
    expect(seen).toEqual(["BACKUP"]);
    expect([tagOf(OLD), tagOf(NEW)]).toEqual(["BACKUP", "MASTER"]);
    expect(r.stderr).toMatch(/vm-1 \(i-0bbbbbbbbbbbbbbb1\) is MASTER: vm-0 \(i-0aaaaaaaaaaaaaaa0\) can be replaced/);
  });

  test("a new node that is still booting is waited for; the active node is not touched before it has been BACKUP for --settle s", async () => {
    const seen = await pair("MASTER", undefined);
    let backupAt = 0;
    const later = setTimeout(() => {
      stub!.instances.find((i) => i.id === NEW)!.tags["ctera-lb:vrrp-state"] = "BACKUP";
      backupAt = Date.now();
    }, 2500);
    try {
      const r = await handover(["--settle", "3"]);
      expect(r.code).toBe(0);
    } finally {
      clearTimeout(later);
    }
    expect(seen).toEqual(["BACKUP"]); // the step-down went out only after the new node was a standby ...
    const sentAt = stub!.calls.find((c) => c.action === "ssm:SendCommand")!.at;
    expect(sentAt - backupAt).toBeGreaterThanOrEqual(3000); // ... and had settled
    expect(tagOf(NEW)).toBe("MASTER");
  });

  test("a new node that leaves BACKUP while settling stops the update", async () => {
    await pair("MASTER", "BACKUP");
    // Once the script has seen it BACKUP and is settling (its second look), the new node fails.
    const later = setInterval(() => {
      if (stub!.calls.filter((c) => c.action === "DescribeInstances").length >= 2) stub!.instances.find((i) => i.id === NEW)!.tags["ctera-lb:vrrp-state"] = "FAULT";
    }, 20);
    try {
      const r = await handover(["--settle", "30"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/went FAULT while settling/);
    } finally {
      clearInterval(later);
    }
    expect(ssmCalls()).toEqual([]);
  });

  test("a new node that never becomes healthy stops the update: exit 1, and the active node is left alone", async () => {
    await pair("MASTER", "FAULT");
    const r = await handover(["--timeout", "3"]);
    expect(r.code).toBe(1);
    expect(ssmCalls()).toEqual([]);
    expect(tagOf(OLD)).toBe("MASTER");
    expect(r.stderr).toMatch(/is FAULT after 3 s, not a healthy standby: vm-0 .* is left alone/);
    // The operator's way through, accepting the interruption: no call at all.
    const calls = stub!.calls.length;
    const off = await run("handover", ["--deployment", DEPLOYMENT, "--from", "vm-0", "--to", "vm-1", "--timeout", "3"], env({ CTERA_LB_HANDOVER: "off" }));
    expect(off.code).toBe(0);
    expect(stub!.calls.length).toBe(calls);
  });

  test("the active node does not step down in time: exit 1 (the update stops before it is replaced)", async () => {
    stub = await startEc2Stub(STUB_ADDR, { instances: [node(OLD, "vm-0", "MASTER"), node(NEW, "vm-1", "BACKUP")] }); // SSM answers, nothing moves
    const r = await handover(["--timeout", "4"]);
    expect(r.code).toBe(1);
    expect(ssmCalls()).toHaveLength(1);
    expect(r.stderr).toMatch(/not MASTER: stopping before vm-0 is replaced/);
  });

  test("nothing to hand over: the VIP is already on the new node, or the node to replace is not MASTER", async () => {
    await pair("BACKUP", "MASTER");
    expect((await handover()).code).toBe(0);
    expect(ssmCalls()).toEqual([]);
    await stub!.close();
    await pair("FAULT", "BACKUP");
    const r = await handover();
    expect(r.code).toBe(0);
    expect(ssmCalls()).toEqual([]);
    expect(r.stderr).toMatch(/vm-0 .* is FAULT, not MASTER: nothing to hand over/);
  });

  test("first deployment (no node yet) and a lone node: exit 0 without any SSM call; another deployment's nodes are not looked at", async () => {
    stub = await startEc2Stub(STUB_ADDR, { instances: [{ id: "i-0ccccccccccccccc2", state: "running", tags: { "ctera-lb:deployment": "other/stack/lb", "ctera-lb:ha-node": "vm-0", "ctera-lb:vrrp-state": "MASTER" } }] });
    const first = await handover();
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/no vm-0 instance of ctera-portal-lb\/prod\/lb: nothing to hand over/);
    stub.instances.push(node(OLD, "vm-0", "MASTER"));
    const lone = await handover();
    expect(lone.code).toBe(0);
    expect(lone.stderr).toMatch(/WARNING: no vm-1 instance .* the only node/);
    expect(ssmCalls()).toEqual([]);
  });
});

describe("step-down (node side, run through SSM)", () => {
  const dir = () => {
    const d = mkdtempSync(join(home, "step-"));
    mkdirSync(join(d, "bin"));
    // A stand-in for systemctl: a restart of keepalived passes through STOP and comes back as BACKUP.
    writeFileSync(join(d, "bin", "systemctl"), `#!/bin/bash\necho "$*" >> "${d}/systemctl.log"\necho "STOP 1" > "${d}/ha-state"\n( sleep 0.5; echo "BACKUP 2" > "${d}/ha-state" ) &\n`);
    chmodSync(join(d, "bin", "systemctl"), 0o755);
    return d;
  };
  const stepDown = (d: string) =>
    spawnSync(join(HA, "step-down"), ["--state-file", join(d, "ha-state"), "--timeout", "10"], { env: { PATH: `${join(d, "bin")}:${process.env.PATH}` }, encoding: "utf8" });

  test("a MASTER restarts keepalived and exits 0 once it is BACKUP", () => {
    const d = dir();
    writeFileSync(join(d, "ha-state"), "MASTER 1\n");
    const r = stepDown(d);
    expect(r.status).toBe(0);
    expect(readFileSync(join(d, "systemctl.log"), "utf8")).toBe("restart keepalived.service\n");
    expect(readFileSync(join(d, "ha-state"), "utf8")).toMatch(/^BACKUP/);
  });

  test("a node that is not MASTER does nothing", () => {
    const d = dir();
    writeFileSync(join(d, "ha-state"), "BACKUP 1\n");
    const r = stepDown(d);
    expect(r.status).toBe(0);
    expect(existsSync(join(d, "systemctl.log"))).toBe(false);
    expect(r.stdout).toMatch(/not MASTER: nothing to do/);
  });
});

/**
 * scripts/ha/ec2-move-vip with the real AWS CLI against a local EC2 stub (127.0.70.0/24): the calls it
 * makes when a node becomes MASTER, with the parameters that matter (this node's ENI, the VIP, reassignment
 * allowed), its retries, and IMDSv2 when the ENI is not given. Dummy credentials; the endpoint is the stub;
 * the CLI's own metadata lookups are disabled, so nothing leaves loopback.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { awsCli, awsTestEnv, runScript } from "./aws";
import { Ec2Stub, ImdsStub, startEc2Stub, startImdsStub } from "./ec2-stub";

const SCRIPT = resolve(__dirname, "..", "..", "scripts", "ha", "ec2-move-vip");
const EC2_ADDR = "127.0.70.1";
const IMDS_ADDR = "127.0.70.2";
const ENI = "eni-0a1b2c3d4e5f60718";
const ALLOC = "eipalloc-0f1e2d3c4b5a69788";
const VIP = "10.20.1.10"; // data only: the address the stub is asked to move

// The AWS CLI takes a second or more to start, more on a busy machine; a test makes up to four calls.
jest.setTimeout(90_000);

let ec2: Ec2Stub;
let home: string;
beforeAll(async () => {
  awsCli();
  home = mkdtempSync(join(tmpdir(), "ctera-ha-aws-"));
});
beforeEach(async () => {
  ec2 = await startEc2Stub(EC2_ADDR);
});
afterEach(async () => {
  await ec2.close();
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

const baseEnv = (extra: Record<string, string> = {}) => awsTestEnv(home, { AWS_ENDPOINT_URL_EC2: ec2.url, ...extra });
const run = (args: string[], env: NodeJS.ProcessEnv) => runScript(SCRIPT, args, env, 80_000);

describe("ec2-move-vip (real AWS CLI, local EC2 stub)", () => {
  test("assigns the VIP to this node's ENI with reassignment allowed, and touches no Elastic IP without one", async () => {
    const r = await run(["--vip", VIP, "--eni", ENI], baseEnv());
    expect(r).toMatchObject({ code: 0 });
    expect(ec2.calls).toHaveLength(1);
    expect(ec2.calls[0].action).toBe("AssignPrivateIpAddresses");
    expect(ec2.calls[0].params).toMatchObject({
      NetworkInterfaceId: ENI,
      "PrivateIpAddress.1": VIP,
      AllowReassignment: "true",
    });
    expect(ec2.calls[0].region).toBe("eu-west-1");
  });

  test("with a public VIP, then re-associates the Elastic IP with the VIP on this ENI", async () => {
    const r = await run(["--vip", VIP, "--eni", ENI, "--allocation-id", ALLOC], baseEnv());
    expect(r.code).toBe(0);
    expect(ec2.calls.map((c) => c.action)).toEqual(["AssignPrivateIpAddresses", "AssociateAddress"]);
    expect(ec2.calls[1].params).toMatchObject({
      AllocationId: ALLOC,
      NetworkInterfaceId: ENI,
      PrivateIpAddress: VIP,
      AllowReassociation: "true",
    });
  });

  test("--endpoint-url wins over AWS_ENDPOINT_URL_EC2", async () => {
    const r = await run(["--vip", VIP, "--eni", ENI, "--endpoint-url", ec2.url], baseEnv({ AWS_ENDPOINT_URL_EC2: "http://127.0.70.9:9" }));
    expect(r.code).toBe(0);
    expect(ec2.calls).toHaveLength(1);
  });

  test("retries a failed call and succeeds", async () => {
    ec2.failNext(1);
    const r = await run(["--vip", VIP, "--eni", ENI], baseEnv());
    expect(r.code).toBe(0);
    expect(ec2.calls.map((c) => c.action)).toEqual(["AssignPrivateIpAddresses", "AssignPrivateIpAddresses"]);
    expect(r.stderr).toMatch(/attempt 1 of 5 failed: .*RequestLimitExceeded/);
  });

  test("gives up after --attempts failures with exit 1 and does not associate the Elastic IP", async () => {
    ec2.failNext(10);
    const r = await run(["--vip", VIP, "--eni", ENI, "--allocation-id", ALLOC, "--attempts", "2"], baseEnv());
    expect(r.code).toBe(1);
    expect(ec2.calls.map((c) => c.action)).toEqual(["AssignPrivateIpAddresses", "AssignPrivateIpAddresses"]);
  });

  test("refuses to run without a VIP or a way to know its ENI (exit 2, no call)", async () => {
    expect((await run(["--eni", ENI], baseEnv())).code).toBe(2);
    expect((await run(["--vip", VIP], baseEnv())).code).toBe(2);
    expect((await run(["--vip", VIP, "--eni", "not-an-eni"], baseEnv())).code).toBe(2);
    expect(ec2.calls).toEqual([]);
  });

  describe("without --eni", () => {
    let imds: ImdsStub;
    beforeEach(async () => {
      // lo's MAC address is 00:00:00:00:00:00; the stub says which ENI and region that is.
      imds = await startImdsStub(IMDS_ADDR, {
        "network/interfaces/macs/00:00:00:00:00:00/interface-id": ENI,
        "placement/region": "eu-central-1",
      });
    });
    afterEach(async () => {
      await imds.close();
    });

    test("learns the ENI of --dev and the region from IMDSv2 (session token first)", async () => {
      const env = baseEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
      delete env.AWS_DEFAULT_REGION;
      const r = await run(["--vip", VIP, "--dev", "lo"], env);
      expect(r).toMatchObject({ code: 0 });
      expect(imds.requests[0]).toEqual({ method: "PUT", path: "/latest/api/token", token: false });
      expect(imds.requests.slice(1).every((q) => q.method === "GET" && q.token)).toBe(true);
      expect(ec2.calls).toHaveLength(1);
      expect(ec2.calls[0].params.NetworkInterfaceId).toBe(ENI);
      expect(ec2.calls[0].region).toBe("eu-central-1");
    });
  });
});

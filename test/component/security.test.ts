import { CteraPortalLoadBalancer } from "../../src/component";
import { isSecret, mockAwsId, runOffline } from "../../src/component/offline";
import type { PlannedResource } from "../../src/component/offline";
import { PORTALS, of, one, oneArm, tlsPair, twoArm } from "./fixtures";

const IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";
const sgOf = (r: PlannedResource) => r.inputs.securityGroupId;
const portsOf = (rs: PlannedResource[]) => [...new Set(rs.map((r) => r.inputs.fromPort as number))].sort((a, b) => a - b);

// Several tests read the same plan: each distinct args object is planned once per file.
const plans = new Map<string, Promise<PlannedResource[]>>();
async function plan(args: Parameters<typeof oneArm>[0] | ReturnType<typeof twoArm>) {
  const key = JSON.stringify(args);
  if (!plans.has(key)) plans.set(key, runOffline(() => new CteraPortalLoadBalancer("lb", args as never) && {}).then((r) => r.resources));
  return plans.get(key)!;
}

describe("security groups derived from the rendered config", () => {
  test("ssl-on-portal: clients reach 443, 995 and 8443 on the VIP, from clientCidrs only", async () => {
    const rs = await plan(oneArm({ clientCidrs: ["203.0.113.0/24", "198.51.100.0/24"] }));
    const ingress = of(rs, IN);
    expect(portsOf(ingress)).toEqual([443, 995, 8443]);
    expect(ingress).toHaveLength(6);
    expect(new Set(ingress.map((r) => r.inputs.cidrIpv4))).toEqual(new Set(["203.0.113.0/24", "198.51.100.0/24"]));
    for (const r of ingress) expect(r.inputs.toPort).toBe(r.inputs.fromPort);
  });

  test("ssl-on-lb: clients reach 80, 443, 8080, 8443 and 995", async () => {
    const { cert, key } = tlsPair();
    const rs = await plan(oneArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: key } }));
    expect(portsOf(of(rs, IN))).toEqual([80, 443, 995, 8080, 8443]);
  });

  test("egress goes only to the real servers (/32) on their service and health-check ports, plus HTTPS to AWS", async () => {
    const { cert, key } = tlsPair();
    const rs = await plan(twoArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: key } }));
    const egress = of(rs, OUT);
    const toServers = egress.filter((r) => r.inputs.cidrIpv4 && PORTALS.some((p) => r.inputs.cidrIpv4 === `${p}/32`));
    // ssl-on-lb: web VIPs translate to 80 and 8080, CTTP passes 995, health checks GET :443.
    for (const p of PORTALS) {
      expect(toServers.filter((r) => r.inputs.cidrIpv4 === `${p}/32`).map((r) => r.inputs.fromPort).sort((a, b) => Number(a) - Number(b))).toEqual([80, 443, 995, 8080]);
    }
    const rest = egress.filter((r) => !toServers.includes(r));
    expect(rest.map((r) => r.inputs.fromPort)).toEqual([443, 443]);
    expect(rest.map((r) => r.inputs.prefixListId ?? r.inputs.cidrIpv4).sort()).toEqual(["10.0.0.0/16", "pl-6da54004"]);
    // Every egress rule is on the internal SG (eth0); the client SG (eth1) has ingress only.
    expect(new Set(egress.map(sgOf))).toEqual(new Set(["lb-internal-id"]));
    expect(new Set(of(rs, IN).map(sgOf))).toEqual(new Set(["lb-client-id"]));
    expect(egress.every((r) => r.inputs.ipProtocol === "tcp")).toBe(true);
  });

  test("a translated server port and a health-check port override open exactly those ports", async () => {
    const rs = await plan(oneArm({ realServers: ["10.0.1.21"], virtualServices: { CTERA_Portal: { serverPort: 9443 } }, healthCheck: { port: 8081 } }));
    const toServer = of(rs, OUT).filter((r) => r.inputs.cidrIpv4 === "10.0.1.21/32");
    expect(toServer.map((r) => r.inputs.fromPort).sort()).toEqual([8081, 9443]);
  });

  test("the admin port is closed by default and opened only to adminCidrs; no SSH anywhere", async () => {
    const closed = await plan(oneArm());
    expect(of(closed, IN).some((r) => r.inputs.fromPort === 9090)).toBe(false);
    const open = await plan(twoArm({ adminCidrs: ["192.0.2.0/28"], admin: { port: 9191 } }));
    const admin = of(open, IN).filter((r) => r.inputs.fromPort === 9191);
    expect(admin.map((r) => [r.inputs.cidrIpv4, sgOf(r)])).toEqual([["192.0.2.0/28", "lb-internal-id"]]);
    for (const rs of [closed, open]) expect([...of(rs, IN), ...of(rs, OUT)].some((r) => r.inputs.fromPort === 22)).toBe(false);
  });

  test("security groups carry no inline ingress or egress blocks", async () => {
    const rs = await plan(twoArm());
    for (const sg of of(rs, "aws:ec2/securityGroup:SecurityGroup")) {
      expect(sg.inputs.ingress).toBeUndefined();
      expect(sg.inputs.egress).toBeUndefined();
    }
  });
});

describe("instance hardening", () => {
  test("IMDSv2 required with hop limit 1, encrypted root volume, an instance profile", async () => {
    const rs = await plan(oneArm());
    const vm = one(rs, "aws:ec2/instance:Instance");
    expect(vm.inputs.metadataOptions).toMatchObject({ httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 });
    expect(vm.inputs.rootBlockDevice).toMatchObject({ encrypted: true });
    expect(vm.inputs.iamInstanceProfile).toBe("lb-profile");
    expect(vm.inputs.userDataReplaceOnChange).toBe(true);
  });

  test("no PEM text anywhere in user data; the key goes to a Secrets Manager secret", async () => {
    const { cert, key } = tlsPair();
    const rs = await plan(oneArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: key } }));
    const userData = String(one(rs, "aws:ec2/instance:Instance").inputs.userData);
    expect(userData).not.toMatch(/-----BEGIN/);
    expect(userData).not.toContain(key.split("\n")[1]);
    expect(userData).toContain("CTERA_LB_TLS_SECRET_ARN='arn:aws:secretsmanager:");
    const version = one(rs, "aws:secretsmanager/secretVersion:SecretVersion");
    const wrapped = version.inputs.secretString as { value: string };
    expect(isSecret(wrapped)).toBe(true); // stored as a Pulumi secret, never plain in the state
    const secretString = JSON.parse(wrapped.value);
    expect(secretString.privateKey).toBe(key);
    // Nothing else carries the key: only the secret version does.
    const carriers = rs.filter((r) => JSON.stringify(r.inputs).includes(key.split("\n")[1]));
    expect(carriers.map((r) => r.type)).toEqual(["aws:secretsmanager/secretVersion:SecretVersion"]);
  });

  test("the artifact bucket is private, encrypted and versioned", async () => {
    const rs = await plan(oneArm());
    expect(one(rs, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs).toMatchObject({
      blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
    });
    expect(one(rs, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
    ]);
    expect(one(rs, "aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration).toEqual({ status: "Enabled" });
  });
});

describe("least-privilege instance role", () => {
  test("reads only this deployment's image and config objects and its TLS secret; claims the VIP only on its tagged ENIs", async () => {
    const { cert, key } = tlsPair();
    const rs = await plan(oneArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: key } }));
    const doc = JSON.parse(String(one(rs, "aws:iam/rolePolicy:RolePolicy").inputs.policy));
    const byAction = Object.fromEntries(doc.Statement.map((s: { Action: string[] }) => [s.Action.join(","), s]));
    expect(Object.keys(byAction).sort()).toEqual(["ec2:AssignPrivateIpAddresses", "s3:GetObject", "secretsmanager:GetSecretValue"]);
    const image = one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", "lb-image-object").inputs.key;
    expect(byAction["s3:GetObject"].Resource).toEqual([
      `arn:aws:s3:::ctera-lb-lb-artifacts/${image}`,
      "arn:aws:s3:::ctera-lb-lb-artifacts/config/config.json",
    ]);
    expect(byAction["secretsmanager:GetSecretValue"].Resource).toEqual(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:lb-tls-AbCdEf"]);
    // The VIP may be moved only onto this VM's client-facing ENI (exact ARN) that carries the deployment tag.
    expect(byAction["ec2:AssignPrivateIpAddresses"].Resource).toEqual([`arn:aws:ec2:eu-west-1:123456789012:network-interface/${mockAwsId("eni", "lb-vm-0-eth0")}`]);
    expect(byAction["ec2:AssignPrivateIpAddresses"].Condition).toEqual({ StringEquals: { "aws:ResourceTag/ctera-lb:deployment": "ctera-portal-lb/test/lb" } });
    for (const s of doc.Statement) {
      expect(s.Effect).toBe("Allow");
      for (const a of s.Action) expect(a).not.toMatch(/\*/);
      for (const r of [s.Resource].flat()) expect(r === "*" || /^arn:aws:s3:::\*/.test(r)).toBe(false);
    }
    // The ENIs carry the tag the condition checks.
    expect(one(rs, "aws:ec2/networkInterface:NetworkInterface", "lb-vm-0-eth0").inputs.tags).toMatchObject({ "ctera-lb:deployment": "ctera-portal-lb/test/lb" });
    const ssm = one(rs, "aws:iam/rolePolicyAttachment:RolePolicyAttachment");
    expect(ssm.inputs.policyArn).toBe("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
    const trust = JSON.parse(String(one(rs, "aws:iam/role:Role").inputs.assumeRolePolicy));
    expect(trust.Statement).toEqual([expect.objectContaining({ Action: "sts:AssumeRole", Principal: { Service: "ec2.amazonaws.com" } })]);
  });

  test("ssl-on-portal has no Secrets Manager permission at all", async () => {
    const rs = await plan(oneArm());
    const doc = JSON.parse(String(one(rs, "aws:iam/rolePolicy:RolePolicy").inputs.policy));
    expect(JSON.stringify(doc)).not.toContain("secretsmanager");
  });
});

/** highAvailability: a pair of VMs, VRRP only between them, IAM scoped to the pair, keepalived.conf per node. */
import { CteraPortalLoadBalancer } from "../../src/component";
import { ConfigError } from "../../src/config";
import { mockAwsId, runOffline } from "../../src/component/offline";
import type { PlannedResource } from "../../src/component/offline";
import { of, one, twoArm, oneArm } from "./fixtures";

const ENI = "aws:ec2/networkInterface:NetworkInterface";
let rs: PlannedResource[];
let out: { vip: string; ids: string[] };

beforeAll(async () => {
  const r = await runOffline(() => {
    const lb = new CteraPortalLoadBalancer("lb", twoArm({ highAvailability: true, publicVip: true }));
    return { vip: lb.vipAddress, ids: lb.instanceIds };
  });
  rs = r.resources;
  out = r.result as typeof out;
});
const eth0Ip = (node: string) => {
  // The mocks answer each ENI with an address; the component reads it back as privateIp.
  const ud = String(one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", `lb-ha-${node}`).inputs.content);
  return /unicast_src_ip (\S+)/.exec(ud)![1];
};

describe("highAvailability", () => {
  test("two VMs, each with eth0 in the internal and eth1 in the external subnet: the same subnets for both", () => {
    expect(of(rs, "aws:ec2/instance:Instance").map((r) => r.name).sort()).toEqual(["lb-vm-0", "lb-vm-1"]);
    expect(out.ids).toEqual(["lb-vm-0-id", "lb-vm-1-id"]);
    for (const n of ["vm-0", "vm-1"]) {
      expect(one(rs, ENI, `lb-${n}-eth0`).inputs.subnetId).toBe("subnet-0aaaaaaaaaaaaaaa1");
      expect(one(rs, ENI, `lb-${n}-eth1`).inputs.subnetId).toBe("subnet-0bbbbbbbbbbbbbbb2");
    }
    // The VIP is reserved once, in the subnet both client-facing ENIs share.
    expect(one(rs, ENI, "lb-vip").inputs.subnetId).toBe("subnet-0bbbbbbbbbbbbbbb2");
  });

  test("VRRP (IP protocol 112) is allowed only between the pair's internal addresses", () => {
    const vrrp = [...of(rs, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"), ...of(rs, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")].filter(
      (r) => r.inputs.ipProtocol === "112",
    );
    const pair = [`${eth0Ip("vm-0")}/32`, `${eth0Ip("vm-1")}/32`].sort();
    expect(vrrp).toHaveLength(4);
    expect(vrrp.filter((r) => r.type.endsWith("IngressRule")).map((r) => r.inputs.cidrIpv4).sort()).toEqual(pair);
    expect(vrrp.filter((r) => r.type.endsWith("EgressRule")).map((r) => r.inputs.cidrIpv4).sort()).toEqual(pair);
    expect(new Set(vrrp.map((r) => r.inputs.securityGroupId))).toEqual(new Set(["lb-internal-id"]));
    // No other rule carries protocol 112, and no rule is open to all protocols.
    expect(rs.filter((r) => r.inputs.ipProtocol === "-1")).toEqual([]);
  });

  test("the role may move the VIP and the Elastic IP only onto the pair's own client-facing ENIs", () => {
    const doc = JSON.parse(String(one(rs, "aws:iam/rolePolicy:RolePolicy").inputs.policy));
    const st = (action: string) => doc.Statement.find((s: { Action: string[] }) => s.Action.includes(action));
    const enis = [`arn:aws:ec2:eu-west-1:123456789012:network-interface/${mockAwsId("eni", "lb-vm-0-eth1")}`, `arn:aws:ec2:eu-west-1:123456789012:network-interface/${mockAwsId("eni", "lb-vm-1-eth1")}`];
    expect(st("ec2:AssignPrivateIpAddresses").Resource).toEqual(enis);
    expect(st("ec2:AssociateAddress").Resource).toEqual([`arn:aws:ec2:eu-west-1:123456789012:elastic-ip/${mockAwsId("eipalloc", "lb-vip-eip")}`, ...enis]);
    expect(st("s3:GetObject").Resource).toEqual(expect.arrayContaining([
      "arn:aws:s3:::ctera-lb-lb-artifacts/ha/vm-0/keepalived.conf",
      "arn:aws:s3:::ctera-lb-lb-artifacts/ha/vm-1/keepalived.conf",
    ]));
  });

  test("each node gets its own keepalived.conf: unicast to the peer, nopreempt, its own ENI for the VIP move", () => {
    const conf = (n: string) => String(one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", `lb-ha-${n}`).inputs.content);
    const [a, b] = [conf("vm-0"), conf("vm-1")];
    expect(/unicast_peer \{\s+(\S+)/.exec(a)![1]).toBe(eth0Ip("vm-1"));
    expect(/unicast_peer \{\s+(\S+)/.exec(b)![1]).toBe(eth0Ip("vm-0"));
    for (const c of [a, b]) {
      expect(c).toMatch(/^\s+nopreempt$/m);
      expect(c).toMatch(/^\s+interface eth0$/m);
      expect(c).toContain(`--vip ${out.vip}/32 --dev eth1`);
      expect(c).toContain(`--allocation-id ${mockAwsId("eipalloc", "lb-vip-eip")}`);
    }
    expect(a).toContain(`--eni ${mockAwsId("eni", "lb-vm-0-eth1")}`);
    expect(b).toContain(`--eni ${mockAwsId("eni", "lb-vm-1-eth1")}`);
    // High priorities keep the master-down skew small ((256 - p)/256 s); nopreempt makes the gap irrelevant.
    expect(a).toMatch(/^\s+priority 250$/m);
    expect(b).toMatch(/^\s+priority 240$/m);
    // The track script asks the node's own admin API on its internal address.
    expect(a).toContain(`http://${eth0Ip("vm-0")}:9090/healthz`);
  });

  test("the nodes' user data names the node and its keepalived object; the VIP is not claimed at boot", () => {
    const ud = (n: string) => String(one(rs, "aws:ec2/instance:Instance", `lb-${n}`).inputs.userData);
    expect(ud("vm-0")).toContain("CTERA_LB_HA_NODE='vm-0'");
    expect(ud("vm-1")).toContain("CTERA_LB_HA_CONFIG_KEY='ha/vm-1/keepalived.conf'");
    expect(ud("vm-0")).not.toMatch(/auth_pass/);
  });

  test("without an admin token there is no persistence sync: no peer object, no admin-port rule between the pair", () => {
    expect(rs.filter((r) => r.name.startsWith("lb-ha-peer-") || r.name.startsWith("lb-peer-sync-"))).toEqual([]);
  });

  test("with an admin token each node's peer object names the OTHER node's admin API, and only the pair may reach that port from each other", async () => {
    const { resources } = await runOffline(() => new CteraPortalLoadBalancer("lb", twoArm({ highAvailability: true, admin: { port: 9191, token: "pair-token-0123456789" } })) && {});
    const ip = (node: string) => /unicast_src_ip (\S+)/.exec(String(one(resources, "aws:s3/bucketObjectv2:BucketObjectv2", `lb-ha-${node}`).inputs.content))![1];
    const peerOf = (node: string) => one(resources, "aws:s3/bucketObjectv2:BucketObjectv2", `lb-ha-peer-${node}`).inputs;
    expect(peerOf("vm-0").key).toBe("ha/vm-0/peer.json");
    expect(JSON.parse(String(peerOf("vm-0").content))).toEqual({ peer: { address: ip("vm-1"), port: 9191 } });
    expect(JSON.parse(String(peerOf("vm-1").content))).toEqual({ peer: { address: ip("vm-0"), port: 9191 } });
    const rules = resources.filter((r) => r.name.startsWith("lb-peer-sync-"));
    expect(rules).toHaveLength(4);
    for (const r of rules) expect(r.inputs).toMatchObject({ ipProtocol: "tcp", fromPort: 9191, toPort: 9191, securityGroupId: "lb-internal-id" });
    expect(rules.map((r) => r.inputs.cidrIpv4).sort()).toEqual([`${ip("vm-0")}/32`, `${ip("vm-0")}/32`, `${ip("vm-1")}/32`, `${ip("vm-1")}/32`]);
    // The role reads its node's peer object; the VMs wait for it.
    const doc = JSON.parse(String(one(resources, "aws:iam/rolePolicy:RolePolicy").inputs.policy));
    const get = doc.Statement.find((x: { Action: string[] }) => x.Action.includes("s3:GetObject")).Resource;
    expect(get).toEqual(expect.arrayContaining(["arn:aws:s3:::ctera-lb-lb-artifacts/ha/vm-0/peer.json", "arn:aws:s3:::ctera-lb-lb-artifacts/ha/vm-1/peer.json"]));
    // The shared config object carries no peer (it differs per node): the config poller adds it on the VM.
    expect(JSON.parse(String(one(resources, "aws:s3/bucketObjectv2:BucketObjectv2", "lb-config-object").inputs.content)).highAvailability).toBeUndefined();
  });

  test("a single VM (the default) has no VRRP rule and no keepalived object", async () => {
    const { resources } = await runOffline(() => new CteraPortalLoadBalancer("lb", oneArm()) && {});
    expect(resources.filter((r) => r.inputs.ipProtocol === "112")).toEqual([]);
    expect(resources.filter((r) => r.name.startsWith("lb-ha-"))).toEqual([]);
    expect(of(resources, "aws:ec2/instance:Instance")).toHaveLength(1);
  });

  test("bad VRRP settings are refused with the field named", async () => {
    let err: unknown;
    await runOffline(() => {
      try {
        new CteraPortalLoadBalancer("lb", oneArm({ highAvailability: { virtualRouterId: 300 } }));
      } catch (e) {
        err = e;
      }
      return {};
    });
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toEqual(["highAvailability.virtualRouterId"]);
  });
});

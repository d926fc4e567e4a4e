/**
 * `ctera-lb plan --stack <name>`: the stack program under Pulumi's mocks, for both example stacks, and a
 * broken stack file failing with the field named.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli";
import { planStack } from "../../src/plan";
import type { StackPlan } from "../../src/plan";

const STACKS = join(__dirname, "..", "..", "stacks");
const count = (p: StackPlan, type: string) => p.resources.filter((r) => r.type === type).length;
const ingressPorts = (p: StackPlan) =>
  [...new Set(p.resources.filter((r) => r.type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" && !/-(admin|vrrp)-/.test(String(r.name))).map((r) => r.inputs.fromPort as number))].sort((a, b) => a - b);

describe("ctera-lb plan", () => {
  test("ssl-on-portal: one-arm, an HA pair of VMs with one ENI each, a TCP VIP on 443/995/8443", async () => {
    const p = await planStack("ssl-on-portal", { buildImage: false });
    expect(count(p, "ctera-portal-lb:index:CteraPortalLoadBalancer")).toBe(1);
    expect(count(p, "aws:ec2/instance:Instance")).toBe(2);
    expect(count(p, "aws:ec2/networkInterface:NetworkInterface")).toBe(3); // eth0 per VM + the VIP reservation
    expect(count(p, "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment")).toBe(0);
    expect(count(p, "aws:ec2/securityGroup:SecurityGroup")).toBe(1);
    expect(count(p, "command:local:Command")).toBe(3); // the image build + a handover step per node of the pair
    expect(count(p, "aws:secretsmanager/secret:Secret")).toBe(0);
    expect(ingressPorts(p)).toEqual([443, 995, 8443]);
    // 3 ports × 2 client CIDRs + the admin port × 1 admin CIDR + VRRP from each of the pair
    expect(count(p, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")).toBe(9);
    const cfg = JSON.parse(p.proxyConfig);
    expect(cfg.virtualServices.map((v: { name: string; mode: string }) => `${v.name}/${v.mode}`)).toEqual(["CTERA_Portal/tcp"]);
    expect(cfg.virtualServices[0].healthCheck.host).toBe("global.portal.example.com");
    expect(p.outputs.vipAddress).toBe(cfg.virtualServices[0].listeners[0].address);
    expect(p.text).toMatch(/\+ aws:ec2\/instance:Instance {2}ctera-lb-vm-0/);
    expect(p.text).toMatch(/subnetId="subnet-0aaaaaaaaaaaaaaa1"/);
    expect(p.text).toMatch(/PROXY CONFIG/);
  });

  test("ssl-on-lb: two-arm, eth1 at device index 1, HTTP VIPs with TLS plus CTTP, an Elastic IP", async () => {
    const p = await planStack("ssl-on-lb", { buildImage: false });
    expect(count(p, "aws:ec2/instance:Instance")).toBe(2);
    expect(count(p, "aws:ec2/networkInterface:NetworkInterface")).toBe(5); // eth0 + eth1 per VM, VIP reservation
    const attach = p.resources.filter((r) => r.type === "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment");
    expect(attach.map((a) => a.inputs.deviceIndex)).toEqual([1, 1]);
    // VRRP between the pair only: 2 ingress + 2 egress rules of protocol 112.
    expect(p.resources.filter((r) => r.inputs.ipProtocol === "112")).toHaveLength(4);
    expect(count(p, "aws:ec2/securityGroup:SecurityGroup")).toBe(2);
    expect(count(p, "aws:ec2/eip:Eip")).toBe(1);
    expect(ingressPorts(p)).toEqual([80, 443, 995, 8080, 8443]);
    const cfg = JSON.parse(p.proxyConfig);
    expect(cfg.virtualServices.map((v: { name: string; mode: string }) => `${v.name}/${v.mode}`)).toEqual([
      "CTERA_Portal_Web_1/http", "CTERA_Portal_Web_2/http", "CTERA_Portal_CTTP/tcp",
    ]);
    expect(cfg.virtualServices[0].listeners[1].tls).toEqual({ certFile: "/etc/ctera-lb/tls/cert.pem", keyFile: "/etc/ctera-lb/tls/key.pem" });
    expect(p.outputs.publicVip).toBe("198.51.100.7");
    expect(p.text).toMatch(/userData=<\d+ bytes: image sha256 [0-9a-f]{64}, VIP on eth1, no secrets>/);
  });

  test("the CLI prints the plan with the real image hash and exits 0", async () => {
    let stdout = "";
    const code = await main(["plan", "--stack", "ssl-on-portal"], { stdout: (s) => (stdout += s), stderr: () => undefined });
    expect(code).toBe(0);
    const hash = /image sha256 ([0-9a-f]{64})/.exec(stdout)?.[1];
    expect(hash).toBeDefined();
    expect(stdout).toContain(`imageHash = "${hash}"`);
  });

  test("a broken stack file fails with exit 2 and the field named", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctera-lb-stacks-"));
    try {
      copyFileSync(join(STACKS, "Pulumi.ssl-on-lb.yaml"), join(dir, "Pulumi.broken.yaml"));
      const text = readFileSync(join(dir, "Pulumi.broken.yaml"), "utf8").replace(/^ {4}externalSubnetId: .*\n/m, "");
      writeFileSync(join(dir, "Pulumi.broken.yaml"), text);
      let stderr = "";
      let stdout = "";
      const code = await main(["plan", "--stack", "broken", "--stacks-dir", dir, "--no-build"], {
        stdout: (s) => (stdout += s),
        stderr: (s) => (stderr += s),
      });
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr).toMatch(/network\.externalSubnetId: required for layout two-arm/);
      expect(stderr).toMatch(/Pulumi\.broken\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unknown stack exits 2 and names the stacks that exist", async () => {
    let stderr = "";
    const code = await main(["plan", "--stack", "nope"], { stdout: () => undefined, stderr: (s) => (stderr += s) });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--stack: no stack file Pulumi\.nope\.yaml/);
  });
});

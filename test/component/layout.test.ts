import { CteraPortalLoadBalancer } from "../../src/component";
import { mockAwsId, runOffline } from "../../src/component/offline";
import { of, one, oneArm, twoArm } from "./fixtures";

const ENI = "aws:ec2/networkInterface:NetworkInterface";
const INSTANCE = "aws:ec2/instance:Instance";
const ATTACH = "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment";

describe("network layouts", () => {
  test("one-arm: the VM has one ENI (eth0, device index 0) in subnetId and the VIP is claimed on eth0", async () => {
    const { resources, result } = await runOffline(() => {
      const lb = new CteraPortalLoadBalancer("lb", oneArm());
      return { vip: lb.vipAddress };
    });
    const vmEnis = of(resources, ENI).filter((r) => r.name.startsWith("lb-vm-0-"));
    expect(vmEnis.map((r) => r.name)).toEqual(["lb-vm-0-eth0"]);
    expect(vmEnis[0].inputs.subnetId).toBe("subnet-0aaaaaaaaaaaaaaa1");
    expect(of(resources, ATTACH)).toHaveLength(0);
    const vm = one(resources, INSTANCE);
    expect(vm.inputs.primaryNetworkInterface).toEqual({ networkInterfaceId: `${mockAwsId("eni", "lb-vm-0-eth0")}` });
    // The VIP: a secondary private IP reserved in the client subnet, claimed by the VM on its eth0.
    const holder = one(resources, ENI, "lb-vip");
    expect(holder.inputs.subnetId).toBe("subnet-0aaaaaaaaaaaaaaa1");
    expect(holder.inputs.privateIpsCount).toBe(1);
    const vip = (result as { vip: string }).vip;
    expect(String(vm.inputs.userData)).toContain(`CTERA_LB_CLIENT_IF='eth0'`);
    expect(String(vm.inputs.userData)).toContain(`CTERA_LB_VIP='${vip}'`);
  });

  test("two-arm: eth0 (index 0) in the internal subnet, eth1 (index 1) in the external subnet, VIP on eth1", async () => {
    const { resources, result } = await runOffline(() => {
      const lb = new CteraPortalLoadBalancer("lb", twoArm());
      return { vip: lb.vipAddress };
    });
    const eth0 = one(resources, ENI, "lb-vm-0-eth0");
    const eth1 = one(resources, ENI, "lb-vm-0-eth1");
    expect(eth0.inputs.subnetId).toBe("subnet-0aaaaaaaaaaaaaaa1");
    expect(eth1.inputs.subnetId).toBe("subnet-0bbbbbbbbbbbbbbb2");
    const vm = one(resources, INSTANCE);
    expect(vm.inputs.primaryNetworkInterface).toEqual({ networkInterfaceId: `${mockAwsId("eni", "lb-vm-0-eth0")}` });
    const attach = one(resources, ATTACH);
    expect(attach.inputs).toMatchObject({ networkInterfaceId: `${mockAwsId("eni", "lb-vm-0-eth1")}`, instanceId: "lb-vm-0-id", deviceIndex: 1 });
    // The VIP is reserved in the EXTERNAL subnet and claimed on eth1.
    expect(one(resources, ENI, "lb-vip").inputs.subnetId).toBe("subnet-0bbbbbbbbbbbbbbb2");
    expect(String(vm.inputs.userData)).toContain(`CTERA_LB_CLIENT_IF='eth1'`);
    expect(String(vm.inputs.userData)).toContain(`CTERA_LB_LAYOUT='two-arm'`);
    expect(String(vm.inputs.userData)).toContain(`CTERA_LB_VIP='${(result as { vip: string }).vip}'`);
    // Client SG on eth1 and the VIP holder; internal SG on eth0.
    expect(eth1.inputs.securityGroups).toEqual(["lb-client-id"]);
    expect(eth0.inputs.securityGroups).toEqual(["lb-internal-id"]);
  });

  test("a fixed vipAddress is used as given and needs no reservation ENI", async () => {
    const { resources, result } = await runOffline(() => {
      const lb = new CteraPortalLoadBalancer("lb", twoArm({ vipAddress: "10.0.2.10" }));
      return { vip: lb.vipAddress, config: lb.proxyConfig };
    });
    const r = result as { vip: string; config: string };
    expect(r.vip).toBe("10.0.2.10");
    expect(resources.find((x) => x.name === "lb-vip")).toBeUndefined();
    const cfg = JSON.parse(r.config);
    expect(cfg.virtualServices[0].listeners.every((l: { address: string }) => l.address === "10.0.2.10")).toBe(true);
  });
});

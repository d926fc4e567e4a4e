/**
 * The HA pair's rolling order for changes that replace the VMs (a new image): Pulumi dependencies make it
 * handover-vm-1 → vm-1 → handover-vm-0 → vm-0, each VM delete-before-replace on interfaces that stay, each
 * handover step re-run when its node's instance inputs change. One VM keeps create-before-delete.
 */
import { CteraPortalLoadBalancer } from "../../src/component";
import { runOffline, FAKE_IMAGE_HASH } from "../../src/component/offline";
import type { PlannedResource } from "../../src/component/offline";
import { one, twoArm, oneArm } from "./fixtures";

const CMD = "command:local:Command";
const VM = "aws:ec2/instance:Instance";
const plan = async (imageHash = FAKE_IMAGE_HASH, extra = {}) =>
  (await runOffline(() => new CteraPortalLoadBalancer("lb", twoArm({ highAvailability: true, ...extra })) && {}, { imageHash })).resources;

let rs: PlannedResource[];
beforeAll(async () => {
  rs = await plan();
});

describe("rolling order of the HA pair", () => {
  test("vm-1 waits for its handover step, the handover step of vm-0 waits for vm-1, and vm-0 waits for that step", () => {
    expect(one(rs, VM, "lb-vm-1").options.dependsOn).toContain("lb-handover-vm-1");
    expect(one(rs, CMD, "lb-handover-vm-0").options.dependsOn).toContain("lb-vm-1");
    expect(one(rs, VM, "lb-vm-0").options.dependsOn).toContain("lb-handover-vm-0");
    // And not the other way round: nothing of vm-1's side waits for vm-0.
    expect(one(rs, VM, "lb-vm-1").options.dependsOn).not.toContain("lb-vm-0");
    expect(one(rs, CMD, "lb-handover-vm-1").options.dependsOn).not.toContain("lb-vm-0");
  });

  test("each handover step hands the VIP to the other node, for this deployment, and fails the update rather than wait forever", () => {
    expect(one(rs, CMD, "lb-handover-vm-1").inputs.create).toBe(
      "scripts/ha/handover --deployment 'ctera-portal-lb/test/lb' --from vm-1 --to vm-0 --region eu-west-1 --timeout 900",
    );
    expect(String(one(rs, CMD, "lb-handover-vm-0").inputs.create)).toMatch(/--from vm-0 --to vm-1 /);
  });

  test("the VMs are replaced delete-before-replace and keep their interfaces (the addresses VRRP and the peers name)", () => {
    for (const n of ["lb-vm-0", "lb-vm-1"]) expect(one(rs, VM, n).options.deleteBeforeReplace).toBe(true);
    for (const n of ["lb-vm-0-eth0", "lb-vm-0-eth1", "lb-vm-1-eth0", "lb-vm-1-eth1"]) {
      const eni = rs.find((r) => r.name === n)!;
      expect(eni.options.replacementTrigger).toBeUndefined();
    }
  });

  test("a new image re-runs both handover steps (their triggers change with each node's instance inputs)", async () => {
    const other = await plan("f".repeat(64));
    for (const n of ["lb-handover-vm-0", "lb-handover-vm-1"]) {
      const before = one(rs, CMD, n).inputs.triggers as string[];
      const after = one(other, CMD, n).inputs.triggers as string[];
      expect(after).not.toEqual(before);
    }
    // Per node: vm-0's step follows vm-0's inputs, not vm-1's.
    expect(one(rs, CMD, "lb-handover-vm-0").inputs.triggers).not.toEqual(one(rs, CMD, "lb-handover-vm-1").inputs.triggers);
    // A change of the instance type (a stop/start of each VM) re-runs them too.
    const bigger = await plan(FAKE_IMAGE_HASH, { instanceType: "c7i.large" });
    expect(one(bigger, CMD, "lb-handover-vm-0").inputs.triggers).not.toEqual(one(rs, CMD, "lb-handover-vm-0").inputs.triggers);
  });

  test("a newer AMI found by the default lookup re-runs nothing (the VMs ignore it); a changed given AMI does", async () => {
    const newer = (await runOffline(() => new CteraPortalLoadBalancer("lb", twoArm({ highAvailability: true })) && {}, { latestAmi: "ami-0fffffffffffffff0" })).resources;
    expect(one(newer, VM, "lb-vm-0").inputs.ami).toBe("ami-0fffffffffffffff0");
    expect(one(newer, CMD, "lb-handover-vm-0").inputs.triggers).toEqual(one(rs, CMD, "lb-handover-vm-0").inputs.triggers);
    const given = async (ami: string) => one(await plan(FAKE_IMAGE_HASH, { ami }), CMD, "lb-handover-vm-1").inputs.triggers;
    expect(await given("ami-0aaaaaaaaaaaaaaa0")).not.toEqual(await given("ami-0bbbbbbbbbbbbbbb0"));
  });

  test("the nodes carry their name for the handover, Pulumi ignores the VRRP state tags they set themselves, and may set only those, on this deployment's instances", () => {
    expect((one(rs, VM, "lb-vm-1").inputs.tags as Record<string, string>)["ctera-lb:ha-node"]).toBe("vm-1");
    expect(one(rs, VM, "lb-vm-0").options.ignoreChanges).toEqual(
      expect.arrayContaining(['tags["ctera-lb:vrrp-state"]', 'tagsAll["ctera-lb:vrrp-state"]', 'tags["ctera-lb:vrrp-since"]']),
    );
    const doc = JSON.parse(String(one(rs, "aws:iam/rolePolicy:RolePolicy").inputs.policy));
    const st = doc.Statement.find((s: { Action: string[] }) => s.Action.includes("ec2:CreateTags"));
    expect(st).toEqual({
      Sid: "PublishVrrpStateOnOwnInstances",
      Effect: "Allow",
      Action: ["ec2:CreateTags"],
      Resource: ["arn:aws:ec2:eu-west-1:123456789012:instance/*"],
      Condition: {
        StringEquals: { "aws:ResourceTag/ctera-lb:deployment": "ctera-portal-lb/test/lb" },
        "ForAllValues:StringEquals": { "aws:TagKeys": ["ctera-lb:vrrp-state", "ctera-lb:vrrp-since"] },
      },
    });
    // The notify script publishes through the EC2 API (--ec2), with the region.
    const conf = String(one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", "lb-ha-vm-0").inputs.content);
    expect(conf).toMatch(/notify_backup "\S+\/notify backup .*--ec2 .*--region eu-west-1/);
  });

  test("one VM: no handover step, create-before-delete with new interfaces per image, no tag permission", async () => {
    const { resources } = await runOffline(() => new CteraPortalLoadBalancer("lb", oneArm()) && {});
    expect(resources.filter((r) => r.type === CMD).map((r) => r.name)).toEqual(["lb-image"]);
    expect(one(resources, VM).options.deleteBeforeReplace).toBe(false);
    expect(resources.find((r) => r.name === "lb-vm-0-eth0")!.options.replacementTrigger).toBe(FAKE_IMAGE_HASH);
    expect(String(one(resources, "aws:iam/rolePolicy:RolePolicy").inputs.policy)).not.toMatch(/CreateTags/);
  });
});

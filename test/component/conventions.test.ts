/** Component conventions: parenting, providers, tags, stable names, no surprise replacements. */
import * as aws from "@pulumi/aws";
import { CteraPortalLoadBalancer } from "../../src/component";
import { FAKE_IMAGE_HASH, runOffline } from "../../src/component/offline";
import { one, oneArm, tlsPair, twoArm } from "./fixtures";

const COMPONENT_URN = "urn:pulumi:test::ctera-portal-lb::ctera-portal-lb:index:CteraPortalLoadBalancer::lb";
/** AWS resources that have no tags of their own. */
const UNTAGGABLE = new Set([
  "ctera-portal-lb:index:CteraPortalLoadBalancer", "command:local:Command", "pulumi:providers:aws",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "aws:s3/bucketVersioning:BucketVersioning",
  "aws:s3/bucketPolicy:BucketPolicy", "aws:secretsmanager/secretVersion:SecretVersion", "aws:iam/rolePolicy:RolePolicy",
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment",
  "aws:ec2/eipAssociation:EipAssociation",
]);

describe("component conventions", () => {
  test("has the stable type token and every child hangs under the component", async () => {
    const { resources } = await runOffline(() => new CteraPortalLoadBalancer("lb", twoArm({ publicVip: true })) && {});
    const comp = one(resources, "ctera-portal-lb:index:CteraPortalLoadBalancer");
    expect(comp.name).toBe("lb");
    const byName = new Map(resources.map((r) => [r.name, r]));
    // Walk each child's parent chain up to the component (children of children, e.g. bucket settings, count).
    const reachesComponent = (urn: string, depth = 0): boolean => {
      if (urn === COMPONENT_URN) return true;
      const parent = byName.get(urn.split("::").pop()!);
      return !!parent && parent !== comp && depth < 5 && reachesComponent(parent.options.parent, depth + 1);
    };
    for (const r of resources.filter((x) => x !== comp)) {
      expect({ name: r.name, parented: reachesComponent(r.options.parent) }).toEqual({ name: r.name, parented: true });
      expect(r.name.startsWith("lb-")).toBe(true);
    }
  });

  test("an explicit provider in opts reaches every AWS child", async () => {
    const { resources } = await runOffline(() => {
      const eu = new aws.Provider("frankfurt", { region: "eu-central-1" });
      new CteraPortalLoadBalancer("lb", oneArm(), { providers: [eu] });
      return {};
    });
    const awsChildren = resources.filter((r) => r.type.startsWith("aws:"));
    expect(awsChildren.length).toBeGreaterThan(10);
    for (const r of awsChildren) expect(r.options.provider).toMatch(/::frankfurt::/);
  });

  test("the user's tags reach every taggable child, merged once with the deployment tags", async () => {
    const { cert, key } = tlsPair();
    const { resources } = await runOffline(() =>
      new CteraPortalLoadBalancer("lb", twoArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: key }, publicVip: true, adminCidrs: ["192.0.2.0/28"], tags: { CostCenter: "cc-42", Owner: "it-ops" } })) && {},
    );
    const taggable = resources.filter((r) => !UNTAGGABLE.has(r.type));
    expect(taggable.length).toBeGreaterThan(20);
    for (const r of taggable) {
      expect({ name: r.name, tags: r.inputs.tags }).toEqual({
        name: r.name,
        tags: expect.objectContaining({ CostCenter: "cc-42", Owner: "it-ops", "ctera-lb:deployment": "ctera-portal-lb/test/lb" }),
      });
    }
  });

  test("the default AMI lookup never replaces the VM later (ignoreChanges ami); a given ami is managed", async () => {
    const looked = await runOffline(() => new CteraPortalLoadBalancer("lb", oneArm()) && {});
    const vm = one(looked.resources, "aws:ec2/instance:Instance");
    expect(vm.inputs.ami).toBe("ami-0123456789abcdef0");
    expect(vm.options.ignoreChanges).toEqual(["ami"]);
    const pinned = await runOffline(() => new CteraPortalLoadBalancer("lb", oneArm({ ami: "ami-0fedcba9876543210" })) && {});
    const vm2 = one(pinned.resources, "aws:ec2/instance:Instance");
    expect(vm2.inputs.ami).toBe("ami-0fedcba9876543210");
    expect(vm2.options.ignoreChanges).toEqual([]);
  });

  test("the VM's interfaces are replaced with the image (replacementTrigger = image hash), create-before-delete", async () => {
    const { resources } = await runOffline(() => new CteraPortalLoadBalancer("lb", twoArm()) && {});
    for (const name of ["lb-vm-0-eth0", "lb-vm-0-eth1", "lb-vm-0-eth1-attach"]) {
      const r = resources.find((x) => x.name === name)!;
      expect(r.options.replacementTrigger).toBe(FAKE_IMAGE_HASH);
      expect(r.options.deleteBeforeReplace).toBe(false);
    }
    expect(one(resources, "aws:ec2/instance:Instance").options.deleteBeforeReplace).toBe(false);
    // The VIP's reservation is not part of a VM generation: it never follows the image.
    expect(resources.find((x) => x.name === "lb-vip")!.options.replacementTrigger).toBeUndefined();
  });

  test("Graviton instance types look up an arm64 image, others x86_64", async () => {
    const { isGraviton } = await import("../../src/component");
    expect(["t4g.small", "m7g.large", "c7gn.xlarge", "r8g.medium"].map(isGraviton)).toEqual([true, true, true, true]);
    expect(["t3.small", "m7i.large", "c6a.xlarge", "g5.xlarge"].map(isGraviton)).toEqual([false, false, false, false]);
  });
});

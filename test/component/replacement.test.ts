import { CteraPortalLoadBalancer } from "../../src/component";
import { runOffline } from "../../src/component/offline";
import type { PlannedResource } from "../../src/component/offline";
import { one, oneArm, twoArm } from "./fixtures";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);

/** The inputs AWS would replace (or stop/start) the VM and its interfaces for. */
function replacementRelevant(rs: PlannedResource[]) {
  const pick = (r: PlannedResource) => {
    const { tags: _t, ...rest } = r.inputs;
    return rest;
  };
  return {
    instance: pick(one(rs, "aws:ec2/instance:Instance")),
    enis: rs.filter((r) => r.name.startsWith("lb-vm-0-eth") && r.type === "aws:ec2/networkInterface:NetworkInterface").map(pick),
  };
}

async function run(args: ReturnType<typeof oneArm>, imageHash: string) {
  const { resources, result } = await runOffline(
    () => {
      const lb = new CteraPortalLoadBalancer("lb", args);
      return { config: lb.proxyConfig, imageHash: lb.imageHash };
    },
    { imageHash },
  );
  return { resources, ...(result as { config: string; imageHash: string }) };
}

describe("what replaces the VM", () => {
  test("a config-only change updates the config object and leaves every VM input unchanged", async () => {
    const before = await run(twoArm(), HASH_A);
    const after = await run(twoArm({ persistence: { timeoutSeconds: 600 }, healthCheck: { host: "global.portal.example.com" } }), HASH_A);
    expect(after.config).not.toEqual(before.config);
    const cfgObj = (rs: PlannedResource[]) => one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", "lb-config-object").inputs;
    expect(cfgObj(after.resources).content).toBe(after.config);
    expect(cfgObj(after.resources).key).toBe(cfgObj(before.resources).key);
    expect(replacementRelevant(after.resources)).toEqual(replacementRelevant(before.resources));
  });

  test("a new image hash changes the VM's user data (replace, create-before-delete) and the image object key", async () => {
    const a = await run(oneArm(), HASH_A);
    const b = await run(oneArm(), HASH_B);
    expect(b.imageHash).toBe(HASH_B);
    const ud = (rs: PlannedResource[]) => String(one(rs, "aws:ec2/instance:Instance").inputs.userData);
    expect(ud(a.resources)).toContain(`CTERA_LB_IMAGE_SHA256='${HASH_A}'`);
    expect(ud(b.resources)).toContain(`CTERA_LB_IMAGE_SHA256='${HASH_B}'`);
    expect(replacementRelevant(b.resources).instance).not.toEqual(replacementRelevant(a.resources).instance);
    const key = (rs: PlannedResource[]) => one(rs, "aws:s3/bucketObjectv2:BucketObjectv2", "lb-image-object").inputs.key;
    expect(key(b.resources)).toBe(`images/ctera-lb-${HASH_B}.tar.gz`);
    // The config is the same object either way.
    expect(b.config).toBe(a.config);
  });

  test("the user data checks the image's sha256 before it unpacks it, and references the config by its stable key", async () => {
    const { resources } = await run(oneArm(), HASH_A);
    const ud = String(one(resources, "aws:ec2/instance:Instance").inputs.userData);
    expect(ud.indexOf("sha256sum -c")).toBeGreaterThan(0);
    expect(ud.indexOf("sha256sum -c")).toBeLessThan(ud.indexOf("tar -xzf"));
    expect(ud).toContain("CTERA_LB_CONFIG_KEY='config/config.json'");
    expect(ud).not.toContain("virtualServices");
  });
});

import { CteraPortalLoadBalancer } from "../../src/component";
import { ConfigError } from "../../src/config";
import { runOffline } from "../../src/component/offline";
import { oneArm, tlsPair, twoArm } from "./fixtures";

/** Constructs the component under mocks and returns the error it threw (or fails). */
async function refusal(args: unknown): Promise<ConfigError> {
  let err: unknown;
  await runOffline(() => {
    try {
      new CteraPortalLoadBalancer("lb", args as never);
    } catch (e) {
      err = e;
    }
    return {};
  });
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return err;
}

describe("invalid args are refused at construction, with the field named", () => {
  test("two-arm without externalSubnetId", async () => {
    const a = twoArm();
    delete (a.network as { externalSubnetId?: string }).externalSubnetId;
    const e = await refusal(a);
    expect(e.issues.map((i) => i.path)).toEqual(["network.externalSubnetId"]);
    expect(e.message).toMatch(/network\.externalSubnetId: required for layout two-arm/);
  });

  test("ssl-on-lb without tls", async () => {
    const e = await refusal(oneArm({ design: "ssl-on-lb" }));
    expect(e.issues.map((i) => i.path)).toEqual(["tls"]);
    expect(e.message).toMatch(/tls: ssl-on-lb terminates TLS/);
  });

  test("no real servers", async () => {
    const e = await refusal(oneArm({ realServers: [] }));
    expect(e.issues.map((i) => i.path)).toEqual(["realServers"]);
    expect(e.message).toMatch(/at least one real server/);
  });

  test("a bad CIDR", async () => {
    const e = await refusal(oneArm({ clientCidrs: ["203.0.113.0/24", "203.0.113.300/24"] }));
    expect(e.issues.map((i) => i.path)).toEqual(["clientCidrs[1]"]);
    expect(e.message).toMatch(/not a CIDR block/);
  });

  test("a bad subnet id, an unknown key and a wrong key for the certificate, each named", async () => {
    expect((await refusal(oneArm({ network: { layout: "one-arm", vpcId: "vpc-0a1b", subnetId: "sn-1" } }))).issues.map((i) => i.path)).toEqual(["network.subnetId"]);
    expect((await refusal({ ...oneArm(), listenPorts: [443] })).issues.map((i) => i.path)).toEqual(["listenPorts"]);
    const { cert } = tlsPair();
    const other = require("node:crypto").generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" });
    const e = await refusal(oneArm({ design: "ssl-on-lb", tls: { certificate: cert, privateKey: String(other) } }));
    expect(e.issues.map((i) => i.path)).toEqual(["tls.privateKey"]);
  });

  test("a refused construction creates no resource", async () => {
    const { resources } = await runOffline(() => {
      try {
        new CteraPortalLoadBalancer("lb", oneArm({ realServers: ["not-an-address"] }));
      } catch {
        /* expected */
      }
      return {};
    });
    expect(resources.filter((r) => r.type !== "ctera-portal-lb:index:CteraPortalLoadBalancer")).toEqual([]);
  });
});

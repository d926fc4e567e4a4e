/**
 * One-arm: client, load balancer and Portal servers share one subnet (198.51.100.0/24); the VIP is a second
 * address on the load balancer's eth0. The proxy runs from the image with the config render() makes.
 */
import { assertCanRun } from "./harness";
import { Lab } from "./lab";
import { designSpecs } from "./designs";

let lab: Lab | undefined;
const getLab = () => {
  if (!lab) throw new Error("the one-arm lab did not start (see the first error)");
  return lab;
};

beforeAll(async () => {
  assertCanRun();
  lab = await Lab.start({ tag: "one", layout: "one-arm" });
}, 120_000);

afterAll(async () => {
  await lab?.stop();
}, 60_000);

describe("one-arm layout", () => {
  test("the proxy runs from the shipped image", () => {
    expect(getLab().artifact.source).toBe("image");
  });
  describe("ssl-on-portal", () => designSpecs(getLab, "ssl-on-portal", { sourceAddressVariant: true }));
  describe("ssl-on-lb", () => designSpecs(getLab, "ssl-on-lb"));
});

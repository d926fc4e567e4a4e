/**
 * Two-arm: the load balancer's eth1 is on the external subnet (192.0.2.0/25, VIP 192.0.2.10) where clients
 * arrive through a router; eth0 is on the server network (198.51.100.0/24) with the default route. The
 * component's boot script (scripts/lb-network-setup) sets up eth1's source routing, exactly as on the VM.
 */
import { assertCanRun } from "./harness";
import { Lab } from "./lab";
import { answer, designSpecs } from "./designs";
import type { Design } from "../../src/config";

let lab: Lab | undefined;
const getLab = () => {
  if (!lab) throw new Error("the two-arm lab did not start (see the first error)");
  return lab;
};

beforeAll(async () => {
  assertCanRun();
  lab = await Lab.start({ tag: "two", layout: "two-arm" });
}, 120_000);

afterAll(async () => {
  await lab?.stop();
}, 60_000);

const MiB = 1024 * 1024;

/** Bytes that crossed each of the lb's interfaces while `fn` ran. */
async function delta(fn: () => Promise<void>) {
  const t = getLab().topo;
  const b0 = t.counters("lb", "eth0");
  const b1 = t.counters("lb", "eth1");
  await fn();
  const a0 = t.counters("lb", "eth0");
  const a1 = t.counters("lb", "eth1");
  return {
    eth0: { tx: a0.txBytes - b0.txBytes, rx: a0.rxBytes - b0.rxBytes },
    eth1: { tx: a1.txBytes - b1.txBytes, rx: a1.rxBytes - b1.rxBytes },
  };
}

function trafficSpecs(design: Design) {
  test(`${design}: an upload reaches the Portal by eth0 only; eth1 carries the client side`, async () => {
    const lab = getLab();
    const size = 16 * MiB;
    let served: ReturnType<typeof answer> | undefined;
    const d = await delta(async () => {
      const [r] = await lab.probe([{ kind: "https", host: lab.vip, port: 443, localAddress: lab.topo.addrs.CLIENT_ADDRS[36], path: "/upload", bodyBytes: size, timeoutMs: 20_000 }]);
      served = answer(r);
    });
    process.stdout.write(`[e2e two-arm ${design}] 16 MiB upload: lb eth0 tx ${d.eth0.tx} B, eth1 rx ${d.eth1.rx} B, eth1 tx ${d.eth1.tx} B\n`);
    expect(served).toMatchObject({ bodyBytes: size });
    expect(d.eth1.rx).toBeGreaterThan(size); // the upload arrived on the client-facing arm
    expect(d.eth0.tx).toBeGreaterThan(size); // and left toward the Portal by the server arm
    expect(d.eth1.tx).toBeLessThan(size / 8); // nothing of it went out by eth1 (only ACKs and the answer)
  });

  test(`${design}: a download comes from the Portal by eth0 and leaves toward the client by eth1 only`, async () => {
    const lab = getLab();
    const size = 16 * MiB;
    let status: number | undefined;
    const d = await delta(async () => {
      const [r] = await lab.probe([{ kind: "https", host: lab.vip, port: 443, localAddress: lab.topo.addrs.CLIENT_ADDRS[37], path: `/bytes/${size}`, timeoutMs: 20_000 }]);
      status = r.status;
    });
    process.stdout.write(`[e2e two-arm ${design}] 16 MiB download: lb eth0 rx ${d.eth0.rx} B, eth0 tx ${d.eth0.tx} B, eth1 tx ${d.eth1.tx} B\n`);
    expect(status).toBe(200);
    expect(d.eth0.rx).toBeGreaterThan(size);
    expect(d.eth1.tx).toBeGreaterThan(size);
    expect(d.eth0.tx).toBeLessThan(size / 8); // no client-bound bytes on the server arm
  });
}

describe("two-arm layout", () => {
  test("the proxy runs from the shipped image", () => {
    expect(getLab().artifact.source).toBe("image");
  });

  test("the boot script routes replies from eth1's addresses back out of eth1, and server traffic out of eth0", () => {
    const t = getLab().topo;
    const a = t.addrs;
    expect(t.exec("lb", "ip", ["route", "get", a.CLIENT, "from", a.VIP])).toMatch(/ dev eth1 /);
    expect(t.exec("lb", "ip", ["route", "get", a.PORTALS[0]])).toMatch(/ dev eth0 /);
    expect(t.exec("lb", "ip", ["route", "get", a.PORTALS[0]])).toMatch(new RegExp(` src ${a.LB_ETH0.replace(/\./g, "\\.")}`));
  });

  describe("ssl-on-portal", () => {
    designSpecs(getLab, "ssl-on-portal");
    trafficSpecs("ssl-on-portal");
  });
  describe("ssl-on-lb", () => {
    designSpecs(getLab, "ssl-on-lb");
    trafficSpecs("ssl-on-lb");
  });
});

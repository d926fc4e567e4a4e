/**
 * The test hosts themselves: each layout is wired as documented in scripts/netns/clb-netns, touches nothing
 * in the root namespace, and is gone afterwards.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT, Topology, assertCanRun, Layout } from "./harness";
import { bootScriptArgs } from "./lab";

// A one-shot TCP responder: answers every connection with the address it came from, then closes.
const RESPONDER = `
const net = require("net");
const [addr, port] = process.argv.slice(1);
net.createServer((s) => s.end(s.remoteAddress + "\\n")).listen(+port, addr, () => console.log("ready"));
`;
// Connects from a local address and prints what the server answered (or the error).
const CONNECT = `
const net = require("net");
const [host, port, local] = process.argv.slice(1);
const s = net.connect({ host, port: +port, localAddress: local, timeout: 1500 });
let got = "";
s.on("data", (d) => (got += d));
s.on("end", () => { console.log(got.trim()); process.exit(0); });
s.on("timeout", () => { console.log("timeout"); process.exit(0); });
s.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
`;

function rootSnapshot(): string {
  const run = (args: string[]) => execFileSync("ip", args, { encoding: "utf8" });
  return [run(["-o", "link", "show"]), run(["-o", "addr", "show"]), run(["route", "show", "table", "all"]), run(["rule", "show"])]
    .join("\n")
    .replace(/ +\\ +/g, " ");
}

async function reach(t: Topology, from: "client" | "lb", local: string, host: "lb" | "portal-1", addr: string): Promise<string> {
  const srv = t.spawn(host, process.execPath, ["-e", RESPONDER, addr, "7000"]);
  try {
    await srv.waitFor((_j, line) => line === "ready", 10_000, "responder ready");
    return t.exec(from, process.execPath, ["-e", CONNECT, addr, "7000", local]).trim();
  } finally {
    await srv.stop();
  }
}

describe("end-to-end test hosts (network namespaces)", () => {
  test("the e2e suite runs as root with iproute2 (it fails here, never skips, when it cannot)", () => {
    expect(() => assertCanRun()).not.toThrow();
  });

  for (const layout of ["one-arm", "two-arm"] as Layout[]) {
    test(`${layout}: hosts are built and removed without touching the root namespace`, async () => {
      const before = rootSnapshot();
      const t = Topology.up("topo", layout);
      try {
        expect(rootSnapshot()).toBe(before);
        const names = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
        for (const h of ["client", "lb", "portal-1", "portal-2", "portal-3", "sw"]) expect(names).toContain(t.ns(h as never));
        // The load balancer reaches every Portal server on the server network from its own eth0 address.
        expect(await reach(t, "lb", t.addrs.LB_ETH0, "portal-1", t.addrs.PORTALS[0])).toBe(t.addrs.LB_ETH0);
        if (layout === "one-arm") {
          // One subnet: the client reaches the load balancer directly.
          expect(await reach(t, "client", t.addrs.CLIENT_ADDRS[3], "lb", t.addrs.LB_ETH0)).toBe(t.addrs.CLIENT_ADDRS[3]);
        }
      } finally {
        await t.down();
      }
      const after = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
      expect(after).not.toContain(t.prefix);
      expect(rootSnapshot()).toBe(before);
    });
  }

  test("two-arm: replies from eth1's addresses are lost without source routing and come back once the component's boot script has run", async () => {
    const t = Topology.up("topo2", "two-arm");
    try {
      // The reply to a routed client leaves by eth0's default route, and the router drops it (as the
      // cloud's source/dest check does): the client never gets an answer.
      expect(await reach(t, "client", t.addrs.CLIENT, "lb", t.addrs.LB_ETH1!)).toMatch(/^(timeout|error)/);
      // The component's boot script, run as on the VM, makes both eth1's own address and the VIP answer.
      t.exec("lb", "bash", [join(ROOT, "scripts", "lb-network-setup"), ...bootScriptArgs(t.addrs)]);
      expect(await reach(t, "client", t.addrs.CLIENT, "lb", t.addrs.LB_ETH1!)).toBe(t.addrs.CLIENT);
      expect(await reach(t, "client", t.addrs.CLIENT_ADDRS[9], "lb", t.addrs.VIP)).toBe(t.addrs.CLIENT_ADDRS[9]);
    } finally {
      await t.down();
    }
  });
});

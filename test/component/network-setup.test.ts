/**
 * scripts/lb-network-setup: the exact commands for each layout (dry run), its argument checks, and, where
 * network namespaces are available, the state it leaves in a namespace this test creates (no traffic).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const SCRIPT = join(__dirname, "..", "..", "scripts", "lb-network-setup");
const run = (...args: string[]) => spawnSync(SCRIPT, args, { encoding: "utf8" });

describe("lb-network-setup", () => {
  test("one-arm: non-local bind and the VIP on eth0, no policy routing", () => {
    const r = run("--dry-run", "--layout", "one-arm", "--client-if", "eth0", "--vip", "10.0.1.10");
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["sysctl -q -w net.ipv4.ip_nonlocal_bind=1", "ip -4 addr add 10.0.1.10/32 dev eth0"]);
  });

  test("two-arm: replies from eth1's address and the VIP leave through eth1's gateway (subnet + 1 by default)", () => {
    const r = run("--dry-run", "--layout", "two-arm", "--client-if", "eth1", "--client-ip", "10.0.2.20", "--client-cidr", "10.0.2.0/24", "--vip", "10.0.2.10");
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([
      "sysctl -q -w net.ipv4.ip_nonlocal_bind=1",
      "ip -4 addr add 10.0.2.10/32 dev eth1",
      "sysctl -q -w net.ipv4.conf.eth1.rp_filter=2",
      "ip -4 route replace 10.0.2.0/24 dev eth1 src 10.0.2.20 table 101",
      "ip -4 route replace default via 10.0.2.1 dev eth1 table 101",
      "ip -4 rule add from 10.0.2.20 lookup 101 priority 1101",
      "ip -4 rule add from 10.0.2.10 lookup 101 priority 1101",
    ]);
  });

  test("HA pair (--no-vip-address): the same routing, but the VIP address is left to keepalived's MASTER; the boot script asks for it on pair nodes only", () => {
    const r = run("--dry-run", "--layout", "two-arm", "--client-if", "eth1", "--client-ip", "10.0.2.20", "--client-cidr", "10.0.2.0/24", "--vip", "10.0.2.10", "--no-vip-address");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => l.includes("addr add"))).toEqual([]);
    expect(lines).toContain("ip -4 rule add from 10.0.2.10 lookup 101 priority 1101"); // replies from the VIP once it is here
    const env = spawnSync(SCRIPT, ["--dry-run"], { encoding: "utf8", env: { ...process.env, CTERA_LB_LAYOUT: "one-arm", CTERA_LB_CLIENT_IF: "eth0", CTERA_LB_VIP: "10.0.1.10", CTERA_LB_VIP_ADDRESS: "0" } });
    expect(env.stdout).not.toContain("addr add");
    // ctera-lb-boot passes the flag exactly when the node is one of a pair (CTERA_LB_HA_NODE set).
    const boot = readFileSync(join(__dirname, "..", "..", "scripts", "image", "ctera-lb-boot"), "utf8");
    expect(boot).toMatch(/lb-network-setup"[^\n]*\\\n[^\n]*--vip "\$CTERA_LB_VIP" \$\{CTERA_LB_HA_NODE:\+--no-vip-address\}\n/);
  });

  test("missing or bad parameters exit 2 and name the option", () => {
    expect(run("--layout", "two-arm", "--client-if", "eth1", "--vip", "10.0.2.10")).toMatchObject({ status: 2, stderr: expect.stringMatching(/--client-ip is required for two-arm/) });
    expect(run("--layout", "three-arm", "--client-if", "eth1", "--vip", "10.0.2.10")).toMatchObject({ status: 2, stderr: expect.stringMatching(/--layout is one-arm or two-arm/) });
    expect(run("--layout", "one-arm", "--client-if", "eth0", "--vip", "10.0.2.300")).toMatchObject({ status: 2, stderr: expect.stringMatching(/--vip/) });
  });

  test("parameters may come from the environment instead of options", () => {
    const r = spawnSync(SCRIPT, ["--dry-run"], { encoding: "utf8", env: { ...process.env, CTERA_LB_LAYOUT: "one-arm", CTERA_LB_CLIENT_IF: "eth0", CTERA_LB_VIP: "10.0.1.10" } });
    expect(r.stdout).toContain("ip -4 addr add 10.0.1.10/32 dev eth0");
  });

  const ns = `clb-ctl-${process.pid}`;
  const netnsOk = (() => {
    try {
      execFileSync("ip", ["netns", "add", ns], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  afterAll(() => {
    if (netnsOk) spawnSync("ip", ["netns", "del", ns]);
  });
  (netnsOk ? test : test.skip)("in a network namespace: sets up two-arm source routing, idempotently, and removes it", () => {
    const inNs = (...cmd: string[]) => execFileSync("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8" });
    inNs("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0");
    inNs("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "peer1");
    inNs("ip", "link", "set", "peer0", "up");
    inNs("ip", "link", "set", "peer1", "up");
    inNs("ip", "addr", "add", "10.0.1.20/24", "dev", "eth0");
    inNs("ip", "addr", "add", "10.0.2.20/24", "dev", "eth1");
    inNs("ip", "link", "set", "eth0", "up");
    inNs("ip", "link", "set", "eth1", "up");
    const args = ["--layout", "two-arm", "--client-if", "eth1", "--client-ip", "10.0.2.20", "--client-cidr", "10.0.2.0/24", "--vip", "10.0.2.10"];
    inNs(SCRIPT, ...args);
    inNs(SCRIPT, ...args);
    const rules = inNs("ip", "-4", "rule", "show").split("\n").filter((l) => l.includes("lookup 101"));
    expect(rules.map((l) => l.replace(/\s+/g, " ").trim())).toEqual(["1101: from 10.0.2.20 lookup 101", "1101: from 10.0.2.10 lookup 101"]);
    expect(inNs("ip", "-4", "route", "show", "table", "101")).toContain("default via 10.0.2.1 dev eth1");
    expect(inNs("ip", "-4", "-o", "addr", "show", "dev", "eth1")).toContain("10.0.2.10/32");
    expect(inNs("sysctl", "-n", "net.ipv4.ip_nonlocal_bind").trim()).toBe("1");
    // The route a reply from the VIP takes: out of eth1.
    expect(inNs("ip", "-4", "route", "get", "198.51.100.9", "from", "10.0.2.10")).toMatch(/via 10\.0\.2\.1 dev eth1/);
    inNs(SCRIPT, ...args, "--remove");
    expect(inNs("ip", "-4", "rule", "show")).not.toContain("lookup 101");
    expect(inNs("ip", "-4", "-o", "addr", "show", "dev", "eth1")).not.toContain("10.0.2.10/32");
  });
});

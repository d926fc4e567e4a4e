/**
 * The HA pair's keepalived.conf: what it must say (unicast VRRP between the pair, PASS auth, nopreempt,
 * a 1 s advert, the proxy's /healthz as track script, the notify script moving the VIP) and keepalived's own
 * verdict on it (`keepalived --config-test`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, render } from "../../src/config";
import { KeepalivedOptions, renderKeepalivedConfig, renderKeepalivedPair } from "../../src/config/keepalived";

const SCRIPT_DIR = resolve(__dirname, "..", "..", "scripts", "ha");

const base: KeepalivedOptions = {
  self: { name: "lb-a", address: "198.51.100.5", priority: 250 },
  peer: { name: "lb-b", address: "198.51.100.6", priority: 240 },
  vrrpInterface: "eth0",
  virtualRouterId: 51,
  authPass: "s3cr3tPw",
  vip: { address: "192.0.2.10", prefixLength: 25, interface: "eth1" },
  admin: { address: "127.0.0.1", port: 9090 },
  scriptDir: SCRIPT_DIR,
};

/** The lines of the vrrp_instance block, trimmed. */
function instanceLines(conf: string): string[] {
  const start = conf.indexOf("vrrp_instance");
  return conf
    .slice(start)
    .split("\n")
    .map((l) => l.trim());
}

function configIssues(conf: string): string[] {
  const found = spawnSync("sh", ["-c", "command -v keepalived"], { encoding: "utf8" });
  if (found.status !== 0) {
    throw new Error("keepalived is not installed: run scripts/install-test-deps (as root) — these tests need its config checker");
  }
  const dir = mkdtempSync(join(tmpdir(), "ctera-ha-conf-"));
  try {
    const file = join(dir, "keepalived.conf");
    writeFileSync(file, conf);
    const r = spawnSync("keepalived", ["--config-test", "-f", file], { encoding: "utf8" });
    return `${r.stdout}\n${r.stderr}`
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "")
      // By design keepalived owns no address (the notify script moves the VIP, locally and through the EC2
      // API), and keepalived says so; that remark is the only one we accept.
      .filter((l) => !/No VIP specified; at least one is sensible/.test(l));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("keepalived.conf for the HA pair", () => {
  test("speaks unicast VRRP from this node's internal address to the peer's only", () => {
    const lines = instanceLines(renderKeepalivedConfig(base));
    expect(lines).toContain("interface eth0");
    expect(lines).toContain("unicast_src_ip 198.51.100.5");
    const peerBlock = lines.slice(lines.indexOf("unicast_peer {") + 1, lines.indexOf("unicast_peer {") + 3);
    expect(peerBlock).toEqual(["198.51.100.6", "}"]);
    expect(lines).toContain("check_unicast_src");
    expect(lines).toContain("unicast_fault_no_peer");
    expect(lines).toContain("virtual_router_id 51");
  });

  test("authenticates adverts with an 8-character PASS", () => {
    const conf = renderKeepalivedConfig(base);
    expect(conf).toMatch(/authentication \{\n\s+auth_type PASS\n\s+auth_pass s3cr3tPw\n\s+\}/);
    expect(conf).not.toMatch(/auth_type AH/);
  });

  test("refuses an auth_pass longer than the 8 characters keepalived would use", () => {
    expect(() => renderKeepalivedConfig({ ...base, authPass: "123456789" })).toThrow(/authPass: auth_pass is 1-8/);
  });

  test("starts both nodes as BACKUP with nopreempt by default, and preempts only when asked", () => {
    const [a, b] = renderKeepalivedPair({ ...base, nodes: [base.self, base.peer] });
    for (const conf of [a, b]) {
      expect(instanceLines(conf)).toEqual(expect.arrayContaining(["state BACKUP", "nopreempt"]));
      expect(conf).not.toMatch(/state MASTER/);
    }
    const preempting = renderKeepalivedConfig({ ...base, preempt: true });
    expect(instanceLines(preempting)).toContain("state BACKUP");
    expect(preempting).not.toMatch(/nopreempt/);
  });

  test("renders the pair mirrored: each node is the other's unicast peer", () => {
    const [a, b] = renderKeepalivedPair({ ...base, nodes: [base.self, base.peer] });
    expect(a).toMatch(/unicast_src_ip 198\.51\.100\.5\n\s+unicast_peer \{\n\s+198\.51\.100\.6/);
    expect(b).toMatch(/unicast_src_ip 198\.51\.100\.6\n\s+unicast_peer \{\n\s+198\.51\.100\.5/);
    expect(a).toMatch(/priority 250/);
    expect(b).toMatch(/priority 240/);
  });

  test("adds the VIP as a /32 unless told the prefix", () => {
    const { prefixLength: _p, ...vip } = base.vip;
    expect(renderKeepalivedConfig({ ...base, vip })).toContain("notify master --vip 192.0.2.10/32 --dev eth1");
  });

  test("points the scripts at the image's /opt/ctera-lb/ha by default", () => {
    const { scriptDir: _d, ...rest } = base;
    const conf = renderKeepalivedConfig(rest);
    expect(conf).toContain('script "/opt/ctera-lb/ha/check-proxy http://127.0.0.1:9090/healthz"');
    expect(conf).toContain('notify_master "/opt/ctera-lb/ha/notify master');
  });

  test("advertises every second", () => {
    expect(instanceLines(renderKeepalivedConfig(base))).toContain("advert_int 1");
  });

  test("tracks the local proxy through the admin API's /healthz every second, fall 2, rise 2", () => {
    const conf = renderKeepalivedConfig(base);
    expect(conf).toContain(`script "${SCRIPT_DIR}/check-proxy http://127.0.0.1:9090/healthz"`);
    expect(conf).toMatch(/vrrp_script chk_proxy \{[^}]*interval 1\n[^}]*fall 2\n\s+rise 2\n\s*\}/);
    expect(conf).toMatch(/track_script \{\n\s+chk_proxy\n\s+\}/);
  });

  test("asks a wildcard-bound admin API over loopback", () => {
    const conf = renderKeepalivedConfig({ ...base, admin: { address: "0.0.0.0", port: 9191 } });
    expect(conf).toContain("check-proxy http://127.0.0.1:9191/healthz");
  });

  test("leaves the VIP to the notify script on every transition (no virtual_ipaddress block)", () => {
    const conf = renderKeepalivedConfig(base);
    expect(conf).not.toMatch(/virtual_ipaddress/);
    for (const event of ["master", "backup", "fault", "stop"]) {
      expect(conf).toContain(
        `notify_${event} "${SCRIPT_DIR}/notify ${event} --vip 192.0.2.10/25 --dev eth1 --state-file /run/ctera-lb/ha-state"`,
      );
    }
  });

  test("passes the EC2 move's ENI, Elastic IP and region to the notify script when ec2 is set", () => {
    const conf = renderKeepalivedConfig({
      ...base,
      ec2: { networkInterfaceId: "eni-0123456789abcdef0", allocationId: "eipalloc-0123456789abcdef0", region: "eu-west-1" },
    });
    expect(conf).toContain(
      "master --vip 192.0.2.10/25 --dev eth1 --state-file /run/ctera-lb/ha-state --ec2 --eni eni-0123456789abcdef0 --allocation-id eipalloc-0123456789abcdef0 --region eu-west-1\"",
    );
  });

  test("gives each node of the pair its own ENI and the shared Elastic IP", () => {
    const [a, b] = renderKeepalivedPair({
      ...base,
      nodes: [base.self, base.peer],
      ec2: { networkInterfaceIds: ["eni-0000000000000000a", "eni-0000000000000000b"], allocationId: "eipalloc-0123456789abcdef0" },
    });
    expect(a).toContain("--ec2 --eni eni-0000000000000000a --allocation-id eipalloc-0123456789abcdef0");
    expect(b).toContain("--ec2 --eni eni-0000000000000000b --allocation-id eipalloc-0123456789abcdef0");
  });

  test("takes the admin API from the runtime config and insists the VIP is an address the proxy listens on", () => {
    const config = render({ design: "ssl-on-portal", vip: "192.0.2.10", realServers: ["198.51.100.11"], admin: { port: 9292 } });
    const { admin: _admin, ...noAdmin } = base;
    expect(renderKeepalivedConfig(noAdmin, config)).toContain("check-proxy http://127.0.0.1:9292/healthz");
    expect(() => renderKeepalivedConfig({ ...noAdmin, vip: { ...base.vip, address: "192.0.2.20" } }, config)).toThrow(
      /vip\.address: the proxy config has no listener on 192\.0\.2\.20/,
    );
  });

  test("names every problem with the pair at once: same address, same priority, VIP equal to a node", () => {
    let err: unknown;
    try {
      renderKeepalivedConfig({
        ...base,
        peer: { name: "lb-b", address: "198.51.100.5", priority: 250 },
        vip: { ...base.vip, address: "198.51.100.5" },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path).sort()).toEqual(["peer.address", "peer.priority", "vip.address"]);
  });

  test("speaks VRRPv2, whose advert interval is whole seconds", () => {
    expect(instanceLines(renderKeepalivedConfig({ ...base, advertIntSeconds: 2 }))).toEqual(
      expect.arrayContaining(["version 2", "advert_int 2"]),
    );
    expect(() => renderKeepalivedConfig({ ...base, advertIntSeconds: 0.5 })).toThrow(/advertIntSeconds: VRRPv2 counts/);
  });

  test("refuses a script directory keepalived would split on spaces", () => {
    expect(() => renderKeepalivedConfig({ ...base, scriptDir: "/opt/my scripts" })).toThrow(/scriptDir/);
  });

  describe("keepalived --config-test", () => {
    test("accepts both rendered configs of the pair, local-only, with EC2, preempting", () => {
      const [a, b] = renderKeepalivedPair({ ...base, nodes: [base.self, base.peer] });
      const withEc2 = renderKeepalivedConfig({ ...base, ec2: { networkInterfaceId: "eni-0123456789abcdef0" } });
      const preempting = renderKeepalivedConfig({ ...base, preempt: true });
      expect(configIssues(a)).toEqual([]);
      expect(configIssues(b)).toEqual([]);
      expect(configIssues(withEc2)).toEqual([]);
      expect(configIssues(preempting)).toEqual([]);
    });

    test("is a real check: it reports a misspelt keyword and a missing track script", () => {
      const conf = renderKeepalivedConfig(base);
      expect(configIssues(conf.replace("advert_int 1", "advert_intx 1")).join("\n")).toMatch(/Unknown keyword 'advert_intx'/);
      expect(configIssues(renderKeepalivedConfig({ ...base, scriptDir: "/nonexistent/ha" })).join("\n")).toMatch(
        /track script chk_proxy/,
      );
    });
  });

  test("the shipped scripts are executable shell scripts that parse", () => {
    for (const s of ["notify", "ec2-move-vip"]) execFileSync("bash", ["-n", join(SCRIPT_DIR, s)]);
    execFileSync("sh", ["-n", join(SCRIPT_DIR, "check-proxy")]);
  });
});

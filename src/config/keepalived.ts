/**
 * keepalived.conf for the high-availability pair, rendered from typed inputs like everything else.
 *
 * How the pair works (see also scripts/ha/notify):
 * - Unicast VRRP between the two nodes' internal addresses (clouds do not carry multicast), one instance,
 *   both nodes start as BACKUP with `nopreempt`: whoever is MASTER stays MASTER until it fails, so a node
 *   that comes back does not take the VIP away again (a second, needless interruption).
 * - keepalived does NOT own the VIP (no virtual_ipaddress block): on AWS a secondary private IP only reaches
 *   a node after the EC2 API moved it to that node's ENI, so the notify script does both the local
 *   `ip addr add` (+ gratuitous ARP) and, when enabled, the EC2 call (scripts/ha/ec2-move-vip).
 * - A vrrp_script asks the local proxy's admin API (`GET /healthz`) every second; two failures put the
 *   instance into FAULT (it stops advertising, the peer takes over at once), two successes bring it back.
 * - The proxy on the BACKUP node runs too, bound to the VIP through net.ipv4.ip_nonlocal_bind=1, so it is
 *   healthy and ready the moment the address arrives.
 *
 * VRRP version 2: version 3 (sub-second adverts) would need keepalived to own a virtual_ipaddress, which
 * it refuses to run without; VRRPv3 also drops authentication.
 *
 * Authentication: keepalived 2.x keeps only `auth_type PASS` worth using (AH is deprecated; VRRPv3 has no
 * authentication at all). PASS is a shared 8-character string sent in clear text in every advert: it keeps
 * a stray or misconfigured VRRP speaker out, it is no defence against anyone who can see the traffic. The
 * real protections are `check_unicast_src` (adverts from any address other than the peer are dropped) and
 * the security group that allows IP protocol 112 only between the two nodes.
 */
import { isIPv4 } from "node:net";
import { z } from "zod";
import { ConfigError, fromZodIssues } from "./errors";
import type { RuntimeConfig } from "./schema";

/** Where the image installs the HA scripts (scripts/ha/ in the package; the image lives in /opt/ctera-lb). The
 * directory and the scripts must be root-owned and not writable by others (enable_script_security). */
export const HA_SCRIPT_DIR = "/opt/ctera-lb/ha";
/** Where the notify script records the node's VRRP state (MASTER/BACKUP/FAULT/STOP and the time). */
export const HA_STATE_FILE = "/run/ctera-lb/ha-state";

const ipv4 = z.string().refine((s) => isIPv4(s), { message: "not an IPv4 address (the HA pair runs VRRP over IPv4)" });
const ifName = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,15}$/, { message: "an interface name is 1-15 letters, digits, '.', '_', ':' or '-' (e.g. eth0)" });
const absPath = z
  .string()
  .regex(/^\/[A-Za-z0-9_./+-]*$/, { message: "an absolute path without spaces or quotes (keepalived splits script lines on spaces)" });
const awsId = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), { message: `an AWS id like ${prefix}-0123456789abcdef0` });

export const KeepalivedNodeSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, { message: "a node name is 1-32 letters, digits, '.', '_' or '-'" }),
    address: ipv4.describe("The node's internal address: VRRP adverts go from here to the peer's."),
    priority: z
      .number()
      .int()
      .min(1, { message: "priority is between 1 and 254" })
      .max(254, { message: "priority is between 1 and 254 (255 would mark an address owner)" })
      .describe("Decides the first election only (nopreempt). High values keep the takeover skew small: skew = (256 - priority)/256 x advert_int."),
  })
  .strict();

export const KeepalivedOptionsSchema = z
  .object({
    self: KeepalivedNodeSchema.describe("This node."),
    peer: KeepalivedNodeSchema.describe("The other node of the pair."),
    vrrpInterface: ifName.describe("The interface that carries VRRP (the internal one, eth0)."),
    virtualRouterId: z
      .number()
      .int()
      .min(1, { message: "virtual_router_id is between 1 and 255" })
      .max(255, { message: "virtual_router_id is between 1 and 255" })
      .describe("Identifies this pair's VRRP instance; unique among VRRP pairs that can hear each other."),
    authPass: z
      .string()
      .regex(/^[A-Za-z0-9_.+=-]{1,8}$/, {
        message: "auth_pass is 1-8 letters, digits or '_.+=-' (keepalived uses only the first 8 characters)",
      })
      .describe("Shared VRRP PASS authentication string: sent in clear text, guards against a stray VRRP speaker only."),
    advertIntSeconds: z
      .number()
      .int({ message: "VRRPv2 counts the advert interval in whole seconds" })
      .min(1, { message: "the advert interval is 1-255 s" })
      .max(255, { message: "the advert interval is 1-255 s" })
      .default(1)
      .describe("Advert interval (VRRPv2, whole seconds); a silent MASTER is declared dead after 3 x advert_int + skew."),
    preempt: z.boolean().default(false).describe("false (default): nopreempt, a returning node stays BACKUP."),
    vip: z
      .object({
        address: ipv4.describe("The floating client-facing address."),
        prefixLength: z
          .number()
          .int()
          .min(1)
          .max(32)
          .default(32)
          .describe("Prefix length the VIP is added with: 32 (as lb-network-setup adds it) needs no second subnet route."),
        interface: ifName.describe("The client-facing interface (eth1 in two-arm, eth0 in one-arm)."),
      })
      .strict(),
    admin: z
      .object({ address: z.string(), port: z.number().int().min(1).max(65535) })
      .optional()
      .describe("The local proxy's admin API; omitted: the runtime config's `admin`. The track script GETs /healthz there."),
    track: z
      .object({
        intervalSeconds: z.number().int().min(1).default(1),
        timeoutSeconds: z.number().int().min(1).default(2),
        fall: z.number().int().min(1).default(2),
        rise: z.number().int().min(1).default(2),
      })
      .strict()
      .prefault({}),
    scriptDir: absPath.default(HA_SCRIPT_DIR).describe("Where notify, check-proxy and ec2-move-vip live."),
    stateFile: absPath.default(HA_STATE_FILE),
    scriptSecurity: z.boolean().default(true).describe("enable_script_security: refuse scripts in paths writable by non-root."),
    ec2: z
      .object({
        networkInterfaceId: awsId("eni").optional().describe("This node's client-facing ENI; omitted: learnt from IMDSv2."),
        allocationId: awsId("eipalloc").optional().describe("publicVip: the Elastic IP re-associated with the VIP."),
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).optional().describe("Omitted: learnt from IMDSv2."),
      })
      .strict()
      .nullable()
      .default(null)
      .describe("null: local address move only (tests, on-premises). Set: the notify script also moves the VIP through the EC2 API."),
    instanceName: z.string().regex(/^[A-Za-z0-9_]{1,32}$/).default("CTERA_LB"),
  })
  .strict();

export type KeepalivedOptions = z.input<typeof KeepalivedOptionsSchema>;
export type ParsedKeepalivedOptions = z.output<typeof KeepalivedOptionsSchema> & { admin: { address: string; port: number } };

/** What both nodes share; `nodes` are the pair, in the order given. */
export type KeepalivedPairOptions = Omit<KeepalivedOptions, "self" | "peer" | "ec2"> & {
  nodes: [KeepalivedOptions["self"], KeepalivedOptions["self"]];
  /** Per node (same order as `nodes`): its ENI; the allocation and region are shared. */
  ec2?: { networkInterfaceIds?: [string | undefined, string | undefined]; allocationId?: string; region?: string } | null;
};

/**
 * Renders one node's keepalived.conf. `config` (optional) is the runtime config the proxy on this node
 * serves: when given, the VIP must be one of its listener addresses and the admin API is taken from it.
 */
export function renderKeepalivedConfig(opts: KeepalivedOptions, config?: RuntimeConfig): string {
  const o = parseKeepalivedOptions(opts, config);
  const nopreempt = !o.preempt;
  const healthUrl = `http://${hostPort(checkAddress(o.admin.address), o.admin.port)}/healthz`;
  const notify = (event: string) => `"${[`${o.scriptDir}/notify`, event, ...notifyArgs(o)].join(" ")}"`;
  const lines = [
    `# keepalived.conf for ${o.self.name} (peer ${o.peer.name}), rendered by ctera-lb; do not edit by hand.`,
    `# The VIP ${o.vip.address} is moved by the notify script (local ip addr${o.ec2 ? " + EC2 API" : ""}), not by keepalived.`,
    "global_defs {",
    `    router_id ${o.self.name}`,
    "    script_user root",
    ...(o.scriptSecurity ? ["    enable_script_security"] : []),
    "}",
    "",
    "vrrp_script chk_proxy {",
    `    script "${o.scriptDir}/check-proxy ${healthUrl}"`,
    `    interval ${o.track.intervalSeconds}`,
    `    timeout ${o.track.timeoutSeconds}`,
    `    fall ${o.track.fall}`,
    `    rise ${o.track.rise}`,
    "}",
    "",
    `vrrp_instance ${o.instanceName} {`,
    "    state BACKUP",
    ...(nopreempt ? ["    nopreempt"] : []),
    `    interface ${o.vrrpInterface}`,
    `    virtual_router_id ${o.virtualRouterId}`,
    "    version 2",
    `    priority ${o.self.priority}`,
    `    advert_int ${o.advertIntSeconds}`,
    `    unicast_src_ip ${o.self.address}`,
    "    unicast_peer {",
    `        ${o.peer.address}`,
    "    }",
    "    check_unicast_src",
    "    unicast_fault_no_peer",
    "    authentication {",
    "        auth_type PASS",
    `        auth_pass ${o.authPass}`,
    "    }",
    "    track_script {",
    "        chk_proxy",
    "    }",
    `    notify_master ${notify("master")}`,
    `    notify_backup ${notify("backup")}`,
    `    notify_fault ${notify("fault")}`,
    `    notify_stop ${notify("stop")}`,
    "}",
    "",
  ];
  return lines.join("\n");
}

/** Both nodes' configs from one description of the pair: [first node's, second node's]. */
export function renderKeepalivedPair(opts: KeepalivedPairOptions, config?: RuntimeConfig): [string, string] {
  const { nodes, ec2, ...shared } = opts;
  const one = (i: 0 | 1): string => {
    const eni = ec2?.networkInterfaceIds?.[i];
    const nodeEc2 = ec2
      ? {
          ...(eni ? { networkInterfaceId: eni } : {}),
          ...(ec2.allocationId ? { allocationId: ec2.allocationId } : {}),
          ...(ec2.region ? { region: ec2.region } : {}),
        }
      : null;
    return renderKeepalivedConfig({ ...shared, self: nodes[i], peer: nodes[1 - i], ec2: nodeEc2 }, config);
  };
  return [one(0), one(1)];
}

export function parseKeepalivedOptions(opts: KeepalivedOptions, config?: RuntimeConfig): ParsedKeepalivedOptions {
  const parsed = KeepalivedOptionsSchema.safeParse(opts);
  if (!parsed.success) throw new ConfigError(fromZodIssues(parsed.error.issues), "keepalived options");
  const admin = parsed.data.admin ?? (config ? { address: config.admin.address, port: config.admin.port } : undefined);
  if (!admin) {
    throw new ConfigError([{ path: "admin", message: "required: the local proxy's admin address and port (or pass the runtime config)" }], "keepalived options");
  }
  const o = { ...parsed.data, admin };
  const issues: { path: string; message: string }[] = [];
  if (o.self.address === o.peer.address) {
    issues.push({ path: "peer.address", message: `the peer's address equals this node's (${o.self.address}): give each node its own internal address` });
  }
  if (o.self.name === o.peer.name) issues.push({ path: "peer.name", message: `both nodes are named '${o.self.name}': name them apart` });
  if (o.self.priority === o.peer.priority) {
    issues.push({ path: "peer.priority", message: `both nodes have priority ${o.self.priority}: give them different priorities so the first election is deterministic` });
  }
  if (o.vip.address === o.self.address || o.vip.address === o.peer.address) {
    issues.push({ path: "vip.address", message: `the VIP ${o.vip.address} is a node's own address: the VIP is a separate, floating address` });
  }
  if (o.track.timeoutSeconds > o.track.intervalSeconds * o.track.fall + 1) {
    issues.push({ path: "track.timeoutSeconds", message: "the check timeout is longer than fall x interval: a hung proxy would be noticed late" });
  }
  if (config) {
    const listenerAddrs = new Set(config.virtualServices.flatMap((v) => v.listeners.map((l) => l.address)));
    if (!listenerAddrs.has(o.vip.address)) {
      issues.push({
        path: "vip.address",
        message: `the proxy config has no listener on ${o.vip.address} (it listens on ${[...listenerAddrs].join(", ")}): the VIP must be the address the proxy serves`,
      });
    }
  }
  if (issues.length) throw new ConfigError(issues, "keepalived options");
  return o;
}

/** The admin API may bind a wildcard; the track script then asks over loopback. */
function checkAddress(a: string): string {
  if (a === "0.0.0.0") return "127.0.0.1";
  if (a === "::") return "::1";
  return a;
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function notifyArgs(o: ParsedKeepalivedOptions): string[] {
  const args = ["--vip", `${o.vip.address}/${o.vip.prefixLength}`, "--dev", o.vip.interface, "--state-file", o.stateFile];
  if (o.ec2) {
    args.push("--ec2");
    if (o.ec2.networkInterfaceId) args.push("--eni", o.ec2.networkInterfaceId);
    if (o.ec2.allocationId) args.push("--allocation-id", o.ec2.allocationId);
    if (o.ec2.region) args.push("--region", o.ec2.region);
  }
  return args;
}

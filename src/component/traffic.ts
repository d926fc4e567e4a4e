/**
 * What the network must allow, derived from the rendered runtime config — never hand-listed. The security
 * groups, the plan and the tests all read this, so a new listener port or a translated server port opens
 * exactly what the proxy will use.
 */
import type { RuntimeConfig } from "../config";

export interface ServerFlow {
  /** Real-server address (becomes a /32 or /128). */
  address: string;
  port: number;
  /** Why the port is open: service traffic, a health check, or both. */
  purpose: "service" | "health" | "service+health";
}

export interface TrafficModel {
  /** Client-facing ports on the VIP, sorted. */
  listenerPorts: number[];
  /** Egress to real servers, one entry per (address, port), sorted. */
  serverFlows: ServerFlow[];
  /** The admin API port. */
  adminPort: number;
}

export function deriveTraffic(cfg: RuntimeConfig): TrafficModel {
  const listenerPorts = new Set<number>();
  const flows = new Map<string, ServerFlow>();
  const add = (address: string, port: number, purpose: "service" | "health") => {
    const key = `${address}|${port}`;
    const prev = flows.get(key);
    if (!prev) flows.set(key, { address, port, purpose });
    else if (prev.purpose !== purpose) prev.purpose = "service+health";
  };
  for (const vs of cfg.virtualServices) {
    for (const l of vs.listeners) listenerPorts.add(l.port);
    for (const rs of vs.realServers) {
      // Service traffic: the translated port when set, else every port a client may hit.
      const servicePorts = rs.port !== undefined ? [rs.port] : vs.listeners.map((l) => l.port);
      for (const p of servicePorts) add(rs.address, p, "service");
      // Health: the check's own port, else the server's port (translated, else the VIP's first port).
      const hp = vs.healthCheck.port ?? rs.port ?? vs.listeners[0].port;
      add(rs.address, hp, "health");
    }
  }
  const serverFlows = [...flows.values()].sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  return { listenerPorts: [...listenerPorts].sort((a, b) => a - b), serverFlows, adminPort: cfg.admin.port };
}

/** Host CIDR of one address (/32 for IPv4, /128 for IPv6). */
export function hostCidr(address: string): string {
  return address.includes(":") ? `${address}/128` : `${address}/32`;
}

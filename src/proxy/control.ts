/**
 * The control plane, once per proxy (the serve primary): health checks, operator states
 * (drain/halt/online), the event list, and the status/metrics views over the data plane's counters.
 * Every effective state change is pushed to the data plane through `onState`.
 */
import type { RuntimeConfig } from "../config";
import type { ServerState } from "./contract";
import type { CountersSnapshot } from "./core";
import { checkPort, CheckResult, Health, HealthManager } from "./health";
import type { JsonLog } from "./log";
import type { PeerSync } from "./peer";
import { zeroCounters } from "./pool";

export const VERSION = "0.1.0";

export interface ServerStatus {
  health: Health;
  admin: "DRAIN" | "HALT" | null;
  last: CheckResult | null;
}

export interface StateEvent {
  at: string;
  vip: string;
  server: string;
  from: ServerState;
  to: ServerState;
  reason: string;
}

export interface ControlHooks {
  log: JsonLog;
  /** Push a server's state to the data plane(s). */
  onState(vip: string, server: string, health: Health, admin: "DRAIN" | "HALT" | null): void;
  /** The data plane's counters, summed over processes. */
  counters(): CountersSnapshot;
  /** Persistence entries per VIP (undefined: take them from the counters snapshot). */
  persistenceEntries?(vip: string): number | undefined;
  workers(): number;
  /** Each serving process's open client connections and accept hand-offs (balance.ts); a worker's are at
   * most about 1 s old. */
  processes(): ProcessLoad[];
}

export interface ProcessLoad {
  pid: number;
  role: "primary" | "worker";
  openConnections: number;
  /** New connections this process accepted and passed to another one (accept balancing). */
  passedOn: number;
  /** New connections another process accepted and passed here. */
  takenOver: number;
}

const key = (vip: string, server: string) => `${vip}\u0000${server}`;

export class Control {
  config: RuntimeConfig;
  readonly startedAt = new Date();
  readonly events: StateEvent[] = [];
  private readonly servers = new Map<string, ServerStatus>();
  private readonly health: HealthManager;
  draining = false;
  /** True until the data plane listens (serve: every process is ready); /healthz answers 503 meanwhile. */
  starting = false;
  /** The persistence sync with the HA peer (set by the runtime when the config has `highAvailability`). */
  peer: PeerSync | undefined;

  constructor(
    config: RuntimeConfig,
    private readonly hooks: ControlHooks,
  ) {
    this.config = config;
    this.health = new HealthManager({
      onResult: (vip, server, r) => {
        const s = this.servers.get(key(vip, server));
        if (s) s.last = r;
      },
      onChange: (vip, server, from, to, reason) => {
        const s = this.servers.get(key(vip, server));
        if (!s) return;
        const before = s.admin ?? s.health;
        s.health = to;
        this.hooks.log.write({ event: "health", vip, server, from, to, reason });
        this.changed(vip, server, before, s, reason);
      },
    });
    this.apply(config);
  }

  /** Applies a validated config: servers kept by name keep their health, operator state and last check. */
  apply(config: RuntimeConfig): void {
    this.config = config;
    const keep = new Set<string>();
    for (const vs of config.virtualServices) {
      for (const rs of vs.realServers) {
        const k = key(vs.name, rs.name);
        keep.add(k);
        if (!this.servers.has(k)) this.servers.set(k, { health: "UP", admin: null, last: null });
      }
    }
    for (const k of [...this.servers.keys()]) if (!keep.has(k)) this.servers.delete(k);
    this.health.apply(config.virtualServices);
    // Health may have been carried over from a checker; align and push every state to the data plane.
    for (const vs of config.virtualServices) {
      for (const rs of vs.realServers) {
        const s = this.servers.get(key(vs.name, rs.name))!;
        s.health = this.health.health(vs.name, rs.name) ?? s.health;
        this.hooks.onState(vs.name, rs.name, s.health, s.admin);
      }
    }
  }

  /** Every server's state, for a new worker. */
  states(): { vip: string; server: string; health: Health; admin: "DRAIN" | "HALT" | null }[] {
    const out: { vip: string; server: string; health: Health; admin: "DRAIN" | "HALT" | null }[] = [];
    for (const vs of this.config.virtualServices)
      for (const rs of vs.realServers) {
        const s = this.servers.get(key(vs.name, rs.name))!;
        out.push({ vip: vs.name, server: rs.name, health: s.health, admin: s.admin });
      }
    return out;
  }

  /** drain | halt | online from the operator. Returns the new state, or undefined for an unknown VIP/server. */
  setAdmin(vip: string, server: string, action: "drain" | "halt" | "online"): ServerState | undefined {
    const s = this.servers.get(key(vip, server));
    if (!s) return undefined;
    const before = s.admin ?? s.health;
    s.admin = action === "drain" ? "DRAIN" : action === "halt" ? "HALT" : null;
    this.changed(vip, server, before, s, `operator ${action}`);
    return s.admin ?? s.health;
  }

  private changed(vip: string, server: string, before: ServerState, s: ServerStatus, reason: string) {
    const after = s.admin ?? s.health;
    this.hooks.onState(vip, server, s.health, s.admin);
    if (before === after) return;
    const ev: StateEvent = { at: new Date().toISOString(), vip, server, from: before, to: after, reason };
    this.events.push(ev);
    if (this.events.length > 100) this.events.splice(0, this.events.length - 100);
    this.hooks.log.write({ event: "state", vip, server, from: before, to: after, reason });
  }

  serverStatus(vip: string, server: string): ServerStatus | undefined {
    return this.servers.get(key(vip, server));
  }

  /** The /api/status object (ADMIN_API.md). */
  status(): Record<string, unknown> {
    const counters = this.hooks.counters();
    const now = Date.now();
    return {
      version: VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.floor((now - this.startedAt.getTime()) / 1000),
      workers: this.hooks.workers(),
      processes: this.hooks.processes(),
      readOnly: this.config.admin.token === null,
      draining: this.draining,
      virtualServices: this.config.virtualServices.map((vs) => {
        const c = counters[vs.name];
        const vc = c?.counters ?? zeroCounters();
        return {
          name: vs.name,
          mode: vs.mode,
          listeners: vs.listeners.map((l) => ({ address: l.address, port: l.port, tls: !!l.tls, redirectToHttpsPort: l.redirectToHttpsPort ?? null })),
          balance: vs.balance,
          persistence: {
            type: vs.persistence.type,
            timeoutSeconds: vs.persistence.timeoutSeconds,
            entries: this.hooks.persistenceEntries?.(vs.name) ?? c?.entries ?? 0,
          },
          healthCheck: {
            type: vs.healthCheck.type,
            port: vs.healthCheck.port ?? null,
            path: vs.healthCheck.path,
            host: vs.healthCheck.host ?? null,
            intervalMs: vs.healthCheck.intervalMs,
            rise: vs.healthCheck.rise,
            fall: vs.healthCheck.fall,
          },
          clientIp: vs.clientIp,
          currentConnections: vc.current,
          totalConnections: vc.total,
          bytesIn: vc.bytesIn,
          bytesOut: vc.bytesOut,
          servers: vs.realServers.map((rs) => {
            const s = this.servers.get(key(vs.name, rs.name))!;
            const sc = c?.servers[rs.name] ?? zeroCounters();
            return {
              name: rs.name,
              address: rs.address,
              port: rs.port ?? null,
              checkPort: checkPort(vs, rs),
              weight: rs.weight,
              state: s.admin ?? s.health,
              health: s.health,
              lastCheck: s.last,
              currentConnections: sc.current,
              totalConnections: sc.total,
              bytesIn: sc.bytesIn,
              bytesOut: sc.bytesOut,
            };
          }),
        };
      }),
      events: this.events.slice(-100),
      peerSync: this.config.highAvailability && this.peer
        ? { peer: `${this.config.highAvailability.peer.address}:${this.config.highAvailability.peer.port}`, ...this.peer.stats }
        : null,
    };
  }

  /** Prometheus text format 0.0.4. */
  metrics(): string {
    const counters = this.hooks.counters();
    const lines: string[] = [];
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    const fam = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const each = (fn: (vip: string, server: string, s: ServerStatus, c: ReturnType<typeof zeroCounters>) => void) => {
      for (const vs of this.config.virtualServices)
        for (const rs of vs.realServers) fn(vs.name, rs.name, this.servers.get(key(vs.name, rs.name))!, counters[vs.name]?.servers[rs.name] ?? zeroCounters());
    };
    const lbl = (vip: string, server: string) => `vip="${esc(vip)}",server="${esc(server)}"`;
    fam("ctera_lb_server_up", "gauge", "1 when the server takes clients (state UP), else 0.");
    each((v, n, s) => lines.push(`ctera_lb_server_up{${lbl(v, n)}} ${(s.admin ?? s.health) === "UP" ? 1 : 0}`));
    fam("ctera_lb_server_state", "gauge", "The server's state: 1 on the current one of UP, DOWN, DRAIN, HALT.");
    each((v, n, s) => {
      for (const st of ["UP", "DOWN", "DRAIN", "HALT"]) lines.push(`ctera_lb_server_state{${lbl(v, n)},state="${st}"} ${(s.admin ?? s.health) === st ? 1 : 0}`);
    });
    fam("ctera_lb_connections_current", "gauge", "Open client connections on the server.");
    each((v, n, _s, c) => lines.push(`ctera_lb_connections_current{${lbl(v, n)}} ${c.current}`));
    fam("ctera_lb_connections_total", "counter", "Client connections sent to the server since start.");
    each((v, n, _s, c) => lines.push(`ctera_lb_connections_total{${lbl(v, n)}} ${c.total}`));
    fam("ctera_lb_bytes_total", "counter", "Bytes relayed: in = client to server, out = server to client.");
    each((v, n, _s, c) => {
      lines.push(`ctera_lb_bytes_total{${lbl(v, n)},direction="in"} ${c.bytesIn}`);
      lines.push(`ctera_lb_bytes_total{${lbl(v, n)},direction="out"} ${c.bytesOut}`);
    });
    fam("ctera_lb_health_check_duration_seconds", "gauge", "Duration of the last health check.");
    each((v, n, s) => {
      if (s.last) lines.push(`ctera_lb_health_check_duration_seconds{${lbl(v, n)}} ${s.last.latencyMs / 1000}`);
    });
    const procs = this.hooks.processes();
    fam("ctera_lb_process_open_connections", "gauge", "Open client connections held by each serving process.");
    for (const p of procs) lines.push(`ctera_lb_process_open_connections{pid="${p.pid}",role="${p.role}"} ${p.openConnections}`);
    fam("ctera_lb_accept_handoffs_total", "counter", "New connections passed to another serving process to even out the open connections.");
    lines.push(`ctera_lb_accept_handoffs_total ${procs.reduce((n, p) => n + p.passedOn, 0)}`);
    fam("ctera_lb_persistence_entries", "gauge", "Source-IP persistence entries of the VIP.");
    for (const vs of this.config.virtualServices) {
      const n = this.hooks.persistenceEntries?.(vs.name) ?? counters[vs.name]?.entries ?? 0;
      lines.push(`ctera_lb_persistence_entries{vip="${esc(vs.name)}"} ${n}`);
    }
    return lines.join("\n") + "\n";
  }

  close(): void {
    this.health.close();
  }
}

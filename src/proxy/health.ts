/**
 * Active health checks: one stream per real server per VIP. A check is `check(target) → result`; the
 * rise/fall state machine is separate and tiny. This module knows nothing of sockets to clients, the pool
 * or the workers: it reports results and health changes to a callback.
 */
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { HealthCheck, RealServer, VirtualService } from "../config";

export type Health = "UP" | "DOWN";

export interface CheckResult {
  ok: boolean;
  /** "HTTP 200", "ECONNREFUSED", "timeout after 2000 ms", "connected" */
  detail: string;
  latencyMs: number;
  /** ISO time */
  at: string;
}

export interface CheckTarget {
  type: HealthCheck["type"];
  address: string;
  port: number;
  path: string;
  /** Host header and SNI; undefined: the server address (no SNI for an IP address, as RFC 6066 requires). */
  host: string | undefined;
  timeoutMs: number;
  verifyTls: boolean;
  localAddress: string | undefined;
}

/** The port a server is checked on: healthCheck.port ?? server.port ?? the VIP's first listener port. */
export function checkPort(vs: VirtualService, server: RealServer): number {
  return vs.healthCheck.port ?? server.port ?? vs.listeners[0].port;
}

/** The check timeout: the configured one, else the smaller of 2 s and half the interval. */
export function checkTimeoutMs(hc: HealthCheck): number {
  return hc.timeoutMs ?? Math.min(2000, Math.floor(hc.intervalMs / 2));
}

export function checkTarget(vs: VirtualService, server: RealServer): CheckTarget {
  const hc = vs.healthCheck;
  return {
    type: hc.type,
    address: server.address,
    port: checkPort(vs, server),
    path: hc.path,
    host: hc.host,
    timeoutMs: checkTimeoutMs(hc),
    verifyTls: hc.verifyTls,
    localAddress: vs.sourceAddress ?? undefined,
  };
}

/** Runs one check. Never rejects. */
export function runCheck(t: CheckTarget): Promise<CheckResult> {
  const start = process.hrtime.bigint();
  const at = new Date().toISOString();
  const done = (ok: boolean, detail: string): CheckResult => ({
    ok,
    detail,
    latencyMs: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
    at,
  });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(ok, detail));
    };
    let cleanup: () => void = () => undefined;
    const timer = setTimeout(() => {
      finish(false, `timeout after ${t.timeoutMs} ms`);
      cleanup();
    }, t.timeoutMs);

    if (t.type === "connect") {
      const s = net.connect({ host: t.address, port: t.port, localAddress: t.localAddress });
      cleanup = () => s.destroy();
      s.once("connect", () => {
        finish(true, "connected");
        s.destroy();
      });
      s.once("error", (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
      return;
    }

    const isTls = t.type === "https-get";
    const defaultPort = isTls ? 443 : 80;
    const hostHeader = t.host ?? (t.port === defaultPort ? bracket(t.address) : `${bracket(t.address)}:${t.port}`);
    const servername = t.host ?? (net.isIP(t.address) ? undefined : t.address);
    const opts: https.RequestOptions = {
      host: t.address,
      port: t.port,
      path: t.path,
      method: "GET",
      agent: false,
      localAddress: t.localAddress,
      headers: { host: hostHeader, "user-agent": "ctera-lb-health/1", accept: "*/*", connection: "close" },
    };
    if (isTls) {
      opts.rejectUnauthorized = t.verifyTls;
      // An empty servername tells Node not to send SNI (it would otherwise use the IP in `host`).
      opts.servername = servername ?? "";
    }
    const req = (isTls ? https : http).request(opts, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      finish(code >= 200 && code < 400, `HTTP ${code}`);
      res.on("error", () => undefined);
      res.on("end", () => req.destroy());
    });
    cleanup = () => req.destroy();
    req.on("error", (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
    req.end();
  });
}

function bracket(a: string): string {
  return net.isIPv6(a) ? `[${a}]` : a;
}

/** The rise/fall state machine. Starts UP (as HAProxy does) so a fresh proxy serves at once; `fall`
 * consecutive failures take it DOWN, `rise` consecutive passes bring it back. */
export class HealthState {
  health: Health = "UP";
  private streak = 0;
  private lastDetail = "";

  constructor(
    public rise: number,
    public fall: number,
    initial: Health = "UP",
  ) {
    this.health = initial;
  }

  /** Feeds one result; returns the change (with its reason) or undefined. */
  observe(r: CheckResult): { from: Health; to: Health; reason: string } | undefined {
    const goodForState = (this.health === "UP") === r.ok;
    if (goodForState) {
      this.streak = 0;
      return undefined;
    }
    if (r.detail !== this.lastDetail) this.lastDetail = r.detail;
    this.streak++;
    const need = this.health === "UP" ? this.fall : this.rise;
    if (this.streak < need) return undefined;
    const from = this.health;
    this.health = from === "UP" ? "DOWN" : "UP";
    this.streak = 0;
    return { from, to: this.health, reason: `${r.detail} x${need}` };
  }
}

export interface HealthEvents {
  onResult(vip: string, server: string, r: CheckResult): void;
  onChange(vip: string, server: string, from: Health, to: Health, reason: string): void;
}

/** One check stream for one server of one VIP. */
class Checker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly state: HealthState;
  last: CheckResult | null = null;

  constructor(
    readonly vip: string,
    readonly server: string,
    public target: CheckTarget,
    public intervalMs: number,
    rise: number,
    fall: number,
    private readonly events: HealthEvents,
    initial: Health,
  ) {
    this.state = new HealthState(rise, fall, initial);
    // First check soon (a little jitter so many servers are not probed in the same millisecond).
    this.arm(Math.floor(Math.random() * Math.min(100, intervalMs / 4)));
  }

  private arm(ms: number) {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick() {
    const r = await runCheck(this.target);
    if (this.stopped) return;
    this.last = r;
    this.events.onResult(this.vip, this.server, r);
    const change = this.state.observe(r);
    if (change) this.events.onChange(this.vip, this.server, change.from, change.to, change.reason);
    this.arm(this.intervalMs);
  }

  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** All check streams of a config; `apply` reconciles on reload (unchanged checks keep their state). */
export class HealthManager {
  private readonly checkers = new Map<string, Checker>();

  constructor(private readonly events: HealthEvents) {}

  apply(vips: readonly VirtualService[]): void {
    const keep = new Set<string>();
    for (const vs of vips) {
      for (const rs of vs.realServers) {
        const key = `${vs.name}\u0000${rs.name}`;
        keep.add(key);
        const target = checkTarget(vs, rs);
        const hc = vs.healthCheck;
        const old = this.checkers.get(key);
        if (old && JSON.stringify(old.target) === JSON.stringify(target)) {
          old.intervalMs = hc.intervalMs;
          old.state.rise = hc.rise;
          old.state.fall = hc.fall;
          continue;
        }
        old?.stop();
        this.checkers.set(key, new Checker(vs.name, rs.name, target, hc.intervalMs, hc.rise, hc.fall, this.events, old?.state.health ?? "UP"));
      }
    }
    for (const [key, c] of this.checkers) {
      if (!keep.has(key)) {
        c.stop();
        this.checkers.delete(key);
      }
    }
  }

  health(vip: string, server: string): Health | undefined {
    return this.checkers.get(`${vip}\u0000${server}`)?.state.health;
  }

  last(vip: string, server: string): CheckResult | null {
    return this.checkers.get(`${vip}\u0000${server}`)?.last ?? null;
  }

  close(): void {
    for (const c of this.checkers.values()) c.stop();
    this.checkers.clear();
  }
}

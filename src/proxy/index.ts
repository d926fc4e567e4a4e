/**
 * The proxy in one process: listeners, pools, health checks and the admin API together. Tests, the demo and
 * embedders use this; `ctera-lb serve` runs the same parts over several processes (a primary with the
 * control plane and a data plane, plus data-plane workers) — see main.ts.
 */
import type { RuntimeConfig } from "../config";
import { validateRuntimeConfig } from "../config";
import { startAdminServer, AdminServer } from "./admin/server";
import { Control } from "./control";
import { Core, CountersSnapshot } from "./core";
import { JsonLog, LogSink } from "./log";
import { PeerSync } from "./peer";
import { engineChoices } from "./handlers";

export type { ServerState, Backend, VipRuntime, HandlerFactory, SessionHandle } from "./contract";
export { NoServerError } from "./contract";
export { Core } from "./core";
export { Control, VERSION } from "./control";
export { proxyV2Header } from "./tcp";
export { preferenceOrder, firstChoice, rendezvousScore } from "./selection";
export { PersistenceTable } from "./persistence";
export { PeerSync, firstChoiceOf } from "./peer";
export { runCheck, HealthState, HealthManager } from "./health";

export interface StartOptions {
  /** Where JSON log lines go (default: stdout). */
  log?: LogSink;
  /** Skip the admin server (default: started on config.admin). */
  admin?: boolean;
}

export interface ProxyHandle {
  readonly config: RuntimeConfig;
  /** Validates then applies a new config document; throws ConfigError (and keeps serving the old one) when invalid. */
  reload(doc: unknown): Promise<void>;
  /** The /api/status object. */
  status(): Record<string, unknown>;
  metrics(): string;
  /** drain | halt | online, as the admin API does it. */
  setServerState(vip: string, server: string, action: "drain" | "halt" | "online"): string | undefined;
  /** Counters of this process. */
  counters(): CountersSnapshot;
  /** The server a client address is remembered on (persistence), without refreshing it. */
  pinned(vip: string, clientIp: string): string | undefined;
  readonly admin: AdminServer | undefined;
  readonly core: Core;
  readonly control: Control;
  /** The persistence sync with the HA peer (idle without `highAvailability` in the config). */
  readonly peer: PeerSync;
  /** Stops accepting, lets connections finish for up to timeoutMs (default config.drainTimeoutMs), closes. */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(config: RuntimeConfig, opts: StartOptions = {}): Promise<ProxyHandle> {
  const log = new JsonLog(opts.log ?? ((s) => process.stdout.write(s)), { pid: process.pid });
  // With an HA peer, touched persistence entries are batched (as between cluster workers) for the sync.
  const core = new Core({ log, sharePins: !!config.highAvailability });
  let current = config;
  const control = new Control(config, {
    log,
    onState: (vip, server, health, admin) => core.setState(vip, server, health, admin),
    counters: () => core.snapshot(),
    workers: () => 1,
    processes: () => [{ pid: process.pid, role: "primary", openConnections: core.openConnections, passedOn: 0, takenOver: 0 }],
  });
  try {
    await core.apply(config);
    control.apply(config); // push states to the freshly created pools
  } catch (e) {
    core.close();
    control.close();
    throw e;
  }
  const peer = new PeerSync({
    config: () => current,
    snapshot: (vip) => core.pools.get(vip)?.persistence.snapshot() ?? [],
    merge: (vip, records) => core.mergePins(vip, records),
    log: (r) => log.write(r),
    collect: () => {
      for (const [vip, records] of Object.entries(core.takePins())) peer.offer(vip, records);
    },
  });
  control.peer = peer;
  let admin: AdminServer | undefined;
  if (opts.admin !== false) {
    try {
      admin = await startAdminServer(control, config.admin);
    } catch (e) {
      core.close();
      control.close();
      throw e;
    }
  }
  log.write({ event: "started", vips: config.virtualServices.map((v) => v.name), listeners: core.listening().length, ...engineChoices() });
  let closed = false;

  const handle: ProxyHandle = {
    get config() {
      return current;
    },
    async reload(doc: unknown) {
      let next: RuntimeConfig;
      try {
        next = validateRuntimeConfig(doc);
      } catch (e) {
        log.write({ event: "reload", ok: false, error: (e as Error).message });
        throw e;
      }
      const prev = current;
      current = next;
      control.config = next;
      core.setSharePins(!!next.highAvailability);
      try {
        await core.apply(next);
      } finally {
        control.apply(next); // states reach the new pools even when a listener failed to bind
        peer.apply();
      }
      const a = next.admin;
      if (admin && (a.address !== prev.admin.address || a.port !== prev.admin.port)) {
        await admin.close();
        admin = await startAdminServer(control, a);
      }
      log.write({ event: "reload", ok: true, vips: next.virtualServices.map((v) => v.name) });
    },
    status: () => control.status(),
    metrics: () => control.metrics(),
    setServerState: (vip, server, action) => control.setAdmin(vip, server, action),
    counters: () => core.snapshot(),
    pinned: (vip, ip) => core.pools.get(vip)?.persistence.peek(ip),
    get admin() {
      return admin;
    },
    core,
    control,
    peer,
    async drain(timeoutMs = current.drainTimeoutMs) {
      control.draining = true;
      await core.drain(timeoutMs);
      await handle.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      peer.stop();
      control.close();
      core.close();
      await admin?.close();
      log.flush();
    },
  };
  return handle;
}

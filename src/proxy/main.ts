/**
 * `ctera-lb serve --config <file>`: the proxy on every core.
 *
 * The primary process is the control plane: it reads and validates the config, runs the health checks once
 * (not once per worker), owns the operator states and the admin API, merges the workers' counters and
 * persistence entries, and handles the signals. Workers are the data plane (Core): they accept connections
 * directly from the shared listening sockets (SCHED_NONE: the kernel spreads connections, no per-connection
 * IPC) and report counters and touched persistence entries once a second.
 *
 * SIGHUP: re-read and validate the file; invalid → logged, the old config keeps serving; valid → primary and
 * workers reconcile (listeners and servers added/removed, open connections untouched).
 * SIGTERM/SIGINT: stop accepting, let connections finish up to drainTimeoutMs, close the rest, exit 0.
 */
import cluster, { Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { ConfigError, validateRuntimeConfig } from "../config";
import type { RuntimeConfig } from "../config";
import { AdminServer, startAdminServer } from "./admin/server";
import { Control } from "./control";
import { Core, CountersSnapshot } from "./core";
import type { Health } from "./health";
import { JsonLog } from "./log";
import { PeerSync } from "./peer";
import { PersistenceTable, PinRecord } from "./persistence";
import { zeroCounters } from "./pool";

type AdminState = "DRAIN" | "HALT" | null;

/** Primary → worker. */
export type ToWorker =
  | { t: "config"; config: RuntimeConfig; processes: number; states?: StateMsg[]; pins?: Record<string, PinRecord[]> }
  | ({ t: "state" } & StateMsg)
  | { t: "pins"; vip: string; records: PinRecord[] }
  | { t: "drain"; timeoutMs: number };
type StateMsg = { vip: string; server: string; health: Health; admin: AdminState };

/** Worker → primary. */
export type ToPrimary =
  | { t: "ready" }
  | { t: "fatal"; error: string }
  | { t: "stats"; counters: CountersSnapshot; pins: Record<string, PinRecord[]> };

export async function serveCommand(args: string[]): Promise<number> {
  // A log reader that goes away (a closed pipe) must not take the proxy down: the lines are lost, the
  // traffic keeps flowing. Without a listener, the EPIPE would be an uncaught 'error' event.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") process.stderr.write(`ctera-lb: stdout: ${e.message}\n`);
  });
  if (cluster.isWorker) return runWorker();
  const { values } = parseArgs({ args, strict: true, options: { config: { type: "string" }, workers: { type: "string" } } });
  if (!values.config) {
    const { UsageError } = await import("../cli");
    throw new UsageError("serve needs --config <config.json>");
  }
  const cfg = readConfig(values.config);
  const workers = values.workers ? Number(values.workers) : undefined;
  return runPrimary(values.config, cfg, workers);
}

/** Reads and validates the config file (ConfigError on any problem). */
export function readConfig(file: string): RuntimeConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError([{ path: "", message: `cannot read ${file} as JSON (${(e as Error).message})` }]);
  }
  return validateRuntimeConfig(doc);
}

async function runPrimary(file: string, initial: RuntimeConfig, workersOverride?: number): Promise<number> {
  let cfg = initial;
  const log = new JsonLog((s) => process.stdout.write(s), { pid: process.pid, role: "primary" });
  const count = workersOverride ?? cfg.workers ?? availableParallelism();
  const stats = new Map<number, CountersSnapshot>();
  const pins = new Map<string, PersistenceTable>();
  const live = new Set<Worker>();
  let shuttingDown = false;

  const syncPinTables = () => {
    for (const vs of cfg.virtualServices) {
      const t = pins.get(vs.name);
      if (t) t.setTimeoutSeconds(vs.persistence.timeoutSeconds);
      else pins.set(vs.name, new PersistenceTable(vs.persistence.timeoutSeconds * 1000));
    }
    for (const [name, t] of pins) if (!cfg.virtualServices.some((v) => v.name === name)) (t.close(), pins.delete(name));
  };
  syncPinTables();

  const send = (w: Worker, m: ToWorker) => {
    if (w.isConnected()) w.send(m, () => undefined);
  };
  const broadcast = (m: ToWorker, except?: Worker) => {
    for (const w of live) if (w !== except) send(w, m);
  };

  const control = new Control(cfg, {
    log,
    onState: (vip, server, health, admin) => broadcast({ t: "state", vip, server, health, admin }),
    counters: () => sumCounters(stats.values()),
    persistenceEntries: (vip) => pins.get(vip)?.size,
    workers: () => live.size,
  });
  control.starting = true;
  // HA pair: touched entries (from the workers' batches) go to the peer; the peer's go into the primary's
  // table and out to every worker, like another worker's entries.
  const peer = new PeerSync({
    config: () => cfg,
    snapshot: (vip) => pins.get(vip)?.snapshot() ?? [],
    merge: (vip, records) => {
      pins.get(vip)?.merge(records);
      broadcast({ t: "pins", vip, records });
    },
    log: (r) => log.write(r),
  });
  control.peer = peer;
  let admin: AdminServer;
  try {
    admin = await startAdminServer(control, cfg.admin);
  } catch (e) {
    control.close();
    peer.stop();
    log.write({ event: "fatal", error: `admin ${cfg.admin.address}:${cfg.admin.port}: ${(e as Error).message}` });
    log.flush();
    return 1;
  }

  // SCHED_NONE (default): workers accept from the shared sockets themselves, no per-connection hand-off
  // through the primary. CTERA_LB_SCHED=rr: the primary accepts and deals connections round robin (even
  // spread of a burst of long-lived connections, at one IPC message per connection).
  cluster.schedulingPolicy = process.env.CTERA_LB_SCHED === "rr" ? cluster.SCHED_RR : cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2) });

  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  let started = false;
  let readyCount = 0;
  const restarts: number[] = [];

  const fork = () => {
    const w = cluster.fork({ CTERA_LB_WORKER: "1" });
    live.add(w);
    w.on("online", () => {
      const snapshot: Record<string, PinRecord[]> = {};
      for (const [vip, t] of pins) snapshot[vip] = t.snapshot();
      send(w, { t: "config", config: cfg, processes: count, states: control.states(), pins: snapshot });
    });
    w.on("message", (m: ToPrimary) => {
      switch (m.t) {
        case "ready":
          if (!started && ++readyCount === count) {
            started = true;
            control.starting = false;
            log.write({ event: "started", workers: count, vips: cfg.virtualServices.map((v) => v.name), admin: `${admin.address}:${admin.port}` });
          }
          break;
        case "fatal":
          log.write({ event: "fatal", worker: w.id, error: m.error });
          if (!started) void shutdown(1, 0);
          break;
        case "stats":
          stats.set(w.id, m.counters);
          for (const [vip, records] of Object.entries(m.pins)) {
            pins.get(vip)?.merge(records);
            broadcast({ t: "pins", vip, records }, w);
            peer.offer(vip, records);
          }
          break;
      }
    });
    w.on("exit", (code, signal) => {
      live.delete(w);
      stats.delete(w.id);
      if (shuttingDown) {
        if (live.size === 0) resolveExit(0);
        return;
      }
      log.write({ event: "worker-exit", worker: w.id, code, signal });
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && now - restarts[0] > 60000) restarts.shift();
      if (restarts.length > 10) {
        log.write({ event: "fatal", error: "workers keep exiting (more than 10 in a minute): stopping" });
        void shutdown(1, 0);
        return;
      }
      setTimeout(() => !shuttingDown && fork(), 200).unref();
    });
  };
  for (let i = 0; i < count; i++) fork();

  const reload = async () => {
    let next: RuntimeConfig;
    try {
      next = readConfig(file);
    } catch (e) {
      log.write({ event: "reload", ok: false, error: (e as Error).message, kept: "the running config" });
      return;
    }
    const prevAdmin = cfg.admin;
    cfg = next;
    syncPinTables();
    broadcast({ t: "config", config: next, processes: count });
    control.apply(next); // states for new servers reach workers after their config (one ordered channel each)
    peer.apply();
    if (prevAdmin.address !== next.admin.address || prevAdmin.port !== next.admin.port) {
      await admin.close();
      try {
        admin = await startAdminServer(control, next.admin);
      } catch (e) {
        log.write({ event: "reload", ok: false, error: `admin ${next.admin.address}:${next.admin.port}: ${(e as Error).message}` });
        admin = await startAdminServer(control, prevAdmin);
      }
    }
    log.write({ event: "reload", ok: true, vips: next.virtualServices.map((v) => v.name) });
  };

  let exitCode = 0;
  const shutdown = async (code: number, timeoutMs = cfg.drainTimeoutMs) => {
    if (shuttingDown) return;
    shuttingDown = true;
    exitCode = code;
    control.draining = true;
    log.write({ event: "draining", timeoutMs, open: sumCounters(stats.values()).total });
    if (live.size === 0) resolveExit(code);
    broadcast({ t: "drain", timeoutMs });
    const hard = setTimeout(() => {
      for (const w of live) w.process.kill("SIGKILL");
      resolveExit(code);
    }, timeoutMs + 5000);
    hard.unref();
  };

  const onHup = () => void reload();
  const onTerm = () => {
    if (shuttingDown) {
      for (const w of live) w.process.kill("SIGKILL");
      resolveExit(exitCode);
    } else void shutdown(0);
  };
  process.on("SIGHUP", onHup);
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onTerm);

  await exited;
  process.off("SIGHUP", onHup);
  process.off("SIGTERM", onTerm);
  process.off("SIGINT", onTerm);
  peer.stop();
  control.close();
  await admin.close();
  for (const t of pins.values()) t.close();
  log.write({ event: "stopped", code: exitCode });
  log.flush();
  return exitCode;
}

function sumCounters(snaps: Iterable<CountersSnapshot>): CountersSnapshot & { total: number } {
  const out: CountersSnapshot = {};
  let total = 0;
  for (const s of snaps) {
    for (const [vip, v] of Object.entries(s)) {
      const o = (out[vip] ??= { counters: zeroCounters(), servers: {}, entries: 0 });
      add(o.counters, v.counters);
      total += v.counters.current;
      o.entries = Math.max(o.entries, v.entries);
      for (const [name, c] of Object.entries(v.servers)) add((o.servers[name] ??= zeroCounters()), c);
    }
  }
  return Object.assign(out, { total }) as CountersSnapshot & { total: number };
}

function add(a: ReturnType<typeof zeroCounters>, b: ReturnType<typeof zeroCounters>) {
  a.current += b.current;
  a.total += b.total;
  a.bytesIn += b.bytesIn;
  a.bytesOut += b.bytesOut;
}

function runWorker(): Promise<number> {
  const log = new JsonLog((s) => process.stdout.write(s), { pid: process.pid, worker: cluster.worker?.id });
  let core: Core | undefined;
  let ready = false;
  const toPrimary = (m: ToPrimary) => {
    if (process.connected) process.send!(m, undefined, {}, () => undefined);
  };
  // The primary coordinates reloads and shutdown; a signal sent to the whole process group is ignored here.
  for (const sig of ["SIGHUP", "SIGINT", "SIGTERM"] as const) process.on(sig, () => undefined);

  const ticker = setInterval(() => {
    if (core) toPrimary({ t: "stats", counters: core.snapshot(), pins: core.takePins() });
  }, 1000);

  return new Promise<number>((resolve) => {
    const exit = (code: number) => {
      clearInterval(ticker);
      log.flush();
      resolve(code);
      setImmediate(() => process.exit(code));
    };
    process.on("disconnect", () => {
      core?.close();
      exit(0);
    });
    process.on("message", (m: ToWorker) => {
      switch (m.t) {
        case "config": {
          core ??= new Core({ log, sharePins: true, processes: m.processes });
          const c = core;
          const applied = c.apply(m.config);
          // The pools exist as soon as apply() starts; take the snapshot now, so that a "state" message that
          // arrives while listeners are still binding is not overwritten by this older snapshot afterwards.
          if (m.states) for (const s of m.states) c.setState(s.vip, s.server, s.health, s.admin);
          if (m.pins) for (const [vip, records] of Object.entries(m.pins)) c.mergePins(vip, records);
          applied.then(
            () => {
              if (!ready) {
                ready = true;
                toPrimary({ t: "ready" });
              }
            },
            (e: Error) => {
              if (!ready) toPrimary({ t: "fatal", error: e.message });
              else log.write({ event: "reload", ok: false, error: e.message });
            },
          );
          break;
        }
        case "state":
          core?.setState(m.vip, m.server, m.health, m.admin);
          break;
        case "pins":
          core?.mergePins(m.vip, m.records);
          break;
        case "drain":
          if (!core) return exit(0);
          void core.drain(m.timeoutMs).then(() => {
            toPrimary({ t: "stats", counters: core!.snapshot(), pins: {} });
            exit(0);
          });
          break;
      }
    });
  });
}

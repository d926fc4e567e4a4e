/**
 * `ctera-lb serve --config <file>`: the proxy on every core, one process per core.
 *
 * The primary process is the control plane AND one data plane: it reads and validates the config, binds
 * the listeners, runs the health checks once, owns the operator states and the admin API, merges the
 * workers' counters and persistence entries, handles the signals, and serves connections itself (a Core).
 * `workers` - 1 worker processes (worker.ts) serve beside it: each gets the primary's listening sockets
 * (handle passing over IPC; the kernel spreads the connections, no per-connection hand-off) and reports
 * counters and touched persistence entries once a second. With 2 cores that is 2 processes, not 3: the
 * control plane costs no process of its own (measured: one Node process is ~60 MiB resident).
 *
 * SIGHUP: re-read and validate the file; invalid → logged, the old config keeps serving; valid → primary and
 * workers reconcile (listeners and servers added/removed, open connections untouched).
 * SIGTERM/SIGINT: stop accepting, let connections finish up to drainTimeoutMs, close the rest, exit 0.
 */
import { ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Server } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, validateRuntimeConfig } from "../config";
import type { RuntimeConfig } from "../config";
import { AdminServer, startAdminServer } from "./admin/server";
import { Control } from "./control";
import type { ProcessLoad } from "./control";
import { Core, CountersSnapshot } from "./core";
import { AcceptBalance, passConnection } from "./balance";
import type { ToPrimary, ToWorker } from "./ipc";
import { WORKER_ENV } from "./ipc";
import { ticketKeys } from "./http/tls";
import { JsonLog } from "./log";
import { PeerSync } from "./peer";
import { engineChoices } from "./handlers";
import type { PinRecord } from "./persistence";
import { zeroCounters } from "./pool";
import { runWorker } from "./worker";

export type { ToPrimary, ToWorker } from "./ipc";

export async function serveCommand(args: string[]): Promise<number> {
  // A log reader that goes away (a closed pipe) must not take the proxy down: the lines are lost, the
  // traffic keeps flowing. Without a listener, the EPIPE would be an uncaught 'error' event.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") process.stderr.write(`ctera-lb: stdout: ${e.message}\n`);
  });
  if (process.env[WORKER_ENV] === "1" && process.send) return runWorker();
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

/** The worker entry: the data plane only (worker.ts), without the CLI and the config validation. */
const WORKER_ENTRY = join(__dirname, "worker.js");

/**
 * Node flags for serving processes (V8 reads them at start-up: workers get them here; the primary from its
 * command line — the image's `bin/ctera-lb` passes them). A proxy's objects live for one request or one
 * connection, and `serve` runs one process per core:
 * - `--max-semi-space-size=2`: V8's young generation grows to 16 MiB per semi-space under load although
 *   nothing lives long; capped at 2 MiB, the bench's peak RSS of the 2-process tree went from 176-201 to
 *   139-141 MiB at the same CPU per request.
 * - `--heap-growing-percent=20`: after a full GC V8 lets the old generation grow 1.1-4x before the next one;
 *   at 1.2x, garbage promoted by short-lived TLS connections is collected sooner. Bench peak RSS (reached in
 *   tls_new) 153-175 → 141 MiB; the extra mark-compacts (7 instead of 4 in 10 s of tls_new) stayed in the
 *   CPU-per-request noise.
 * - `--no-parallel-scavenge`: young-generation GC on the main thread only. With one process per core the
 *   helper threads only compete with the other serving process, and the main thread waits for them: the
 *   mean scavenge pause under http_small went from 0.87-1.14 ms to 0.58-0.59 ms (`--trace-gc`).
 */
export const SERVE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--heap-growing-percent=20", "--no-parallel-scavenge"];

/** execArgv for a worker: the primary's own flags plus SERVE_NODE_FLAGS it does not set already. */
export function workerExecArgv(own: readonly string[] = process.execArgv): string[] {
  // V8 spells a flag with - or _, and --no-x turns x off: the primary's --parallel-scavenge wins over ours.
  const name = (f: string) => f.split("=")[0].replace(/_/g, "-").replace(/^--no-/, "--");
  return [...own, ...SERVE_NODE_FLAGS.filter((f) => !own.some((o) => name(o) === name(f)))];
}

async function runPrimary(file: string, initial: RuntimeConfig, workersOverride?: number): Promise<number> {
  let cfg = initial;
  const log = new JsonLog((s) => process.stdout.write(s), { pid: process.pid, role: "primary" });
  const count = Math.max(1, workersOverride ?? cfg.workers ?? availableParallelism());
  /** Each worker's last "stats": its counters, and its open connections and hand-offs. */
  const stats = new Map<ChildProcess, { counters: CountersSnapshot; load: ProcessLoad }>();
  const allCounters = () => sumCounters([core.snapshot(), ...[...stats.values()].map((s) => s.counters)]);
  const live = new Set<ChildProcess>();
  const readyWorkers = new Set<ChildProcess>();
  /** The listening servers the primary's core bound, shared with every worker (and every restarted one). */
  const shared = new Map<string, Server>();
  let shuttingDown = false;

  const send = (w: ChildProcess, m: ToWorker, handle?: Server) => {
    if (w.connected) w.send(m, handle, {}, () => undefined);
  };
  const broadcast = (m: ToWorker, except?: ChildProcess) => {
    for (const w of live) if (w !== except) send(w, m);
  };

  // Accept balancing (balance.ts): new connections over the slack go to the least-loaded ready worker.
  const balance = new AcceptBalance<ChildProcess>((w, key, handle) => passConnection(w, key, handle));
  const core = new Core({
    log,
    sharePins: true,
    processes: count,
    handOff: balance.hook(),
    onBound: (key, server) => {
      shared.set(key, server);
      server.once("close", () => shared.delete(key));
      for (const w of live) send(w, { t: "listener", key }, server);
    },
  });

  /** The primary's own persistence table of a VIP: its own entries plus every worker's and the peer's (merged),
   * so it is the one that new workers start from and the peer resyncs from. */
  const table = (vip: string) => core.pools.get(vip)?.persistence;

  const control = new Control(cfg, {
    log,
    onState: (vip, server, health, admin) => {
      core.setState(vip, server, health, admin);
      broadcast({ t: "state", vip, server, health, admin });
    },
    counters: allCounters,
    persistenceEntries: (vip) => table(vip)?.size,
    workers: () => 1 + live.size,
    processes: () => [{ pid: process.pid, role: "primary", ...balance.counts(core.openConnections) }, ...[...stats.values()].map((s) => s.load)],
  });
  control.starting = true;
  // HA pair: touched entries (this process's and the workers' batches) go to the peer; the peer's go into
  // the primary's table, its own data plane and out to every worker, like another worker's entries.
  const peer = new PeerSync({
    config: () => cfg,
    snapshot: (vip) => table(vip)?.snapshot() ?? [],
    merge: (vip, records) => {
      core.mergePins(vip, records);
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
  try {
    await core.apply(cfg);
    control.apply(cfg); // states reach the freshly created pools
  } catch (e) {
    core.close();
    control.close();
    peer.stop();
    await admin.close();
    log.write({ event: "fatal", error: (e as Error).message });
    log.flush();
    return 1;
  }

  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  let started = false;
  let readyCount = 1; // this process
  const restarts: number[] = [];
  const markStarted = () => {
    if (started || readyCount < count) return;
    started = true;
    control.starting = false;
    log.write({ event: "started", workers: count, vips: cfg.virtualServices.map((v) => v.name), admin: `${admin.address}:${admin.port}`, ...engineChoices() });
  };

  // This process's own persistence entries and counters, once a second, like a worker's.
  const ticker = setInterval(() => {
    if (live.size) broadcast({ t: "load", open: core.openConnections });
    for (const [vip, records] of Object.entries(core.takePins())) {
      broadcast({ t: "pins", vip, records });
      peer.offer(vip, records);
    }
  }, 1000);
  ticker.unref();

  const spawnWorker = () => {
    const w = fork(WORKER_ENTRY, [], { env: { ...process.env, [WORKER_ENV]: "1" }, execArgv: workerExecArgv(), stdio: ["ignore", "inherit", "inherit", "ipc"] });
    live.add(w);
    w.on("message", (m: ToPrimary, handle?: unknown) => {
      switch (m.t) {
        case "hello": {
          const snapshot: Record<string, PinRecord[]> = {};
          for (const [vip, pool] of core.pools) snapshot[vip] = pool.persistence.snapshot();
          const keys = ticketKeys().toString("base64");
          send(w, { t: "config", config: cfg, processes: count, states: control.states(), pins: snapshot, ticketKeys: keys });
          for (const [key, server] of shared) send(w, { t: "listener", key }, server);
          break;
        }
        case "ready":
          readyWorkers.add(w);
          if (started) log.write({ event: "worker-ready", worker: w.pid }); // a restarted worker serves again
          readyCount++;
          markStarted();
          break;
        case "fatal":
          log.write({ event: "fatal", worker: w.pid, error: m.error });
          if (!started) void shutdown(1, 0);
          break;
        case "conn":
          balance.takeOver(core, m.key, handle);
          break;
        case "stats":
          stats.set(w, { counters: m.counters, load: { pid: w.pid ?? 0, role: "worker", ...m.load } });
          if (!shuttingDown && readyWorkers.has(w)) balance.report(w, m.load.openConnections);
          for (const [vip, records] of Object.entries(m.pins)) {
            core.mergePins(vip, records);
            broadcast({ t: "pins", vip, records }, w);
            peer.offer(vip, records);
          }
          break;
      }
    });
    w.on("error", (e) => log.write({ event: "worker-error", worker: w.pid, error: e.message }));
    w.on("exit", (code, signal) => {
      live.delete(w);
      stats.delete(w);
      readyWorkers.delete(w);
      balance.remove(w);
      if (shuttingDown) {
        if (live.size === 0) childrenGone();
        return;
      }
      log.write({ event: "worker-exit", worker: w.pid, code, signal });
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && now - restarts[0] > 60000) restarts.shift();
      if (restarts.length > 10) {
        log.write({ event: "fatal", error: "workers keep exiting (more than 10 in a minute): stopping" });
        void shutdown(1, 0);
        return;
      }
      setTimeout(() => !shuttingDown && spawnWorker(), 200).unref();
    });
  };
  for (let i = 1; i < count; i++) spawnWorker();
  markStarted();

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
    const before = new Set(shared.keys());
    let bindError: string | undefined;
    try {
      await core.apply(next); // binds new listeners first: they reach the workers through onBound
    } catch (e) {
      bindError = (e as Error).message;
    }
    for (const vs of next.virtualServices) {
      for (const l of vs.listeners) {
        const key = `${l.address}:${l.port}`;
        if (!shared.has(key) && !before.has(key)) broadcast({ t: "listener-failed", key, error: bindError ?? "not bound" });
      }
    }
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
    if (bindError) log.write({ event: "reload", ok: false, error: bindError, kept: "the listeners that could bind" });
    else log.write({ event: "reload", ok: true, vips: next.virtualServices.map((v) => v.name) });
  };

  let exitCode = 0;
  let childrenGone!: () => void;
  const allChildrenGone = new Promise<void>((r) => (childrenGone = r));
  const shutdown = async (code: number, timeoutMs = cfg.drainTimeoutMs) => {
    if (shuttingDown) return;
    shuttingDown = true;
    for (const w of live) balance.remove(w);
    exitCode = code;
    control.draining = true;
    log.write({ event: "draining", timeoutMs, open: allCounters().total });
    if (live.size === 0) childrenGone();
    broadcast({ t: "drain", timeoutMs });
    const hard = setTimeout(() => {
      for (const w of live) w.kill("SIGKILL");
      resolveExit(code);
    }, timeoutMs + 5000);
    hard.unref();
    await core.drain(timeoutMs);
    await allChildrenGone;
    resolveExit(code);
  };

  const onHup = () => void reload();
  const onTerm = () => {
    if (shuttingDown) {
      for (const w of live) w.kill("SIGKILL");
      resolveExit(exitCode);
    } else void shutdown(0);
  };
  process.on("SIGHUP", onHup);
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onTerm);

  await exited;
  clearInterval(ticker);
  process.off("SIGHUP", onHup);
  process.off("SIGTERM", onTerm);
  process.off("SIGINT", onTerm);
  peer.stop();
  core.close();
  control.close();
  await admin.close();
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

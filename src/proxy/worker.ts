/**
 * A `ctera-lb serve` worker process: one more data plane (Core) beside the primary's own. It loads only
 * the data plane (no CLI, no config validation: the primary validated the config it sends), takes the
 * primary's listening sockets instead of binding its own (the kernel spreads connections between the
 * processes accepting on them), applies the states and persistence entries the primary sends, and reports
 * its counters and touched persistence entries once a second. It exits when the primary goes away.
 */
import type { Server } from "node:net";
import { AcceptBalance, passConnection } from "./balance";
import { Core } from "./core";
import type { ToPrimary, ToWorker } from "./ipc";
import { setTicketKeys } from "./http/tls";
import { JsonLog } from "./log";

export function runWorker(): Promise<number> {
  const log = new JsonLog((s) => process.stdout.write(s), { pid: process.pid, role: "worker" });
  process.stdout.on("error", () => undefined); // a closed log pipe must not stop the traffic
  let core: Core | undefined;
  let ready = false;
  const toPrimary = (m: ToPrimary) => {
    if (process.connected) process.send!(m, undefined, {}, () => undefined);
  };
  // The primary coordinates reloads and shutdown; a signal sent to the whole process group is ignored here.
  for (const sig of ["SIGHUP", "SIGINT", "SIGTERM"] as const) process.on(sig, () => undefined);

  // Listening servers from the primary, by listener key; Core.apply waits for the ones it needs.
  const servers = new Map<string, Server>();
  const waiting = new Map<string, { resolve: (s: Server) => void; reject: (e: Error) => void }>();
  const bind = (key: string): Promise<Server> => {
    const s = servers.get(key);
    if (s) {
      servers.delete(key);
      return Promise.resolve(s);
    }
    return new Promise((resolve, reject) => waiting.set(key, { resolve, reject }));
  };

  // Accept balancing with the primary (this worker's only channel): over the slack, new connections go there.
  const balance = new AcceptBalance<"primary">((_, key, handle) => passConnection(process, key, handle));

  const ticker = setInterval(() => {
    if (core) toPrimary({ t: "stats", counters: core.snapshot(), pins: core.takePins(), load: balance.counts(core.openConnections) });
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
    process.on("message", (m: ToWorker, handle?: unknown) => {
      switch (m.t) {
        case "listener": {
          const w = waiting.get(m.key);
          waiting.delete(m.key);
          if (w) w.resolve(handle as Server);
          else servers.set(m.key, handle as Server);
          break;
        }
        case "listener-failed": {
          const w = waiting.get(m.key);
          waiting.delete(m.key);
          w?.reject(new Error(`${m.key}: ${m.error}`));
          break;
        }
        case "config": {
          // The primary's session-ticket keys, before any TLS context is built: resumption works across processes.
          if (m.ticketKeys) setTicketKeys(Buffer.from(m.ticketKeys, "base64"));
          core ??= new Core({ log, sharePins: true, processes: m.processes, bind, handOff: balance.hook() });
          const c = core;
          const applied = c.apply(m.config);
          // The pools exist as soon as apply() starts; take the snapshot now, so that a "state" message that
          // arrives while listeners are still being handed over is not overwritten by this older snapshot.
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
        case "load":
          balance.report("primary", m.open);
          break;
        case "conn":
          balance.takeOver(core, m.key, handle);
          break;
        case "state":
          core?.setState(m.vip, m.server, m.health, m.admin);
          break;
        case "pins":
          core?.mergePins(m.vip, m.records);
          break;
        case "drain":
          if (!core) return exit(0);
          void core.drain(m.timeoutMs).then(() => {
            toPrimary({ t: "stats", counters: core!.snapshot(), pins: {}, load: balance.counts(0) });
            exit(0);
          });
          break;
      }
    });
    toPrimary({ t: "hello" });
  });
}

if (require.main === module) {
  void runWorker().then((code) => (process.exitCode = code));
}

/**
 * Runs inside a Portal namespace (`ip netns exec <ns> node sim.js ...`):
 *
 *   sim <name> <address>              the simulated Portal (src/sim/portal.ts) on its real ports
 *                                     (443, 8443, 80, 8080, 995); prints {"event":"ready",...}; SIGTERM stops it
 *   witness <address> <port> [...]    prints {"event":"armed"}, then on SIGUSR2 listens on the ports and
 *                                     prints {"event":"ready"} and {"event":"connection",...} for every
 *                                     connection it accepts, then resets it: put on a dead server's service
 *                                     ports, it shows whether the load balancer still sends clients there
 *                                     (armed ahead of time, so it starts listening within milliseconds)
 */
import * as net from "node:net";
import { startSimPortal } from "../../src/sim/portal";

function out(j: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ at: Date.now(), ...j }) + "\n");
}

async function sim(name: string, address: string): Promise<void> {
  const portal = await startSimPortal({ name, address });
  out({ event: "ready", name, address, ports: portal.ports });
  const stop = () => portal.stop().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

async function witness(address: string, ports: number[]): Promise<void> {
  process.once("SIGTERM", () => process.exit(0));
  // A signal handler does not keep the event loop alive: this timer does, until the listeners take over.
  const keep = setInterval(() => undefined, 1 << 30);
  const go = new Promise<void>((r) => process.once("SIGUSR2", () => r()));
  out({ event: "armed", address, ports });
  await go;
  clearInterval(keep);
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const srv = net.createServer((s) => {
        out({ event: "connection", port, remoteAddress: s.remoteAddress, remotePort: s.remotePort });
        s.resetAndDestroy();
      });
      srv.once("error", reject);
      srv.listen({ host: address, port }, () => resolve());
    });
  }
  out({ event: "ready", address, ports });
}

const [mode, ...args] = process.argv.slice(2);
const started =
  mode === "sim" ? sim(args[0], args[1]) : mode === "witness" ? witness(args[0], args.slice(1).map(Number)) : Promise.reject(new Error(`unknown mode ${mode}`));
started.catch((e) => {
  process.stderr.write(`sim-main: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});

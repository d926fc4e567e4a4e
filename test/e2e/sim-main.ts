/**
 * Runs inside a Portal namespace (`ip netns exec <ns> node sim.js ...`):
 *
 *   sim <name> <address>              the simulated Portal (src/sim/portal.ts) on its real ports
 *                                     (443, 8443, 80, 8080, 995); prints {"event":"ready",...}; SIGTERM stops it
 *   witness <address> <port> [...]    a bare TCP listener that prints {"event":"connection",...} for every
 *                                     connection it accepts, then resets it: put on a dead server's service
 *                                     ports, it shows whether the load balancer still sends clients there
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
  process.once("SIGTERM", () => process.exit(0));
}

const [mode, ...args] = process.argv.slice(2);
const started =
  mode === "sim" ? sim(args[0], args[1]) : mode === "witness" ? witness(args[0], args.slice(1).map(Number)) : Promise.reject(new Error(`unknown mode ${mode}`));
started.catch((e) => {
  process.stderr.write(`sim-main: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});

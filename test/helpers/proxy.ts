/**
 * Test fixtures for the proxy core: three sim Portals on <block>.11-13 and a TCP VIP on <block>.10 with the
 * ssl-on-portal shape (ports shifted so tests need no privileges), plus log capture.
 */
import { validateRuntimeConfig } from "../../src/config";
import type { RuntimeConfig, RuntimeConfigInput } from "../../src/config";
import { startSimPortal, SimPortal } from "../../src/sim/portal";

export interface Block {
  /** e.g. "127.0.10" */
  net: string;
  vip: string;
  servers: string[];
  /** client source address number n (1-based) in <net+100>.x */
  client(n: number): string;
  /** the three "CTERA" ports (443, 995, 8443 shifted) */
  ports: { https: number; cttp: number; https2: number };
}

export function block(third: number, portBase = 20000 + third * 100): Block {
  const net = `127.0.${third}`;
  return {
    net,
    vip: `${net}.10`,
    servers: [`${net}.11`, `${net}.12`, `${net}.13`],
    client: (n: number) => `127.0.${third + 100 + Math.floor((n - 1) / 250)}.${((n - 1) % 250) + 1}`,
    ports: { https: portBase + 43, cttp: portBase + 95, https2: portBase + 84 },
  };
}

export async function startPortals(b: Block, count = 3): Promise<SimPortal[]> {
  const out: SimPortal[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await startSimPortal({ name: `portal-${i + 1}`, address: b.servers[i] ?? `${b.net}.${11 + i}`, ports: { https: b.ports.https, https2: b.ports.https2, cttp: b.ports.cttp, http: 0, http2: 0 } }));
  }
  return out;
}

type VsInput = RuntimeConfigInput["virtualServices"][number];

/** The ssl-on-portal VIP over the block's portals, with overrides. */
export function tcpConfig(b: Block, vs: Partial<VsInput> = {}, top: Partial<RuntimeConfigInput> = {}, serverCount = 3): RuntimeConfig {
  const doc: RuntimeConfigInput = {
    version: 1,
    virtualServices: [
      {
        name: "CTERA_Portal",
        mode: "tcp",
        listeners: [b.ports.https, b.ports.cttp, b.ports.https2].map((port) => ({ address: b.vip, port })),
        realServers: Array.from({ length: serverCount }, (_, i) => ({ name: `portal-${i + 1}`, address: `${b.net}.${11 + i}` })),
        // Generous timeout: a loaded 2-core test machine must not fail checks spuriously.
        healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: 1000, timeoutMs: 900, rise: 2, fall: 3 },
        ...vs,
      },
    ],
    admin: { address: `${b.net}.1`, port: 19000 + (Number(b.net.split(".")[2]) % 100), token: "test-token-0123456789" },
    ...top,
  };
  return validateRuntimeConfig(doc);
}

/** Collects JSON log lines. */
export function logCapture(): { sink: (s: string) => void; lines: () => Record<string, unknown>[] } {
  const buf: string[] = [];
  return {
    sink: (s) => buf.push(s),
    lines: () =>
      buf
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

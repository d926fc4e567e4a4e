/**
 * A lab: one topology (one-arm or two-arm) with the simulated Portal running in each Portal namespace, the
 * load balancer's boot script applied (two-arm), and the proxy — from the shipped image — serving the
 * config render() makes for a design. Tests drive it from the client namespace with client-main.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { render } from "../../src/config";
import type { Design, RenderInputs, RuntimeConfig } from "../../src/config";
import type { LoadReport, LoadSpec, Probe, ProbeResult } from "./client-main";
import { Layout, Proc, ProxyArtifact, ROOT, Topology, bundle, prepareProxy, sleep, tempDir, writeJson } from "./harness";

// Short enough for a failover within ~2 s; long enough that a CPU-starved CI machine (two cores shared by
// every test file) does not time checks out and flap servers. 500 ms flapped at a load average of ~18.
export const HEALTH_INTERVAL_MS = 1000;
export const PORTAL_NAMES = ["portal-1", "portal-2", "portal-3"] as const;
export type PortalName = (typeof PORTAL_NAMES)[number];

export interface LabOptions {
  tag: string;
  layout: Layout;
}

export interface ProxyRun {
  design: Design;
  config: RuntimeConfig;
  configFile: string;
  proc: Proc;
}

export class Lab {
  readonly sims = new Map<PortalName, Proc>();
  proxy?: ProxyRun;
  readonly cert: { certFile: string; keyFile: string; fingerprint256: string };
  readonly artifact: ProxyArtifact;
  readonly bootScript: { command: string[]; output: string };
  private readonly simJs: string;
  private readonly clientJs: string;

  private constructor(
    readonly topo: Topology,
    readonly work: { dir: string; remove: () => void },
  ) {
    const dir = work.dir;
    this.simJs = bundle(join(__dirname, "sim-main.ts"), join(dir, "sim.js"));
    this.clientJs = bundle(join(__dirname, "client-main.ts"), join(dir, "client.js"));
    this.cert = makeLbCert(dir);
    this.artifact = prepareProxy(dir);
    this.bootScript = applyBootScript(topo, this.artifact);
  }

  /** Builds the topology, applies the load balancer's boot script and starts the three simulated Portals. */
  static async start(opts: LabOptions): Promise<Lab> {
    const topo = Topology.up(opts.tag, opts.layout);
    const work = tempDir(opts.tag);
    let lab: Lab | undefined;
    try {
      lab = new Lab(topo, work);
      process.stdout.write(`[e2e ${opts.layout}] proxy: ${lab.artifact.describe}; boot script: ${lab.bootScript.command.join(" ")}\n`);
      await Promise.all(PORTAL_NAMES.map((n) => lab!.startSim(n)));
      return lab;
    } catch (e) {
      await topo.down();
      work.remove();
      throw e;
    }
  }

  get vip(): string {
    return this.topo.addrs.VIP;
  }

  portalAddress(name: PortalName): string {
    return this.topo.addrs.PORTALS[PORTAL_NAMES.indexOf(name)];
  }

  async startSim(name: PortalName): Promise<Proc> {
    const p = this.topo.spawn(name, process.execPath, [this.simJs, "sim", name, this.portalAddress(name)], name);
    await p.waitFor((j) => j.event === "ready", 15_000, `${name} ready`);
    this.sims.set(name, p);
    return p;
  }

  /** Arms a witness for a server's ports: `listen()` makes it record every connection that reaches them. */
  async armWitness(name: PortalName, ports: number[]): Promise<{ proc: Proc; listen: () => Promise<number> }> {
    const proc = this.topo.spawn(name, process.execPath, [this.simJs, "witness", this.portalAddress(name), ...ports.map(String)], `${name}-witness`);
    await proc.waitFor((j) => j.event === "armed", 10_000, `${name} witness armed`);
    return {
      proc,
      listen: async () => {
        proc.kill("SIGUSR2");
        const j = await proc.waitFor((x) => x.event === "ready", 10_000, `${name} witness listening`);
        return j.at as number;
      },
    };
  }

  /** The config render() makes for this layout and design, with short health-check intervals. */
  renderConfig(design: Design, extra: Partial<RenderInputs> = {}): RuntimeConfig {
    return render({
      design,
      vip: this.vip,
      realServers: this.topo.addrs.PORTALS,
      ...(design === "ssl-on-lb" ? { tls: { certFile: this.cert.certFile, keyFile: this.cert.keyFile } } : {}),
      // Short checks keep failover fast; a timeout near the interval keeps a busy CI machine from flapping.
      healthCheck: { intervalMs: HEALTH_INTERVAL_MS, timeoutMs: HEALTH_INTERVAL_MS - 100, rise: 2, fall: 2 },
      timeouts: { connectMs: 1000 },
      admin: { address: "127.0.0.1", port: 9090 },
      workers: 2,
      drainTimeoutMs: 1000,
      ...extra,
    });
  }

  /** Starts the proxy (stopping a previous one) and waits until every server of every VIP is up. */
  async startProxy(design: Design, extra: Partial<RenderInputs> = {}): Promise<ProxyRun> {
    await this.stopProxy();
    const config = this.renderConfig(design, extra);
    const configFile = writeJson(join(this.work.dir, `config-${design}.json`), config);
    const [cmd, ...pre] = this.artifact.command;
    const proc = this.topo.spawn("lb", cmd, [...pre, "serve", "--config", configFile], `lb:${design}`);
    const t0 = Date.now();
    this.proxy = { design, config, configFile, proc };
    await this.waitAllUp();
    const upAt = Date.now();
    const ready = await this.waitServing(config);
    const servingAt = Date.now();
    process.stdout.write(
      `[e2e ${this.topo.layout}] ${design}: every server UP (admin API) after ${upAt - t0} ms; every listener serving from the client namespace after ${servingAt - t0} ms` +
        (ready.failures.length ? ` (${ready.failures.length} failed attempts first: ${[...new Set(ready.failures)].slice(0, 4).join("; ")})` : "") + "\n",
    );
    return this.proxy;
  }

  async stopProxy(): Promise<void> {
    if (!this.proxy) return;
    await this.proxy.proc.stop(5000);
    this.proxy = undefined;
  }

  /** Polls the admin API inside the lb namespace until every server of every VIP reports UP. */
  async waitAllUp(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      if (this.proxy?.proc.exited != null) {
        throw new Error(`proxy exited (${this.proxy.proc.exited}):\n${this.proxy.proc.stderr.slice(-20).join("\n")}\n${this.proxy.proc.lines.slice(-20).join("\n")}`);
      }
      try {
        last = this.adminGet("/api/status");
        const states = serverStates(JSON.parse(last));
        if (states.length > 0 && states.every((s) => s.state === "UP")) return;
      } catch (e) {
        last = String(e);
      }
      await sleep(200);
    }
    throw new Error(`not every server came UP within ${timeoutMs} ms; last status: ${last.slice(0, 2000)}\nproxy stderr:\n${this.proxy?.proc.stderr.slice(-20).join("\n")}`);
  }

  /** The proxy's log lines about server state changes since `t` (epoch ms). */
  stateChangesSince(t: number): string[] {
    const p = this.proxy?.proc;
    if (!p) return [];
    return p.lines.filter((l, i) => p.lineTimes[i] >= t && /"event":"state"/.test(l));
  }

  /** Waits until every listener of the config answers a real request (HTTPS, HTTP or the 995 echo) from the
   * client namespace several times in a row, so that every worker process serves; returns the attempts made.
   * (Workers open their listeners and learn the servers' states on their own schedule after the control
   * plane is up: the admin API saying UP is not enough.) */
  async waitServing(config: RuntimeConfig, timeoutMs = 20_000): Promise<{ attempts: number; failures: string[] }> {
    const items = config.virtualServices.flatMap((v) =>
      v.listeners.map((l): Probe => ({
        kind: v.mode === "tcp" ? (l.port === 995 ? "tls-echo" : "https") : l.tls ? "https" : "http",
        host: this.vip,
        port: l.port,
        localAddress: this.topo.addrs.CLIENT,
        path: "/ready",
        timeoutMs: 3000,
      })),
    );
    const r = await this.client<{ ok: boolean; attempts: number; failures: string[] }>({ cmd: "ready", items, streak: 4, timeoutMs }, timeoutMs + 10_000);
    if (!r.ok) {
      let status = "";
      try {
        status = JSON.stringify(serverStates(JSON.parse(this.adminGet("/api/status"))));
      } catch (e) {
        status = String(e);
      }
      throw new Error(
        `the proxy did not serve every listener within ${timeoutMs} ms: ${r.failures.slice(-5).join("; ")}\n` +
          `admin API server states: ${status}\nproxy log tail:\n${this.proxy?.proc.lines.filter((l) => !l.includes('"health_check"')).slice(-10).join("\n")}\n` +
          `proxy stderr tail:\n${this.proxy?.proc.stderr.slice(-10).join("\n")}`,
      );
    }
    return r;
  }

  adminGetAsync(path: string): Promise<string> {
    return this.topo.execAsync("lb", "curl", ["-sS", "--max-time", "2", `http://127.0.0.1:9090${path}`]);
  }

  adminGet(path: string): string {
    return this.topo.exec("lb", "curl", ["-sS", "--max-time", "2", `http://127.0.0.1:9090${path}`]);
  }

  /** Runs the client tool in the client namespace. */
  async client<T>(spec: unknown, timeoutMs = 60_000): Promise<T> {
    const p = this.topo.spawn("client", process.execPath, [this.clientJs, JSON.stringify(spec)], "client");
    const killer = setTimeout(() => p.kill(), timeoutMs);
    await p.exit();
    clearTimeout(killer);
    this.topo.procs.delete(p);
    if (p.exited !== 0) throw new Error(`client tool failed (${p.exited}): ${p.stderr.join("\n")}`);
    return JSON.parse(p.lines[p.lines.length - 1]) as T;
  }

  async probe(items: Probe[]): Promise<ProbeResult[]> {
    return (await this.client<{ results: ProbeResult[] }>({ cmd: "probe", items })).results;
  }

  async load(spec: Omit<LoadSpec, "cmd">): Promise<LoadReport> {
    return this.client<LoadReport>({ cmd: "load", ...spec }, spec.durationMs + 60_000);
  }

  /** A command run in the client namespace (curl, openssl s_client). */
  clientExec(cmd: string, args: string[], input?: string): string {
    return this.topo.exec("client", cmd, args, { input });
  }

  async stop(): Promise<void> {
    await this.stopProxy();
    await this.topo.down();
    this.work.remove();
  }
}

/** Server states from /api/status, whatever its nesting: every object with a name and a state. */
export function serverStates(status: unknown): { vip?: string; name: string; state: string }[] {
  const found: { vip?: string; name: string; state: string }[] = [];
  const walk = (v: unknown, vip?: string) => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, vip));
    if (!v || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    if (typeof o.name === "string" && typeof o.state === "string" && ["UP", "DOWN", "DRAIN", "HALT"].includes(o.state)) {
      found.push({ vip, name: o.name, state: o.state });
      return;
    }
    const nextVip = typeof o.name === "string" && ("servers" in o || "realServers" in o) ? o.name : vip;
    for (const x of Object.values(o)) walk(x, nextVip);
  };
  walk(status);
  return found;
}

function makeLbCert(dir: string): { certFile: string; keyFile: string; fingerprint256: string } {
  const certDir = join(dir, "lb-tls");
  mkdirSync(certDir, { recursive: true });
  const certFile = join(certDir, "cert.pem");
  const keyFile = join(certDir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile,
      "-days", "2", "-subj", "/CN=lb.example.test", "-addext", "subjectAltName=DNS:lb.example.test"],
    { stdio: "ignore" },
  );
  const fp = execFileSync("openssl", ["x509", "-in", certFile, "-noout", "-fingerprint", "-sha256"], { encoding: "utf8" });
  return { certFile, keyFile, fingerprint256: fp.split("=")[1].trim() };
}

/** The very boot script the component ships (VIP on the client-facing interface; two-arm: eth1's source
 * routing), run inside the lb namespace with its parameters. */
function applyBootScript(topo: Topology, artifact: ProxyArtifact): { command: string[]; output: string } {
  // The copy inside the image (sbin/lb-network-setup) is the one the VM runs; the checkout's otherwise.
  const script = artifact.root ? join(artifact.root, "sbin", "lb-network-setup") : join(ROOT, "scripts", "lb-network-setup");
  if (!existsSync(script)) throw new Error("scripts/lb-network-setup (the component's boot script) is not in this checkout");
  const a = topo.addrs;
  const args = bootScriptArgs(a);
  const output = topo.exec("lb", "bash", [script, ...args]);
  return { command: [script.slice(script.lastIndexOf("/", script.lastIndexOf("/") - 1) + 1), ...args], output };
}

/** The boot script's parameters for this topology (see scripts/lb-network-setup's usage). */
export function bootScriptArgs(a: Topology["addrs"]): string[] {
  if (a.LAYOUT === "one-arm") return ["--layout", "one-arm", "--client-if", "eth0", "--vip", a.VIP];
  return ["--layout", "two-arm", "--client-if", "eth1", "--client-ip", a.LB_ETH1!, "--client-cidr", a.LB_ETH1_CIDR!, "--client-gw", a.LB_ETH1_GATEWAY!, "--vip", a.VIP];
}

/**
 * The HA pair in network namespaces (test/ha/ha-netns): two load balancer nodes, each running the proxy
 * and keepalived with the rendered config, three Portal stand-ins, a client with 16 source addresses, and
 * a bounded load through the VIP. Everything it starts it ends, by pid, and the namespaces are removed on
 * every path (also when jest is interrupted: an exit hook, and a reap of leftovers of dead runs at start).
 */
import { ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { render, renderKeepalivedPair } from "../../src/config";

export const ROOT = resolve(__dirname, "..", "..");
const NETNS = join(__dirname, "ha-netns");
export const VIP = "192.0.2.10";
export const PORT = 80;
export const NODES = ["lba", "lbb"] as const;
export type Node = (typeof NODES)[number];
export const CLIENT_SOURCES = Array.from({ length: 16 }, (_, i) => `192.0.2.${150 + i}`);
const PORTALS = [
  { name: "portal-1", address: "198.51.100.11" },
  { name: "portal-2", address: "198.51.100.12" },
  { name: "portal-3", address: "198.51.100.13" },
];
const NODE_ADDR: Record<Node, string> = { lba: "198.51.100.5", lbb: "198.51.100.6" };

/** Fails (never skips) with what is missing. */
export function assertCanRun(): void {
  if (process.getuid?.() !== 0) throw new Error("the HA netns test needs root (ip netns, keepalived): run it as root");
  for (const tool of ["ip", "keepalived", "curl", "arping"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} is not installed: run scripts/install-test-deps (as root)`);
    }
  }
  if (!existsSync(join(ROOT, "dist", "src", "cli.js"))) throw new Error("no dist/: run `npm run build` first (npm test does)");
}

export interface LoadResult {
  i: number;
  src: string;
  /** ms since the epoch */
  start: number;
  end: number;
  ok: boolean;
  server?: string;
  error?: string;
}

export interface HaLabOptions {
  /** Namespace name prefix (one per test file): "cha" (default) or "clbha2". */
  prefix?: "cha" | "clbha2";
  /** Persistence sync between the nodes: each node's admin API on its internal address, with a token, and
   * highAvailability.peer naming the other node's. */
  peerSync?: boolean;
  /** Portal health checks (default: patient, every 2 s, fall 3). */
  portalCheck?: { intervalMs: number; timeoutMs: number; fall: number; rise: number };
}

export const ADMIN_TOKEN = "ha-lab-token-0123456789";

export class HaLab {
  readonly prefix: string;
  readonly dir = mkdtempSync(join(tmpdir(), "ctera-ha-"));
  constructor(private readonly opts: HaLabOptions = {}) {
    this.prefix = `${opts.prefix ?? "cha"}-${process.pid}-`;
  }
  private readonly procs = new Map<string, ChildProcess>();
  /** Every process started, also those already killed (stop() waits for their exit). */
  private readonly all: ChildProcess[] = [];
  private readonly exitHook = () => this.downSync();
  private up = false;

  ns(host: string): string {
    return `${this.prefix}${host}`;
  }

  async start(): Promise<void> {
    execFileSync(NETNS, ["reap"], { stdio: "inherit" });
    process.on("exit", this.exitHook);
    execFileSync(NETNS, ["up", this.prefix], { stdio: "inherit" });
    this.up = true;
    PORTALS.forEach((_p, i) => this.startPortal(i + 1));
    this.writeConfigs();
    for (const n of NODES) this.startProxy(n);
    for (const n of NODES) await this.waitFor(() => this.healthy(n), 30000, `${n}: proxy /healthz`);
  }

  /** Portal server n (1-3) in its namespace. */
  startPortal(n: number): void {
    const p = PORTALS[n - 1];
    this.spawn(`p${n}`, `portal-${n}`, [process.execPath, join(__dirname, "portal.js"), p.name, p.address, String(PORT)]);
  }

  /** Portal server n dies (SIGKILL): its port refuses connections. */
  killPortal(n: number): void {
    this.killProcs(`p${n}`, [`portal-${n}`], "");
  }

  /** The node's admin API (where its track script and the peer reach it). */
  adminUrl(n: Node): string {
    return `http://${this.opts.peerSync ? NODE_ADDR[n] : "127.0.0.1"}:9090`;
  }

  /** GET /api/status of the node's proxy, from inside its namespace. */
  status(n: Node): any {
    const out = execFileSync("ip", ["netns", "exec", this.ns(n), "curl", "-sf", "--max-time", "5", `${this.adminUrl(n)}/api/status`], { encoding: "utf8" });
    return JSON.parse(out);
  }

  /** The state of a Portal server as the node's proxy sees it (UP, DOWN, ...), or "?" when it does not answer. */
  serverState(n: Node, server: string): string {
    try {
      return (this.status(n).virtualServices[0].servers as { name: string; state: string }[]).find((s) => s.name === server)?.state ?? "?";
    } catch {
      return "?";
    }
  }

  /** keepalived on lb-a first, so the first election is deterministic (lb-a MASTER); lb-b joins as BACKUP. */
  async startPair(): Promise<void> {
    this.startKeepalived("lba");
    await this.waitFor(() => this.state("lba") === "MASTER", 20_000, "lb-a MASTER");
    this.startKeepalived("lbb");
    await this.waitFor(() => this.state("lbb") === "BACKUP", 20_000, "lb-b BACKUP");
  }

  /** The proxy's runtime config and both keepalived.conf files, from the typed inputs. */
  private writeConfigs(): void {
    const check = this.opts.portalCheck ?? { intervalMs: 2000, timeoutMs: 1500, fall: 3, rise: 2 };
    const config = render(
      {
        design: "ssl-on-portal",
        vip: VIP,
        realServers: PORTALS.map((p) => ({ name: p.name, address: p.address })),
        // Patient Portal checks: the machine is shared, and a Portal server marked DOWN by a slow check would
        // re-place its clients, which is not what these tests are about.
        virtualServices: { CTERA_Portal: { ports: [PORT], healthCheck: { type: "connect", port: PORT, ...check } } },
        admin: { address: "127.0.0.1", port: 9090, ...(this.opts.peerSync ? { token: ADMIN_TOKEN } : {}) },
        workers: 1,
        drainTimeoutMs: 500,
      },
      { checkFiles: false },
    );
    const [a, b] = renderKeepalivedPair(
      {
        nodes: [
          { name: "lb-a", address: NODE_ADDR.lba, priority: 250 },
          { name: "lb-b", address: NODE_ADDR.lbb, priority: 240 },
        ],
        vrrpInterface: "eth0",
        virtualRouterId: 51,
        authPass: "hatest01",
        vip: { address: VIP, interface: "eth1" }, // added as a /32, as on the VMs
        scriptDir: join(ROOT, "scripts", "ha"),
        ec2: null, // the EC2 move is tested against a stub in ec2-move-vip.test.ts
      },
      config,
    );
    for (const [n, conf] of [["lba", a], ["lbb", b]] as const) {
      mkdirSync(join(this.dir, n), { recursive: true });
      // With the sync: what the config poller does on the VMs (admin API on the node's internal address, the
      // peer from the node's peer object), and the track script asks there.
      const other: Node = n === "lba" ? "lbb" : "lba";
      const nodeConfig = this.opts.peerSync
        ? { ...config, admin: { ...config.admin, address: NODE_ADDR[n] }, highAvailability: { peer: { address: NODE_ADDR[other], port: 9090 } } }
        : config;
      writeFileSync(join(this.dir, n, "config.json"), JSON.stringify(nodeConfig, null, 2));
      // Each node's own state file (the notify script writes it) in its own folder.
      let k = conf.replace(/\/run\/ctera-lb\/ha-state/g, join(this.dir, n, "ha-state"));
      if (this.opts.peerSync) k = k.replace("http://127.0.0.1:9090/healthz", `${this.adminUrl(n)}/healthz`);
      writeFileSync(join(this.dir, n, "keepalived.conf"), k);
    }
  }

  /** `ctera-lb serve` of this checkout (primary + one worker). */
  startProxy(n: Node): void {
    this.spawn(n, `${n}-proxy`, [process.execPath, join(ROOT, "bin", "ctera-lb"), "serve", "--config", join(this.dir, n, "config.json")]);
  }

  /** keepalived in the foreground, VRRP only, with pid files of its own (never the default /run paths). */
  startKeepalived(n: Node): void {
    const d = join(this.dir, n);
    this.spawn(n, `${n}-keepalived`, [
      "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
      "--use-file", join(d, "keepalived.conf"),
      "--pid", join(d, "keepalived.pid"), "--vrrp_pid", join(d, "vrrp.pid"), "--checkers_pid", join(d, "checkers.pid"),
    ]);
  }

  private spawn(host: string, name: string, cmd: string[]): ChildProcess {
    const log = openSync(join(this.dir, `${name}.log`), "a");
    const p = spawn("ip", ["netns", "exec", this.ns(host), ...cmd], { stdio: ["ignore", log, log], cwd: ROOT });
    closeSync(log);
    this.procs.set(name, p);
    this.all.push(p);
    return p;
  }

  /** The VRRP state the notify script recorded last (MASTER, BACKUP, FAULT, STOP), or "" before any. */
  state(n: Node): string {
    const f = join(this.dir, n, "ha-state");
    return existsSync(f) ? readFileSync(f, "utf8").split(" ")[0] : "";
  }

  hasVip(n: Node): boolean {
    return execFileSync("ip", ["-n", this.ns(n), "-4", "-o", "addr", "show", "dev", "eth1"], { encoding: "utf8" }).includes(` ${VIP}/`);
  }

  linkUp(n: Node): boolean {
    return !execFileSync("ip", ["-n", this.ns(n), "-o", "link", "show", "dev", "eth1"], { encoding: "utf8" }).includes("state DOWN");
  }

  healthy(n: Node): boolean {
    try {
      execFileSync("ip", ["netns", "exec", this.ns(n), join(ROOT, "scripts", "ha", "check-proxy"), `${this.adminUrl(n)}/healthz`], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  }

  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.logTails()}`);
      await sleep(100);
    }
  }

  /** A node lost as a whole (power off): its links go down, then every process in it is SIGKILLed, so no
   * priority-0 advert and no notify script run. */
  killNode(n: Node): void {
    for (const dev of ["eth1", "eth0"]) execFileSync("ip", ["-n", this.ns(n), "link", "set", dev, "down"]);
    this.killProcs(n, ["proxy", "keepalived"]);
  }

  /** Only the proxy dies (SIGKILL); keepalived and the links stay. */
  killProxy(n: Node): void {
    this.killProcs(n, ["proxy"]);
  }

  /** SIGKILL the named processes (`<n><sep><which>`) of host n, with their children. */
  private killProcs(n: string, which: string[], sep = "-"): void {
    // keepalived's VRRP child first (its pid file), so it cannot say goodbye when its parent goes.
    if (which.includes("keepalived")) {
      const f = join(this.dir, n, "vrrp.pid");
      if (existsSync(f)) killPid(Number(readFileSync(f, "utf8").trim()));
    }
    for (const w of which) {
      const p = this.procs.get(sep ? `${n}${sep}${w}` : w);
      if (p?.pid) {
        // The process and its children at once (serve's worker, keepalived's VRRP child): a crash, not a stop.
        for (const child of childPids(p.pid)) killPid(child);
        killPid(p.pid);
      }
      this.procs.delete(sep ? `${n}${sep}${w}` : w);
    }
    // Anything else still in the namespace that we started there (notify scripts, curl).
    if (which.includes("keepalived")) for (const pid of netnsPids(this.ns(n))) killPid(pid);
  }

  /** A node boots again: no VIP on it (addresses added by the notify script do not survive a reboot), links
   * up, proxy, then keepalived. */
  async restartNode(n: Node): Promise<void> {
    if (this.hasVip(n)) execFileSync("ip", ["-n", this.ns(n), "addr", "del", `${VIP}/32`, "dev", "eth1"]);
    rmSync(join(this.dir, n, "ha-state"), { force: true });
    for (const dev of ["eth0", "eth1"]) execFileSync("ip", ["-n", this.ns(n), "link", "set", dev, "up"]);
    if (!this.procs.has(`${n}-proxy`)) this.startProxy(n);
    await this.waitFor(() => this.healthy(n), 30000, `${n}: proxy /healthz`);
    if (!this.procs.has(`${n}-keepalived`)) this.startKeepalived(n);
  }

  /** A pair node boots the way the image boots it (ctera-lb-boot): links up, lb-network-setup with
   * --no-vip-address (the VIP is keepalived's), the proxy, then keepalived. `sample` is called every 50 ms
   * with whether the node holds the VIP, from the network setup until keepalived has reported a state. */
  async bootNode(n: Node, sample: (hasVip: boolean) => void): Promise<void> {
    if (this.hasVip(n)) execFileSync("ip", ["-n", this.ns(n), "addr", "del", `${VIP}/32`, "dev", "eth1"]); // a reboot
    rmSync(join(this.dir, n, "ha-state"), { force: true });
    for (const dev of ["eth0", "eth1"]) execFileSync("ip", ["-n", this.ns(n), "link", "set", dev, "up"]);
    const sampler = setInterval(() => sample(this.hasVip(n)), 50);
    try {
      execFileSync("ip", ["netns", "exec", this.ns(n), join(ROOT, "scripts", "lb-network-setup"), "--layout", "one-arm", "--client-if", "eth1", "--vip", VIP, "--no-vip-address"], { stdio: "ignore" });
      sample(this.hasVip(n));
      if (!this.procs.has(`${n}-proxy`)) this.startProxy(n);
      await this.waitFor(() => this.healthy(n), 30000, `${n}: proxy /healthz`);
      if (!this.procs.has(`${n}-keepalived`)) this.startKeepalived(n);
      await this.waitFor(() => this.state(n) !== "", 20000, `${n}: a VRRP state`);
      await sleep(1500); // and a little longer: a MASTER-at-boot would show by now
    } finally {
      clearInterval(sampler);
    }
  }

  /** A bounded load through the VIP from the client namespace; `during(t0)` acts while it runs. */
  async load(opts: { rate: number; seconds: number; timeoutMs: number }, during: () => Promise<void>): Promise<LoadResult[]> {
    const out = join(this.dir, `load-${Date.now()}.json`);
    const p = this.spawn("client", `load-${Date.now()}`, [
      process.execPath, join(__dirname, "load-client.js"), VIP, String(PORT), String(opts.rate), String(opts.seconds), String(opts.timeoutMs), out, ...CLIENT_SOURCES,
    ]);
    const exited = new Promise<void>((res) => p.once("exit", () => res()));
    try {
      await during();
    } finally {
      await within(exited, opts.seconds * 1000 + opts.timeoutMs + 5000);
      if (p.exitCode === null && p.pid) killPid(p.pid);
    }
    if (!existsSync(out)) throw new Error(`the load client wrote no result\n${this.logTails()}`);
    const r = JSON.parse(readFileSync(out, "utf8")) as { t0: number; results: (Omit<LoadResult, "start" | "end"> & { start: number; end: number })[] };
    return r.results.map((x) => ({ ...x, start: r.t0 + x.start, end: r.t0 + x.end }));
  }

  /** One answered request through the VIP from each client address (all at once; up to 3 tries of 10 s
   * each, the machine may be busy): client address → the server that answered, or "failed: <reason>". */
  async probe(): Promise<Map<string, string>> {
    const one = async (src: string): Promise<[string, string]> => {
      let last: [string, string] = [src, "failed"];
      for (let i = 0; i < 3; i++) {
        last = await this.probeOnce(src);
        if (!last[1].startsWith("failed")) break;
      }
      return last;
    };
    return new Map(await Promise.all(CLIENT_SOURCES.map(one)));
  }

  private probeOnce(src: string): Promise<[string, string]> {
    return new Promise((done) => {
      execFile(
        "ip",
        ["netns", "exec", this.ns("client"), "curl", "-sS", "--max-time", "10", "--interface", src, `http://${VIP}:${PORT}/`],
        { encoding: "utf8" },
        (err, stdout, stderr) => {
          if (err) return done([src, `failed: ${stderr.trim() || err.message}`]);
          try {
            done([src, (JSON.parse(stdout) as { server: string }).server]);
          } catch {
            done([src, `failed: bad answer ${stdout.slice(0, 100)}`]);
          }
        },
      );
    });
  }

  /** The notify script's transitions on `n` (its notify.log lines without the ARP ones). */
  transitions(n: Node): string[] {
    const f = join(this.dir, n, "notify.log");
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter((l) => /^\S+ (MASTER|BACKUP|FAULT|STOP):/.test(l)) : [];
  }

  /** When the notify script last made `n` MASTER (ms since the epoch; its notify.log), or NaN. */
  becameMaster(n: Node): number {
    const f = join(this.dir, n, "notify.log");
    if (!existsSync(f)) return NaN;
    const lines = readFileSync(f, "utf8").split("\n").filter((l) => / MASTER: /.test(l));
    return lines.length ? Date.parse(lines[lines.length - 1].split(" ")[0]) : NaN;
  }

  logTails(): string {
    let s = "";
    for (const name of ["lba-keepalived", "lbb-keepalived", "lba-proxy", "lbb-proxy"]) {
      const f = join(this.dir, `${name}.log`);
      if (existsSync(f)) s += `--- ${name}.log (tail)\n${readFileSync(f, "utf8").split("\n").slice(-15).join("\n")}\n`;
    }
    return s;
  }

  async stop(): Promise<void> {
    const exits: Promise<unknown>[] = [];
    for (const p of this.all) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      exits.push(new Promise((r) => p.once("exit", r)));
      if (p.pid) killPid(p.pid);
    }
    this.procs.clear();
    this.downSync();
    await within(Promise.all(exits), 5000);
  }

  private downSync(): void {
    if (this.up) {
      try {
        execFileSync(NETNS, ["down", this.prefix], { stdio: "inherit" });
      } finally {
        this.up = false;
      }
    }
    process.removeListener("exit", this.exitHook);
    if (!process.env.CTERA_HA_KEEP_LOGS) rmSync(this.dir, { recursive: true, force: true });
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}

function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // none
  }
}

function netnsPids(ns: string): number[] {
  try {
    return execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Waits for `p`, at most `ms` (the timer does not outlive the wait). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What the clients saw around an event at `at` (ms since the epoch). */
export interface Outage {
  /** The longest wait between two answers that ends after the event: the last answer before the silence and
   * the first one after it (ms since the epoch). The failover time (the "last success before → first
   * success after") is the difference. An answer cannot arrive through a node that is gone, and a request
   * whose SYN was lost before the move is answered only after it, so the silence is the outage. */
  lastOkBefore: number;
  firstOkAfter: number;
  gapMs: number;
  failed: number;
  ok: number;
  /** answered, but after more than 1 s (a SYN retransmitted after the move, or a busy machine) */
  slow: number;
  /** client address → the servers it reached */
  serversBySource: Map<string, Set<string>>;
}

export function outage(results: LoadResult[], at: number): Outage {
  const oks = results.filter((r) => r.ok).sort((a, b) => a.end - b.end);
  let lastOkBefore = NaN;
  let firstOkAfter = NaN;
  for (let k = 1; k < oks.length; k++) {
    const prev = oks[k - 1].end;
    const next = oks[k].end;
    if (next < at) continue;
    if (Number.isNaN(lastOkBefore) || next - prev > firstOkAfter - lastOkBefore) {
      lastOkBefore = prev;
      firstOkAfter = next;
    }
  }
  const serversBySource = new Map<string, Set<string>>();
  for (const r of oks) {
    if (!serversBySource.has(r.src)) serversBySource.set(r.src, new Set());
    serversBySource.get(r.src)!.add(r.server ?? "?");
  }
  return {
    lastOkBefore,
    firstOkAfter,
    gapMs: firstOkAfter - lastOkBefore,
    failed: results.filter((r) => !r.ok).length,
    ok: oks.length,
    slow: oks.filter((r) => r.end - r.start > 1000).length,
    serversBySource,
  };
}

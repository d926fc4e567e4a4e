/**
 * The end-to-end harness: topologies of network namespaces (made and removed by scripts/netns/clb-netns),
 * processes started inside them, and the small node programs that run there (the simulated Portal, the
 * client tool), bundled from source with esbuild so a run never uses stale output.
 *
 * Everything a test starts is registered here and removed on every path: afterAll, process exit, and
 * SIGINT/SIGTERM; a later run also reaps the namespaces of a run that was killed outright (clb-<pid>-*).
 */
import { ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as readline from "node:readline";

export const ROOT = resolve(__dirname, "..", "..");
const NETNS = join(ROOT, "scripts", "netns", "clb-netns");

export const NEEDS_ROOT =
  "the end-to-end tests need root: they build their own network namespaces with `ip netns` and veth pairs " +
  "(run the test command as root, e.g. `sudo npm test`; CI runs as root)";

/** Throws (fails the test, never skips it) when not root or when iproute2 is missing. */
export function assertCanRun(): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) throw new Error(NEEDS_ROOT);
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch (e) {
    throw new Error(`the end-to-end tests need iproute2's \`ip netns\` (${(e as Error).message})`);
  }
}

export type Layout = "one-arm" | "two-arm";
export type Host = "client" | "lb" | "portal-1" | "portal-2" | "portal-3" | "gw" | "sw";

export interface Addresses {
  LAYOUT: Layout;
  LB_ETH0: string;
  LB_ETH1?: string;
  LB_ETH1_CIDR?: string;
  LB_ETH1_GATEWAY?: string;
  LB_ETH0_GATEWAY?: string;
  VIP: string;
  PORTALS: string[];
  CLIENT: string;
  CLIENT_ADDRS: string[];
}

const cleanups = new Set<() => void>();
let hooked = false;
function onExit(fn: () => void): () => void {
  cleanups.add(fn);
  if (!hooked) {
    hooked = true;
    const all = () => {
      for (const f of [...cleanups].reverse()) {
        try {
          f();
        } catch {
          /* keep going: every cleanup gets its turn */
        }
      }
      cleanups.clear();
    };
    process.on("exit", all);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        all();
        process.kill(process.pid, sig);
      });
    }
  }
  return () => cleanups.delete(fn);
}

function parseAddresses(text: string): Addresses {
  const kv: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) kv[m[1]] = m[2];
  }
  return {
    ...(kv as unknown as Addresses),
    PORTALS: kv.PORTALS.split(" "),
    CLIENT_ADDRS: kv.CLIENT_ADDRS.split(" "),
  };
}

export class Topology {
  readonly procs = new Set<Proc>();
  private removed = false;
  private unhook: () => void;

  private constructor(
    readonly prefix: string,
    readonly layout: Layout,
    readonly addrs: Addresses,
  ) {
    this.unhook = onExit(() => this.downSync());
  }

  /** Reaps namespaces of dead runs, then builds a fresh topology named clb-<pid>-<tag>-*. */
  static up(tag: string, layout: Layout): Topology {
    assertCanRun();
    execFileSync(NETNS, ["reap"], { stdio: ["ignore", "ignore", "inherit"] });
    const prefix = `clb-${process.pid}-${tag}-`;
    // A leftover of this same pid (an earlier topology of this worker) goes first.
    execFileSync(NETNS, ["down", prefix], { stdio: "ignore" });
    const out = execFileSync(NETNS, ["up", prefix, layout], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return new Topology(prefix, layout, parseAddresses(out));
  }

  ns(host: Host): string {
    return this.prefix + host;
  }

  /** Runs a command inside a host's namespace and returns its stdout. */
  exec(host: Host, cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
    return execFileSync("ip", ["netns", "exec", this.ns(host), cmd, ...args], {
      encoding: "utf8",
      input: opts.input,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: 60_000,
    });
  }

  /** Like exec, without blocking the event loop. */
  execAsync(host: Host, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile("ip", ["netns", "exec", this.ns(host), cmd, ...args], { encoding: "utf8", timeout: timeoutMs }, (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} in ${host}: ${err.message} ${stderr}`)) : resolve(stdout),
      ),
    );
  }

  /** Starts a long-running process inside a host's namespace; its stdout lines are kept (and JSON-parsed). */
  spawn(host: Host, cmd: string, args: string[], name = `${host}:${cmd}`): Proc {
    const p = new Proc(name, spawn("ip", ["netns", "exec", this.ns(host), cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] }));
    this.procs.add(p);
    return p;
  }

  /** Interface counters read from /sys/class/net inside a namespace. */
  counters(host: Host, ifname: string): { rxBytes: number; txBytes: number; rxPackets: number; txPackets: number } {
    const read = (f: string) => Number(this.exec(host, "cat", [`/sys/class/net/${ifname}/statistics/${f}`]).trim());
    return { rxBytes: read("rx_bytes"), txBytes: read("tx_bytes"), rxPackets: read("rx_packets"), txPackets: read("tx_packets") };
  }

  async down(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.stop()));
    this.downSync();
  }

  private downSync(): void {
    if (this.removed) return;
    for (const p of this.procs) p.kill();
    execFileSync(NETNS, ["down", this.prefix], { stdio: ["ignore", "ignore", "inherit"] });
    this.removed = true;
    this.unhook();
  }
}

/** A process started inside a namespace: lines of stdout/stderr are kept; JSON lines parsed. */
export class Proc {
  readonly lines: string[] = [];
  /** When each stdout line arrived (Date.now()), index-aligned with `lines`. */
  readonly lineTimes: number[] = [];
  readonly json: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  exited: number | null = null;
  private waiters: { pred: (j: Record<string, unknown>, line: string) => boolean; resolve: (j: Record<string, unknown>) => void }[] = [];
  private exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    readline.createInterface({ input: child.stdout! }).on("line", (line) => this.onLine(line));
    readline.createInterface({ input: child.stderr! }).on("line", (line) => {
      this.stderr.push(line);
      if (process.env.CLB_E2E_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
    });
    this.exitPromise = new Promise((r) =>
      child.on("exit", (code, sig) => {
        this.exited = code ?? (sig ? 128 : 1);
        r();
      }),
    );
  }

  private onLine(line: string): void {
    this.lines.push(line);
    this.lineTimes.push(Date.now());
    if (process.env.CLB_E2E_VERBOSE) process.stderr.write(`[${this.name}] ${line}\n`);
    let j: Record<string, unknown> | undefined;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object") j = v as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    if (j) this.json.push(j);
    this.waiters = this.waiters.filter((w) => {
      if (w.pred(j ?? {}, line)) {
        w.resolve(j ?? {});
        return false;
      }
      return true;
    });
  }

  /** Resolves with the first stdout line (already seen or coming) that matches; rejects on exit or timeout. */
  waitFor(pred: (j: Record<string, unknown>, line: string) => boolean, timeoutMs: number, what = "a line"): Promise<Record<string, unknown>> {
    for (const line of this.lines) {
      let j: Record<string, unknown> = {};
      try {
        j = JSON.parse(line);
      } catch {
        /* not JSON */
      }
      if (pred(j, line)) return Promise.resolve(j);
    }
    return new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`${this.name}: ${why} waiting for ${what}\nstdout tail:\n${this.lines.slice(-15).join("\n")}\nstderr tail:\n${this.stderr.slice(-15).join("\n")}`));
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      const w = {
        pred,
        resolve: (j: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(j);
        },
      };
      this.waiters.push(w);
      this.exitPromise.then(() => {
        if (this.waiters.includes(w)) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((x) => x !== w);
          fail(`exited (${this.exited})`);
        }
      });
    });
  }

  kill(sig: NodeJS.Signals = "SIGKILL"): void {
    if (this.exited === null && this.child.pid) {
      try {
        // `ip netns exec` execs the command, so this pid is the program itself.
        process.kill(this.child.pid, sig);
      } catch {
        /* already gone */
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited !== null) return;
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), graceMs);
    await this.exitPromise;
    clearTimeout(t);
  }

  exit(): Promise<void> {
    return this.exitPromise;
  }
}

/** A temp directory removed on every path. */
export function tempDir(tag: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `clb-e2e-${tag}-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const unhook = onExit(remove);
  return {
    dir,
    remove: () => {
      remove();
      unhook();
    },
  };
}

/** Bundles a TypeScript entry (and what it imports from src/) into one CommonJS file with esbuild. */
export function bundle(entry: string, outFile: string): string {
  // esbuild's JS API is loaded lazily: only the e2e tests need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require("esbuild") as typeof import("esbuild");
  esbuild.buildSync({
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    logLevel: "error",
    external: ["@pulumi/*"],
  });
  return outFile;
}

/** How the proxy is run: from the image tarball that scripts/build-image makes (what the component ships),
 * or, before that script exists, from this checkout's bin/ctera-lb (needs `npm run build`). */
export interface ProxyArtifact {
  source: "image" | "checkout";
  /** The command and leading args; append ["serve", "--config", file]. */
  command: string[];
  describe: string;
  /** Where the image was extracted (its /opt/ctera-lb), when running from the image. */
  root?: string;
}

export function prepareProxy(workDir: string): ProxyArtifact {
  // CLB_E2E_PROXY="<node script>": run the suite against another build of the proxy (it must take
  // `serve --config <file>`); the "runs from the shipped image" tests then fail, on purpose.
  const other = process.env.CLB_E2E_PROXY;
  if (other) return { source: "checkout", command: [process.execPath, resolve(other)], describe: `CLB_E2E_PROXY=${other}` };
  const buildImage = join(ROOT, "scripts", "build-image");
  if (existsSync(buildImage)) return imageArtifact(buildImage, workDir);
  const bin = join(ROOT, "bin", "ctera-lb");
  if (!existsSync(join(ROOT, "dist", "src", "cli.js"))) throw new Error("no dist/: run `npm run build` first (npm test does)");
  return { source: "checkout", command: [process.execPath, bin], describe: `checkout's bin/ctera-lb (scripts/build-image not present)` };
}

function imageArtifact(buildImage: string, workDir: string): ProxyArtifact {
  const outDir = join(workDir, "image-out");
  const out = execFileSync(process.execPath, [buildImage, "--out", outDir], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  const made = JSON.parse(out.trim().split("\n").pop()!) as { sha256: string; file: string; bytes: number };
  const tarball = resolve(ROOT, made.file);
  const root = join(workDir, "image");
  mkdirSync(root, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", root]);
  // What bin/ctera-lb (the systemd unit's ExecStart) does, with this extraction's path for /opt/ctera-lb.
  const entry = join(root, "lib", "ctera-lb.js");
  if (!existsSync(entry)) throw new Error(`the image has no lib/ctera-lb.js:\n${execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })}`);
  return {
    source: "image",
    command: [process.execPath, entry],
    describe: `image ${made.file} (sha256 ${made.sha256.slice(0, 12)}…, ${made.bytes} B) → lib/ctera-lb.js`,
    root,
  };
}

export function writeJson(file: string, v: unknown): string {
  writeFileSync(file, JSON.stringify(v, null, 2));
  return file;
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * `ctera-lb serve` as a process (workers: 2 = the primary serving + 1 worker process): health checked once,
 * persistence consistent across the processes, half-close relayed by every process, SIGHUP reload (an idle CTTP session survives; an invalid file is refused), SIGTERM drain
 * exits 0. Needs the build (`npx tsc`; the root `npm test` builds first). Block 127.0.14.0/24, clients 127.0.114.x.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as net from "node:net";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConfig } from "../../src/config";
import type { SimPortal } from "../../src/sim/portal";
import { block, startPortals, tcpConfig } from "../helpers/proxy";
import { getJson, httpGet, sleep, tcpConnect, tlsFirstLine, waitFor, whoAnswers } from "../helpers/net";

const b = block(14);
const ROOT = join(__dirname, "..", "..");
const TOKEN = "test-token-0123456789";
const INTERVAL = 500;
const SERVE_FLAGS = (require("../../src/proxy/main") as typeof import("../../src/proxy/main")).SERVE_NODE_FLAGS;

interface Served {
  proc: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

function serve(file: string): Served {
  const proc = spawn(process.execPath, [join(ROOT, "bin", "ctera-lb"), "serve", "--config", file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, out: () => out, exit };
}

const lines = (s: Served) =>
  s
    .out()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("ctera-lb serve (primary + worker process)", () => {
  let portals: SimPortal[];
  let dir: string;
  let file: string;
  let cfg: RuntimeConfig;
  let s: Served;
  const admin = { host: `${b.net}.1`, port: 19014 };

  const write = (c: unknown) => writeFileSync(file, JSON.stringify(c, null, 2));
  // A plain TCP VIP in front of a server that answers only after the client's FIN (half-close).
  const HALF = { port: b.ports.https + 7, server: `${b.net}.14` };
  let halfServer: net.Server;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "dist", "src", "proxy", "main.js"))) throw new Error("build first: npx tsc (npm test does)");
    portals = await startPortals(b);
    dir = mkdtempSync(join(tmpdir(), "ctera-lb-serve-"));
    file = join(dir, "config.json");
    cfg = tcpConfig(b, { healthCheck: { type: "https-get", port: b.ports.https, path: "/admin/startup", intervalMs: INTERVAL, timeoutMs: 450, rise: 2, fall: 3 } }, { workers: 2, drainTimeoutMs: 1500 });
    halfServer = net.createServer({ allowHalfOpen: true }, (c) => {
      let n = 0;
      c.on("data", (d: Buffer) => (n += d.length));
      c.on("end", () => c.end(`got ${n} bytes after your FIN`));
    });
    await new Promise<void>((r) => halfServer.listen(HALF.port, HALF.server, () => r()));
    cfg = {
      ...cfg,
      virtualServices: [
        ...cfg.virtualServices,
        {
          ...cfg.virtualServices[0],
          name: "HalfClose",
          listeners: [{ address: b.vip, port: HALF.port }],
          realServers: [{ ...cfg.virtualServices[0].realServers[0], name: "half", address: HALF.server, port: HALF.port }],
          healthCheck: { ...cfg.virtualServices[0].healthCheck, type: "connect", port: HALF.port },
        },
      ],
    };
    write(cfg);
    s = serve(file);
    const up = await waitFor(() => lines(s).some((l) => l.event === "started"), 20000, 50);
    if (!up) throw new Error(`serve did not start:\n${s.out()}`);
  });

  test("says which TCP relay it runs: the handles on this Node", () => {
    expect(lines(s).find((l) => l.event === "started")).toMatchObject({ workers: 2, tcpRelay: "handles", tlsEngine: "handles", tlsTicketRenewal: true });
  });

  afterAll(async () => {
    if (s.proc.exitCode === null) {
      s.proc.kill("SIGKILL");
      await s.exit;
    }
    await Promise.all(portals.map((p) => p.stop()));
    await new Promise((r) => halfServer.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test("runs the health checks once (in the primary), not once per worker", async () => {
    const before = portals[0].healthRequests.length;
    await sleep(6 * INTERVAL);
    const seen = portals[0].healthRequests.length - before;
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(seen).toBeLessThanOrEqual(8); // two streams (one per worker) would be about 12
    const st = (await getJson({ ...admin, path: "/api/status" })).body;
    expect(st.workers).toBe(2);
    // The one worker process runs the data-plane entry with the serving Node flags.
    const kids = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1].split(" ")[1] === String(s.proc.pid);
      } catch {
        return false;
      }
    });
    expect(kids).toHaveLength(1);
    const argv = readFileSync(`/proc/${kids[0]}/cmdline`, "utf8").split("\0");
    for (const f of SERVE_FLAGS) expect(argv).toContain(f);
    expect(argv.some((a) => a.endsWith("worker.js"))).toBe(true);
  });

  test("every serving process relays a half-close: the client's FIN reaches the server, the answer still comes back", async () => {
    const answers: string[] = [];
    for (let n = 1; n <= 30; n++) {
      const c = net.connect({ host: b.vip, port: HALF.port, localAddress: b.client(400 + n), allowHalfOpen: true });
      const chunks: Buffer[] = [];
      const done = new Promise<void>((resolve, reject) => {
        c.on("data", (d: Buffer) => chunks.push(d));
        c.once("end", () => (c.end(), resolve()));
        c.once("error", reject);
      });
      c.end("hello");
      await done;
      answers.push(Buffer.concat(chunks).toString());
    }
    expect(new Set(answers)).toEqual(new Set(["got 5 bytes after your FIN"]));
    // The connections were spread over both processes (each logs its own connection lines).
    await waitFor(() => lines(s).filter((l) => l.vip === "HalfClose" && l.event === "connection").length >= 30, 3000);
    const pids = new Set(lines(s).filter((l) => l.vip === "HalfClose" && l.event === "connection").map((l) => l.pid));
    expect(pids.size).toBe(2);
  });

  afterEach(() => { if (process.env.DEBUG_SERVE) console.log(s.out().slice(-3000)); });
  test("keeps 15 clients on one server across the three ports whichever worker takes each connection", async () => {
    for (let n = 1; n <= 15; n++) {
      const ip = b.client(n);
      const got = new Set<string>();
      for (let k = 0; k < 2; k++) {
        got.add(await whoAnswers(b.vip, b.ports.https, ip, "https"));
        got.add(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp"));
        got.add(await whoAnswers(b.vip, b.ports.https2, ip, "https"));
      }
      expect([...got]).toHaveLength(1);
    }
  });

  test("accept balancing: a burst the primary alone accepts ends split over both processes, every session working", async () => {
    type Proc = { pid: number; role: string; openConnections: number; passedOn: number; takenOver: number };
    const procs = async () => (await getJson({ ...admin, path: "/api/status" })).body.processes as Proc[];
    await sleep(1200); // both processes have reported their loads to each other
    const worker = (await procs()).find((p) => p.role === "worker")!;
    expect(worker).toBeDefined();
    // The worker is stopped while 40 CTTP sessions arrive: the kernel can only give them to the primary, which
    // passes about half to the worker; they wait in its IPC channel until it runs again.
    process.kill(worker.pid, "SIGSTOP");
    let sessions: Awaited<ReturnType<typeof tlsFirstLine>>[] = [];
    try {
      const pending = Promise.all(Array.from({ length: 40 }, (_, i) => tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: b.client(200 + (i % 20)), close: false, timeoutMs: 8000 })));
      await sleep(700);
      process.kill(worker.pid, "SIGCONT");
      sessions = await pending;
    } finally {
      process.kill(worker.pid, "SIGCONT");
    }
    try {
      // Both sessions of a client reach the same server, whichever process ended up with each.
      for (let i = 0; i < 20; i++) expect(sessions[i + 20].line).toBe(sessions[i].line);
      const split = await waitFor(async () => {
        const p = await procs();
        return p.reduce((n, x) => n + x.openConnections, 0) >= 40 && p.every((x) => x.openConnections > 0) ? p : undefined;
      }, 4000, 200);
      expect(split).toBeDefined();
      const primary = split!.find((p) => p.role === "primary")!;
      const w = split!.find((p) => p.role === "worker")!;
      expect(primary.openConnections).toBeGreaterThanOrEqual(16);
      expect(w.openConnections).toBeGreaterThanOrEqual(16);
      expect(primary.passedOn).toBeGreaterThanOrEqual(16);
      expect(w.takenOver).toBe(primary.passedOn);
      const metrics = (await httpGet({ ...admin, path: "/metrics" })).text;
      expect(metrics).toMatch(new RegExp(`^ctera_lb_process_open_connections\\{pid="${w.pid}",role="worker"\\} \\d+$`, "m"));
      expect(metrics).toMatch(/^ctera_lb_accept_handoffs_total (\d+)$/m);
    } finally {
      for (const s of sessions) s.socket.destroy();
    }
  });

  test("a client moved by a failover stays on its new server in every worker after its old server returns", async () => {
    const ips = Array.from({ length: 30 }, (_, i) => b.client(100 + i));
    const before = new Map<string, string>();
    for (const ip of ips) before.set(ip, await whoAnswers(b.vip, b.ports.cttp, ip, "cttp"));
    const moved = ips.filter((ip) => before.get(ip) === "portal-2");
    expect(moved.length).toBeGreaterThan(0);
    const post = (a: string) => httpGet({ ...admin, path: `/api/servers/CTERA_Portal/portal-2/${a}`, method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect((await post("halt")).status).toBe(200);
    await sleep(200);
    const after = new Map<string, string>();
    for (const ip of moved) after.set(ip, await whoAnswers(b.vip, b.ports.cttp, ip, "cttp"));
    expect((await post("online")).status).toBe(200);
    await sleep(2500); // entries travel worker → primary → workers once a second
    for (const ip of moved) {
      for (let k = 0; k < 2; k++) {
        expect(await whoAnswers(b.vip, b.ports.https, ip, "https")).toBe(after.get(ip));
        expect(await whoAnswers(b.vip, b.ports.cttp, ip, "cttp")).toBe(after.get(ip));
      }
    }
    expect([...after.values()]).not.toContain("portal-2");
  });

  test("a worker that dies is forked again and serves on the same listeners (it gets them from the primary)", async () => {
    const childOf = (pid: number) =>
      readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((d) => {
        try {
          return readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1].split(" ")[1] === String(pid);
        } catch {
          return false;
        }
      });
    const [old] = childOf(s.proc.pid!);
    expect(old).toBeDefined();
    process.kill(Number(old), "SIGKILL");
    expect(await waitFor(() => lines(s).some((l) => l.event === "worker-exit" && l.signal === "SIGKILL"), 5000)).toBe(true);
    const fresh = await waitFor(() => childOf(s.proc.pid!).find((p) => p !== old), 5000, 50);
    expect(fresh).toBeDefined();
    expect(await waitFor(() => lines(s).some((l) => l.event === "worker-ready" && l.worker === Number(fresh)), 10000, 50)).toBe(true);
    // The new worker takes connections on the existing listener, next to the primary.
    const seen = new Set<unknown>();
    const before = lines(s).length;
    const until = Date.now() + 10000;
    for (let n = 1; n <= 200 && Date.now() < until && !seen.has(Number(fresh)); n++) {
      const c = net.connect({ host: b.vip, port: HALF.port, localAddress: b.client(450 + (n % 40)), allowHalfOpen: true });
      await new Promise<void>((resolve, reject) => {
        c.on("data", () => undefined);
        c.once("end", () => (c.end(), resolve()));
        c.once("error", reject);
        c.end("x");
      });
      await waitFor(() => lines(s).length > before, 1000, 20);
      for (const l of lines(s).slice(before)) if (l.vip === "HalfClose" && l.event === "connection") seen.add(l.pid);
    }
    expect(seen.has(Number(fresh))).toBe(true);
    const st = (await getJson({ ...admin, path: "/api/status" })).body;
    expect(st.workers).toBe(2);
  });

  test("SIGHUP: an invalid file is refused and the old config keeps serving; a valid one applies while an idle 995 session stays open", async () => {
    const { socket } = await tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: b.client(200), close: false });
    let closed = false;
    socket.on("error", () => undefined);
    socket.once("close", () => (closed = true));

    writeFileSync(file, JSON.stringify({ ...cfg, virtualServices: [] }));
    s.proc.kill("SIGHUP");
    expect(await waitFor(() => lines(s).some((l) => l.event === "reload" && l.ok === false), 5000)).toBe(true);
    expect(await whoAnswers(b.vip, b.ports.https, b.client(201), "https")).toMatch(/^portal-\d$/);

    const extraPort = b.ports.https + 1;
    const next = { ...cfg, virtualServices: [{ ...cfg.virtualServices[0], listeners: [...cfg.virtualServices[0].listeners, { address: b.vip, port: extraPort }] }] };
    write(next);
    s.proc.kill("SIGHUP");
    expect(await waitFor(() => lines(s).some((l) => l.event === "reload" && l.ok === true), 5000)).toBe(true);
    const c = await waitFor(async () => tcpConnect(b.vip, extraPort, b.client(202)).catch(() => undefined), 5000);
    expect(c).toBeDefined();
    c!.destroy();

    // The idle CTTP-like session was not touched by either reload and still echoes.
    expect(closed).toBe(false);
    let got = "";
    socket.on("data", (d: string) => (got += d));
    socket.write("after reload\n");
    expect(await waitFor(() => got.includes("after reload"), 3000)).toBeTruthy();
    socket.destroy();
  });

  test("SIGTERM: /healthz turns 503, new connections are refused, open ones get drainTimeoutMs, then exit 0", async () => {
    const { socket } = await tlsFirstLine({ host: b.vip, port: b.ports.cttp, localAddress: b.client(300), close: false });
    socket.on("error", () => undefined);
    const sessionClosed = new Promise<void>((r) => socket.once("close", () => r()));
    s.proc.kill("SIGTERM");
    expect(await waitFor(async () => (await httpGet({ ...admin, path: "/healthz" }).catch(() => ({ status: 0 }))).status === 503, 3000)).toBe(true);
    expect(await waitFor(async () => (await tcpConnect(b.vip, b.ports.https, b.client(301)).then((c) => (c.destroy(), false), () => true)), 3000)).toBe(true);
    // The session is still open during the drain window...
    let got = "";
    socket.on("data", (d: string) => (got += d));
    socket.write("draining\n");
    expect(await waitFor(() => got.includes("draining"), 1000)).toBeTruthy();
    // ...and closed when it ends; the process exits 0.
    await sessionClosed;
    expect(await s.exit).toBe(0);
    expect(lines(s).some((l) => l.event === "stopped" && l.code === 0)).toBe(true);
  });
});

describe("serve's worker processes", () => {
  test("get the serving Node flags (a small young generation) unless the primary set them itself", () => {
    const { SERVE_NODE_FLAGS, workerExecArgv } = require("../../src/proxy/main") as typeof import("../../src/proxy/main");
    expect(workerExecArgv([])).toEqual([...SERVE_NODE_FLAGS]);
    expect(workerExecArgv(["--inspect"])).toEqual(["--inspect", ...SERVE_NODE_FLAGS]);
    const rest = SERVE_NODE_FLAGS.filter((f) => !f.startsWith("--max-semi-space-size"));
    expect(workerExecArgv(["--max-semi-space-size=8"])).toEqual(["--max-semi-space-size=8", ...rest]);
    // --parallel-scavenge (or V8's underscore spelling) from the primary: no --no-parallel-scavenge added.
    expect(workerExecArgv(["--parallel_scavenge"])).not.toContain("--no-parallel-scavenge");
    expect(workerExecArgv(["--parallel-scavenge"])).not.toContain("--no-parallel-scavenge");
  });

  test("the serving flags are options this node accepts (a misspelt V8 flag makes node refuse to start)", () => {
    const { SERVE_NODE_FLAGS } = require("../../src/proxy/main") as typeof import("../../src/proxy/main");
    const r = spawnSync(process.execPath, [...SERVE_NODE_FLAGS, "-e", "process.stdout.write('ok')"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok");
    expect(spawnSync(process.execPath, ["--heap-growing-percnt=20", "-e", "0"]).status).not.toBe(0);
  });
});

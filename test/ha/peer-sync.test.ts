/**
 * Persistence sync between the two load balancers of an HA pair (src/proxy/peer.ts), with two proxies on
 * loopback: A on 127.0.71.10 (admin 127.0.71.1), B on 127.0.72.10 (admin 127.0.72.1), the same three sim
 * Portals on 127.0.71.11-13, clients from 127.0.171.x. Health checks every 500 ms (rise 2, fall 2), pushes
 * every 200 ms, so a state change takes about a second.
 */
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listConfigProblems, validateRuntimeConfig } from "../../src/config";
import type { RuntimeConfig, RuntimeConfigInput } from "../../src/config";
import { firstChoiceOf, startProxy, ProxyHandle } from "../../src/proxy";
import type { SimPortal } from "../../src/sim/portal";
import { block, startPortals, tcpConfig } from "../helpers/proxy";
import { sleep, waitFor, whoAnswers } from "../helpers/net";

const a = block(71);
const B_NET = "127.0.72";
const TOKEN = "peer-sync-token-0123456789";
const ADMIN_A = { address: `${a.net}.1`, port: 19071 };
const ADMIN_B = { address: `${B_NET}.1`, port: 19072 };
const VIP = "CTERA_Portal";
const hc = { type: "https-get" as const, port: a.ports.https, path: "/admin/startup", intervalMs: 500, timeoutMs: 450, rise: 2, fall: 2 };

/** The node's config: its own VIP address and admin API, the peer's admin API (or no sync). */
function nodeConfig(node: "A" | "B", peer: boolean | { port: number } = true, sync: Partial<NonNullable<RuntimeConfigInput["highAvailability"]>> = {}): RuntimeConfig {
  const base = tcpConfig(a, { healthCheck: hc }) as RuntimeConfigInput;
  const vipAddress = node === "A" ? a.vip : `${B_NET}.10`;
  const self = node === "A" ? ADMIN_A : ADMIN_B;
  const other = node === "A" ? ADMIN_B : ADMIN_A;
  const doc: RuntimeConfigInput = {
    ...base,
    virtualServices: base.virtualServices.map((vs) => ({ ...vs, listeners: vs.listeners.map((l) => ({ ...l, address: vipAddress })) })),
    admin: { ...self, token: TOKEN },
    ...(peer ? { highAvailability: { peer: { address: other.address, port: typeof peer === "object" ? peer.port : other.port }, syncIntervalMs: 200, ...sync } } : {}),
  };
  return validateRuntimeConfig(doc);
}

const vipAddr = (node: "A" | "B") => (node === "A" ? a.vip : `${B_NET}.10`);
const who = (node: "A" | "B", client: string) => whoAnswers(vipAddr(node), a.ports.cttp, client, "cttp");
const state = (p: ProxyHandle, server: string) =>
  ((p.status().virtualServices as { servers: { name: string; state: string }[] }[])[0].servers.find((s) => s.name === server) ?? { state: "?" }).state;

/** A client address whose first choice (over all servers) is `server`, not in `not`. */
function clientOn(cfg: RuntimeConfig, server: string, not: string[] = []): string {
  for (let n = 1; n < 250; n++) {
    const ip = a.client(n);
    if (!not.includes(ip) && firstChoiceOf(cfg.virtualServices[0], ip) === server) return ip;
  }
  throw new Error(`no client address with first choice ${server}`);
}

function post(admin: { address: string; port: number }, body: string | Buffer, token: string | null = TOKEN): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: admin.address,
        port: admin.port,
        method: "POST",
        path: "/api/persistence/merge",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("persistence sync between the HA peers", () => {
  let portals: SimPortal[];
  const started: ProxyHandle[] = [];
  const start = async (cfg: RuntimeConfig) => {
    const p = await startProxy(cfg, { log: () => undefined });
    started.push(p);
    return p;
  };
  const stop = async (p: ProxyHandle) => {
    started.splice(started.indexOf(p), 1);
    await p.close();
  };

  beforeAll(async () => {
    portals = await startPortals(a);
  });
  afterEach(async () => {
    for (const p of portals) p.setStartupStatus(200);
    await Promise.all(started.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await Promise.all(portals.map((p) => p.stop()));
  });

  const allUp = (...ps: ProxyHandle[]) => waitFor(() => ps.every((p) => ["portal-1", "portal-2", "portal-3"].every((s) => state(p, s) === "UP")), 5000);

  test("a client re-pinned on A after its server went DOWN reaches the re-pinned server on B, also after the first server is back UP", async () => {
    const A = await start(nodeConfig("A"));
    const B = await start(nodeConfig("B"));
    const client = clientOn(A.config, "portal-1");
    expect(await who("A", client)).toBe("portal-1");

    portals[0].setStartupStatus(503);
    expect(await waitFor(() => state(A, "portal-1") === "DOWN" && state(B, "portal-1") === "DOWN", 5000)).toBe(true);
    const moved = await who("A", client);
    expect(moved).not.toBe("portal-1");
    expect(A.pinned(VIP, client)).toBe(moved);
    // The re-pinned entry (not the client's first choice) reaches B.
    expect(await waitFor(() => B.pinned(VIP, client) === moved, 3000)).toBe(true);

    portals[0].setStartupStatus(200);
    expect(await waitFor(() => state(A, "portal-1") === "UP" && state(B, "portal-1") === "UP", 5000)).toBe(true);
    // Failover: the client now arrives at B, and keeps its server (without the sync, B would send it to portal-1).
    expect(await who("B", client)).toBe(moved);
    expect(await who("B", client)).toBe(moved);
  });

  test("entries on the client's first choice are not sent; an entry that moves back to its first choice is corrected on the peer", async () => {
    const A = await start(nodeConfig("A"));
    const B = await start(nodeConfig("B"));
    await allUp(A, B);
    const stay = clientOn(A.config, "portal-2");
    const back = clientOn(A.config, "portal-3");
    expect(await who("A", stay)).toBe("portal-2");
    // `back` detours while portal-3 is DOWN ...
    portals[2].setStartupStatus(503);
    expect(await waitFor(() => state(A, "portal-3") === "DOWN", 5000)).toBe(true);
    const detour = await who("A", back);
    expect(await waitFor(() => B.pinned(VIP, back) === detour, 3000)).toBe(true);
    // ... then its detour server goes DOWN while portal-3 is UP again: A moves it back to portal-3.
    portals[2].setStartupStatus(200);
    expect(await waitFor(() => state(A, "portal-3") === "UP", 5000)).toBe(true);
    portals[detour === "portal-1" ? 0 : 1].setStartupStatus(503);
    expect(await waitFor(() => state(A, detour) === "DOWN", 5000)).toBe(true);
    expect(await who("A", back)).toBe("portal-3");
    expect(await waitFor(() => B.pinned(VIP, back) === "portal-3", 3000)).toBe(true);

    await sleep(600); // three more pushes
    expect(B.pinned(VIP, stay)).toBeUndefined();
    expect(A.peer.stats.failures).toBe(0);
  });

  test("a peer that was away and restarted gets the re-pinned entries again (a full resync)", async () => {
    const A = await start(nodeConfig("A"));
    let B = await start(nodeConfig("B"));
    const client = clientOn(A.config, "portal-2");
    portals[1].setStartupStatus(503);
    expect(await waitFor(() => state(A, "portal-2") === "DOWN", 5000)).toBe(true);
    const moved = await who("A", client);
    expect(await waitFor(() => B.pinned(VIP, client) === moved, 3000)).toBe(true);

    await stop(B);
    B = await start(nodeConfig("B"));
    expect(B.pinned(VIP, client)).toBeUndefined();
    // The client is idle (nothing touched on A): only the resync can bring its entry to the new B.
    expect(await waitFor(() => B.pinned(VIP, client) === moved, 3000)).toBe(true);
  });

  test("the merge endpoint: 401 without or with a wrong token, 400 for a malformed body, 413 for an oversized one, 409 without highAvailability", async () => {
    const B = await start(nodeConfig("B", { port: 1 })); // its own pushes go nowhere; it only receives here
    const ok = JSON.stringify({ node: "ab12", vips: { [VIP]: [[a.client(1), "portal-2", 10]] } });
    expect((await post(ADMIN_B, ok, null)).status).toBe(401);
    expect((await post(ADMIN_B, ok, "wrong-token-0123456789")).status).toBe(401);
    expect(B.pinned(VIP, a.client(1))).toBeUndefined();
    expect((await post(ADMIN_B, "{not json")).status).toBe(400);
    expect((await post(ADMIN_B, JSON.stringify({ node: "ab12", vips: { [VIP]: [[a.client(1), "portal-2"]] } }))).status).toBe(400);
    expect((await post(ADMIN_B, JSON.stringify({ node: "ab12", vips: { [VIP]: [[a.client(1), "portal-2", -5]] } }))).status).toBe(400);
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    expect((await post(ADMIN_B, huge)).status).toBe(413);
    // The largest message a sender may make (20000 entries, longest address and name) is accepted.
    const longest = Array.from({ length: 20000 }, (_, i) => [`ffff:ffff:ffff:ffff:ffff:ffff:255.255.${i >> 8}.${i & 255}`.padEnd(45, "0"), "n".repeat(63), 604800000]);
    expect((await post(ADMIN_B, JSON.stringify({ node: "ab12", vips: { [VIP]: longest } }))).body).toMatchObject({ ok: true, merged: 0, ignored: 20000 });
    const r = await post(ADMIN_B, ok);
    expect(r).toMatchObject({ status: 200, body: { ok: true, merged: 1, ignored: 0 } });
    expect(B.pinned(VIP, a.client(1))).toBe("portal-2");
    await stop(B);

    const plain = await start(nodeConfig("B", false));
    expect((await post(ADMIN_B, ok)).status).toBe(409);
    expect(plain.pinned(VIP, a.client(1))).toBeUndefined();
  });

  test("received entries: newer wins, unknown servers and VIPs are ignored, an entry on a server that is DOWN here is kept", async () => {
    const B = await start(nodeConfig("B", { port: 1 }));
    portals[2].setStartupStatus(503);
    expect(await waitFor(() => state(B, "portal-3") === "DOWN", 5000)).toBe(true);
    const [c1, c2, c3] = [a.client(11), a.client(12), a.client(13)];
    const msg = {
      node: "cd34",
      vips: {
        [VIP]: [
          [c1, "portal-9", 10],
          [c2, "portal-3", 10],
          [c3, "portal-1", 5000],
        ],
        NO_SUCH_VIP: [[c1, "portal-1", 10]],
      },
    };
    const r = await post(ADMIN_B, JSON.stringify(msg));
    expect(r.body).toMatchObject({ merged: 2, ignored: 2 });
    expect(B.pinned(VIP, c1)).toBeUndefined();
    expect(B.pinned(VIP, c2)).toBe("portal-3"); // kept although portal-3 is DOWN here
    // An older entry does not replace a newer one.
    expect((await post(ADMIN_B, JSON.stringify({ node: "cd34", vips: { [VIP]: [[c3, "portal-2", 60000]] } }))).body.merged).toBe(1);
    expect(B.pinned(VIP, c3)).toBe("portal-1");
    expect((await post(ADMIN_B, JSON.stringify({ node: "cd34", vips: { [VIP]: [[c3, "portal-2", 0]] } }))).body.merged).toBe(1);
    expect(B.pinned(VIP, c3)).toBe("portal-2");
    // While portal-3 is DOWN the kept entry does not strand the client: it is placed on an UP server.
    expect(await who("B", c2)).not.toBe("portal-3");
  });

  test("a push carries at most maxEntriesPerMessage entries; the rest follow in the next pushes", async () => {
    const A = await start(nodeConfig("A", true, { maxEntriesPerMessage: 2, syncIntervalMs: 60000 })); // pushed by hand below
    const B = await start(nodeConfig("B", { port: 1 }));
    await allUp(A, B);
    // Five clients pinned on A away from their first choice (as after a failure), idle since.
    const clients = [1, 2, 3, 4, 5].map((n) => a.client(40 + n));
    const pool = A.core.pools.get(VIP)!;
    const away = (ip: string) => ["portal-1", "portal-2", "portal-3"].find((s) => s !== firstChoiceOf(A.config.virtualServices[0], ip))!;
    for (const ip of clients) pool.persistence.pin(ip, away(ip));
    const sizes: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 10 && seen.size < 5; i++) {
      const before = A.peer.stats.sent;
      await A.peer.push();
      sizes.push(A.peer.stats.sent - before);
      for (const ip of clients) if (B.pinned(VIP, ip) === away(ip)) seen.add(ip);
    }
    expect(seen.size).toBe(5);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);

    // A detour that ends before it was pushed reaches the peer as its end, not as the detour.
    const ip = a.client(60);
    const first = firstChoiceOf(A.config.virtualServices[0], ip)!;
    A.peer.offer(VIP, [{ ip, server: away(ip), at: Date.now() - 10 }]);
    A.peer.offer(VIP, [{ ip, server: first, at: Date.now() }]);
    await A.peer.push();
    expect(B.pinned(VIP, ip)).toBe(first);
  });
});

describe("persistence sync switched on by a reload (single-process proxy)", () => {
  test("without highAvailability nothing is batched for a peer; a reload that adds it starts the sync", async () => {
    const portals = await startPortals(a);
    const A = await startProxy(nodeConfig("A", false), { log: () => undefined });
    const B = await startProxy(nodeConfig("B", { port: 1 }), { log: () => undefined });
    try {
      const vs = A.config.virtualServices[0];
      const away = (ip: string) => ["portal-1", "portal-2", "portal-3"].find((x) => x !== firstChoiceOf(vs, ip))!;
      const [c1, c2] = [a.client(70), a.client(71)];
      A.core.pools.get(VIP)!.persistence.pin(c1, away(c1));
      expect(A.core.takePins()).toEqual({}); // no peer: touched entries are not even recorded
      await A.reload({ ...nodeConfig("A"), highAvailability: { peer: { ...ADMIN_B }, syncIntervalMs: 60000 } });
      A.core.pools.get(VIP)!.persistence.pin(c2, away(c2));
      await A.peer.push();
      expect(B.pinned(VIP, c2)).toBe(away(c2));
      expect(B.pinned(VIP, c1)).toBe(away(c1)); // the first push after start is a full resync
    } finally {
      await A.close();
      await B.close();
      await Promise.all(portals.map((p) => p.stop()));
    }
  });
});

describe("persistence sync from `ctera-lb serve` (cluster primary + 2 workers)", () => {
  const ROOT = join(__dirname, "..", "..");
  let portals: SimPortal[];
  let dir: string;
  let proc: ChildProcess | undefined;
  let B: ProxyHandle | undefined;
  beforeAll(async () => {
    if (!existsSync(join(ROOT, "dist", "src", "proxy", "main.js"))) throw new Error("build first: npx tsc (npm test does)");
    portals = await startPortals(a);
    dir = mkdtempSync(join(tmpdir(), "ctera-lb-peer-"));
  });
  afterAll(async () => {
    B && (await B.close());
    if (proc && proc.exitCode === null) {
      const gone = new Promise((r) => proc!.once("exit", r));
      proc.kill("SIGTERM");
      await gone;
    }
    await Promise.all(portals.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("an entry re-pinned in a worker of A reaches B through A's primary, and B's entries reach A's workers", async () => {
    const file = join(dir, "a.json");
    writeFileSync(file, JSON.stringify({ ...nodeConfig("A"), workers: 2, drainTimeoutMs: 500 }));
    let out = "";
    proc = spawn(process.execPath, [join(ROOT, "bin", "ctera-lb"), "serve", "--config", file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    expect(await waitFor(() => out.includes('"event":"started"'), 20000, 50)).toBe(true);
    B = await startProxy(nodeConfig("B"), { log: () => undefined });

    const cfg = B.config;
    const client = clientOn(cfg, "portal-1");
    const back = clientOn(cfg, "portal-3");
    portals[0].setStartupStatus(503);
    expect(await waitFor(() => state(B!, "portal-1") === "DOWN", 5000)).toBe(true);
    await sleep(1200); // A's checks see it too (same interval)
    const moved = await who("A", client);
    expect(moved).not.toBe("portal-1");
    expect(await waitFor(() => B!.pinned(VIP, client) === moved, 4000)).toBe(true);

    // The other way: a client B re-pinned (portal-3 DOWN, as B sees it) reaches A's workers: A sends it there
    // although A's own first choice for it is portal-3, which A sees UP.
    portals[0].setStartupStatus(200);
    const away = "portal-2";
    B.core.pools.get(VIP)!.persistence.pin(back, away);
    await sleep(1500); // B's push (200 ms), A's primary → workers
    for (let i = 0; i < 4; i++) expect(await who("A", back)).toBe(away);
  });
});

describe("highAvailability in the runtime config", () => {
  const base = (): RuntimeConfigInput => ({
    version: 1,
    virtualServices: [
      {
        name: VIP,
        mode: "tcp",
        listeners: [{ address: "10.0.0.10", port: 443 }],
        realServers: [{ name: "portal-1", address: "10.0.1.11" }],
        healthCheck: { type: "connect" },
      },
    ],
    admin: { address: "10.0.0.5", port: 9090, token: TOKEN },
    highAvailability: { peer: { address: "10.0.0.6" } },
  });

  test("defaults: the peer's port 9090, a push every second, at most 5000 entries per push", () => {
    expect(validateRuntimeConfig(base()).highAvailability).toEqual({ peer: { address: "10.0.0.6", port: 9090 }, syncIntervalMs: 1000, maxEntriesPerMessage: 5000 });
    const { highAvailability: _, ...without } = base();
    expect(validateRuntimeConfig(without).highAvailability).toBeUndefined();
  });

  test.each<[string, (d: RuntimeConfigInput) => void, string, RegExp]>([
    ["no admin token", (d) => (d.admin!.token = null), "admin.token", /set admin\.token/],
    ["admin API on loopback", (d) => (d.admin!.address = "127.0.0.1"), "admin.address", /cannot push.*bind admin\.address/],
    ["the peer is this node", (d) => (d.highAvailability!.peer.address = "10.0.0.5"), "highAvailability.peer.address", /this node's own admin API/],
    ["the peer is not an address", (d) => (d.highAvailability!.peer.address = "peer.example"), "highAvailability.peer.address", /not an IP address/],
    ["the peer's port", (d) => (d.highAvailability!.peer.port = 70000), "highAvailability.peer.port", /between 1 and 65535/],
    ["the sync interval", (d) => (d.highAvailability!.syncIntervalMs = 10), "highAvailability.syncIntervalMs", /between 100 ms and 60000 ms/],
    ["the message size", (d) => (d.highAvailability!.maxEntriesPerMessage = 100000), "highAvailability.maxEntriesPerMessage", /between 1 and 20000/],
    ["an unknown key", (d) => ((d.highAvailability as Record<string, unknown>).token = "x"), "highAvailability.token", /unknown key/],
  ])("refuses %s, naming the field and the fix", (_what, change, path, message) => {
    const d = base();
    change(d);
    const problems = listConfigProblems(d, { checkFiles: false });
    expect(problems).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(message) })]));
  });
});

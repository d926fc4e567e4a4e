/**
 * The HA pair end to end, in network namespaces: two load balancer nodes (proxy + keepalived with the
 * rendered config, VRRP every second between 198.51.100.5 and .6, the notify script moving 192.0.2.10 with
 * ip addr + gratuitous ARP), three Portal servers, and a client sending ~100 requests/s from 16 addresses.
 *
 * The tests run in order on one topology (each leaves the pair as the next one expects):
 *   1. lb-a becomes MASTER with the VIP, lb-b BACKUP without it.
 *   2. losing the BACKUP changes nothing for clients; it comes back as BACKUP.
 *   3. losing the MASTER (links down, every process killed) moves the VIP to lb-b; the failover time and the
 *      failed requests are printed; every client keeps its Portal server.
 *   4. the old MASTER comes back and stays BACKUP (nopreempt).
 *   5. the MASTER's proxy alone dies: the track script (/healthz) hands the VIP back to lb-a.
 * Needs root; fails (never skips) without it.
 */
import { CLIENT_SOURCES, HaLab, LoadResult, Node, outage, sleep } from "./lab";
import { assertCanRun } from "./lab";

// Generous: on a machine busy with other tests, starting node processes alone can take seconds.
jest.setTimeout(90_000);

const lab = new HaLab();
// A request without an answer within 5 s counts as failed: the machine is shared with other tests and
// answers can be slow; a lost SYN is retried by TCP after 1 s and 3 s, so a request caught by the move
// may still succeed late. The failover time does not depend on this (see outage() in lab.ts).
const LOAD = { rate: 100, timeoutMs: 5000 };

beforeAll(async () => {
  assertCanRun();
  await lab.start();
  await lab.startPair(); // lb-a MASTER, lb-b BACKUP
}, 90_000);

afterAll(async () => {
  await lab.stop();
});

function report(title: string, results: LoadResult[], at: number, newMaster?: Node): ReturnType<typeof outage> {
  const o = outage(results, at);
  const moved = newMaster ? `; the notify script put the VIP on ${newMaster} ${lab.becameMaster(newMaster) - at} ms after the event` : "";
  const servers = [...o.serversBySource.entries()].map(([src, s]) => `${src.split(".")[3]}→${[...s].join("+")}`).join(" ");
  // The figures the issue asks for: printed, not asserted (no test asserts a time).
  console.log(
    `${title}: ${results.length} requests, ${o.ok} ok, ${o.failed} failed; ` +
      `${o.slow} answered after more than 1 s; ` +
      `longest silence ${o.gapMs} ms (last success ${o.lastOkBefore - at} ms, first success after ${o.firstOkAfter - at} ms, relative to the event)${moved}\n` +
      `clients → servers: ${servers}`,
  );
  return o;
}

/** Every client address reached exactly one server, and the clients spread over more than one. */
function expectStickyAndSpread(o: ReturnType<typeof outage>): void {
  expect([...o.serversBySource.keys()].sort()).toEqual([...CLIENT_SOURCES].sort());
  const multi = [...o.serversBySource.entries()].filter(([, s]) => s.size !== 1).map(([src, s]) => `${src}: ${[...s].join(", ")}`);
  expect(multi).toEqual([]);
  expect(new Set([...o.serversBySource.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
}

/** The nodes that hold the VIP on a live link (a node lost with its links down keeps a dead copy). */
function owners(): Node[] {
  return (["lba", "lbb"] as const).filter((n) => lab.linkUp(n) && lab.hasVip(n));
}

test("the first node becomes MASTER and holds the VIP; the second stays BACKUP without it", () => {
  expect([lab.state("lba"), lab.state("lbb")]).toEqual(["MASTER", "BACKUP"]);
  expect(owners()).toEqual(["lba"]);
});

test("losing the BACKUP changes nothing for clients", async () => {
  let at = 0;
  const transitionsBefore = lab.transitions("lba").length;
  try {
    const results = await lab.load({ ...LOAD, seconds: 4 }, async () => {
      await sleep(2000);
      lab.killNode("lbb");
      at = Date.now();
    });
    const o = report("backup lost", results, at);
    // The MASTER noticed nothing: no transition, the VIP where it was, every client on its server, and no
    // connection refused or reset. (Requests that only timed out are printed above, not asserted: on a
    // machine shared with other tests an answer can take seconds for reasons that are not the pair's.)
    expect(lab.transitions("lba").slice(transitionsBefore)).toEqual([]);
    expect(owners()).toEqual(["lba"]);
    expectStickyAndSpread(o);
    expect(results.filter((r) => !r.ok && r.error !== "timeout")).toEqual([]);
  } finally {
    await lab.restartNode("lbb");
    await lab.waitFor(() => lab.state("lbb") === "BACKUP", 20_000, "lb-b BACKUP again");
  }
});

let before: Map<string, string> | undefined;

test("losing the MASTER moves the VIP to the BACKUP and every client keeps its Portal server", async () => {
  let at = 0;
  const results = await lab.load({ ...LOAD, seconds: 10 }, async () => {
    await sleep(3000);
    lab.killNode("lba");
    at = Date.now();
  });
  const o = report("MASTER lost (links down + SIGKILL, 1 s adverts)", results, at, "lbb");
  expect(owners()).toEqual(["lbb"]);
  expect(lab.state("lbb")).toBe("MASTER");
  // The same server before and after the move, for every client address (rendezvous choice on both nodes):
  // during the load, and in one request per client address after it.
  expectStickyAndSpread(o);
  before = new Map([...o.serversBySource].map(([src, s]) => [src, [...s][0]]));
  expect(await lab.probe()).toEqual(before);
});

test("the old MASTER comes back as BACKUP and does not take the VIP back (nopreempt)", async () => {
  await lab.restartNode("lba");
  await lab.waitFor(() => lab.state("lba") === "BACKUP", 20_000, "lb-a BACKUP");
  await sleep(3500); // longer than the master-down interval: a preempting node would have taken over by now
  expect([lab.state("lba"), lab.state("lbb")]).toEqual(["BACKUP", "MASTER"]);
  expect(owners()).toEqual(["lbb"]);
});

test("when only the MASTER's proxy dies, the track script hands the VIP to the peer", async () => {
  let at = 0;
  const results = await lab.load({ ...LOAD, seconds: 7 }, async () => {
    await sleep(2500);
    lab.killProxy("lbb");
    at = Date.now();
  });
  const o = report("MASTER's proxy killed (track script: interval 1 s, fall 2)", results, at, "lba");
  expect(lab.state("lbb")).toBe("FAULT");
  expect(lab.state("lba")).toBe("MASTER");
  expect(owners()).toEqual(["lba"]);
  expectStickyAndSpread(o);
  // Still the servers the clients had before the first failover (when that test ran).
  const now = await lab.probe();
  expect(new Map([...o.serversBySource].map(([src, s]) => [src, [...s][0]]))).toEqual(now);
  if (before) expect(now).toEqual(before);
});

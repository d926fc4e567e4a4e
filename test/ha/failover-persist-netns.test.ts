/**
 * Persistence across a failover AFTER a Portal server failure, end to end in network namespaces (prefix
 * clbha2-<pid>-; the topology of test/ha/ha-netns): the two nodes run `ctera-lb serve` with the persistence
 * sync on (admin API on each node's internal address, token, highAvailability.peer = the other node) and
 * keepalived. Portal checks every 500 ms (fall 2, rise 2), pushes every second.
 *
 *   1. lb-a MASTER, lb-b BACKUP; every client address reaches a server (its rendezvous first choice).
 *   2. The Portal server with the most clients dies: its clients are re-pinned (on lb-a), the others stay.
 *   3. It comes back UP on both nodes; the re-pinned clients stay where they are (persistence).
 *   4. lb-a is lost (links down + SIGKILL) under a bounded load: lb-b takes the VIP, and every client keeps the
 *      server it had on lb-a — the re-pinned ones too (without the sync, lb-b would send them back to their
 *      first choice).
 *   5. lb-a boots again while lb-b is MASTER, the way the image boots a pair node: it never holds the VIP.
 * Needs root; fails (never skips) without it.
 */
import { CLIENT_SOURCES, HaLab, outage, sleep } from "./lab";
import { assertCanRun } from "./lab";

jest.setTimeout(120_000);

const lab = new HaLab({ prefix: "clbha2", peerSync: true, portalCheck: { intervalMs: 500, timeoutMs: 400, fall: 2, rise: 2 } });

beforeAll(async () => {
  assertCanRun();
  await lab.start();
  await lab.startPair(); // lb-a MASTER, lb-b BACKUP
}, 120_000);

afterAll(async () => {
  await lab.stop();
});

const failed = (m: Map<string, string>) => [...m].filter(([, s]) => s.startsWith("failed"));

test("clients re-pinned after a Portal server failure keep their server when the load balancer fails over", async () => {
  const first = await lab.probe();
  expect(failed(first)).toEqual([]);
  // The server with the most clients fails.
  const counts = new Map<string, number>();
  for (const s of first.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
  const victim = [...counts].sort((x, y) => y[1] - x[1])[0][0];
  const victimNo = Number(victim.split("-")[1]);
  lab.killPortal(victimNo);
  await lab.waitFor(() => lab.serverState("lba", victim) === "DOWN" && lab.serverState("lbb", victim) === "DOWN", 20_000, `${victim} DOWN on both`);
  const moved = await lab.probe();
  expect(failed(moved)).toEqual([]);
  const displaced = [...first].filter(([, s]) => s === victim).map(([src]) => src);
  expect(displaced.length).toBeGreaterThan(0);
  for (const src of CLIENT_SOURCES) {
    if (displaced.includes(src)) expect(moved.get(src)).not.toBe(victim);
    else expect(moved.get(src)).toBe(first.get(src)); // only the dead server's clients moved
  }

  lab.startPortal(victimNo);
  await lab.waitFor(() => lab.serverState("lba", victim) === "UP" && lab.serverState("lbb", victim) === "UP", 20_000, `${victim} UP on both`);
  expect(await lab.probe()).toEqual(moved); // persistence on lb-a: nobody went back
  // lb-b has received the re-pinned entries (its admin API counts what it merged).
  await lab.waitFor(() => (lab.status("lbb").peerSync?.received ?? 0) >= displaced.length, 10_000, "lb-b received the re-pinned entries");

  let at = 0;
  const results = await lab.load({ rate: 100, seconds: 10, timeoutMs: 5000 }, async () => {
    await sleep(3000);
    lab.killNode("lba");
    at = Date.now();
  });
  const o = outage(results, at);
  console.log(
    `MASTER lost after a Portal failure: ${results.length} requests, ${o.ok} ok, ${o.failed} failed; longest silence ${o.gapMs} ms; ` +
      `${displaced.length} re-pinned clients: ${displaced.map((s) => `${s.split(".")[3]}→${moved.get(s)}`).join(" ")}`,
  );
  await lab.waitFor(() => lab.state("lbb") === "MASTER", 20_000, "lb-b MASTER");
  // Every client reached one server during the load (the one it had), and still does after it.
  const multi = [...o.serversBySource].filter(([, s]) => s.size !== 1).map(([src, s]) => `${src}: ${[...s].join(", ")}`);
  expect(multi).toEqual([]);
  expect(await lab.probe()).toEqual(moved);
});

test("a node that boots while its peer is MASTER never holds the VIP (the boot leaves the address to keepalived)", async () => {
  const samples: boolean[] = [];
  await lab.bootNode("lba", (has) => samples.push(has));
  expect(samples.length).toBeGreaterThan(10);
  expect(samples.filter(Boolean)).toEqual([]);
  expect(lab.state("lba")).toBe("BACKUP");
  expect(lab.hasVip("lbb")).toBe(true);
  // And it serves as the standby with its entries: lb-b pushed the re-pinned clients to it (full resync).
  await lab.waitFor(() => (lab.status("lba").peerSync?.received ?? 0) > 0, 10_000, "lb-a received lb-b's entries");
});

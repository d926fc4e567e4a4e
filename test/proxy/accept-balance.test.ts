/**
 * The accept-balancing rule (balance.ts) on its own: when a process passes a new connection on, to whom, and
 * how its estimate of the siblings' loads moves. The processes and their IPC are in core-serve.test.ts.
 */
import { AcceptBalance, acceptBalanceOn, balanceSlack } from "../../src/proxy/balance";

function setup(sendable = () => true) {
  const passed: { peer: string; key: string; handle: unknown }[] = [];
  const b = new AcceptBalance<string>((peer, key, handle) => {
    if (!sendable()) return false;
    passed.push({ peer, key, handle });
    return true;
  });
  return { b, passed };
}

describe("accept balancing", () => {
  test("keeps every connection while no sibling has reported (a single process, or before the first report)", () => {
    const { b, passed } = setup();
    for (let mine = 0; mine < 100; mine++) expect(b.offer("k", {}, mine)).toBe(false);
    expect(passed).toHaveLength(0);
  });

  test("keeps a connection within the slack of the least-loaded sibling, passes it beyond", () => {
    const { b, passed } = setup();
    b.report("w1", 10);
    const slack = balanceSlack(12);
    expect(slack).toBe(2);
    expect(b.offer("k", "h1", 10 + slack)).toBe(false);
    expect(b.offer("k", "h2", 10 + slack + 1)).toBe(true);
    expect(passed).toEqual([{ peer: "w1", key: "k", handle: "h2" }]);
    expect(b.passedOn).toBe(1);
  });

  test("a burst from an idle start ends split within the slack: each hand-off counts on the sibling's side", () => {
    const { b } = setup();
    b.report("w1", 0);
    let mine = 0;
    for (let i = 0; i < 50; i++) if (!b.offer("k", {}, mine)) mine++;
    expect(b.passedOn).toBe(50 - mine);
    expect(Math.abs(mine - (50 - mine))).toBeLessThanOrEqual(balanceSlack(mine) + 1);
  });

  test("passes to the least-loaded of several siblings; a fresh report replaces the estimate", () => {
    const { b, passed } = setup();
    b.report("w1", 30);
    b.report("w2", 5);
    expect(b.offer("k", {}, 40)).toBe(true);
    expect(passed[0].peer).toBe("w2");
    b.report("w2", 35);
    expect(b.offer("k", {}, 40)).toBe(true);
    expect(passed[1].peer).toBe("w1");
    b.remove("w1");
    b.remove("w2");
    expect(b.offer("k", {}, 40)).toBe(false);
  });

  test("the slack grows with the load (1/16 of this process's connections), so large pools rarely pay for a hand-off", () => {
    expect(balanceSlack(0)).toBe(2);
    expect(balanceSlack(160)).toBe(12);
    const { b } = setup();
    b.report("w1", 1000);
    expect(b.offer("k", {}, 1068)).toBe(false); // 1068 - 1000 <= slack(1068) = 68
    expect(b.offer("k", {}, 1080)).toBe(true); // 80 > slack(1080) = 69
  });

  test("a sibling whose channel is gone is forgotten and the connection stays here", () => {
    let up = false;
    const { b, passed } = setup(() => up);
    b.report("w1", 0);
    expect(b.offer("k", {}, 20)).toBe(false);
    expect(passed).toHaveLength(0);
    up = true;
    expect(b.offer("k", {}, 20)).toBe(false); // forgotten until its next report
    b.report("w1", 0);
    expect(b.offer("k", {}, 20)).toBe(true);
    expect(b.passedOn).toBe(1);
  });

  test("CTERA_LB_ACCEPT_BALANCE=off turns it off; anything else leaves it on", () => {
    expect(acceptBalanceOn({})).toBe(true);
    expect(acceptBalanceOn({ CTERA_LB_ACCEPT_BALANCE: "off" })).toBe(false);
    expect(acceptBalanceOn({ CTERA_LB_ACCEPT_BALANCE: "on" })).toBe(true);
  });
});

/**
 * Selection, persistence table and health state machine as plain modules (no sockets).
 */
import { firstChoice, leastConnections, preferenceOrder, roundRobin } from "../../src/proxy/selection";
import { PersistenceTable } from "../../src/proxy/persistence";
import { HealthState } from "../../src/proxy/health";

const servers = [
  { name: "portal-1", weight: 100 },
  { name: "portal-2", weight: 100 },
  { name: "portal-3", weight: 100 },
];
const ips = Array.from({ length: 3000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
const all = () => true;

describe("weighted rendezvous selection", () => {
  test("gives every key the same order every time (no state)", () => {
    for (const ip of ips.slice(0, 50)) expect(preferenceOrder(ip, servers).map((s) => s.name)).toEqual(preferenceOrder(ip, [...servers].reverse()).map((s) => s.name));
  });

  test("shares keys in proportion to weight (200:100:100 → about 50/25/25%, within 4 points)", () => {
    const w = [{ name: "portal-1", weight: 200 }, servers[1], servers[2]];
    const n: Record<string, number> = {};
    for (const ip of ips) n[firstChoice(ip, w, all)!.name] = (n[firstChoice(ip, w, all)!.name] ?? 0) + 1;
    expect(Math.abs(n["portal-1"] / ips.length - 0.5)).toBeLessThan(0.04);
    expect(Math.abs(n["portal-2"] / ips.length - 0.25)).toBeLessThan(0.04);
  });

  test("removing a server moves only the keys whose first choice it was", () => {
    const before = new Map(ips.map((ip) => [ip, firstChoice(ip, servers, all)!.name]));
    const after = new Map(ips.map((ip) => [ip, firstChoice(ip, servers, (s) => s.name !== "portal-2")!.name]));
    for (const ip of ips) if (before.get(ip) !== "portal-2") expect(after.get(ip)).toBe(before.get(ip));
  });

  test("weight 0 takes no new keys", () => {
    const w = [{ name: "portal-1", weight: 0 }, servers[1], servers[2]];
    expect(ips.some((ip) => firstChoice(ip, w, all)!.name === "portal-1")).toBe(false);
  });

  test("leastconn picks the lowest connections per weight; roundrobin follows the weights", () => {
    const lc = [{ name: "a", weight: 100, connections: 5 }, { name: "b", weight: 200, connections: 6 }, { name: "c", weight: 100, connections: 4 }];
    expect(leastConnections("k", lc, all)!.name).toBe("b"); // 7/200 < 5/100 < 6/100
    const st = new Map<string, number>();
    const picks = Array.from({ length: 8 }, () => roundRobin(st, [{ name: "a", weight: 3 }, { name: "b", weight: 1 }], all)!.name);
    expect(picks.filter((p) => p === "a")).toHaveLength(6);
  });
});

describe("persistence table", () => {
  test("forgets an entry after the idle timeout and keeps one that is used", () => {
    const t = new PersistenceTable(1000);
    t.pin("a", "portal-1", 0);
    t.pin("b", "portal-2", 0);
    expect(t.lookup("a", 900)).toBe("portal-1"); // refreshes a
    expect(t.lookup("b", 1500)).toBeUndefined();
    expect(t.lookup("a", 1800)).toBe("portal-1");
    t.close();
  });

  test("merges another worker's entries, newer wins, and reports what it touched", () => {
    const t = new PersistenceTable(60000, true);
    const now = Date.now();
    t.pin("a", "portal-1", now - 10);
    expect(t.drainTouched()).toEqual([{ ip: "a", server: "portal-1", at: now - 10 }]);
    t.merge([{ ip: "a", server: "portal-3", at: now }, { ip: "b", server: "portal-2", at: now }]);
    expect(t.peek("a")).toBe("portal-3");
    expect(t.peek("b")).toBe("portal-2");
    t.merge([{ ip: "a", server: "portal-1", at: now - 5 }]);
    expect(t.peek("a")).toBe("portal-3");
    t.close();
  });
});

describe("health state machine", () => {
  const r = (ok: boolean, detail = ok ? "HTTP 200" : "HTTP 503") => ({ ok, detail, latencyMs: 1, at: "" });
  test("goes DOWN after fall consecutive failures and UP after rise consecutive passes; a pass resets the count", () => {
    const h = new HealthState(2, 3);
    expect(h.observe(r(false))).toBeUndefined();
    expect(h.observe(r(false))).toBeUndefined();
    expect(h.observe(r(true))).toBeUndefined(); // reset
    h.observe(r(false));
    h.observe(r(false));
    expect(h.observe(r(false))).toEqual({ from: "UP", to: "DOWN", reason: "HTTP 503 x3" });
    expect(h.observe(r(true))).toBeUndefined();
    expect(h.observe(r(true))).toEqual({ from: "DOWN", to: "UP", reason: "HTTP 200 x2" });
  });
});

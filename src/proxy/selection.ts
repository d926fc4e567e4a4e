/**
 * Selection: for a key (the client IP), the servers in order of preference. Weighted rendezvous hashing
 * (highest random weight): every server gets a score from hash(key, server name) scaled by its weight, and
 * the order is by score. The same key gives the same order in every worker process and on the peer load
 * balancer, with no shared state; removing a server only moves the keys whose first choice it was, and
 * adding one only takes (a weight-proportional share of) keys from the others.
 *
 * This module knows nothing about health, persistence or sockets: the caller walks the order and skips
 * the servers that cannot take the client (Pingora's `select(key) → iterator` shape).
 */

export interface Candidate {
  readonly name: string;
  readonly weight: number;
}

/** 32-bit FNV-1a of a string, continued from `h` (so key and name hash without building a new string). */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A final avalanche (murmur3 fmix32) so similar keys (127.0.1.1, 127.0.1.2) spread evenly. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weighted rendezvous score of one server for one key: -weight / ln(u), u uniform in (0,1). Larger wins. */
export function rendezvousScore(key: string, name: string, weight: number): number {
  if (weight <= 0) return -Infinity;
  const h = fmix32(fnv1a(name, fnv1a("\u0000", fnv1a(key))));
  const u = (h + 0.5) / 4294967296; // (0,1), never 0 or 1
  return -weight / Math.log(u);
}

/** All candidates, best first, for this key (weight-0 servers last, in name order). */
export function preferenceOrder<T extends Candidate>(key: string, candidates: readonly T[]): T[] {
  const scored = candidates.map((c) => ({ c, s: rendezvousScore(key, c.name, c.weight) }));
  scored.sort((a, b) => b.s - a.s || (a.c.name < b.c.name ? -1 : 1));
  return scored.map((x) => x.c);
}

/** The best candidate that `usable` accepts, without sorting the whole list. */
export function firstChoice<T extends Candidate>(key: string, candidates: readonly T[], usable: (c: T) => boolean): T | undefined {
  let best: T | undefined;
  let bestScore = -Infinity;
  for (const c of candidates) {
    if (!usable(c) || c.weight <= 0) continue;
    const s = rendezvousScore(key, c.name, c.weight);
    if (best === undefined || s > bestScore || (s === bestScore && c.name < best.name)) {
      best = c;
      bestScore = s;
    }
  }
  return best;
}

/** Weight-aware least connections: the lowest (connections + 1) / weight; ties go to the key's rendezvous order. */
export function leastConnections<T extends Candidate & { readonly connections: number }>(
  key: string,
  candidates: readonly T[],
  usable: (c: T) => boolean,
): T | undefined {
  let best: T | undefined;
  let bestLoad = Infinity;
  let bestScore = -Infinity;
  for (const c of candidates) {
    if (!usable(c) || c.weight <= 0) continue;
    const load = (c.connections + 1) / c.weight;
    if (load < bestLoad) {
      best = c;
      bestLoad = load;
      bestScore = rendezvousScore(key, c.name, c.weight);
    } else if (load === bestLoad) {
      const s = rendezvousScore(key, c.name, c.weight);
      if (s > bestScore) {
        best = c;
        bestScore = s;
      }
    }
  }
  return best;
}

/** Smooth weighted round robin (nginx's): each pick adds every weight to its current value, picks the largest
 * and subtracts the total from it. State lives in the caller's map (by name) so it survives reloads. */
export function roundRobin<T extends Candidate>(state: Map<string, number>, candidates: readonly T[], usable: (c: T) => boolean): T | undefined {
  let best: T | undefined;
  let bestCur = -Infinity;
  let total = 0;
  for (const c of candidates) {
    if (!usable(c) || c.weight <= 0) continue;
    const cur = (state.get(c.name) ?? 0) + c.weight;
    state.set(c.name, cur);
    total += c.weight;
    if (cur > bestCur) {
      best = c;
      bestCur = cur;
    }
  }
  if (best) state.set(best.name, bestCur - total);
  return best;
}

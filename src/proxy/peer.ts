/**
 * Persistence sync between the two load balancers of an HA pair (runtime config `highAvailability`).
 *
 * Why: both nodes place a NEW client on the same server without talking (the deterministic rendezvous first
 * choice), so after a failover most clients land where they were. What that cannot cover is a client that
 * was re-pinned: its first choice went DOWN, the active node moved it to another server, and the first
 * choice came back UP. The peer would send that client back to its first choice on a failover (a second move,
 * a new Portal session). So each node pushes exactly those entries — the ones that differ from the
 * health-independent first choice — to the other node's admin API, and merges what it receives.
 *
 * What is sent: entries touched since the last push (the data plane already batches them once a second for
 * its workers) whose server is not the client's first choice over all configured servers; plus, once, an
 * entry that moved BACK to its first choice after it had been announced (so the peer forgets the detour).
 * Entries go with their age (ms since last use), not a timestamp: the nodes' clocks need not agree.
 * After the peer restarted (its node id changed) or after a failed push, everything that differs from the
 * first choice is queued again (a full resync), at most `maxEntriesPerMessage` per push; while the peer does
 * not answer, pushes back off (up to 5 s) and nothing queues up.
 *
 * What is received (POST /api/persistence/merge): newer wins, as between workers. An entry naming a server
 * that is DOWN here is kept as the peer chose it: the health views of the two nodes are not in lockstep (a
 * check can fail on one node and not the other for a moment), and a kept entry costs nothing while its server
 * is DOWN — the pool walks past a pin whose server cannot take clients and re-places the client — but keeps
 * the client's server once it is UP again. Entries for an unknown VIP or server (a config that differs
 * between the nodes) are dropped and counted.
 *
 * Out of the data path: the push runs in the control plane on a timer, one request at a time; the data
 * plane's only cost is the touched-entry batch it makes anyway in a multi-worker proxy.
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { HighAvailabilityConfig, RuntimeConfig, VirtualService } from "../config";
import type { PinRecord } from "./persistence";
import { firstChoice } from "./selection";

/** The merge request's body: per VIP, [client address, server name, age in ms]. */
export interface PeerMessage {
  node: string;
  vips: Record<string, [string, string, number][]>;
}

export interface PeerMergeResult {
  node: string;
  merged: number;
  ignored: number;
}

export interface PeerSyncHooks {
  config(): RuntimeConfig;
  /** Every live entry of a VIP (for a full resync). */
  snapshot(vip: string): PinRecord[];
  /** Apply entries received from the peer (times already in this node's clock). */
  merge(vip: string, records: PinRecord[]): void;
  log(record: Record<string, unknown>): void;
  /** Called before each push: a single-process proxy hands over its touched entries here (offer). */
  collect?(): void;
}

/** Largest merge body accepted: 20000 entries (the most a message may carry) of the longest client address
 * (45 characters) and server name (63) take about 2.5 MB; 5000 IPv4 entries (the default) about 175 KB. */
export const PEER_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Queued entries beyond this are dropped and a full resync is scheduled instead. */
const OUTBOX_LIMIT = 200_000;

/** The client's first choice over every configured server, whatever their health: what the peer would pick. */
export function firstChoiceOf(vs: VirtualService, ip: string): string | undefined {
  return firstChoice(ip, vs.realServers, () => true)?.name;
}

export class PeerSync {
  /** This process's id: the peer notices a restart (a new id) and resends everything. */
  readonly node = randomBytes(8).toString("hex");
  private readonly outbox = new Map<string, Map<string, PinRecord>>();
  private outboxSize = 0;
  /** Clients announced with a non-first-choice server, per VIP → when the entry expires (ms). */
  private readonly announced = new Map<string, Map<string, number>>();
  private peerNode: string | undefined;
  private needFull = true;
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private lastPrune = Date.now();
  private failing = false;
  private consecutiveFailures = 0;
  private retryAt = 0;
  /** For status and tests. */
  readonly stats = { sent: 0, received: 0, pushes: 0, failures: 0, ignored: 0 };

  constructor(private readonly hooks: PeerSyncHooks) {
    this.apply();
  }

  /** (Re)reads `highAvailability` from the config: starts, re-times or stops the push timer. */
  apply(): void {
    const ha = this.hooks.config().highAvailability;
    if (!ha) {
      this.stop();
      return;
    }
    if (this.timer && this.intervalMs === ha.syncIntervalMs) return;
    this.stop();
    this.intervalMs = ha.syncIntervalMs;
    this.timer = setInterval(() => void this.push(), ha.syncIntervalMs);
    this.timer.unref();
  }

  get enabled(): boolean {
    return !!this.hooks.config().highAvailability;
  }

  /** Entries touched by the data plane since the last batch (every record, filtered here). */
  offer(vip: string, records: readonly PinRecord[]): void {
    if (!this.enabled || records.length === 0) return;
    const vs = this.hooks.config().virtualServices.find((v) => v.name === vip);
    if (!vs || vs.persistence.type !== "source-ip") return;
    const seen = this.announced.get(vip);
    const queued = this.outbox.get(vip);
    for (const r of records) {
      const differs = firstChoiceOf(vs, r.ip) !== r.server;
      // Back on its first choice: worth a message only if the peer heard (or is about to hear) of a detour.
      if (!differs && !seen?.has(r.ip) && !queued?.has(r.ip)) continue;
      this.enqueue(vip, r);
    }
  }

  private enqueue(vip: string, r: PinRecord): void {
    let q = this.outbox.get(vip);
    if (!q) this.outbox.set(vip, (q = new Map()));
    if (!q.has(r.ip)) {
      if (this.outboxSize >= OUTBOX_LIMIT) {
        this.needFull = true; // resend from the table later instead of growing without bound
        return;
      }
      this.outboxSize++;
    }
    q.set(r.ip, r);
  }

  /** Queue every entry that differs from its first choice, and every announced detour that has ended (the
   * peer restarted, or pushes failed). */
  private queueFull(): void {
    for (const vs of this.hooks.config().virtualServices) {
      if (vs.persistence.type !== "source-ip") continue;
      const seen = this.announced.get(vs.name);
      for (const r of this.hooks.snapshot(vs.name)) if (firstChoiceOf(vs, r.ip) !== r.server || seen?.has(r.ip)) this.enqueue(vs.name, r);
    }
  }

  /** Takes up to `max` queued entries as a message; the rest stay queued. */
  private takeMessage(max: number): { msg: PeerMessage; count: number; taken: [string, PinRecord][] } {
    const now = Date.now();
    const msg: PeerMessage = { node: this.node, vips: {} };
    const taken: [string, PinRecord][] = [];
    for (const [vip, q] of this.outbox) {
      if (taken.length >= max) break;
      const list = (msg.vips[vip] = [] as [string, string, number][]);
      for (const [ip, r] of q) {
        if (taken.length >= max) break;
        q.delete(ip);
        this.outboxSize--;
        list.push([ip, r.server, Math.max(0, now - r.at)]);
        taken.push([vip, r]);
      }
      if (q.size === 0) this.outbox.delete(vip);
    }
    return { msg, count: taken.length, taken };
  }

  /** One push to the peer (the timer calls it; tests may too). Resolves when the request is done. */
  async push(): Promise<void> {
    const cfg = this.hooks.config();
    const ha = cfg.highAvailability;
    if (!ha || this.inFlight || Date.now() < this.retryAt) return;
    this.inFlight = true;
    try {
      this.hooks.collect?.();
      this.prune();
      if (this.needFull) {
        this.needFull = false;
        this.queueFull();
      }
      const { msg, count, taken } = this.takeMessage(ha.maxEntriesPerMessage);
      let res: PeerMergeResult;
      try {
        res = await postMerge(ha, cfg.admin.token ?? "", msg);
      } catch (e) {
        this.stats.failures++;
        // Whatever the peer missed is resent from the table once it answers again (so the queue is dropped,
        // not kept growing); meanwhile, retries back off up to 5 s.
        this.needFull = true;
        this.outbox.clear();
        this.outboxSize = 0;
        this.retryAt = Date.now() + Math.min(5000, ha.syncIntervalMs * 2 ** Math.min(this.consecutiveFailures++, 10));
        if (!this.failing) this.hooks.log({ event: "peer-sync", ok: false, peer: `${ha.peer.address}:${ha.peer.port}`, error: (e as Error).message });
        this.failing = true;
        return;
      }
      this.stats.pushes++;
      this.stats.sent += count;
      this.consecutiveFailures = 0;
      if (this.failing || this.peerNode !== res.node) {
        this.hooks.log({ event: "peer-sync", ok: true, peer: `${ha.peer.address}:${ha.peer.port}`, node: res.node, restarted: this.peerNode !== undefined && this.peerNode !== res.node });
        if (this.peerNode !== undefined && this.peerNode !== res.node) this.needFull = true;
        this.peerNode = res.node;
        this.failing = false;
      }
      this.remember(taken);
    } finally {
      this.inFlight = false;
    }
  }

  /** Which clients the peer now knows on a non-first-choice server (to correct them when they move back). */
  private remember(taken: [string, PinRecord][]): void {
    const cfg = this.hooks.config();
    for (const [vip, r] of taken) {
      const vs = cfg.virtualServices.find((v) => v.name === vip);
      if (!vs) continue;
      let m = this.announced.get(vip);
      if (!m) this.announced.set(vip, (m = new Map()));
      if (firstChoiceOf(vs, r.ip) === r.server) m.delete(r.ip);
      else m.set(r.ip, r.at + vs.persistence.timeoutSeconds * 1000);
    }
  }

  private prune(): void {
    const now = Date.now();
    if (now - this.lastPrune < 30000) return;
    this.lastPrune = now;
    const names = new Set(this.hooks.config().virtualServices.map((v) => v.name));
    for (const [vip, m] of this.announced) {
      if (!names.has(vip)) this.announced.delete(vip);
      else for (const [ip, until] of m) if (until < now) m.delete(ip);
    }
  }

  /** A merge request from the peer (already authenticated). Throws PeerMessageError on a malformed body. */
  receive(doc: unknown): PeerMergeResult {
    const msg = parsePeerMessage(doc);
    const cfg = this.hooks.config();
    const now = Date.now();
    let merged = 0;
    let ignored = 0;
    for (const [vip, entries] of Object.entries(msg.vips)) {
      const vs = cfg.virtualServices.find((v) => v.name === vip);
      if (!vs || vs.persistence.type !== "source-ip") {
        ignored += entries.length;
        continue;
      }
      const names = new Set(vs.realServers.map((s) => s.name));
      const limit = vs.persistence.timeoutSeconds * 1000;
      const records: PinRecord[] = [];
      for (const [ip, server, age] of entries) {
        if (!names.has(server) || age > limit) {
          ignored++;
          continue;
        }
        records.push({ ip, server, at: now - age });
      }
      if (records.length) this.hooks.merge(vip, records);
      merged += records.length;
    }
    this.stats.received += merged;
    this.stats.ignored += ignored;
    return { node: this.node, merged, ignored };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export class PeerMessageError extends Error {}

/** Shape check of a merge body (the sender is authenticated, but a body is still just bytes). */
export function parsePeerMessage(doc: unknown): PeerMessage {
  const bad = (why: string): never => {
    throw new PeerMessageError(`bad merge message: ${why}`);
  };
  if (!doc || typeof doc !== "object") bad("not a JSON object");
  const d = doc as Record<string, unknown>;
  if (typeof d.node !== "string" || !/^[0-9a-f]{1,64}$/.test(d.node)) bad("node is not a hex id");
  if (!d.vips || typeof d.vips !== "object" || Array.isArray(d.vips)) bad("vips is not an object");
  let total = 0;
  for (const [vip, list] of Object.entries(d.vips as Record<string, unknown>)) {
    if (!Array.isArray(list)) bad(`vips.${vip} is not an array`);
    for (const e of list as unknown[]) {
      total++;
      if (
        !Array.isArray(e) ||
        e.length !== 3 ||
        typeof e[0] !== "string" ||
        e[0].length > 64 ||
        typeof e[1] !== "string" ||
        e[1].length > 64 ||
        typeof e[2] !== "number" ||
        !Number.isFinite(e[2]) ||
        e[2] < 0
      ) {
        bad(`vips.${vip} has an entry that is not [client, server, ageMs]`);
      }
    }
  }
  if (total > 20000) bad(`${total} entries: at most 20000 per message`);
  return d as unknown as PeerMessage;
}

/** POST the message to the peer's admin API; resolves with its answer, rejects on anything but 200. */
function postMerge(ha: HighAvailabilityConfig, token: string, msg: PeerMessage): Promise<PeerMergeResult> {
  const body = JSON.stringify(msg);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: ha.peer.address,
        port: ha.peer.port,
        method: "POST",
        path: "/api/persistence/merge",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${token}` },
        timeout: Math.max(500, Math.min(5000, ha.syncIntervalMs * 2)),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size <= 65536) chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          try {
            const v = JSON.parse(text) as PeerMergeResult;
            if (typeof v.node !== "string") throw new Error("no node id");
            resolve(v);
          } catch (e) {
            reject(new Error(`bad answer: ${(e as Error).message}`));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Source-IP persistence for one VIP, shared by all its ports: client address → server name, refreshed on every
 * use, forgotten after `timeoutSeconds` without use. The table only remembers; whether the remembered server
 * can still take the client is the pool's decision (a DOWN or removed server's clients are re-placed, and
 * only they are).
 *
 * In a multi-worker proxy every worker keeps its own table; entries touched in a worker are batched and
 * shared through the primary (`drainTouched` / `merge`), so a client placed by one worker is found by all.
 */

export interface PinRecord {
  /** client address */
  ip: string;
  server: string;
  /** last use, ms since the epoch */
  at: number;
}

interface Entry {
  server: string;
  at: number;
}

export class PersistenceTable {
  private readonly entries = new Map<string, Entry>();
  private touched: Map<string, Entry> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private timeoutMs: number,
    /** Record touched entries for sharing with other workers. */
    share = false,
  ) {
    if (share) this.touched = new Map();
    this.schedule();
  }

  /** Start or stop recording touched entries (a single-process proxy shares them only with an HA peer). */
  setShare(on: boolean): void {
    if (on) this.touched ??= new Map();
    else this.touched = undefined;
  }

  setTimeoutSeconds(s: number): void {
    this.timeoutMs = s * 1000;
    this.schedule();
  }

  get size(): number {
    return this.entries.size;
  }

  /** The server remembered for this client (refreshing its entry), or undefined. */
  lookup(ip: string, now = Date.now()): string | undefined {
    const e = this.entries.get(ip);
    if (!e) return undefined;
    if (now - e.at > this.timeoutMs) {
      this.entries.delete(ip);
      return undefined;
    }
    e.at = now;
    this.touched?.set(ip, e);
    return e.server;
  }

  /** Remember (or move) a client. */
  pin(ip: string, server: string, now = Date.now()): void {
    const e = this.entries.get(ip);
    if (e) {
      e.server = server;
      e.at = now;
      this.touched?.set(ip, e);
    } else {
      const n = { server, at: now };
      this.entries.set(ip, n);
      this.touched?.set(ip, n);
    }
  }

  /** Refresh without moving (a session ended: the client was not idle until now). */
  touch(ip: string, now = Date.now()): void {
    const e = this.entries.get(ip);
    if (e) {
      e.at = now;
      this.touched?.set(ip, e);
    }
  }

  /** Entries from another worker: newer wins. */
  merge(records: readonly PinRecord[]): void {
    const now = Date.now();
    for (const r of records) {
      if (now - r.at > this.timeoutMs) continue;
      const e = this.entries.get(r.ip);
      if (!e) this.entries.set(r.ip, { server: r.server, at: r.at });
      else if (r.at >= e.at) {
        e.server = r.server;
        e.at = r.at;
      }
    }
  }

  /** Entries touched since the last call (for the primary), as plain records. */
  drainTouched(): PinRecord[] {
    if (!this.touched || this.touched.size === 0) return [];
    const out: PinRecord[] = [];
    for (const [ip, e] of this.touched) out.push({ ip, server: e.server, at: e.at });
    this.touched.clear();
    return out;
  }

  /** Every live entry (a new worker's initial table). */
  snapshot(): PinRecord[] {
    const now = Date.now();
    const out: PinRecord[] = [];
    for (const [ip, e] of this.entries) if (now - e.at <= this.timeoutMs) out.push({ ip, server: e.server, at: e.at });
    return out;
  }

  /** The server this client is remembered on, without refreshing (tests, status). */
  peek(ip: string): string | undefined {
    const e = this.entries.get(ip);
    return e && Date.now() - e.at <= this.timeoutMs ? e.server : undefined;
  }

  sweep(now = Date.now()): void {
    for (const [ip, e] of this.entries) if (now - e.at > this.timeoutMs) this.entries.delete(ip);
  }

  clear(): void {
    this.entries.clear();
    this.touched?.clear();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    const every = Math.max(250, Math.min(30000, this.timeoutMs / 4));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }
}

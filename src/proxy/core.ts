/**
 * The data plane of one process: a net.Server per listener, the VIP pools, the per-VIP connection limit
 * with its bounded wait queue, reconciliation on reload, and drain. Health checks and the admin API are not
 * here (they live in the control plane, once per proxy); this module only consumes server states.
 */
import * as net from "node:net";
import type { Listener, RuntimeConfig, VirtualService } from "../config";
import type { Health } from "./health";
import { HANDLERS } from "./handlers";
import { closeIdleServerConnections, pruneIdleServerConnections } from "./http";
import type { JsonLog } from "./log";
import type { PinRecord } from "./persistence";
import { Counters, Pool } from "./pool";

export interface VipSnapshot {
  counters: Counters;
  servers: Record<string, Counters>;
  entries: number;
}
export type CountersSnapshot = Record<string, VipSnapshot>;

interface Slot {
  /** open (admitted) client connections */
  active: number;
  queue: { socket: net.Socket; timer: NodeJS.Timeout; handler: (s: net.Socket) => void }[];
}

interface ListenerEntry {
  key: string;
  listener: Listener;
  vip: string;
  server: net.Server;
  handler: (client: net.Socket) => void;
}

export interface CoreOptions {
  log: JsonLog;
  /** Share persistence entries between processes (serve primary and workers). */
  sharePins?: boolean;
  /** The number of processes sharing the listeners: maxConnections is split between them. */
  processes?: number;
  /**
   * Where a listener's listening server comes from. Default: bound here. A serve worker process gets the
   * primary's listening socket instead (the kernel then spreads connections between the processes).
   */
  bind?: (key: string, listener: Listener) => Promise<net.Server>;
  /** A listener this core bound itself (the serve primary shares it with its workers). */
  onBound?: (key: string, server: net.Server) => void;
  /**
   * Accept balancing (balance.ts): offered every accepted connection's handle before a socket is made of
   * it, with this process's open connections; true = passed to a sibling process (not ours any more).
   */
  handOff?: (key: string, handle: unknown, open: number) => boolean;
}

/** The part of Node's listening TCP handle the hand-off hooks into: its per-connection callback. */
interface ListenHandle {
  onconnection: (this: ListenHandle, status: number, client?: unknown) => void;
}

/** A listening server for one listener: half-open connections allowed (TCP mode relays a FIN one way while
 * the other direction keeps flowing), Nagle off. */
export function bindListener(l: Listener): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: l.address, port: l.port, backlog: 2048 }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

export class Core {
  readonly pools = new Map<string, Pool>();
  private readonly listeners = new Map<string, ListenerEntry>();
  private readonly slots = new Map<string, Slot>();
  private readonly clients = new Set<net.Socket>();
  private config: RuntimeConfig | undefined;
  private draining = false;
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly opts: CoreOptions) {
    this.ticker = setInterval(() => this.poll(), 1000);
    this.ticker.unref();
  }

  /** Applies a (validated) config: VIPs and servers reconciled by name, listeners by address:port. Open
   * connections continue on whatever they started with. Rejects if a new listener cannot bind (the ones
   * that could are kept). */
  async apply(config: RuntimeConfig): Promise<void> {
    this.config = config;
    const log = (r: Record<string, unknown>) => this.opts.log.write(r);
    const names = new Set<string>();
    for (const vs of config.virtualServices) {
      names.add(vs.name);
      const pool = this.pools.get(vs.name);
      if (pool) {
        pool.apply(vs);
        pruneIdleServerConnections(pool, pool.list);
      } else this.pools.set(vs.name, new Pool(vs, { log }, this.opts.sharePins ?? false));
      if (!this.slots.has(vs.name)) this.slots.set(vs.name, { active: 0, queue: [] });
    }
    for (const [name, pool] of this.pools) {
      if (!names.has(name)) {
        pruneIdleServerConnections(pool, []); // none of its servers stays: idle connections close now, busy ones when released
        pool.close();
        this.pools.delete(name);
      }
    }
    const wanted = new Map<string, { l: Listener; vs: VirtualService }>();
    for (const vs of config.virtualServices) for (const l of vs.listeners) wanted.set(`${l.address}:${l.port}`, { l, vs });
    for (const [key, e] of this.listeners) {
      if (!wanted.has(key)) {
        e.server.close();
        this.listeners.delete(key);
        log({ event: "listener-closed", address: e.listener.address, port: e.listener.port, vip: e.vip });
      }
    }
    if (this.draining) return;
    const errors: string[] = [];
    await Promise.all(
      [...wanted].map(async ([key, { l, vs }]) => {
        const pool = this.pools.get(vs.name)!;
        const handler = HANDLERS[vs.mode](l, pool);
        const old = this.listeners.get(key);
        if (old) {
          old.listener = l;
          old.vip = vs.name;
          old.handler = handler;
          return;
        }
        try {
          await this.listen(key, l, vs.name, handler);
        } catch (e) {
          errors.push(`${key}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }),
    );
    if (errors.length) throw new Error(`cannot listen on ${errors.join(", ")}`);
  }

  private async listen(key: string, l: Listener, vip: string, handler: (s: net.Socket) => void): Promise<void> {
    const server = this.opts.bind ? await this.opts.bind(key, l) : await bindListener(l);
    // A server received from another process was made with default options: same behaviour as bindListener.
    Object.assign(server as net.Server & { allowHalfOpen: boolean; noDelay: boolean }, { allowHalfOpen: true, noDelay: true });
    const entry: ListenerEntry = { key, listener: l, vip, server, handler };
    server.on("connection", (s) => this.admit(entry, s));
    // Accept balancing: Node's own per-connection callback runs only for the connections this process keeps.
    const handOff = this.opts.handOff;
    const handle = (server as unknown as { _handle?: ListenHandle })._handle;
    if (handOff && handle && typeof handle.onconnection === "function") {
      const accept = handle.onconnection;
      const clients = this.clients;
      handle.onconnection = function (status, client) {
        if (status === 0 && client !== undefined && handOff(key, client, clients.size)) return;
        accept.call(this, status, client);
      };
    }
    server.on("error", (e) => this.opts.log.write({ event: "listener-error", address: l.address, port: l.port, error: (e as Error).message }));
    if (this.draining) {
      server.close();
      return;
    }
    this.listeners.set(key, entry);
    if (!this.opts.bind) this.opts.onBound?.(key, server);
  }

  /** Per-VIP connection limit (split across processes); over it, the connection waits up to queueMs. */
  private admit(entry: ListenerEntry, socket: net.Socket) {
    const pool = this.pools.get(entry.vip);
    const slot = this.slots.get(entry.vip);
    if (!pool || !slot || this.draining) {
      socket.destroy();
      return;
    }
    const limit = Math.max(1, Math.ceil(pool.config.maxConnections / (this.opts.processes ?? 1)));
    if (slot.active < limit) {
      this.start(slot, socket, entry.handler);
      return;
    }
    if (slot.queue.length >= limit) {
      this.opts.log.write({ event: "rejected", vip: entry.vip, port: entry.listener.port, client: socket.remoteAddress, reason: "queue-full" });
      socket.destroy();
      return;
    }
    const handler = entry.handler;
    socket.on("error", () => undefined);
    const item = {
      socket,
      handler,
      timer: setTimeout(() => {
        const i = slot.queue.indexOf(item);
        if (i >= 0) slot.queue.splice(i, 1);
        this.opts.log.write({ event: "rejected", vip: entry.vip, port: entry.listener.port, client: socket.remoteAddress, reason: "queue-timeout" });
        socket.destroy();
      }, pool.config.timeouts.queueMs),
    };
    slot.queue.push(item);
  }

  private start(slot: Slot, socket: net.Socket, handler: (s: net.Socket) => void) {
    slot.active++;
    this.clients.add(socket);
    socket.once("close", () => {
      slot.active--;
      this.clients.delete(socket);
      while (slot.queue.length) {
        const next = slot.queue.shift()!;
        clearTimeout(next.timer);
        if (next.socket.destroyed) continue;
        this.start(slot, next.socket, next.handler);
        break;
      }
    });
    handler(socket);
  }

  /** A server's health or operator state, as decided by the control plane. */
  setState(vip: string, server: string, health: Health, admin: "DRAIN" | "HALT" | null): void {
    this.pools.get(vip)?.setState(server, health, admin);
  }

  /** Record touched persistence entries for takePins() from now on (or stop). */
  setSharePins(on: boolean): void {
    this.opts.sharePins = on;
    for (const p of this.pools.values()) p.persistence.setShare(on);
  }

  mergePins(vip: string, records: readonly PinRecord[]): void {
    this.pools.get(vip)?.persistence.merge(records);
  }

  /** Persistence entries touched since the last call, per VIP (for the primary). */
  takePins(): Record<string, PinRecord[]> {
    const out: Record<string, PinRecord[]> = {};
    for (const [name, p] of this.pools) {
      const t = p.persistence.drainTouched();
      if (t.length) out[name] = t;
    }
    return out;
  }

  poll(): void {
    for (const p of this.pools.values()) p.poll();
  }

  snapshot(): CountersSnapshot {
    this.poll();
    const out: CountersSnapshot = {};
    for (const [name, p] of this.pools) {
      const servers: Record<string, Counters> = {};
      for (const b of p.list) servers[b.name] = { ...b.counters };
      out[name] = { counters: { ...p.counters }, servers, entries: p.persistence.size };
    }
    return out;
  }

  /**
   * A connection another process accepted on listener `key` and passed here (accept balancing): admitted
   * like one accepted here. False when this process has no such listener (a reload in between) or drains:
   * the caller closes the handle.
   */
  adopt(key: string, handle: unknown): boolean {
    const entry = this.listeners.get(key);
    if (!entry || this.draining) return false;
    (handle as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const opts = { handle, allowHalfOpen: true, readable: true, writable: true } as net.SocketConstructorOpts;
    this.admit(entry, new net.Socket(opts));
    return true;
  }

  get openConnections(): number {
    return this.clients.size;
  }

  listening(): { address: string; port: number; vip: string }[] {
    return [...this.listeners.values()].map((e) => ({ address: e.listener.address, port: e.listener.port, vip: e.vip }));
  }

  /** Stop accepting; let open connections finish for up to timeoutMs; then close what is left. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const p of this.pools.values()) p.draining = true;
    for (const e of this.listeners.values()) e.server.close();
    this.listeners.clear();
    for (const slot of this.slots.values()) {
      for (const q of slot.queue) {
        clearTimeout(q.timer);
        q.socket.destroy();
      }
      slot.queue = [];
    }
    const end = Date.now() + timeoutMs;
    while (this.clients.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, end - Date.now()))));
    if (this.clients.size) this.opts.log.write({ event: "drain-timeout", open: this.clients.size });
    for (const p of this.pools.values()) for (const b of p.list) b.closeSessions();
    for (const s of this.clients) s.destroy();
    this.close();
  }

  close(): void {
    this.draining = true;
    clearInterval(this.ticker);
    for (const e of this.listeners.values()) e.server.close();
    this.listeners.clear();
    for (const s of this.clients) s.destroy();
    for (const slot of this.slots.values()) for (const q of slot.queue) {
      clearTimeout(q.timer);
      q.socket.destroy();
    }
    for (const p of this.pools.values()) {
      // Idle keep-alive connections to the servers go too: a closed proxy leaves no socket open behind it.
      closeIdleServerConnections(p);
      p.close();
    }
  }

  get currentConfig(): RuntimeConfig | undefined {
    return this.config;
  }
}

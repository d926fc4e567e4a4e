/**
 * The list of backends of one VIP and how a client gets one: persistence entry first, then selection,
 * walking past servers that cannot take new clients, retrying others on a refused or timed-out connect.
 * Implements the contract's VipRuntime and Backend for the mode handlers.
 */
import * as net from "node:net";
import type { RealServer, VirtualService } from "../config";
import { Backend, NoServerError, ServerState, SessionHandle, VipRuntime } from "./contract";
import type { Health } from "./health";
import { PersistenceTable } from "./persistence";
import { firstChoice, leastConnections, preferenceOrder, roundRobin } from "./selection";

export interface Counters {
  current: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
}

export const zeroCounters = (): Counters => ({ current: 0, total: 0, bytesIn: 0, bytesOut: 0 });

/** Cumulative byte meter of a session (client→server, server→client), polled by the core. */
export type ByteMeter = () => readonly [number, number];

class Session implements SessionHandle {
  reportedIn = 0;
  reportedOut = 0;
  ended = false;
  constructor(
    readonly backend: BackendImpl,
    readonly close: () => void,
    readonly meter: ByteMeter | undefined,
  ) {}

  addBytes(toServer: number, toClient: number): void {
    const b = this.backend;
    b.counters.bytesIn += toServer;
    b.counters.bytesOut += toClient;
    b.pool.counters.bytesIn += toServer;
    b.pool.counters.bytesOut += toClient;
  }

  /** Folds the meter's progress into the counters (called on every stats tick and at the end). */
  poll(): void {
    if (!this.meter) return;
    const [i, o] = this.meter();
    if (i !== this.reportedIn || o !== this.reportedOut) {
      this.addBytes(i - this.reportedIn, o - this.reportedOut);
      this.reportedIn = i;
      this.reportedOut = o;
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.poll();
    const b = this.backend;
    b.sessions.delete(this);
    b.counters.current--;
    b.pool.counters.current--;
  }
}

export class BackendImpl implements Backend {
  readonly counters: Counters = zeroCounters();
  readonly sessions = new Set<Session>();
  health: Health = "UP";
  admin: "DRAIN" | "HALT" | null = null;

  constructor(
    readonly pool: Pool,
    public server: RealServer,
  ) {}

  get vip(): string {
    return this.pool.name;
  }
  get name(): string {
    return this.server.name;
  }
  get address(): string {
    return this.server.address;
  }
  get weight(): number {
    return this.server.weight;
  }
  /** Operator state wins over health. */
  get state(): ServerState {
    return this.admin ?? this.health;
  }
  get connections(): number {
    return this.counters.current;
  }
  /** May a new client (no persistence entry) be placed here? */
  get takesNewClients(): boolean {
    return this.admin === null && this.health === "UP" && this.server.weight > 0 && !this.removed;
  }
  /** May a client remembered on this server keep coming? (DRAIN and weight 0 keep their persistent clients, as
   * HAProxy's drain does; DOWN and HALT do not.) */
  get takesPersistentClients(): boolean {
    return this.admin !== "HALT" && this.health === "UP" && !this.removed;
  }
  removed = false;

  targetPort(listenerPort: number): number {
    return this.server.port ?? listenerPort;
  }

  openSession(close: () => void, meter?: ByteMeter): SessionHandle {
    const s = new Session(this, close, meter);
    this.sessions.add(s);
    this.counters.current++;
    this.counters.total++;
    this.pool.counters.current++;
    this.pool.counters.total++;
    return s;
  }

  /** shutdown-sessions: close every open session of this server. */
  closeSessions(): void {
    for (const s of [...this.sessions]) s.close();
  }

  pollSessions(): void {
    for (const s of this.sessions) s.poll();
  }
}

export interface PoolHooks {
  log(record: Record<string, unknown>): void;
}

/** One VIP as this process sees it. */
export class Pool implements VipRuntime {
  config: VirtualService;
  readonly counters: Counters = zeroCounters();
  readonly backends = new Map<string, BackendImpl>();
  /** Servers in config order (selection input). */
  list: BackendImpl[] = [];
  readonly persistence: PersistenceTable;
  private readonly rr = new Map<string, number>();
  /** Counters of servers removed by a reload whose sessions are still open are kept until they end. */
  readonly retired = new Set<BackendImpl>();

  constructor(
    config: VirtualService,
    private readonly hooks: PoolHooks,
    sharePins: boolean,
  ) {
    this.config = config;
    this.persistence = new PersistenceTable(config.persistence.timeoutSeconds * 1000, sharePins);
    this.apply(config);
  }

  get name(): string {
    return this.config.name;
  }

  /** Set by the core when it drains: the HTTP engine then closes idle keep-alive clients at once. */
  draining = false;

  /** A request sent on a pooled server connection pins the client too (no connect() happened). */
  pin(clientIp: string, backend: BackendImpl): void {
    if (this.config.persistence.type === "source-ip") this.persistence.pin(clientIp, backend.name);
  }

  /** Reconcile with a new config of the same VIP: servers kept by name keep counters, sessions and state. */
  apply(config: VirtualService): void {
    this.config = config;
    this.persistence.setTimeoutSeconds(config.persistence.timeoutSeconds);
    if (config.persistence.type === "none") this.persistence.clear();
    const next: BackendImpl[] = [];
    const seen = new Set<string>();
    for (const rs of config.realServers) {
      seen.add(rs.name);
      let b = this.backends.get(rs.name);
      if (b && b.server.address !== rs.address) {
        // Same name, another machine: a new backend (open sessions of the old one continue untouched).
        this.retire(b);
        b = undefined;
      }
      if (!b) {
        b = new BackendImpl(this, rs);
        this.backends.set(rs.name, b);
      } else b.server = rs;
      next.push(b);
    }
    for (const [name, b] of this.backends) if (!seen.has(name)) this.retire(b);
    this.list = next;
  }

  private retire(b: BackendImpl) {
    b.removed = true;
    this.backends.delete(b.name);
    if (b.sessions.size > 0) this.retired.add(b);
  }

  /** Health or operator state of one server changed (from the health checks, the primary or the admin API). */
  setState(server: string, health: Health, admin: "DRAIN" | "HALT" | null): void {
    const b = this.backends.get(server);
    if (!b) return;
    const before = b.state;
    b.health = health;
    b.admin = admin;
    const after = b.state;
    if (before === after) return;
    if (after === "HALT" || (after === "DOWN" && this.config.shutdownSessionsOnDown)) b.closeSessions();
  }

  private usableNew = (b: BackendImpl) => b.takesNewClients;

  /** The server for a client now (persistence entry, else the placement rule), without connecting. */
  choose(clientIp: string): BackendImpl | undefined {
    if (this.config.persistence.type === "source-ip") {
      const pinned = this.persistence.lookup(clientIp);
      if (pinned !== undefined) {
        const b = this.backends.get(pinned);
        if (b && b.takesPersistentClients) return b;
      }
      // A new (or displaced) client: the deterministic weighted rendezvous choice over the servers that take
      // new clients, so every worker and the peer load balancer agree without sharing anything.
      return firstChoice(clientIp, this.list, this.usableNew);
    }
    return this.config.balance === "roundrobin"
      ? roundRobin(this.rr, this.list, this.usableNew)
      : leastConnections(clientIp, this.list, this.usableNew);
  }

  async connect(clientIp: string, listenerPort: number, onread?: net.OnReadOpts, avoid?: string): Promise<{ socket: net.Socket; backend: BackendImpl }> {
    // The next server in this client's order that takes new clients and is not skipped (redispatch, retries).
    const next = (skip: (b: BackendImpl) => boolean) => preferenceOrder(clientIp, this.list).find((b) => b.takesNewClients && !skip(b));
    const first = (avoid === undefined ? undefined : next((b) => b.name === avoid)) ?? this.choose(clientIp);
    if (!first) throw new NoServerError(this.name);
    const tries = 1 + this.config.retries;
    let backend: BackendImpl | undefined = first;
    let tried: BackendImpl[] | undefined;
    let lastErr = "";
    for (let attempt = 0; attempt < tries && backend; attempt++) {
      try {
        const socket = await this.connectBackend(backend, listenerPort, onread);
        if (this.config.persistence.type === "source-ip") this.persistence.pin(clientIp, backend.name);
        return { socket, backend };
      } catch (e) {
        lastErr = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        this.hooks.log({ event: "connect-failed", vip: this.name, server: backend.name, port: backend.targetPort(listenerPort), client: clientIp, error: lastErr, attempt: attempt + 1 });
        (tried ??= []).push(backend);
        const t: BackendImpl[] = tried;
        backend = next((b) => t.includes(b));
      }
    }
    throw new NoServerError(this.name, `no real server answered (${tried?.length ?? 0} tried, last: ${lastErr})`);
  }

  /** `onread` (optional, TCP mode): read the server's bytes into caller-provided buffers instead of 'data'. */
  connectBackend(backend: BackendImpl, listenerPort: number, onread?: net.OnReadOpts): Promise<net.Socket> {
    const t = this.config.timeouts;
    return new Promise((resolve, reject) => {
      const socket = net.connect({
        host: backend.address,
        port: backend.targetPort(listenerPort),
        localAddress: this.config.sourceAddress ?? undefined,
        allowHalfOpen: true,
        noDelay: true,
        ...(onread ? { onread } : {}),
      });
      const timer = setTimeout(() => {
        const e: NodeJS.ErrnoException = new Error(`connect timed out after ${t.connectMs} ms`);
        e.code = "ETIMEDOUT";
        socket.destroy();
        reject(e);
      }, t.connectMs);
      const onError = (e: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", onError);
        resolve(socket);
      });
    });
  }

  log(record: Record<string, unknown>): void {
    this.hooks.log(record);
  }

  /** Folds byte meters of open sessions into the counters; drops retired servers whose sessions ended. */
  poll(): void {
    for (const b of this.list) if (b.sessions.size) b.pollSessions();
    for (const b of this.retired) {
      b.pollSessions();
      if (b.sessions.size === 0) this.retired.delete(b);
    }
  }

  close(): void {
    this.persistence.close();
  }
}

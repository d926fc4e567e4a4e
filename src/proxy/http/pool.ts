/**
 * Keep-alive connections to real servers, per VIP, keyed by backend and target port. A client connection
 * keeps the server connection it used while it stays on that backend (no pool traffic per request); when the
 * client leaves or moves to another backend, the server connection goes back here for the next client.
 */
import type { Socket } from "node:net";
import type { Backend, VipRuntime } from "../contract";

/** What a server connection reports to the client connection that currently owns it. */
export interface ServerOwner {
  onServerData(sc: ServerConn, data: Buffer): void;
  onServerClose(sc: ServerConn): void;
  onServerTimeout(sc: ServerConn): void;
  onServerDrain(): void;
}

/** Idle connections older than this are not reused (servers and middleboxes drop quiet connections). */
export const POOL_MAX_IDLE_MS = 30_000;
/** Idle connections kept per backend and port. */
export const POOL_MAX_IDLE = 256;

export class ServerConn {
  owner: ServerOwner | null = null;
  /** Served at least one complete response (so a close before any byte may be a keep-alive race). */
  reused = false;
  idleSince = 0;
  error: Error | undefined;
  closed = false;
  /** The server sent FIN (a clean end, as opposed to a reset). */
  ended = false;

  constructor(
    readonly socket: Socket,
    readonly backend: Backend,
    readonly key: string,
    private readonly pool: ServerPool,
    readonly activeTimeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.setTimeout(activeTimeoutMs);
    socket.on("data", (d: Buffer) => {
      if (this.owner) this.owner.onServerData(this, d);
      else socket.destroy(); // bytes from an idle server connection: nothing may follow, drop it
    });
    socket.on("error", (e) => {
      this.error = e;
    });
    // The server's FIN: everything it sent has been delivered ('end' follows the last 'data'). Sockets are
    // half-open capable, so without this a close-delimited response would never end.
    socket.on("end", () => {
      this.ended = true;
      socket.destroy();
    });
    socket.on("close", () => {
      this.closed = true;
      this.pool.remove(this);
      const o = this.owner;
      this.owner = null;
      if (o) o.onServerClose(this);
    });
    socket.on("timeout", () => {
      if (this.owner) this.owner.onServerTimeout(this);
      else socket.destroy();
    });
    socket.on("drain", () => {
      if (this.owner) this.owner.onServerDrain();
    });
  }

  get usable(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.writable;
  }
}

export function backendKey(b: Backend, port: number): string {
  return `${b.name}|${b.address}|${port}`;
}

export class ServerPool {
  private readonly idle = new Map<string, ServerConn[]>();

  take(key: string, now: number): ServerConn | undefined {
    const list = this.idle.get(key);
    if (!list) return undefined;
    while (list.length) {
      const sc = list.pop()!;
      if (sc.usable && now - sc.idleSince < POOL_MAX_IDLE_MS) {
        sc.socket.ref();
        sc.socket.setTimeout(sc.activeTimeoutMs);
        return sc;
      }
      sc.socket.destroy();
    }
    return undefined;
  }

  put(sc: ServerConn, now: number): void {
    if (!sc.usable || sc.backend.state === "DOWN" || sc.backend.state === "HALT") {
      sc.socket.destroy();
      return;
    }
    sc.owner = null;
    sc.idleSince = now;
    sc.socket.setTimeout(POOL_MAX_IDLE_MS);
    // An idle pooled connection alone does not keep the process alive.
    sc.socket.unref();
    let list = this.idle.get(sc.key);
    if (!list) this.idle.set(sc.key, (list = []));
    list.push(sc);
    if (list.length > POOL_MAX_IDLE) list.shift()!.socket.destroy();
  }

  remove(sc: ServerConn): void {
    const list = this.idle.get(sc.key);
    if (!list) return;
    const i = list.indexOf(sc);
    if (i >= 0) list.splice(i, 1);
  }

  /** Idle connections (for tests and status). */
  size(): number {
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  /** Closes every idle connection (shutdown). */
  clear(): void {
    for (const l of this.idle.values()) for (const sc of l.splice(0)) sc.socket.destroy();
  }
}

const pools = new WeakMap<VipRuntime, ServerPool>();

/** One pool per VIP runtime, shared by all its listeners (80 and 443 both reach the servers' 80). */
export function poolFor(vip: VipRuntime): ServerPool {
  let p = pools.get(vip);
  if (!p) pools.set(vip, (p = new ServerPool()));
  return p;
}

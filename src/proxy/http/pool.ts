/**
 * Keep-alive connections to real servers, per VIP, keyed by backend and target port. A client connection
 * keeps the server connection it used while it stays on that backend (no pool traffic per request); when the
 * client leaves or moves to another backend, the server connection goes back here for the next client.
 */
import type { Socket } from "node:net";
import { giveBuf, READ_SIZE, takeBuf } from "../buffers";
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

/**
 * One read buffer shared by every server connection of the process. Reads land here first; the bytes must be
 * consumed before the read callback returns (nothing may keep a reference), which is what lets thousands of
 * idle keep-alive server connections hold no buffer at all. Reads happen one at a time on the event loop
 * thread, and each read's callback runs before the next read, so one buffer serves them all.
 */
const SHARED = Buffer.allocUnsafeSlow(READ_SIZE);
/**
 * Reads of one server connection without a fresh buffer per read (`net.connect({ onread })`). A connection
 * reads into SHARED until a read fills it (a large body is streaming); from then on it reads into a buffer of
 * its own, which is written to the client as it is (no copy). If the client cannot take the bytes at once and
 * the write queue keeps a reference to that buffer, the buffer is given up (`lend()`) and the next read takes
 * another. A short read ends the streaming: the own buffer goes back to the free list.
 */
export class ServerReader {
  /** The reader whose read callback is running (reads are handled one at a time), or null. */
  static current: ServerReader | null = null;
  sc: ServerConn | null = null;
  /** The buffer the current read landed in (set only while the owner handles it), or null. */
  readBuf: Buffer | null = null;
  /** readBuf is SHARED: its bytes must not be referenced after the callback (copy before a queued write). */
  readShared = false;
  /** A socket asked for a buffer: the VIP honoured `onread` (a VipRuntime may ignore it; then 'data'). */
  used = false;
  private own: Buffer | null = null;
  private streaming = false;
  private pending: Buffer[] | null = null;
  readonly onread: { buffer: () => Buffer; callback: (nread: number, buf: Uint8Array) => boolean };

  constructor() {
    this.onread = {
      buffer: () => this.nextBuffer(),
      callback: (nread, buf) => this.onRead(nread, buf as Buffer),
    };
  }

  private nextBuffer(): Buffer {
    this.used = true;
    if (!this.streaming) return SHARED;
    return (this.own ??= takeBuf());
  }

  private onRead(nread: number, buf: Buffer): boolean {
    const sc = this.sc;
    const d = buf.subarray(0, nread);
    if (sc === null) {
      // Bytes before the connection is handed over (not expected from an HTTP server): keep a copy.
      (this.pending ??= []).push(Buffer.from(d));
    } else {
      this.readBuf = buf;
      this.readShared = buf === SHARED;
      const outer = ServerReader.current;
      ServerReader.current = this;
      try {
        sc.onBytes(d);
      } finally {
        this.readBuf = null;
        ServerReader.current = outer;
      }
    }
    if (nread === buf.length) this.streaming = true;
    else if (this.streaming) {
      this.streaming = false;
      this.release();
    }
    return true;
  }

  /** The client's write queue keeps the current read buffer: it is no longer ours to reuse. */
  lend(): void {
    if (this.readBuf !== null && this.readBuf === this.own) this.own = null;
  }

  /** Hands the own buffer back (the socket reads into SHARED from its next read on, or is closed). */
  release(): void {
    const b = this.own;
    this.own = null;
    if (b !== null) giveBuf(b);
  }

  attach(sc: ServerConn): void {
    this.sc = sc;
    const p = this.pending;
    if (p) {
      this.pending = null;
      for (const b of p) sc.onBytes(b);
    }
  }
}

export class ServerConn {
  owner: ServerOwner | null = null;
  /** Reads arrive through this (onread), or null when the socket emits 'data'. */
  readonly reader: ServerReader | null;
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
    /** What the socket was connected with (`reader.onread`); null, or unused: a socket that emits 'data'. */
    reader: ServerReader | null = null,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.setTimeout(activeTimeoutMs);
    this.reader = reader?.used ? reader : null;
    if (this.reader) this.reader.attach(this);
    else socket.on("data", (d: Buffer) => this.onBytes(d));
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
      this.reader?.release();
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

  onBytes(d: Buffer): void {
    if (this.owner) this.owner.onServerData(this, d);
    else this.socket.destroy(); // bytes from an idle server connection: nothing may follow, drop it
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
  /** The backend keys of the VIP's servers as of the last reload (retain); undefined before any. */
  private current: ReadonlySet<string> | undefined;

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
    if (!sc.usable || sc.backend.state === "DOWN" || sc.backend.state === "HALT" || (this.current && !this.current.has(sc.key))) {
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

  /** Closes the idle connections whose backend key is not in `keys` (a reload removed or moved the server);
   * a busy one to such a server is closed when it is released instead of pooled. */
  retain(keys: ReadonlySet<string>): void {
    this.current = keys;
    for (const [key, l] of this.idle) {
      if (keys.has(key)) continue;
      this.idle.delete(key);
      for (const sc of l) sc.socket.destroy();
    }
  }

  /** Closes every idle connection (shutdown). */
  clear(): void {
    for (const l of this.idle.values()) for (const sc of l.splice(0)) sc.socket.destroy();
  }
}

const pools = new WeakMap<VipRuntime, ServerPool>();

/** Closes the idle connections of a VIP's pool, if it has one. */
export function clearPool(vip: VipRuntime): void {
  pools.get(vip)?.clear();
}

/** After a reload: the idle connections of a VIP's pool to servers it no longer has at that address and port
 * (removed, moved, port translation changed) close now instead of at their idle timeout. */
export function retainPool(vip: VipRuntime, keys: ReadonlySet<string>): void {
  pools.get(vip)?.retain(keys);
}

/** One pool per VIP runtime, shared by all its listeners (80 and 443 both reach the servers' 80). */
export function poolFor(vip: VipRuntime): ServerPool {
  let p = pools.get(vip);
  if (!p) pools.set(vip, (p = new ServerPool()));
  return p;
}

/**
 * Server-side TLS on Node's TLS stream handle (TLSWrap, the `tls_wrap` binding under tls.TLSSocket), without
 * a TLSSocket: no second net.Socket, no Readable/Writable state, no per-connection option copies and event
 * wiring of Node's TLS layer. The accepted raw net.Socket stays the owner of the TCP handle (the core's
 * accounting, `destroy()` and its 'close' are unchanged); the TLS handle sits on top of it as Node's own
 * TLSSocket puts it, and the HTTP engine reads and writes cleartext through the small socket below.
 *
 * Why: on the benchmark's new TLS connections (one request each) Node's TLS socket set-up and teardown in
 * JavaScript were most of our CPU beyond OpenSSL's. A TLS server answering from memory on the handle used
 * 297-308 µs of CPU per resumed connection where the same server on tls.TLSSocket used 377-400 (same
 * machine, same hour; README, Benchmark).
 *
 * The binding is Node's internal interface (process.binding, pending deprecation DEP0111), so its shape is
 * checked at load: if a Node release changes it, `tlsHandles` is undefined and connections get a TLSSocket
 * as before. `CTERA_LB_TLS_ENGINE=streams` chooses the TLSSocket on purpose.
 */
import type { Socket } from "node:net";
import type { SecureContext } from "node:tls";
import { getSystemErrorName } from "node:util";
import { nodeBinding, streamWrap, UV_EOF, type StreamBinding, type StreamReq } from "../stream-binding";

/** What the HTTP engine uses of a client socket: a net.Socket, a tls.TLSSocket, or a TlsOnHandle. */
export interface ClientSocket {
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** Strings are head text: latin1, one byte per character. */
  write(data: Buffer): boolean;
  write(data: string, encoding: "latin1"): boolean;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  setTimeout(ms: number): unknown;
  readonly writableLength: number;
  readonly writableCorked: number;
}

/** Node's TLS stream handle: the methods and callbacks used here. */
interface TlsHandle {
  onread: (ab?: ArrayBuffer) => void;
  onerror: (err: Error) => void;
  onhandshakestart: () => void;
  onhandshakedone: () => void;
  onkeylog: () => void;
  onnewsession: () => void;
  setALPNProtocols(protocols: Buffer): void;
  receive(data: Buffer): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: StreamReq, data: Buffer): number;
  writeLatin1String(req: StreamReq, data: string): number;
  writev(req: StreamReq, chunks: Buffer[], allBuffers: boolean): number;
  shutdown(req: StreamReq): number;
  destroySSL(): void;
}

type Wrap = (stream: unknown, context: unknown, isServer: boolean, hasActiveWrite: boolean) => TlsHandle;

function load(): { wrap: Wrap } | undefined {
  if (process.env.CTERA_LB_TLS_ENGINE === "streams" || !streamWrap) return undefined;
  const t = nodeBinding("tls_wrap");
  const proto = (t?.TLSWrap as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  const methods = ["setALPNProtocols", "receive", "readStart", "readStop", "writeBuffer", "writeLatin1String", "writev", "shutdown", "destroySSL"];
  const ok = typeof t?.wrap === "function" && proto !== undefined && methods.every((m) => typeof proto[m] === "function");
  return ok ? { wrap: t.wrap as Wrap } : undefined;
}

/** Node's TLSWrap factory when this Node has it, with the stream binding (and CTERA_LB_TLS_ENGINE is not "streams"). */
export const tlsHandles: { wrap: Wrap } | undefined = load();

// The stream binding's parts, read once (TlsOnHandle exists only when tlsHandles, hence streamWrap, does).
const S = streamWrap ?? ({} as Partial<StreamBinding>);
const state = S.streamBaseState!;
const K_READ = S.kReadBytesOrError!;
const K_OFFSET = S.kArrayBufferOffset!;
const K_ASYNC = S.kLastWriteWasAsync!;

/** Which TLS socket new connections get; tests switch it to run the same cases on both. */
export const tlsEngine: { mode: "handles" | "streams" } = { mode: tlsHandles ? "handles" : "streams" };

/** ALPN: http/1.1 only (length-prefixed, as the binding takes it). */
const ALPN = Buffer.from("\x08http/1.1", "latin1");

/** Node's Writable default: write() says "wait for 'drain'" from this many queued bytes. */
const HIGH_WATER = 16 * 1024;

const noop = (): void => undefined;

type Listener = (...args: never[]) => void;

/**
 * The server side of one TLS connection on the raw socket's TCP handle. Events (one listener each, as the
 * HTTP engine registers them): data, drain, end, error, close, timeout.
 *
 * Writes: the TLS handle takes one write at a time (Node's TLSWrap asserts it) and completes every write
 * asynchronously, so writes made while one is in flight wait here and leave together (one TLS record) when
 * it completes. A write encrypts its bytes inside the call: the caller's buffer is free when write() returns
 * unless the write had to wait (then `writableLength` grew, as a Writable's does).
 */
export class TlsOnHandle implements ClientSocket {
  destroyed = false;
  /** Bytes written and not yet completed: in flight plus waiting. */
  writableLength = 0;
  readonly writableCorked = 0;

  private readonly h: TlsHandle;
  private waiting: Buffer[] = [];
  private inFlight = 0;
  private needDrain = false;
  private ending = false;
  private ended = false;
  private reading = true;
  private handshakes = 0;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  private onData: (d: Buffer) => void = noop;
  private onDrain: () => void = noop;
  private onEnd: () => void = noop;
  private onError: (e: Error) => void = noop;
  private onClose: () => void = noop;
  private onTimeout: () => void = noop;

  constructor(
    private readonly raw: Socket,
    context: SecureContext,
  ) {
    const tcp = (raw as unknown as { _handle: unknown })._handle;
    const h = tlsHandles!.wrap(tcp, (context as unknown as { context: unknown }).context, true, false);
    this.h = h;
    h.onhandshakestart = () => {
      // Renegotiation is refused by the context (SSL_OP_NO_RENEGOTIATION, and TLS 1.3 has none); a second
      // handshake on one connection ends it all the same.
      if (++this.handshakes > 1) this.fail(new Error("TLS renegotiation refused"));
    };
    h.onhandshakedone = noop;
    h.onkeylog = noop;
    h.onnewsession = noop;
    h.onerror = (err: Error) => this.fail(err);
    h.onread = (ab?: ArrayBuffer) => this.read(ab);
    h.setALPNProtocols(ALPN);
    raw.once("close", () => this.closed());
    // Bytes the raw socket read before it was wrapped (a connection that waited in the admission queue):
    // after the caller has registered its listeners, as Node's TLSSocket does.
    if (raw.readableLength > 0) process.nextTick(() => this.receiveBuffered());
    h.readStart();
  }

  on(event: string, listener: Listener): this {
    switch (event) {
      case "data":
        this.onData = listener as (d: Buffer) => void;
        break;
      case "drain":
        this.onDrain = listener as () => void;
        break;
      case "end":
        this.onEnd = listener as () => void;
        break;
      case "error":
        this.onError = listener as (e: Error) => void;
        break;
      case "close":
        this.onClose = listener as () => void;
        break;
      case "timeout":
        this.onTimeout = listener as () => void;
        break;
      default:
        throw new Error(`TlsOnHandle: no event ${event}`);
    }
    return this;
  }

  /** Idle timeout: 'timeout' once no byte was read or written for `ms` (0: none), as a Node socket's. */
  setTimeout(ms: number): this {
    this.timeoutMs = ms;
    this.last = Date.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = ms > 0 && !this.destroyed ? setTimeout(() => this.checkIdle(), ms).unref() : null;
    return this;
  }

  private checkIdle(): void {
    this.timer = null;
    if (this.destroyed || this.timeoutMs <= 0) return;
    const quiet = Date.now() - this.last;
    if (quiet < this.timeoutMs) {
      this.timer = setTimeout(() => this.checkIdle(), this.timeoutMs - quiet).unref();
      return;
    }
    this.onTimeout();
  }

  pause(): this {
    return this.setReading(false);
  }

  resume(): this {
    return this.setReading(true);
  }

  private setReading(on: boolean): this {
    if (this.reading !== on && !this.destroyed) {
      this.reading = on;
      if (on) this.h.readStart();
      else this.h.readStop();
    }
    return this;
  }

  write(data: Buffer | string, _encoding?: "latin1"): boolean {
    if (this.destroyed || this.ending) return false;
    const n = data.length; // a string is latin1: a byte per character
    if (n === 0) return this.writableLength < HIGH_WATER;
    this.writableLength += n;
    if (this.inFlight > 0) {
      // The handle takes one write at a time: this one waits (a string as its bytes).
      this.waiting.push(typeof data === "string" ? Buffer.from(data, "latin1") : data);
    } else {
      const req = this.request(n);
      this.issued(typeof data === "string" ? this.h.writeLatin1String(req, data) : this.h.writeBuffer(req, data), n);
    }
    const ok = this.writableLength < HIGH_WATER;
    if (!ok) this.needDrain = true;
    return ok;
  }

  /** Sends close_notify and the FIN once the writes before it are out; reading goes on (the peer's end). */
  end(): this {
    if (this.destroyed || this.ending) return this;
    this.ending = true;
    if (this.inFlight === 0) this.shutdown();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.waiting = [];
    this.raw.destroy(); // its 'close' ends this socket too (closed())
    return this;
  }

  // ---------------------------------------------------------------- internals

  private request(n: number): StreamReq {
    const req = new S.WriteWrap!();
    req.handle = this.h;
    req.oncomplete = (status: number) => this.written(status, n);
    return req;
  }

  /** After a write call: an error ends the connection; a write that completed in the call is done. */
  private issued(err: number, n: number): void {
    if (err !== 0) {
      this.fail(new Error(`write failed: ${getSystemErrorName(err)}`));
      return;
    }
    this.last = Date.now();
    this.inFlight = n;
    if (state[K_ASYNC] === 0) this.written(0, n);
  }

  private written(status: number, n: number): void {
    if (this.destroyed) return; // cancelled by the close
    if (status < 0) {
      this.fail(new Error(`write failed: ${getSystemErrorName(status)}`));
      return;
    }
    this.inFlight = 0;
    this.writableLength -= n;
    this.last = Date.now();
    if (this.waiting.length > 0) {
      // Everything still counted in writableLength is waiting: it leaves now, as one write.
      const chunks = this.waiting;
      const bytes = this.writableLength;
      this.waiting = [];
      const req = this.request(bytes);
      this.issued(chunks.length === 1 ? this.h.writeBuffer(req, chunks[0]) : this.h.writev(req, chunks, true), bytes);
      return;
    }
    if (this.ending) this.shutdown();
    if (this.needDrain && this.writableLength < HIGH_WATER) {
      this.needDrain = false;
      this.onDrain();
    }
  }

  private shutdown(): void {
    if (this.ended) return;
    this.ended = true;
    const req = new S.ShutdownWrap!();
    req.handle = this.h;
    req.oncomplete = noop; // a failed FIN (the peer is gone) ends with the peer's end or reset
    this.h.shutdown(req);
  }

  private read(ab?: ArrayBuffer): void {
    const n = state[K_READ];
    if (this.destroyed) return;
    if (n > 0 && ab !== undefined) {
      this.last = Date.now();
      this.onData(Buffer.from(ab, state[K_OFFSET], n));
      return;
    }
    if (n === UV_EOF) {
      this.onEnd();
      return;
    }
    if (n < 0) this.fail(Object.assign(new Error(getSystemErrorName(n)), { code: getSystemErrorName(n) }));
  }

  private receiveBuffered(): void {
    for (let b: Buffer | null; !this.destroyed && (b = this.raw.read() as Buffer | null) !== null; ) this.h.receive(b);
  }

  private fail(err: Error): void {
    if (this.destroyed) return;
    this.onError(err);
    this.destroy();
  }

  private closed(): void {
    this.destroyed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const h = this.h;
    h.onread = noop;
    // Releases OpenSSL's state and cancels what is still queued (Node's TLSSocket does it on close too).
    h.destroySSL();
    this.onClose();
  }
}

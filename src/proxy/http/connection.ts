/**
 * One client connection of an http-mode VIP: reads request heads, sends each request to the client's server
 * (persistence: vip.choose(clientIp) per request), streams bodies as bytes in both directions with
 * backpressure, and rewrites only heads (X-Forwarded-*, HSTS, session-cookie flags).
 *
 * One request is in flight at a time; bytes of a pipelined next request wait (bounded) until the response is
 * complete. The server connection stays attached between requests while the client stays on that backend.
 */
import type { Listener } from "../../config";
import { NoServerError, type Backend, type SessionHandle, type VipRuntime } from "../contract";
import { watch, unwatch, type HasDeadline } from "./deadlines";
import { BodyFramer, BAD, MORE } from "./framing";
import { HeadReader } from "./head";
import { Body, applyEdits, isHttpError, parseRequestHead, parseResponseHead, rewriteRequestHead } from "./parse";
import type { RequestHead, ResponseHead, ResponseOptions } from "./parse";
import { giveBuf, takeBuf } from "../buffers";
import { ServerConn, ServerReader, backendKey, type ServerOwner, type ServerPool } from "./pool";
import type { ClientSocket } from "./tls-handles";

/** Everything a connection needs from its listener, fixed when the factory ran (a reload builds a new one). */
export interface ListenerContext {
  vip: VipRuntime;
  vipName: string;
  listener: Listener;
  port: number;
  tls: boolean;
  redirectPort: number | undefined;
  pool: ServerPool;
  maxHeaderBytes: number;
  httpRequestMs: number;
  keepAliveMs: number;
  serverIdleMs: number;
  clientIdleMs: number;
  xff: boolean;
  /** "X-Forwarded-Proto: ...\r\nX-Forwarded-Port: ...\r\n" */
  xfProtoPort: string;
  /** "Strict-Transport-Security: max-age=N\r\n" or "". */
  hstsLine: string;
  respOpts: ResponseOptions;
}

/** Bytes of the shared server read buffer written as a plain (pooled) copy up to this size. */
const SMALL_COPY = 4096;
/** Bytes of a pipelined request held while the previous response is still running. */
const MAX_HELD = 65536;
/** After an error response or a graceful end: how long the client may take to close before we cut. */
const CLOSE_GRACE_MS = 2000;

/** Methods a request may be sent again with when no answer came (RFC 9110, 9.2.2; without a body here). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

const enum St {
  Head,
  Connecting,
  Forward,
  Tunnel,
  Closing,
  Closed,
}

const enum Dl {
  None,
  /** First request or a request that started: head must complete. */
  Head,
  /** Keep-alive wait between requests. */
  Idle,
  Closing,
}

const STATUS_TEXT: Record<number, string> = {
  301: "Moved Permanently",
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export function normalizeAddress(a: string | undefined): string {
  if (!a) return "";
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

function sameBackend(a: Backend, b: Backend): boolean {
  return a === b || (a.name === b.name && a.address === b.address);
}

/** Where the body bytes that go out in one buffer with a rebuilt response head end: a small part goes whole, a
 * large one (over SMALL_COPY) goes as it is after the head. */
const inlineEnd = (end: number, bodyEnd: number): number => (bodyEnd - end <= SMALL_COPY ? bodyEnd : end);

/** A response head (through its blank line) with its Connection fields replaced by "Connection: close". */
export function withConnectionClose(head: string): string {
  let out = "";
  let pos = 0;
  for (;;) {
    const eol = head.indexOf("\r\n", pos);
    if (eol <= pos) break; // the blank line that ends the head (or a head without one)
    if (!(head.charCodeAt(pos + 10) === 58 && head.slice(pos, pos + 10).toLowerCase() === "connection")) out += head.slice(pos, eol + 2);
    pos = eol + 2;
  }
  return `${out}Connection: close\r\n\r\n`;
}

export class ClientConn implements HasDeadline, ServerOwner {
  deadline = 0;
  idle: VipRuntime | null = null;
  private dl = Dl.None;
  private st = St.Head;
  private readonly head: HeadReader;
  private readonly respHead: HeadReader;
  private readonly reqFramer = new BodyFramer();
  private readonly respFramer = new BodyFramer();
  private readonly addr: string;
  private readonly started = Date.now();
  private xffBlock: Buffer | undefined;
  private hstsTail: Buffer | undefined;

  private requests = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private reportedIn = 0;
  private reportedOut = 0;
  private reason = "";
  private clientEnded = false;
  /** The client sent at least one byte. */
  private seen = false;

  private req: RequestHead | null = null;
  /** The request head for the server (kept for a retry on a fresh connection). */
  private outHead: Buffer | string = "";
  private reqDone = true;
  private resp: ResponseHead | null = null;
  /** Bytes of the current response already written to the client. */
  private respStarted = false;
  private respBytesSeen = false;
  /** Times the current request was sent again (at most twice: the second time to another server). */
  private resends = 0;

  private server: ServerConn | null = null;
  private backend: Backend | null = null;
  private session: SessionHandle | null = null;

  private held: Buffer[] = [];
  private heldBytes = 0;
  private pausedHeld = false;
  private pausedServer = false;
  private pausedClient = false;

  constructor(
    private readonly sock: ClientSocket,
    rawAddress: string | undefined,
    private readonly ctx: ListenerContext,
  ) {
    this.addr = normalizeAddress(rawAddress);
    this.head = new HeadReader(ctx.maxHeaderBytes);
    this.respHead = new HeadReader(Math.max(65536, ctx.maxHeaderBytes));
    sock.on("data", (d: Buffer) => this.onData(d));
    sock.on("drain", () => this.onClientDrain());
    sock.on("error", (e: Error) => {
      if (!this.reason) this.reason = `client error: ${(e as NodeJS.ErrnoException).code ?? e.message}`;
    });
    sock.on("end", () => this.onClientEnd());
    sock.on("close", () => this.onClose());
    sock.on("timeout", () => {
      if (this.st === St.Forward || this.st === St.Tunnel) this.destroy("client idle timeout");
    });
    sock.setTimeout(ctx.clientIdleMs);
    this.setDeadline(Dl.Head, ctx.httpRequestMs);
    watch(this);
  }

  // ---------------------------------------------------------------- deadlines

  private setDeadline(kind: Dl, ms: number): void {
    this.dl = kind;
    this.idle = kind === Dl.Idle ? this.ctx.vip : null;
    this.deadline = kind === Dl.None ? 0 : Date.now() + ms;
  }

  onDeadline(): void {
    switch (this.dl) {
      case Dl.Head:
        if (this.st !== St.Head) return;
        // A connection that never sent a byte (a browser's preconnect, a port probe) is closed quietly;
        // one that started a head and did not finish it (slowloris) gets a 408.
        if (!this.seen) this.destroy("no request");
        else this.fail(408, "request head not complete in time");
        return;
      case Dl.Idle:
        if (this.st === St.Head) this.closeGracefully("keep-alive timeout");
        return;
      case Dl.Closing:
        this.destroy(this.reason || "closed");
        return;
    }
  }

  /** The process drains: an idle keep-alive connection closes now. */
  onDrain(): void {
    if (this.st === St.Head && this.dl === Dl.Idle) this.closeGracefully("draining");
  }

  // ---------------------------------------------------------------- client side

  private onData(d: Buffer): void {
    switch (this.st) {
      case St.Head:
        this.seen = true;
        this.readHead(d, 0);
        return;
      case St.Connecting:
        this.hold(d);
        return;
      case St.Forward:
        if (this.reqDone) this.hold(d);
        else this.forwardBody(d, 0);
        return;
      case St.Tunnel:
        this.bytesIn += d.length;
        if (this.server && !this.server.socket.write(d)) this.pauseClient();
        return;
      default:
        return; // Closing: discard what the client still sends
    }
  }

  /** The client's FIN. Listener sockets are half-open capable: a client may end its side after sending a
   * request and still read the response. */
  private onClientEnd(): void {
    this.clientEnded = true;
    switch (this.st) {
      case St.Head:
        // Nothing in flight: an idle end, or a head that can never complete.
        if (this.head.pending > 0) this.destroy("client ended inside a request head");
        else this.closeGracefully("client closed");
        return;
      case St.Connecting:
      case St.Forward:
        if (!this.reqDone) this.destroy("client ended inside a request body");
        return; // the response is still delivered, then the connection closes
      case St.Tunnel:
        this.server?.socket.end();
        return;
      default:
        this.destroy(this.reason || "closed");
    }
  }

  private hold(d: Buffer): void {
    this.held.push(d);
    this.heldBytes += d.length;
    if (this.heldBytes > MAX_HELD && !this.pausedHeld) {
      this.pausedHeld = true;
      this.sock.pause();
    }
  }

  /** Takes the held bytes (in order) for processing. */
  private takeHeld(): Buffer | null {
    if (this.held.length === 0) return null;
    const b = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    if (this.pausedHeld) {
      this.pausedHeld = false;
      if (!this.pausedClient) this.sock.resume();
    }
    return b;
  }

  private readHead(d: Buffer, off: number): void {
    if (this.dl === Dl.Idle) this.setDeadline(Dl.Head, this.ctx.httpRequestMs);
    const r = this.head.push(d, off, true);
    if (r === null) return;
    if (r === "too-large") {
      this.fail(431, "request header section too large");
      return;
    }
    const s = r.buf.toString("latin1", r.start, r.end);
    const req = parseRequestHead(s);
    if (isHttpError(req)) {
      this.fail(req.status, req.reason);
      return;
    }
    this.requests++;
    this.setDeadline(Dl.None, 0);
    this.req = req;
    const rest = r.end < r.restEnd ? r.buf.subarray(r.end, r.restEnd) : null;
    if (this.ctx.redirectPort !== undefined) {
      this.redirect(req, rest);
      return;
    }
    // The head for the server: untouched bytes when nothing changes; else the original bytes plus appended
    // lines; a rebuilt head only when the client sent headers we must replace.
    const ctx = this.ctx;
    if (req.stripClose || (ctx.xff && (req.xff !== undefined || req.xfOther))) {
      this.outHead = rewriteRequestHead(s, req, ctx.xff ? this.addr : undefined, ctx.xff ? ctx.xfProtoPort : "");
    } else if (ctx.xff) {
      this.xffBlock ??= Buffer.from(`X-Forwarded-For: ${this.addr}\r\n${ctx.xfProtoPort}\r\n`, "latin1");
      // One buffer, so the head is one write.
      const x = this.xffBlock;
      const n = r.end - 2 - r.start;
      const out = Buffer.allocUnsafe(n + x.length);
      r.buf.copy(out, 0, r.start, r.end - 2);
      x.copy(out, n);
      this.outHead = out;
    } else {
      this.outHead = r.buf.subarray(r.start, r.end);
    }
    this.reqFramer.start(req.body, req.length);
    this.reqDone = req.body === Body.None;
    this.resends = 0;
    if (rest) this.hold(rest);
    this.dispatch();
  }

  /** Picks the server connection for the current request: the attached one if the client's server is still
   * the one persistence names, else an idle pooled one, else a new connection through the balancer. */
  private dispatch(): void {
    const ctx = this.ctx;
    const chosen = ctx.vip.choose(this.addr);
    const sc = this.server;
    if (sc) {
      if (chosen && sameBackend(sc.backend, chosen) && sc.usable) {
        this.send(sc);
        return;
      }
      this.releaseServer();
    }
    if (chosen) {
      const pooled = ctx.pool.take(backendKey(chosen, chosen.targetPort(ctx.port)), Date.now());
      if (pooled) {
        this.bind(pooled.backend);
        ctx.vip.pin?.(this.addr, pooled.backend);
        this.send(pooled);
        return;
      }
    }
    this.connectNew();
  }

  /** `avoid`: a server that just failed this request (see resendOrBadGateway). */
  private connectNew(avoid?: string): void {
    this.st = St.Connecting;
    this.pauseClient();
    const ctx = this.ctx;
    const reader = new ServerReader();
    ctx.vip.connect(this.addr, ctx.port, reader.onread, avoid).then(
      ({ socket, backend }) => {
        if (this.st !== St.Connecting) {
          socket.destroy();
          return;
        }
        this.resumeClient();
        this.bind(backend);
        const sc = new ServerConn(socket, backend, backendKey(backend, backend.targetPort(ctx.port)), ctx.pool, ctx.serverIdleMs, reader);
        this.send(sc);
      },
      (e: unknown) => {
        if (this.st !== St.Connecting) return;
        this.resumeClient();
        if (e instanceof NoServerError) this.fail(503, "no real server is up");
        else this.fail(503, `no real server could be reached (${(e as Error).message})`);
      },
    );
  }

  /** Counts this client as a session on its backend (one session per client connection and backend). */
  private bind(b: Backend): void {
    if (this.backend && sameBackend(this.backend, b) && this.session) return;
    this.endSession();
    this.backend = b;
    this.session = b.openSession(() => this.onBackendShutdown(b));
  }

  /**
   * The backend went DOWN or HALT (shutdown-sessions): what it owed this client is lost, the client need
   * not be. Between requests the client keeps its connection (its next request goes to a server that is
   * up, as HAProxy's idle keep-alive connections do). A request still waiting for the first byte of its
   * answer is sent again, on another server, when that is safe (an idempotent method, no body); one that is
   * not safe to send again (POST, a body) gets a 502, as when its server closes the connection before
   * answering — whichever of the two the proxy notices first. A response half sent or a tunnel is cut.
   */
  private onBackendShutdown(b: Backend): void {
    if (this.st === St.Head || this.st === St.Connecting) {
      this.endSession();
      if (this.server && sameBackend(this.server.backend, b)) this.detachServer(true);
      return;
    }
    if (this.st === St.Forward && !this.respStarted) {
      this.endSession();
      this.resendOrBadGateway(false, `server ${b.name} went down before answering`, b.name);
      return;
    }
    this.destroy(`server ${b.name} shut down`);
  }

  /** Nothing of the answer came back: send the request again on a new connection when that is safe
   * (canResend), else answer 502. The first time through the balancer as usual (persistence: usually the
   * same server, right when it had only closed an idle keep-alive connection); if that fails as well, once
   * more to another server (HAProxy's redispatch): the server is going away — a process that is being
   * killed can still accept a connection and then reset it — and no health check has noticed yet. */
  private resendOrBadGateway(anyMethod: boolean, reason: string, failed: string): void {
    if (!this.canResend(anyMethod)) {
      this.badGateway(reason);
      return;
    }
    this.resends++;
    this.detachServer(true);
    this.connectNew(this.resends === 2 ? failed : undefined);
  }

  /** The current request may go to a server again: nothing of its answer came back, it has no body, it is
   * not an upgrade, it was not sent twice already, and its method is idempotent (RFC 9110, 9.2.2) — any
   * method when `anyMethod` (the server closed a reused keep-alive connection as we sent: it never saw it). */
  private canResend(anyMethod: boolean): boolean {
    const req = this.req;
    return !!req && this.resends < 2 && !this.respBytesSeen && req.body === Body.None && !req.upgrade && (anyMethod || IDEMPOTENT.has(req.method));
  }

  private endSession(): void {
    if (this.session) {
      this.flushBytes();
      this.session.end();
      this.session = null;
    }
  }

  private flushBytes(): void {
    if (!this.session) return;
    const i = this.bytesIn - this.reportedIn;
    const o = this.bytesOut - this.reportedOut;
    if (i || o) this.session.addBytes(i, o);
    this.reportedIn = this.bytesIn;
    this.reportedOut = this.bytesOut;
  }

  /** Sends the current request's head (and whatever body bytes are at hand) on `sc`. */
  private send(sc: ServerConn): void {
    this.server = sc;
    sc.owner = this;
    this.st = St.Forward;
    this.resp = null;
    this.respStarted = false;
    this.respBytesSeen = false;
    this.respHead.reset();
    const s = sc.socket;
    const head = this.outHead;
    this.bytesIn += head.length;
    if (this.held.length === 0) {
      if (typeof head === "string") s.write(head, "latin1");
      else s.write(head);
      return;
    }
    // Body bytes (or a pipelined request) at hand: head and body leave together.
    s.cork();
    if (typeof head === "string") s.write(head, "latin1");
    else s.write(head);
    const held = this.takeHeld();
    if (held) {
      if (this.reqDone) this.hold(held);
      else this.forwardBody(held, 0);
    }
    if (this.st === St.Forward && this.server === sc) s.uncork();
  }

  private forwardBody(d: Buffer, off: number): void {
    const e = this.reqFramer.feed(d, off);
    if (e === BAD) {
      this.fail(400, `bad request body: ${this.reqFramer.error}`);
      return;
    }
    const sc = this.server!;
    const end = e === MORE ? d.length : e;
    if (end > off) {
      const part = off === 0 && end === d.length ? d : d.subarray(off, end);
      this.bytesIn += part.length;
      if (!sc.socket.write(part)) this.pauseClient();
    }
    if (e !== MORE) {
      this.reqDone = true;
      if (e < d.length) this.hold(d.subarray(e));
    }
  }

  private pauseClient(): void {
    if (!this.pausedClient) {
      this.pausedClient = true;
      this.sock.pause();
    }
  }

  private resumeClient(): void {
    if (this.pausedClient) {
      this.pausedClient = false;
      if (!this.pausedHeld) this.sock.resume();
    }
  }

  onServerDrain(): void {
    this.resumeClient();
  }

  private onClientDrain(): void {
    if (this.pausedServer) {
      this.pausedServer = false;
      this.server?.socket.resume();
    }
  }

  private writeClient(d: Buffer | string): void {
    const sock = this.sock;
    let ok: boolean;
    const rd = ServerReader.current;
    if (typeof d === "string") ok = sock.write(d, "latin1");
    else if (rd !== null && rd.readBuf !== null && d.buffer === rd.readBuf.buffer) {
      // Bytes of the server's current read (see ServerReader). A TLS socket encrypts (or copies) what it is
      // given inside write() when nothing is queued before it; a plain socket keeps a reference to whatever
      // part the kernel did not take at once.
      const before = sock.writableLength;
      const direct = this.ctx.tls && before === 0 && sock.writableCorked === 0;
      if (direct) ok = sock.write(d);
      else if (!rd.readShared) {
        ok = sock.write(d);
        if (sock.writableLength > before) rd.lend();
      } else if (d.length <= SMALL_COPY) ok = sock.write(Buffer.from(d));
      else {
        // The shared read buffer must stay free: write a copy in a recycled buffer, kept by the write only if
        // it was queued.
        const b = takeBuf();
        d.copy(b);
        ok = sock.write(b.subarray(0, d.length));
        if (sock.writableLength <= before) giveBuf(b);
      }
    } else ok = sock.write(d);
    this.bytesOut += d.length;
    if (!ok && this.server && !this.pausedServer) {
      this.pausedServer = true;
      this.server.socket.pause();
    }
  }

  // ---------------------------------------------------------------- server side

  onServerData(sc: ServerConn, d: Buffer): void {
    if (sc !== this.server) {
      sc.socket.destroy();
      return;
    }
    if (this.st === St.Tunnel) {
      this.writeClient(d);
      return;
    }
    if (this.st !== St.Forward) {
      // Bytes from the server between requests: it is not speaking HTTP/1.1 keep-alive properly.
      this.detachServer(true);
      return;
    }
    this.respBytesSeen = true;
    let off = 0;
    for (;;) {
      if (this.resp === null) {
        const r = this.respHead.push(d, off, false);
        if (r === null) return;
        if (r === "too-large") {
          this.badGateway("response head too large");
          return;
        }
        const s = r.buf.toString("latin1", r.start, r.end);
        const resp = parseResponseHead(s, this.req!.isHead, this.ctx.respOpts);
        if (isHttpError(resp)) {
          this.badGateway(resp.reason);
          return;
        }
        const restBuf = r.buf;
        const restStart = r.end;
        const restEnd = r.restEnd;
        if (resp.status < 200) {
          if (resp.status === 101) {
            if (!this.req!.upgrade) {
              this.badGateway("101 Switching Protocols without an Upgrade request");
              return;
            }
            this.writeClient(r.buf.subarray(r.start, r.end));
            this.respStarted = true;
            this.startTunnel(restStart < restEnd ? restBuf.subarray(restStart, restEnd) : null);
            return;
          }
          // 100 Continue and other interim responses go to the client as they are; the final one follows.
          this.writeClient(r.buf.subarray(r.start, r.end));
          this.respHead.reset();
          if (restStart >= restEnd) return;
          d = restBuf.subarray(restStart, restEnd);
          off = 0;
          continue;
        }
        this.resp = resp;
        this.respStarted = true;
        this.respFramer.start(resp.body, resp.length);
        // The head goes out in one write with the body bytes that came with it (a small response: one write).
        const e = resp.body === Body.None ? restStart : this.respFramer.feed(restBuf, restStart);
        if (e === BAD) {
          this.writeResponseHead(s, restBuf, r.start, r.end, resp, restStart);
          this.destroy(`bad chunked response from the server: ${this.respFramer.error}`);
          return;
        }
        this.writeResponseHead(s, restBuf, r.start, r.end, resp, e === MORE ? restEnd : e);
        if (e !== MORE) {
          if (e < restEnd) resp.keepAlive = false; // bytes after the response: not reusable
          this.responseComplete(false);
        }
        return;
      }
      const e = this.respFramer.feed(d, off);
      if (e === BAD) {
        // Already partly sent: the client cannot be told; cut both.
        this.destroy(`bad chunked response from the server: ${this.respFramer.error}`);
        return;
      }
      const end = e === MORE ? d.length : e;
      if (end > off) this.writeClient(off === 0 && end === d.length ? d : d.subarray(off, end));
      if (e !== MORE) {
        if (e < d.length) this.resp.keepAlive = false;
        this.responseComplete(false);
      }
      return;
    }
  }

  /** Writes the response head buf[start, end) (rewritten where needed) and the body bytes buf[end, bodyEnd). */
  private writeResponseHead(s: string, buf: Buffer, start: number, end: number, resp: ResponseHead, bodyEnd: number): void {
    const ctx = this.ctx;
    const addHsts = ctx.hstsLine !== "" && !resp.hasHsts;
    // The server keeps its connection (it goes back to the pool) but the client's ends after this response
    // (it asked to close, or the process drains): the head says so, as HAProxy's does. Passing on the server's
    // keep-alive would invite the client to send its next request on a connection we are closing.
    const closing = resp.keepAlive && (!this.req!.keepAlive || this.clientEnded || ctx.vip.draining);
    if (!addHsts && !resp.edits && !closing) {
      this.writeClient(buf.subarray(start, bodyEnd));
      return;
    }
    if (!resp.edits && !closing) {
      // Only HSTS to add: the head's bytes, the line, the blank line.
      this.hstsTail ??= Buffer.from(`${ctx.hstsLine}\r\n`, "latin1");
      const t = this.hstsTail;
      const head = end - 2 - start;
      const inline = inlineEnd(end, bodyEnd);
      const out = Buffer.allocUnsafe(head + t.length + inline - end);
      buf.copy(out, 0, start, end - 2);
      t.copy(out, head);
      this.writeHeadAndBody(out, head + t.length, buf, end, inline, bodyEnd);
      return;
    }
    let out = resp.edits ? applyEdits(s, resp.edits) : s;
    if (closing) out = withConnectionClose(out);
    if (addHsts) out = out.slice(0, out.length - 2) + ctx.hstsLine + "\r\n";
    const inline = inlineEnd(end, bodyEnd);
    const b = Buffer.allocUnsafe(out.length + inline - end);
    b.write(out, 0, "latin1");
    this.writeHeadAndBody(b, out.length, buf, end, inline, bodyEnd);
  }

  /**
   * `out` holds a rebuilt response head in its first `headLen` bytes and room for the body bytes buf[end, inline)
   * after it: head and a small body part leave in one write (on TLS one record: two writes were two records in
   * two TCP segments, and the client woke up for each); the rest, buf[inline, bodyEnd), follows as it is.
   */
  private writeHeadAndBody(out: Buffer, headLen: number, buf: Buffer, end: number, inline: number, bodyEnd: number): void {
    buf.copy(out, headLen, end, inline);
    this.writeClient(out);
    if (bodyEnd > inline) this.writeClient(buf.subarray(inline, bodyEnd));
  }

  private startTunnel(rest: Buffer | null): void {
    this.st = St.Tunnel;
    this.setDeadline(Dl.None, 0);
    if (rest) this.writeClient(rest);
    const held = this.takeHeld();
    if (held && this.server) {
      this.bytesIn += held.length;
      this.server.socket.write(held);
    }
    this.resumeClient();
  }

  /** The current response is complete: keep both connections, or close what must close. */
  private responseComplete(byClose: boolean): void {
    const resp = this.resp!;
    const req = this.req!;
    const sc = this.server;
    this.flushBytes();
    if (!this.reqDone) {
      // The server answered before the request body ended (an early error, say): the rest of the body would
      // be read as a next request on both sides, so both connections end here.
      if (sc) this.detachServer(true);
      this.closeGracefully("response before the request body ended");
      return;
    }
    if (sc) {
      if (resp.keepAlive && !byClose && sc.usable) sc.reused = true;
      else this.detachServer(true);
    }
    if (!req.keepAlive || !resp.keepAlive || byClose || this.clientEnded || this.ctx.vip.draining) {
      if (this.server) this.detachServer(false); // clean and idle: the next client's
      this.closeGracefully("done");
      return;
    }
    this.nextRequest();
  }

  private nextRequest(): void {
    this.st = St.Head;
    this.req = null;
    this.resp = null;
    this.respStarted = false;
    this.setDeadline(Dl.Idle, this.ctx.keepAliveMs);
    const held = this.takeHeld();
    if (held) this.readHead(held, 0);
  }

  onServerClose(sc: ServerConn): void {
    if (sc !== this.server) return;
    this.server = null;
    if (this.pausedServer) this.pausedServer = false;
    switch (this.st) {
      case St.Tunnel:
        this.closeGracefully("server closed the tunnel");
        return;
      case St.Forward:
        break;
      default:
        return; // idle between requests: the next request takes another connection
    }
    if (this.resp && this.resp.body === Body.Close) {
      this.responseComplete(true);
      return;
    }
    if (this.respStarted) {
      this.destroy(`server closed mid-response${sc.error ? ` (${(sc.error as NodeJS.ErrnoException).code})` : ""}`);
      return;
    }
    // The server closed before any answer: a reused keep-alive connection it closed as we sent (any method
    // without a body), or a server that died with the request (idempotent methods): send it again on a new
    // connection (see resendOrBadGateway: the second time to another server).
    this.resendOrBadGateway(sc.reused, `server closed the connection before a response${sc.error ? ` (${(sc.error as NodeJS.ErrnoException).code})` : ""}`, sc.backend.name);
  }

  onServerTimeout(sc: ServerConn): void {
    if (sc !== this.server) {
      sc.socket.destroy();
      return;
    }
    if (this.st === St.Forward) {
      if (!this.respStarted) {
        this.detachServer(true);
        this.fail(504, "the server did not answer in time");
      } else this.destroy("server timeout mid-response");
    } else if (this.st === St.Tunnel) {
      this.destroy("tunnel idle timeout");
    } else this.detachServer(true);
  }

  private badGateway(reason: string): void {
    this.detachServer(true);
    if (this.respStarted) this.destroy(reason);
    else this.fail(502, reason);
  }

  /** Lets go of the server connection: destroyed, or back to the pool when it is clean and idle. */
  private detachServer(destroy: boolean): void {
    const sc = this.server;
    if (!sc) return;
    this.server = null;
    sc.owner = null;
    if (this.pausedServer) {
      this.pausedServer = false;
      sc.socket.resume();
    }
    if (destroy) sc.socket.destroy();
    else this.ctx.pool.put(sc, Date.now());
  }

  /** Between requests, the attached server connection is clean: pool it. */
  private releaseServer(): void {
    const sc = this.server;
    if (!sc) return;
    const clean = this.st === St.Head && sc.reused && sc.usable;
    this.detachServer(!clean);
  }

  // ---------------------------------------------------------------- answers of our own

  private redirect(req: RequestHead, rest: Buffer | null): void {
    const port = this.ctx.redirectPort!;
    let host = req.host && req.host !== "" ? req.host : this.ctx.listener.address;
    if (host.startsWith("[")) host = host.slice(0, host.indexOf("]") + 1);
    else if (host.includes(":") && host.indexOf(":") === host.lastIndexOf(":")) host = host.slice(0, host.indexOf(":"));
    else if (host.includes(":")) host = `[${host}]`;
    const location = `https://${host}${port === 443 ? "" : `:${port}`}${req.path}`;
    const keep = req.keepAlive && req.body === Body.None;
    const body = `Moved to ${location}\n`;
    this.writeClient(
      `HTTP/1.1 301 Moved Permanently\r\nLocation: ${location}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n` +
        `${keep ? "" : "Connection: close\r\n"}\r\n${req.isHead ? "" : body}`,
    );
    if (!keep) {
      this.closeGracefully("redirected");
      return;
    }
    if (rest) this.hold(rest);
    this.nextRequest();
  }

  /** Answers with an error of our own (if nothing of a response went out yet) and closes. */
  private fail(status: number, reason: string): void {
    if (this.st === St.Closing || this.st === St.Closed) return;
    const ctx = this.ctx;
    ctx.vip.log({
      event: "http-error",
      status,
      reason,
      client: this.addr,
      vip: ctx.vipName,
      port: ctx.port,
      server: this.backend?.name ?? null,
    });
    if (this.server) this.detachServer(this.st !== St.Head || !this.server.reused);
    if (this.respStarted) {
      this.destroy(reason);
      return;
    }
    const text = STATUS_TEXT[status] ?? "Error";
    const body = `${status} ${text}\n`;
    this.writeClient(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n` +
        `${ctx.hstsLine}Cache-Control: no-store\r\n\r\n${body}`,
    );
    this.respStarted = true;
    this.closeGracefully(`${status}: ${reason}`);
  }

  // ---------------------------------------------------------------- the end

  /** Sends FIN after what is queued, discards what the client still sends, cuts after a short grace. */
  private closeGracefully(reason: string): void {
    if (this.st === St.Closing || this.st === St.Closed) return;
    if (!this.reason) this.reason = reason;
    if (this.server) this.releaseServer();
    this.st = St.Closing;
    this.held = [];
    this.heldBytes = 0;
    this.pausedClient = false;
    this.pausedHeld = false;
    this.sock.resume();
    this.sock.end();
    this.setDeadline(Dl.Closing, CLOSE_GRACE_MS);
  }

  destroy(reason: string): void {
    if (this.st === St.Closed) return;
    if (!this.reason) this.reason = reason;
    if (this.server) this.detachServer(true);
    this.sock.destroy();
  }

  private onClose(): void {
    if (this.st === St.Closed) return;
    const wasHead = this.st === St.Head;
    this.st = St.Closed;
    unwatch(this);
    this.deadline = 0;
    if (this.server) {
      // Idle between requests and clean: the next client can use it.
      const sc = this.server;
      this.server = null;
      sc.owner = null;
      if (wasHead && sc.reused && sc.usable) this.ctx.pool.put(sc, Date.now());
      else sc.socket.destroy();
    }
    this.endSession();
    const ctx = this.ctx;
    ctx.vip.log({
      event: "http-connection",
      client: this.addr,
      vip: ctx.vipName,
      port: ctx.port,
      tls: ctx.tls,
      server: this.backend?.name ?? null,
      requests: this.requests,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Date.now() - this.started,
      reason: this.reason || (wasHead ? "client closed" : "client closed mid-request"),
    });
  }
}

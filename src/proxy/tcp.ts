/**
 * TCP mode: a byte pipe between the client and a real server. Full duplex with backpressure (on the TCP
 * handles, tcp-handles.ts; on the sockets' streams when Node lacks the binding or the operator says so),
 * half-close passed through (FIN one way, the other way keeps flowing), idle timeouts on both sides,
 * bytes counted from the sockets' own counters (no per-chunk work), optional PROXY v2 header, and one JSON
 * log line per closed connection.
 */
import type { Socket } from "node:net";
import { isIPv4 } from "node:net";
import type { Listener } from "../config";
import { HandlerFactory, NoServerError, SessionHandle, VipRuntime } from "./contract";
import { giveBuf, nextReadSize, readBuffer, RELAY_HIGH_WATER, SMALL_READ } from "./buffers";
import type { ByteMeter } from "./pool";
import { relayOnHandles, tcpHandle, tcpRelay } from "./tcp-handles";

/** The binary PROXY protocol v2 header for a TCP connection (HAProxy's proxy-protocol.txt, section 2.2). */
export function proxyV2Header(srcAddr: string, srcPort: number, dstAddr: string, dstPort: number): Buffer {
  const src = unmapV4(srcAddr);
  const dst = unmapV4(dstAddr);
  const v4 = isIPv4(src) && isIPv4(dst);
  const addrLen = v4 ? 12 : 36;
  const buf = Buffer.alloc(16 + addrLen);
  SIGNATURE.copy(buf, 0);
  buf[12] = 0x21; // version 2, command PROXY
  buf[13] = v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  buf.writeUInt16BE(addrLen, 14);
  if (v4) {
    writeV4(buf, 16, src);
    writeV4(buf, 20, dst);
    buf.writeUInt16BE(srcPort, 24);
    buf.writeUInt16BE(dstPort, 26);
  } else {
    writeV6(buf, 16, isIPv4(src) ? `::ffff:${src}` : src);
    writeV6(buf, 32, isIPv4(dst) ? `::ffff:${dst}` : dst);
    buf.writeUInt16BE(srcPort, 48);
    buf.writeUInt16BE(dstPort, 50);
  }
  return buf;
}

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function unmapV4(a: string): string {
  return a.startsWith("::ffff:") && isIPv4(a.slice(7)) ? a.slice(7) : a;
}

function writeV4(buf: Buffer, at: number, a: string) {
  const p = a.split(".");
  for (let i = 0; i < 4; i++) buf[at + i] = Number(p[i]);
}

function writeV6(buf: Buffer, at: number, a: string) {
  let s = a;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const p = v4.slice(1).map(Number);
    s = s.slice(0, v4.index) + (((p[0] << 8) | p[1]).toString(16) + ":" + ((p[2] << 8) | p[3]).toString(16));
  }
  const parts = s.split("::");
  const head = parts[0] ? parts[0].split(":") : [];
  const tail = parts.length > 1 && parts[1] ? parts[1].split(":") : [];
  const groups = [...head, ...new Array(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail];
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(parseInt(groups[i] ?? "0", 16) & 0xffff, at + i * 2);
}

/** Why a connection ended, for the log line. */
type Reason =
  | "client-closed" | "server-closed" | "client-idle" | "server-idle" | "client-error" | "server-error"
  | "server-down" | "no-server" | "shutdown";

export const createTcpHandler: HandlerFactory = (listener: Listener, vip: VipRuntime) => {
  const port = listener.port;
  return (client: Socket) => {
    // Data the client sends before the server answers stays in the socket until the pipe starts.
    const start = Date.now();
    const clientIp = unmapV4(client.remoteAddress ?? "");
    const clientPort = client.remotePort ?? 0;
    client.setNoDelay(true);
    client.on("error", onEarlyError);
    let early: Reason | undefined;
    function onEarlyError() {
      early = "client-error";
      client.destroy();
    }
    const cfg = vip.config;
    // The relay on the handles (tcp-handles.ts); without the binding (or CTERA_LB_TCP_RELAY=streams) on the
    // sockets' streams, with the server->client reads into our own buffers (ServerToClient).
    const sink = tcpRelay.mode === "handles" && tcpHandle(client) ? undefined : new ServerToClient(client);
    vip.connect(clientIp, port, sink?.onread).then(
      ({ socket: server, backend }) => {
        client.off("error", onEarlyError);
        if (early || client.destroyed) {
          server.destroy();
          logLine(vip, clientIp, clientPort, port, backend.name, 0, 0, start, early ?? "client-closed");
          return;
        }
        pipe(vip, cfg, client, server, sink, backend.name, clientIp, clientPort, port, start, (close, meter) =>
          (backend as unknown as { openSession(c: () => void, m?: ByteMeter): SessionHandle }).openSession(close, meter),
        );
      },
      (e: Error) => {
        client.off("error", onEarlyError);
        client.on("error", () => undefined);
        client.destroy();
        logLine(vip, clientIp, clientPort, port, null, 0, 0, start, e instanceof NoServerError ? "no-server" : "server-error", e.message);
      },
    );
  };
};

function pipe(
  vip: VipRuntime,
  cfg: VipRuntime["config"],
  client: Socket,
  server: Socket,
  sink: ServerToClient | undefined,
  serverName: string,
  clientIp: string,
  clientPort: number,
  port: number,
  start: number,
  open: (close: () => void, meter: ByteMeter) => SessionHandle,
) {
  let reason: Reason | undefined;
  let detail: string | undefined;
  let closedSockets = 0;
  let headerBytes = 0;
  /** The handle relay's clean-up, run once both sockets have closed. */
  let relayDone: (() => void) | undefined;
  const finish = (r: Reason, d?: string) => {
    if (!reason) {
      reason = r;
      detail = d;
    }
  };
  const kill = (r: Reason, d?: string) => {
    finish(r, d);
    client.destroy();
    server.destroy();
  };
  const meter: ByteMeter = () => [client.bytesRead, server.bytesRead];
  const session = open(() => kill("server-down"), meter);

  if (cfg.clientIp === "proxy-v2") {
    const h = proxyV2Header(clientIp, clientPort, client.localAddress ?? "0.0.0.0", client.localPort ?? port);
    headerBytes = h.length;
    server.write(h);
  }
  server.setNoDelay(true);
  client.on("error", (e: NodeJS.ErrnoException) => kill("client-error", e.code ?? e.message));
  server.on("error", (e: NodeJS.ErrnoException) => kill("server-error", e.code ?? e.message));
  const onClose = () => {
    if (++closedSockets === 1) {
      // One side is fully gone (closed by its peer, an error, or the proxy closing its client sockets): the
      // other cannot deliver anything more to it; finish writing, then close — also when its peer goes on
      // sending (a server streaming to a client that is gone would otherwise hold the connection open). The
      // idle timeout still runs while that last write waits.
      for (const s of [client, server]) if (!s.destroyed) s.end(() => s.destroy());
      return;
    }
    relayDone?.();
    session.end();
    logLine(vip, clientIp, clientPort, port, serverName, client.bytesRead, server.bytesRead, start, reason ?? "client-closed", detail, headerBytes);
  };
  client.on("close", onClose);
  server.on("close", onClose);
  const idle = { clientMs: cfg.timeouts.clientIdleSeconds * 1000, serverMs: cfg.timeouts.serverIdleSeconds * 1000 };
  if (!sink && tcpHandle(server)) {
    relayDone = relayOnHandles(client, server, idle, { finish, kill });
    return;
  }
  client.setTimeout(idle.clientMs, () => kill("client-idle"));
  server.setTimeout(idle.serverMs, () => kill("server-idle"));
  // FIN from one side: relay() ends the other side's writable half; the reverse direction keeps flowing.
  client.on("end", () => finish("client-closed"));
  server.on("end", () => finish("server-closed"));
  relay(client, server);
  if (sink) sink.attach(server);
  else relay(server, client);
}

/**
 * Read buffers for the server->client direction are sized by what the connection is doing (buffers.ts
 * nextReadSize): pooled 64 KiB buffers while a bulk transfer fills them, a 4 KiB one of its own once the
 * connection is quiet — 64 MiB per 1000 idle CTTP sessions would otherwise be 4 MiB.
 */
/**
 * The server->client direction without a fresh buffer per read: the server socket reads (onread) into a
 * reused buffer; each read is written to the client at once. Usually the write completes synchronously; when
 * it is queued instead (client writableLength grew, so the queue references our buffer), the buffer is lent
 * to the queue (a big one back to the pool when the queue drains) and the next read takes another.
 */
export class ServerToClient {
  private cur: Buffer | undefined;
  /** The size the next read buffer should have. */
  private want = SMALL_READ;
  private server: Socket | undefined;
  private pending: Buffer[] | undefined;
  /** Buffers held by queued writes to the client, back to the pool when the queue drains. */
  private lent: Buffer[] | undefined;
  readonly onread: { buffer: () => Buffer; callback: (nread: number, buf: Uint8Array) => boolean };

  constructor(private readonly client: Socket) {
    this.onread = {
      buffer: () => this.nextBuffer(),
      callback: (nread, buf) => this.onRead(nread, buf as Buffer),
    };
  }

  /** The buffer the next read goes into (Node keeps it while the connection is idle). */
  private nextBuffer(): Buffer {
    const cur = this.cur;
    if (cur && cur.length === this.want) return cur;
    if (cur) giveBuf(cur);
    return (this.cur = readBuffer(this.want));
  }

  /** Read buffers currently lent to queued writes (tests: bounded by what is still queued). */
  get lentBuffers(): number {
    return this.lent?.length ?? 0;
  }

  private release(): void {
    for (const b of this.lent!) giveBuf(b);
    this.lent = undefined;
  }

  /** Bytes currently held in read buffers by this connection (tests: an idle session holds the small one). */
  get heldBytes(): number {
    return this.cur?.length ?? 0;
  }

  private onRead(nread: number, buf: Buffer): boolean {
    this.want = nextReadSize(nread, buf.length);
    const client = this.client;
    if (!this.server) {
      // Bytes before the pipe is attached (not expected: the pipe attaches in the connect's continuation).
      (this.pending ??= []).push(Buffer.from(buf.subarray(0, nread)));
      return true;
    }
    if (client.destroyed) return true;
    // The queue flushed without a 'drain' (a write that queued below the high-water mark emits none): the
    // buffers it held are free again. Without this a long session would keep every lent buffer alive.
    if (this.lent && client.writableLength === 0) this.release();
    const before = client.writableLength;
    // No write callback (it costs ~1.5 µs of user time per relayed read, measured with a minimal relay):
    // a write that completed at once leaves buf to this reader; a queued one lends buf to the client's
    // queue until it has flushed ('drain', below). Whoever owns buf gives it back, once.
    client.write(buf.subarray(0, nread));
    if (client.writableLength > before) {
      (this.lent ??= []).push(buf);
      this.cur = undefined;
    }
    return client.writableLength <= RELAY_HIGH_WATER;
  }

  attach(server: Socket) {
    this.server = server;
    const client = this.client;
    if (this.pending) {
      for (const b of this.pending) client.write(b);
      this.pending = undefined;
    }
    client.on("drain", () => {
      // The queue is empty: every write that held a lent buffer has completed. (A queued write below the
      // socket's high-water mark emits no 'drain'; onRead frees its buffer once the queue is empty.)
      if (this.lent) this.release();
      server.resume();
    });
    server.on("end", () => {
      if (!client.destroyed) client.end();
    });
  }
}

/** One direction of the pipe: write what arrives, pause the reader while the writer's buffer is full, pass
 * the FIN on. Lighter than stream.pipe (no per-chunk bookkeeping beyond the write itself). */
function relay(from: Socket, to: Socket) {
  from.on("data", (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on("drain", () => from.resume());
  from.on("end", () => {
    if (!to.destroyed) to.end();
  });
}

function logLine(
  vip: VipRuntime,
  clientIp: string,
  clientPort: number,
  port: number,
  server: string | null,
  bytesIn: number,
  bytesOut: number,
  start: number,
  reason: string,
  detail?: string,
  _headerBytes = 0,
) {
  vip.log({
    event: "connection",
    client: clientIp,
    clientPort,
    vip: vip.config.name,
    port,
    server,
    bytesIn,
    bytesOut,
    durationMs: Date.now() - start,
    reason,
    ...(detail ? { detail } : {}),
  });
}

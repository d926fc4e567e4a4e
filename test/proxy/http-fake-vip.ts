/**
 * Test fixtures for the HTTP engine alone: a VipRuntime over loopback backends (plain net.connect, source-IP
 * persistence in a Map, first UP server otherwise), the engine on a net.Server of the test's own, origin
 * servers that count their accepts, and small raw-socket clients.
 */
import * as net from "node:net";
import * as http from "node:http";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { VirtualServiceSchema } from "../../src/config";
import type { Listener, VirtualService } from "../../src/config";
import { NoServerError } from "../../src/proxy/contract";
import type { Backend, ServerState, SessionHandle, VipRuntime } from "../../src/proxy/contract";
import { createHttpHandler, closeIdleServerConnections } from "../../src/proxy/http";

export class FakeBackend implements Backend {
  readonly vip = "TEST";
  state: ServerState = "UP";
  weight = 100;
  sessionsOpen = 0;
  sessionsTotal = 0;
  bytesToServer = 0;
  bytesToClient = 0;
  private closers = new Set<() => void>();
  constructor(
    readonly name: string,
    readonly address: string,
    readonly port?: number,
  ) {}
  targetPort(listenerPort: number): number {
    return this.port ?? listenerPort;
  }
  openSession(close: () => void): SessionHandle {
    this.sessionsOpen++;
    this.sessionsTotal++;
    this.closers.add(close);
    let ended = false;
    return {
      addBytes: (a, b) => {
        this.bytesToServer += a;
        this.bytesToClient += b;
      },
      end: () => {
        if (ended) return;
        ended = true;
        this.sessionsOpen--;
        this.closers.delete(close);
      },
    };
  }
  /** shutdown-sessions, as the core does when a server goes DOWN. */
  shutdownSessions(): void {
    for (const c of [...this.closers]) c();
  }
}

export class FakeVip implements VipRuntime {
  config: VirtualService;
  readonly pins = new Map<string, string>();
  readonly logs: Record<string, unknown>[] = [];
  connects = 0;
  constructor(
    readonly backends: FakeBackend[],
    vs: Partial<Record<string, unknown>> = {},
  ) {
    this.config = VirtualServiceSchema.parse({
      name: "TEST",
      mode: "http",
      listeners: [{ address: "127.0.0.1", port: 1 }],
      realServers: backends.map((b) => ({ name: b.name, address: b.address, ...(b.port ? { port: b.port } : {}) })),
      healthCheck: { type: "connect" },
      clientIp: "x-forwarded-for",
      ...vs,
    });
  }
  choose(clientIp: string): Backend | undefined {
    const pinned = this.backends.find((b) => b.name === this.pins.get(clientIp));
    if (pinned && pinned.state === "UP") return pinned;
    return this.backends.find((b) => b.state === "UP");
  }
  /** Honour `onread` as the real VipRuntime does (false: ignore it, as the contract allows). */
  useOnread = true;
  async connect(clientIp: string, listenerPort: number, onread?: net.OnReadOpts): Promise<{ socket: net.Socket; backend: Backend }> {
    this.connects++;
    const b = this.choose(clientIp) as FakeBackend | undefined;
    if (!b) throw new NoServerError(this.config.name);
    const socket = await this.connectBackend(b, listenerPort, onread);
    this.pins.set(clientIp, b.name);
    return { socket, backend: b };
  }
  connectBackend(backend: Backend, listenerPort: number, onread?: net.OnReadOpts): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({
        host: backend.address,
        port: backend.targetPort(listenerPort),
        allowHalfOpen: true,
        ...(onread && this.useOnread ? { onread } : {}),
      });
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(s);
      });
    });
  }
  log(record: Record<string, unknown>): void {
    this.logs.push(record);
  }
  draining = false;
  pin(clientIp: string, backend: Backend): void {
    this.pins.set(clientIp, backend.name);
  }
}

/** The engine listening on address:port for `vip` (a net.Server with the core's options). */
export async function listenEngine(vip: FakeVip, listener: Listener): Promise<net.Server & { handler: (s: net.Socket) => void }> {
  const srv = net.createServer({ allowHalfOpen: true, noDelay: true }) as net.Server & { handler: (s: net.Socket) => void };
  srv.handler = createHttpHandler(listener, vip);
  const open = new Set<net.Socket>();
  srv.on("connection", (s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
    srv.handler(s);
  });
  await new Promise<void>((r) => srv.listen(listener.port, listener.address, r));
  const close = srv.close.bind(srv);
  (srv as { close: (cb?: (err?: Error) => void) => net.Server }).close = (cb) => {
    for (const s of open) s.destroy();
    // Shortly after the client sockets closed (and gave their server connections back to the pool), the
    // pool is emptied.
    return close((err) => {
      setTimeout(() => {
        closeIdleServerConnections(vip);
        cb?.(err);
      }, 20);
    });
  };
  return srv;
}

export interface Origin {
  server: http.Server;
  accepts: number;
  address: string;
  port: number;
  /** Requests seen: method, url, headers, body bytes. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[]; bodyBytes: number }[];
  close(): Promise<void>;
}

/**
 * An origin (node:http, keep-alive) that answers JSON naming itself and what it got, unless `handler`
 * takes the request (return true when handled).
 */
export async function startOrigin(
  name: string,
  address: string,
  port: number,
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean | void,
): Promise<Origin> {
  const o: Origin = { server: undefined as unknown as http.Server, accepts: 0, address, port, seen: [], close: async () => undefined };
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const keep = req.url !== "/count-only";
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (keep && n < 1 << 20) chunks.push(c);
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      o.seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: n });
      if (handler && handler(req, res, body)) return;
      const out = JSON.stringify({ server: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: n, body: body.length < 256 ? body.toString() : "" });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
      res.end(out);
    });
  });
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => {
    o.accepts++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, address, r));
  o.server = server;
  o.port = (server.address() as AddressInfo).port;
  o.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return o;
}

export interface RawResponse {
  status: number;
  head: string;
  headers: Record<string, string[]>;
  body: Buffer;
}

/** Parses one response (Content-Length or chunked or until close) from `buf`; returns it and the bytes used, or null. */
export function parseOneResponse(buf: Buffer, headRequest = false): { res: RawResponse; used: number } | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = buf.toString("latin1", 0, end);
  const lines = head.split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers: Record<string, string[]> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    const k = l.slice(0, i).toLowerCase();
    (headers[k] ??= []).push(l.slice(i + 1).trim());
  }
  let p = end + 4;
  if (headRequest || status < 200 || status === 204 || status === 304) return { res: { status, head, headers, body: Buffer.alloc(0) }, used: p };
  if (headers["transfer-encoding"]) {
    const parts: Buffer[] = [];
    for (;;) {
      const e = buf.indexOf("\r\n", p);
      if (e < 0) return null;
      const size = parseInt(buf.toString("latin1", p, e), 16);
      if (e + 2 + size + 2 > buf.length) return null;
      parts.push(buf.subarray(e + 2, e + 2 + size));
      p = e + 2 + size + 2;
      if (size === 0) return { res: { status, head, headers, body: Buffer.concat(parts) }, used: p };
    }
  }
  if (headers["content-length"]) {
    const n = Number(headers["content-length"][0]);
    if (buf.length < p + n) return null;
    return { res: { status, head, headers, body: buf.subarray(p, p + n) }, used: p + n };
  }
  return null; // until close: the caller decides
}

/** A raw client connection: send bytes, read responses one by one. */
export class RawClient {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  private ready: Promise<void>;
  constructor(port: number, host: string, localAddress?: string, tlsOptions?: tls.ConnectionOptions) {
    this.socket = tlsOptions
      ? tls.connect({ port, host, localAddress, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"], ...tlsOptions })
      : net.connect({ port, host, localAddress });
    this.ready = new Promise((r, j) => {
      this.socket.once(tlsOptions ? "secureConnect" : "connect", () => r());
      this.socket.once("error", j);
    });
    this.socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.socket.on("error", () => undefined);
    this.socket.on("end", () => {
      this.closed = true;
      this.wake();
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }
  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  async connected(): Promise<this> {
    await this.ready;
    return this;
  }
  send(data: string | Buffer): void {
    this.socket.write(data);
  }
  /** The next complete response (or rejects after timeoutMs / on close without one). */
  async response(opts: { headRequest?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    for (;;) {
      const r = parseOneResponse(this.buf, opts.headRequest);
      if (r) {
        this.buf = this.buf.subarray(r.used);
        return r.res;
      }
      if (this.closed) {
        const end = this.buf.indexOf("\r\n\r\n");
        if (end >= 0) {
          // a close-delimited body
          const head = this.buf.toString("latin1", 0, end);
          const status = Number(head.split(" ")[1]);
          const body = this.buf.subarray(end + 4);
          this.buf = Buffer.alloc(0);
          return { status, head, headers: {}, body };
        }
        throw new Error(`connection closed without a complete response (${this.buf.length} bytes: ${JSON.stringify(this.buf.toString("latin1").slice(0, 200))})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete response in time (${this.buf.length} bytes buffered)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /** Resolves when the proxy closed the connection (or rejects after timeoutMs). */
  async whenClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("connection still open");
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  /** Bytes received and not yet consumed. */
  get pending(): Buffer {
    return this.buf;
  }
  close(): void {
    this.socket.destroy();
  }
}

export function json(r: RawResponse): Record<string, unknown> & { headers: Record<string, string> } {
  return JSON.parse(r.body.toString());
}

/** Polls `pred` until true (or throws after timeoutMs). */
export async function waitFor(pred: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

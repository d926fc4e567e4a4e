/**
 * The boundary between the proxy's core (listeners, pool, balancing, persistence, health, workers) and its
 * mode handlers (tcp byte pipe, http/1.1 engine). A handler never sees the balancer's insides; the core never
 * parses a byte of application data. No @pulumi import anywhere under src/proxy.
 */
import type { OnReadOpts, Socket } from "node:net";
import type { Listener, VirtualService } from "../config";

/** UP/DOWN come from health checks; DRAIN/HALT are the operator's (DRAIN: no new clients, open ones stay;
 * HALT: no new clients and open connections closed). */
export type ServerState = "UP" | "DOWN" | "DRAIN" | "HALT";

/** One real server of one VIP, as this process sees it. */
export interface Backend {
  readonly vip: string;
  readonly name: string;
  readonly address: string;
  readonly weight: number;
  readonly state: ServerState;
  /** The port to connect to when the client hit `listenerPort` (port translation when the server sets one). */
  targetPort(listenerPort: number): number;
  /** Count a session on this backend (leastconn, status, metrics); the returned function ends it. `close` is
   * called by the core when the server goes DOWN or HALT (shutdown-sessions). */
  openSession(close: () => void): SessionHandle;
}

export interface SessionHandle {
  /** Add transferred bytes (client→server, server→client) to the backend's counters. */
  addBytes(toServer: number, toClient: number): void;
  end(): void;
}

/** Thrown (rejected) when no real server can take the client: the handler answers 503 or closes fast. */
export class NoServerError extends Error {
  constructor(vip: string, detail = "no real server is up") {
    super(`${vip}: ${detail}`);
    this.name = "NoServerError";
  }
}

/** The live view of one VIP that handlers use. Its `config` is replaced on reload. */
export interface VipRuntime {
  readonly config: VirtualService;
  /**
   * Connects a client to a real server: persistence entry first, then the deterministic first choice
   * (weighted rendezvous hash of clientIp), walking past servers that cannot take new clients, retrying
   * `config.retries` other servers on a refused or timed-out connect. Pins the client to the server that
   * answered. Honours sourceAddress and timeouts.connectMs. Rejects with NoServerError. `avoid`: a server that
   * has just failed this client's request (redispatch): the first choice is the next server in the client's
   * order that takes new clients, when there is one.
   */
  connect(clientIp: string, listenerPort: number, onread?: OnReadOpts, avoid?: string): Promise<{ socket: Socket; backend: Backend }>;
  /** A plain connection to one given backend (no balancing, no retries): for handlers that keep their own
   * keep-alive pool per backend and only need a fresh socket when the pool is empty. */
  connectBackend(backend: Backend, listenerPort: number, onread?: OnReadOpts): Promise<Socket>;
  /** The server this client would get now (without connecting), or undefined when none can take it. */
  choose(clientIp: string): Backend | undefined;
  /** One JSON log line (the core adds time and worker). */
  log(record: Record<string, unknown>): void;
  /**
   * Optional (http engine): remember `clientIp` on `backend` for persistence, as connect() does when it pins.
   * The http engine calls it when a client's request goes out on a pooled keep-alive connection (no connect()
   * happened), so the client's other ports (995) and other workers see the same server. Without it the
   * deterministic first choice still agrees in the common case.
   */
  pin?(clientIp: string, backend: Backend): void;
  /**
   * Optional (http engine): true once the process drains (SIGTERM). Idle keep-alive client connections are
   * then closed at once and busy ones after their current response, instead of waiting out the keep-alive
   * timeout until the drain deadline.
   */
  readonly draining?: boolean;
}

/** Builds the handler for one listener; called again for every listener on each reload (a new closure
 * picks up new TLS files and settings; connections already open keep the one they started with). */
export type HandlerFactory = (listener: Listener, vip: VipRuntime) => (client: Socket) => void;

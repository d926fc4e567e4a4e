/**
 * The admin API (ADMIN_API.md): GET / (status page), /healthz, /api/status, /metrics, and
 * POST /api/servers/<vip>/<server>/drain|halt|online and POST /api/persistence/merge (the HA peer's
 * persistence entries), both with a bearer token compared in constant time.
 * Served by the control plane (the primary). No cookies anywhere.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { AdminConfig } from "../../config";
import type { Control } from "../control";
import { PEER_MAX_BODY_BYTES, PeerMessageError } from "../peer";
import { statusPageHtml } from "./page";

const CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/** Constant-time token check: both sides hashed to 32 bytes first, so lengths leak nothing either. */
export function tokenMatches(expected: string | null, header: string | undefined): boolean {
  if (expected === null || !header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return false;
  const a = createHash("sha256").update(m[1]).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(code, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function adminHandler(control: Control) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://admin.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (path === "/api/persistence/merge") return peerMerge(control, req, res);
    req.resume();
    try {
      const action = /^\/api\/servers\/([^/]+)\/([^/]+)\/(drain|halt|online)$/.exec(path);
      if (action) {
        if (method !== "POST") return send(res, 405, { error: "use POST" }, { allow: "POST" });
        if (control.config.admin.token === null) return send(res, 401, { error: "read-only: no admin token is configured" });
        if (!tokenMatches(control.config.admin.token, req.headers.authorization)) return send(res, 401, { error: "missing or wrong bearer token" }, { "www-authenticate": "Bearer" });
        const vip = decodeURIComponent(action[1]);
        const server = decodeURIComponent(action[2]);
        const state = control.setAdmin(vip, server, action[3] as "drain" | "halt" | "online");
        if (state === undefined) return send(res, 404, { error: `no server '${server}' in VIP '${vip}'` });
        return send(res, 200, { ok: true, vip, server, state });
      }
      const known = ["/", "/healthz", "/api/status", "/metrics"];
      if (!known.includes(path)) return send(res, 404, { error: "not found" });
      if (method !== "GET" && method !== "HEAD") return send(res, 405, { error: "use GET" }, { allow: "GET, HEAD" });
      switch (path) {
        case "/":
          return send(res, 200, statusPageHtml(), { "content-type": "text/html; charset=utf-8", "content-security-policy": CSP, "x-frame-options": "DENY", "referrer-policy": "no-referrer" });
        case "/healthz":
          if (control.draining) return send(res, 503, { ok: false, draining: true });
          if (control.starting) return send(res, 503, { ok: false, starting: true });
          return send(res, 200, { ok: true });
        case "/api/status":
          return send(res, 200, control.status());
        case "/metrics":
          return send(res, 200, control.metrics(), { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      }
    } catch (e) {
      send(res, 500, { error: (e as Error).message });
    }
  };
}

/**
 * POST /api/persistence/merge: the HA peer's persistence entries (src/proxy/peer.ts). Bearer admin token,
 * JSON body of at most PEER_MAX_BODY_BYTES; 409 when this node has no `highAvailability` in its config.
 */
function peerMerge(control: Control, req: http.IncomingMessage, res: http.ServerResponse): void {
  const refuse = (code: number, body: unknown, headers: Record<string, string> = {}) => {
    req.resume();
    send(res, code, body, { ...headers, connection: "close" });
  };
  if (req.method !== "POST") return refuse(405, { error: "use POST" }, { allow: "POST" });
  if (control.config.admin.token === null) return refuse(401, { error: "read-only: no admin token is configured" });
  if (!tokenMatches(control.config.admin.token, req.headers.authorization)) return refuse(401, { error: "missing or wrong bearer token" }, { "www-authenticate": "Bearer" });
  const peer = control.peer;
  if (!peer || !control.config.highAvailability) return refuse(409, { error: "persistence sync is off on this node (no highAvailability in its config)" });
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > PEER_MAX_BODY_BYTES) return refuse(413, { error: `body larger than ${PEER_MAX_BODY_BYTES} bytes` });
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  req.on("data", (c: Buffer) => {
    if (done) return;
    size += c.length;
    if (size > PEER_MAX_BODY_BYTES) {
      done = true;
      send(res, 413, { error: `body larger than ${PEER_MAX_BODY_BYTES} bytes` }, { connection: "close" });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    if (done) return;
    done = true;
    let doc: unknown;
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(res, 400, { error: "the body is not JSON" });
    }
    try {
      send(res, 200, { ok: true, ...peer.receive(doc) });
    } catch (e) {
      if (e instanceof PeerMessageError) return send(res, 400, { error: e.message });
      send(res, 500, { error: (e as Error).message });
    }
  });
  req.on("error", () => undefined);
}

export function startAdminServer(control: Control, cfg: AdminConfig): Promise<AdminServer> {
  const server = http.createServer(adminHandler(control));
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10000;
  server.requestTimeout = 15000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: cfg.address, port: cfg.port }, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: a.address,
        port: a.port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

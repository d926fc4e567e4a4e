/**
 * A stand-in for the proxy's admin API, shaped exactly like the contract (ADMIN_API): it serves the real
 * status page with the real CSP, a status document the test controls, and the three actions with a bearer
 * token. The page-level tests use it to feed the page data that a live proxy cannot produce on demand
 * (hostile strings, every state at once, growing byte counters); the behaviour tests use the real proxy.
 */
import * as http from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { statusPageHtml } from "../../src/proxy/admin/page";

export const ADMIN_CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

export type State = "UP" | "DOWN" | "DRAIN" | "HALT";

export interface FakeServer {
  name: string;
  address: string;
  state: State;
  health: "UP" | "DOWN";
  lastCheck: { ok: boolean; detail: string; latencyMs: number; at: string } | null;
  currentConnections: number;
  totalConnections: number;
  bytesIn: number;
  bytesOut: number;
}

export interface FakeVip {
  name: string;
  mode: "tcp" | "http";
  listeners: { address: string; port: number; tls: boolean; redirectToHttpsPort: number | null }[];
  healthHost: string | null;
  persistenceEntries: number;
  servers: FakeServer[];
}

export interface FakeEvent { at: string; vip: string; server: string; from: string; to: string; reason: string }

export interface FakeAdmin {
  url: string;
  vips: FakeVip[];
  events: FakeEvent[];
  /** Every POST the fake received, with the Authorization header it carried. */
  posts: { path: string; authorization: string | undefined; status: number }[];
  close(): Promise<void>;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export async function startFakeAdmin(opts: { address: string; port?: number; token: string | null; vips: FakeVip[]; events?: FakeEvent[] }): Promise<FakeAdmin> {
  const startedAt = new Date(Date.now() - 3723_000);
  const state: FakeAdmin = { url: "", vips: opts.vips, events: opts.events ?? [], posts: [], close: async () => undefined };

  const statusDoc = () => ({
    version: "0.1.0",
    startedAt: startedAt.toISOString(),
    uptimeSeconds: Math.floor((Date.now() - startedAt.getTime()) / 1000),
    workers: 2,
    readOnly: opts.token === null,
    virtualServices: state.vips.map((v) => ({
      name: v.name,
      mode: v.mode,
      listeners: v.listeners,
      balance: "leastconn",
      persistence: { type: "source-ip", timeoutSeconds: 1800, entries: v.persistenceEntries },
      healthCheck: { type: "https-get", port: 443, path: "/admin/startup", host: v.healthHost, intervalMs: 4000, rise: 2, fall: 2 },
      clientIp: "none",
      currentConnections: v.servers.reduce((a, s) => a + s.currentConnections, 0),
      totalConnections: v.servers.reduce((a, s) => a + s.totalConnections, 0),
      bytesIn: v.servers.reduce((a, s) => a + s.bytesIn, 0),
      bytesOut: v.servers.reduce((a, s) => a + s.bytesOut, 0),
      servers: v.servers.map((s) => ({ ...s, port: null, weight: 100 })),
    })),
    events: state.events.slice(-100),
  });

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (req.method === "GET" && url === "/") {
      const html = statusPageHtml();
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": ADMIN_CSP,
        "content-length": Buffer.byteLength(html),
      });
      res.end(html);
      return;
    }
    if (req.method === "GET" && url === "/api/status") return send(res, 200, statusDoc());
    const m = /^\/api\/servers\/([^/]+)\/([^/]+)\/(drain|halt|online)$/.exec(url);
    if (m) {
      if (req.method !== "POST") return send(res, 405, { error: "use POST" });
      const auth = req.headers.authorization;
      const given = /^Bearer (.+)$/.exec(auth ?? "")?.[1];
      const ok = opts.token !== null && given !== undefined && timingSafeEqual(digest(given), digest(opts.token));
      if (!ok) {
        state.posts.push({ path: url, authorization: auth, status: 401 });
        return send(res, 401, { error: opts.token === null ? "read-only: no admin token is configured" : "missing or wrong admin token" });
      }
      const vip = state.vips.find((v) => v.name === decodeURIComponent(m[1]));
      const srv = vip?.servers.find((s) => s.name === decodeURIComponent(m[2]));
      if (!vip || !srv) {
        state.posts.push({ path: url, authorization: auth, status: 404 });
        return send(res, 404, { error: "no such VIP or server" });
      }
      const to: State = m[3] === "drain" ? "DRAIN" : m[3] === "halt" ? "HALT" : srv.health;
      state.events.push({ at: new Date().toISOString(), vip: vip.name, server: srv.name, from: srv.state, to, reason: `operator: ${m[3]}` });
      srv.state = to;
      state.posts.push({ path: url, authorization: auth, status: 200 });
      return send(res, 200, { ok: true, vip: vip.name, server: srv.name, state: to });
    }
    send(res, 404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.address, port: opts.port ?? 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  state.url = `http://${opts.address}:${port}/`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** Three healthy Portal servers behind one TCP VIP, as the ssl-on-portal preset shows them. */
export function threeServerVip(name: string, base: string): FakeVip {
  const now = new Date().toISOString();
  return {
    name,
    mode: "tcp",
    listeners: [443, 995, 8443].map((port) => ({ address: `${base}.10`, port, tls: false, redirectToHttpsPort: null })),
    healthHost: null,
    persistenceEntries: 0,
    servers: [1, 2, 3].map((i) => ({
      name: `portal-${i}`,
      address: `${base}.${10 + i}`,
      state: "UP" as State,
      health: "UP" as const,
      lastCheck: { ok: true, detail: "HTTP 200", latencyMs: 1.5 + i, at: now },
      currentConnections: 0,
      totalConnections: 0,
      bytesIn: 0,
      bytesOut: 0,
    })),
  };
}

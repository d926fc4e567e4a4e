/**
 * The HTTP/1.1 engine for http-mode VIPs. The core calls createHttpHandler for every listener of an http
 * VIP (and again on each reload); the returned function takes each accepted raw client socket.
 *
 * Not node:http: a small engine on raw sockets that parses only what routing and framing need and forwards
 * the rest as bytes (see connection.ts). TLS ends here for listeners that carry `tls`.
 */
import type { Socket } from "node:net";
import type { HandlerFactory } from "../contract";
import { ClientConn, type ListenerContext } from "./connection";
import { backendKey, clearPool, poolFor, retainPool } from "./pool";
import type { Backend, VipRuntime } from "../contract";
import { buildSecureContext, wrapServerSocket } from "./tls";
import { TlsOnHandle, tlsEngine } from "./tls-handles";

export const createHttpHandler: HandlerFactory = (listener, vip) => {
  const cfg = vip.config;
  const isTls = listener.tls !== undefined;
  // Read the certificate now: a reload (a new factory call) serves new files to new connections, and a
  // missing or broken file fails the reload instead of every handshake.
  const secureContext = listener.tls ? buildSecureContext(listener.tls) : undefined;
  const hsts = isTls && cfg.http.hstsMaxAgeSeconds !== null ? `Strict-Transport-Security: max-age=${cfg.http.hstsMaxAgeSeconds}\r\n` : "";
  const ctx: ListenerContext = {
    vip,
    vipName: cfg.name,
    listener,
    port: listener.port,
    tls: isTls,
    redirectPort: isTls ? undefined : listener.redirectToHttpsPort,
    pool: poolFor(vip),
    maxHeaderBytes: cfg.http.maxHeaderBytes,
    httpRequestMs: cfg.timeouts.httpRequestMs,
    keepAliveMs: cfg.timeouts.httpKeepAliveMs,
    serverIdleMs: Math.round(cfg.timeouts.serverIdleSeconds * 1000),
    clientIdleMs: Math.round(cfg.timeouts.clientIdleSeconds * 1000),
    xff: cfg.clientIp === "x-forwarded-for",
    xfProtoPort: `X-Forwarded-Proto: ${isTls ? "https" : "http"}\r\nX-Forwarded-Port: ${listener.port}\r\n`,
    hstsLine: hsts,
    respOpts: {
      secureCookies: isTls && cfg.http.secureCookies.length > 0 ? new Set(cfg.http.secureCookies) : null,
      wantHsts: hsts !== "",
    },
  };
  return (client: Socket) => {
    const remote = client.remoteAddress;
    if (remote === undefined) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    if (secureContext) {
      // Errors of the raw socket surface on the TLS socket; this only keeps a late one from being unhandled.
      client.on("error", () => {});
      const t = tlsEngine.mode === "handles" ? new TlsOnHandle(client, secureContext) : wrapServerSocket(client, secureContext);
      new ClientConn(t, remote, ctx);
    } else {
      new ClientConn(client, remote, ctx);
    }
  };
};

/** Closes the idle pooled server connections of a VIP (shutdown, tests); busy ones close with their clients. A VIP
 * without HTTP listeners has none. */
export function closeIdleServerConnections(vip: VipRuntime): void {
  clearPool(vip);
}

/** After a reload (`vip.config` is the new one): idle pooled connections to servers the VIP no longer has —
 * removed, moved to another address, or reached on another port (port translation) — close now instead of at
 * their idle timeout, busy ones when released. A VIP that left http mode keeps none. */
export function pruneIdleServerConnections(vip: VipRuntime, backends: readonly Backend[]): void {
  const keys = new Set<string>();
  if (vip.config.mode === "http") for (const b of backends) for (const l of vip.config.listeners) keys.add(backendKey(b, b.targetPort(l.port)));
  retainPool(vip, keys);
}

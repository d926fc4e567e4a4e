/**
 * renderHaproxyConfig(runtime config) → haproxy.cfg text: the same load balancer expressed for HAProxy 2.6
 * (Debian 12's). It is the benchmark's fair opponent (same VIPs, same servers, same worker count) and an
 * alternative engine for users who prefer HAProxy. Pure: it reads no file and writes none; the TLS bundles
 * HAProxy needs are described by haproxyTlsBundles() and written by writeHaproxyTlsBundles().
 *
 * Mapping, one concept to one HAProxy construct:
 *   VIP               → one `frontend` + one `backend` with the VIP's name. One backend per VIP because
 *                       source-IP persistence must hold across all the VIP's ports (web and CTTP reach the
 *                       same Portal server): the backend's single stick table is that shared table.
 *   listener          → `bind addr:port` (TLS listeners: `ssl crt <bundle>`; HAProxy 2.6 has no separate
 *                       key keyword, so certificate and key are concatenated into one PEM bundle per pair).
 *   real server       → `server name addr[:port] weight w check` (no port: the port the client hit).
 *   healthCheck       → https-get: `option httpchk` + `http-check send` + `check-ssl verify none`;
 *                       http-get: the same without check-ssl; connect: a plain TCP `check`.
 *   clientIp          → x-forwarded-for: `option forwardfor` + X-Forwarded-Proto/Port;
 *                       proxy-v2: `send-proxy-v2` on every server.
 *   http options      → HSTS (`http-response set-header`) and Secure/HttpOnly cookie flags
 *                       (`http-response replace-header Set-Cookie`) on TLS connections only.
 *   admin             → a read-only HAProxy stats page on the admin address.
 */
import { TLS12_CIPHERS, TLS13_CIPHERSUITES } from "./tls";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Listener, RealServer, RuntimeConfig, VirtualService } from "./schema";

export interface HaproxyRenderOptions {
  /** Where the combined cert+key PEM bundles live (see haproxyTlsBundles). Default /etc/haproxy/certs. */
  tlsBundleDir?: string;
  /** nbthread when the config's `workers` is null (one per CPU). Omitted: HAProxy's default (all CPUs). */
  threads?: number;
  /** Log target for `log <target> format raw local0` (e.g. "stdout"); omitted: no logging. */
  log?: string;
  /** Global maxconn. Omitted: HAProxy derives it from the file-descriptor limit (it needs two descriptors
   * per proxied connection, so a fixed 40000 fails to start where `ulimit -n` is lower); each frontend still
   * carries its VIP's maxConnections. */
  maxconn?: number;
  /** A `stats socket` path for the runtime API; omitted: none. */
  statsSocket?: string;
  /** Emit `daemon` and this pidfile (for service managers that fork); omitted: foreground. */
  pidFile?: string;
  /**
   * Stateless TLS session tickets with the keys in this file (`tls-ticket-keys` on every TLS bind: base64
   * 48-byte keys, one per line, at least 3, the first one encrypts; the file is the caller's to write) instead
   * of the default, `no-tls-tickets` with HAProxy's stateful session cache: for several HAProxy processes or
   * nodes that must resume each other's sessions. Note that HAProxy then issues no new ticket after a TLS 1.3
   * resumption, so a client keeping only its latest ticket resumes every other reconnection (the default cache,
   * like ctera-lb, renews it: every reconnection resumes). Omitted: the default.
   */
  tlsTicketKeysFile?: string;
}

export const DEFAULT_TLS_BUNDLE_DIR = "/etc/haproxy/certs";

/** The shared cipher policy (src/config/tls.ts), under the names this renderer exports. */
export const HAPROXY_TLS12_CIPHERS = TLS12_CIPHERS;
export const HAPROXY_TLS13_CIPHERSUITES = TLS13_CIPHERSUITES;

/** One combined PEM file HAProxy reads for a TLS listener: the certificate chain followed by the key. */
export interface HaproxyTlsBundle {
  /** Where the bundle goes (under tlsBundleDir). */
  file: string;
  certFile: string;
  keyFile: string;
}

/**
 * The bundles a rendered config refers to: one per distinct cert/key pair, named after the first VIP and
 * port that use it. `cat certFile keyFile > file` makes one; writeHaproxyTlsBundles() does it for all.
 */
export function haproxyTlsBundles(cfg: RuntimeConfig, opts: HaproxyRenderOptions = {}): HaproxyTlsBundle[] {
  const dir = opts.tlsBundleDir ?? DEFAULT_TLS_BUNDLE_DIR;
  const byPair = new Map<string, HaproxyTlsBundle>();
  for (const vs of cfg.virtualServices) {
    for (const l of vs.listeners) {
      if (!l.tls) continue;
      const key = `${l.tls.certFile}\n${l.tls.keyFile}`;
      if (!byPair.has(key)) {
        byPair.set(key, { file: join(dir, `${vs.name}-${l.port}.pem`), certFile: l.tls.certFile, keyFile: l.tls.keyFile });
      }
    }
  }
  return [...byPair.values()];
}

/** Writes every bundle of haproxyTlsBundles() (mode 0600: it holds a private key). Returns them. */
export function writeHaproxyTlsBundles(cfg: RuntimeConfig, opts: HaproxyRenderOptions = {}): HaproxyTlsBundle[] {
  const bundles = haproxyTlsBundles(cfg, opts);
  for (const b of bundles) {
    mkdirSync(join(b.file, ".."), { recursive: true });
    const cert = readFileSync(b.certFile, "utf8");
    const key = readFileSync(b.keyFile, "utf8");
    writeFileSync(b.file, `${cert.trimEnd()}\n${key.trimEnd()}\n`, { mode: 0o600 });
  }
  return bundles;
}

export function renderHaproxyConfig(cfg: RuntimeConfig, opts: HaproxyRenderOptions = {}): string {
  const bundles = haproxyTlsBundles(cfg, opts);
  const bundleFor = (l: Listener): string => {
    const b = bundles.find((x) => x.certFile === l.tls!.certFile && x.keyFile === l.tls!.keyFile);
    return opts.tlsTicketKeysFile ? `${b!.file} tls-ticket-keys ${opts.tlsTicketKeysFile}` : b!.file;
  };
  const out: string[] = [];
  out.push("# Rendered by ctera-lb from the runtime config: edit the config and render again, not this file.");
  out.push(...globalSection(cfg, opts), "");
  out.push(...defaultsSection(opts), "");
  for (const vs of cfg.virtualServices) {
    out.push(...frontendSection(vs, bundleFor), "");
    out.push(...backendSection(vs), "");
  }
  out.push(...adminSection(cfg));
  return out.join("\n") + "\n";
}

function globalSection(cfg: RuntimeConfig, opts: HaproxyRenderOptions): string[] {
  const threads = cfg.workers ?? opts.threads;
  const lines = ["global"];
  if (opts.log) lines.push(`    log ${opts.log} format raw local0`);
  if (threads !== undefined) lines.push(`    nbthread ${threads}`);
  // The per-frontend maxconn (the VIP's maxConnections) is the real limit; see HaproxyRenderOptions.maxconn.
  if (opts.maxconn !== undefined) lines.push(`    maxconn ${opts.maxconn}`);
  if (opts.pidFile) lines.push("    daemon", `    pidfile ${opts.pidFile}`);
  if (opts.statsSocket) lines.push(`    stats socket ${opts.statsSocket} mode 600 level admin`);
  lines.push(
    // CTERA: no RC4, no TLS 1.0. TLS 1.2 with forward-secret AEAD ciphers, TLS 1.3 defaults.
    `    ssl-default-bind-options ssl-min-ver TLSv1.2${opts.tlsTicketKeysFile ? "" : " no-tls-tickets"}`,
    `    ssl-default-bind-ciphers ${HAPROXY_TLS12_CIPHERS}`,
    `    ssl-default-bind-ciphersuites ${HAPROXY_TLS13_CIPHERSUITES}`,
    // Checks toward Portal servers: same floor, no verification unless asked per VIP.
    "    ssl-default-server-options ssl-min-ver TLSv1.2",
  );
  return lines;
}

function defaultsSection(opts: HaproxyRenderOptions): string[] {
  // Per-VIP timeouts are set in each section; these only keep HAProxy from warning about missing ones.
  const lines = ["defaults"];
  if (opts.log) lines.push("    log global");
  lines.push("    timeout connect 4s", "    timeout client 60s", "    timeout server 60s");
  return lines;
}

function hostPort(address: string, port?: number): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return port === undefined ? host : `${host}:${port}`;
}

/** HAProxy time values: whole seconds when exact ("43200s"), else milliseconds ("2500ms"). */
function ms(n: number): string {
  const v = Math.round(n);
  return v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`;
}

function frontendSection(vs: VirtualService, bundleFor: (l: Listener) => string): string[] {
  const t = vs.timeouts;
  const lines = [`frontend ${vs.name}`, `    mode ${vs.mode}`];
  for (const l of vs.listeners) {
    lines.push(l.tls ? `    bind ${hostPort(l.address, l.port)} ssl crt ${bundleFor(l)} alpn http/1.1` : `    bind ${hostPort(l.address, l.port)}`);
  }
  lines.push(`    maxconn ${vs.maxConnections}`, `    timeout client ${ms(t.clientIdleSeconds * 1000)}`);
  if (vs.mode === "http") {
    lines.push(`    timeout http-request ${ms(t.httpRequestMs)}`, `    timeout http-keep-alive ${ms(t.httpKeepAliveMs)}`);
    for (const l of vs.listeners) {
      if (l.tls || l.redirectToHttpsPort === undefined) continue;
      // Keep the host the client asked for, drop its port, point at the TLS port (443 needs no port).
      const port = l.redirectToHttpsPort === 443 ? "" : `:${l.redirectToHttpsPort}`;
      lines.push(
        `    http-request redirect location https://%[req.hdr(host),field(1,:)]${port}%[capture.req.uri] code 301 if !{ ssl_fc } { dst_port ${l.port} }`,
      );
    }
    if (vs.clientIp === "x-forwarded-for") {
      lines.push(
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    http-request set-header X-Forwarded-Port %[dst_port]",
      );
    }
    if (vs.listeners.some((l) => l.tls)) {
      const h = vs.http;
      if (h.hstsMaxAgeSeconds !== null) {
        lines.push(`    http-response set-header Strict-Transport-Security "max-age=${h.hstsMaxAgeSeconds}" if { ssl_fc }`);
      }
      for (const name of h.secureCookies) {
        const n = name.replace(/[^A-Za-z0-9_-]/g, (c) => `\\${c}`);
        // One Set-Cookie line at a time: add the flag only where this cookie lacks it (case-insensitive).
        lines.push(
          `    http-response replace-header Set-Cookie '^(${n}=(?!(?i).*;\\s*secure\\s*(;|$)).*)$' '\\1; Secure' if { ssl_fc }`,
          `    http-response replace-header Set-Cookie '^(${n}=(?!(?i).*;\\s*httponly\\s*(;|$)).*)$' '\\1; HttpOnly' if { ssl_fc }`,
        );
      }
    }
  }
  lines.push(`    default_backend ${vs.name}`);
  return lines;
}

/** The port a health check probes for one server: the check's own, else the server's translated one, else
 * the VIP's first listener port (HAProxy needs a port when the server line has none). */
function checkPort(vs: VirtualService, s: RealServer): number {
  return vs.healthCheck.port ?? s.port ?? vs.listeners[0].port;
}

function backendSection(vs: VirtualService): string[] {
  const t = vs.timeouts;
  const hc = vs.healthCheck;
  const lines = [`backend ${vs.name}`, `    mode ${vs.mode}`, `    balance ${vs.balance}`];
  if (vs.persistence.type === "source-ip") {
    // One table for all of the VIP's ports: a client's web and CTTP connections reach the same server.
    lines.push(`    stick-table type ${ipFamilyOfVip(vs)} size 1m expire ${vs.persistence.timeoutSeconds}s`, "    stick on src");
  }
  lines.push(
    `    timeout connect ${ms(t.connectMs)}`,
    `    timeout server ${ms(t.serverIdleSeconds * 1000)}`,
    `    timeout queue ${ms(t.queueMs)}`,
    `    retries ${vs.retries}`,
    "    option redispatch",
  );
  if (hc.timeoutMs !== undefined) lines.push(`    timeout check ${ms(hc.timeoutMs)}`);
  if (hc.type !== "connect") {
    lines.push("    option httpchk");
    // With a Host header the check speaks HTTP/1.1; without one (the config's "the server's address") it
    // sends HTTP/1.0, which needs none: HAProxy has one check request per backend, not one per server.
    lines.push(
      hc.host
        ? `    http-check send meth GET uri ${hc.path} ver HTTP/1.1 hdr Host ${hc.host}`
        : `    http-check send meth GET uri ${hc.path} ver HTTP/1.0`,
    );
  }
  if (vs.sourceAddress) lines.push(`    source ${hostPort(vs.sourceAddress)}`);
  const dflt = [`inter ${ms(hc.intervalMs)}`, `rise ${hc.rise}`, `fall ${hc.fall}`];
  if (hc.type === "https-get") {
    dflt.push("check-ssl", hc.verifyTls ? "verify required ca-file @system-ca" : "verify none");
    if (hc.host) dflt.push(`check-sni ${hc.host}`);
  }
  if (vs.shutdownSessionsOnDown) dflt.push("on-marked-down shutdown-sessions");
  if (vs.clientIp === "proxy-v2") dflt.push("send-proxy-v2");
  lines.push(`    default-server ${dflt.join(" ")}`);
  for (const s of vs.realServers) {
    lines.push(`    server ${s.name} ${hostPort(s.address, s.port)} weight ${s.weight} check port ${checkPort(vs, s)}`);
  }
  return lines;
}

/** ip or ipv6 stick table: an IPv6 VIP sees IPv6 clients. */
function ipFamilyOfVip(vs: VirtualService): "ip" | "ipv6" {
  return vs.listeners.some((l) => isIP(l.address) === 6) ? "ipv6" : "ip";
}

function adminSection(cfg: RuntimeConfig): string[] {
  // HAProxy's stats page stands in for our admin API: read-only (a bearer token has no HAProxy equivalent).
  return [
    "frontend admin",
    "    mode http",
    `    bind ${hostPort(cfg.admin.address, cfg.admin.port)}`,
    "    timeout client 30s",
    "    stats enable",
    "    stats uri /",
    "    stats refresh 10s",
    "    stats show-legends",
    "",
  ];
}

/**
 * A simulated CTERA Portal server for the demo, the tests and the network-namespace e2e runs.
 *
 * What it answers (every port is overridable so a normal user or a parallel test can shift them):
 * - HTTPS on 443 and 8443, plain HTTP on 80 and 8080: `GET /admin/startup` → 200 `{"status":"ok",...}`
 *   (switchable to 503 at runtime with setStartupStatus); `GET /bytes/<n>` streams n bytes; every other
 *   request → 200 JSON naming the server, the method, the path, the request headers it received, the
 *   remote address it saw and the number of body bytes it read. That answer is how tests check
 *   X-Forwarded-For and which server a request reached.
 * - A TLS echo on 995 (the CTTP stand-in): the first line it writes on connect names the server
 *   (`portal <name>\n`), then every byte received is echoed back.
 * It records every /admin/startup request (method, path, Host, SNI, remote address) for health-check tests.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";

export interface SimPortalPorts {
  https: number;
  https2: number;
  http: number;
  http2: number;
  cttp: number;
}

export const DEFAULT_SIM_PORTS: SimPortalPorts = { https: 443, https2: 8443, http: 80, http2: 8080, cttp: 995 };

export interface SimPortalOptions {
  name: string;
  address: string;
  /** Override some or all ports; a port set to 0 is not opened. */
  ports?: Partial<SimPortalPorts>;
  /** Added to every (non-overridden) default port, e.g. 10000 for a normal user. */
  portOffset?: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The status /admin/startup answers with at start (default 200). */
  startupStatus?: number;
}

export interface HealthRequest {
  at: number;
  port: number;
  method: string;
  path: string;
  host: string | undefined;
  /** The TLS server name the client sent (false/undefined on plain HTTP or without SNI). */
  sni: string | false | null | undefined;
  remoteAddress: string | undefined;
}

export interface SimPortal {
  readonly name: string;
  readonly address: string;
  readonly ports: SimPortalPorts;
  /** /admin/startup requests seen so far (oldest first). */
  readonly healthRequests: HealthRequest[];
  /** Count of requests (other than /admin/startup) and CTTP connections answered, per port. */
  readonly hits: Map<number, number>;
  /** Sockets open now on any port. */
  openSockets(): number;
  setStartupStatus(code: number): void;
  stop(): Promise<void>;
}

/** The JSON a sim Portal answers to an ordinary request. */
export interface SimAnswer {
  server: string;
  port: number;
  tls: boolean;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  bodyBytes: number;
}

let cachedCert: SelfSignedCert | undefined;

export interface SelfSignedCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/** A self-signed EC certificate (CN portal.example.test, SAN for localhost and loopback), made once per process
 * with openssl into a temp dir. */
export function selfSignedCert(opts: { fresh?: boolean; cn?: string } = {}): SelfSignedCert {
  if (cachedCert && !opts.fresh && !opts.cn) return cachedCert;
  const dir = mkdtempSync(join(tmpdir(), "ctera-lb-cert-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const cn = opts.cn ?? "portal.example.test";
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyFile, "-out", certFile, "-days", "30", "-subj", `/CN=${cn}`,
      "-addext", `subjectAltName=DNS:${cn},DNS:*.example.test,DNS:localhost,IP:127.0.0.1`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const made = { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8"), certFile, keyFile };
  if (!opts.fresh && !opts.cn) cachedCert = made;
  return made;
}

export async function startSimPortal(opts: SimPortalOptions): Promise<SimPortal> {
  const off = opts.portOffset ?? 0;
  const ports: SimPortalPorts = {
    https: opts.ports?.https ?? DEFAULT_SIM_PORTS.https + off,
    https2: opts.ports?.https2 ?? DEFAULT_SIM_PORTS.https2 + off,
    http: opts.ports?.http ?? DEFAULT_SIM_PORTS.http + off,
    http2: opts.ports?.http2 ?? DEFAULT_SIM_PORTS.http2 + off,
    cttp: opts.ports?.cttp ?? DEFAULT_SIM_PORTS.cttp + off,
  };
  const material = opts.tls ?? selfSignedCert();
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const healthRequests: HealthRequest[] = [];
  const hits = new Map<number, number>();
  let startupStatus = opts.startupStatus ?? 200;

  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };

  const handler = (port: number, isTls: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url ?? "/";
    let bodyBytes = 0;
    req.on("data", (c: Buffer) => (bodyBytes += c.length));
    req.on("end", () => {
      if (path === "/admin/startup" || path.startsWith("/admin/startup?")) {
        healthRequests.push({
          at: Date.now(),
          port,
          method: req.method ?? "",
          path,
          host: req.headers.host,
          sni: isTls ? (req.socket as tls.TLSSocket).servername : undefined,
          remoteAddress: req.socket.remoteAddress,
        });
        const body = JSON.stringify({ server: opts.name, status: startupStatus === 200 ? "ok" : "starting" });
        res.writeHead(startupStatus, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      hits.set(port, (hits.get(port) ?? 0) + 1);
      const m = /^\/bytes\/(\d+)$/.exec(path);
      if (m) {
        streamBytes(res, Number(m[1]), opts.name);
        return;
      }
      const answer: SimAnswer = {
        server: opts.name,
        port,
        tls: isTls,
        method: req.method ?? "",
        path,
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress,
        remotePort: req.socket.remotePort,
        bodyBytes,
      };
      const body = JSON.stringify(answer);
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-sim-server": opts.name,
      });
      res.end(body);
    });
  };

  const listen = (srv: Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen({ host: opts.address, port, exclusive: true }, () => {
        srv.off("error", reject);
        servers.push(srv);
        resolve();
      });
    });

  try {
    for (const [key, isTls] of [["https", true], ["https2", true], ["http", false], ["http2", false]] as const) {
      const port = ports[key];
      if (!port) continue;
      const srv = isTls
        ? https.createServer({ cert: material.cert, key: material.key }, handler(port, true))
        : http.createServer(handler(port, false));
      srv.on("connection", track);
      srv.keepAliveTimeout = 5000;
      await listen(srv, port);
      if (port === 0) (ports as unknown as Record<string, number>)[key] = (srv.address() as AddressInfo).port;
    }
    if (ports.cttp) {
      const port = ports.cttp;
      const echo = tls.createServer({ cert: material.cert, key: material.key }, (s) => {
        hits.set(port, (hits.get(port) ?? 0) + 1);
        s.on("error", () => s.destroy());
        s.write(`portal ${opts.name}\n`);
        s.pipe(s);
      });
      echo.on("connection", track);
      echo.on("tlsClientError", (_e, s) => s.destroy());
      await listen(echo, port);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }

  return {
    name: opts.name,
    address: opts.address,
    ports,
    healthRequests,
    hits,
    openSockets: () => sockets.size,
    setStartupStatus(code: number) {
      startupStatus = code;
    },
    async stop() {
      const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      for (const s of sockets) s.destroy();
      await Promise.all(closed);
    },
  };
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function streamBytes(res: http.ServerResponse, n: number, name: string) {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n, "x-sim-server": name });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const len = Math.min(left, CHUNK.length);
      left -= len;
      if (!res.write(len === CHUNK.length ? CHUNK : CHUNK.subarray(0, len))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

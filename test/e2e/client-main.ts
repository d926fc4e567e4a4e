/**
 * The client host's tool, run inside the client namespace (`ip netns exec <ns> node client.js '<json>'`):
 * it makes the requests the test asks for, from the client addresses the test names, and prints one JSON
 * document on stdout. Node built-ins only; bundled by the harness with esbuild.
 *
 *   {"cmd":"probe","items":[Probe...]}      each probe once, in order → {"results":[ProbeResult...]}
 *   {"cmd":"load", ...LoadSpec}            a paced, bounded HTTPS + CTTP load → LoadReport
 *   {"cmd":"ready","items":[...],"streak":n,"timeoutMs":t}   each probe until n successes in a row
 */
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";
import { X509Certificate } from "node:crypto";

export interface Probe {
  kind: "http" | "https" | "tls-echo";
  host: string;
  port: number;
  localAddress: string;
  path?: string;
  method?: string;
  /** Bytes of request body to stream (an upload), sent as a chunked POST when set. */
  bodyBytes?: number;
  timeoutMs?: number;
}

export interface ProbeResult {
  probe: Probe;
  ok: boolean;
  /** The request went over a kept-alive connection opened for an earlier request. */
  reused?: boolean;
  error?: string;
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: string;
  /** TLS: the certificate the client was shown (fingerprint and subject). */
  certFingerprint256?: string;
  certSubject?: string;
  tlsProtocol?: string;
  ms: number;
}

export interface LoadSpec {
  cmd: "load";
  host: string;
  clients: string[];
  https: { count: number; ports: number[]; path: string };
  cttp: { count: number; port: number; holdMs: number };
  durationMs: number;
  timeoutMs: number;
}

export interface LoadRecord {
  kind: "https" | "cttp";
  client: string;
  port: number;
  start: number;
  end: number;
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
  /** The Portal server that answered (from the sim's JSON answer or its 995 greeting). */
  server?: string;
  /** HTTPS: carried by a kept-alive connection opened for an earlier request. */
  reused?: boolean;
}

export interface LoadReport {
  records: LoadRecord[];
  startedAt: number;
  endedAt: number;
}

/** The Portal server that answered: the sim's JSON answer (HTTP) or its greeting line (995). */
export function serverOfBody(body: string | undefined): string | undefined {
  if (!body) return undefined;
  const g = /^portal (\S+)\n/.exec(body);
  if (g) return g[1];
  const j = /"server":"([^"]+)"/.exec(body);
  return j ? j[1] : undefined;
}

const cut = (s: string, n = 4096) => (s.length > n ? s.slice(0, n) : s);

function certInfo(sock: tls.TLSSocket): Pick<ProbeResult, "certFingerprint256" | "certSubject" | "tlsProtocol"> {
  const raw = sock.getPeerX509Certificate?.() as X509Certificate | undefined;
  return {
    certFingerprint256: raw?.fingerprint256,
    certSubject: raw?.subject,
    tlsProtocol: sock.getProtocol() ?? undefined,
  };
}

function httpProbe(p: Probe, agent?: http.Agent): Promise<ProbeResult> {
  const t0 = Date.now();
  return new Promise((done) => {
    const resolve = (r: ProbeResult) => done({ ...r, reused: req.reusedSocket });
    const mod = p.kind === "https" ? https : http;
    let tlsInfo: ReturnType<typeof certInfo> = {};
    const req = mod.request(
      {
        host: p.host,
        port: p.port,
        path: p.path ?? "/",
        method: p.method ?? (p.bodyBytes ? "POST" : "GET"),
        localAddress: p.localAddress,
        rejectUnauthorized: false,
        servername: "portal.example.test",
        agent: agent ?? false,
        timeout: p.timeoutMs ?? 5000,
        headers: p.bodyBytes ? { "content-type": "application/octet-stream" } : {},
      },
      (res) => {
        if (res.socket && "getPeerX509Certificate" in res.socket) tlsInfo = certInfo(res.socket as tls.TLSSocket);
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            probe: p,
            ok: true,
            status: res.statusCode,
            headers: res.headers,
            body: cut(Buffer.concat(chunks).toString("utf8")),
            ...tlsInfo,
            ms: Date.now() - t0,
          }),
        );
        res.on("error", (e) => resolve({ probe: p, ok: false, error: String(e), ms: Date.now() - t0 }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${p.timeoutMs ?? 5000} ms`)));
    req.on("error", (e) => resolve({ probe: p, ok: false, error: String(e.message ?? e), ms: Date.now() - t0 }));
    if (p.bodyBytes) {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let left = p.bodyBytes;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    } else req.end();
  });
}

/** TLS to the CTTP port; sends one line, reads until the echo of that line came back. */
function tlsEcho(p: Probe, holdMs = 0): Promise<ProbeResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const line = `ping ${p.localAddress} ${t0}\n`;
    let got = "";
    let done = false;
    const finish = (r: Omit<ProbeResult, "probe" | "ms">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ probe: p, ms: Date.now() - t0, ...r });
    };
    const raw = net.connect({ host: p.host, port: p.port, localAddress: p.localAddress });
    const sock = tls.connect({
      socket: raw,
      rejectUnauthorized: false,
      servername: "portal.example.test",
    });
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${p.timeoutMs ?? 5000} ms`, body: got }), (p.timeoutMs ?? 5000) + holdMs);
    sock.setEncoding("utf8");
    sock.on("secureConnect", () => sock.write(line));
    sock.on("data", (d: string) => {
      got += d;
      if (got.includes(line.trim())) {
        const info = certInfo(sock);
        if (holdMs <= 0) return finish({ ok: true, body: cut(got), ...info });
        // Hold the session like an agent does, then close it cleanly.
        setTimeout(() => {
          if (done) return;
          sock.end();
          finish({ ok: true, body: cut(got), ...info });
        }, holdMs);
      }
    });
    sock.on("error", (e) => finish({ ok: false, error: String(e.message ?? e), body: got }));
    raw.on("error", (e) => finish({ ok: false, error: String(e.message ?? e), body: got }));
    sock.on("close", () => finish({ ok: false, error: "closed before the echo", body: got }));
  });
}

async function probe(items: Probe[]): Promise<{ results: ProbeResult[] }> {
  const results: ProbeResult[] = [];
  for (const p of items) results.push(p.kind === "tls-echo" ? await tlsEcho(p) : await httpProbe(p));
  return { results };
}

/** Paced load: `https.count` requests and `cttp.count` sessions spread evenly over `durationMs`,
 * round-robin over the client addresses; each client address keeps one keep-alive agent. */
async function load(spec: LoadSpec): Promise<LoadReport> {
  const startedAt = Date.now();
  const agents = new Map<string, https.Agent>();
  for (const c of spec.clients) agents.set(c, new https.Agent({ keepAlive: true, maxSockets: 2, localAddress: c }));
  const records: LoadRecord[] = [];
  const pending: Promise<void>[] = [];
  const schedule = (n: number, fn: (i: number) => Promise<void>) => {
    for (let i = 0; i < n; i++) {
      const at = startedAt + (i * spec.durationMs) / n;
      pending.push(new Promise<void>((r) => setTimeout(() => fn(i).then(r, r), Math.max(0, at - Date.now()))));
    }
  };
  schedule(spec.https.count, async (i) => {
    const client = spec.clients[i % spec.clients.length];
    const port = spec.https.ports[i % spec.https.ports.length];
    const start = Date.now();
    const r = await httpProbe(
      { kind: "https", host: spec.host, port, path: spec.https.path, localAddress: client, timeoutMs: spec.timeoutMs },
      agents.get(client),
    );
    records.push({ kind: "https", client, port, start, end: Date.now(), ok: r.ok && r.status === 200, status: r.status, reused: r.reused, server: serverOfBody(r.body), body: r.body && cut(r.body, 160), error: r.error });
  });
  schedule(spec.cttp.count, async (i) => {
    const client = spec.clients[(i * 7) % spec.clients.length];
    const start = Date.now();
    const r = await tlsEcho({ kind: "tls-echo", host: spec.host, port: spec.cttp.port, localAddress: client, timeoutMs: spec.timeoutMs }, spec.cttp.holdMs);
    records.push({ kind: "cttp", client, port: spec.cttp.port, start, end: Date.now(), ok: r.ok, server: serverOfBody(r.body), body: r.body && cut(r.body, 160), error: r.error });
  });
  await Promise.all(pending);
  for (const a of agents.values()) a.destroy();
  return { records, startedAt, endedAt: Date.now() };
}

/** Until each probe has succeeded `streak` times in a row (so every worker process serves), or the deadline. */
async function ready(items: Probe[], streak: number, timeoutMs: number): Promise<{ ok: boolean; attempts: number; failures: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const failures: string[] = [];
  let attempts = 0;
  for (const item of items) {
    let row = 0;
    while (row < streak) {
      if (Date.now() > deadline) return { ok: false, attempts, failures };
      const r = item.kind === "tls-echo" ? await tlsEcho(item) : await httpProbe(item);
      attempts++;
      if (r.ok && (item.kind === "tls-echo" || (r.status !== undefined && r.status < 500))) row++;
      else {
        row = 0;
        failures.push(`${item.kind}:${item.port} ${r.status ?? r.error}`);
        await new Promise((w) => setTimeout(w, 100));
      }
    }
  }
  return { ok: true, attempts, failures };
}

async function run(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}");
  let out: unknown;
  if (spec.cmd === "probe") out = await probe(spec.items);
  else if (spec.cmd === "load") out = await load(spec);
  else if (spec.cmd === "ready") out = await ready(spec.items, spec.streak, spec.timeoutMs);
  else throw new Error(`client: unknown cmd ${spec.cmd}`);
  // Exit only once the (possibly large) document has been handed to the pipe.
  await new Promise<void>((r) => process.stdout.write(JSON.stringify(out) + "\n", () => r()));
}

if (require.main === module) {
  run().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`client: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}

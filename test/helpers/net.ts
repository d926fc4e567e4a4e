/**
 * Small client helpers shared by the proxy tests: one HTTP(S) request without keep-alive, the first line of a
 * TLS (CTTP stand-in) session, polling.
 */
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";

export interface GetOptions {
  host: string;
  port: number;
  path?: string;
  tls?: boolean;
  method?: string;
  localAddress?: string;
  servername?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  body?: string | Buffer;
}

export interface GetResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request on a fresh connection (no agent), whole body read as text. */
export function httpGet(o: GetOptions): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const mod = o.tls ? https : http;
    const req = mod.request(
      {
        host: o.host,
        port: o.port,
        path: o.path ?? "/",
        method: o.method ?? "GET",
        localAddress: o.localAddress,
        agent: false,
        headers: { connection: "close", ...o.headers },
        ...(o.tls ? { rejectUnauthorized: false, servername: o.servername ?? "portal.example.test" } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.setTimeout(o.timeoutMs ?? 5000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(o.body);
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getJson(o: GetOptions): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const r = await httpGet(o);
  return { status: r.status, headers: r.headers, body: JSON.parse(r.text) };
}

/** Opens a TLS session, returns the first line the server writes (the sim Portal's 995 names itself) and the
 * socket (left open unless close is true). */
export async function tlsFirstLine(o: { host: string; port: number; localAddress?: string; close?: boolean; timeoutMs?: number }): Promise<{ line: string; socket: tls.TLSSocket }> {
  const socket = tls.connect({ host: o.host, port: o.port, localAddress: o.localAddress, rejectUnauthorized: false, servername: "portal.example.test" });
  socket.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no first line from ${o.host}:${o.port} within ${o.timeoutMs ?? 5000} ms`));
    }, o.timeoutMs ?? 5000);
    const onData = (d: string) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) {
        clearTimeout(timer);
        socket.off("data", onData);
        if (o.close !== false) socket.destroy();
        resolve({ line: buf.slice(0, i), socket });
      }
    };
    socket.on("data", onData);
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      reject(new Error("closed before the first line"));
    });
  });
}

/** Which sim server answers a client (from a given source address) on a port: "portal-N". */
export async function whoAnswers(host: string, port: number, localAddress: string, kind: "https" | "http" | "cttp"): Promise<string> {
  if (kind === "cttp") {
    const { line } = await tlsFirstLine({ host, port, localAddress });
    return line.replace(/^portal /, "");
  }
  const r = await getJson({ host, port, localAddress, tls: kind === "https", path: "/who" });
  return r.body.server as string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until fn returns truthy or the bounded time is over; returns the last value. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await fn();
  while (!v && Date.now() < end) {
    await sleep(stepMs);
    v = await fn();
  }
  return v;
}

/** Connects a raw TCP client and resolves once connected. */
export function tcpConnect(host: string, port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

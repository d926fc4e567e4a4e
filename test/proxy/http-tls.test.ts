/**
 * TLS termination on the engine: protocol floor and cipher list, ALPN, session resumption, certificate
 * reload (a new factory call) without dropping open connections, and the response hardening of TLS
 * listeners (HSTS, Secure/HttpOnly on the session cookie). Block 127.0.23.0/24.
 */
import { execFile } from "node:child_process";
import * as http from "node:http";
import type * as net from "node:net";
import * as tls from "node:tls";
import { selfSignedCert } from "../../src/sim/portal";
import { randomBytes } from "node:crypto";
import { createHttpHandler } from "../../src/proxy/http";
import { renewTicketsOnResumption, setTicketKeys, ticketIv, ticketKeys, tlsTicketRenewal } from "../../src/proxy/http/tls";
import { FakeBackend, FakeVip, listenEngine, RawClient, startOrigin, json, waitFor, type Origin } from "./http-fake-vip";

const VIP = "127.0.23.10";
const ORIGIN = "127.0.23.11";
const TLS_PORT = 23443;
const PLAIN_PORT = 23080;
const NO_HSTS_PORT = 23444;
const ORIGIN_PORT = 23081;

const certA = selfSignedCert({ cn: "first.example.test" });
const certB = selfSignedCert({ cn: "second.example.test" });

let origin: Origin;
let vip: FakeVip;
let vipNoHsts: FakeVip;
let engine: net.Server & { handler: (s: net.Socket) => void };
let plain: net.Server;
let noHsts: net.Server;

/** Cookies and HSTS as a Portal might send them, chosen by path. */
function portal(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.url === "/cookies") {
    res.setHeader("Set-Cookie", [
      "JSESSIONID=abc123; Path=/",
      "theme=dark",
      "JSESSIONID=flagged; path=/; secure; HTTPONLY",
      "JSESSIONID=half; Secure",
    ]);
    res.end("cookies");
    return true;
  }
  if (req.url === "/own-hsts") {
    res.setHeader("Strict-Transport-Security", "max-age=60; includeSubDomains");
    res.end("own");
    return true;
  }
  return false;
}

beforeAll(async () => {
  origin = await startOrigin("portal-1", ORIGIN, ORIGIN_PORT, portal);
  vip = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)]);
  vipNoHsts = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)], { http: { hstsMaxAgeSeconds: null } });
  engine = await listenEngine(vip, { address: VIP, port: TLS_PORT, tls: { certFile: certA.certFile, keyFile: certA.keyFile } });
  plain = await listenEngine(vip, { address: VIP, port: PLAIN_PORT });
  noHsts = await listenEngine(vipNoHsts, { address: VIP, port: NO_HSTS_PORT, tls: { certFile: certA.certFile, keyFile: certA.keyFile } });
});

afterAll(async () => {
  await Promise.all([engine, plain, noHsts].map((s) => new Promise((r) => s.close(r))));
  await origin.close();
});

function handshake(opts: tls.ConnectionOptions): Promise<{ protocol: string | null; cipher: string; alpn: string | false; cn: string; reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const s = tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"], ...opts }, () => {
      const info = { protocol: s.getProtocol(), cipher: s.getCipher().name, alpn: s.alpnProtocol, cn: String(s.getPeerCertificate()?.subject?.CN), reused: s.isSessionReused() };
      // TLS 1.3 tickets arrive after the handshake: a short exchange lets them come.
      s.write("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
      s.once("data", () => {
        s.end();
        resolve({ ...info, session });
      });
    });
    s.on("session", (b: Buffer) => (session = b));
    s.on("error", reject);
  });
}

function openssl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile("openssl", ["s_client", "-connect", `${VIP}:${TLS_PORT}`, ...args], { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    p.stdin?.end("Q\n");
  });
}

describe("HTTP engine: TLS termination", () => {
  test("accepts TLS 1.2 and TLS 1.3 with an AEAD cipher and ALPN http/1.1", async () => {
    const t12 = await handshake({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
    expect(t12.protocol).toBe("TLSv1.2");
    expect(t12.cipher).toMatch(/^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    expect(t12.alpn).toBe("http/1.1");
    const t13 = await handshake({ minVersion: "TLSv1.3" });
    expect(t13.protocol).toBe("TLSv1.3");
    expect(t13.cipher).toMatch(/^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
  });

  test("refuses TLS 1.1 (openssl s_client offering only TLS 1.1 gets a protocol-version alert)", async () => {
    const before = vip.logs.length;
    const r = await openssl(["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/protocol version|unsupported protocol|no protocols available/i);
    // The same client offering TLS 1.2 gets through, so the refusal is the server's.
    const ok = await openssl(["-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    expect(ok.out).toMatch(/Protocol\s*:\s*TLSv1\.2/);
    await waitFor(() => vip.logs.slice(before).some((l) => l.event === "http-connection" && /UNSUPPORTED_PROTOCOL|unsupported protocol|version/i.test(String(l.reason))));
  });

  test("refuses a TLS 1.2 client that offers only CBC-SHA1 or RC4-era suites", async () => {
    await expect(handshake({ maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA" })).rejects.toThrow(/handshake failure|no shared cipher|alert/i);
  });

  test("resumes TLS 1.2 sessions from a ticket", async () => {
    const first = await handshake({ maxVersion: "TLSv1.2" });
    expect(first.session).toBeDefined();
    const second = await handshake({ maxVersion: "TLSv1.2", session: first.session });
    expect(second.reused).toBe(true);
  });

  test("a reload keeps the ticket keys, so returning clients still resume", async () => {
    const first = await handshake({ maxVersion: "TLSv1.2" });
    const previous = engine.handler;
    engine.handler = createHttpHandler({ address: VIP, port: TLS_PORT, tls: { certFile: certA.certFile, keyFile: certA.keyFile } }, vip);
    try {
      const again = await handshake({ maxVersion: "TLSv1.2", session: first.session });
      expect(again.reused).toBe(true);
    } finally {
      engine.handler = previous;
    }
  });

  test("a resumed TLS 1.3 session gets a new ticket: a client that keeps only its latest one resumes every time", async () => {
    let last = await handshake({ minVersion: "TLSv1.3" });
    expect(last.reused).toBe(false);
    for (let n = 0; n < 4; n++) {
      expect(last.session).toBeDefined();
      const next = await handshake({ minVersion: "TLSv1.3", session: last.session });
      expect(next.reused).toBe(true);
      last = next;
    }
    expect(last.session).toBeDefined();
  });

  test("the ticket-key callback is found on this Node (a Node release without it fails here, the proxy keeps Node's own tickets)", () => {
    expect(tlsTicketRenewal()).toBe(true);
    expect(renewTicketsOnResumption(tls.createSecureContext({}), randomBytes(48))).toBe(true);
  });

  test("ticket IVs are 16 bytes and never repeat, also across the random blocks they are cut from", () => {
    const seen = new Set<string>();
    for (let n = 0; n < 600; n++) {
      const iv = ticketIv();
      expect(iv.length).toBe(16);
      seen.add(iv.toString("hex"));
    }
    expect(seen.size).toBe(600);
  });

  test("without the renewal (CTERA_LB_TLS_TICKET_RENEW=off: Node's own ticket handling) a TLS 1.3 resumption brings no new ticket", async () => {
    const previous = engine.handler;
    process.env.CTERA_LB_TLS_TICKET_RENEW = "off";
    try {
      engine.handler = createHttpHandler({ address: VIP, port: TLS_PORT, tls: { certFile: certA.certFile, keyFile: certA.keyFile } }, vip);
    } finally {
      delete process.env.CTERA_LB_TLS_TICKET_RENEW;
    }
    try {
      const first = await handshake({ minVersion: "TLSv1.3" });
      const second = await handshake({ minVersion: "TLSv1.3", session: first.session });
      expect(second.reused).toBe(true);
      expect(second.session).toBeUndefined();
    } finally {
      engine.handler = previous;
    }
  });

  test("a ticket made with other keys (another load balancer, a restart) means a full handshake, and the listener lives on", async () => {
    const first = await handshake({ minVersion: "TLSv1.3" });
    const previous = engine.handler;
    const keys = ticketKeys();
    setTicketKeys(randomBytes(48));
    try {
      engine.handler = createHttpHandler({ address: VIP, port: TLS_PORT, tls: { certFile: certA.certFile, keyFile: certA.keyFile } }, vip);
      const other = await handshake({ minVersion: "TLSv1.3", session: first.session });
      expect(other.reused).toBe(false);
      const again = await handshake({ minVersion: "TLSv1.3", session: other.session });
      expect(again.reused).toBe(true);
    } finally {
      setTicketKeys(keys);
      engine.handler = previous;
    }
  });

  test("a reload serves the new certificate to new connections while an open connection keeps working", async () => {
    const old = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    old.send("GET /before HTTP/1.1\r\nHost: h\r\n\r\n");
    expect((await old.response()).status).toBe(200);
    expect(String((old.socket as tls.TLSSocket).getPeerCertificate().subject.CN)).toBe("first.example.test");
    const previous = engine.handler;
    engine.handler = createHttpHandler({ address: VIP, port: TLS_PORT, tls: { certFile: certB.certFile, keyFile: certB.keyFile } }, vip);
    try {
      const fresh = await handshake({});
      expect(fresh.cn).toBe("second.example.test");
      old.send("GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
      const res = await old.response();
      expect(res.status).toBe(200);
      expect(json(res).url).toBe("/after");
      old.close();
    } finally {
      engine.handler = previous;
    }
  });

  test("tells the server the request came over https on the listener's port", async () => {
    const c = await new RawClient(TLS_PORT, VIP, "127.0.123.5", {}).connected();
    c.send("GET /xf HTTP/1.1\r\nHost: h\r\n\r\n");
    const j = json(await c.response());
    expect(j.headers["x-forwarded-for"]).toBe("127.0.123.5");
    expect(j.headers["x-forwarded-proto"]).toBe("https");
    expect(j.headers["x-forwarded-port"]).toBe(String(TLS_PORT));
    c.close();
  });
});

describe("HTTP engine: HSTS and session cookies on TLS listeners", () => {
  async function get(port: number, path: string, useTls: boolean) {
    const c = await new RawClient(port, VIP, undefined, useTls ? {} : undefined).connected();
    c.send(`GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`);
    const r = await c.response();
    c.close();
    return r;
  }

  test("every HTTPS response carries Strict-Transport-Security with the configured max-age", async () => {
    const r = await get(TLS_PORT, "/", true);
    expect(r.headers["strict-transport-security"]).toEqual(["max-age=31536000"]);
  });

  test("an error of the proxy's own on HTTPS carries HSTS too", async () => {
    const c = await new RawClient(TLS_PORT, VIP, undefined, {}).connected();
    c.send("GET / HTTP/1.1\r\n\r\n"); // no Host → 400 from the proxy
    const r = await c.response();
    expect(r.status).toBe(400);
    expect(r.headers["strict-transport-security"]).toEqual(["max-age=31536000"]);
  });

  test("the server's own Strict-Transport-Security is kept and not doubled", async () => {
    const r = await get(TLS_PORT, "/own-hsts", true);
    expect(r.headers["strict-transport-security"]).toEqual(["max-age=60; includeSubDomains"]);
  });

  test("no HSTS on plain HTTP, nor when hstsMaxAgeSeconds is null", async () => {
    expect((await get(PLAIN_PORT, "/", false)).headers["strict-transport-security"]).toBeUndefined();
    expect((await get(NO_HSTS_PORT, "/", true)).headers["strict-transport-security"]).toBeUndefined();
  });

  test("JSESSIONID gains Secure and HttpOnly, theme=dark passes unchanged, flags are never doubled", async () => {
    const r = await get(TLS_PORT, "/cookies", true);
    expect(r.headers["set-cookie"]).toEqual([
      "JSESSIONID=abc123; Path=/; Secure; HttpOnly",
      "theme=dark",
      "JSESSIONID=flagged; path=/; secure; HTTPONLY",
      "JSESSIONID=half; Secure; HttpOnly",
    ]);
    expect(r.body.toString()).toBe("cookies");
  });

  test("on plain HTTP the cookies pass unchanged", async () => {
    const r = await get(PLAIN_PORT, "/cookies", false);
    expect(r.headers["set-cookie"]).toEqual(["JSESSIONID=abc123; Path=/", "theme=dark", "JSESSIONID=flagged; path=/; secure; HTTPONLY", "JSESSIONID=half; Secure"]);
  });
});

/**
 * The end of a client connection the client asked to close: the response tells it "Connection: close" (not
 * the pooled server's keep-alive), on plain and TLS listeners, while the server connection stays pooled for
 * the next client. Block 127.0.28.0/24 (.10 engine, .11 origin).
 */
import type * as net from "node:net";
import * as tls from "node:tls";
import { selfSignedCert } from "../../src/sim/portal";
import { withConnectionClose } from "../../src/proxy/http/connection";
import { FakeBackend, FakeVip, listenEngine, parseOneResponse, RawClient, startOrigin, type Origin, type RawResponse } from "./http-fake-vip";

const VIP = "127.0.28.10";
const ORIGIN = "127.0.28.11";
const PLAIN_PORT = 28080;
const TLS_PORT = 28443;
const ORIGIN_PORT = 28081;

const cert = selfSignedCert();
let origin: Origin;
let vip: FakeVip;
let plain: net.Server;
let secure: net.Server;

beforeAll(async () => {
  origin = await startOrigin("portal-1", ORIGIN, ORIGIN_PORT);
  vip = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)]);
  plain = await listenEngine(vip, { address: VIP, port: PLAIN_PORT });
  secure = await listenEngine(vip, { address: VIP, port: TLS_PORT, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
});

afterAll(async () => {
  await Promise.all([plain, secure].map((s) => new Promise((r) => s.close(r))));
  await origin.close();
});

const GET = (extra = "") => `GET /x HTTP/1.1\r\nHost: portal.example.test\r\n${extra}\r\n`;

/** One request over TLS; resolves with the response once the connection has closed. */
function tlsExchange(request: string): Promise<{ res: RawResponse; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = tls.connect({ host: VIP, port: TLS_PORT, rejectUnauthorized: false }, () => s.write(request));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", reject);
    s.on("close", () => {
      const got = parseOneResponse(Buffer.concat(chunks));
      if (!got) reject(new Error("no complete response"));
      else resolve({ res: got.res, closed: true });
    });
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

describe("a client that asks to close", () => {
  test("is answered 'Connection: close' on a plain listener, and the server connection is pooled", async () => {
    const before = origin.accepts;
    for (let i = 0; i < 3; i++) {
      const c = await new RawClient(PLAIN_PORT, VIP).connected();
      c.send(GET("Connection: close\r\n"));
      const res = await c.response();
      expect(res.status).toBe(200);
      expect(res.headers["connection"]).toEqual(["close"]);
      await c.whenClosed();
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(origin.accepts - before).toBeLessThanOrEqual(1);
  });

  test("is answered 'Connection: close' on a TLS listener, with the listener's HSTS", async () => {
    const { res } = await tlsExchange(GET("Connection: close\r\n"));
    expect(res.status).toBe(200);
    expect(res.headers["connection"]).toEqual(["close"]);
    expect(res.headers["strict-transport-security"]).toHaveLength(1);
  });

  test("a keep-alive client still gets the server's keep-alive", async () => {
    const c = await new RawClient(PLAIN_PORT, VIP).connected();
    c.send(GET());
    const res = await c.response();
    expect(res.headers["connection"]).toEqual(["keep-alive"]);
    c.close();
  });
});

describe("withConnectionClose", () => {
  test("replaces every Connection field, whatever its case, and keeps the rest in order", () => {
    const head = "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nContent-Length: 2\r\nCONNECTION: Keep-Alive, x-y\r\nConnection-Info: kept\r\n\r\n";
    expect(withConnectionClose(head)).toBe("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection-Info: kept\r\nConnection: close\r\n\r\n");
  });
});

/**
 * Bad input is refused without harm: each malformed or ambiguous request gets its status and never reaches
 * the real server, while a well-behaved client on another connection is served meanwhile.
 * Block 127.0.21.0/24 (.10 engine, .11 origin, clients from 127.0.121.x).
 */
import { FakeBackend, FakeVip, listenEngine, RawClient, startOrigin, waitFor, type Origin } from "./http-fake-vip";
import type * as net from "node:net";

const VIP = "127.0.21.10";
const ORIGIN = "127.0.21.11";
const PORT = 21080;
const ORIGIN_PORT = 21081;

let origin: Origin;
let vip: FakeVip;
let engine: net.Server;

beforeAll(async () => {
  origin = await startOrigin("portal-1", ORIGIN, ORIGIN_PORT);
  vip = new FakeVip([new FakeBackend("portal-1", ORIGIN, ORIGIN_PORT)], { timeouts: { httpRequestMs: 600 } });
  engine = await listenEngine(vip, { address: VIP, port: PORT } as never);
});

afterAll(async () => {
  await new Promise((r) => engine.close(r));
  await origin.close();
});

/** A well-behaved client on its own connection: gets a 200 from the origin. */
async function goodClient(tag: string): Promise<void> {
  const c = await new RawClient(PORT, VIP, "127.0.121.200").connected();
  c.send(`GET /good/${tag} HTTP/1.1\r\nHost: portal.example\r\n\r\n`);
  const r = await c.response();
  c.close();
  expect(r.status).toBe(200);
}

/** Sends `raw` on one connection while a good client is served on another; returns the bad one's response. */
async function refuse(raw: string | Buffer, tag: string) {
  const bad = await new RawClient(PORT, VIP, "127.0.121.66").connected();
  bad.send(raw);
  const [res] = await Promise.all([bad.response(), goodClient(tag)]);
  await bad.whenClosed();
  return res;
}

const H = "Host: portal.example\r\n";
const cases: [string, string | Buffer, number][] = [
  ["both Content-Length and Transfer-Encoding", `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, 400],
  ["two equal Content-Length headers", `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 400],
  ["two differing Content-Length headers", `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc`, 400],
  ["a Content-Length list", `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, 400],
  ["a non-numeric Content-Length", `POST /smuggle HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400],
  ["Transfer-Encoding whose last coding is not chunked", `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n`, 400],
  ["an unknown Transfer-Encoding", `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n`, 400],
  ["Transfer-Encoding in HTTP/1.0", `POST /smuggle HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ["a space before the colon", `GET /smuggle HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n`, 400],
  ["obs-fold (a continuation line)", `GET /smuggle HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400],
  ["a NUL byte in a header value", `GET /smuggle HTTP/1.1\r\n${H}X-A: a\u0000b\r\n\r\n`, 400],
  ["a bare CR in a header value", `GET /smuggle HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 400],
  ["a bare LF ending a header line", `GET /smuggle HTTP/1.1\r\n${H}X-A: a\nX-B: b\r\n\r\n`, 400],
  ["a header name with a separator", `GET /smuggle HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, 400],
  ["an absolute-form target naming another host", `GET http://intranet.example/admin HTTP/1.1\r\n${H}\r\n`, 400],
  ["an absolute-form target with userinfo", `GET http://user@portal.example/ HTTP/1.1\r\n${H}\r\n`, 400],
  ["two Host headers", `GET /smuggle HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ["an HTTP/1.1 request without Host", `GET /smuggle HTTP/1.1\r\nX-A: b\r\n\r\n`, 400],
  ["a malformed request line", `GET  /smuggle HTTP/1.1\r\n${H}\r\n`, 400],
  ["a control byte in the target", `GET /smu\u0001ggle HTTP/1.1\r\n${H}\r\n`, 400],
  ["the HTTP/2 preface", `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, 505],
  ["CONNECT", `CONNECT portal.example:443 HTTP/1.1\r\n${H}\r\n`, 501],
];

describe("HTTP engine: bad requests never reach the server and never harm other clients", () => {
  test.each(cases)("%s → refused", async (name, raw, status) => {
    const res = await refuse(raw, name.replace(/\W+/g, "-"));
    expect(res.status).toBe(status);
    expect(res.headers.connection).toEqual(["close"]);
    expect(origin.seen.filter((s) => s.url.includes("smuggle") || s.url.includes("admin"))).toEqual([]);
  });

  test("a header section over 32 KiB → 431", async () => {
    const big = `GET /smuggle HTTP/1.1\r\n${H}${"X-Filler: " + "a".repeat(1000) + "\r\n"}`.repeat(1) + ("X-F: " + "b".repeat(1000) + "\r\n").repeat(40);
    const res = await refuse(big, "big");
    expect(res.status).toBe(431);
    expect(origin.seen.filter((s) => s.url.includes("smuggle"))).toEqual([]);
  });

  test("a request head that trickles in too slowly (slowloris) → 408 and close", async () => {
    const slow = await new RawClient(PORT, VIP, "127.0.121.67").connected();
    slow.send(`GET /smuggle HTTP/1.1\r\n`);
    const trickle = setInterval(() => {
      if (!slow.closed) slow.send("X-A: b\r\n");
    }, 100);
    try {
      await goodClient("during-slowloris");
      const res = await slow.response({ timeoutMs: 5000 });
      expect(res.status).toBe(408);
      await slow.whenClosed();
    } finally {
      clearInterval(trickle);
      slow.close();
    }
    expect(origin.seen.filter((s) => s.url.includes("smuggle"))).toEqual([]);
  });

  test("a connection that never sends a byte is closed quietly after the request timeout", async () => {
    const idle = await new RawClient(PORT, VIP, "127.0.121.68").connected();
    await goodClient("during-idle");
    await idle.whenClosed(5000);
    expect(idle.pending.length).toBe(0);
  });

  test("a malformed chunked body → 400, the client connection closed, the server never sees a complete request", async () => {
    const c = await new RawClient(PORT, VIP, "127.0.121.69").connected();
    c.send(`POST /chunky HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n`);
    const [res] = await Promise.all([c.response(), goodClient("during-bad-chunk")]);
    expect(res.status).toBe(400);
    await c.whenClosed();
    await waitFor(() => vip.logs.some((l) => l.event === "http-error" && String(l.reason).includes("chunk")));
    await goodClient("after-bad-chunk");
    expect(origin.seen.filter((s) => s.url === "/chunky")).toEqual([]);
  });

  test("an absolute-form target naming the Host's own authority is served", async () => {
    const c = await new RawClient(PORT, VIP).connected();
    c.send(`GET http://PORTAL.example:80/abs HTTP/1.1\r\n${H}\r\n`);
    expect((await c.response()).status).toBe(200);
    expect(origin.seen.some((s) => s.url === "http://PORTAL.example:80/abs" || s.url === "/abs")).toBe(true);
    c.close();
  });
});

/**
 * The engine's parsing pieces on their own (no sockets): the incremental head reader, the request and
 * response head parsers, the head rewrites and the body framer.
 */
import { HeadReader } from "../../src/proxy/http/head";
import { BodyFramer, BAD, MORE } from "../../src/proxy/http/framing";
import { Body, applyEdits, parseRequestHead, parseResponseHead, rewriteRequestHead, type RequestHead, type ResponseHead } from "../../src/proxy/http/parse";

const req = (s: string) => parseRequestHead(s) as RequestHead;
const resp = (s: string, opts = { secureCookies: null as Set<string> | null, wantHsts: false }, head = false) => parseResponseHead(s, head, opts) as ResponseHead;

describe("HeadReader", () => {
  test("finds a head split at every byte across chunks, with the body bytes after it", () => {
    const text = "GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY";
    const r = new HeadReader(1024);
    let found = null;
    for (let i = 0; i < text.length && !found; i++) {
      const x = r.push(Buffer.from(text[i]), 0, true);
      if (x && x !== "too-large") found = x;
    }
    expect(found).not.toBeNull();
    expect(found!.buf.toString("latin1", found!.start, found!.end)).toBe("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  });

  test("hands back a head inside one chunk without copying it", () => {
    const chunk = Buffer.from("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\nrest");
    const x = new HeadReader(1024).push(chunk, 0, true);
    expect(x).toMatchObject({ buf: chunk, start: 2, end: chunk.length - 4, restEnd: chunk.length });
  });

  test("says too-large once the limit passes without a blank line", () => {
    const r = new HeadReader(100);
    expect(r.push(Buffer.from("GET / HTTP/1.1\r\n" + "X: y\r\n".repeat(10)), 0, true)).toBeNull();
    expect(r.push(Buffer.from("X: y\r\n".repeat(10)), 0, true)).toBe("too-large");
  });
});

describe("request heads", () => {
  test("reads framing, keep-alive and upgrade", () => {
    expect(req("POST /x HTTP/1.1\r\nHost: h\r\ncontent-length: 12\r\n\r\n")).toMatchObject({ body: Body.Length, length: 12, keepAlive: true, stripClose: false, xfOther: false });
    expect(req("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")).toMatchObject({ body: Body.Chunked });
    expect(req("GET / HTTP/1.0\r\n\r\n")).toMatchObject({ keepAlive: false, minor: 0 });
    expect(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).toMatchObject({ keepAlive: true });
    expect(req("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n")).toMatchObject({ keepAlive: false, stripClose: true });
    expect(req("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")).toMatchObject({ upgrade: true });
    expect(req("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")).toMatchObject({ upgrade: false });
  });

  test("rewrites X-Forwarded-* and strips a close token, keeping every other line", () => {
    const s = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nConnection: close, te\r\nX-Forwarded-Proto: gopher\r\nA: b\r\n\r\n";
    const out = rewriteRequestHead(s, req(s), "127.0.0.9", "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n");
    expect(out).toBe(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nA: b\r\nX-Forwarded-For: 1.1.1.1, 127.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\r\n",
    );
  });
});

describe("response heads", () => {
  test("frames by status, method, Transfer-Encoding and Content-Length", () => {
    expect(resp("HTTP/1.1 204 No Content\r\n\r\n")).toMatchObject({ body: Body.None, keepAlive: true });
    expect(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", undefined, true)).toMatchObject({ body: Body.None });
    expect(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")).toMatchObject({ body: Body.Chunked, keepAlive: false });
    expect(resp("HTTP/1.1 200 OK\r\n\r\n")).toMatchObject({ body: Body.Close, keepAlive: false });
    expect(resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")).toMatchObject({ body: Body.Length, keepAlive: false });
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, { secureCookies: null, wantHsts: false })).toMatchObject({ status: 502 });
  });

  test("marks the session cookie's missing flags and leaves others alone", () => {
    const s = "HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=a; Path=/  \r\nset-cookie: theme=dark\r\nSet-Cookie: JSESSIONID=b; HttpOnly; SECURE\r\n\r\n";
    const r = resp(s, { secureCookies: new Set(["JSESSIONID"]), wantHsts: true });
    expect(applyEdits(s, r.edits!)).toBe(
      "HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=a; Path=/; Secure; HttpOnly  \r\nset-cookie: theme=dark\r\nSet-Cookie: JSESSIONID=b; HttpOnly; SECURE\r\n\r\n",
    );
  });
});

describe("BodyFramer", () => {
  test("finds the end of a chunked body fed one byte at a time, trailers included", () => {
    const body = Buffer.from("4;a=b\r\nWiki\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nNEXT");
    const f = new BodyFramer();
    f.start(Body.Chunked, 0);
    let end = -1;
    for (let i = 0; i < body.length; i++) {
      const e = f.feed(body.subarray(i, i + 1), 0);
      if (e !== MORE) {
        expect(e).toBe(1);
        end = i + 1;
        break;
      }
    }
    expect(body.subarray(end).toString()).toBe("NEXT");
  });

  test("refuses chunk sizes and data that do not line up", () => {
    for (const bad of ["x\r\n", "5\r\nabcdef\r\n", "5\nabcde\r\n", "-1\r\n", "fffffffffffffff\r\n"]) {
      const f = new BodyFramer();
      f.start(Body.Chunked, 0);
      expect(f.feed(Buffer.from(bad), 0)).toBe(BAD);
    }
  });

  test("counts a Content-Length body down across chunks", () => {
    const f = new BodyFramer();
    f.start(Body.Length, 10);
    expect(f.feed(Buffer.from("12345"), 0)).toBe(MORE);
    expect(f.feed(Buffer.from("67890GET"), 0)).toBe(5);
    expect(f.done).toBe(true);
  });
});

/**
 * The HTTP engine against loopback origins, driven through a fake VipRuntime (no core): forwarding and
 * framing, keep-alive on both sides, X-Forwarded-*, 100-continue, WebSocket-style upgrade, redirects and the
 * errors a client gets when servers fail. Block 127.0.20.0/24 (.10 engine, .11-.13 origins).
 */
import * as net from "node:net";
import * as http from "node:http";
import { FakeBackend, FakeVip, listenEngine, RawClient, startOrigin, json, waitFor, type Origin } from "./http-fake-vip";

const VIP = "127.0.20.10";
const A = "127.0.20.11";
const B = "127.0.20.12";
let portSeq = 20100;
const nextPort = () => portSeq++;

interface Rig {
  vip: FakeVip;
  engine: net.Server;
  port: number;
  origins: Origin[];
  close(): Promise<void>;
}

async function rig(opts: { vs?: Record<string, unknown>; origins?: ((port: number) => Promise<Origin>)[]; listener?: Record<string, unknown> } = {}): Promise<Rig> {
  const port = nextPort();
  const originPort = nextPort();
  const makers = opts.origins ?? [(p: number) => startOrigin("a", A, p), (p: number) => startOrigin("b", B, p)];
  const origins = await Promise.all(makers.map((m) => m(originPort)));
  const backends = origins.map((o, i) => new FakeBackend(["a", "b", "c"][i], o.address, originPort));
  const vip = new FakeVip(backends, opts.vs);
  const engine = await listenEngine(vip, { address: VIP, port, ...(opts.listener ?? {}) } as never);
  return {
    vip,
    engine,
    port,
    origins,
    async close() {
      await new Promise<void>((r) => engine.close(() => r()));
      await Promise.all(origins.map((o) => o.close()));
    },
  };
}

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: portal.example\r\n${extra}\r\n`;

describe("HTTP engine: forwarding", () => {
  test("forwards a GET, preserves Host and the path, and returns the server's answer", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send(GET("/a/b?c=d"));
      const res = await c.response();
      expect(res.status).toBe(200);
      const j = json(res);
      expect(j.url).toBe("/a/b?c=d");
      expect(j.headers.host).toBe("portal.example");
      c.close();
    } finally {
      await r.close();
    }
  });

  test("appends the client address to an existing X-Forwarded-For chain and sets Proto and Port", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP, "127.0.120.7").connected();
      c.send(GET("/", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n"));
      const j = json(await c.response());
      expect(j.headers["x-forwarded-for"]).toBe("203.0.113.9, 127.0.120.7");
      expect(j.headers["x-forwarded-proto"]).toBe("http");
      expect(j.headers["x-forwarded-port"]).toBe(String(r.port));
      c.send(GET("/second"));
      const j2 = json(await c.response());
      expect(j2.headers["x-forwarded-for"]).toBe("127.0.120.7");
      c.close();
    } finally {
      await r.close();
    }
  });

  test("with clientIp none, the request head reaches the server byte for byte", async () => {
    const r = await rig({ vs: { clientIp: "none" } });
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send("GET /raw HTTP/1.1\r\nHost: h\r\nX-Odd-Case: KeepMe\r\nx-forwarded-for: 1.2.3.4\r\n\r\n");
      await c.response();
      expect(r.origins[0].seen[0].rawHeaders).toEqual(["Host", "h", "X-Odd-Case", "KeepMe", "x-forwarded-for", "1.2.3.4"]);
      c.close();
    } finally {
      await r.close();
    }
  });

  test("streams a Content-Length body and a chunked body to the server and back", async () => {
    const r = await rig({
      origins: [
        (p) =>
          startOrigin("echo", A, p, (req, res, body) => {
            res.writeHead(200, { "content-type": "application/octet-stream" }); // chunked answer
            res.write(body.subarray(0, 3));
            res.end(body.subarray(3));
            return true;
          }),
      ],
    });
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello");
      await new Promise((res) => setTimeout(res, 30));
      c.send(" world");
      const r1 = await c.response();
      expect(r1.headers["transfer-encoding"]).toEqual(["chunked"]);
      expect(r1.body.toString()).toBe("hello world");
      c.send("POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n");
      await new Promise((res) => setTimeout(res, 30));
      c.send("3\r\nfgh\r\n0\r\nX-Trailer: t\r\n\r\n");
      const r2 = await c.response();
      expect(r2.body.toString()).toBe("abcdefgh");
      expect(r.origins[0].seen.map((s) => s.bodyBytes)).toEqual([11, 8]);
      c.close();
    } finally {
      await r.close();
    }
  });

  test("answers pipelined requests in order", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send(GET("/1") + GET("/2") + "HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n" + GET("/4"));
      expect(json(await c.response()).url).toBe("/1");
      expect(json(await c.response()).url).toBe("/2");
      const h = await c.response({ headRequest: true });
      expect(h.status).toBe(200);
      expect(Number(h.headers["content-length"][0])).toBeGreaterThan(0);
      expect(json(await c.response()).url).toBe("/4");
      c.close();
    } finally {
      await r.close();
    }
  });

  test("relays a close-delimited response and then closes the client connection", async () => {
    const port = nextPort();
    const raw = net.createServer((s) => {
      s.once("data", () => s.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"));
    });
    await new Promise<void>((res) => raw.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("raw", A, port)]);
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    try {
      const c = await new RawClient((engine.address() as net.AddressInfo).port, VIP).connected();
      c.send(GET("/"));
      const res = await c.response();
      expect(res.body.toString()).toBe("until the end");
      await c.whenClosed();
    } finally {
      await new Promise((res) => engine.close(res));
      await new Promise((res) => raw.close(res));
    }
  });
});

describe("HTTP engine: keep-alive and persistence", () => {
  test("reuses one server connection across requests and across successive clients", async () => {
    const r = await rig();
    try {
      for (let i = 0; i < 3; i++) {
        const c = await new RawClient(r.port, VIP).connected();
        for (let k = 0; k < 5; k++) {
          c.send(GET(`/${i}/${k}`));
          expect((await c.response()).status).toBe(200);
        }
        c.close();
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(r.origins[0].seen).toHaveLength(15);
      expect(r.origins[0].accepts).toBe(1);
      expect(r.vip.backends[0].sessionsTotal).toBe(3);
      expect(r.vip.backends[0].sessionsOpen).toBe(0);
      expect(r.vip.backends[0].bytesToClient).toBeGreaterThan(0);
    } finally {
      await r.close();
    }
  });

  test("a client's Connection: close ends the client connection but not the pooled server connection", async () => {
    const r = await rig();
    try {
      for (let i = 0; i < 3; i++) {
        const c = await new RawClient(r.port, VIP).connected();
        c.send(GET("/bye", "Connection: close\r\n"));
        expect((await c.response()).status).toBe(200);
        await c.whenClosed();
        await new Promise((res) => setTimeout(res, 30));
      }
      expect(r.origins[0].seen.map((s) => s.headers.connection)).toEqual([undefined, undefined, undefined]);
      expect(r.origins[0].accepts).toBe(1);
    } finally {
      await r.close();
    }
  });

  test("the next request moves to another server when the client's server goes DOWN", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP, "127.0.120.9").connected();
      c.send(GET("/"));
      expect(json(await c.response()).server).toBe("a");
      r.vip.backends[0].state = "DOWN";
      c.send(GET("/"));
      expect(json(await c.response()).server).toBe("b");
      expect(r.vip.backends[0].sessionsOpen).toBe(0);
      expect(r.vip.backends[1].sessionsOpen).toBe(1);
      c.close();
    } finally {
      await r.close();
    }
  });

  test("keeps an idle keep-alive client when the core shuts its server's sessions; its next request goes to another server", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP, "127.0.120.30").connected();
      c.send(GET("/"));
      expect(json(await c.response()).server).toBe("a");
      r.vip.backends[0].state = "DOWN";
      r.vip.backends[0].shutdownSessions();
      expect(r.vip.backends[0].sessionsOpen).toBe(0);
      c.send(GET("/"));
      expect(json(await c.response()).server).toBe("b");
      expect(c.closed).toBe(false);
      c.close();
    } finally {
      await r.close();
    }
  });

  /** A rig whose server "a" holds every /hold request until the test lets go (or never). */
  async function holdingRig() {
    const held: import("node:http").ServerResponse[] = [];
    const r = await rig({
      origins: [
        (p: number) => startOrigin("a", A, p, (req, res) => (req.url === "/hold" ? (held.push(res), true) : false)),
        (p: number) => startOrigin("b", B, p),
      ],
    });
    return { r, held };
  }

  test("a GET still waiting for its answer when its server's sessions are shut is sent again to another server", async () => {
    const { r, held } = await holdingRig();
    try {
      const c = await new RawClient(r.port, VIP, "127.0.120.31").connected();
      c.send(GET("/hold"));
      await waitFor(() => held.length === 1);
      r.vip.backends[0].state = "DOWN";
      r.vip.backends[0].shutdownSessions();
      const res = await c.response();
      expect(res.status).toBe(200);
      expect(json(res)).toMatchObject({ server: "b", method: "GET", url: "/hold" });
    } finally {
      await r.close();
    }
  });

  test("a POST waiting for its answer when its server's sessions are shut is not sent again: it gets a 502, then the connection closes", async () => {
    const { r, held } = await holdingRig();
    try {
      const c = await new RawClient(r.port, VIP, "127.0.120.32").connected();
      c.send("POST /hold HTTP/1.1\r\nHost: portal.example\r\nContent-Length: 0\r\n\r\n");
      await waitFor(() => held.length === 1);
      r.vip.backends[0].state = "DOWN";
      r.vip.backends[0].shutdownSessions();
      const res = await c.response();
      expect(res.status).toBe(502);
      expect(res.headers["connection"]).toEqual(["close"]);
      await c.whenClosed();
      expect(r.origins[1].seen).toHaveLength(0);
    } finally {
      await r.close();
    }
  });


  test("a client served from the pool is pinned to that server, as connect() would pin it", async () => {
    const r = await rig();
    try {
      const first = await new RawClient(r.port, VIP, "127.0.120.20").connected();
      first.send(GET("/"));
      await first.response();
      first.close();
      await waitFor(() => r.vip.logs.some((l) => l.event === "http-connection"));
      const second = await new RawClient(r.port, VIP, "127.0.120.21").connected();
      second.send(GET("/"));
      await second.response();
      expect(r.vip.connects).toBe(1); // the second client used the pooled connection
      expect(r.vip.pins.get("127.0.120.21")).toBe("a");
      second.close();
    } finally {
      await r.close();
    }
  });

  test("when the process drains, an idle keep-alive connection closes at once and a busy one after its response", async () => {
    const r = await rig({
      origins: [
        (p) =>
          startOrigin("slow", A, p, (req, res) => {
            if (req.url !== "/slow") return false;
            setTimeout(() => res.end("late"), 300);
            return true;
          }),
      ],
    });
    try {
      const idle = await new RawClient(r.port, VIP).connected();
      idle.send(GET("/"));
      await idle.response();
      const busy = await new RawClient(r.port, VIP).connected();
      busy.send(GET("/slow"));
      await new Promise((res) => setTimeout(res, 50));
      r.vip.draining = true;
      await idle.whenClosed(1000);
      const res = await busy.response();
      expect(res.body.toString()).toBe("late");
      await busy.whenClosed(1000);
    } finally {
      await r.close();
    }
  });

  test("closes an idle keep-alive connection after httpKeepAliveMs", async () => {
    const r = await rig({ vs: { timeouts: { httpKeepAliveMs: 300 } } });
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send(GET("/"));
      await c.response();
      await c.whenClosed(3000);
      expect(c.pending.length).toBe(0); // closed quietly, no 408
      await waitFor(() => r.vip.logs.some((l) => l.event === "http-connection"));
      const line = r.vip.logs.find((l) => l.event === "http-connection");
      expect(line).toMatchObject({ requests: 1, server: "a", reason: "keep-alive timeout", vip: "TEST" });
    } finally {
      await r.close();
    }
  });

  test("a retry on a fresh connection hides a pooled connection the server closed as we reused it", async () => {
    const port = nextPort();
    let accepts = 0;
    // Answers one request per connection but claims keep-alive, then closes without a word.
    const flaky = net.createServer((s) => {
      accepts++;
      s.once("data", () => {
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        s.once("data", () => s.destroy());
      });
    });
    await new Promise<void>((res) => flaky.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("flaky", A, port)]);
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    try {
      const c = await new RawClient((engine.address() as net.AddressInfo).port, VIP).connected();
      c.send(GET("/1"));
      expect((await c.response()).body.toString()).toBe("ok");
      c.send(GET("/2"));
      expect((await c.response()).body.toString()).toBe("ok");
      expect(accepts).toBe(2);
      c.close();
    } finally {
      await new Promise((res) => engine.close(res));
      await new Promise((res) => flaky.close(res));
    }
  });
});

describe("HTTP engine: 100-continue and upgrade", () => {
  test("forwards Expect: 100-continue and relays the server's 100 before the body is sent", async () => {
    const r = await rig();
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send("PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
      const cont = await c.response();
      expect(cont.status).toBe(100);
      c.send("data");
      const res = await c.response();
      expect(res.status).toBe(200);
      expect(json(res).bodyBytes).toBe(4);
      expect(r.origins[0].seen[0].headers.expect).toBe("100-continue");
      c.close();
    } finally {
      await r.close();
    }
  });

  test("turns the connection into a byte tunnel after the server's 101", async () => {
    const port = nextPort();
    const origin = http.createServer((_q, s) => s.end("no"));
    origin.on("upgrade", (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
      if (head.length) sock.write(head);
      sock.on("data", (d) => sock.write(Buffer.from(d.toString().toUpperCase())));
      sock.on("end", () => sock.end());
      void req;
    });
    await new Promise<void>((res) => origin.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("ws", A, port)]);
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    try {
      const c = await new RawClient((engine.address() as net.AddressInfo).port, VIP).connected();
      c.send(GET("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n"));
      const sw = await c.response();
      expect(sw.status).toBe(101);
      c.send("hello tunnel\r\n\r\n");
      await waitFor(() => c.pending.toString().includes("HELLO TUNNEL"), 3000, "the echo through the tunnel");
      expect(c.pending.toString()).toBe("HELLO TUNNEL\r\n\r\n");
      c.close();
    } finally {
      await new Promise((res) => engine.close(res));
      origin.closeAllConnections();
      await new Promise((res) => origin.close(res));
    }
  });
});

describe("HTTP engine: errors a client understands", () => {
  test("503 with a small body when no server is up", async () => {
    const r = await rig();
    try {
      for (const b of r.vip.backends) b.state = "DOWN";
      const c = await new RawClient(r.port, VIP).connected();
      c.send(GET("/"));
      const res = await c.response();
      expect(res.status).toBe(503);
      expect(res.body.toString()).toContain("503");
      expect(r.vip.logs.some((l) => l.event === "http-error" && l.status === 503)).toBe(true);
    } finally {
      await r.close();
    }
  });

  test("502 when the server closes before answering, and when it answers garbage", async () => {
    const port = nextPort();
    const bad = net.createServer((s) => {
      s.once("data", (d) => {
        if (d.toString().includes("/close")) s.destroy();
        else s.end("SPDY/9 what\r\n\r\n");
      });
    });
    await new Promise<void>((res) => bad.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("bad", A, port)]);
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    const ePort = (engine.address() as net.AddressInfo).port;
    try {
      for (const path of ["/close", "/garbage"]) {
        const c = await new RawClient(ePort, VIP).connected();
        c.send(GET(path));
        const res = await c.response();
        expect(res.status).toBe(502);
        c.close();
      }
    } finally {
      await new Promise((res) => engine.close(res));
      await new Promise((res) => bad.close(res));
    }
  });

  test("a response cut mid-body closes the client connection instead of inventing an end", async () => {
    const port = nextPort();
    const cut = net.createServer((s) => s.once("data", () => s.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some")));
    await new Promise<void>((res) => cut.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("cut", A, port)]);
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    try {
      const c = await new RawClient((engine.address() as net.AddressInfo).port, VIP).connected();
      c.send(GET("/"));
      await c.whenClosed();
      expect(c.pending.toString()).toMatch(/^HTTP\/1.1 200 OK[\s\S]*only some$/);
      await waitFor(() => vip.logs.some((l) => l.event === "http-connection"));
      expect(vip.logs.find((l) => l.event === "http-connection")?.reason).toMatch(/mid-response/);
    } finally {
      await new Promise((res) => engine.close(res));
      await new Promise((res) => cut.close(res));
    }
  });

  test("504 when the server does not answer within serverIdleSeconds", async () => {
    const port = nextPort();
    const mute = net.createServer(() => undefined);
    const held: net.Socket[] = [];
    mute.on("connection", (s) => held.push(s));
    await new Promise<void>((res) => mute.listen(port, A, res));
    const vip = new FakeVip([new FakeBackend("mute", A, port)], { timeouts: { serverIdleSeconds: 1 } });
    const engine = await listenEngine(vip, { address: VIP, port: nextPort() } as never);
    try {
      const c = await new RawClient((engine.address() as net.AddressInfo).port, VIP).connected();
      c.send(GET("/"));
      const res = await c.response({ timeoutMs: 5000 });
      expect(res.status).toBe(504);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((res) => engine.close(res));
      await new Promise((res) => mute.close(res));
    }
  });
});

describe("HTTP engine: redirect listeners", () => {
  test("answers 301 to https on the configured port, without the port when it is 443", async () => {
    const r = await rig({ listener: { redirectToHttpsPort: 8443 } });
    const engine2 = await listenEngine(r.vip, { address: VIP, port: nextPort(), redirectToHttpsPort: 443 } as never);
    try {
      const c = await new RawClient(r.port, VIP).connected();
      c.send("GET /ajaxui/?x=1 HTTP/1.1\r\nHost: portal.example:8080\r\n\r\n");
      const res = await c.response();
      expect(res.status).toBe(301);
      expect(res.headers.location).toEqual(["https://portal.example:8443/ajaxui/?x=1"]);
      c.send(GET("/again"));
      expect((await c.response()).headers.location).toEqual(["https://portal.example:8443/again"]);
      const c2 = await new RawClient((engine2.address() as net.AddressInfo).port, VIP).connected();
      c2.send("GET / HTTP/1.1\r\nHost: portal.example:80\r\n\r\n");
      expect((await c2.response()).headers.location).toEqual(["https://portal.example/"]);
      expect(r.origins[0].seen).toHaveLength(0);
      c.close();
      c2.close();
    } finally {
      await new Promise((res) => engine2.close(res));
      await r.close();
    }
  });
});

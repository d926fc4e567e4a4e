/**
 * The TCP relay's server->client read buffers: big (64 KiB, pooled) while a transfer fills them, small
 * (4 KiB) once the connection is quiet — an idle CTTP session must not hold 64 KiB — and a pooled buffer is
 * owned by exactly one party at a time (the reader, or a queued write). Real sockets on 127.0.16.0/24.
 */
import * as net from "node:net";
import { pooledReadBuffers } from "../../src/proxy/buffers";
import { ServerToClient } from "../../src/proxy/tcp";

const HOST = "127.0.16.10";

/** A connected socket pair on loopback: [accepted side, connecting side]. */
async function pair(): Promise<{ a: net.Socket; b: net.Socket; close(): Promise<void> }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, HOST, () => r()));
  const accepted = new Promise<net.Socket>((r) => srv.once("connection", r));
  const b = net.connect({ host: HOST, port: (srv.address() as net.AddressInfo).port });
  const a = await accepted;
  return {
    a,
    b,
    close: async () => {
      a.destroy();
      b.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

describe("TCP relay read buffers", () => {
  test("a read that fills the buffer asks for the 64 KiB one; a small read goes back to 4 KiB", async () => {
    const client = await pair();
    const server = await pair();
    const sink = new ServerToClient(client.a);
    sink.attach(server.b);
    let got = 0;
    client.b.on("data", (d: Buffer) => (got += d.length));

    const first = sink.onread.buffer();
    expect(first.length).toBe(4096); // a new connection starts small
    first.fill(1);
    sink.onread.callback(first.length, first); // full: bulk transfer
    const big = sink.onread.buffer();
    expect(big.length).toBe(65536);
    sink.onread.callback(big.length, big);
    expect(sink.onread.buffer()).toBe(big); // stays big (and the same buffer) while reads fill it
    sink.onread.callback(100, big); // the transfer ends with a small read
    const quiet = sink.onread.buffer();
    expect(quiet.length).toBe(4096);
    expect(sink.heldBytes).toBe(4096);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toBe(4096 + 65536 + 100);
    await client.close();
    await server.close();
  });

  test("a buffer goes back to the pool once: big -> small with the write completed and its callback run", async () => {
    const client = await pair();
    const server = await pair();
    const sink = new ServerToClient(client.a);
    sink.attach(server.b);
    client.b.resume();
    for (let round = 0; round < 5; round++) {
      let buf = sink.onread.buffer();
      sink.onread.callback(buf.length, buf); // fill -> big next
      buf = sink.onread.buffer();
      sink.onread.callback(buf.length, buf);
      buf = sink.onread.buffer();
      sink.onread.callback(10, buf); // small read: the big buffer is given back by nextBuffer...
      sink.onread.buffer();
      await new Promise((r) => setImmediate(r)); // ...and the write's callback must not give it back again
    }
    const pool = pooledReadBuffers();
    expect(new Set(pool).size).toBe(pool.length);
    await client.close();
    await server.close();
  });

  test("buffers lent to writes that queued without a 'drain' are freed at the next read once the queue is empty", async () => {
    // A client socket whose queue the test controls: every write queues (below the high-water mark, so no
    // 'drain' ever comes), and the queue empties between reads.
    let queued = 0;
    const client = { destroyed: false, on: () => client, write: () => ((queued += 1), true), get writableLength() { return queued; } };
    const server = { on: () => server, resume: () => undefined };
    const sink = new ServerToClient(client as unknown as net.Socket);
    sink.attach(server as unknown as net.Socket);
    for (let i = 0; i < 100; i++) {
      const buf = sink.onread.buffer();
      sink.onread.callback(buf.length, buf); // queued: the buffer is lent to the client's queue
      queued = 0; // the kernel took it all; no 'drain' (the write never returned false)
    }
    expect(sink.lentBuffers).toBe(1); // only the last read's buffer, still queued as far as the sink knows
  });

  test("a write the client cannot take yet keeps its buffer: the next read gets another, bytes arrive intact", async () => {
    const client = await pair();
    const server = await pair();
    const sink = new ServerToClient(client.a);
    sink.attach(server.b);
    client.b.pause(); // the client does not read: writes queue up
    const sent: Buffer[] = [];
    let buf = sink.onread.buffer();
    buf.fill(7);
    sink.onread.callback(buf.length, buf);
    const queued = new Set<Buffer>();
    let queuedAny = false;
    for (let i = 0; i < 64; i++) {
      buf = sink.onread.buffer();
      expect(queued.has(buf)).toBe(false); // a queued write's buffer is never handed out for the next read
      buf.fill(i & 0xff);
      sent.push(Buffer.from(buf));
      const before = client.a.writableLength;
      sink.onread.callback(buf.length, buf);
      if (client.a.writableLength > before) (queued.add(buf), (queuedAny = true));
    }
    expect(queuedAny).toBe(true); // 4 MiB against a paused reader: the kernel buffers fill, writes queue
    const chunks: Buffer[] = [];
    const total = 4096 + sent.reduce((n, b) => n + b.length, 0);
    const all = new Promise<Buffer>((r) => {
      let n = 0;
      client.b.on("data", (d: Buffer) => {
        chunks.push(d);
        n += d.length;
        if (n >= total) r(Buffer.concat(chunks));
      });
    });
    client.b.resume();
    const got = await all;
    expect(got.subarray(4096).equals(Buffer.concat(sent))).toBe(true);
    // Once the client's queue has drained, the buffers it held go back to the pool, each once.
    await new Promise((r) => setImmediate(r));
    const pool = pooledReadBuffers();
    expect(pool.some((b) => queued.has(b))).toBe(true);
    expect(new Set(pool).size).toBe(pool.length);
    await client.close();
    await server.close();
  });
});

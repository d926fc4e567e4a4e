/**
 * The TCP relay on Node's stream handles: the layer under net.Socket (libuv's TCP handle as Node's own
 * `stream_wrap` binding exposes it), without the Readable/Writable machinery on top.
 *
 * Why: on the bench's 100-byte request/response traffic the stream layer is most of our user-space time per
 * relayed read (push, the nextTick of maybeReadMore, writeOrBuffer, the write callbacks' nextTick). A relay
 * on the handles measured 15-20% less CPU per request than on the sockets (same run, same HAProxy; see
 * README, Benchmark). The sockets stay the owners of their handles: connect, errors, end (shutdown after
 * the queued writes), destroy, the byte counters and 'close' are still theirs; only the reads and writes
 * of the relayed bytes bypass the streams.
 *
 * The binding is Node's internal interface (process.binding, pending deprecation DEP0111), so everything is
 * checked at load: if a Node release changes it, `handles` is undefined and the TCP engine relays on the
 * sockets as before (tcp.ts). `CTERA_LB_TCP_RELAY=streams` chooses the socket relay on purpose.
 */
import type { Socket } from "node:net";
import { getSystemErrorName } from "node:util";
import { giveBuf, nextReadSize, readBuffer, RELAY_HIGH_WATER, SMALL_READ } from "./buffers";
import { streamWrap, UV_EOF, type StreamBinding, type StreamReq } from "./stream-binding";

/** Node's TCP stream handle (TCPWrap), the methods used here. */
interface StreamHandle {
  /** Called after every read; with a user buffer, its return value (a Buffer) is where the next read goes. */
  onread: () => Buffer | undefined;
  /** Reads go into `buf` (Node's `onread` socket option uses the same call). */
  useUserBuffer(buf: Buffer): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: StreamReq, data: Buffer): number;
}

/** The binding when this Node has it (and CTERA_LB_TCP_RELAY is not "streams"). */
export const handles: StreamBinding | undefined = process.env.CTERA_LB_TCP_RELAY === "streams" ? undefined : streamWrap;

/** Which relay new TCP connections use; tests switch it to run the same cases on both. */
export const tcpRelay: { mode: "handles" | "streams" } = { mode: handles ? "handles" : "streams" };

/** A socket's handle when it is Node's TCP handle with the methods used here (else: the streams relay). */
export function tcpHandle(s: Socket): StreamHandle | undefined {
  const h = (s as unknown as { _handle?: { constructor?: { name?: string } } })._handle;
  const ok = h && h.constructor?.name === "TCP" && typeof (h as Partial<StreamHandle>).writeBuffer === "function" && typeof (h as Partial<StreamHandle>).useUserBuffer === "function";
  return ok ? (h as unknown as StreamHandle) : undefined;
}

export type Side = "client" | "server";

export interface RelayHooks {
  /** A side sent its FIN (the first reason of a connection is the one logged). */
  finish(reason: `${Side}-closed`): void;
  /** Close both sockets now. */
  kill(reason: `${Side}-error` | `${Side}-idle`, detail?: string): void;
}

/** Read buffers lent to queued writes, process-wide (tests: they all come back). */
export const lent = { buffers: 0 };

/**
 * Relays bytes both ways between two connected plain TCP sockets on their handles. Each direction reads
 * into a buffer of its own — 64 KiB from the process's pool while reads fill it, 4 KiB once they do not —
 * and writes each read to the other handle at once. Usually the write completes in that call and the buffer
 * takes the next read; a write that queues keeps its buffer until it completes (then back to the pool) and
 * the next read gets another; the reading side pauses while more than RELAY_HIGH_WATER is queued. A FIN is
 * passed on with end() (the shutdown follows the queued writes); once both sides have sent theirs and both
 * shutdowns are done, both sockets are destroyed. Idle: no byte either way for the shorter of the two idle
 * timeouts (a Node socket's own timeout counts reads and writes, so both sides see every relayed byte).
 * Returns what the caller runs once both sockets have closed (stops the timer, gives the buffers back).
 */
export function relayOnHandles(
  client: Socket,
  server: Socket,
  idle: { clientMs: number; serverMs: number },
  hooks: RelayHooks,
): () => void {
  const B = handles!;
  const state = B.streamBaseState;
  // Read once: the binding object is slow to read a property from on every relayed read.
  const kRead = B.kReadBytesOrError;
  const kAsync = B.kLastWriteWasAsync;
  const ch = tcpHandle(client)!;
  const sh = tcpHandle(server)!;
  let last = Date.now();
  let shutdowns = 0;

  const limit = Math.min(idle.clientMs, idle.serverMs);
  const idleReason = idle.clientMs <= idle.serverMs ? "client-idle" : "server-idle";
  const check = () => {
    const quiet = Date.now() - last;
    if (quiet >= limit) hooks.kill(idleReason);
    else timer = setTimeout(check, limit - quiet);
  };
  let timer = setTimeout(check, limit);

  const direction = (fromSock: Socket, from: StreamHandle, toSock: Socket, to: StreamHandle, side: Side, other: Side) => {
    let queued = 0;
    let paused = false;
    let ended = false;
    let cur = readBuffer(SMALL_READ);
    // A write request object is only taken by a write that queues (Node's StreamBase leaves it untouched when
    // the write completes in the call, the usual case), so one object serves every write until one queues.
    let req = new B.WriteWrap();
    const next = (size: number) => (cur = readBuffer(size));
    // The last short view of `cur` handed to a write: request/response traffic reads the same sizes again and
    // again, so the view is reused instead of made anew for every read (a write keeps no reference to it).
    let view: Buffer | null = null;
    let viewOf: Buffer | null = null;
    const bytesOf = (buf: Buffer, n: number): Buffer => {
      if (n === buf.length) return buf;
      if (viewOf === buf && view!.length === n) return view!;
      viewOf = buf;
      return (view = buf.subarray(0, n));
    };
    // Bytes the socket read before the relay started (its stream buffer), in order, ahead of everything else.
    for (let b: Buffer | null; (b = fromSock.read() as Buffer | null) !== null; ) toSock.write(b);
    from.useUserBuffer(cur);
    from.onread = () => {
      const n = state[kRead];
      if (n > 0) {
        if (toSock.destroyed) {
          // The other side was closed on its own (a shutdown closing client sockets, an error): nothing can be
          // delivered any more; close this side too (its 'close' completes the connection's log line).
          fromSock.destroy();
          return undefined;
        }
        last = Date.now();
        const buf = cur;
        const err = to.writeBuffer(req, bytesOf(buf, n));
        if (err !== 0) {
          hooks.kill(`${other}-error`, typeof err === "number" ? getSystemErrorName(err) : "closed");
          return undefined;
        }
        const want = nextReadSize(n, buf.length);
        if (state[kAsync] !== 0) {
          // The write queued: this request object now belongs to it (the next write gets a fresh one).
          const queuedReq = req;
          req = new B.WriteWrap();
          queuedReq.handle = to;
          queuedReq.async = true;
          queuedReq.buffer = buf; // held by the request while the write is queued
          queued += n;
          lent.buffers++;
          queuedReq.oncomplete = (status) => {
            queued -= n;
            lent.buffers--;
            giveBuf(buf);
            if (toSock.destroyed) return; // a write cancelled by the close
            if (status < 0) return hooks.kill(`${other}-error`, getSystemErrorName(status));
            last = Date.now();
            if (paused && queued <= RELAY_HIGH_WATER / 2) {
              paused = false;
              if (!ended) from.readStart();
            }
          };
          if (queued > RELAY_HIGH_WATER && !paused) {
            paused = true;
            from.readStop();
          }
          return next(want);
        }
        if (want === buf.length) return undefined; // the same buffer takes the next read
        giveBuf(buf);
        return next(want);
      }
      if (n < 0) {
        if (n === UV_EOF) onEnd();
        else hooks.kill(`${side}-error`, getSystemErrorName(n));
      }
      return undefined;
    };
    const onEnd = () => {
      if (ended) return;
      ended = true;
      hooks.finish(`${side}-closed`);
      // FIN to the other side once its queued writes are out; when both ways are shut, the connection is done.
      toSock.end(() => {
        if (++shutdowns === 2) {
          client.destroy();
          server.destroy();
        }
      });
    };
    // A FIN the socket's stream had already read (before the relay started) arrives as its 'end' event.
    fromSock.once("end", onEnd);
    from.readStart(); // an error (already reading) when the socket's stream had started it: fine
    // Once both handles are closed no read goes into `cur` any more.
    return () => giveBuf(cur);
  };
  const releaseClientSide = direction(client, ch, server, sh, "client", "server");
  const releaseServerSide = direction(server, sh, client, ch, "server", "client");
  return () => {
    clearTimeout(timer);
    releaseClientSide();
    releaseServerSide();
  };
}

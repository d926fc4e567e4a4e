/**
 * The process's pool of 64 KiB read buffers, shared by both data paths: the TCP relay (server->client reads
 * of a bulk transfer) and the HTTP engine (a server connection streaming a large body, and copies out of the
 * shared read buffer). 64 KiB reads keep the syscall count of a large transfer low (measured: 16 KiB reads
 * gave 0.68 x HAProxy's TCP MiB/s, 64 KiB 0.95-1.08). A buffer is in the pool only while nobody reads into
 * it or writes from it; whoever owns it gives it back, once.
 */
export const READ_SIZE = 64 * 1024;
/** Buffers kept for reuse; more are left to the garbage collector. */
const FREE_MAX = 32;
const free: Buffer[] = [];

export const takeBuf = (): Buffer => free.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);

/** Back to the pool (a buffer of another size is left to the garbage collector). */
export const giveBuf = (b: Buffer): void => {
  if (b.length === READ_SIZE && free.length < FREE_MAX) free.push(b);
};

/** The pooled buffers not in use (tests: a buffer must never be in the pool twice). */
export function pooledReadBuffers(): readonly Buffer[] {
  return [...free];
}

/** The read buffer of a quiet TCP relay direction: an idle CTTP session must not hold 64 KiB (Node asks for
 * the next read's buffer right after each read and keeps it while the connection is idle). */
export const SMALL_READ = 4 * 1024;

/** A TCP relay pauses reading one side while more than this is queued towards the other. */
export const RELAY_HIGH_WATER = 1024 * 1024;

/** The buffer size for the read after one of `n` bytes into a buffer of `len`: a read that filled it asks
 * for the big one, one that fits the small one goes back to it, anything between keeps the size. */
export const nextReadSize = (n: number, len: number): number => (n >= len ? READ_SIZE : n <= SMALL_READ ? SMALL_READ : len);

/** A read buffer of that size: a pooled 64 KiB one, or a small one of its own. */
export const readBuffer = (size: number): Buffer => (size === READ_SIZE ? takeBuf() : Buffer.allocUnsafeSlow(SMALL_READ));

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

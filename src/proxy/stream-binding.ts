/**
 * Node's `stream_wrap` binding: the StreamBase layer under net.Socket and tls.TLSSocket (write and shutdown
 * requests, the shared state a read or write reports through). The TCP relay (tcp-handles.ts) and the TLS
 * engine (http/tls-handles.ts) use it past the streams. It is Node's internal interface (process.binding,
 * pending deprecation DEP0111), so its shape is checked here once: on a Node where it differs,
 * `streamWrap` is undefined and both fall back to Node's sockets.
 */
import { types } from "node:util";

/** A write or shutdown request (WriteWrap, ShutdownWrap): `oncomplete(status)` runs when it has finished. */
export interface StreamReq {
  handle: unknown;
  async: boolean;
  buffer: Buffer | undefined;
  oncomplete: ((status: number) => void) | undefined;
}

export interface StreamBinding {
  WriteWrap: new () => StreamReq;
  ShutdownWrap: new () => StreamReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

/** libuv's end-of-stream code (the same on every Unix). */
export const UV_EOF = -4095;

/** process.binding(name), or undefined when this Node refuses it. */
export function nodeBinding(name: string): Record<string, unknown> | undefined {
  try {
    return (process as unknown as { binding(name: string): Record<string, unknown> }).binding(name);
  } catch {
    return undefined;
  }
}

function load(): StreamBinding | undefined {
  const b = nodeBinding("stream_wrap") as Partial<StreamBinding> | undefined;
  if (!b) return undefined;
  const ok =
    typeof b.WriteWrap === "function" &&
    typeof b.ShutdownWrap === "function" &&
    types.isInt32Array(b.streamBaseState) && // (not instanceof: the check must hold in any realm)
    [b.kReadBytesOrError, b.kArrayBufferOffset, b.kLastWriteWasAsync].every((k) => Number.isInteger(k) && (k as number) >= 0 && (k as number) < b.streamBaseState!.length);
  return ok ? (b as StreamBinding) : undefined;
}

/** The binding when this Node has it in the shape used here. */
export const streamWrap: StreamBinding | undefined = load();

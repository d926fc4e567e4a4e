/**
 * The messages between the `ctera-lb serve` primary and its worker processes (one ordered IPC channel each).
 * Types only: the worker entry imports nothing of the control plane.
 */
import type { RuntimeConfig } from "../config";
import type { BalanceCounts } from "./balance";
import type { CountersSnapshot } from "./core";
import type { Health } from "./health";
import type { PinRecord } from "./persistence";

export type AdminState = "DRAIN" | "HALT" | null;
export type StateMsg = { vip: string; server: string; health: Health; admin: AdminState };

/** Primary → worker. A "listener" message carries the primary's listening server as its handle, a "conn"
 * message an accepted connection's TCP handle (accept balancing, balance.ts); "load" is the primary's open
 * connections, once a second. */
export type ToWorker =
  | { t: "config"; config: RuntimeConfig; processes: number; states?: StateMsg[]; pins?: Record<string, PinRecord[]>; ticketKeys?: string }
  | { t: "listener"; key: string }
  | { t: "listener-failed"; key: string; error: string }
  | ({ t: "state" } & StateMsg)
  | { t: "pins"; vip: string; records: PinRecord[] }
  | { t: "drain"; timeoutMs: number }
  | { t: "load"; open: number }
  | { t: "conn"; key: string };

/** Worker → primary. "hello": the worker listens for messages now (anything sent before could be lost).
 * "conn": a connection passed to the primary (its TCP handle); "stats" carries the worker's open connections. */
export type ToPrimary =
  | { t: "hello" }
  | { t: "ready" }
  | { t: "fatal"; error: string }
  | { t: "stats"; counters: CountersSnapshot; pins: Record<string, PinRecord[]>; load: BalanceCounts }
  | { t: "conn"; key: string };

/** Set in a worker's environment by the primary. */
export const WORKER_ENV = "CTERA_LB_WORKER";

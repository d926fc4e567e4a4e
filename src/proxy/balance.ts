/**
 * Accept balancing between the `serve` processes that share a listening socket.
 *
 * Every process accepts on the same socket, and the kernel wakes them all: whichever runs first drains the
 * backlog. A burst of new connections (wrk's 50 at start, Edge Filers reconnecting after a restart) then
 * lands mostly on one process — measured 44/6 and 42/8 under the benchmark — and long-lived connections
 * (keep-alive, CTTP sessions) stay there: one process carries the load while the other idles. HAProxy
 * spreads accepted connections over its threads for the same reason.
 *
 * Here a process that holds more open connections than its least-loaded sibling (plus a slack) passes a new
 * connection, before reading a byte of it, to that sibling over the IPC channel (the socket's descriptor
 * travels; the sibling admits it as if it had accepted it). Loads come from the siblings' once-a-second
 * reports, plus this process's own hand-offs since the last report. A connection taken over is never passed
 * on again. Short connections barely move the counts, so they rarely pay for a hand-off.
 */

/** How far above its least-loaded sibling a process may be before it passes new connections on. */
export function balanceSlack(mine: number): number {
  return 2 + (mine >> 4);
}

/** The end of an IPC channel a connection is passed through: a worker's ChildProcess, or `process` in a worker. */
export interface ConnChannel {
  readonly connected: boolean;
  send?(message: { t: "conn"; key: string }, handle: never, options: object, callback: () => void): boolean;
}

/** This process's counts, as /api/status shows them (ProcessLoad without pid and role). */
export interface BalanceCounts {
  openConnections: number;
  passedOn: number;
  takenOver: number;
}

/** Closes a TCP handle passed to another process (its descriptor lives on there) or one that could not be adopted. */
function closeHandle(handle: unknown): void {
  (handle as { close?: () => void } | undefined)?.close?.();
}

/** Sends an accepted connection's handle to the process at the other end of `channel`, then closes this
 * process's copy; false when the channel is gone (the connection stays here). */
export function passConnection(channel: ConnChannel, key: string, handle: unknown): boolean {
  if (!channel.connected || !channel.send) return false;
  channel.send({ t: "conn", key }, handle as never, {}, () => closeHandle(handle));
  return true;
}

export class AcceptBalance<P> {
  /** Each sibling's open connections: its last report plus what was passed to it since. */
  private readonly loads = new Map<P, number>();
  passedOn = 0;
  takenOver = 0;

  /** `pass` sends the handle to the peer, false when it cannot (the peer's channel is gone). */
  constructor(private readonly pass: (peer: P, key: string, handle: unknown) => boolean) {}

  /** The hook for CoreOptions.handOff, or undefined when `CTERA_LB_ACCEPT_BALANCE=off`. */
  hook(): ((key: string, handle: unknown, open: number) => boolean) | undefined {
    return acceptBalanceOn() ? (key, handle, open) => this.offer(key, handle, open) : undefined;
  }

  /** A connection a sibling passed here: admitted by this process's core, or closed when it cannot be. */
  takeOver(core: { adopt(key: string, handle: unknown): boolean } | undefined, key: string, handle: unknown): void {
    if (core?.adopt(key, handle)) this.takenOver++;
    else closeHandle(handle);
  }

  counts(openConnections: number): BalanceCounts {
    return { openConnections, passedOn: this.passedOn, takenOver: this.takenOver };
  }

  /** A sibling's own count of its open connections (it replaces the estimate). */
  report(peer: P, open: number): void {
    this.loads.set(peer, open);
  }

  remove(peer: P): void {
    this.loads.delete(peer);
  }

  /** Passes the connection on if this process (`mine` open connections) is ahead of its least-loaded
   * sibling by more than the slack; true when it did (the caller must not touch the handle any more). */
  offer(key: string, handle: unknown, mine: number): boolean {
    let target: P | undefined;
    let min = Infinity;
    for (const [p, n] of this.loads) {
      if (n < min) {
        min = n;
        target = p;
      }
    }
    if (target === undefined || mine <= min + balanceSlack(mine)) return false;
    if (!this.pass(target, key, handle)) {
      this.loads.delete(target);
      return false;
    }
    this.loads.set(target, min + 1);
    this.passedOn++;
    return true;
  }
}

/** `CTERA_LB_ACCEPT_BALANCE=off` leaves the spreading of connections to the kernel alone (as before). */
export function acceptBalanceOn(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CTERA_LB_ACCEPT_BALANCE !== "off";
}

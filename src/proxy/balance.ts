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

export class AcceptBalance<P> {
  /** Each sibling's open connections: its last report plus what was passed to it since. */
  private readonly loads = new Map<P, number>();
  passedOn = 0;
  takenOver = 0;

  /** `pass` sends the handle to the peer, false when it cannot (the peer's channel is gone). */
  constructor(private readonly pass: (peer: P, key: string, handle: unknown) => boolean) {}

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

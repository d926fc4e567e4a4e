/**
 * One coarse sweep for the per-connection deadlines (request head, keep-alive idle, closing grace) instead
 * of a timer object per request: at tens of thousands of requests per second, arming and disarming a timer
 * each time costs more than checking a number every 100 ms. The interval is unref'd and stops when no
 * connection is watched, so it never holds the process (or a test run) open.
 */
export interface HasDeadline {
  /** Epoch ms; 0 = none. */
  deadline: number;
  onDeadline(now: number): void;
  /** Set while the connection idles between requests: the VIP, to see when the process starts draining. */
  idle: { readonly draining?: boolean } | null;
  onDrain(): void;
}

export const SWEEP_MS = 100;
const watched = new Set<HasDeadline>();
let ticker: NodeJS.Timeout | null = null;

function sweep(): void {
  const now = Date.now();
  for (const c of watched) {
    if (c.deadline !== 0 && c.deadline <= now) {
      c.deadline = 0;
      c.onDeadline(now);
    } else if (c.idle !== null && c.idle.draining) c.onDrain();
  }
  if (watched.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = null;
  }
}

export function watch(c: HasDeadline): void {
  watched.add(c);
  if (!ticker) {
    ticker = setInterval(sweep, SWEEP_MS);
    ticker.unref();
  }
}

export function unwatch(c: HasDeadline): void {
  watched.delete(c);
}

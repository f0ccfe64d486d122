// Reconnect delays: exponential backoff with full jitter (a uniformly
// random delay up to the exponential bound), so clients cut off together
// do not come back together.

/** Backoff settings. */
export interface BackoffOptions {
  /** Bound of the first delay, ms (default 500). */
  initialMs?: number;
  /** Largest bound, ms (default 30000). */
  maxMs?: number;
}

/** Successive reconnect delays of one connection. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = Math.max(1, options.initialMs ?? 500);
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? 30_000);
  }

  /** The next delay, ms: uniform in [0, min(max, initial * 2^attempt)). */
  next(): number {
    const bound = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * bound);
  }

  /** Back to the first delay (the server accepted the connection). */
  reset(): void {
    this.attempt = 0;
  }
}

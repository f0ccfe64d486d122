// Reconnect delays: exponential backoff with full jitter (a uniformly
// random delay up to the exponential bound), so clients cut off together
// do not come back together.
/** Successive reconnect delays of one connection. */
export class Backoff {
    constructor(options = {}, random = Math.random) {
        this.random = random;
        this.attempt = 0;
        this.initialMs = Math.max(1, options.initialMs ?? 500);
        this.maxMs = Math.max(this.initialMs, options.maxMs ?? 30000);
    }
    /** The next delay, ms: uniform in [0, min(max, initial * 2^attempt)). */
    next() {
        const bound = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
        this.attempt += 1;
        return Math.floor(this.random() * bound);
    }
    /** Back to the first delay (the server accepted the connection). */
    reset() {
        this.attempt = 0;
    }
}

/** Backoff settings. */
export interface BackoffOptions {
    /** Bound of the first delay, ms (default 500). */
    initialMs?: number;
    /** Largest bound, ms (default 30000). */
    maxMs?: number;
}
/** Successive reconnect delays of one connection. */
export declare class Backoff {
    private readonly random;
    private attempt;
    private readonly initialMs;
    private readonly maxMs;
    constructor(options?: BackoffOptions, random?: () => number);
    /** The next delay, ms: uniform in [0, min(max, initial * 2^attempt)). */
    next(): number;
    /** Back to the first delay (the server accepted the connection). */
    reset(): void;
}

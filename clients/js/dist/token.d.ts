/** `exp` of a JWT in ms since the epoch, or `null` when it has none or is not a JWT. */
export declare function tokenExpiryMs(token: string): number | null;
/**
 * When to fetch the next token: `marginMs` before expiry, but never later
 * than three quarters into the token's remaining life (short-lived tokens)
 * and never sooner than `minDelayMs` from `now`.
 */
export declare function refreshAt(expiryMs: number, now: number, marginMs: number, minDelayMs?: number): number;

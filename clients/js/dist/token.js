// When a JWT expires, read from its payload without verifying it (the
// server verifies; the client only needs to know when to renew).
/** `exp` of a JWT in ms since the epoch, or `null` when it has none or is not a JWT. */
export function tokenExpiryMs(token) {
    const payload = token.split(".")[1];
    if (!payload)
        return null;
    try {
        const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
        const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
        const claims = JSON.parse(decodeBase64(padded));
        if (typeof claims !== "object" || claims === null)
            return null;
        const exp = claims.exp;
        return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
    }
    catch {
        return null;
    }
}
function decodeBase64(text) {
    const binary = atob(text);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
}
/**
 * When to fetch the next token: `marginMs` before expiry, but never later
 * than three quarters into the token's remaining life (short-lived tokens)
 * and never sooner than `minDelayMs` from `now`.
 */
export function refreshAt(expiryMs, now, marginMs, minDelayMs = 1000) {
    const life = expiryMs - now;
    const margin = Math.min(marginMs, Math.max(0, life) / 4);
    return Math.max(now + minDelayMs, expiryMs - margin);
}

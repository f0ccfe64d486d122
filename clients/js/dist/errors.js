// The one error type the client reports.
/** An error the server sent (`code` from docs/protocol.md) or a client-side failure. */
export class TickcastError extends Error {
    constructor(code, message, options = {}) {
        super(message ? `${code}: ${message}` : code);
        this.name = "TickcastError";
        this.code = code;
        this.subscription = options.subscription;
        this.closeCode = options.closeCode;
    }
}

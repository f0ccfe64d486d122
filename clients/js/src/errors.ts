// The one error type the client reports.

/** An error the server sent (`code` from docs/protocol.md) or a client-side failure. */
export class TickcastError extends Error {
  /** The protocol's error code (`bad_request`, `forbidden`, `token_expired`, ...), or `transport` / `token` for client-side failures. */
  readonly code: string;
  /** The subscription it concerns, when it concerns one. */
  readonly subscription: string | undefined;
  /** The close code that followed, when the connection was closed. */
  readonly closeCode: number | undefined;

  constructor(code: string, message: string, options: { subscription?: string; closeCode?: number } = {}) {
    super(message ? `${code}: ${message}` : code);
    this.name = "TickcastError";
    this.code = code;
    this.subscription = options.subscription;
    this.closeCode = options.closeCode;
  }
}

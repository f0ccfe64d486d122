// The two ways of reaching the server, reduced to "messages in, close
// out": a WebSocket carrying every subscription, or one EventSource per
// subscription. Reconnecting, resuming and tokens are the client's.

import type { ServerMessage } from "./types.js";

/** What a link reports to its owner. */
export interface LinkEvents {
  /** A parsed server message. */
  message(message: ServerMessage): void;
  /**
   * The link is gone: `code` is the WebSocket close code (or the SSE
   * `close` event's), `null` for a network failure or a refused request.
   */
  closed(code: number | null, reason: string): void;
}

/** A constructor compatible with the browser's `WebSocket` (the `ws` package's qualifies). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** `new WebSocket(url, protocol)`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A constructor compatible with the browser's `EventSource` (the `eventsource` package's qualifies). */
export interface EventSourceLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (event: { data: string }) => void): void;
  close(): void;
}

/** `new EventSource(url)`. */
export type EventSourceConstructor = new (url: string) => EventSourceLike;

/** One live connection. */
export interface Link {
  /** Sends a client op (WebSocket only; SSE has no client -> server channel). */
  send(op: object): void;
  /** Closes it without reporting `closed`. */
  stop(): void;
}

function parse(data: unknown): ServerMessage | null {
  if (typeof data !== "string") return null;
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === "object" && value !== null ? (value as ServerMessage) : null;
  } catch {
    return null;
  }
}

/** The WebSocket subprotocol tickcast echoes. */
export const SUBPROTOCOL = "tickcast.v1.json";

/** Heartbeat of a WebSocket link: a `ping` op after `intervalMs` of silence, closed after `timeoutMs` more. */
export interface Heartbeat {
  intervalMs: number;
  timeoutMs: number;
}

/** A WebSocket link. */
export class WsLink implements Link {
  private readonly socket: WebSocketLike;
  private lastHeard = Date.now();
  private pingedAt: number | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private done = false;

  constructor(url: string, WebSocketImpl: WebSocketConstructor, private readonly events: LinkEvents, heartbeat: Heartbeat) {
    this.socket = new WebSocketImpl(url, SUBPROTOCOL);
    this.socket.onopen = () => {
      this.lastHeard = Date.now();
    };
    this.socket.onmessage = (event) => {
      this.lastHeard = Date.now();
      this.pingedAt = null;
      const message = parse(event.data);
      if (message) this.events.message(message);
    };
    this.socket.onerror = () => {};
    this.socket.onclose = (event) => this.finish(event.code === 1006 ? null : event.code, event.reason || "");
    if (heartbeat.intervalMs > 0) {
      const tick = Math.max(100, Math.min(heartbeat.intervalMs, heartbeat.timeoutMs) / 2);
      this.timer = setInterval(() => this.check(heartbeat), tick);
    }
  }

  private check(heartbeat: Heartbeat): void {
    if (this.socket.readyState !== 1) return;
    const now = Date.now();
    if (this.pingedAt !== null && now - this.pingedAt >= heartbeat.timeoutMs) {
      // Silent past the timeout: the path is gone without a FIN (a dead
      // NAT entry, a suspended laptop). Give up on it.
      this.stop();
      this.events.closed(null, "no answer to ping");
    } else if (this.pingedAt === null && now - this.lastHeard >= heartbeat.intervalMs) {
      this.pingedAt = now;
      this.send({ op: "ping", ts: now });
    }
  }

  private finish(code: number | null, reason: string): void {
    if (this.done) return;
    this.stop();
    this.events.closed(code, reason);
  }

  send(op: object): void {
    if (this.socket.readyState === 1) this.socket.send(JSON.stringify(op));
  }

  stop(): void {
    this.done = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.socket.onopen = null;
    this.socket.onmessage = null;
    this.socket.onclose = null;
    // Kept, not cleared: the `ws` package reports closing a socket that is
    // still connecting as an error event, and one without a listener throws.
    this.socket.onerror = () => {};
    // readyState 0 (CONNECTING) or 1 (OPEN): close it; closing an already
    // closing socket is harmless.
    try {
      if (this.socket.readyState <= 1) this.socket.close(1000);
    } catch {
      // A socket still connecting may refuse close() in some runtimes; it is dropped anyway.
    }
  }
}

/** Protocol messages an SSE stream sends as named events. */
const SSE_NOTICES = ["welcome", "subscribed", "unsubscribed", "dropped", "error", "history_gone", "close"] as const;

/** An SSE link: one stream, one subscription. */
export class SseLink implements Link {
  private readonly source: EventSourceLike;
  private done = false;

  constructor(url: string, EventSourceImpl: EventSourceConstructor, private readonly events: LinkEvents, eventTypes: Iterable<string>, subscription: string) {
    this.source = new EventSourceImpl(url);
    const onEvent = (event: { data: string }) => {
      const message = parse(event.data);
      if (message) this.events.message(message);
    };
    this.source.onmessage = onEvent;
    for (const type of eventTypes) this.source.addEventListener(type, onEvent);
    for (const name of SSE_NOTICES) {
      this.source.addEventListener(name, (event) => {
        if (this.done) return;
        const body = parse(event.data) as Record<string, unknown> | null;
        if (!body) return;
        if (name === "close") {
          // The server ended the stream; EventSource would reconnect by
          // itself with the same URL (and token): the client decides instead.
          const code = typeof body.code === "number" ? body.code : null;
          this.finish(code, typeof body.reason === "string" ? body.reason : "");
        } else if (name === "history_gone") {
          this.events.message({ type: "error", code: "history_gone", id: typeof body.id === "string" ? body.id : subscription });
        } else {
          this.events.message({ ...body, type: name === "error" ? "error" : name } as ServerMessage);
        }
      });
    }
    // A refused request (401, 403, ...) or a lost stream: EventSource says
    // no more than "error".
    this.source.onerror = () => this.finish(null, "stream failed");
  }

  private finish(code: number | null, reason: string): void {
    if (this.done) return;
    this.stop();
    this.events.closed(code, reason);
  }

  send(): void {
    // SSE has no client -> server channel: a stream's subscription is its URL.
  }

  stop(): void {
    this.done = true;
    this.source.onmessage = null;
    this.source.onerror = null;
    this.source.close();
  }
}

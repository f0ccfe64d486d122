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
    onmessage: ((event: {
        data: unknown;
    }) => void) | null;
    onclose: ((event: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
}
/** `new WebSocket(url, protocol)`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** A constructor compatible with the browser's `EventSource` (the `eventsource` package's qualifies). */
export interface EventSourceLike {
    onopen: ((event: unknown) => void) | null;
    onmessage: ((event: {
        data: string;
    }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    addEventListener(type: string, listener: (event: {
        data: string;
    }) => void): void;
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
/** The WebSocket subprotocol tickcast echoes. */
export declare const SUBPROTOCOL = "tickcast.v1.json";
/** Heartbeat of a WebSocket link: a `ping` op after `intervalMs` of silence, closed after `timeoutMs` more. */
export interface Heartbeat {
    intervalMs: number;
    timeoutMs: number;
}
/** A WebSocket link. */
export declare class WsLink implements Link {
    private readonly events;
    private readonly socket;
    private lastHeard;
    private pingedAt;
    private timer;
    private done;
    constructor(url: string, WebSocketImpl: WebSocketConstructor, events: LinkEvents, heartbeat: Heartbeat);
    private check;
    private finish;
    send(op: object): void;
    stop(): void;
}
/** An SSE link: one stream, one subscription. */
export declare class SseLink implements Link {
    private readonly events;
    private readonly source;
    private done;
    constructor(url: string, EventSourceImpl: EventSourceConstructor, events: LinkEvents, eventTypes: Iterable<string>, subscription: string);
    private finish;
    send(): void;
    stop(): void;
}

import { type BackoffOptions } from "./backoff.js";
import { TickcastError } from "./errors.js";
import { type EventSourceConstructor, type WebSocketConstructor } from "./links.js";
import { type SubscriptionHandlers } from "./subscription.js";
import type { ConnectionState, DroppedNotice, EventData, Filter, Offset, TickcastEvent, TransportKind, WelcomeMessage } from "./types.js";
export { TickcastError } from "./errors.js";
export { compareOffsets } from "./offset.js";
export { tokenExpiryMs } from "./token.js";
export type { BackoffOptions } from "./backoff.js";
export type { EventSourceConstructor, EventSourceLike, WebSocketConstructor, WebSocketLike } from "./links.js";
export type { SubscriptionHandlers } from "./subscription.js";
export type * from "./types.js";
/** Options of {@link TickcastClient}. */
export interface ClientOptions {
    /**
     * The server's base URL (`https://events.example.com`, `http://127.0.0.1:8080`;
     * `ws(s)://` works too); `/ws` and `/sse` are appended. In a browser it
     * defaults to the page's origin.
     */
    url?: string;
    /** A fixed JWT. It cannot be renewed: when it expires the client closes with `token_expired`. */
    token?: string;
    /**
     * Returns a fresh JWT. Called before the first connection, again before
     * the current token expires (the client then reconnects and resumes with
     * the new one), and after the server refuses a token.
     */
    getToken?: () => Promise<string> | string;
    /** How long before expiry to renew, ms (default 60000; at most a quarter of the token's remaining life). */
    refreshMarginMs?: number;
    /**
     * `ws`, `sse`, or `auto` (the default): WebSocket, switching to SSE for
     * good when WebSocket connections keep failing before they open while
     * the server answers HTTP (a proxy that refuses upgrades).
     */
    transport?: TransportKind | "auto";
    /** WebSocket failures in a row, each while `/health` answers, before `auto` switches to SSE (default 2). */
    fallbackAfter?: number;
    /** The WebSocket constructor (default: the global one; in Node < 22, pass the `ws` package's, or it is imported). */
    WebSocket?: WebSocketConstructor;
    /** The EventSource constructor (default: the global one; in Node, pass the `eventsource` package's, or it is imported). */
    EventSource?: EventSourceConstructor;
    /** Reconnect delays: exponential backoff with full jitter. */
    backoff?: BackoffOptions;
    /** Silence after which a WebSocket sends a `ping` op, ms (default 30000; 0: never). */
    pingIntervalMs?: number;
    /** Silence after that ping after which the WebSocket is given up and reconnected, ms (default 10000). */
    pongTimeoutMs?: number;
    /** Event types an SSE stream listens for besides the known ones and the filter's `event_types`. */
    eventTypes?: string[];
}
/** Client-wide notifications, for {@link TickcastClient.on}. */
export interface ClientEvents {
    /** The connection state changed. */
    state: (state: ConnectionState) => void;
    /** Every event received once, including `broadcast_all` ones (`subs: []`) and those of server-side subscriptions. */
    event: (event: TickcastEvent<EventData>) => void;
    /** A connection opened (each reconnect too). */
    welcome: (welcome: WelcomeMessage) => void;
    /** Events were dropped on the way to a connection. */
    dropped: (notice: DroppedNotice) => void;
    /** A connection was lost; the next attempt is in `delayMs`. */
    reconnect: (info: {
        delayMs: number;
        code: number | null;
        reason: string;
    }) => void;
    /** `auto` switched to SSE. */
    transport: (transport: TransportKind) => void;
    /** Errors that concern no single subscription (refused tokens, server errors, exceptions thrown by handlers). */
    error: (error: TickcastError) => void;
}
/** What {@link TickcastClient.subscribe} returns. */
export interface SubscriptionHandle {
    /** The subscription id. */
    readonly id: string;
    /** Where it would resume now (the last safe resume offset), `null` before it was confirmed. */
    readonly resumeOffset: Offset | null;
    /** Ends the subscription. */
    unsubscribe(): void;
}
/**
 * A client of tickcast's native protocol: subscriptions with typed filters
 * and callbacks, over WebSocket or SSE, that survive reconnects without
 * losing or repeating an event.
 */
export declare class TickcastClient {
    private readonly options;
    private readonly base;
    private readonly subs;
    private readonly listeners;
    private transport;
    private ws;
    private readonly sse;
    /** WebSocket connections in a row that failed before open while `/health` answered. */
    private blockedFailures;
    private state;
    private closed;
    private token;
    private tokenPromise;
    private refreshTimer;
    private readonly broadcasts;
    /** Every wire id used so far: a reused id gets a fresh one. */
    private readonly wires;
    constructor(options?: ClientOptions);
    /** The connection state now. */
    get connectionState(): ConnectionState;
    /** The transport in use now. */
    get currentTransport(): TransportKind;
    /** Listens to a client-wide notification; returns a function that stops listening. */
    on<K extends keyof ClientEvents>(name: K, listener: ClientEvents[K]): () => void;
    /**
     * Subscribes `id` (1 to 128 characters, unique among this client's
     * subscriptions) to the events `filter` selects. Connects when needed. The subscription lasts until
     * `unsubscribe()` or `close()`, across reconnects: each resumes where the
     * last left off.
     */
    subscribe<D = EventData>(id: string, filter: Filter, handlers: SubscriptionHandlers<D>): SubscriptionHandle;
    /** Ends subscription `id` (no-op when it does not exist). */
    unsubscribe(id: string): void;
    /** Opens the WebSocket now instead of at the first `subscribe` (SSE streams open per subscription). */
    connect(): void;
    /** Closes every connection and ends every subscription. */
    close(): void;
    private wireId;
    private newChannel;
    private wsChannel;
    private openSse;
    private stopChannel;
    /** Connects `channel` (again): a token first, then the link. */
    private open;
    private linkEvents;
    private onClosed;
    /**
     * In `auto`, after repeated WebSocket failures before open, switch to
     * SSE for good, but only if the server answers plain HTTP: a server
     * that is down (restarting) fails both, and is waited for on WebSocket.
     */
    private maybeFallBack;
    /** Whether `GET /health` gets any answer (opaque across origins: only reachability counts). */
    private reachable;
    private retry;
    private subsOn;
    /** The subscription `wire` names on `channel`. */
    private subOn;
    private onMessage;
    private onEvents;
    private deliver;
    private onError;
    private sendSubscribe;
    private endpoint;
    private wsUrl;
    private sseUrl;
    /** The token to connect with: the current one, or a fresh one from `getToken`. */
    private currentToken;
    private fetchToken;
    private scheduleRefresh;
    /** Renews the token, then reconnects every open channel with it (each resumes). */
    private refresh;
    private updateState;
    private setState;
    private emit;
    private report;
    /** Runs an app callback; what it throws is reported, never breaking the client's bookkeeping. */
    private guard;
}

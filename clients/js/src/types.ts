// The protocol's shapes (docs/protocol.md), typed. Offsets are strings
// everywhere: a node offset's epoch has 19 digits, beyond 2^53, so a
// number would round it.

/** An offset: `<epoch>-<seq>` (node offsets) or a Redis stream id. Never parse it as a number. */
export type Offset = string;

/** The tiers a filter or a token's `tiers` claim can name. */
export type Tier = "daily" | "intraday" | "combo";

/** Event priorities, lowest first. */
export type Priority = "low" | "medium" | "high" | "critical";

/** Market regimes a filter can name. */
export type MarketRegime = "bull" | "bear" | "neutral" | "consolidation";

/** The event types TickStockPL publishes; a body may name others. */
export type KnownEventType =
  | "pattern_detected"
  | "backtest_progress"
  | "backtest_result"
  | "system_health"
  | "market_state"
  | "pattern_alert";

/**
 * A subscription's filter. Every field is optional; a missing or empty list
 * matches anything, a set field matches only events that carry it with an
 * allowed value. The server refuses unknown fields (`bad_request`).
 */
export interface Filter {
  /** Event types, e.g. `pattern_detected`. */
  event_types?: (KnownEventType | (string & {}))[];
  /** Tiers; the token's `tiers` claim must grant them (else `forbidden`). */
  tiers?: Tier[];
  /** Symbols, case-insensitive. */
  symbols?: string[];
  /** Pattern names, e.g. `BreakoutBO`. */
  patterns?: string[];
  /** Market regimes. */
  market_regimes?: MarketRegime[];
  /** 0..1; events without a confidence never pass. */
  min_confidence?: number;
  /** Lowest priority delivered. */
  min_priority?: Priority;
}

/** The body of a TickStock event as published (the server passes it through byte for byte). */
export interface EventData {
  [field: string]: unknown;
  event_id?: string;
  event_type?: string;
  source?: string;
  symbol?: string;
  pattern?: string;
  pattern_name?: string;
  tier?: Tier;
  confidence?: number;
  market_regime?: MarketRegime;
  priority?: Priority;
  user_id?: string;
  timestamp?: number | string;
}

/** One delivered event. */
export interface TickcastEvent<D = EventData> {
  /** The event's offset in the hub. */
  offset: Offset;
  /** The connection's subscriptions it matched, sorted; `[]` for `broadcast_all` events. */
  subs: string[];
  /** Its priority. */
  priority: Priority;
  /** Its type. */
  event_type: string;
  /** The published body. */
  data: D;
}

/** `welcome`: the first message of every connection (and SSE stream). */
export interface WelcomeMessage {
  type: "welcome";
  conn: string;
  /** `null` for anonymous connections. */
  user: string | null;
  /** The latest offset when the connection opened; `null` before the first event. */
  offset: Offset | null;
  server: string;
}

/** A `dropped` notice: events were dropped (rate limit, full queue). */
export interface DroppedNotice {
  /** How many. */
  count: number;
  /** The offset just before the first dropped one (subscribing with it as `since` recovers them). */
  since: Offset;
}

/** What `subscribed` says. */
export interface SubscribedInfo {
  /** Events replayed from the history (a resume). */
  recovered: number;
}

/** Server -> client messages, as parsed. */
export type ServerMessage =
  | WelcomeMessage
  | { type: "subscribed"; id: string; recovered: number }
  | { type: "unsubscribed"; id: string }
  | ({ type: "event"; resume: Offset } & TickcastEvent<unknown>)
  | { type: "batch"; resume: Offset; events: TickcastEvent<unknown>[] }
  | ({ type: "dropped" } & DroppedNotice)
  | { type: "pong"; ts: number }
  | { type: "error"; code: string; message?: string; id?: string }
  | { type: "close"; code: number; reason?: string };

/** The client's connection state. */
export type ConnectionState =
  /** Nothing to connect yet (SSE without subscriptions, or before the first subscribe). */
  | "idle"
  | "connecting"
  | "open"
  /** Lost, waiting for the next attempt (see the `reconnect` event for when). */
  | "reconnecting"
  /** `close()` was called, or the token can no longer be renewed. */
  | "closed";

/** A transport: `auto` tries WebSocket and falls back to SSE. */
export type TransportKind = "ws" | "sse";

import { TickcastError } from "./errors.js";
import type { DroppedNotice, EventData, Filter, Offset, SubscribedInfo, TickcastEvent } from "./types.js";
/** What a subscription tells the app. */
export interface SubscriptionHandlers<D = EventData> {
    /** Each matching event, once, in the order received. */
    onEvent: (event: TickcastEvent<D>) => void;
    /** The server took the subscription (again, after each reconnect); `recovered` events were replayed. */
    onSubscribed?: (info: SubscribedInfo) => void;
    /** Events were dropped on the way to this connection (rate limit, full queue). */
    onDropped?: (notice: DroppedNotice) => void;
    /**
     * The resume point is no longer in the server's history (it restarted,
     * or the client was away longer than the history): events in between
     * may be missing. The subscription goes on live.
     */
    onHistoryGone?: () => void;
    /** The server refused the subscription (`bad_request`, `forbidden`, `limit_exceeded`); it has ended. */
    onError?: (error: TickcastError) => void;
}
/** The client's record of one subscription (internal). */
export declare class Subscription<D = EventData> {
    readonly id: string;
    /**
     * The id the server knows it by: `id`, or `id#n` when `id` was used
     * before by this client, since events queued for the old subscription
     * may still arrive listing the old one.
     */
    readonly wire: string;
    readonly filter: Filter;
    readonly handlers: SubscriptionHandlers<D>;
    /**
     * Where a new connection resumes: every event for this subscription at
     * or before it was handed to the app (or reported dropped). `null`
     * until the server first confirms it.
     */
    since: Offset | null;
    /** Whether the current connection's server confirmed it (`subscribed`). */
    confirmed: boolean;
    /** Whether a server ever confirmed it: from then on, a resume without `since` may miss events. */
    wasLive: boolean;
    /** Offsets handed to the app above `since`: a replay may send them again. */
    private readonly seen;
    constructor(id: string, 
    /**
     * The id the server knows it by: `id`, or `id#n` when `id` was used
     * before by this client, since events queued for the old subscription
     * may still arrive listing the old one.
     */
    wire: string, filter: Filter, handlers: SubscriptionHandlers<D>);
    /** Hands `event` to the app unless it already had it; whether it did. */
    deliver(event: TickcastEvent<unknown>): boolean;
    /** A frame's safe resume offset was received on a connection holding this subscription. */
    advance(resume: Offset): void;
    /** Starts over from `from` (history gone, or first confirmation). */
    restart(from: Offset | null): void;
}

// One subscription's state across connections: where it resumes, and which
// events it already handed to the app, so a reconnect neither loses nor
// repeats any.

import { TickcastError } from "./errors.js";
import { compareOffsets, laterOffset } from "./offset.js";
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
export class Subscription<D = EventData> {
  /**
   * Where a new connection resumes: every event for this subscription at
   * or before it was handed to the app (or reported dropped). `null`
   * until the server first confirms it.
   */
  since: Offset | null = null;
  /** Whether the current connection's server confirmed it (`subscribed`). */
  confirmed = false;
  /** Whether a server ever confirmed it: from then on, a resume without `since` may miss events. */
  wasLive = false;
  /** Offsets handed to the app above `since`: a replay may send them again. */
  private readonly seen = new Set<Offset>();

  constructor(
    readonly id: string,
    /**
     * The id the server knows it by: `id`, or `id#n` when `id` was used
     * before by this client, since events queued for the old subscription
     * may still arrive listing the old one.
     */
    readonly wire: string,
    readonly filter: Filter,
    readonly handlers: SubscriptionHandlers<D>,
  ) {}

  /** Hands `event` to the app unless it already had it; whether it did. */
  deliver(event: TickcastEvent<unknown>): boolean {
    const offset = event.offset;
    if (this.since !== null && compareOffsets(offset, this.since) <= 0) return false;
    if (this.seen.has(offset)) return false;
    this.seen.add(offset);
    this.handlers.onEvent(event as TickcastEvent<D>);
    return true;
  }

  /** A frame's safe resume offset was received on a connection holding this subscription. */
  advance(resume: Offset): void {
    this.since = laterOffset(this.since, resume);
    const since = this.since;
    if (since === null) return;
    for (const offset of this.seen) {
      if (compareOffsets(offset, since) <= 0) this.seen.delete(offset);
    }
  }

  /** Starts over from `from` (history gone, or first confirmation). */
  restart(from: Offset | null): void {
    this.since = from;
    this.seen.clear();
  }
}

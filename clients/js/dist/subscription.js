// One subscription's state across connections: where it resumes, and which
// events it already handed to the app, so a reconnect neither loses nor
// repeats any.
import { compareOffsets, laterOffset } from "./offset.js";
/** The client's record of one subscription (internal). */
export class Subscription {
    constructor(id, 
    /**
     * The id the server knows it by: `id`, or `id#n` when `id` was used
     * before by this client, since events queued for the old subscription
     * may still arrive listing the old one.
     */
    wire, filter, handlers) {
        this.id = id;
        this.wire = wire;
        this.filter = filter;
        this.handlers = handlers;
        /**
         * Where a new connection resumes: every event for this subscription at
         * or before it was handed to the app (or reported dropped). `null`
         * until the server first confirms it.
         */
        this.since = null;
        /** Whether the current connection's server confirmed it (`subscribed`). */
        this.confirmed = false;
        /** Whether a server ever confirmed it: from then on, a resume without `since` may miss events. */
        this.wasLive = false;
        /** Offsets handed to the app above `since`: a replay may send them again. */
        this.seen = new Set();
    }
    /** Hands `event` to the app unless it already had it; whether it did. */
    deliver(event) {
        const offset = event.offset;
        if (this.since !== null && compareOffsets(offset, this.since) <= 0)
            return false;
        if (this.seen.has(offset))
            return false;
        this.seen.add(offset);
        this.handlers.onEvent(event);
        return true;
    }
    /** A frame's safe resume offset was received on a connection holding this subscription. */
    advance(resume) {
        this.since = laterOffset(this.since, resume);
        const since = this.since;
        if (since === null)
            return;
        for (const offset of this.seen) {
            if (compareOffsets(offset, since) <= 0)
                this.seen.delete(offset);
        }
    }
    /** Starts over from `from` (history gone, or first confirmation). */
    restart(from) {
        this.since = from;
        this.seen.clear();
    }
}

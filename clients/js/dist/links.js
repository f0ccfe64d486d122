// The two ways of reaching the server, reduced to "messages in, close
// out": a WebSocket carrying every subscription, or one EventSource per
// subscription. Reconnecting, resuming and tokens are the client's.
function parse(data) {
    if (typeof data !== "string")
        return null;
    try {
        const value = JSON.parse(data);
        return typeof value === "object" && value !== null ? value : null;
    }
    catch {
        return null;
    }
}
/** The WebSocket subprotocol tickcast echoes. */
export const SUBPROTOCOL = "tickcast.v1.json";
/** A WebSocket link. */
export class WsLink {
    constructor(url, WebSocketImpl, events, heartbeat) {
        this.events = events;
        this.lastHeard = Date.now();
        this.pingedAt = null;
        this.timer = null;
        this.done = false;
        this.socket = new WebSocketImpl(url, SUBPROTOCOL);
        this.socket.onopen = () => {
            this.lastHeard = Date.now();
        };
        this.socket.onmessage = (event) => {
            this.lastHeard = Date.now();
            this.pingedAt = null;
            const message = parse(event.data);
            if (message)
                this.events.message(message);
        };
        this.socket.onerror = () => { };
        this.socket.onclose = (event) => this.finish(event.code === 1006 ? null : event.code, event.reason || "");
        if (heartbeat.intervalMs > 0) {
            const tick = Math.max(100, Math.min(heartbeat.intervalMs, heartbeat.timeoutMs) / 2);
            this.timer = setInterval(() => this.check(heartbeat), tick);
        }
    }
    check(heartbeat) {
        if (this.socket.readyState !== 1)
            return;
        const now = Date.now();
        if (this.pingedAt !== null && now - this.pingedAt >= heartbeat.timeoutMs) {
            // Silent past the timeout: the path is gone without a FIN (a dead
            // NAT entry, a suspended laptop). Give up on it.
            this.stop();
            this.events.closed(null, "no answer to ping");
        }
        else if (this.pingedAt === null && now - this.lastHeard >= heartbeat.intervalMs) {
            this.pingedAt = now;
            this.send({ op: "ping", ts: now });
        }
    }
    finish(code, reason) {
        if (this.done)
            return;
        this.stop();
        this.events.closed(code, reason);
    }
    send(op) {
        if (this.socket.readyState === 1)
            this.socket.send(JSON.stringify(op));
    }
    stop() {
        this.done = true;
        if (this.timer !== null)
            clearInterval(this.timer);
        this.timer = null;
        this.socket.onopen = null;
        this.socket.onmessage = null;
        this.socket.onclose = null;
        // Kept, not cleared: the `ws` package reports closing a socket that is
        // still connecting as an error event, and one without a listener throws.
        this.socket.onerror = () => { };
        // readyState 0 (CONNECTING) or 1 (OPEN): close it; closing an already
        // closing socket is harmless.
        try {
            if (this.socket.readyState <= 1)
                this.socket.close(1000);
        }
        catch {
            // A socket still connecting may refuse close() in some runtimes; it is dropped anyway.
        }
    }
}
/** Protocol messages an SSE stream sends as named events. */
const SSE_NOTICES = ["welcome", "subscribed", "unsubscribed", "dropped", "error", "history_gone", "close"];
/** An SSE link: one stream, one subscription. */
export class SseLink {
    constructor(url, EventSourceImpl, events, eventTypes, subscription) {
        this.events = events;
        this.done = false;
        this.source = new EventSourceImpl(url);
        const onEvent = (event) => {
            const message = parse(event.data);
            if (message)
                this.events.message(message);
        };
        this.source.onmessage = onEvent;
        for (const type of eventTypes)
            this.source.addEventListener(type, onEvent);
        for (const name of SSE_NOTICES) {
            this.source.addEventListener(name, (event) => {
                if (this.done)
                    return;
                const body = parse(event.data);
                if (!body)
                    return;
                if (name === "close") {
                    // The server ended the stream; EventSource would reconnect by
                    // itself with the same URL (and token): the client decides instead.
                    const code = typeof body.code === "number" ? body.code : null;
                    this.finish(code, typeof body.reason === "string" ? body.reason : "");
                }
                else if (name === "history_gone") {
                    this.events.message({ type: "error", code: "history_gone", id: typeof body.id === "string" ? body.id : subscription });
                }
                else {
                    this.events.message({ ...body, type: name === "error" ? "error" : name });
                }
            });
        }
        // A refused request (401, 403, ...) or a lost stream: EventSource says
        // no more than "error".
        this.source.onerror = () => this.finish(null, "stream failed");
    }
    finish(code, reason) {
        if (this.done)
            return;
        this.stop();
        this.events.closed(code, reason);
    }
    send() {
        // SSE has no client -> server channel: a stream's subscription is its URL.
    }
    stop() {
        this.done = true;
        this.source.onmessage = null;
        this.source.onerror = null;
        this.source.close();
    }
}

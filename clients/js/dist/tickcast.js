// The client: subscriptions that outlive connections. Each connection
// ("channel": the WebSocket, or one SSE stream per subscription) reconnects
// with backoff and resubscribes from its subscriptions' safe resume
// offsets; tokens are renewed before they expire.
import { Backoff } from "./backoff.js";
import { TickcastError } from "./errors.js";
import { SseLink, WsLink, } from "./links.js";
import { laterOffset } from "./offset.js";
import { Subscription } from "./subscription.js";
import { refreshAt, tokenExpiryMs } from "./token.js";
export { TickcastError } from "./errors.js";
export { compareOffsets } from "./offset.js";
export { tokenExpiryMs } from "./token.js";
const KNOWN_EVENT_TYPES = ["pattern_detected", "backtest_progress", "backtest_result", "system_health", "market_state", "pattern_alert"];
/** Close codes after which the same token will not be accepted again. */
const TOKEN_REFUSED = new Set([4001, 4002]);
/**
 * A client of tickcast's native protocol: subscriptions with typed filters
 * and callbacks, over WebSocket or SSE, that survive reconnects without
 * losing or repeating an event.
 */
export class TickcastClient {
    constructor(options = {}) {
        this.subs = new Map();
        this.listeners = new Map();
        this.ws = null;
        this.sse = new Map();
        /** WebSocket connections in a row that failed before open while `/health` answered. */
        this.blockedFailures = 0;
        this.state = "idle";
        this.closed = false;
        this.token = null;
        this.tokenPromise = null;
        this.refreshTimer = null;
        this.broadcasts = new Set();
        /** Every wire id used so far: a reused id gets a fresh one. */
        this.wires = new Set();
        this.options = options;
        const origin = globalThis.location?.href;
        if (!options.url && !origin)
            throw new TypeError("TickcastClient: `url` is required outside a browser");
        this.base = new URL(options.url ?? "/", origin);
        this.transport = options.transport === "sse" ? "sse" : "ws";
        if (options.token !== undefined)
            this.token = options.token;
    }
    /** The connection state now. */
    get connectionState() {
        return this.state;
    }
    /** The transport in use now. */
    get currentTransport() {
        return this.transport;
    }
    /** Listens to a client-wide notification; returns a function that stops listening. */
    on(name, listener) {
        let set = this.listeners.get(name);
        if (!set)
            this.listeners.set(name, (set = new Set()));
        const entry = listener;
        set.add(entry);
        return () => {
            set.delete(entry);
        };
    }
    /**
     * Subscribes `id` (1 to 128 characters, unique among this client's
     * subscriptions) to the events `filter` selects. Connects when needed. The subscription lasts until
     * `unsubscribe()` or `close()`, across reconnects: each resumes where the
     * last left off.
     */
    subscribe(id, filter, handlers) {
        if (this.closed)
            throw new Error("TickcastClient: closed");
        if (this.subs.has(id))
            throw new Error(`TickcastClient: subscription ${id} exists; unsubscribe it first`);
        const sub = new Subscription(id, this.wireId(id), { ...filter }, handlers);
        this.subs.set(id, sub);
        if (this.transport === "ws") {
            const ws = this.wsChannel();
            if (ws.link && ws.welcomed)
                this.sendSubscribe(ws, sub);
        }
        else {
            this.openSse(sub);
        }
        const client = this;
        return {
            id,
            get resumeOffset() {
                return sub.since;
            },
            unsubscribe() {
                client.unsubscribe(id);
            },
        };
    }
    /** Ends subscription `id` (no-op when it does not exist). */
    unsubscribe(id) {
        const sub = this.subs.get(id);
        if (!sub)
            return;
        this.subs.delete(id);
        if (this.transport === "ws") {
            if (this.ws?.link && this.ws.welcomed)
                this.ws.link.send({ op: "unsubscribe", id: sub.wire });
        }
        else {
            const channel = this.sse.get(id);
            if (channel)
                this.stopChannel(channel);
            this.sse.delete(id);
        }
        this.updateState();
    }
    /** Opens the WebSocket now instead of at the first `subscribe` (SSE streams open per subscription). */
    connect() {
        if (this.closed)
            throw new Error("TickcastClient: closed");
        if (this.transport === "ws")
            this.wsChannel();
    }
    /** Closes every connection and ends every subscription. */
    close() {
        if (this.closed)
            return;
        this.closed = true;
        if (this.refreshTimer !== null)
            clearTimeout(this.refreshTimer);
        if (this.ws)
            this.stopChannel(this.ws);
        for (const channel of this.sse.values())
            this.stopChannel(channel);
        this.sse.clear();
        this.subs.clear();
        this.setState("closed");
    }
    wireId(id) {
        let wire = id;
        for (let n = 1; this.wires.has(wire); n++)
            wire = `${id}#${n}`;
        this.wires.add(wire);
        return wire;
    }
    // ---- channels --------------------------------------------------------
    newChannel(kind, subscription) {
        return {
            kind,
            subscription,
            link: null,
            state: "connecting",
            backoff: new Backoff(this.options.backoff),
            timer: null,
            generation: 0,
            welcomed: false,
            latest: null,
        };
    }
    wsChannel() {
        if (!this.ws) {
            this.ws = this.newChannel("ws", null);
            void this.open(this.ws);
        }
        return this.ws;
    }
    openSse(sub) {
        const channel = this.newChannel("sse", sub.wire);
        this.sse.set(sub.id, channel);
        void this.open(channel);
    }
    stopChannel(channel) {
        channel.generation += 1;
        if (channel.timer !== null)
            clearTimeout(channel.timer);
        channel.timer = null;
        channel.link?.stop();
        channel.link = null;
        channel.welcomed = false;
    }
    /** Connects `channel` (again): a token first, then the link. */
    async open(channel) {
        this.stopChannel(channel);
        const generation = channel.generation;
        channel.state = channel.state === "open" ? "connecting" : channel.state;
        this.updateState();
        let token;
        let link;
        try {
            token = await this.currentToken();
            if (this.closed || generation !== channel.generation)
                return;
            if (channel.kind === "ws") {
                const WebSocketImpl = this.options.WebSocket ?? (await webSocketImpl());
                if (this.closed || generation !== channel.generation)
                    return;
                link = new WsLink(this.wsUrl(token), WebSocketImpl, this.linkEvents(channel, generation), {
                    intervalMs: this.options.pingIntervalMs ?? 30000,
                    timeoutMs: this.options.pongTimeoutMs ?? 10000,
                });
            }
            else {
                const sub = this.subsOn(channel)[0];
                if (!sub)
                    return;
                const EventSourceImpl = this.options.EventSource ?? (await eventSourceImpl());
                if (this.closed || generation !== channel.generation)
                    return;
                const types = new Set([...KNOWN_EVENT_TYPES, ...(sub.filter.event_types ?? []), ...(this.options.eventTypes ?? [])]);
                link = new SseLink(this.sseUrl(sub, token), EventSourceImpl, this.linkEvents(channel, generation), types, sub.wire);
            }
        }
        catch (error) {
            if (this.closed || generation !== channel.generation)
                return;
            const failure = error instanceof TickcastError ? error : new TickcastError("transport", String(error));
            this.report(failure);
            if (failure.code === "token_expired")
                this.close();
            else
                this.retry(channel, null, failure.message);
            return;
        }
        channel.link = link;
    }
    linkEvents(channel, generation) {
        const current = () => !this.closed && generation === channel.generation;
        return {
            message: (message) => {
                if (current())
                    this.onMessage(channel, message);
            },
            closed: (code, reason) => {
                if (current())
                    this.onClosed(channel, code, reason);
            },
        };
    }
    onClosed(channel, code, reason) {
        channel.link = null;
        const opened = channel.welcomed;
        channel.welcomed = false;
        for (const sub of this.subsOn(channel))
            sub.confirmed = false;
        if (code !== null && TOKEN_REFUSED.has(code)) {
            if (!this.options.getToken) {
                this.report(new TickcastError(code === 4002 ? "token_expired" : "unauthorized", "the token was refused and no getToken was given", { closeCode: code }));
                this.close();
                return;
            }
            this.token = null; // fetch a fresh one before the next attempt
        }
        this.retry(channel, code, reason);
        if (channel.kind === "ws" && !opened)
            void this.maybeFallBack(channel);
    }
    /**
     * In `auto`, after repeated WebSocket failures before open, switch to
     * SSE for good, but only if the server answers plain HTTP: a server
     * that is down (restarting) fails both, and is waited for on WebSocket.
     */
    async maybeFallBack(channel) {
        if (this.options.transport !== undefined && this.options.transport !== "auto")
            return;
        const reachable = await this.reachable();
        // A connection may have opened meanwhile, or the client closed.
        if (this.closed || this.ws !== channel || channel.welcomed)
            return;
        // Each failure counts only if HTTP got through right after it: a
        // server coming back up between a failure and its probe counts once.
        this.blockedFailures = reachable ? this.blockedFailures + 1 : 0;
        if (this.blockedFailures < Math.max(1, this.options.fallbackAfter ?? 2))
            return;
        this.blockedFailures = 0;
        this.stopChannel(channel);
        this.ws = null;
        this.transport = "sse";
        this.emit("transport", "sse");
        for (const sub of this.subs.values())
            this.openSse(sub);
        this.updateState();
    }
    /** Whether `GET /health` gets any answer (opaque across origins: only reachability counts). */
    async reachable() {
        if (typeof fetch !== "function")
            return true;
        try {
            await fetch(this.endpoint("/health", "http").href, { mode: "no-cors", cache: "no-store" });
            return true;
        }
        catch {
            return false;
        }
    }
    retry(channel, code, reason) {
        if (this.closed)
            return;
        channel.state = "reconnecting";
        const delayMs = channel.backoff.next();
        this.emit("reconnect", { delayMs, code, reason });
        this.updateState();
        if (channel.timer !== null)
            clearTimeout(channel.timer);
        const generation = channel.generation;
        channel.timer = setTimeout(() => {
            channel.timer = null;
            if (!this.closed && generation === channel.generation)
                void this.open(channel);
        }, delayMs);
    }
    // ---- messages --------------------------------------------------------
    subsOn(channel) {
        if (channel.kind === "ws")
            return channel === this.ws ? [...this.subs.values()] : [];
        for (const sub of this.subs.values()) {
            if (sub.wire === channel.subscription)
                return this.sse.get(sub.id) === channel ? [sub] : [];
        }
        return [];
    }
    /** The subscription `wire` names on `channel`. */
    subOn(channel, wire) {
        if (channel.kind === "sse" && channel.subscription !== wire)
            return undefined;
        return this.subsOn(channel).find((sub) => sub.wire === wire);
    }
    onMessage(channel, message) {
        switch (message.type) {
            case "welcome":
                channel.welcomed = true;
                channel.latest = message.offset;
                channel.state = "open";
                this.blockedFailures = 0;
                this.updateState();
                this.emit("welcome", message);
                if (channel.kind === "ws")
                    for (const sub of this.subs.values())
                        this.sendSubscribe(channel, sub);
                break;
            case "subscribed": {
                const sub = this.subOn(channel, message.id);
                if (!sub)
                    break;
                sub.confirmed = true;
                channel.backoff.reset();
                // Resubscribed without `since` (no offset was known: the server's
                // history was empty when it first confirmed, and no event came
                // since): what was published meanwhile cannot be replayed.
                const unresumable = sub.since === null && sub.wasLive;
                sub.wasLive = true;
                // From here every event for it after what this connection has
                // seen is still to come, so that is where it resumes.
                if (sub.since === null)
                    sub.restart(channel.latest);
                this.guard(() => sub.handlers.onSubscribed?.({ recovered: message.recovered }));
                if (unresumable)
                    this.guard(() => sub.handlers.onHistoryGone?.());
                break;
            }
            case "event":
                this.onEvents(channel, [message], message.resume);
                break;
            case "batch":
                this.onEvents(channel, message.events, message.resume);
                break;
            case "dropped": {
                const notice = { count: message.count, since: message.since };
                for (const sub of this.subsOn(channel))
                    this.guard(() => sub.handlers.onDropped?.(notice));
                this.emit("dropped", notice);
                break;
            }
            case "error":
                this.onError(channel, message.code, message.message ?? "", message.id);
                break;
            case "close":
                // SSE's last event: the link reports it as its close.
                break;
            default:
                break; // pong, unsubscribed
        }
    }
    onEvents(channel, events, resume) {
        for (const event of events)
            this.deliver(channel, event);
        if (typeof resume !== "string")
            return;
        channel.latest = laterOffset(channel.latest, resume);
        // Only confirmed subscriptions: one whose replay is still on its way
        // must not resume past it.
        for (const sub of this.subsOn(channel))
            if (sub.confirmed)
                sub.advance(resume);
    }
    deliver(channel, event) {
        const wires = Array.isArray(event.subs) ? event.subs : [];
        const mine = wires.map((wire) => this.subOn(channel, wire));
        // The app sees its own ids in `subs`, whatever the wire ids.
        if (mine.some((sub, i) => sub !== undefined && sub.id !== wires[i])) {
            event = { ...event, subs: wires.map((wire, i) => mine[i]?.id ?? wire) };
        }
        let fresh = false;
        let ours = false;
        for (const sub of mine) {
            if (!sub)
                continue;
            ours = true;
            this.guard(() => {
                if (sub.deliver(event))
                    fresh = true;
            });
        }
        if (!ours) {
            // A broadcast or a server-side subscription's event: SSE streams
            // each carry broadcasts, so remember the recent ones.
            if (this.broadcasts.has(event.offset))
                return;
            this.broadcasts.add(event.offset);
            if (this.broadcasts.size > 1000) {
                const oldest = this.broadcasts.values().next().value;
                if (oldest !== undefined)
                    this.broadcasts.delete(oldest);
            }
            fresh = true;
        }
        if (fresh)
            this.emit("event", event);
    }
    onError(channel, code, text, id) {
        const sub = id === undefined ? undefined : this.subOn(channel, id);
        if (sub && code === "history_gone") {
            // It goes on live from here: what this connection has seen is the
            // new starting point.
            sub.restart(channel.latest);
            this.guard(() => sub.handlers.onHistoryGone?.());
            return;
        }
        if (sub && code !== "unknown_subscription") {
            // Refused: the server does not hold it, and would refuse it again.
            this.subs.delete(sub.id);
            if (channel.kind === "sse") {
                this.stopChannel(channel);
                this.sse.delete(sub.id);
                this.updateState();
            }
            const error = new TickcastError(code, text, { subscription: sub.id });
            if (sub.handlers.onError)
                this.guard(() => sub.handlers.onError?.(error));
            else
                this.report(error);
            return;
        }
        if (id !== undefined)
            return; // about a subscription already gone
        // A server shutting down says so before its close 1001; the client
        // reconnects (to another node, or the same one restarted) as after any close.
        if (code === "shutting_down")
            return;
        this.report(new TickcastError(code, text));
    }
    sendSubscribe(channel, sub) {
        const op = { op: "subscribe", id: sub.wire, filter: sub.filter };
        if (sub.since !== null)
            op.since = sub.since;
        sub.confirmed = false;
        channel.link?.send(op);
    }
    // ---- URLs and tokens -------------------------------------------------
    endpoint(path, scheme) {
        const url = new URL(this.base.href);
        const secure = url.protocol === "https:" || url.protocol === "wss:";
        url.protocol = scheme === "ws" ? (secure ? "wss:" : "ws:") : secure ? "https:" : "http:";
        url.pathname = url.pathname.replace(/\/+$/, "") + path;
        url.search = "";
        url.hash = "";
        return url;
    }
    wsUrl(token) {
        const url = this.endpoint("/ws", "ws");
        if (token)
            url.searchParams.set("token", token);
        return url.href;
    }
    sseUrl(sub, token) {
        const url = this.endpoint("/sse", "http");
        for (const [key, value] of Object.entries(sub.filter)) {
            if (value === undefined || value === null)
                continue;
            url.searchParams.set(key, Array.isArray(value) ? value.join(",") : String(value));
        }
        url.searchParams.set("id", sub.wire);
        if (token)
            url.searchParams.set("token", token);
        if (sub.since !== null)
            url.searchParams.set("last_event_id", sub.since);
        return url.href;
    }
    /** The token to connect with: the current one, or a fresh one from `getToken`. */
    currentToken() {
        if (!this.options.getToken) {
            const expiry = this.token === null ? null : tokenExpiryMs(this.token);
            // The server would refuse it (SSE: a 401 EventSource cannot tell
            // from a network error, retried forever): stop here instead.
            if (expiry !== null && expiry <= Date.now()) {
                return Promise.reject(new TickcastError("token_expired", "the token has expired and no getToken was given"));
            }
            return Promise.resolve(this.token);
        }
        const expiry = this.token === null ? null : tokenExpiryMs(this.token);
        if (this.token !== null && (expiry === null || expiry > Date.now() + 1000))
            return Promise.resolve(this.token);
        return this.fetchToken();
    }
    fetchToken() {
        const getToken = this.options.getToken;
        if (!getToken)
            return Promise.resolve(this.token);
        if (!this.tokenPromise) {
            this.tokenPromise = (async () => {
                try {
                    const token = await getToken();
                    if (typeof token !== "string" || token === "")
                        throw new TickcastError("token", "getToken returned no token");
                    this.token = token;
                    this.scheduleRefresh(token);
                    return token;
                }
                catch (error) {
                    throw error instanceof TickcastError ? error : new TickcastError("token", `getToken failed: ${String(error)}`);
                }
                finally {
                    this.tokenPromise = null;
                }
            })();
        }
        return this.tokenPromise;
    }
    scheduleRefresh(token) {
        if (this.refreshTimer !== null)
            clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
        const expiry = tokenExpiryMs(token);
        if (expiry === null || this.closed)
            return;
        const now = Date.now();
        const at = refreshAt(expiry, now, this.options.refreshMarginMs ?? 60000);
        this.refreshTimer = setTimeout(() => void this.refresh(), at - now);
    }
    /** Renews the token, then reconnects every open channel with it (each resumes). */
    async refresh() {
        this.refreshTimer = null;
        try {
            await this.fetchToken();
        }
        catch (error) {
            this.report(error);
            // The current token still works until it expires; try again soon.
            this.refreshTimer = setTimeout(() => void this.refresh(), new Backoff(this.options.backoff).next() + 1000);
            return;
        }
        if (this.closed)
            return;
        const channels = [...(this.ws ? [this.ws] : []), ...this.sse.values()];
        for (const channel of channels)
            if (channel.link)
                void this.open(channel);
    }
    // ---- notifications ---------------------------------------------------
    updateState() {
        if (this.closed)
            return;
        const channels = [...(this.ws ? [this.ws] : []), ...this.sse.values()];
        let state = "idle";
        if (channels.length > 0) {
            if (channels.some((c) => c.state === "reconnecting"))
                state = "reconnecting";
            else if (channels.some((c) => c.state === "connecting"))
                state = "connecting";
            else
                state = "open";
        }
        this.setState(state);
    }
    setState(state) {
        if (state === this.state)
            return;
        this.state = state;
        this.emit("state", state);
    }
    emit(name, ...args) {
        const set = this.listeners.get(name);
        if (!set)
            return;
        for (const listener of [...set])
            this.guard(() => listener(...args));
    }
    report(error) {
        const set = this.listeners.get("error");
        if (set && set.size > 0) {
            for (const listener of [...set]) {
                try {
                    listener(error);
                }
                catch (thrown) {
                    console.error(thrown);
                }
            }
        }
        else {
            console.error(error);
        }
    }
    /** Runs an app callback; what it throws is reported, never breaking the client's bookkeeping. */
    guard(callback) {
        try {
            callback();
        }
        catch (thrown) {
            this.report(thrown instanceof TickcastError ? thrown : new TickcastError("handler", String(thrown)));
        }
    }
}
// Imported only where no global exists (Node < 22); the specifier is a
// variable so that bundlers leave it alone in browser builds.
async function webSocketImpl() {
    const global = globalThis.WebSocket;
    if (global)
        return global;
    const name = "ws";
    try {
        const module = (await import(name));
        const impl = module.WebSocket ?? module.default;
        if (impl)
            return impl;
    }
    catch {
        // fall through
    }
    throw new TickcastError("transport", "no WebSocket: pass the `ws` package's as `WebSocket` (npm install ws)");
}
async function eventSourceImpl() {
    const global = globalThis.EventSource;
    if (global)
        return global;
    const name = "eventsource";
    try {
        const module = (await import(name));
        const impl = module.EventSource ?? module.default;
        if (impl)
            return impl;
    }
    catch {
        // fall through
    }
    throw new TickcastError("transport", "no EventSource: pass the `eventsource` package's as `EventSource` (npm install eventsource)");
}

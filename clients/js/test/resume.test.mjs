// The client against the real server: network cuts, a server restart and
// token renewal while events are published, over WebSocket and SSE.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EventSource } from "eventsource";
import WebSocket from "ws";

import { TickcastClient, compareOffsets } from "../dist/tickcast.js";
import {
  aaplIds,
  detections,
  exactlyOnce,
  hs256,
  publish,
  recorder,
  sleep,
  startProxy,
  startRedis,
  startServer,
  until,
} from "./helpers.mjs";

const FAST = { initialMs: 50, maxMs: 300 };

function newClient(t, options) {
  const client = new TickcastClient({ WebSocket, EventSource, backoff: FAST, ...options });
  const errors = [];
  client.on("error", (error) => errors.push(error));
  t.after(() => client.close());
  return { client, errors };
}

/** Publishes one more AAPL event and waits for it: anything a replay repeated would have come before it. */
async function settle(serverUrl, record, expected) {
  const [last] = detections(1, "sentinel");
  await publish(serverUrl, [last]);
  expected.push(last.event_id);
  await until(() => record.ids.includes(last.event_id), "the sentinel event");
}

function assertOffsetOrder(offsets) {
  for (let i = 1; i < offsets.length; i++) {
    assert.ok(compareOffsets(offsets[i - 1], offsets[i]) < 0, `offsets out of order at ${i}: ${offsets[i - 1]} then ${offsets[i]}`);
  }
}

for (const transport of ["ws", "sse"]) {
  test(`network cuts mid-stream lose and repeat nothing (${transport})`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const proxy = await startProxy(server);
    t.after(() => proxy.close());
    const { client, errors } = newClient(t, { url: proxy.url, transport });
    const record = recorder();
    client.subscribe("aapl", { symbols: ["AAPL"], tiers: ["daily"] }, record.handlers);
    await until(() => record.subscribed.length === 1, "the first subscribed");

    const expected = [];
    for (let round = 0; round < 3; round++) {
      const live = detections(200, `live${round}`);
      expected.push(...aaplIds(live));
      await publish(server.url, live);
      // Cut as soon as this round starts arriving: the rest is in flight.
      const first = aaplIds(live)[0];
      await until(() => record.ids.includes(first), `round ${round}'s first event`);
      proxy.cut();
      // Published while the client cannot connect: only a resume brings these.
      proxy.refuse(true);
      const missed = detections(100, `gap${round}`);
      expected.push(...aaplIds(missed));
      await publish(server.url, missed);
      await sleep(100);
      proxy.refuse(false);
      await until(() => record.subscribed.length === round + 2, `resubscribed after cut ${round}`);
      assert.ok(record.subscribed[round + 1] >= aaplIds(missed).length, `recovered ${record.subscribed[round + 1]} after cut ${round}`);
    }
    await settle(server.url, record, expected);

    exactlyOnce(assert, record.ids, expected, "across three cuts");
    assertOffsetOrder(record.offsets);
    assert.equal(record.historyGone, 0);
    assert.deepEqual(record.dropped, []);
    assert.deepEqual(errors, []);
  });
}

test("a server restart (no broker) says history_gone, as documented, and goes on live", async (t) => {
  const first = await startServer();
  const proxy = await startProxy(first);
  t.after(() => proxy.close());
  const { client, errors } = newClient(t, { url: proxy.url, transport: "ws" });
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");

  // Accepted (202) just before the shutdown: the drain delivers them.
  const before = detections(200, "before");
  await publish(first.url, before);
  await first.stop();
  await until(() => record.ids.length === aaplIds(before).length, "the events accepted before the shutdown");

  // The same node again: a new epoch, an empty history (operations.md,
  // "Which mode gives which guarantee"): the resume offset is gone.
  const second = await startServer();
  t.after(() => second.stop());
  proxy.retarget(second);
  await until(() => record.historyGone === 1, "history_gone");
  assert.equal(record.subscribed.length, 2);

  const after = detections(200, "after");
  await publish(second.url, after);
  const expected = [...aaplIds(before), ...aaplIds(after)];
  await settle(second.url, record, expected);

  exactlyOnce(assert, record.ids, expected, "across the restart");
  assert.equal(record.historyGone, 1);
  assert.deepEqual(errors, []);

  // Still whole after a cut on the new run: it resumes from the new run's offsets.
  proxy.cut();
  const more = detections(50, "more");
  await publish(second.url, more);
  expected.push(...aaplIds(more));
  await settle(second.url, record, expected);
  exactlyOnce(assert, record.ids, expected, "after a cut on the new run");
  assert.equal(record.historyGone, 1);
});

for (const transport of ["ws", "sse"]) {
  test(`short-lived tokens are renewed before they expire, losing nothing (${transport})`, async (t) => {
    const secret = "js-client-test-secret";
    const server = await startServer({
      TICKCAST_AUTH__JWT_SECRET: secret,
      TICKCAST_API__ALLOW_ANONYMOUS_PUBLISH: "true",
    });
    t.after(() => server.stop());
    let issued = 0;
    const getToken = async () => {
      issued += 1;
      // exp is whole seconds: 2 to 3 s of life.
      return hs256(secret, { sub: "u1", exp: Math.floor(Date.now() / 1000) + 3 });
    };
    const { client, errors } = newClient(t, { url: server.url, transport, getToken });
    const closes = [];
    client.on("reconnect", (info) => closes.push(info.code));
    const welcomes = [];
    client.on("welcome", (welcome) => welcomes.push(welcome.user));
    const record = recorder();
    client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
    await until(() => record.subscribed.length === 1, "subscribed");

    const expected = [];
    // Publish steadily through at least three renewals.
    const deadline = Date.now() + 30_000;
    while (issued < 4 && Date.now() < deadline) {
      const batch = detections(4, "tok");
      expected.push(...aaplIds(batch));
      await publish(server.url, batch);
      await sleep(50);
    }
    assert.ok(issued >= 4, `getToken called ${issued} times`);
    await settle(server.url, record, expected);

    exactlyOnce(assert, record.ids, expected, "across token renewals");
    // Renewed before expiry: the server never closed for an expired token.
    assert.ok(!closes.includes(4002) && !closes.includes(4001), `close codes ${closes}`);
    assert.deepEqual(errors, []);
    assert.ok(welcomes.length >= 4 && welcomes.every((user) => user === "u1"), `welcomes ${welcomes}`);
  });
}

test("auto falls back to SSE when WebSocket upgrades are refused, and resumes there", async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server);
  t.after(() => proxy.close());
  proxy.block("GET /ws");
  const { client, errors } = newClient(t, { url: proxy.url });
  const transports = [];
  client.on("transport", (kind) => transports.push(kind));
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed over SSE");
  assert.deepEqual(transports, ["sse"]);
  assert.equal(client.currentTransport, "sse");

  const expected = [];
  const first = detections(100, "auto");
  expected.push(...aaplIds(first));
  await publish(server.url, first);
  await until(() => record.ids.length === expected.length, "the first events");
  proxy.cut();
  proxy.refuse(true);
  const missed = detections(100, "auto-gap");
  expected.push(...aaplIds(missed));
  await publish(server.url, missed);
  proxy.refuse(false);
  await settle(server.url, record, expected);
  exactlyOnce(assert, record.ids, expected, "after the fallback and a cut");
  assert.equal(client.currentTransport, "sse", "an SSE stream that was open is kept");
  assert.deepEqual(errors, []);
});

for (const transport of ["ws", "sse"]) {
  test(`a cut while a resume is replaying loses and repeats nothing (${transport})`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const proxy = await startProxy(server);
    t.after(() => proxy.close());
    const { client, errors } = newClient(t, { url: proxy.url, transport });
    const record = recorder();
    client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
    await until(() => record.subscribed.length === 1, "subscribed");

    const expected = [];
    for (let round = 0; round < 3; round++) {
      proxy.cut();
      proxy.refuse(true);
      const missed = detections(4000, `replay${round}`);
      expected.push(...aaplIds(missed));
      await publish(server.url, missed);
      const received = record.ids.length;
      proxy.refuse(false);
      // The replay has begun: cut it short. The next resume must pick up
      // exactly where the received part of the replay ends.
      await until(() => record.ids.length > received, `round ${round}'s replay`);
      proxy.cut();
    }
    await settle(server.url, record, expected);
    exactlyOnce(assert, record.ids, expected, "across cut replays");
    assertOffsetOrder(record.offsets);
    assert.deepEqual(errors, []);
  });
}

test("a fixed token that expires ends the client with token_expired (it cannot be renewed)", async (t) => {
  const secret = "js-client-test-secret";
  const server = await startServer({ TICKCAST_AUTH__JWT_SECRET: secret });
  t.after(() => server.stop());
  const token = hs256(secret, { sub: "u1", exp: Math.floor(Date.now() / 1000) + 2 });
  const { client, errors } = newClient(t, { url: server.url, transport: "ws", token });
  const states = [];
  client.on("state", (state) => states.push(state));
  const record = recorder();
  client.subscribe("all", {}, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");
  // The server closes 4002 when exp passes; the client does not retry with
  // the same token.
  await until(() => client.connectionState === "closed", "closed", 10_000);
  assert.ok(errors.some((error) => error.code === "token_expired"), `errors ${errors.map(String)}`);
  assert.equal(states.at(-1), "closed");
});

test("an id reused right after unsubscribing gets none of the old subscription's events", async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { client, errors } = newClient(t, { url: server.url, transport: "ws" });
  const old = recorder();
  const handle = client.subscribe("s", { symbols: ["MSFT"] }, old.handlers);
  await until(() => old.subscribed.length === 1, "the first subscribed");
  // Queued for the old subscription, then replaced at once: the server
  // may still send some of these (unsubscribed overtakes queued events).
  const msft = detections(2000, "old");
  await publish(server.url, msft);
  handle.unsubscribe();
  const fresh = recorder();
  const subs = [];
  client.subscribe("s", { symbols: ["AAPL"] }, {
    ...fresh.handlers,
    onEvent: (event) => {
      subs.push(event.subs);
      fresh.handlers.onEvent(event);
    },
  });
  await until(() => fresh.subscribed.length === 1, "the second subscribed");
  const aapl = detections(20, "new");
  const expected = aaplIds(aapl);
  await publish(server.url, aapl);
  await settle(server.url, fresh, expected);
  exactlyOnce(assert, fresh.ids, expected, "the new subscription's events only");
  assert.ok(subs.every((list) => list.length === 1 && list[0] === "s"), "the app sees its own id");
  assert.deepEqual(errors, []);
});

test("a cut before the first event resumes from the welcome's offset", async (t) => {
  // A node's welcome names an offset (`<epoch>-0` before its first event):
  // a client cut before it received anything still resumes from there.
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server);
  t.after(() => proxy.close());
  const { client, errors } = newClient(t, { url: proxy.url, transport: "ws" });
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");
  proxy.cut();
  proxy.refuse(true);
  const missed = detections(10, "unseen");
  const expected = aaplIds(missed);
  await publish(server.url, missed);
  proxy.refuse(false);
  await until(() => record.subscribed.length === 2, "resubscribed");
  assert.equal(record.subscribed[1], expected.length);
  await settle(server.url, record, expected);
  exactlyOnce(assert, record.ids, expected, "published before the first event arrived");
  assert.equal(record.historyGone, 0);
  assert.deepEqual(errors, []);
});

test("auto stays on WebSocket while the server is unreachable, and resumes there", async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server);
  t.after(() => proxy.close());
  const { client, errors } = newClient(t, { url: proxy.url });
  const transports = [];
  client.on("transport", (kind) => transports.push(kind));
  let refusals = 0;
  client.on("reconnect", () => {
    refusals += 1;
  });
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");
  // Down for many attempts: neither WebSocket nor HTTP gets through.
  proxy.cut();
  proxy.refuse(true);
  const missed = detections(20, "down");
  const expected = aaplIds(missed);
  await publish(server.url, missed);
  await until(() => refusals >= 5, "five failed attempts");
  proxy.refuse(false);
  await settle(server.url, record, expected);
  exactlyOnce(assert, record.ids, expected, "after the outage");
  assert.deepEqual(transports, []);
  assert.equal(client.currentTransport, "ws");
  assert.deepEqual(errors, []);
});

test("a connection that goes silent is given up after an unanswered ping, and resumed", async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await startProxy(server);
  t.after(() => proxy.close());
  const { client, errors } = newClient(t, { url: proxy.url, transport: "ws", pingIntervalMs: 300, pongTimeoutMs: 300 });
  const reasons = [];
  client.on("reconnect", (info) => reasons.push(info.reason));
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");
  proxy.stall();
  const stuck = detections(20, "stuck");
  const expected = aaplIds(stuck);
  await publish(server.url, stuck);
  await until(() => record.subscribed.length === 2, "resubscribed after the silence");
  assert.deepEqual(reasons, ["no answer to ping"]);
  await settle(server.url, record, expected);
  exactlyOnce(assert, record.ids, expected, "after the silent path");
  assert.deepEqual(errors, []);
});

test("events the server drops are reported to the subscription and the client", async (t) => {
  // 5 events/s per connection; events without a symbol have no
  // conflation key, so those over the limit are dropped and reported.
  const server = await startServer({ TICKCAST_DELIVERY__RATE_LIMIT_PER_USER: "5" });
  t.after(() => server.stop());
  const { client, errors } = newClient(t, { url: server.url, transport: "ws" });
  const notices = [];
  client.on("dropped", (notice) => notices.push(notice));
  const record = recorder();
  client.subscribe("all", { event_types: ["backtest_progress"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");
  const events = Array.from({ length: 50 }, (_, i) => ({ event_id: `drop-${i}`, event_type: "backtest_progress", progress: i / 50 }));
  await publish(server.url, events);
  const count = (list) => list.reduce((sum, notice) => sum + notice.count, 0);
  await until(() => record.ids.length + count(record.dropped) === events.length, "every event delivered or reported dropped");
  assert.ok(record.dropped.length > 0 && count(record.dropped) > 0);
  assert.deepEqual(notices, record.dropped);
  assert.ok(record.dropped.every((notice) => typeof notice.since === "string"));
  assert.deepEqual(errors, []);
});

test("a server restart in Redis Streams mode resumes with nothing missing or repeated", async (t) => {
  const redis = await startRedis();
  if (!redis) {
    t.skip("redis-server is not installed; run `scripts/brokers.sh install`");
    return;
  }
  t.after(() => redis.stop());
  const stream = `tickcast:js-client:${process.pid}`;
  const env = {
    TICKCAST_INGEST__REDIS__URL: redis.url,
    TICKCAST_INGEST__REDIS__MODE: "streams",
    TICKCAST_INGEST__REDIS__STREAM: stream,
  };
  const ready = async (server) => {
    for (let attempt = 0; attempt < 400; attempt++) {
      if ((await fetch(`${server.url}/ready`)).status === 200) return;
      await sleep(25);
    }
    throw new Error("the server never became ready");
  };
  const first = await startServer(env);
  await ready(first);
  const proxy = await startProxy(first);
  t.after(() => proxy.close());
  const { client, errors } = newClient(t, { url: proxy.url, transport: "ws" });
  const record = recorder();
  client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
  await until(() => record.subscribed.length === 1, "subscribed");

  const before = detections(100, "streams-before");
  await publish(first.url, before);
  await until(() => record.ids.includes(aaplIds(before)[0]), "the first events");
  await first.stop();

  // Published while no node runs: the stream keeps them.
  const down = detections(20, "streams-down");
  for (const event of down) redis.cli("XADD", stream, "*", "channel", "tickstock.events.patterns", "body", JSON.stringify(event));

  const second = await startServer(env);
  t.after(() => second.stop());
  await ready(second);
  proxy.retarget(second);
  await until(() => record.subscribed.length === 2, "resubscribed to the restarted node");
  const after = detections(100, "streams-after");
  await publish(second.url, after);
  const expected = [...aaplIds(before), ...aaplIds(down), ...aaplIds(after)];
  await settle(second.url, record, expected);

  exactlyOnce(assert, record.ids, expected, "across the restart");
  assertOffsetOrder(record.offsets);
  assert.equal(record.historyGone, 0);
  assert.deepEqual(errors, []);
});

for (const transport of ["ws", "sse"]) {
  // Node 20 has neither global: the client imports the `ws` / `eventsource` packages.
  test(`without constructors passed in, the client finds its own (${transport})`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const client = new TickcastClient({ url: server.url, transport });
    t.after(() => client.close());
    const record = recorder();
    client.subscribe("aapl", { symbols: ["AAPL"] }, record.handlers);
    await until(() => record.subscribed.length === 1, "subscribed");
    const events = detections(10, `lazy-${transport}`);
    const expected = aaplIds(events);
    await publish(server.url, events);
    await settle(server.url, record, expected);
    exactlyOnce(assert, record.ids, expected, "through the imported implementation");
  });
}

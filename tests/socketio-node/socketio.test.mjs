// The unmodified socket.io-client (npm) against a real tickcast server:
// fixture events published through POST /api/publish reach a subscriber
// exactly as its filter selects them, over the default transports (HTTP
// long-polling, then the upgrade to WebSocket) and over WebSocket only, and
// a forced reconnect while publishing is recovered (`socket.recovered`)
// with nothing missing and nothing duplicated; the same in headless
// Chromium, with the client's browser bundle on a page of another origin.
//
// The server binary: $TICKCAST_TEST_BIN, else ../../target/debug/tickcast
// (build it first: `cargo build -p tickcast`).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";
import { chromiumOrSkip, openPage } from "./browser.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const binary = process.env.TICKCAST_TEST_BIN ?? path.join(root, "target/debug/tickcast");
const WAIT_MS = 20_000;

let server;
let base;

before(async () => {
  const env = { ...process.env };
  delete env.TICKCAST_TEST_BIN;
  Object.assign(env, {
    // Every fixture event must arrive: no rate limit for this client.
    TICKCAST_DELIVERY__RATE_LIMIT_PER_USER: "0",
    TICKCAST_LOG_FORMAT: "json",
  });
  server = spawn(binary, ["--listen", "127.0.0.1:0", "--node-id", "socketio-node-test"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: server.stdout });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no listening line")), WAIT_MS);
    server.once("exit", (code) => reject(new Error(`tickcast exited with ${code}`)));
    lines.on("line", (line) => {
      let log;
      try {
        log = JSON.parse(line);
      } catch {
        return;
      }
      const message = log.fields?.message ?? log.message ?? "";
      const addr = log.fields?.addr ?? log.addr;
      if (message.includes("listening") && addr) {
        clearTimeout(timer);
        resolve(`http://${addr}`);
      }
    });
  });
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once("exit", resolve));
  server.kill("SIGTERM");
  // A graceful shutdown drains keep-alive connections for a few seconds.
  const timer = setTimeout(() => server.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
});

/// The fixture events, in file order: `{ channel, body }`.
function fixtures(count) {
  const file = path.join(root, "testdata/fixtures/tickstockpl_events.jsonl");
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .slice(0, count)
    .map((line) => JSON.parse(line));
}

const FILTER = { symbols: ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"], min_confidence: 0.6 };

/// What FILTER selects for an anonymous client (docs/protocol.md): the
/// symbol among the listed (case-insensitive), a confidence of at least
/// 0.6, and no private `user_id`.
function selected(body) {
  const symbol = typeof body.symbol === "string" ? body.symbol.toUpperCase() : null;
  return (
    symbol !== null &&
    FILTER.symbols.includes(symbol) &&
    typeof body.confidence === "number" &&
    body.confidence >= FILTER.min_confidence &&
    body.user_id === undefined
  );
}

/// Publishes `events` in order, one request per run of the same channel;
/// returns the offsets of the selected ones.
async function publish(events, chunk = 25) {
  const wanted = [];
  for (let i = 0; i < events.length; i += chunk) {
    const slice = events.slice(i, i + chunk);
    let start = 0;
    while (start < slice.length) {
      let end = start;
      while (end < slice.length && slice[end].channel === slice[start].channel) end++;
      const run = slice.slice(start, end);
      const response = await fetch(
        `${base}/api/publish?channel=${encodeURIComponent(run[0].channel)}`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(run.map((e) => e.body)),
        },
      );
      const answer = await response.json();
      assert.equal(response.status, 202, JSON.stringify(answer));
      run.forEach((event, k) => {
        if (selected(event.body)) wanted.push(answer.offsets[k]);
      });
      start = end;
    }
  }
  return wanted;
}

/// Collects the events a socket receives (any event name whose first
/// argument is an event object), in order.
function collect(socket) {
  const offsets = [];
  socket.onAny((name, object) => {
    if (object && object.type === "event") {
      assert.equal(name, object.event_type);
      offsets.push(object.offset);
    }
  });
  return offsets;
}

async function until(predicate, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/// `promise`, or a failure naming `what` after WAIT_MS.
async function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

test("polling then upgrade: exactly the events the filter selects", async () => {
  const socket = io(base, { reconnection: false });
  const offsets = collect(socket);
  await connected(socket);
  const ack = await socket.timeout(WAIT_MS).emitWithAck("subscribe", { id: "s1", filter: FILTER });
  assert.deepEqual(ack, { type: "subscribed", id: "s1", recovered: 0 });
  const bad = await socket
    .timeout(WAIT_MS)
    .emitWithAck("subscribe", { id: "s2", filter: { tiers: ["weekly"] } });
  assert.equal(bad.type, "error");
  assert.equal(bad.code, "bad_request");
  assert.equal(bad.id, "s2");

  const wanted = await publish(fixtures(1500));
  assert.ok(wanted.length > 20, `only ${wanted.length} fixture events selected`);
  await until(() => offsets.length >= wanted.length, `${wanted.length} events`);
  // Anything extra would have arrived by now, with the rest.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(offsets, wanted);
  assert.equal(socket.io.engine.transport.name, "websocket");
  socket.close();
});

test("websocket only: a forced reconnect while publishing is recovered, nothing missing or duplicated", async () => {
  const socket = io(base, {
    transports: ["websocket"],
    reconnectionDelay: 50,
    reconnectionDelayMax: 100,
  });
  const offsets = collect(socket);
  await connected(socket);
  const ack = await socket.timeout(WAIT_MS).emitWithAck("subscribe", { id: "s1", filter: FILTER });
  assert.equal(ack.type, "subscribed");

  const reconnects = [];
  socket.on("connect", () => reconnects.push(socket.recovered));
  const events = fixtures(3000);
  const publishing = publish(events, 10);
  // Cut the connection twice while events flow.
  for (const after of [40, 160]) {
    await until(() => offsets.length >= after, `${after} events`);
    const reconnected = new Promise((resolve) => socket.once("connect", resolve));
    socket.io.engine.close();
    await within(reconnected, "the reconnect");
  }
  const wanted = await publishing;
  await until(() => offsets.length >= wanted.length, `${wanted.length} events`);
  await new Promise((r) => setTimeout(r, 200));

  assert.deepEqual(reconnects, [true, true], "every reconnect recovered the session");
  assert.equal(new Set(offsets).size, offsets.length, "no duplicates");
  assert.deepEqual(offsets, wanted, "nothing missing, in order");
  socket.close();
});

test("default transports: a forced reconnect after the upgrade is recovered too", async () => {
  const socket = io(base, { reconnectionDelay: 50, reconnectionDelayMax: 100 });
  const offsets = collect(socket);
  await connected(socket);
  await socket.timeout(WAIT_MS).emitWithAck("subscribe", { id: "s1", filter: FILTER });
  await until(() => socket.io.engine.transport.name === "websocket", "the upgrade");

  const reconnects = [];
  socket.on("connect", () => reconnects.push(socket.recovered));
  const publishing = publish(fixtures(2000), 10);
  await until(() => offsets.length >= 30, "30 events");
  const reconnected = new Promise((resolve) => socket.once("connect", resolve));
  socket.io.engine.close();
  await within(reconnected, "the reconnect");
  const wanted = await publishing;
  await until(() => offsets.length >= wanted.length, `${wanted.length} events`);
  await new Promise((r) => setTimeout(r, 200));

  assert.deepEqual(reconnects, [true]);
  assert.deepEqual(offsets, wanted, "nothing missing, nothing twice, in order");
  socket.close();
});

/// A page on an origin of its own that loads the socket.io-client browser
/// bundle and subscribes through it; what it receives is in `window`.
function servePage() {
  const bundle = readFileSync(
    path.join(here, "node_modules/socket.io-client/dist/socket.io.min.js"),
  );
  const page = `<!doctype html><meta charset="utf-8"><title>socket.io-client</title>
<script src="/socket.io.min.js"></script>
<script>
  window.offsets = [];
  window.reconnects = [];
  const socket = io(${JSON.stringify(base)}, { reconnectionDelay: 50, reconnectionDelayMax: 100 });
  window.socket = socket;
  socket.onAny((name, object) => {
    if (object && object.type === "event" && name === object.event_type) {
      window.offsets.push(object.offset);
    }
  });
  socket.on("connect", async () => {
    window.reconnects.push(socket.recovered);
    if (!window.subscribed) {
      window.subscribed = await socket
        .timeout(20000)
        .emitWithAck("subscribe", { id: "s1", filter: ${JSON.stringify(FILTER)} });
    }
  });
</script>`;
  const http = createServer((request, response) => {
    if (request.url === "/socket.io.min.js") {
      response.writeHead(200, { "content-type": "text/javascript" });
      response.end(bundle);
    } else {
      response.writeHead(200, { "content-type": "text/html" });
      response.end(page);
    }
  });
  return new Promise((resolve) => {
    http.listen(0, "127.0.0.1", () => resolve(http));
  });
}

test("headless Chromium: polling then upgrade, a forced reconnect recovered", async (t) => {
  if (!chromiumOrSkip(t)) return;
  const http = await servePage();
  const browser = await openPage(`http://127.0.0.1:${http.address().port}/`, WAIT_MS);
  const page = (expression) => browser.evaluate(expression);
  const poll = async (expression, what) => {
    const deadline = Date.now() + WAIT_MS;
    while (!(await page(expression))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await poll(
      "window.subscribed?.type === 'subscribed' && socket.io.engine.transport.name === 'websocket'",
      "the subscription and the upgrade from polling",
    );
    const publishing = publish(fixtures(2000), 10);
    await poll("window.offsets.length >= 30", "30 events");
    await page("socket.io.engine.close(), true");
    await poll("window.reconnects.length === 2", "the reconnect");
    const wanted = await publishing;
    await poll(`window.offsets.length >= ${wanted.length}`, `${wanted.length} events`);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await page("window.reconnects"), [false, true], "recovered");
    assert.deepEqual(await page("window.offsets"), wanted, "nothing missing, nothing twice");
  } finally {
    browser.close();
    http.close();
  }
});

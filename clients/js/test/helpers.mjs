// Test helpers: the real tickcast binary, a TCP proxy whose sockets the
// tests cut, HS256 tokens, publishing, and waiting for conditions.

import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import net from "node:net";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The binary under test: $TICKCAST_BIN, else the workspace's debug build. */
export function binaryPath() {
  const target = process.env.CARGO_TARGET_DIR ?? resolve(here, "../../../target");
  const path = process.env.TICKCAST_BIN ?? resolve(target, "debug/tickcast");
  if (!existsSync(path)) {
    throw new Error(`no tickcast binary at ${path}: run \`cargo build -p tickcast\` or set TICKCAST_BIN`);
  }
  return path;
}

/**
 * Starts `tickcast` on an ephemeral port with `env` (TICKCAST_* keys) on
 * top of test defaults; resolves once it listens.
 */
export async function startServer(env = {}) {
  const childEnv = { ...process.env };
  // Every TICKCAST_* variable is a config key to the server.
  for (const key of Object.keys(childEnv)) if (key.startsWith("TICKCAST_")) delete childEnv[key];
  Object.assign(childEnv, {
    RUST_LOG: "warn,tickcast=info",
    TICKCAST_DELIVERY__RATE_LIMIT_PER_USER: "0",
    TICKCAST_NODE_ID: "js-client-test",
    ...env,
  });
  const child = spawn(binaryPath(), ["--listen", "127.0.0.1:0", "--log-format", "json"], {
    env: childEnv,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error("tickcast did not start within 20 s")), 20_000);
    child.once("exit", (code) => reject(new Error(`tickcast exited with ${code} before listening`)));
    lines.on("line", (line) => {
      let log;
      try {
        log = JSON.parse(line);
      } catch {
        return;
      }
      const text = JSON.stringify(log);
      if (text.includes("listening") && typeof log.addr === "string") {
        clearTimeout(timer);
        resolveAddr(log.addr);
      }
    });
  });
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return {
    addr,
    host,
    port,
    url: `http://${addr}`,
    /** SIGTERM (a graceful drain) and wait for the exit. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/**
 * A TCP proxy to `target` ({host, port}), whose connections a test can
 * cut (RST, as a broken network would), refuse, or filter by request path.
 */
export async function startProxy(target) {
  const pairs = new Set();
  const stalled = [];
  let refusing = false;
  let blockedPrefix = null;
  let connections = 0;
  const server = net.createServer((client) => {
    connections += 1;
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    // Errors (resets) end both sides; clean ends are forwarded by pipe(),
    // so what the server wrote before closing still reaches the client.
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", () => pairs.delete(pair));
    upstream.pipe(client);
    client.once("data", (chunk) => {
      if (blockedPrefix !== null && chunk.toString("latin1").startsWith(blockedPrefix)) {
        // A middlebox that refuses WebSocket upgrades.
        upstream.unpipe(client);
        upstream.destroy();
        client.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
      }
      upstream.write(chunk);
      client.pipe(upstream);
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get open() {
      return pairs.size;
    },
    /** Resets every connection in both directions, mid-stream. */
    cut() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    /**
     * Stops forwarding on every connection without closing any: a path that
     * died silently (no FIN, no RST), as behind a dead NAT entry.
     */
    stall() {
      for (const { client, upstream } of pairs) {
        client.unpipe();
        upstream.unpipe();
        client.pause();
        upstream.pause();
        client.removeAllListeners("data");
        stalled.push(client, upstream);
      }
      pairs.clear();
    },
    /** While true, new connections are reset at once. */
    refuse(value) {
      refusing = value;
    },
    /** Requests starting with `prefix` (e.g. `GET /ws`) get a 403; `null` stops that. */
    block(prefix) {
      blockedPrefix = prefix;
    },
    /** Later connections go to `next`. */
    retarget(next) {
      target = next;
    },
    close() {
      this.cut();
      for (const socket of stalled) socket.destroy();
      return new Promise((ok) => server.close(ok));
    },
  };
}

/** `claims` signed with HS256 and `secret`. */
export function hs256(secret, claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

let sequence = 0;

/** `count` pattern detections, alternately for AAPL and MSFT, each with its own `event_id`. */
export function detections(count, tag) {
  const events = [];
  for (let i = 0; i < count; i++) {
    sequence += 1;
    events.push({
      event_id: `${tag}-${sequence}`,
      source: "TickStockPL",
      pattern: i % 4 === 0 ? "Doji" : "BreakoutBO",
      symbol: i % 2 === 0 ? "AAPL" : "MSFT",
      confidence: 0.9,
      tier: "daily",
    });
  }
  return events;
}

/** Publishes `events` in one `POST /api/publish`; fails unless 202. */
export async function publish(serverUrl, events, headers = {}) {
  const answer = await fetch(`${serverUrl}/api/publish?channel=tickstock.events.patterns`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(events),
  });
  const text = await answer.text();
  if (answer.status !== 202) throw new Error(`publish answered ${answer.status}: ${text}`);
  return JSON.parse(text);
}

/** Resolves when `condition()` holds; polls every 20 ms, fails after `timeoutMs`. */
export async function until(condition, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

/** Sleeps `ms`. */
export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Records what a subscription receives: event ids in order, plus the
 * handler calls the tests assert on.
 */
export function recorder() {
  const record = { ids: [], offsets: [], subscribed: [], historyGone: 0, dropped: [], errors: [] };
  record.handlers = {
    onEvent: (event) => {
      record.ids.push(event.data.event_id);
      record.offsets.push(event.offset);
    },
    onSubscribed: (info) => record.subscribed.push(info.recovered),
    onHistoryGone: () => {
      record.historyGone += 1;
    },
    onDropped: (notice) => record.dropped.push(notice),
    onError: (error) => record.errors.push(error),
  };
  return record;
}

/** The ids of `events` a `symbols: ["AAPL"]` filter selects. */
export const aaplIds = (events) => events.filter((e) => e.symbol === "AAPL").map((e) => e.event_id);

/** Asserts `ids` holds each of `expected` exactly once and nothing else. */
export function exactlyOnce(assert, ids, expected, label) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const missing = expected.filter((id) => !counts.has(id));
  const extra = [...counts.keys()].filter((id) => !expected.includes(id));
  assert.deepEqual({ duplicates, missing, extra }, { duplicates: [], missing: [], extra: [] }, label);
  assert.equal(ids.length, expected.length, label);
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * A private redis-server for one test (no data on disk), or `null` when
 * redis-server is not installed: the test then skips, except under CI
 * (`CI=true`), where that is a failure (as in the Rust tests).
 */
export async function startRedis() {
  const found = spawnSync("redis-server", ["--version"], { stdio: "ignore" });
  if (found.error) {
    if (process.env.CI === "true" || process.env.CI === "1") {
      throw new Error("CI=true and redis-server is not installed; run `scripts/brokers.sh install`");
    }
    return null;
  }
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const exited = new Promise((ok) => child.once("exit", ok));
  for (let attempt = 0; ; attempt++) {
    const up = await new Promise((ok) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        ok(true);
      });
      socket.on("error", () => ok(false));
    });
    if (up) break;
    if (attempt > 200) throw new Error(`redis-server did not start on ${port}`);
    await sleep(25);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    /** Runs `redis-cli` against it; its stdout. */
    cli(...args) {
      const run = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
      if (run.status !== 0) throw new Error(`redis-cli ${args.join(" ")}: ${run.stderr}`);
      return run.stdout;
    },
    async stop() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

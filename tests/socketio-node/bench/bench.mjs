// Cost per delivery and memory per connection: tickcast over /ws and over
// /socket.io/, and socket.io on Node, in one run on this machine.
//
//   node bench/bench.mjs [--clients 1000] [--events 200] [--bin ../../target/release/tickcast]
//
// Each server in turn: N clients connect (WebSocket; socket.io-client with
// transports ["websocket"]) and subscribe to everything; memory per
// connection is the server's RSS growth divided by N. Then M events are
// published (tickcast: POST /api/publish; Node: io.emit) and every client
// receives all M; cost per delivery is the server's CPU time (user +
// system, /proc/PID/stat) over the run divided by N x M. The clients run
// in this process; only the server's resources are counted.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";
import WebSocket from "ws";

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const CLIENTS = Number(arg("clients", 1000));
const EVENTS = Number(arg("events", 200));
const BIN = arg("bin", path.resolve(here, "../../../target/release/tickcast"));
const BODY = {
  source: "TickStockPL", pattern: "BreakoutBO", symbol: "AAPL", confidence: 0.85, tier: "daily",
  timestamp: 1732460000.0, metadata: { price: 42.94, volume: 2145830, timeframe: "1min" },
};
const TICK = 100; // clock ticks per second (getconf CLK_TCK)

function stat(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICK; // utime + stime
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  return { cpu, rss };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(predicate, what, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

function start(cmd, args, env, ready) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolve) => lines.on("line", (line) => {
    const got = ready(line);
    if (got) resolve({ child, base: got });
  }));
}

async function measure(name, pid, connect, publish) {
  await sleep(300);
  const idle = stat(pid);
  const clients = [];
  const counts = new Array(CLIENTS).fill(0);
  for (let i = 0; i < CLIENTS; i++) {
    clients.push(await connect((n = 1) => (counts[i] += n)));
  }
  await sleep(500);
  const connected = stat(pid);
  const before = stat(pid);
  const t0 = Date.now();
  await publish();
  await until(() => counts.every((c) => c >= EVENTS), `${name}: all deliveries`);
  const seconds = (Date.now() - t0) / 1000;
  const after = stat(pid);
  const deliveries = CLIENTS * EVENTS;
  const row = {
    server: name,
    clients: CLIENTS,
    events: EVENTS,
    "memory/connection (KiB)": ((connected.rss - idle.rss) / CLIENTS / 1024).toFixed(1),
    "cpu/delivery (us)": (((after.cpu - before.cpu) * 1e6) / deliveries).toFixed(2),
    "wall (s)": seconds.toFixed(2),
  };
  for (const c of clients) c.close();
  await sleep(500);
  return row;
}

const rows = [];

// tickcast: a fresh process per transport, so that each starts from the
// same memory.
async function startTickcast() {
  return start(
    BIN,
    ["--listen", "127.0.0.1:0", "--node-id", "bench", "--log-format", "json"],
    { TICKCAST_DELIVERY__RATE_LIMIT_PER_USER: "0", TICKCAST_DELIVERY__BATCH_WINDOW_MS: "0" },
    (line) => {
      try {
        const log = JSON.parse(line);
        const addr = log.fields?.addr ?? log.addr;
        return addr ? `127.0.0.1:${addr.split(":").pop()}` : null;
      } catch {
        return null;
      }
    },
  );
}
const publishTo = (base) => async () => {
  for (let sent = 0; sent < EVENTS; sent += 50) {
    const batch = Array.from({ length: Math.min(50, EVENTS - sent) }, () => BODY);
    const res = await fetch(`http://${base}/api/publish?channel=tickstock.events.patterns`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    if (res.status !== 202) throw new Error(`publish: ${res.status}`);
  }
};
let tickcast = await startTickcast();
rows.push(await measure("tickcast /ws", tickcast.child.pid, async (got) => {
  const ws = new WebSocket(`ws://${tickcast.base}/ws`);
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.type === "event") got();
    else if (msg.type === "batch") got(msg.events.length);
  });
  await new Promise((r) => ws.once("open", r));
  ws.send(JSON.stringify({ op: "subscribe", id: "s1", filter: {} }));
  return ws;
}, publishTo(tickcast.base)));
tickcast.child.kill("SIGKILL");
tickcast = await startTickcast();
rows.push(await measure("tickcast /socket.io/", tickcast.child.pid, async (got) => {
  const socket = io(`http://${tickcast.base}`, { transports: ["websocket"], reconnection: false });
  socket.on("pattern_detected", () => got());
  await new Promise((r) => socket.once("connect", r));
  await socket.emitWithAck("subscribe", { id: "s1", filter: {} });
  return socket;
}, publishTo(tickcast.base)));
tickcast.child.kill("SIGKILL");

const node = await start(process.execPath, [path.join(here, "node-server.mjs")], {}, (line) =>
  /^\d+$/.test(line.trim()) ? `127.0.0.1:${line.trim()}` : null,
);
rows.push(await measure("socket.io on Node", node.child.pid, async (got) => {
  const socket = io(`http://${node.base}`, { transports: ["websocket"], reconnection: false });
  socket.on("pattern_detected", () => got());
  await new Promise((r) => socket.once("connect", r));
  return socket;
}, async () => {
  const body = encodeURIComponent(JSON.stringify(BODY));
  for (let sent = 0; sent < EVENTS; sent += 50) {
    await fetch(`http://${node.base}/publish?count=${Math.min(50, EVENTS - sent)}&body=${body}`);
  }
}));
node.child.kill("SIGKILL");

console.table(rows);
console.log(JSON.stringify({ node: process.version, rows }));
process.exit(0);

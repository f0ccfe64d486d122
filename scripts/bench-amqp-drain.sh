#!/usr/bin/env bash
# How fast one tickcast node takes events off RabbitMQ when the broker has
# them (docs/benchmarks.md, "Ingest throughput at low fan-out"): on a
# machine where RabbitMQ's own publishing is the ceiling, this shows what
# the server's consumer can take.
#
#   scripts/bench-amqp-drain.sh [RATE [DURATION]]     default 16000 events/s, 20 s
#
# 1. starts node A (its durable queue is declared and bound), stops it;
# 2. runs tickcast-load --via amqp against node B: every event also lands
#    in A's queue;
# 3. starts A again and times it from /ready until /api/stats `published`
#    reaches what was published (no clients: consumer, decoding, routing,
#    history and acks, without fan-out).
#
# Needs the release binaries (cargo build --release -p tickcast -p
# tickcast-benches) and a RabbitMQ at AMQP_URL (default: the one
# `scripts/brokers.sh start` runs). CARGO_TARGET_DIR is honoured.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATE="${1:-16000}"
DURATION="${2:-20}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/tickcast"
LOAD="$TARGET/release/tickcast-load"
URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5682/%2f}"
PORT_A="${PORT_A:-18131}"
PORT_B="${PORT_B:-18132}"
RUN="drain-$(date +%s)"
WORK="$(mktemp -d)"
for binary in "$BIN" "$LOAD"; do
  [ -x "$binary" ] || { echo "$binary missing: build the release binaries first" >&2; exit 2; }
done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# node PORT NAME: a node on the run's exchange, in the background.
node() {
  TICKCAST_DELIVERY__RATE_LIMIT_PER_USER=0 TICKCAST_DELIVERY__BATCH_WINDOW_MS=0 \
    TICKCAST_INGEST__AMQP__URL="$URL" TICKCAST_INGEST__AMQP__EXCHANGE="$RUN" \
    TICKCAST_LISTEN="127.0.0.1:$1" TICKCAST_NODE_ID="$2-$RUN" RUST_LOG=warn \
    "$BIN" >"$WORK/$2.log" 2>&1 &
  pids+=($!)
}
ready() {
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node on port $1 not ready" >&2
  exit 1
}
published() {
  curl -s "http://127.0.0.1:$1/api/stats" | sed -E 's/.*"published":([0-9]+).*/\1/'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

node "$PORT_A" a
ready "$PORT_A"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
node "$PORT_B" b
ready "$PORT_B"
"$LOAD" --server "127.0.0.1:$PORT_B" --scenario smoke --connections 10 --batch 100 \
  --publishers 2 --rate "$RATE" --duration "$DURATION" --grace 10 --server-pid "${pids[-1]}" \
  --via amqp --broker-url "$URL" --amqp-exchange "$RUN" >"$WORK/load.md" 2>&1 || true
grep -E '^\| (published|deliveries)' "$WORK/load.md"
total=$(sed -nE 's/^\| published \| ([0-9]+) events accepted.*/\1/p' "$WORK/load.md")
[ -n "$total" ] || { echo "the load published nothing" >&2; exit 1; }
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

node "$PORT_A" a
server=${pids[-1]}
ready "$PORT_A"
n0=$(published "$PORT_A"); t0=$(date +%s.%N); c0=$(cpu_ticks "$server")
n=$n0
for _ in $(seq 3000); do
  n=$(published "$PORT_A")
  [ "$n" -ge "$total" ] && break
  sleep 0.1
done
t1=$(date +%s.%N); c1=$(cpu_ticks "$server")
awk -v n0="$n0" -v n="$n" -v total="$total" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" \
  -v hz="$(getconf CLK_TCK)" 'BEGIN {
    t = t1 - t0
    printf "drained %d of %d events in %.2f s (%d before the clock started): %.0f events/s, server at %.0f %% of a core\n",
      n - n0, total, t, n0, (n - n0) / t, c / hz / t * 100
  }'

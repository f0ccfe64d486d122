#!/usr/bin/env bash
# The Redis Streams ingest measurement of docs/benchmarks.md ("Ingest
# throughput at low fan-out", issue 14), start to end: builds the release
# binaries, starts a private redis-server (no persistence) and tickcast in
# Streams mode on it, runs tickcast-load at the given rate publishing by
# XADD, prints the load's summary (Markdown) and stops both by pid.
#
#   scripts/bench-streams.sh [RATE [DURATION]]     default 100000 events/s, 10 s
#
# Environment:
#   ALLOC=mimalloc|glibc       the server's allocator: the binary's default
#                              (mimalloc) or glibc's malloc (built without
#                              the `mimalloc` feature)
#   CONNECTIONS=10 BATCH=100 PUBLISHERS=2 GRACE=20 SCENARIO=smoke
#   REDIS_PORT=6396 HTTP_PORT=18096  private ports (not the shared test brokers')
#   NO_BUILD=1                 use the binaries already built
#   SERVER=PATH                this server binary instead (e.g. a copy of an
#                              older build, for before/after)
#   PERF=FILE                  also `perf record` the server for 4 s mid-run
#   PERF_CALLGRAPH=dwarf,32768 perf's --call-graph (default fp)
#   EXTRA_LOAD_ARGS=...        more tickcast-load flags (e.g. --json out.json)
#
# Also prints redis-server's CPU over the run (the broker's share of the
# machine) and its INFO commandstats for the stream commands. CARGO_TARGET_DIR is honoured. Each run uses a fresh stream key.
# The figure of merit on a busy machine is "server CPU per delivery"; the
# latency percentiles need an idle one.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATE="${1:-100000}"
DURATION="${2:-10}"
ALLOC="${ALLOC:-mimalloc}"
CONNECTIONS="${CONNECTIONS:-10}"
BATCH="${BATCH:-100}"
PUBLISHERS="${PUBLISHERS:-2}"
GRACE="${GRACE:-20}"
SCENARIO="${SCENARIO:-smoke}"
REDIS_PORT="${REDIS_PORT:-6396}"
HTTP_PORT="${HTTP_PORT:-18096}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$TARGET/bench-streams"

case "$ALLOC" in
  mimalloc) server_features=() ;;
  glibc) server_features=(--no-default-features --features ws,sse,socketio,redis,amqp) ;;
  *) echo "ALLOC must be mimalloc or glibc" >&2; exit 2 ;;
esac

cd "$ROOT"
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -p tickcast-benches
  cargo build --release -p tickcast "${server_features[@]}"
  # Keep one server binary per allocator, so runs can alternate without
  # rebuilding.
  cp "$TARGET/release/tickcast" "$TARGET/release/tickcast-$ALLOC"
fi
SERVER="${SERVER:-$TARGET/release/tickcast-$ALLOC}"
LOAD="$TARGET/release/tickcast-load"
[ -x "$SERVER" ] || { echo "$SERVER missing: run without NO_BUILD" >&2; exit 2; }

mkdir -p "$WORK"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" --logfile "$WORK/redis.log" &
redis=$!
pids+=("$redis")
# CPU seconds a process has used (user + system), from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

# Room for many connections (the c100k scenario), as far as the hard limit
# allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
STREAM="bench-$(date +%s%N)"
TICKCAST_DELIVERY__RATE_LIMIT_PER_USER=0 TICKCAST_DELIVERY__BATCH_WINDOW_MS=0 \
  TICKCAST_LISTEN="127.0.0.1:$HTTP_PORT" TICKCAST_NODE_ID=bench \
  TICKCAST_INGEST__REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
  TICKCAST_INGEST__REDIS__MODE=streams TICKCAST_INGEST__REDIS__STREAM="$STREAM" \
  RUST_LOG=warn "$SERVER" >"$WORK/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

if [ -n "${PERF:-}" ]; then
  # Mid-run: after the connections are up and the publishers have started.
  (sleep $((DURATION / 2 + 2)) &&
    perf record -F 499 --call-graph "${PERF_CALLGRAPH:-fp}" -o "$PERF" -p "$server" -- sleep 4 >/dev/null 2>&1) &
  pids+=($!)
fi

echo "# $(date -u +%FT%TZ) ALLOC=$ALLOC rate=$RATE duration=$DURATION load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
redis_before=$(cpu_seconds "$redis")
# shellcheck disable=SC2086
"$LOAD" --server "127.0.0.1:$HTTP_PORT" --scenario "$SCENARIO" --connections "$CONNECTIONS" \
  --batch "$BATCH" --publishers "$PUBLISHERS" --rate "$RATE" --duration "$DURATION" \
  --grace "$GRACE" --server-pid "$server" \
  --via redis --broker-url "redis://127.0.0.1:$REDIS_PORT" --redis-stream "$STREAM" \
  ${EXTRA_LOAD_ARGS:-}
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
redis_after=$(cpu_seconds "$redis")
awk -v a="$redis_before" -v b="$redis_after" -v n="$((RATE * DURATION))" \
  'BEGIN { printf "# redis-server CPU: %.2f s over the run, %.2f us per event offered\n", b - a, (b - a) * 1e6 / n }' >&2
redis-cli -p "$REDIS_PORT" info commandstats |
  grep -E '^cmdstat_(xadd|xreadgroup|xack|set|xtrim|xinfo\|groups):' | sed 's/^/# /' >&2 || true

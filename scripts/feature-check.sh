#!/usr/bin/env bash
# Builds the tickcast binary with one cargo feature alone and checks that it
# works: it starts, answers /health, and the feature's part answers too
# (ws: /ws refuses a plain GET; sse: /sse streams; socketio: /socket.io/
# answers an Engine.IO handshake; redis/amqp: the source reaches the broker
# of scripts/brokers.sh, so /ready is 200).
#
#   scripts/feature-check.sh ws|sse|socketio|redis|amqp
set -euo pipefail
cd "$(dirname "$0")/.."
feature="$1"

cargo build -q -p tickcast --no-default-features --features "$feature"
bin="${CARGO_TARGET_DIR:-target}/debug/tickcast"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
eval "$(scripts/brokers.sh env)"
case "$feature" in
  redis) export TICKCAST_INGEST__REDIS__URL="$TESTKIT_REDIS_URL" ;;
  amqp)
    export TICKCAST_INGEST__AMQP__URL="$TESTKIT_AMQP_URL"
    export TICKCAST_INGEST__AMQP__EXCHANGE="tickcast-feature-check"
    ;;
esac
"$bin" --listen "127.0.0.1:$port" --node-id "feature-check-$feature" >"target/feature-$feature.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf "$url/health" >/dev/null && break
  sleep 0.1
done
curl -sf "$url/health" >/dev/null || { echo "$feature: no /health"; cat "target/feature-$feature.log"; exit 1; }

expect_status() {
  local want="$1" path="$2" got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url$path" || true)
  if [ "$got" != "$want" ]; then
    echo "$feature: GET $path answered $got, expected $want"
    cat "target/feature-$feature.log"
    exit 1
  fi
}

case "$feature" in
  ws)
    expect_status 400 /ws          # not an upgrade request
    expect_status 404 /sse ;;      # not built
  sse)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/sse" || true)
    [ "$code" = 200 ] || { echo "sse: /sse answered $code"; exit 1; }
    expect_status 400 '/sse?tiers=weekly'
    expect_status 404 /ws ;;
  socketio)
    body=$(curl -s --max-time 2 "$url/socket.io/?EIO=4&transport=polling" || true)
    case "$body" in
      '0{"'*) ;;
      *) echo "socketio: the polling handshake answered: $body"; cat "target/feature-$feature.log"; exit 1 ;;
    esac
    expect_status 400 '/socket.io/?EIO=3&transport=polling'
    expect_status 404 /ws ;;
  redis|amqp)
    for _ in $(seq 1 100); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ready")" = 200 ] && break
      sleep 0.1
    done
    expect_status 200 /ready ;;
esac
echo "feature $feature alone: builds and works"

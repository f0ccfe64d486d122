#!/usr/bin/env bash
# Real brokers for tests and CI: Debian's redis-server and rabbitmq-server,
# each an isolated instance on its own port under target/brokers/, started
# without systemd and stopped by pid.
#
#   scripts/brokers.sh install   apt-get install both, and Debian's chromium
#                                for the demo page's browser test (if missing)
#   scripts/brokers.sh start     start both, wait until they answer
#   scripts/brokers.sh stop      stop both (by pid file)
#   scripts/brokers.sh status    say what runs where
#   scripts/brokers.sh env       print the variables the tests read
#   scripts/brokers.sh cluster start|stop|status|env
#                                a Redis Cluster of its own: 3 masters (no
#                                replicas) from Debian's redis-server on
#                                TESTKIT_REDIS_CLUSTER_PORT.. (7100-7102),
#                                under target/brokers/cluster/<port>/; env
#                                prints TESTKIT_REDIS_CLUSTER_URLS
#
# Ports: TESTKIT_REDIS_PORT (6390), TESTKIT_AMQP_PORT (5682). RabbitMQ's
# Erlang distribution port is picked free at each start (RabbitMQ's default,
# the AMQP port + 20000, may be anyone's ephemeral port). Everything the
# brokers write stays under target/brokers/, the Erlang VMs' crash dumps
# (erl_crash.dump) included.
# Tests find the brokers through TESTKIT_REDIS_URL and
# TESTKIT_AMQP_URL, which default to these ports. (Not TICKCAST_*: that
# prefix is the server's configuration, which warns about any variable that
# is not one of its keys.)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${TESTKIT_BROKER_DIR:-$ROOT/target/brokers}"
# Absolute: rabbitmq-server runs from inside it, with paths below it.
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
REDIS_PORT="${TESTKIT_REDIS_PORT:-6390}"
AMQP_PORT="${TESTKIT_AMQP_PORT:-5682}"
CLUSTER_PORT="${TESTKIT_REDIS_CLUSTER_PORT:-7100}"
CLUSTER_MASTERS="${TESTKIT_REDIS_CLUSTER_MASTERS:-3}"
RABBIT_NODE="tickcast-test-$AMQP_PORT@localhost"
RABBIT_BIN=/usr/lib/rabbitmq/bin

install() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -x "$RABBIT_BIN/rabbitmq-server" ] || missing+=(rabbitmq-server)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Debian's maintainer scripts must not start system-wide daemons on the
  # default ports; this script runs its own instances.
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

rabbit_env() {
  local base="$DIR/rabbitmq"
  mkdir -p "$base/home" "$base/mnesia" "$base/log"
  : >"$base/enabled_plugins"
  export HOME="$base/home"
  # The VM writes its crash dump into its working directory by default: the
  # caller's, often the repository. rabbitmqctl is an Erlang VM too.
  export ERL_CRASH_DUMP="$base/erl_crash.dump"
  export RABBITMQ_NODENAME="$RABBIT_NODE"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$AMQP_PORT"
  export RABBITMQ_MNESIA_BASE="$base/mnesia"
  export RABBITMQ_LOG_BASE="$base/log"
  export RABBITMQ_PID_FILE="$base/rabbitmq.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$base/rabbitmq"
  # guest may connect from loopback only, which is all the tests do.
  printf 'loopback_users.guest = true\nlisteners.tcp.default = %s\n' "$AMQP_PORT" >"$base/rabbitmq.conf"
}

# A loopback port nobody listens on, picked by the OS. Erlang is there
# wherever rabbitmq-server is, so this needs nothing else installed.
free_port() {
  erl -noshell -noinput -eval \
    '{ok, S} = gen_tcp:listen(0, [{ip, {127,0,0,1}}]), {ok, P} = inet:port(S), io:format("~b~n", [P]), halt().'
}

start_redis() {
  mkdir -p "$DIR/redis"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "redis-server already answers on $REDIS_PORT"
    return
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' \
    --appendonly no --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" \
    --logfile "$DIR/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && { echo "redis-server on 127.0.0.1:$REDIS_PORT"; return; }
    sleep 0.1
  done
  echo "redis-server did not start; see $DIR/redis/redis.log" >&2
  return 1
}

start_rabbit() {
  rabbit_env
  if [ -s "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null; then
    echo "rabbitmq-server already runs (pid $(cat "$RABBITMQ_PID_FILE"))"
    return
  fi
  RABBITMQ_DIST_PORT="$(free_port)"
  export RABBITMQ_DIST_PORT
  (cd "$DIR/rabbitmq" && exec "$RABBIT_BIN/rabbitmq-server") >"$RABBITMQ_LOG_BASE/stdout.log" 2>&1 &
  if ! "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" wait --timeout 90 "$RABBITMQ_PID_FILE" >/dev/null; then
    echo "rabbitmq-server did not start; see $RABBITMQ_LOG_BASE" >&2
    tail -20 "$RABBITMQ_LOG_BASE/stdout.log" >&2 || true
    return 1
  fi
  echo "rabbitmq-server on 127.0.0.1:$AMQP_PORT (node $RABBIT_NODE, distribution port $RABBITMQ_DIST_PORT)"
}

stop_pid() {
  local name="$1" pidfile="$2"
  [ -s "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop() {
  stop_pid redis-server "$DIR/redis/redis.pid"
  rabbit_env
  "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" stop >/dev/null 2>&1 || true
  stop_pid rabbitmq-server "$RABBITMQ_PID_FILE"
}

cluster_ports() {
  seq "$CLUSTER_PORT" $((CLUSTER_PORT + CLUSTER_MASTERS - 1))
}

# One redis-server per port, cluster-enabled, each with its own nodes.conf
# under its own directory; then `redis-cli --cluster create` splits the
# slots over them (only when they are fresh: a restarted cluster keeps its
# nodes.conf and finds its slots again).
start_cluster() {
  local addrs=() fresh=0
  for port in $(cluster_ports); do
    local dir="$DIR/cluster/$port"
    mkdir -p "$dir"
    addrs+=("127.0.0.1:$port")
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
      continue
    fi
    [ -s "$dir/nodes.conf" ] || fresh=1
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' \
      --appendonly no --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
      --cluster-node-timeout 5000 --dir "$dir" --pidfile "$dir/redis.pid" \
      --logfile "$dir/redis.log"
  done
  for port in $(cluster_ports); do
    local up=0
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && { up=1; break; }
      sleep 0.1
    done
    [ "$up" -eq 1 ] || { echo "redis-server did not start on $port; see $DIR/cluster/$port/redis.log" >&2; return 1; }
  done
  if [ "$fresh" -eq 1 ] || ! redis-cli -p "$CLUSTER_PORT" cluster info | grep -q '^cluster_state:ok'; then
    if ! redis-cli -p "$CLUSTER_PORT" cluster info | grep -q '^cluster_slots_assigned:16384'; then
      redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/cluster/create.log" 2>&1 \
        || { cat "$DIR/cluster/create.log" >&2; return 1; }
    fi
  fi
  for _ in $(seq 1 100); do
    local ok=1
    for port in $(cluster_ports); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
    done
    [ "$ok" -eq 1 ] && { echo "redis cluster on ${addrs[*]}"; return; }
    sleep 0.1
  done
  echo "redis cluster did not reach cluster_state:ok; see $DIR/cluster/*/redis.log" >&2
  return 1
}

# Stopped by pid, and forgotten: the next start creates a fresh cluster
# (the instances keep no data).
stop_cluster() {
  for port in $(cluster_ports); do
    stop_pid "redis-server (cluster $port)" "$DIR/cluster/$port/redis.pid"
    rm -f "$DIR/cluster/$port/nodes.conf"
  done
}

cluster_status() {
  for port in $(cluster_ports); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
      echo "redis cluster $port: up, $(redis-cli -p "$port" cluster info | grep '^cluster_state' | tr -d '\r')"
    else
      echo "redis cluster $port: down"
    fi
  done
}

cluster_env() {
  local urls=()
  for port in $(cluster_ports); do
    urls+=("redis://127.0.0.1:$port")
  done
  local IFS=,
  echo "export TESTKIT_REDIS_CLUSTER_URLS=${urls[*]}"
}

print_env() {
  echo "export TESTKIT_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
  echo "export TESTKIT_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"
}

case "${1:-}" in
  install) install ;;
  start) start_redis; start_rabbit ;;
  stop) stop ;;
  status)
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && echo "redis: up on $REDIS_PORT" || echo "redis: down"
    rabbit_env
    "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" status >/dev/null 2>&1 && echo "rabbitmq: up on $AMQP_PORT" || echo "rabbitmq: down"
    ;;
  env) print_env ;;
  cluster)
    case "${2:-}" in
      start) start_cluster ;;
      stop) stop_cluster ;;
      status) cluster_status ;;
      env) cluster_env ;;
      *) echo "usage: $0 cluster start|stop|status|env" >&2; exit 2 ;;
    esac
    ;;
  *) echo "usage: $0 install|start|stop|status|env|cluster start|stop|status|env" >&2; exit 2 ;;
esac

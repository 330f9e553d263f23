#!/bin/sh
# Start rcmlrouter workers on one host (one per core, distinct ports) on one PostgreSQL store,
# behind Kamailio (config/kamailio/kamailio.cfg). Foreground; Ctrl-C (or SIGTERM) stops all.
#
#   RCMLROUTER_STORE_URL=postgresql://rcml@127.0.0.1/rcml config/cluster.sh
#
# Environment (defaults in brackets):
#   RCMLROUTER_STORE_URL  the shared store, postgresql://… (required)
#   WORKERS               workers to start [number of cores]
#   SIP_HOST              address workers and Kamailio listen on [127.0.0.1]
#   SIP_PORT              Kamailio's SIP port (UDP and TCP) [5060]
#   WORKER_SIP_BASE       first worker's SIP port; worker i uses BASE+i [5071]
#   WORKER_API_BASE       first worker's API port; worker i uses BASE+i [8081]
#   CONFIG                rcmlrouter config file [config/rcmlrouter.example.toml]
#   RUN_DIR               logs, dispatcher list, Kamailio runtime files [var/cluster]
#   RCMLROUTER            the rcmlrouter command [.venv/bin/rcmlrouter]
#   KAMAILIO              the kamailio command [kamailio]
# Each worker's node id is HOSTNAME:SIP_PORT (stable, so a restarted worker takes its own
# unfinished work back). Worker logs: $RUN_DIR/worker-N.log.
set -eu

: "${RCMLROUTER_STORE_URL:?set RCMLROUTER_STORE_URL=postgresql://…}"
case "$RCMLROUTER_STORE_URL" in
  postgresql://*|postgres://*) ;;
  *) echo "cluster.sh: RCMLROUTER_STORE_URL must be postgresql://… (SQLite is one node)" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
SIP_HOST=${SIP_HOST:-127.0.0.1}
SIP_PORT=${SIP_PORT:-5060}
WORKER_SIP_BASE=${WORKER_SIP_BASE:-5071}
WORKER_API_BASE=${WORKER_API_BASE:-8081}
CONFIG=${CONFIG:-$HERE/config/rcmlrouter.example.toml}
RUN_DIR=${RUN_DIR:-$HERE/var/cluster}
RCMLROUTER=${RCMLROUTER:-$HERE/.venv/bin/rcmlrouter}
KAMAILIO=${KAMAILIO:-kamailio}
export RCMLROUTER_STORE_URL

mkdir -p "$RUN_DIR/kamailio"
"$RCMLROUTER" --config "$CONFIG" init >/dev/null  # migrate, create the administrator once

pids=""
stop() {
  trap - INT TERM EXIT
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

: > "$RUN_DIR/dispatcher.list"
i=0
while [ "$i" -lt "$WORKERS" ]; do
  sip=$((WORKER_SIP_BASE + i))
  api=$((WORKER_API_BASE + i))
  echo "1 sip:$SIP_HOST:$sip 0 0" >> "$RUN_DIR/dispatcher.list"
  RCMLROUTER_SIP_LISTEN="udp:$SIP_HOST:$sip,tcp:$SIP_HOST:$sip" \
  RCMLROUTER_API_LISTEN="$SIP_HOST:$api" \
    "$RCMLROUTER" --config "$CONFIG" run > "$RUN_DIR/worker-$i.log" 2>&1 &
  pids="$pids $!"
  echo "worker $i: SIP $SIP_HOST:$sip, API http://$SIP_HOST:$api (log $RUN_DIR/worker-$i.log)"
  i=$((i + 1))
done

"$KAMAILIO" -DD -E -f "$HERE/config/kamailio/kamailio.cfg" \
  -l "udp:$SIP_HOST:$SIP_PORT" -l "tcp:$SIP_HOST:$SIP_PORT" \
  -Y "$RUN_DIR/kamailio" -w "$RUN_DIR/kamailio" \
  -A "DISPATCHER_LIST=\"$RUN_DIR/dispatcher.list\"" > "$RUN_DIR/kamailio.log" 2>&1 &
pids="$pids $!"
echo "kamailio: SIP $SIP_HOST:$SIP_PORT -> $WORKERS workers (log $RUN_DIR/kamailio.log)"
wait

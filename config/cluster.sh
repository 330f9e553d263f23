#!/bin/sh
# rcmlrouter workers on one host (one per core, each with its own SIP and API port and its own
# RTP port range) on one PostgreSQL store, behind Kamailio (config/kamailio/kamailio.cfg).
#
#   RCMLROUTER_STORE_URL=postgresql://rcml@127.0.0.1/rcml config/cluster.sh
#       Foreground: prints the admin credentials, imports the demo inventory, starts the workers
#       and Kamailio, and starts again any of them that dies (backoff 1 s, doubling to
#       RESTART_MAX_DELAY; back to 1 s after RESTART_RESET s of running). Ctrl-C or SIGTERM
#       stops all (workers drain first).
#   config/cluster.sh systemd-env DIR
#       Writes DIR/worker-N.env (N = 0 … WORKERS-1: the SIP and API listen addresses and the RTP
#       range of worker N, for systemd/rcmlrouter@.service) and DIR/dispatcher.list (Kamailio);
#       same plan as a foreground run with the same settings. Needs no store.
#
# Environment (defaults in brackets); every RCMLROUTER_* variable also reaches every worker:
#   RCMLROUTER_STORE_URL  the shared store, postgresql://… (required to run)
#   WORKERS               workers to start [number of cores]
#   SIP_HOST              address workers and Kamailio listen on [127.0.0.1]
#   SIP_PORT              Kamailio's SIP port (UDP and TCP) [5060]
#   WORKER_SIP_BASE       first worker's SIP port; worker i uses BASE+i [5071]
#   WORKER_API_BASE       first worker's API port; worker i uses BASE+i [8081]
#   RTP_PORTS             RTP ports of the host, split evenly: worker i gets the i-th slice
#                         (workers never share a port range) [20000-29999]
#   INVENTORY             CSV imported at start ("" imports none) [config/inventory.demo.csv]
#   RESTART_MAX_DELAY     longest wait before starting a dead worker again, s [30]
#   RESTART_RESET         a worker that ran this long restarts after 1 s again, s [60]
#   CONFIG                rcmlrouter config file [config/rcmlrouter.example.toml]
#   RUN_DIR               logs, dispatcher list, Kamailio runtime files [var/cluster]
#   RCMLROUTER            the rcmlrouter command [.venv/bin/rcmlrouter]
#   KAMAILIO              the kamailio command [kamailio]
#   KAMAILIO_ARGS         more kamailio arguments, e.g. "-A DS_PING_INTERVAL=1" []
# Each worker's node id is HOSTNAME:SIP_PORT (stable, so a restarted worker takes its own
# unfinished work back). Logs: $RUN_DIR/worker-N.log, $RUN_DIR/kamailio.log.
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
SIP_HOST=${SIP_HOST:-127.0.0.1}
SIP_PORT=${SIP_PORT:-5060}
WORKER_SIP_BASE=${WORKER_SIP_BASE:-5071}
WORKER_API_BASE=${WORKER_API_BASE:-8081}
RTP_PORTS=${RTP_PORTS:-20000-29999}
INVENTORY=${INVENTORY-$HERE/config/inventory.demo.csv}
RESTART_MAX_DELAY=${RESTART_MAX_DELAY:-30}
RESTART_RESET=${RESTART_RESET:-60}
CONFIG=${CONFIG:-$HERE/config/rcmlrouter.example.toml}
RUN_DIR=${RUN_DIR:-$HERE/var/cluster}
RCMLROUTER=${RCMLROUTER:-$HERE/.venv/bin/rcmlrouter}
KAMAILIO=${KAMAILIO:-kamailio}
KAMAILIO_ARGS=${KAMAILIO_ARGS:-}

fail() { echo "cluster.sh: $*" >&2; exit 2; }

# The port plan: worker $1's SIP port, API port and RTP range (even-aligned slices of RTP_PORTS).
rtp_low=${RTP_PORTS%-*}
rtp_high=${RTP_PORTS#*-}
case "$WORKERS$rtp_low$rtp_high" in *[!0-9]*|'') fail "WORKERS and RTP_PORTS (LOW-HIGH) must be numbers" ;; esac
[ "$WORKERS" -ge 1 ] || fail "WORKERS must be at least 1"
rtp_base=$((rtp_low + rtp_low % 2))
rtp_span=$(( (rtp_high - rtp_base + 1) / WORKERS / 2 * 2 ))
[ "$rtp_span" -ge 4 ] || fail "RTP_PORTS $RTP_PORTS is too small for $WORKERS workers"
worker_sip() { echo $((WORKER_SIP_BASE + $1)); }
worker_api() { echo $((WORKER_API_BASE + $1)); }
worker_rtp() {
  low=$((rtp_base + $1 * rtp_span))
  echo "$low-$((low + rtp_span - 1))"
}
dispatcher_list() {
  i=0
  while [ "$i" -lt "$WORKERS" ]; do
    echo "1 sip:$SIP_HOST:$(worker_sip "$i") 0 0"
    i=$((i + 1))
  done
}

if [ "${1:-}" = systemd-env ]; then
  dir=${2:?usage: config/cluster.sh systemd-env DIR}
  mkdir -p "$dir"
  i=0
  while [ "$i" -lt "$WORKERS" ]; do
    sip=$(worker_sip "$i")
    {
      echo "# rcmlrouter@$i.service (written by config/cluster.sh systemd-env)"
      echo "RCMLROUTER_SIP_LISTEN=udp:$SIP_HOST:$sip,tcp:$SIP_HOST:$sip"
      echo "RCMLROUTER_API_LISTEN=$SIP_HOST:$(worker_api "$i")"
      echo "RCMLROUTER_MEDIA_RTP_PORTS=$(worker_rtp "$i")"
    } > "$dir/worker-$i.env"
    i=$((i + 1))
  done
  dispatcher_list > "$dir/dispatcher.list"
  echo "wrote $dir/worker-0.env … worker-$((WORKERS - 1)).env and $dir/dispatcher.list"
  exit 0
fi
[ $# -eq 0 ] || fail "usage: config/cluster.sh [systemd-env DIR]"

: "${RCMLROUTER_STORE_URL:?set RCMLROUTER_STORE_URL=postgresql://…}"
case "$RCMLROUTER_STORE_URL" in
  postgresql://*|postgres://*) ;;
  *) fail "RCMLROUTER_STORE_URL must be postgresql://… (SQLite is one node)" ;;
esac
export RCMLROUTER_STORE_URL
mkdir -p "$RUN_DIR/kamailio"

# run COMMAND…: its logs to $RUN_DIR/setup.log, shown only when it fails
quiet() { "$@" 2>> "$RUN_DIR/setup.log" || { tail -n 20 "$RUN_DIR/setup.log" >&2; exit 1; }; }
: > "$RUN_DIR/setup.log"
# migrate, create the administrator once; its credentials on every start
echo "== admin credentials (API user = account_sid, password = auth_token) =="
quiet "$RCMLROUTER" --config "$CONFIG" init
if [ -n "$INVENTORY" ]; then
  imported=$(quiet "$RCMLROUTER" --config "$CONFIG" inventory import "$INVENTORY")
  echo "inventory: $INVENTORY $imported"
fi

# supervise NAME LOG COMMAND…: run COMMAND (output appended to LOG) until stopped; when it dies,
# start it again after a delay (1 s, doubling up to RESTART_MAX_DELAY; 1 s again after a run
# of RESTART_RESET s). SIGTERM stops COMMAND with SIGTERM and waits for it.
supervise() {
  name=$1 log=$2
  shift 2
  (
    child="" stopping="" delay=1
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM
    while :; do
      started=$(date +%s)
      "$@" >> "$log" 2>&1 &
      child=$!
      rc=0
      wait "$child" || rc=$?
      while kill -0 "$child" 2>/dev/null; do  # a signal ended the wait, not the child
        rc=0
        wait "$child" || rc=$?
      done
      child=""
      [ -z "$stopping" ] || exit 0
      ran=$(($(date +%s) - started))
      [ "$ran" -lt "$RESTART_RESET" ] || delay=1
      echo "cluster.sh: $name exited (status $rc) after ${ran}s; starting it again in ${delay}s" >&2
      sleep "$delay" &
      child=$!
      wait "$child" || true
      child=""
      [ -z "$stopping" ] || exit 0
      delay=$((delay * 2))
      [ "$delay" -le "$RESTART_MAX_DELAY" ] || delay=$RESTART_MAX_DELAY
    done
  ) &
  pids="$pids $!"
}

pids=""
stop() {
  trap - INT TERM EXIT
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

dispatcher_list > "$RUN_DIR/dispatcher.list"
i=0
while [ "$i" -lt "$WORKERS" ]; do
  sip=$(worker_sip "$i") api=$(worker_api "$i") rtp=$(worker_rtp "$i")
  : > "$RUN_DIR/worker-$i.log"
  supervise "worker $i" "$RUN_DIR/worker-$i.log" env \
    RCMLROUTER_SIP_LISTEN="udp:$SIP_HOST:$sip,tcp:$SIP_HOST:$sip" \
    RCMLROUTER_API_LISTEN="$SIP_HOST:$api" RCMLROUTER_MEDIA_RTP_PORTS="$rtp" \
    "$RCMLROUTER" --config "$CONFIG" run
  echo "worker $i: SIP $SIP_HOST:$sip, API http://$SIP_HOST:$api, RTP $rtp (log $RUN_DIR/worker-$i.log)"
  i=$((i + 1))
done

: > "$RUN_DIR/kamailio.log"
# shellcheck disable=SC2086  # KAMAILIO_ARGS: several arguments
supervise kamailio "$RUN_DIR/kamailio.log" "$KAMAILIO" -DD -E -f "$HERE/config/kamailio/kamailio.cfg" \
  -l "udp:$SIP_HOST:$SIP_PORT" -l "tcp:$SIP_HOST:$SIP_PORT" \
  -Y "$RUN_DIR/kamailio" -w "$RUN_DIR/kamailio" \
  -A "DISPATCHER_LIST=\"$RUN_DIR/dispatcher.list\"" $KAMAILIO_ARGS
echo "kamailio: SIP $SIP_HOST:$SIP_PORT -> $WORKERS workers (log $RUN_DIR/kamailio.log)"
wait

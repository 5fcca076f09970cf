#!/usr/bin/env bash
# Starts or stops a tsync sender or receiver in the background, one per properties file:
#   bin/service.sh start|stop sender|receiver [CONF]   (default conf/<role>.properties)
# The pid goes to run/<role>-<config name>.pid and the log to logs/<role>-<config name>.log
# (TSYNC_RUN_DIR, TSYNC_LOG_DIR override). Stop signals only that pid, never a pattern match:
# SIGTERM, then it waits for the graceful exit (the current chunk is checkpointed).
set -euo pipefail
action="${1:?usage: service.sh start|stop sender|receiver [CONF]}"
role="${2:?usage: service.sh start|stop sender|receiver [CONF]}"
home="$(cd "$(dirname "$0")/.." && pwd)"
conf="${3:-$home/conf/$role.properties}"
name="$(basename "$conf" .properties)"
run="${TSYNC_RUN_DIR:-$home/run}"
logs="${TSYNC_LOG_DIR:-$home/logs}"
pidfile="$run/$role-$name.pid"

case "$action" in
  start)
    mkdir -p "$run" "$logs"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "tsync $role for $conf is already running (pid $(cat "$pidfile"))" >&2
      exit 1
    fi
    nohup node "$home/bin/tsync.js" "$role" --config "$conf" >>"$logs/$role-$name.log" 2>&1 &
    echo $! >"$pidfile"
    echo "tsync $role started (pid $!), log: $logs/$role-$name.log"
    ;;
  stop)
    if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "No tsync $role to stop for $conf" >&2
      rm -f "$pidfile"
      exit 1
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "tsync $role stopped (pid $pid)"; exit 0; }
      sleep 0.1
    done
    echo "tsync $role (pid $pid) did not stop within 15 s" >&2
    exit 1
    ;;
  *)
    echo "usage: service.sh start|stop sender|receiver [CONF]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Starts a tsync receiver in the background: `bin/start-receiver.sh [conf/receiver.properties]`.
# Writes its pid to run/receiver-<config name>.pid and its log to logs/receiver-<config name>.log.
set -euo pipefail
home="$(cd "$(dirname "$0")/.." && pwd)"
conf="${1:-$home/conf/receiver.properties}"
name="$(basename "$conf" .properties)"
run="${TSYNC_RUN_DIR:-$home/run}"; logs="${TSYNC_LOG_DIR:-$home/logs}"
mkdir -p "$run" "$logs"
pidfile="$run/receiver-$name.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "tsync receiver for $conf is already running (pid $(cat "$pidfile"))" >&2
  exit 1
fi
nohup node "$home/bin/tsync.js" receiver --config "$conf" >>"$logs/receiver-$name.log" 2>&1 &
echo $! >"$pidfile"
echo "tsync receiver started (pid $!), log: $logs/receiver-$name.log"

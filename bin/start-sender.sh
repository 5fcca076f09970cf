#!/usr/bin/env bash
# Starts a tsync sender in the background: `bin/start-sender.sh [conf/sender.properties]`.
# Writes its pid to run/sender-<config name>.pid and its log to logs/sender-<config name>.log.
set -euo pipefail
home="$(cd "$(dirname "$0")/.." && pwd)"
conf="${1:-$home/conf/sender.properties}"
name="$(basename "$conf" .properties)"
run="${TSYNC_RUN_DIR:-$home/run}"; logs="${TSYNC_LOG_DIR:-$home/logs}"
mkdir -p "$run" "$logs"
pidfile="$run/sender-$name.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "tsync sender for $conf is already running (pid $(cat "$pidfile"))" >&2
  exit 1
fi
nohup node "$home/bin/tsync.js" sender --config "$conf" >>"$logs/sender-$name.log" 2>&1 &
echo $! >"$pidfile"
echo "tsync sender started (pid $!), log: $logs/sender-$name.log"

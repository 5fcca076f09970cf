#!/usr/bin/env bash
# Stops the tsync sender started by bin/start-sender.sh with the same config: SIGTERM, then waits for a
# graceful exit (the current chunk is checkpointed). Only that pid is signalled, never a pattern match.
set -euo pipefail
home="$(cd "$(dirname "$0")/.." && pwd)"
conf="${1:-$home/conf/sender.properties}"
name="$(basename "$conf" .properties)"
pidfile="${TSYNC_RUN_DIR:-$home/run}/sender-$name.pid"
if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "No tsync sender to stop for $conf" >&2
  rm -f "$pidfile"
  exit 1
fi
pid="$(cat "$pidfile")"
kill -TERM "$pid"
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "tsync sender stopped (pid $pid)"; exit 0; }
  sleep 0.1
done
echo "tsync sender (pid $pid) did not stop within 15 s" >&2
exit 1

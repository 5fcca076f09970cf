#!/usr/bin/env bash
# Starts or stops a tsync sender or receiver in the background, one per properties file:
#   bin/service.sh start|stop|status sender|receiver [CONF]   (default conf/<role>.properties)
# The pid goes to run/<role>-<config name>.pid and the log to logs/<role>-<config name>.log
# (TSYNC_RUN_DIR, TSYNC_LOG_DIR override). Stop signals only that pid, never a pattern match:
# SIGTERM, then it waits for the graceful exit (the current chunk is checkpointed). A pid file
# whose pid is now some other process (the pid was reused after a crash or a reboot) counts as
# stale: that process is never signalled. `status` exits 0 when it runs, 3 when it does not.
set -euo pipefail
action="${1:?usage: service.sh start|stop|status sender|receiver [CONF]}"
role="${2:?usage: service.sh start|stop|status sender|receiver [CONF]}"
home="$(cd "$(dirname "$0")/.." && pwd)"
conf="${3:-$home/conf/$role.properties}"
# One spelling of the config per service, whatever directory the script is run from.
[ -f "$conf" ] && conf="$(cd "$(dirname "$conf")" && pwd)/$(basename "$conf")"
name="$(basename "$conf" .properties)"
run="${TSYNC_RUN_DIR:-$home/run}"
logs="${TSYNC_LOG_DIR:-$home/logs}"
pidfile="$run/$role-$name.pid"

# The pid in the pid file, when that process is still this tsync: alive, and started by `start`
# with this role and config (its command line says so). Prints nothing otherwise.
running_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  kill -0 "$pid" 2>/dev/null || return 0
  case "$(ps -ww -o args= -p "$pid" 2>/dev/null)" in
    *"bin/tsync.js $role --config $conf") echo "$pid" ;;
  esac
}

case "$action" in
  start)
    mkdir -p "$run" "$logs"
    pid="$(running_pid)"
    if [ -n "$pid" ]; then
      echo "tsync $role for $conf is already running (pid $pid)" >&2
      exit 1
    fi
    # No terminal and no caller's stdin: the service outlives the shell that started it.
    nohup node "$home/bin/tsync.js" "$role" --config "$conf" </dev/null >>"$logs/$role-$name.log" 2>&1 &
    echo $! >"$pidfile"
    echo "tsync $role started (pid $!), log: $logs/$role-$name.log"
    ;;
  status)
    pid="$(running_pid)"
    if [ -n "$pid" ]; then
      echo "tsync $role for $conf is running (pid $pid)"
      exit 0
    fi
    echo "tsync $role for $conf is not running"
    exit 3
    ;;
  stop)
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
      echo "No tsync $role to stop for $conf" >&2
      rm -f "$pidfile"
      exit 1
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "tsync $role stopped (pid $pid)"; exit 0; }
      sleep 0.1
    done
    echo "tsync $role (pid $pid) did not stop within 15 s" >&2
    exit 1
    ;;
  *)
    echo "usage: service.sh start|stop|status sender|receiver [CONF]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# `bin/stop-sender.sh [conf/sender.properties]`: see bin/service.sh.
exec "$(dirname "$0")/service.sh" stop sender "$@"

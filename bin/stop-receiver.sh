#!/usr/bin/env bash
# `bin/stop-receiver.sh [conf/receiver.properties]`: see bin/service.sh.
exec "$(dirname "$0")/service.sh" stop receiver "$@"

#!/usr/bin/env bash
# `bin/start-receiver.sh [conf/receiver.properties]`: see bin/service.sh.
exec "$(dirname "$0")/service.sh" start receiver "$@"

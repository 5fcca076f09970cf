#!/usr/bin/env bash
# `bin/start-sender.sh [conf/sender.properties]`: see bin/service.sh.
exec "$(dirname "$0")/service.sh" start sender "$@"

#!/usr/bin/env bash
# Installs a real redis-server for the test suite (Debian's package), if none is on PATH.
#   bash scripts/setup_redis.sh
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get install -y -q redis-server >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q redis-server >/dev/null
}
# The package starts a system instance on :6379 where systemd runs; the tests use their own.
command -v redis-server >/dev/null

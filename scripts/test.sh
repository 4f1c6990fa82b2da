#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs pytest.
#   bash scripts/test.sh [pytest args...]
# Real servers (a Bolt + Cypher server, vLLM's CPU build) are installed here and started by
# the test harness itself on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export R2REC_REQUIRE_SERVERS=1
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs pytest.
#   bash scripts/test.sh [pytest args...]     # everything, with the real servers (CI)
#   bash scripts/test.sh --quick [args...]    # unit tests only: no servers, no slow training
# Real servers (a Bolt + Cypher server, vLLM's CPU build) and a headless chromium are
# installed here and started by the test harness itself on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--quick" ]; then
  shift
  exec .venv/bin/python -m pytest -n 2 -m "not servers and not slow" "$@"
fi
bash scripts/setup_arcadedb.sh   # a real Bolt + Cypher server (ArcadeDB) for graph-store tests
bash scripts/setup_redis.sh      # a real redis-server for the cache tests
bash scripts/setup_vllm.sh       # vLLM's CPU build in its own venv, .venv-vllm
bash scripts/setup_deploy_tools.sh  # docker compose (config checks) and hadolint
bash scripts/setup_browser.sh    # chromium + chromium-driver for the /ui browser test
export R2REC_REQUIRE_SERVERS=1   # a server that cannot start fails its tests, never skips them
.venv/bin/python -m pytest "$@"

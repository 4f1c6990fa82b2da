"""Routes: liveness, readiness (graph store, Redis and LLM each reported) and metrics.

/readyz answers 503 only when the graph store is down (nothing can be served); a down
LLM (the graph scorer answers instead) or Redis (served uncached) makes it "degraded".
The LLM counts as down when its ping fails and also while the most recent LLM call of a
request failed (a server can list its models and still fail every completion); the next
call that succeeds clears it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import RuntimeDep
from service.runtime import Runtime

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check, CHECK_TIMEOUT_S)
        ok = True
    except Exception as err:  # any failure of a dependency is a "down" report, not a 500
        ok, detail = False, f"{type(err).__name__}: {err}"[:300]
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def _graph(runtime: Runtime) -> str:
    counts = await runtime.graph.counts()
    return f"{counts.users} users, {counts.items} items, {counts.interactions} interactions"


class LastLLMCallFailed(RuntimeError):
    pass


async def _llm(runtime: Runtime) -> str:
    detail = await runtime.llm.ping()
    last = runtime.recommender.last_llm
    if last is not None and not last.ok:
        ago = max(0.0, time.time() - last.at)
        raise LastLLMCallFailed(
            f"{detail}, but the last LLM call ({ago:.0f} s ago) failed: {last.reason} "
            f"({last.detail})"
        )
    return detail


async def _redis(runtime: Runtime) -> str:
    if runtime.cache is None:
        return "not configured"
    ok, detail = await runtime.cache.ping()
    if not ok:
        raise ConnectionError(detail)
    return detail


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    graph, llm, redis = await asyncio.gather(
        _timed(_graph(runtime)), _timed(_llm(runtime)), _timed(_redis(runtime))
    )
    status = "ok" if graph["ok"] and llm["ok"] and redis["ok"] else "degraded"
    if not graph["ok"]:
        status = "unavailable"
    body = {
        "status": status,
        "model": runtime.model_version,
        "checks": {"graph_store": graph, "llm": llm, "redis": redis},
    }
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""FastAPI dependency aliases: `RuntimeDep` for the lifespan's `Runtime`.

Dependencies here and in `service.security` are ``async def`` although they never await:
FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request that
also competes with the in-process model for the GIL (making them async took the cached
path from 1,963 / 2,334 / 1,976 to 2,220 / 3,640 / 3,990 req/s at concurrency 1 / 8 / 32).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

"""FastAPI dependency aliases: `RuntimeDep` for the lifespan's `Runtime`.

Dependencies here and in `service.security` are ``async def`` although they never await:
FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request that
competes with the in-process model for the GIL (it cost ~0.3 ms a request in a burst).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

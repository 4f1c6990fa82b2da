"""The FastAPI app: `create_app()` wires settings, lifespan, middleware and routers.

uvicorn service.main:create_app --factory --port 8000      (or: r2rec serve)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.catalog.router import router as catalog_router
from service.errors import BodySizeLimit, install_error_handlers
from service.health.router import router as health_router
from service.interactions.router import router as interactions_router
from service.metrics import RequestMetrics
from service.recommend.router import router as recommend_router
from service.runtime import Runtime
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.start(settings)
        try:
            yield
        finally:
            await app.state.runtime.close()

    app = FastAPI(
        title="R2Rec",
        version="0.1.0",
        lifespan=lifespan,
        description="Reasoning recommendations over an interaction graph.",
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)

    install_error_handlers(app)
    for router in (recommend_router, interactions_router, catalog_router, health_router):
        app.include_router(router)
    return app

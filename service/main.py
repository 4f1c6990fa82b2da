"""The FastAPI app: `create_app()` wires settings, lifespan, middleware and routers.

uvicorn service.main:create_app --factory --port 8000      (or: r2rec serve)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic.json_schema import models_json_schema

from service.admin.router import router as admin_router
from service.catalog.router import router as catalog_router
from service.errors import BodySizeLimit, install_error_handlers
from service.health.router import router as health_router
from service.interactions.router import router as interactions_router
from service.metrics import RequestMetrics
from service.rate.model import watch_rating_partner
from service.rate.router import router as rate_router
from service.recommend.protocol import STREAM_EVENTS
from service.recommend.router import router as recommend_router
from service.runtime import Runtime, watch_published
from service.security import BodyTimeout, OpsKey, RateLimit
from service.settings import Settings, get_settings
from service.ui.router import router as ui_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = app.state.runtime = await Runtime.start(settings)
        watchers = [watch_published(runtime)]
        if runtime.rating is not None:
            watchers.append(
                watch_rating_partner(runtime.rating, runtime.graph, settings.rating_refit_s)
            )
        try:
            yield
        finally:
            for watcher in watchers:
                if watcher is not None:
                    watcher.cancel()
            await runtime.close()

    app = FastAPI(
        title="R2Rec",
        version="0.1.0",
        lifespan=lifespan,
        description="Reasoning recommendations over an interaction graph.",
        # served below, behind the key when keys are set (service/security.py)
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    # the last added runs first: limit the rate, then time and size the body
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyTimeout, timeout_s=settings.body_timeout_s)
    app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(RequestMetrics)

    install_error_handlers(app)
    _document_stream_events(app)
    routers = (
        recommend_router,
        rate_router,
        interactions_router,
        catalog_router,
        health_router,
        admin_router,
        ui_router,
    )
    for router in routers:
        app.include_router(router)
    _add_docs(app)
    return app


def _document_stream_events(app: FastAPI) -> None:
    """Put the models of /recommend/stream's events into the schema's components, where
    the route's ``itemSchema`` refers to them (FastAPI adds only JSON bodies' models), and
    document its error answers as the JSON they are."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        _, defs = models_json_schema(
            [(model, "serialization") for model in STREAM_EVENTS.values()],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        # its errors are JSON bodies, not events (FastAPI gives them the route's media type)
        stream = schema["paths"]["/recommend/stream"]["post"]["responses"]
        for status, response in stream.items():
            content = response.get("content", {})
            if status != "200" and "text/event-stream" in content:
                content["application/json"] = content.pop("text/event-stream")
            elif status == "200":  # each event has its itemSchema; the body is no string
                content["text/event-stream"].pop("schema", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_docs(app: FastAPI) -> None:
    """/openapi.json, /docs and /redoc, each needing a key when keys are set."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[OpsKey])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[OpsKey])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=[OpsKey])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

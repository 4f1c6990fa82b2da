"""Map failures to JSON error bodies: ``{"error": kind, "detail": message}``.

- graph store unreachable or timing out -> 503 (retry later)
- malformed ids/records caught by the graph store, unknown candidate items -> 422
- a request body over the size limit -> 413 (see `BodySizeLimit`)
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph_store.types import GraphStoreUnavailable, InvalidInputError
from reasoning.backends import LLMRequestError
from reasoning.recommender import UnknownItemsError


def error(status: int, kind: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GraphStoreUnavailable)
    async def graph_down(_: Request, err: GraphStoreUnavailable) -> JSONResponse:
        return error(503, "graph_store_unavailable", str(err))

    @app.exception_handler(InvalidInputError)
    async def bad_input(_: Request, err: InvalidInputError) -> JSONResponse:
        return error(422, "invalid_input", str(err))

    @app.exception_handler(UnknownItemsError)
    async def unknown_items(_: Request, err: UnknownItemsError) -> JSONResponse:
        return error(422, "unknown_items", str(err))

    @app.exception_handler(LLMRequestError)
    async def llm_rejected(_: Request, err: LLMRequestError) -> JSONResponse:
        return error(502, "llm_rejected_request", str(err))


class BodySizeLimit:
    """ASGI middleware: reject bodies over ``max_bytes`` with 413, by header or by count."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, "body_too_large", f"request body over {self.max_bytes} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass

"""Map failures to JSON error bodies, and read request bodies as strict JSON.

Every error body is ``{"error": kind, "detail": text}`` (`ErrorBody`), except a failed
validation: ``{"detail": [...]}`` (`ValidationErrorBody`). Bodies never carry internal
addresses: a failing dependency is logged in full and answered with a fixed sentence.

- graph store unreachable or timing out -> 503 (retry later)
- the LLM server refused a request -> 502
- missing or invalid key -> 401, unknown item -> 404, body too slow -> 408 (`BodyTimeout`),
  over the rate limit -> 429 (`RateLimit`, both in `service.security`)
- malformed ids/records caught by the graph store, unknown candidate items -> 422
- a request body over the size limit -> 413 (see `BodySizeLimit`)
- a body that is not strict JSON (``NaN``, ``Infinity``, lone surrogates, invalid UTF-8,
  nesting deeper than 1024) -> 422 ``json_invalid`` naming the line and column
  (`StrictJSONRoute`: orjson instead of the standard library's lenient ``json.loads``)
- a request that fails validation -> 422 whose body always serialises: every echoed
  string is made well-formed (a lone surrogate becomes ``\\udfff`` text), long strings
  are cut, container inputs are not echoed, and at most `MAX_REPORTED_ERRORS` errors are
  listed (a 931 KB body once got a 1.9 MB answer)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph_store.types import GraphStoreUnavailable, InvalidInputError
from reasoning.backends import LLMRequestError
from reasoning.outcomes import UnknownItemsError
from service.batching import Overloaded

logger = logging.getLogger(__name__)
MAX_REPORTED_ERRORS = 20
MAX_ECHOED_CHARS = 120
NON_JSON_CONSTANTS = ("NaN", "-NaN", "Infinity", "-Infinity", "+Infinity")


def clean_text(value: str, limit: int = MAX_ECHOED_CHARS) -> str:
    """``value`` as well-formed Unicode (lone surrogates escaped as text), cut to ``limit``."""
    if len(value) > limit:
        value = value[:limit] + f"... ({len(value)} characters)"
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of a scalar or a small structure (ctx, loc)."""
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if depth < 2 and isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in list(value)[:10]]
    if depth < 2 and isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, depth + 1) for k, v in list(value.items())[:10]}
    return clean_text(str(value))


def _clean_error(err: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": clean_text(str(err.get("type", "invalid"))),
        "loc": [_clean(part) for part in err.get("loc", ())][:10],
        "msg": clean_text(str(err.get("msg", "")), 300),
    }
    echoed = err.get("input")
    if echoed is None or isinstance(echoed, str | int | float | bool):
        out["input"] = _clean(echoed)  # containers are not echoed: they can be huge
    if err.get("ctx"):
        out["ctx"] = _clean(err["ctx"])
    return out


def validation_body(errors: list[Any]) -> dict[str, Any]:
    """FastAPI's ``{"detail": [...]}``, sanitised and bounded (see the module docstring)."""
    listed = [_clean_error(e) if isinstance(e, dict) else {"msg": _clean(e)} for e in errors]
    body: dict[str, Any] = {"detail": listed[:MAX_REPORTED_ERRORS]}
    if len(listed) > MAX_REPORTED_ERRORS:
        body["more_errors"] = len(listed) - MAX_REPORTED_ERRORS
    return body


class ErrorBody(BaseModel):
    """Every error but a failed validation."""

    error: str = Field(description="What went wrong, as a stable word (e.g. rate_limited)")
    detail: str


class ValidationIssue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    """A request that failed validation (422); `InvalidInput` bodies are `ErrorBody`."""

    detail: list[ValidationIssue]
    more_errors: int | None = Field(None, description="Errors not listed")


Responses = dict[int | str, dict[str, Any]]


def _described(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


# The responses each route may give besides its 200, for `responses=` on routes/routers.
UNAUTHORIZED: Responses = {401: _described("Missing or invalid X-API-Key")}
NOT_FOUND: Responses = {404: _described("No such item")}
BODY_ERRORS: Responses = {
    408: _described("The request body did not arrive in time (connection closed)"),
    413: _described("The request body is over the size limit"),
}
INVALID: Responses = {
    422: {
        "model": ValidationErrorBody | ErrorBody,
        "description": "Invalid request: a validation error list, or an ErrorBody for "
        "input only the graph store can judge (invalid_input, unknown_items)",
    }
}
RATE_LIMITED: Responses = {
    429: {
        **_described("Over the rate limit; retry after Retry-After seconds"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}
LLM_REJECTED: Responses = {502: _described("The LLM server refused the request")}
GRAPH_DOWN: Responses = {503: _described("The graph store is unavailable; retry later")}
UNAVAILABLE_OR_OVERLOADED: Responses = {
    503: {
        **_described(
            "The graph store is unavailable (graph_store_unavailable), or, with "
            "R2REC_ON_OVERLOAD=503, the model's queue cannot answer in time (overloaded; "
            "retry after Retry-After seconds)"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


class ServiceError(StarletteHTTPException):
    """An HTTP error with its `ErrorBody` kind. FastAPI re-raises HTTP exceptions from its
    body reading (anything else there becomes a 400), so middleware raises these."""

    def __init__(
        self, status_code: int, kind: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.kind = kind


def error(status: int, kind: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": clean_text(detail, 1000)}, status_code=status)


def _kind(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(list(err.errors())), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> Response:
        if err.status_code in (204, 304):
            return Response(status_code=err.status_code, headers=err.headers)
        detail = err.detail if isinstance(err.detail, str) else json.dumps(_clean(err.detail))
        kind = getattr(err, "kind", None) or _kind(err.status_code)
        body = {"error": kind, "detail": clean_text(detail, 1000)}
        return JSONResponse(body, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(GraphStoreUnavailable)
    async def graph_down(request: Request, err: GraphStoreUnavailable) -> JSONResponse:
        # the message names servers, databases or files: logged, never sent
        logger.warning("%s %s: graph store unavailable: %s", request.method, request.url.path, err)
        return error(503, "graph_store_unavailable", "the graph store is unavailable; retry later")

    @app.exception_handler(InvalidInputError)
    async def bad_input(_: Request, err: InvalidInputError) -> JSONResponse:
        return error(422, "invalid_input", str(err))

    @app.exception_handler(UnknownItemsError)
    async def unknown_items(_: Request, err: UnknownItemsError) -> JSONResponse:
        return error(422, "unknown_items", str(err))

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, err: Overloaded) -> JSONResponse:
        response = error(503, "overloaded", str(err))
        response.headers["Retry-After"] = str(err.retry_after_s)
        return response

    @app.exception_handler(LLMRequestError)
    async def llm_rejected(request: Request, err: LLMRequestError) -> JSONResponse:
        logger.warning("%s %s: LLM server refused: %s", request.method, request.url.path, err)
        return error(502, "llm_rejected_request", "the LLM server refused the request")


def strict_json(body: bytes) -> Any:
    """Parse ``body`` as strict JSON (RFC 8259, UTF-8): no NaN or Infinity, no lone
    surrogates, no invalid UTF-8. Raises `json.JSONDecodeError` saying what and where."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        text = body.decode("utf-8", "replace")
        where = f"line {err.lineno} column {err.colno}"
        constant = next((c for c in NON_JSON_CONSTANTS if text.startswith(c, err.pos)), None)
        if constant is None and err.pos > 0:  # orjson may point just after a sign
            constant = next(
                (c for c in NON_JSON_CONSTANTS if text.startswith(c, err.pos - 1)), None
            )
        why = f"{constant} is not JSON (use a finite number)" if constant else err.msg
        raise json.JSONDecodeError(f"{why} at {where}", text, err.pos) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by `strict_json` (FastAPI turns its
    `json.JSONDecodeError` into a 422 ``json_invalid`` at the failing position)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


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
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:  # raised where no handler renders it (a body read outside routes)
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, "body_too_large", f"request body over {self.max_bytes} bytes")
        await response(scope, receive, send)


class _TooLarge(ServiceError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "body_too_large", f"request body over {max_bytes} bytes")

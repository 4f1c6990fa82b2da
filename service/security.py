"""Access control and abuse limits: API keys, a per-client rate limit, a body timeout.

Keys (header ``X-API-Key``, compared in constant time):

- ``R2REC_WRITE_KEY`` grants writes and reads; ``R2REC_API_KEY``, the older name, is a
  second write key (kept so existing deployments keep working).
- ``R2REC_READ_KEY`` grants reads only. Setting it makes reads need a key (the read or a
  write key); so does ``R2REC_REQUIRE_KEY_FOR_READS=true`` with only a write key.
- With any key set, writes need a write key (none set: writes are refused), and the
  operations endpoints (``/metrics``, ``/docs``, ``/redoc``, ``/openapi.json``, the
  details of ``/readyz``) need a read or write key. ``/healthz`` and ``/readyz``'s
  status stay open for probes.
- A browser cannot send ``X-API-Key`` when it opens a page, so the inspection page
  (``/ui``, `service.ui`) trades a key for a cookie ``r2rec_ui`` (HttpOnly,
  SameSite=Strict): ``<expiry>.<HMAC-SHA256 of the expiry under the key>``, valid
  `UI_SESSION_S` seconds. The key itself never reaches the browser's storage; rotating the
  key ends every session made with it. The cookie grants reads only, whatever the key.
- With no key at all everything is open: the loopback-only default (``r2rec serve``
  refuses a non-loopback ``--host`` without a key).

`RateLimit` is a token bucket per client (the key it presents, if valid, else its IP
address); `BodyTimeout` answers 408 to a client that takes too long to send its body.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError, error
from service.settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
Access = Literal["read", "write"]
OPEN_PATHS = frozenset({"/healthz"})  # never limited or guarded: liveness probes
UI_COOKIE = "r2rec_ui"
UI_SESSION_S = 12 * 3600


def write_keys(settings: Settings) -> list[bytes]:
    keys = (settings.write_key, settings.api_key)
    return [k.get_secret_value().encode() for k in keys if k is not None]


def read_keys(settings: Settings) -> list[bytes]:
    extra = [settings.read_key.get_secret_value().encode()] if settings.read_key else []
    return extra + write_keys(settings)


def keys_configured(settings: Settings) -> bool:
    return bool(read_keys(settings))


def reads_need_key(settings: Settings) -> bool:
    return settings.read_key is not None or (
        settings.require_key_for_reads and keys_configured(settings)
    )


def _matches(presented: str | None, keys: list[bytes]) -> bool:
    if presented is None:
        return False
    given = presented.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:  # compare against every key: the time does not say which matched
        found |= hmac.compare_digest(given, key)
    return found


def access_of(settings: Settings, presented: str | None) -> Access | None:
    """What the presented key grants (None: no valid key)."""
    if _matches(presented, write_keys(settings)):
        return "write"
    if _matches(presented, read_keys(settings)):
        return "read"
    return None


def _ui_digest(key: bytes, expires: int) -> bytes:
    return hmac.new(key, f"r2rec-ui:{expires}".encode(), "sha256").hexdigest().encode()


def ui_session_token(settings: Settings, presented: str, now: float) -> str | None:
    """The ``r2rec_ui`` cookie value for a valid key (None: the key grants nothing)."""
    if access_of(settings, presented) is None:
        return None
    expires = int(now) + UI_SESSION_S
    digest = _ui_digest(presented.encode("utf-8", "surrogateescape"), expires)
    return f"{expires}.{digest.decode()}"


def ui_session_valid(settings: Settings, token: str | None, now: float) -> bool:
    """True when ``token`` was made from a configured key and has not expired."""
    if not token:
        return False
    expires_text, _, digest = token.partition(".")
    if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) < 16):
        return False
    expires = int(expires_text)
    if not now < expires <= now + UI_SESSION_S:
        return False
    given = digest.encode("utf-8", "surrogateescape")
    found = False
    for key in read_keys(settings):  # every key: the time does not say which matched
        found |= hmac.compare_digest(given, _ui_digest(key, expires))
    return found


def _refuse(why: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=why,
        headers={"WWW-Authenticate": "APIKey"},
    )


def has_ops_access(settings: Settings, presented: str | None) -> bool:
    return not keys_configured(settings) or access_of(settings, presented) is not None


async def require_write_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    settings: Settings = request.app.state.settings
    if not keys_configured(settings):
        return
    if not write_keys(settings):
        raise _refuse("writes are disabled: no write key is configured (R2REC_WRITE_KEY)")
    if access_of(settings, key) != "write":
        raise _refuse("missing or invalid write key (header X-API-Key)")


async def require_read_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    settings: Settings = request.app.state.settings
    if not reads_need_key(settings) or access_of(settings, key) is not None:
        return
    if not ui_session_valid(settings, request.cookies.get(UI_COOKIE), time.time()):
        raise _refuse("missing or invalid API key (header X-API-Key)")


async def require_ops_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    if not has_ops_access(request.app.state.settings, key):
        raise _refuse("missing or invalid API key (header X-API-Key)")


WriteKey = Depends(require_write_key)
ReadKey = Depends(require_read_key)
OpsKey = Depends(require_ops_key)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost" (what only this machine can reach)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class RateLimit:
    """ASGI middleware: a token bucket per client, ``rate`` tokens a second up to ``burst``.

    A client is the key it presents when that key is valid (all clients sharing a key
    share its bucket), else its IP address. Over the limit: 429 with ``Retry-After``.
    At most `MAX_CLIENTS` buckets are kept (the least recently seen are forgotten)."""

    MAX_CLIENTS = 10_000

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.rate = settings.rate_limit_per_s
        self.burst = float(settings.rate_limit_burst)
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def client_of(self, scope: Scope) -> str:
        presented = _header(scope, b"x-api-key")
        if presented is not None:
            text = presented.decode("latin-1")
            access = access_of(self.settings, text)
            if access is not None:  # one bucket per key; never the key itself in memory twice
                return f"key:{access}:{hash(text)}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    def take(self, client: str, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        tokens, last = self.buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        if len(self.buckets) > self.MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.take(self.client_of(scope), time.monotonic())
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        response = error(429, "rate_limited", f"over {self.rate:g} requests a second; retry later")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        await response(scope, receive, send)


class BodyTimeout:
    """ASGI middleware: the whole request body must arrive within ``timeout_s`` of the
    request's start, else 408 and the connection is closed. uvicorn has no such limit
    (``--timeout-keep-alive`` covers only idle connections between requests, and h11's
    ``--h11-max-incomplete-event-size`` bounds bytes, not time): a client sending a
    declared body a byte a minute would hold its connection open for ever."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # later calls wait for a disconnect: not bounded
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                # an HTTPException: FastAPI re-raises it from its body reading (any other
                # exception there becomes a 400), and the handler renders it
                raise ServiceError(
                    408,
                    "body_timeout",
                    f"request body not received within {self.timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)

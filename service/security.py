"""API-key checks (header ``X-API-Key``, compared in constant time) as FastAPI dependencies.

Writes always need the key when one is configured (``R2REC_API_KEY``); reads need it only
with ``R2REC_REQUIRE_KEY_FOR_READS=true``. With no key configured, everything is open
(the single-machine default).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from service.settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def _check(settings: Settings, presented: str | None) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if presented is None or not hmac.compare_digest(presented.encode(), expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key (header X-API-Key)",
            headers={"WWW-Authenticate": "APIKey"},
        )


async def require_write_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    _check(request.app.state.settings, key)


async def require_read_key(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    settings: Settings = request.app.state.settings
    if settings.require_key_for_reads:
        _check(settings, key)


WriteKey = Depends(require_write_key)
ReadKey = Depends(require_read_key)

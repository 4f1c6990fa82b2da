"""Routes of the inspection page: GET /ui, POST and DELETE /ui/session, GET /ui/static/*.

``/ui`` is behind the read key when reads need one. A browser opening a page cannot send
``X-API-Key``, so without a valid key header or session cookie ``/ui`` answers 401 with a
small form; the form posts the key to ``/ui/session``, which sets the ``r2rec_ui``
cookie (`service.security.ui_session_token`: HttpOnly, SameSite=Strict, Secure over
HTTPS) and redirects to ``/ui``. The page's script then calls ``/users/{id}/history``
and ``/recommend/stream`` with that cookie, which the read-key check accepts. The
script and stylesheet are open (they hold no data). Every answer carries a strict
Content-Security-Policy: no inline script or style, nothing from another origin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.deps import RuntimeDep
from service.errors import error
from service.security import (
    UI_COOKIE,
    UI_SESSION_S,
    access_of,
    keys_configured,
    reads_need_key,
    ui_session_token,
    ui_session_valid,
)
from service.settings import Settings
from service.ui.page import inspection_page, key_form

router = APIRouter(include_in_schema=False)
USERS_LISTED = 200  # ids offered by the picker (any other id can be typed)
MAX_FORM_BYTES = 4096
STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {"ui.js": "text/javascript; charset=utf-8", "ui.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _may_read(request: Request, settings: Settings) -> bool:
    if not reads_need_key(settings):
        return True
    if access_of(settings, request.headers.get("x-api-key")) is not None:
        return True
    return ui_session_valid(settings, request.cookies.get(UI_COOKIE), time.time())


@router.get("/ui", response_class=HTMLResponse)
async def ui(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The inspection page (``?user=ID`` starts with that user), or the key form."""
    if not _may_read(request, request.app.state.settings):
        return HTMLResponse(key_form(), status_code=401, headers=PAGE_HEADERS)
    users = await runtime.graph.users(USERS_LISTED)
    page = inspection_page(users, user, runtime.model_version)
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.post("/ui/session")
async def open_session(request: Request) -> Response:
    """Trade a key (form field ``key``) for the session cookie, then back to /ui."""
    settings: Settings = request.app.state.settings
    if not keys_configured(settings):
        return error(409, "no_keys", "this service has no keys: /ui needs no session")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return error(415, "unsupported_media_type", "send the form as x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return error(413, "payload_too_large", f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return error(422, "invalid_input", "the form is not UTF-8 x-www-form-urlencoded")
    keys = fields.get("key", [])
    if len(keys) != 1 or not keys[0]:
        return error(422, "invalid_input", "form field 'key' is required (once)")
    token = ui_session_token(settings, keys[0], time.time())
    if token is None:
        return error(401, "unauthorized", "invalid API key (form field 'key')")
    answer = RedirectResponse("/ui", status_code=303)
    answer.set_cookie(
        UI_COOKIE,
        token,
        max_age=UI_SESSION_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.delete("/ui/session", status_code=204)
async def close_session() -> Response:
    """Forget the session cookie."""
    answer = Response(status_code=204)
    answer.delete_cookie(UI_COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    """The page's script and stylesheet."""
    if name not in STATIC_TYPES:
        return error(404, "not_found", f"no static file {name[:64]!r}")
    content = (STATIC_DIR / name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(content, media_type=STATIC_TYPES[name], headers=headers)

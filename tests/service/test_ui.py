"""The inspection page's server side: the page and its files, the user listing, and the
key-for-cookie exchange when reads need a key (the page itself runs in
tests/service/test_ui_browser.py)."""

from __future__ import annotations

import time

from service.security import UI_COOKIE, UI_SESSION_S, ui_session_token, ui_session_valid
from service.settings import Settings

ASK = {"user_id": "42", "k": 3, "explain": False}


def test_page_offers_users_and_loads_its_script_and_stylesheet(make_client) -> None:
    client = make_client()
    page = client.get("/ui", params={"user": "42"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    text = page.text
    assert '<option value="1"></option>' in text and 'value="42"' in text
    assert '<script src="/ui/static/ui.js"' in text and "/ui/static/ui.css" in text
    script = client.get("/ui/static/ui.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/recommend/stream" in script.text and "getReader" in script.text
    assert client.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    missing = client.get("/ui/static/../settings.py")
    assert missing.status_code == 404


def test_page_escapes_what_it_echoes(make_client) -> None:
    client = make_client()
    text = client.get("/ui", params={"user": '"><script>alert(1)</script>'}).text
    assert "<script>alert" not in text and "&lt;script&gt;" in text
    too_long = client.get("/ui", params={"user": "x" * 300})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["query", "user"]


def test_users_lists_ids_in_order_and_names_a_bad_n(make_client) -> None:
    client = make_client()
    assert client.get("/users", params={"n": 3}).json() == {"user_ids": ["1", "10", "100"]}
    for bad in ("0", "1001", "many"):
        answer = client.get("/users", params={"n": bad})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "n"]


def test_key_form_then_cookie_grants_reads_only(make_client) -> None:
    client = make_client(read_key="reader", write_key="writer")
    form = client.get("/ui")
    assert form.status_code == 401 and 'action="/ui/session"' in form.text
    assert client.get("/users").status_code == 401
    wrong = client.post("/ui/session", data={"key": "guess"}, follow_redirects=False)
    assert wrong.status_code == 401 and "key" in wrong.json()["detail"]
    assert UI_COOKIE not in wrong.cookies
    opened = client.post("/ui/session", data={"key": "reader"}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/ui"
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "reader" not in cookie
    assert client.get("/ui").status_code == 200  # the client now sends the cookie
    assert client.get("/users", params={"n": 2}).status_code == 200
    assert client.post("/recommend", json=ASK).status_code == 200
    assert client.get("/metrics").status_code == 401  # no operations endpoints
    interaction = {"interactions": [{"user_id": "42", "item_id": "1", "timestamp": 1}]}
    assert client.post("/interactions", json=interaction).status_code == 401  # no writes
    assert client.delete("/ui/session").status_code == 204
    assert client.get("/ui").status_code == 401


def test_session_form_errors_name_what_is_wrong(make_client) -> None:
    client = make_client(read_key="reader")
    missing = client.post("/ui/session", data={"other": "x"})
    assert missing.status_code == 422 and "'key'" in missing.json()["detail"]
    as_json = client.post("/ui/session", json={"key": "reader"})
    assert as_json.status_code == 415 and "urlencoded" in as_json.json()["detail"]


def test_no_session_without_keys(make_client) -> None:
    answer = make_client().post("/ui/session", data={"key": "x"})
    assert answer.status_code == 409 and answer.json()["error"] == "no_keys"


def test_session_tokens_expire_and_follow_the_keys() -> None:
    settings = Settings(read_key="reader")
    now = time.time()
    token = ui_session_token(settings, "reader", now)
    assert token is not None and ui_session_token(settings, "guess", now) is None
    assert ui_session_valid(settings, token, now)
    assert not ui_session_valid(settings, token, now + UI_SESSION_S + 1)  # expired
    expires, _, digest = token.partition(".")
    later = f"{int(expires) + 60}.{digest}"  # a changed expiry breaks the signature
    assert not ui_session_valid(settings, later, now)
    rotated = Settings(read_key="new-reader")
    assert not ui_session_valid(rotated, token, now)
    for junk in ("", ".", "x.y", "99999999999999999999.ab", "\uff11\uff12.ab"):
        assert not ui_session_valid(settings, junk, now)

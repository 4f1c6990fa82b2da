"""Safe defaults: read and write keys, guarded operations endpoints, the rate limit, the
body timeout (on a real uvicorn), error bodies without internals, bounded timestamps,
logged catalogue overwrites, and `r2rec serve` refusing an open non-loopback bind."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from reasoning.backends import LLMRequestError
from service.main import create_app
from tests.harness.net import free_port
from tests.service.conftest import settings_for
from tests.service.live import live_server

ROOT = Path(__file__).resolve().parents[2]
READ, WRITE, OLD = {"X-API-Key": "r-key"}, {"X-API-Key": "w-key"}, {"X-API-Key": "old-key"}
OPS_PATHS = ("/metrics", "/docs", "/redoc", "/openapi.json")


def _ingest(item: str = "1", ts: int = 1_700_000_000) -> dict[str, object]:
    return {"interactions": [{"user_id": "acl", "item_id": item, "timestamp": ts}]}


@pytest.fixture(scope="module")
def keyed(tiny_model_dir):
    settings = settings_for(tiny_model_dir, read_key="r-key", write_key="w-key", api_key="old-key")
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_read_key_reads_and_only_a_write_key_writes(keyed) -> None:
    assert keyed.get("/items/1").status_code == 401  # a read key is set: reads need a key
    for headers in (READ, WRITE, OLD):
        assert keyed.get("/items/1", headers=headers).status_code == 200
    refused = keyed.post("/interactions", json=_ingest(), headers=READ)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert "write key" in refused.json()["detail"]
    assert keyed.post("/interactions", json=_ingest(), headers=WRITE).status_code == 200
    assert keyed.post("/interactions", json=_ingest(), headers=OLD).status_code == 200  # old name
    assert (
        keyed.post("/interactions", json=_ingest(), headers={"X-API-Key": "w-keY"}).status_code
        == 401
    )


def test_keys_guard_the_operations_endpoints_but_not_the_probes(keyed) -> None:
    for path in OPS_PATHS:
        assert keyed.get(path).status_code == 401, path
        assert keyed.get(path, headers=READ).status_code == 200, path
    assert keyed.get("/healthz").json() == {"status": "ok"}
    public = keyed.get("/readyz")
    assert public.status_code == 200
    assert public.json() == {
        "status": "ok",
        "checks": {"graph_store": {"ok": True}, "llm": {"ok": True}, "redis": {"ok": True}},
    }
    detailed = keyed.get("/readyz", headers=READ).json()
    assert detailed["model"] and "interactions" in detailed["checks"]["graph_store"]["detail"]
    assert detailed["checks"]["llm"]["detail"] == "ok"


def test_a_read_key_alone_disables_writes(make_client) -> None:
    client = make_client(read_key="r-key")
    reply = client.post("/interactions", json=_ingest(), headers=READ)
    assert reply.status_code == 401 and "no write key" in reply.json()["detail"]


def test_without_keys_everything_is_open(make_client) -> None:
    client = make_client()
    for path in OPS_PATHS:
        assert client.get(path).status_code == 200, path
    assert client.post("/interactions", json=_ingest()).status_code == 200


def test_the_rate_limit_answers_429_with_retry_after_per_client(make_client) -> None:
    client = make_client(write_key="w-key", rate_limit_per_s=0.5, rate_limit_burst=3)
    assert [client.get("/items/1").status_code for _ in range(3)] == [200] * 3
    limited = client.get("/items/1")
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert client.get("/healthz").status_code == 200  # probes are never limited
    # a valid key is its own client; an invalid one is counted against the address
    assert client.get("/items/1", headers=WRITE).status_code == 200
    assert client.get("/items/1", headers={"X-API-Key": "made-up"}).status_code == 429


def test_future_and_huge_timestamps_are_422_naming_the_field(make_client) -> None:
    client = make_client()
    now = int(time.time())
    for ts in (now + 2 * 86_400, 2**62):
        reply = client.post("/interactions", json=_ingest(ts=ts))
        assert reply.status_code == 422, reply.text
        assert reply.json()["detail"][0]["loc"] == ["body", "interactions", 0, "timestamp"]
    assert client.post("/interactions", json=_ingest(ts=now + 3600)).status_code == 200
    assert client.post("/interactions", json=_ingest(ts=0)).status_code == 200


def test_too_many_interactions_is_a_422_list(make_client) -> None:
    client = make_client(max_batch_interactions=2)
    body = {"interactions": [_ingest(ts=t)["interactions"][0] for t in (1, 2, 3)]}  # type: ignore[index]
    reply = client.post("/interactions", json=body)
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "interactions"]


def test_catalogue_overwrites_are_logged(make_client, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    original = client.get("/items/1").json()["title"]
    body = {**_ingest(), "items": [{"item_id": "1", "title": "Not Toy Story"}]}
    with caplog.at_level(logging.WARNING, logger="service.interactions.router"):
        assert client.post("/interactions", json=body).status_code == 200
        assert client.post("/interactions", json=body).status_code == 200  # unchanged: no line
    lines = [r.getMessage() for r in caplog.records if "catalogue overwrite" in r.getMessage()]
    assert lines == [f"catalogue overwrite: item '1' title {original!r} -> 'Not Toy Story'"]
    caplog.clear()
    body["items"] = [{"item_id": "1", "title": "Not Toy Story", "attributes": {"year": "1"}}]
    with caplog.at_level(logging.WARNING, logger="service.interactions.router"):
        assert client.post("/interactions", json=body).status_code == 200
    assert "(attributes changed: year)" in caplog.text


def test_an_llm_refusal_names_no_server(make_client) -> None:
    client = make_client()

    async def boom() -> None:
        raise LLMRequestError("http://vllm.internal:8000/v1: 400 model r2rec has no such adapter")

    client.app.add_api_route("/boom", boom)
    reply = client.get("/boom")
    assert reply.status_code == 502 and reply.json()["error"] == "llm_rejected_request"
    assert "vllm.internal" not in reply.text and "8000" not in reply.text


def _half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 500\r\n\r\n{"interactions": ['
    )
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_bodies_get_408_and_their_connections_close(tiny_model_dir) -> None:
    app = create_app(settings_for(tiny_model_dir, body_timeout_s=1.0))
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [_half_sent(port) for _ in range(30)]
        started = time.monotonic()
        replies = [_read_all(s) for s in socks]  # returns once the server closes
        assert time.monotonic() - started < 10
        for s in socks:
            s.close()
        for reply in replies:
            assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
            assert b'"error":"body_timeout"' in reply
        # a body sent in time is still served
        assert httpx.post(f"{url}/interactions", json=_ingest(), timeout=30).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_serve_refuses_a_non_loopback_host_without_keys(host: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2REC_")}
    env["R2REC_HOME"] = str(tmp_path)
    serve = [str(ROOT / ".venv" / "bin" / "r2rec"), "serve", "--host", host, "--port", "1"]
    done = subprocess.run(serve, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = done.stderr + done.stdout
    assert done.returncode == 2, out
    assert f"--host {host} is reachable from other machines and no API key is set" in out
    assert len(out.strip().splitlines()) == 1, out


def test_loopback_hosts_need_no_key() -> None:
    from service.security import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))
    assert free_port() > 0

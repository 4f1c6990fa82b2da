"""A model published while the service runs is switched to without a restart: requests
never fail, responses change version exactly once, and no answer cached for the old
model is served after the switch (real Redis, the tiny in-process model)."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import pytest

from common.files import replace_dir, staging_dir, write_json_atomic
from common.paths import published_dir, published_manifest
from service.ranking import StartupError, resolve_model_path
from tests.harness.redis import RedisServer
from tests.service.conftest import settings_for


def _publish(model: Path, run: str, at: float) -> None:
    with staging_dir(published_dir()) as staging:
        shutil.copytree(model, staging, dirs_exist_ok=True)
        replace_dir(staging, published_dir())
    write_json_atomic(published_manifest(), {"run": run, "published_unix": at, "valid_hr1": 0.5})


def test_publish_during_traffic_switches_once_with_no_errors(
    make_client, tiny_model_dir: Path, redis_server: RedisServer
) -> None:
    _publish(tiny_model_dir, "first", 1000)
    client = make_client(model_path=None, model_watch_s=0.2, redis_url=redis_server.url)
    ready = client.get("/readyz").json()
    assert ready["model"] == "first@1000"
    cached_user = "5"
    warm = client.post("/recommend", json={"user_id": cached_user, "k": 3, "explain": False})
    assert warm.json()["model"] == "first@1000"

    versions: list[str] = []
    published = False
    started = time.monotonic()
    while time.monotonic() - started < 120:
        body = client.post(
            "/recommend", json={"user_id": str(1 + len(versions) % 50), "k": 3, "explain": False}
        )
        assert body.status_code == 200, body.text
        versions.append(body.json()["model"])
        if len(versions) == 5 and not published:
            _publish(tiny_model_dir, "second", 2000)
            published = True
        if versions[-1] == "second@2000" and versions.count("second@2000") >= 5:
            break
        time.sleep(0.05)
    switches = sum(a != b for a, b in itertools.pairwise(versions))
    assert versions[0] == "first@1000" and versions[-1] == "second@2000" and switches == 1, versions

    after = client.post(
        "/recommend", json={"user_id": cached_user, "k": 3, "explain": False}
    ).json()
    assert after["model"] == "second@2000" and after["cached"] is False  # not the old entry
    again = client.post("/recommend", json={"user_id": cached_user, "k": 3, "explain": False})
    assert again.json()["cached"] is True and again.json()["model"] == "second@2000"
    assert client.get("/readyz").json()["model"] == "second@2000"


def test_reload_call_needs_the_write_key_and_switches_at_once(
    make_client, tiny_model_dir: Path
) -> None:
    _publish(tiny_model_dir, "first", 1000)
    client = make_client(model_path=None, model_watch_s=0, write_key="w" * 32)
    assert client.post("/admin/model/reload").status_code == 401
    key = {"X-API-Key": "w" * 32}
    same = client.post("/admin/model/reload", headers=key).json()
    assert same == {"switched": False, "model": "first@1000"}
    _publish(tiny_model_dir, "second", 2000)
    assert client.post("/admin/model/reload", headers=key).json() == {
        "switched": True,
        "model": "second@2000",
    }
    body = client.post("/recommend", json={"user_id": "1", "k": 2, "explain": False}, headers=key)
    assert body.status_code == 200 and body.json()["model"] == "second@2000"


def test_a_broken_published_model_keeps_the_old_one_serving(
    make_client, tiny_model_dir: Path
) -> None:
    _publish(tiny_model_dir, "first", 1000)
    client = make_client(model_path=None, model_watch_s=0, write_key="w" * 32)
    key = {"X-API-Key": "w" * 32}
    (published_dir() / "config.json").write_text("{not json")
    write_json_atomic(published_manifest(), {"run": "broken", "published_unix": 3000})
    answer = client.post("/admin/model/reload", headers=key)
    assert answer.status_code == 503 and "still serving first@1000" in answer.text
    body = client.post("/recommend", json={"user_id": "1", "k": 2, "explain": False}, headers=key)
    assert body.status_code == 200 and body.json()["model"] == "first@1000"
    assert json.loads(published_manifest().read_text())["run"] == "broken"


def test_a_fresh_service_ranks_with_the_graph_scorer_until_a_model_is_published(
    make_client, tiny_model_dir: Path
) -> None:
    client = make_client(model_path=None, model_watch_s=0, write_key="w" * 32)
    key = {"X-API-Key": "w" * 32}
    body = client.post("/recommend", json={"user_id": "1", "k": 3, "explain": True}, headers=key)
    answer = body.json()
    assert body.status_code == 200 and answer["model"] == "graph-scorer"
    assert answer["fallback"] is True and "no trained model" in answer["fallback_reason"]
    assert answer["thoughts"] == [] and answer["explanation"].startswith(
        f'"{answer["items"][0]["title"]}" ranks first'
    )
    ready = client.get("/readyz", headers=key).json()
    assert ready["status"] == "ok" and "graph scorer" in ready["checks"]["llm"]["detail"]
    _publish(tiny_model_dir, "trained", 4000)
    assert client.post("/admin/model/reload", headers=key).json()["model"] == "trained@4000"
    after = client.post("/recommend", json={"user_id": "1", "k": 3, "explain": False}, headers=key)
    assert after.json()["model"] == "trained@4000" and after.json()["fallback"] is False


def test_asking_for_the_base_model_needs_it_prepared(tiny_model_dir: Path) -> None:
    settings = settings_for(tiny_model_dir, model_path=None, serve_base_model=True)
    assert resolve_model_path(settings_for(tiny_model_dir, model_path=None)) is None
    with pytest.raises(StartupError, match="prepare-base"):
        resolve_model_path(settings)

"""The OpenAPI schema tells the truth: schemathesis fuzzes every operation of a real
server (uvicorn on a loopback port, the tiny model, a write key set) and checks each
answer against the schema: a declared status code, its declared content type, headers
and body shape, and never a 5xx. Examples are few per operation (well under a minute)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.main import create_app
from service.settings import Settings
from tests.service.conftest import settings_for
from tests.service.live import live_server

KEY = {"X-API-Key": "fuzz-key"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tiny_model_dir) -> Iterator[str]:
    app = create_app(settings_for(tiny_model_dir, write_key="fuzz-key", rate_limit_per_s=0))
    with live_server(app) as url:
        yield url


def _schema_of_the_code() -> dict[str, Any]:
    """The schema the app generates (no lifespan needed; checked equal to the served one)."""
    settings = Settings(_env_file=None, write_key=KEY["X-API-Key"])
    return create_app(settings).openapi()


# schemathesis.pytest.from_fixture fails on this pytest ("'Function' object has no
# attribute '_nodeid'"), so the schema is loaded when the module is; calls go to `served`.
schema = schemathesis.openapi.from_dict(_schema_of_the_code())


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_answer_matches_the_schema(case: schemathesis.Case, served: str) -> None:
    case.call_and_validate(base_url=served, headers=KEY, checks=CHECKS, timeout=60)


def test_the_served_schema_is_the_one_fuzzed(served: str) -> None:
    assert httpx.get(f"{served}/openapi.json").status_code == 401
    got = httpx.get(f"{served}/openapi.json", headers=KEY)
    assert got.status_code == 200 and got.json() == _schema_of_the_code()


def test_the_schema_declares_what_the_routes_return() -> None:
    paths = _schema_of_the_code()["paths"]
    assert {"/openapi.json", "/docs", "/redoc"}.isdisjoint(paths)
    expected = {
        ("/recommend", "post"): {"200", "401", "408", "413", "422", "429", "502", "503"},
        ("/users/{user_id}/recommendations", "get"): {"200", "401", "422", "429", "502", "503"},
        ("/interactions", "post"): {"200", "401", "408", "413", "422", "429", "503"},
        ("/items/{item_id}", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/users/{user_id}/history", "get"): {"200", "401", "422", "429", "503"},
        ("/readyz", "get"): {"200", "429", "503"},
        ("/metrics", "get"): {"200", "401", "429"},
        ("/healthz", "get"): {"200"},
    }
    for (path, method), codes in expected.items():
        assert set(paths[path][method]["responses"]) == codes, (path, method)
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    invalid = paths["/recommend"]["post"]["responses"]["422"]["content"]["application/json"]
    refs = {s["$ref"].rsplit("/", 1)[1] for s in invalid["schema"]["anyOf"]}
    assert refs == {"ValidationErrorBody", "ErrorBody"}

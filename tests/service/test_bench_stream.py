"""`r2rec bench service --paths stream`: the stream driver against a real server on the
tiny model, and its options' checks (the figures themselves are the bench's output)."""

from __future__ import annotations

import asyncio

import pytest

from common.errors import UserInputError
from service.bench_stream import StreamOptions, drive, percentile
from service.main import create_app
from tests.service.conftest import settings_for
from tests.service.live import live_server


def test_drive_times_evidence_thoughts_and_ranking_of_each_request(talkative_model_dir) -> None:
    app = create_app(settings_for(talkative_model_dir, max_reasoning_tokens=16, thoughts="model"))
    with live_server(app) as url:
        result = asyncio.run(drive(url, "in-process", 2, 3, 5, first=0))
    assert (result.backend, result.concurrency, result.requests) == ("in-process", 2, 3)
    assert result.errors == 0 and result.fallbacks == 0
    assert len(result.evidence_ms) == len(result.thought_ms) == len(result.ranking_ms) == 3
    assert result.thought_events >= 3
    assert percentile(result.ranking_ms, 50) != "-" and percentile([], 50) == "-"


@pytest.mark.parametrize(
    ("concurrency", "backends", "named"),
    [
        ("0", "local", "--stream-concurrency"),
        ("1,x", "local", "--stream-concurrency"),
        ("1", "local,gpu", "--stream-backends"),
        ("1", " ", "--stream-backends"),
    ],
)
def test_bad_options_name_the_option(concurrency: str, backends: str, named: str) -> None:
    with pytest.raises(UserInputError, match=named):
        StreamOptions(concurrency=concurrency, backends=backends)

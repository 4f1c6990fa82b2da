"""POST /recommend/stream against the real vLLM server: the stream through vLLM's
streaming API, and a client disconnect that makes vLLM abort the generation."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from service.main import create_app
from tests.harness.vllm import require_vllm, run_vllm_server
from tests.service.conftest import vllm_settings
from tests.service.live import live_server
from tests.service.sse import events

BUDGET = 1200  # thought tokens (the prompt, ~1,900-2,500 tokens, + this < the 4,096 context)


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir):
    """A vLLM server of this module's own: after other modules' requests on the shared
    one, its abort of a left client was not logged within the wait (seen only in the
    full suite), so the disconnect is measured on a server with nothing else in flight."""
    require_vllm()
    with run_vllm_server(tiny_model_dir, name="tiny") as server:
        yield server


@pytest.fixture(scope="module")
def vllm_stream_url(tiny_model_dir, vllm_server):
    settings = vllm_settings(
        tiny_model_dir, vllm_server, max_reasoning_tokens=BUDGET, thoughts="model"
    )
    with live_server(create_app(settings)) as url:
        yield url


def _logged(vllm_server, what: str) -> set[str]:
    """The request ids vLLM's log names after ``what`` ("Added", "Aborted")."""
    log = vllm_server.log_path.read_text(errors="replace")
    found = re.findall(rf"{what} request(?:\(s\))? ([^ ]+)\.", log)
    return {i.strip() for ids in found for i in ids.split(",")}


def test_a_disconnect_aborts_the_vllm_request(vllm_stream_url, vllm_server) -> None:
    """The client leaves while vLLM writes a 2,000-token reasoning (about 15 s on this
    model): the service closes its stream to vLLM, and vLLM aborts the request."""
    added, aborted = _logged(vllm_server, "Added"), _logged(vllm_server, "Aborted")
    with (
        httpx.Client(base_url=vllm_stream_url, timeout=120) as http,
        http.stream("POST", "/recommend/stream", json={"user_id": "3", "k": 5}) as reply,
    ):
        stream = events(reply.iter_lines())
        first = next(stream)
        assert first[0] == "evidence"
        deadline = time.monotonic() + 30
        while not (ours := _logged(vllm_server, "Added") - added):
            assert time.monotonic() < deadline, f"vLLM never got it; the stream: {list(stream)}"
            time.sleep(0.05)
        # leave at once: vLLM has just started the thoughts (on an idle CPU the tiny model
        # can write the whole budget in about a second, so waiting longer races its end)
        left = time.monotonic()
    while not _logged(vllm_server, "Aborted") - aborted:
        assert time.monotonic() < left + 15, "vLLM did not abort the request of a client that left"
        time.sleep(0.05)
    # vLLM logs the id it was given; "Added" shows it with a suffix of its own
    (request,) = _logged(vllm_server, "Aborted") - aborted
    assert any(i.startswith(request) for i in ours)


def test_stream_through_vllm_ends_with_the_ranking(vllm_stream_url) -> None:
    body = {"user_id": "3", "k": 5, "explain": True, "candidates": ["50", "181", "258", "1"]}
    with (
        httpx.Client(base_url=vllm_stream_url, timeout=120) as http,
        http.stream("POST", "/recommend/stream", json=body) as reply,
    ):
        assert reply.status_code == 200
        stream = list(events(reply.iter_lines()))
    names = [name for name, _ in stream]
    assert names[0] == "evidence" and names[-2:] == ["ranking", "done"]
    ranking = stream[-2][1]
    assert ranking["fallback"] is False and ranking["model"] == "tiny"
    assert sorted(i["item_id"] for i in ranking["items"]) == sorted(body["candidates"])  # type: ignore[call-overload]

"""POST /recommend/stream on the in-process tiny model: event order, the same ranking as
/recommend, errors before and inside the stream, a cached replay, and a real client
disconnect that stops the model."""

from __future__ import annotations

import time

import httpx
import pytest

from service.main import create_app
from tests.service.conftest import settings_for
from tests.service.live import live_server
from tests.service.sse import events, thought_texts

ASK = {"user_id": "42", "k": 5, "explain": True}


@pytest.fixture
def make_client(talkative_model_dir):
    """Clients of the service on the tiny model that writes visible thoughts."""
    from fastapi.testclient import TestClient

    clients = []

    def make(**overrides):
        client = TestClient(create_app(settings_for(talkative_model_dir, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _stream(client, body=ASK, headers=None) -> list:
    with client.stream("POST", "/recommend/stream", json=body, headers=headers) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        return list(events(reply.iter_lines()))


def test_events_come_in_order_and_rank_as_recommend_does(make_client) -> None:
    client = make_client(max_reasoning_tokens=48, thoughts="model")
    stream = _stream(client)
    names = [name for name, _ in stream]
    assert names[0] == "evidence" and names[-2:] == ["ranking", "done"]
    assert set(names[1:-2]) == {"thought"}  # the thoughts, between evidence and ranking
    evidence = stream[0][1]
    assert evidence["user_id"] == "42" and evidence["history"] and evidence["candidates"]
    assert len(evidence["candidates"]) == 20
    ranking = stream[-2][1]
    assert ranking["fallback"] is False and ranking["cached"] is False
    assert evidence["history"] == ranking["history"]
    shown = {c["item_id"] for c in evidence["candidates"]}
    assert {i["item_id"] for i in ranking["items"]} <= shown
    steps = thought_texts(stream)
    assert len([n for n in names if n == "thought"]) > len(steps)  # in pieces, not whole
    assert steps and steps[0][:20] in ranking["explanation"]  # what the model wrote
    for parsed in ranking["thoughts"]:  # the parsed steps are the streamed lines
        assert any(parsed in step for step in steps)
    plain = client.post("/recommend", json=ASK).json()
    assert [i["item_id"] for i in plain["items"]] == [i["item_id"] for i in ranking["items"]]
    assert plain["thoughts"] == ranking["thoughts"]
    assert stream[-1][1]["cached"] is False and stream[-1][1]["latency_ms"] > 0


def test_evidence_thoughts_stream_as_numbered_steps_about_the_ranking(make_client) -> None:
    """The default (R2REC_THOUGHTS=evidence): one pass ranks, then each thought written
    from the evidence arrives as one step, the top item named first; /recommend gives the
    same thoughts and ranking, and its explain=false ranking is the same."""
    client = make_client()
    stream = _stream(client)
    names = [name for name, _ in stream]
    assert names[0] == "evidence" and names[-2:] == ["ranking", "done"]
    ranking = stream[-2][1]
    assert ranking["fallback"] is False and 1 <= len(ranking["thoughts"]) <= 5
    steps = thought_texts(stream)
    assert steps == [f"{n}. {t}" for n, t in enumerate(ranking["thoughts"], start=1)]
    top = ranking["items"][0]["title"]
    assert ranking["thoughts"][0].startswith(f'"{top}" ranks 1st: ')
    plain = client.post("/recommend", json={**ASK, "explain": False}).json()
    assert [i["item_id"] for i in plain["items"]] == [i["item_id"] for i in ranking["items"]]
    assert plain["thoughts"] == []
    again = client.post("/recommend", json=ASK).json()
    assert again["thoughts"] == ranking["thoughts"]


def test_scoring_mode_streams_evidence_then_the_ranking(make_client) -> None:
    client = make_client()
    stream = _stream(client, {**ASK, "explain": False})
    assert [name for name, _ in stream] == ["evidence", "ranking", "done"]


def test_bad_input_and_keys_are_http_errors_before_the_stream(make_client) -> None:
    client = make_client(read_key="reader")
    key = {"X-API-Key": "reader"}
    missing = client.post("/recommend/stream", json=ASK)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = client.post("/recommend/stream", json={**ASK, "k": 0}, headers=key)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "k"
    unknown = client.post(
        "/recommend/stream", json={**ASK, "candidates": ["50", "no-such-item"]}, headers=key
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_items" and "no-such-item" in unknown.json()["detail"]
    assert _stream(client, headers=key)[-1][0] == "done"


def test_a_late_model_streams_a_fallback_event(make_client) -> None:
    client = make_client(llm_timeout_s=0.05, max_reasoning_tokens=256, thoughts="model")
    stream = _stream(client)
    names = [name for name, _ in stream]
    assert names[0] == "evidence" and names[-3:] == ["fallback", "ranking", "done"]
    assert stream[-3][1]["reason"] == "LLM timed out"
    assert stream[-2][1]["fallback"] is True and stream[-2][1]["evidence"]


def test_a_cached_answer_is_replayed_at_once(make_client, redis_server) -> None:
    client = make_client(redis_url=redis_server.url)
    first = _stream(client)
    started = time.perf_counter()
    again = _stream(client)
    assert time.perf_counter() - started < 1.0
    assert again[0][0] == "evidence" and again[-1][1]["cached"] is True
    assert again[-2][1]["items"] == first[-2][1]["items"] and again[-2][1]["cached"] is True
    assert len(thought_texts(again)) == len(first[-2][1]["thoughts"])


def test_openapi_documents_every_event(make_client) -> None:
    schema = make_client().get("/openapi.json").json()
    content = schema["paths"]["/recommend/stream"]["post"]["responses"]["200"]["content"]
    kinds = content["text/event-stream"]["itemSchema"]["oneOf"]
    names = [k["properties"]["event"]["const"] for k in kinds]
    assert names == ["evidence", "thought", "fallback", "ranking", "error", "done"]
    for kind in kinds:
        ref = kind["properties"]["data"]["contentSchema"]["$ref"].rsplit("/", 1)[-1]
        assert ref in schema["components"]["schemas"]
    errors = schema["paths"]["/recommend/stream"]["post"]["responses"]
    assert all(list(errors[s]["content"]) == ["application/json"] for s in ("401", "422", "503"))


def test_a_disconnected_client_stops_the_model(talkative_model_dir) -> None:
    """A real socket closed mid-thought: the model stops within moments (no forward pass
    runs any more) though its budget had thousands of tokens left, and the queue is free."""
    app = create_app(
        settings_for(
            talkative_model_dir, max_reasoning_tokens=3000, thoughts="model", llm_timeout_s=120
        )
    )
    with live_server(app) as url:
        runtime = app.state.runtime
        passes = []
        hook = runtime.llm.model.register_forward_pre_hook(lambda *_: passes.append(1))
        try:
            with (
                httpx.Client(base_url=url, timeout=60) as http,
                http.stream("POST", "/recommend/stream", json=ASK) as reply,
            ):
                seen = 0
                for name, _ in events(reply.iter_lines()):
                    seen += name == "thought"
                    if seen == 3:
                        break  # leave: the connection closes
            assert seen == 3
            time.sleep(1.0)
            settled = len(passes)
            time.sleep(1.5)
            assert len(passes) == settled  # no forward pass since
            assert settled < 3000
            assert runtime.batcher._running is None and not any(runtime.batcher._waiting.values())
            after = httpx.post(f"{url}/recommend", json={**ASK, "explain": False}, timeout=30)
            assert after.status_code == 200 and after.json()["fallback"] is False
        finally:
            hook.remove()


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("1. a\n2. b", [(0, "1. a"), (1, "2. b")]),
        ("\n\n1. a\n\n\n2. b\n", [(0, "1. a"), (1, "2. b")]),
    ],
)
def test_thought_lines_split_by_line(text, pieces) -> None:
    from service.recommend.streaming import ThoughtLines

    lines = ThoughtLines()
    got = [p for ch in text for p in lines.feed(ch)]  # one character at a time
    joined: dict[int, str] = {}
    for piece in got:
        joined[piece["index"]] = joined.get(piece["index"], "") + piece["delta"]
    assert sorted(joined.items()) == pieces

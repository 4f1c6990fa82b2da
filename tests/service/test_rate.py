"""POST /rate: the user's rating of an item from the serving model, grounded in the graph's
facts, through the in-process model (here) and vLLM (`test_with_vllm.py`); the item's
mean when the model fails; 4xx with a JSON body for bad input."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from reasoning.rating_facts import rating_facts, taste_graph, taste_neighbours
from reasoning.rating_models import fit_baseline
from recdata import load_dataset
from service.main import create_app
from service.ranking import StartupError
from service.runtime import Runtime
from tests.reasoning.broken_llm import ERROR_400, BrokenLLM
from tests.service.conftest import partner_fitted, rating_model_folder, settings_for


@pytest.fixture(scope="module")
def expected_facts() -> dict[str, object]:
    """User 2 and Toy Story (item 1, 452 raters: under the store's 512 cap), computed from
    the dataset's frame by the offline path (`reasoning.rating_facts.rating_facts`)."""
    log = load_dataset("ml-100k").interactions
    near = taste_neighbours(taste_graph(log), "2", "1")
    return rating_facts(log, "2", "1", near).__dict__


@pytest.mark.parametrize("explain", [True, False])
def test_the_model_rates_from_the_graph_facts(make_client, expected_facts, explain: bool) -> None:
    client = make_client()
    reply = client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["item_id"] == "1" and body["title"] == "Toy Story"
    assert body["basis"] == "model" and body["fallback"] is False
    assert body["fallback_reason"] is None and body["model"] == "tiny-qwen2"
    probs = body["probabilities"]
    assert len(probs) == 5 and math.isclose(sum(probs), 1.0, abs_tol=1e-6)
    assert math.isclose(body["rating"], sum(k * p for k, p in enumerate(probs, 1)))
    assert body["most_likely"] == 1 + probs.index(max(probs))
    got = body["facts"]
    for key, value in expected_facts.items():
        assert got[key] == pytest.approx(value), key
    assert got["neighbour_count"] > 0 and got["user_count"] > 0
    if explain:
        assert isinstance(body["reasoning"], str) and isinstance(body["valid"], bool)
    else:
        assert body["reasoning"] is None and body["valid"] is None


def test_an_unknown_user_is_rated_from_the_item_alone(make_client) -> None:
    body = make_client().post("/rate", json={"user_id": "new-here", "item_id": "1"}).json()
    assert body["facts"]["user_count"] == 0 and body["facts"]["user_mean"] is None
    assert body["facts"]["neighbour_count"] == 0 and body["facts"]["item_count"] == 452


def test_a_failing_model_gives_the_item_mean_and_says_why(make_client, expected_facts) -> None:
    with BrokenLLM(400, ERROR_400, "application/json") as llm:
        client = make_client(llm_backend="vllm", llm_url=llm.base_url, llm_model="m")
        for explain in (True, False):
            reply = client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
            body = reply.json()
            assert reply.status_code == 200 and body["fallback"] is True
            assert body["fallback_reason"] == "LLM rejected the request"
            assert body["basis"] == "item mean"
            assert body["rating"] == pytest.approx(expected_facts["item_mean"])
            assert body["probabilities"] is None and body["reasoning"] is None
        metrics = client.get("/metrics").text
        assert 'r2rec_fallback_total{reason="LLM rejected the request"} 2.0' in metrics


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"user_id": "2", "item_id": "no-such-item"}, 404, "no-such-item"),
        ({"user_id": "2"}, 422, "item_id"),
        ({"user_id": "2", "item_id": "1", "explain": "yes"}, 422, "explain"),
        ({"user_id": "2", "item_id": "1", "extra": 1}, 422, "extra"),
        ({"user_id": "", "item_id": "1"}, 422, "user_id"),
        ({"user_id": "2", "item_id": "a\nb"}, 422, "item_id"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(
    make_client, body: dict, status: int, names: str
) -> None:
    reply = make_client().post("/rate", json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert names in reply.text


@pytest.fixture(scope="module")
def bias_partner() -> object:
    """The bias model fitted offline on every ML-100K rating (the store's ratings)."""
    return fit_baseline("bias", load_dataset("ml-100k").interactions)


def test_the_rating_model_blends_its_head_with_its_partner(
    make_client, tiny_model_dir, tmp_path, bias_partner
) -> None:
    client = make_client(rating_model_path=rating_model_folder(tiny_model_dir, tmp_path / "r"))
    partner_fitted(client)
    assert client.app.state.runtime.rating.fitted_ratings == 100_000
    for explain in (True, False):
        body = client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
        body = body.json()
        assert body["basis"] == "blend" and body["fallback"] is False
        assert body["model"] == "tiny-head@7" and body["baseline"] == "bias"
        probs = body["probabilities"]
        assert body["model_rating"] == pytest.approx(sum(k * p for k, p in enumerate(probs, 1)))
        assert body["baseline_rating"] == pytest.approx(bias_partner([("2", "1")])[0])
        expected = 0.6 * body["baseline_rating"] + 0.4 * body["model_rating"]
        assert body["rating"] == pytest.approx(expected) and body["blend_weight"] == 0.4
        if explain:  # the grounded steps the head was trained to read after
            steps = body["reasoning"]
            assert steps.startswith("<analyse_user>The user's ratings average")
            assert '"Toy Story" (1995) is Animation' in steps and steps.endswith("</match>\n")
            assert body["valid"] is True
        else:
            assert body["reasoning"] is None


def test_the_rating_model_gives_its_partner_for_a_user_without_history(
    make_client, tiny_model_dir, tmp_path, bias_partner
) -> None:
    client = make_client(rating_model_path=rating_model_folder(tiny_model_dir, tmp_path / "r"))
    partner_fitted(client)
    body = client.post("/rate", json={"user_id": "new-here", "item_id": "1"}).json()
    assert body["fallback"] is True and body["fallback_reason"] == "no rated history to read"
    assert body["basis"] == "baseline" and body["probabilities"] is None
    assert body["rating"] == pytest.approx(bias_partner([("new-here", "1")])[0])


def test_a_written_rating_reaches_the_partner_at_its_refit(
    make_client, tiny_model_dir, tmp_path
) -> None:
    client = make_client(rating_model_path=rating_model_folder(tiny_model_dir, tmp_path / "r"))
    partner_fitted(client)
    rating = client.app.state.runtime.rating
    before = client.post("/rate", json={"user_id": "2", "item_id": "1"}).json()
    write = {
        "interactions": [
            {"user_id": "2", "item_id": "1500", "timestamp": 1_700_000_000, "rating": 1.0}
        ]
    }
    assert client.post("/interactions", json=write).status_code in (200, 201)
    client.portal.call(rating.refit, client.app.state.runtime.graph)
    assert rating.fitted_ratings == 100_001
    after = client.post("/rate", json={"user_id": "2", "item_id": "1"}).json()
    assert after["baseline_rating"] < before["baseline_rating"]  # user 2 rates lower now


def test_a_rating_folder_without_its_card_is_refused_at_start(tiny_model_dir, tmp_path) -> None:
    folder = rating_model_folder(tiny_model_dir, tmp_path / "r")
    (folder / "rating-card.json").unlink()
    app = create_app(settings_for(tiny_model_dir, rating_model_path=folder))
    with pytest.raises(StartupError, match=r"rating-card\.json"), TestClient(app):
        pass


def test_readiness_has_no_rating_check_without_a_rating_model(make_client) -> None:
    assert "rating_model" not in make_client().get("/readyz").json()["checks"]


def test_readiness_reports_the_rating_model_and_its_partner_when_published(
    make_client, tiny_model_dir, tmp_path
) -> None:
    client = make_client(rating_model_path=rating_model_folder(tiny_model_dir, tmp_path / "r"))
    partner_fitted(client)
    check = client.get("/readyz").json()["checks"]["rating_model"]
    assert check["ok"] is True and "tiny-head@7; bias fitted on 100000 ratings" in check["detail"]


def test_a_newly_published_rating_model_is_switched_in(make_client, tiny_model_dir) -> None:
    from common.paths import published_rating_dir

    client = make_client()
    runtime: Runtime = client.app.state.runtime
    assert runtime.rating is None
    assert client.portal.call(runtime.switch_rating_to_published) is False  # none published
    rating_model_folder(tiny_model_dir, published_rating_dir())
    assert client.portal.call(runtime.switch_rating_to_published) is True
    switched = runtime.rating
    assert switched is not None
    assert switched.version == "tiny-head@7" and switched.fitted_unix is not None
    body = client.post("/rate", json={"user_id": "2", "item_id": "1"}).json()
    assert body["basis"] == "blend" and body["model"] == "tiny-head@7"
    assert client.portal.call(runtime.switch_rating_to_published) is False  # the same one

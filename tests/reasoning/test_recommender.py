"""The Recommender pipeline end to end: graph store -> prompt -> real LLM -> ranking.

Runs against the real vLLM server and the in-process backend on the same tiny model.
"""

from __future__ import annotations

import pytest

from evaluation.explanations import check_explanation
from evaluation.protocol import load_cases, training_log
from graph_store.memory import MemoryGraphStore
from reasoning.backends import LLMBackend, OpenAICompatBackend, OpenAICompatConfig
from reasoning.evidence import chains_explanation
from reasoning.outcomes import UnknownItemsError
from reasoning.prompt import ANSWER_PREFIX, answer_letter_tokens
from reasoning.recommender import Recommender, RecommenderConfig
from recdata import load_dataset
from tests.harness.net import free_port

CONFIG = RecommenderConfig(max_reasoning_tokens=24)
MODEL_THOUGHTS = RecommenderConfig(max_reasoning_tokens=24, thoughts="model")


@pytest.fixture(scope="module")
def ml100k():
    dataset = load_dataset("ml-100k")
    graph = MemoryGraphStore.from_frames(training_log(dataset, "test"), dataset.items)
    return graph, load_cases(dataset, "test")[:3]


async def test_scoring_mode_orders_candidates_by_their_letters_logprob(
    backend: LLMBackend, ml100k
) -> None:
    graph, cases = ml100k
    case = cases[0]
    recommender = Recommender(graph, backend, CONFIG)
    rec = await recommender.recommend(case.user_id, list(case.candidates), explain=False)
    assert sorted(i.item_id for i in rec.items) == sorted(case.candidates)
    assert rec.valid and not rec.fallback and not rec.cold_start
    prepared = await recommender.prepare(case.user_id, list(case.candidates))
    tokens = answer_letter_tokens(20)
    logprobs = (await backend.score_choices([prepared.messages], ANSWER_PREFIX, tokens))[0]
    letter_of = {item.item_id: tokens[i] for i, item in enumerate(prepared.candidates)}
    ranked = [logprobs[letter_of[i.item_id]] for i in rec.items]
    assert ranked == sorted(ranked, reverse=True)
    assert rec.items[0].score == pytest.approx(2.718281828 ** ranked[0])


async def test_history_and_chains_come_from_the_graph(backend: LLMBackend, ml100k) -> None:
    graph, cases = ml100k
    case = cases[1]
    prepared = await Recommender(graph, backend, CONFIG).prepare(
        case.user_id, list(case.candidates)
    )
    assert tuple(h.item.item_id for h in prepared.history) == case.history
    assert prepared.chains and all(c.next_item_id in case.candidates for c in prepared.chains)
    assert prepared.messages[0]["role"] == "system"


async def test_explain_mode_reasons_then_answers_with_candidates_only(
    backend: LLMBackend, ml100k
) -> None:
    graph, cases = ml100k
    case = cases[2]
    rec = await Recommender(graph, backend, MODEL_THOUGHTS).recommend(
        case.user_id, list(case.candidates), explain=True
    )
    assert sorted(i.item_id for i in rec.items) == sorted(case.candidates)
    answer_line = rec.raw_text.rsplit(ANSWER_PREFIX, 1)[1]  # generated: "Answer:" after thoughts
    assert set(answer_line.replace(">", " ").split()) <= set("ABCDEFGHIJKLMNOPQRST")
    assert [i.rank for i in rec.items] == list(range(1, 21))


class Heard:
    """A listener that keeps what it is told."""

    wanted = True

    def __init__(self) -> None:
        self.text = ""
        self.shown: tuple = ()

    def evidence(self, history, candidates, chains) -> None:
        self.shown = (history, candidates, chains)

    def thought_text(self, delta: str) -> None:
        self.text += delta


async def test_evidence_thoughts_explain_the_one_pass_ranking(
    local_backend: LLMBackend, ml100k
) -> None:
    """explain=True with evidence thoughts ranks exactly as explain=False does, and its
    thoughts quote only shown titles, never repeat, and name the returned top item first;
    the listener hears them as numbered lines."""
    graph, cases = ml100k
    recommender = Recommender(graph, local_backend, CONFIG)
    heard = [Heard() for _ in cases]
    explained = await recommender.recommend_many(
        [(c.user_id, list(c.candidates)) for c in cases], True, listeners=heard
    )
    for case, rec, listener in zip(cases, explained, heard, strict=True):
        plain = await recommender.recommend(case.user_id, list(case.candidates), explain=False)
        assert [i.item_id for i in rec.items] == [i.item_id for i in plain.items]
        assert 1 <= len(rec.thoughts) <= 5 and rec.valid and rec.reason == "ok"
        history, candidates, chains = listener.shown
        shown = [h.item.title for h in history] + [i.title for i in candidates]
        shown += [t.title for c in chains for t in c.shared] + [c.next_title for c in chains]
        top = rec.items[0].item_id
        check = check_explanation(
            rec.thoughts, shown, [(i.item_id, i.title) for i in candidates], top
        )
        assert check.grounded == check.quoted > 0 and not check.repeated and check.agrees
        numbered = [f"{n}. {t}" for n, t in enumerate(rec.thoughts, start=1)]
        assert listener.text.splitlines() == numbered
        assert rec.explanation.startswith(f'"{rec.items[0].title}" ranks first.')


async def test_both_backends_rank_identically_on_the_same_weights(
    vllm_backend: LLMBackend, local_backend: LLMBackend, ml100k
) -> None:
    graph, cases = ml100k
    for case in cases:
        ranks = [
            [
                i.item_id
                for i in (
                    await Recommender(graph, b, CONFIG).recommend(
                        case.user_id, list(case.candidates), explain=False
                    )
                ).items
            ]
            for b in (vllm_backend, local_backend)
        ]
        assert ranks[0][:5] == ranks[1][:5]


async def test_a_batch_equals_single_requests(local_backend: LLMBackend, ml100k) -> None:
    graph, cases = ml100k
    recommender = Recommender(graph, local_backend, CONFIG)
    batch = await recommender.recommend_many(
        [(c.user_id, list(c.candidates)) for c in cases], False
    )
    for case, rec in zip(cases, batch, strict=True):
        single = await recommender.recommend(case.user_id, list(case.candidates), explain=False)
        assert [i.item_id for i in single.items] == [i.item_id for i in rec.items]


async def test_cold_users_get_popular_items_without_the_llm(ml100k) -> None:
    graph, _ = ml100k
    dead = OpenAICompatBackend(
        OpenAICompatConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x", max_retries=0)
    )
    rec = await Recommender(graph, dead, CONFIG).recommend("nobody-here", explain=True)
    assert rec.cold_start and not rec.fallback
    popular = [c.item.item_id for c in await graph.candidates("nobody-here", 3)]
    assert [i.item_id for i in rec.items[:3]] == popular


async def test_llm_down_falls_back_or_raises_as_configured(ml100k) -> None:
    graph, cases = ml100k
    dead = OpenAICompatBackend(
        OpenAICompatConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x", max_retries=0)
    )
    case = cases[0]
    rec = await Recommender(graph, dead, CONFIG).recommend(case.user_id, list(case.candidates))
    assert rec.fallback and rec.reason == "LLM unavailable"
    assert sorted(i.item_id for i in rec.items) == sorted(case.candidates)
    from reasoning.backends import LLMUnavailable

    strict = Recommender(graph, dead, RecommenderConfig(fallback_on_llm_error=False))
    with pytest.raises(LLMUnavailable):
        await strict.recommend(case.user_id, list(case.candidates))


async def test_unknown_candidates_are_named(local_backend: LLMBackend, ml100k) -> None:
    graph, _ = ml100k
    with pytest.raises(UnknownItemsError, match="'nope'"):
        await Recommender(graph, local_backend, CONFIG).recommend("1", ["1", "nope"])


def test_explanation_states_each_evidence_sentence_once() -> None:
    from graph_store.types import Chain, Item, SharedItem

    shared = (SharedItem("1", "Alien", 5, 6), SharedItem("2", "Brazil", 4, 7))
    same = [Chain("u", shared, f"n{k}", 2, "9", "Dune", 8, True) for k in range(3)]
    other = Chain("u", shared, "n9", 2, "8", "Fargo", 9, False)
    ranking = [Item("9", "Dune"), Item("8", "Fargo")]
    text = chains_explanation([*same, other], ranking)
    assert text.startswith('"Dune" ranks first.')
    assert text.count("went on to watch Dune") == 1
    assert "also watched Fargo" in text

"""reasoning.fused: the Recommender serves exactly the offline fused score.

Offline (``training.hidden_head``): the compact prompt of each `Case`, the LLM's states at
its candidate lines, a head on top of the combiner of the offline features. Served: the
Recommender with a `FusedRanker`, reading the same user from a graph store and the same
model in process. The two scores must agree per candidate, and the fallback must rank by
the collaborative base.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from baselines.features import compute_features, rowset_cases, rowset_training_log
from evaluation.ranker import Case
from graph_store.memory import MemoryGraphStore
from reasoning.backends.base import LLMUnavailable
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
from reasoning.collaborative import CollaborativeBundle, zscore_per_case
from reasoning.compact import HiddenHead, PromptShape
from reasoning.fused import FusedRanker, log_softmax
from reasoning.item_content import ItemContent
from reasoning.recommender import Recommender, RecommenderConfig
from recdata.schema import Dataset
from tests.factories import TINY_FEATURE_CONFIGS
from training.compact_prompt import item_lookup, letter_reader, render_compact
from training.hidden_head import HiddenHeadConfig
from training.hidden_states import extract_states
from training.llm_sasrec import fit_served, llm_sasrec_columns


def _head(d: int, seed: int = 0) -> HiddenHead:
    rng = np.random.default_rng(seed)
    return HiddenHead(
        layer=1,
        pooling="mean",
        pca=0,
        l2=0.01,
        mu=rng.normal(size=d) * 0.01,
        sd=np.abs(rng.normal(size=d)) + 0.5,
        basis=np.eye(d) / np.sqrt(d),
        weights=rng.normal(size=d) * 300.0,  # residuals of about 1 on the tiny model
    )


@pytest.fixture(scope="module")
def local(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir), batch_size=4))


def _assert_served(rec: Recommender, cases: list[Case], offline: np.ndarray) -> None:
    """The Recommender's ranking of ``cases`` has the softmax of the ``offline`` scores."""
    served = asyncio.run(rec.recommend_many([(c.user_id, c.candidates) for c in cases], False))
    for case, expected, got in zip(cases, offline, served, strict=True):
        assert not got.fallback and got.valid
        probs = {i.item_id: i.score for i in got.items}
        np.testing.assert_allclose(
            [probs[c] for c in case.candidates], np.exp(log_softmax(expected)), atol=1e-6
        )


@pytest.mark.parametrize("base", ["collaborative", "content", "llm-sasrec"])
def test_served_fused_scores_equal_the_offline_ones(
    ml100k_slice: Dataset,
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    local: TransformersBackend,
    tmp_path: Path,
    base: str,
) -> None:
    bundle, store = slice_bundle
    head = _head(local.model.config.hidden_size)
    cases = rowset_cases(ml100k_slice, "test")[:6]
    content, weights, llm_sasrec, column = None, None, None, None
    if base != "collaborative":  # the base also weighs the content columns (made-up readings)
        vectors = np.random.default_rng(1).normal(size=(len(ml100k_slice.items), 16))
        content = ItemContent.from_items(ml100k_slice.items, vectors=vectors, layer=1)
        weights = np.array([0.7, 0.3, 0.2, 0.9, 0.4, 0.5])
    if base == "llm-sasrec" and content is not None:  # fitted on the bundle's log, as offline
        run = HiddenHeadConfig(
            out_dir=str(tmp_path), item_layers=(1,), llm_sasrec=True, llm_sasrec_max_epochs=2
        )
        rowsets = {"valid": rowset_cases(ml100k_slice, "valid")[:6], "test": cases}
        scored, info = llm_sasrec_columns(run, ml100k_slice, content, rowsets)
        column = scored["test"][:, :, None]
        train = rowset_training_log(ml100k_slice, "test")
        llm_sasrec = fit_served(train, ml100k_slice.items, content, info)
        weights = np.array([0.7, 0.3, 0.2, 0.9, 0.4, 0.5, 0.8])
    FusedRanker(
        bundle,
        head,
        PromptShape(),
        {"base_model": "tiny"},
        content=content,
        content_weights=weights,
        llm_sasrec=llm_sasrec,
    ).save(tmp_path / "fused")
    fused = FusedRanker.load(tmp_path / "fused")
    assert (fused.llm_sasrec is not None) == (base == "llm-sasrec")
    # offline: features, combiner, states of the case's own prompt, head
    features = compute_features(ml100k_slice, "test", TINY_FEATURE_CONFIGS, cases=cases)
    offline_base = bundle.score(features.scores)
    if content is not None and weights is not None:
        assert fused.manifest["content"]["names"] == list(fused.content_names)
        columns = np.stack([content.features(c.history, c.candidates) for c in cases])
        if column is not None:
            columns = np.concatenate([columns, column], axis=2)
        part = zscore_per_case(columns) @ weights
        assert part.std(axis=1).min() > 0.1  # the content columns move the ranking
        offline_base = offline_base + part
    config = HiddenHeadConfig(layers=(1,), batch_size=4, dtype="float32")
    lookup = item_lookup(ml100k_slice.items, config.prompt())
    states, _ = extract_states(local.model, letter_reader(local.tokenizer), cases, lookup, config)
    residual = head.residual(states[:, :, 0, 1].astype(float))
    assert residual.std(axis=1).min() > 0.3  # the head moves the ranking: its part is tested
    offline = offline_base + residual
    # served: the recommender reads the user from the store and asks the same model
    rec = Recommender(store, local, RecommenderConfig(), fused=fused)
    _assert_served(rec, cases, offline)
    # the served prompt is the offline one, letter for letter
    request = asyncio.run(rec.prepare(cases[0].user_id, cases[0].candidates)).fused_request()
    assert fused.messages(request) == render_compact(cases[0], np.arange(20), lookup, config)


def test_content_weights_come_with_content(
    ml100k_slice: Dataset, slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore]
) -> None:
    content = ItemContent.from_items(ml100k_slice.items)
    with pytest.raises(ValueError, match="go together"):
        FusedRanker(slice_bundle[0], None, PromptShape(), {}, content=content)
    with pytest.raises(ValueError, match="2 weights for"):
        FusedRanker(
            slice_bundle[0], None, PromptShape(), {}, content=content, content_weights=np.ones(2)
        )


class _NoStates:
    """A backend without hidden states (as the vLLM client): the head cannot be read."""

    name = "no-states"


def test_without_hidden_states_the_collaborative_base_ranks_as_fallback(
    ml100k_slice: Dataset, slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore]
) -> None:
    bundle, store = slice_bundle
    fused = FusedRanker(bundle, _head(8), PromptShape(), {})
    case = rowset_cases(ml100k_slice, "test")[0]
    rec = Recommender(store, _NoStates(), RecommenderConfig(), fused=fused)  # type: ignore[arg-type]
    got = asyncio.run(rec.recommend(case.user_id, case.candidates, explain=False))
    assert got.fallback and got.reason == "LLM unavailable"
    request = asyncio.run(rec.prepare(case.user_id, case.candidates)).fused_request()
    base = fused.base(request)
    expected = [case.candidates[j] for j in np.argsort(-base, kind="stable")]
    assert [i.item_id for i in got.items] == expected
    request = asyncio.run(rec.prepare(case.user_id, case.candidates)).fused_request()
    with pytest.raises(LLMUnavailable):
        asyncio.run(fused.scores(_NoStates(), [request]))


class _UnitRMSStates:
    """A reader of unit-RMS token states only, as the vLLM pooling server is."""

    name = "unit-rms"
    unit_rms_tokens = True

    async def line_states(self, messages_batch: object, n: int, layers: object) -> np.ndarray:
        raise AssertionError("a head it cannot serve must be refused before any call")


def test_a_unit_rms_reader_refuses_a_head_reading_raw_or_mean_states(
    ml100k_slice: Dataset, slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore]
) -> None:
    bundle, store = slice_bundle
    case = rowset_cases(ml100k_slice, "test")[0]
    for head in (_head(8), replace(_head(8), scale="rms")):  # mean-pooled, raw or unit-RMS
        fused = FusedRanker(bundle, head, PromptShape(), {})
        request = asyncio.run(
            Recommender(store, None, RecommenderConfig(), fused=fused).prepare(
                case.user_id, case.candidates
            )
        ).fused_request()
        with pytest.raises(LLMUnavailable, match="unit-RMS token states only"):
            asyncio.run(fused.scores(_UnitRMSStates(), [request]))

"""training.hidden_head: candidate spans, the fused head's fit and selection, a tiny run."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from baselines.features import FEATURE_MODELS, FeatureSet, feature_path, rowset_cases
from common.errors import UserInputError
from reasoning.collaborative import FEATURE_NAMES
from reasoning.compact import POOLINGS, HiddenHead, candidate_spans
from reasoning.item_content import METADATA_NAMES, VECTOR_NAMES
from reasoning.llm_sasrec import NAME as LLM_SASREC
from recdata import load_dataset
from recdata.schema import Dataset
from tests.training.test_listwise import _cases, _write_features
from training.compact_prompt import item_lookup, render_compact
from training.hidden_head import FittedHead, HiddenHeadConfig, run_hidden_head, select_head
from training.hidden_states import StateCache


def test_candidate_spans_cover_each_candidate_line(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = HiddenHeadConfig()
    lookup = item_lookup(load_dataset("ml-100k").items, config.prompt())
    case = _cases(1, 3)[0]
    messages = render_compact(case, np.arange(20), lookup, config.prompt())
    text = "\n".join(m["content"] for m in messages)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = candidate_spans(text, enc["offset_mapping"], 20)
    assert len(spans) == 20
    for letter, (lo, hi), item in zip("ABCDEFGHIJKLMNOPQRST", spans, case.candidates, strict=True):
        line = str(tok.decode(enc["input_ids"][lo:hi])).strip()
        assert line.startswith(f"({letter})")
        assert lookup[item].title[:6] in line
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def _planted(n: int, seed: int, d: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States where the target's state leans along one direction; a noisy base."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, 20, 1, 2, d)).astype(np.float16)
    target = rng.integers(0, 20, size=n)
    states[np.arange(n), target, 0, :, 3] += 2.0
    base = rng.normal(size=(n, 20))
    return states, base, target


def test_the_head_learns_a_planted_direction_on_top_of_the_base() -> None:
    config = HiddenHeadConfig(
        layers=(7,), poolings=POOLINGS, state_scale="raw", pca_grid=(4, 0), l2_grid=(1e-3, 10.0)
    )
    train = _planted(300, 0)
    select = _planted(200, 1)
    head, trials = select_head(train, select, config)
    assert len(trials) == 2 * 2 * 2  # poolings x pca x l2
    fused = select[1] + head.residual(select[0][:, :, 0, 0 if head.pooling == "last" else 1])
    hits = (fused.argmax(axis=1) == select[2]).mean()
    base_hits = (select[1].argmax(axis=1) == select[2]).mean()
    assert hits > base_hits + 0.3
    assert head.l2 == 1e-3  # the strong L2 fits the planted signal worse on valid


def test_a_unit_rms_head_learns_it_too_and_reads_raw_or_normed_states_alike(
    tmp_path: Path,
) -> None:
    config = HiddenHeadConfig(layers=(7,), pca_grid=(0,), l2_grid=(1e-3,))  # rms, last
    train, select = _planted(300, 0), _planted(200, 1)
    head, trials = select_head(train, select, config)
    assert (head.scale, head.pooling, len(trials)) == ("rms", "last", 1)
    assert head.reads_unit_rms_tokens
    raw = select[0][:, :, 0, 0].astype(np.float64)
    fused = select[1] + head.residual(raw)
    assert (fused.argmax(axis=1) == select[2]).mean() > (
        select[1].argmax(axis=1) == select[2]
    ).mean() + 0.3
    # what vLLM returns (an RMSNorm with its own eps) scores exactly as the raw state does
    normed = raw / np.sqrt((raw * raw).mean(axis=-1, keepdims=True) + 1e-2)
    np.testing.assert_allclose(head.residual(normed), head.residual(raw), atol=1e-9)
    head.save(tmp_path / "head.npz")
    assert HiddenHead.load(tmp_path / "head.npz").scale == "rms"


def test_a_head_on_pure_noise_stays_near_the_base() -> None:
    rng = np.random.default_rng(5)
    states = rng.normal(size=(200, 20, 8))
    base = rng.normal(size=(200, 20))
    head = FittedHead.fit(states, base, rng.integers(0, 20, 200), 1, "last", 0, l2=10.0)
    assert np.abs(head.residual(states)).max() < 0.5


def test_valid_and_test_are_never_fitted_on() -> None:
    with pytest.raises(UserInputError):
        HiddenHeadConfig(train_rowsets=("train3", "test"))
    with pytest.raises(UserInputError):
        HiddenHeadConfig(dtype="int8")
    with pytest.raises(UserInputError, match="poolings"):
        HiddenHeadConfig(poolings=("max",))
    with pytest.raises(UserInputError, match="state_scale"):
        HiddenHeadConfig(state_scale="layernorm")


def _tiny_config(tmp_path: Path, tiny_model_dir: Path, **changes: object) -> HiddenHeadConfig:
    """A run of the tiny model over six-case row sets written into ``tmp_path``."""
    _write_features(tmp_path / "features")
    config = HiddenHeadConfig(
        model_path=str(tiny_model_dir),
        features_dir=str(tmp_path / "features"),
        out_dir=str(tmp_path / "run"),
        layers=(1, 2),
        pca_grid=(4,),
        l2_grid=(0.1,),
        batch_size=4,
        dtype="float32",
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def test_tiny_run_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = _tiny_config(tmp_path, tiny_model_dir)
    summary = run_hidden_head(config)
    rows = json.loads((tmp_path / "run" / "r2rec.json").read_text())
    assert [r["model"] for r in rows][:2] == ["sasrec", "combiner"]
    assert all(r["n"] == 6 for r in rows)
    for variant in summary["variants"].values():
        assert len(variant["trials_on_select"]) == 2  # layers x the one pooling (last)
        assert variant["head"]["scale"] == "rms"
    service = summary["variants"]["service features"]["base"]["weights"]
    assert set(service) == {"graph-fallback", "popularity"}  # what the service can compute
    saved = np.load(tmp_path / "run" / "hidden_test.npz")["states"]
    assert saved.shape[:4] == (6, 20, 2, 2) and np.isfinite(saved).all()
    # a second run reuses the cached states and gives the same table
    assert run_hidden_head(config)["rows"] == summary["rows"]


def test_a_run_without_its_model_names_the_folder_and_writes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    config = _tiny_config(tmp_path, missing)
    with pytest.raises(UserInputError, match=f"no model at {missing}"):
        run_hidden_head(config)
    assert not (tmp_path / "run").exists()


def test_tiny_run_with_item_layers_adds_the_content_variants(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = _tiny_config(tmp_path, tiny_model_dir, item_layers=(1, 2))
    summary = run_hidden_head(config)
    items = summary["items"]
    assert items["layer"] in (1, 2) and [t["layer"] for t in items["trials"]] == [1, 2]
    assert list(summary["variants"]) == [
        "all features",
        "content features",
        "item-vector features",
        "service features",
    ]
    weights = {k: set(v["base"]["weights"]) for k, v in summary["variants"].items()}
    assert weights["all features"] == set(FEATURE_NAMES)
    assert weights["content features"] == set(FEATURE_NAMES) | set(METADATA_NAMES)
    assert weights["item-vector features"] == weights["content features"] | set(VECTOR_NAMES)
    for label in ("content", "item-vector"):
        assert (tmp_path / "run" / f"head-{label}.npz").is_file()
    cached = np.load(tmp_path / "run" / "item_vectors.npz")
    assert cached["l1"].shape[0] == len(cached["item_ids"]) > 1000  # the whole catalogue
    # the yardstick combiner stays the collaborative one
    assert set(summary["yardstick_combiner"]["weights"]) == set(FEATURE_NAMES)
    assert len(summary["rows"]) == 3 + 2 * 4
    assert len({row["model"] for row in summary["rows"]}) == len(summary["rows"])  # distinct
    for row, hits in zip(summary["rows"], summary["test_hits"], strict=True):
        assert len(hits) == 6 and np.mean(hits) == pytest.approx(row["HR@1"])
    with pytest.raises(UserInputError, match="the model has layers 0-"):
        run_hidden_head(replace(config, item_layers=(1, 99), out_dir=str(tmp_path / "deep")))


def test_tiny_run_with_llm_sasrec_adds_its_variant_fitted_per_row_set(
    tmp_path: Path, tiny_model_dir: Path, ml100k_slice: Dataset
) -> None:
    rng = np.random.default_rng(0)
    for rowset in ("train3", "valid", "test"):  # real cases of the slice, made-up scores
        cases = rowset_cases(ml100k_slice, rowset)[:6]
        scores = rng.normal(size=(len(cases), 20, len(FEATURE_MODELS)))
        FeatureSet("ml-100k", rowset, FEATURE_MODELS, cases, scores).save(
            feature_path(tmp_path / "features", rowset)
        )
    config = replace(
        _tiny_config(tmp_path, tiny_model_dir),
        item_layers=(1,),
        llm_sasrec=True,
        llm_sasrec_max_epochs=2,
    )
    summary = run_hidden_head(config, ml100k_slice)
    assert list(summary["variants"])[-2:] == ["llm-sasrec features", "service features"]
    weights = summary["variants"]["llm-sasrec features"]["base"]["weights"]
    assert LLM_SASREC in weights and set(VECTOR_NAMES) <= set(weights)
    assert summary["items"]["llm_sasrec"]["layer"] == 1
    assert (tmp_path / "run" / "head-llm-sasrec.npz").is_file()
    for rowset in ("train3", "valid", "test"):
        assert np.load(tmp_path / "run" / f"llm_sasrec_l1_{rowset}.npy").shape == (6, 20)
    assert len(summary["rows"]) == 3 + 2 * 5


def test_row_sets_extracted_in_two_processes_equal_one_process(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one = _tiny_config(tmp_path, tiny_model_dir, out_dir=str(tmp_path / "one"))
    two = replace(one, out_dir=str(tmp_path / "two"), workers=2)
    with caplog.at_level("INFO", logger="training.hidden_states"):
        StateCache(two).fill(["train3", "valid", "test", "valid"])  # side by side
    assert "extracting ['train3', 'valid', 'test'] in 2 processes" in caplog.text  # valid once
    for rowset in ("train3", "valid", "test"):
        assert (tmp_path / "two" / f"hidden_{rowset}.npz").is_file()
    assert run_hidden_head(two)["rows"] == run_hidden_head(one)["rows"]
    for rowset in ("train3", "valid", "test"):
        a = np.load(tmp_path / "one" / f"hidden_{rowset}.npz")["states"]
        b = np.load(tmp_path / "two" / f"hidden_{rowset}.npz")["states"]
        np.testing.assert_array_equal(a, b)


def test_cached_states_of_other_layers_are_extracted_again(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = _tiny_config(tmp_path, tiny_model_dir)
    cache = StateCache(config)
    cases = cache.rowset("valid").cases
    first, _ = cache.states("valid", cases)
    assert cache.cached("valid", len(cases)) is not None
    other = StateCache(replace(config, layers=(2, 1)))  # same count, other layers
    assert other.cached("valid", len(cases)) is None
    swapped, _ = other.states("valid", cases)
    np.testing.assert_array_equal(swapped[:, :, 0], first[:, :, 1])
    assert StateCache(config).cached("valid", len(cases) + 1) is None  # other cases

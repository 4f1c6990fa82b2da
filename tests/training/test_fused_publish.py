"""training.fused_publish: the gate, and what it refuses with a one-line error."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from baselines.sasrec import SASRecConfig
from common.errors import UserInputError
from common.paths import published_fused_dir
from graph_store.memory import MemoryGraphStore
from reasoning.collaborative import CollaborativeBundle
from reasoning.fused import FusedRanker
from reasoning.item_content import METADATA_NAMES, VECTOR_NAMES
from reasoning.llm_sasrec import NAME as LLM_SASREC
from recdata.schema import Dataset
from tests.factories import write_hidden_head_run
from training.fused_publish import base_weights, bundle_log, publish_fused


@pytest.fixture
def parts(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore], tmp_path: Path
) -> tuple[Path, Path]:
    bundle, _ = slice_bundle
    bundle.meta["dataset"] = "ml-100k"
    bundle.save(tmp_path / "bundle")
    write_hidden_head_run(tmp_path / "run", 8, "ml-100k", tmp_path / "model")
    return tmp_path / "run", tmp_path / "bundle"


def _set_nll(run: Path, base: float, fused: float) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary["variants"]["all features"]["select_nll"] = {"base": base, "fused": fused}
    (run / "summary.json").write_text(json.dumps(summary))


def test_a_head_that_does_not_help_on_valid_is_not_published(parts: tuple[Path, Path]) -> None:
    run, bundle = parts
    _set_nll(run, base=2.0, fused=2.0)
    decision = publish_fused(run, bundle)
    assert not decision["published"] and "does not beat" in decision["reason"]
    assert not published_fused_dir().exists()
    forced = publish_fused(run, bundle, force=True)
    assert forced["published"] and FusedRanker.load(published_fused_dir()).manifest["forced"]


def test_publish_joins_the_runs_base_and_head_with_the_bundles_models(
    parts: tuple[Path, Path],
) -> None:
    run, bundle = parts
    decision = publish_fused(run, bundle)
    assert decision["published"]
    fused = FusedRanker.load(published_fused_dir())
    assert fused.bundle.weights.tolist() == [1.0, 0.4, 0.6, -0.2, 0.1]
    assert fused.head is not None and fused.head.layer == 1
    assert fused.manifest["test_rows"][1]["HR@1"] == 0.5
    # a base over two features gets zero weights for the others
    two, content = base_weights({"weights": {"popularity": 0.5, "graph-fallback": 1.0}})
    assert two.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0] and content == {}
    assert fused.content is None and fused.manifest["content"] is None
    card = (published_fused_dir() / "README.md").read_text()
    assert card.startswith(f"# Fused ranker: {fused.manifest['dataset']}")
    assert "| fused | 0.5000 |  |" in card and "wall time" not in card  # no job: no stages


def test_a_retrain_jobs_stage_times_go_into_the_model_card(parts: tuple[Path, Path]) -> None:
    run, bundle = parts
    stages = {"export": 1.5, "data": 600.0, "sft": 3000.0}
    publish_fused(run, bundle, stage_seconds=stages)
    assert FusedRanker.load(published_fused_dir()).manifest["stage_seconds"] == stages
    card = (published_fused_dir() / "README.md").read_text()
    assert "| data | 10.0 |" in card and "| sft | 50.0 |" in card
    assert "| **total before publish** | **60.0** |" in card


def _with_content_variants(run: Path) -> None:
    """Add the variants of a run with ``item_layers`` (layer 1 chosen) to ``run``."""
    from recdata import load_dataset

    ids = [str(i) for i in load_dataset("ml-100k").items["item_id"]]
    vectors = np.random.default_rng(0).normal(size=(len(ids), 8))
    np.savez(run / "item_vectors.npz", item_ids=np.asarray(ids), l1=vectors)
    summary = json.loads((run / "summary.json").read_text())
    collaborative = summary["variants"]["all features"]["base"]["weights"]
    for label, extra in (
        ("content features", dict(zip(METADATA_NAMES, [0.2, 0.1, 0.05], strict=True))),
        ("item-vector features", dict(zip(VECTOR_NAMES, [0.3, 0.1, 0.2], strict=True))),
    ):
        variant = dict(summary["variants"]["all features"])
        variant["base"] = {"l2": 0.01, "weights": {**collaborative, **extra}}
        summary["variants"][label] = variant
    summary["variants"]["item-vector features"]["base"]["weights"].update(
        summary["variants"]["content features"]["base"]["weights"]
    )
    summary["variants"]["item-vector features"]["select_nll"] = {"base": 1.95, "fused": 1.8}
    summary["items"] = {"layer": 1}
    (run / "summary.json").write_text(json.dumps(summary))


def test_publish_of_a_content_variant_carries_the_item_content(
    parts: tuple[Path, Path], tmp_path: Path
) -> None:
    run, bundle = parts
    with pytest.raises(UserInputError, match="no 'content features' variant"):
        publish_fused(run, bundle, variant="content")
    _with_content_variants(run)
    assert publish_fused(run, bundle)["published"]  # best: item-vector's valid NLL is lowest
    fused = FusedRanker.load(published_fused_dir())
    assert fused.manifest["variant"] == "item-vector features"
    assert fused.content is not None and fused.content_weights is not None
    assert fused.content.names == METADATA_NAMES + VECTOR_NAMES and fused.content.layer == 1
    assert fused.content_weights.tolist() == [0.2, 0.1, 0.05, 0.3, 0.1, 0.2]
    assert fused.bundle.weights.tolist() == [1.0, 0.4, 0.6, -0.2, 0.1]
    publish_fused(run, bundle, variant="content", out=tmp_path / "content")
    metadata = FusedRanker.load(tmp_path / "content")
    assert metadata.content is not None and metadata.content.names == METADATA_NAMES
    (run / "item_vectors.npz").unlink()
    with pytest.raises(UserInputError, match="item vectors are missing"):
        publish_fused(run, bundle, variant="item-vector", out=tmp_path / "again")


def test_publish_of_the_llm_sasrec_variant_fits_it_on_the_given_log(
    parts: tuple[Path, Path], ml100k_slice: Dataset, tmp_path: Path
) -> None:
    run, bundle = parts
    _with_content_variants(run)
    summary = json.loads((run / "summary.json").read_text())
    variant = json.loads(json.dumps(summary["variants"]["item-vector features"]))
    variant["base"]["weights"][LLM_SASREC] = 0.7
    variant["select_nll"] = {"base": 1.9, "fused": 1.7}
    summary["variants"]["llm-sasrec features"] = variant
    config = replace(SASRecConfig(hidden=8, blocks=1, max_len=20), epochs=1)
    summary["items"]["llm_sasrec"] = {"layer": 1, "config": asdict(config)}
    (run / "summary.json").write_text(json.dumps(summary))
    assert publish_fused(run, bundle, out=tmp_path / "fused", data=ml100k_slice)["published"]
    fused = FusedRanker.load(tmp_path / "fused")
    assert fused.manifest["variant"] == "llm-sasrec features"
    assert fused.llm_sasrec is not None and fused.content_weights is not None
    assert fused.content_names == (*METADATA_NAMES, *VECTOR_NAMES, LLM_SASREC)
    assert fused.content_weights.tolist() == [0.2, 0.1, 0.05, 0.3, 0.1, 0.2, 0.7]
    assert fused.llm_sasrec.config["fit_log_rows"] == len(ml100k_slice.interactions)
    assert fused.history_needed == 20  # its max_len, beyond the bundle SASRec's 12


def test_refusals_name_the_problem(parts: tuple[Path, Path], tmp_path: Path) -> None:
    run, bundle = parts
    with pytest.raises(UserInputError, match="no hidden-head run"):
        publish_fused(tmp_path, bundle)
    with pytest.raises(UserInputError, match="not a collaborative bundle"):
        publish_fused(run, tmp_path)
    with pytest.raises(UserInputError, match="variant must be"):
        publish_fused(run, bundle, variant="other")
    with pytest.raises(UserInputError, match="unknown features"):
        base_weights({"weights": {"tags": 1.0}})
    CollaborativeBundle.load(bundle).save(tmp_path / "other")
    meta = json.loads((tmp_path / "other" / "manifest.json").read_text())
    meta["dataset"] = "ml-latest-small"
    (tmp_path / "other" / "manifest.json").write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="the bundle is for 'ml-latest-small'"):
        publish_fused(run, tmp_path / "other")
    assert not published_fused_dir().exists()


def test_the_bundles_log_is_rebuilt_from_its_manifest(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore], ml100k_slice: Dataset
) -> None:
    from baselines.features import rowset_training_log
    from recdata import load_dataset

    bundle = replace(slice_bundle[0], meta={"dataset": "ml-100k", "fit_log": "test"})
    dataset, log = bundle_log(bundle, None)
    assert len(log) == len(rowset_training_log(load_dataset("ml-100k"), "test"))
    whole = replace(bundle, meta={"dataset": "ml-100k", "fit_log": "ml-100k"})
    assert len(bundle_log(whole, None)[1]) == len(dataset.interactions)
    assert bundle_log(bundle, ml100k_slice)[1] is ml100k_slice.interactions  # given: used
    with pytest.raises(UserInputError, match="fit log 'snapshot-7' cannot be rebuilt"):
        bundle_log(replace(bundle, meta={"dataset": "ml-100k", "fit_log": "snapshot-7"}), None)

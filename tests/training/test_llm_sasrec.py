"""training.llm_sasrec: the LLM-reading SASRec's columns are out of sample and cached, and
the served part scores as the offline ranker does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.features import rowset_cases, rowset_training_log
from baselines.sasrec import SASRecRanker
from common.errors import UserInputError
from reasoning.item_content import ItemContent
from reasoning.llm_sasrec import LLMSASRec
from recdata.schema import Dataset
from training.hidden_head import HiddenHeadConfig
from training.llm_sasrec import fit_served, llm_sasrec_columns, recipe


def _content(data: Dataset) -> ItemContent:
    vectors = np.random.default_rng(0).normal(size=(len(data.items), 12))
    return ItemContent.from_items(data.items, vectors, layer=3)


def _config(tmp_path: Path) -> HiddenHeadConfig:
    return HiddenHeadConfig(
        out_dir=str(tmp_path), item_layers=(3,), llm_sasrec=True, llm_sasrec_max_epochs=2
    )


def test_each_row_set_is_scored_by_a_model_that_never_saw_its_targets(
    ml100k_slice: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[pd.DataFrame] = []
    for method in ("fit", "tune"):
        real = getattr(SASRecRanker, method)

        def spy(self: SASRecRanker, train: pd.DataFrame, *args: object, _real=real) -> object:
            logs.append(train)
            return _real(self, train, *args)

        monkeypatch.setattr(SASRecRanker, method, spy)
    rowsets = {name: rowset_cases(ml100k_slice, name)[:8] for name in ("train3", "valid", "test")}
    content = _content(ml100k_slice)
    columns, info = llm_sasrec_columns(_config(tmp_path), ml100k_slice, content, rowsets)
    assert info["layer"] == 3 and 1 <= info["config"]["epochs"] <= 2
    assert len(logs) == 3  # valid tuned once; train3 and test fitted on their own logs
    fitted_on = dict(zip(["valid", "train3", "test"], logs, strict=True))
    for name, cases in rowsets.items():
        assert columns[name].shape == (8, 20) and np.isfinite(columns[name]).all()
        seen = set(zip(fitted_on[name]["user_id"], fitted_on[name]["item_id"], strict=True))
        assert not any((c.user_id, c.target) in seen for c in cases)
        assert len(fitted_on[name]) == len(rowset_training_log(ml100k_slice, name))
    # a second call reads the cached columns and fits nothing
    again, _ = llm_sasrec_columns(_config(tmp_path), ml100k_slice, content, rowsets)
    assert len(logs) == 3
    for name in rowsets:
        np.testing.assert_array_equal(again[name], columns[name])


def test_the_served_part_scores_like_the_offline_ranker_and_round_trips(
    ml100k_slice: Dataset, tmp_path: Path
) -> None:
    rowsets = {name: rowset_cases(ml100k_slice, name)[:6] for name in ("valid", "test")}
    content = _content(ml100k_slice)
    columns, info = llm_sasrec_columns(_config(tmp_path), ml100k_slice, content, rowsets)
    train = rowset_training_log(ml100k_slice, "test")
    part = fit_served(train, ml100k_slice.items, content, info)
    part.save(tmp_path / "part")
    loaded = LLMSASRec.load(tmp_path / "part")
    assert loaded.config["layer"] == 3 and loaded.config["fit_log_rows"] == len(train)
    order = train.astype({"item_id": str}).sort_values(["timestamp", "item_id"], kind="stable")
    for case, offline in zip(rowsets["test"], columns["test"], strict=True):
        sequence = order[order["user_id"] == case.user_id]["item_id"].tolist()
        np.testing.assert_allclose(
            loaded.scores(sequence, list(case.candidates)), offline, rtol=1e-5, atol=1e-5
        )
    unknown = loaded.scores(sequence, ["no-such-item", *case.candidates[:3]])
    assert unknown[0] < unknown[1:].min()
    popular = loaded.scores([], list(case.candidates))  # no history: popularity
    np.testing.assert_allclose(
        popular, loaded.popularity[[loaded.index[c] for c in case.candidates]]
    )


def test_the_recipe_takes_the_tuned_architecture_but_not_its_epochs(tmp_path: Path) -> None:
    results = Path("results/ml-100k/baselines.json")
    config = HiddenHeadConfig(sasrec_results=str(results), llm_sasrec_max_epochs=7)
    chosen = recipe(config)
    assert (chosen.max_len, chosen.hidden, chosen.epochs) == (100, 64, 7)
    with pytest.raises(UserInputError, match="not found"):
        recipe(HiddenHeadConfig(sasrec_results=str(tmp_path / "none.json")))
    with pytest.raises(UserInputError, match="set item_layers too"):
        HiddenHeadConfig(llm_sasrec=True)

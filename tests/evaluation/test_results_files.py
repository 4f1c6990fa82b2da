"""The committed rating results: every row names its model and figures, and exactly one
row per file is the model POST /rate serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "results"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*/rating.json")), ids=str)
def test_rating_rows_name_their_figures_and_the_shipped_model(path: Path) -> None:
    for split in json.loads(path.read_text()).values():
        rows = split["rows"]
        assert rows and all({"model", "MAE", "RMSE", "n"} <= set(row) for row in rows)
        assert all(row["n"] >= 1 and 0 < row["MAE"] <= row["RMSE"] for row in rows)
        shipped = [row["model"] for row in rows if row.get("shipped")]
        assert len(shipped) <= 1, shipped
        if path.parent.name == "ml-100k":  # the published rating model's dataset
            assert len(shipped) == 1 and "head" in shipped[0]


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*/r2rec.json")), ids=str)
def test_ranking_rows_carry_the_issue_columns_and_at_most_one_shipped_row(path: Path) -> None:
    rows = json.loads(path.read_text())
    columns = {"model", "HR@1", "HR@5", "NDCG@10", "n", "p_vs_sasrec", "p_vs_combiner"}
    assert rows and all(columns <= set(row) for row in rows)
    assert all(0 <= row["HR@1"] <= row["HR@5"] <= 1 and row["n"] >= 1 for row in rows)
    shipped = [row for row in rows if row.get("shipped")]
    assert len(shipped) <= 1, [row["model"] for row in shipped]
    for row in shipped:  # the served ranker is the fused one, measured on every test case
        assert "fused" in row["model"] and row["n"] == max(r["n"] for r in rows)

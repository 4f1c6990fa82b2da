"""training.ranking_report: each row is tested against SASRec and the combiner by position,
so two rows that happen to share a name keep their own p values."""

from __future__ import annotations

import numpy as np

from training.ranking_report import report_rows


def test_rows_with_the_same_name_keep_their_own_p_values() -> None:
    n = 60
    target = np.zeros(n, dtype=int)
    right = np.tile(np.arange(20, 0, -1.0), (n, 1))  # the target (index 0) first: a hit
    wrong = right[:, ::-1].copy()  # the target last: a miss
    sasrec = np.where(np.arange(n)[:, None] < 30, right, wrong)  # 30 hits
    named = [
        ("sasrec", sasrec),
        ("combiner", sasrec),
        ("fused", right),  # 60 hits: 30 more than SASRec
        ("fused", sasrec),  # the same name, SASRec's hits exactly
    ]
    rows = report_rows(named, target)
    assert [r["HR@1"] for r in rows] == [0.5, 0.5, 1.0, 0.5]
    assert rows[0]["p_vs_sasrec"] is None and rows[1]["p_vs_combiner"] is None
    assert rows[2]["p_vs_sasrec"] < 1e-6 and rows[2]["p_vs_combiner"] < 1e-6
    assert rows[3]["p_vs_sasrec"] == 1.0 and rows[3]["p_vs_combiner"] == 1.0

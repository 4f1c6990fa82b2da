"""The ranking results table: HR@1, HR@5, NDCG@10 per model, with paired tests.

Each row gets McNemar's exact p on per-case HR@1 against the rows named ``sasrec`` and
``combiner`` (when the table has them). Written as ``summary.json``, ``r2rec.json`` (the
rows) and ``r2rec.md`` (the table) in a run folder.

    rows = report_rows([("sasrec", s), ("combiner", c), ("fused", f)], target)
    write_report(Path("runs/x"), {"rows": rows}, rows)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from baselines.combiner import hits_at_1, metrics_row
from evaluation.significance import mcnemar_exact


def _p(a: np.ndarray, b: np.ndarray) -> float:
    return mcnemar_exact(a, b).p_value


REFS = ("sasrec", "combiner")  # the rows every other row is tested against


def report_rows(named: list[tuple[str, np.ndarray]], target: np.ndarray) -> list[dict[str, Any]]:
    """Metrics rows for each (name, scores) with McNemar p on HR@1 against the rows named
    ``sasrec`` and ``combiner`` (when present)."""
    hits = [hits_at_1(scores, target) for _, scores in named]
    refs = {ref: [i for i, (name, _) in enumerate(named) if name == ref][:1] for ref in REFS}
    rows = []
    for index, (name, scores) in enumerate(named):
        row: dict[str, Any] = metrics_row(name, scores, target)
        for ref, found in refs.items():
            row[f"p_vs_{ref}"] = (
                None if not found or found[0] == index else _p(hits[index], hits[found[0]])
            )
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| model | HR@1 | HR@5 | NDCG@10 | HR@1 stderr | n | p vs SASRec | p vs combiner |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:

        def fmt(v: Any) -> str:
            return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

        lines.append(
            f"| {r['model']} | {fmt(r['HR@1'])} | {fmt(r['HR@5'])} | {fmt(r['NDCG@10'])} | "
            f"{fmt(r['HR@1 stderr'])} | {r['n']} | {fmt(r['p_vs_sasrec'])} | "
            f"{fmt(r['p_vs_combiner'])} |"
        )
    return "\n".join(lines) + "\n"


def write_report(out: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "r2rec.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "r2rec.md").write_text(markdown(rows))

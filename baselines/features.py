"""Out-of-sample collaborative features: per-candidate scores from the classical rankers.

A *row set* is a set of 20-candidate cases plus the training log its feature models are
fitted on. Each row set is built so that no feature model ever saw a row's target:

* ``test`` and ``valid`` are the protocol's own case files (``evaluation.protocol``) and
  training logs (the test split's models never saw test targets, the valid split's never
  saw valid targets);
* ``train<k>`` (k >= 3) generalises the protocol one step further back: the target is
  each evaluated user's k-th interaction from the end, the history the up to 10 items
  before it, the candidates the target plus 19 items the user never interacted with
  (seeded from (seed, "train<k>", user id)); the feature models are fitted on every
  evaluated user's interactions strictly before that position (non-evaluated users
  contribute everything). So ``train3`` rows are for training a model on top of the
  features, ``valid`` for choosing its settings, ``test`` for the one final measurement.

Every row's (user, target) pair is absent from its fit log, and so are all of that user's
later interactions (``tests/baselines/test_features.py``).

    dataset = load_dataset("ml-100k")
    configs = tuned_overrides(Path("results/ml-100k/baselines.json"))
    feats = compute_features(dataset, "train3", configs)
    feats.scores.shape        # (n_rows, 20, 5): sasrec, itemknn, bpr, popularity, graph-fallback
    feats.save(path); FeatureSet.load(path)

Command line (what produced the feature files the combiner and the listwise LLM read):

    python -m baselines.features --dataset ml-100k --rowsets valid,test,train3 \
        --results results/ml-100k/baselines.json --out .r2rec/features/ml-100k
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from baselines import make_baseline
from evaluation.protocol import ProtocolConfig, cases_at, load_cases, log_before
from evaluation.ranker import Case
from recdata.schema import Dataset

log = logging.getLogger(__name__)

FEATURE_MODELS: tuple[str, ...] = ("sasrec", "itemknn", "bpr", "popularity", "graph-fallback")


def rowset_offset(rowset: str) -> int:
    """Position of a row set's target counted from the user's end (1 = last interaction)."""
    if rowset == "test":
        return 1
    if rowset == "valid":
        return 2
    if rowset.startswith("train") and rowset[5:].isdigit() and int(rowset[5:]) >= 3:
        return int(rowset[5:])
    raise ValueError(f"unknown row set {rowset!r}: use test, valid or train<k> with k >= 3")


def rowset_training_log(dataset: Dataset, rowset: str, min_interactions: int = 5) -> pd.DataFrame:
    """What the row set's feature models are fitted on: evaluated users' interactions
    strictly before the row set's target position, non-evaluated users' all. For ``test``
    and ``valid`` this equals ``evaluation.protocol.training_log``."""
    return log_before(dataset, rowset_offset(rowset), min_interactions)


def rowset_cases(
    dataset: Dataset, rowset: str, config: ProtocolConfig | None = None, root: Path | None = None
) -> list[Case]:
    """The row set's cases: the protocol's case files for test/valid, built for train<k>."""
    config = config or ProtocolConfig()
    offset = rowset_offset(rowset)
    if offset <= 2:
        return load_cases(dataset, "test" if offset == 1 else "valid", config, root)
    return cases_at(dataset, offset, rowset, config)


@dataclass
class FeatureSet:
    """Per-candidate feature scores for one row set: ``scores[i, j, f]`` is model
    ``names[f]``'s score for ``cases[i].candidates[j]`` (higher = better; raw, not
    normalised). ``seconds`` is each model's fit + rank time."""

    dataset: str
    rowset: str
    names: tuple[str, ...]
    cases: list[Case]
    scores: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    fit_log_rows: int = 0

    @property
    def target_index(self) -> np.ndarray:
        return np.array([c.target_index for c in self.cases], dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        return self.scores[:, :, self.names.index(name)]

    def head(self, n: int) -> FeatureSet:
        """The first ``n`` rows (all of them when n <= 0)."""
        if n <= 0 or n >= len(self.cases):
            return self
        return replace(self, cases=self.cases[:n], scores=self.scores[:n])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "dataset": self.dataset,
            "rowset": self.rowset,
            "names": list(self.names),
            "seconds": self.seconds,
            "fit_log_rows": self.fit_log_rows,
            "cases": [c.to_json() for c in self.cases],
        }
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, scores=self.scores, meta=np.array(json.dumps(meta)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        with np.load(path) as data:
            scores = data["scores"]
            meta = json.loads(str(data["meta"]))
        return cls(
            dataset=meta["dataset"],
            rowset=meta["rowset"],
            names=tuple(meta["names"]),
            cases=[Case.from_json(c) for c in meta["cases"]],
            scores=scores,
            seconds={k: float(v) for k, v in meta["seconds"].items()},
            fit_log_rows=int(meta["fit_log_rows"]),
        )


def tuned_overrides(results_json: Path) -> dict[str, dict[str, Any]]:
    """Each model's config as the baselines table recorded it (SASRec: the configuration
    its validation tuning chose, with the chosen epoch count), keyed by model name."""
    rows = json.loads(results_json.read_text())
    return {r["model"]: dict(r.get("config") or {}) for r in rows}


def compute_features(
    dataset: Dataset,
    rowset: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    models: Sequence[str] = FEATURE_MODELS,
    cases: list[Case] | None = None,
) -> FeatureSet:
    """Fit each model on the row set's training log and score the row set's cases."""
    overrides = overrides or {}
    cases = cases if cases is not None else rowset_cases(dataset, rowset)
    train = rowset_training_log(dataset, rowset)
    scores = np.zeros((len(cases), 20, len(models)), dtype=np.float64)
    seconds: dict[str, float] = {}
    for f, name in enumerate(models):
        start = time.perf_counter()
        ranker = make_baseline(name, **overrides.get(name, {}))
        ranker.fit(train, dataset.items)
        result = ranker.rank(cases)
        scores[:, :, f] = result.scores
        seconds[name] = time.perf_counter() - start
        log.info("%s %s %s: %.1f s", dataset.name, rowset, name, seconds[name])
    return FeatureSet(
        dataset=dataset.name,
        rowset=rowset,
        names=tuple(models),
        cases=cases,
        scores=scores,
        seconds=seconds,
        fit_log_rows=len(train),
    )


def feature_path(folder: Path, rowset: str) -> Path:
    return folder / f"{rowset}.npz"


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    from recdata import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--rowsets", default="valid,test,train3", help="comma-separated")
    parser.add_argument("--results", type=Path, help="baselines.json with the tuned configs")
    parser.add_argument("--out", type=Path, required=True, help="folder for <rowset>.npz")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    overrides = tuned_overrides(args.results) if args.results else {}
    for rowset in args.rowsets.split(","):
        path = feature_path(args.out, rowset)
        if path.exists():
            log.info("%s exists, skipped", path)
            continue
        feats = compute_features(dataset, rowset, overrides)
        feats.save(path)
        log.info("wrote %s (%d rows, %s)", path, len(feats.cases), feats.seconds)


if __name__ == "__main__":
    main()

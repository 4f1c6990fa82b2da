"""Fit the collaborative models on one log and save them as a bundle the service loads.

The five columns of ``baselines.features`` (SASRec, ItemKNN, BPR, popularity, graph
score) are what the non-LLM combiner and the LLM heads are fitted on top of. To score the
same columns at request time, the service loads a `reasoning.collaborative.
CollaborativeBundle`; this module makes one: it fits SASRec (the tuned config of
``results/<dataset>/baselines.json``), ItemKNN, BPR and popularity on a log, takes the
combiner weights from a combiner fitted on a feature row set, and saves the folder.

    bundle = fit_bundle(dataset.interactions, dataset.items, tuned, weights, meta={})
    bundle.save(Path(".r2rec/models/collaborative"))

Command line (the serving bundle: every interaction of the dataset; the combiner fitted
on the validation row set's features, as in ``results/<dataset>/r2rec.md``):

    python -m baselines.bundle --dataset ml-100k --results results/ml-100k/baselines.json \
        --features .r2rec/features/ml-100k --fit valid --out .r2rec/models/collaborative

``--rowset test`` fits on the test split's training log instead: the bundle then scores
test cases exactly as the offline test features do (for ``r2rec eval --fused``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from baselines import make_baseline
from baselines.bpr import BPRRanker
from baselines.combiner import ListwiseCombiner
from baselines.features import (
    FEATURE_MODELS,
    FeatureSet,
    feature_path,
    rowset_training_log,
    tuned_overrides,
)
from baselines.itemknn import ItemKNNRanker
from baselines.sasrec import SASRecRanker
from baselines.simple import PopularityRanker
from reasoning.collaborative import FEATURE_NAMES, CollaborativeBundle, SASRecPart

log = logging.getLogger(__name__)

assert FEATURE_MODELS == FEATURE_NAMES, "the offline features and the served columns differ"


def fit_bundle(
    train: pd.DataFrame,
    items: pd.DataFrame,
    overrides: dict[str, dict[str, Any]],
    weights: np.ndarray,
    meta: dict[str, Any],
) -> CollaborativeBundle:
    """Fit SASRec, ItemKNN, BPR and popularity on ``train`` with the configs of
    ``overrides`` (keyed by model name, as `baselines.features.tuned_overrides` gives)."""
    fitted: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in ("sasrec", "itemknn", "bpr", "popularity"):
        start = time.perf_counter()
        fitted[name] = make_baseline(name, **overrides.get(name, {}))
        fitted[name].fit(train, items)
        seconds[name] = time.perf_counter() - start
    sasrec: SASRecRanker = fitted["sasrec"]
    knn: ItemKNNRanker = fitted["itemknn"]
    bpr: BPRRanker = fitted["bpr"]
    popularity: PopularityRanker = fitted["popularity"]
    net, data = sasrec.fitted()
    catalog = data.catalog
    mf, bpr_catalog = bpr.fitted()
    if bpr_catalog.item_ids != catalog.item_ids or knn.catalog.item_ids != catalog.item_ids:
        raise AssertionError("the models' catalogs differ")
    return CollaborativeBundle(
        item_ids=catalog.item_ids,
        user_ids=bpr_catalog.user_ids,
        popularity=np.asarray([popularity.counts[i] for i in catalog.item_ids], np.float64),
        knn=knn.similarity,
        knn_window=knn.history_window,
        bpr_users=mf.user.weight.detach().numpy().copy(),
        bpr_items=mf.item.weight.detach().numpy().copy(),
        bpr_bias=mf.bias.weight.detach().numpy()[:, 0].copy(),
        sasrec=SASRecPart(
            net,
            {
                "hidden": sasrec.config.hidden,
                "blocks": sasrec.config.blocks,
                "heads": sasrec.config.heads,
                "max_len": sasrec.config.max_len,
            },
        ),
        weights=np.asarray(weights, dtype=np.float64),
        meta={**meta, "fit_log_rows": len(train), "fit_seconds": seconds},
    )


def combiner_weights(features: Path, rowset: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The combiner over all five columns, fitted (L2 by 5-fold CV) on ``rowset``'s
    feature file in ``features``; its weights and description."""
    path = feature_path(features, rowset)
    if not path.is_file():
        raise FileNotFoundError(f"no feature file {path}: run python -m baselines.features")
    feats = FeatureSet.load(path)
    if feats.names != FEATURE_NAMES:
        raise ValueError(f"{path} has columns {feats.names}, expected {FEATURE_NAMES}")
    combiner = ListwiseCombiner.fit_cv(feats.scores, feats.target_index, names=feats.names)
    return combiner.weights, {"rowset": rowset, "cases": len(feats.cases), **combiner.describe()}


def main(argv: Sequence[str] | None = None) -> int:
    from recdata import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--results", type=Path, required=True, help="baselines.json (configs)")
    parser.add_argument("--features", type=Path, required=True, help="folder of <rowset>.npz")
    parser.add_argument("--fit", default="valid", help="row set the combiner is fitted on")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    parser.add_argument(
        "--rowset",
        default=None,
        help="fit on this row set's training log (test: to evaluate the fused ranker on the "
        "test cases with `r2rec eval --fused`); default: every interaction, for serving",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        weights, combiner = combiner_weights(args.features, args.fit)
        dataset = load_dataset(args.dataset)
        overrides = tuned_overrides(args.results)
        fit_log = (
            dataset.interactions
            if args.rowset is None
            else rowset_training_log(dataset, args.rowset)
        )
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    meta = {"dataset": dataset.name, "combiner": combiner, "fit_log": args.rowset or "all"}
    bundle = fit_bundle(fit_log, dataset.items, overrides, weights, meta)
    bundle.save(args.out)
    log.info("bundle written to %s (%s)", args.out, bundle.meta["fit_seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The non-LLM combiner: a listwise linear model over the collaborative features.

Each case's per-candidate feature scores (``baselines.features.FeatureSet``: sasrec,
itemknn, bpr, popularity, graph-fallback) are z-scored within the case, per feature; a
candidate's score is ``w . z``, and ``w`` maximises the listwise likelihood (softmax over
the 20 candidates) of the targets, with an L2 penalty ``l2 * |w|^2`` per case. ``l2`` is
chosen by 5-fold cross-validation (cross-entropy) on the fit rows only, so a combiner
fitted on the validation cases has seen nothing of the test split.

    combiner = ListwiseCombiner.fit_cv(valid.scores, valid.target_index)
    scores = combiner.score(test.scores)       # (n_test, 20)

Command line: fit on one row set, score another, print the metrics beside SASRec's with
McNemar's test on HR@1 (``evaluation.significance``):

    python -m baselines.combiner --features .r2rec/features/ml-100k --fit valid --score test
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from evaluation.metrics import summarise, target_ranks
from evaluation.significance import mcnemar_exact
from reasoning.collaborative import zscore_per_case

L2_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _loss_and_grad(
    w: np.ndarray, z: np.ndarray, target: np.ndarray, l2: float, offset: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    logits = z @ w  # (n, 20)
    if offset is not None:
        logits = logits + offset
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(z))
    nll = -np.log(p[rows, target] + 1e-300).mean()
    onehot = np.zeros_like(p)
    onehot[rows, target] = 1.0
    grad = np.einsum("nc,ncf->f", p - onehot, z) / len(z)
    return float(nll + l2 * w @ w), grad + 2 * l2 * w


def fit_linear_listwise(
    z: np.ndarray, target: np.ndarray, l2: float, offset: np.ndarray | None = None
) -> np.ndarray:
    """Weights w minimising the listwise cross-entropy of ``offset + z @ w`` plus
    ``l2 * |w|^2``; ``z`` is (n, 20, f), ``offset`` (n, 20) fixed scores (or none).

    >>> z = np.zeros((2, 20, 1)); z[:, 0, 0] = 1.0
    >>> bool(fit_linear_listwise(z, np.array([0, 0]), l2=0.01)[0] > 0)
    True
    """
    w0 = np.zeros(z.shape[2])
    res = minimize(_loss_and_grad, w0, args=(z, target, l2, offset), jac=True, method="L-BFGS-B")
    return np.asarray(res.x)


def listwise_nll(scores: np.ndarray, target: np.ndarray) -> float:
    """Mean cross-entropy of the targets under a softmax over each case's scores."""
    s = scores - scores.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(s)), target].mean())


@dataclass
class ListwiseCombiner:
    weights: np.ndarray  # one weight per feature, applied to the per-case z-scores
    l2: float
    names: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls, scores: np.ndarray, target: np.ndarray, l2: float = 1e-3, names: Sequence[str] = ()
    ) -> ListwiseCombiner:
        weights = fit_linear_listwise(zscore_per_case(scores), target, l2)
        return cls(weights=weights, l2=l2, names=tuple(names))

    @classmethod
    def fit_cv(
        cls,
        scores: np.ndarray,
        target: np.ndarray,
        grid: Sequence[float] = L2_GRID,
        folds: int = 5,
        seed: int = 0,
        names: Sequence[str] = (),
    ) -> ListwiseCombiner:
        """Fit with the ``l2`` of ``grid`` whose k-fold held-out cross-entropy is lowest."""
        fold = np.random.default_rng(seed).permutation(len(scores)) % folds
        best: tuple[float, float] | None = None
        for l2 in grid:
            losses = []
            for k in range(folds):
                part = cls.fit(scores[fold != k], target[fold != k], l2)
                losses.append(listwise_nll(part.score(scores[fold == k]), target[fold == k]))
            mean = float(np.mean(losses))
            if best is None or mean < best[0]:
                best = (mean, l2)
        assert best is not None
        return cls.fit(scores, target, best[1], names)

    def score(self, scores: np.ndarray) -> np.ndarray:
        """Per-candidate combined scores, (n, 20)."""
        return np.asarray(zscore_per_case(scores) @ self.weights)

    def describe(self) -> dict[str, object]:
        names = self.names or tuple(f"f{i}" for i in range(len(self.weights)))
        return {"l2": self.l2, "weights": dict(zip(names, map(float, self.weights), strict=True))}


def metrics_row(name: str, scores: np.ndarray, target: np.ndarray) -> dict[str, float | str]:
    ranks = target_ranks(scores, target)
    m = summarise(ranks)
    return {
        "model": name,
        "HR@1": m["HR@1"],
        "HR@5": m["HR@5"],
        "NDCG@10": m["NDCG@10"],
        "HR@1 stderr": m["HR@1 stderr"],
        "n": len(ranks),
    }


def hits_at_1(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.asarray(target_ranks(scores, target) == 0)


def main(argv: Sequence[str] | None = None) -> None:
    from baselines.features import FeatureSet, feature_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path, required=True, help="folder of <rowset>.npz")
    parser.add_argument("--fit", default="valid", help="row set the weights are fitted on")
    parser.add_argument("--score", default="test", help="row set that is scored")
    args = parser.parse_args(argv)
    fit = FeatureSet.load(feature_path(args.features, args.fit))
    test = FeatureSet.load(feature_path(args.features, args.score))
    combiner = ListwiseCombiner.fit_cv(fit.scores, fit.target_index, names=fit.names)
    combined = combiner.score(test.scores)
    target = test.target_index
    sasrec = test.column("sasrec")
    rows = [metrics_row(n, test.column(n), target) for n in test.names]
    rows.append(metrics_row("combiner", combined, target))
    test_result = mcnemar_exact(hits_at_1(combined, target), hits_at_1(sasrec, target))
    out = {
        "fit": args.fit,
        "score": args.score,
        "combiner": combiner.describe(),
        "rows": rows,
        "combiner_vs_sasrec": {
            "combiner_only": test_result.a_only,
            "sasrec_only": test_result.b_only,
            "p": test_result.p_value,
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Valid-only probe (ML-100K): does one head on all four cached views of a candidate line
(layers 10 and 20, last token and mean, each standardised, then one PCA) lower the fused
valid NLL below session 14's single-view head (1.4555)?

Reads the cached features (.r2rec/features/ml-100k) and LLM states
(.r2rec/runs/hidden-ml100k, `r2rec train hidden-head`); prints one line per setting, then
the best. Never touches test. Run: .venv/bin/python scripts/probe_head_views.py
"""

import itertools
from pathlib import Path

import numpy as np

from baselines.combiner import ListwiseCombiner, fit_linear_listwise, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from reasoning.compact import unit_rms

F = ".r2rec/features/ml-100k"
H = ".r2rec/runs/hidden-ml100k"
TRAIN = ["train3", "train4", "train5"]
NAMES = ("sasrec", "itemknn", "bpr", "popularity", "graph-fallback")


def load(names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    feats = [FeatureSet.load(Path(F) / f"{n}.npz") for n in names]
    states = np.concatenate([np.load(f"{H}/hidden_{n}.npz")["states"] for n in names])
    scores = np.concatenate([f.scores for f in feats])
    return scores, states, np.concatenate([f.target_index for f in feats])


def views(states: np.ndarray, scale: str) -> np.ndarray:
    """(n, 20, 4 * d): the four views, each centred on its case's mean."""
    parts = []
    for layer, pooling in itertools.product(range(states.shape[2]), range(states.shape[3])):
        x = states[:, :, layer, pooling].astype(np.float64)
        x = unit_rms(x) if scale == "rms" else x
        parts.append(x - x.mean(axis=1, keepdims=True))
    return np.concatenate(parts, axis=2)


Xtr, Str, ytr = load(TRAIN)
Xva, Sva, yva = load(["valid"])
base = ListwiseCombiner.fit_cv(Xtr, ytr, names=NAMES)
btr, bva = base.score(Xtr), base.score(Xva)
print(f"base valid nll {listwise_nll(bva, yva):.4f} HR@1 {hits_at_1(bva, yva).mean():.4f}")
best = None
for scale in ("raw", "rms"):
    vtr, vva = views(Str, scale), views(Sva, scale)
    flat = vtr.reshape(-1, vtr.shape[2])
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    _, _, vt = np.linalg.svd(((flat - mu) / sd)[::4], full_matrices=False)
    for k in (32, 64, 128):
        basis = vt[:k].T / np.sqrt(k)
        ztr, zva = ((vtr - mu) / sd) @ basis, ((vva - mu) / sd) @ basis
        for l2 in (1e-3, 1e-2, 1e-1):
            w = fit_linear_listwise(ztr, ytr, l2, offset=btr)
            fused = bva + zva @ w
            nll, hr = listwise_nll(fused, yva), hits_at_1(fused, yva).mean()
            print(f"{scale} pca {k:3d} l2 {l2:g}: valid nll {nll:.4f} HR@1 {hr:.4f}", flush=True)
            if best is None or nll < best[0]:
                best = (nll, scale, k, l2, hr)
print("best", best)

"""Valid-only probe (ML-100K): does letting the LLM state modulate the collaborative
scores (state x feature interactions) lower the fused valid NLL below 1.4555?

Reads the cached features (.r2rec/features/ml-100k) and LLM states
(.r2rec/runs/hidden-ml100k, `r2rec train hidden-head`); prints one line per setting, then
the best. Never touches test. Run: .venv/bin/python scripts/probe_head_interactions.py
"""

import itertools
import json
from typing import Any

import numpy as np

from baselines.combiner import ListwiseCombiner, fit_linear_listwise, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from reasoning.collaborative import zscore_per_case

F = ".r2rec/features/ml-100k"
H = ".r2rec/runs/hidden-ml100k"
train_sets = ["train3", "train4", "train5"]


def load(names):
    fs = [FeatureSet.load(f"{F}/{n}.npz") for n in names]
    st = np.concatenate([np.load(f"{H}/hidden_{n}.npz")["states"] for n in names])
    return np.concatenate([f.scores for f in fs]), st, np.concatenate([f.target_index for f in fs])


Xtr, Str, ytr = load(train_sets)
Xva, Sva, yva = load(["valid"])
base = ListwiseCombiner.fit_cv(
    Xtr, ytr, names=("sasrec", "itemknn", "bpr", "popularity", "graph-fallback")
)
btr, bva = base.score(Xtr), base.score(Xva)
print("base valid nll", listwise_nll(bva, yva), "HR@1", hits_at_1(bva, yva).mean())


def design(S, X, li, pi, mu, sd, basis, inter):
    x = S[:, :, li, pi].astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    p = ((x - mu) / sd) @ basis  # (n,20,k)
    cols = [p]
    if inter:
        z = zscore_per_case(X)  # (n,20,5)
        for j in inter:
            cols.append(p * z[:, :, j : j + 1])
    return np.concatenate(cols, axis=2)


results: list[dict[str, Any]] = []
for li, pi, k in itertools.product([0, 1], [0, 1], [16, 32, 64]):
    x = Str[:, :, li, pi].astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    flat = x.reshape(-1, x.shape[2])
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    _, _, vt = np.linalg.svd(((flat - mu) / sd)[::4], full_matrices=False)
    basis = vt[:k].T / np.sqrt(k)
    for inter in [(), (0,), (0, 1, 2)]:
        ztr = design(Str, Xtr, li, pi, mu, sd, basis, inter)
        zva = design(Sva, Xva, li, pi, mu, sd, basis, inter)
        for l2 in [0.001, 0.01, 0.1]:
            w = fit_linear_listwise(ztr, ytr, l2, offset=btr)
            s = bva + zva @ w
            r = dict(
                layer=[10, 20][li],
                pool=["last", "mean"][pi],
                k=k,
                inter=inter,
                l2=l2,
                nll=round(listwise_nll(s, yva), 4),
                hr=round(float(hits_at_1(s, yva).mean()), 4),
            )
            results.append(r)
            print(r, flush=True)
best = sorted(results, key=lambda r: r["nll"])[:8]
print("BEST", json.dumps(best, indent=1))

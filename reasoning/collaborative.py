"""Collaborative scores at request time: SASRec, ItemKNN, BPR, popularity and the graph
score of each candidate, fused by the listwise combiner.

Offline, ``baselines.features`` fits these models once per row set and scores its cases;
the combiner (``baselines.combiner``) weighs the five per-case z-scored columns. The
service may not import ``baselines``, so ``python -m baselines.bundle`` fits the same
models on one log and saves what scoring needs in one folder, and this module loads that
folder and scores one request exactly as the offline features do (a test holds the two
to 1e-5 on a real dataset):

    bundle = CollaborativeBundle.load(".r2rec/models/collaborative")
    columns = bundle.features(user_id, sequence, candidates, graph_scores)  # (k, 5)
    scores = bundle.score(columns)                                         # (k,)

``sequence`` is the user's item ids, oldest first (the graph store's history, up to
``bundle.history_needed`` items); ``graph_scores`` is the graph store's co-interaction
score per candidate (``GraphStore.candidates``), the fallback scorer's own column.

Folder layout (all plain numpy / torch files, no pickles):
``manifest.json`` (names, configs, combiner weights), ``arrays.npz`` (item and user ids,
ItemKNN neighbours as CSR arrays, BPR factors, popularity counts) and ``sasrec.pt`` (the
SASRec network's state dict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

FEATURE_NAMES: tuple[str, ...] = ("sasrec", "itemknn", "bpr", "popularity", "graph-fallback")
MANIFEST = "manifest.json"
FORMAT = 1


def zscore_per_case(scores: np.ndarray) -> np.ndarray:
    """Standardise each feature within each case (mean 0, sd 1 over the candidates); a
    feature constant within a case becomes 0 there. ``scores``: (..., candidates, features).

    >>> zscore_per_case(np.array([[[1.0, 5.0], [3.0, 5.0]]])).tolist()
    [[[-1.0, 0.0], [1.0, 0.0]]]
    """
    x = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mean = x.mean(axis=-2, keepdims=True)
    sd = x.std(axis=-2, keepdims=True)
    return np.where(sd > 1e-12, (x - mean) / np.where(sd > 1e-12, sd, 1.0), 0.0)


def fill_unknown(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Give candidates outside the catalog (index -1) a score one below the lowest known
    one in their row (0 when the row knows none). ``scores``, ``candidates``: (n, k).

    >>> fill_unknown(np.array([[2.0, 9.0, 5.0]]), np.array([[4, -1, 7]])).tolist()
    [[2.0, 1.0, 5.0]]
    """
    unknown = candidates < 0
    if not unknown.any():
        return scores
    out = scores.astype(np.float64, copy=True)
    known_min = np.where(unknown, np.inf, out).min(axis=1)
    floor = np.where(np.isfinite(known_min), known_min - 1.0, 0.0)
    out[unknown] = np.broadcast_to(floor[:, None], out.shape)[unknown]
    return out


def distinct_recent(sequence: np.ndarray, window: int | None) -> np.ndarray:
    """The distinct item indices among the ``window`` newest of ``sequence`` (None = all),
    sorted: the history an ItemKNN score sums over."""
    return np.unique(sequence if window is None else sequence[-window:])


@dataclass
class SASRecPart:
    """The SASRec network and the popularity it falls back on for an empty sequence."""

    net: Any  # reasoning.sasrec_net.SASRecNet, in eval mode
    config: dict[str, Any]

    def score(
        self, sequences: list[np.ndarray], candidates: np.ndarray, popularity: np.ndarray
    ) -> np.ndarray:
        """(n, k) scores of known candidate indices (n, k) after each item sequence."""
        from reasoning.sasrec_net import next_item_scores

        return next_item_scores(self.net, sequences, candidates, popularity)


@dataclass
class CollaborativeBundle:
    """Everything the five collaborative columns and the combiner need, fitted on one log."""

    item_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    popularity: np.ndarray  # (items,) interaction counts in the fit log
    knn: sp.csr_matrix  # (items, items) shrunk-cosine neighbours
    knn_window: int | None  # newest distinct items an ItemKNN score sums over
    bpr_users: np.ndarray  # (users, dim)
    bpr_items: np.ndarray  # (items, dim)
    bpr_bias: np.ndarray  # (items,)
    sasrec: SASRecPart
    weights: np.ndarray  # combiner weights, one per FEATURE_NAMES column
    meta: dict[str, Any]  # what was fitted on what (dataset, log rows, seconds, configs)

    def __post_init__(self) -> None:
        self.item_index = {item: n for n, item in enumerate(self.item_ids)}
        self.user_index = {user: n for n, user in enumerate(self.user_ids)}

    @property
    def history_needed(self) -> int:
        """How many of a user's newest items the scores read (SASRec's max_len)."""
        return int(self.sasrec.net.max_len)

    # ------------------------------------------------------------------ scoring
    def features(
        self,
        user_id: str,
        sequence: list[str],
        candidates: list[str],
        graph_scores: dict[str, float],
    ) -> np.ndarray:
        """(len(candidates), 5) raw scores in FEATURE_NAMES order. Items the bundle never
        saw are dropped from ``sequence``; a candidate it never saw scores below every
        known one in each column (`fill_unknown`, as offline)."""
        seq = np.asarray([self.item_index[i] for i in sequence if i in self.item_index], np.int64)
        cand = np.asarray([self.item_index.get(c, -1) for c in candidates], np.int64)
        known = cand >= 0
        safe = np.maximum(cand, 0)
        out = np.zeros((len(candidates), len(FEATURE_NAMES)))
        out[:, 0] = self.sasrec.score([seq], safe[None, :], self.popularity)[0]
        recent = distinct_recent(seq, self.knn_window)
        if len(recent):
            out[:, 1] = np.asarray(self.knn[recent][:, safe].sum(axis=0)).ravel()
        out[:, 2] = self._bpr(user_id, seq, safe)
        out[:, 3] = self.popularity[safe]
        out[:, :4] = fill_unknown(out[:, :4].T, np.broadcast_to(cand, (4, len(cand)))).T
        out[:, 4] = [
            graph_scores.get(c, 0.0) if k else -1.0 for c, k in zip(candidates, known, strict=True)
        ]
        return out

    def _bpr(self, user_id: str, seq: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Dot product with the user's factors; an unknown user's are the mean of the
        history items' factors; with no history either, popularity."""
        user = self.user_index.get(user_id)
        if user is not None:
            vec = self.bpr_users[user]
        elif len(seq):
            vec = self.bpr_items[seq].mean(axis=0)
        else:
            return np.asarray(self.popularity[cand], dtype=np.float64)
        return np.asarray(self.bpr_items[cand] @ vec + self.bpr_bias[cand], dtype=np.float64)

    def score(self, features: np.ndarray) -> np.ndarray:
        """The combiner's score per candidate: weights . per-case z-scores."""
        return np.asarray(zscore_per_case(features) @ self.weights)

    # ------------------------------------------------------------------ files
    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            folder / "arrays.npz",
            item_ids=np.asarray(self.item_ids, dtype=str),
            user_ids=np.asarray(self.user_ids, dtype=str),
            popularity=self.popularity,
            knn_data=self.knn.data,
            knn_indices=self.knn.indices,
            knn_indptr=self.knn.indptr,
            bpr_users=self.bpr_users,
            bpr_items=self.bpr_items,
            bpr_bias=self.bpr_bias,
        )
        torch.save(self.sasrec.net.state_dict(), folder / "sasrec.pt")
        manifest = {
            "format": FORMAT,
            "features": list(FEATURE_NAMES),
            "weights": [float(w) for w in self.weights],
            "knn_window": self.knn_window,
            "sasrec": self.sasrec.config,
            **self.meta,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> CollaborativeBundle:
        import torch

        from reasoning.sasrec_net import SASRecNet

        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("features") != list(FEATURE_NAMES):
            raise ValueError(f"{folder}: not a collaborative bundle of format {FORMAT}")
        arrays = np.load(folder / "arrays.npz")
        n_items = len(arrays["item_ids"])
        cfg = manifest["sasrec"]
        net = SASRecNet(n_items, cfg["hidden"], cfg["blocks"], cfg["heads"], 0.0, cfg["max_len"])
        net.load_state_dict(torch.load(folder / "sasrec.pt", weights_only=True))
        knn = sp.csr_matrix(
            (arrays["knn_data"], arrays["knn_indices"], arrays["knn_indptr"]),
            shape=(n_items, n_items),
        )
        meta = {k: v for k, v in manifest.items() if k not in _MANIFEST_FIELDS}
        return cls(
            item_ids=tuple(arrays["item_ids"].tolist()),
            user_ids=tuple(arrays["user_ids"].tolist()),
            popularity=arrays["popularity"],
            knn=knn,
            knn_window=manifest["knn_window"],
            bpr_users=arrays["bpr_users"],
            bpr_items=arrays["bpr_items"],
            bpr_bias=arrays["bpr_bias"],
            sasrec=SASRecPart(net.eval(), cfg),
            weights=np.asarray(manifest["weights"], dtype=np.float64),
            meta=meta,
        )


_MANIFEST_FIELDS = ("format", "features", "weights", "knn_window", "sasrec")

"""BPR-MF: matrix factorisation trained with the Bayesian Personalised Ranking loss (torch, CPU).

score(u, i) = <p_u, q_i> + b_i. Each epoch visits every (user, item) training pair once
in a seeded random order with one uniformly sampled negative item the user never
interacted with, minimising ``-log sigmoid(x_ui - x_uj)`` plus L2 ``weight_decay`` on
the embeddings in the batch.

Users are known from the train log (``case.user_id``). An unknown user is represented by
the mean embedding of the known items in ``case.history``; with no known history items
the ranker falls back to popularity (train-log interaction counts).

    ranker = BPRRanker(BPRConfig(dim=64, epochs=30, seed=0)); ranker.fit(train, items)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from baselines.common import (
    Catalog,
    NotFittedError,
    PositiveSet,
    empty_result,
)
from evaluation.ranker import Case, RankResult
from reasoning.collaborative import fill_unknown


@dataclass
class BPRConfig:
    dim: int = 64  # embedding size of users and items
    epochs: int = 30  # passes over all training pairs
    batch_size: int = 1024  # (user, positive, negative) triples per step
    lr: float = 5e-3  # Adam learning rate
    weight_decay: float = 1e-4  # L2 coefficient on the batch's user/item embeddings and biases
    seed: int = 0  # seeds init (torch) and pair order / negative sampling (numpy)


class _MF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.bias.weight)

    def pair_scores(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return (self.user(u) * self.item(i)).sum(-1) + self.bias(i).squeeze(-1)


class BPRRanker:
    """BPR matrix factorisation; popularity / mean-history fallback for unknown users."""

    name = "bpr"
    generative = False

    def __init__(self, config: BPRConfig | None = None) -> None:
        self.config = config or BPRConfig()
        if self.config.dim < 1 or self.config.epochs < 1 or self.config.batch_size < 1:
            raise ValueError("dim, epochs and batch_size must be >= 1")
        self._catalog: Catalog | None = None
        self._model: _MF | None = None
        self._popularity = np.zeros(0)
        self.fit_seconds = 0.0
        self.epoch_losses: list[float] = []

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        start = time.perf_counter()
        cfg = self.config
        catalog = Catalog.build(train, items)
        users, item_idx = catalog.interaction_indices(train)
        pairs = np.unique(np.stack([users, item_idx], axis=1), axis=0)
        positives = PositiveSet(pairs[:, 0], pairs[:, 1], catalog.n_items)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        model = _MF(catalog.n_users, catalog.n_items, cfg.dim)
        optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        self.epoch_losses = []
        for _ in range(cfg.epochs):
            order = rng.permutation(len(pairs))
            total = 0.0
            for begin in range(0, len(order), cfg.batch_size):
                batch = pairs[order[begin : begin + cfg.batch_size]]
                neg = positives.sample_negatives(rng, batch[:, 0])
                u = torch.from_numpy(batch[:, 0])
                i = torch.from_numpy(batch[:, 1])
                j = torch.from_numpy(neg)
                diff = model.pair_scores(u, i) - model.pair_scores(u, j)
                reg = (
                    model.user(u).pow(2).sum(-1)
                    + model.item(i).pow(2).sum(-1)
                    + model.item(j).pow(2).sum(-1)
                    + model.bias(i).pow(2).squeeze(-1)
                    + model.bias(j).pow(2).squeeze(-1)
                )
                loss = -nn.functional.logsigmoid(diff).mean() + cfg.weight_decay * reg.mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            self.epoch_losses.append(total / len(pairs))
        model.eval()
        self._model = model
        self._popularity = np.bincount(item_idx, minlength=catalog.n_items).astype(np.float64)
        self._catalog = catalog
        self.fit_seconds = time.perf_counter() - start

    def fitted(self) -> tuple[_MF, Catalog]:
        """The trained factors (``user``, ``item``, ``bias`` embeddings) and their catalog."""
        if self._catalog is None or self._model is None:
            raise NotFittedError(self.name)
        return self._model, self._catalog

    def rank(self, cases: Sequence[Case]) -> RankResult:
        if self._catalog is None or self._model is None:
            raise NotFittedError(self.name)
        if not cases:
            return empty_result()
        catalog, model = self._catalog, self._model
        cand = catalog.candidate_indices(cases)
        safe = torch.from_numpy(np.maximum(cand, 0))
        with torch.no_grad():
            item_vecs = model.item.weight[safe]  # (n, k, dim)
            bias = model.bias.weight[safe].squeeze(-1).double().numpy()
            user_vecs = torch.zeros(len(cases), model.user.weight.shape[1])
            cold: list[int] = []
            for row, case in enumerate(cases):
                user = catalog.user_index.get(case.user_id)
                if user is not None:
                    user_vecs[row] = model.user.weight[user]
                    continue
                hist = catalog.items_to_indices(case.history)
                if len(hist):
                    user_vecs[row] = model.item.weight[torch.from_numpy(hist)].mean(0)
                else:
                    cold.append(row)
            scores = torch.einsum("nkd,nd->nk", item_vecs, user_vecs).double().numpy() + bias
        for row in cold:
            scores[row] = self._popularity[np.maximum(cand[row], 0)]
        return RankResult.all_valid(fill_unknown(scores, cand))

"""SASRec ranker: training (BCE, one sampled negative per position), tuning, scoring.

Training follows the original recipe: each user's training sequence (last ``max_len + 1``
items) gives inputs ``s[:-1]`` and next-item positives ``s[1:]``; every real position gets
one negative drawn uniformly from items the user never interacted with; the loss is
binary cross-entropy on the positive and negative logits (Adam, betas 0.9/0.98).

A case is scored with the user's whole training sequence merged with ``case.history``
(``baselines.common.case_sequence``; the last ``max_len`` items): the final hidden state
dotted with each candidate's item embedding.

Tuning (the evaluator calls it before `fit` when a ranker has it):

    ranker = SASRecRanker()                       # default grid, see SASRecGrid
    best = ranker.tune(valid_train_log, valid_cases, items)
    ranker.fit(test_train_log, items)             # trains `best` for its chosen epochs
    ranker.rank(test_cases)

`tune` trains each grid point on the validation-split log with early stopping on NDCG@10
(HR@1 breaks ties) of the validation cases, computed with ``evaluation.metrics``; the
best point, with ``epochs`` set to its best epoch, becomes ``ranker.config``.
``ranker.trials`` keeps every grid point's result.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from baselines.common import (
    Catalog,
    NotFittedError,
    PositiveSet,
    case_sequence,
    empty_result,
    user_sequences,
)
from evaluation.metrics import hit_ratio, ndcg, target_ranks
from evaluation.ranker import Case, RankResult
from reasoning.collaborative import fill_unknown
from reasoning.sasrec_net import SASRecNet, left_pad, next_item_scores

log = logging.getLogger(__name__)


@dataclass
class SASRecConfig:
    hidden: int = 64  # embedding / hidden size
    blocks: int = 2  # transformer blocks
    heads: int = 1  # attention heads (hidden must be divisible by it)
    dropout: float = 0.2  # dropout on embeddings, attention, residuals and feed-forward
    max_len: int = 200  # most recent items a sequence keeps
    lr: float = 1e-3  # Adam learning rate
    l2_emb: float = 0.0  # L2 penalty on the item embeddings of each batch
    batch_size: int = 128  # user sequences per step
    epochs: int = 200  # epochs for `fit`; tune() caps its runs here and sets the best epoch
    eval_every: int = 5  # epochs between validation evaluations while tuning
    patience: int = 3  # validation evaluations without improvement before stopping
    min_epochs: int = 40  # never stop early before this epoch (high dropout starts slowly)
    seed: int = 0  # seeds init, dropout (torch) and batching/negatives (numpy)


@dataclass
class SASRecGrid:
    """Values tried by `SASRecRanker.tune`: the product of the axes."""

    hidden: tuple[int, ...] = (64,)
    blocks: tuple[int, ...] = (2,)
    dropout: tuple[float, ...] = (0.2, 0.5)
    lr: tuple[float, ...] = (1e-3,)
    max_len: tuple[int, ...] = (50, 100)  # 200 costs ~7 s/epoch on 2 cores (ML-100K)

    def points(self, base: SASRecConfig) -> list[SASRecConfig]:
        axes = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, values in axes.items():
            if not values:
                raise ValueError(f"grid axis {name!r} is empty")
        return [
            replace(base, **dict(zip(axes, combo, strict=True)))
            for combo in itertools.product(*axes.values())
        ]

    def pinned(self, **values: Any) -> SASRecGrid:
        """This grid with the named axes fixed to one value each (other names ignored)."""
        names = {f.name for f in fields(self)}
        pins: dict[str, Any] = {k: (v,) for k, v in values.items() if k in names}
        return replace(self, **pins)


@dataclass
class TrialResult:
    config: SASRecConfig
    best_epoch: int
    ndcg10: float
    hr1: float
    epochs_run: int
    seconds: float
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, NDCG@10, HR@1)


class _Data:
    """Training log in model indices (0 = padding, item index + 1)."""

    def __init__(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        self.catalog = Catalog.build(train, items)
        self.seqs = user_sequences(train, self.catalog)
        users, item_idx = self.catalog.interaction_indices(train)
        self.positives = PositiveSet(users, item_idx + 1, self.catalog.n_items + 1)
        self.popularity = np.bincount(item_idx, minlength=self.catalog.n_items).astype(float)
        self.trainable = np.array([u for u, s in enumerate(self.seqs) if len(s) >= 2], np.int64)


@dataclass(frozen=True)
class ItemReadings:
    """Fixed vectors per item id that the item embeddings add a learned projection of
    (`reasoning.sasrec_net.SASRecNet`'s ``readings``): the LLM's reading of each item."""

    item_ids: tuple[str, ...]
    vectors: np.ndarray  # (len(item_ids), d)

    def aligned(self, catalog: Catalog) -> torch.Tensor:
        """(n_items + 1, d) rows in model-index order; padding and items without a
        reading are zero."""
        row = {item: n for n, item in enumerate(self.item_ids)}
        out = np.zeros((catalog.n_items + 1, self.vectors.shape[1]), np.float32)
        for index, item in enumerate(catalog.item_ids):
            if item in row:
                out[index + 1] = self.vectors[row[item]]
        return torch.from_numpy(out)


class SASRecRanker:
    """Self-attentive sequential recommendation, tuned on the validation split; with
    ``readings``, its item embeddings also read the LLM's item vectors."""

    name = "sasrec"
    generative = False

    def __init__(
        self,
        config: SASRecConfig | None = None,
        grid: SASRecGrid | None = None,
        readings: ItemReadings | None = None,
    ) -> None:
        self.config = config or SASRecConfig()
        self.grid = grid or SASRecGrid()
        self.readings = readings
        self.trials: list[TrialResult] = []
        self.epoch_losses: list[float] = []
        self.fit_seconds = 0.0
        self._data: _Data | None = None
        self._net: SASRecNet | None = None

    # ------------------------------------------------------------------ public API
    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        start = time.perf_counter()
        data = _Data(train, items)
        self._net, _ = self._train(data, self.config, None)
        self._data = data
        self.fit_seconds = time.perf_counter() - start

    def tune(self, train: pd.DataFrame, cases: Sequence[Case], items: pd.DataFrame) -> SASRecConfig:
        """Pick the grid point (and epoch count) with the best validation NDCG@10."""
        if not cases:
            raise ValueError("tune() needs validation cases")
        data = _Data(train, items)
        self.trials = []
        nets = []
        for point in self.grid.points(self.config):
            start = time.perf_counter()
            net, trial = self._train(data, point, cases)
            assert trial is not None
            trial.seconds = time.perf_counter() - start
            self.trials.append(trial)
            nets.append(net)
        best = max(
            range(len(self.trials)), key=lambda t: (self.trials[t].ndcg10, self.trials[t].hr1)
        )
        self.config = replace(self.trials[best].config, epochs=self.trials[best].best_epoch)
        # the best point's net at its best epoch: what `fit` on this log would train
        self._net, self._data = nets[best], data
        return self.config

    def fitted(self) -> tuple[SASRecNet, _Data]:
        """The trained network (eval mode) and the data it was fitted on."""
        if self._data is None or self._net is None:
            raise NotFittedError(self.name)
        return self._net, self._data

    def rank(self, cases: Sequence[Case]) -> RankResult:
        if self._data is None or self._net is None:
            raise NotFittedError(self.name)
        if not cases:
            return empty_result()
        scores, cand = _score(self._net, self._data, cases)
        return RankResult.all_valid(fill_unknown(scores, cand))

    # ------------------------------------------------------------------ training
    def _train(
        self, data: _Data, cfg: SASRecConfig, valid: Sequence[Case] | None
    ) -> tuple[SASRecNet, TrialResult | None]:
        """Train ``cfg``; with ``valid`` cases, early-stop on them and restore the best weights."""
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        readings = None if self.readings is None else self.readings.aligned(data.catalog)
        net = SASRecNet(
            data.catalog.n_items,
            cfg.hidden,
            cfg.blocks,
            cfg.heads,
            cfg.dropout,
            cfg.max_len,
            readings,
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        best = (-1.0, -1.0)
        best_epoch, best_state, stale = 0, copy.deepcopy(net.state_dict()), 0
        self.epoch_losses = []
        curve: list[tuple[int, float, float]] = []
        epoch = 0
        for epoch in range(1, cfg.epochs + 1):
            net.train()
            total, count = 0.0, 0
            order = rng.permutation(data.trainable)
            for begin in range(0, len(order), cfg.batch_size):
                users = order[begin : begin + cfg.batch_size]
                full = [data.seqs[u] + 1 for u in users]
                inputs = left_pad([s[:-1] for s in full], cfg.max_len)
                pos = left_pad([s[1:] for s in full], cfg.max_len)
                neg = data.positives.sample_negatives(
                    rng, np.repeat(users[:, None], cfg.max_len, axis=1), low=1
                )
                mask = torch.from_numpy(pos > 0)
                hidden = net(torch.from_numpy(inputs))
                pos_logit = net.score(hidden, torch.from_numpy(pos).unsqueeze(-1)).squeeze(-1)
                neg_logit = net.score(hidden, torch.from_numpy(neg).unsqueeze(-1)).squeeze(-1)
                loss_all = loss_fn(pos_logit, torch.ones_like(pos_logit)) + loss_fn(
                    neg_logit, torch.zeros_like(neg_logit)
                )
                loss = loss_all[mask].mean()
                if cfg.l2_emb > 0:
                    loss = loss + cfg.l2_emb * net.embed(torch.from_numpy(pos)).pow(2).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * int(mask.sum())
                count += int(mask.sum())
            self.epoch_losses.append(total / max(count, 1))
            if valid is None or epoch % cfg.eval_every:
                continue
            metric = _validation_metrics(net, data, valid)
            curve.append((epoch, *metric))
            log.info("sasrec %s epoch %d: NDCG@10 %.4f HR@1 %.4f", _short(cfg), epoch, *metric)
            if metric > best:
                best, best_epoch, stale = metric, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= cfg.patience and epoch >= cfg.min_epochs:
                    break
        net.eval()
        if valid is None:
            return net, None
        if best_epoch == 0:  # fewer epochs than eval_every: evaluate the last state
            best, best_epoch = _validation_metrics(net, data, valid), epoch
        else:
            net.load_state_dict(best_state)
        trial = TrialResult(cfg, best_epoch, best[0], best[1], epoch, 0.0, curve)
        return net, trial


def _score(
    net: SASRecNet, data: _Data, cases: Sequence[Case], batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, candidate indices) for cases; unknown candidates get score 0 (fixed later)."""
    cand = data.catalog.candidate_indices(cases)
    seqs = [case_sequence(c, data.catalog, data.seqs) for c in cases]
    return next_item_scores(net, seqs, cand, data.popularity, batch), cand


def _validation_metrics(net: SASRecNet, data: _Data, cases: Sequence[Case]) -> tuple[float, float]:
    scores, cand = _score(net, data, cases)
    ranks = target_ranks(fill_unknown(scores, cand), np.array([c.target_index for c in cases]))
    return ndcg(ranks, 10), hit_ratio(ranks, 1)


def _short(cfg: SASRecConfig) -> str:
    return f"h{cfg.hidden} b{cfg.blocks} d{cfg.dropout} lr{cfg.lr} L{cfg.max_len}"

"""The rows a hidden-head run fits on, and the base column sets it compares.

A `Split` is one or more feature row sets joined (`baselines.features`): the per-candidate
columns, the LLM's cached states, the targets and the cases. `training.hidden_head` adds
the content columns of the item layer chosen on valid (`choose_item_layer`, reading
`reasoning.item_content`) and the LLM-reading SASRec (`training.llm_sasrec`), then fits a
combiner over each variant's columns (`variants_of`, `fit_base`) with a head on top.

    split = Split.join([FeatureSet.load(path)], states)
    base = fit_base(split, ("sasrec", "itemknn"))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from baselines.combiner import ListwiseCombiner, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from common.errors import UserInputError
from evaluation.ranker import Case
from reasoning.item_content import METADATA_NAMES, VECTOR_NAMES, ItemContent
from reasoning.llm_sasrec import NAME as LLM_SASREC
from training.item_vectors import item_vectors

if TYPE_CHECKING:
    from training.hidden_head import HiddenHeadConfig

log = logging.getLogger(__name__)


@dataclass
class Split:
    """One or more row sets joined: feature scores, LLM states, targets."""

    names: tuple[str, ...]
    scores: np.ndarray  # (n, 20, features)
    states: np.ndarray  # (n, 20, layers, poolings, d)
    target: np.ndarray
    cases: list[Case]

    @classmethod
    def join(cls, feats: list[FeatureSet], states: np.ndarray) -> Split:
        return cls(
            feats[0].names,
            np.concatenate([f.scores for f in feats]),
            states,
            np.concatenate([f.target_index for f in feats]),
            [c for f in feats for c in f.cases],
        )

    def with_content(self, items: ItemContent) -> Split:
        """This split with ``items``' columns of every case appended to its scores."""
        extra = np.stack([items.features(c.history, c.candidates) for c in self.cases])
        return replace(
            self, names=self.names + items.names, scores=np.concatenate([self.scores, extra], 2)
        )

    def with_column(self, name: str, values: np.ndarray) -> Split:
        """This split with one more (n, 20) column."""
        scores = np.concatenate([self.scores, values[:, :, None]], 2)
        return replace(self, names=(*self.names, name), scores=scores)

    def column(self, name: str) -> np.ndarray:
        return self.scores[:, :, self.names.index(name)]

    def pick_scores(self, columns: tuple[str, ...]) -> np.ndarray:
        """The feature columns named (all when empty)."""
        if not columns:
            return self.scores
        return self.scores[:, :, [self.names.index(c) for c in columns]]

    def with_base(self, base: ListwiseCombiner | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(states, base scores, target) for `select_head`."""
        if base is None:
            offset = np.zeros((*self.target.shape, 20))
        else:
            offset = base.score(self.pick_scores(base.names))
        return self.states, offset, self.target


def fit_base(train: Split, columns: tuple[str, ...]) -> ListwiseCombiner:
    """The non-LLM combiner over ``columns`` (all when empty), fitted on the train rows."""
    names = columns or train.names
    unknown = [c for c in names if c not in train.names]
    if unknown:
        raise UserInputError(f"unknown feature columns {unknown}; have {list(train.names)}")
    return ListwiseCombiner.fit_cv(train.pick_scores(columns), train.target, names=names)


def choose_item_layer(
    config: HiddenHeadConfig, train: Split, select: Split
) -> tuple[tuple[ItemContent, Split, Split] | None, list[dict[str, Any]]]:
    """The item content (`reasoning.item_content`) whose LLM layer gives the lowest valid
    cross-entropy of the base over the collaborative and all content columns, with
    ``train`` and ``select`` carrying its columns (None when ``config.item_layers`` is
    empty), and each layer's trial."""
    if not config.item_layers:
        return None, []
    from recdata import load_dataset

    items = load_dataset(config.dataset).items
    vectors = item_vectors(config, items)
    best: tuple[float, tuple[ItemContent, Split, Split]] | None = None
    trials = []
    for layer in config.item_layers:
        content = ItemContent.from_items(items, vectors[layer], layer)
        fit_on, chosen_on = train.with_content(content), select.with_content(content)
        base = fit_base(fit_on, fit_on.names)
        scores = base.score(chosen_on.scores)
        nll = listwise_nll(scores, chosen_on.target)
        hr = float(hits_at_1(scores, chosen_on.target).mean())
        trials.append({"layer": layer, "nll": nll, "HR@1": hr})
        log.info("item layer %d: valid NLL %.4f, HR@1 %.4f", layer, nll, hr)
        if best is None or nll < best[0]:
            best = (nll, (content, fit_on, chosen_on))
    assert best is not None
    return best[1], trials


def variants_of(
    config: HiddenHeadConfig, collaborative: tuple[str, ...], columns: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Each fused variant's base columns, by label (its first word names its head file),
    given all the split's ``columns``."""
    out = {"all features": collaborative}
    if set(VECTOR_NAMES) <= set(columns):
        out["content features"] = collaborative + METADATA_NAMES
        out["item-vector features"] = collaborative + METADATA_NAMES + VECTOR_NAMES
    if LLM_SASREC in columns:
        out["llm-sasrec features"] = out["item-vector features"] + (LLM_SASREC,)
    out["service features"] = config.service_features
    return out

"""Classical baselines, all behind the `evaluation.ranker.Ranker` protocol.

    from baselines import BASELINE_NAMES, make_baseline
    ranker = make_baseline("itemknn", neighbours=50)   # overrides = config fields
    ranker.fit(train_log, dataset.items)
    result = ranker.rank(cases)

Names, in order: random, popularity, itemknn, bpr, sasrec, graph-paths (damped
co-interaction path counts), graph-fallback (the service's LLM-failure fallback: the graph
store's co-occurrence candidates). Overrides are fields of the ranker's config dataclass
(RandomConfig, PopularityConfig, ItemKNNConfig, BPRConfig, SASRecConfig, GraphConfig,
GraphFallbackConfig); an unknown field raises ValueError. For sasrec, an override
of a tuned field (hidden, blocks, dropout, lr, max_len) also pins that grid axis, and
``grid=SASRecGrid(...)`` replaces the grid. SASRecRanker has ``tune(train, cases,
items)``, which the evaluator calls on the validation split before ``fit``.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from baselines.bpr import BPRConfig, BPRRanker
from baselines.graph import (
    GraphConfig,
    GraphFallbackConfig,
    GraphFallbackRanker,
    GraphRanker,
    co_count_matrix,
    co_interaction_scores,
    path_counts,
)
from baselines.itemknn import ItemKNNConfig, ItemKNNRanker
from baselines.sasrec import SASRecConfig, SASRecGrid, SASRecRanker
from baselines.simple import PopularityConfig, PopularityRanker, RandomConfig, RandomRanker
from evaluation.ranker import Ranker

BASELINE_NAMES: tuple[str, ...] = (
    "random",
    "popularity",
    "itemknn",
    "bpr",
    "sasrec",
    "graph-paths",
    "graph-fallback",
)

_CONFIGS: dict[str, type] = {
    "random": RandomConfig,
    "popularity": PopularityConfig,
    "itemknn": ItemKNNConfig,
    "bpr": BPRConfig,
    "sasrec": SASRecConfig,
    "graph-paths": GraphConfig,
    "graph-fallback": GraphFallbackConfig,
}


def _config(name: str, overrides: dict[str, Any]) -> Any:
    config_type = _CONFIGS[name]
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for baseline {name!r}; valid: {sorted(known)}"
        )
    return replace(config_type(), **overrides)


def make_baseline(name: str, **overrides: Any) -> Ranker:
    """A fresh, unfitted baseline ranker by name, with config overrides."""
    if name not in BASELINE_NAMES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINE_NAMES)}")
    if name == "sasrec":
        grid = overrides.pop("grid", None) or SASRecGrid()
        return SASRecRanker(_config(name, overrides), grid.pinned(**overrides))
    config = _config(name, overrides)
    rankers: dict[str, Any] = {
        "random": RandomRanker,
        "popularity": PopularityRanker,
        "itemknn": ItemKNNRanker,
        "bpr": BPRRanker,
        "graph-paths": GraphRanker,
        "graph-fallback": GraphFallbackRanker,
    }
    ranker: Ranker = rankers[name](config)
    return ranker


__all__ = [
    "BASELINE_NAMES",
    "BPRConfig",
    "BPRRanker",
    "GraphConfig",
    "GraphFallbackConfig",
    "GraphFallbackRanker",
    "GraphRanker",
    "ItemKNNConfig",
    "ItemKNNRanker",
    "PopularityConfig",
    "PopularityRanker",
    "RandomConfig",
    "RandomRanker",
    "SASRecConfig",
    "SASRecGrid",
    "SASRecRanker",
    "co_count_matrix",
    "co_interaction_scores",
    "make_baseline",
    "path_counts",
]

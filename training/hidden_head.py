"""LLM hidden-state ranking head, fused with the collaborative combiner.

The frozen LLM reads the same compact prompt as ``training.listwise`` (the user's newest
history items, then the 20 candidates as ``(A) Title (1995, Drama)`` lines, in the case's
own candidate order). Each candidate line attends to the history and to the lines above
it, so the hidden state at a candidate's line is the LLM's reading of that item *for this
user*. One forward pass per case, no backward: for a few layers, the state at each
candidate line's last token and the mean over the line's tokens are cached.

A linear head then scores candidates from those states, on top of the combiner:

    score_j = base_j + (h_j - mean_k h_k) . w

``base`` is the non-LLM combiner fitted on the training row sets, and ``w`` is fitted by
listwise cross-entropy on the training row sets (residual: the head only has to learn
what the collaborative scores miss). The layer, the pooling, a PCA size and the L2
strength are chosen on the validation row set; test is scored once with the choice. By
default the states are scaled to unit RMS and read at each line's last token
(``state_scale``, ``poolings``): the head vLLM can serve (`reasoning.backends.vllm_states`).

    config = HiddenHeadConfig(model_path="...", features_dir=".r2rec/features/ml-100k",
                              out_dir=".r2rec/runs/hidden-ml100k")
    summary = run_hidden_head(config)   # out_dir/{hidden_<rowset>.npz, summary.json, r2rec.*}

Command line: ``r2rec train hidden-head --config training/configs/hidden-head-smollm2.yaml``.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.combiner import ListwiseCombiner, fit_linear_listwise, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from common.errors import UserInputError
from reasoning.backends.model_folders import require_model
from reasoning.compact import POOLINGS, STATE_SCALES, HiddenHead
from reasoning.llm_sasrec import NAME as LLM_SASREC
from recdata.schema import Dataset
from training.base_columns import Split, choose_item_layer, fit_base, variants_of
from training.hidden_states import StateCache
from training.listwise import ListwiseConfig
from training.llm_sasrec import llm_sasrec_columns
from training.ranking_report import report_rows, write_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HiddenHeadConfig:
    """One hidden-state head run: data, prompt, extraction, selection grid."""

    model_path: str = field(
        default="", metadata={"help": "Base model folder (r2rec model prepare-base)."}
    )
    features_dir: str = field(
        default="", metadata={"help": "Folder of <rowset>.npz from python -m baselines.features."}
    )
    dataset: str = field(default="ml-100k", metadata={"help": "Dataset (item titles)."})
    out_dir: str = field(default="", metadata={"help": "Run folder (cached states, results)."})
    train_rowsets: tuple[str, ...] = field(
        default=("train3",), metadata={"help": "Row sets the combiner and head are fitted on."}
    )
    select_rowset: str = field(
        default="valid", metadata={"help": "Row set the settings are chosen on (never fitted)."}
    )
    test_rowset: str = field(default="test", metadata={"help": "Row set scored once at the end."})
    layers: tuple[int, ...] = field(
        default=(10, 20), metadata={"help": "Hidden-state layers cached (0 = embeddings)."}
    )
    poolings: tuple[str, ...] = field(
        default=("last",),
        metadata={
            "help": "Line poolings tried on valid: last (the line's last token) and/or mean "
            "(its tokens' mean). Only a last-token head of state_scale rms is served by vLLM."
        },
    )
    state_scale: str = field(
        default="rms",
        metadata={
            "help": "raw: the layer's states as they are; rms: each state scaled to unit RMS, "
            "as a model cut at the layer returns it, so vLLM can serve the head as a pooling "
            "model (reasoning.backends.vllm_states)."
        },
    )
    pca_grid: tuple[int, ...] = field(
        default=(16, 64, 0), metadata={"help": "PCA sizes tried on valid (0: no PCA)."}
    )
    l2_grid: tuple[float, ...] = field(
        default=(1e-3, 1e-2, 1e-1, 1.0), metadata={"help": "L2 strengths tried on valid."}
    )
    history_items: int = field(default=5, metadata={"help": "History items shown (newest)."})
    title_chars: int = field(default=18, metadata={"help": "Titles are cut to this many chars."})
    genres: int = field(default=1, metadata={"help": "Genres shown per item (0: none)."})
    batch_size: int = field(default=8, metadata={"help": "Cases per forward pass."})
    item_layers: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "LLM layers whose item readings are tried on valid for the content "
            "columns (reasoning.item_content: genre overlap, year gap, year, and the LLM "
            "item similarities); empty: collaborative bases only."
        },
    )
    llm_sasrec: bool = field(
        default=False,
        metadata={
            "help": "Also fit the LLM-reading SASRec (reasoning.llm_sasrec: item embeddings "
            "plus a projection of the chosen layer's item readings) per row set, as one more "
            "column; adds the 'llm-sasrec features' variant. Needs item_layers."
        },
    )
    llm_sasrec_max_epochs: int = field(
        default=200,
        metadata={"help": "Most epochs for the LLM-reading SASRec (early stopping on valid)."},
    )
    sasrec_results: str = field(
        default="",
        metadata={
            "help": "baselines.json whose tuned SASRec architecture the LLM-reading SASRec "
            "takes (empty: baselines.sasrec defaults)."
        },
    )
    service_features: tuple[str, ...] = field(
        default=("graph-fallback", "popularity"),
        metadata={"help": "Features the service computes itself: the servable fusion base."},
    )
    max_rows: int = field(default=0, metadata={"help": "First N cases of each row set (0: all)."})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads per process."})
    workers: int = field(
        default=1,
        metadata={
            "help": "Processes extracting missing row sets' states side by side (each loads "
            "the model; 2 on a 2-core CPU, with threads=1)."
        },
    )
    device: str = field(default="cpu", metadata={"help": "cpu, or cuda for the extraction."})
    dtype: str = field(
        default="float32",
        metadata={
            "help": "Forward dtype: float32, or bfloat16 on a GPU or an AVX512-BF16 CPU (it is "
            "emulated, 10x slower, elsewhere)."
        },
    )

    def __post_init__(self) -> None:
        if not self.train_rowsets:
            raise UserInputError("train_rowsets is empty")
        if self.select_rowset in self.train_rowsets or self.test_rowset in self.train_rowsets:
            raise UserInputError("valid/test row sets cannot be fitted on")
        if self.dtype not in ("bfloat16", "float32"):
            raise UserInputError(f"dtype must be bfloat16 or float32, got {self.dtype!r}")
        if self.workers < 1 or self.threads < 1:
            raise UserInputError("workers and threads must be at least 1")
        if not self.poolings or not set(self.poolings) <= set(POOLINGS):
            raise UserInputError(f"poolings must be among {POOLINGS}, got {self.poolings!r}")
        if self.llm_sasrec and not self.item_layers:
            raise UserInputError("llm_sasrec reads the item readings: set item_layers too")
        if self.state_scale not in STATE_SCALES:
            raise UserInputError(
                f"state_scale must be one of {STATE_SCALES}, got {self.state_scale!r}"
            )

    def prompt(self) -> ListwiseConfig:
        """The listwise prompt settings this run renders with."""
        return ListwiseConfig(
            history_items=self.history_items, title_chars=self.title_chars, genres=self.genres
        )


# ---------------------------------------------------------------------------- head
class FittedHead(HiddenHead):
    """`reasoning.compact.HiddenHead` plus its fit: standardise, project, listwise L2 fit."""

    @classmethod
    def project(
        cls, states: np.ndarray, pca: int, scale: str = "raw"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The standardised, PCA-projected design of ``states`` (n, 20, d) and how it was
        made: (mu, sd, basis, z); shared by every L2 of one layer, pooling and PCA size."""
        x = cls.design(states, scale)
        flat = x.reshape(-1, x.shape[2])
        mu, sd = flat.mean(axis=0), flat.std(axis=0) + 1e-6
        flat = (flat - mu) / sd
        if pca and pca < flat.shape[1]:
            _, _, vt = np.linalg.svd(flat[:: max(1, len(flat) // 4000)], full_matrices=False)
            basis = vt[:pca].T
        else:
            basis = np.eye(flat.shape[1])
        z = (flat @ basis).reshape(x.shape[0], 20, -1)
        basis = basis / np.sqrt(z.shape[2])
        return mu, sd, basis, z / np.sqrt(z.shape[2])

    @classmethod
    def fit(
        cls,
        states: np.ndarray,
        base: np.ndarray,
        target: np.ndarray,
        layer: int,
        pooling: str,
        pca: int,
        l2: float,
        projected: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
        scale: str = "raw",
    ) -> FittedHead:
        """``states``: (n, 20, d) for one layer and pooling; ``projected``: `project`'s
        result for them (with the same ``scale``), when already computed."""
        mu, sd, basis, z = projected or cls.project(states, pca, scale)
        weights = fit_linear_listwise(z, target, l2, offset=base)
        return cls(layer, pooling, pca, l2, mu, sd, basis, weights, scale)


def pick(states: np.ndarray, config: HiddenHeadConfig, layer: int, pooling: str) -> np.ndarray:
    return states[:, :, config.layers.index(layer), POOLINGS.index(pooling)]


def select_head(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    select: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: HiddenHeadConfig,
) -> tuple[HiddenHead, list[dict[str, Any]]]:
    """Fit every (layer, pooling, pca, l2) of the grid on ``train`` (states, base,
    target) and keep the one with the lowest listwise cross-entropy on ``select``."""
    trials = []
    best: tuple[float, HiddenHead] | None = None
    grid = itertools.product(config.layers, config.poolings, config.pca_grid)
    scale = config.state_scale
    for layer, pooling, pca in grid:
        states = pick(train[0], config, layer, pooling)
        projected = FittedHead.project(states, pca, scale)  # one SVD for every L2
        for l2 in config.l2_grid:
            head = FittedHead.fit(states, *train[1:], layer, pooling, pca, l2, projected, scale)
            fused = select[1] + head.residual(pick(select[0], config, layer, pooling))
            nll = listwise_nll(fused, select[2])
            hr = float(hits_at_1(fused, select[2]).mean())
            trials.append(
                {"layer": layer, "pooling": pooling, "pca": pca, "l2": l2, "nll": nll, "HR@1": hr}
            )
            if best is None or nll < best[0]:
                best = (nll, head)
    assert best is not None
    return best[1], trials


# ---------------------------------------------------------------------------- run
def run_hidden_head(config: HiddenHeadConfig, data: Dataset | None = None) -> dict[str, Any]:
    """Extract (or reuse) states for every row set, choose the head on valid, score test
    once; write out_dir/{summary.json, r2rec.json, r2rec.md}. ``data``: the log the
    feature row sets came from (default: the dataset by name), for ``llm_sasrec``."""
    import torch

    if not config.model_path or not config.features_dir or not config.out_dir:
        raise UserInputError("model_path, features_dir and out_dir are required")
    require_model(Path(config.model_path))  # the default base is prepared on first use
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = StateCache(config)
    cache.fill([*config.train_rowsets, config.select_rowset, config.test_rowset])

    def rowset(name: str) -> tuple[FeatureSet, np.ndarray, float]:
        feats = cache.rowset(name)
        states, tokens = cache.states(name, feats.cases)
        return feats, states, tokens

    train_parts = [rowset(r) for r in config.train_rowsets]
    train = Split.join([p[0] for p in train_parts], np.concatenate([p[1] for p in train_parts]))
    select_feats, select_states, _ = rowset(config.select_rowset)
    test_feats, test_states, test_tokens = rowset(config.test_rowset)
    select = Split.join([select_feats], select_states)
    test = Split.join([test_feats], test_states)
    collaborative = train.names
    chosen, item_trials = choose_item_layer(config, train, select)
    content = None
    if chosen is not None:  # train and select already carry the chosen columns
        content, train, select = chosen
        test = test.with_content(content)
    llm_sasrec = None
    if config.llm_sasrec and content is not None:
        from recdata import load_dataset

        parts = dict(zip(config.train_rowsets, (p[0].cases for p in train_parts), strict=True))
        rowsets = {**parts, config.select_rowset: select.cases, config.test_rowset: test.cases}
        data = data or load_dataset(config.dataset)
        scored, llm_sasrec = llm_sasrec_columns(config, data, content, rowsets)
        train = train.with_column(LLM_SASREC, np.concatenate([scored[r] for r in parts]))
        select = select.with_column(LLM_SASREC, scored[config.select_rowset])
        test = test.with_column(LLM_SASREC, scored[config.test_rowset])

    alone, _ = select_head(train.with_base(None), select.with_base(None), config)
    yardstick = ListwiseCombiner.fit_cv(
        select.pick_scores(collaborative), select.target, names=collaborative
    )
    named = [
        ("sasrec", test.column("sasrec")),
        ("combiner", yardstick.score(test.pick_scores(collaborative))),
        (
            "LLM hidden-state head alone",
            alone.residual(pick(test.states, config, alone.layer, alone.pooling)),
        ),
    ]
    variants: dict[str, Any] = {}
    for label, columns in variants_of(config, collaborative, train.names).items():
        base = fit_base(train, columns)
        head, trials = select_head(train.with_base(base), select.with_base(base), config)
        head_file = f"head-{label.split()[0]}.npz"  # head-all.npz, head-service.npz
        head.save(out / head_file)
        s_base = base.score(select.pick_scores(base.names))
        s_fused = s_base + head.residual(pick(select.states, config, head.layer, head.pooling))
        t_base = base.score(test.pick_scores(base.names))
        fused = t_base + head.residual(pick(test.states, config, head.layer, head.pooling))
        named += [
            (f"base: combiner of {label}, fitted on {'+'.join(config.train_rowsets)}", t_base),
            (
                f"fused: the {label} base + LLM hidden-state head (layer {head.layer}, "
                f"{head.pooling}, {head.scale} states, pca {head.pca or 'none'}, l2 {head.l2:g})",
                fused,
            ),
        ]
        variants[label] = {
            "base": base.describe(),
            "head": {
                "layer": head.layer,
                "pooling": head.pooling,
                "scale": head.scale,
                "pca": head.pca,
                "l2": head.l2,
            },
            "head_file": head_file,
            "select_nll": {
                "base": listwise_nll(s_base, select.target),
                "fused": listwise_nll(s_fused, select.target),
            },
            "test_rows": [len(named) - 2, len(named) - 1],  # indices of its rows in "rows"
            "trials_on_select": trials,
        }
    rows = report_rows(named, test.target)
    summary = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "train_rows": len(train.target),
        "prompt_tokens_test": test_tokens,
        "items": None
        if content is None
        else {
            "layer": content.layer,
            "names": list(content.names),
            "trials": item_trials,
            "llm_sasrec": llm_sasrec,
        },
        "alone": {"layer": alone.layer, "pooling": alone.pooling, "pca": alone.pca, "l2": alone.l2},
        "variants": variants,
        "yardstick_combiner": yardstick.describe(),
        "test_nll": {name: listwise_nll(s, test.target) for name, s in named},
        "rows": rows,
        # per test case, whether each row ranked the target first: for paired tests
        # between any two rows (evaluation.significance.mcnemar_exact)
        "test_hits": [hits_at_1(scores, test.target).astype(int).tolist() for _, scores in named],
    }
    write_report(out, summary, rows)
    log.info("done: %s", json.dumps(rows))
    return summary

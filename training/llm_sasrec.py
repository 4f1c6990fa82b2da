"""Fit the LLM-reading SASRec (`reasoning.llm_sasrec`): offline columns and the served part.

Offline (``r2rec train hidden-head`` with ``llm_sasrec: true``), at the item layer the run
chose on valid:

1. the epoch count is chosen by early stopping on the select row set's cases, trained
   on that row set's own log (as ``baselines.sasrec`` tunes SASRec on valid);
2. the same recipe is fitted on each other row set's training log (nothing at or after
   a row's target: `baselines.features.rowset_training_log`) and scores its cases.

Columns are cached in the run folder (``llm_sasrec_l<layer>_<rowset>.npy``), so a re-run
reuses them. For serving, `fit_served` fits the chosen recipe on the log the
collaborative bundle was fitted on.

    columns, info = llm_sasrec_columns(config, dataset, content, {"train3": cases, ...})
    part = fit_served(dataset.interactions, dataset.items, content, info)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from baselines.features import rowset_training_log, tuned_overrides
from baselines.sasrec import ItemReadings, SASRecConfig, SASRecGrid, SASRecRanker
from common.errors import UserInputError
from evaluation.ranker import Case
from reasoning.item_content import ItemContent
from reasoning.llm_sasrec import LLMSASRec
from recdata.schema import Dataset

if TYPE_CHECKING:
    from training.hidden_head import HiddenHeadConfig

log = logging.getLogger(__name__)

ARCHITECTURE = ("hidden", "blocks", "heads", "dropout", "max_len", "lr", "batch_size", "seed")


def readings_of(content: ItemContent) -> ItemReadings:
    """The content's item readings (its stored unit rows) as SASRec's ``readings``."""
    if content.vectors is None:
        raise UserInputError("the LLM-reading SASRec needs the item readings (item_layers)")
    return ItemReadings(content.item_ids, content.vectors.astype(np.float32))


def recipe(config: HiddenHeadConfig) -> SASRecConfig:
    """SASRec's architecture from ``config.sasrec_results`` (the tuned SASRec of the
    baselines table; its epoch count is not taken), capped at ``llm_sasrec_max_epochs``."""
    base = SASRecConfig()
    if config.sasrec_results:
        path = Path(config.sasrec_results)
        if not path.is_file():
            raise UserInputError(f"sasrec_results: {path} not found")
        tuned = tuned_overrides(path).get("sasrec", {})
        base = replace(base, **{k: v for k, v in tuned.items() if k in ARCHITECTURE})
    return replace(base, epochs=config.llm_sasrec_max_epochs)


def _fit(ranker: SASRecRanker, train: pd.DataFrame, items: pd.DataFrame) -> float:
    start = time.perf_counter()
    ranker.fit(train, items)
    return time.perf_counter() - start


def llm_sasrec_columns(
    config: HiddenHeadConfig,
    data: Dataset,
    content: ItemContent,
    rowsets: dict[str, list[Case]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(n, 20) scores per row set (keys of ``rowsets``, which must hold the select row
    set) and what was chosen: the epochs, the architecture, seconds per fit."""
    out = Path(config.out_dir)
    prefix = f"llm_sasrec_l{content.layer}"
    chosen_path = out / f"{prefix}.json"
    readings = readings_of(content)
    select = config.select_rowset
    if not chosen_path.is_file():
        cfg = recipe(config)
        grid = SASRecGrid(**{f.name: (getattr(cfg, f.name),) for f in fields(SASRecGrid)})
        ranker = SASRecRanker(cfg, grid, readings)
        start = time.perf_counter()
        chosen = ranker.tune(rowset_training_log(data, select), rowsets[select], data.items)
        np.save(out / f"{prefix}_{select}.npy", ranker.rank(rowsets[select]).scores)
        info = {
            "layer": content.layer,
            "config": asdict(chosen),
            "seconds": {select: time.perf_counter() - start},
        }
        chosen_path.write_text(json.dumps(info, indent=2) + "\n")
        log.info("llm-sasrec: %d epochs chosen on %s", chosen.epochs, select)
    info = json.loads(chosen_path.read_text())
    columns = {}
    for name, cases in rowsets.items():
        path = out / f"{prefix}_{name}.npy"
        if not path.is_file():
            ranker = SASRecRanker(SASRecConfig(**info["config"]), readings=readings)
            info["seconds"][name] = _fit(ranker, rowset_training_log(data, name), data.items)
            np.save(path, ranker.rank(cases).scores)
            chosen_path.write_text(json.dumps(info, indent=2) + "\n")
            log.info("llm-sasrec %s: %.0f s", name, info["seconds"][name])
        columns[name] = np.load(path)
        if columns[name].shape != (len(cases), 20):
            raise UserInputError(f"{path} does not match the row set's cases: delete it")
    return columns, info


def fit_served(
    train: pd.DataFrame, items: pd.DataFrame, content: ItemContent, info: dict[str, Any]
) -> LLMSASRec:
    """The run's chosen recipe (``info`` from `llm_sasrec_columns`) fitted on ``train``,
    ready to score requests."""
    config = SASRecConfig(**info["config"])
    ranker = SASRecRanker(config, readings=readings_of(content))
    seconds = _fit(ranker, train, items)
    net, fitted = ranker.fitted()
    keep = {k: getattr(config, k) for k in ("hidden", "blocks", "heads", "max_len", "epochs")}
    return LLMSASRec(
        fitted.catalog.item_ids,
        fitted.popularity,
        net,
        {**keep, "layer": content.layer, "fit_log_rows": len(train), "fit_seconds": seconds},
    )

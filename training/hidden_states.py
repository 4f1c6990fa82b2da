"""The frozen LLM's hidden states at each candidate line, per row set, cached on disk.

One forward pass per case over the compact prompt (`reasoning.compact.line_states`): for
each configured layer, the state at the line's last token and the mean over its tokens.
`StateCache` keeps them in ``out_dir/hidden_<rowset>.npz`` (float16, with the layers and
the mean prompt length) and extracts a missing row set when it is first read, or several
side by side in ``workers`` processes (`StateCache.fill`):

    cache = StateCache(config)                 # config: training.hidden_head.HiddenHeadConfig
    cache.fill(["train3", "valid", "test"])    # the missing ones, in parallel
    states, tokens = cache.states("valid", cache.rowset("valid").cases)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from baselines.features import FeatureSet
from evaluation.ranker import Case
from reasoning.compact import POOLINGS, line_states
from training.choice_logits import ChoiceLogits
from training.compact_prompt import item_lookup, letter_reader, render_compact
from training.listwise import load_rowset

if TYPE_CHECKING:
    from training.hidden_head import HiddenHeadConfig

log = logging.getLogger(__name__)


def extract_states(
    model: Any, encoder: ChoiceLogits, cases: list[Case], lookup: dict, config: HiddenHeadConfig
) -> tuple[np.ndarray, float]:
    """(n, 20, layers, 2, d) float16 states per candidate line (pooling last, mean) and the
    mean prompt length in tokens (`reasoning.compact.line_states`, batched)."""
    identity = np.arange(20)
    prompt = config.prompt()
    parts, tokens = [], 0
    for start in range(0, len(cases), config.batch_size):
        chunk = cases[start : start + config.batch_size]
        texts = [encoder.text(render_compact(c, identity, lookup, prompt)) for c in chunk]
        states, read = line_states(model, encoder.tokenizer, texts, 20, config.layers)
        parts.append(states)
        tokens += read
        log.info("states: %d / %d cases", start + len(chunk), len(cases))
    d = model.config.hidden_size
    empty = np.zeros((0, 20, len(config.layers), len(POOLINGS), d), dtype=np.float16)
    return (np.concatenate(parts) if parts else empty), tokens / max(1, len(cases))


class StateCache:
    """Each row set's states in out_dir/hidden_<rowset>.npz, extracted on first use; the
    model is loaded once, when a row set first needs it."""

    def __init__(self, config: HiddenHeadConfig) -> None:
        from recdata import load_dataset

        self.config = config
        self.lookup = item_lookup(load_dataset(config.dataset).items, config.prompt())
        self._model: tuple[Any, ChoiceLogits] | None = None
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)

    def path(self, rowset: str) -> Path:
        return Path(self.config.out_dir) / f"hidden_{rowset}.npz"

    def rowset(self, name: str) -> FeatureSet:
        feats = load_rowset(self.config.features_dir, name)
        return feats.head(self.config.max_rows) if self.config.max_rows else feats

    def cached(self, rowset: str, n_cases: int) -> tuple[np.ndarray, float] | None:
        """The saved states when they cover ``n_cases`` cases and this run's layers."""
        path = self.path(rowset)
        if not path.is_file():
            return None
        saved = np.load(path)
        layers = tuple(saved["layers"]) if "layers" in saved else None
        states = saved["states"]
        if states.shape[0] != n_cases or states.shape[2] != len(self.config.layers):
            return None
        if layers is not None and layers != self.config.layers:
            return None
        return states, float(saved["tokens"])

    def states(self, rowset: str, cases: list[Case]) -> tuple[np.ndarray, float]:
        """(n, 20, layers, poolings, d) states and the mean prompt tokens of ``cases``."""
        found = self.cached(rowset, len(cases))
        if found is not None:
            return found
        start = time.perf_counter()
        model, encoder = self.model()
        states, tokens = extract_states(model, encoder, cases, self.lookup, self.config)
        np.savez(
            self.path(rowset),
            states=states,
            tokens=tokens,
            layers=np.array(self.config.layers),
            seconds=time.perf_counter() - start,
        )
        return states, tokens

    def model(self) -> tuple[Any, ChoiceLogits]:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.config.model_path)
            model: Any = AutoModelForCausalLM.from_pretrained(
                self.config.model_path, dtype=getattr(torch, self.config.dtype)
            )
            model.to(self.config.device)
            self._model = (model.eval(), letter_reader(tokenizer))
        return self._model

    def fill(self, rowsets: list[str]) -> None:
        """Extract the missing row sets in ``config.workers`` processes side by side."""
        missing = [r for r in rowsets if self.cached(r, len(self.rowset(r).cases)) is None]
        if self.config.workers < 2 or len(missing) < 2:
            return  # extracted one after the other, when first read
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        workers = min(self.config.workers, len(missing))
        log.info("extracting %s in %d processes", missing, workers)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            list(pool.map(_extract_rowset, [self.config] * len(missing), missing))


def _extract_rowset(config: HiddenHeadConfig, rowset: str) -> None:
    """One worker process: extract and save one row set's states."""
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(config.threads)
    cache = StateCache(config)
    cache.states(rowset, cache.rowset(rowset).cases)

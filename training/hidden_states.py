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
import zipfile
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

    def is_cached(self, rowset: str, n_cases: int) -> bool:
        """Whether the saved states cover ``n_cases`` cases and this run's layers (read
        from the file's headers; the states themselves are not loaded)."""
        path = self.path(rowset)
        if not path.is_file():
            return False
        with zipfile.ZipFile(path) as archive:
            with archive.open("states.npy") as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if major == 1
                    else np.lib.format.read_array_header_2_0
                )
                shape = read_header(member)[0]
            names = archive.namelist()
        if shape[0] != n_cases or shape[2] != len(self.config.layers):
            return False
        if "layers.npy" in names:
            return tuple(np.load(path)["layers"]) == self.config.layers
        return True

    def cached(self, rowset: str, n_cases: int) -> tuple[np.ndarray, float] | None:
        """The saved states when they cover ``n_cases`` cases and this run's layers."""
        if not self.is_cached(rowset, n_cases):
            return None
        saved = np.load(self.path(rowset))
        return saved["states"], float(saved["tokens"])

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
        distinct = list(dict.fromkeys(rowsets))  # a row set named twice is extracted once
        missing = [r for r in distinct if not self.is_cached(r, len(self.rowset(r).cases))]
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

"""The frozen LLM's reading of every catalogue item, at several layers, cached on disk.

Each item's text (`reasoning.item_content.item_text`: ``"Title (1995): Drama, War"``) is
read once, in batches, without the chat template; an item's vector at layer L is the mean
of its tokens' states there. `reasoning.item_content.ItemContent` turns the vectors of one
layer into the ``llm-sim-*`` columns. ML-100K's 1,682 items took 190 s on one core of
this 2-core CPU (float32, another job on the other core).

    vectors = item_vectors(config, items)   # {layer: (n_items, d)}, cached in
                                            # out_dir/item_vectors.npz
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import UserInputError
from reasoning.item_content import item_text

if TYPE_CHECKING:
    from training.hidden_head import HiddenHeadConfig

log = logging.getLogger(__name__)
CACHE = "item_vectors.npz"


def catalogue_texts(items: Any) -> list[str]:
    """`item_text` of each row of a `recdata` items table, in its order."""
    return [
        item_text(str(r.title), str(getattr(r, "year", "") or ""), str(getattr(r, "genres", "")))
        for r in items.itertuples(index=False)
    ]


def read_items(
    model: Any, tokenizer: Any, texts: list[str], layers: tuple[int, ...], batch_size: int = 64
) -> dict[int, np.ndarray]:
    """{layer: (len(texts), d)} mean token states of each text (padding excluded)."""
    import torch

    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    parts: dict[int, list[np.ndarray]] = {k: [] for k in layers}
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
    for start in range(0, len(texts), batch_size):
        chunk = [texts[i] for i in order[start : start + batch_size]]
        batch = tokenizer(chunk, return_tensors="pt", padding=True)
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            hidden = model(**batch, output_hidden_states=True).hidden_states
        deepest = len(hidden) - 1
        if max(layers) > deepest or min(layers) < 0:
            raise UserInputError(f"item_layers {list(layers)}: the model has layers 0-{deepest}")
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
        for k in layers:
            mean = (hidden[k] * mask).sum(dim=1) / mask.sum(dim=1)
            parts[k].append(mean.float().cpu().numpy())
        log.info("item vectors: %d / %d", min(start + batch_size, len(texts)), len(texts))
    d = model.config.hidden_size
    back = np.argsort(np.asarray(order, dtype=np.int64))  # rows back in the texts' order
    return {
        k: np.concatenate(v)[back] if v else np.zeros((0, d), np.float32) for k, v in parts.items()
    }


def item_vectors(config: HiddenHeadConfig, items: Any) -> dict[int, np.ndarray]:
    """The catalogue's vectors at ``config.item_layers``, read from or written to the
    run's cache (re-read when the catalogue or the layers changed)."""
    path = Path(config.out_dir) / CACHE
    ids = np.asarray([str(i) for i in items["item_id"]], dtype=str)
    if path.is_file():
        saved = np.load(path)
        cached = {int(k[1:]) for k in saved.files if k.startswith("l")}
        if set(config.item_layers) <= cached and np.array_equal(saved["item_ids"], ids):
            return {k: saved[f"l{k}"] for k in config.item_layers}
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(config.model_path)
    model: Any = AutoModelForCausalLM.from_pretrained(
        config.model_path, dtype=getattr(torch, config.dtype)
    )
    model.to(config.device).eval()
    vectors = read_items(model, tokenizer, catalogue_texts(items), config.item_layers)
    arrays: dict[str, Any] = {f"l{k}": v for k, v in vectors.items()}
    np.savez(path, item_ids=ids, seconds=time.perf_counter() - start, **arrays)
    return vectors

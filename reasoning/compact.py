"""The compact ranking prompt, and what the LLM's hidden states say about each candidate.

The prompt: the user's newest history items, then the candidates lettered ``(A)`` ..
``(T)``, each a short line (title cut to ``title_chars``, year, the first ``genres``
genres), ending in the assistant text "Answer:". The listwise ranker and the hidden-state
head are trained on it (``training.listwise``, ``training.hidden_head``) and the service
renders the same text from the graph store's items.

    shape = PromptShape(history_items=5, title_chars=18, genres=1)
    messages = render_compact_messages(history_infos, candidate_infos, shape)
    spans = candidate_spans(text, offsets)       # token range of each candidate line
    states = line_states(model, tokenizer, texts, layers=(20,))  # (n, 20, 1, 2, d)

The hidden-state head (`HiddenHead`) scores each candidate from its line's state, on top
of a collaborative base score: ``score_j = base_j + z(h_j) . w``, with ``z`` the state
centred on the case's mean, standardised and projected (`HiddenHead.residual`). A head of
``scale="rms"`` first scales each state to unit root-mean-square (`unit_rms`): that is
what a model cut at the head's layer, with a unit final norm, returns per token, so vLLM
can serve it as a pooling model (`reasoning.backends.vllm_states`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasoning.prompt import ANSWER_PREFIX, ItemInfo, answer_letter_tokens, clean_meta, clean_title

COMPACT_SYSTEM = "Movie recommender: give the letter of the candidate the user watches next."
POOLINGS = ("last", "mean")  # a candidate line's state: its last token, or the mean of its tokens
STATE_SCALES = ("raw", "rms")  # the layer's state as is, or scaled to unit RMS (`unit_rms`)
TINY = 1e-30  # keeps an all-zero state at zero


def unit_rms(states: np.ndarray) -> np.ndarray:
    """Each state (last axis) divided by its root-mean-square. A model's RMSNorm of unit
    weight returns ``h / sqrt(mean(h^2) + eps)``; scaling that again gives exactly
    ``unit_rms(h)`` whatever the model's ``eps``, so the raw states read in process and
    the normed ones vLLM returns meet here.

    >>> unit_rms(np.array([[3.0, 4.0]])).round(3).tolist()
    [[0.849, 1.131]]
    >>> bool(np.allclose(unit_rms(np.array([[3.0, 4.0]]) / np.sqrt(12.5 + 0.1)),
    ...                  unit_rms(np.array([[3.0, 4.0]]))))
    True
    """
    x = np.asarray(states, dtype=np.float64)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + TINY)


@dataclass(frozen=True)
class PromptShape:
    """How much of each item the compact prompt shows."""

    history_items: int = 5  # newest history items shown
    title_chars: int = 18  # titles are cut to this many characters
    genres: int = 1  # genres shown per item (0: none)


def shorten(item: ItemInfo, shape: PromptShape) -> ItemInfo:
    """The item as the compact prompt shows it: title cut, first ``genres`` genres kept."""
    title = item.title
    if len(title) > shape.title_chars:
        title = title[: shape.title_chars].rstrip(" ,:;-")
    kept = "|".join(g for g in item.genres.split("|")[: shape.genres] if g) if shape.genres else ""
    year = "" if item.year in ("nan", "None") else item.year
    return ItemInfo(item.item_id, title, year, kept)


def compact_item(item: ItemInfo) -> str:
    """'Singin' in the Rain (1952, Musical)': sanitised title, year, kept genres."""
    meta = ", ".join(m for m in (clean_meta(item.year), clean_meta(item.genres)) if m)
    return f"{clean_title(item.title)} ({meta})" if meta else clean_title(item.title)


def render_compact_messages(
    history: list[ItemInfo], candidates: list[ItemInfo], shape: PromptShape
) -> list[dict[str, str]]:
    """Chat messages: the newest ``history_items`` of ``history`` (oldest first, already
    shortened), the candidates lettered in the order given, then the answer prefix."""
    lines = ["Watched (oldest first):"]
    lines += [f"- {compact_item(i)}" for i in history[max(0, len(history) - shape.history_items) :]]
    lines += ["Candidates:"]
    letters = [t.strip() for t in answer_letter_tokens(len(candidates))]
    lines += [
        f"({letter}) {compact_item(i)}" for letter, i in zip(letters, candidates, strict=True)
    ]
    lines.append("Next?")
    return [
        {"role": "system", "content": COMPACT_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
        {"role": "assistant", "content": ANSWER_PREFIX},
    ]


def candidate_spans(text: str, offsets: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Token index ranges [start, end) of the ``n`` candidate lines ``(A) ...`` in a
    rendered prompt, from the tokenizer's character offsets."""
    spans = []
    for letter in (t.strip() for t in answer_letter_tokens(n)):
        begin = text.index(f"\n({letter}) ") + 1
        end = text.index("\n", begin)
        toks = [t for t, (a, b) in enumerate(offsets) if b > begin and a < end]
        if not toks:
            raise ValueError(f"candidate line ({letter}) has no tokens")
        spans.append((toks[0], toks[-1] + 1))
    return spans


class _Reached(Exception):
    """Raised after the deepest layer read: the layers above it are not run."""


def states_by_layer(model: Any, batch: dict[str, Any], layers: tuple[int, ...]) -> dict[int, Any]:
    """The hidden states after each layer k of ``layers`` (as ``hidden_states[k]`` of a
    full forward pass), running the model only up to the deepest one: forward hooks on the
    decoder layers, no layer above it and no LM head (3x less work for layer 10 of 30).
    Layer 0 (the embeddings) or the last layer (normed) take a full pass instead."""
    blocks = getattr(getattr(model, "model", None), "layers", None)
    if blocks is None or not all(0 < k < len(blocks) for k in layers):
        hidden = model(**batch, output_hidden_states=True).hidden_states
        return {k: hidden[k] for k in layers}
    found: dict[int, Any] = {}
    deepest = max(layers)

    def grab(k: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            found[k] = output[0] if isinstance(output, tuple) else output
            if k == deepest:
                raise _Reached

        return hook

    handles = [blocks[k - 1].register_forward_hook(grab(k)) for k in set(layers)]
    try:
        model(**batch, use_cache=False)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return found


def line_states(
    model: Any, tokenizer: Any, texts: list[str], n: int, layers: tuple[int, ...]
) -> tuple[np.ndarray, int]:
    """(len(texts), n, len(layers), 2, d) float16 states of each text's ``n`` candidate
    lines (pooled as POOLINGS) and the prompt tokens read. One forward pass, no grad."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # positions then match an unpadded forward
    try:
        batch = tokenizer(
            texts,
            add_special_tokens=False,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
    finally:
        tokenizer.padding_side = side
    offsets = batch.pop("offset_mapping").tolist()
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    d = model.config.hidden_size
    out = np.zeros((len(texts), n, len(layers), len(POOLINGS), d), dtype=np.float16)
    with torch.inference_mode():
        hidden = states_by_layer(model, batch, layers)
    for b, text in enumerate(texts):
        for j, (lo, hi) in enumerate(candidate_spans(text, offsets[b], n)):
            for li, layer in enumerate(layers):
                h = hidden[layer][b].float().clamp(-6e4, 6e4).cpu()
                out[b, j, li, 0] = h[hi - 1].numpy()
                out[b, j, li, 1] = h[lo:hi].mean(dim=0).numpy()
    return out, int(batch["attention_mask"].sum())


@dataclass
class HiddenHead:
    """score = base + ((h - case mean) - mu) / sd @ basis @ weights, on one layer and
    pooling of the candidate lines' states (scaled to unit RMS first with ``scale="rms"``);
    basis a PCA basis (or scaled identity)."""

    layer: int
    pooling: str
    pca: int
    l2: float
    mu: np.ndarray
    sd: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    scale: str = "raw"  # one of STATE_SCALES

    @staticmethod
    def design(states: np.ndarray, scale: str = "raw") -> np.ndarray:
        """Each candidate's state (scaled to unit RMS with ``scale="rms"``) centred on its
        case's mean state; (..., k, d)."""
        if scale not in STATE_SCALES:
            raise ValueError(f"state scale must be one of {STATE_SCALES}, got {scale!r}")
        x = unit_rms(states) if scale == "rms" else states.astype(np.float64)
        return x - x.mean(axis=-2, keepdims=True)

    @property
    def reads_unit_rms_tokens(self) -> bool:
        """Whether a reader that returns unit-RMS token states (a model cut at the layer,
        served by vLLM) gives exactly what this head reads: unit-RMS scale, last token."""
        return self.scale == "rms" and self.pooling == "last"

    def residual(self, states: np.ndarray) -> np.ndarray:
        """The head's (..., k) scores, added to the base; ``states`` (..., k, d), raw or
        already unit-RMS (scaling again changes nothing)."""
        x = self.design(states, self.scale)
        return np.asarray(((x - self.mu) / self.sd) @ self.basis @ self.weights)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            layer=self.layer,
            pooling=self.pooling,
            pca=self.pca,
            l2=self.l2,
            mu=self.mu,
            sd=self.sd,
            basis=self.basis,
            weights=self.weights,
            scale=self.scale,
        )

    @classmethod
    def load(cls, path: Path) -> HiddenHead:
        saved = np.load(path)
        return cls(
            layer=int(saved["layer"]),
            pooling=str(saved["pooling"]),
            pca=int(saved["pca"]),
            l2=float(saved["l2"]),
            mu=saved["mu"],
            sd=saved["sd"],
            basis=saved["basis"],
            weights=saved["weights"],
            scale=str(saved["scale"]) if "scale" in saved.files else "raw",
        )

"""The fused ranker the service serves: the collaborative base plus the LLM's hidden-state head.

    score_j = combiner(sasrec, itemknn, bpr, popularity, graph score [, content])_j + head(h_j)

``h_j`` is the frozen LLM's hidden state at candidate j's line of the compact prompt
(`reasoning.compact`), read in one forward pass without decoding; the head and the
combiner were fitted offline (``r2rec train hidden-head``, ``python -m baselines.bundle``)
and published together as one folder (``r2rec model publish-fused``):

    folder/manifest.json      base model, prompt shape, head settings, where each part came from
    folder/collaborative/     `reasoning.collaborative.CollaborativeBundle`
    folder/head.npz           `reasoning.compact.HiddenHead` (absent: the base alone ranks)
    folder/items.npz          optional: `reasoning.item_content.ItemContent`, the content
                              columns the base also weighs (their weights: the manifest's
                              ``content``)
    folder/llm_sasrec/        optional: `reasoning.llm_sasrec.LLMSASRec`, one more content
                              column (``llm-sasrec``, last among the manifest's names)
    folder/explainer/         optional: the explainer model folder (`reasoning.explainer`,
                              ``r2rec model publish-explainer``) that writes the thoughts
    folder/states/            optional: the base model cut at the head's layer, with a unit
                              final norm (`cut_for_states`), for a vLLM pooling server

    fused = FusedRanker.load(folder)
    scores = await fused.scores(llm, requests)      # one (k,) array per request
    base = fused.base(request)                      # the collaborative score alone

The LLM must expose its hidden states (`StateReader`): the in-process backend reads them
itself; with vLLM, `reasoning.backends.vllm_states.VLLMStates` asks a vLLM pooling server
that serves ``folder/states/`` (the base model cut at the head's layer, written by
``r2rec model publish-fused`` for a unit-RMS, last-token head). Without a reader `scores`
raises `LLMUnavailable` and the Recommender serves the collaborative base, flagged
``fallback``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from reasoning.backends.base import Conversation, LLMUnavailable
from reasoning.collaborative import CollaborativeBundle, zscore_per_case
from reasoning.compact import HiddenHead, PromptShape, render_compact_messages, shorten
from reasoning.item_content import HISTORY, ItemContent
from reasoning.llm_sasrec import FOLDER as LLM_SASREC_FOLDER
from reasoning.llm_sasrec import NAME as LLM_SASREC
from reasoning.llm_sasrec import LLMSASRec
from reasoning.prompt import ItemInfo

MANIFEST = "manifest.json"
EXPLAINER = "explainer"  # sub-folder holding the explainer model
STATES = "states"  # sub-folder holding the base model cut at the head's layer (for vLLM)
ITEMS = "items.npz"  # the item content the base's content columns read
FORMAT = 1


def log_softmax(scores: np.ndarray) -> list[float]:
    """Scores as log-probabilities over the candidates.

    >>> [round(v, 3) for v in log_softmax(np.array([0.0, 0.0]))]
    [-0.693, -0.693]
    """
    shifted = np.asarray(scores, dtype=np.float64) - float(np.max(scores))
    return (shifted - np.log(np.exp(shifted).sum())).tolist()


@runtime_checkable
class StateReader(Protocol):
    """A backend that returns the hidden states of a compact prompt's candidate lines."""

    async def line_states(
        self, messages_batch: Sequence[Conversation], n: int, layers: tuple[int, ...]
    ) -> np.ndarray:
        """(len(messages_batch), n, len(layers), 2, d) states, pooled last / mean."""
        ...


def unit_rms_only(reader: object) -> bool:
    """Whether ``reader`` returns unit-RMS token states only (a vLLM pooling model),
    which serve only heads that read them (`HiddenHead.reads_unit_rms_tokens`)."""
    return bool(getattr(reader, "unit_rms_tokens", False))


@dataclass(frozen=True)
class FusedRequest:
    """What one ranking reads: the user, their items oldest first, the candidates (with
    what the prompt shows of them) and the graph store's score of each candidate."""

    user_id: str
    sequence: list[str]  # item ids, oldest first, up to `FusedRanker.history_needed`
    history: list[ItemInfo]  # the newest history items as ItemInfo, oldest first
    candidates: list[ItemInfo]
    graph_scores: dict[str, float]


@dataclass
class FusedRanker:
    bundle: CollaborativeBundle
    head: HiddenHead | None
    shape: PromptShape
    manifest: dict[str, Any]
    explainer: Path | None = None  # the explainer's model folder, when one is published
    states: Path | None = None  # the cut model vLLM serves as a pooling model, when published
    content: ItemContent | None = None  # the base's content columns, when it weighs them
    content_weights: np.ndarray | None = None  # one per ``content_names``
    llm_sasrec: LLMSASRec | None = None  # the last content column, when the base weighs it

    def __post_init__(self) -> None:
        if (self.content is None) != (self.content_weights is None):
            raise ValueError("content and content_weights go together")
        if self.llm_sasrec is not None and self.content is None:
            raise ValueError("the llm-sasrec column is a content column: content is missing")
        names = self.content_names
        if self.content_weights is not None and len(names) != len(self.content_weights):
            raise ValueError(f"{len(self.content_weights)} weights for {names}")

    @property
    def content_names(self) -> tuple[str, ...]:
        """The content columns the base weighs, in weight order."""
        names = () if self.content is None else self.content.names
        return names if self.llm_sasrec is None else (*names, LLM_SASREC)

    @property
    def history_needed(self) -> int:
        """How many of the user's newest items the base reads."""
        needed = self.bundle.history_needed
        if self.content is not None:
            needed = max(needed, HISTORY)
        if self.llm_sasrec is not None:
            needed = max(needed, int(self.llm_sasrec.net.max_len))
        return needed

    @property
    def label(self) -> str:
        """What ranks, for logs and the version string."""
        base = "collaborative base" if self.content is None else "collaborative + content base"
        return f"{base} + LLM head" if self.head else base

    def base(self, request: FusedRequest) -> np.ndarray:
        """The combiner's score of each candidate: collaborative columns, plus the
        content columns when the base weighs them (z-scored per column, so the sum is
        the offline combiner over all columns)."""
        candidates = [c.item_id for c in request.candidates]
        features = self.bundle.features(
            request.user_id, request.sequence, candidates, request.graph_scores
        )
        score = self.bundle.score(features)
        if self.content is not None and self.content_weights is not None:
            columns = self.content.features(request.sequence, candidates)
            if self.llm_sasrec is not None:
                column = self.llm_sasrec.scores(request.sequence, candidates)
                columns = np.concatenate([columns, column[:, None]], axis=1)
            score = score + zscore_per_case(columns) @ self.content_weights
        return np.asarray(score)

    def messages(self, request: FusedRequest) -> Conversation:
        """The compact prompt of ``request`` (candidates in the request's order)."""
        history = [shorten(i, self.shape) for i in request.history]
        candidates = [shorten(i, self.shape) for i in request.candidates]
        return render_compact_messages(history, candidates, self.shape)

    async def scores(self, llm: object, requests: Sequence[FusedRequest]) -> list[np.ndarray]:
        """Base + head per request; the LLM reads every request's prompt in one call
        (grouped by candidate count)."""
        bases = [self.base(r) for r in requests]
        if self.head is None:
            return bases
        if not isinstance(llm, StateReader):
            raise LLMUnavailable("this LLM backend cannot return hidden states for the head")
        if unit_rms_only(llm) and not self.head.reads_unit_rms_tokens:
            raise LLMUnavailable(
                f"the head reads {self.head.scale} {self.head.pooling}-pooled states; this "
                "reader returns unit-RMS token states only"
            )
        out = list(bases)
        groups: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(len(request.candidates), []).append(index)
        head = self.head
        column = 0 if head.pooling == "last" else 1
        for n, indices in groups.items():
            states = await llm.line_states(
                [self.messages(requests[i]) for i in indices], n, (head.layer,)
            )
            for i, row in zip(indices, states[:, :, 0, column], strict=True):
                out[i] = bases[i] + head.residual(row)
        return out

    # ------------------------------------------------------------------ files
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.bundle.save(folder / "collaborative")
        if self.head is not None:
            self.head.save(folder / "head.npz")
        content = None
        if self.content is not None and self.content_weights is not None:
            self.content.save(folder / ITEMS)
            content = {
                "names": list(self.content_names),
                "weights": [float(w) for w in self.content_weights],
                "layer": self.content.layer,
            }
            if self.llm_sasrec is not None:
                self.llm_sasrec.save(folder / LLM_SASREC_FOLDER)
        manifest = {
            **self.manifest,
            "content": content,
            "format": FORMAT,
            "prompt": {
                "history_items": self.shape.history_items,
                "title_chars": self.shape.title_chars,
                "genres": self.shape.genres,
            },
            "head": None
            if self.head is None
            else {
                "layer": self.head.layer,
                "pooling": self.head.pooling,
                "scale": self.head.scale,
                "pca": self.head.pca,
            },
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> FusedRanker:
        path = folder / MANIFEST
        if not path.is_file():
            raise ValueError(f"{folder}: no {MANIFEST}; not a fused ranking folder")
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{folder}: fused ranking format {manifest.get('format')!r}")
        head_path = folder / "head.npz"
        explainer, states = folder / EXPLAINER, folder / STATES
        content, weights, llm_sasrec = None, None, None
        if manifest.get("content"):
            content = ItemContent.load(folder / ITEMS)
            names = list(content.names)
            if manifest["content"]["names"][-1] == LLM_SASREC:
                llm_sasrec = LLMSASRec.load(folder / LLM_SASREC_FOLDER)
                names.append(LLM_SASREC)
            if names != manifest["content"]["names"]:
                raise ValueError(f"{folder}: {ITEMS} does not hold the manifest's columns")
            weights = np.asarray(manifest["content"]["weights"], dtype=np.float64)
        return cls(
            bundle=CollaborativeBundle.load(folder / "collaborative"),
            head=HiddenHead.load(head_path) if head_path.is_file() else None,
            shape=PromptShape(**manifest["prompt"]),
            manifest=manifest,
            explainer=explainer if (explainer / "config.json").is_file() else None,
            states=states if (states / "config.json").is_file() else None,
            content=content,
            content_weights=weights,
            llm_sasrec=llm_sasrec,
        )

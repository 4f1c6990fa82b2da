"""The compact ranking prompt (`reasoning.compact`) for evaluation cases and item frames.

The listwise ranker (`training.listwise`) and the hidden-state head
(`training.hidden_head`) render each `Case` with the candidates in a given order; the
service renders the same text from the graph store's items.

    lookup = item_lookup(dataset.items, config)          # config: any PromptShape-like
    messages = render_compact(case, np.arange(20), lookup, config)
    reader = letter_reader(tokenizer)
    logits = reader.logits(model, [reader.text(messages)])  # (1, 20), letters A..T
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from evaluation.ranker import Case
from reasoning.compact import PromptShape, render_compact_messages, shorten
from reasoning.prompt import ItemInfo, answer_letter_tokens
from training.choice_logits import ChoiceLogits


class HasPromptShape(Protocol):
    """The prompt settings a run config carries."""

    @property
    def history_items(self) -> int: ...

    @property
    def title_chars(self) -> int: ...

    @property
    def genres(self) -> int: ...


def prompt_shape(config: HasPromptShape) -> PromptShape:
    return PromptShape(config.history_items, config.title_chars, config.genres)


def letter_reader(tokenizer: Any) -> ChoiceLogits:
    """Reads the logits of the 20 answer letters " A" .. " T"."""
    return ChoiceLogits(tokenizer, answer_letter_tokens(20))


def item_lookup(items: Any, config: HasPromptShape) -> dict[str, ItemInfo]:
    """item id -> ItemInfo as the compact prompt shows it (`reasoning.compact.shorten`)."""
    shape = prompt_shape(config)
    out = {}
    for row in items.itertuples(index=False):
        year = getattr(row, "year", "")
        info = ItemInfo(
            str(row.item_id),
            str(row.title),
            "" if year is None else str(year),
            str(getattr(row, "genres", "") or ""),
        )
        out[info.item_id] = shorten(info, shape)
    return out


def render_compact(
    case: Case, order: np.ndarray, lookup: dict[str, ItemInfo], config: HasPromptShape
) -> list[dict[str, str]]:
    """Chat messages for one case with candidates in ``order``, ending in the assistant
    text "Answer:" that the model continues with a letter."""
    unknown = ItemInfo("?", "unknown item")
    shape = prompt_shape(config)
    history = [lookup.get(i, unknown) for i in case.history[-shape.history_items :]]
    candidates = [lookup.get(case.candidates[j], unknown) for j in order]
    return render_compact_messages(history, candidates, shape)


def shown_position(order: np.ndarray, candidate: int) -> int:
    """Where candidate index ``candidate`` is shown (its letter) when shown in ``order``."""
    return int(np.flatnonzero(np.asarray(order) == candidate)[0])

"""The compact ranking prompt: a user's newest history and 20 lettered candidates.

Each item is a short line (title cut to ``title_chars``, year, the first ``genres``
genres); the candidates are lettered A-T in a given order and the assistant message is
the answer prefix, so one forward pass gives the 20 letter logits (`letter_reader`).
The listwise ranker (`training.listwise`) and the hidden-state head
(`training.hidden_head`) read exactly this prompt.

    lookup = item_lookup(dataset.items, config)          # config: any PromptShape
    messages = render_compact(case, np.arange(20), lookup, config)
    reader = letter_reader(tokenizer)
    logits = reader.logits(model, [reader.text(messages)])  # (1, 20), letters A..T
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from evaluation.ranker import Case
from reasoning.prompt import ANSWER_PREFIX, ItemInfo, answer_letter_tokens, clean_meta, clean_title
from training.choice_logits import ChoiceLogits

COMPACT_SYSTEM = "Movie recommender: give the letter of the candidate the user watches next."


class PromptShape(Protocol):
    """The prompt settings a run config carries."""

    @property
    def history_items(self) -> int: ...

    @property
    def title_chars(self) -> int: ...

    @property
    def genres(self) -> int: ...


def letter_reader(tokenizer: Any) -> ChoiceLogits:
    """Reads the logits of the 20 answer letters " A" .. " T"."""
    return ChoiceLogits(tokenizer, answer_letter_tokens(20))


def item_lookup(items: Any, config: PromptShape) -> dict[str, ItemInfo]:
    """item id -> ItemInfo with the title cut short and the first ``genres`` genres."""
    out = {}
    for row in items.itertuples(index=False):
        title = str(row.title)
        if len(title) > config.title_chars:
            title = title[: config.title_chars].rstrip(" ,:;-")
        genres = str(getattr(row, "genres", "") or "")
        kept = "|".join(g for g in genres.split("|")[: config.genres] if g) if config.genres else ""
        year = getattr(row, "year", "")
        year_text = "" if year is None or str(year) in ("", "nan", "None") else str(year)
        out[str(row.item_id)] = ItemInfo(str(row.item_id), title, year_text, kept)
    return out


def compact_item(item: ItemInfo) -> str:
    """'Singin' in the Rain (1952, Musical)': sanitised title, year, kept genres."""
    meta = ", ".join(m for m in (clean_meta(item.year), clean_meta(item.genres)) if m)
    return f"{clean_title(item.title)} ({meta})" if meta else clean_title(item.title)


def render_compact(
    case: Case, order: np.ndarray, lookup: dict[str, ItemInfo], config: PromptShape
) -> list[dict[str, str]]:
    """Chat messages for one case with candidates in ``order``, ending in the assistant
    text ``ANSWER_PREFIX`` that the model continues with a letter."""
    unknown = ItemInfo("?", "unknown item")
    history = case.history[-config.history_items :]
    lines = ["Watched (oldest first):"]
    lines += [f"- {compact_item(lookup.get(i, unknown))}" for i in history]
    lines += ["Candidates:"]
    letters = [t.strip() for t in answer_letter_tokens(len(order))]
    for letter, j in zip(letters, order, strict=True):
        lines.append(f"({letter}) {compact_item(lookup.get(case.candidates[j], unknown))}")
    lines.append("Next?")
    return [
        {"role": "system", "content": COMPACT_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
        {"role": "assistant", "content": ANSWER_PREFIX},
    ]


def shown_position(order: np.ndarray, candidate: int) -> int:
    """Where candidate index ``candidate`` is shown (its letter) when shown in ``order``."""
    return int(np.flatnonzero(np.asarray(order) == candidate)[0])

"""What a ranking returns, and what stops it from using the LLM, in the service's words.

- `Recommendation` (of `RankedItem`s): one user's ranking, with what explains it;
- `UnknownItemsError`: given candidate ids the graph store does not know (a 4xx);
- `fallback_reason`: why the graph scorer answered instead, from the LLM's error, in the
  few fixed words a metric label and a response carry (`FALLBACK_REASONS`);
- `LLMOutcome`: how the most recent LLM call ended, for readiness checks.

>>> fallback_reason(LLMTimeout("30 s"))
'LLM timed out'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graph_store.types import Chain, HistoryEntry
from reasoning.backends import (
    LLMBadResponse,
    LLMError,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
)


class UnknownItemsError(ValueError):
    """Given candidate ids that the graph store does not know."""

    def __init__(self, item_ids: Sequence[str]) -> None:
        shown = ", ".join(repr(i) for i in list(item_ids)[:10])
        super().__init__(f"unknown candidate item ids: {shown}")
        self.item_ids = list(item_ids)


# Why the fallback ran, in the few words a metric label and the response carry.
FALLBACK_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (LLMUnavailable, "LLM unavailable"),
    (LLMTimeout, "LLM timed out"),
    (TimeoutError, "LLM timed out"),
    (LLMRequestError, "LLM rejected the request"),
    (LLMBadResponse, "LLM answered malformed"),
    (LLMError, "LLM failed"),
)


def fallback_reason(err: BaseException) -> str:
    return next(reason for kind, reason in FALLBACK_REASONS if isinstance(err, kind))


@dataclass(frozen=True)
class LLMOutcome:
    """How the most recent LLM call ended: ``ok``, or why not (``reason``, ``detail``)."""

    ok: bool
    at: float  # time.time() when it ended
    reason: str = "ok"
    detail: str = ""


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    title: str
    score: float  # higher is better; comparable within one response only
    rank: int  # 1 = best


@dataclass(frozen=True)
class Recommendation:
    """The full ranking of the candidates plus what explains it."""

    user_id: str
    items: tuple[RankedItem, ...]
    explanation: str
    thoughts: tuple[str, ...]
    chains: tuple[Chain, ...]
    valid: bool  # the model's own output parsed into a valid ranking
    reason: str  # "ok", a parser note, "cold start", or why the fallback ran
    cold_start: bool = False
    fallback: bool = False
    llm_seconds: float = 0.0  # wall time of the LLM call this ranking waited for
    raw_text: str = ""
    history: tuple[HistoryEntry, ...] = ()  # what the model was shown, oldest first

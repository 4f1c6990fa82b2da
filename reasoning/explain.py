"""Explain mode of the `Recommender`: thoughts, then a constrained answer, then a ranking.

    reasoned = await think_and_answer(llm, messages_batch, sizes, config, listeners)

Per request the model writes numbered thoughts (stopping at ``"Answer:"``), then the
answer after the thoughts and ``"\\nAnswer:"``, constrained to candidate letters when
``config.constrain_answer``; the candidate letters are scored as the answer's first
token, so letters the answer leaves out can follow by log-probability. The backend does
it in one call (`reasoning.backends.reasoned.reason`): the in-process model prefills
each request once; vLLM streams the thoughts.

*Listeners.* A request may carry a `RecommendationListener`: it is told the evidence
(history, candidates, chains) as soon as the graph has answered, then receives the
thoughts' text as the model writes it (from whatever thread runs the model: it must be
thread-safe), and stops the model's work on that request once ``wanted`` turns false
(the client went away). The streaming endpoint of the service is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from graph_store.types import Chain, HistoryEntry, Item
from reasoning.backends import AnswerConstraint, GenerationParams, LLMBackend
from reasoning.backends.reasoned import AnswerSpec, Reasoned, reason
from reasoning.prompt import ANSWER_PREFIX, answer_letter_tokens, answer_regex


class RecommendationListener(Protocol):
    """Watches one request being answered; see the module docstring."""

    def evidence(
        self, history: Sequence[HistoryEntry], candidates: Sequence[Item], chains: Sequence[Chain]
    ) -> None: ...

    def thought_text(self, delta: str) -> None: ...

    @property
    def wanted(self) -> bool: ...


class ExplainConfig(Protocol):
    @property
    def max_reasoning_tokens(self) -> int: ...
    @property
    def temperature(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def constrain_answer(self) -> bool: ...


class _Observers:
    """The per-request listeners as one `ThoughtObserver` of a batch."""

    def __init__(self, listeners: Sequence[RecommendationListener | None]) -> None:
        self.listeners = listeners

    def thought_text(self, index: int, delta: str) -> None:
        listener = self.listeners[index]
        if listener is not None:
            listener.thought_text(delta)

    def wanted(self, index: int) -> bool:
        listener = self.listeners[index]
        return listener is None or listener.wanted


def answer_prefix(thoughts: str) -> str:
    """The assistant text before the answer: the thoughts, a newline, "Answer:"."""
    body = thoughts.rstrip()
    return (body + "\n" if body else "") + ANSWER_PREFIX


def answer_spec(n_candidates: int, constrain: bool) -> AnswerSpec:
    constraint = (
        AnswerConstraint(regex=answer_regex(n_candidates, with_prefix=False)) if constrain else None
    )
    return AnswerSpec(
        prefix_of=answer_prefix,
        choices=tuple(answer_letter_tokens(n_candidates)),
        max_tokens=4 * n_candidates + 4,
        constraint=constraint,
    )


async def think_and_answer(
    llm: LLMBackend,
    messages_batch: Sequence[list[dict[str, str]]],
    sizes: Sequence[int],
    config: ExplainConfig,
    listeners: Sequence[RecommendationListener | None] | None = None,
) -> list[Reasoned]:
    """Per request (``sizes``: its number of candidates), thoughts, answer, letter scores."""
    thinking = GenerationParams(
        max_tokens=config.max_reasoning_tokens,
        temperature=config.temperature,
        seed=config.seed,
        stop=(ANSWER_PREFIX,),
    )
    specs = [answer_spec(n, config.constrain_answer) for n in sizes]
    observer = _Observers(listeners) if listeners and any(listeners) else None
    return await reason(llm, list(messages_batch), thinking, specs, observer)


__all__ = [
    "RecommendationListener",
    "answer_prefix",
    "answer_spec",
    "think_and_answer",
]

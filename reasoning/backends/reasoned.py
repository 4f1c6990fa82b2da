"""Think, then answer, in one backend call: what explain mode asks of a model.

    answers = [AnswerSpec(prefix_of=lambda t: t + "\\nAnswer:", choices=(" A", " B"),
                          max_tokens=12, constraint=AnswerConstraint(regex=r" [AB]( > [AB])*"))]
    results = await reason(backend, [messages], GenerationParams(stop=("Answer:",)), answers,
                           observer=printer)

For each conversation the model writes its thoughts freely (``thinking``), then the answer
is written after ``prefix_of(thoughts)`` (the assistant's text so far, ending where the
answer starts) under the spec's constraint, and the choices are scored as the answer's
first token (log-probabilities normalised over the choices, as ``score_choices`` does).

A backend may do all of this itself (``reason`` method): the in-process model reuses the
thoughts' KV cache for the answer, so a request is prefilled once
(`reasoning.backends.local_reasoning`). Otherwise `reason_in_steps` composes it from
``generate`` and ``score_choices``, streaming the thoughts through the backend's
``generate_stream`` when it has one (the OpenAI-compatible backend does: vLLM's
streaming API).

*Observer.* ``observer.thought_text(index, delta)`` receives the thoughts of conversation
``index`` as they are written (possibly from a worker thread: it must be thread-safe and
quick), in pieces whose concatenation is the final thoughts' text; ``observer.wanted(index)``
turning false (the client went away) lets the backend stop working on that conversation:
its result is then `Reasoned.abandoned` and carries no answer.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reasoning.backends.base import (
    AnswerConstraint,
    Conversation,
    Generation,
    GenerationParams,
    LLMBackend,
    continue_with,
)


@dataclass(frozen=True)
class AnswerSpec:
    """How one conversation's answer follows its thoughts."""

    prefix_of: Callable[[str], str] = field(
        metadata={"help": "The assistant text before the answer, given the thoughts' text."}
    )
    choices: tuple[str, ...] = field(
        metadata={"help": "Single tokens scored as the answer's start."}
    )
    max_tokens: int = field(metadata={"help": "Most answer tokens."})
    constraint: AnswerConstraint | None = field(
        default=None, metadata={"help": "The answer's constraint; None = free (greedy)."}
    )


@dataclass(frozen=True)
class Reasoned:
    """One conversation's thoughts, the assistant prefix before its answer, the answer
    (greedy) and the choices' log-probabilities as the answer's first token."""

    thoughts: Generation
    prefix: str
    answer: str
    choice_logprobs: dict[str, float]
    abandoned: bool = False  # nobody wanted it any more: no answer was written


class ThoughtObserver(Protocol):
    def thought_text(self, index: int, delta: str) -> None: ...

    def wanted(self, index: int) -> bool: ...


@runtime_checkable
class StreamingBackend(Protocol):
    """A backend that can stream one completion's text as it is generated."""

    def generate_stream(
        self, messages: Conversation, params: GenerationParams
    ) -> AsyncIterator[str | Generation]:
        """Text deltas as they arrive, then the finished `Generation` as the last item."""
        ...


@runtime_checkable
class ReasoningBackend(Protocol):
    async def reason(
        self,
        messages_batch: Sequence[Conversation],
        thinking: GenerationParams,
        answers: Sequence[AnswerSpec],
        observer: ThoughtObserver | None = None,
    ) -> list[Reasoned]: ...


async def reason(
    backend: LLMBackend,
    messages_batch: Sequence[Conversation],
    thinking: GenerationParams,
    answers: Sequence[AnswerSpec],
    observer: ThoughtObserver | None = None,
) -> list[Reasoned]:
    """Thoughts then answers for every conversation, by the backend's own ``reason`` when
    it has one, else `reason_in_steps`."""
    if len(answers) != len(messages_batch):
        raise ValueError(f"{len(answers)} answer specs for {len(messages_batch)} conversations")
    if isinstance(backend, ReasoningBackend):
        return await backend.reason(messages_batch, thinking, answers, observer)
    return await reason_in_steps(backend, messages_batch, thinking, answers, observer)


async def reason_in_steps(
    backend: LLMBackend,
    messages_batch: Sequence[Conversation],
    thinking: GenerationParams,
    answers: Sequence[AnswerSpec],
    observer: ThoughtObserver | None = None,
) -> list[Reasoned]:
    """Thoughts (streamed when the backend can), then per conversation the answer and the
    choice scores, each its own request (a server with a prefix cache, such as vLLM,
    reuses the prompt's cached blocks)."""
    if isinstance(backend, StreamingBackend) and observer is not None:
        thoughts = list(
            await asyncio.gather(
                *(
                    _streamed(backend, messages, thinking, index, observer)
                    for index, messages in enumerate(messages_batch)
                )
            )
        )
    else:
        thoughts = await backend.generate(messages_batch, thinking)
        if observer is not None:
            for index, generation in enumerate(thoughts):
                observer.thought_text(index, generation.text)
    return list(
        await asyncio.gather(
            *(
                _answer(backend, messages, generation, spec)
                for messages, generation, spec in zip(
                    messages_batch, thoughts, answers, strict=True
                )
            )
        )
    )


async def _streamed(
    backend: StreamingBackend,
    messages: Conversation,
    params: GenerationParams,
    index: int,
    observer: ThoughtObserver,
) -> Generation:
    async for piece in backend.generate_stream(messages, params):
        if isinstance(piece, Generation):
            return piece
        observer.thought_text(index, piece)
    raise RuntimeError("generate_stream ended without its Generation")


async def _answer(
    backend: LLMBackend, messages: Conversation, thoughts: Generation, spec: AnswerSpec
) -> Reasoned:
    prefix = spec.prefix_of(thoughts.text)
    continued = continue_with(messages, prefix)
    params = GenerationParams(
        max_tokens=spec.max_tokens, temperature=0.0, constraint=spec.constraint
    )
    answer, scores = await asyncio.gather(
        backend.generate([continued], params),
        backend.score_choices([messages], prefix, spec.choices),
    )
    return Reasoned(thoughts, prefix, answer[0].text, scores[0])


def abandoned(thoughts: Generation, spec: AnswerSpec) -> Reasoned:
    """The result for a conversation nobody waits for any more."""
    uniform = -math.log(len(spec.choices))
    return Reasoned(thoughts, "", "", dict.fromkeys(spec.choices, uniform), abandoned=True)


__all__ = [
    "AnswerSpec",
    "Reasoned",
    "ReasoningBackend",
    "StreamingBackend",
    "ThoughtObserver",
    "abandoned",
    "reason",
    "reason_in_steps",
]

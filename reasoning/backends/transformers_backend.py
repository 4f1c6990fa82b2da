"""In-process LLM backend on Hugging Face transformers: the embedded default on a laptop.

    backend = TransformersBackend(LocalBackendConfig(model_path="path/to/model"))
    gens = await backend.generate(batch, GenerationParams(max_tokens=128))
    scores = await backend.score_choices(batch, "Answer:", [" A", " B"])

Same contract as the vLLM backend (see :mod:`reasoning.backends.base`):

* prompts are rendered with the model's own chat template, exactly as vLLM renders them
  (``add_generation_prompt``, or ``continue_final_message`` when the last message is the
  assistant's), and tokenised without extra special tokens;
* batches run ``batch_size`` conversations at a time, left-padded; greedy or sampled;
  ``seed`` makes sampling reproducible;
* constrained completions use :mod:`reasoning.backends.constrained` (vLLM's token-by-token
  rule), one conversation at a time;
* ``score_choices`` is one forward pass over the batch, log-softmax over the choice tokens;
* the model runs in a worker thread (one call at a time) so the event loop stays free;
  ``timeout_s`` stops generation at the deadline and raises :class:`LLMTimeout`.

*Stopping.* A call ends when its deadline passes or when the coroutine awaiting it is
cancelled (``asyncio.wait_for`` in the Recommender, a client gone): the cancellation sets
the call's stop flag, and the worker thread checks the flag and the deadline before every
forward pass of the model and of each of its decoder layers (a pre-forward hook), so a
generation stops within one layer of one token and a scoring prefill within one layer,
instead of running to completion while the next calls wait for the lock. A call whose
flag is set before it gets the lock never starts. The stopped thread raises
:class:`LLMTimeout`; a cancelled caller has already gone.

The model is a full model folder, or a base folder plus a PEFT LoRA adapter
(``adapter_path``; merged at load), or an adapter folder alone (its base is read from
``adapter_config.json``). Device ``cpu`` (default), ``cuda`` or ``auto``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from reasoning.backends.base import (
    Conversation,
    FinishReason,
    Generation,
    GenerationParams,
    LLMRequestError,
    LLMTimeout,
    continue_with,
    render_chat,
    validate_choices,
    validate_conversation,
)
from reasoning.backends.constrained import TokenTexts, constrained_decode
from reasoning.backends.model_folders import load_model_folder
from reasoning.backends.reasoned import AnswerSpec, Reasoned, ThoughtObserver
from reasoning.backends.stopping import StopCheck, Stopped, stop_hooks

T = TypeVar("T")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class LocalBackendConfig:
    """Which model the in-process backend loads and how it runs it."""

    model_path: str = field(metadata={"help": "Model folder (or a PEFT adapter folder)."})
    adapter_path: str | None = field(
        default=None, metadata={"help": "Optional LoRA adapter folder applied to model_path."}
    )
    device: str = field(default="cpu", metadata={"help": "cpu, cuda or auto (cuda if available)."})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16."})
    batch_size: int = field(default=8, metadata={"help": "Conversations per forward batch."})
    timeout_s: float | None = field(
        default=None, metadata={"help": "Per-call time limit in seconds; None = no limit."}
    )

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto, got {self.device!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class TransformersBackend:
    """An :class:`~reasoning.backends.base.LLMBackend` running a transformers model in-process."""

    name = "local"

    def __init__(self, config: LocalBackendConfig) -> None:
        self.config = config
        self.device = _resolve_device(config.device)
        self.model, self.tokenizer = load_model_folder(
            config.model_path, config.adapter_path, DTYPES[config.dtype], self.device
        )
        self._prepare_tokenizer()

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, config: LocalBackendConfig
    ) -> TransformersBackend:
        """Wrap an already loaded model (e.g. during training); ``config.model_path`` is a label."""
        backend = cls.__new__(cls)
        backend.config = config
        backend.device = next(model.parameters()).device
        backend.model, backend.tokenizer = model, tokenizer
        backend._prepare_tokenizer()
        return backend

    def _prepare_tokenizer(self) -> None:
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise ValueError(f"{self.config.model_path}: the tokenizer has no chat template")
        eos = self.model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in eos_list if e is not None} | {
            int(self.tokenizer.eos_token_id)
        }
        self.token_texts = TokenTexts(self.tokenizer)
        self._lock = threading.Lock()
        self._stops = stop_hooks(self.model)  # worker thread -> its call's stop check

    async def ping(self) -> str:
        """The model is loaded in this process, so it can answer."""
        return f"in-process model {Path(self.config.model_path).name} on {self.device.type}"

    async def aclose(self) -> None:
        return None

    async def generate(
        self, messages_batch: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        chosen = params or GenerationParams()
        prompts = [self.render(m) for m in messages_batch]
        return await self._run(lambda stop: self._generate_all(prompts, chosen, stop))

    async def score_choices(
        self, messages_batch: Sequence[Conversation], assistant_prefix: str, choices: Sequence[str]
    ) -> list[dict[str, float]]:
        listed = validate_choices(choices)
        choice_ids = [self._single_token(c) for c in listed]
        prompts = [self.render(continue_with(m, assistant_prefix)) for m in messages_batch]
        rows = await self._run(lambda stop: self._choice_logprobs(prompts, choice_ids, stop))
        return [dict(zip(listed, row, strict=True)) for row in rows]

    async def line_states(
        self, messages_batch: Sequence[Conversation], n: int, layers: tuple[int, ...]
    ) -> np.ndarray:
        """Hidden states of each compact prompt's ``n`` candidate lines, as
        `reasoning.compact.line_states` reads them (`reasoning.fused.StateReader`)."""
        from reasoning.compact import line_states

        prompts = [self.render(m) for m in messages_batch]

        def work(stop: StopCheck) -> np.ndarray:
            parts = []
            for chunk in self._chunks(prompts):
                if stop():
                    raise self._timeout(stop)
                parts.append(line_states(self.model, self.tokenizer, chunk, n, layers)[0])
            return np.concatenate(parts)

        return await self._run(work)

    async def reason(
        self,
        messages_batch: Sequence[Conversation],
        thinking: GenerationParams,
        answers: Sequence[AnswerSpec],
        observer: ThoughtObserver | None = None,
    ) -> list[Reasoned]:
        """Thoughts, then the constrained answer on the thoughts' own KV cache: one prefill
        per conversation (see :mod:`reasoning.backends.local_reasoning`)."""
        from reasoning.backends.local_reasoning import reason_locally

        conversations = list(messages_batch)
        for messages in conversations:
            validate_conversation(messages)
        choice_ids = [[self._single_token(c) for c in spec.choices] for spec in answers]
        return await self._run(
            lambda stop: reason_locally(
                self, conversations, thinking, answers, choice_ids, observer, stop
            )
        )

    def render(self, messages: Conversation) -> str:
        """The prompt text exactly as the chat template (and vLLM) renders ``messages``."""
        return render_chat(self.tokenizer, messages)

    async def _run(self, work: Callable[[StopCheck], T]) -> T:
        timeout = self.config.timeout_s
        deadline = time.monotonic() + timeout if timeout is not None else None
        stop = StopCheck(deadline)
        try:
            return await asyncio.to_thread(self._locked, work, stop)
        except asyncio.CancelledError:
            stop.cancelled.set()  # the worker thread stops at its next forward pass
            raise

    def _locked(self, work: Callable[[StopCheck], T], stop: StopCheck) -> T:
        with self._lock, torch.inference_mode():
            if stop():  # cancelled while waiting for the lock
                raise self._timeout(stop)
            thread = threading.get_ident()
            self._stops[thread] = stop
            try:
                result = work(stop)
            except Stopped:
                raise self._timeout(stop) from None
            finally:
                del self._stops[thread]
        if stop():
            raise self._timeout(stop)
        return result

    def _timeout(self, stop: StopCheck) -> LLMTimeout:
        if stop.cancelled.is_set():
            return LLMTimeout(f"{self.config.model_path}: the call was cancelled")
        return LLMTimeout(f"{self.config.model_path}: no answer within {self.config.timeout_s:g} s")

    def _encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        return {key: value.to(self.device) for key, value in batch.items()}

    def _chunks(self, items: list[str]) -> list[list[str]]:
        size = self.config.batch_size
        return [items[i : i + size] for i in range(0, len(items), size)]

    def _generate_all(
        self, prompts: list[str], params: GenerationParams, stop: StopCheck
    ) -> list[Generation]:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        results: list[Generation] = []
        for chunk in self._chunks(prompts):
            if params.constraint is not None:
                results.extend(self._constrained(p, params, stop) for p in chunk)
            else:
                results.extend(self._free_chunk(chunk, params, stop))
        return results

    def _free_chunk(
        self, prompts: list[str], params: GenerationParams, stop: StopCheck
    ) -> list[Generation]:
        start = time.perf_counter()
        batch = self._encode(prompts)
        output = self.run_generate(batch, params, stop)
        latency = time.perf_counter() - start
        prompt_len = batch["input_ids"].shape[1]
        prompt_counts = batch["attention_mask"].sum(dim=1).tolist()
        return [
            self._finish(
                output[row, prompt_len:].tolist(), params, int(prompt_counts[row]), latency
            )
            for row in range(len(prompts))
        ]

    def run_generate(
        self,
        batch: dict[str, torch.Tensor],
        params: GenerationParams,
        stop: StopCheck,
        *,
        streamer: Any = None,
        row_done: Callable[[int], bool] | None = None,
        keep_cache: bool = False,
    ) -> Any:
        """``model.generate`` on an encoded batch under ``params``, stopped by ``stop``;
        ``row_done(row)`` true ends that row early; ``keep_cache`` returns the generate
        output with its ``past_key_values`` instead of the sequences alone."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Deadline(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
                late = stop()
                done = [
                    late or (row_done is not None and row_done(row))
                    for row in range(len(input_ids))
                ]
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        sampling = params.temperature > 0
        return self.model.generate(
            **batch,
            max_new_tokens=params.max_tokens,
            do_sample=sampling,
            temperature=params.temperature if sampling else None,
            top_p=params.top_p if sampling else None,
            top_k=None,
            stop_strings=list(params.stop) or None,
            tokenizer=self.tokenizer if params.stop else None,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
            stopping_criteria=StoppingCriteriaList([_Deadline()]),
            streamer=streamer,
            return_dict_in_generate=keep_cache,
        )

    def _finish(
        self, new_ids: list[int], params: GenerationParams, prompt_tokens: int, latency: float
    ) -> Generation:
        finish: FinishReason = "length"
        kept, counted = new_ids, len(new_ids)
        for index, token in enumerate(new_ids):
            if token in self.eos_ids or token == self.tokenizer.pad_token_id:
                kept = new_ids[:index]
                counted = index + 1 if token in self.eos_ids else index
                finish = "stop"
                break
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in params.stop) if i >= 0), default=-1)
        if cut >= 0:
            text, finish = text[:cut], "stop"
        return Generation(text, finish, prompt_tokens, counted, latency)

    def _constrained(self, prompt: str, params: GenerationParams, stop: StopCheck) -> Generation:
        assert params.constraint is not None
        start = time.perf_counter()
        prompt_ids = self._encode([prompt])["input_ids"]
        generator = None
        if params.temperature > 0:
            generator = torch.Generator()
            generator.manual_seed(
                params.seed if params.seed is not None else int(torch.seed() % 2**63)
            )
        result = constrained_decode(
            self.model,
            prompt_ids,
            params.constraint.as_regex(),
            self.token_texts,
            self.eos_ids,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            generator=generator,
            deadline=stop.deadline,
        )
        text = self.tokenizer.decode(
            [t for t in result.token_ids if t not in self.eos_ids], skip_special_tokens=True
        )
        latency = time.perf_counter() - start
        return Generation(
            text, result.finish_reason, prompt_ids.shape[1], len(result.token_ids), latency
        )

    def _choice_logprobs(
        self, prompts: list[str], choice_ids: list[int], stop: StopCheck
    ) -> list[list[float]]:
        rows: list[list[float]] = []
        index = torch.tensor(choice_ids, device=self.device)
        for chunk in self._chunks(prompts):
            if stop():
                break  # the caller raises LLMTimeout
            batch = self._encode(chunk)
            positions = (batch["attention_mask"].cumsum(dim=1) - 1).clamp(min=0)
            # left padding: the last position is every row's next token; keep only its logits
            output = self.model(**batch, position_ids=positions, logits_to_keep=1, use_cache=False)
            logits = output.logits[:, -1, :].float()
            rows.extend(torch.log_softmax(logits[:, index], dim=-1).tolist())
        return rows

    def _single_token(self, choice: str) -> int:
        ids = self.tokenizer.encode(choice, add_special_tokens=False)
        if len(ids) != 1:
            raise LLMRequestError(
                f"choice {choice!r} is {len(ids)} tokens for this tokenizer; "
                "choices must be single tokens"
            )
        return int(ids[0])


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)

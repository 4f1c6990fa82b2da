"""Explain mode on the in-process model with one prefill per conversation.

`reason_locally` (run by `TransformersBackend.reason` in its worker thread):

1. the thoughts of the whole batch are generated together (``model.generate``, left
   padded), their tokens streamed to the observer as they are chosen (`_RowStreamer`),
   and generate's KV cache is kept;
2. per conversation, the answer prompt (the conversation continued with
   ``prefix_of(thoughts)``) is tokenised; the tokens it shares with what the model has
   already read (prompt + generated thoughts: all of it, except where the re-tokenised
   thoughts differ at the end) are taken from that cache, row sliced out and padding
   dropped, and only the rest is fed to the model;
3. the constrained answer is decoded on that cache (`constrained_decode` with ``past``),
   and the choices are scored from the logits of its first step: the same position
   ``score_choices`` would prefill the whole prompt again for.

Before this, an explained request cost three prefills of the prompt (thoughts, answer,
choice scores). The answer and scores are what the three-request path computes, up to
floating-point rounding (``tests/reasoning/test_local_reasoning.py`` checks they agree).

A row whose observer says it is no longer wanted (the client left) is finished early by
generate's stopping criteria, gets no answer, and comes back `Reasoned.abandoned`; when
no row is wanted generation ends. A free (unconstrained) answer is decoded with the
pattern ``(?s).*``: greedy, ending at end-of-sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from reasoning.backends.base import Conversation, GenerationParams, continue_with
from reasoning.backends.constrained import constrained_decode
from reasoning.backends.reasoned import AnswerSpec, Reasoned, ThoughtObserver, abandoned

if TYPE_CHECKING:
    from reasoning.backends.transformers_backend import StopCheck, TransformersBackend

FREE_ANSWER = r"(?s).*"


def reason_locally(
    backend: TransformersBackend,
    conversations: list[Conversation],
    thinking: GenerationParams,
    answers: Sequence[AnswerSpec],
    choice_ids: list[list[int]],
    observer: ThoughtObserver | None,
    stop: StopCheck,
) -> list[Reasoned]:
    if thinking.seed is not None:
        torch.manual_seed(thinking.seed)
    size = backend.config.batch_size
    results: list[Reasoned] = []
    for offset in range(0, len(conversations), size):
        results.extend(
            _chunk(
                backend,
                conversations[offset : offset + size],
                thinking,
                answers[offset : offset + size],
                choice_ids[offset : offset + size],
                observer,
                stop,
                offset,
            )
        )
    return results


def _chunk(
    backend: TransformersBackend,
    conversations: list[Conversation],
    thinking: GenerationParams,
    answers: Sequence[AnswerSpec],
    choice_ids: list[list[int]],
    observer: ThoughtObserver | None,
    stop: StopCheck,
    offset: int,
) -> list[Reasoned]:
    start = time.perf_counter()
    batch = backend._encode([backend.render(m) for m in conversations])
    streamer = (
        _RowStreamer(backend, len(conversations), thinking.stop, observer, offset)
        if observer is not None
        else None
    )

    def row_done(row: int) -> bool:
        return observer is not None and not observer.wanted(offset + row)

    output = backend.run_generate(
        batch, thinking, stop, streamer=streamer, row_done=row_done, keep_cache=True
    )
    latency = time.perf_counter() - start
    sequences, cache = output.sequences, output.past_key_values
    prompt_len = batch["input_ids"].shape[1]
    real = batch["attention_mask"].sum(dim=1).tolist()
    results = []
    for row, (messages, spec) in enumerate(zip(conversations, answers, strict=True)):
        thoughts = backend._finish(
            sequences[row, prompt_len:].tolist(), thinking, int(real[row]), latency
        )
        if row_done(row):
            results.append(abandoned(thoughts, spec))
            continue
        pad = prompt_len - int(real[row])
        seen = sequences[row, pad:].tolist()
        results.append(
            _answer(backend, messages, thoughts, spec, choice_ids[row], cache, row, pad, seen, stop)
        )
    return results


def _answer(
    backend: TransformersBackend,
    messages: Conversation,
    thoughts: Any,
    spec: AnswerSpec,
    choice_ids: list[int],
    cache: Any,
    row: int,
    pad: int,
    seen: list[int],
    stop: StopCheck,
) -> Reasoned:
    """The constrained answer after ``spec.prefix_of(thoughts.text)``, on row ``row`` of
    ``cache`` (whose columns from ``pad`` on hold ``seen``, but for the last token)."""
    prefix = spec.prefix_of(thoughts.text)
    full = backend._encode([backend.render(continue_with(messages, prefix))])["input_ids"]
    wanted = full[0].tolist()
    cached = cache.get_seq_length() - pad  # generate never feeds its last token back
    common = 0
    limit = min(len(wanted) - 1, cached, len(seen))  # feed at least one token
    while common < limit and wanted[common] == seen[common]:
        common += 1
    row_cache = _row_cache(backend.model, cache, row, pad, common)
    pattern = spec.constraint.as_regex() if spec.constraint is not None else FREE_ANSWER
    result = constrained_decode(
        backend.model,
        full[:, common:],
        pattern,
        backend.token_texts,
        backend.eos_ids,
        max_tokens=spec.max_tokens,
        deadline=stop.deadline,
        past=row_cache,
    )
    text = backend.tokenizer.decode(
        [t for t in result.token_ids if t not in backend.eos_ids], skip_special_tokens=True
    )
    assert result.first_logits is not None
    index = torch.tensor(choice_ids, device=result.first_logits.device)
    logprobs = torch.log_softmax(result.first_logits[index], dim=-1).tolist()
    return Reasoned(thoughts, prefix, text, dict(zip(spec.choices, logprobs, strict=True)))


def _row_cache(model: Any, cache: Any, row: int, pad: int, length: int) -> Any:
    """A one-row cache holding ``length`` tokens of batch row ``row`` (padding dropped)."""
    from transformers import DynamicCache

    one = DynamicCache(config=model.config)
    if length == 0:
        return one
    for layer_index, layer in enumerate(cache.layers):
        keys = layer.keys[row : row + 1, :, pad : pad + length].clone()
        values = layer.values[row : row + 1, :, pad : pad + length].clone()
        one.update(keys, values, layer_index)
    return one


class _RowStreamer:
    """A generate streamer for a batch: per row, the new text as tokens arrive, held back
    while it could be the start of a stop string or an unfinished character, and cut at
    the first stop string or end-of-sequence, so the pieces add up to the final text."""

    def __init__(
        self,
        backend: TransformersBackend,
        rows: int,
        stops: Sequence[str],
        observer: ThoughtObserver,
        offset: int,
    ) -> None:
        self.tokenizer = backend.tokenizer
        self.ends = backend.eos_ids | {int(backend.tokenizer.pad_token_id)}
        self.stops = list(stops)
        self.observer = observer
        self.offset = offset
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        self.sent = [0] * rows
        self.done = [False] * rows
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate first puts the prompt
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.done[row]:
                continue
            if token in self.ends:
                self._flush(row, final=True)
                continue
            self.ids[row].append(int(token))
            self._flush(row, final=False)

    def end(self) -> None:
        for row in range(len(self.ids)):
            if not self.done[row]:
                self._flush(row, final=True)

    def _flush(self, row: int, final: bool) -> None:
        text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            text, final = text[:cut], True
        if not final:
            text = text[: len(text) - _held_back(text, self.stops)]
        if final:
            self.done[row] = True
        if len(text) > self.sent[row]:
            self.observer.thought_text(self.offset + row, text[self.sent[row] :])
            self.sent[row] = len(text)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many final characters of ``text`` to hold: a partial stop string, or an
    incomplete character (decoded as U+FFFD)."""
    held = len(text) - len(text.rstrip("\ufffd"))
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                held = max(held, size)
                break
    return held

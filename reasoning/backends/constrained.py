"""Regex-constrained decoding for in-process transformers models.

The same rule vLLM's structured outputs apply, token by token: a token is allowed when the
text so far plus the token can still be completed to a full match of the pattern; the
end-of-sequence token is allowed only when the text already fully matches. Greedy decoding
picks the best allowed token; sampling uses the Gumbel-max trick over the temperature-scaled
logits, which draws from the distribution renormalised over the allowed tokens. (Top-p is
applied before the mask here, after it in vLLM; with top_p=1 the two agree.)

    texts = TokenTexts(tokenizer)
    result = constrained_decode(model, prompt_ids, r" [A-T]( > [A-T])*", texts, eos_ids,
                                max_tokens=32)

Used by :mod:`reasoning.backends.transformers_backend`; choices become an alternation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import regex
import torch

from reasoning.backends.base import FinishReason


class TokenTexts:
    """The text of every vocabulary token, decoded once (lazily) per tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._texts: list[str] | None = None
        self.special_ids = set(tokenizer.all_special_ids)

    def __getitem__(self, token_id: int) -> str:
        if self._texts is None:
            size = len(self.tokenizer)
            self._texts = self.tokenizer.batch_decode(
                [[i] for i in range(size)],
                skip_special_tokens=False,
                clean_up_tokenization_spaces=False,
            )
        return self._texts[token_id] if token_id < len(self._texts) else ""


@dataclass(frozen=True)
class ConstrainedResult:
    token_ids: list[int]
    text: str
    finish_reason: FinishReason
    timed_out: bool
    first_logits: torch.Tensor | None = None  # raw next-token logits before the first token


def constrained_decode(
    model: Any,
    prompt_ids: torch.Tensor,
    pattern: str,
    token_texts: TokenTexts,
    eos_ids: set[int],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    deadline: float | None = None,
    past: Any = None,
) -> ConstrainedResult:
    """Decode one sequence (``prompt_ids``: shape (1, L)) whose output fully matches ``pattern``.

    ``past``: a KV cache holding the tokens before ``prompt_ids`` (which then holds only the
    rest of the prompt, at least one token): the prompt is not prefilled again.
    ``first_logits`` of the result are the raw logits the first token was chosen from."""
    compiled = regex.compile(pattern)
    ids: list[int] = []
    text = ""
    first_logits: torch.Tensor | None = None
    step_input = prompt_ids
    finish: FinishReason = "length"
    for _ in range(max_tokens):
        if deadline is not None and time.monotonic() > deadline:
            return ConstrainedResult(ids, text, "length", timed_out=True, first_logits=first_logits)
        output = model(input_ids=step_input, past_key_values=past, use_cache=True, logits_to_keep=1)
        past = output.past_key_values
        logits = output.logits[0, -1].float()
        if first_logits is None:
            first_logits = logits
        scores = _ranking_scores(logits, temperature, top_p, generator)
        chosen = _best_allowed(scores, text, compiled, token_texts, eos_ids)
        if chosen is None or chosen in eos_ids:
            if chosen is not None:
                ids.append(chosen)
            finish = "stop"
            break
        ids.append(chosen)
        text += token_texts[chosen]
        step_input = torch.tensor([[chosen]], device=prompt_ids.device)
    return ConstrainedResult(ids, text, finish, timed_out=False, first_logits=first_logits)


def _ranking_scores(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    if temperature <= 0:
        return logits
    scaled = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(scaled, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p
        scaled = scaled.clone()
        scaled[order[drop_sorted]] = -math.inf
    uniform = torch.rand(scaled.shape, generator=generator, device="cpu").to(scaled.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    return scaled + gumbel


def _best_allowed(
    scores: torch.Tensor,
    text: str,
    compiled: Any,
    token_texts: TokenTexts,
    eos_ids: set[int],
) -> int | None:
    complete = compiled.fullmatch(text) is not None
    values, order = torch.sort(scores, descending=True)
    for value, token in zip(values.tolist(), order.tolist(), strict=True):
        if value == -math.inf:
            return None
        if token in eos_ids:
            if complete:
                return token
            continue
        if token in token_texts.special_ids:
            continue
        piece = token_texts[token]
        if piece and "\ufffd" not in piece and compiled.fullmatch(text + piece, partial=True):
            return token
    return None

"""Read a causal LM's next-token logits over a fixed set of one-token choices.

Both trained heads that score in one forward pass use this: the listwise ranker (the 20
letters " A" .. " T" after "Answer:") and the rating head ("1" .. "5" after ``<rate>``).
Chat messages are rendered with the tokenizer's template, continuing the final
(assistant) message, batched with left padding, and only the last position's logits are
computed (``logits_to_keep=1``: no (batch, length, vocabulary) tensor).

    reader = ChoiceLogits(tokenizer, ["1", "2", "3", "4", "5"])
    texts = [reader.text(messages) for messages in batch]
    logits = reader.logits(model, texts)      # torch tensor (len(texts), 5)
    everything = reader.next_logits(model, texts)  # (len(texts), vocabulary)
    reader.tokens                             # prompt tokens read so far (padding excluded)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.errors import UserInputError


class ChoiceLogits:
    """Chat rendering, batching and the logits of ``choices`` at the answer position."""

    def __init__(self, tokenizer: Any, choices: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        ids = []
        for choice in choices:
            encoded = tokenizer.encode(choice, add_special_tokens=False)
            if len(encoded) != 1:
                raise UserInputError(f"{choice!r} is not one token for this tokenizer")
            ids.append(encoded[0])
        self.choice_ids = ids
        self.tokens = 0

    def text(self, messages: list[dict[str, str]]) -> str:
        """The prompt text, ending inside the final message (the model continues it)."""
        return str(
            self.tokenizer.apply_chat_template(
                messages, tokenize=False, continue_final_message=True
            )
        )

    def count(self, text: str) -> int:
        """Tokens in ``text`` as the model reads it."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def next_logits(self, model: Any, texts: list[str]) -> Any:
        """(len(texts), vocabulary) next-token logits after each text."""
        batch = self.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        self.tokens += int(batch["attention_mask"].sum())
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1
        )
        return out.logits[:, -1, :]

    def logits(self, model: Any, texts: list[str]) -> Any:
        """(len(texts), len(choices)) next-token logits of the choices after each text."""
        return self.next_logits(model, texts)[:, self.choice_ids]

"""Backend contract tests, run against a real vLLM server AND the in-process backend.

Both serve the same tiny random Qwen2 (float32), so besides the contract each test can
compare the two: same prompt token counts, same constrained greedy answers, same choice
log-probabilities. Run: ``.venv/bin/pytest tests/reasoning/test_backends.py``.
"""

from __future__ import annotations

import math
import re

import pytest

from reasoning.backends import (
    AnswerConstraint,
    GenerationParams,
    LLMBackend,
    LLMRequestError,
    OpenAICompatBackend,
    OpenAICompatConfig,
    continue_with,
)
from reasoning.backends.transformers_backend import TransformersBackend
from tests.harness.vllm import VLLMServer

SYSTEM = {"role": "system", "content": "You are a recommender. Think, then answer with letters."}
LETTERS = [chr(ord("A") + i) for i in range(20)]
SPACED = [" " + letter for letter in LETTERS]
ANSWER_REGEX = r" [A-T]( > [A-T]){2}"


def conversation(index: int) -> list[dict[str, str]]:
    titles = ["Heat (1995)", "Fargo (1996)", "Alien (1979)", "Babe (1995)", "Casablanca (1942)"]
    history = "; ".join(titles[index % 5 :] + titles[: index % 5])
    more = " Also Heat." * index
    return [
        SYSTEM,
        {"role": "user", "content": f"User watched: {history}.{more} Candidates: A..T."},
    ]


def prompt_token_count(local: TransformersBackend, messages: list[dict[str, str]]) -> int:
    return len(local.tokenizer(local.render(messages), add_special_tokens=False)["input_ids"])


async def test_generate_returns_text_and_counts(
    backend: LLMBackend, local_backend: TransformersBackend
) -> None:
    messages = conversation(0)
    [generation] = await backend.generate([messages], GenerationParams(max_tokens=8))
    assert isinstance(generation.text, str) and generation.text
    assert generation.finish_reason in ("stop", "length")
    assert 1 <= generation.completion_tokens <= 8
    assert generation.prompt_tokens == prompt_token_count(local_backend, messages)
    assert generation.latency_s > 0


async def test_continuation_extends_the_assistant_prefix(
    backend: LLMBackend, local_backend: TransformersBackend
) -> None:
    messages = continue_with(conversation(1), "Thought 1: you watched Heat.\nAnswer:")
    [generation] = await backend.generate(
        [messages],
        GenerationParams(max_tokens=6, constraint=AnswerConstraint(choices=(" B", " C"))),
    )
    assert generation.text in (" B", " C")
    rendered = local_backend.render(messages)
    assert rendered.endswith("Answer:") and "<|im_start|>assistant\nThought 1" in rendered
    assert generation.prompt_tokens == prompt_token_count(local_backend, messages)


async def test_batch_of_eight_keeps_order(backend: LLMBackend) -> None:
    batch = [continue_with(conversation(i), "Answer:") for i in range(8)]
    params = GenerationParams(max_tokens=12, constraint=AnswerConstraint(regex=ANSWER_REGEX))
    together = await backend.generate(batch, params)
    one_by_one = [(await backend.generate([m], params))[0] for m in batch]
    assert len(together) == 8
    assert [g.text for g in together] == [g.text for g in one_by_one]
    assert [g.prompt_tokens for g in together] == [g.prompt_tokens for g in one_by_one]
    assert len({g.prompt_tokens for g in together}) == 8, (
        "prompts differ in length: order is visible"
    )


@pytest.mark.parametrize("temperature", [0.0, 1.5])
async def test_choice_constraint_returns_only_allowed(
    backend: LLMBackend, temperature: float
) -> None:
    allowed = (" A", " C", " F", " Q")
    batch = [continue_with(conversation(i), "Answer:") for i in range(6)]
    params = GenerationParams(
        max_tokens=8, temperature=temperature, seed=11, constraint=AnswerConstraint(choices=allowed)
    )
    generations = await backend.generate(batch, params)
    assert all(g.text in allowed for g in generations)
    assert all(g.finish_reason == "stop" for g in generations)


async def test_regex_constraint_fully_matches(backend: LLMBackend) -> None:
    batch = [continue_with(conversation(i), "Answer:") for i in range(4)]
    params = GenerationParams(
        max_tokens=16, temperature=1.0, seed=5, constraint=AnswerConstraint(regex=ANSWER_REGEX)
    )
    for generation in await backend.generate(batch, params):
        assert re.fullmatch(ANSWER_REGEX, generation.text), generation.text
        assert generation.finish_reason == "stop"


async def test_score_choices_gives_every_letter_a_finite_logprob(backend: LLMBackend) -> None:
    batch = [conversation(i) for i in range(3)]
    rows = await backend.score_choices(batch, "Answer:", SPACED)
    assert len(rows) == 3
    for row in rows:
        assert list(row) == SPACED
        assert all(math.isfinite(v) and v < 0 for v in row.values())
        assert math.isclose(sum(math.exp(v) for v in row.values()), 1.0, rel_tol=1e-6)
    assert rows[0] != rows[1]


async def test_score_choices_rejects_multi_token_choices(backend: LLMBackend) -> None:
    with pytest.raises(LLMRequestError, match="single token"):
        await backend.score_choices([conversation(0)], "Answer:", [" A", " Casablanca (1942)"])


async def test_seeded_sampling_is_reproducible(backend: LLMBackend) -> None:
    batch = [conversation(2)]

    async def sample(seed: int) -> str:
        params = GenerationParams(max_tokens=16, temperature=1.0, seed=seed)
        return (await backend.generate(batch, params))[0].text

    first, again, other = await sample(7), await sample(7), await sample(8)
    assert first == again
    assert first != other


async def test_bad_conversation_is_rejected(backend: LLMBackend) -> None:
    late_system = [{"role": "user", "content": "hi"}, SYSTEM]
    with pytest.raises(ValueError, match="system prompt must come first"):
        await backend.generate([late_system])
    with pytest.raises(ValueError, match="role"):
        await backend.generate([[{"role": "robot", "content": "hi"}]])


async def test_backends_agree_on_the_same_weights(
    vllm_backend: LLMBackend, local_backend: LLMBackend
) -> None:
    batch = [conversation(i) for i in range(5)]
    remote = await vllm_backend.score_choices(batch, "Thought 1: none.\nAnswer:", SPACED)
    local = await local_backend.score_choices(batch, "Thought 1: none.\nAnswer:", SPACED)
    for remote_row, local_row in zip(remote, local, strict=True):
        for letter in SPACED:
            assert remote_row[letter] == pytest.approx(local_row[letter], abs=1e-3)
    answers = [continue_with(m, "Answer:") for m in batch]
    params = GenerationParams(max_tokens=12, constraint=AnswerConstraint(regex=ANSWER_REGEX))
    remote_text = [g.text for g in await vllm_backend.generate(answers, params)]
    local_text = [g.text for g in await local_backend.generate(answers, params)]
    assert remote_text == local_text


async def test_vllm_scores_beyond_max_logprobs_share_one_scale(
    vllm_server: VLLMServer, local_backend: LLMBackend
) -> None:
    """With top_logprobs capped at 4, twenty choices take several anchored requests."""
    config = OpenAICompatConfig(
        base_url=vllm_server.base_url, model=vllm_server.model, max_logprobs=4
    )
    capped = OpenAICompatBackend(config)
    try:
        [remote] = await capped.score_choices([conversation(3)], "Answer:", SPACED)
    finally:
        await capped.aclose()
    [local] = await local_backend.score_choices([conversation(3)], "Answer:", SPACED)
    assert list(remote) == SPACED
    for letter in SPACED:
        assert remote[letter] == pytest.approx(local[letter], abs=1e-3)

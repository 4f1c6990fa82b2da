"""Explain mode on the in-process model prefills each request once, and answers as the
three-request path (thoughts, answer, letter scores: three prefills) does.

The tiny model, real prompts of ML-100K users; the tokens the model reads are counted with
a forward hook on the real model."""

from __future__ import annotations

import threading

import pytest

from evaluation.protocol import load_cases, training_log
from graph_store.memory import MemoryGraphStore
from reasoning.backends import GenerationParams
from reasoning.backends.reasoned import reason_in_steps
from reasoning.explain import answer_spec, think_and_answer
from reasoning.prompt import ANSWER_PREFIX
from reasoning.recommender import Recommender, RecommenderConfig
from recdata import load_dataset

CONFIG = RecommenderConfig(max_reasoning_tokens=24, thoughts="model")


@pytest.fixture(scope="module")
def prepared(tiny_model_dir):
    dataset = load_dataset("ml-100k")
    graph = MemoryGraphStore.from_frames(training_log(dataset, "test"), dataset.items)
    return graph, load_cases(dataset, "test")[:3]


class TokenCounter:
    """Counts the input tokens of every forward pass of a model (prefill and decode)."""

    def __init__(self, model) -> None:
        self.tokens = 0
        self.handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.tokens += int(ids.shape[0] * ids.shape[1])

    def close(self) -> None:
        self.handle.remove()


async def _messages(graph, local_backend, cases):
    recommender = Recommender(graph, local_backend, CONFIG)
    preps = [await recommender.prepare(c.user_id, list(c.candidates)) for c in cases]
    return [p.messages for p in preps], [len(p.candidates) for p in preps]


async def test_one_prefill_answers_as_three_requests_do(local_backend, prepared) -> None:
    graph, cases = prepared
    messages, sizes = await _messages(graph, local_backend, cases)
    thinking = GenerationParams(max_tokens=24, stop=(ANSWER_PREFIX,), seed=0)
    specs = [answer_spec(n, constrain=True) for n in sizes]
    counter = TokenCounter(local_backend.model)
    try:
        counter.tokens = 0
        steps = await reason_in_steps(local_backend, messages, thinking, specs)
        three = counter.tokens
        counter.tokens = 0
        once = await local_backend.reason(messages, thinking, specs)
        one = counter.tokens
    finally:
        counter.close()
    for a, b in zip(steps, once, strict=True):
        assert a.thoughts.text == b.thoughts.text
        assert a.prefix == b.prefix and a.answer == b.answer and b.answer
        for choice, value in a.choice_logprobs.items():
            assert b.choice_logprobs[choice] == pytest.approx(value, abs=1e-3)
    prompt_tokens = sum(
        len(local_backend.tokenizer(local_backend.render(m), add_special_tokens=False).input_ids)
        for m in messages
    )
    # the three-request path reads every prompt at least three times; one prefill reads it
    # once (left padding of the batch included) plus the thoughts and answer tokens
    assert three > 3 * prompt_tokens
    assert one < 1.5 * prompt_tokens


async def test_thoughts_stream_in_pieces_that_add_up(local_backend, prepared) -> None:
    graph, cases = prepared
    messages, sizes = await _messages(graph, local_backend, cases[:2])

    class Collect:
        def __init__(self) -> None:
            self.pieces: dict[int, list[str]] = {0: [], 1: []}
            self.threads: set[int] = set()

        def thought_text(self, index: int, delta: str) -> None:
            self.threads.add(threading.get_ident())
            self.pieces[index].append(delta)

        def wanted(self, index: int) -> bool:
            return True

    seen = Collect()
    results = await think_and_answer(local_backend, messages, sizes, CONFIG, [None, None])
    streamed = await local_backend.reason(
        messages,
        GenerationParams(max_tokens=24, stop=(ANSWER_PREFIX,), seed=0),
        [answer_spec(n, constrain=True) for n in sizes],
        seen,
    )
    for index, result in enumerate(streamed):
        assert len(seen.pieces[index]) > 1  # token by token, not all at the end
        assert "".join(seen.pieces[index]) == result.thoughts.text
        assert result.thoughts.text == results[index].thoughts.text
    assert threading.get_ident() not in seen.threads  # from the model's worker thread


async def test_an_unwanted_row_stops_and_gets_no_answer(local_backend, prepared) -> None:
    graph, cases = prepared
    messages, sizes = await _messages(graph, local_backend, cases[:2])

    class DropFirst:
        def __init__(self) -> None:
            self.pieces = {0: 0, 1: 0}

        def thought_text(self, index: int, delta: str) -> None:
            self.pieces[index] += 1

        def wanted(self, index: int) -> bool:
            return index != 0 or self.pieces[0] < 2  # row 0 leaves after two pieces

    observer = DropFirst()
    results = await local_backend.reason(
        messages,
        GenerationParams(max_tokens=24, stop=(ANSWER_PREFIX,), seed=0),
        [answer_spec(n, constrain=True) for n in sizes],
        observer,
    )
    assert results[0].abandoned and results[0].answer == ""
    assert results[0].thoughts.completion_tokens < results[1].thoughts.completion_tokens
    assert not results[1].abandoned and results[1].answer


async def test_vllm_streams_the_text_generate_returns(vllm_backend) -> None:
    messages = [{"role": "user", "content": "Say something about films. " * 20}]
    params = GenerationParams(max_tokens=40, seed=0)
    pieces = [p async for p in vllm_backend.generate_stream(messages, params)]
    *texts, finished = pieces
    plain = (await vllm_backend.generate([messages], params))[0]
    assert len(texts) > 1 and all(isinstance(t, str) for t in texts)
    assert "".join(texts) == finished.text == plain.text
    assert finished.completion_tokens == plain.completion_tokens == 40
    assert finished.finish_reason == "length" and finished.prompt_tokens == plain.prompt_tokens

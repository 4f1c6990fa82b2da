"""reasoning.backends.vllm_states: a pooling answer that is not one state per token is a
typed error (the real server's answers are tested in tests/service/test_fused_vllm.py)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from reasoning.backends.base import LLMBadResponse
from reasoning.backends.vllm_states import decode_pooled


def _answer(*arrays: np.ndarray, order: tuple[int, ...] | None = None) -> httpx.Response:
    data = [
        {"index": i, "data": base64.b64encode(a.astype(np.float32).tobytes()).decode()}
        for i, a in enumerate(arrays)
    ]
    if order is not None:
        data = [data[i] for i in order]
    return httpx.Response(200, json={"data": data})


def test_decoded_states_come_back_in_request_order() -> None:
    first, second = np.arange(6.0).reshape(3, 2), -np.arange(4.0).reshape(2, 2)
    got = decode_pooled(_answer(first, second, order=(1, 0)), [3, 2], "here")
    np.testing.assert_array_equal(got[0], first)
    np.testing.assert_array_equal(got[1], second)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"object": "list"}),
        httpx.Response(200, json={"data": [{"index": 0, "data": "%%%"}]}),
        _answer(np.zeros((3, 2))),  # one prompt answered, two asked
        _answer(np.zeros(5), np.zeros((2, 2))),  # 5 values for 3 tokens
    ],
)
def test_malformed_pooling_answers_are_bad_responses(response: httpx.Response) -> None:
    with pytest.raises(LLMBadResponse):
        decode_pooled(response, [3, 2], "here")

"""The candidate lines' hidden states from a vLLM pooling server (`reasoning.fused.StateReader`).

The fused ranker's head reads, at one layer, the state of each candidate line's last token.
``r2rec model publish-fused`` writes ``fused/states/``: the base model cut at that layer,
with a unit final norm (`training.fused_publish.cut_for_states`). vLLM serves it as a
pooling model that returns every token's state, which is then that layer's state scaled
to unit RMS, exactly what a ``scale="rms"`` head reads (`reasoning.compact.unit_rms`):

    python -m vllm.entrypoints.openai.api_server --model $R2REC_HOME/models/fused/states \\
        --served-model-name states --runner pooling --convert embed \\
        --pooler-config '{"task": "token_embed", "tok_pooling_type": "ALL"}'

`VLLMStates` renders each prompt with the folder's own chat template and tokenizer, as the
in-process backend does, sends the token ids (one ``/pooling`` call per batch, float32 in
base64) and pools each candidate line's tokens (last token; mean)::

    reader = VLLMStates(VLLMStatesConfig("http://127.0.0.1:8002", fused.states))
    states = await reader.line_states(messages_batch, n=20, layers=(20,))  # (b, 20, 1, 2, d)
    await reader.aclose()

Failures are the backends' typed errors (`reasoning.backends.base`): the Recommender then
ranks by the collaborative base, flagged ``fallback``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from reasoning.backends.base import (
    Conversation,
    LLMBadResponse,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    render_chat,
)
from reasoning.compact import POOLINGS, candidate_spans

# The vLLM server flags that make a cut model return every token's state (the entrypoint
# docker/vllm-entrypoint.sh passes them with MODEL_ROLE=states).
POOLING_FLAGS = (
    "--runner",
    "pooling",
    "--convert",
    "embed",
    "--pooler-config",
    '{"task": "token_embed", "tok_pooling_type": "ALL"}',
)


@dataclass(frozen=True)
class VLLMStatesConfig:
    """Where the pooling server is and which cut model it serves."""

    base_url: str  # the server's root (a trailing /v1 is ignored)
    states_dir: Path  # the cut model folder vLLM serves: its tokenizer and layer count
    model: str = "states"  # the name vLLM serves it as (--served-model-name)
    api_key: str = ""
    timeout_s: float = 30.0


class VLLMStates:
    """`reasoning.fused.StateReader` over a vLLM pooling server; see the module docstring."""

    name = "vllm-states"
    unit_rms_tokens = True  # serves only heads of unit-RMS, last-token states

    def __init__(self, config: VLLMStatesConfig) -> None:
        from transformers import AutoTokenizer

        self.config = config
        folder = Path(config.states_dir)
        try:
            self.layer = int(json.loads((folder / "config.json").read_text())["num_hidden_layers"])
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{folder}: not a cut states model ({err})") from err
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        root = config.base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(base_url=root, headers=headers, timeout=config.timeout_s)

    async def line_states(
        self, messages_batch: Sequence[Conversation], n: int, layers: tuple[int, ...]
    ) -> np.ndarray:
        """(len(messages_batch), n, 1, 2, d) float32 states: each candidate line's last
        token and token mean, at the one layer the served model is cut at."""
        if tuple(layers) != (self.layer,):
            raise LLMUnavailable(
                f"the states server's model is cut at layer {self.layer}; layers {layers} asked"
            )
        texts = [render_chat(self.tokenizer, m) for m in messages_batch]
        encoded = [
            self.tokenizer(t, add_special_tokens=False, return_offsets_mapping=True) for t in texts
        ]
        ids = [list(e["input_ids"]) for e in encoded]
        tokens = await self._pool(ids)
        out = np.zeros((len(texts), n, 1, len(POOLINGS), tokens[0].shape[1]), dtype=np.float32)
        for b, (text, enc) in enumerate(zip(texts, encoded, strict=True)):
            for j, (lo, hi) in enumerate(candidate_spans(text, enc["offset_mapping"], n)):
                out[b, j, 0, 0] = tokens[b][hi - 1]
                out[b, j, 0, 1] = tokens[b][lo:hi].mean(axis=0)
        return out

    async def _pool(self, ids: list[list[int]]) -> list[np.ndarray]:
        """Every token's state of each prompt, (tokens, d) each, in one call."""
        body = {
            "model": self.config.model,
            "input": ids,
            "task": "token_embed",
            "use_activation": False,
            "encoding_format": "base64",
            "embed_dtype": "float32",
            "add_special_tokens": False,
        }
        response = await self._send("POST", "/pooling", body)
        return decode_pooled(response, [len(i) for i in ids], f"{self._client.base_url}/pooling")

    async def ping(self) -> None:
        """Raise `LLMUnavailable` (or `LLMTimeout`) unless the server answers /health."""
        await self._send("GET", "/health")

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """The server's answer to one request; its failures as the backends' typed errors
        (4xx: `LLMRequestError`; no answer, 5xx: `LLMUnavailable`; too slow: `LLMTimeout`)."""
        where = f"{self._client.base_url}{path}"
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as err:
            raise LLMTimeout(f"{where}: no answer in {self.config.timeout_s:g} s") from err
        except httpx.HTTPError as err:
            raise LLMUnavailable(f"{where}: {err}") from err
        if 400 <= response.status_code < 500:
            raise LLMRequestError(f"{where}: {response.status_code} {response.text[:300]}")
        if response.status_code >= 500:
            raise LLMUnavailable(f"{where}: {response.status_code} {response.text[:300]}")
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


def decode_pooled(response: httpx.Response, lengths: list[int], where: str) -> list[np.ndarray]:
    """The (tokens, d) arrays of a /pooling answer, in request order; LLMBadResponse
    unless there is one per prompt with one state per token."""
    try:
        data: list[dict[str, Any]] = sorted(response.json()["data"], key=lambda d: d["index"])
        arrays = [np.frombuffer(base64.b64decode(d["data"]), dtype=np.float32) for d in data]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise LLMBadResponse(f"{where}: malformed pooling answer ({err})") from err
    if len(arrays) != len(lengths) or any(
        a.size == 0 or a.size % t for a, t in zip(arrays, lengths, strict=False)
    ):
        raise LLMBadResponse(f"{where}: the answer does not hold one state per prompt token")
    return [a.reshape(t, -1) for a, t in zip(arrays, lengths, strict=True)]

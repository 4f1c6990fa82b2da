"""`r2rec bench service --paths stream`: how soon a user sees the model think.

Over ``POST /recommend/stream`` (explain=true), per request: the time to the ``evidence``
event, to the first ``thought`` event (the first visible reasoning text) and to the
``ranking`` event, as p50/p99 per backend and concurrency. Each backend gets its own
service (``r2rec serve`` in a child process on a free loopback port, no cache, the
thought budget ``--stream-tokens``), measured one after the other so they do not share
the CPUs:

- ``local``: the in-process model (``R2REC_MODEL_PATH``, else the published model, else
  the prepared base model: the bench sets ``R2REC_SERVE_BASE_MODEL=true`` unless told
  otherwise, since the graph scorer has no thoughts to time);
- ``vllm``: the vLLM at ``--llm-url`` (``--llm-model`` names the served model), else one
  started here from ``--vllm-python`` (default ``.venv-vllm/bin/python``, made by
  ``scripts/setup_vllm.sh``) on the same model folder the in-process backend loads.
  Neither available: skipped with a note.

Every request asks for a different user (nothing is cached); one untimed request per
service first warms it (vLLM compiles its answer grammar then). The request deadline is
``--llm-timeout-s`` when given, else `STREAM_DEADLINE_S`: generous, so that what is timed
is the model and not the graph scorer answering at the deadline (fallbacks are counted,
with their reasons). Defaults are short (8 requests per concurrency 1 and 8, 32 thought
tokens); ``--stream-requests`` and ``--stream-tokens`` make longer runs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import orjson

from common.errors import UserInputError
from common.harness import load_harness


@functools.cache
def bench_users() -> tuple[str, ...]:
    """The user ids of the dataset the benchmarked service serves (``R2REC_DATASET``,
    default ml-100k), shortest first, then in order (MovieLens: 1, 2, ...)."""
    from recdata import load_dataset

    name = os.environ.get("R2REC_DATASET", "ml-100k")
    ids = set(load_dataset(name).interactions["user_id"].astype(str))
    return tuple(sorted(ids, key=lambda u: (len(u), u)))


VLLM_START_S = 300.0
STREAM_DEADLINE_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited with code {server.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service did not answer /healthz within {timeout_s:.0f} s")


@dataclass
class StreamResult:
    backend: str
    concurrency: int
    requests: int
    evidence_ms: list[float] = field(default_factory=list)
    thought_ms: list[float] = field(default_factory=list)  # to the first thought event
    ranking_ms: list[float] = field(default_factory=list)
    thought_events: int = 0
    fallbacks: int = 0
    errors: int = 0  # answers other than 200, and error events
    reasons: dict[str, int] = field(default_factory=dict)  # fallbacks by reason


@dataclass
class StreamOptions:
    requests: int = 8
    concurrency: str = "1,8"
    tokens: int = 32
    backends: str = "local,vllm"
    k: int = 10
    llm_url: str | None = None
    llm_model: str | None = None
    vllm_python: Path = Path(".venv-vllm/bin/python")
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        levels = [c.strip() for c in self.concurrency.split(",") if c.strip()]
        if not levels or not all(c.isdecimal() and int(c) >= 1 for c in levels):
            raise UserInputError(
                f"--stream-concurrency: comma-separated integers >= 1, got {self.concurrency!r}"
            )
        unknown = {b.strip() for b in self.backends.split(",")} - {"local", "vllm"}
        if unknown or not self.backends.strip():
            raise UserInputError(f"--stream-backends: any of local,vllm, got {self.backends!r}")


def percentile(values: list[float], q: float) -> str:
    return f"{float(np.percentile(values, q)):.0f}" if values else "-"


async def _one(client: httpx.AsyncClient, user: str, k: int, result: StreamResult) -> None:
    started = time.perf_counter()
    seen: dict[str, float] = {}
    event = ""
    async with client.stream(
        "POST", "/recommend/stream", json={"user_id": user, "k": k, "explain": True}
    ) as reply:
        if reply.status_code != 200:
            result.errors += 1
            await reply.aread()
            return
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                seen.setdefault(event, (time.perf_counter() - started) * 1000)
                result.thought_events += event == "thought"
            elif line.startswith("data:") and event == "ranking":
                body = orjson.loads(line[5:])
                if body["fallback"]:
                    result.fallbacks += 1
                    reason = str(body.get("fallback_reason"))
                    result.reasons[reason] = result.reasons.get(reason, 0) + 1
    result.errors += "error" in seen
    for name, into in (
        ("evidence", result.evidence_ms),
        ("thought", result.thought_ms),
        ("ranking", result.ranking_ms),
    ):
        if name in seen:
            into.append(seen[name])


async def drive(
    base: str, backend: str, concurrency: int, n: int, k: int, first: int
) -> StreamResult:
    """``n`` streams over ``concurrency`` clients, users ``first``, ``first + 1``, ..."""
    result = StreamResult(backend, concurrency, n)
    users = bench_users()
    queue = [users[(first + i) % len(users)] for i in range(n)]
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:

        async def worker() -> None:
            while queue:
                await _one(client, queue.pop(0), k, result)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


@contextmanager
def _service(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "r2rec", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _model_dir(env: dict[str, str]) -> Path:
    from service.ranking import resolve_model_path
    from service.settings import Settings

    path = env.get("R2REC_MODEL_PATH")
    settings = Settings(model_path=Path(path) if path else None, serve_base_model=True)
    found = resolve_model_path(settings)
    assert found is not None  # serve_base_model: a model or a StartupError
    return found


def _measure(env: dict[str, str], backend: str, options: StreamOptions) -> list[StreamResult]:
    levels = [int(c) for c in options.concurrency.split(",") if c.strip()]
    results = []
    with _service(env) as base:
        asyncio.run(drive(base, backend, 1, 1, options.k, first=900))  # warm-up, untimed
        first = 0
        for level in levels:
            results.append(
                asyncio.run(drive(base, backend, level, options.requests, options.k, first))
            )
            first += options.requests
    return results


def bench_stream(env: dict[str, str], options: StreamOptions) -> list[StreamResult]:
    """Measure each wanted backend in turn (see the module's docstring)."""
    env = {**env, "R2REC_MAX_REASONING_TOKENS": str(options.tokens)}
    env.setdefault("R2REC_LLM_TIMEOUT_S", str(STREAM_DEADLINE_S))
    env.setdefault("R2REC_SERVE_BASE_MODEL", "true")  # nothing published: time the base model
    env.setdefault("R2REC_THOUGHTS", "model")  # time the model's own thoughts as it writes them
    env.pop("R2REC_REDIS_URL", None)  # every answer is made, never replayed
    results: list[StreamResult] = []
    wanted = [b.strip() for b in options.backends.split(",") if b.strip()]
    if "local" in wanted:
        local = {**env, "R2REC_LLM_BACKEND": "local"}
        results += _measure(local, "in-process", options)
    if "vllm" in wanted:
        name = options.llm_model or "r2rec"
        remote = {**env, "R2REC_LLM_BACKEND": "vllm", "R2REC_LLM_MODEL": name}
        if options.llm_url is not None:
            remote["R2REC_LLM_URL"] = options.llm_url
            results += _measure(remote, "vllm", options)
        elif options.vllm_python.is_file() and (harness := load_harness("vllm")) is not None:
            model_dir = _model_dir(env)
            with harness.run_vllm_server(
                model_dir, name=name, python=options.vllm_python, startup_timeout_s=VLLM_START_S
            ) as server:
                remote["R2REC_LLM_URL"] = server.base_url
                results += _measure(remote, f"vllm (started, {model_dir.name})", options)
        else:
            options.notes.append(
                f"vllm skipped: no --llm-url, and no {options.vllm_python} "
                "(bash scripts/setup_vllm.sh) or no tests/harness/vllm.py to start it"
            )
    return results

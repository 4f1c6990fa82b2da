"""`r2rec bench service`: latency and throughput of the running service, loopback only.

Starts the service (``r2rec serve`` in a child process, on a free 127.0.0.1 port) with
the usual ``R2REC_*`` settings plus the options below. The load generator speaks raw
HTTP/1.1 over one keep-alive connection per concurrent client, so it takes little of the
CPUs it shares with the service. For each path (cached, explain=false, explain=true,
``mixed``: explain=false with every ``--explain-every``-th request explain=true, and
``rate``: POST /rate, with the published rating model when there is one) and each
concurrency sends a bounded number of requests and prints p50/p99 and max latency,
requests/s, the service's own overhead (total minus LLM time, from the responses), how
many answers took longer than the request deadline (``--llm-timeout-s``, else
``R2REC_LLM_TIMEOUT_S``, else 30 s), how many were the graph scorer's fallback and how
many were refused with 503. The cached path needs Redis: ``--redis-url``, or a private
``redis-server`` started on a free port when one is on PATH. The ``stream`` path
(`service.bench_stream`) measures time to the first thought and to the ranking over
/recommend/stream per backend (in-process, and vLLM at ``--llm-url`` or started here).

    r2rec bench service --requests 64 --concurrency 1,8,32
    r2rec bench service --paths mixed --concurrency 8 --requests 120 --llm-timeout-s 1
    r2rec bench service --llm-backend vllm --llm-url http://127.0.0.1:8001/v1 --llm-model r2rec
    r2rec bench service --paths stream                       # in-process, then a started vLLM
    r2rec bench service --paths rate --concurrency 1,4 --requests 32
    r2rec bench service --paths stream --stream-requests 32 --stream-tokens 256
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import typer
from rich.console import Console
from rich.table import Table

from service.bench_stream import (
    StreamOptions,
    bench_stream,
    bench_users,
    free_port,
    percentile,
    wait_ready,
)

console = Console()
RATE_PATH = "rate"  # POST /rate (ML-100K item ids 1..1682), the rating model's one pass
_next_user = iter(range(10**9))  # uncached paths never repeat a user (no cache hits)


@dataclass
class PathResult:
    path: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    rps: float
    overhead_p99_ms: float
    fallbacks: int
    max_ms: float = 0.0
    over_deadline: int = 0
    refused: int = 0  # 503 answers (overloaded)
    reasons: dict[str, int] = field(default_factory=dict)  # fallbacks by reason


def _start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for the load generator
    (a JSON POST, a Content-Length response), so the client costs the shared CPUs little."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        body = orjson.dumps(payload)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        length = int({k.lower(): v for k, v in headers.items()}["content-length"])
        return int(lines[0].split()[1]), orjson.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


async def _drive(
    host: str,
    port: int,
    path: str,
    concurrency: int,
    n: int,
    explain: bool,
    same_user: bool,
    explain_every: int = 0,
    deadline_s: float = 30.0,
) -> PathResult:
    """``n`` requests over ``concurrency`` connections; with ``explain_every`` > 0, request
    number i (from 0) is explain=true when i % explain_every == 0, else explain=false."""
    latencies: list[float] = []
    overheads: list[float] = []
    fallbacks = refused = 0
    reasons: dict[str, int] = {}
    queue = list(range(n))
    connections = [await _Connection.open(host, port) for _ in range(concurrency)]

    async def worker(connection: _Connection) -> None:
        nonlocal fallbacks, refused
        while queue:
            number = queue.pop()
            users = bench_users()
            user = users[0] if same_user else users[next(_next_user) % len(users)]
            wants = explain if explain_every <= 0 else number % explain_every == 0
            endpoint, payload = "/recommend", {"user_id": user, "k": 10, "explain": wants}
            if path == RATE_PATH:  # a rating of an item the user may or may not have rated
                payload = {"user_id": user, "item_id": str(1 + number % 1682), "explain": False}
                endpoint = "/rate"
            started = time.perf_counter()
            status, body = await connection.post_json(endpoint, payload)
            latencies.append((time.perf_counter() - started) * 1000)
            if status == 503:
                refused += 1
                continue
            if status != 200:
                raise RuntimeError(f"POST {endpoint} answered {status}: {body}")
            fallbacks += int(body["fallback"])
            if body["fallback"]:
                reason = str(body.get("fallback_reason"))
                reasons[reason] = reasons.get(reason, 0) + 1
            overheads.append(latencies[-1] - float(body["llm_ms"]))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    wall = time.perf_counter() - started
    return PathResult(
        path,
        concurrency,
        n,
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 99)),
        n / wall,
        float(np.percentile(overheads, 99)) if overheads else 0.0,
        fallbacks,
        max(latencies),
        sum(latency > deadline_s * 1000 for latency in latencies),
        refused,
        reasons,
    )


def bench_service(
    requests: Annotated[int, typer.Option(help="Requests per path and concurrency")] = 64,
    concurrency: Annotated[str, typer.Option(help="Comma-separated concurrencies")] = "1,8,32",
    paths: Annotated[
        str, typer.Option(help="Any of cached,score,explain,mixed,rate,stream")
    ] = "cached,score,explain,stream",
    explain_requests: Annotated[int, typer.Option(help="Requests for explain=true (slow)")] = 16,
    explain_every: Annotated[
        int, typer.Option(min=1, help="mixed path: every n-th request is explain=true")
    ] = 4,
    llm_timeout_s: Annotated[
        float | None, typer.Option(help="The service's LLM timeout (= request deadline)")
    ] = None,
    max_reasoning_tokens: Annotated[int | None, typer.Option(help="Thought token budget")] = None,
    llm_backend: Annotated[str | None, typer.Option(help="local or vllm")] = None,
    llm_url: Annotated[str | None, typer.Option(help="vLLM base URL")] = None,
    llm_model: Annotated[str | None, typer.Option(help="Served model name")] = None,
    model_path: Annotated[Path | None, typer.Option(help="In-process checkpoint")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL (else a private one)")] = None,
    stream_requests: Annotated[
        int, typer.Option(min=1, help="stream path: requests per backend and concurrency")
    ] = 8,
    stream_concurrency: Annotated[str, typer.Option(help="stream path: concurrencies")] = "1,8",
    stream_tokens: Annotated[
        int, typer.Option(min=16, help="stream path: thought token budget")
    ] = 32,
    stream_backends: Annotated[
        str, typer.Option(help="stream path: any of local,vllm")
    ] = "local,vllm",
    vllm_python: Annotated[
        Path, typer.Option(help="stream path: python of a vLLM install, started without --llm-url")
    ] = Path(".venv-vllm/bin/python"),
) -> None:
    """Measure the service: p50/p99 latency, requests/s and overhead per path."""
    env = dict(os.environ)
    for key, value in (
        ("llm_backend", llm_backend),
        ("llm_url", llm_url),
        ("llm_model", llm_model),
        ("model_path", model_path),
        ("llm_timeout_s", llm_timeout_s),
        ("max_reasoning_tokens", max_reasoning_tokens),
    ):
        if value is not None:
            env[f"R2REC_{key.upper()}"] = str(value)
    if "stream" in paths:  # first, before a Redis or another service takes memory
        options = StreamOptions(
            stream_requests,
            stream_concurrency,
            stream_tokens,
            stream_backends,
            llm_url=llm_url,
            llm_model=llm_model,
            vllm_python=vllm_python,
        )
        _print_stream(bench_stream(env, options), options)
    if not {p.strip() for p in paths.split(",")} - {"stream"}:
        return
    redis = None
    if redis_url is None and "cached" in paths:
        redis = _start_redis()
        redis_url = redis[1] if redis else None
    if redis_url is not None:
        env["R2REC_REDIS_URL"] = redis_url
    deadline_s = float(env.get("R2REC_LLM_TIMEOUT_S", "30"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "r2rec", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server)
        results = asyncio.run(
            _all(
                port,
                paths,
                concurrency,
                requests,
                explain_requests,
                redis_url is not None,
                explain_every,
                deadline_s,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        if redis is not None:
            redis[0].kill()
    backend = env.get("R2REC_LLM_BACKEND", "local")
    title = f"service on the {backend} LLM, deadline {deadline_s:g} s"
    table = Table(
        "path",
        "concurrency",
        "requests",
        "p50 ms",
        "p99 ms",
        "max ms",
        "req/s",
        "overhead p99 ms",
        "over deadline",
        "fallbacks",
        "503",
        title=title,
    )
    for r in results:
        table.add_row(
            r.path,
            str(r.concurrency),
            str(r.requests),
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.rps:.3g}",
            f"{r.overhead_p99_ms:.2f}",
            str(r.over_deadline),
            str(r.fallbacks),
            str(r.refused),
        )
    console.print(table)
    for r in results:
        if r.reasons:
            shown = ", ".join(f"{why}: {count}" for why, count in sorted(r.reasons.items()))
            console.print(f"{r.path} at {r.concurrency}: fallbacks by reason: {shown}")


def _print_stream(results: list[Any], options: StreamOptions) -> None:
    title = f"/recommend/stream, explain=true, {options.tokens} thought tokens, ms"
    table = Table(
        "backend",
        "concurrency",
        "requests",
        "evidence p50",
        "first thought p50",
        "first thought p99",
        "ranking p50",
        "ranking p99",
        "thought events / request",
        "fallbacks",
        "errors",
        title=title,
    )
    for r in results:
        table.add_row(
            r.backend,
            str(r.concurrency),
            str(r.requests),
            percentile(r.evidence_ms, 50),
            percentile(r.thought_ms, 50),
            percentile(r.thought_ms, 99),
            percentile(r.ranking_ms, 50),
            percentile(r.ranking_ms, 99),
            f"{r.thought_events / max(r.requests, 1):.1f}",
            str(r.fallbacks),
            str(r.errors),
        )
    Console(width=max(console.width, 150)).print(table)  # never cut to a narrow terminal
    for r in results:
        if r.reasons:
            shown = ", ".join(f"{why}: {count}" for why, count in sorted(r.reasons.items()))
            console.print(f"{r.backend} at {r.concurrency}: fallbacks by reason: {shown}")
    for note in options.notes:
        console.print(f"[yellow]{note}[/]")


async def _all(
    port: int,
    paths: str,
    concurrency: str,
    n: int,
    n_explain: int,
    has_redis: bool,
    explain_every: int = 4,
    deadline_s: float = 30.0,
) -> list[PathResult]:
    levels = [int(c) for c in concurrency.split(",") if c.strip()]
    wanted = [p.strip() for p in paths.split(",")]
    host = "127.0.0.1"
    results = []
    if "cached" in wanted:
        if not has_redis:
            console.print("[yellow]no Redis: skipping the cached path[/]")
        else:
            await _drive(host, port, "warm-up", 1, 1, False, same_user=True)
            for c in levels:
                results.append(await _drive(host, port, "cached", c, max(n, 100 * c), False, True))
    if "score" in wanted:
        for c in levels:
            results.append(
                await _drive(host, port, "explain=false", c, n, False, False, 0, deadline_s)
            )
    if "explain" in wanted:
        for c in levels:
            results.append(
                await _drive(host, port, "explain=true", c, n_explain, True, False, 0, deadline_s)
            )
    if RATE_PATH in wanted:
        for c in levels:
            results.append(await _drive(host, port, RATE_PATH, c, n, False, False, 0, deadline_s))
    if "mixed" in wanted:
        label = f"mixed (1 in {explain_every} explain)"
        for c in levels:
            results.append(
                await _drive(host, port, label, c, n, False, False, explain_every, deadline_s)
            )
    return results

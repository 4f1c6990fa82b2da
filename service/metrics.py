"""Prometheus metrics for ``GET /metrics``: request latency per endpoint, LLM latency,
cache hits and misses, fallbacks. Each app owns its registry, so several apps (tests) can
live in one process. `RequestMetrics` is the ASGI middleware that times every request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Histogram(
            "r2rec_request_seconds",
            "HTTP request latency by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.llm = Histogram(
            "r2rec_llm_seconds",
            "LLM call latency by mode (explain, score)",
            ["mode"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.cache = Counter(
            "r2rec_cache_total",
            "Recommendation cache lookups by result (hit, miss)",
            ["result"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "r2rec_fallback_total",
            "Recommendations ranked by the graph scorer, by reason",
            ["reason"],
            registry=self.registry,
        )


class RequestMetrics:
    """Pure ASGI middleware: observe each HTTP request's latency by method, route template
    and status in the app runtime's `Metrics` (no per-request task or body copy, unlike
    Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                runtime.metrics.requests.labels(scope["method"], route, status).observe(
                    time.perf_counter() - started
                )

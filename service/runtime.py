"""What the service holds for its lifetime: graph store, LLM backend, recommender, cache.

Built once in the app's lifespan from `Settings` and closed on shutdown:

    runtime = await Runtime.start(settings)
    ...
    await runtime.close()
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph_store.base import GraphStore
from graph_store.types import ChainParams
from reasoning.backends import LLMBackend, LLMError, make_backend
from reasoning.explain import RecommendationListener
from reasoning.fused import FusedRanker
from reasoning.outcomes import Recommendation
from reasoning.recommender import Recommender, RecommenderConfig
from recdata.store import dataset_vocabulary
from service.batching import RecommendBatcher
from service.cache import RecommendationCache
from service.metrics import Metrics
from service.ranking import (
    StartupError,
    open_explainer,
    open_fused,
    open_llm,
    open_states,
    published_version,
)
from service.rate.model import (
    RatingModel,
    RatingModelError,
    newer_published,
    open_rating_model,
)
from service.settings import Settings
from service.training_child import TrainingCollector

log = logging.getLogger("r2rec.service")
# Of a request's deadline, the share kept back from the model for serving the fallback
# (graph queries, shaping the response) when the model is late, at most FALLBACK_RESERVE_S.
FALLBACK_RESERVE_SHARE = 0.1
FALLBACK_RESERVE_S = 0.2


async def open_graph_store(settings: Settings) -> GraphStore:
    if settings.graph_store == "neo4j":
        from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore

        config = Neo4jConfig(
            uri=settings.neo4j_uri,
            user=settings.neo4j_user,
            password=settings.neo4j_password.get_secret_value(),
            database=settings.neo4j_database,
            max_pool_size=settings.neo4j_pool_size,
            query_timeout_s=settings.neo4j_timeout_s,
            list_cache_s=settings.neo4j_list_cache_s,
        )
        return await Neo4jGraphStore.connect(config)
    from graph_store.journal import JournalLockedError
    from graph_store.memory import MemoryGraphStore
    from recdata import load_dataset

    try:
        store = MemoryGraphStore.from_dataset(
            load_dataset(settings.dataset), journal=journal_path(settings)
        )
    except JournalLockedError as err:
        raise StartupError(str(err)) from None
    log.info(
        "embedded graph store: %s, writes journaled to %s", settings.dataset, store.journal_path
    )
    return store


def journal_path(settings: Settings) -> Path:
    """The embedded store's journal: one per dataset under $R2REC_HOME (`graph_store.journal`).

    Every acknowledged POST /interactions is fsync'd there and replayed at start-up; the
    file is locked, so one process serves it.
    """
    from common.paths import journal_file

    return journal_file(settings.dataset)


async def warm_up(llm: LLMBackend) -> None:
    """One scoring pass before the first request: a fresh model's first forward pass is
    several times slower than the next ones (measured 0.77 s against 0.09 s with the tiny
    model on a loaded machine), and the first requests' deadlines should not pay for it."""
    started = time.perf_counter()
    conversation = [{"role": "user", "content": "Rank these items. " * 100}]
    try:
        await llm.score_choices([conversation], "Answer:", [" A", " B"])
    except LLMError as err:  # a model whose tokenizer splits " A": nothing to warm
        log.warning("model warm-up skipped: %s", err)
        return
    log.info("model warmed up in %.2f s", time.perf_counter() - started)


@dataclass(frozen=True)
class ModelSlot:
    """The model a request is answered with: swapped whole on a hot switch, so a request
    that took a slot finishes on that model."""

    llm: LLMBackend | None  # None: nothing published, the graph scorer answers
    version: str
    recommender: Recommender
    batcher: RecommendBatcher | None = None


@dataclass
class Runtime:
    settings: Settings
    graph: GraphStore
    slot: ModelSlot
    cache: RecommendationCache | None
    metrics: Metrics
    rating: RatingModel | None = None  # POST /rate's own model, when one is published
    switch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def llm(self) -> LLMBackend | None:
        return self.slot.llm

    @property
    def model_version(self) -> str:
        return self.slot.version

    @property
    def recommender(self) -> Recommender:
        return self.slot.recommender

    @property
    def batcher(self) -> RecommendBatcher | None:
        return self.slot.batcher

    async def recommend(
        self,
        user_id: str,
        candidates: Sequence[str] | None,
        explain: bool,
        deadline: float | None = None,
        listener: RecommendationListener | None = None,
        slot: ModelSlot | None = None,
    ) -> Recommendation:
        """One ranking on ``slot``'s model (default: the current one); on the in-process
        model through its queue (`service.batching`).
        ``listener`` hears the evidence and the thoughts as they come (`reasoning.explain`).

        ``deadline`` (``time.monotonic()``; default ``llm_timeout_s`` from now, set when the
        request arrived) bounds the whole call, queue included: the model must answer a
        reserve before it (a tenth of the timeout, at most `FALLBACK_RESERVE_S`), which is
        left for serving the graph scorer's fallback if it does not."""
        timeout = self.settings.llm_timeout_s
        if deadline is None:
            deadline = time.monotonic() + timeout
        model_deadline = deadline - min(FALLBACK_RESERVE_S, FALLBACK_RESERVE_SHARE * timeout)
        slot = slot or self.slot
        if slot.batcher is not None:
            return await slot.batcher.recommend(
                user_id, candidates, explain, model_deadline, listener
            )
        recs = await slot.recommender.recommend_many(
            [(user_id, candidates)],
            explain,
            deadline=model_deadline,
            listeners=[listener] if listener is not None else None,
        )
        return recs[0]

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        graph = await open_graph_store(settings)
        try:
            fused = open_fused(settings)
            llm, version = open_llm(settings, fused)
            rating = open_rating_model(settings)
        except RatingModelError as err:
            await graph.close()
            raise StartupError(str(err)) from None
        except Exception:
            await graph.close()
            raise
        cache = (
            RecommendationCache.from_url(
                settings.redis_url, settings.cache_ttl_s, settings.redis_timeout_s
            )
            if settings.redis_url
            else None
        )
        slot = await _slot(settings, graph, llm, version, fused)
        if rating is not None:
            if settings.llm_backend == "local":
                await warm_up(rating.llm)
            log.info("rating with %s blended with %s", rating.version, rating.blend_with)
        log.info("serving model %s with the %s graph store", version, settings.graph_store)
        # What start-up built (graph, model, tokenizer) lives as long as the process: move it
        # out of the cyclic collector's reach, so a full collection during a request does not
        # scan it (measured on the Bolt store: p99 45 -> 23 ms for candidates).
        gc.collect()
        gc.freeze()
        metrics = Metrics()
        metrics.registry.register(TrainingCollector(settings))
        return cls(settings, graph, slot, cache, metrics, rating)

    async def switch_to_published(self) -> bool:
        """Load the published model if it is not the one serving (in-process backend, no
        fixed ``model_path``), warm it, then swap it in: requests that already took the old
        slot finish on the old model, which is closed once they are done. True if switched;
        a model that fails to load leaves the old one serving (and raises)."""
        from common.paths import published_dir

        if self.settings.llm_backend != "local" or self.settings.model_path is not None:
            return False
        if self.recommender.fused is not None:  # its head reads the base model, kept
            return False
        async with self.switch_lock:
            version = published_version()
            if version is None or version == self.slot.version:
                return False
            folder = published_dir().resolve()
            llm = await asyncio.to_thread(make_backend, "local", model_path=str(folder))
            try:
                slot = await _slot(self.settings, self.graph, llm, version)
            except Exception:
                await llm.aclose()
                raise
            old, self.slot = self.slot, slot
            log.info("switched from model %s to %s", old.version, version)
            retire = asyncio.create_task(_retire(old))
            _RETIRING.add(retire)
            retire.add_done_callback(_RETIRING.discard)
            return True

    async def switch_rating_to_published(self) -> bool:
        """Swap in a newly published rating model (`service.rate.model.newer_published`);
        the old one is closed once requests that took it have had their time limit."""
        fresh = await newer_published(self.rating, self.settings, self.graph)
        if fresh is None:
            return False
        old, self.rating = self.rating, fresh
        log.info("switched the rating model to %s", fresh.version)
        if old is not None:
            retire = asyncio.create_task(_close_later(old, self.settings.llm_timeout_s))
            _RETIRING.add(retire)
            retire.add_done_callback(_RETIRING.discard)
        return True

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
        if self.llm is not None:
            await self.llm.aclose()
        await _close_helpers(self.recommender)
        if self.rating is not None:
            await self.rating.aclose()
        await self.graph.close()


_RETIRING: set[asyncio.Task[None]] = set()


def watch_published(runtime: Runtime) -> asyncio.Task[None] | None:
    """Check for a newly published model (and rating model) every ``model_watch_s``
    seconds and switch to it (in-process backend; a fixed path is not watched)."""
    settings = runtime.settings
    if not settings.model_watch_s or settings.llm_backend != "local":
        return None

    async def loop() -> None:
        while True:
            await asyncio.sleep(settings.model_watch_s)
            try:
                await runtime.switch_to_published()
            except Exception:  # a bad model: keep serving the old one, try again later
                log.exception(
                    "could not switch to the published model; still serving %s",
                    runtime.model_version,
                )
            try:
                await runtime.switch_rating_to_published()
            except Exception:
                log.exception("could not switch to the published rating model")

    return asyncio.create_task(loop())


async def _slot(
    settings: Settings,
    graph: GraphStore,
    llm: LLMBackend | None,
    version: str,
    fused: FusedRanker | None = None,
) -> ModelSlot:
    """A ready slot for ``llm``: its recommender, its queue (in-process), warmed up."""
    config = RecommenderConfig(
        thoughts=settings.thoughts,
        max_reasoning_tokens=settings.max_reasoning_tokens,
        chains=ChainParams(max_chains=settings.chains_per_request),
        llm_timeout_s=settings.llm_timeout_s,
        vocabulary=dataset_vocabulary(settings.dataset),
    )
    recommender = Recommender(
        graph, llm, config, fused, open_explainer(settings, fused), open_states(settings, fused)
    )
    batcher = None
    if settings.llm_backend == "local":
        generates = settings.thoughts == "model"  # else explain=true is one scoring pass
        batcher = RecommendBatcher(
            recommender,
            explain_batch=settings.local_batch_size if generates else 1,
            on_overload=settings.on_overload,
        )
        if llm is not None:
            await warm_up(llm)
    return ModelSlot(llm, version, recommender, batcher)


async def _close_later(old: RatingModel, after_s: float) -> None:
    await asyncio.sleep(after_s)
    await old.aclose()


async def _retire(old: ModelSlot, poll_s: float = 0.05) -> None:
    """Close a swapped-out model once its queue is empty and its last batch is done."""
    while old.batcher is not None and old.batcher.busy:
        await asyncio.sleep(poll_s)
    if old.llm is not None:
        await old.llm.aclose()
    await _close_helpers(old.recommender)


async def _close_helpers(recommender: Recommender) -> None:
    """Close what the recommender asks besides its LLM: the explainer, the states server."""
    if recommender.explainer is not None:
        await recommender.explainer.aclose()
    states = recommender.states
    if states is not None and states is not recommender.llm and hasattr(states, "aclose"):
        await states.aclose()

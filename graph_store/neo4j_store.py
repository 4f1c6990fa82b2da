"""The graph store over Bolt: Neo4j 5 (production) or any Bolt + Cypher server (ArcadeDB).

Runs its Cypher through `graph_store.bolt.BoltSession` (the official async ``neo4j``
driver; the database name goes with every query; pool size and timeouts come from
``Neo4jConfig``). Schema (two uniqueness constraints and
an index on ``INTERACTED.ts``) is created idempotently by ``connect``.

    store = await Neo4jGraphStore.connect(Neo4jConfig(uri="bolt://localhost:7687",
                                                      user="neo4j", password="..."))
    await store.load_frames(ds.interactions, ds.items)   # UNWIND chunks, 1 tx per chunk
    await store.chains("42", seed=0)
    await store.close()

``ingest`` writes one batch in one transaction (all or nothing); ``load_frames`` commits
chunk by chunk (a failed chunk leaves earlier ones, and re-running is idempotent).
Unreachable server, failed login or a timeout raise ``GraphStoreUnavailable`` (-> 503).
Candidates and chains read the nodes' bounded lists and rank the fetched neighbourhood
with the embedded store's `GraphIndex` (`graph_store.neighbourhood`, `graph_store.index`).
Item metadata, the popular ranking and those lists (except the asking user's own
adjacency, read every time) are cached in the process (``item_cache_s``,
``popular_cache_s``, ``list_cache_s``; our own writes drop what they touch, another
writer's show once the entries expire).
The Cypher and its portability notes are in ``graph_store.cypher``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import neo4j
import neo4j.exceptions as neo_errors
import pandas as pd

from graph_store import cypher
from graph_store.base import (
    ExportedEdges,
    GraphStoreBase,
    ProgressCallback,
    frame_interactions,
    frame_records,
    prepare_batch,
)
from graph_store.bolt import BOLT_SCHEMES, BoltSession, Neo4jConfig
from graph_store.list_cache import ListCache, id_array, time_array
from graph_store.neighbourhood import (
    NeighbourhoodFetch,
    RaterLists,
    Raters,
    TimedAdjacency,
    recent_window,
)
from graph_store.types import (
    PLACEHOLDER_TITLE,
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCounts,
    GraphStoreError,
    HistoryEntry,
    IngestResult,
    Item,
    ItemRecord,
    NewInteraction,
    RatingEvidence,
    TasteParams,
)


def _item(record: Mapping[str, Any]) -> Item:
    attributes = {str(k): str(v) for k, v in record["attrs"] or () if v is not None}
    return Item(record["id"], record["title"] or "", attributes, bool(record["placeholder"]))


class Neo4jGraphStore(BoltSession, GraphStoreBase):
    """Graph store over a Bolt server; build with ``await Neo4jGraphStore.connect(config)``."""

    def __init__(self, driver: neo4j.AsyncDriver, config: Neo4jConfig) -> None:
        super().__init__(driver, config)
        self._popular_cache: tuple[float, list[Candidate]] | None = None
        self._item_cache: ListCache[Item] = ListCache(config.item_cache_s, config.item_cache_size)
        life, size = config.list_cache_s, config.list_cache_size
        self._rater_lists: ListCache[Raters] = ListCache(life, size)
        self._recent_lists: ListCache[TimedAdjacency] = ListCache(life, size)

    @classmethod
    async def connect(cls, config: Neo4jConfig, create_schema: bool = True) -> Neo4jGraphStore:
        """Open the driver, check the server answers, create the schema if asked."""
        scheme = config.uri.split("://", 1)[0] if "://" in config.uri else ""
        if scheme not in BOLT_SCHEMES:
            raise GraphStoreError(
                f"bad Bolt configuration: uri {config.uri!r} must start with one of "
                + ", ".join(f"{s}://" for s in BOLT_SCHEMES)
            )
        try:
            driver = neo4j.AsyncGraphDatabase.driver(
                config.uri,
                auth=(config.user, config.password),
                max_connection_pool_size=config.max_pool_size,
                connection_timeout=config.connect_timeout_s,
                connection_acquisition_timeout=config.acquire_timeout_s,
                max_transaction_retry_time=config.retry_time_s,
            )
        except (ValueError, neo_errors.ConfigurationError) as err:
            raise GraphStoreError(f"bad Bolt configuration for {config.uri!r}: {err}") from err
        store = cls(driver, config)
        try:
            await store._read(cypher.PING)
            if create_schema:
                for statement in cypher.SCHEMA:
                    await store._guard(functools.partial(store._write_once, statement))
                await store.rebuild_adjacency(only_if_missing=True)
        except BaseException:
            await driver.close()
            raise
        return store

    async def close(self) -> None:
        await self._driver.close()

    async def rebuild_adjacency(self, only_if_missing: bool = False) -> bool:
        """Rebuild every node's lists from its edges, a page of nodes at a time (see
        `graph_store.cypher`); with ``only_if_missing``, only when some node lacks them.
        True if it ran."""
        if only_if_missing:
            missing = [await self._read(query) for query in cypher.ADJACENCY_MISSING]
            if not any(missing):
                return False
        caps = self._config.caps
        async for page in self._pages(cypher.USER_EDGES_PAGE):
            rows = []
            for r in page:
                items, ts = r["items"], r["ts"]
                recent = sorted(range(len(ts)), key=lambda k: (-ts[k], k))[: caps.user_recent]
                rows.append(
                    {
                        "id": r["id"],
                        "items": items,
                        "ts": ts,
                        "recent_items": [items[k] for k in recent],
                        "recent_ts": [ts[k] for k in recent],
                    }
                )
            await self._guard(functools.partial(self._write_once, cypher.SET_USER_LISTS, rows=rows))
        async for page in self._pages(cypher.ITEM_EDGES_PAGE):
            rows = []
            for r in page:
                edges = zip(r["ts"], r["users"], r["ratings"], strict=True)
                kept = sorted(edges, reverse=True)[: caps.item_raters]  # ts, then user id desc
                users, ts, rated = ([e[k] for e in kept] for k in (1, 0, 2))
                rows.append({"id": r["id"], "users": users, "ts": ts, "ratings": rated})
            await self._guard(functools.partial(self._write_once, cypher.SET_ITEM_LISTS, rows=rows))
        self._forget_cached()
        return True

    async def _history(self, user_id: str, n: int) -> list[HistoryEntry]:
        if n == 0:
            return []
        records = await self._read(cypher.HISTORY, uid=user_id, n=n)
        return [
            HistoryEntry(
                _item(r), int(r["ts"]), None if r["rating"] is None else float(r["rating"])
            )
            for r in records
        ]

    async def _items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """Item metadata, cached for ``item_cache_s`` (all dropped on our writes): the
        catalogue changes far less often than it is read."""

        async def fetch(ids: list[str]) -> dict[str, Item]:
            return {r["id"]: _item(r) for r in await self._read(cypher.ITEMS, ids=ids)}

        return await self._item_cache.get_many(item_ids, fetch)

    def _forget_cached(self, rows: Sequence[NewInteraction] | None = None) -> None:
        """After our own writes: popularity and item metadata may have changed, and the
        lists of the written users and items (of every node when ``rows`` is None)."""
        self._popular_cache = None
        self._item_cache.clear()
        if rows is None:
            self._rater_lists.clear()
            self._recent_lists.clear()
        else:
            self._rater_lists.drop({r.item_id for r in rows})
            self._recent_lists.drop({r.user_id for r in rows})

    async def _rating_evidence(
        self, user_id: str, item_id: str, taste: TasteParams
    ) -> RatingEvidence:
        """The user's ratings, the item's kept raters (the first entry of a user is its
        latest) and the taste neighbours, from three reads (two at once)."""
        own, raters, mine = await asyncio.gather(
            self._read(cypher.USER_RATINGS, uid=user_id, iid=item_id),
            self._read(cypher.ITEM_RATERS, iid=item_id),
            self._own_adjacency(user_id),
        )
        latest: dict[str, float] = {}
        for record in raters:
            for rater, rating in zip(record["users"], record["ratings"], strict=True):
                latest.setdefault(rater, float(rating))
        theirs = tuple((v, r) for v, r in latest.items() if v != user_id and r >= 0)
        near: tuple[str, ...] = ()
        if raters and mine is not None and mine[0]:
            window = recent_window(mine, taste.window)
            listed = RaterLists.of(await self._raters(sorted({*window, item_id})), window)
            chosen, _ = listed.top_neighbours(
                user_id, window, taste.min_overlap, taste.k, [item_id]
            )
            near = tuple(v for v, _ in chosen)
        return RatingEvidence(tuple(float(r["rating"]) for r in own), theirs, near)

    async def _seen_items(self, user_id: str) -> set[str]:
        return {r["id"] for r in await self._read(cypher.SEEN, uid=user_id)}

    def _neighbourhood(self, user_id: str) -> NeighbourhoodFetch:
        return NeighbourhoodFetch(
            user_id, self._own_adjacency, self._raters, self._recent, self._config.caps
        )

    async def _own_adjacency(self, user_id: str) -> TimedAdjacency | None:
        records = await self._read(cypher.USER_ADJACENCY, uid=user_id)
        return (records[0]["others"], records[0]["ts"]) if records else None

    async def _raters(self, item_ids: list[str]) -> dict[str, Raters]:
        """Items' kept raters, through the list cache."""
        return await self._lists(self._rater_lists, cypher.RATERS, item_ids)

    async def _recent(self, user_ids: list[str]) -> dict[str, TimedAdjacency]:
        """Users' recent lists, through the list cache."""
        return await self._lists(self._recent_lists, cypher.RECENT, user_ids)

    async def _lists(
        self, cache: ListCache[TimedAdjacency], query: str, node_ids: list[str]
    ) -> dict[str, TimedAdjacency]:
        """Nodes' (ids, ts) list pairs: the cached ones, and one ``query`` for the rest."""

        async def fetch(missing: list[str]) -> dict[str, TimedAdjacency]:
            records = await self._read(query, ids=missing)
            return {r["id"]: (id_array(r["ids"]), time_array(r["ts"])) for r in records}

        return await cache.get_many(node_ids, fetch)

    async def _cooccurrence(
        self, user_id: str, n: int, params: CandidateParams, among: frozenset[str] | None
    ) -> list[Candidate]:
        local = await self._neighbourhood(user_id).for_candidates(params, among)
        if local is None:
            return []
        found = local.cooccurrence(user_id, n, params, among)
        items = await self._items([c.item.item_id for c in found])
        return [replace(c, item=items[c.item.item_id]) for c in found]

    async def _chains(
        self, user_id: str, params: ChainParams, seed: int, candidates: frozenset[str] | None
    ) -> list[Chain]:
        """The index's chains over the user's fetched neighbourhood (same definition)."""
        local = await self._neighbourhood(user_id).for_chains(params, candidates)
        if local is None:
            return []
        found = local.chains(user_id, params, seed, candidates)
        wanted = {s.item_id for c in found for s in c.shared} | {c.next_item_id for c in found}
        titles = {i: item.title for i, item in (await self._items(sorted(wanted))).items()}
        return [
            replace(
                c,
                shared=tuple(replace(s, title=titles[s.item_id]) for s in c.shared),
                next_title=titles[c.next_item_id],
            )
            for c in found
        ]

    async def _popular(
        self, n: int, exclude: Collection[str], among: frozenset[str] | None
    ) -> list[Candidate]:
        if among is not None:
            records = await self._read(
                cypher.POPULAR_AMONG, among=sorted(among), exclude=sorted(exclude), n=n
            )
            return [Candidate(_item(r), int(r["score"]), "popular") for r in records]
        ranked = await self._popular_ranking()
        found = [c for c in ranked if c.item.item_id not in exclude][:n]
        if len(found) < n and len(ranked) == self._config.popular_cache_size:
            records = await self._read(cypher.POPULAR_EXCLUDING, exclude=sorted(exclude), n=n)
            found = [Candidate(_item(r), int(r["score"]), "popular") for r in records]
        return found

    async def _popular_ranking(self) -> list[Candidate]:
        """Items by distinct users, cached for ``popular_cache_s`` (dropped on our writes)."""
        now = time.monotonic()
        if (
            self._popular_cache is not None
            and now - self._popular_cache[0] < self._config.popular_cache_s
        ):
            return self._popular_cache[1]
        records = await self._read(cypher.POPULAR_ALL, n=self._config.popular_cache_size)
        ranked = [Candidate(_item(r), int(r["score"]), "popular") for r in records]
        self._popular_cache = (now, ranked)
        return ranked

    async def _ingest(self, rows: list[NewInteraction], records: list[ItemRecord]) -> IngestResult:
        try:
            created = await self._write_tx(self._batch_steps(rows, records))
        finally:  # a failed commit may still have landed
            self._forget_cached(rows)
        return IngestResult(len(rows), created)

    def _batch_steps(
        self, rows: Sequence[NewInteraction], records: Sequence[ItemRecord]
    ) -> list[tuple[str, dict[str, Any]]]:
        steps: list[tuple[str, dict[str, Any]]] = []
        if records:
            items = [
                {"id": r.item_id, "title": r.title, "attrs": dict(r.attributes)} for r in records
            ]
            steps.append((cypher.UPSERT_ITEMS, {"items": items}))
        if rows:
            ids = sorted({r.item_id for r in rows})
            bare = [{"id": i, "title": PLACEHOLDER_TITLE.format(item_id=i)} for i in ids]
            edges = [{"u": r.user_id, "i": r.item_id, "ts": r.ts, "rating": r.rating} for r in rows]
            steps.append((cypher.PLACEHOLDER_ITEMS, {"items": bare}))
            caps = self._config.caps
            steps.append(
                (
                    cypher.EDGES,
                    {"rows": edges, "rater_cap": caps.item_raters, "recent_cap": caps.user_recent},
                )
            )
        return steps

    async def load_frames(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GraphCounts:
        """Bulk-load canonical frames: items then interactions, one transaction per chunk."""
        size = max(int(chunk_size or self._config.chunk_size), 1)
        rows, records = prepare_batch(frame_interactions(interactions), frame_records(items))
        try:
            for start in range(0, len(records), size):
                await self._write_tx(self._batch_steps([], records[start : start + size]))
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                await self._write_tx(self._batch_steps(chunk, []))
                if on_progress is not None:
                    on_progress(len(chunk))
        finally:  # also after a failed chunk: the earlier ones are in
            self._forget_cached()
        return await self._counts()

    async def _counts(self) -> GraphCounts:
        record = (await self._read(cypher.COUNTS))[0]
        return GraphCounts(int(record["users"]), int(record["items"]), int(record["interactions"]))

    async def _users(self, n: int) -> list[str]:
        return [str(r["id"]) for r in await self._read(cypher.USERS, n=n)]

    async def _export(self, since: int | None) -> tuple[list[Item], ExportedEdges]:
        """Items, then users' edges, each in pages of ``export_page`` by ascending id."""
        page = self._config.export_page
        items: list[Item] = []
        after = ""
        while True:
            records = await self._read(cypher.EXPORT_ITEMS, after=after, n=page)
            items += [_item(r) for r in records]
            if len(records) < page:
                break
            after = items[-1].item_id
        columns: tuple[list[Any], ...] = ([], [], [], [])
        after = ""
        while True:
            records = await self._read(cypher.EXPORT_EDGES, after=after, n=page, since=since)
            for r in records:
                if r["iid"] is not None:
                    columns[0].append(r["uid"])
                    columns[1].append(r["iid"])
                    columns[2].append(int(r["ts"]))
                    columns[3].append(float("nan") if r["rating"] is None else float(r["rating"]))
            if len({r["uid"] for r in records}) < page:
                break
            after = records[-1]["uid"]  # the server's order, not Python's
        return items, ExportedEdges(*columns)

    async def clear(self) -> None:
        """Delete every User and Item node and their edges (tests and re-loads)."""
        await self._guard(
            lambda: self._write_once("MATCH (n) WHERE n:User OR n:Item DETACH DELETE n")
        )
        self._forget_cached()

"""The Bolt connection the Bolt store runs its Cypher through: settings, reads, writes.

`BoltSession` holds the official async ``neo4j`` driver and its `Neo4jConfig`; every call
runs under the query timeout, and an unreachable server, a refused login or a timeout
raise ``GraphStoreUnavailable`` (-> 503), any other server error ``GraphStoreError``.
`graph_store.neo4j_store.Neo4jGraphStore` is a `BoltSession` with the store's queries.

    session = BoltSession(driver, Neo4jConfig(uri="bolt://localhost:7687", ...))
    records = await session._read("MATCH (u:User) RETURN count(u) AS n")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import neo4j
import neo4j.exceptions as neo_errors

from graph_store.types import GraphCaps, GraphStoreError, GraphStoreUnavailable

T = TypeVar("T")
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_UNAVAILABLE = (
    neo_errors.ServiceUnavailable,
    neo_errors.SessionExpired,
    neo_errors.AuthError,
    neo_errors.TransientError,
    neo_errors.DriverError,
    OSError,
    TimeoutError,
)


@dataclass(frozen=True)
class Neo4jConfig:
    """Where the Bolt server is and how hard to try; every field has a safe default."""

    uri: str = field(default="bolt://127.0.0.1:7687", metadata={"help": "bolt:// or neo4j://"})
    user: str = field(default="neo4j", metadata={"help": "login user"})
    password: str = field(default="", repr=False, metadata={"help": "login password"})
    database: str = field(default="neo4j", metadata={"help": "database, sent with every query"})
    max_pool_size: int = field(default=50, metadata={"help": "connections kept per server"})
    connect_timeout_s: float = field(default=5.0, metadata={"help": "TCP + handshake limit"})
    acquire_timeout_s: float = field(default=5.0, metadata={"help": "wait for a pooled conn"})
    query_timeout_s: float = field(default=10.0, metadata={"help": "per query, client+server"})
    retry_time_s: float = field(default=5.0, metadata={"help": "retrying transient write errors"})
    chunk_size: int = field(default=5000, metadata={"help": "rows per UNWIND in load_frames"})
    popular_cache_s: float = field(default=60.0, metadata={"help": "popular-items cache life"})
    popular_cache_size: int = field(default=5000, metadata={"help": "popular items cached"})
    item_cache_s: float = field(default=60.0, metadata={"help": "item metadata cache life"})
    item_cache_size: int = field(default=100_000, metadata={"help": "items' metadata cached"})
    list_cache_s: float = field(
        default=30.0,
        metadata={"help": "life of cached rater/recent lists; 0: none (graph_store.list_cache)"},
    )
    list_cache_size: int = field(
        default=10_000, metadata={"help": "lists cached per kind (~16 bytes per entry)"}
    )
    export_page: int = field(default=2000, metadata={"help": "users or items per export query"})
    item_raters: int = field(
        default=GraphCaps.item_raters, metadata={"help": "raters kept per item (GraphCaps)"}
    )
    user_recent: int = field(
        default=GraphCaps.user_recent, metadata={"help": "recent edges kept per user (GraphCaps)"}
    )

    @property
    def caps(self) -> GraphCaps:
        return GraphCaps(self.item_raters, self.user_recent)


class BoltSession:
    """A driver and its settings; the store's queries go through these methods."""

    def __init__(self, driver: neo4j.AsyncDriver, config: Neo4jConfig) -> None:
        self._driver = driver
        self._config = config

    async def _pages(self, query: str) -> AsyncIterator[list[neo4j.Record]]:
        """The records of a query paged by ascending id (``$after``, ``$n``)."""
        after = ""
        while True:
            records = await self._read(query, after=after, n=self._config.export_page)
            if records:
                yield records
            if len(records) < self._config.export_page:
                return
            after = records[-1]["id"]

    async def _guard(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run one driver call under the query timeout; map outages to GraphStoreUnavailable."""
        where = f"graph server {self._config.uri} (database {self._config.database!r})"
        try:
            return await asyncio.wait_for(make(), timeout=self._config.query_timeout_s)
        except neo_errors.AuthError as err:
            raise GraphStoreUnavailable(f"{where}: login refused: {err.message}") from err
        except _UNAVAILABLE as err:
            reason = "timed out" if isinstance(err, TimeoutError) else f"unavailable: {err}"
            raise GraphStoreUnavailable(f"{where}: {reason}") from err
        except neo_errors.Neo4jError as err:
            raise GraphStoreError(f"{where}: query failed: {err.code}: {err.message}") from err

    def _query(self, text: str) -> neo4j.Query:
        return neo4j.Query(text, timeout=self._config.query_timeout_s)

    async def _read(self, text: str, **params: Any) -> list[neo4j.Record]:
        async def run() -> list[neo4j.Record]:
            result = await self._driver.execute_query(
                self._query(text),
                params,
                database_=self._config.database,
                routing_=neo4j.RoutingControl.READ,
            )
            return list(result.records)

        return await self._guard(run)

    async def _write_once(self, text: str, **params: Any) -> None:
        await self._driver.execute_query(self._query(text), params, database_=self._config.database)

    async def _write_tx(self, steps: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Run the statements in ONE managed transaction; return the last ``created`` sum."""

        @neo4j.unit_of_work(timeout=self._config.query_timeout_s)
        async def work(tx: neo4j.AsyncManagedTransaction) -> int:
            created = 0
            for text, params in steps:
                result = await tx.run(text, params)
                record = await result.single()
                if record is not None:
                    created = int(record.get("created") or 0)
            return created

        async def run() -> int:
            async with self._driver.session(database=self._config.database) as session:
                return await session.execute_write(work)

        return await self._guard(run)

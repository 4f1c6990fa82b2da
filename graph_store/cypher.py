"""The Cypher the Bolt store runs, kept to what both Neo4j 5 and ArcadeDB execute.

Model: ``(:User {id, adj_items, adj_ts, recent_items, recent_ts})``, ``(:Item {id,
title, placeholder, raters, raters_ts, <attributes>})``, ``(:User)-[:INTERACTED {ts,
rating}]->(:Item)``; a repeated (user, item, ts) is one edge. Every query is
parameterised (no string building from input). Orderings mirror ``graph_store.base``:
recency = ts desc then id desc; ranks tie-break on id asc.

Adjacency lists, written by ``EDGES`` in the same transaction that creates the edge, so
they are never out of step with the edges: a user carries all its edges as two parallel
list properties (``adj_items``/``adj_ts``, appended) and its ``$recent_cap`` most recent
edges (``recent_items``/``recent_ts``); an item carries its ``$rater_cap`` most recent
edges (``raters``/``raters_ts``/``raters_rating``, -1.0 for an edge without a rating).
Both capped lists are ts desc, an earlier write first on a tie (the new edge goes in
after every entry with ts >= its own and the list is cut to the cap): the bounded lists
`GraphCaps` defines (#18), so a write costs O(cap) and a request reads O(window x cap)
rows however popular its items or heavy its neighbours. Candidates and chains read them
(`graph_store.neighbourhood`) instead of traversing: on ArcadeDB a traversal cost ~12 us
per edge, while the lists need indexed reads (``USER_ADJACENCY``, ``RATERS``,
``RECENT``). Filtering a list on the server (``[k IN range(...) WHERE ...]``) is slower
still (~0.8 s for 50 heavy users), so the lists travel whole, and the neighbours are
counted in the client: counting on the server (``UNWIND`` the window items' raters,
``count(DISTINCT)``) took ~12 ms p50 on ArcadeDB at 100k edges, about as long as
sending the lists, and repeated every request what the client caches
(`graph_store.list_cache`).
`Neo4jGraphStore.rebuild_adjacency` rebuilds them from the edges, a page of nodes at a
time (a graph written before they existed; `Neo4jGraphStore.connect` runs it when a node
lacks them; a rebuild cannot know which of two same-time edges came first: it orders an
item's by user id desc and a user's by their place in its adjacency). Changing a cap
needs a rebuild.

Portability notes (checked on ArcadeDB 26.10 and written to Neo4j 5 syntax):
- ``CREATE CONSTRAINT ... IF NOT EXISTS ... IS UNIQUE`` and ``CREATE INDEX ... IF NOT
  EXISTS FOR ()-[r:INTERACTED]-() ON (r.ts)`` work on both; ArcadeDB lists extra
  entries in ``SHOW CONSTRAINTS``/``SHOW INDEXES`` (we never read them).
- Several ``SET`` items of an ``ON CREATE SET`` may write other bound nodes (the
  adjacency lists); rows of one ``UNWIND`` are applied in order on both servers, so a
  batch touching one node twice appends twice. ``raters`` and ``raters_rating`` are set
  before ``raters_ts`` (``recent_items`` before ``recent_ts``) and all compute the
  insertion point from the old times, so it does not matter
  whether a server evaluates the items of one ``SET`` together or one after the other.
- String order is Java's (UTF-16 code units) on both servers; Python orders by code
  point. They differ only between supplementary characters and U+E000-U+FFFF. (The
  neighbours, ranked by id on ties, are ranked in the client: Python's order, as in the
  embedded store.)
- "Was this edge new?" is counted with OPTIONAL MATCH + ``count()`` before the MERGE:
  the aggregation forces every row to be read before any is written. An ``EXISTS {}``
  in the same place is evaluated lazily by ArcadeDB (after the MERGE, always true),
  while Neo4j's planner makes it eager; the aggregation is correct on both.
- No APOC or GDS: neither is needed.
"""

from __future__ import annotations

SCHEMA = (
    "CREATE CONSTRAINT r2rec_user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE CONSTRAINT r2rec_item_id IF NOT EXISTS FOR (i:Item) REQUIRE i.id IS UNIQUE",
    "CREATE INDEX r2rec_interacted_ts IF NOT EXISTS FOR ()-[r:INTERACTED]-() ON (r.ts)",
)

# item properties that are not attributes (adj_users/adj_ts: an older graph's full lists)
_ITEM_FIELDS = (
    "{id}.id AS id, {id}.title AS title, {id}.placeholder AS placeholder, "
    "[k IN keys({id}) WHERE NOT k IN "
    "['id', 'title', 'placeholder', 'raters', 'raters_ts', 'raters_rating', 'adj_users', "
    "'adj_ts'] "
    "| [k, {id}[k]]] AS attrs"
)

HISTORY = f"""
MATCH (:User {{id: $uid}})-[r:INTERACTED]->(i:Item)
RETURN {_ITEM_FIELDS.format(id="i")}, r.ts AS ts, r.rating AS rating
ORDER BY ts DESC, id DESC LIMIT $n
"""

ITEMS = f"""
UNWIND $ids AS iid
MATCH (i:Item {{id: iid}})
RETURN {_ITEM_FIELDS.format(id="i")}
"""

SEEN = """
MATCH (:User {id: $uid})-[:INTERACTED]->(i:Item)
RETURN DISTINCT i.id AS id
"""

USER_ADJACENCY = """
MATCH (u:User {id: $uid})
RETURN coalesce(u.adj_items, []) AS others, coalesce(u.adj_ts, []) AS ts
"""

# `graph_store.neighbourhood`: the chosen neighbours' recent lists (unknown ids left out)
RECENT = """
UNWIND $ids AS uid
MATCH (n:User {id: uid})
RETURN uid AS id, coalesce(n.recent_items, []) AS ids, coalesce(n.recent_ts, []) AS ts
"""

# `Neo4jGraphStore.rating_evidence`: the user's other ratings; the item's kept raters
# with their ratings (-1.0: an edge without one; a list property cannot hold null)
USER_RATINGS = """
MATCH (:User {id: $uid})-[r:INTERACTED]->(i:Item)
WHERE i.id <> $iid AND r.rating IS NOT NULL
RETURN r.rating AS rating ORDER BY r.ts DESC, i.id DESC
"""

ITEM_RATERS = """
MATCH (i:Item {id: $iid})
RETURN coalesce(i.raters, []) AS users, coalesce(i.raters_rating, []) AS ratings
"""

RATERS = """
UNWIND $ids AS iid
MATCH (i:Item {id: iid})
RETURN iid AS id, coalesce(i.raters, []) AS ids, coalesce(i.raters_ts, []) AS ts
"""

POPULAR_ALL = f"""
MATCH (v:User)-[:INTERACTED]->(i:Item)
WITH i, count(DISTINCT v) AS score ORDER BY score DESC, i.id ASC LIMIT $n
RETURN {_ITEM_FIELDS.format(id="i")}, score
"""

POPULAR_EXCLUDING = f"""
MATCH (v:User)-[:INTERACTED]->(i:Item) WHERE NOT i.id IN $exclude
WITH i, count(DISTINCT v) AS score ORDER BY score DESC, i.id ASC LIMIT $n
RETURN {_ITEM_FIELDS.format(id="i")}, score
"""

POPULAR_AMONG = f"""
UNWIND $among AS iid
MATCH (i:Item {{id: iid}})<-[:INTERACTED]-(v:User) WHERE NOT i.id IN $exclude
WITH i, count(DISTINCT v) AS score ORDER BY score DESC, i.id ASC LIMIT $n
RETURN {_ITEM_FIELDS.format(id="i")}, score
"""

UPSERT_ITEMS = """
UNWIND $items AS row
MERGE (i:Item {id: row.id})
SET i.title = row.title, i.placeholder = false
SET i += row.attrs
"""

PLACEHOLDER_ITEMS = """
UNWIND $items AS row
MERGE (i:Item {id: row.id})
ON CREATE SET i.title = row.title, i.placeholder = true
"""

EDGES = """
UNWIND $rows AS row
MERGE (u:User {id: row.u})
WITH u, row
MATCH (i:Item {id: row.i})
OPTIONAL MATCH (u)-[old:INTERACTED {ts: row.ts}]->(i)
WITH u, i, row, count(old) AS existed
MERGE (u)-[r:INTERACTED {ts: row.ts}]->(i)
ON CREATE SET r.rating = row.rating,
    u.adj_items = coalesce(u.adj_items, []) + [row.i], u.adj_ts = coalesce(u.adj_ts, []) + [row.ts],
    u.recent_items = (coalesce(u.recent_items, [])[..$$mine] + [row.i]
        + coalesce(u.recent_items, [])[$$mine..])[..$recent_cap],
    u.recent_ts = (coalesce(u.recent_ts, [])[..$$mine] + [row.ts]
        + coalesce(u.recent_ts, [])[$$mine..])[..$recent_cap],
    i.raters = (coalesce(i.raters, [])[..$$at] + [row.u]
        + coalesce(i.raters, [])[$$at..])[..$rater_cap],
    i.raters_rating = (coalesce(i.raters_rating, [])[..$$at] + [coalesce(row.rating, -1.0)]
        + coalesce(i.raters_rating, [])[$$at..])[..$rater_cap],
    i.raters_ts = (coalesce(i.raters_ts, [])[..$$at] + [row.ts]
        + coalesce(i.raters_ts, [])[$$at..])[..$rater_cap]
RETURN sum(CASE WHEN existed > 0 THEN 0 ELSE 1 END) AS created
""".replace("$$at", "size([t IN coalesce(i.raters_ts, []) WHERE t >= row.ts])").replace(
    "$$mine", "size([t IN coalesce(u.recent_ts, []) WHERE t >= row.ts])"
)

# Export, paged by id (keyset: each page starts after the last id of the previous one).
# A user without edges (or none at/after $since) still returns one row, so paging advances.
EXPORT_ITEMS = f"""
MATCH (i:Item) WHERE i.id > $after
WITH i ORDER BY i.id ASC LIMIT $n
RETURN {_ITEM_FIELDS.format(id="i")} ORDER BY id ASC
"""

EXPORT_EDGES = """
MATCH (u:User) WHERE u.id > $after
WITH u ORDER BY u.id ASC LIMIT $n
OPTIONAL MATCH (u)-[r:INTERACTED]->(i:Item) WHERE $since IS NULL OR r.ts >= $since
RETURN u.id AS uid, i.id AS iid, r.ts AS ts, r.rating AS rating ORDER BY uid ASC
"""

USERS = "MATCH (u:User) RETURN u.id AS id ORDER BY u.id LIMIT $n"

COUNTS = """
CALL { MATCH (u:User) RETURN count(u) AS users }
CALL { MATCH (i:Item) RETURN count(i) AS items }
CALL { MATCH ()-[r:INTERACTED]->() RETURN count(r) AS interactions }
RETURN users, items, interactions
"""

ADJACENCY_MISSING = (
    "MATCH (u:User) WHERE u.adj_items IS NULL OR u.recent_items IS NULL RETURN u.id AS id LIMIT 1",
    "MATCH (i:Item) WHERE (i.raters IS NULL OR i.raters_rating IS NULL) "
    "AND (i)<-[:INTERACTED]-() RETURN i.id AS id LIMIT 1",
)

# The rebuild, a page of nodes at a time (`Neo4jGraphStore.rebuild_adjacency` orders and
# cuts the lists in Python): one global ORDER BY over every edge exceeds ArcadeDB's query
# heap at 100k edges.
USER_EDGES_PAGE = """
MATCH (u:User) WHERE u.id > $after
WITH u ORDER BY u.id ASC LIMIT $n
OPTIONAL MATCH (u)-[r:INTERACTED]->(i:Item)
RETURN u.id AS id, collect(i.id) AS items, collect(r.ts) AS ts ORDER BY id ASC
"""

ITEM_EDGES_PAGE = """
MATCH (i:Item) WHERE i.id > $after
WITH i ORDER BY i.id ASC LIMIT $n
OPTIONAL MATCH (i)<-[r:INTERACTED]-(u:User)
RETURN i.id AS id, collect(u.id) AS users, collect(r.ts) AS ts,
       collect(CASE WHEN r IS NULL THEN null ELSE coalesce(r.rating, -1.0) END) AS ratings
ORDER BY id ASC
"""

SET_USER_LISTS = """
UNWIND $rows AS row
MATCH (u:User {id: row.id})
SET u.adj_items = row.items, u.adj_ts = row.ts,
    u.recent_items = row.recent_items, u.recent_ts = row.recent_ts
"""

SET_ITEM_LISTS = """
UNWIND $rows AS row
MATCH (i:Item {id: row.id})
SET i.raters = row.users, i.raters_ts = row.ts, i.raters_rating = row.ratings
REMOVE i.adj_users, i.adj_ts
"""

PING = "RETURN 1 AS ok"

"""The Cypher the Bolt store runs, kept to what both Neo4j 5 and ArcadeDB execute.

Model: ``(:User {id})``, ``(:Item {id, title, placeholder, <attributes>})``,
``(:User)-[:INTERACTED {ts, rating}]->(:Item)``; a repeated (user, item, ts) is one edge.
Every query is parameterised (no string building from input). Orderings mirror
``graph_store.base``: recency = ts desc then id desc; ranks tie-break on id asc.

Portability notes (checked on ArcadeDB 26.10 and written to Neo4j 5 syntax):
- ``CREATE CONSTRAINT ... IF NOT EXISTS ... IS UNIQUE`` and ``CREATE INDEX ... IF NOT
  EXISTS FOR ()-[r:INTERACTED]-() ON (r.ts)`` work on both; ArcadeDB lists extra
  entries in ``SHOW CONSTRAINTS``/``SHOW INDEXES`` (we never read them).
- Relying on ``ORDER BY`` before ``collect()`` to keep order: Neo4j does so in practice
  and ArcadeDB too; the per-neighbour slice in ``NEXT_ITEMS`` depends on it, and the
  cross-store contract test would catch a divergence.
- String order is Java's (UTF-16 code units) on both servers; Python orders by code
  point. They differ only between supplementary characters and U+E000-U+FFFF.
- "Was this edge new?" is counted with OPTIONAL MATCH + ``count()`` before the MERGE:
  the aggregation forces every row to be read before any is written. An ``EXISTS {}``
  in the same place is evaluated lazily by ArcadeDB (after the MERGE, always true),
  while Neo4j's planner makes it eager; the aggregation is correct on both.
- "Unseen by the user" is ``NOT j.id IN $seen`` with the user's item ids fetched first
  (``SEEN``): on ArcadeDB a per-row ``NOT EXISTS { (u)-->(j) }`` was 1.3-3x slower.
- No APOC or GDS: neither is needed.
"""

from __future__ import annotations

SCHEMA = (
    "CREATE CONSTRAINT r2rec_user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE CONSTRAINT r2rec_item_id IF NOT EXISTS FOR (i:Item) REQUIRE i.id IS UNIQUE",
    "CREATE INDEX r2rec_interacted_ts IF NOT EXISTS FOR ()-[r:INTERACTED]-() ON (r.ts)",
)

_ITEM_FIELDS = (
    "{id}.id AS id, {id}.title AS title, {id}.placeholder AS placeholder, properties({id}) AS props"
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

_WINDOW = """
MATCH (u:User {id: $uid})-[r:INTERACTED]->(i:Item)
WITH u, i, max(r.ts) AS uts ORDER BY uts DESC, i.id DESC LIMIT $window
"""

COOCCURRENCE = (
    _WINDOW
    + f"""
MATCH (i)<-[:INTERACTED]-(v:User) WHERE v <> u
WITH u, v, count(DISTINCT i) AS overlap ORDER BY overlap DESC, v.id ASC LIMIT $k
MATCH (v)-[:INTERACTED]->(j:Item)
WHERE NOT j.id IN $seen AND ($among IS NULL OR j.id IN $among)
WITH DISTINCT v, overlap, j
WITH j, sum(overlap) AS score ORDER BY score DESC, j.id ASC LIMIT $n
RETURN {_ITEM_FIELDS.format(id="j")}, score
"""
)

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

CHAIN_NEIGHBOURS = (
    _WINDOW
    + """
MATCH (i)<-[r2:INTERACTED]-(v:User) WHERE v <> u
WITH v, i, uts, max(r2.ts) AS vts
WITH v, count(i) AS overlap, collect([i.id, i.title, uts, vts]) AS shared
WHERE overlap >= $min_overlap
  AND ($cands IS NULL OR EXISTS { MATCH (v)-[:INTERACTED]->(c:Item) WHERE c.id IN $cands })
RETURN v.id AS vid, overlap, shared ORDER BY overlap DESC, vid ASC LIMIT $k
"""
)

NEXT_ITEMS = """
UNWIND $reqs AS req
MATCH (v:User {id: req.vid})-[r:INTERACTED]->(j:Item)
WHERE NOT j.id IN $seen AND ($cands IS NULL OR j.id IN $cands)
WITH req, j, max(r.ts) AS ts
WITH req, j, ts, CASE WHEN ts > req.anchor THEN 0 ELSE 1 END AS later
ORDER BY req.vid, later ASC, CASE WHEN later = 0 THEN ts ELSE -ts END ASC,
         CASE WHEN later = 0 THEN j.id ELSE '' END ASC,
         CASE WHEN later = 0 THEN '' ELSE j.id END DESC
WITH req, collect([j.id, j.title, ts]) AS rows
RETURN req.vid AS vid, rows[..req.limit] AS rows
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
ON CREATE SET r.rating = row.rating
RETURN sum(CASE WHEN existed > 0 THEN 0 ELSE 1 END) AS created
"""

COUNTS = """
CALL { MATCH (u:User) RETURN count(u) AS users }
CALL { MATCH (i:Item) RETURN count(i) AS items }
CALL { MATCH ()-[r:INTERACTED]->() RETURN count(r) AS interactions }
RETURN users, items, interactions
"""

PING = "RETURN 1 AS ok"

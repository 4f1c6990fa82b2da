"""Values the graph store takes and returns: frozen dataclasses, parameters and errors.

Every store (embedded or Bolt) returns exactly these types, so callers (the prompt
renderer, the service, training) never see a driver record or a numpy array.

    chain = (await store.chains("42"))[0]
    chain.sentence()   # "you watched A and B; someone who also watched A and B went on to watch C"

Errors: ``InvalidIdError`` / ``InvalidRecordError`` (both ``ValueError`` and the CLI's
``UserInputError``) for bad input; ``GraphStoreUnavailable`` when the server cannot be
reached or times out (the service maps it to 503).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from common.errors import UserInputError
from common.ids import id_problem
from recdata.vocabulary import FILMS, Vocabulary

PLACEHOLDER_TITLE = "Unknown item {item_id}"
RESERVED_ITEM_KEYS = frozenset({"id", "title", "placeholder"})
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class GraphStoreError(Exception):
    """Base of every error raised by a graph store."""


class InvalidInputError(GraphStoreError, UserInputError, ValueError):
    """Malformed input to a graph store; ``str(err)`` names what is wrong."""


class InvalidIdError(InvalidInputError):
    """A user or item id that is not a non-empty, printable string of bounded length."""


class InvalidRecordError(InvalidInputError):
    """An interaction or item record with a bad field (timestamp, rating, attribute)."""


class GraphStoreUnavailable(GraphStoreError):
    """The graph server is unreachable, refused the login, or did not answer in time."""


def validate_id(value: object, kind: str) -> str:
    """Return ``value`` if it is a usable id (`common.ids`), else raise ``InvalidIdError``."""
    problem = id_problem(value)
    if problem is not None:
        shown = f" {value!r}" if isinstance(value, str) and value and "control" in problem else ""
        raise InvalidIdError(f"{kind} id{shown} {problem}")
    return cast(str, value)


@dataclass(frozen=True)
class Item:
    """An item node: id, title, optional string attributes; ``placeholder`` if ingested bare."""

    item_id: str
    title: str
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    placeholder: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    """One interaction of a user: the item (with metadata), when, and the rating if any."""

    item: Item
    ts: int
    rating: float | None


@dataclass(frozen=True)
class Candidate:
    """A candidate item; ``score`` is its co-interaction count or, for ``popular``, its users."""

    item: Item
    score: int
    source: str  # "co-interaction" | "popular"


@dataclass(frozen=True)
class SharedItem:
    """An item both the user and the neighbour interacted with, with both (latest) times."""

    item_id: str
    title: str
    user_ts: int
    neighbour_ts: int


@dataclass(frozen=True)
class Chain:
    """A closed chain u0 -> i0 -> u1 -> i1: shared items (>= 2), the neighbour, the next item.

    ``went_on`` is true when the neighbour interacted with the next item after the shown
    shared items ("went on to watch"); ``overlap`` counts all items shared in the window.
    """

    user_id: str
    shared: tuple[SharedItem, ...]
    neighbour_id: str
    overlap: int
    next_item_id: str
    next_title: str
    next_ts: int
    went_on: bool
    words: Vocabulary = field(default=FILMS, compare=False)  # the catalogue's, for sentence()

    def sentence(self) -> str:
        """The chain in plain words (the catalogue's, `recdata.vocabulary`)."""
        titles = [s.title for s in self.shared]
        shared = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        w = self.words
        verb = f"went on to {w.base}" if self.went_on else f"also {w.past}"
        return f"you {w.past} {shared}; someone who also {w.past} {shared} {verb} {self.next_title}"


@dataclass(frozen=True)
class RatingEvidence:
    """What the graph says about rating a (user, item) pair (`GraphStoreBase.rating_evidence`),
    never including the pair's own edges, read from bounded lists like every request:

    - ``user_ratings``: the user's ratings of other items (every rated edge);
    - ``item_ratings``: (user, rating) of the item's kept raters (``GraphCaps.item_raters``:
      its most recent raters, each with its latest rating; unrated edges left out);
    - ``neighbours``: taste neighbours who interacted with the item (`TasteParams`), in rank
      order; their ratings are among ``item_ratings``.
    """

    user_ratings: tuple[float, ...]
    item_ratings: tuple[tuple[str, float], ...]
    neighbours: tuple[str, ...]


@dataclass(frozen=True)
class TasteParams:
    """Who counts as a taste neighbour for a rating: shares >= ``min_overlap`` of the user's
    ``window`` most recent distinct items, top ``k`` by overlap (then id)."""

    window: int = 50
    min_overlap: int = 2
    k: int = 20


@dataclass(frozen=True)
class GraphCounts:
    users: int
    items: int
    interactions: int


@dataclass(frozen=True)
class IngestResult:
    """What one ingestion did: rows received (after de-duplication) and edges actually new."""

    received: int
    new_interactions: int


@dataclass(frozen=True)
class NewInteraction:
    """An interaction to ingest; ``ts`` in Unix seconds, ``rating`` None when implicit."""

    user_id: str
    item_id: str
    ts: int
    rating: float | None = None

    def validated(self) -> NewInteraction:
        validate_id(self.user_id, "user")
        validate_id(self.item_id, "item")
        if isinstance(self.ts, bool) or not isinstance(self.ts, int):
            raise InvalidRecordError(f"timestamp must be an integer, got {self.ts!r}")
        if not -(2**62) < self.ts < 2**62:
            raise InvalidRecordError(f"timestamp {self.ts} is out of range")
        rating = self.rating
        if rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, int | float):
                raise InvalidRecordError(f"rating must be a number or None, got {rating!r}")
            if math.isinf(rating):
                raise InvalidRecordError(f"rating must be finite, got {rating!r}")
            rating = None if math.isnan(rating) else float(rating)
        return NewInteraction(self.user_id, self.item_id, int(self.ts), rating)


@dataclass(frozen=True)
class ItemRecord:
    """Item metadata to upsert: a title and optional string attributes (genres, year, ...)."""

    item_id: str
    title: str
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    def validated(self) -> ItemRecord:
        validate_id(self.item_id, "item")
        if not isinstance(self.title, str):
            raise InvalidRecordError(f"item {self.item_id!r}: title must be a string")
        for key, value in self.attributes.items():
            if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
                raise InvalidRecordError(f"item {self.item_id!r}: bad attribute name {key!r}")
            if key in RESERVED_ITEM_KEYS:
                raise InvalidRecordError(f"item {self.item_id!r}: attribute {key!r} is reserved")
            if not isinstance(value, str):
                raise InvalidRecordError(f"item {self.item_id!r}: attribute {key!r} must be str")
        return ItemRecord(self.item_id, self.title, dict(self.attributes))


@dataclass(frozen=True)
class GraphCaps:
    """How much of the graph one request may read: the bounded request path (#18).

    Each item keeps its ``item_raters`` most recent edges' users (ts desc, earlier write
    first on a tie) and each user its ``user_recent`` most recent edges, as they are
    written (`graph_store.index` builds them per snapshot; the Bolt store keeps them as
    node properties, `graph_store.cypher`). Taste neighbours are counted over the window
    items' raters, and a neighbour contributes only its recent items, so a request costs
    O(window x cap) whatever the items' degrees. ``GraphCaps.unbounded()`` reads
    everything (the exact answers; tests compare the two).
    """

    item_raters: int = 512
    user_recent: int = 256

    def __post_init__(self) -> None:
        _require_positive(item_raters=self.item_raters, user_recent=self.user_recent)

    @classmethod
    def unbounded(cls) -> GraphCaps:
        return cls(2**40, 2**40)


@dataclass(frozen=True)
class CandidateParams:
    """How candidates are scored (the same definition in every store)."""

    window: int = 50  # the user's most recent distinct items used as the seed history
    max_neighbours: int = 50  # users sharing most window items (overlap desc, id) that vote

    def __post_init__(self) -> None:
        _require_positive(window=self.window, max_neighbours=self.max_neighbours)


@dataclass(frozen=True)
class ChainParams:
    """How chains are sampled; bounds the work per request (the same in every store)."""

    window: int = 50  # the user's most recent distinct items that may serve as shared items
    min_overlap: int = 2  # closure: a neighbour shares at least this many window items (>= 2)
    max_neighbours: int = 20  # neighbours kept, ranked by overlap desc then user id
    next_per_neighbour: int = 2  # next items enumerated per neighbour
    max_shared: int = 2  # shared items shown per chain (most recent for the user)
    max_chains: int = 5  # chains returned, drawn seeded from the enumerated pool

    def __post_init__(self) -> None:
        _require_positive(
            window=self.window,
            max_neighbours=self.max_neighbours,
            next_per_neighbour=self.next_per_neighbour,
            max_chains=self.max_chains,
        )
        if self.min_overlap < 2:
            raise InvalidRecordError(f"min_overlap must be >= 2 (closure), got {self.min_overlap}")
        if self.max_shared < 2:
            raise InvalidRecordError(f"max_shared must be >= 2, got {self.max_shared}")


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRecordError(f"{name} must be a positive integer, got {value!r}")

"""The one contract every graph store meets (memory, ArcadeDB over Bolt, Neo4j if set)."""

from __future__ import annotations

import pytest

from graph_store import cypher, memory
from graph_store.base import GraphStoreBase
from graph_store.types import (
    Candidate,
    CandidateParams,
    ChainParams,
    GraphCounts,
    GraphStoreError,
    InvalidIdError,
    InvalidRecordError,
    ItemRecord,
    NewInteraction,
    RatingEvidence,
    TasteParams,
)

pytestmark = pytest.mark.asyncio


def ids(found: list[Candidate]) -> list[tuple[str, int, str]]:
    return [(c.item.item_id, c.score, c.source) for c in found]


async def test_counts_after_load(toy: GraphStoreBase) -> None:
    assert await toy.counts() == GraphCounts(users=3, items=6, interactions=9)


async def test_users_listed_in_id_order(toy: GraphStoreBase) -> None:
    assert await toy.users(10) == ["a", "b", "c"]
    assert await toy.users(2) == ["a", "b"]
    assert await toy.users(0) == []
    await toy.ingest([NewInteraction("0-new", "m1", 90)])
    assert await toy.users(2) == ["0-new", "a"]
    with pytest.raises(InvalidRecordError):
        await toy.users(-1)


async def test_history_most_recent_first_with_metadata(toy: GraphStoreBase) -> None:
    history = await toy.history("a", n=10)
    assert [(h.item.item_id, h.ts, h.rating) for h in history] == [
        ("m3", 30, 5.0),
        ("m2", 20, 4.0),
        ("m1", 10, None),
    ]
    assert history[0].item.title == "Casablanca"
    assert history[0].item.attributes == {"year": "1942"}
    assert not history[0].item.placeholder
    assert [h.item.item_id for h in await toy.history("a", n=2)] == ["m3", "m2"]


async def test_unknown_user_has_empty_history_and_no_chains(toy: GraphStoreBase) -> None:
    assert await toy.history("nobody") == []
    assert await toy.chains("nobody") == []


async def test_item_lookup_one_and_many(toy: GraphStoreBase) -> None:
    item = await toy.item("m4")
    assert item is not None and item.title == "Dune" and item.attributes == {"year": "1984"}
    assert await toy.item("m404") is None
    found = await toy.items(["m1", "m6", "m404"])
    assert sorted(found) == ["m1", "m6"] and found["m6"].title == "Fargo"


async def test_candidates_by_co_interaction_unseen_only(toy: GraphStoreBase) -> None:
    # b shares m1, m2 with a (weight 2): m4, m5; c shares m1 (weight 1): m5.
    assert ids(await toy.candidates("a", n=5)) == [
        ("m5", 3, "co-interaction"),
        ("m4", 2, "co-interaction"),
    ]
    assert ids(await toy.candidates("a", n=1)) == [("m5", 3, "co-interaction")]
    assert await toy.candidates("a", n=0) == []


async def test_candidates_for_cold_user_are_popular_with_id_tie_break(toy: GraphStoreBase) -> None:
    assert ids(await toy.candidates("nobody", n=4)) == [
        ("m1", 3, "popular"),
        ("m2", 2, "popular"),
        ("m5", 2, "popular"),
        ("m3", 1, "popular"),
    ]


async def test_candidates_filled_with_popular_and_restricted_by_among(toy: GraphStoreBase) -> None:
    # c: b shares m1, m5 (weight 2) -> m2, m4; a shares m1 (weight 1) -> m2, m3.
    assert ids(await toy.candidates("c", n=3)) == [
        ("m2", 3, "co-interaction"),
        ("m4", 2, "co-interaction"),
        ("m3", 1, "co-interaction"),
    ]
    # only the best neighbour votes: m2, m4 tie on 2 (id order), then popular m3 fills up
    assert ids(await toy.candidates("c", n=4, params=CandidateParams(max_neighbours=1))) == [
        ("m2", 2, "co-interaction"),
        ("m4", 2, "co-interaction"),
        ("m3", 1, "popular"),
    ]
    assert ids(await toy.candidates("nobody", n=3, among=["m3", "m4"])) == [
        ("m3", 1, "popular"),
        ("m4", 1, "popular"),
    ]
    assert ids(await toy.candidates("a", n=3, among=["m4"])) == [("m4", 2, "co-interaction")]


async def test_chains_are_closed_and_prefer_what_came_after(toy: GraphStoreBase) -> None:
    chains = await toy.chains("a", seed=0)
    assert [(c.neighbour_id, c.next_item_id, c.went_on) for c in chains] == [
        ("b", "m4", True),
        ("b", "m5", False),
    ]
    first = chains[0]
    assert [(s.item_id, s.user_ts, s.neighbour_ts) for s in first.shared] == [
        ("m2", 20, 6),
        ("m1", 10, 5),
    ]
    assert first.overlap == 2 and first.next_title == "Dune" and first.next_ts == 40
    assert first.sentence() == (
        "you watched Brazil and Alien; someone who also watched Brazil and Alien "
        "went on to watch Dune"
    )
    # c shares m1 and m5 with b (b's latest on them: 5); b watched m2 (6) and m4 (40) later
    assert [(c.neighbour_id, c.next_item_id, c.went_on) for c in await toy.chains("c")] == [
        ("b", "m2", True),
        ("b", "m4", True),
    ]
    assert await toy.chains("a", ChainParams(min_overlap=3)) == []  # nobody shares 3


async def test_chains_restricted_to_candidates(toy: GraphStoreBase) -> None:
    only = await toy.chains("a", candidates={"m5"})
    assert [(c.neighbour_id, c.next_item_id) for c in only] == [("b", "m5")]
    assert await toy.chains("a", candidates={"m6"}) == []
    assert await toy.chains("a", candidates=set()) == []


async def test_chain_sampling_is_bounded_and_seeded(toy: GraphStoreBase) -> None:
    params = ChainParams(max_chains=1)
    draws = {(await toy.chains("a", params, seed=s))[0].next_item_id for s in range(12)}
    assert draws == {"m4", "m5"}  # both can be drawn ...
    again = [(await toy.chains("a", params, seed=s))[0].next_item_id for s in range(12)]
    assert again == [(await toy.chains("a", params, seed=s))[0].next_item_id for s in range(12)]
    assert len(await toy.chains("a", ChainParams(next_per_neighbour=1))) == 1


async def test_ingest_is_idempotent_and_creates_unknowns(toy: GraphStoreBase) -> None:
    batch = [NewInteraction("a", "m4", 50, 4.5), NewInteraction("new-user", "m1", 60)]
    first = await toy.ingest(batch)
    assert first.new_interactions == 2
    again = await toy.ingest([*batch, batch[0]])
    assert again.received == 2 and again.new_interactions == 0
    assert await toy.counts() == GraphCounts(users=4, items=6, interactions=11)
    assert [(h.item.item_id, h.rating) for h in await toy.history("a", 1)] == [("m4", 4.5)]
    assert [h.item.item_id for h in await toy.history("new-user")] == ["m1"]
    await toy.ingest([NewInteraction("a", "m4", 51)])  # same pair, new time: a new edge
    assert (await toy.counts()).interactions == 12


async def test_item_without_metadata_is_a_flagged_placeholder(toy: GraphStoreBase) -> None:
    await toy.ingest([NewInteraction("a", "m99", 70)])
    item = await toy.item("m99")
    assert item is not None and item.placeholder and "m99" in item.title
    await toy.ingest([], [ItemRecord("m99", "Metropolis", {"year": "1927"})])
    item = await toy.item("m99")
    assert item is not None and not item.placeholder and item.title == "Metropolis"
    assert item.attributes == {"year": "1927"}


@pytest.mark.parametrize("bad", ["", "x" * 257, "a\nb", "tab\there", "nul\x00", 42])
async def test_malformed_ids_raise_invalid_id(toy: GraphStoreBase, bad: object) -> None:
    with pytest.raises(InvalidIdError):
        await toy.history(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        await toy.candidates(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        await toy.chains("a", candidates=["m1", bad])  # type: ignore[list-item]
    with pytest.raises(InvalidIdError):
        await toy.ingest([NewInteraction("a", "m1", 99), NewInteraction("a", bad, 1)])  # type: ignore[arg-type]
    assert (await toy.counts()).interactions == 9  # the valid first row was not written


async def test_bad_records_are_rejected_before_writing(toy: GraphStoreBase) -> None:
    with pytest.raises(InvalidRecordError, match="timestamp"):
        await toy.ingest([NewInteraction("a", "m1", "yesterday")])  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="reserved"):
        await toy.ingest([], [ItemRecord("m7", "X", {"title": "Y"})])
    assert await toy.counts() == GraphCounts(users=3, items=6, interactions=9)


async def test_failed_batch_leaves_nothing_written(
    toy: GraphStoreBase, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's users, placeholder items and edges are written first, then it fails."""
    if backend == "memory":

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(memory, "_build", broken)
        expected: type[Exception] = RuntimeError
    else:
        failing = cypher.EDGES.replace("RETURN sum(", "RETURN 1 / 0 + sum(")
        assert failing != cypher.EDGES
        monkeypatch.setattr(cypher, "EDGES", failing)
        expected = GraphStoreError
    batch = [NewInteraction("a", "m6", 80), NewInteraction("z", "m77", 81)]
    with pytest.raises(expected):
        await toy.ingest(batch, [ItemRecord("m78", "Nosferatu")])
    monkeypatch.undo()
    assert await toy.counts() == GraphCounts(users=3, items=6, interactions=9)
    assert await toy.item("m77") is None and await toy.item("m78") is None


async def test_rating_evidence_reads_ratings_without_the_pair_itself(toy: GraphStoreBase) -> None:
    # a: m3 5.0 @30, m2 4.0 @20, m1 unrated; m5's raters: b 1.0 @3, c 4.0 @2
    evidence = await toy.rating_evidence("a", "m5")
    assert evidence == RatingEvidence((5.0, 4.0), (("b", 1.0), ("c", 4.0)), ("b",))
    wide = await toy.rating_evidence("a", "m5", TasteParams(min_overlap=1))
    assert wide.neighbours == ("b", "c")  # c shares only m1
    assert await toy.rating_evidence("a", "m2") == RatingEvidence((5.0,), (("b", 3.0),), ("b",))
    assert await toy.rating_evidence("zz", "m5") == RatingEvidence((), (("b", 1.0), ("c", 4.0)), ())
    assert await toy.rating_evidence("a", "zz") == RatingEvidence((5.0, 4.0), (), ())
    await toy.ingest([NewInteraction("a", "m5", 50, 2.0)])
    after = await toy.rating_evidence("b", "m5")
    assert after == RatingEvidence((2.0, 3.0, 3.0), (("a", 2.0), ("c", 4.0)), ("a", "c"))
    with pytest.raises(InvalidIdError):
        await toy.rating_evidence("a", "")

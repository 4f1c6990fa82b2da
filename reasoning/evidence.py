"""What the model is shown of the graph, and the explanation written from it.

`item_info` and `chain_view` turn graph-store items and chains into the prompt's views;
`chains_explanation` writes a plain-language explanation from the evidence chains, and
`evidence_thoughts` the numbered thoughts of ``explain=true`` when the thoughts are
written from the evidence (``RecommenderConfig.thoughts = "evidence"``): a few short
steps about the ranking the model returned, each one chain or one fact the prompt showed,
so they quote only shown titles, never repeat and name the returned top item first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from graph_store.types import Chain, HistoryEntry, Item
from reasoning.prompt import ChainView, ItemInfo, clean_title
from reasoning.rating_template import genres_of


def item_info(item: Item) -> ItemInfo:
    attrs = item.attributes
    return ItemInfo(item.item_id, item.title, attrs.get("year", ""), attrs.get("genres", ""))


def chain_view(chain: Chain) -> ChainView:
    return ChainView(
        shared_titles=tuple(s.title for s in chain.shared),
        next_title=chain.next_title,
        next_item_id=chain.next_item_id,
        neighbour=chain.neighbour_id,
    )


def chains_explanation(chains: Sequence[Chain], ranking: Sequence[Item]) -> str:
    """A plain-language explanation from the evidence chains (used when no LLM reasoned):
    the chains that lead to the best-ranked items come first, each sentence once (two
    neighbours with the same shared items and next item read the same)."""
    if not ranking:
        return "No candidate items to rank."
    rank_of = {item.item_id: r for r, item in enumerate(ranking)}
    relevant = sorted(
        (c for c in chains if c.next_item_id in rank_of), key=lambda c: rank_of[c.next_item_id]
    )
    lead = f'"{clean_title(ranking[0].title)}" ranks first.'
    if not relevant:
        return lead + " Ranked by how often people with overlapping histories chose each item."
    sentences = list(dict.fromkeys(chain.sentence() for chain in relevant))  # no repeats
    evidence = " ".join(sentence + "." for sentence in sentences[:3])
    return f"{lead} Evidence from people with similar histories: {evidence}"


ThoughtSource = Literal["evidence", "model"]  # who writes explain=true's thoughts
THOUGHT_SOURCES: tuple[str, ...] = get_args(ThoughtSource)
MAX_THOUGHTS = 5
NO_EVIDENCE = "no chain or shared genre reaches it; this is the model's own call"


def _quoted(titles: Sequence[str]) -> str:
    """Titles in double quotes, cleaned as the prompt shows them (a title's own double
    quotes become single ones, so a quote always closes where the title ends)."""
    quoted = [f'"{clean_title(t)}"' for t in titles]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _genres(item: Item) -> list[str]:
    return genres_of(item_info(item))


def chain_thought(chain: Chain, next_item: str = "it") -> str:
    """What one chain says, ending with ``next_item`` (the item it reaches)."""
    w = chain.words
    verb = f"went on to {w.base}" if chain.went_on else f"also {w.past}"
    shared = _quoted([s.title for s in chain.shared])
    return f"you {w.past} {shared}; someone who also {w.past} them {verb} {next_item}"


def genre_thought(item: Item, history: Sequence[HistoryEntry]) -> str | None:
    """The genres ``item`` shares with its two most recent history items that share any."""
    genres = _genres(item)
    alike = [
        h.item
        for h in reversed(history)
        if h.item.item_id != item.item_id and set(genres) & set(_genres(h.item))
    ][:2]
    if not alike:
        return None
    common = [g for g in genres if any(g in _genres(h) for h in alike)]
    return f"it is {' and '.join(common)}, like {_quoted([h.title for h in alike])} in your history"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def thought_lead(item: Item, rank: int) -> str:
    """'"Title" ranks 2nd: ', how every thought about a ranked item starts."""
    return f"{_quoted([item.title])} ranks {ordinal(rank)}: "


def supported_steps(
    item: Item, rank: int, history: Sequence[HistoryEntry], chains: Sequence[Chain]
) -> set[str]:
    """Every step a thought about ``item`` at ``rank`` may rest on, given what was shown:
    any chain that reaches it, the count of those (top item), the genres it shares with
    the history, or (top item, nothing else) that no evidence reaches it."""
    reaching = [c for c in chains if c.next_item_id == item.item_id]
    steps = {chain_thought(c) for c in reaching}
    if rank == 1 and len(reaching) > 1:
        steps.add(f"{len(reaching)} of the {len(chains)} chains shown end at it")
    fact = genre_thought(item, history)
    if fact is not None:
        steps.add(fact)
    if rank == 1 and not steps:
        steps.add(NO_EVIDENCE)
    return steps


def evidence_thoughts(
    history: Sequence[HistoryEntry],
    chains: Sequence[Chain],
    ranking: Sequence[Item],
    limit: int = MAX_THOUGHTS,
) -> tuple[str, ...]:
    """At most ``limit`` thoughts about the ``limit`` best-ranked items, in rank order,
    each about one item (named first, with its rank) and resting on one chain or one fact:

    - the strongest chain that reaches the item (most shared items, "went on" first);
    - for the top item, how many of the shown chains reach it, when more than one does;
    - for an item no chain reaches, the genres it shares with the history;
    - for a top item with neither, that no evidence reaches it (the model's own call).

    >>> from graph_store.types import SharedItem
    >>> heat, fargo = Item("1", "Heat", {"genres": "Crime"}), Item("2", "Fargo")
    >>> alien = Item("3", "Alien", {"genres": "Sci-Fi"})
    >>> shared = (SharedItem("1", "Heat", 1, 1), SharedItem("4", "Casino", 2, 2))
    >>> chain = Chain("u", shared, "v", 2, "2", "Fargo", 3, True)
    >>> thoughts = evidence_thoughts([HistoryEntry(heat, 1, None)], [chain], [fargo, alien])
    >>> len(thoughts), thoughts[0].split(": ")[0]
    (1, '"Fargo" ranks 1st')
    >>> thoughts[0].split(": ")[1]
    'you watched "Heat" and "Casino"; someone who also watched them went on to watch it'
    """
    thoughts: list[str] = []
    for rank, item in enumerate(ranking[:limit], start=1):
        reaching = sorted(
            (c for c in chains if c.next_item_id == item.item_id),
            key=lambda c: (-len(c.shared), not c.went_on, c.neighbour_id),
        )
        lead = thought_lead(item, rank)
        steps = [chain_thought(reaching[0])] if reaching else []
        if rank == 1 and len(reaching) > 1:
            steps.append(f"{len(reaching)} of the {len(chains)} chains shown end at it")
        if not reaching:
            fact = genre_thought(item, history)
            if fact is not None:
                steps.append(fact)
            elif rank == 1:
                steps.append(NO_EVIDENCE)
        for step in steps:
            if len(thoughts) < limit:
                thoughts.append(lead + step)
    return tuple(thoughts)  # one per (item, step): never the same text twice

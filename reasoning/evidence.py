"""What the model is shown of the graph, and the explanation written without it.

`item_info` and `chain_view` turn graph-store items and chains into the prompt's views;
`chains_explanation` writes a plain-language explanation from the evidence chains when no
LLM reasoned (scoring mode, the graph scorer's fallback).
"""

from __future__ import annotations

from collections.abc import Sequence

from graph_store.types import Chain, Item
from reasoning.prompt import ChainView, ItemInfo


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
    lead = f'"{ranking[0].title}" ranks first.'
    if not relevant:
        return lead + " Ranked by how often people with overlapping histories chose each item."
    sentences = list(dict.fromkeys(chain.sentence() for chain in relevant))  # no repeats
    evidence = " ".join(sentence + "." for sentence in sentences[:3])
    return f"{lead} Evidence from people with similar histories: {evidence}"

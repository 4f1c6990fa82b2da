"""What one request's ranking reads from the graph store, gathered before the LLM is asked.

    context = await gather_context(graph, "42", None, ContextLimits(history_size=10))
    context.messages          # the chat prompt the LLM ranks from
    context.fused_request()   # what the fused ranker scores (`reasoning.fused`)

The user's newest items (``history_size`` shown in the prompt, ``reads`` read for the
collaborative scores), the candidates (retrieved by the graph scorer, or given: unknown
ids raise `UnknownItemsError`; more than 20 given keeps the graph scorer's first 20 and
ranks the rest after them in graph order), the chains that reach them, and the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from graph_store.base import GraphStore
from graph_store.types import Chain, ChainParams, HistoryEntry, Item
from reasoning.evidence import chain_view, item_info
from reasoning.fused import FusedRequest
from reasoning.outcomes import UnknownItemsError
from reasoning.prompt import MAX_CANDIDATES, render_messages
from recdata.vocabulary import FILMS, Vocabulary


@dataclass(frozen=True)
class ContextLimits:
    """How much of the graph one request reads."""

    history_size: int = 10  # history items shown in the prompt
    reads: int = 10  # newest items read (>= history_size; the fused ranker reads more)
    n_candidates: int = MAX_CANDIDATES  # retrieved when none are given
    chains: ChainParams = field(default_factory=lambda: ChainParams(max_chains=8))
    seed: int = 0  # chain sampling
    vocabulary: Vocabulary = FILMS  # the catalogue's words in the prompt and chains


@dataclass
class RequestContext:
    user_id: str
    history: list[HistoryEntry]  # shown in the prompt, oldest first
    candidates: list[Item]  # what the LLM ranks (<= 20)
    overflow: list[Item]  # given candidates beyond 20, in graph order
    graph_scores: dict[str, float]
    chains: list[Chain]
    messages: list[dict[str, str]]
    sequence: list[str]  # item ids oldest first, ``limits.reads`` of them at most

    def fused_request(self) -> FusedRequest:
        return FusedRequest(
            self.user_id,
            self.sequence,
            [item_info(h.item) for h in self.history],
            [item_info(i) for i in self.candidates],
            self.graph_scores,
        )


async def gather_context(
    graph: GraphStore, user_id: str, given: Sequence[str] | None, limits: ContextLimits
) -> RequestContext:
    """Read one request's history, candidates and chains, and render its prompt."""
    newest = await graph.history(user_id, max(limits.reads, limits.history_size))
    sequence = [h.item.item_id for h in reversed(newest)]
    history = newest[: limits.history_size][::-1]  # oldest first, as the prompt shows it
    if given is None:
        found = await graph.candidates(user_id, limits.n_candidates)
        ordered = [c.item for c in found]
        scores = {c.item.item_id: float(c.score) for c in found}
    else:
        unique = list(dict.fromkeys(given))
        known = await graph.items(unique)
        missing = [i for i in unique if i not in known]
        if missing:
            raise UnknownItemsError(missing)
        found = await graph.candidates(user_id, len(unique), among=unique)
        scores = {c.item.item_id: float(c.score) for c in found}
        in_graph_order = [c.item.item_id for c in found]
        rest = [i for i in unique if i not in scores]
        ordered_ids = in_graph_order + rest if len(unique) > MAX_CANDIDATES else unique
        ordered = [known[i] for i in ordered_ids]
    shown, overflow = ordered[:MAX_CANDIDATES], ordered[MAX_CANDIDATES:]
    found_chains = (
        await graph.chains(
            user_id, limits.chains, seed=limits.seed, candidates=[i.item_id for i in shown]
        )
        if history and shown
        else []
    )
    chains = [replace(c, words=limits.vocabulary) for c in found_chains]  # sentence() words
    messages = (
        render_messages(
            [item_info(h.item) for h in history],
            [chain_view(c) for c in chains],
            [item_info(i) for i in shown],
            limits.vocabulary,
        )
        if shown
        else []
    )
    return RequestContext(user_id, history, shown, overflow, scores, chains, messages, sequence)

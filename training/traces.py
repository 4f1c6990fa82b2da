"""Interaction-of-thought traces and their progressively masked variants (pure functions).

    trace = build_trace(target, history, chains, candidate_ids, graph_order, graph_score)
    variants = masked_variants(trace, candidate_ids)    # used by `training.data`

A trace is the target completion for one training example: numbered thoughts that walk
the evidence to the true item, then the answer line with the true item first. It is
rendered by `reasoning.prompt.render_completion`, the same code that defines what the
served model must write.

Thoughts (every title in double quotes, cleaned exactly as the prompt shows it, so the
grounding reward counts each as grounded):

- one thought per evidence chain that ends at the target (at most ``max_chain_thoughts``):
  'You watched "A" and "B"; user 7, who also watched them, went on to watch "T"
  (candidate C).';
- when no chain reaches the target, one thought from other evidence: the genres the
  target shares with the history, else its co-interaction votes, else the most recent
  history items;
- a closing thought naming the target as the best match and why.

Progressive masking (`masked_variants`): for a trace with n thoughts, variant k
(k = 0..n) puts thoughts 1..k into the assistant turn as given text and trains only on
the rest. Variant 0 is the full trace; variant n hides only the answer line. Each
variant is one training example; the loss covers only its hidden part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graph_store.types import Chain
from reasoning.prompt import LETTERS, ItemInfo, clean_title, render_completion

MAX_CHAIN_THOUGHTS = 3


@dataclass(frozen=True)
class Trace:
    """The thoughts and the full ranking (target first) of one training example."""

    thoughts: tuple[str, ...]
    ranked_ids: tuple[str, ...]
    target_reached: bool  # some evidence chain ends at the target


@dataclass(frozen=True)
class MaskedVariant:
    """One training example from a trace: ``prefix`` is given, ``completion`` is learnt."""

    k: int  # thoughts given in the assistant prefix
    prefix: str  # "" or "1. ...\n...k. ...\n"
    completion: str


def _q(title: str) -> str:
    return f'"{clean_title(title)}"'


def _pointer(item_id: str, candidate_ids: Sequence[str]) -> str:
    return f"(candidate {LETTERS[list(candidate_ids).index(item_id)]})"


def chain_thought(chain: Chain, candidate_ids: Sequence[str]) -> str:
    """One thought from one chain whose next item is a candidate, in the chain's words."""
    shared = [_q(s.title) for s in chain.shared]
    joined = ", ".join(shared[:-1]) + " and " + shared[-1]
    w = chain.words
    return (
        f"You {w.past} {joined}; user {chain.neighbour_id}, who also {w.past} them, went on to "
        f"{w.base} {_q(chain.next_title)} {_pointer(chain.next_item_id, candidate_ids)}."
    )


def _genre_set(item: ItemInfo) -> set[str]:
    return {g.strip() for g in item.genres.split("|") if g.strip()}


def evidence_thought(
    target: ItemInfo,
    history: Sequence[ItemInfo],
    graph_score: float,
    candidate_ids: Sequence[str],
) -> str:
    """A thought for a target that no chain reaches: shared genres, votes, or recency."""
    pointer = _pointer(target.item_id, candidate_ids)
    wanted = _genre_set(target)
    matching = [h for h in reversed(history) if _genre_set(h) & wanted][:2]
    if matching:
        genres = sorted(wanted & set().union(*(_genre_set(h) for h in matching)))
        titles = " and ".join(_q(h.title) for h in matching)
        return (
            f"{_q(target.title)} {pointer} shares the genre {', '.join(genres[:2])} with "
            f"{titles} from your history."
        )
    if graph_score > 0:
        return (
            f"People whose histories overlap with yours chose {_q(target.title)} {pointer} "
            f"{int(graph_score)} times."
        )
    recent = " and ".join(_q(h.title) for h in list(reversed(history))[:2])
    return f"Your most recent items are {recent}; {_q(target.title)} {pointer} fits them best."


def closing_thought(target: ItemInfo, n_chains: int, candidate_ids: Sequence[str]) -> str:
    pointer = _pointer(target.item_id, candidate_ids)
    if n_chains:
        count = "One evidence chain leads" if n_chains == 1 else f"{n_chains} evidence chains lead"
        return f"{count} to {_q(target.title)} {pointer}, so it ranks first."
    return f"So {_q(target.title)} {pointer} is the best match and ranks first."


def build_trace(
    target: ItemInfo,
    history: Sequence[ItemInfo],
    chains: Sequence[Chain],
    candidate_ids: Sequence[str],
    graph_order: Sequence[str],
    graph_score: float,
    max_chain_thoughts: int = MAX_CHAIN_THOUGHTS,
) -> Trace:
    """The trace of one example. ``graph_order``: candidates by graph co-interaction score
    (best first); the answer is the target, then the others in that order, then any
    candidate the graph did not score, in letter order."""
    if target.item_id not in candidate_ids:
        raise ValueError(f"target {target.item_id!r} is not among the candidates")
    to_target = [c for c in chains if c.next_item_id == target.item_id]
    thoughts = [chain_thought(c, candidate_ids) for c in to_target[:max_chain_thoughts]]
    if not thoughts:
        thoughts.append(evidence_thought(target, history, graph_score, candidate_ids))
    thoughts.append(closing_thought(target, len(to_target), candidate_ids))
    scored = [i for i in graph_order if i in candidate_ids and i != target.item_id]
    rest = [i for i in candidate_ids if i not in scored and i != target.item_id]
    ranked = (target.item_id, *dict.fromkeys(scored), *rest)
    return Trace(tuple(thoughts), ranked, bool(to_target))


def masked_variants(trace: Trace, candidate_ids: Sequence[str]) -> list[MaskedVariant]:
    """Variant k = 0..n of a trace with n thoughts (see the module docstring).

    Joining ``prefix + completion`` of any variant gives the full rendered trace.
    """
    full = render_completion(trace.thoughts, trace.ranked_ids, candidate_ids)
    lines = full.split("\n")
    n = len(trace.thoughts)
    variants = []
    for k in range(n + 1):
        prefix = "".join(line + "\n" for line in lines[:k])
        variants.append(MaskedVariant(k, prefix, full[len(prefix) :]))
    return variants

"""The explainer: a language model (a LoRA-tuned copy of the base) that writes explain=true's
thoughts about a ranking it is given, trained beside the fused ranker (`training.explainer`).

The fused ranker ranks in one pass without text; the explainer is then shown a short
prompt (`explainer_messages`: the newest history items, the evidence chains that end at the
ranking's best items, and those items in rank order) and writes at most `MAX_THOUGHTS`
numbered thoughts, best-ranked item first, each resting on one chain or one fact of the
prompt. It learnt to write them from `reasoning.evidence.evidence_thoughts` (its training
target, `explainer_target`), so the text is its own but the grammar is that one.

The service uses a generation only if it passes `check_thoughts`: every quoted title was
shown, no thought repeats another, the first thought leads with the returned top item,
1 to `MAX_THOUGHTS` thoughts, and each thought is *supported* (a ranked item, its rank,
and one chain or fact shown for it, as `reasoning.evidence.supported_steps` states it).
Otherwise the thoughts are written from the evidence and the rejection is counted.
`explainer_reward` turns the same checks into GRPO's reward.

    messages = explainer_messages(history, chains, ranking)
    checked = await explain_rankings(explainer_llm, [(history, chains, ranking)])
    thoughts, check = checked[0]                  # check.accepted: servable
    served = await served_thoughts(explainer_llm, evidence, counts)   # what the service does
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graph_store.types import Chain, HistoryEntry, Item, SharedItem
from reasoning.backends.base import GenerationParams, LLMBackend, LLMError
from reasoning.evidence import (
    MAX_THOUGHTS,
    chain_thought,
    evidence_thoughts,
    item_info,
    supported_steps,
    thought_lead,
)
from reasoning.parse import parse_thoughts
from reasoning.prompt import LETTERS, clean_title, describe_item
from reasoning.rewards import (
    Completion,
    completion_text,
    has_repeat,
    is_known_title,
    normalize_title,
    text_key,
    title_keys,
    title_mentions,
)
from recdata.vocabulary import FILMS, Vocabulary

HISTORY_SHOWN = 5  # newest history items in the explainer's prompt
MAX_CHAINS_SHOWN = 8
MAX_EXPLAINER_TOKENS = 320  # five thoughts: 200 tokens on average, 272 at most (ML-latest-small)

log = logging.getLogger("r2rec.reasoning")

Evidence = tuple[Sequence[HistoryEntry], Sequence[Chain], Sequence[Item]]


def explainer_system(vocab: Vocabulary = FILMS) -> str:
    return (
        f"Explain the ranked {vocab.noun}s: at most {MAX_THOUGHTS} numbered thoughts in rank "
        'order, each: "Title" ranks Nth: one chain or the genres it shares with the history.'
    )


def shown_history(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """The newest `HISTORY_SHOWN` history items, oldest first."""
    return list(history)[-HISTORY_SHOWN:]


def _q(title: str) -> str:
    return f'"{clean_title(title)}"'


def shown_chains(chains: Sequence[Chain], ranking: Sequence[Item]) -> list[Chain]:
    """The chains that end at one of the best-ranked items, best-ranked item first."""
    rank_of = {item.item_id: r for r, item in enumerate(ranking[:MAX_THOUGHTS])}
    reaching = [c for c in chains if c.next_item_id in rank_of]
    reaching.sort(key=lambda c: rank_of[c.next_item_id or ""])
    return reaching[:MAX_CHAINS_SHOWN]


def explainer_messages(
    history: Sequence[HistoryEntry],
    chains: Sequence[Chain],
    ranking: Sequence[Item],
    vocab: Vocabulary = FILMS,
) -> list[dict[str, str]]:
    """The explainer's prompt: system, then the history, the chains and the ranked items.

    >>> msgs = explainer_messages([], [], [Item("1", "Heat", {"genres": "Crime"})])
    >>> msgs[1]["content"].splitlines()[-1]
    '(A) "Heat" [Crime]'
    """
    top = list(ranking[:MAX_THOUGHTS])
    letter_of = {item.item_id: LETTERS[i] for i, item in enumerate(top)}
    recent = [describe_item(item_info(h.item)) for h in shown_history(history)]
    lines = ["History (oldest to newest):", *(f"- {d}" for d in recent or ["(none)"])]
    lines += ["", "Evidence chains:"]
    lines += [
        f"({letter_of[c.next_item_id or '']}) {chain_thought(c, _q(c.next_title))}."
        for c in shown_chains(chains, top)
    ] or ["(none)"]
    lines += ["", "Ranked, best first:"]
    lines += [f"({letter_of[item.item_id]}) {describe_item(item_info(item))}" for item in top]
    return [
        {"role": "system", "content": explainer_system(vocab)},
        {"role": "user", "content": "\n".join(lines)},
    ]


def explainer_target(
    history: Sequence[HistoryEntry], chains: Sequence[Chain], ranking: Sequence[Item]
) -> tuple[str, ...]:
    """The thoughts the explainer learns to write (from the chains it is shown)."""
    return evidence_thoughts(shown_history(history), shown_chains(chains, ranking), ranking)


def render_thoughts(thoughts: Sequence[str]) -> str:
    """'1. first\\n2. second' (the completion text the explainer writes)."""
    return "\n".join(f"{n}. {t}" for n, t in enumerate(thoughts, start=1))


def shown_titles(
    history: Sequence[HistoryEntry], chains: Sequence[Chain], ranking: Sequence[Item]
) -> list[str]:
    """Every title the explainer's prompt shows (what its thoughts may quote)."""
    titles = [h.item.title for h in shown_history(history)]
    for chain in shown_chains(chains, ranking):
        titles += [s.title for s in chain.shared] + [chain.next_title]
    return titles + [item.title for item in ranking[:MAX_THOUGHTS]]


_LEAD = re.compile(r'^\s*"([^"]{1,300})"')


@dataclass(frozen=True)
class ThoughtCheck:
    """Why a generation is served or not (all five must hold to be served)."""

    grounded: bool  # every quoted title was shown
    repeated: bool  # two thoughts with the same text
    agrees: bool  # the first thought leads with the returned top item
    bounded: bool  # 1..MAX_THOUGHTS thoughts
    supported: bool = True  # each thought: a ranked item, its rank, one step shown for it

    @property
    def accepted(self) -> bool:
        return (
            self.grounded and not self.repeated and self.agrees and self.bounded and self.supported
        )

    @property
    def passed(self) -> int:
        """How many of the five checks hold (GRPO's reward counts them)."""
        return self.grounded + (not self.repeated) + self.agrees + self.bounded + self.supported


def supported(thought: str, evidence: Evidence) -> bool:
    """Whether ``thought`` is 'lead + step' for one of the ranking's best items: its
    title and rank as `thought_lead` writes them, and a step `supported_steps` allows
    for it over what the explainer's prompt showed (case, spaces, final period ignored)."""
    history, chains, ranking = evidence
    shown = shown_history(history)
    reaching = shown_chains(chains, ranking)
    text = text_key(thought)
    for rank, item in enumerate(ranking[:MAX_THOUGHTS], start=1):
        lead = text_key(thought_lead(item, rank))
        if text.startswith(lead + " ") or text == lead:
            steps = supported_steps(item, rank, shown, reaching)
            if text[len(lead) :].strip() in {text_key(step) for step in steps}:
                return True
    return False


def check_thoughts(
    thoughts: Sequence[str], shown: Sequence[str], top: Item, evidence: Evidence | None = None
) -> ThoughtCheck:
    """Check a generation against what its prompt showed and the ranking it explains
    (``evidence``: the history, chains and ranking it was shown, for `supported`).

    >>> heat = Item("1", "Heat")
    >>> check_thoughts(['"Heat" ranks 1st: it is Crime, like "Fargo"'], ["Heat", "Fargo"], heat)
    ThoughtCheck(grounded=True, repeated=False, agrees=True, bounded=True, supported=True)
    >>> check_thoughts(['"Alien" ranks 1st', '"Heat" ranks 2nd'], ["Heat"], heat).accepted
    False
    """
    known = title_keys(shown)
    mentions = [m for t in thoughts for m in title_mentions(t)]
    lead = _LEAD.match(thoughts[0]) if thoughts else None
    return ThoughtCheck(
        grounded=all(is_known_title(m, known) for m in mentions),
        repeated=has_repeat(thoughts),
        agrees=lead is not None and is_known_title(lead.group(1), [normalize_title(top.title)]),
        bounded=0 < len(thoughts) <= MAX_THOUGHTS,
        supported=evidence is None or all(supported(t, evidence) for t in thoughts),
    )


def reward_column(
    history: Sequence[HistoryEntry], chains: Sequence[Chain], ranking: Sequence[Item]
) -> str:
    """What `explainer_reward` needs of one case, as a JSON string (a dataset column):
    the history, chains and ranked items the explainer's prompt shows."""
    top = list(ranking[:MAX_THOUGHTS])

    def item(i: Item) -> list[Any]:
        return [i.item_id, i.title, dict(i.attributes)]

    return json.dumps(
        {
            "history": [item(h.item) for h in shown_history(history)],
            "chains": [
                [
                    [s.title for s in c.shared],
                    c.next_item_id,
                    c.next_title,
                    c.went_on,
                    c.words.past,
                    c.words.base,
                ]
                for c in shown_chains(chains, top)
            ],
            "ranking": [item(i) for i in top],
        }
    )


def evidence_from_column(column: str) -> Evidence:
    """`reward_column`'s case back as (history, chains, ranking)."""
    data = json.loads(column)
    history = [HistoryEntry(Item(i, t, a), 0, None) for i, t, a in data["history"]]
    chains = [
        Chain(
            "",
            tuple(SharedItem("", title, 0, 0) for title in shared),
            "",
            len(shared),
            next_id,
            next_title,
            0,
            went_on,
            Vocabulary(past=past, base=base),
        )
        for shared, next_id, next_title, went_on, past, base in data["chains"]
    ]
    return history, chains, [Item(i, t, a) for i, t, a in data["ranking"]]


def explainer_reward(
    completions: Sequence[Completion], *, evidence: Sequence[str], **_: Any
) -> list[float]:
    """GRPO reward (TRL signature): the share of the five served checks a completion
    passes (1.0: the service would serve it). ``evidence``: each case's `reward_column`.

    >>> heat, fargo = Item("1", "Heat", {"genres": "Crime"}), Item("2", "Fargo")
    >>> history = [HistoryEntry(Item("3", "Casino", {"genres": "Crime"}), 1, None)]
    >>> column = reward_column(history, [], [heat, fargo])
    >>> good = '1. "Heat" ranks 1st: it is Crime, like "Casino" in your history'
    >>> explainer_reward([good, '1. "Fargo" ranks 1st: trust me'], evidence=[column] * 2)
    [1.0, 0.6]
    """
    out = []
    for completion, column in zip(completions, evidence, strict=True):
        case = evidence_from_column(column)
        thoughts = parse_thoughts(completion_text(completion))
        out.append(check_thoughts(thoughts, shown_titles(*case), case[2][0], case).passed / 5)
    return out


def explainer_params(max_tokens: int = MAX_EXPLAINER_TOKENS) -> GenerationParams:
    """Greedy, bounded: the explainer's thoughts are read, not sampled."""
    return GenerationParams(max_tokens=max_tokens, temperature=0.0)


async def explain_rankings(
    llm: LLMBackend,
    evidence: Sequence[Evidence],
    vocab: Vocabulary = FILMS,
    params: GenerationParams | None = None,
) -> list[tuple[tuple[str, ...], ThoughtCheck]]:
    """One generation per (history, chains, ranking), parsed and checked. Raises the
    backend's `LLMError` when it cannot answer (the caller writes from the evidence)."""
    batch = [explainer_messages(h, c, r, vocab) for h, c, r in evidence]
    generations = await llm.generate(batch, params or explainer_params())
    out = []
    for (history, chains, ranking), gen in zip(evidence, generations, strict=True):
        thoughts = parse_thoughts(gen.text)
        shown = shown_titles(history, chains, ranking)
        check = check_thoughts(thoughts, shown, ranking[0], (history, chains, ranking))
        out.append((thoughts, check))
    return out


async def served_thoughts(
    llm: LLMBackend,
    evidence: Sequence[Evidence],
    counts: dict[str, int],
    vocab: Vocabulary = FILMS,
) -> list[tuple[str, ...]]:
    """The thoughts served for each (history, chains, ranking): the explainer's when they
    pass `check_thoughts`, else those written from the evidence. ``counts`` gains one
    "served", "rejected" or "failed" (explainer error) per ranking it was asked about."""
    written = [evidence_thoughts(*e) for e in evidence]
    asked = [i for i, e in enumerate(evidence) if e[2]]
    try:
        checked = await explain_rankings(llm, [evidence[i] for i in asked], vocab)
    except LLMError as err:
        log.warning("explainer failed, thoughts from the evidence: %s", err)
        counts["failed"] += len(asked)
        return written
    for index, (thoughts, check) in zip(asked, checked, strict=True):
        if check.accepted:
            written[index] = thoughts
        counts["served" if check.accepted else "rejected"] += 1
    return written

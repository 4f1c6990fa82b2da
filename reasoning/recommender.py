"""The `Recommender` pipeline that the service and the evaluator share.

graph store -> candidates (retrieved, or given) -> chains -> prompt -> LLM -> parsed ranking

    rec = Recommender(graph, llm, RecommenderConfig())
    result = await rec.recommend("42", explain=True)           # one user
    results = await rec.recommend_many(requests, explain=False)  # a batch (evaluation)

Modes:
- ``explain=False``: no reasoning. One prefill scores every candidate letter as the next
  token after the assistant text ``"Answer:"``: a full ranking from one forward pass.
- ``explain=True`` with ``thoughts="evidence"`` (the default): the same one-pass ranking,
  plus numbered thoughts written from the evidence about the ranking it returned
  (`reasoning.evidence.evidence_thoughts`: at most 5, each one chain or one fact).
- ``explain=True`` with ``thoughts="model"``: the model writes numbered thoughts (stopping
  at ``"Answer:"``), then the answer is generated under a regex constraint that admits
  only candidate letters. Candidates the answer leaves out are ranked after it by
  next-token log-probability. For a model trained to reason; an untuned small model
  writes thoughts that repeat themselves. With a fused ranker, ``thoughts="model"``
  means its explainer (`reasoning.explainer`) writes them about the fused ranking; a
  generation that fails its checks is replaced by the evidence thoughts (counted in
  `Recommender.explainer_counts`).

Degradation: a user with no history gets popular items (``cold_start``) without asking
the LLM. When the LLM fails in any way (`LLMError`: down, slow, rejecting the request,
answering something malformed) and ``fallback_on_llm_error`` is set, the graph
co-interaction scorer ranks instead (``fallback``, ``reason`` says why in a few fixed
words) and the explanation is written from the evidence chains. `Recommender.last_llm`
keeps the outcome of the most recent LLM call, for readiness checks.

Deadlines: ``recommend_many(..., deadline=t)`` gives the LLM until ``t`` (``time.monotonic()``
seconds), or ``llm_timeout_s`` if that ends sooner; the service passes each request's own
deadline, which started when the request arrived, so time spent queued counts. A batch
whose deadline has already passed when it is prepared gets the fallback without asking
the LLM. `Recommender.fallback` serves the graph scorer's ranking outright (a queue that
cannot reach the model in time).
More than 20 given candidates: the graph scorer picks the 20 the LLM sees; the rest
follow in graph order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from graph_store.base import GraphStore
from graph_store.types import ChainParams, Item
from reasoning.backends import LLMBackend, LLMError, LLMTimeout, LLMUnavailable
from reasoning.context import ContextLimits, RequestContext, gather_context
from reasoning.evidence import (
    THOUGHT_SOURCES,
    ThoughtSource,
    chains_explanation,
    evidence_thoughts,
)
from reasoning.explain import RecommendationListener, think_and_answer
from reasoning.explainer import served_thoughts
from reasoning.fused import FusedRanker, StateReader, log_softmax
from reasoning.outcomes import (
    LLMOutcome,
    RankedItem,
    Recommendation,
    fallback_reason,
)
from reasoning.parse import parse_ranking
from reasoning.prompt import (
    ANSWER_PREFIX,
    MAX_CANDIDATES,
    answer_letter_tokens,
)
from recdata.vocabulary import FILMS, Vocabulary


@dataclass(frozen=True)
class RecommenderConfig:
    """Knobs of the pipeline; the defaults are what the service runs."""

    history_size: int = field(default=10, metadata={"help": "History items shown to the model."})
    n_candidates: int = field(
        default=MAX_CANDIDATES, metadata={"help": "Candidates retrieved when none are given."}
    )
    chains: ChainParams = field(
        default_factory=lambda: ChainParams(max_chains=8),
        metadata={"help": "Chain sampling bounds (max_chains = chains shown)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for chain sampling and generation."})
    thoughts: ThoughtSource = field(
        default="evidence",
        metadata={
            "help": "explain=True: evidence (thoughts written from the chains about the "
            "one-pass ranking) or model (the model writes them, then answers)."
        },
    )
    max_reasoning_tokens: int = field(default=256, metadata={"help": "Token budget, thoughts."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy reasoning."})
    constrain_answer: bool = field(
        default=True, metadata={"help": "Constrain the explain-mode answer to candidate letters."}
    )
    llm_timeout_s: float | None = field(
        default=None, metadata={"help": "Time limit for the LLM part of one batch; None = none."}
    )
    fallback_on_llm_error: bool = field(
        default=True, metadata={"help": "Rank with the graph scorer when the LLM fails."}
    )
    vocabulary: Vocabulary = field(
        default=FILMS, metadata={"help": "The catalogue's words in prompts and explanations."}
    )

    def __post_init__(self) -> None:
        if self.thoughts not in THOUGHT_SOURCES:
            raise ValueError(f"thoughts must be one of {THOUGHT_SOURCES}, got {self.thoughts!r}")


NO_MODEL = "no trained model is published yet: the graph scorer ranked"


class Recommender:
    def __init__(
        self,
        graph: GraphStore,
        llm: LLMBackend | None,
        config: RecommenderConfig,
        fused: FusedRanker | None = None,
        explainer: LLMBackend | None = None,
        states: StateReader | None = None,
    ) -> None:
        """``llm`` None: no model to ask (nothing trained yet); every ranking is the graph
        scorer's, flagged ``fallback`` with reason `NO_MODEL`. ``fused``: rank with the
        collaborative base + the LLM's hidden-state head (`reasoning.fused`) instead of
        the letters' log-probabilities; its base alone is then the fallback. ``explainer``
        (with ``fused`` and ``thoughts="model"``): writes explain=true's thoughts about
        the fused ranking (`reasoning.explainer`); a generation that fails its checks,
        or an explainer error, gives the thoughts written from the evidence instead.
        ``states``: what reads the hidden states ``fused``'s head scores (default ``llm``;
        with vLLM, `reasoning.backends.vllm_states.VLLMStates`)."""
        self.graph = graph
        self.llm = llm
        self.config = config
        self.fused = fused
        self.explainer = explainer
        self.states = states
        self.explainer_counts = {"served": 0, "rejected": 0, "failed": 0}
        self.last_llm: LLMOutcome | None = None  # None until the LLM is first asked

    def _model(self) -> LLMBackend:
        if self.llm is None:
            raise LLMUnavailable(NO_MODEL)
        return self.llm

    async def recommend(
        self, user_id: str, candidates: Sequence[str] | None = None, explain: bool = True
    ) -> Recommendation:
        return (await self.recommend_many([(user_id, candidates)], explain))[0]

    async def fallback(
        self,
        user_id: str,
        candidates: Sequence[str] | None,
        reason: str,
        listener: RecommendationListener | None = None,
    ) -> Recommendation:
        """The graph scorer's ranking without asking the LLM, flagged ``fallback`` with
        ``reason`` (popular items for a cold user, as ever)."""
        prep = await self.prepare(user_id, candidates)
        if listener is not None:
            listener.evidence(prep.history, prep.candidates, prep.chains)
        if not prep.history:
            return self._graph_ranking(prep, reason="cold start", cold_start=True)
        return self._graph_ranking(prep, reason=reason, fallback=True)

    async def recommend_many(
        self,
        requests: Sequence[tuple[str, Sequence[str] | None]],
        explain: bool,
        deadline: float | None = None,
        listeners: Sequence[RecommendationListener | None] | None = None,
    ) -> list[Recommendation]:
        """Rank for several users at once; the LLM sees them as one batch and must answer
        by ``deadline`` (``time.monotonic()``; None = ``llm_timeout_s`` alone). A request's
        listener (`reasoning.explain`) hears its evidence, then its thoughts."""
        prepared = await asyncio.gather(*(self.prepare(u, c) for u, c in requests))
        for prep, listener in zip(prepared, listeners or [None] * len(prepared), strict=True):
            if listener is not None:
                listener.evidence(prep.history, prep.candidates, prep.chains)
        results: list[Recommendation | None] = [None] * len(prepared)
        asks = []
        for index, prep in enumerate(prepared):
            if not prep.history:
                results[index] = self._graph_ranking(prep, reason="cold start", cold_start=True)
            else:
                asks.append(index)
        timeout = self.config.llm_timeout_s
        if deadline is not None:
            left = deadline - time.monotonic()
            timeout = left if timeout is None else min(timeout, left)
        if asks and self.llm is None:
            for index in asks:
                results[index] = self._graph_ranking(
                    prepared[index], reason=NO_MODEL, fallback=True
                )
        elif asks and timeout is not None and timeout <= 0:  # no time left to ask the LLM
            for index in asks:
                results[index] = self._graph_ranking(
                    prepared[index], reason=fallback_reason(LLMTimeout()), fallback=True
                )
        elif asks:
            batch = [prepared[i] for i in asks]
            started = time.perf_counter()
            try:
                heard = [listeners[i] for i in asks] if listeners else None
                if explain and self.config.thoughts == "model" and self.fused is None:
                    work = self._explain(batch, heard)
                else:
                    work = self._score(batch, explain, heard)
                ranked = await asyncio.wait_for(work, timeout)
                seconds = time.perf_counter() - started  # what each request waited on the LLM
                self.last_llm = LLMOutcome(ok=True, at=time.time())
            except (LLMError, TimeoutError) as err:
                why = fallback_reason(err)
                detail = f"{type(err).__name__}: {err}"[:300]
                self.last_llm = LLMOutcome(ok=False, at=time.time(), reason=why, detail=detail)
                if not self.config.fallback_on_llm_error:
                    raise
                seconds = time.perf_counter() - started  # spent on the LLM before giving up
                ranked = [self._graph_ranking(p, reason=why, fallback=True) for p in batch]
            for index, rec in zip(asks, ranked, strict=True):
                results[index] = replace(rec, llm_seconds=seconds)
        return [r for r in results if r is not None]

    async def prepare(self, user_id: str, given: Sequence[str] | None) -> RequestContext:
        """What ranking for ``user_id`` reads from the graph store (`reasoning.context`)."""
        cfg = self.config
        limits = ContextLimits(
            history_size=cfg.history_size,
            reads=max(cfg.history_size, self.fused.history_needed if self.fused else 0),
            n_candidates=cfg.n_candidates,
            chains=cfg.chains,
            seed=cfg.seed,
            vocabulary=cfg.vocabulary,
        )
        return await gather_context(self.graph, user_id, given, limits)

    async def _letter_logprobs(
        self, batch: Sequence[RequestContext], prefixes: Sequence[str]
    ) -> list[list[float]]:
        """Per request, the log-probability of each candidate's letter as the next token
        after its assistant ``prefix`` (one prefill each; requests grouped by size)."""
        groups: dict[int, list[int]] = {}
        for index, prep in enumerate(batch):
            groups.setdefault(len(prep.candidates), []).append(index)
        out: list[list[float]] = [[] for _ in batch]
        for size, indices in groups.items():
            tokens = answer_letter_tokens(size)
            for prefix in {prefixes[i] for i in indices}:
                same = [i for i in indices if prefixes[i] == prefix]
                scored = await self._model().score_choices(
                    [batch[i].messages for i in same], prefix, tokens
                )
                for i, logprobs in zip(same, scored, strict=True):
                    out[i] = [logprobs[t] for t in tokens]
        return out

    async def _score(
        self,
        batch: list[RequestContext],
        explain: bool,
        listeners: Sequence[RecommendationListener | None] | None,
    ) -> list[Recommendation]:
        """The next-token log-probabilities of the letters after "Answer:" rank; with
        ``explain``, thoughts are written from the evidence about that ranking and told to
        each request's listener as numbered lines, as a model would write them."""
        if self.fused is None:
            letter_logprobs = await self._letter_logprobs(batch, [ANSWER_PREFIX] * len(batch))
        else:
            reader = self.states or self.llm
            fused = await self.fused.scores(reader, [p.fused_request() for p in batch])
            letter_logprobs = [log_softmax(s) for s in fused]
        orders = [sorted(range(len(v)), key=lambda j: (-v[j], j)) for v in letter_logprobs]
        rankings = [[p.candidates[j] for j in o] for p, o in zip(batch, orders, strict=True)]
        written = await self._thoughts(batch, rankings) if explain else [()] * len(batch)
        out = []
        heard = listeners or [None] * len(batch)
        for prep, values, order, ordered, thoughts, listener in zip(
            batch, letter_logprobs, orders, rankings, written, heard, strict=True
        ):
            if listener is not None and listener.wanted:
                for number, thought in enumerate(thoughts, start=1):
                    listener.thought_text(f"{number}. {thought}\n")
            out.append(
                self._ranking(
                    prep,
                    ordered,
                    [math.exp(values[j]) for j in order],
                    thoughts=thoughts,
                    explanation=chains_explanation(prep.chains, ordered),
                    valid=True,
                    reason="ok",
                    raw=ANSWER_PREFIX + answer_letter_tokens(len(values))[order[0]],
                )
            )
        return out

    async def _thoughts(
        self, batch: Sequence[RequestContext], rankings: Sequence[Sequence[Item]]
    ) -> list[tuple[str, ...]]:
        """explain=true's thoughts about each ranking: the explainer's where there is one
        (fused ranker, ``thoughts="model"``) and they pass its checks, else the evidence's."""
        evidence = [(p.history, p.chains, r) for p, r in zip(batch, rankings, strict=True)]
        if self.explainer is None or self.fused is None or self.config.thoughts != "model":
            return [evidence_thoughts(*e) for e in evidence]
        return await served_thoughts(
            self.explainer, evidence, self.explainer_counts, self.config.vocabulary
        )

    async def _explain(
        self,
        batch: list[RequestContext],
        listeners: Sequence[RecommendationListener | None] | None = None,
    ) -> list[Recommendation]:
        """explain=True (`reasoning.explain`): thoughts, then a constrained answer, parsed;
        letters the answer leaves out follow by their log-probability as its first token."""
        reasoned = await think_and_answer(
            self._model(),
            [p.messages for p in batch],
            [len(p.candidates) for p in batch],
            self.config,
            listeners,
        )
        out = []
        for prep, result in zip(batch, reasoned, strict=True):
            text = result.prefix + result.answer
            ids = [i.item_id for i in prep.candidates]
            parsed = parse_ranking(text, ids)
            tokens = answer_letter_tokens(len(ids))
            score_of = {i: result.choice_logprobs[t] for i, t in zip(ids, tokens, strict=True)}
            stated = list(parsed.stated_ids)
            rest = sorted((i for i in ids if i not in stated), key=lambda i: -score_of[i])
            by_id = {i.item_id: i for i in prep.candidates}
            ordered = [by_id[i] for i in stated + rest]
            n = len(ordered)
            out.append(
                self._ranking(
                    prep,
                    ordered,
                    [(n - r) / n for r in range(n)],
                    thoughts=parsed.thoughts,
                    explanation=parsed.explanation or chains_explanation(prep.chains, ordered),
                    valid=parsed.valid,
                    reason=parsed.reason,
                    raw=text,
                )
            )
        return out

    def _graph_ranking(
        self, prep: RequestContext, reason: str, cold_start: bool = False, fallback: bool = False
    ) -> Recommendation:
        """Rank by the graph's co-interaction scores (popularity for a cold user); with a
        fused ranker, a fallback ranks by its collaborative base instead."""
        if fallback and self.fused is not None and prep.candidates:
            base = self.fused.base(prep.fused_request())
            scores = {i.item_id: float(v) for i, v in zip(prep.candidates, base, strict=True)}
            top = 1.0
        else:
            scores = {i.item_id: prep.graph_scores.get(i.item_id, 0.0) for i in prep.candidates}
            top = max(prep.graph_scores.values(), default=0.0) or 1.0
        order = sorted(prep.candidates, key=lambda i: -scores[i.item_id])
        rec = self._ranking(
            prep,
            order,
            [scores[i.item_id] / top for i in order],
            thoughts=(),
            explanation=(
                "New user: these are the most popular items."
                if cold_start
                else chains_explanation(prep.chains, order)
            ),
            valid=False,
            reason=reason,
            raw="",
        )
        return replace(rec, cold_start=cold_start, fallback=fallback)

    def _ranking(
        self,
        prep: RequestContext,
        ordered: Sequence[Item],
        scores: Sequence[float],
        *,
        thoughts: Sequence[str],
        explanation: str,
        valid: bool,
        reason: str,
        raw: str,
    ) -> Recommendation:
        items = [*ordered, *prep.overflow]
        low = min(scores, default=0.0)
        all_scores = [*scores, *(low - 1.0 - k for k in range(len(prep.overflow)))]
        ranked = tuple(
            RankedItem(i.item_id, i.title, float(s), r)
            for r, (i, s) in enumerate(zip(items, all_scores, strict=True), start=1)
        )
        return Recommendation(
            user_id=prep.user_id,
            items=ranked,
            explanation=explanation,
            thoughts=tuple(thoughts),
            chains=tuple(prep.chains),
            valid=valid,
            reason=reason,
            raw_text=raw,
            history=tuple(prep.history),
        )


__all__ = ["Recommender", "RecommenderConfig"]

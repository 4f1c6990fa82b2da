"""An LLM ranker for the evaluator: the same `Recommender` pipeline the service runs.

``fit`` loads an embedded graph store with the training log (so the graph holds exactly
what precedes each target, and a user's most recent 10 items are the case's history);
``rank`` asks the pipeline to rank each case's 20 given candidates, in batches, and turns
the ranking into scores. ``valid`` is the model's own output validity (explain mode: the
parsed text; scoring mode: always valid, every letter gets a log-probability). In explain
mode each case's thoughts are also checked (`evaluation.explanations`: grounded titles,
repeated thoughts, agreement of the explanation's pick with the top item). An LLM error
is not hidden behind the graph fallback here: evaluation fails loudly instead.

    ranker = LLMRanker(lambda: make_backend("local", model_path=path), explain=False)
    evaluate(ranker, load_dataset("ml-100k"), "test", limit=200)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
from rich.progress import Progress

from evaluation.explanations import ExplanationCheck, check_explanation
from evaluation.ranker import Case, RankResult
from graph_store.memory import MemoryGraphStore
from reasoning.backends import LLMBackend, make_backend
from reasoning.fused import FusedRanker, StateReader
from reasoning.outcomes import Recommendation
from reasoning.prompt import clean_title
from reasoning.recommender import Recommender, RecommenderConfig


class LLMRanker:
    generative = True

    def __init__(
        self,
        make_llm: Callable[[], LLMBackend],
        explain: bool,
        config: RecommenderConfig | None = None,
        batch_size: int = 8,
        name: str = "llm",
        show_progress: bool = True,
        fused: FusedRanker | None = None,
        make_states: Callable[[], StateReader] | None = None,
    ) -> None:
        """``fused``: rank with it (`reasoning.fused`) instead of the answer letters;
        ``make_states``: what reads its head's states (default: the LLM backend)."""
        self.make_llm = make_llm
        self.explain = explain
        self.config = replace(config or RecommenderConfig(), fallback_on_llm_error=False)
        self.batch_size = batch_size
        self.name = f"{name} ({'explain' if explain else 'score'})"
        self.show_progress = show_progress
        self.fused = fused
        self.make_states = make_states
        self._graph: MemoryGraphStore | None = None
        self._titles: dict[str, str] = {}

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        self._graph = MemoryGraphStore.from_frames(train, items)
        self._titles = dict(
            zip(items["item_id"].astype(str), items["title"].astype(str), strict=True)
        )

    def rank(self, cases: list[Case]) -> RankResult:
        return asyncio.run(self._rank(cases))

    async def _rank(self, cases: list[Case]) -> RankResult:
        if self._graph is None:
            raise RuntimeError("LLMRanker.rank called before fit")
        llm = self.make_llm()
        explainer = None
        if self.fused is not None and self.fused.explainer and self.config.thoughts == "model":
            explainer = make_backend("local", model_path=str(self.fused.explainer))
        states = self.make_states() if self.make_states is not None else None
        recommender = Recommender(self._graph, llm, self.config, self.fused, explainer, states)
        scores = np.zeros((len(cases), len(cases[0].candidates) if cases else 0))
        valid = np.zeros(len(cases), dtype=bool)
        extras: list[dict[str, object]] = []
        try:
            with Progress(disable=not self.show_progress, transient=True) as progress:
                task = progress.add_task(f"{self.name}: ranking", total=len(cases))
                for start in range(0, len(cases), self.batch_size):
                    chunk = cases[start : start + self.batch_size]
                    recs = await recommender.recommend_many(
                        [(c.user_id, list(c.candidates)) for c in chunk], self.explain
                    )
                    for offset, (case, rec) in enumerate(zip(chunk, recs, strict=True)):
                        position = {item.item_id: item.rank for item in rec.items}
                        row = start + offset
                        scores[row] = [-position[c] for c in case.candidates]
                        valid[row] = rec.valid
                        extra: dict[str, object] = {
                            "user_id": case.user_id,
                            "text": rec.raw_text,
                            "reason": rec.reason,
                        }
                        if self.explain:
                            extra["explanation"] = asdict(self._check(case, rec))
                        extras.append(extra)
                    progress.advance(task, len(chunk))
        finally:
            await llm.aclose()
            if explainer is not None:
                await explainer.aclose()
            if states is not None and hasattr(states, "aclose"):
                await states.aclose()
        shares = {}
        if explainer is not None:
            counts = recommender.explainer_counts
            shares["explainer served"] = counts["served"] / max(sum(counts.values()), 1)
        return RankResult(scores=scores, valid=valid, extras=extras, shares=shares)

    def _check(self, case: Case, rec: Recommendation) -> ExplanationCheck:
        """The explanation checks of one case: titles shown are the history's, the
        chains' and the candidates', as the prompt shows them (`clean_title`: an empty
        title reads "untitled"; the prompt's letter order is the case's order)."""
        shown = [self._titles.get(i, "") for i in case.history]
        for chain in rec.chains:
            shown += [s.title for s in chain.shared] + [chain.next_title]
        candidates = [(c, clean_title(self._titles.get(c, ""))) for c in case.candidates]
        shown = [clean_title(t) for t in shown] + [title for _, title in candidates]
        top = rec.items[0].item_id if rec.items else ""
        return check_explanation(rec.thoughts, shown, candidates, top)

"""Optional teacher: an OpenAI-compatible model rewrites a trace's thoughts into prose.

Off by default. With ``r2rec train data --teacher-url URL`` every base example's trace is
sent to the teacher (any OpenAI-compatible endpoint, through `reasoning.backends`) with
the example's own prompt and the template trace; the reply is parsed by
`reasoning.parse.parse_ranking`. The rewrite replaces the template trace only when

- its answer is valid and states the target first, and
- it has at least one numbered thought;

otherwise the template trace is kept (and counted as rejected). A kept rewrite is
re-rendered by `reasoning.prompt.render_completion` (its thoughts, then the target and
the template's order of the rest), so its bytes follow the one format.

    rewrite = make_teacher_rewriter(TeacherConfig(base_url="http://127.0.0.1:8001/v1"))
    build_dataset(DataConfig(...), dataset, rewrite=rewrite)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from reasoning.backends import GenerationParams, LLMBackend, make_backend
from reasoning.parse import parse_ranking
from reasoning.prompt import render_completion
from training.rows import RankBase

TEACHER_INSTRUCTION = (
    "Below is a recommendation task and a correct worked solution. Rewrite the numbered "
    "thoughts as fluent, natural prose, keeping each as one numbered line, keeping every "
    "title exactly as written in double quotes, and adding no facts. Keep the final "
    "Answer line unchanged."
)


@dataclass(frozen=True)
class TeacherConfig:
    """Where the teacher is and how it is asked."""

    base_url: str = field(metadata={"help": "OpenAI-compatible base URL including /v1."})
    model: str | None = field(default=None, metadata={"help": "Served model; None = first."})
    api_key: str = field(default="EMPTY", metadata={"help": "Bearer token of the endpoint."})
    max_tokens: int = field(default=384, metadata={"help": "Most tokens per rewrite."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy."})
    seed: int = field(default=0, metadata={"help": "Sampling seed sent to the server."})
    batch_size: int = field(default=16, metadata={"help": "Rewrites sent concurrently."})
    timeout_s: float = field(default=120.0, metadata={"help": "Per-request time limit."})


@dataclass(frozen=True)
class Verdict:
    kept: bool
    reason: str
    thoughts: tuple[str, ...] = ()


def teacher_messages(example: RankBase) -> list[dict[str, str]]:
    """The teacher's conversation: the task (the example's own prompt) and the trace."""
    trace = render_completion(example["thoughts"], example["ranked_ids"], example["candidates"])
    task = example["prompt"][1]["content"]
    return [
        {"role": "system", "content": TEACHER_INSTRUCTION},
        {"role": "user", "content": f"Task:\n{task}\n\nWorked solution:\n{trace}"},
    ]


def judge_rewrite(text: str, example: RankBase) -> Verdict:
    """Keep a rewrite only if its parsed answer still puts the target first."""
    parsed = parse_ranking(text, example["candidates"])
    if not parsed.valid or not parsed.stated_ids:
        return Verdict(False, f"invalid answer: {parsed.reason}")
    if parsed.stated_ids[0] != example["target"]:
        return Verdict(False, "the target is not ranked first")
    thoughts = tuple(t for t in parsed.thoughts if t.strip())
    if not thoughts:
        return Verdict(False, "no numbered thoughts")
    return Verdict(True, "ok", thoughts)


def apply_verdict(example: RankBase, verdict: Verdict) -> RankBase:
    """The example with the teacher's thoughts when kept, else unchanged."""
    if not verdict.kept:
        return example
    kept: RankBase = {**example, "thoughts": list(verdict.thoughts), "source": "teacher"}
    return kept


async def rewrite_all(
    backend: LLMBackend, examples: list[RankBase], config: TeacherConfig
) -> tuple[list[RankBase], list[Verdict]]:
    params = GenerationParams(
        max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed
    )
    out: list[RankBase] = []
    verdicts: list[Verdict] = []
    for start in range(0, len(examples), config.batch_size):
        chunk = examples[start : start + config.batch_size]
        gens = await backend.generate([teacher_messages(e) for e in chunk], params)
        for example, gen in zip(chunk, gens, strict=True):
            verdict = judge_rewrite(gen.text, example)
            verdicts.append(verdict)
            out.append(apply_verdict(example, verdict))
    return out, verdicts


def make_teacher_rewriter(
    config: TeacherConfig, verdicts: list[Verdict] | None = None
) -> Callable[[list[RankBase]], list[RankBase]]:
    """A rewriter for `training.data.build_dataset`; verdicts are appended to ``verdicts``."""

    def rewrite(examples: list[RankBase]) -> list[RankBase]:
        async def run() -> list[RankBase]:
            backend = make_backend(
                "vllm",
                base_url=config.base_url,
                model=config.model,
                api_key=config.api_key,
                timeout_s=config.timeout_s,
            )
            try:
                rewritten, found = await rewrite_all(backend, examples, config)
            finally:
                await backend.aclose()
            if verdicts is not None:
                verdicts.extend(found)
            return rewritten

        return asyncio.run(run())

    return rewrite

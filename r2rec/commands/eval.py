"""`r2rec eval`: score models on the protocol's case files and print the metrics table.

r2rec eval --dataset ml-100k --model sasrec
r2rec eval --dataset ml-latest-small --model all --out results/ml-latest-small.json
r2rec eval --model llm --checkpoint .r2rec/models/smollm2-135m-instruct --no-explain
r2rec eval --model llm --backend vllm --llm-url http://127.0.0.1:8000/v1 --explain
r2rec eval --task rating --dataset ml-100k [--limit 200] [--checkpoint runs/recone/model]

``--task rank`` (default) ranks the protocol's 20 candidates (`evaluation.runner`:
HR@k, NDCG@k). ``--task rating`` scores 1-5 rating prediction instead
(`evaluation.rating`, inference by `reasoning.rater`): MAE and RMSE of the
global/user/item-mean, bias and biased-MF baselines (tuned on valid), and of a model
when ``--checkpoint`` is given or ``--model llm`` (the prepared base model by default).
Each task is one function of ``EVALUATORS``; nothing here imports training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from common.errors import UserInputError
from common.paths import results_dir
from evaluation.protocol import SPLITS, ProtocolConfig, Split
from evaluation.ranker import Ranker

console = Console(stderr=True)
LLM = "llm"


def _llm_backend(
    checkpoint: Path | None, backend: str, llm_url: str, served_model: str | None, batch_size: int
) -> tuple[Callable[[], Any], str]:
    """(a factory of the LLM backend, the model's name) for the chosen backend."""
    from reasoning.backends import make_backend
    from reasoning.backends.model_folders import default_base_dir, is_complete

    if backend == "local":
        path = checkpoint or default_base_dir()
        has_weights = any((path / f).is_file() for f in ("config.json", "adapter_config.json"))
        if not (is_complete(path) or has_weights):
            raise UserInputError(
                f"no model at {path}: pass --checkpoint, or run `r2rec model prepare-base`"
            )
        make = lambda: make_backend("local", model_path=str(path), batch_size=batch_size)  # noqa: E731
        return make, path.name
    if backend == "vllm":
        make = lambda: make_backend("vllm", base_url=llm_url, model=served_model)  # noqa: E731
        return make, served_model or "vllm"
    raise UserInputError(f"--backend must be local or vllm, got {backend!r}")


@dataclass(frozen=True)
class EvalRequest:
    """The options of ``r2rec eval``, checked (split and limit) and shared by every task."""

    dataset: str
    model: str
    split: Split
    seed: int
    limit: int | None
    out: Path | None
    checkpoint: Path | None
    backend: str
    llm_url: str
    served_model: str | None
    explain: bool
    batch_size: int
    max_reasoning_tokens: int
    thoughts: str
    fused: Path | None = None
    states_url: str | None = None


def _llm_ranker(req: EvalRequest) -> Ranker:
    """The service's pipeline on the chosen backend; with ``--fused``, ranking with that
    fused ranker (collaborative base + the LLM's hidden-state head) as the service does."""
    from evaluation.llm_ranker import LLMRanker
    from reasoning.fused import FusedRanker
    from reasoning.recommender import RecommenderConfig

    make, name = _llm_backend(
        req.checkpoint, req.backend, req.llm_url, req.served_model, req.batch_size
    )
    config = RecommenderConfig(
        max_reasoning_tokens=req.max_reasoning_tokens,
        thoughts=req.thoughts,  # type: ignore[arg-type]  # checked against THOUGHT_SOURCES
    )
    fused = None
    if req.fused is not None:
        try:
            fused = FusedRanker.load(req.fused)
        except (OSError, ValueError, KeyError) as err:
            raise UserInputError(f"--fused {req.fused}: {err}") from err
        if fused.manifest.get("dataset") != req.dataset:
            raise UserInputError(
                f"--fused {req.fused} was fitted for {fused.manifest.get('dataset')!r}, "
                f"not {req.dataset!r}"
            )
        name = f"fused {req.fused.name}"
    make_states = None
    if req.states_url is not None:
        if fused is None or fused.states is None:
            raise UserInputError(
                "--states-url reads the states of a fused ranker folder holding states/: "
                "give --fused with one (r2rec model publish-fused writes it for a unit-RMS head)"
            )
        from reasoning.backends.vllm_states import VLLMStates, VLLMStatesConfig

        config_ = VLLMStatesConfig(req.states_url, fused.states)
        make_states = lambda: VLLMStates(config_)  # noqa: E731
    return LLMRanker(
        make,
        req.explain,
        config,
        batch_size=req.batch_size,
        name=name,
        fused=fused,
        make_states=make_states,
    )


def _rank_eval(req: EvalRequest) -> None:
    """--task rank: every baseline, one baseline, or the LLM on the protocol's cases."""
    from baselines import BASELINE_NAMES, make_baseline
    from evaluation.runner import evaluate, markdown_table, write_results
    from recdata import load_dataset

    names = list(BASELINE_NAMES) if req.model == "all" else [req.model]
    unknown = [n for n in names if n not in (*BASELINE_NAMES, LLM)]
    if unknown:
        raise UserInputError(
            f"unknown model {unknown[0]!r}; choose from: all, {', '.join(BASELINE_NAMES)}, {LLM}"
        )
    data = load_dataset(req.dataset)
    protocol = ProtocolConfig(seed=req.seed)
    results = []
    for name in names:
        ranker = _llm_ranker(req) if name == LLM else make_baseline(name)
        with console.status(
            f"[bold]{ranker.name}[/]: fitting and ranking on {req.dataset}/{req.split}"
        ):
            result = evaluate(ranker, data, req.split, protocol, limit=req.limit)
        console.print(
            f"{ranker.name}: HR@1 {result.metrics['HR@1']:.4f}  "
            f"NDCG@10 {result.metrics['NDCG@10']:.4f}  ({result.runtime_seconds:.1f} s)"
        )
        results.append(result)
    suffix = f"-limit{req.limit}" if req.limit else ""
    path = req.out or (
        results_dir() / req.dataset / f"{req.split}-seed{req.seed}-{req.model}{suffix}.json"
    )
    write_results(results, path)
    typer.echo(markdown_table(results))
    console.print(f"[dim]wrote {path} and {path.with_suffix('.md')}[/]")


def _rating_eval(req: EvalRequest) -> None:
    """--task rating: the rating baselines, and the model when one is given."""
    import json

    from evaluation.rating import evaluate_rating, markdown_table
    from recdata import load_dataset

    make: Callable[[], Any] | None = None
    name = "baselines"
    if req.checkpoint is not None or req.model == LLM:
        make, name = _llm_backend(
            req.checkpoint, req.backend, req.llm_url, req.served_model, req.batch_size
        )
    if req.model not in ("all", LLM):
        raise UserInputError(f"--task rating takes --model all or {LLM}, got {req.model!r}")
    dataset, split, limit = req.dataset, req.split, req.limit
    data = load_dataset(dataset)
    with console.status(f"[bold]rating[/]: {name if make else 'baselines'} on {dataset}/{split}"):
        results = evaluate_rating(
            data, [split], limit, make, name, req.max_reasoning_tokens, req.batch_size
        )
    table = markdown_table(results)
    suffix = f"-limit{limit}" if limit else ""
    path = (
        req.out
        or results_dir() / dataset / f"rating-{split}-{name if make else 'baselines'}{suffix}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(table + "\n")
    typer.echo(table)
    console.print(f"[dim]wrote {path} and {path.with_suffix('.md')}[/]")


EVALUATORS: dict[str, Callable[[EvalRequest], None]] = {"rank": _rank_eval, "rating": _rating_eval}


def eval_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (r2rec data list)")] = "ml-100k",
    model: Annotated[
        str, typer.Option(help="A baseline name, 'all' for every baseline, or 'llm'")
    ] = "all",
    split: Annotated[str, typer.Option(help="valid or test")] = "test",
    seed: Annotated[int, typer.Option(help="Protocol seed (candidate sampling)")] = 0,
    limit: Annotated[int | None, typer.Option(help="Score only the first N cases")] = None,
    out: Annotated[
        Path | None, typer.Option(help="JSON results path (a .md table is written beside it)")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="llm: model folder (default: the prepared base model)")
    ] = None,
    backend: Annotated[str, typer.Option(help="llm: local (in-process) or vllm")] = "local",
    llm_url: Annotated[
        str, typer.Option(help="llm: OpenAI-compatible base URL")
    ] = "http://127.0.0.1:8000/v1",
    served_model: Annotated[str | None, typer.Option(help="llm: served model name")] = None,
    explain: Annotated[
        bool, typer.Option(help="llm: reason, then answer (else score letters)")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="llm: cases per LLM batch")] = 8,
    max_reasoning_tokens: Annotated[int, typer.Option(help="llm: thought token budget")] = 256,
    thoughts: Annotated[
        str,
        typer.Option(
            help="llm --explain: evidence (written from the chains about the one-pass "
            "ranking, as the service does) or model (generated before the answer)"
        ),
    ] = "evidence",
    task: Annotated[
        str, typer.Option(help="rank (HR/NDCG) or rating (MAE/RMSE vs the rating baselines)")
    ] = "rank",
    fused: Annotated[
        Path | None,
        typer.Option(
            help="llm: rank with this fused ranker folder (r2rec model publish-fused --out), "
            "as the service does; its bundle must be fitted on the split's training log"
        ),
    ] = None,
    states_url: Annotated[
        str | None,
        typer.Option(
            help="llm --fused: the vLLM pooling server serving the folder's states/ (served "
            "as 'states'), which then reads the head's states instead of the LLM backend"
        ),
    ] = None,
) -> None:
    """Evaluate one model or every baseline on the protocol; prints a Markdown table."""
    if split not in SPLITS:
        raise UserInputError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if limit is not None and limit < 1:
        raise UserInputError(f"--limit must be >= 1, got {limit}")
    run = EVALUATORS.get(task)
    if run is None:
        raise UserInputError(f"--task must be {' or '.join(EVALUATORS)}, got {task!r}")
    from reasoning.evidence import THOUGHT_SOURCES

    if thoughts not in THOUGHT_SOURCES:
        raise UserInputError(f"--thoughts must be one of {THOUGHT_SOURCES}, got {thoughts!r}")
    chosen: Split = "test" if split == "test" else "valid"
    run(
        EvalRequest(
            dataset=dataset,
            model=model,
            split=chosen,
            seed=seed,
            limit=limit,
            out=out,
            checkpoint=checkpoint,
            backend=backend,
            llm_url=llm_url,
            served_model=served_model,
            explain=explain,
            batch_size=batch_size,
            max_reasoning_tokens=max_reasoning_tokens,
            thoughts=thoughts,
            fused=fused,
            states_url=states_url,
        )
    )

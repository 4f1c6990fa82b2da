"""`r2rec train explainer`: fine-tune the explainer (`reasoning.explainer`) beside the fused ranker.

    r2rec train explainer --config training/configs/explainer-smollm2.yaml \
        --set dataset=ml-latest-small --set out_dir=.r2rec/runs/explainer-mls

The fused ranker ranks without text; the explainer writes the thoughts about its ranking.
This stage trains it with the language loss (LoRA on the base model; the ranker's head
keeps reading the base model's states, so the explainer cannot move the ranking):

1. Cases: each user's last ``targets_per_user`` interactions of the training log of
   ``split`` (valid by default: no valid or test target is ever trained on), each read
   from a graph that holds nothing at or after it (`training.data.round_cases`, as the
   ranker's SFT data).
2. The ranking to explain: the target first, then the graph's co-interaction order, then
   the other candidates (a good ranking, as the fused ranker's are).
3. Target text: `reasoning.explainer.explainer_target` (at most 5 thoughts, each one chain
   or one fact of the explainer's prompt), numbered.
4. Progressive masking, as the ranker's traces: a case with n thoughts gives n rows, row k
   (k = 0..n-1) hands thoughts 1..k to the model as the start of its answer and trains
   only on the rest.
5. Training: `training.sft.train_sft` (TRL SFTTrainer, loss on the completion only), into
   ``out_dir``: ``adapter/``, the merged ``model/`` (what the service loads), ``trained.json``
   and ``explainer.json`` (rows, tokens per example, wall time).

`r2rec model publish-explainer RUN` copies ``model/`` into the published fused ranker's
folder (``explainer/``); the service then writes explain=true's thoughts with it when
``R2REC_THOUGHTS=model``, and `r2rec eval --explain --thoughts model --fused FOLDER`
measures it (grounded titles, repeated thoughts, pick agreement).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from common.errors import UserInputError
from common.files import write_json_atomic
from reasoning.explainer import (
    explainer_messages,
    explainer_reward,
    explainer_target,
    render_thoughts,
    reward_column,
)
from recdata.schema import Dataset
from recdata.vocabulary import vocabulary_of
from training.config import SFTConfig
from training.data import DataConfig, RoundCase, collect_cases

log = logging.getLogger("r2rec.training")


@dataclass(frozen=True)
class ExplainerConfig:
    """One explainer run: which cases, the LoRA and its optimiser, where it goes."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "Dataset name."})
    split: str = field(
        default="valid", metadata={"help": "Train on the log before this split's targets."}
    )
    targets_per_user: int = field(default=1, metadata={"help": "Cases per user (last N)."})
    limit_users: int | None = field(
        default=None, metadata={"help": "Only the first N users (sorted ids); None = all."}
    )
    max_cases: int | None = field(
        default=None, metadata={"help": "At most this many cases (spread over the users)."}
    )
    masked: bool = field(default=True, metadata={"help": "Progressively masked rows (k >= 1)."})
    out_dir: str = field(default="", metadata={"help": "Run folder (required)."})
    base_model: str | None = field(
        default=None, metadata={"help": "Model folder; None = the prepared base model."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=4, metadata={"help": "Rows per optimiser step."})
    max_steps: int = field(default=100, metadata={"help": "Optimiser steps."})
    max_length: int = field(default=768, metadata={"help": "Longest row, tokens."})
    time_limit_minutes: float | None = field(
        default=None, metadata={"help": "Stop training after this many minutes."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds negatives, chains and training."})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto."})
    validate_cases: int = field(
        default=64, metadata={"help": "Held-out cases scored after training (0: none)."}
    )

    def __post_init__(self) -> None:
        if not self.out_dir:
            raise UserInputError("out_dir is required")
        if self.max_cases is not None and self.max_cases < 1:
            raise UserInputError(f"max_cases must be >= 1, got {self.max_cases}")

    def data_config(self) -> DataConfig:
        return DataConfig(
            dataset=self.dataset,
            split=self.split,
            targets_per_user=self.targets_per_user,
            limit_users=self.limit_users,
            seed=self.seed,
        )

    def sft_config(self) -> SFTConfig:
        return SFTConfig(
            name=Path(self.out_dir).name,
            dataset=self.dataset,
            base_model=self.base_model,
            lora_r=self.lora_r,
            lora_alpha=self.lora_alpha,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_steps=self.max_steps,
            max_length=self.max_length,
            time_limit_minutes=self.time_limit_minutes,
            save_steps=max(self.max_steps, 1),
            seed=self.seed,
            device=self.device,
        )


def ranking_to_explain(case: RoundCase) -> list[str]:
    """The target, then the graph's co-interaction order, then the other candidates."""
    return list(dict.fromkeys([case.target, *case.graph_order, *case.candidate_ids]))


def spread(cases: list[RoundCase], most: int | None) -> list[RoundCase]:
    """At most ``most`` cases, evenly spread over the list (all when None)."""
    if most is None or len(cases) <= most:
        return cases
    step = len(cases) / most
    return [cases[int(i * step)] for i in range(most)]


def masked_rows(thoughts: tuple[str, ...], masked: bool) -> Iterator[tuple[str, str, int]]:
    """(given prefix, completion, k) for k = 0 (and 1..n-1 when ``masked``).

    >>> [(p, c) for p, c, _ in masked_rows(("a", "b"), True)]
    [('', '1. a\\n2. b'), ('1. a\\n', '2. b')]
    """
    text = render_thoughts(thoughts)
    lines = text.split("\n")
    for k in range(len(thoughts) if masked else min(1, len(thoughts))):
        given = "".join(line + "\n" for line in lines[:k])
        yield given, "\n".join(lines[k:]), k


def case_rows(case: RoundCase, masked: bool, vocab: Any) -> list[dict[str, Any]]:
    """The training rows of one case (prompt messages, completion, variant)."""
    ranking = [case.items[i] for i in ranking_to_explain(case)]
    thoughts = explainer_target(case.history, case.chains, ranking)
    messages = explainer_messages(case.history, case.chains, ranking, vocab)
    rows = []
    for given, completion, k in masked_rows(thoughts, masked):
        prompt = [*messages, {"role": "assistant", "content": given}] if given else messages
        rows.append(
            {
                "id": f"explain-u{case.user_id}-r{case.round}-k{k}",
                "prompt": prompt,
                "completion": [{"role": "assistant", "content": completion}],
                "variant": k,
            }
        )
    return rows


def explainer_rows(config: ExplainerConfig, dataset: Dataset | None = None) -> list[dict[str, Any]]:
    """Every training row, cases in (round, user) order, capped at ``max_cases`` cases
    (``dataset``: default, the one named by the config)."""
    from recdata.store import load_dataset

    dataset = dataset or load_dataset(config.dataset)
    cases = spread(collect_cases(config.data_config(), dataset), config.max_cases)
    vocab = vocabulary_of(dataset)
    return [row for case in cases for row in case_rows(case, config.masked, vocab)]


def train_explainer(config: ExplainerConfig, dataset: Dataset | None = None) -> dict[str, Any]:
    """Build the rows (from ``dataset``, default the one the config names), train, write
    the run folder; returns its summary (explainer.json). A finished run (``model/`` and
    ``explainer.json`` present) is returned as it is."""
    from common.files import read_json
    from training.sft import train_sft

    folder = Path(config.out_dir)
    done = folder / "explainer.json"
    if done.is_file() and (folder / "model" / "config.json").is_file():
        log.info("explainer run %s is finished: skipped", folder)
        return dict(read_json(done))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = explainer_rows(config, dataset)
    if not rows:
        raise UserInputError(f"no training case in {config.dataset} ({config.split} log)")
    built = time.monotonic() - started
    stats = train_sft(config.sft_config(), folder, rows)  # type: ignore[arg-type]
    summary = {
        "config": asdict(config),
        "cases": sum(r["variant"] == 0 for r in rows),
        "rows": len(rows),
        "rows_seen": stats["global_step"] * config.batch_size,
        "data_s": round(built, 1),
        "train_s": round(time.monotonic() - started - built, 1),
        "train_loss": stats["train_loss"],
        "tokens_seen": stats["num_tokens"],
        "tokens_per_row": stats["num_tokens"] / max(stats["global_step"] * config.batch_size, 1)
        if stats["num_tokens"]
        else None,
        "valid": validate_explainer(
            folder / "model", dataset or config.dataset, config.validate_cases
        )
        if config.validate_cases
        else None,
    }
    write_json_atomic(done, summary)
    return summary


@dataclass(frozen=True)
class ExplainerGRPOConfig:
    """GRPO on a trained explainer: sampled thoughts rewarded by the served checks."""

    init_run: str = field(default="", metadata={"help": "The explainer run to start from."})
    out_dir: str = field(default="", metadata={"help": "Run folder (required)."})
    dataset: str = field(default="ml-latest-small", metadata={"help": "Dataset name."})
    split: str = field(default="valid", metadata={"help": "Prompts from this split's log."})
    max_cases: int = field(default=64, metadata={"help": "Prompts (cases) to sample from."})
    seed: int = field(
        default=1, metadata={"help": "Seeds negatives, chains (1: not the SFT draws) and RL."}
    )
    num_generations: int = field(default=4, metadata={"help": "Completions per prompt."})
    max_completion_length: int = field(default=320, metadata={"help": "Tokens per completion."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient (0: no reference)."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=4, metadata={"help": "Completions per step."})
    max_steps: int = field(default=20, metadata={"help": "Optimiser steps."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank of the fresh adapter."})
    time_limit_minutes: float | None = field(default=None, metadata={"help": "Stop after."})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto."})
    validate_cases: int = field(
        default=64, metadata={"help": "Held-out cases scored after training (0: none)."}
    )

    def __post_init__(self) -> None:
        if not self.out_dir or not self.init_run:
            raise UserInputError("init_run and out_dir are required")
        if self.batch_size % self.num_generations:
            raise UserInputError("batch_size must be a multiple of num_generations")


def grpo_rows(config: ExplainerGRPOConfig, dataset: Dataset | None = None) -> list[dict[str, Any]]:
    """One prompt per case, with the columns `explainer_reward` reads."""
    from recdata.store import load_dataset

    dataset = dataset or load_dataset(config.dataset)
    data = DataConfig(
        dataset=config.dataset, split=config.split, targets_per_user=1, seed=config.seed
    )
    vocab = vocabulary_of(dataset)
    rows = []
    for case in spread(collect_cases(data, dataset), config.max_cases):
        ranking = [case.items[j] for j in ranking_to_explain(case)]
        rows.append(
            {
                "prompt": explainer_messages(case.history, case.chains, ranking, vocab),
                "evidence": reward_column(case.history, case.chains, ranking),
            }
        )
    return rows


def grpo_explainer(config: ExplainerGRPOConfig) -> dict[str, Any]:
    """GRPO from ``init_run``'s merged model with a fresh LoRA; writes ``out_dir`` as an
    explainer run (``model/``, ``explainer.json``), so it publishes the same way."""
    from datasets import Dataset as HFDataset
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    from common.files import read_json
    from training.config import GRPOConfig
    from training.device import resolve_device
    from training.run_folder import train_and_save
    from training.sft import load_model, peft_config, run_callbacks, trainer_common

    folder = Path(config.out_dir)
    done = folder / "explainer.json"
    if done.is_file() and (folder / "model" / "config.json").is_file():
        return dict(read_json(done))
    start = Path(config.init_run) / "model"
    if not (start / "config.json").is_file():
        raise UserInputError(f"{config.init_run} holds no trained explainer (model/)")
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = grpo_rows(config)
    run = GRPOConfig(
        name=folder.name,
        lora_r=config.lora_r,
        lora_alpha=2 * config.lora_r,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        max_steps=config.max_steps,
        save_steps=max(config.max_steps, 1),
        logging_steps=1,
        seed=config.seed,
        device=config.device,
    )
    device = resolve_device(config.device)
    model, tokenizer = load_model(start, device)
    args = TRLGRPOConfig(
        **trainer_common(run, folder, device),
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=cast(Any, [explainer_reward]),
        args=args,
        train_dataset=HFDataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(run),
        callbacks=run_callbacks(config.time_limit_minutes),
    )
    output = train_and_save(trainer, tokenizer, folder, lora=True)
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    summary = {
        "config": asdict(config),
        "prompts": len(rows),
        "steps": output.global_step,
        "completions_seen": output.global_step * config.batch_size,
        "reward_by_step": rewards,
        "train_s": round(time.monotonic() - started, 1),
        "valid": validate_explainer(folder / "model", config.dataset, config.validate_cases)
        if config.validate_cases
        else None,
    }
    write_json_atomic(done, summary)
    return summary


def validate_explainer(
    model_dir: Path, dataset: Dataset | str, cases: int = 64, seed: int = 2, batch_size: int = 8
) -> dict[str, float]:
    """How often an explainer's greedy thoughts would be served, on held-out cases: each
    user's validation target (the last item of the test split's training log), the
    ranking to explain built as in training. For choosing between explainers (SFT, GRPO)
    without looking at test. Returns the served share and each check's pass share."""
    from reasoning.backends import make_backend
    from reasoning.explainer import explain_rankings
    from recdata.store import load_dataset

    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    config = DataConfig(dataset=data.name, split="test", targets_per_user=1, seed=seed)
    chosen = spread(collect_cases(config, data), cases)
    evidence = [(c.history, c.chains, [c.items[i] for i in ranking_to_explain(c)]) for c in chosen]
    llm = make_backend("local", model_path=str(model_dir), batch_size=batch_size)

    async def run() -> list[Any]:
        try:
            out = []
            for start in range(0, len(evidence), batch_size):
                part = evidence[start : start + batch_size]
                out += await explain_rankings(llm, part, vocabulary_of(data))
            return out
        finally:
            await llm.aclose()

    checks = [check for _, check in asyncio.run(run())]
    n = max(len(checks), 1)
    return {
        "cases": len(checks),
        "served": sum(c.accepted for c in checks) / n,
        "grounded": sum(c.grounded for c in checks) / n,
        "repeated": sum(c.repeated for c in checks) / n,
        "agrees": sum(c.agrees for c in checks) / n,
        "bounded": sum(c.bounded for c in checks) / n,
        "supported": sum(c.supported for c in checks) / n,
    }

"""`r2rec train rating-head`: train the rating where the model writes it, in one pass.

One example is one rating target. The model reads the rating prompt with the target's
out-of-sample facts (`reasoning.rating_facts`: the user's mean and spread, the item's
mean and count, how taste neighbours rated it), then the start of its own answer: the
three analysis steps written from those facts (`training.rating.data`'s grounded
template: the user's mean and liked/disliked genres, the item and its mean, the match),
ending at ``<rate>``. One forward pass gives the next-token logits of "1".."5" there;
the loss is the cross-entropy to the true rating (a half rating splits its mass between
its two neighbours). LoRA adapters (peft) are trained, shuffled, within a time budget.

The prediction is the expectation over the five (as `reasoning.rater` reads a rating).
After training, every valid and test target is scored once; a blend
``(1 - w) * best classical + w * model`` is chosen on valid (``w`` on a grid, lowest
MAE), and test is scored once with it. Training rows: the valid split's rated log
(`training.rating.data.log_targets`, nothing at or after a valid or test target), facts
from that log minus the target's own (user, item) rows.

    config = RatingHeadConfig(out_dir="runs/rating-head-ml100k")
    summary = run_rating_head(config)  # writes out_dir/{summary,predictions}.json, rating-head.md
    # more: start_from=out_dir (resume), or start_from=<that folder>, objective="grpo"

Command line: ``r2rec train rating-head [--set key=value]``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserInputError
from evaluation.rating import (
    item_infos,
    rated_log,
    rating_targets,
    tune_baselines,
)
from evaluation.rating_baselines import baseline_predictions
from reasoning.rater import CHOICES
from reasoning.rating import RatedItem, render_rating_messages
from reasoning.rating_facts import rating_facts, taste_graph, taste_neighbours
from reasoning.rating_template import completion_facts, template_prefix
from recdata.schema import Dataset
from training.choice_logits import ChoiceLogits
from training.rating.data import RatingDataConfig, log_targets
from training.rating.head_report import blend_table, markdown, run_totals, stage_figures

log = logging.getLogger("r2rec.training")


@dataclass(frozen=True)
class RatingHeadConfig:
    """The rating head run; every field is a ``--set`` key."""

    dataset: str = field(default="ml-100k", metadata={"help": "Dataset with ratings."})
    out_dir: str = field(default="runs/rating-head", metadata={"help": "Output folder."})
    model_path: str | None = field(
        default=None, metadata={"help": "Model folder; None = the prepared SmolLM2 base."}
    )
    targets_per_user: int = field(default=2, metadata={"help": "Training targets per user."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lr: float = field(default=2e-4, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=4, metadata={"help": "Examples per optimiser step."})
    epochs: int = field(default=1, metadata={"help": "Passes over the training rows."})
    max_train_seconds: float = field(
        default=1800.0, metadata={"help": "Stop training after this many seconds (0: none)."}
    )
    eval_batch_size: int = field(default=8, metadata={"help": "Targets per scoring batch."})
    eval_limit: int | None = field(
        default=None, metadata={"help": "Score only N valid/test targets (smoke); None = all."}
    )
    train_limit: int | None = field(
        default=None, metadata={"help": "Use only N training rows (smoke); None = all."}
    )
    seed: int = field(default=0, metadata={"help": "Shuffling and initialisation seed."})
    start_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue the run in this folder (out_dir itself to resume): its adapter, "
            "its optimiser state when the objective is the same, its place in the seeded "
            "row order, its counts."
        },
    )
    objective: str = field(
        default="ce",
        metadata={
            "help": "ce: soft-label cross-entropy over 1..5 at <rate>; grpo: GRPO over the "
            "sampled rating token with the seed's rewards (training.rating.head_grpo)."
        },
    )
    score: bool = field(
        default=True,
        metadata={"help": "Score valid and test and blend after training (off: a stage only)."},
    )
    group_size: int = field(default=8, metadata={"help": "GRPO: sampled tokens per target."})
    reward_weights: tuple[float, float] = field(
        default=(0.25, 1.0),
        metadata={"help": "GRPO: weights of rating_format_reward and rating_reward."},
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1 or self.eval_batch_size < 1:
            raise UserInputError("batch_size, epochs and eval_batch_size must be >= 1")
        if self.objective not in ("ce", "grpo"):
            raise UserInputError(f"objective must be ce or grpo, got {self.objective!r}")
        if self.group_size < 2:
            raise UserInputError(f"group_size must be >= 2, got {self.group_size}")


@dataclass(frozen=True)
class Example:
    user_id: str
    item_id: str
    rating: float
    messages: list[dict[str, str]]  # system, user (with facts), assistant up to <rate>


def _example(
    log_frame: pd.DataFrame,
    graph: Any,
    infos: dict[str, Any],
    user: str,
    item: str,
    rating: float,
    history: tuple[RatedItem, ...],
) -> Example:
    near = taste_neighbours(graph, user, item)
    facts = rating_facts(log_frame, user, item, near)
    steps = completion_facts(history, facts.item_mean, facts.item_count)
    prefix = template_prefix(steps, infos[item], len(history))
    messages = render_rating_messages(list(history), infos[item], facts)
    return Example(user, item, rating, [*messages, {"role": "assistant", "content": prefix}])


def training_examples(dataset: Dataset, config: RatingHeadConfig) -> list[Example]:
    """The valid split's log targets, with facts from that log (minus the target pair)."""
    frame = rated_log(dataset, "valid")
    graph, infos = taste_graph(frame), item_infos(dataset)
    targets = log_targets(
        RatingDataConfig(dataset=dataset.name, targets_per_user=config.targets_per_user), dataset
    )[: config.train_limit]
    return [
        _example(frame, graph, infos, t.user_id, t.item_id, t.rating, t.history) for t in targets
    ]


def split_examples(dataset: Dataset, split: str, limit: int | None) -> list[Example]:
    """The protocol's rating targets of ``split``, facts from the split's training log."""
    frame = rated_log(dataset, split)
    graph, infos = taste_graph(frame), item_infos(dataset)
    return [
        _example(frame, graph, infos, t.user_id, t.item_id, t.rating, t.history)
        for t in rating_targets(dataset, split, limit)  # type: ignore[arg-type]
    ]


def soft_target(rating: float) -> np.ndarray:
    """The rating as a distribution over 1..5 (3.5 -> half on 3, half on 4).

    >>> soft_target(3.5).tolist()
    [0.0, 0.0, 0.5, 0.5, 0.0]
    """
    r = min(max(float(rating), 1.0), 5.0) - 1.0
    low = int(np.floor(r))
    out = np.zeros(5)
    out[low] = 1.0 - (r - low)
    if low < 4:
        out[low + 1] += r - low
    return out


class _Scorer:
    """The model and its reader of the five rating-token logits at ``<rate>``."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.reader = model, ChoiceLogits(tokenizer, CHOICES)

    def logits(self, examples: list[Example]) -> Any:
        return self.reader.logits(self.model, [self.reader.text(e.messages) for e in examples])

    def probabilities(self, examples: list[Example], batch_size: int) -> np.ndarray:
        """(examples, 5): the model's distribution over the ratings 1..5."""
        import torch

        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(examples), batch_size):
                logits = self.logits(examples[start : start + batch_size]).double()
                out.append(torch.softmax(logits, dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 5))


def _load(config: RatingHeadConfig) -> _Scorer:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasoning.backends.model_folders import default_base_dir

    path = config.model_path or str(default_base_dir())
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if config.start_from:
        adapter = Path(config.start_from) / "adapter"
        return _Scorer(PeftModel.from_pretrained(model, str(adapter), is_trainable=True), tokenizer)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    return _Scorer(get_peft_model(model, lora), tokenizer)


def train(
    scorer: _Scorer, rows: list[Example], config: RatingHeadConfig, before: dict[str, Any] | None
) -> dict[str, Any]:
    """Train at ``<rate>`` with ``config.objective``, within the budget.

    The rows are visited in one seeded order (a permutation per epoch, end to end); a
    continued run (``before``: the earlier run's ``trained.json``) starts where that one
    stopped and appends its own stage to ``stages``.
    """
    import torch

    from training.rating.head_grpo import grpo_loss

    before = before or {}
    rng = np.random.default_rng(config.seed)
    schedule = np.concatenate([rng.permutation(len(rows)) for _ in range(config.epochs)])
    params = [p for p in scorer.model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    state = Path(config.start_from or config.out_dir) / "optimizer.pt"
    same_objective = before.get("objective", "ce") == config.objective
    if before and same_objective and state.is_file():
        optimiser.load_state_dict(torch.load(state))
        for group in optimiser.param_groups:
            group["lr"] = config.lr  # this run's rate, not the saved one
    generator = torch.Generator().manual_seed(config.seed + int(before.get("steps", 0)))
    scorer.model.train()
    started, losses, signal = time.perf_counter(), [], []
    steps = seen = 0
    scorer.reader.tokens = 0
    offset = int(before.get("examples_seen", 0))
    for begin in range(offset, len(schedule), config.batch_size):
        batch = [rows[i] for i in schedule[begin : begin + config.batch_size]]
        if config.objective == "grpo":
            texts = [scorer.reader.text(e.messages) for e in batch]
            full = scorer.reader.next_logits(scorer.model, texts)
            loss, info = grpo_loss(
                full,
                scorer.reader.tokenizer,
                batch,
                config.group_size,
                config.reward_weights,
                generator,
            )
            signal.append(info)
        else:
            target = torch.tensor(np.stack([soft_target(e.rating) for e in batch]))
            logp = torch.log_softmax(scorer.logits(batch).double(), dim=1)
            loss = -(target * logp).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps, seen = steps + 1, seen + len(batch)
        losses.append(float(loss.detach()))
        if steps % 25 == 0:
            log.info(
                "%s step %d, %d examples, %.0f s: loss %.4f",
                config.objective,
                steps,
                seen,
                time.perf_counter() - started,
                float(np.mean(losses[-25:])),
            )
        if config.max_train_seconds and time.perf_counter() - started > config.max_train_seconds:
            break
    torch.save(optimiser.state_dict(), Path(config.out_dir) / "optimizer.pt")
    stage = stage_figures(config, steps, seen, started, scorer.reader.tokens, losses, signal)
    return run_totals(before, stage)


def run_rating_head(config: RatingHeadConfig) -> dict[str, Any]:
    """Train, score valid and test once, blend on valid; write the report (see above)."""
    from recdata import load_dataset

    out = Path(config.out_dir)
    earlier = Path(config.start_from or out) / "trained.json"
    if config.start_from and not earlier.is_file():
        raise UserInputError(f"start_from: {config.start_from} holds no run (no trained.json)")
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(config.dataset)
    rows = training_examples(dataset, config)
    valid = split_examples(dataset, "valid", config.eval_limit)
    test = split_examples(dataset, "test", config.eval_limit)
    if not rows or not valid or not test:
        raise UserInputError(f"{config.dataset}: no rating targets to train or score")
    log.info("rating head: %d training rows, %d valid, %d test", len(rows), len(valid), len(test))
    scorer = _load(config)
    before = json.loads(earlier.read_text()) if config.start_from else None
    trained = train(scorer, rows, config, before)
    scorer.model.save_pretrained(str(out / "adapter"))  # LoRA only: a few MB
    (out / "trained.json").write_text(json.dumps(trained, indent=2) + "\n")
    if not config.score:
        return {"config": asdict(config), "training": trained}
    started = time.perf_counter()
    probs = {
        name: scorer.probabilities(ex, config.eval_batch_size)
        for name, ex in (("valid", valid), ("test", test))
    }
    llm = {name: p @ np.arange(1.0, 6.0) for name, p in probs.items()}  # the expectation
    scoring_s = time.perf_counter() - started
    tuned = tune_baselines(dataset)
    classical, truth = {}, {}
    for name, examples in (("valid", valid), ("test", test)):
        pairs = [(e.user_id, e.item_id) for e in examples]
        classical[name] = baseline_predictions(rated_log(dataset, name), pairs, tuned)[0]
        truth[name] = np.array([e.rating for e in examples])
    table, chosen = blend_table(llm, classical, truth)
    summary = {
        "config": asdict(config),
        "training": trained,
        "scoring_seconds": round(scoring_s, 1),
        **chosen,
        "test": table,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    per_target = {
        name: [
            {"user_id": e.user_id, "item_id": e.item_id, "rating": e.rating}
            | {"head": float(llm[name][i]), "head_probs": np.round(probs[name][i], 6).tolist()}
            | {model: float(classical[name][model][i]) for model in classical[name]}
            for i, e in enumerate(examples)
        ]
        for name, examples in (("valid", valid), ("test", test))
    }
    (out / "predictions.json").write_text(json.dumps(per_target) + "\n")
    (out / "rating-head.md").write_text(markdown(table) + "\n")
    return summary

"""Listwise LLM ranking fused with the collaborative combiner (residual fusion).

One example = one case: the model reads a compact prompt (history, then the 20 candidates
lettered A-T in a freshly shuffled order, then the assistant text ``"Answer:"`` exactly as
the service's explain=false mode renders it) and one forward pass gives the next-token
logits of the 20 letter tokens ``" A"`` .. ``" T"`` at the answer position. The
candidates' scores are

    score_j = base_j + alpha * (letter_logit_j - mean_k letter_logit_k)

where ``base`` is the non-LLM combiner (``baselines.combiner``; fitted on the LLM's own
training rows, so the validation split stays clean for choosing settings) or the z-scored
SASRec score, and ``alpha`` is a learned scalar (small at start, so training starts at
the collaborative model's level and the LLM only has to learn what it misses). The loss
is the cross-entropy of the target under a softmax over the 20 scores (listwise); LoRA
(peft) adapters on the attention projections and ``alpha`` are trained.

Rows: training row sets of ``baselines.features`` (``train3``: each user's third-from-last
interaction, features from models fitted on everything before it). After training, the
letter logits of every ``select_rowset`` (valid) and ``test_rowset`` case are computed
once; the final ``alpha`` is chosen on valid from ``alpha_grid`` x learned alpha (lowest
listwise cross-entropy), and test is scored once with it.

    config = ListwiseConfig(model_path="...", features_dir=".r2rec/features/ml-100k", out_dir="...")
    summary = run_listwise(config)          # writes out_dir/{summary.json, r2rec.json, r2rec.md}

Command line: ``r2rec train listwise --config training/configs/listwise-smollm2.yaml``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.combiner import ListwiseCombiner, hits_at_1, listwise_nll
from baselines.features import FeatureSet, feature_path
from common.errors import UserInputError
from evaluation.ranker import Case
from reasoning.collaborative import zscore_per_case
from reasoning.prompt import ItemInfo
from training.choice_logits import ChoiceLogits
from training.compact_prompt import item_lookup, letter_reader, render_compact
from training.ranking_report import report_rows, write_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListwiseConfig:
    """One listwise fused run: data, prompt, LoRA, optimisation, selection."""

    model_path: str = field(
        default="", metadata={"help": "Base model folder (r2rec model prepare-base)."}
    )
    features_dir: str = field(
        default="", metadata={"help": "Folder of <rowset>.npz from python -m baselines.features."}
    )
    dataset: str = field(default="ml-100k", metadata={"help": "Dataset (item titles)."})
    out_dir: str = field(default="", metadata={"help": "Run folder for adapter and results."})
    train_rowsets: tuple[str, ...] = field(
        default=("train3",), metadata={"help": "Row sets trained on (comma-separated)."}
    )
    select_rowset: str = field(
        default="valid", metadata={"help": "Row set alpha is chosen on (never trained on)."}
    )
    test_rowset: str = field(default="test", metadata={"help": "Row set scored once at the end."})
    base: str = field(
        default="combiner",
        metadata={"help": "Fusion base: combiner (fitted on the train rows) or sasrec (z-score)."},
    )
    sasrec_scale: float = field(
        default=2.6, metadata={"help": "base = this x z(SASRec) when base is sasrec."}
    )
    max_train_rows: int = field(default=0, metadata={"help": "Cap on training rows (0: all)."})
    max_train_seconds: float = field(
        default=0.0, metadata={"help": "Stop training after this wall time (0: no limit)."}
    )
    max_select_rows: int = field(
        default=0, metadata={"help": "Cap on select (valid) rows scored, first N (0: all)."}
    )
    max_test_rows: int = field(
        default=0, metadata={"help": "Cap on test rows scored, first N (0: all)."}
    )
    wait_for_features_s: float = field(
        default=0.0,
        metadata={"help": "After training, wait this long for missing valid/test features."},
    )
    epochs: int = field(default=1, metadata={"help": "Passes over the training rows."})
    batch_size: int = field(default=4, metadata={"help": "Examples per optimiser step."})
    eval_batch_size: int = field(default=8, metadata={"help": "Examples per scoring pass."})
    lr: float = field(default=3e-4, metadata={"help": "AdamW learning rate of the LoRA weights."})
    alpha_lr: float = field(default=1e-2, metadata={"help": "Learning rate of alpha."})
    alpha_init: float = field(default=0.1, metadata={"help": "Initial fusion weight alpha."})
    alpha_grid: tuple[float, ...] = field(
        default=(0.0, 0.5, 1.0, 1.5, 2.0),
        metadata={"help": "Multiples of the learned alpha tried on the select row set."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_targets: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={"help": "Module names that get LoRA adapters."},
    )
    history_items: int = field(default=5, metadata={"help": "History items shown (newest)."})
    title_chars: int = field(default=18, metadata={"help": "Titles are cut to this many chars."})
    genres: int = field(default=1, metadata={"help": "Genres shown per item (0: none)."})
    threads: int = field(default=2, metadata={"help": "torch intra-op threads."})
    seed: int = field(default=0, metadata={"help": "Shuffles, candidate orders, init."})
    log_every: int = field(default=20, metadata={"help": "Optimiser steps between log lines."})

    def __post_init__(self) -> None:
        if self.base not in ("combiner", "sasrec"):
            raise UserInputError(f"base must be combiner or sasrec, got {self.base!r}")
        if not self.train_rowsets:
            raise UserInputError("train_rowsets is empty")
        if self.select_rowset in self.train_rowsets or self.test_rowset in self.train_rowsets:
            raise UserInputError("valid/test row sets cannot be trained on")


# ---------------------------------------------------------------------------- data
@dataclass
class _Rows:
    cases: list[Case]
    base: np.ndarray  # (n, 20) fusion base scores in the case's candidate order
    target: np.ndarray  # (n,)
    sasrec: np.ndarray  # (n, 20) raw SASRec scores


def load_rowset(features_dir: str, rowset: str) -> FeatureSet:
    """The feature file of ``rowset`` in ``features_dir``; a clear error when missing."""
    path = feature_path(Path(features_dir), rowset)
    if not path.is_file():
        raise UserInputError(f"{path}: no feature file (python -m baselines.features)")
    return FeatureSet.load(path)


def _base_scores(
    config: ListwiseConfig, feats: FeatureSet, combiner: ListwiseCombiner
) -> np.ndarray:
    if config.base == "combiner":
        return combiner.score(feats.scores)
    sasrec = feats.names.index("sasrec")
    return np.asarray(config.sasrec_scale * zscore_per_case(feats.scores[:, :, [sasrec]])[:, :, 0])


def _rows(config: ListwiseConfig, feats: FeatureSet, combiner: ListwiseCombiner, cap: int) -> _Rows:
    n = len(feats.cases) if cap <= 0 else min(cap, len(feats.cases))
    return _Rows(
        cases=feats.cases[:n],
        base=_base_scores(config, feats, combiner)[:n],
        target=feats.target_index[:n],
        sasrec=feats.column("sasrec")[:n],
    )


# ---------------------------------------------------------------------------- model
def _load_model(config: ListwiseConfig) -> tuple[Any, ChoiceLogits]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model_path)
    model = AutoModelForCausalLM.from_pretrained(config.model_path, dtype=torch.float32)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), letter_reader(tokenizer)


def centred_logits(
    model: Any,
    encoder: ChoiceLogits,
    cases: list[Case],
    lookup: dict[str, ItemInfo],
    config: ListwiseConfig,
    partial: Path | None = None,
) -> tuple[np.ndarray, float]:
    """(n, 20) centred letter logits in each case's own candidate order; mean prompt tokens.
    With ``partial``, the rows done so far are saved there after every batch."""
    import torch

    model.eval()
    out = np.zeros((len(cases), 20))
    tokens = 0
    identity = np.arange(20)
    with torch.inference_mode():
        for start in range(0, len(cases), config.eval_batch_size):
            chunk = cases[start : start + config.eval_batch_size]
            texts = [encoder.text(render_compact(c, identity, lookup, config)) for c in chunk]
            tokens += sum(encoder.count(t) for t in texts)
            logits = encoder.logits(model, texts).double().numpy()
            out[start : start + len(chunk)] = logits - logits.mean(axis=1, keepdims=True)
            if partial is not None:
                np.save(partial, out[: start + len(chunk)])
    return out, tokens / max(1, len(cases))


# ---------------------------------------------------------------------------- training
@dataclass
class TrainStats:
    examples_seen: int = 0
    steps: int = 0
    seconds: float = 0.0
    mean_tokens: float = 0.0
    alpha: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per log window
    base_losses: list[float] = field(default_factory=list)  # base-only loss, same windows


def train(
    model: Any,
    encoder: ChoiceLogits,
    rows: _Rows,
    lookup: dict[str, ItemInfo],
    config: ListwiseConfig,
) -> tuple[TrainStats, Any]:
    """Listwise CE over base + alpha * centred letter logits; returns stats and alpha."""
    import torch

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    alpha = torch.nn.Parameter(torch.tensor(float(config.alpha_init)))
    lora_params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": lora_params, "lr": config.lr}, {"params": [alpha], "lr": config.alpha_lr}],
        weight_decay=0.0,
    )
    stats = TrainStats()
    start = time.perf_counter()
    window: list[float] = []
    window_base: list[float] = []
    total_tokens = 0
    model.train()
    stop = False
    for _epoch in range(config.epochs):
        order = rng.permutation(len(rows.cases))
        for begin in range(0, len(order), config.batch_size):
            idx = order[begin : begin + config.batch_size]
            perms = [rng.permutation(20) for _ in idx]  # shown position p -> candidate perm[p]
            texts = [
                encoder.text(render_compact(rows.cases[i], perm, lookup, config))
                for i, perm in zip(idx, perms, strict=True)
            ]
            total_tokens += sum(encoder.count(t) for t in texts)
            letters = encoder.logits(model, texts)  # (b, 20) in shown order
            centred = letters - letters.mean(dim=1, keepdim=True)
            base = torch.tensor(
                np.stack([rows.base[i][perm] for i, perm in zip(idx, perms, strict=True)])
            )
            target = torch.tensor(
                [
                    int(np.where(perm == rows.target[i])[0][0])
                    for i, perm in zip(idx, perms, strict=True)
                ]
            )
            scores = base + alpha * centred.double()
            loss = torch.nn.functional.cross_entropy(scores, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            stats.steps += 1
            stats.examples_seen += len(idx)
            window.append(float(loss.detach()))
            window_base.append(float(torch.nn.functional.cross_entropy(base, target)))
            if stats.steps % config.log_every == 0:
                stats.losses.append(float(np.mean(window)))
                stats.base_losses.append(float(np.mean(window_base)))
                log.info(
                    "step %d, %d examples, %.0f s: loss %.4f (base alone %.4f), alpha %.4f",
                    stats.steps,
                    stats.examples_seen,
                    time.perf_counter() - start,
                    stats.losses[-1],
                    stats.base_losses[-1],
                    float(alpha.detach()),
                )
                window, window_base = [], []
            if config.max_train_seconds and time.perf_counter() - start > config.max_train_seconds:
                log.info("training stopped at the %.0f s budget", config.max_train_seconds)
                stop = True
                break
        if stop:
            break
    if window:
        stats.losses.append(float(np.mean(window)))
        stats.base_losses.append(float(np.mean(window_base)))
    stats.seconds = time.perf_counter() - start
    stats.mean_tokens = total_tokens / max(1, stats.examples_seen)
    stats.alpha = float(alpha.detach())
    return stats, alpha


# ---------------------------------------------------------------------------- selection + report
def choose_alpha(
    base: np.ndarray,
    centred: np.ndarray,
    target: np.ndarray,
    learned: float,
    grid: tuple[float, ...],
) -> tuple[float, list[dict[str, float]]]:
    """The alpha (multiples of ``learned``) with the lowest listwise cross-entropy."""
    trials = []
    for mult in grid:
        a = mult * learned
        fused = base + a * centred
        trials.append(
            {
                "multiple": mult,
                "alpha": a,
                "nll": listwise_nll(fused, target),
                "HR@1": float(hits_at_1(fused, target).mean()),
            }
        )
    best = min(trials, key=lambda t: (t["nll"], abs(t["multiple"] - 1.0)))
    return best["alpha"], trials


def _named_scores(
    config: ListwiseConfig,
    test_rows: _Rows,
    combiner: np.ndarray,
    test_logits: np.ndarray,
    alpha: float,
) -> list[tuple[str, np.ndarray]]:
    """The report's rows: each model's test scores, under the name the table gives it."""
    return [
        ("sasrec", test_rows.sasrec),
        ("combiner", combiner),
        (
            f"fusion base ({config.base}, fitted on {'+'.join(config.train_rowsets)})",
            test_rows.base,
        ),
        ("LLM letter logits alone", test_logits),
        (
            f"fused: base + {alpha:.4f} x LLM (alpha chosen on {config.select_rowset})",
            test_rows.base + alpha * test_logits,
        ),
    ]


def _wait_for(config: ListwiseConfig, rowsets: tuple[str, ...]) -> None:
    deadline = time.monotonic() + config.wait_for_features_s
    paths = [feature_path(Path(config.features_dir), r) for r in rowsets]
    while not all(p.is_file() for p in paths) and time.monotonic() < deadline:
        log.info("waiting for %s", [str(p) for p in paths if not p.is_file()])
        time.sleep(30)


def run_listwise(config: ListwiseConfig) -> dict[str, Any]:
    """Train, choose alpha on the select row set, score the test row set once; write
    out_dir/{adapter/, logits_<rowset>.npy, summary.json, r2rec.json, r2rec.md}."""
    import torch

    from recdata import load_dataset

    if not config.model_path or not config.features_dir or not config.out_dir:
        raise UserInputError("model_path, features_dir and out_dir are required")
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lookup = item_lookup(load_dataset(config.dataset).items, config)

    train_feats = [load_rowset(config.features_dir, r) for r in config.train_rowsets]
    fit_scores = np.concatenate([f.scores for f in train_feats])
    fit_target = np.concatenate([f.target_index for f in train_feats])
    base_combiner = ListwiseCombiner.fit_cv(fit_scores, fit_target, names=train_feats[0].names)
    merged = FeatureSet(
        dataset=config.dataset,
        rowset="+".join(config.train_rowsets),
        names=train_feats[0].names,
        cases=[c for f in train_feats for c in f.cases],
        scores=fit_scores,
    )
    train_rows = _rows(config, merged, base_combiner, config.max_train_rows)

    model, encoder = _load_model(config)
    stats, _alpha = train(model, encoder, train_rows, lookup, config)
    model.save_pretrained(str(out / "adapter"))
    (out / "train.json").write_text(json.dumps(asdict(stats), indent=2) + "\n")

    _wait_for(config, (config.select_rowset, config.test_rowset))
    select = load_rowset(config.features_dir, config.select_rowset)
    test = load_rowset(config.features_dir, config.test_rowset)
    # the yardstick combiner: fitted on all select (validation) cases, as reported alone
    yardstick = ListwiseCombiner.fit_cv(select.scores, select.target_index, names=select.names)
    select_rows = _rows(config, select, base_combiner, config.max_select_rows)
    test_rows = _rows(config, test, base_combiner, config.max_test_rows)

    start = time.perf_counter()
    select_logits, select_tokens = centred_logits(
        model, encoder, select_rows.cases, lookup, config, out / "partial_select.npy"
    )
    np.save(out / f"logits_{config.select_rowset}.npy", select_logits)
    test_logits, test_tokens = centred_logits(
        model, encoder, test_rows.cases, lookup, config, out / "partial_test.npy"
    )
    np.save(out / f"logits_{config.test_rowset}.npy", test_logits)
    score_seconds = time.perf_counter() - start

    chosen, trials = choose_alpha(
        select_rows.base, select_logits, select_rows.target, stats.alpha, config.alpha_grid
    )
    n_test = len(test_rows.cases)
    yard_test = yardstick.score(test.scores)[:n_test]
    named = _named_scores(config, test_rows, yard_test, test_logits, chosen)
    rows = report_rows(named, test_rows.target)
    summary = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "train": asdict(stats),
        "train_rows": len(train_rows.cases),
        "score_seconds": score_seconds,
        "prompt_tokens_select": select_tokens,
        "prompt_tokens_test": test_tokens,
        "learned_alpha": stats.alpha,
        "chosen_alpha": chosen,
        "alpha_trials_on_select": trials,
        "base_combiner": base_combiner.describe(),
        "yardstick_combiner": yardstick.describe(),
        "test_nll": {name: listwise_nll(s, test_rows.target) for name, s in named},
        "rows": rows,
    }
    write_report(out, summary, rows)
    log.info("done: %s", json.dumps(rows))
    return summary


def _saved_logits(out: Path, rowset: str) -> tuple[np.ndarray, bool]:
    full = out / f"logits_{rowset}.npy"
    if full.is_file():
        return np.load(full), False
    part = out / f"partial_{rowset}.npy"
    if part.is_file():
        return np.load(part), True
    raise UserInputError(f"{out}: no letter logits for {rowset} (run the training first)")


def report_saved(config: ListwiseConfig) -> dict[str, Any]:
    """The report of a run from what it saved (adapter training stats, letter logits),
    for a run stopped while scoring: valid/test rows are the first N whose logits exist,
    and every row of the table (SASRec, combiner, fused) is on those same N test cases."""
    from transformers import AutoTokenizer

    from recdata import load_dataset

    out = Path(config.out_dir)
    stats = json.loads((out / "train.json").read_text())
    train_feats = [load_rowset(config.features_dir, r) for r in config.train_rowsets]
    fit_scores = np.concatenate([f.scores for f in train_feats])
    fit_target = np.concatenate([f.target_index for f in train_feats])
    base_combiner = ListwiseCombiner.fit_cv(fit_scores, fit_target, names=train_feats[0].names)
    select = load_rowset(config.features_dir, config.select_rowset)
    test = load_rowset(config.features_dir, config.test_rowset)
    yardstick = ListwiseCombiner.fit_cv(select.scores, select.target_index, names=select.names)
    select_logits, select_partial = _saved_logits(out, config.select_rowset)
    test_logits, test_partial = _saved_logits(out, config.test_rowset)
    select_rows = _rows(config, select, base_combiner, len(select_logits))
    test_rows = _rows(config, test, base_combiner, len(test_logits))
    chosen, trials = choose_alpha(
        select_rows.base, select_logits, select_rows.target, stats["alpha"], config.alpha_grid
    )
    lookup = item_lookup(load_dataset(config.dataset).items, config)
    encoder = letter_reader(AutoTokenizer.from_pretrained(config.model_path))
    identity = np.arange(20)
    tokens = [
        encoder.count(encoder.text(render_compact(c, identity, lookup, config)))
        for c in test_rows.cases
    ]
    combiner = yardstick.score(test.scores)[: len(test_logits)]
    named = _named_scores(config, test_rows, combiner, test_logits, chosen)
    rows = report_rows(named, test_rows.target)
    summary = {
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "train": stats,
        "select_rows_scored": len(select_logits),
        "select_partial": select_partial,
        "test_rows_scored": len(test_logits),
        "test_partial": test_partial,
        "prompt_tokens_test_mean": float(np.mean(tokens)) if tokens else 0.0,
        "learned_alpha": stats["alpha"],
        "chosen_alpha": chosen,
        "alpha_trials_on_select": trials,
        "base_combiner": base_combiner.describe(),
        "yardstick_combiner": yardstick.describe(),
        "test_nll": {name: listwise_nll(s, test_rows.target) for name, s in named},
        "rows": rows,
    }
    write_report(out, summary, rows)
    return summary

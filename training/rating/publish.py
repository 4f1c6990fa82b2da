"""`r2rec model publish-rating RUN_DIR`: serve a rating-head run at POST /rate.

A rating-head run (`training.rating.head`: a LoRA adapter, its per-target predictions and
the blend chosen on valid) is promoted only if its blend's validation MAE is strictly
lower than both

- the best classical baseline's, on the same validation targets (the one it blends with),
- and the published rating model's, when that one was scored on the same targets;

``force`` skips both and is recorded. The published folder,
``$R2REC_HOME/models/rating/``, holds the base model with the adapter merged in (an
ordinary checkpoint: the in-process backend loads it, vLLM serves it as a second model),
the adapter itself (for vLLM's ``--lora-modules``), and ``rating-card.json``: what the
service blends with (the baseline's name and hyper-parameters, chosen on valid, refitted
by the service on the store's ratings), the blend weight, and the run's figures.

    card = publish_rating(Path("runs/rating-head-ml100k-grpo"))   # or force=True
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserInputError
from common.files import read_json, replace_dir, stable_json, staging_dir
from common.paths import published_rating_dir
from reasoning.rating_template import HEAD_READING, RATING_CARD


def valid_figures(run: Path) -> dict[str, Any]:
    """The run's valid targets (their digest) and the MAE of the head, its partner and the
    blend there, from ``predictions.json`` and the weight in ``summary.json``."""
    summary, predictions = read_json(run / "summary.json"), read_json(run / "predictions.json")
    if not summary or not predictions or "blend_weight" not in summary:
        raise UserInputError(f"{run} is not a finished rating-head run (summary, predictions)")
    partner, weight = str(summary["best_classical_on_valid"]), float(summary["blend_weight"])
    rows = predictions["valid"]
    truth = np.array([r["rating"] for r in rows])
    head, classical = np.array([r["head"] for r in rows]), np.array([r[partner] for r in rows])
    blend = (1 - weight) * classical + weight * head
    digest = hashlib.sha256(
        stable_json([[r["user_id"], r["item_id"], r["rating"]] for r in rows]).encode()
    ).hexdigest()
    return {
        "dataset": summary["config"]["dataset"],
        "valid_targets_sha256": digest,
        "valid_n": len(rows),
        "blend_with": partner,
        "blend_weight": weight,
        "valid_MAE": {
            "blend": float(np.mean(np.abs(blend - truth))),
            "head": float(np.mean(np.abs(head - truth))),
            partner: float(np.mean(np.abs(classical - truth))),
        },
        "test": summary.get("test"),
        "base_model": summary["config"].get("model_path"),
    }


def current_card() -> dict[str, Any] | None:
    """The published rating model's card, or None."""
    card = read_json(published_rating_dir() / RATING_CARD)
    return dict(card) if card else None


def gate(figures: dict[str, Any], old: dict[str, Any] | None) -> tuple[bool, str]:
    """(promote?, why): the blend must beat its partner and the published card on valid."""
    mae = figures["valid_MAE"]
    blend, partner = mae["blend"], mae[figures["blend_with"]]
    if not blend < partner:
        return False, (
            f"valid MAE {blend:.4f} does not beat {figures['blend_with']}'s {partner:.4f}"
        )
    if old is None:
        return True, f"first rating model; valid MAE {blend:.4f} beats {figures['blend_with']}"
    if old.get("valid_targets_sha256") != figures["valid_targets_sha256"]:
        return False, "the published rating model was scored on other valid targets; use --force"
    if not blend < float(old["valid_MAE"]["blend"]):
        return False, (
            f"valid MAE {blend:.4f} does not beat the published "
            f"{old['valid_MAE']['blend']:.4f} ({old['run']})"
        )
    return True, f"beats the published {old['valid_MAE']['blend']:.4f} ({old['run']})"


def publish_rating(run: Path, force: bool = False) -> dict[str, Any]:
    """Gate, merge and publish (see the module docstring); the decision as a dict with
    ``published`` and ``reason`` (and the card when published)."""
    run = run.resolve()
    if not (run / "adapter" / "adapter_config.json").is_file():
        raise UserInputError(f"{run} holds no rating-head adapter (adapter/adapter_config.json)")
    figures = valid_figures(run)
    old = current_card()
    promote, why = (True, "forced: the gate was skipped") if force else gate(figures, old)
    if not promote:
        return {"published": False, "reason": why, "run": str(run)}
    card = {
        "run": str(run),
        "reads": HEAD_READING,
        **figures,
        "blend_params": _partner_params(figures["dataset"], figures["blend_with"]),
        "forced": force,
        "previous": old["run"] if old else None,
        "published_unix": time.time(),
    }
    target = published_rating_dir()
    with staging_dir(target) as staging:
        _merge(run / "adapter", figures["base_model"], staging)
        shutil.copytree(run / "adapter", staging / "adapter")
        (staging / RATING_CARD).write_text(json.dumps(card, indent=2) + "\n")
        replace_dir(staging, target)
    return {"published": True, "reason": why, "run": str(run), "card": card}


def _partner_params(dataset: str, name: str) -> dict[str, Any]:
    """The partner's hyper-parameters chosen on the dataset's valid split (none: a mean)."""
    from evaluation.rating import tune_baselines
    from recdata import load_dataset

    tuned = tune_baselines(load_dataset(dataset))
    if name == "bias":
        return asdict(tuned.bias.config)
    return asdict(tuned.mf.config) if name == "mf" else {}


def _merge(adapter: Path, base: str | None, out: Path) -> None:
    """The base model with ``adapter`` merged in, saved (with its tokenizer) to ``out``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasoning.backends.model_folders import default_base_dir

    path = base or str(default_base_dir())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(path).save_pretrained(str(out))

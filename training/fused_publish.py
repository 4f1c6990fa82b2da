"""Publish a hidden-state head run, with its collaborative bundle, as the served ranker.

A ``r2rec train hidden-head`` run chose, on valid, a head on top of a collaborative base
(the combiner of its features, fitted on the training row sets) and saved both. A bundle
(``python -m baselines.bundle``) holds the collaborative models fitted on the log the
service serves. Publishing joins them into `reasoning.fused.FusedRanker`'s folder,
``$R2REC_HOME/models/fused``, which the service loads at start-up:

- the bundle's models, with the run's base weights (the base the head was fitted on);
- the run's head (``head-all.npz``: base of all five features; ``head-service.npz``: of
  the graph score and popularity only; ``head-content.npz`` and ``head-item-vector.npz``:
  of the five plus the content columns, ``items.npz``, of a run with ``item_layers``;
  ``head-llm-sasrec.npz``: of those plus the LLM-reading SASRec, ``llm_sasrec/``, fitted
  here on the bundle's log, of a run with ``llm_sasrec``);
- a manifest: dataset, base model, prompt shape, where each part came from, the run's
  valid cross-entropy of base and fused, and its test row;
- a model card, ``README.md``: the same in words, the test table, and (published by
  ``r2rec retrain``) the wall time of each stage of the job on the machine that ran it;
- for a head a vLLM pooling server can serve (unit-RMS states, last token), ``states/``:
  the base model cut at the head's layer with a unit final norm (`cut_for_states`), so
  vLLM returns per token exactly the states the head reads.

Gate: the head must lower the valid cross-entropy of its base (else the head learnt
nothing usable and the base would serve as well); ``force`` skips it.

    decision = publish_fused(Path(".r2rec/runs/hidden-mls"), Path(".r2rec/models/collab-mls"))
    decision["published"], decision["reason"]

Command line: ``r2rec model publish-fused RUN BUNDLE [--variant V] [--force]``, V one of
``best`` (the default: the variant with the lowest fused valid cross-entropy), ``all``,
``service``, ``content``, ``item-vector``, ``llm-sasrec``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserInputError
from common.files import replace_dir, staging_dir
from common.paths import models_dir, published_fused_dir
from reasoning.collaborative import FEATURE_NAMES, CollaborativeBundle
from reasoning.compact import HiddenHead, PromptShape
from reasoning.fused import EXPLAINER, STATES, FusedRanker
from reasoning.item_content import METADATA_NAMES, VECTOR_NAMES, ItemContent
from reasoning.llm_sasrec import NAME as LLM_SASREC
from recdata.schema import Dataset
from training.item_vectors import CACHE
from training.llm_sasrec import fit_served
from training.ranking_report import markdown

VARIANTS = {
    "all": "all features",
    "service": "service features",
    "content": "content features",
    "item-vector": "item-vector features",
    "llm-sasrec": "llm-sasrec features",
}


BEST = "best"  # the variant whose fused valid cross-entropy is lowest


def best_variant(summary: dict[str, Any]) -> str:
    """The label of the run's variant with the lowest fused valid cross-entropy."""
    variants = summary["variants"]
    return min(variants, key=lambda label: variants[label]["select_nll"]["fused"])


def base_weights(described: dict[str, Any]) -> tuple[np.ndarray, dict[str, float]]:
    """A run's base combiner weights: over FEATURE_NAMES (0 for a feature it did not
    use), and over the content columns it weighs (`reasoning.item_content`), by name."""
    weights = described["weights"]
    content_names = (*METADATA_NAMES, *VECTOR_NAMES, LLM_SASREC)
    unknown = set(weights) - set(FEATURE_NAMES) - set(content_names)
    if unknown:
        raise UserInputError(f"the run's base uses unknown features {sorted(unknown)}")
    collaborative = np.asarray([float(weights.get(name, 0.0)) for name in FEATURE_NAMES])
    return collaborative, {n: float(weights[n]) for n in content_names if n in weights}


def run_content(run: Path, summary: dict[str, Any], names: dict[str, float]) -> ItemContent:
    """The item content a run's base read: the catalogue's metadata, and the run's cached
    item vectors at its chosen layer when the base weighs the LLM similarities."""
    from recdata import load_dataset

    items = load_dataset(summary["config"]["dataset"]).items
    if not set(names) & set(VECTOR_NAMES):
        return ItemContent.from_items(items)
    layer = int(summary["items"]["layer"])
    cache = run / CACHE
    if not cache.is_file():
        raise UserInputError(f"{cache}: the run's item vectors are missing")
    return ItemContent.from_items(items, np.load(cache)[f"l{layer}"], layer)


def bundle_log(bundle: CollaborativeBundle, data: Dataset | None) -> tuple[Dataset, pd.DataFrame]:
    """The dataset and log the bundle was fitted on: ``data``'s interactions when given
    (a retrain job's snapshot), else the dataset's, cut as the bundle's ``fit_log`` says
    (``all`` or the dataset's name: every interaction; a row set: its training log)."""
    from baselines.features import rowset_training_log
    from recdata import load_dataset

    if data is not None:
        return data, data.interactions
    dataset = load_dataset(str(bundle.meta["dataset"]))
    fit_log = str(bundle.meta.get("fit_log", "all"))
    if fit_log in ("all", dataset.name):  # a retrain job names its snapshot by the dataset
        return dataset, dataset.interactions
    try:
        return dataset, rowset_training_log(dataset, fit_log)
    except ValueError as err:
        raise UserInputError(f"the bundle's fit log {fit_log!r} cannot be rebuilt") from err


def publish_fused(
    run: Path,
    bundle_dir: Path,
    variant: str = BEST,
    force: bool = False,
    out: Path | None = None,
    data: Dataset | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Gate and publish (see the module docstring) to ``out`` (default: the served
    folder); the decision as a dict with ``published`` and ``reason`` (and the manifest
    when published). An ``llm-sasrec`` base's model is fitted here on the bundle's log
    (``data``'s interactions when given). ``stage_seconds``: the retrain job's finished
    stages and their wall times, for the manifest and the model card."""
    if variant != BEST and variant not in VARIANTS:
        choices = sorted([*VARIANTS, BEST])
        raise UserInputError(f"variant must be one of {choices}, got {variant!r}")
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise UserInputError(f"{run} holds no hidden-head run (summary.json)")
    summary = json.loads(summary_path.read_text())
    label = best_variant(summary) if variant == BEST else VARIANTS[variant]
    if label not in summary["variants"]:
        raise UserInputError(f"{run}: the run has no {label!r} variant (item_layers unset?)")
    chosen = summary["variants"][label]
    config = summary["config"]
    try:
        bundle = CollaborativeBundle.load(bundle_dir)
    except (OSError, ValueError) as err:
        raise UserInputError(f"{bundle_dir}: not a collaborative bundle ({err})") from err
    if bundle.meta.get("dataset") != config["dataset"]:
        raise UserInputError(
            f"the bundle is for {bundle.meta.get('dataset')!r}, the run for {config['dataset']!r}"
        )
    nll = chosen["select_nll"]
    if not force and not nll["fused"] < nll["base"]:
        why = f"valid cross-entropy {nll['fused']:.4f} does not beat the base's {nll['base']:.4f}"
        return {"published": False, "reason": why, "run": str(run)}
    bundle.weights, named = base_weights(chosen["base"])
    content = run_content(run, summary, named) if named else None
    content_weights, llm_sasrec = None, None
    if LLM_SASREC in named and content is not None:
        dataset, log = bundle_log(bundle, data)
        llm_sasrec = fit_served(log, dataset.items, content, summary["items"]["llm_sasrec"])
    if content is not None:
        names = content.names if llm_sasrec is None else (*content.names, LLM_SASREC)
        content_weights = np.asarray([named.get(n, 0.0) for n in names])
    head = HiddenHead.load(run / chosen["head_file"])
    manifest = {
        "dataset": config["dataset"],
        "base_model": Path(config["model_path"]).name,
        "run": str(run.resolve()),
        "bundle": str(bundle_dir.resolve()),
        "variant": label,
        "select_nll": nll,
        "test_rows": [summary["rows"][i] for i in chosen["test_rows"]],
        "forced": force,
        "published_unix": time.time(),
        "stage_seconds": stage_seconds or {},
        "cpu_count": os.cpu_count(),
    }
    shape = PromptShape(config["history_items"], config["title_chars"], config["genres"])
    target = out or published_fused_dir()
    with staging_dir(target) as staging:
        FusedRanker(
            bundle,
            head,
            shape,
            manifest,
            content=content,
            content_weights=content_weights,
            llm_sasrec=llm_sasrec,
        ).save(staging)
        if head.reads_unit_rms_tokens:
            cut_for_states(base_model_dir(config["model_path"]), head.layer, staging / STATES)
        (staging / "README.md").write_text(model_card(manifest))
        replace_dir(staging, target)
    why = "forced" if force else f"valid cross-entropy {nll['base']:.4f} -> {nll['fused']:.4f}"
    return {"published": True, "reason": why, "run": str(run), "manifest": manifest}


def model_card(manifest: dict[str, Any]) -> str:
    """The published folder's README.md, from its manifest: what ranks, how it was chosen,
    its test rows and, when a retrain job published it, each stage's wall time."""
    nll = manifest["select_nll"]
    lines = [
        f"# Fused ranker: {manifest['dataset']}",
        "",
        f"The collaborative base (variant `{manifest['variant']}`) plus a linear head on the "
        f"frozen `{manifest['base_model']}`'s states, chosen on the valid cases: valid "
        f"cross-entropy {nll['base']:.4f} (base) -> {nll['fused']:.4f} (fused)"
        + (", published with --force." if manifest["forced"] else "."),
        "",
        f"- run: `{manifest['run']}`",
        f"- collaborative models: `{manifest['bundle']}`",
        "",
        "## Test, scored once",
        "",
        markdown(manifest["test_rows"]).rstrip(),
    ]
    stages = manifest.get("stage_seconds") or {}
    if stages:
        total = sum(stages.values())
        lines += [
            "",
            f"## Training wall time ({manifest.get('cpu_count')} CPU cores)",
            "",
            "| stage | minutes |",
            "|---|---:|",
            *(f"| {stage} | {seconds / 60:.1f} |" for stage, seconds in stages.items()),
            f"| **total before publish** | **{total / 60:.1f}** |",
        ]
    return "\n".join(lines) + "\n"


def base_model_dir(model_path: str) -> Path:
    """The run's base model folder, else the prepared one of the same name (a job's run may
    have read it from a scratch home that is gone)."""
    folder = Path(model_path)
    if not (folder / "config.json").is_file():
        folder = models_dir() / folder.name
    if not (folder / "config.json").is_file():
        raise UserInputError(
            f"the base model {model_path} is missing: run `r2rec model prepare-base`"
        )
    return folder


def cut_for_states(model_dir: Path, layer: int, out: Path) -> Path:
    """Save ``model_dir``'s first ``layer`` decoder layers, its embeddings and a final norm
    of unit weight (plus the tokenizer) to ``out``. Its per-token output is then the
    layer's hidden state scaled to unit RMS (`reasoning.compact.unit_rms`), which vLLM
    returns as a pooling model (``--runner pooling --convert embed``, tokenwise ``ALL``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    blocks = model.model.layers
    if not 0 < layer <= len(blocks):
        raise UserInputError(f"layer {layer} is outside the model's {len(blocks)} layers")
    model.model.layers = blocks[:layer]
    model.config.num_hidden_layers = layer
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:layer]
    with torch.no_grad():
        model.model.norm.weight.fill_(1.0)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def publish_explainer(run: Path, fused_dir: Path | None = None) -> Path:
    """Copy an explainer run's merged model (``r2rec train explainer``) into a fused
    ranker's folder (default: the served one) as ``explainer/``; returns that folder.
    The service writes explain=true's thoughts with it when ``R2REC_THOUGHTS=model``."""
    import shutil

    model = run / "model"
    if not (model / "config.json").is_file():
        raise UserInputError(f"{run} holds no trained explainer (model/config.json)")
    folder = fused_dir or published_fused_dir()
    if not (folder / "manifest.json").is_file():
        raise UserInputError(f"{folder} holds no fused ranker: publish one first")
    target = folder / EXPLAINER
    with staging_dir(target) as staging:
        shutil.copytree(model, staging, dirs_exist_ok=True)
        summary = run / "explainer.json"
        if summary.is_file():
            shutil.copy2(summary, staging / "explainer.json")
        replace_dir(staging, target)
    return target

"""Valid-only probe (ML-100K): does a larger LLM's reading of the items help the fused base?

The shipped recipe reads every item (``"Title (1995): Drama, War"``) with SmolLM2-135M
(`training.item_vectors`). A model four times larger may know more about the films. This
probe reads the catalogue with another causal LM loaded from a GGUF file (for example
Qwen2.5-0.5B-Instruct, ENVIRONMENT.md), at several layers, then for each layer prints the
valid NLL and HR@1 of the base combiner over

* ``collab + meta``: the control, no LLM;
* ``collab + meta + vec``: the 5 collaborative columns, the metadata columns and the LLM
  similarities computed from that reader's vectors;
* with ``--sasrec LAYER``: also the LLM-reading SASRec fitted on that reader's vectors at
  LAYER (`training.llm_sasrec.llm_sasrec_columns`: epochs by early stopping on valid, each
  train<k> row set fitted on its own log), against the same with the SmolLM2 readings of
  the session-18 run.

Never reads test targets. Outputs go to ``OUT/<gguf stem>/`` (vectors, columns).

Run: nice .venv/bin/python scripts/probe_reader_model.py --gguf /tmp/qwen/qwen.gguf \
        --layers 6,12,18 [--sasrec 12]
"""

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.combiner import ListwiseCombiner, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from reasoning.item_content import ItemContent
from recdata import load_dataset
from training.hidden_head import HiddenHeadConfig
from training.item_vectors import catalogue_texts, read_items
from training.llm_sasrec import llm_sasrec_columns

F = Path(".r2rec/features/ml-100k")
SMOL = Path(".r2rec/runs/hidden-ml100k-items")
OUT = Path(".r2rec/runs/reader-probe-ml100k")
TRAIN = ("train3", "train4", "train5")


def read_catalogue(gguf: Path, layers: tuple[int, ...], items) -> dict[int, np.ndarray]:
    path = OUT / gguf.stem / "item_vectors.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        saved = np.load(path)
        if all(f"l{k}" in saved.files for k in layers):
            return {k: saved[f"l{k}"] for k in layers}
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    logging.info("reader: %s, %d layers", type(model).__name__, model.config.num_hidden_layers)
    vectors = read_items(model, tokenizer, catalogue_texts(items), layers, batch_size=32)
    arrays: dict[str, Any] = {f"l{k}": v for k, v in vectors.items()}
    np.savez(path, **arrays)
    return vectors


def base_nll(cols: dict[str, list[np.ndarray]], targets: dict[str, np.ndarray]) -> str:
    """Valid NLL / HR@1 of the combiner fitted on the train<k> rows over these columns."""
    xt = np.concatenate([np.stack([c[i] for c in cols.values()], 2) for i in range(3)])
    xv = np.stack([c[3] for c in cols.values()], 2)
    model = ListwiseCombiner.fit_cv(xt, np.concatenate([targets[n] for n in TRAIN]))
    s = model.score(xv)
    v = targets["valid"]
    return f"valid NLL {listwise_nll(s, v):.4f} HR@1 {hits_at_1(s, v).mean():.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--layers", default="6,12,18")
    parser.add_argument("--sasrec", type=int, help="also fit the LLM-reading SASRec here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    data = load_dataset("ml-100k")
    layers = tuple(int(k) for k in args.layers.split(","))
    vectors = read_catalogue(args.gguf, layers, data.items)
    names = (*TRAIN, "valid")
    feats = {n: FeatureSet.load(F / f"{n}.npz") for n in names}
    targets = {n: f.target_index for n, f in feats.items()}
    collab = {f"c{i}": [feats[n].scores[:, :, i] for n in names] for i in range(5)}

    def content_columns(content: ItemContent) -> dict[str, list[np.ndarray]]:
        per = [
            np.stack([content.features(c.history, c.candidates) for c in feats[n].cases])
            for n in names
        ]
        return {f"x{j}": [p[:, :, j] for p in per] for j in range(per[0].shape[2])}

    metadata = ItemContent.from_items(data.items)
    print("metadata only (no LLM):", base_nll(collab | content_columns(metadata), targets))
    smol = ItemContent.from_items(data.items, np.load(SMOL / "item_vectors.npz")["l10"], 10)
    print("SmolLM2-135M l10:", base_nll(collab | content_columns(smol), targets))
    smol_llm = {"llm": [np.load(SMOL / f"llm_sasrec_l10_{n}.npy") for n in names]}
    print("  + its llm-sasrec:", base_nll(collab | content_columns(smol) | smol_llm, targets))
    for k in layers:
        content = ItemContent.from_items(data.items, vectors[k], k)
        print(f"reader l{k}:", base_nll(collab | content_columns(content), targets))
    if args.sasrec is None:
        return
    k = args.sasrec
    content = ItemContent.from_items(data.items, vectors[k], k)
    config = replace(
        HiddenHeadConfig(),
        out_dir=str(OUT / args.gguf.stem),
        sasrec_results="results/ml-100k/baselines.json",
        threads=1,
    )
    cases = {n: feats[n].cases for n in names}
    columns, info = llm_sasrec_columns(config, data, content, cases)
    print("reader llm-sasrec:", info)
    mine = {"llm": [columns[n] for n in names]}
    print(
        f"reader l{k} + its llm-sasrec:",
        base_nll(collab | content_columns(content) | mine, targets),
    )
    print(
        f"smol content + reader l{k} llm-sasrec:",
        base_nll(collab | content_columns(smol) | mine, targets),
    )


if __name__ == "__main__":
    main()

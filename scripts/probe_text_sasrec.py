"""Valid-only probe (ML-100K, or ``--dataset ml-latest-small``): a SASRec whose item
embeddings include the LLM's reading of each item, as one more column of the fused base.

Variants (``--variant``):

* ``hybrid``: E[i] = id_emb[i] + P r_i (r_i: the frozen SmolLM2's unit reading of item i
  at the run's item layer, P: a learned 576 -> 64 projection);
* ``text``: E[i] = P r_i only (no item ids: every item, rare or not, is placed by what
  the LLM reads in its title, year and genres);
* ``ids``/``ids2``: the controls, a second (third) plain SASRec, seed 1 (2), by the same
  recipe: does another sequential column help by itself, without the LLM's readings?

``--test`` also fits on the test row set's log (for the one test scoring of the rows of
``results/ml-100k/r2rec.md``, session 18).

For each variant: the epoch count is chosen by early stopping on the valid cases (the
way ``baselines.sasrec`` tunes), then the same recipe is fitted on each train<k> row
set's own training log (nothing at or after the row's target), and the scores go to
``OUT/<variant>/<rowset>.npy``. Prints the variant's own valid HR@1 / NDCG@10 and the
valid NLL of base C (5 collaborative + 6 content columns) with and without the new
column. Never reads test targets.

Run: nice .venv/bin/python scripts/probe_text_sasrec.py --variant hybrid [--dataset D]
"""

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

import baselines.sasrec as sasrec_module
from baselines.combiner import ListwiseCombiner, hits_at_1, listwise_nll
from baselines.features import FeatureSet, rowset_training_log
from baselines.sasrec import SASRecConfig, SASRecGrid, SASRecRanker
from reasoning.item_content import ItemContent, unit_rows
from reasoning.sasrec_net import SASRecNet
from recdata import load_dataset

SHORT = {"ml-100k": "ml100k", "ml-latest-small": "mls"}  # run folder names per dataset
LAYER = 10
TRAIN = ("train3", "train4", "train5")


class ItemEmbedding(nn.Module):
    """id embedding (hybrid) and/or a learned projection of the fixed item readings."""

    def __init__(self, ids: nn.Embedding, readings: torch.Tensor, use_ids: bool) -> None:
        super().__init__()
        self.ids = ids if use_ids else None
        self.weight = ids.weight  # dtype probe in SASRecNet.forward
        self.register_buffer("readings", readings)
        self.proj = nn.Linear(readings.shape[1], ids.embedding_dim, bias=False)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.readings[index])  # type: ignore[index]
        return out if self.ids is None else out + self.ids(index)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=("hybrid", "text", "ids", "ids2"), required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test", action="store_true", help="also fit on the test log")
    parser.add_argument("--dataset", choices=sorted(SHORT), default="ml-100k")
    args = parser.parse_args()
    features = Path(f".r2rec/features/{args.dataset}")
    run = Path(f".r2rec/runs/hidden-{SHORT[args.dataset]}-items")
    out_root = Path(f".r2rec/runs/text-sasrec-{SHORT[args.dataset]}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    vectors = np.load(run / "item_vectors.npz")[f"l{LAYER}"]
    content = ItemContent.from_items(data.items, vectors, LAYER)
    unit = unit_rows(vectors).astype(np.float32)

    def factory(n_items: int, *rest: object) -> SASRecNet:
        net = SASRecNet(n_items, *rest)  # type: ignore[arg-type]
        if args.variant.startswith("ids"):
            return net
        catalog = current["catalog"]
        readings = np.zeros((n_items + 1, unit.shape[1]), np.float32)
        for i, item in enumerate(catalog.item_ids):
            if item in content.index:
                readings[i + 1] = unit[content.index[item]]
        net.item_emb = ItemEmbedding(  # type: ignore[assignment]
            net.item_emb, torch.from_numpy(readings), args.variant == "hybrid"
        )
        return net

    current: dict = {}
    real_data = sasrec_module._Data

    class Data(real_data):  # type: ignore[misc, valid-type]
        def __init__(self, train, items):
            super().__init__(train, items)
            current["catalog"] = self.catalog

    sasrec_module._Data = Data  # type: ignore[misc]
    sasrec_module.SASRecNet = factory  # type: ignore[assignment, misc]

    out = out_root / args.variant
    out.mkdir(parents=True, exist_ok=True)
    base = SASRecConfig(
        max_len=100, dropout=0.2, epochs=200, seed={"ids": 1, "ids2": 2}.get(args.variant, 0)
    )
    valid = FeatureSet.load(features / "valid.npz")
    if not (out / "valid.npy").exists():
        ranker = SASRecRanker(base, SASRecGrid(dropout=(0.2,), max_len=(100,)))
        chosen = ranker.tune(rowset_training_log(data, "valid"), valid.cases, data.items)
        (out / "epochs.txt").write_text(str(chosen.epochs))
        np.save(out / "valid.npy", ranker.rank(valid.cases).scores)  # tune() keeps its net
    epochs = int((out / "epochs.txt").read_text())
    for name in (*TRAIN, "test") if args.test else TRAIN:
        if (out / f"{name}.npy").exists():
            continue
        feats = FeatureSet.load(features / f"{name}.npz")
        ranker = SASRecRanker(replace(base, epochs=epochs))
        ranker.fit(rowset_training_log(data, name), data.items)
        np.save(out / f"{name}.npy", ranker.rank(feats.cases).scores)
        logging.info("%s fitted (%d epochs)", name, epochs)

    train = [FeatureSet.load(features / f"{n}.npz") for n in TRAIN]
    target = np.concatenate([f.target_index for f in train])

    def columns(feats: FeatureSet) -> np.ndarray:
        extra = np.stack([content.features(c.history, c.candidates) for c in feats.cases])
        new = np.load(out / f"{feats.rowset}.npy")[:, :, None]
        return np.concatenate([feats.scores, extra, new], axis=2)

    xt, xv = np.concatenate([columns(f) for f in train]), columns(valid)
    v_new = xv[:, :, -1]
    print(
        f"{args.variant} alone ({epochs} epochs): valid HR@1 "
        f"{hits_at_1(v_new, valid.target_index).mean():.4f}; SASRec "
        f"{hits_at_1(xv[:, :, 0], valid.target_index).mean():.4f}"
    )
    for label, keep in (
        ("base C", list(range(11))),
        ("base C + text-SASRec", list(range(12))),
        ("collaborative + text-SASRec", [0, 1, 2, 3, 4, 11]),
        ("collaborative", list(range(5))),
    ):
        model = ListwiseCombiner.fit_cv(xt[:, :, keep], target)
        s = model.score(xv[:, :, keep])
        print(
            f"{label:32s} valid NLL {listwise_nll(s, valid.target_index):.4f} "
            f"HR@1 {hits_at_1(s, valid.target_index).mean():.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""ML-100K (or ``--dataset ml-latest-small``): does the LLM-reading SASRec add more than
another plain SASRec would?

Base combiners (listwise, L2 by 5-fold CV, fitted on train3-5) over column sets drawn
from: the 5 collaborative features, the metadata and LLM-similarity columns of
`reasoning.item_content` (layer 10), the LLM-reading SASRec of the session-18 run
(``.r2rec/runs/hidden-ml100k-items/llm_sasrec_l10_<rowset>.npy``), and the probe columns of
``scripts/probe_text_sasrec.py`` (``ids``/``ids2``: plain SASRecs of seeds 1/2, ``text``:
readings only, no ids). Prints valid NLL and HR@1 for every set. ``--test A,B`` then
scores the named sets on test once (with SASRec and the collaborative combiner fitted on
valid, as in `training.hidden_head`), and McNemar p of each against the first named set.

Run: python scripts/report_sequence_columns.py [--dataset D] [--test SET,SET [--json FILE]]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from probe_text_sasrec import SHORT  # run folder names per dataset (scripts/ is on sys.path)

from baselines.combiner import ListwiseCombiner, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from evaluation.significance import mcnemar_exact
from reasoning.item_content import ItemContent
from recdata import load_dataset
from training.ranking_report import markdown, report_rows

TRAIN = ("train3", "train4", "train5")
GROUPS = {
    "collab": ["c0", "c1", "c2", "c3", "c4"],
    "meta": ["m0", "m1", "m2"],
    "vec": ["v0", "v1", "v2"],
    "ids": ["ids"],
    "ids2": ["ids2"],
    "llm-sasrec": ["llm"],
    "text": ["text"],
}
SETS = (
    "collab",
    "collab + meta",
    "collab + meta + vec",
    "collab + meta + vec + llm-sasrec",
    "collab + ids",
    "collab + ids + meta",
    "collab + ids + ids2 + meta",
    "collab + ids + meta + vec",
    "collab + ids + meta + vec + llm-sasrec",
    "collab + ids + ids2 + meta + vec",
    "collab + ids + ids2 + meta + vec + llm-sasrec",
    "collab + ids + meta + vec + text",
    "collab + ids + meta + vec + llm-sasrec + text",
)


def keep(label: str) -> list[str]:
    return [column for part in label.split(" + ") for column in GROUPS[part]]


def columns(
    name: str, content: ItemContent, dataset: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    short = SHORT[dataset]
    feats = FeatureSet.load(Path(f".r2rec/features/{dataset}/{name}.npz"))
    out = {f"c{i}": feats.scores[:, :, i] for i in range(5)}
    extra = np.stack([content.features(c.history, c.candidates) for c in feats.cases])
    out.update({f"m{i}": extra[:, :, i] for i in range(3)})
    out.update({f"v{i}": extra[:, :, 3 + i] for i in range(3)})
    llm = Path(f".r2rec/runs/hidden-{short}-items/llm_sasrec_l10_{name}.npy")
    if llm.is_file():
        out["llm"] = np.load(llm)
    for probe in ("ids", "ids2", "text"):
        path = Path(f".r2rec/runs/text-sasrec-{short}/{probe}/{name}.npy")
        if path.is_file():
            out[probe] = np.load(path)
    return out, feats.target_index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--test", default="", help="comma-separated set names to score on test")
    parser.add_argument("--json", type=Path, help="also write the test rows here")
    parser.add_argument("--dataset", choices=sorted(SHORT), default="ml-100k")
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    vectors = np.load(f".r2rec/runs/hidden-{SHORT[args.dataset]}-items/item_vectors.npz")["l10"]
    content = ItemContent.from_items(data.items, vectors, 10)
    train = [columns(n, content, args.dataset) for n in TRAIN]
    valid, v_target = columns("valid", content, args.dataset)
    t_target = np.concatenate([t[1] for t in train])
    fitted = {}
    for label in SETS:
        cols = keep(label)
        if not all(all(k in t[0] for t in train) and k in valid for k in cols):
            print(f"{label:50s} (columns missing)")
            continue
        xt = np.concatenate([np.stack([t[0][k] for k in cols], 2) for t in train])
        model = ListwiseCombiner.fit_cv(xt, t_target)
        s = model.score(np.stack([valid[k] for k in cols], 2))
        fitted[label] = model
        print(
            f"{label:50s} valid NLL {listwise_nll(s, v_target):.4f} "
            f"HR@1 {hits_at_1(s, v_target).mean():.4f}"
        )
    if not args.test:
        return
    chosen = args.test.split(",")
    test, target = columns("test", content, args.dataset)
    yardstick = ListwiseCombiner.fit_cv(np.stack([valid[k] for k in GROUPS["collab"]], 2), v_target)
    named = [
        ("sasrec", test["c0"]),
        ("combiner", yardstick.score(np.stack([test[k] for k in GROUPS["collab"]], 2))),
    ]
    for label in chosen:
        named.append(
            (f"base: {label}", fitted[label].score(np.stack([test[k] for k in keep(label)], 2)))
        )
    rows = report_rows(named, target)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    first = hits_at_1(named[2][1], target)
    for name, scores in named[3:]:
        result = mcnemar_exact(hits_at_1(scores, target), first)
        print(f"{name} vs {named[2][0]}: {result}")


if __name__ == "__main__":
    main()

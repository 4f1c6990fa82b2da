"""Valid-only probes (ML-100K) around the content columns of `reasoning.item_content`.

On top of base C (the five collaborative scores + the six content columns at the chosen
item layer, as ``r2rec train hidden-head`` with ``item_layers`` fits it on train3-5):

1. ablations: the collaborative base plus genre overlap only, plus the two year columns
   only;
2. the LLM similarities over the user's *whole* history before the target (mean, max, a
   0.9-per-step recency-weighted mean, the mean of the 5 closest) instead of the 10 newest;
3. a learned bilinear term e_j^T W m (e: PCA-k item readings, m: the history's mean),
   fitted listwise on top of base C for k in 8/16/24 and four L2 strengths.

4. other readings of the items (base over the 5 collaborative + 6 content columns, as
   the run's layer choice): the text prefixed "Movie: ", or inside the chat template
   ("Describe the film ..."), pooled by the tokens' mean or at the last token, layers
   10/20/30 (``--texts``; reads the 1,682 items 2 x, about 4 min on 2 cores).

Prints valid NLL and HR@1 per line; never touches test. Needs the run of
``results/ml-100k/r2rec.md`` (session 17).
Run: .venv/bin/python scripts/probe_item_similarity.py [--texts]
"""

import sys
from pathlib import Path

import numpy as np

from baselines.combiner import ListwiseCombiner, fit_linear_listwise, hits_at_1, listwise_nll
from baselines.features import FeatureSet
from evaluation.protocol import ProtocolConfig, positions
from reasoning.item_content import ItemContent, unit_rows
from recdata import load_dataset
from training.item_vectors import catalogue_texts

F = Path(".r2rec/features/ml-100k")
RUN = Path(".r2rec/runs/hidden-ml100k-items")
TRAIN = {"train3": 3, "train4": 4, "train5": 5}
LAYER = 10  # the item layer the run chose on valid
MODEL = ".r2rec/models/smollm2-135m-instruct"


def report(label: str, scores: np.ndarray, target: np.ndarray) -> None:
    nll, hr = listwise_nll(scores, target), float(hits_at_1(scores, target).mean())
    print(f"{label:52s} valid NLL {nll:.4f}  HR@1 {hr:.4f}", flush=True)


def main() -> None:
    data = load_dataset("ml-100k")
    vectors = np.load(RUN / "item_vectors.npz")[f"l{LAYER}"]
    content = ItemContent.from_items(data.items, vectors, LAYER)
    train = [FeatureSet.load(F / f"{n}.npz") for n in TRAIN]
    valid = FeatureSet.load(F / "valid.npz")
    t_target = np.concatenate([f.target_index for f in train])

    def columns(feats: FeatureSet) -> np.ndarray:
        extra = np.stack([content.features(c.history, c.candidates) for c in feats.cases])
        return np.concatenate([feats.scores, extra], axis=2)

    t_all, v_all = np.concatenate([columns(f) for f in train]), columns(valid)

    def fit(keep: list[int], t_extra: np.ndarray | None = None, v_extra: np.ndarray | None = None):
        xt, xv = t_all[:, :, keep], v_all[:, :, keep]
        if t_extra is not None and v_extra is not None:
            xt, xv = np.concatenate([xt, t_extra], 2), np.concatenate([xv, v_extra], 2)
        model = ListwiseCombiner.fit_cv(xt, t_target)
        return model.score(xt), model.score(xv)

    collaborative = list(range(5))
    report("collaborative (base A)", fit(collaborative)[1], valid.target_index)
    report("+ genre overlap", fit([*collaborative, 5])[1], valid.target_index)
    report("+ year gap, year", fit([*collaborative, 6, 7])[1], valid.target_index)
    base_t, base_v = fit(list(range(11)))
    report("base C (+ all six content columns)", base_v, valid.target_index)

    # 2. similarities over the whole history before the target
    unit = unit_rows(vectors).astype(np.float64)
    index = content.index
    frame = positions(data, ProtocolConfig().min_interactions)
    seqs = {str(u): r["item_id"].astype(str).tolist() for u, r in frame.groupby("user_id")}

    def whole(feats: FeatureSet, offset: int) -> np.ndarray:
        out = np.zeros((len(feats.cases), 20, 4))
        for i, case in enumerate(feats.cases):
            items = seqs[case.user_id]
            past = items[: len(items) - offset]
            assert tuple(past[-10:]) == case.history
            h = unit[[index[x] for x in past]]
            c = unit[[index[x] for x in case.candidates]]
            mean = h.mean(0) / np.linalg.norm(h.mean(0))
            decay = 0.9 ** np.arange(len(past))[::-1]
            recent = (h * decay[:, None]).sum(0)
            sims = c @ h.T
            out[i, :, 0], out[i, :, 1] = c @ mean, sims.max(1)
            out[i, :, 2] = c @ (recent / np.linalg.norm(recent))
            out[i, :, 3] = np.sort(sims, axis=1)[:, -5:].mean(1)
        return out

    t_whole = np.concatenate([whole(f, k) for f, k in zip(train, TRAIN.values(), strict=True)])
    report(
        "base C + whole-history similarities",
        fit(list(range(11)), t_whole, whole(valid, 2))[1],
        valid.target_index,
    )

    # 3. a learned bilinear term on top of base C
    for k in (8, 16, 24):
        _, _, vt = np.linalg.svd(unit - unit.mean(0), full_matrices=False)
        proj = unit @ vt[:k].T
        proj /= proj.std()

        def design(feats: FeatureSet, proj: np.ndarray = proj, k: int = k) -> np.ndarray:
            x = np.zeros((len(feats.cases), 20, k * k))
            for i, case in enumerate(feats.cases):
                m = proj[[index[h] for h in case.history]].mean(0)
                c = proj[[index[x] for x in case.candidates]]
                x[i] = (c[:, :, None] * m[None, None, :]).reshape(20, -1)
            return (x - x.mean(1, keepdims=True)) / np.sqrt(k)

        xt, xv = np.concatenate([design(f) for f in train]), design(valid)
        for l2 in (0.01, 0.1, 1.0, 10.0):
            w = fit_linear_listwise(xt, t_target, l2, offset=base_t)
            report(f"base C + bilinear k={k}, L2 {l2:g}", base_v + xv @ w, valid.target_index)


def reread(texts: list[str]) -> dict[str, np.ndarray]:
    """{"mean 10": (n, d), "last 10": ..., ...} readings of ``texts`` at layers 10/20/30."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MODEL)
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(texts), 64):
        batch = tok(
            [texts[i] for i in order[start : start + 64]], return_tensors="pt", padding=True
        )
        with torch.no_grad():
            hidden = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        last = batch["attention_mask"].sum(1) - 1
        for k in (10, 20, 30):
            mean = (hidden[k] * mask).sum(1) / mask.sum(1)
            parts.setdefault(f"mean {k}", []).append(mean.numpy())
            parts.setdefault(f"last {k}", []).append(
                hidden[k][torch.arange(len(last)), last].numpy()
            )
    back = np.argsort(np.asarray(order))
    return {name: np.concatenate(v)[back] for name, v in parts.items()}


def texts_probe() -> None:
    from transformers import AutoTokenizer

    data = load_dataset("ml-100k")
    train = [FeatureSet.load(F / f"{n}.npz") for n in TRAIN]
    valid = FeatureSet.load(F / "valid.npz")
    t_target = np.concatenate([f.target_index for f in train])
    texts = catalogue_texts(data.items)
    tok = AutoTokenizer.from_pretrained(MODEL)
    chat = [
        str(
            tok.apply_chat_template(
                [{"role": "user", "content": f"Describe the film {t}."}], tokenize=False
            )
        )
        for t in texts
    ]
    for label, variant in (("movie prefix", [f"Movie: {t}" for t in texts]), ("chat", chat)):
        for name, vectors in reread(variant).items():
            content = ItemContent.from_items(data.items, vectors, 0)

            def columns(feats: FeatureSet, content: ItemContent = content) -> np.ndarray:
                extra = np.stack([content.features(c.history, c.candidates) for c in feats.cases])
                return np.concatenate([feats.scores, extra], axis=2)

            xt = np.concatenate([columns(f) for f in train])
            model = ListwiseCombiner.fit_cv(xt, t_target)
            report(f"{label}, {name}", model.score(columns(valid)), valid.target_index)


if __name__ == "__main__":
    if "--texts" in sys.argv:
        texts_probe()
    else:
        main()

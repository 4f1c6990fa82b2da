"""The LLM-reading SASRec: a sequential model whose item embeddings read the LLM's items.

Each item's embedding is its id embedding plus a learned projection of the frozen LLM's
reading of the item (`reasoning.item_content`: the mean state over ``"Title (1995):
Drama, War"`` at one layer, unit rows), `reasoning.sasrec_net.SASRecNet` with
``readings``. It is trained like SASRec (``baselines.sasrec`` with ``ItemReadings``),
on the same logs, and gives the fused base one more column, ``llm-sasrec``: the score of
each candidate after the user's sequence. Items rarely seen in the log are then placed
by what the LLM reads in their titles, years and genres as well as by their few
interactions.

Offline, ``training.llm_sasrec`` fits it per row set (nothing at or after a row's target);
for serving, ``r2rec model publish-fused`` fits it on the bundle's log and saves it in
the fused folder:

    part = LLMSASRec.load(folder / "llm_sasrec")
    column = part.scores(["50", "172"], ["1", "2", "3"])   # (3,), unknown items lowest
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasoning.collaborative import fill_unknown

NAME = "llm-sasrec"  # the column's name in a base's weights
FOLDER = "llm_sasrec"  # its sub-folder in a fused ranker's folder


@dataclass
class LLMSASRec:
    """A fitted LLM-reading SASRec and what scoring with it needs."""

    item_ids: tuple[str, ...]  # model index order (index 0 is item_ids[0])
    popularity: np.ndarray  # (items,) counts in the fit log: the score of an empty sequence
    net: Any  # reasoning.sasrec_net.SASRecNet with readings, in eval mode
    config: dict[str, Any]  # hidden, blocks, heads, max_len, epochs, layer

    def __post_init__(self) -> None:
        self.index = {item: n for n, item in enumerate(self.item_ids)}

    def scores(self, sequence: list[str], candidates: list[str]) -> np.ndarray:
        """(len(candidates),) scores after ``sequence`` (item ids, oldest first; unknown
        ones dropped); a candidate the model never saw scores below every known one."""
        from reasoning.sasrec_net import next_item_scores

        seq = np.asarray([self.index[i] for i in sequence if i in self.index], np.int64)
        cand = np.asarray([[self.index.get(c, -1) for c in candidates]], np.int64)
        raw = next_item_scores(self.net, [seq], cand, self.popularity)
        return np.asarray(fill_unknown(raw, cand)[0])

    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            folder / "arrays.npz",
            item_ids=np.asarray(self.item_ids, dtype=str),
            popularity=self.popularity,
        )
        torch.save(self.net.state_dict(), folder / "net.pt")
        (folder / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> LLMSASRec:
        import torch

        from reasoning.sasrec_net import SASRecNet

        config = json.loads((folder / "config.json").read_text())
        arrays = np.load(folder / "arrays.npz")
        state = torch.load(folder / "net.pt", weights_only=True)
        n_items = len(arrays["item_ids"])
        net = SASRecNet(
            n_items,
            config["hidden"],
            config["blocks"],
            config["heads"],
            0.0,
            config["max_len"],
            readings=torch.zeros_like(state["readings"]),
        )
        net.load_state_dict(state)
        return cls(tuple(arrays["item_ids"].tolist()), arrays["popularity"], net.eval(), config)

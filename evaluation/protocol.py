"""The one evaluation protocol every model is scored on (see README "Evaluation protocol").

Per user, interactions are sorted by (timestamp, item_id); users with at least 5 are
evaluated. Leave-one-out: the last interaction is the test target, the second-to-last the
validation target, the rest is training. A case's history is the up to 10 items just
before its target (at least 3). Its candidates are the target plus 19 items the user never
interacted with, drawn uniformly and shuffled by a generator seeded from (seed, split,
user id), so each user's case is independent of every other user's and reproducible bit
for bit.

Case files are written once per (dataset, seed) under ``$R2REC_HOME/cases/<dataset>/
seed<seed>/`` with a manifest of hashes, and every model is scored on those same files.

    >>> cases = load_cases(load_dataset("ml-100k"), "test")
    >>> train = training_log(load_dataset("ml-100k"), "test")
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from common.files import write_text_atomic
from common.paths import cases_dir
from evaluation.ranker import Case
from recdata.schema import Dataset

Split = Literal["valid", "test"]
SPLITS: tuple[Split, ...] = ("valid", "test")
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class ProtocolConfig:
    """The protocol's knobs; the defaults are the protocol."""

    seed: int = 0  # seeds candidate sampling and shuffling
    n_negatives: int = 19  # candidates = target + this many never-interacted items
    max_history: int = 10  # history = up to this many items before the target
    min_history: int = 3  # cases with a shorter history are not made
    min_interactions: int = 5  # users with fewer are not evaluated


def _offset_from_end(split: Split) -> int:
    return 1 if split == "test" else 2


def positions(dataset: Dataset, min_interactions: int = 5) -> pd.DataFrame:
    """Sorted interactions with each row's position counted from the user's last (0 = last)
    and whether the user is evaluated (has ``min_interactions`` or more)."""
    frame = dataset.sorted_interactions()
    per_user = frame.groupby("user_id", sort=False)["item_id"]
    count = per_user.transform("size").to_numpy()
    frame["from_end"] = count - 1 - per_user.cumcount().to_numpy()
    frame["evaluated"] = count >= min_interactions
    return frame


def training_log(dataset: Dataset, split: Split, min_interactions: int = 5) -> pd.DataFrame:
    """Interactions a model may train on when scored on ``split``: for evaluated users,
    everything strictly before their ``split`` target; for the others, everything."""
    return log_before(dataset, _offset_from_end(split), min_interactions)


def log_before(dataset: Dataset, offset: int, min_interactions: int = 5) -> pd.DataFrame:
    """Evaluated users' interactions strictly before their ``offset``-th from the end
    (1 = the last), non-evaluated users' all: the training log of targets at ``offset``."""
    frame = positions(dataset, min_interactions)
    keep = ~frame["evaluated"] | (frame["from_end"] >= offset)
    return frame.loc[keep, ["user_id", "item_id", "timestamp", "rating"]].reset_index(drop=True)


def _user_rng(seed: int, label: str, user_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{label}\x00{user_id}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def sample_negatives(
    rng: np.random.Generator, catalogue: np.ndarray, seen: set[str], k: int
) -> list[str] | None:
    """k distinct catalogue items not in ``seen``, uniformly; None if fewer than k exist."""
    if len(catalogue) - len(seen) < k:
        return None
    chosen: list[str] = []
    taken: set[str] = set()
    while len(chosen) < k:
        item = str(catalogue[int(rng.integers(len(catalogue)))])
        if item not in seen and item not in taken:
            taken.add(item)
            chosen.append(item)
    return chosen


def build_cases(dataset: Dataset, split: Split, config: ProtocolConfig | None = None) -> list[Case]:
    """Make the protocol's cases for one split, users in sorted id order."""
    return cases_at(dataset, _offset_from_end(split), split, config)


def cases_at(
    dataset: Dataset, offset: int, label: str, config: ProtocolConfig | None = None
) -> list[Case]:
    """Cases whose target is each evaluated user's ``offset``-th interaction from the end,
    built by the protocol's rules; ``label`` seeds the negatives (the split's name for
    the protocol's own cases). Users in sorted id order."""
    config = config or ProtocolConfig()
    frame = positions(dataset, config.min_interactions)
    catalogue = np.sort(dataset.items["item_id"].astype(str).to_numpy())
    cases: list[Case] = []
    for user_id, rows in frame[frame["evaluated"]].groupby("user_id", sort=True):
        items = rows["item_id"].astype(str).tolist()
        target_pos = len(items) - offset
        history = items[max(0, target_pos - config.max_history) : target_pos]
        if target_pos < 0 or len(history) < config.min_history:
            continue
        rng = _user_rng(config.seed, label, str(user_id))
        negatives = sample_negatives(rng, catalogue, set(items), config.n_negatives)
        if negatives is None:
            continue
        candidates = [items[target_pos], *negatives]
        order = rng.permutation(len(candidates))
        cases.append(
            Case(
                user_id=str(user_id),
                target=items[target_pos],
                history=tuple(history),
                candidates=tuple(candidates[i] for i in order),
                timestamp=int(rows["timestamp"].iloc[target_pos]),
            )
        )
    return cases


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 over the sorted interactions and the item ids: changes iff the data does."""
    h = hashlib.sha256()
    frame = dataset.sorted_interactions()
    for column in ("user_id", "item_id"):
        h.update("\x1f".join(frame[column].astype(str)).encode())
    h.update(frame["timestamp"].to_numpy(np.int64).tobytes())
    h.update("\x1f".join(sorted(dataset.items["item_id"].astype(str))).encode())
    return h.hexdigest()


def cases_path(dataset_name: str, seed: int, root: Path | None = None) -> Path:
    return (root or cases_dir()) / dataset_name / f"seed{seed}"


def _serialise(cases: list[Case]) -> str:
    return "".join(json.dumps(c.to_json(), separators=(",", ":")) + "\n" for c in cases)


def write_cases(dataset: Dataset, config: ProtocolConfig, root: Path | None = None) -> Path:
    """Build both splits and write them with a manifest (cases first, manifest last)."""
    folder = cases_path(dataset.name, config.seed, root)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, object]] = {}
    for split in SPLITS:
        text = _serialise(build_cases(dataset, split, config))
        write_text_atomic(folder / f"{split}.jsonl", text)
        files[split] = {
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "cases": text.count("\n"),
        }
    manifest = {
        "protocol_version": PROTOCOL_VERSION,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset_fingerprint(dataset),
        "config": asdict(config),
        "files": files,
    }
    write_text_atomic(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return folder


def read_manifest(
    dataset_name: str, seed: int, root: Path | None = None
) -> dict[str, object] | None:
    path = cases_path(dataset_name, seed, root) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_cases(
    dataset: Dataset,
    split: Split,
    config: ProtocolConfig | None = None,
    root: Path | None = None,
) -> list[Case]:
    """Read the split's case file, writing both splits first if they are missing, were
    made with another protocol config, or the dataset has changed since."""
    config = config or ProtocolConfig()
    manifest = read_manifest(dataset.name, config.seed, root)
    current = (
        manifest is not None
        and manifest.get("protocol_version") == PROTOCOL_VERSION
        and manifest.get("config") == asdict(config)
        and manifest.get("dataset_fingerprint") == dataset_fingerprint(dataset)
    )
    folder = cases_path(dataset.name, config.seed, root)
    if not current:
        write_cases(dataset, config, root)
    lines = (folder / f"{split}.jsonl").read_text().splitlines()
    return [Case.from_json(json.loads(line)) for line in lines]

"""Find a dataset by name: a built-in one (from its package) or one imported by the user.

>>> from recdata import load_dataset, available_datasets
>>> load_dataset("ml-100k").summary()
{'users': 943, 'items': 1682, 'interactions': 100000}
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from common.errors import UserInputError
from common.paths import datasets_dir
from recdata.builtin import BUILTIN, load_builtin
from recdata.schema import Dataset
from recdata.vocabulary import FILMS, NEUTRAL, Vocabulary


def imported_names(root: Path | None = None) -> list[str]:
    root = root or datasets_dir()
    if not root.is_dir():
        return []
    # hidden folders are a dataset being written or retired (`common.files.replace_dir`)
    visible = (p for p in root.iterdir() if not p.name.startswith("."))
    return sorted(p.name for p in visible if (p / "manifest.json").is_file())


def available_datasets() -> list[str]:
    return [*BUILTIN, *imported_names()]


def load_dataset(name: str) -> Dataset:
    """Load a dataset by name, or raise UserInputError listing the names that exist."""
    if name in BUILTIN:
        return load_builtin(name)
    folder = datasets_dir() / name
    if not (folder / "manifest.json").is_file():
        raise UserInputError(
            f"unknown dataset {name!r}; available: {', '.join(available_datasets())}"
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    stored = manifest.get("meta") if isinstance(manifest, dict) else None
    return Dataset.from_frames(
        name,
        pd.read_parquet(folder / "interactions.parquet"),
        pd.read_parquet(folder / "items.parquet"),
        meta={"source": "import", **(stored if isinstance(stored, dict) else {})},
    )


def dataset_vocabulary(name: str) -> Vocabulary:
    """The words of dataset ``name`` without loading its data: film words for the built-in
    MovieLens sets, an import's stored words, neutral ones for anything else."""
    if name in BUILTIN:
        return FILMS
    manifest = datasets_dir() / name / "manifest.json"
    try:
        meta = json.loads(manifest.read_text()).get("meta") or {}
    except (OSError, ValueError, AttributeError):
        return NEUTRAL
    return Vocabulary.from_meta(meta) or NEUTRAL

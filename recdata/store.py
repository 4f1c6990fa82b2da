"""Find a dataset by name: a built-in one (from its package) or one imported by the user.

>>> from recdata import load_dataset, available_datasets
>>> load_dataset("ml-100k").summary()
{'users': 943, 'items': 1682, 'interactions': 100000}
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.errors import UserInputError
from common.paths import datasets_dir
from recdata.builtin import BUILTIN, load_builtin
from recdata.schema import Dataset


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
    return Dataset.from_frames(
        name,
        pd.read_parquet(folder / "interactions.parquet"),
        pd.read_parquet(folder / "items.parquet"),
        meta={"source": "import"},
    )

"""Import a user's own data: an interactions file plus an items file (CSV or Parquet).

    r2rec data import interactions.csv items.csv --name shop

Interactions need ``user_id``, ``item_id``, ``timestamp`` (Unix seconds or ISO-8601) and
may carry ``rating``; items need ``item_id`` and ``title`` and may carry any other text
columns. Every problem is reported as one line naming the file, the row (1 = first data
row) and the column, and the import writes nothing unless the whole input is valid: the
dataset is built in a temporary folder and moved into place in one rename.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from common.errors import DataFileError, UserInputError
from common.files import replace_dir, staging_dir
from common.ids import id_problem
from recdata.schema import Dataset
from recdata.vocabulary import NEUTRAL, Vocabulary

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file with every column as a string (no type guessing)."""
    if not path.is_file():
        raise DataFileError(str(path), "file not found")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes:
            frame = pd.read_parquet(path)
            frame = frame.astype({c: "string" for c in frame.columns})
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataFileError(str(path), "file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataFileError(str(path), f"cannot be read: {first_line}") from None
    if frame.empty:
        raise DataFileError(str(path), "file has a header but no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _fail_first(bad: pd.Series, path: Path, column: str, describe: Callable[[int], str]) -> None:
    """Raise a DataFileError at the first row flagged in ``bad`` (rows count from 1)."""
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(str(path), describe(row), row=row + 1, column=column)


def _require_columns(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise DataFileError(str(path), f"missing column (found: {found})", column=column)


def _check_ids(frame: pd.DataFrame, path: Path, column: str) -> pd.Series:
    """The column's ids, stripped of surrounding spaces, each checked by `common.ids`."""
    values = frame[column].astype("string").str.strip()
    problems = [id_problem(v) if isinstance(v, str) else "is missing" for v in values]
    bad = pd.Series([p is not None for p in problems], index=frame.index)
    _fail_first(bad, path, column, lambda row: f"id {frame[column].iloc[row]!r} {problems[row]}")
    return values


def parse_timestamps(values: pd.Series, path: Path) -> np.ndarray:
    """Unix seconds (integers) or ISO-8601 date-times (UTC assumed when no zone) -> int64."""
    text = values.astype("string").str.strip()
    as_number = pd.to_numeric(text, errors="coerce")
    is_int = as_number.notna() & (as_number == np.floor(as_number))
    out = np.zeros(len(text), dtype=np.int64)
    out[is_int.to_numpy()] = as_number[is_int].astype("int64").to_numpy()
    rest = ~is_int.to_numpy()
    if rest.any():
        parsed = pd.to_datetime(text[rest], errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            row = int(np.flatnonzero(rest)[int(np.flatnonzero(parsed.isna().to_numpy())[0])])
            raise DataFileError(
                str(path),
                f"unparsable timestamp {values.iloc[row]!r} (want Unix seconds or ISO-8601)",
                row=row + 1,
                column="timestamp",
            )
        out[rest] = parsed.astype("datetime64[s, UTC]").astype("int64").to_numpy()
    return out


def validate(interactions_path: Path, items_path: Path, name: str) -> tuple[Dataset, int]:
    """Read and check both files; returns the dataset and the number of dropped duplicates."""
    items = read_table(items_path)
    _require_columns(items, items_path, ("item_id", "title"))
    item_ids = _check_ids(items, items_path, "item_id")
    _fail_first(
        item_ids.duplicated(),
        items_path,
        "item_id",
        lambda r: f"duplicate item id {item_ids.iloc[r]!r}",
    )
    items["item_id"] = item_ids
    titles = items["title"].astype("string").str.strip()
    _fail_first(titles.isna() | (titles == ""), items_path, "title", lambda _: "empty title")
    items["title"] = titles

    inter = read_table(interactions_path)
    _require_columns(inter, interactions_path, ("user_id", "item_id", "timestamp"))
    inter["user_id"] = _check_ids(inter, interactions_path, "user_id")
    inter["item_id"] = _check_ids(inter, interactions_path, "item_id")
    _fail_first(
        ~inter["item_id"].isin(set(item_ids)),
        interactions_path,
        "item_id",
        lambda r: f"item {inter['item_id'].iloc[r]!r} is not in {items_path.name}",
    )
    inter["timestamp"] = parse_timestamps(inter["timestamp"], interactions_path)
    if "rating" in inter.columns:
        rating = pd.to_numeric(inter["rating"], errors="coerce")
        _fail_first(
            rating.isna() & inter["rating"].notna(),
            interactions_path,
            "rating",
            lambda r: f"rating {inter['rating'].iloc[r]!r} is not a number",
        )
        inter["rating"] = rating
    before = len(inter)
    inter = inter.drop_duplicates(["user_id", "item_id", "timestamp"])
    dataset = Dataset.from_frames(name, inter, items, meta={"source": "import"})
    return dataset, before - len(inter)


def write_dataset(dataset: Dataset, root: Path, *, overwrite: bool = False) -> Path:
    """Write ``root/<name>/`` atomically: a temp folder renamed into place."""
    target = root / dataset.name
    if target.exists() and not overwrite:
        raise UserInputError(f"dataset '{dataset.name}' already exists at {target} (use --force)")
    with staging_dir(target) as staging:
        dataset.interactions.to_parquet(staging / "interactions.parquet", index=False)
        dataset.items.to_parquet(staging / "items.parquet", index=False)
        manifest = {"name": dataset.name, **dataset.summary(), "meta": dataset.meta}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        replace_dir(staging, target)
    return target


def import_dataset(
    interactions_path: Path,
    items_path: Path,
    name: str,
    root: Path,
    *,
    overwrite: bool = False,
    vocabulary: Vocabulary | None = None,
) -> tuple[Dataset, int]:
    """Validate both files and store them as dataset ``name`` under ``root``, with the
    catalogue's words (`recdata.vocabulary`; neutral ones when not given)."""
    from recdata.builtin import BUILTIN

    if not NAME_PATTERN.match(name):
        raise UserInputError(
            f"invalid dataset name {name!r}: use 1-64 characters of a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    if name in BUILTIN:
        raise UserInputError(f"dataset name {name!r} is reserved for a built-in dataset")
    dataset, dropped = validate(interactions_path, items_path, name)
    words = (vocabulary or NEUTRAL).to_meta()
    dataset = Dataset.from_frames(
        name, dataset.interactions, dataset.items, {**dataset.meta, **words}
    )
    write_dataset(dataset, root, overwrite=overwrite)
    return dataset, dropped

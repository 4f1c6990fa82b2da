"""Versioned training datasets on disk: one folder per dataset, written whole or not at all.

    built = write_versioned(folder, spec, dataset, make_rows)   # skipped if identical
    rows = read_examples(built.folder)                          # checked against the manifest

A folder holds ``examples.jsonl`` (one JSON object per row, keys sorted) and
``manifest.json`` (task, format version, builder config, seed, row counts, the file's
sha256, the source data's fingerprint). The rows stream to the file one at a time,
hashed and counted on the way (`RowCounts`); the manifest is written last, so a reader
never sees a manifest without its rows. Every task's data builder writes through here
(`training.data` for ranking, `training.rating.data` for ratings).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

from common.errors import UserInputError
from common.files import (
    read_json,
    sha256_file,
    stable_json,
    write_lines_atomic,
    write_text_atomic,
)
from common.paths import data_root
from evaluation.protocol import dataset_fingerprint
from recdata.schema import Dataset
from training.rows import RankRow, RatingRow, TrainingRow

EXAMPLES_FILE = "examples.jsonl"
MANIFEST_FILE = "manifest.json"
RowT = TypeVar("RowT", RankRow, RatingRow)
RowT_contra = TypeVar("RowT_contra", RankRow, RatingRow, contravariant=True)


@dataclass(frozen=True)
class BuiltData:
    """Where a dataset lives and what its manifest says."""

    folder: Path
    manifest: dict[str, Any]
    skipped: bool  # an identical dataset was already there

    @property
    def examples_path(self) -> Path:
        return self.folder / EXAMPLES_FILE


class RowCounts(Protocol[RowT_contra]):
    """Counts a dataset's rows one at a time, as they stream to the file (the manifest's
    ``counts``)."""

    def add(self, row: RowT_contra) -> None: ...

    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DatasetSpec(Generic[RowT]):
    """What identifies a built dataset besides its data: the task, the row format
    version, the builder's config (as a dict) and seed, and how rows are counted."""

    task: str
    format_version: int
    config: dict[str, Any]
    seed: int | None
    counts: Callable[[], RowCounts[RowT]]  # a fresh counter per build


def dataset_folder(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise UserInputError(f"bad dataset name {name!r}")
    return data_root() / name


def write_versioned(
    folder: Path,
    spec: DatasetSpec[RowT],
    dataset: Dataset,
    make_rows: Callable[[], Iterable[RowT]],
    force: bool = False,
) -> BuiltData:
    """Write ``make_rows()`` as examples.jsonl + manifest.json (examples first, manifest
    last), unless an identical dataset (same spec, data and file hash) is already there.
    The rows stream to the file one at a time, hashed and counted on the way, so
    neither the rows nor the text need to be held whole (`training.data.build_examples`
    makes them as they are read). A build that fails or yields no row leaves the old
    files, or no folder where there was none.

    Shared by every task's data builder (`build_dataset`, `training.rating.data`).
    """
    old = read_json(folder / MANIFEST_FILE)
    fingerprint = dataset_fingerprint(dataset)
    if (
        not force
        and old is not None
        and old.get("config") == spec.config
        and old.get("format_version") == spec.format_version
        and dataset_task(old) == spec.task
        and old.get("dataset_fingerprint") == fingerprint
        and (folder / EXAMPLES_FILE).is_file()
        and sha256_file(folder / EXAMPLES_FILE) == old.get("sha256")
    ):
        return BuiltData(folder, old, skipped=True)
    counts = spec.counts()

    def lines() -> Iterator[str]:
        written = 0
        for row in make_rows():
            counts.add(row)
            written += 1
            yield stable_json(row) + "\n"
        if not written:
            raise UserInputError(f"{dataset.name}: no training examples (too few interactions?)")

    new_folder = not folder.exists()
    try:
        digest = write_lines_atomic(folder / EXAMPLES_FILE, lines())
    except BaseException:
        if new_folder and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a first build that failed leaves no empty dataset folder
        raise
    manifest = {
        "format_version": spec.format_version,
        "task": spec.task,
        "config": spec.config,
        "seed": spec.seed,
        "dataset_fingerprint": fingerprint,
        "sha256": digest,
        "counts": counts.summary(),
    }
    write_text_atomic(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return BuiltData(folder, manifest, skipped=False)


def dataset_task(manifest: dict[str, Any]) -> str:
    """The task a dataset was built for: "rank" (also for manifests older than the field)
    or "rating"."""
    return str(manifest.get("task", "rank"))


def read_examples(folder: Path) -> list[TrainingRow]:
    """The rows of a built dataset, after checking the file against its manifest hash."""
    manifest = read_json(folder / MANIFEST_FILE)
    path = folder / EXAMPLES_FILE
    if manifest is None or not path.is_file():
        raise UserInputError(f"{folder}: no training dataset here (run `r2rec train data`)")
    if sha256_file(path) != manifest.get("sha256"):
        raise UserInputError(f"{path}: content does not match its manifest's sha256")
    with path.open(encoding="utf-8") as lines:
        return [cast(TrainingRow, json.loads(line)) for line in lines]

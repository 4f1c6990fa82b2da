"""Where training writes, and how: atomic files and folders, content hashes, stage markers.

Layout under ``$R2REC_HOME`` (see `r2rec.paths.home`)::

    data/<name>/examples.jsonl + manifest.json      training datasets (`training.data`)
    runs/<name>/                                    one training run (`training.runs`)
    models/published/ + models/published.json      the served model (`training.publish`)

Every file is written to a temporary sibling and renamed into place, so a crash never
leaves a half-written file where a reader looks; folders are built beside their target
and swapped in with `replace_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from r2rec.paths import home, models_dir


def data_root() -> Path:
    return home() / "data"


def runs_root() -> Path:
    return home() / "runs"


def published_dir() -> Path:
    return models_dir() / "published"


def published_manifest() -> Path:
    return models_dir() / "published.json"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stable_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling folder of ``target``; removed on exit unless moved away."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished ``staging`` folder to ``target``, swapping out an old copy."""
    staging.chmod(0o755)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{time.time_ns()}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)

"""Files and folders written whole: atomic text and JSON, folder swaps, stable hashes.

Every file is written to a temporary sibling and renamed into place, so a crash never
leaves a half-written file where a reader looks; folders are built in `staging_dir`
beside their target and swapped in with `replace_dir`::

    with staging_dir(target) as staging:
        (staging / "config.json").write_text("{}")
        replace_dir(staging, target)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stable_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (never whole): what
    `write_lines_atomic` returns for what it wrote."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and an atomic rename."""
    write_lines_atomic(path, (text,))


def write_lines_atomic(path: Path, pieces: Iterable[str]) -> str:
    """Write ``pieces`` one after another to ``path`` (temporary sibling, atomic rename),
    never holding their concatenation; returns its `sha256_text`. If the iterable
    fails, nothing is left at ``path`` that was not there before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                data = piece.encode()
                digest.update(data)
                handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def write_json_atomic(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    """The JSON value in ``path``, or None when there is no such file."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling folder of ``target`` (same file system, so renaming is atomic);
    removed on exit unless `replace_dir` moved it away."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished ``staging`` folder to ``target``, swapping out an old copy.

    The folder and its files get the usual umask permissions first (mkdtemp makes 0700).
    """
    _make_readable(staging)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{time.time_ns()}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


def _make_readable(folder: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for entry in folder.rglob("*"):
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)

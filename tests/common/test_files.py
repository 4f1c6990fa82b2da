"""Atomic writes (`common.files`): streamed lines hash as the whole text would, and a
failure half-way leaves the old file and no temporary sibling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.files import sha256_file, sha256_text, write_lines_atomic, write_text_atomic


def test_streamed_lines_hash_and_read_back_as_the_whole_text(tmp_path: Path) -> None:
    lines = [f'{{"row":{k},"title":"Amélie"}}\n' for k in range(1000)]
    path = tmp_path / "examples.jsonl"
    digest = write_lines_atomic(path, iter(lines))
    assert path.read_text(encoding="utf-8") == "".join(lines)
    assert digest == sha256_text("".join(lines)) == sha256_file(path)


def test_a_failing_stream_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "examples.jsonl"
    write_text_atomic(path, "old\n")

    def broken() -> Iterator[str]:
        yield "new\n"
        raise RuntimeError("row builder failed")

    with pytest.raises(RuntimeError, match="row builder failed"):
        write_lines_atomic(path, broken())
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["examples.jsonl"]

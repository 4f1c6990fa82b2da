"""The code stays as the tools want it: ruff lint and format clean, mypy clean.

The formatter's output is the style (no `# fmt: skip` markers); `ruff format .` fixes it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "common",
    "recdata",
    "graph_store",
    "reasoning",
    "evaluation",
    "baselines",
    "training",
    "service",
    "r2rec",
    "tests",
]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name(tool)
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format_are_clean() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-4000:]


def test_no_formatter_markers() -> None:
    marked = [
        str(p)
        for d in PACKAGES
        for p in (ROOT / d).rglob("*.py")
        if "fmt: " + "skip" in p.read_text() and p.name != "test_style.py"
    ]
    assert not marked


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    done = _run("mypy", *PACKAGES)
    assert done.returncode == 0, done.stdout[-4000:]

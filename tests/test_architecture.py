"""The layer contract: each package imports only the packages below it (pyproject.toml).

A climbing import (say `graph_store` importing `evaluation`) fails here, with the chain
that climbs printed by import-linter.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contract() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_every_package_is_in_the_layers() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    contract = _contract()
    layers = next(c for c in contract["contracts"] if c["type"] == "layers")["layers"]
    assert packages == set(contract["root_packages"]) == set(layers)


def test_imports_follow_the_layers() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout

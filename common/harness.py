"""The checkout's test harness (``tests/harness/``) for benchmarks that start the same
real servers the tests start (ArcadeDB for Bolt, vLLM's CPU build).

The harness is not part of the installed package: outside a checkout `load_harness`
returns None and the benchmark says it has no local server.

    arcadedb = load_harness("arcadedb")     # tests/harness/arcadedb.py, or None
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def load_harness(module: str) -> ModuleType | None:
    """``tests/harness/<module>.py`` of this checkout, imported; None if absent."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "harness" / f"{module}.py").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"tests.harness.{module}")

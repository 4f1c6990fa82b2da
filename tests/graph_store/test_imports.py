"""Importing the package and the embedded store leaves the Neo4j driver unloaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_graph_store_and_the_embedded_store_do_not_import_neo4j() -> None:
    code = (
        "import sys\n"
        "import graph_store\n"
        "import graph_store.memory\n"
        "import graph_store.index\n"
        "assert 'neo4j' not in sys.modules, 'neo4j imported'\n"
        "assert graph_store.Neo4jConfig.__module__ == 'graph_store.bolt'\n"
        "assert 'neo4j' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr

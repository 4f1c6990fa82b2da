"""Suite-wide fixtures: a private R2REC_HOME per test, and the session's shared servers.

The tiny model and the real vLLM server (one per test session, ~45 s to start) are
shared by every part's tests; they start only when a test asks for them.

Every test that needs a real server (vLLM, the Bolt server, Redis, a Neo4j) or a real
browser (chromium) is marked
``servers`` here, from the fixtures and parameters it uses, so the unit tests run alone
with ``pytest -m "not servers and not slow"`` (``bash scripts/test.sh --quick``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from recdata.schema import Dataset
from tests.factories import TINY_FEATURE_CONFIGS
from tests.harness.arcadedb import ArcadeDBServer, ArcadeDBUnavailable, arcadedb_server
from tests.harness.vllm import (
    REQUIRE_ENV,
    VLLMServer,
    require_vllm,
    run_vllm_server,
    servers_required,
)

if TYPE_CHECKING:
    from graph_store.memory import MemoryGraphStore
    from reasoning.collaborative import CollaborativeBundle

SERVER_FIXTURES = frozenset(
    {
        "vllm_server",
        "vllm_backend",
        "vllm_client",
        "arcadedb",
        "redis_server",
        "fresh_redis",
        "browser",
    }
)
SERVER_PARAMS = frozenset({"vllm", "arcadedb", "neo4j"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``servers`` each test whose fixtures or parameters start a real server."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {v for v in callspec.params.values() if isinstance(v, str)} if callspec else set()
        if fixtures & SERVER_FIXTURES or params & SERVER_PARAMS:
            item.add_marker(pytest.mark.servers)


@pytest.fixture(autouse=True, scope="module")
def module_r2rec_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private R2REC_HOME for module-scoped fixtures too (they start before
    ``r2rec_home``): a module's service keeps its graph journal there, not in ./.r2rec."""
    home = tmp_path_factory.mktemp("module-home") / "r2rec-home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("R2REC_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def r2rec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "r2rec-home"
    monkeypatch.setenv("R2REC_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reasoning.backends.model_folders import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path) -> Iterator[VLLMServer]:
    require_vllm()
    with run_vllm_server(tiny_model_dir, name="tiny") as server:
        print(f"\n[vllm] healthy after {server.startup_s:.1f} s on port {server.port}")
        yield server


@pytest.fixture(scope="session")
def arcadedb() -> Iterator[ArcadeDBServer]:
    """A real Bolt + Cypher server (ArcadeDB) for the whole session."""
    try:
        with arcadedb_server() as server:
            yield server
    except ArcadeDBUnavailable as err:
        if servers_required():
            pytest.fail(f"{REQUIRE_ENV} is set but ArcadeDB is unavailable: {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def ml100k_slice() -> Dataset:
    """The first 60 users of ML-100K (all their interactions) and every item: a real
    dataset on which the collaborative models fit in seconds."""
    from recdata import load_dataset

    full = load_dataset("ml-100k")
    users = sorted(full.interactions["user_id"].unique())[:60]
    inter = full.interactions[full.interactions["user_id"].isin(users)]
    return Dataset.from_frames("ml-100k-60", inter, full.items)


@pytest.fixture(scope="session")
def slice_bundle(ml100k_slice: Dataset) -> tuple[CollaborativeBundle, MemoryGraphStore]:
    """A collaborative bundle (tiny SASRec and BPR) fitted on the slice's test-split
    training log, and a graph store holding that same log."""
    from baselines.bundle import fit_bundle
    from baselines.features import rowset_training_log
    from graph_store.memory import MemoryGraphStore

    train = rowset_training_log(ml100k_slice, "test")
    weights = np.array([1.0, 0.5, 0.5, -0.1, 0.2])
    bundle = fit_bundle(train, ml100k_slice.items, TINY_FEATURE_CONFIGS, weights, {})
    return bundle, MemoryGraphStore.from_frames(train, ml100k_slice.items)

"""The service ranks with a published fused ranker (collaborative base + LLM head).

Published with ``r2rec model publish-fused`` from a hidden-head run folder and a bundle,
it is loaded at start-up: /recommend answers with its ranking (the scores equal the
ranker's own, read through the same model), the version names it, and a fused ranker
fitted for another dataset stops the start with a message naming both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from graph_store.memory import MemoryGraphStore
from r2rec.cli import app
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
from reasoning.collaborative import CollaborativeBundle
from reasoning.fused import FusedRanker
from service.main import create_app
from tests.factories import write_hidden_head_run
from tests.service.conftest import assert_fused_as_in_process, settings_for


@pytest.fixture
def published(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tiny_model_dir: Path,
    tmp_path: Path,
) -> Callable[[str], Path]:
    """Publish a fused ranker for ``dataset`` through the CLI; its folder."""
    bundle, _ = slice_bundle

    def publish(dataset: str) -> Path:
        bundle.meta["dataset"] = dataset
        bundle.save(tmp_path / "bundle")
        hidden = TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir)))
        write_hidden_head_run(
            tmp_path / "run", hidden.model.config.hidden_size, dataset, tiny_model_dir
        )
        args = ["model", "publish-fused", str(tmp_path / "run"), str(tmp_path / "bundle")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "published" in result.output, result.output
        from common.paths import published_fused_dir

        return published_fused_dir()

    return publish


def test_recommend_ranks_with_the_published_fused_ranker(
    published: Callable[[str], Path], tiny_model_dir: Path
) -> None:
    folder = published("ml-100k")
    fused = FusedRanker.load(folder)
    assert fused.bundle.weights.tolist() == [1.0, 0.4, 0.6, -0.2, 0.1]  # the run's base
    candidates = [str(i) for i in range(300, 320)]
    assert_fused_as_in_process(
        settings_for(tiny_model_dir), folder, tiny_model_dir, candidates, 1e-6
    )


def test_a_fused_ranker_for_another_dataset_stops_the_start(
    published: Callable[[str], Path], tiny_model_dir: Path
) -> None:
    published("ml-latest-small")
    app_ = create_app(settings_for(tiny_model_dir))
    with pytest.raises(Exception, match=r"fitted for 'ml-latest-small'.*serves 'ml-100k'"):
        TestClient(app_).__enter__()
    # R2REC_RANKER=llm serves the LLM's letters as before
    with TestClient(create_app(settings_for(tiny_model_dir, ranker="llm"))) as client:
        body = client.post("/recommend", json={"user_id": "1", "explain": False}).json()
        assert not body["model"].startswith("fused:")

"""The fused ranker's LLM head served by vLLM: a real vLLM pooling server reads the states.

``r2rec model publish-fused`` writes ``states/`` (the tiny model cut at the head's layer,
unit final norm) for a unit-RMS, last-token head; a real vLLM CPU server serves it as a
pooling model. Its states equal the in-process reading, the service ranks with them
exactly as the in-process backend does, a states server that is down gives the
collaborative base flagged fallback, and a head vLLM cannot serve stops the start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from graph_store.memory import MemoryGraphStore
from r2rec.cli import app
from reasoning.backends.base import LLMUnavailable
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
from reasoning.backends.vllm_states import POOLING_FLAGS, VLLMStates, VLLMStatesConfig
from reasoning.collaborative import CollaborativeBundle
from reasoning.compact import PromptShape, render_compact_messages, unit_rms
from reasoning.fused import STATES, FusedRanker
from reasoning.prompt import ItemInfo
from reasoning.recommender import Recommender, RecommenderConfig
from recdata import load_dataset
from service.main import create_app
from tests.factories import write_hidden_head_run
from tests.harness.net import free_port
from tests.harness.vllm import VLLMServer, require_vllm, run_vllm_server
from tests.service.conftest import assert_fused_as_in_process, vllm_settings

CANDIDATES = [str(i) for i in range(300, 320)]


def publish(tmp: Path, bundle: CollaborativeBundle, model: Path, scale: str) -> Path:
    """Publish a fused ranker whose head reads ``scale`` states into ``tmp/fused``."""
    bundle.meta["dataset"] = "ml-100k"
    bundle.save(tmp / "bundle")
    width = json.loads((model / "config.json").read_text())["hidden_size"]
    write_hidden_head_run(tmp / "run", width, "ml-100k", model, scale=scale)
    args = ["model", "publish-fused", str(tmp / "run"), str(tmp / "bundle")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp / "fused")])
    assert result.exit_code == 0 and "published" in result.output, result.output
    return tmp / "fused"


@pytest.fixture(scope="module")
def fused_folder(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    return publish(tmp_path_factory.mktemp("fused-rms"), slice_bundle[0], tiny_model_dir, "rms")


@pytest.fixture(scope="module")
def states_server(fused_folder: Path) -> Iterator[VLLMServer]:
    require_vllm()
    with run_vllm_server(
        fused_folder / STATES, name="states", warm_up=False, extra_args=POOLING_FLAGS
    ) as server:
        yield server


def messages(n: int, first: int = 0) -> list[dict[str, str]]:
    items = [ItemInfo(str(i), f"Film {i}", "1995", "Drama") for i in range(first, first + n + 5)]
    return render_compact_messages(items[:5], items[5:], PromptShape())


def test_publish_writes_the_cut_model_only_for_a_head_vllm_can_serve(
    fused_folder: Path,
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    cut = json.loads((fused_folder / STATES / "config.json").read_text())
    assert cut["num_hidden_layers"] == 1  # the head's layer
    assert FusedRanker.load(fused_folder).states == fused_folder / STATES
    raw = publish(tmp_path, slice_bundle[0], tiny_model_dir, "raw")
    assert FusedRanker.load(raw).states is None and not (raw / STATES).exists()


def test_vllm_states_equal_the_in_process_states(
    states_server: VLLMServer, fused_folder: Path, tiny_model_dir: Path
) -> None:
    batch = [messages(20), messages(20, first=40)]
    local = TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir)))
    expected = asyncio.run(local.line_states(batch, 20, (1,)))
    reader = VLLMStates(VLLMStatesConfig(states_server.base_url, fused_folder / STATES))

    async def read() -> np.ndarray:
        try:
            return await reader.line_states(batch, 20, (1,))
        finally:
            await reader.aclose()

    served = asyncio.run(read())
    assert served.shape == (2, 20, 1, 2, expected.shape[-1])
    # the last token's state scaled to unit RMS, as the head reads it, is the in-process
    # state's (kept in float16 there, hence the tolerance)
    np.testing.assert_allclose(
        unit_rms(served[:, :, 0, 0]), unit_rms(expected[:, :, 0, 0]), rtol=2e-3, atol=2e-3
    )


def test_the_service_ranks_with_the_head_through_vllm(
    states_server: VLLMServer,
    vllm_server: VLLMServer,
    fused_folder: Path,
    tiny_model_dir: Path,
) -> None:
    settings = vllm_settings(
        tiny_model_dir,
        vllm_server,
        fused_path=fused_folder,
        states_url=states_server.base_url,
        states_model="states",
    )
    # the same ranking and scores as in process, from the same log and model
    assert_fused_as_in_process(settings, fused_folder, tiny_model_dir, CANDIDATES, 1e-3)


def test_a_states_server_that_is_down_gives_the_base_flagged_fallback(
    vllm_server: VLLMServer, fused_folder: Path, tiny_model_dir: Path
) -> None:
    settings = vllm_settings(
        tiny_model_dir,
        vllm_server,
        fused_path=fused_folder,
        states_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
    )
    fused = FusedRanker.load(fused_folder)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()  # before any ranking: the states server is pinged
        body = client.post(
            "/recommend", json={"user_id": "1", "candidates": CANDIDATES, "explain": False}
        ).json()
    assert ready["status"] == "degraded" and ready["checks"]["llm"]["ok"] is False
    assert body["fallback"] is True and body["model"].startswith("fused:")
    data = load_dataset("ml-100k")
    store = MemoryGraphStore.from_frames(data.interactions, data.items)
    base = asyncio.run(
        Recommender(store, None, RecommenderConfig(), fused).recommend("1", CANDIDATES, False)
    )
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in base.items][
        : len(body["items"])
    ]


def test_a_head_vllm_cannot_serve_stops_the_start(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    folder = publish(tmp_path, slice_bundle[0], tiny_model_dir, "raw")
    settings = vllm_settings(
        tiny_model_dir,
        VLLMServer("http://127.0.0.1:9/v1", "tiny", 9, tmp_path / "log", 0.0),
        fused_path=folder,
        states_url="http://127.0.0.1:9",
    )
    with pytest.raises(Exception, match=r"reads raw last-pooled states.*state_scale rms"):
        TestClient(create_app(settings)).__enter__()


def test_eval_reads_the_states_from_vllm_as_the_service_does(
    states_server: VLLMServer, vllm_server: VLLMServer, fused_folder: Path, tiny_model_dir: Path
) -> None:
    """`r2rec eval --fused DIR --backend vllm --states-url URL` scores the cases as the
    in-process `--fused DIR` run does; --states-url without a states/ folder is refused."""
    args = ["eval", "--model", "llm", "--limit", "4", "--fused", str(fused_folder)]
    results: list[dict[str, float]] = []
    for extra in (
        ["--checkpoint", str(tiny_model_dir)],
        [
            *("--backend", "vllm", "--llm-url", vllm_server.base_url, "--served-model", "tiny"),
            *("--states-url", states_server.base_url),
        ],
    ):
        out = fused_folder.parent / f"eval-{len(results)}.json"
        done = CliRunner().invoke(app, [*args, *extra, "--out", str(out)])
        assert done.exit_code == 0, done.output
        results.append(json.loads(out.read_text())[0]["metrics"])
    assert results[0]["cases"] == results[1]["cases"] == 4
    assert results[1] == pytest.approx(results[0])
    raw = fused_folder.parent / "no-states"
    raw.mkdir(exist_ok=True)
    for part in ("manifest.json", "head.npz", "collaborative"):
        (raw / part).symlink_to(fused_folder / part)
    refused = CliRunner().invoke(
        app,
        [
            *(*args[:-1], str(raw), "--checkpoint", str(tiny_model_dir)),
            *("--states-url", states_server.base_url),
        ],
    )
    assert refused.exit_code != 0 and "states/" in str(refused.exception)


def test_ping_tells_a_live_states_server_from_a_dead_one(
    states_server: VLLMServer, fused_folder: Path
) -> None:
    async def ping(url: str) -> None:
        reader = VLLMStates(VLLMStatesConfig(url, fused_folder / STATES, timeout_s=5))
        try:
            await reader.ping()
        finally:
            await reader.aclose()

    asyncio.run(ping(states_server.base_url))  # the /v1 suffix is dropped
    with pytest.raises(LLMUnavailable):
        asyncio.run(ping(f"http://127.0.0.1:{free_port()}"))


def test_open_states_reads_only_where_vllm_can_serve_the_head(
    fused_folder: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from service.ranking import StartupError, open_states
    from tests.service.conftest import settings_for

    fused = FusedRanker.load(fused_folder)
    vllm = {"llm_backend": "vllm", "states_url": "http://127.0.0.1:9"}
    assert open_states(settings_for(tiny_model_dir), fused) is None  # in process: itself
    assert open_states(settings_for(tiny_model_dir, llm_backend="vllm"), fused) is None
    reader = open_states(settings_for(tiny_model_dir, **vllm), fused)
    assert isinstance(reader, VLLMStates) and reader.layer == 1
    asyncio.run(reader.aclose())
    fused.states = None  # a folder published before states/ existed
    with pytest.raises(StartupError, match="holds no states/"):
        open_states(settings_for(tiny_model_dir, **vllm), fused)

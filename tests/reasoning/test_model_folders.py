"""The tiny random test model and the `r2rec model` commands (no network, a few seconds).

Run: ``.venv/bin/pytest tests/reasoning/test_models.py``. The real SmolLM2 conversion is
tested in ``test_models_smollm.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.errors import UserInputError
from r2rec.commands.model import model_app
from reasoning.backends.model_folders import (
    COMPLETE_MARKER,
    LETTERS,
    TinyModelConfig,
    build_tiny_model,
    default_base_dir,
    is_complete,
    prepare_base,
    require_model,
)


def test_tiny_model_loads_with_vllm_compatible_shape(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["hidden_size"] // config["num_attention_heads"] == 32
    assert (config["num_key_value_heads"], config["num_hidden_layers"]) == (1, 2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.vocab_size == len(tokenizer)
    assert is_complete(tiny_model_dir)


def test_tiny_tokenizer_has_single_token_letters_and_chatml(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in LETTERS + [" " + letter for letter in LETTERS]:
        assert len(tokenizer.encode(text, add_special_tokens=False)) == 1, text
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert (
        rendered
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    text = "Thought 1: Heat (1995) > Fargo"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_tiny_model_is_seeded_and_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    build_tiny_model(out, TinyModelConfig(seed=1))
    first = (out / "model.safetensors").read_bytes()
    build_tiny_model(out, TinyModelConfig(seed=1))
    assert (out / "model.safetensors").read_bytes() == first
    build_tiny_model(out, TinyModelConfig(seed=2))
    assert (out / "model.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"], "no staging folders left"


def test_tiny_model_rejects_head_sizes_vllm_cpu_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="head size"):
        build_tiny_model(tmp_path / "bad", TinyModelConfig(hidden_size=64, num_attention_heads=4))
    assert not (tmp_path / "bad").exists()


def test_builders_refuse_to_replace_foreign_folders(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="not a model folder written by r2rec"):
        build_tiny_model(foreign)
    with pytest.raises(UserInputError, match="not a model folder written by r2rec"):
        prepare_base(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_prepare_base_skips_a_complete_folder(tmp_path: Path) -> None:
    done = tmp_path / "base"
    done.mkdir()
    (done / COMPLETE_MARKER).write_text("{}")
    assert prepare_base(done) == done
    assert sorted(p.name for p in done.iterdir()) == [COMPLETE_MARKER]
    result = CliRunner().invoke(model_app, ["prepare-base", "--out", str(done)])
    assert result.exit_code == 0 and "already complete, skipped" in result.output


def test_require_model_takes_a_model_folder_and_names_a_missing_one(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    assert require_model(tiny_model_dir) == tiny_model_dir
    with pytest.raises(UserInputError, match=f"no model at {tmp_path / 'none'}: name a model"):
        require_model(tmp_path / "none")
    assert not (tmp_path / "none").exists()  # only the default base is ever prepared


def test_require_model_keeps_a_complete_default_base() -> None:
    base = default_base_dir()
    base.mkdir(parents=True)
    (base / COMPLETE_MARKER).write_text("{}")
    assert require_model(base) == base
    assert sorted(p.name for p in base.iterdir()) == [COMPLETE_MARKER]  # nothing converted


def test_cli_build_tiny_writes_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(model_app, ["build-tiny", str(tmp_path / "t"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert is_complete(tmp_path / "t") and (tmp_path / "t" / "tokenizer.json").is_file()

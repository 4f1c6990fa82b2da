"""The training command line: data building, config files and overrides, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.errors import UserInputError
from r2rec.cli import app
from training.config import GRPOConfig, SFTConfig, load_config, parse_sets

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_train_data_builds_then_skips(r2rec_home: Path) -> None:
    runner = CliRunner()
    args = [
        "train",
        "data",
        "--dataset",
        "ml-100k",
        "--limit-users",
        "3",
        "--targets-per-user",
        "1",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "written" in first.output
    assert json.loads(first.output.splitlines()[-1])["users"] == 3
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "unchanged, skipped" in second.output
    assert (r2rec_home / "data" / "ml-100k-valid-t1-u3-s0" / "manifest.json").is_file()


def test_shipped_configs_load_and_overrides_win() -> None:
    sft = load_config(SFTConfig, CONFIGS / "sft-smollm2.yaml", {"max_steps": "7"})
    assert sft.max_steps == 7 and sft.lora and sft.name == "sft-smollm2"
    grpo = load_config(GRPOConfig, CONFIGS / "grpo-smollm2.yaml", parse_sets(["beta=0.01"]))
    assert grpo.init_run == "sft-smollm2" and grpo.beta == 0.01
    assert grpo.reward_weights == (0.5, 1.0, 0.25)
    assert load_config(SFTConfig, None, {"eval_splits": "test", "eval_limit": "none"}) == SFTConfig(
        eval_splits=("test",), eval_limit=None
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"no_such_key": "1"}, "unknown config keys"),
        ({"max_steps": "many"}, "max_steps"),
        ({"max_steps": "0"}, "max_steps must be >= 1"),
        ({"lora": "perhaps"}, "lora"),
        ({"name": "../escape"}, "bad run name"),
    ],
)
def test_bad_configs_are_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        load_config(SFTConfig, None, overrides)
    with pytest.raises(UserInputError, match="num_generations"):
        GRPOConfig(num_generations=1)


def test_bad_cli_input_exits_2(r2rec_home: Path) -> None:
    from r2rec.cli import main

    for argv in (
        ["r2rec", "train", "sft", "--set", "max_steps"],
        ["r2rec", "train", "sft", "--data", "missing", "--set", "base_model=/nonexistent"],
        ["r2rec", "model", "publish", "no-such-run"],
        ["r2rec", "train", "data", "--split", "train"],
    ):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.argv", argv)
            with pytest.raises(SystemExit) as exit_info:
                main()
        assert exit_info.value.code == 2, argv

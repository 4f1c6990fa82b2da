"""The rating task end to end on a tiny model through the command line: rating data, the
RecOne recipe (SFT cold start, then GRPO from it) with MAE/RMSE beside the baselines in
metrics.json and the model card, and bad input exiting with code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r2rec.cli import app, main
from training.config import GRPOConfig, load_config
from training.rating.recipes import recipe_configs
from training.run_folder import run_dir

TINY = [
    "max_length=3072",
    "batch_size=2",
    "save_steps=1",
    "logging_steps=1",
    "eval_limit=2",
    "eval_splits=valid",
    "device=cpu",
    "rating_max_tokens=6",
    "eval_batch_size=2",
]
DATA = "ml-100k-rating-valid-t1-u2"


def _sets(values: list[str], flag: str = "--set") -> list[str]:
    return [arg for value in values for arg in (flag, value)]


def _build_data(runner: CliRunner) -> None:
    args = ["train", "data", "--task", "rating", "--limit-users", "2", "--targets-per-user", "1"]
    built = runner.invoke(app, args)
    assert built.exit_code == 0, built.output
    assert json.loads(built.output.splitlines()[-1])["examples"] == 2


@pytest.mark.slow  # a cold start then GRPO, evaluated
def test_recone_cold_start_then_grpo_reports_mae_rmse_and_baselines(
    tiny_model_dir: Path,
) -> None:
    runner = CliRunner()
    _build_data(runner)
    args = [
        "train",
        "grpo",
        "--task",
        "rating",
        "--init",
        "sft",
        "--name",
        "recone",
        "--data",
        DATA,
        "--max-steps",
        "1",
        "--coldstart-steps",
        "1",
        *_sets(
            [*TINY, f"base_model={tiny_model_dir}", "num_generations=2", "max_completion_length=8"]
        ),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cold, grpo = run_dir("recone-coldstart"), run_dir("recone")
    cold_stats = json.loads((cold / "trained.json").read_text())
    assert cold_stats["global_step"] == 1 and cold_stats["rows"] == 2
    stats = json.loads((grpo / "trained.json").read_text())
    assert stats["global_step"] == 1 and stats["start_model"].endswith("recone-coldstart/model")
    assert stats["mean_reward_first"] is not None  # the rating rewards were computed
    for folder in (cold, grpo):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert set(metrics) == {"valid"}
        valid = metrics["valid"]
        assert valid["metrics"]["cases"] == 2
        assert 0 <= valid["metrics"]["MAE"] <= valid["metrics"]["RMSE"] <= 4
        assert set(valid["baselines"]) == {"global_mean", "user_mean", "item_mean", "bias", "mf"}
        assert all(b["cases"] == 2 for b in valid["baselines"].values())
        card = (folder / "README.md").read_text()
        assert "| valid | global_mean | 2 |" in card and "MAE" in card
        assert json.loads((folder / "run.json").read_text())["task"] == "rating"
    # the finished recipe (both runs) is skipped when run again
    written = [(f / "model" / "config.json").stat().st_mtime_ns for f in (cold, grpo)]
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert [(f / "model" / "config.json").stat().st_mtime_ns for f in (cold, grpo)] == written


def test_reczero_starts_grpo_from_the_base_model() -> None:
    shipped = Path(__file__).resolve().parents[2] / "training/configs/rating-grpo-smollm2.yaml"
    assert load_config(GRPOConfig, shipped, {}).task == "rating"
    config = load_config(GRPOConfig, None, {"task": "rating", "name": "rz"})
    sft, grpo = recipe_configs(config, "base")
    assert sft is None and grpo.init_run is None and grpo.data == "ml-100k-rating-valid-t2"
    sft, grpo = recipe_configs(config, "sft", 7, {"lora_r": "8"})
    assert sft is not None and (sft.name, sft.max_steps, sft.lora_r) == ("rz-coldstart", 7, 8)
    assert sft.task == "rating" and sft.data == grpo.data and grpo.init_run == "rz-coldstart"


def _exit_code(argv: list[str]) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["r2rec", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "data", "--task", "nope"], "task must be one of rank, rating"),
        (["train", "sft", "--task", "nope"], "task must be one of rank, rating"),
        (["train", "grpo", "--task", "rating", "--init", "nope"], "--init must be one of"),
        (["train", "grpo", "--init", "sft"], "--init base|sft is for --task rating"),
        (
            ["train", "grpo", "--task", "rating", "--init", "base", "--init-run", "x"],
            "leave init_run unset",
        ),
        (["train", "grpo", "--task", "rating", "--coldstart-steps", "3"], "go with --init sft"),
        (["train", "data", "--task", "rating", "--seed", "3"], "are for --task rank"),
        (["eval", "--task", "nope"], "--task must be rank or rating"),
        (["eval", "--task", "rating", "--model", "sasrec"], "--task rating takes --model"),
    ],
)
def test_bad_rating_cli_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_ranking_dataset_or_run_is_refused_for_the_rating_task(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path
) -> None:
    runner = CliRunner()
    rank = runner.invoke(app, ["train", "data", "--limit-users", "2", "--targets-per-user", "1"])
    assert rank.exit_code == 0, rank.output
    argv = ["train", "sft", "--task", "rating", "--data", "ml-100k-valid-t1-u2-s0"]
    assert _exit_code(argv) == 2
    assert "was built for task rank" in capsys.readouterr().err
    run_dir("ranker").mkdir(parents=True)
    (run_dir("ranker") / "config.yaml").write_text("task: rank\n")
    assert _exit_code(["train", "sft", "--task", "rating", "--name", "ranker"]) == 2
    assert "is a task rank run" in capsys.readouterr().err


def test_eval_task_rating_prints_the_model_beside_the_baselines(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rating.json"
    args = [
        "eval",
        "--task",
        "rating",
        "--split",
        "valid",
        "--limit",
        "3",
        "--checkpoint",
        str(tiny_model_dir),
        "--max-reasoning-tokens",
        "4",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| valid |")]
    assert [r.split("|")[2].strip() for r in rows] == [
        tiny_model_dir.name,
        "global_mean",
        "user_mean",
        "item_mean",
        "bias",
        "mf",
    ]
    saved = json.loads(out.read_text())["valid"]
    assert saved["metrics"]["cases"] == 3 and out.with_suffix(".md").is_file()
    baselines = CliRunner().invoke(
        app, ["eval", "--task", "rating", "--limit", "3", "--out", str(tmp_path / "b.json")]
    )
    assert baselines.exit_code == 0 and "| test | global_mean | 3 |" in baselines.output
    assert "metrics" not in json.loads((tmp_path / "b.json").read_text())["test"]

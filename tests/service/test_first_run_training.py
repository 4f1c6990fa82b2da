"""The first run: with nothing published, `r2rec serve --train` answers at once with the
graph scorer, trains the quick retrain profile in a background child, reports its
progress in /readyz and /metrics, and switches to the trained model once it is published,
without a restart. `--no-train` starts no child.

Real processes (`r2rec serve` under uvicorn, the retrain child) with the tiny model and a
tiny profile. The tiny random model cannot beat the graph scorer, so the end-to-end test's
profile publishes with ``publish_force`` (the gate's refusal is tested in
`tests/training/test_smoke.py` and, as the service shows it, below)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from common.progress import first_run_job, write_progress
from service.settings import Settings
from service.training_child import why_not_train
from tests.harness.net import free_port
from tests.service.test_durability import ROOT, service_env

JOB = first_run_job("ml-100k")


def _profile(path: Path, tiny_model_dir: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "limit_users": 4,
                "targets_per_user": 1,
                "grpo": False,
                "publish_force": True,  # the tiny model loses to the graph scorer
                "sft_config": "training/configs/sft-smollm2.yaml",  # found from any folder
                "sft_overrides": {
                    "base_model": str(tiny_model_dir),
                    "max_steps": 3,
                    "batch_size": 1,
                    "max_length": 3072,
                    "save_steps": 1,
                    "logging_steps": 1,
                    "eval_limit": 3,
                    "device": "cpu",
                },
            }
        )
    )
    return path


def _serve(env: dict[str, str], cwd: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (cwd / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "r2rec"), "serve", "--port", str(port), *flags],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not start")


def _recommend(url: str) -> dict:
    answer = httpx.post(f"{url}/recommend", json={"user_id": "1", "k": 3}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.slow  # a server and a whole (tiny) retrain job in a child process
def test_serve_trains_in_the_background_and_switches_to_the_published_model(
    r2rec_home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = service_env(r2rec_home, tiny_model_dir)
    del env["R2REC_MODEL_PATH"]  # nothing published: the graph scorer must answer
    env.update(
        R2REC_TRAIN_CONFIG=str(_profile(tmp_path / "quick.yaml", tiny_model_dir)),
        R2REC_MODEL_WATCH_S="0.5",
    )
    process, url = _serve(env, tmp_path, "--train")
    try:
        first = _recommend(url)
        assert first["model"] == "graph-scorer" and first["fallback"] is True

        states, stages = set(), set()
        deadline = time.monotonic() + 600
        ready: dict = {}
        while time.monotonic() < deadline:
            ready = httpx.get(f"{url}/readyz", timeout=10).json()
            training = ready.get("training") or {}
            states.add(training.get("state"))
            stages.add(training.get("stage"))
            if ready.get("model", "graph-scorer") != "graph-scorer":
                break
            assert training.get("state") not in ("failed", "stopped"), ready
            time.sleep(0.3)
        assert ready["model"].startswith(f"{JOB}-sft@"), ready
        assert "running" in states and "sft" in stages, (states, stages)
        assert ready["training"]["state"] == "finished" and ready["training"]["published"]

        answer = _recommend(url)
        assert answer["model"] == ready["model"] and answer["fallback"] is False
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert re.search(
            rf'r2rec_training_fraction\{{job="{JOB}",stage="publish",state="finished"\}} 1\.0',
            metrics,
        ), metrics
        assert f'r2rec_training_running{{job="{JOB}"}} 0.0' in metrics
        child_log = (r2rec_home / "runs" / JOB / "child.log").read_text()
        assert "sft step 3/3 (training)" in child_log and "100%" in child_log
        assert "sft step 3/3 (evaluating)" in child_log
    finally:
        process.terminate()
        process.wait(60)


@pytest.mark.slow  # a real server process
def test_no_train_starts_no_child(r2rec_home: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    env = service_env(r2rec_home, tiny_model_dir)
    del env["R2REC_MODEL_PATH"]
    env["R2REC_TRAIN_ON_START"] = "true"  # the flag wins over the setting
    process, url = _serve(env, tmp_path, "--no-train")
    try:
        assert _recommend(url)["model"] == "graph-scorer"
        assert "training" not in httpx.get(f"{url}/readyz", timeout=10).json()
        assert not (r2rec_home / "runs" / JOB).exists()
    finally:
        process.terminate()
        process.wait(60)


def test_readyz_and_metrics_show_a_refused_first_run(make_client, r2rec_home: Path) -> None:
    reason = "validation HR@1 0.0500 does not beat the graph scorer's 0.3400"
    write_progress(
        JOB,
        state="finished",
        stage="publish",
        stage_index=6,
        stages=6,
        published=False,
        reason=reason,
    )
    client = make_client(model_path=None)
    ready = client.get("/readyz").json()
    assert ready["model"] == "graph-scorer"
    assert ready["training"] == {
        "job": JOB,
        "state": "finished",
        "stage": "publish",
        "fraction": 1.0,
        "published": False,
        "reason": reason,
    }
    assert f'r2rec_training_running{{job="{JOB}"}} 0.0' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"train_on_start": False}, "off"),
        ({"llm_backend": "vllm"}, "vLLM"),
        ({"model_path": Path("/m")}, "model path"),
        ({"serve_base_model": True}, "base model"),
        ({"train_config": Path("/no/such.yaml")}, "no training profile"),
    ],
)
def test_training_starts_only_on_a_first_run(
    r2rec_home: Path, overrides: dict, reason: str
) -> None:
    settings = Settings(**{"train_on_start": True, **overrides})
    assert reason in (why_not_train(settings) or "")


def test_a_published_model_means_no_first_run_training(r2rec_home: Path) -> None:
    profile = ROOT / "training" / "configs" / "retrain-quick.yaml"
    settings = Settings(train_on_start=True, train_config=profile)
    assert why_not_train(settings) is None
    (r2rec_home / "models" / "published").mkdir(parents=True)
    (r2rec_home / "models" / "published" / "config.json").write_text("{}")
    assert "published" in (why_not_train(settings) or "")

"""The progress file a batch job writes and the service reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.progress import (
    job_fraction,
    progress_bar,
    progress_path,
    read_progress,
    write_progress,
)


def test_fraction_counts_finished_stages_and_the_current_stage_steps() -> None:
    assert job_fraction(0, 6, None, None) == 0.0
    assert job_fraction(2, 6, 3, 20) == pytest.approx((2 + 3 / 20) / 6)
    assert job_fraction(5, 6, 40, 20) == 1.0  # a step count past the plan is capped
    assert progress_bar(0.5, width=10) == "[#####-----]  50%"


def test_a_running_record_reads_back_and_a_finished_one_is_whole(r2rec_home: Path) -> None:
    write_progress("job", state="running", stage="sft", stage_index=2, stages=6, step=1, steps=4)
    record = read_progress("job")
    assert record is not None and record["state"] == "running" and record["step"] == 1
    assert record["fraction"] == pytest.approx((2 + 0.25) / 6)
    write_progress("job", state="finished", stage="publish", stage_index=6, stages=6, reason="x")
    record = read_progress("job")
    assert record is not None and record["fraction"] == 1.0 and record["reason"] == "x"


def test_a_job_whose_process_is_gone_reads_as_stopped(r2rec_home: Path) -> None:
    code = (
        "from common.progress import write_progress; "
        "write_progress('gone', state='running', stage='data', stage_index=1, stages=6)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    record = read_progress("gone")
    assert record is not None and record["state"] == "stopped"


def test_missing_or_corrupt_progress_is_none(r2rec_home: Path) -> None:
    assert read_progress("never") is None
    path = progress_path("broken")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_progress("broken") is None
    with pytest.raises(ValueError, match="state must be one of"):
        write_progress("job", state="paused", stage="sft", stage_index=0, stages=6)

"""The training-data build over Ray tasks writes exactly what the one-process build
writes (a real local Ray cluster of two workers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.errors import UserInputError
from recdata import load_dataset
from training.data import DataConfig, build_dataset, shard_bases
from training.distributed import build_dataset_ray

CONFIG = DataConfig(dataset="ml-100k", limit_users=12, targets_per_user=1)


def test_shards_partition_the_users() -> None:
    data = load_dataset("ml-100k")
    whole = {b["user_id"] for b in shard_bases(CONFIG, data)}
    parts = [{b["user_id"] for b in shard_bases(CONFIG, data, k, 3)} for k in range(3)]
    assert set().union(*parts) == whole and sum(map(len, parts)) == len(whole) > 0
    with pytest.raises(UserInputError, match="shard must be in"):
        shard_bases(CONFIG, data, 3, 3)


@pytest.mark.slow  # starts a local Ray cluster
def test_ray_build_writes_the_same_dataset_as_one_process(r2rec_home: Path) -> None:
    if os.environ.get("R2REC_REQUIRE_SERVERS") is None:
        pytest.importorskip("ray", reason="Ray not installed (the dev extra installs it)")
    serial = build_dataset(CONFIG, load_dataset("ml-100k"), name="serial")
    spread = build_dataset_ray(CONFIG, shards=3, name="spread", num_cpus=2)
    assert spread.manifest["sha256"] == serial.manifest["sha256"]
    assert spread.manifest["counts"] == serial.manifest["counts"]
    text = (spread.folder / "examples.jsonl").read_text()
    assert text == (serial.folder / "examples.jsonl").read_text() and text.count("\n") > 12

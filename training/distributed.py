"""The training-data build spread over Ray tasks: what runs past one machine (#18).

The build is linear in users once each round's graph is loaded: `training.data`'s
`shard_bases` builds every ``shards``-th user's examples, so each Ray task loads the
dataset, builds its shard, and returns its base examples; the driver merges them and
writes the dataset exactly as the one-process build does (same rows, same sha256; a test
checks it). On one machine ``ray.init()`` starts a local cluster; on a cluster, set
``RAY_ADDRESS`` (or pass ``address``) and the same code fans out over its nodes, each
worker reading the dataset from shared storage ($R2REC_HOME on a shared volume).

    built = build_dataset_ray(DataConfig(dataset="ml-100k"), shards=8)
    r2rec train data --dataset ml-100k --ray-shards 8          # the same, from the CLI

Ray is an optional dependency (``pip install ray``; the dev extra installs it).
"""

from __future__ import annotations

import logging
from typing import Any

from common.errors import UserInputError
from training.data import DataConfig, build_dataset, shard_bases
from training.datasets import BuiltData
from training.rows import RankBase

log = logging.getLogger("r2rec.training")


def _shard_task(config: DataConfig, shard: int, shards: int) -> list[RankBase]:
    from recdata import load_dataset

    return shard_bases(config, load_dataset(config.dataset), shard, shards)


def build_dataset_ray(
    config: DataConfig,
    shards: int,
    name: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    force: bool = False,
) -> BuiltData:
    """Build and write the dataset with ``shards`` Ray tasks (see the module docstring)."""
    if shards < 1:
        raise UserInputError(f"shards must be >= 1, got {shards}")
    try:
        import ray
    except ImportError:
        raise UserInputError("the Ray build needs Ray: pip install ray") from None
    from recdata import load_dataset

    dataset = load_dataset(config.dataset)

    def bases() -> list[RankBase]:
        started = not ray.is_initialized()
        if started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options.update(num_cpus=num_cpus, object_store_memory=256 * 2**20)
            ray.init(address=address, **options)
        try:
            task = ray.remote(_shard_task)
            futures = [task.remote(config, shard, shards) for shard in range(shards)]
            merged: list[RankBase] = []
            for part in ray.get(futures):
                merged += part
            log.info("ray: %d shards, %d base examples", shards, len(merged))
            return merged
        finally:
            if started:
                ray.shutdown()

    return build_dataset(config, dataset, name=name, force=force, bases=bases)

"""The training tasks, looked up by name: ``rank`` (R2Rec list ranking) and ``rating``
(RecZero / RecOne 1-5 rating prediction).

    from training.tasks import TASK_NAMES, get_task
    task = get_task("rating")          # a `Task`; an unknown name is a UserInputError
    task.grpo_rewards(config).funcs    # (rating_format_reward, rating_reward)

The interface is `training.tasks.base.Task`; the implementations are
`training.tasks.ranking.RankingTask` and `training.tasks.rating.RatingTask`. A new task
is a `Task` subclass added to ``_TASKS`` below (its name is the ``task`` field of its
configs, manifests and run folders).
"""

from __future__ import annotations

from typing import Any

from common.errors import UserInputError
from training.tasks.base import DataRequest, GRPORewards, Task
from training.tasks.ranking import RankingTask
from training.tasks.rating import RatingTask

_TASKS: dict[str, Task[Any]] = {task.name: task for task in (RankingTask(), RatingTask())}
TASK_NAMES: tuple[str, ...] = tuple(_TASKS)


def get_task(name: str) -> Task[Any]:
    """The task registered as ``name``; an unknown name is refused with the valid ones."""
    task = _TASKS.get(name)
    if task is None:
        raise UserInputError(f"task must be one of {', '.join(TASK_NAMES)}, got {name!r}")
    return task


__all__ = [
    "TASK_NAMES",
    "DataRequest",
    "GRPORewards",
    "RankingTask",
    "RatingTask",
    "Task",
    "get_task",
]

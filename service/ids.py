"""The id types every endpoint validates, by the one id rule in `common.ids`.

``Id`` is for JSON bodies, ``PathId`` for path parameters; a bad id is a 422 that says why.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, StringConstraints

from common.ids import MAX_ID_LENGTH, id_problem


def _check_id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"id {problem}")
    return value


Id = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_check_id)
]
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_check_id)]

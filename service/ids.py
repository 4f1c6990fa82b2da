"""The id types every endpoint validates: 1-128 characters of letters, digits and . _ : @ + / -"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9._:@+/-]{1,128}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128)]
PathId = Annotated[str, Path(pattern=ID_PATTERN, min_length=1, max_length=128)]

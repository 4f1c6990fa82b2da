"""The one rule for user and item ids, shared by the importer, the graph stores and the API.

An id is a string of 1 to 256 characters with no control characters (Unicode category
Cc) and no lone surrogates (Cs). Spaces, accents and punctuation are allowed, so an
imported catalogue's ``café 1`` is usable everywhere::

    >>> id_problem("café 1") is None
    True
    >>> id_problem("")
    'is empty'
"""

from __future__ import annotations

import unicodedata

MAX_ID_LENGTH = 256


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a usable id (a phrase), or None when it is one."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long (max {MAX_ID_LENGTH})"
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            return f"contains control character {ch!r}"
    return None

"""Read Server-Sent Events from an iterator of text lines (httpx's ``iter_lines``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event name, decoded JSON data) per event; comment lines are skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield name, json.loads("\n".join(data))


def thought_texts(stream: list[tuple[str, Any]]) -> list[str]:
    """The ``thought`` pieces joined per index."""
    texts: dict[int, str] = {}
    for name, data in stream:
        if name == "thought":
            texts[data["index"]] = texts.get(data["index"], "") + data["delta"]
    return [texts[i] for i in sorted(texts)]

"""Stopping an in-process model call early: its deadline passed, or its caller went away.

`StopCheck` is one call's condition; `stop_hooks` adds, once per model, pre-forward hooks
on the model and each decoder layer that raise `Stopped` when the check of the thread
running the model says stop (see `reasoning.backends.transformers_backend`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch


class Stopped(Exception):
    """Raised inside the model's forward pass to abandon a call (deadline or cancellation)."""


class StopCheck:
    """One call's stop condition: its deadline passed, or its caller cancelled it."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.cancelled = threading.Event()

    def __call__(self) -> bool:
        return self.cancelled.is_set() or _past(self.deadline)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def stop_hooks(model: Any) -> dict[int, StopCheck]:
    """The stop checks of the calls running ``model``, by worker thread. Hooks added once
    per model (every backend wrapping it shares them) check, before each forward pass of the
    model and of each of its decoder layers (its longest ``ModuleList``), the check of the
    thread running it, if any, and raise `Stopped` when it says stop, so a call stops
    within one layer. The model running elsewhere (training) has no check: no cost but a
    dictionary lookup."""
    stops: dict[int, StopCheck] | None = getattr(model, "_r2rec_stops", None)
    if stops is not None:
        return stops
    running: dict[int, StopCheck] = {}
    layers = max(
        (m for m in model.modules() if isinstance(m, torch.nn.ModuleList)), key=len, default=()
    )

    def hook(module: Any, args: Any) -> None:
        stop = running.get(threading.get_ident())
        if stop is not None and stop():
            raise Stopped

    for module in (model, *layers):
        module.register_forward_pre_hook(hook)
    model._r2rec_stops = running
    return running

"""Which torch device a training run or its evaluation uses (the ``device`` config field).

    device = resolve_device(config.device)     # "auto" -> "cuda" if torch sees one, else "cpu"

``cuda`` without a CUDA device is refused (a UserInputError, exit code 2 on the CLI).
"""

from __future__ import annotations

from common.errors import UserInputError


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device cuda requested but torch sees no CUDA device")
    return device

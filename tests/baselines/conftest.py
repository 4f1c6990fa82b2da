"""Baseline tests train tiny torch models: one intra-op thread is fastest for them and
avoids thread oversubscription when the suite shares the CPU with other processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

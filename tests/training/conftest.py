"""Fixtures of the training tests: a handful of ML-100K users and a small built dataset."""

from __future__ import annotations

import pytest

from recdata import load_dataset
from recdata.schema import Dataset
from training.data import DataConfig, build_dataset
from training.datasets import BuiltData

SMOKE_USERS = 12


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    return load_dataset("ml-100k")


@pytest.fixture
def smoke_data(ml100k: Dataset) -> BuiltData:
    """Training data of the first few ML-100K users, written under this test's home."""
    return build_dataset(DataConfig(limit_users=SMOKE_USERS), ml100k)

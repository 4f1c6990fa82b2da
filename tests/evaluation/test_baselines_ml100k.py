"""Every non-random baseline beats Random on ML-100K's test split (the protocol's cases).

SASRec runs a short fixed configuration here (no tuning grid) to keep CI fast; the tuned
figures are in results/.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines import BASELINE_NAMES, make_baseline
from evaluation.metrics import summarise, target_ranks
from evaluation.protocol import load_cases, training_log
from recdata import load_dataset

QUICK = {"sasrec": {"max_len": 50, "epochs": 30}, "bpr": {"epochs": 15}}


@pytest.fixture(scope="module")
def ml100k():
    dataset = load_dataset("ml-100k")
    return dataset, training_log(dataset, "test"), load_cases(dataset, "test")


def hr1(name: str, ml100k) -> float:
    dataset, train, cases = ml100k
    ranker = make_baseline(name, **QUICK.get(name, {}))
    ranker.fit(train, dataset.items)
    scores = ranker.rank(cases).scores
    return summarise(target_ranks(scores, np.array([c.target_index for c in cases])))["HR@1"]


@pytest.fixture(scope="module")
def random_hr1(ml100k) -> float:
    return hr1("random", ml100k)


def test_random_is_near_one_in_twenty(random_hr1: float) -> None:
    assert 0.03 < random_hr1 < 0.08


TRAINED = {"sasrec", "bpr"}  # real training on all of ML-100K: tens of seconds each


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.slow] if n in TRAINED else [])
        for n in BASELINE_NAMES
        if n != "random"
    ],
)
def test_baseline_beats_random(name: str, ml100k, random_hr1: float) -> None:
    torch.manual_seed(0)
    assert hr1(name, ml100k) > 2 * random_hr1

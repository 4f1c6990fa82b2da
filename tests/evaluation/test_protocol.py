import hashlib
import json
from pathlib import Path

import pytest

from evaluation.protocol import (
    ProtocolConfig,
    build_cases,
    cases_path,
    load_cases,
    training_log,
)
from tests.factories import make_dataset

N_ITEMS = 60


@pytest.fixture
def toy():
    rows = [
        # u1: 6 interactions; items 3 and 1 share a timestamp -> ordered by item id (1 then 3)
        ("u1", "5", 10),
        ("u1", "3", 20),
        ("u1", "1", 20),
        ("u1", "7", 30),
        ("u1", "9", 40),
        ("u1", "2", 50),
        # u2: exactly 5 interactions, given out of order
        ("u2", "4", 5),
        ("u2", "8", 1),
        ("u2", "6", 3),
        ("u2", "5", 2),
        ("u2", "1", 4),
        # u3: 4 interactions -> not evaluated, all in every training log
        ("u3", "1", 1),
        ("u3", "2", 2),
        ("u3", "3", 3),
        ("u3", "4", 4),
    ]
    return make_dataset(rows, N_ITEMS)


def test_leave_one_out_targets_and_histories(toy) -> None:
    test = {c.user_id: c for c in build_cases(toy, "test")}
    valid = {c.user_id: c for c in build_cases(toy, "valid")}
    assert sorted(test) == ["u1", "u2"]  # u3 has < 5 interactions
    # u1 sorted: 5(10) 1(20) 3(20) 7(30) 9(40) 2(50)
    assert test["u1"].target == "2" and test["u1"].history == ("5", "1", "3", "7", "9")
    assert valid["u1"].target == "9" and valid["u1"].history == ("5", "1", "3", "7")
    assert test["u1"].timestamp == 50
    # u2 sorted by time: 8 5 6 1 4
    assert test["u2"].target == "4" and test["u2"].history == ("8", "5", "6", "1")
    assert valid["u2"].target == "1" and valid["u2"].history == ("8", "5", "6")


def test_history_is_capped_at_the_ten_most_recent_items() -> None:
    rows = [("u", str(i), i) for i in range(15)]
    case = build_cases(make_dataset(rows, N_ITEMS), "test")[0]
    assert case.target == "14"
    assert case.history == tuple(str(i) for i in range(4, 14))


def test_candidates_are_target_plus_19_never_seen_items(toy) -> None:
    seen = {"u1": {"5", "3", "1", "7", "9", "2"}, "u2": {"4", "8", "6", "5", "1"}}
    for split in ("valid", "test"):
        for case in build_cases(toy, split):
            assert len(case.candidates) == 20 and len(set(case.candidates)) == 20
            assert case.target in case.candidates
            negatives = set(case.candidates) - {case.target}
            assert not negatives & seen[case.user_id]
            assert negatives <= {str(i) for i in range(N_ITEMS)}


def test_candidates_are_shuffled_and_differ_by_seed(toy) -> None:
    positions = {
        build_cases(toy, "test", ProtocolConfig(seed=s))[0].target_index for s in range(20)
    }
    assert len(positions) > 5
    a = build_cases(toy, "test", ProtocolConfig(seed=0))
    b = build_cases(toy, "test", ProtocolConfig(seed=1))
    assert a[0].candidates != b[0].candidates


def test_users_without_enough_unseen_items_are_skipped() -> None:
    rows = [("u", str(i), i) for i in range(10)]
    assert build_cases(make_dataset(rows, 25), "test") == []  # only 15 unseen < 19
    assert len(build_cases(make_dataset(rows, 29), "test")) == 1


def test_training_log_holds_only_what_precedes_each_target(toy) -> None:
    test_log = training_log(toy, "test")
    valid_log = training_log(toy, "valid")
    pairs = lambda log: set(zip(log.user_id, log.item_id, strict=True))  # noqa: E731
    assert ("u1", "2") not in pairs(test_log) and ("u1", "9") in pairs(test_log)
    assert ("u1", "9") not in pairs(valid_log) and ("u1", "2") not in pairs(valid_log)
    assert ("u2", "4") not in pairs(test_log) and ("u2", "1") not in pairs(valid_log)
    assert {("u3", str(i)) for i in range(1, 5)} <= pairs(valid_log)  # not evaluated: kept
    assert len(test_log) == 15 - 2 and len(valid_log) == 15 - 4


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_case_files_are_reproducible_bit_for_bit(toy, tmp_path: Path) -> None:
    load_cases(toy, "test", root=tmp_path / "a")
    load_cases(toy, "test", root=tmp_path / "b")
    a, b = (
        _digest(cases_path("toy", 0, tmp_path / "a")),
        _digest(cases_path("toy", 0, tmp_path / "b")),
    )
    assert a == b and set(a) == {"manifest.json", "test.jsonl", "valid.jsonl"}


def test_case_files_are_written_once_and_rebuilt_when_data_changes(toy, tmp_path: Path) -> None:
    first = load_cases(toy, "test", root=tmp_path)
    folder = cases_path("toy", 0, tmp_path)
    mtime = (folder / "test.jsonl").stat().st_mtime_ns
    assert load_cases(toy, "test", root=tmp_path) == first
    assert (folder / "test.jsonl").stat().st_mtime_ns == mtime  # reused, not rewritten
    changed = make_dataset(
        [
            *zip(
                toy.interactions.user_id,
                toy.interactions.item_id,
                toy.interactions.timestamp,
                strict=True,
            ),
            ("u2", "30", 9),
        ],
        N_ITEMS,
    )
    rebuilt = load_cases(changed, "test", root=tmp_path)
    assert {c.user_id: c.target for c in rebuilt}["u2"] == "30"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["test"]["cases"] == 2


@pytest.mark.parametrize(("name", "users"), [("ml-100k", 943), ("ml-latest-small", 671)])
def test_builtin_datasets_yield_one_case_per_qualifying_user(name: str, users: int) -> None:
    from recdata import load_dataset

    dataset = load_dataset(name)
    cases = build_cases(dataset, "test")
    assert len(cases) == users  # every user in both sets has >= 20 ratings
    known = set(dataset.items.item_id)
    assert all(set(c.candidates) <= known and len(c.history) == 10 for c in cases)

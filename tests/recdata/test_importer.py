"""The import path end to end through the real CLI: good files land, bad ones say where."""

import subprocess
import sys
from pathlib import Path

import pytest

from recdata import available_datasets, load_dataset

ITEMS = "item_id,title,genres\n1,Alpha,Drama\n2,Beta,\n3,Gamma,Comedy\n"


def run_import(tmp_path: Path, interactions: str, items: str = ITEMS, *extra: str):
    (tmp_path / "inter.csv").write_text(interactions)
    (tmp_path / "items.csv").write_text(items)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "r2rec",
            "data",
            "import",
            str(tmp_path / "inter.csv"),
            str(tmp_path / "items.csv"),
            "--name",
            "shop",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_valid_import_is_loadable_by_name(tmp_path: Path, r2rec_home: Path) -> None:
    done = run_import(
        tmp_path,
        "user_id,item_id,timestamp,rating\n"
        "a,1,1700000000,4\na,2,2023-11-14T22:13:21Z,3.5\na,2,2023-11-14T22:13:21Z,3.5\nb,3,5,\n",
    )
    assert done.returncode == 0, done.stderr
    assert "1 exact duplicates dropped" in done.stdout
    assert "shop" in available_datasets()
    ds = load_dataset("shop")
    assert ds.summary() == {"users": 2, "items": 3, "interactions": 3}
    log = ds.interactions.set_index(["user_id", "item_id"])
    assert log.loc[("a", "2"), "timestamp"] == 1700000001
    assert log.loc[("a", "2"), "rating"] == 3.5 and log["rating"].isna().sum() == 1
    assert ds.titles["2"] == "Beta" and "genres" in ds.items.columns


@pytest.mark.parametrize(
    ("interactions", "items", "message"),
    [
        ("user_id,item_id\na,1\n", ITEMS, "inter.csv, column 'timestamp': missing column"),
        (
            "user_id,item_id,timestamp\na,1,10\na,2,last tuesday\n",
            ITEMS,
            "inter.csv, row 2, column 'timestamp': unparsable timestamp 'last tuesday'",
        ),
        (
            "user_id,item_id,timestamp\na,1,10\na,9,11\n",
            ITEMS,
            "inter.csv, row 2, column 'item_id': item '9' is not in items.csv",
        ),
        (
            "user_id,item_id,timestamp\na,1,10\n",
            "item_id,title\n1,A\n2,B\n1,C\n",
            "items.csv, row 3, column 'item_id': duplicate item id '1'",
        ),
        ("", ITEMS, "inter.csv: file is empty"),
        ("user_id,item_id,timestamp\n", ITEMS, "inter.csv: file has a header but no rows"),
        ("user_id,item_id,timestamp\n,1,10\n", ITEMS, "inter.csv, row 1, column 'user_id'"),
        (
            "user_id,item_id,timestamp,rating\na,1,10,five\n",
            ITEMS,
            "inter.csv, row 1, column 'rating': rating 'five' is not a number",
        ),
        ("user_id,item_id,timestamp\na,1,10\n", "item_id,name\n1,A\n", "items.csv, column 'title'"),
    ],
)
def test_malformed_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, r2rec_home: Path, interactions: str, items: str, message: str
) -> None:
    done = run_import(tmp_path, interactions, items)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    datasets = r2rec_home / "datasets"
    assert not datasets.exists() or not any(datasets.iterdir())


def test_a_failed_reimport_keeps_the_previous_dataset(tmp_path: Path, r2rec_home: Path) -> None:
    assert run_import(tmp_path, "user_id,item_id,timestamp\na,1,10\n").returncode == 0
    bad = run_import(tmp_path, "user_id,item_id,timestamp\na,1,oops\n", ITEMS, "--force")
    assert bad.returncode == 2
    assert load_dataset("shop").summary()["interactions"] == 1
    assert [p.name for p in (r2rec_home / "datasets").iterdir()] == ["shop"]


def test_existing_names_need_force_and_builtin_names_are_reserved(tmp_path: Path) -> None:
    assert run_import(tmp_path, "user_id,item_id,timestamp\na,1,10\n").returncode == 0
    again = run_import(tmp_path, "user_id,item_id,timestamp\na,1,10\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    forced = run_import(tmp_path, "user_id,item_id,timestamp\na,1,10\nb,2,11\n", ITEMS, "--force")
    assert forced.returncode == 0
    assert load_dataset("shop").summary()["users"] == 2


def test_unknown_dataset_names_list_the_available_ones() -> None:
    from common.errors import UserInputError

    with pytest.raises(UserInputError, match="available: ml-100k, ml-latest-small"):
        load_dataset("nope")

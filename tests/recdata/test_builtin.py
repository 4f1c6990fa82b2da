import pytest

from recdata import load_dataset
from recdata.builtin import split_title_year


@pytest.mark.parametrize(
    ("name", "users", "items", "interactions"),
    [("ml-100k", 943, 1682, 100_000), ("ml-latest-small", 671, 9066, 100_004)],
)
def test_builtin_sizes_and_schema(name: str, users: int, items: int, interactions: int) -> None:
    ds = load_dataset(name)
    assert ds.summary() == {"users": users, "items": items, "interactions": interactions}
    assert set(ds.interactions.item_id) <= set(ds.items.item_id)
    assert ds.items.item_id.is_unique
    assert {"title", "year", "genres"} <= set(ds.items.columns)
    assert ds.interactions.rating.between(0.5, 5).all()


def test_ml100k_titles_are_split_from_their_years() -> None:
    ds = load_dataset("ml-100k")
    toy = ds.items.set_index("item_id").loc["1"]
    assert (toy.title, toy.year) == ("Toy Story", "1995")
    assert "Animation" in toy.genres


def test_split_title_year() -> None:
    assert split_title_year("Seven (Se7en) (1995)") == ("Seven (Se7en)", "1995")
    assert split_title_year("Untitled") == ("Untitled", "")

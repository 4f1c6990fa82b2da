"""Array kernels of the request path (`graph_store.ranking`): gathers over CSR rows,
counts, top-k, membership and pair lookups, each bounded by what it is given, each
checked against its plain numpy definition (``pytest tests/graph_store/test_kernels.py``).

A table over the id space (``np.bincount``, a mark or slot array) beats a sort or a
search by 3-10x at the sizes a request reads, so the kernels use one while that space
is small against the values read, and fall back to a sort or a search past it.

    pos, owner = gather(ptr, rows)          # CSR rows' positions and their row numbers
    users, counts = tally(values, n_users)  # np.unique(values, return_counts=True)
    top = top_k(counts, ranks, 20)          # np.lexsort((ranks, -counts))[:20]
"""

from __future__ import annotations

import numpy as np

IntArray = np.ndarray
NONE = np.zeros(0, dtype=np.int64)
ABSENT = np.iinfo(np.int64).min  # no such pair (times are > -2**62)


def gather(ptr: IntArray, rows: IntArray, cap: int | None = None) -> tuple[IntArray, IntArray]:
    """Positions of CSR rows ``rows`` (each cut to ``cap``) and the row number of each."""
    starts, stops = ptr[rows], ptr[rows + 1]
    if cap is not None:
        stops = np.minimum(stops, starts + cap)
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return NONE, NONE
    owner = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return starts[owner] + offsets, owner


def tally(
    values: IntArray, universe: int, weights: np.ndarray | None = None
) -> tuple[IntArray, np.ndarray]:
    """The distinct ``values`` (ascending, all in ``[0, universe)``) with how often each
    occurs (or the sum of its ``weights``), as ``np.unique(..., return_counts=True)``.
    A bincount over the id space when that space is small against the values (no sort:
    the request path's hot spot), else a sort."""
    if len(values) == 0:
        return NONE, np.zeros(0, dtype=np.int64 if weights is None else np.float64)
    if universe <= 8 * len(values) + 4096:
        present = np.bincount(values, minlength=universe)
        distinct = np.flatnonzero(present > 0)  # 3x faster than on the counts themselves
        if weights is None:
            return distinct, present[distinct]
        return distinct, np.bincount(values, weights=weights, minlength=universe)[distinct]
    if weights is None:
        return np.unique(values, return_counts=True)
    distinct, slot = np.unique(values, return_inverse=True)
    return distinct, np.bincount(slot, weights=weights, minlength=len(distinct))


def top_k(primary_desc: IntArray, secondary_asc: IntArray, k: int) -> IntArray:
    """Positions of the first ``k`` in (``primary_desc`` desc, ``secondary_asc`` asc)
    order, as ``np.lexsort((secondary_asc, -primary_desc))[:k]`` for distinct
    ``secondary_asc`` (ranks), sorting only the rows that make the top k: those above the
    k-th largest primary key, and of those tied at it, the smallest secondary keys.

    >>> top_k(np.array([1, 3, 3, 2, 3, 1, 0, 1, 1]), np.arange(9)[::-1], 2).tolist()
    [4, 2]
    """
    if len(primary_desc) <= 4 * k:
        return np.lexsort((secondary_asc, -primary_desc))[:k]
    floor = kth_largest(primary_desc, k)
    above = np.flatnonzero(primary_desc > floor)
    tied = np.flatnonzero(primary_desc == floor)
    need = k - len(above)
    if len(tied) > need:
        tied = tied[np.argpartition(secondary_asc[tied], need - 1)[:need]]
    rows = np.concatenate((above, tied))
    return rows[np.lexsort((secondary_asc[rows], -primary_desc[rows]))]


def kth_largest(values: IntArray, k: int) -> int:
    """The ``k``-th largest of ``values`` (1 <= k <= len). Counts and votes are small
    non-negative ints with many ties, where a histogram beats a partition by ~10x.

    >>> kth_largest(np.array([5, 1, 5, 2, 0]), 3)
    2
    """
    top, low = int(values.max()), int(values.min())
    if low >= 0 and top <= 4 * len(values):
        at_least = np.cumsum(np.bincount(values)[::-1])[::-1]  # [v]: how many are >= v
        return int(np.flatnonzero(at_least >= k)[-1])
    return int(np.partition(values, len(values) - k)[len(values) - k])


def lookup(key: IntArray, key_ts: IntArray, n: int, u: int | IntArray, v: IntArray) -> IntArray:
    """The ts of each (``u``, ``v``) in ascending ``u * n + v`` keys, or ``ABSENT``;
    ``u`` and ``v`` broadcast. One ``u``'s keys are one short run: only that run is
    searched."""
    n = max(n, 1)
    keys = np.asarray(u * n + v, dtype=np.int64)
    if isinstance(u, int | np.integer):
        lo, hi = np.searchsorted(key, np.asarray((u * n, (u + 1) * n)))
        key, key_ts = key[lo:hi], key_ts[lo:hi]
    if len(key) == 0:
        return np.full(keys.shape, ABSENT, dtype=np.int64)
    pos = np.minimum(np.searchsorted(key, keys), len(key) - 1)
    return np.where(key[pos] == keys, key_ts[pos], ABSENT)


def members(values: IntArray, wanted: IntArray, universe: int) -> np.ndarray:
    """Whether each of ``values`` is among ``wanted`` (both in ``[0, universe)``), as
    ``np.isin``: a mark table while the id space is small against the values (4x faster).

    >>> members(np.array([3, 1, 3]), np.array([3, 3, 0]), 4).tolist()
    [True, False, True]
    """
    if universe > 32 * (len(values) + len(wanted)) + 4096:
        return np.isin(values, wanted)
    marked = np.zeros(universe, dtype=bool)
    marked[wanted] = True
    return marked[values]


def slots(values: IntArray, wanted: IntArray, universe: int) -> IntArray:
    """The position in ``wanted`` (distinct, in ``[0, universe)``) of each of ``values``,
    or -1. A table over the id space and one gather while that space is small against
    the values (10x faster than a search), else a search in the sorted ``wanted``.

    >>> slots(np.array([4, 0, 2, 4]), np.array([2, 4]), 5).tolist()
    [1, -1, 0, 1]
    """
    if len(wanted) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    if universe <= 32 * len(values) + 4096:
        table = np.full(universe, -1, dtype=np.int32)
        table[wanted] = np.arange(len(wanted), dtype=np.int32)
        return table[values].astype(np.int64)
    order = np.argsort(wanted)
    at = np.minimum(np.searchsorted(wanted[order], values), len(wanted) - 1)
    return np.where(wanted[order][at] == values, order[at], -1)


def run_ranks(owner: IntArray, n: int) -> IntArray:
    """Each row's place within its run of equal, ascending ``owner`` values.

    >>> run_ranks(np.array([0, 0, 2, 2, 2]), 3).tolist()
    [0, 1, 0, 1, 2]
    """
    sizes = np.bincount(owner, minlength=n)
    return np.arange(len(owner)) - (np.cumsum(sizes) - sizes)[owner]

"""Grouping items by close pairs without chaining: shared by the duplicate texts and duplicate photos of the audit."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix


def representative_groups(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The representative (an index) of each of ``n`` items, given the pairs ``(rows[k], cols[k])`` found close.

    Items are taken in order: the first not yet grouped represents a new group and takes every ungrouped item
    close to it, so each member is close to its group's representative, the group's first item. Connected
    components linked neighbours of neighbours instead: 1,005 different shoes in one photo group, shoes and
    shirts in one text group. An item close to nothing is its own representative.
    """
    close = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    close = (close + close.T).tocsr()
    representative = np.full(n, -1)
    for item in np.flatnonzero(np.diff(close.indptr)):
        if representative[item] >= 0:
            continue
        neighbours = close.indices[close.indptr[item] : close.indptr[item + 1]]
        representative[neighbours[representative[neighbours] < 0]] = item
        representative[item] = item
    alone = representative < 0
    representative[alone] = np.flatnonzero(alone)
    return representative

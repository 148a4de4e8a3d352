"""Grouping items by close pairs without chaining, and the labels conflicting inside a group: shared by the
duplicate texts and duplicate photos of the audit; and the categories written several ways."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix

from prodcat.catalog.schema import SEP, canonical_levels, split_path


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


def conflict_level(labels: Sequence[Any]) -> int:
    """Shallowest category level at which a member's label (``labels[1:]``) differs from the representative's
    (``labels[0]``); 0 when none does or the representative has no label. Members are only known to be
    close to the representative, not to each other, so only those pairs are compared."""
    if pd.isna(labels[0]):
        return 0
    first = canonical_levels(labels[0])
    # paths as training reads them, not strings: "A>B" and "A >  B" are "A > B", and must not hide a deeper conflict
    # with a level of 0
    levels = [_first_differing_level(first, canonical_levels(label)) for label in labels[1:] if not pd.isna(label)]
    return min(filter(None, levels), default=0)


def _first_differing_level(first: list[str], other: list[str]) -> int:
    for level in range(1, max(len(first), len(other)) + 1):
        if first[:level] != other[:level]:
            return level
    return 0


#: how the categories of a group that :func:`spelling_groups` finds may differ, as the warnings say it
SPELLING_DIFFERENCES = "case, accents, spaces, punctuation or symbols"


def label_key(category: str) -> str:
    """A category as compared to find one written several ways: compatibility forms folded, accents dropped, case
    ignored, and of its letters, digits and :data:`_KEPT_SYMBOLS` alone, level by level: 'Shoes', 'shoes.',
    'Computers/Laptops' and 'Computers / Laptops', 'T-Shirts' and 'Tshirts', 'Beauty' and 'Beauty 💄' as hand-typed
    labels give them. What stands between two digits is kept as one mark, whatever it is: '1-2 Years' and '2 - 3'
    are not '12 Years' and '23', '½' is '1/2' and not '12'. A level of no letter or digit ('💄', '***') is compared
    with its spacing collapsed instead."""
    levels = []
    for level in split_path(category):
        letters = unicodedata.normalize("NFKD", level)
        plain = "".join(c for c in letters if not unicodedata.combining(c)).casefold()
        marked = _BETWEEN_DIGITS.sub(_DIGITS_APART, plain)
        kept = "".join(c for c in marked if c.isalnum() or c in _KEPT_SYMBOLS or c == _DIGITS_APART)
        levels.append(kept or " ".join(plain.split()))
    return SEP.join(levels)


#: the symbols that name another category, not another spelling: 'C' / 'C#' / 'C++', 'Grade A' / 'Grade A+'
_KEPT_SYMBOLS = "+#"

#: a run of anything but letters and digits (underscores too) between two digits ('1-2', '2 - 3', '1/2', '½' as NFKD
#: gives it), and the one mark :func:`label_key` keeps of it
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\W_]+(?=\d)")
_DIGITS_APART = "\x00"


def spelling_groups(names: Sequence[str]) -> list[list[str]]:
    """The groups of the category ``names`` (distinct) that are one category written several ways (the same
    :func:`label_key`), each sorted, in the order of their keys."""
    series = pd.Series(names, dtype=object)
    return [sorted(group) for _, group in series.groupby(series.map(label_key).to_numpy()) if len(group) > 1]

"""The audit's duplicate texts: exact (same normalised text) and near (TF-IDF cosine) groups, and their labels."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix

from prodcat.catalog.audit.inputs import MAX_EXAMPLES, snippet
from prodcat.catalog.audit_parser import NEAR_DUPLICATE_SIMILARITY
from prodcat.grouping import conflict_level, representative_groups
from prodcat.progress import progress_bar

_NON_WORD = re.compile(r"\W+")


def normalised_text(clean: str) -> str:
    """Lower case, punctuation and spacing removed: the key of an exact duplicate."""
    return _NON_WORD.sub(" ", clean.lower()).strip()


def duplicate_stats(
    frame: pd.DataFrame,
    clean: Sequence[str],
    similarity: float = NEAR_DUPLICATE_SIMILARITY,
    progress: bool = True,
    lines: Sequence[int] = (),
) -> dict[str, Any]:
    """Exact and near-duplicate texts among products that have text, and groups with conflicting labels; ``members``:
    every product of every group (:func:`duplicate_members`, ``lines``: each product's source line).

    Exact: equal :func:`normalised_text`. Near: cosine similarity of word TF-IDF vectors
    >= ``similarity`` to the group's first text (its representative; texts merely similar to a member are not
    chained in); a near group is reported only if it is more than one exact group. A group's labels conflict
    when a member's differs from the representative's (exact groups: from the first labelled member's).
    """
    keys = np.array([normalised_text(t) for t in clean], dtype=object)
    with_text = np.flatnonzero(keys != "")
    exact_codes = np.full(len(frame), -1)
    exact_codes[with_text] = pd.factorize(keys[with_text])[0]
    labelled = frame["category"].notna().to_numpy()
    # identical texts: any labelled member may stand for the group
    exact_groups = [np.concatenate([g[labelled[g]], g[~labelled[g]]]) for g in _groups(exact_codes)]
    near_codes = np.full(len(frame), -1)
    if len(with_text) > 1:
        near_codes[with_text] = _near_duplicate_groups(keys[with_text], similarity, progress)
    near_groups = [g for g in _groups(near_codes) if len(set(exact_codes[g])) > 1]
    return {
        "similarity_threshold": similarity,
        "exact": _group_report(frame, exact_groups, clean),
        "near": _group_report(frame, near_groups, clean),
        "members": duplicate_members(frame, {"exact": exact_groups, "near": near_groups}, clean, lines),
    }


#: the columns of text_duplicates.csv: one row per product of a duplicate text group
TEXT_DUPLICATE_COLUMNS = (
    "row",
    "product_id",
    "category",
    "kind",
    "group",
    "group_size",
    "first_differing_level",
    "text",
)


def duplicate_members(
    frame: pd.DataFrame, groups: dict[str, list[np.ndarray]], clean: Sequence[str], lines: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """Every product of the duplicate text ``groups`` (by kind, ``exact`` and ``near``; row positions, representative
    first), as records of :data:`TEXT_DUPLICATE_COLUMNS`: its source line (``lines``, else its 1-based position), the
    group's number within its kind, size and :func:`~prodcat.grouping.conflict_level` (``None`` when its labels
    agree), and about 120 characters of the product's cleaned text."""
    categories = frame["category"].to_numpy()
    return [
        {
            "row": int(lines[i]) if lines else int(i) + 1,
            "product_id": str(frame["product_id"].iat[i]),
            "category": None if pd.isna(categories[i]) else str(categories[i]),
            "kind": kind,
            "group": number,
            "group_size": len(members),
            "first_differing_level": level or None,
            "text": snippet(clean[i], 120),
        }
        for kind, found in groups.items()
        for number, members in enumerate(found)
        for level in [conflict_level(categories[members])]
        for i in members
    ]


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """Row positions (ascending) sharing a code (``-1`` = none), for codes held by two or more rows."""
    valid = codes >= 0
    positions = pd.Series(np.flatnonzero(valid)).groupby(codes[valid]).agg(list)
    return [np.asarray(p) for p in positions if len(p) > 1]


def _near_duplicate_groups(texts: np.ndarray, similarity: float, progress: bool) -> np.ndarray:
    """Representative of each text among the pairs with TF-IDF cosine >= ``similarity``
    (:func:`~prodcat.grouping.representative_groups`: the first text of a group, which is its smallest index).

    Words in most products carry no identity, and dropping them (``max_df``) keeps the similarities sparse; the texts
    made of such words alone ("Shirt 1", "Shirt 2" beside "Dress 10"; every text of a small or repetitive catalogue)
    have no word left then, and are compared among themselves on every word.
    """
    rows, cols = [], []
    compared = np.arange(len(texts))
    for max_df in (0.5, 1.0):
        if len(compared) < 2:
            break
        vectors = _tfidf_vectors(texts[compared], max_df)
        if vectors is not None:
            pairs = _similar_pairs(vectors, similarity, progress)
            rows.append(compared[pairs[0]])
            cols.append(compared[pairs[1]])
            compared = compared[vectors.getnnz(axis=1) == 0]
    if not rows:  # no word at all (digits alone)
        return np.arange(len(texts))
    return representative_groups(len(texts), np.concatenate(rows), np.concatenate(cols))


def _similar_pairs(vectors: Any, similarity: float, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(i, j)`` of rows of ``vectors`` with a cosine >= ``similarity`` that
    :func:`~prodcat.grouping.representative_groups` reads, the same groups as from every such pair.

    Equal rows (copies of a text, or texts differing only in what the vectoriser drops) are compared once: each
    is paired with its first copy, and the first copy of each of two similar rows with every copy of the other.
    That is all the grouping reads, as only a first copy can begin a group; every pair among ``k`` copies of a
    text would be ``k (k - 1) / 2`` of them (9,000 copies of a title: 2.5 GB). The distinct rows are compared
    block by block as a sparse product, thresholded at once, so that memory stays bounded on large catalogues.
    """
    first, copy_of = _distinct_rows(vectors)
    distinct = vectors[first]
    block = 2000
    rows, cols = [], []
    for start in progress_bar(
        range(0, distinct.shape[0], block), desc="near duplicates", disable=not progress, unit="block"
    ):
        sims = (distinct[start : start + block] @ distinct.T).tocoo()
        keep = (sims.data >= similarity) & (sims.row + start != sims.col)
        rows.append(sims.row[keep] + start)
        cols.append(sims.col[keep])
    similar = coo_matrix(
        (np.ones(sum(map(len, rows)), dtype=np.int8), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(first), len(first)),
    ).tocsr()
    copies = coo_matrix(
        (np.ones(len(copy_of), dtype=np.int8), (copy_of, np.arange(len(copy_of)))), shape=(len(first), len(copy_of))
    ).tocsr()
    to_copies = (similar @ copies).tocoo()  # the first copy of a row, paired with every copy of each similar row
    own = np.flatnonzero(first[copy_of] != np.arange(len(copy_of)))
    own = own[vectors[own].getnnz(axis=1) > 0]  # rows of no word are equal, and similar to nothing
    return np.concatenate([first[to_copies.row], first[copy_of[own]]]), np.concatenate([to_copies.col, own])


def _distinct_rows(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(first, copy_of)``: the index of the first of each distinct row of the CSR ``vectors``, ``(d,)``, and which
    of them each row equals, ``(n,)``."""
    vectors = vectors.sorted_indices()  # equal rows, equal bytes
    bounds = zip(vectors.indptr[:-1], vectors.indptr[1:], strict=True)
    seen: dict[tuple[bytes, bytes], int] = {}
    copy_of = np.array(
        [seen.setdefault((vectors.indices[a:b].tobytes(), vectors.data[a:b].tobytes()), len(seen)) for a, b in bounds]
    )
    first = np.unique(copy_of, return_index=True)[1]
    return first, copy_of


def _tfidf_vectors(texts: np.ndarray, max_df: float) -> Any:
    """Word TF-IDF rows (CSR) of ``texts`` without the words in more than a ``max_df`` share of them, ``None`` when
    no word is left."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(sublinear_tf=True, max_df=max_df, min_df=1, dtype=np.float32).fit_transform(texts)
    except ValueError:  # sklearn's "After pruning, no terms remain" / "empty vocabulary"
        return None


def _group_report(frame: pd.DataFrame, groups: list[np.ndarray], clean: Sequence[str]) -> dict[str, Any]:
    """Counts and examples of duplicate groups (representative first); a conflict is reported with the shallowest
    level that differs."""
    categories = frame["category"].to_numpy()
    levels = [(members, conflict_level(categories[members])) for members in groups]
    conflicts = [(members, level) for members, level in levels if level]
    conflicts.sort(key=lambda item: (item[1], -len(item[0])))
    return {
        "groups": len(groups),
        "products": int(sum(len(g) for g in groups)),
        "redundant_products": int(sum(len(g) - 1 for g in groups)),
        "conflicting_groups": len(conflicts),
        "conflicts_by_level": {str(k): v for k, v in sorted(Counter(level for _, level in conflicts).items())},
        "largest_groups": [_describe_group(frame, g, clean) for g in sorted(groups, key=len, reverse=True)[:10]],
        "conflicts": [
            _describe_group(frame, g, clean) | {"first_differing_level": level} for g, level in conflicts[:MAX_EXAMPLES]
        ],
    }


def _describe_group(frame: pd.DataFrame, members: np.ndarray, clean: Sequence[str]) -> dict[str, Any]:
    rows = frame.iloc[members]
    return {
        "size": len(members),
        "text": snippet(clean[members[0]], 120),
        "product_ids": [str(p) for p in rows["product_id"][:20]],
        "categories": {str(k): int(v) for k, v in rows["category"].value_counts().items()},
    }

"""``prodcat audit``: what is in a catalogue, and what is wrong with it, before training on it.

:func:`audit_catalog` returns one JSON-serialisable dict with these sections:

``summary``     products, labelled products, loader issues by field
``classes``     class counts and imbalance ratio (largest / smallest class) per hierarchy level, categories
                written several ways, categories labelled that have subcategories
``text``        title/description lengths in characters and words, missing titles/descriptions, products with
                neither text nor photo
``languages``   detected language of each product's text
``duplicates``  exact (same normalised text) and near (TF-IDF cosine >= threshold to the group's
                first text) duplicate groups, and the groups whose labels disagree
``markup``      products with HTML tags, HTML entities or mojibake, per field, with examples
``images``      photos missing or unreadable, small, low detail (blur), white borders, colour, exact and perceptual
                duplicates (and those with conflicting labels) — from :mod:`prodcat.image.quality`
``labels``      (``labels=True``) products whose given category disagrees confidently with
                cross-validated predictions (confident learning), with the suggested category, and ``warnings``
                (products not checked...); ``{"skipped": True, "reason": ...}`` when there are too few
                categories or products

:func:`write_audit_report` writes ``audit.json``, a self-contained ``audit.html`` (charts and thumbnails embedded
as base64), and the whole lists the report shows the first rows of: ``input_issues.csv``, ``label_issues.csv``.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import re
import shlex
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from tqdm.auto import tqdm

from prodcat.catalog.audit_parser import NEAR_DUPLICATE_SIMILARITY
from prodcat.catalog.schema import (
    SEP,
    Catalog,
    RowIssue,
    category_at_level,
    deeper_level_warning,
    depth,
    has_image,
    has_text,
    split_path,
)
from prodcat.config import Config
from prodcat.figures import figure_data_uri, figure_fonts
from prodcat.files import write_csv, write_json
from prodcat.formatting import count_text, counted
from prodcat.grouping import conflict_level, representative_groups, spelling_groups
from prodcat.text.clean import HTML_ENTITY, HTML_TAG

#: how many examples (groups, products) each list of the report keeps
MAX_EXAMPLES = 50
#: probability a suggested category must reach: a weak classifier (Rakuten sample, CV accuracy 0.58) otherwise
#: flagged 16.7 % of the products, on suggestions of confidence 0.43-0.53
MIN_SUGGESTION_CONFIDENCE = 0.6
#: share of the products left unchecked (their category in a single fold) above which the label audit, before it
#: starts, names a shallower level that checks more (Flipkart's full paths: 500 of 900 unchecked, level 2: 14)
MAX_UNCHECKED_SHARE = 0.1
#: cross-validated accuracy under which the label audit warns that its suggestions are weak
LOW_CV_ACCURACY = 0.7
#: the whole lists of the report folder, beside audit.json and audit.html
INPUT_ISSUES_CSV = "input_issues.csv"
LABEL_ISSUES_CSV = "label_issues.csv"
#: the files an audit writes or removes in its report folder
AUDIT_FILES = ("audit.json", "audit.html", INPUT_ISSUES_CSV, LABEL_ISSUES_CSV)
#: the fields of a suspected mislabel, the columns of label_issues.csv
LABEL_ISSUE_COLUMNS = (
    "row",
    "product_id",
    "title",
    "image",
    "given",
    "suggested",
    "first_differing_level",
    "confidence",
    "given_probability",
)

# Windows-1252 bytes decoded as Latin-1 ("l\x92ombre"): C1 controls never belong in product text
_C1_CONTROL = re.compile(r"[\x80-\x9f]")
_NON_WORD = re.compile(r"\W+")


# --------------------------------------------------------------------------------------------------
# Sections


def class_balance(categories: pd.Series) -> dict[str, Any]:
    """Per hierarchy level (``"1"``, ``"2"``...; the deepest is the full path): class count, counts,
    imbalance ratio (largest / smallest class), and the categories written several ways."""
    labelled = categories.dropna()
    levels: dict[str, Any] = {}
    max_depth = depth(labelled)
    for level in range(1, max_depth + 1):
        counts = pd.Series(category_at_level(labelled, level)).value_counts()
        levels[str(level)] = {
            "n_classes": len(counts),
            "imbalance_ratio": float(counts.iloc[0] / counts.iloc[-1]),
            "largest": int(counts.iloc[0]),
            "smallest": int(counts.iloc[-1]),
            "singletons": int((counts == 1).sum()),
            "written_several_ways": written_several_ways(counts.index.astype(str), level),
            "counts": {str(k): int(v) for k, v in counts.items()},
        }
    return {
        "n_labelled": len(labelled),
        "depth": max_depth,
        "levels": levels,
        "labelled_above_subcategories": labelled_above_subcategories(labelled),
    }


def labelled_above_subcategories(categories: pd.Series) -> dict[str, Any]:
    """The categories some products are labelled with and others are under ('Kitchen' beside 'Kitchen > Mugs'):
    cut below their depth, these products are a category of their own beside their subcategories, which hold
    products of theirs. How many categories and products, and the largest (with the products under each).

    The paths are compared as training reads them (:func:`~prodcat.catalog.schema.category_at_level`): 'Home  Decor'
    beside 'Home Decor > Vases' is one."""
    counts = pd.Series(category_at_level(categories, None)).value_counts()
    below: Counter[str] = Counter()
    for path, count in counts.items():
        levels = split_path(path)
        for cut in range(1, len(levels)):
            below[SEP.join(levels[:cut])] += count
    found = counts[[below[path] > 0 for path in counts.index]]
    return {
        "categories": len(found),
        "products": int(found.sum()),
        "largest": [
            {"category": str(path), "products": int(count), "products_under": below[path]}
            for path, count in found.head(MAX_EXAMPLES).items()
        ],
    }


#: separators of category levels other than '>' (read by default), which a table's categories may be written with
PATH_SEPARATORS = ("/", "|", "\\", "»", "::")
#: share of the categories a separator must be in for one-level categories to be taken for unsplit paths
UNSPLIT_SHARE = 0.8


def unsplit_separator(categories: pd.Series) -> str | None:
    """The separator one-level categories are paths written with ('Kitchen/Mugs', read as one level unless
    ``--category-sep /`` is given), when one is in most of them; ``None`` otherwise."""
    names = pd.Series(categories.dropna().unique(), dtype=object)
    if len(names) < 2 or depth(names) > 1:
        return None
    shares = {sep: names.str.contains(sep, regex=False).mean() for sep in PATH_SEPARATORS}
    best = max(shares, key=lambda sep: shares[sep])
    return best if shares[best] >= UNSPLIT_SHARE else None


def written_several_ways(names: pd.Index, level: int) -> list[list[str]]:
    """Groups of the category ``names`` (paths cut at ``level``) that are one category written several ways: the
    same but for case or accents ('Kitchen', 'kitchen', 'Kitchén'), which training learns as categories of their
    own (spacing it collapses: :func:`~prodcat.catalog.schema.category_at_level`). Only groups differing at
    ``level`` itself: 'Kitchen > Mugs' and 'kitchen > Mugs' are the level-1 group."""
    paths = [name for name in names if len(split_path(name)) == level]
    return [group for group in spelling_groups(paths) if len({split_path(path)[-1] for path in group}) > 1]


def _length_stats(values: pd.Series) -> dict[str, Any]:
    """Statistics of text lengths (whole numbers), histogram up to the 99th percentile."""
    values = values.to_numpy()
    if not len(values):
        return {}
    stats = _distribution(values, max(1.0, float(np.percentile(values, 99))))
    stats["histogram"]["edges"] = np.round(stats["histogram"]["edges"], 1).tolist()
    return stats | {"max": int(stats["max"])}


def _score_stats(values: pd.Series, top: float | None = None) -> dict[str, Any]:
    """Statistics of a photo score (blur, border ratio), exact; the histogram runs up to ``top`` (default the
    99th percentile, so a few extreme blur scores do not squash it), larger values counted in its last bin."""
    values = values.to_numpy(dtype=float)
    if not len(values):
        return {}
    return _distribution(values, top if top is not None else float(np.percentile(values, 99)) or 1.0)


def _distribution(values: np.ndarray, top: float) -> dict[str, Any]:
    counts, edges = np.histogram(np.minimum(values, top), bins=30, range=(0, top))
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p5": float(np.percentile(values, 5)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def text_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Lengths of the raw title and description, in characters and words, and how many are missing.

    Products with no text (photo-only rows, or markup and punctuation alone: what the model treats as no
    text, :func:`~prodcat.catalog.schema.has_text`) are counted apart (``no_text``), and those of them without a
    photo either (``no_text_nor_photo``: nothing to classify them from); missing titles and descriptions and the
    lengths are over the products that have some text.
    """
    text = has_text(frame)
    with_text = frame[text]
    out: dict[str, Any] = {
        "products_with_text": len(with_text),
        "no_text": int((~text).sum()),
        "no_text_share": float((~text).mean()) if len(frame) else 0.0,
        "no_text_nor_photo": int((~text & ~has_image(frame)).sum()),
    }
    for field in ("title", "description"):
        text = with_text[field].fillna("").astype(str)
        present = text.str.strip() != ""
        out[field] = {
            "missing": int((~present).sum()),
            "missing_share": float((~present).mean()) if len(text) else 0.0,
            "chars": _length_stats(text[present].str.len()),
            "words": _length_stats(text[present].str.split().str.len()),
        }
    return out


def language_stats(clean: Sequence[str], progress: bool = True) -> dict[str, Any]:
    """Language of each product's cleaned text (``und``: no text), as training reads the catalogue
    (:func:`~prodcat.text.clean.catalogue_languages`), counts and shares."""
    from prodcat.text.clean import catalogue_languages

    languages = catalogue_languages(clean, progress=progress)
    counts = Counter(languages)
    total = max(1, len(languages))
    return {
        "counts": dict(counts.most_common()),
        "shares": {k: v / total for k, v in counts.most_common()},
        "per_product": languages,
    }


def markup_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Products whose raw title/description hold HTML tags, HTML entities or mojibake (ftfy's detector
    or stray C1 control characters), per field, with a few examples of each."""
    from ftfy.badness import is_bad

    out: dict[str, Any] = {}
    any_problem = np.zeros(len(frame), dtype=bool)
    for field in ("title", "description"):
        text = frame[field].fillna("").astype(str)
        checks = {
            "html_tags": text.str.contains(HTML_TAG),
            "html_entities": text.str.contains(HTML_ENTITY),
            "mojibake": text.map(is_bad).astype(bool) | text.str.contains(_C1_CONTROL),
        }
        out[field] = {}
        for name, found in checks.items():
            found = found.to_numpy()
            any_problem |= found
            out[field][name] = {
                "products": int(found.sum()),
                "examples": [
                    {"product_id": str(pid), "text": _snippet(t, pattern=_pattern_for(name))}
                    for pid, t in zip(frame["product_id"][found][:5], text[found][:5], strict=True)
                ],
            }
    out["products_with_any"] = int(any_problem.sum())
    return out


def _pattern_for(check: str) -> re.Pattern[str] | None:
    return {"html_tags": HTML_TAG, "html_entities": HTML_ENTITY, "mojibake": _C1_CONTROL}.get(check)


def _snippet(text: str, width: int = 160, pattern: re.Pattern[str] | None = None) -> str:
    """About ``width`` characters of ``text`` around the first match of ``pattern`` (its start otherwise)."""
    match = pattern.search(text) if pattern is not None else None
    start = max(0, match.start() - width // 3) if match else 0
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def normalised_text(clean: str) -> str:
    """Lower case, punctuation and spacing removed: the key of an exact duplicate."""
    return _NON_WORD.sub(" ", clean.lower()).strip()


def duplicate_stats(
    frame: pd.DataFrame,
    clean: Sequence[str],
    similarity: float = NEAR_DUPLICATE_SIMILARITY,
    progress: bool = True,
) -> dict[str, Any]:
    """Exact and near-duplicate texts among products that have text, and groups with conflicting labels.

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
    }


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
    for start in tqdm(range(0, distinct.shape[0], block), desc="near duplicates", disable=not progress, unit="block"):
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
        "text": _snippet(clean[members[0]], 120),
        "product_ids": [str(p) for p in rows["product_id"][:20]],
        "categories": {str(k): int(v) for k, v in rows["category"].value_counts().items()},
    }


def image_stats(frame: pd.DataFrame, progress: bool = True) -> dict[str, Any]:
    """Photo availability, decoding failures, quality scores and duplicate photos (exact and perceptual)."""
    from prodcat.image.quality import LOW_DETAIL_THRESHOLD, SMALL_SIDE, find_duplicate_images, quality_frame

    has_path = frame["image"].notna().to_numpy()
    scores = quality_frame(frame, progress=progress)
    failed = has_path & scores["error"].notna().to_numpy()
    usable = scores[scores["error"].isna()]
    out: dict[str, Any] = {
        "with_photo": int(has_path.sum()),
        "without_photo": int((~has_path).sum()),
        "unreadable": int(failed.sum()),
        "unreadable_reasons": {str(k): int(v) for k, v in scores["error"][failed].value_counts().items()},
        "unreadable_examples": [
            {"product_id": str(pid), "image": str(path), "error": str(err)}
            for pid, path, err in zip(
                frame["product_id"][failed][:MAX_EXAMPLES],
                frame["image"][failed][:MAX_EXAMPLES],
                scores["error"][failed][:MAX_EXAMPLES],
                strict=True,
            )
        ],
        "usable": len(usable),
    }
    if len(usable):
        border = usable["border_ratio"].astype(float)
        out["quality"] = {
            # low variance of the Laplacian: blurry, but more often a smooth product; not "blurry" then
            "low_detail_threshold": LOW_DETAIL_THRESHOLD,
            "low_detail": int(usable["low_detail"].astype(bool).sum()),
            "small_side": SMALL_SIDE,
            "small": int(usable["small"].astype(bool).sum()),
            "blur": _score_stats(usable["blur"]),
            "border_ratio": _score_stats(border, top=1.0),
            "large_white_border": int((border > 0.5).sum()),
            "size": {
                "median_width": float(usable["width"].median()),
                "median_height": float(usable["height"].median()),
                "min_side": int(np.minimum(usable["width"], usable["height"]).min()),
                "max_side": int(np.maximum(usable["width"], usable["height"]).max()),
            },
            "colour": {
                key: float(usable[key].astype(float).mean())
                for key in ("brightness", "saturation", "white_share", "dark_share")
            },
            "least_detailed": _examples(frame, usable.nsmallest(8, "blur"), "blur"),
            "largest_borders": _examples(frame, usable.nlargest(8, "border_ratio"), "border_ratio"),
        }
        duplicates = find_duplicate_images(frame, qualities=scores, progress=progress)
        out["duplicates"] = _image_duplicate_report(frame, duplicates)
    return out


def _examples(frame: pd.DataFrame, rows: pd.DataFrame, score: str) -> list[dict[str, Any]]:
    return [
        {
            "product_id": str(frame.at[i, "product_id"]),
            "image": frame.at[i, "image"],
            "category": frame.at[i, "category"],
            score: float(rows.at[i, score]),
        }
        for i in rows.index
    ]


def _image_duplicate_report(frame: pd.DataFrame, duplicates: pd.DataFrame) -> dict[str, Any]:
    """Counts of duplicate photo groups and their conflicts, by the shallowest level at which a member's label
    differs from the representative's (Flipkart's full paths end with brand and product: level 1-2 matters)."""
    if duplicates.empty:
        return {
            "groups": 0,
            "products": 0,
            "exact_groups": 0,
            "perceptual_groups": 0,
            "conflicting_groups": 0,
            "conflicts_by_level": {},
            "conflicts": [],
        }
    image_of = dict(zip(frame["product_id"].astype(str), frame["image"], strict=True))
    groups = duplicates.groupby("group")
    kinds = groups["kind"].first()
    levels = groups["conflict_level"].first()
    conflicting = levels[levels > 0].sort_values(kind="stable")
    return {
        "groups": len(kinds),
        "products": len(duplicates),
        "exact_groups": int((kinds == "exact").sum()),
        "perceptual_groups": int((kinds == "perceptual").sum()),
        "conflicting_groups": len(conflicting),
        "conflicts_by_level": {str(k): int(v) for k, v in conflicting.value_counts().sort_index().items()},
        "conflicts": [
            {
                "kind": kinds[g],
                "first_differing_level": int(level),
                "product_ids": rows["product_id"].astype(str).tolist()[:20],
                "categories": {str(k): int(v) for k, v in rows["label"].value_counts().items()},
                "images": [image_of.get(p) for p in rows["product_id"].astype(str)[:4]],
            }
            for g, level in conflicting.head(MAX_EXAMPLES).items()
            for rows in [groups.get_group(g)]
        ],
    }


# --------------------------------------------------------------------------------------------------
# Label noise (confident learning)


def confident_label_issues(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confident learning (Northcutt et al. 2021), the ``confident_learning`` filter of cleanlab.

    Args:
        labels: given class index of each product, shape ``(n,)``.
        proba: out-of-fold predicted probabilities, shape ``(n, n_classes)``.

    Returns:
        ``(is_issue, suggested)``, both shape ``(n,)``. Class ``j``'s threshold is the mean
        probability of ``j`` among products labelled ``j`` (its average self-confidence). A product
        *confidently belongs* to the classes whose probability reaches their threshold; among those,
        the most probable is ``suggested`` (-1: none), and the product is an issue when that class is
        not its given one and its most probable class is not its given one either.
    """
    n_classes = proba.shape[1]
    sums = np.bincount(labels, weights=proba[np.arange(len(labels)), labels], minlength=n_classes)
    counts = np.bincount(labels, minlength=n_classes)
    # a class with no member can never be confidently suggested
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    above = proba >= thresholds
    suggested = np.where(above.any(axis=1), np.where(above, proba, -1.0).argmax(axis=1), -1)
    # as cleanlab's find_label_issues: a product predicted as its given label is never an issue, even
    # when a class with a near-zero threshold (a lone member, absent from its training folds) "claims" it
    predicted = proba.argmax(axis=1)
    return (suggested >= 0) & (suggested != labels) & (predicted != labels), suggested


def label_issues(
    frame: pd.DataFrame,
    config: Config | None = None,
    folds: int = 5,
    progress: bool = True,
    lines: Sequence[int] = (),
) -> dict[str, Any]:
    """Products whose given category (cut at ``config.target_level``) disagrees confidently with their
    cross-validated prediction, most suspicious first (lowest probability of the given label). A product whose
    category has no product in the other folds cannot be checked (``n_unchecked``, and a warning).

    When the catalogue is too small or has a single category
    (:func:`~prodcat.evaluate.cv.cross_validation_obstacle`), nothing is fitted and the result is
    ``{"skipped": True, "reason": ...}`` with the settings and the warnings.
    """
    from prodcat.evaluate.cv import cross_validate, cross_validation_obstacle

    labelled, config, warnings = _checked_products(frame, config or Config(), lines)
    level = config.target_level or 0  # 0: the full path, as --level 0
    obstacle = cross_validation_obstacle(labelled, config, folds)
    if obstacle:
        return {
            "skipped": True,
            "reason": f"label audit skipped: {obstacle}",
            "level": level,
            "folds": folds,
            "seed": config.seed,
            "n_labelled": len(labelled),
            # which products were left out: the reason may be that none is left
            "warnings": warnings,
        }
    unchecked = unchecked_products(labelled, config, folds)
    if unchecked.any():
        warnings.append(f"{unchecked_warning(int(unchecked.sum()))} (most often a category of a single product)")
    cv = cross_validate(labelled, config, folds=folds, progress=progress)
    classes = np.asarray(cv.classes)
    given = np.searchsorted(classes, cv.y_true)
    is_issue, suggested = confident_label_issues(given, cv.proba)
    rows = np.arange(len(given))
    is_issue &= (cv.proba[rows, suggested] >= MIN_SUGGESTION_CONFIDENCE) & ~unchecked
    found = np.flatnonzero(is_issue)
    given_probability = cv.proba[rows, given]
    found = found[np.argsort(given_probability[found], kind="stable")]
    accuracy = float((cv.y_pred == cv.y_true).mean())
    return {
        "level": level,
        "default_classifier": _is_default_classifier(config),
        "modalities": sorted({modality for used in cv.modalities_used for modality in used}),
        "folds": folds,
        "seed": config.seed,
        "n_labelled": len(labelled),
        "cv_accuracy": accuracy,
        "warnings": warnings + _weak_classifier_warning(accuracy),
        "min_suggestion_confidence": MIN_SUGGESTION_CONFIDENCE,
        "n_unchecked": int(unchecked.sum()),
        "n_issues": len(found),
        "issue_share": len(found) / max(1, len(labelled)),
        "issues": [
            {
                "row": int(labelled.at[i, "row"]),
                "product_id": str(labelled.at[i, "product_id"]),
                "title": str(labelled.at[i, "title"]),
                "image": labelled.at[i, "image"],
                "given": str(cv.y_true[i]),
                "suggested": str(classes[suggested[i]]),
                # how grave the disagreement is: a top-level category against another brand under one category
                "first_differing_level": conflict_level([cv.y_true[i], classes[suggested[i]]]),
                "confidence": float(cv.proba[i, suggested[i]]),
                "given_probability": float(given_probability[i]),
            }
            for i in found
        ],
    }


def _checked_products(
    frame: pd.DataFrame, config: Config, lines: Sequence[int] = ()
) -> tuple[pd.DataFrame, Config, list[str]]:
    """The products the label audit reads (labelled, with a modality it reads; ``row``: their line), the config
    whose level it checks (the full path when ``config``'s is deeper than the paths go), and the warnings
    saying which products it leaves out."""
    from prodcat.commands import unreadable_photos
    from prodcat.evaluate.labelled import readable_by

    labelled = frame.assign(row=list(lines) or range(1, len(frame) + 1))[frame["category"].notna()]
    # a product with none of the modalities read (no text nor photo, by default) can only get the prior
    readable = readable_by(labelled, config.modalities)
    labelled = labelled[readable].reset_index(drop=True)
    # so can one read from its photo alone when that photo does not decode: left out, as train and cv leave it
    undecodable = list(unreadable_photos(Catalog(labelled), config))
    labelled = labelled.drop(index=undecodable).reset_index(drop=True)
    warnings = []
    if unread := int((~readable).sum()):
        read = " nor ".join({"text": "text", "image": "a photo"}[m] for m in config.modalities or ("text", "image"))
        warnings.append(f"{_labelled_products_have(unread)} no {read}: not checked")
    if undecodable:
        warnings.append(
            f"{_labelled_products_have(len(undecodable))} only a photo to read, which does not decode: not checked"
        )
    if too_deep := deeper_level_warning(labelled["category"], config.target_level, "checked"):
        warnings.append(too_deep)
        config = config.model_copy(update={"level": None})
    return labelled, config, warnings


def _labelled_products_have(count: int) -> str:
    return f"{count_text(count)} labelled product{'s have' if count > 1 else ' has'}"


def unchecked_products(labelled: pd.DataFrame, config: Config, folds: int) -> np.ndarray:
    """``(n,)`` bool: the ``labelled`` products whose category (at ``config``'s level) has no product in the other
    folds of :func:`~prodcat.evaluate.cv.cross_validate`'s split, replayed before anything is fitted.

    The classifier that predicts such a product never learnt its category: its probability there is 0
    whatever the label's worth (205 of 236 Flipkart products flagged at the full path were such lone ones).
    """
    from prodcat.models.classifier import as_labels
    from prodcat.models.heads import class_in_other_folds, held_out_folds

    categories = category_at_level(as_labels(labelled["category"]), config.target_level)
    return ~class_in_other_folds(categories, held_out_folds(categories, folds, config.seed))


def unchecked_warning(count: int) -> str:
    """What the label audit says of the ``count`` products :func:`unchecked_products` finds, before and after."""
    return (
        f"{count_text(count)} {'product is' if count == 1 else 'products are'} not checked: their category has no"
        " product in the other folds, so the classifier that predicted them never learnt it"
    )


def label_audit_outlook(frame: pd.DataFrame, config: Config, folds: int) -> str | None:
    """Said before the label audit's hours of fitting: how many of ``frame``'s products it will not check at
    ``config``'s level, and, when that is more than :data:`MAX_UNCHECKED_SHARE` of them, the deepest shallower level
    that leaves at most that share unchecked; ``None`` when every product is checked, or when the audit is skipped."""
    from prodcat.evaluate.cv import cross_validation_obstacle

    labelled, config, _ = _checked_products(frame, config)
    if cross_validation_obstacle(labelled, config, folds):  # no folds to replay: the audit says why it is skipped
        return None
    count = int(unchecked_products(labelled, config, folds).sum())
    if not count:
        return None
    outlook = unchecked_warning(count) + f" ({count_text(count)} of {count_text(len(labelled))})"
    if count <= MAX_UNCHECKED_SHARE * len(labelled):
        return outlook
    deepest = (config.target_level or depth(labelled["category"])) - 1
    for level in range(deepest, 0, -1):
        shallower = config.model_copy(update={"level": level})
        if (missed := int(unchecked_products(labelled, shallower, folds).sum())) <= MAX_UNCHECKED_SHARE * len(labelled):
            return f"{outlook}; --level {level} checks {count_text(len(labelled) - missed)} of them"
    return outlook


def _is_default_classifier(config: Config) -> bool:
    """Whether ``config`` is the default one, but for what the audit's options set (--level, --modalities)."""
    options = {"level", "modalities"}
    return config.model_dump(exclude=options) == Config().model_dump(exclude=options)


def _weak_classifier_warning(accuracy: float) -> list[str]:
    if accuracy >= LOW_CV_ACCURACY:
        return []
    return [
        f"cross-validated accuracy is {accuracy:.2f} (< {LOW_CV_ACCURACY}): the classifier is weak, so its"
        " suggestions are too; treat them as leads, not corrections"
    ]


# --------------------------------------------------------------------------------------------------
# The whole audit


def audit_catalog(
    catalog: Catalog,
    *,
    images: bool = True,
    labels: bool = False,
    label_config: Config | None = None,
    folds: int = 5,
    similarity: float = NEAR_DUPLICATE_SIMILARITY,
    progress: bool = True,
) -> dict[str, Any]:
    """Audit a loaded catalogue; see the module docstring for the sections of the result.

    ``images=False`` skips decoding the photos (the slow part); ``labels=True`` adds the
    label-noise section, from ``folds``-fold cross-validation of ``label_config``
    (a :class:`prodcat.config.Config`, default configuration when ``None``).
    """
    from prodcat.catalog.schema import product_text
    from prodcat.text.clean import clean_texts

    frame = catalog.frame.reset_index(drop=True)
    clean = clean_texts(tqdm(product_text(frame), desc="cleaning text", disable=not progress, unit="product"))
    issues_by_field = Counter(issue.field for issue in catalog.issues)
    result: dict[str, Any] = {
        "source": catalog.source,
        "format": catalog.format,
        "summary": {
            "products": len(frame),
            "labelled": int(frame["category"].notna().sum()),
            "loader_issues": len(catalog.issues),
            "loader_issues_by_field": dict(issues_by_field.most_common()),
        },
        "loader_issues": [
            {"row": i.row, "field": i.field, "product_id": i.product_id, "message": i.message}
            for i in catalog.issues[: MAX_EXAMPLES * 4]
        ],
        "classes": class_balance(frame["category"])
        | {"unsplit_separator": unsplit_separator(frame["category"]) if catalog.format in ("csv", "parquet") else None},
        "text": text_stats(frame),
    }
    languages = language_stats(clean, progress)
    result["languages"] = {k: v for k, v in languages.items() if k != "per_product"}
    result["duplicates"] = duplicate_stats(frame, clean, similarity, progress)
    result["markup"] = markup_stats(frame)
    if images:
        result["images"] = image_stats(frame, progress)
    else:
        has_path = frame["image"].notna()
        result["images"] = {"with_photo": int(has_path.sum()), "without_photo": int((~has_path).sum()), "skipped": True}
    if labels:
        lines = [catalog.line_of(position) for position in range(len(frame))]
        result["labels"] = label_issues(frame, label_config, folds, progress, lines)
    return result


# --------------------------------------------------------------------------------------------------
# Report


def write_audit_report(result: dict[str, Any], out_dir: str | Path, issues: Sequence[RowIssue] = ()) -> list[Path]:
    """Write ``audit.json`` and the self-contained ``audit.html`` in ``out_dir``, and the lists to act on, whole
    (the report shows their first rows): ``input_issues.csv``, the loader ``issues``, and ``label_issues.csv``,
    the suspected mislabels, most suspicious first. Return the paths written (JSON, HTML, then the CSVs). A list
    with nothing to hold is removed: the folder would keep another run's."""
    from jinja2 import Environment, PackageLoader

    from prodcat.evaluate.report import write_issues

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "audit.json"
    write_json(json_path, result)
    written = [json_path, out_dir / "audit.html"]
    for name in (INPUT_ISSUES_CSV, LABEL_ISSUES_CSV):
        (out_dir / name).unlink(missing_ok=True)
    if issues:
        write_issues(issues, out_dir / INPUT_ISSUES_CSV)
        written.append(out_dir / INPUT_ISSUES_CSV)
    labels = result.get("labels")
    if labels and not labels.get("skipped"):
        write_csv(out_dir / LABEL_ISSUES_CSV, pd.DataFrame(labels["issues"], columns=list(LABEL_ISSUE_COLUMNS)))
        written.append(out_dir / LABEL_ISSUES_CSV)
    # autoescape: product texts carry raw HTML, which must show as text, not run in the report
    env = Environment(loader=PackageLoader("prodcat.catalog", "templates"), autoescape=True)
    env.filters["thumbnail"] = thumbnail
    env.filters["pct"] = lambda x: f"{100 * x:.1f} %"
    html = env.get_template("audit.html.j2").render(audit=result, charts=_charts(result))
    written[1].write_text(html, encoding="utf-8")
    return written


def thumbnail(path: str | None, side: int = 96) -> str:
    """A small JPEG of the photo as a ``data:`` URI ("" when there is no readable photo)."""
    from prodcat.image.decode import ImageDecodeError, load_image

    if not path:
        return ""
    try:
        img = load_image(path, max_side=side)
    except ImageDecodeError:
        return ""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _charts(result: dict[str, Any]) -> dict[str, str]:
    """Charts of the audit as PNG ``data:`` URIs, by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}
    # level -> its 40 largest classes, charted up to 100 classes
    charted = {
        name: list(level["counts"])[:40]
        for name, level in result["classes"]["levels"].items()
        if level["counts"] and level["n_classes"] <= 100
    }
    drawn = {name: [textwrap.shorten(label, 60) for label in labels] for name, labels in charted.items()}
    with figure_fonts(itertools.chain.from_iterable(drawn.values()), "the class charts"):
        for name, labels in charted.items():
            counts = result["classes"]["levels"][name]["counts"]
            fig, ax = plt.subplots(figsize=(8, 0.25 * len(labels) + 1))
            # numeric positions: class names such as "10" must not be read as numbers by matplotlib
            ax.barh(range(len(labels)), [counts[k] for k in labels][::-1])
            ax.set_yticks(range(len(labels)), drawn[name][::-1], parse_math=False)
            ax.set_xlabel("products")
            ax.set_title(f"classes at level {name}" + (" (40 largest)" if len(counts) > 40 else ""))
            charts[f"classes_{name}"] = figure_data_uri(fig, dpi=90)
    histograms = [
        (f"{field} {unit}", result["text"][field][unit])
        for field in ("title", "description")
        for unit in ("chars", "words")
        if result["text"][field][unit]
    ]
    if histograms:
        fig, axes = plt.subplots(1, len(histograms), figsize=(4 * len(histograms), 2.8))
        for ax, (title, stats) in zip(np.atleast_1d(axes), histograms, strict=True):
            edges = np.asarray(stats["histogram"]["edges"])
            ax.bar(edges[:-1], stats["histogram"]["counts"], width=np.diff(edges), align="edge")
            ax.set_title(title)
        fig.tight_layout()
        charts["text_lengths"] = figure_data_uri(fig, dpi=90)
    languages = result["languages"]["counts"]
    if languages:
        fig, ax = plt.subplots(figsize=(5, 2.5))
        ax.bar(range(len(languages)), list(languages.values()))
        ax.set_xticks(range(len(languages)), list(languages))
        ax.set_title("languages")
        charts["languages"] = figure_data_uri(fig, dpi=90)
    quality = result.get("images", {}).get("quality")
    if quality:
        fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
        for ax, key in zip(axes, ("blur", "border_ratio"), strict=True):
            edges = np.asarray(quality[key]["histogram"]["edges"])
            ax.bar(edges[:-1], quality[key]["histogram"]["counts"], width=np.diff(edges), align="edge")
            ax.set_title(
                {"blur": "detail (Laplacian variance; low: blurry or plain)", "border_ratio": "white border"}[key]
            )
        fig.tight_layout()
        charts["image_quality"] = figure_data_uri(fig, dpi=90)
    return charts


# --------------------------------------------------------------------------------------------------
# Command line (its parser: :mod:`prodcat.catalog.audit_parser`)


def run_audit(args: argparse.Namespace) -> int:
    from prodcat.catalog.loaders import CatalogFormatError, load_from_args
    from prodcat.commands import build_config
    from prodcat.evaluate.report import report_problem

    unused = [f"--{name}" for name in _LABEL_OPTIONS if getattr(args, name) is not None]
    if unused and not args.labels:
        print(f"error: {', '.join(unused)} only apply to the label audit: add --labels", file=sys.stderr)
        return 2
    if args.seed is not None and not (args.labels or args.sample):
        print(
            "error: --seed only applies to a --sample and to the label audit: add --sample N or --labels",
            file=sys.stderr,
        )
        return 2
    if problem := report_problem(args.report, args.data, AUDIT_FILES):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        catalog = load_from_args(args)
    except (CatalogFormatError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # as train's and cv's: --sample and --seed draw the products audited, with or without --labels
    label_config, folds = build_config(args, catalog.format), args.folds or 5
    # a sample of at least the whole catalogue draws nothing, and is no sample to report
    drawn = label_config.sample if label_config.sample and label_config.sample < len(catalog.frame) else None
    if drawn:
        catalog = _sample(catalog, label_config, drawn)
    if args.labels and (outlook := label_audit_outlook(catalog.frame, label_config, folds)):
        print(f"warning: {outlook}", flush=True)  # before the hours a deep level's audit may take, not after
    result = audit_catalog(
        catalog,
        images=not args.no_images,
        labels=args.labels,
        label_config=label_config,
        folds=folds,
        similarity=args.similarity,
    )
    result["sample"] = {"size": drawn, "seed": label_config.seed} if drawn else None
    written = write_audit_report(result, args.report, catalog.issues)
    for line in summary_lines(result):
        print(line)
    print(f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}")
    if catalog.frame.empty:  # the report says why (its loader issues); a script must not go on to train on nothing
        print(f"error: no product could be read from {args.data}: {written[0]} lists why", file=sys.stderr)
        return 2
    return 0


#: options of the label audit, refused without --labels rather than silently ignored
_LABEL_OPTIONS = ("config", "level", "modalities", "folds")


def _sample(catalog: Catalog, config: Config, size: int) -> Catalog:
    """The ``size`` products of ``catalog`` that train's and cv's draw takes with ``config``
    (:func:`~prodcat.commands.pooled_stratified_sample`), with the loader issues of their rows only."""
    from prodcat.commands import pooled_stratified_sample

    sampled = pooled_stratified_sample(catalog.frame, config, size).sort_index()
    lines = [catalog.line_of(position) for position in sampled.index]
    kept = set(lines)
    return Catalog(
        frame=sampled.reset_index(drop=True),
        source=catalog.source,
        format=catalog.format,
        issues=[issue for issue in catalog.issues if issue.row in kept],
        lines=lines,
    )


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The console summary of an audit: one line per section with findings."""
    summary, exact, near = result["summary"], result["duplicates"]["exact"], result["duplicates"]["near"]
    lines = [
        f"{count_text(summary['products'])} products, {count_text(summary['labelled'])} labelled, "
        f"{count_text(summary['loader_issues'])} loader issues",
        _text_line(result["text"]),
        f"duplicate text groups: {count_text(exact['groups'])} exact, {count_text(near['groups'])} near"
        f" ({count_text(exact['conflicting_groups'] + near['conflicting_groups'])} with conflicting labels)",
        f"products with HTML tags, entities or mojibake: {count_text(result['markup']['products_with_any'])}",
        *_separator_lines(result["classes"]["unsplit_separator"]),
        *_spelling_lines(result["classes"]["levels"]),
        *_above_subcategories_lines(result["classes"]["labelled_above_subcategories"]),
        *_photo_lines(result["images"]),
    ]
    labels = result.get("labels")
    if labels and labels.get("skipped"):
        lines.append(labels["reason"])
    elif labels:
        lines.append(f"likely mislabelled: {count_text(labels['n_issues'])} of {count_text(labels['n_labelled'])}")
    if labels:
        lines += [f"warning: {warning}" for warning in labels["warnings"]]
    return lines


def _separator_lines(separator: str | None) -> list[str]:
    if separator is None:
        return []
    return [
        f"the categories look like paths written with {separator!r}, read as one level: pass --category-sep"
        f" {shlex.quote(separator)} to read their levels"
    ]


def _spelling_lines(levels: dict[str, Any]) -> list[str]:
    groups = [(name, group) for name, level in levels.items() for group in level["written_several_ways"]]
    if not groups:
        return []
    name, first = groups[0]
    return [
        f"categories written in several ways (case or accents; each way is learnt as a category of its"
        f" own): {count_text(len(groups))}, e.g. {' / '.join(map(repr, first))} at level {name}"
    ]


def _above_subcategories_lines(found: dict[str, Any]) -> list[str]:
    if not found["categories"]:
        return []
    first, categories = found["largest"][0], found["categories"]
    return [
        f"products labelled with a category that has subcategories: {count_text(found['products'])} in"
        f" {counted(categories, 'category', 'categories')}, e.g. {first['category']!r}"
        f" ({count_text(first['products'])}; {count_text(first['products_under'])} under it); at deeper levels they"
        " are a category of their own beside their subcategories"
    ]


def _text_line(text: dict[str, Any]) -> str:
    return (
        f"products without text: {count_text(text['no_text'])}{_nothing_to_read(text['no_text_nor_photo'])}; of the"
        f" {count_text(text['products_with_text'])} with text, {count_text(text['title']['missing'])} have no title,"
        f" {count_text(text['description']['missing'])} no description"
    )


def _nothing_to_read(count: int) -> str:
    return f" ({count_text(count)} without a photo either: nothing to classify them from)" if count else ""


def _photo_lines(images: dict[str, Any]) -> list[str]:
    if images.get("skipped"):
        return ["photos not audited (--no-images)"]
    lines = [
        f"photos: {count_text(images['with_photo'])} given, {count_text(images['without_photo'])} products without,"
        f" {count_text(images['unreadable'])} unreadable"
    ]
    quality, duplicates = images.get("quality"), images.get("duplicates")
    if quality:
        lines.append(
            f"photos with low detail (blurry or plain): {count_text(quality['low_detail'])},"
            f" small (longest side < {quality['small_side']} px): {count_text(quality['small'])}"
        )
    if duplicates:
        lines.append(
            f"duplicate photo groups: {count_text(duplicates['exact_groups'])} exact,"
            f" {count_text(duplicates['perceptual_groups'])} perceptual"
            f" ({count_text(duplicates['conflicting_groups'])} with conflicting labels)"
        )
    return lines

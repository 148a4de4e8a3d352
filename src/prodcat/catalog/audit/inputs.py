"""The audit's statistics of what a catalogue holds: class balance, text lengths, languages, markup and photos
(duplicate texts: :mod:`.duplicates`)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from prodcat.catalog.schema import ancestor_paths, category_at_level, depth, has_image, has_text, split_path
from prodcat.grouping import spelling_groups
from prodcat.text.clean import HTML_ENTITY, HTML_TAG

#: how many examples (groups, products) each list of the report keeps
MAX_EXAMPLES = 50

# Windows-1252 bytes decoded as Latin-1 ("l\x92ombre"): C1 controls never belong in product text
_C1_CONTROL = re.compile(r"[\x80-\x9f]")


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
        for ancestor in ancestor_paths(path):
            below[ancestor] += count
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
    same but for case, accents, spaces or punctuation ('Kitchen', 'kitchen', 'Kitchén', 'Kitchen.'), which training
    learns as categories of their own (spacing within a word it collapses:
    :func:`~prodcat.catalog.schema.category_at_level`). Only groups differing at
    ``level`` itself: 'Kitchen > Mugs' and 'kitchen > Mugs' are the level-1 group."""
    paths = [name for name in names if len(split_path(name)) == level]
    return [group for group in spelling_groups(paths) if len({split_path(path)[-1] for path in group}) > 1]


#: most bars of an audit histogram
_BARS = 30


def length_bars(values: np.ndarray, bars: int = _BARS) -> tuple[int, np.ndarray]:
    """The top and the bar edges of a histogram of text lengths (whole numbers, at least one): about ``bars`` bars of
    a whole number of characters or words each, up to the 99th percentile (``top``), the last bar holding it and
    every longer text (count them at ``top``). Bars of a fraction of one (14 words in 30 bars) held the lengths of
    every other bar and left the others empty, a comb; bars up to the longest text squashed the rest into a few."""
    top = max(1, math.ceil(np.percentile(values, 99)))
    width = -(-top // bars)  # ceiling division
    return top, np.arange(0, (top // width + 1) * width + 1, width)


def _length_stats(values: pd.Series) -> dict[str, Any]:
    """Statistics of text lengths (whole numbers), histogram in the bars of :func:`length_bars`."""
    values = values.to_numpy()
    if not len(values):
        return {}
    stats = _distribution(values, *length_bars(values))
    return stats | {"max": int(stats["max"])}


def _score_stats(values: pd.Series, top: float | None = None) -> dict[str, Any]:
    """Statistics of a photo score (blur, border ratio), exact; the histogram runs up to ``top`` (default the
    99th percentile, so a few extreme blur scores do not squash it), larger values counted in its last bin."""
    values = values.to_numpy(dtype=float)
    if not len(values):
        return {}
    return _distribution(values, top if top is not None else float(np.percentile(values, 99)) or 1.0)


def _distribution(values: np.ndarray, top: float, edges: np.ndarray | None = None) -> dict[str, Any]:
    """Summary statistics of ``values`` and their histogram, those above ``top`` counted at ``top``: in bars of the
    given ``edges``, or :data:`_BARS` equal ones from 0 to ``top``."""
    bins = _BARS if edges is None else edges
    counts, edges = np.histogram(np.minimum(values, top), bins=bins, range=(0, top) if edges is None else None)
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


def language_stats(
    clean: Sequence[str], progress: bool = True, *, product_ids: Sequence[str], lines: Sequence[int]
) -> dict[str, Any]:
    """Language of each product's cleaned text (``und``: no text), as training reads the catalogue
    (:func:`~prodcat.text.clean.catalogue_languages`), counts and shares; and ``other``, the products written in a
    language none of those (:func:`~prodcat.text.clean.other_languages`): how many, per language, and the first
    :data:`MAX_EXAMPLES` with their row (``lines``: each product's source line), id (``product_ids``), language, the
    language they are read in and the start of their text."""
    from prodcat.text.clean import catalogue_languages, other_languages

    languages = catalogue_languages(clean, progress=progress)
    counts = Counter(languages)
    total = max(1, len(languages))
    other = other_languages(clean)
    found = [position for position, language in enumerate(other) if language]
    examples = [
        {
            "row": lines[position],
            "product_id": product_ids[position],
            "language": other[position],
            "read_as": languages[position],
            "text": snippet(clean[position], 100),
        }
        for position in found[:MAX_EXAMPLES]
    ]
    return {
        "counts": dict(counts.most_common()),
        "shares": {k: v / total for k, v in counts.most_common()},
        "other": {
            "products": len(found),
            "counts": dict(Counter(other[p] for p in found).most_common()),
            "first": examples,
        },
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
                    {"product_id": str(pid), "text": snippet(t, pattern=_pattern_for(name))}
                    for pid, t in zip(frame["product_id"][found][:5], text[found][:5], strict=True)
                ],
            }
    out["products_with_any"] = int(any_problem.sum())
    return out


def _pattern_for(check: str) -> re.Pattern[str] | None:
    return {"html_tags": HTML_TAG, "html_entities": HTML_ENTITY, "mojibake": _C1_CONTROL}.get(check)


def snippet(text: str, width: int = 160, pattern: re.Pattern[str] | None = None) -> str:
    """About ``width`` characters of ``text`` around the first match of ``pattern`` (its start otherwise)."""
    match = pattern.search(text) if pattern is not None else None
    start = max(0, match.start() - width // 3) if match else 0
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


#: share of a photo's area outside its non-white box above which its white border is flagged
LARGE_BORDER = 0.5
#: the columns of photo_issues.csv: one row per product whose photo is flagged, ``issues`` naming each flag
PHOTO_ISSUE_COLUMNS = (
    "row",
    "product_id",
    "image",
    "category",
    "issues",
    "error",
    "blur",
    "border_ratio",
    "width",
    "height",
    "duplicate_group",
    "duplicate_kind",
    "first_differing_level",
)


def image_stats(frame: pd.DataFrame, progress: bool = True, lines: Sequence[int] = ()) -> dict[str, Any]:
    """Photo availability, decoding failures, quality scores and duplicate photos (exact and perceptual), and the
    whole list of flagged photos (``issues``, :func:`photo_issues`; ``lines``: each product's source line)."""
    from prodcat.image.quality import (
        COLOUR_DISTANCE,
        COLOUR_SIDE,
        LOW_DETAIL_THRESHOLD,
        PHASH_DISTANCE,
        SMALL_SIDE,
        find_duplicate_images,
        quality_frame,
    )

    has_path = frame["image"].notna().to_numpy()
    scores = quality_frame(frame, progress=progress)
    flags = _photo_flags(frame, scores)
    failed = flags["unreadable"]
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
        out["quality"] = {
            # low variance of the Laplacian: blurry, but more often a smooth product; not "blurry" then
            "low_detail_threshold": LOW_DETAIL_THRESHOLD,
            "low_detail": int(flags["low_detail"].sum()),
            # a thumbnail is scored enlarged to 512 px, which blurs it: said apart (all 6,000 of
            # fashion's 60 x 80 photos were 'blurry or plain', with no word that their size alone made them so)
            "low_detail_small": int((flags["low_detail"] & flags["small"]).sum()),
            "small_side": SMALL_SIDE,
            "small": int(flags["small"].sum()),
            "blur": _score_stats(usable["blur"]),
            "border_ratio": _score_stats(usable["border_ratio"].astype(float), top=1.0),
            "large_white_border_threshold": LARGE_BORDER,
            "large_white_border": int(flags["white_border"].sum()),
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
    if len(usable):
        out["duplicates"] = _image_duplicate_report(frame, duplicates) | {
            "phash_distance": PHASH_DISTANCE,
            "colour_distance": COLOUR_DISTANCE,
            "colour_grid": COLOUR_SIDE,
        }
    out["issues"] = photo_issues(frame, scores, duplicates, lines, flags)
    return out


def _photo_flags(frame: pd.DataFrame, scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Which products' photos are flagged, by flag (:func:`photo_issues`' names but the duplicate ones): boolean
    masks over ``frame``, from its :func:`~prodcat.image.quality.quality_frame` ``scores``."""
    usable = scores["error"].isna().to_numpy()
    return {
        "unreadable": frame["image"].notna().to_numpy() & ~usable,
        "low_detail": usable & (scores["low_detail"] == True).to_numpy(),  # noqa: E712 (NaN where unscored)
        "small": usable & (scores["small"] == True).to_numpy(),  # noqa: E712
        "white_border": usable & (scores["border_ratio"] > LARGE_BORDER).to_numpy(),
    }


def photo_issues(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    duplicates: pd.DataFrame,
    lines: Sequence[int] = (),
    flags: dict[str, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Every product whose photo is flagged, in the catalogue's order, as records of :data:`PHOTO_ISSUE_COLUMNS`.

    ``issues`` names its flags, separated by spaces: ``unreadable`` (``error`` says why), ``low_detail``, ``small``,
    ``white_border`` (``border_ratio`` over :data:`LARGE_BORDER`), ``duplicate`` and ``duplicate_conflict`` (in a
    group whose labels differ, from ``first_differing_level`` on); the scores and the group beside them, to sort and
    filter on. ``scores`` are :func:`~prodcat.image.quality.quality_frame`'s (same index as ``frame``),
    ``duplicates`` :func:`~prodcat.image.quality.find_duplicate_images`', ``lines`` each product's source line,
    ``flags`` the photo flags of ``scores`` when already computed."""
    usable = scores["error"].isna().to_numpy()
    # ids are unique in a loaded catalogue (a repeat is renamed id~2); a frame repeating one takes its first group
    group = duplicates.drop_duplicates("product_id").set_index("product_id").reindex(frame["product_id"].astype(str))
    in_group = group["group"].notna().to_numpy()
    flags = (flags if flags is not None else _photo_flags(frame, scores)) | {
        "duplicate": in_group,
        "duplicate_conflict": in_group & (group["conflict_level"] > 0).to_numpy(),
    }
    table = pd.DataFrame(
        {
            "row": list(lines) if lines else np.arange(1, len(frame) + 1),
            "product_id": frame["product_id"].astype(str).to_numpy(),
            "image": frame["image"].to_numpy(),
            "category": frame["category"].to_numpy(),
            "issues": [" ".join(name for name, found in flags.items() if found[i]) for i in range(len(frame))],
            "error": scores["error"].where(~usable).to_numpy(),
            **{column: scores[column].to_numpy() for column in _SCORE_COLUMNS},
            "duplicate_group": group["group"].to_numpy(),
            "duplicate_kind": group["kind"].to_numpy(),
            "first_differing_level": group["conflict_level"].where(group["conflict_level"] > 0).to_numpy(),
        },
        columns=list(PHOTO_ISSUE_COLUMNS),
    )
    flagged = photo_issue_frame(table[table["issues"] != ""])
    return [
        {key: None if pd.isna(value) else value for key, value in row.items()} for row in flagged.to_dict("records")
    ]


def photo_issue_frame(records: pd.DataFrame | list[dict[str, Any]]) -> pd.DataFrame:
    """:func:`photo_issues`' records as a table of :data:`PHOTO_ISSUE_COLUMNS` (:func:`records_table`)."""
    return records_table(records, PHOTO_ISSUE_COLUMNS, _WHOLE_NUMBERS)


def records_table(
    records: pd.DataFrame | list[dict[str, Any]], columns: Sequence[str], whole_numbers: Sequence[str]
) -> pd.DataFrame:
    """``records`` as a table of ``columns``, those of ``whole_numbers`` written as such: a missing value made the
    column float (a width of ``534.0``)."""
    return pd.DataFrame(records, columns=list(columns)).astype(dict.fromkeys(whole_numbers, "Int64"))


#: the photo scores photo_issues.csv gives, and its columns of whole numbers (NaN read as a float otherwise)
_SCORE_COLUMNS = ("blur", "border_ratio", "width", "height")
_WHOLE_NUMBERS = ("width", "height", "duplicate_group", "first_differing_level")


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

"""The whole audit of a catalogue: every section of :mod:`prodcat.catalog.audit` in one dict."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prodcat.catalog.audit.duplicates import duplicate_stats
from prodcat.catalog.audit.inputs import (
    MAX_EXAMPLES,
    class_balance,
    image_stats,
    language_stats,
    markup_stats,
    text_stats,
    unsplit_separator,
)
from prodcat.catalog.audit.labels import label_issues
from prodcat.catalog.audit_parser import NEAR_DUPLICATE_SIMILARITY
from prodcat.catalog.schema import Catalog
from prodcat.config import Config
from prodcat.progress import progress_bar


def audit_catalog(
    catalog: Catalog,
    *,
    images: bool = True,
    labels: bool = False,
    label_config: Config | None = None,
    folds: int = 5,
    similarity: float = NEAR_DUPLICATE_SIMILARITY,
    progress: bool = True,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Audit a loaded catalogue; see the module docstring for the sections of the result.

    ``images=False`` skips decoding the photos (the slow part); ``labels=True`` adds the
    label-noise section, from ``folds``-fold cross-validation of ``label_config``
    (a :class:`prodcat.config.Config`, default configuration when ``None``), each model's inner folds fitted in
    ``n_jobs`` processes (:func:`~prodcat.evaluate.cv.cross_validate`).
    """
    from prodcat.catalog.schema import product_text
    from prodcat.text.clean import clean_texts

    frame = catalog.frame.reset_index(drop=True)
    clean = clean_texts(progress_bar(product_text(frame), desc="cleaning text", disable=not progress, unit="product"))
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
    lines = [catalog.line_of(position) for position in range(len(frame))]
    languages = language_stats(clean, progress, product_ids=frame["product_id"].astype(str).tolist(), lines=lines)
    result["languages"] = {k: v for k, v in languages.items() if k != "per_product"}
    result["duplicates"] = duplicate_stats(frame, clean, similarity, progress, lines)
    result["markup"] = markup_stats(frame)
    if images:
        result["images"] = image_stats(frame, progress, lines)
    else:
        has_path = frame["image"].notna()
        result["images"] = {"with_photo": int(has_path.sum()), "without_photo": int((~has_path).sum()), "skipped": True}
    if labels:
        result["labels"] = label_issues(frame, label_config, folds, progress, lines, n_jobs)
    return result

"""The label audit: products whose given category disagrees confidently with cross-validated predictions
(confident learning)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from prodcat.catalog.schema import Catalog, category_at_level, deeper_level_warning, depth
from prodcat.config import Config
from prodcat.formatting import count_text
from prodcat.grouping import conflict_level

#: probability a suggested category must reach: a weak classifier (Rakuten sample, CV accuracy 0.58) otherwise
#: flagged 16.7 % of the products, on suggestions of confidence 0.43-0.53
MIN_SUGGESTION_CONFIDENCE = 0.6
#: share of the products left unchecked (their category in a single fold) above which the label audit, before it
#: starts, names a shallower level that checks more (Flipkart's full paths: 500 of 900 unchecked, level 2: 14)
MAX_UNCHECKED_SHARE = 0.1
#: cross-validated accuracy under which the label audit warns that its suggestions are weak
LOW_CV_ACCURACY = 0.7
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
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Products whose given category (cut at ``config.target_level``) disagrees confidently with their
    cross-validated prediction, most suspicious first (lowest probability of the given label). A product whose
    category has no product in the other folds cannot be checked (``n_unchecked``, and a warning). ``n_jobs``: the
    processes fitting each fold model's inner folds (:func:`~prodcat.evaluate.cv.cross_validate`).

    When the catalogue is too small or has a single category
    (:func:`~prodcat.evaluate.cv.cross_validation_obstacle`), nothing is fitted and the result is
    ``{"skipped": True, "reason": ...}`` with the settings and the warnings; so it is, too, when a fold's products
    cannot train the config (:class:`~prodcat.models.classifier.TrainingRefused`).
    """
    from prodcat.evaluate.cv import cross_validate, cross_validation_obstacle
    from prodcat.models.classifier import TrainingRefused

    labelled, config, warnings = _checked_products(frame, config or Config(), lines)
    level = config.target_level or 0  # 0: the full path, as --level 0

    def skipped(obstacle: str) -> dict[str, Any]:
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

    if obstacle := cross_validation_obstacle(labelled, config, folds):
        return skipped(obstacle)
    unchecked = unchecked_products(labelled, config, folds)
    if unchecked.any():
        warnings.append(f"{unchecked_warning(int(unchecked.sum()))} (most often a category of a single product)")
    try:
        cv = cross_validate(labelled, config, folds=folds, progress=progress, n_jobs=n_jobs)
    except TrainingRefused as refusal:  # found only in fitting (an OCR head reading no text on a fold's photos)
        return skipped(str(refusal))
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
        read = " nor ".join({"text": "text", "image": "photo"}[m] for m in config.modalities or ("text", "image"))
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

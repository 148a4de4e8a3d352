"""The labelled products a bundle is scored on (``prodcat evaluate``, ``prodcat robustness``, the web app): their
categories at the model's level, and what makes the figures on them mean less than they seem — the model's own
training data, categories it does not know, too few products, products it cannot read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from prodcat.bundle import data_fingerprint
from prodcat.catalog.schema import modality_mask

#: fewer labelled products than this and the figures (and their intervals) are warned about
SMALL_EVALUATION = 30


def readable_by(frame: pd.DataFrame, modalities: Sequence[str] | None) -> np.ndarray:
    """``(n,)`` bool: the products having one of ``modalities`` (all of them when ``None`` or empty)."""
    if not modalities:
        return np.ones(len(frame), dtype=bool)
    return np.logical_or.reduce([modality_mask(frame, m) for m in modalities])


# ---------------------------------------------------------------------------------------------- the training data
def training_fingerprint(frame: pd.DataFrame) -> str:
    """The :func:`~prodcat.bundle.data_fingerprint` of a catalogue's labelled products: the one a bundle
    trained on this catalogue records (`prodcat train` fits on the labelled products)."""
    return data_fingerprint(frame[frame["category"].notna()])


def trained_on(fingerprint: str, manifest: Mapping[str, Any]) -> bool:
    """Whether the bundle of ``manifest`` was trained on the catalogue whose :func:`training_fingerprint` this is."""
    return bool(fingerprint) and manifest.get("data_fingerprint") == fingerprint


def in_sample_warning(labelled: pd.DataFrame, manifest: Mapping[str, Any]) -> str | None:
    """What to say when the ``labelled`` products are those the bundle was trained on (its data fingerprint):
    every figure on them is in-sample. Training reads the products with one of the configured modalities, so
    both those and all of ``labelled`` are compared. A subset of the training data is not recognised."""
    configured = manifest.get("config", {}).get("modalities")
    readable = readable_by(labelled, configured)
    # a fingerprint ignores the index: all of them readable, the second would hash the same rows again
    candidates = (labelled,) if readable.all() else (labelled, labelled[readable])
    if not any(trained_on(training_fingerprint(frame), manifest) for frame in candidates):
        return None
    return (
        "these are the very products the model was trained on (same data fingerprint): every figure is "
        "in-sample, near perfect by construction, and says nothing of new products. For an honest estimate run "
        "`prodcat cv` on this catalogue, or train on part of it and evaluate on the rest"
    )


# ---------------------------------------------------------------------------------------------- the categories
def unknown_categories(given: Sequence[object] | pd.Series, labels: Sequence[str]) -> pd.Series:
    """Products per given category that is not one of the model's ``labels``, most frequent first (missing
    categories left out): such products can only be counted wrong."""
    given = pd.Series(given, dtype=object).dropna().astype(str)
    return given[~given.isin(list(labels))].value_counts()


def unknown_categories_warning(truth: Sequence[object], labels: Sequence[str]) -> str | None:
    """What to say when some true categories (at the model's level) are not among the model's ``labels``."""
    unknown = unknown_categories(truth, labels)
    if unknown.empty:
        return None
    named = ", ".join(f"{name!r} ({count})" for name, count in unknown.head(5).items())
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return (
        f"{unknown.sum()} of {len(truth)} labelled products have a category the model does not know "
        f"({len(unknown)} categor{'y' if len(unknown) == 1 else 'ies'}: {named}{more}): they can only be counted "
        "wrong. Is the catalogue, or its category level, the model's?"
    )


def small_evaluation_warning(n: int) -> str | None:
    """What to say when ``n`` labelled products are too few for the figures to mean much."""
    if n >= SMALL_EVALUATION:
        return None
    return (
        f"only {n} labelled product{'s' if n != 1 else ''}: the figures are too uncertain to rely on, and the "
        "bootstrap intervals, drawn within each category, understate it (a category of one product never "
        f"varies); score at least {SMALL_EVALUATION}"
    )


def labelled_warnings(
    labelled: pd.DataFrame, truth: Sequence[object], manifest: Mapping[str, Any], labels: Sequence[str]
) -> list[str]:
    """Every caveat on scoring the bundle of ``manifest`` against ``truth`` (the true categories at its level),
    drawn from the catalogue's ``labelled`` products: in-sample, unknown categories, too few products."""
    warnings = (
        in_sample_warning(labelled, manifest),
        unknown_categories_warning(truth, labels),
        small_evaluation_warning(len(truth)),
    )
    return [warning for warning in warnings if warning]

"""Accept or review: the confidence threshold that meets a target precision."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from prodcat.parameters import AddedParametersDefaulted


def precision_threshold(confidence: np.ndarray, correct: np.ndarray, target_precision: float) -> float:
    """Smallest threshold whose accepted set ``{confidence >= t}`` has precision ≥ target.

    ``confidence`` ``(n,)`` are probabilities in [0, 1] (NaN: none), ``correct`` ``(n,)`` bools (the prediction is
    right), ``target_precision`` in [0, 1]. Scans thresholds from the most confident down, so the automation rate is
    the largest the out-of-fold evidence supports. Returns ``1.0 + eps``
    (accept nothing) when even the most confident predictions miss the target.
    A product without a confidence (NaN) is never accepted, so it plays no part.
    """
    finite = np.isfinite(confidence)  # NaN sorts last and would become the threshold
    confidence, correct = confidence[finite], np.asarray(correct)[finite]
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    # Only cut between distinct confidence values: ties are accepted together.
    last_of_tie = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    ok = np.flatnonzero((precision >= target_precision) & last_of_tie)
    if ok.size == 0:
        return float(np.nextafter(1.0, 2.0))
    return float(conf_sorted[ok.max()])


def accepts_nothing(threshold: float) -> bool:
    """Whether a model of this decision ``threshold`` auto-accepts nothing: :func:`precision_threshold` sets it
    just above 1 when no confidence reached the target precision (every prediction goes to review)."""
    return threshold > 1


class DecisionPolicy(AddedParametersDefaulted, BaseEstimator):
    """``auto`` when confidence ≥ ``threshold_``, else ``review``.

    Fitted on out-of-fold confidences, without the products whose category the out-of-fold model was
    not trained on (a category rarer than the inner folds): they are wrong whatever the model, unlike
    at prediction, and would keep the threshold from ever reaching the target (see
    :func:`prodcat.models.classifier.fit_decision`).

    ``fit`` takes ``(n,)`` confidences (probabilities in 0-1, NaN: none) and ``(n,)`` bools (prediction
    correct); fitted, ``threshold_`` is the confidence from which a prediction is accepted, ``automation_rate_``
    the share of the fitted products accepted and ``auto_precision_`` their accuracy (NaN when none is): both
    in-sample, so the precision reads higher than a held-out one would.
    """

    def __init__(self, target_precision: float = 0.99):
        self.target_precision = target_precision

    def fit(self, confidence: np.ndarray, correct: np.ndarray) -> DecisionPolicy:
        """Set ``threshold_`` by :func:`precision_threshold`, then ``automation_rate_`` and ``auto_precision_``."""
        confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
        self.threshold_ = precision_threshold(confidence, correct, self.target_precision)
        accepted = confidence >= self.threshold_
        self.automation_rate_ = float(accepted.mean()) if len(accepted) else 0.0
        self.auto_precision_ = float(correct[accepted].mean()) if accepted.any() else float("nan")
        return self

    def decide(self, confidence: np.ndarray) -> np.ndarray:
        """``(n,)`` ``"auto"`` where ``confidence`` ``(n,)`` reaches ``threshold_``, else ``"review"`` (NaN too)."""
        return np.where(np.asarray(confidence) >= self.threshold_, "auto", "review")

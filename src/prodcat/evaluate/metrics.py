"""Metrics of a set of predictions: overall, per class, per hierarchy level, calibration, decisions."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from prodcat.catalog.schema import category_at_level, depth


def headline(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``accuracy``, ``f1_weighted`` (the Rakuten challenge metric) and ``f1_macro``."""
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def per_class(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    labels = np.unique(np.concatenate([y_true, y_pred]))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        str(c): {"precision": float(pi), "recall": float(ri), "f1": float(fi), "support": int(si)}
        for c, pi, ri, fi, si in zip(labels, p, r, f, s, strict=True)
    }


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Top-label ECE with equal-width bins, and the reliability-diagram points.

    Returns ``ece`` (0 = perfectly calibrated) and per bin ``confidence``,
    ``accuracy`` and ``count``.
    """
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        conf, acc = float(confidence[sel].mean()), float(correct[sel].mean())
        ece += sel.mean() * abs(conf - acc)
        rows.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "confidence": conf,
                "accuracy": acc,
                "count": int(sel.sum()),
            }
        )
    return {"ece": float(ece), "bins": rows}


def decision_metrics(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict[str, float]:
    """Share auto-accepted at ``threshold`` and the precision among them."""
    accepted = confidence >= threshold
    return {
        "threshold": float(threshold),
        "automation_rate": float(accepted.mean()) if len(accepted) else 0.0,
        "auto_precision": float(correct[accepted].mean()) if accepted.any() else float("nan"),
        "n_auto": int(accepted.sum()),
    }


def evaluate_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document.

    Top level: ``n, accuracy, f1_weighted, f1_macro, per_class, levels`` (the
    headline metrics per hierarchy level when categories are paths), and when
    confidences are given ``calibration``; with a threshold, ``decision``.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    result: dict[str, Any] = headline(y_true, y_pred)
    result["per_class"] = per_class(y_true, y_pred)
    levels = depth(y_true)
    result["levels"] = (
        {
            str(level): headline(category_at_level(y_true, level), category_at_level(y_pred, level))
            for level in range(1, levels + 1)
        }
        if levels > 1
        else {}
    )
    if confidence is not None:
        correct = y_true == y_pred
        result["calibration"] = expected_calibration_error(np.asarray(confidence), correct)
        if threshold is not None:
            result["decision"] = decision_metrics(np.asarray(confidence), correct, threshold)
    return result

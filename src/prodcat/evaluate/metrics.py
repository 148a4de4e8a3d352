"""Metrics of a set of predictions: overall, per class, per hierarchy level, calibration, decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from prodcat.catalog.schema import category_at_level, depth
from prodcat.formatting import count_text, counted

#: the predicted category of a product the model could not score (``prodcat predict``'s empty category): a miss
#: for its true class, but no class of its own in macro F1 or per class
UNSCORED = ""


def _scored_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The labels metrics average over: every true or predicted category, :data:`UNSCORED` left out."""
    labels = np.unique(np.concatenate([y_true, y_pred]).astype(str))
    return labels[labels != UNSCORED]


def headline(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``n`` (products), ``accuracy``, ``f1_weighted`` (the Rakuten challenge metric) and ``f1_macro``, all in
    [0, 1], of the ``(n,)`` true and predicted categories (a :data:`UNSCORED` prediction is a miss)."""
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    labels = _scored_labels(y_true, y_pred)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }


def headline_by_modalities(
    y_true: np.ndarray, y_pred: np.ndarray, modalities_used: Sequence[Sequence[str]]
) -> dict[str, dict[str, float]]:
    """:func:`headline` per set of modalities the products were classified from (``modalities_used``: each
    product's, e.g. ``("text", "image")``), named ``text+image``, ``text``, ``image`` or ``none``: where the errors
    come from (on Rakuten, the products known by their photo alone)."""
    groups = np.asarray(["+".join(used) or "none" for used in modalities_used])
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {str(g): headline(y_true[groups == g], y_pred[groups == g]) for g in np.unique(groups)}


#: the metrics :func:`headline` scores, in the column order of :func:`_resampled_headlines`
HEADLINE_METRICS = ("accuracy", "f1_weighted", "f1_macro")


def _averaged_labels(truth: np.ndarray, predicted: np.ndarray, n_labels: int, unscored: int | None) -> np.ndarray:
    """The ``(n_labels,)`` mask of the label codes macro F1 averages over, as :func:`headline` does: those in
    ``truth`` or ``predicted`` (all the products), except ``unscored`` (:data:`UNSCORED`'s code)."""
    averaged = (np.bincount(truth, minlength=n_labels) + np.bincount(predicted, minlength=n_labels)) > 0
    if unscored is not None:
        averaged[unscored] = False
    return averaged


def _resampled_headlines(
    truth: np.ndarray, predicted: np.ndarray, n_labels: int, samples: np.ndarray, averaged: np.ndarray
) -> np.ndarray:
    """Headline metrics ``(resamples, 3)`` of label codes ``truth``/``predicted`` on the index rows of ``samples``.

    Per resample and label, three counts (true, predicted, correct) by ``bincount``, without a
    confusion matrix, so the cost grows with products + labels, not labels squared. Macro F1
    averages the labels of the mask ``averaged`` (:func:`_averaged_labels`) in every resample, those of the
    point estimate: a category only ever predicted, missing from a resample's rows, still counts there with its F1
    of 0 (scikit-learn's, on the resample alone, would drop it and score the resample higher).
    """
    resamples, n = samples.shape
    offset = np.arange(resamples)[:, None] * n_labels
    true_cells, chosen_cells = truth[samples] + offset, predicted[samples] + offset

    def count(cells: np.ndarray) -> np.ndarray:
        return np.bincount(cells, minlength=resamples * n_labels).reshape(resamples, n_labels)

    support, chosen = count(true_cells.ravel()), count(chosen_cells.ravel())
    hits = count(true_cells[true_cells == chosen_cells])
    seen = support + chosen
    f1 = np.divide(2 * hits, seen, out=np.zeros(hits.shape), where=seen > 0)
    return np.stack(
        [hits.sum(axis=1) / n, (f1 * support).sum(axis=1) / n, f1[:, averaged].sum(axis=1) / averaged.sum()], axis=1
    )


#: bound on the index cells of one chunk of resamples (and of its per-label counts): ~16 MB each,
#: whatever the catalogue's size or number of classes
_CHUNK_CELLS = 2_000_000


def _bootstrap_scores(
    truth: np.ndarray,
    predictions: list[np.ndarray],
    n_labels: int,
    resamples: int,
    seed: int,
    unscored: int | None = None,
) -> list[np.ndarray]:
    """Headline metrics ``(resamples, 3)`` of each prediction set, all on the same resamples.

    Stratified: each resample draws every true class's rows with replacement, so each class keeps
    its support. A catalogue's class mix is a given (Flipkart's is balanced by construction), and a
    rare class missing from a plain resample would score F1 0 and drag macro F1 below its point
    estimate. Resamples are drawn in chunks so that memory stays bounded on large catalogues.
    """
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(truth == c) for c in np.unique(truth)]
    chunk = max(1, _CHUNK_CELLS // max(len(truth), n_labels))
    scores: list[list[np.ndarray]] = [[] for _ in predictions]
    averaged = [_averaged_labels(truth, predicted, n_labels, unscored) for predicted in predictions]
    for done in range(0, resamples, chunk):
        size = min(chunk, resamples - done)
        samples = np.concatenate(
            [rows[rng.integers(0, len(rows), size=(size, len(rows)))] for rows in by_class], axis=1
        )
        for out, predicted, labels in zip(scores, predictions, averaged, strict=True):
            out.append(_resampled_headlines(truth, predicted, n_labels, samples, labels))
    return [np.concatenate(out) for out in scores]


def _label_codes(*label_arrays: np.ndarray) -> tuple[int, int | None, list[np.ndarray]]:
    """The number of distinct labels, the code of :data:`UNSCORED` (``None`` if absent), and each array as
    integer codes over them."""
    labels, codes = np.unique(np.concatenate(label_arrays).astype(str), return_inverse=True)
    unscored = int(np.searchsorted(labels, UNSCORED)) if UNSCORED in labels else None
    return len(labels), unscored, np.split(codes, np.cumsum([len(a) for a in label_arrays])[:-1])


def bootstrap_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """Percentile-bootstrap interval ``[low, high]`` of each headline metric, resampling products
    within each true class.

    How far the number would move on another catalogue of the same size and the same class counts:
    the class mix is held fixed, so the interval leaves out how the mix itself varies (on the default
    model's out-of-fold predictions it is narrower than a plain bootstrap's by 4-5% on Flipkart, 4-7%
    on Rakuten (macro F1: the same width), 4-15% on fashion, macro F1 the most). Two configurations
    whose intervals overlap widely are not told apart by it. Its limit: a category of one product never
    varies, and one of a few products varies too little (a resample within it has (n-1)/n of its variance),
    so where many products sit in categories of fewer than ten (a small ``--sample``, a deep level) the
    interval is too narrow (about half the binomial width with 100 products over 40-odd categories).
    """
    n_labels, unscored, (truth, predicted) = _label_codes(y_true, y_pred)
    (scores,) = _bootstrap_scores(truth, [predicted], n_labels, resamples, seed, unscored)
    tail = (1 - level) / 2
    low, high = np.quantile(scores, [tail, 1 - tail], axis=0)
    return {m: [float(lo), float(hi)] for m, lo, hi in zip(HEADLINE_METRICS, low, high, strict=True)}


#: a category of fewer products than this hardly varies when resampled within itself (one of one product, never)
FEW_IN_CATEGORY = 10

#: the share of an unstratified bootstrap's accuracy interval width under which a bootstrap interval drawn within
#: categories is said to understate the uncertainty (on Flipkart's 900 out-of-fold predictions it is 1.01 of Wilson's)
NARROW_SHARE = 0.75


def unstratified_accuracy_interval(
    right: int, n: int, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The percentile interval of the accuracy of ``right`` of ``n`` products resampled with no regard to their
    categories (a plain bootstrap of the 0/1 correctness: binomial draws), seeded: what :func:`bootstrap_intervals`
    gives where no category is small, to tell what its stratification narrows from what the percentile bootstrap
    itself does (at near-perfect accuracy it is narrower than Wilson's interval whatever the categories)."""
    draws = np.random.default_rng(seed).binomial(n, right / n, resamples) / n
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def narrow_intervals_warning(y_true: np.ndarray, y_pred: np.ndarray, intervals: dict[str, list[float]]) -> str | None:
    """What to say when the bootstrap ``intervals`` (:func:`bootstrap_intervals`'s, of the ``(n,)`` true and
    predicted categories) understate the uncertainty: where some categories hold fewer than :data:`FEW_IN_CATEGORY`
    products and the accuracy's interval is under :data:`NARROW_SHARE` of the width of the same resampling done
    without categories (:func:`unstratified_accuracy_interval`). The message gives the binomial (Wilson) interval.

    A small shop's catalogue (categories of one, two or three products, the errors in them) gave an accuracy of
    0.886 on 123 products within 0.854-0.919, where the binomial interval is 0.818-0.931, and a macro F1 within
    0.520-0.569, where a plain bootstrap's is 0.504-0.716. Compared with Wilson's width instead, 1,000 products at
    one error were warned of for holding a category of 7, though their interval was the same without it.
    ``None`` when there is nothing to say."""
    truth = np.asarray(y_true).astype(str)
    _, support = np.unique(truth, return_counts=True)
    few = support < FEW_IN_CATEGORY
    if not few.any():
        return None
    right = int((truth == np.asarray(y_pred).astype(str)).sum())
    plain_low, plain_high = unstratified_accuracy_interval(right, len(truth))
    drawn_low, drawn_high = intervals["accuracy"]
    if drawn_high - drawn_low >= NARROW_SHARE * (plain_high - plain_low):
        return None
    low, high = wilson_interval(right, len(truth))
    small = int(few.sum())
    return (
        f"the 95% intervals understate the uncertainty: drawn within each category, they hardly move where categories "
        f"hold few products ({count_text(small)} of the {counted(len(support), 'category', 'categories')} "
        f"{'has' if small == 1 else 'have'} fewer than {FEW_IN_CATEGORY}, holding {count_text(int(support[few].sum()))}"
        f" of the {counted(len(truth), 'product')}); the accuracy's binomial (Wilson) 95% interval is "
        f"{low:.4f}-{high:.4f}, and macro F1, a mean over those categories too, is less certain still: more products "
        "of the small categories give firmer figures"
    )


def paired_difference(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``b - a`` for each headline metric on the same products, with its paired-bootstrap interval.

    Both prediction sets are scored on the same resamples, so what the products have in common
    (easy and hard ones) cancels out: the interval is that of the difference, much narrower
    than the two separate intervals suggest. ``b_better`` is the share of resamples where b
    scores higher.
    """
    n_labels, unscored, (truth, a, b) = _label_codes(y_true, pred_a, pred_b)
    scores_a, scores_b = _bootstrap_scores(truth, [a, b], n_labels, resamples, seed, unscored)
    delta = scores_b - scores_a
    whole = np.arange(len(truth))[None, :]
    point = _resampled_headlines(
        truth, b, n_labels, whole, _averaged_labels(truth, b, n_labels, unscored)
    ) - _resampled_headlines(truth, a, n_labels, whole, _averaged_labels(truth, a, n_labels, unscored))
    tail = (1 - level) / 2
    low, high = np.quantile(delta, [tail, 1 - tail], axis=0)
    return {
        m: {
            "difference": float(point[0, i]),
            "low": float(low[i]),
            "high": float(high[i]),
            "b_better": float((delta[:, i] > 0).mean()),
        }
        for i, m in enumerate(HEADLINE_METRICS)
    }


def per_class(
    y_true: np.ndarray, y_pred: np.ndarray, accepted: np.ndarray | None = None
) -> dict[str, dict[str, float | None]]:
    """Precision, recall, F1 and support of every true or predicted category (:data:`UNSCORED` is none), and with
    ``accepted`` (``(n,)`` bool: each product auto-accepted) :func:`_per_class_automation`'s keys.

    The precision of a category never predicted, and the recall of one no product has (predicted only: a category
    the products scored lack), are undefined (0/0): ``None``, not a 0 that would read as every prediction wrong.
    F1 is always defined (a category here is true or predicted at least once)."""
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    labels = _scored_labels(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    automation = (
        _per_class_automation(y_true, y_pred, np.asarray(accepted, dtype=bool))
        if accepted is not None
        else [{}] * len(labels)
    )
    return {
        str(c): {"precision": _defined(pi), "recall": _defined(ri), "f1": float(fi), "support": int(si)} | auto
        for c, pi, ri, fi, si, auto in zip(labels, p, r, f, s, automation, strict=True)
    }


def _per_class_automation(y_true: np.ndarray, y_pred: np.ndarray, accepted: np.ndarray) -> list[dict[str, Any]]:
    """What the decision policy did with each category of :func:`_scored_labels` (in its order), seen from both
    sides; counted for all of them at once, as a category each over the n products cost O(n x categories).

    From its products (true category): ``automation_rate``, the share of them auto-accepted (``None`` for a
    category no product has), ``n_auto`` those, and ``n_auto_wrong`` those of them auto-accepted as another
    category. From its predictions: ``n_auto_predicted``, the products auto-accepted as it, and
    ``n_auto_predicted_wrong`` those of them whose true category is another (what automating it gets wrong)."""
    n_labels, unscored, (true, predicted) = _label_codes(y_true, y_pred)
    wrong = true != predicted

    def count(codes: np.ndarray, among: np.ndarray) -> np.ndarray:
        return np.bincount(codes[among], minlength=n_labels)

    support = np.bincount(true, minlength=n_labels)
    auto, auto_wrong = count(true, accepted), count(true, accepted & wrong)
    auto_predicted, auto_predicted_wrong = count(predicted, accepted), count(predicted, accepted & wrong)
    return [
        {
            "automation_rate": float(auto[i] / support[i]) if support[i] else None,
            "n_auto": int(auto[i]),
            "n_auto_wrong": int(auto_wrong[i]),
            "n_auto_predicted": int(auto_predicted[i]),
            "n_auto_predicted_wrong": int(auto_predicted_wrong[i]),
        }
        for i in range(n_labels)
        if i != unscored
    ]


def _defined(value: float) -> float | None:
    """``value``, or ``None`` where it is undefined (NaN: JSON has no NaN)."""
    return None if np.isnan(value) else float(value)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Top-label ECE with ``bins`` equal-width bins of [0, 1], and the reliability-diagram points.

    ``confidence`` ``(n,)`` probabilities in [0, 1], ``correct`` ``(n,)`` bools. Returns ``ece`` (the mean absolute
    gap between confidence and accuracy, weighted by the bins' shares; 0 = perfectly calibrated; NaN, undefined, for
    no prediction), ``n`` and ``bins``: per non-empty bin its edges ``lower`` and ``upper``, its mean ``confidence``,
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
    return {"ece": float(ece) if len(confidence) else float("nan"), "n": len(confidence), "bins": rows}


def accepted_metrics(accepted: np.ndarray, correct: np.ndarray, threshold: float | None) -> dict[str, float]:
    """``automation_rate`` (share of the ``(n,)`` ``accepted`` products; 0 for none), ``auto_precision`` (share of
    them ``correct``; NaN when none is accepted), ``n_auto`` and ``threshold``, the one reported (left out for
    ``None``: cv's folds each had theirs), with :func:`auto_precision_uncertainty`'s keys."""
    return (
        ({"threshold": float(threshold)} if threshold is not None else {})
        | {
            "automation_rate": float(accepted.mean()) if len(accepted) else 0.0,
            "auto_precision": float(correct[accepted].mean()) if accepted.any() else float("nan"),
            "n_auto": int(accepted.sum()),
        }
        | auto_precision_uncertainty(accepted, correct)
    )


def auto_precision_uncertainty(accepted: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """How sure the precision among the ``accepted`` products is: ``n_auto_wrong``, those of them not ``correct``,
    and ``auto_precision_low`` / ``auto_precision_high``, its 95% Wilson score interval (NaN when none is accepted).

    Wilson's rather than a bootstrap's: with none of them wrong a bootstrap collapses to 1.000-1.000, where Wilson's
    still says how low the precision could be (n / (n + z²))."""
    n = int(accepted.sum())
    wrong = int((accepted & ~correct.astype(bool)).sum())
    low, high = wilson_interval(n - wrong, n)
    return {"n_auto_wrong": wrong, "auto_precision_low": low, "auto_precision_high": high}


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of the share ``successes / n`` (NaN, NaN when ``n`` is 0)."""
    if not n:
        return float("nan"), float("nan")
    z = 1.959963984540054  # the standard normal's 97.5% quantile
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def accepted_at(predicted: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """``(n,)`` bool: the products auto-accepted at ``threshold``, those scored whose confidence reaches it."""
    scored = np.isfinite(confidence) & (predicted != UNSCORED)
    return scored & (np.where(scored, confidence, 0.0) >= threshold)


def evaluate_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray | None = None,
    threshold: float | None = None,
    accepted: np.ndarray | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document.

    Top level: ``n, accuracy, f1_weighted, f1_macro``, their 95% bootstrap ``intervals``,
    ``per_class``, ``levels`` (the headline metrics per hierarchy level when categories are
    paths), and when confidences are given ``calibration``; with a threshold, ``decision``.
    ``per_class`` says what was auto-accepted per category (:func:`per_class`) with a threshold, or with
    ``accepted`` (``(n,)`` bool), the products that were (cv's, each fold deciding with its own threshold).
    A product the model could not score (predicted :data:`UNSCORED`, confidence NaN) counts as
    wrong, and is never auto-accepted; it has no confidence to calibrate, so the calibration is that of
    the others (``calibration.n`` of them; its ECE undefined when there are none).
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    result: dict[str, Any] = headline(y_true, y_pred)
    result["intervals"] = bootstrap_intervals(y_true, y_pred)
    if narrow := narrow_intervals_warning(y_true, y_pred, result["intervals"]):
        result["intervals_warning"] = narrow
    # the levels both have: a model of full paths scored against top-level labels has a level 1 to agree on, and
    # no level 2 that the labels could judge (every prediction would count as wrong there)
    depths = (depth(y_true), depth(y_pred))
    result["levels"] = (
        {
            str(level): headline(category_at_level(y_true, level), category_at_level(y_pred, level))
            for level in range(1, min(depths) + 1)
        }
        if max(depths) > 1
        else {}
    )
    if confidence is not None:
        correct = y_true == y_pred
        confidence = np.asarray(confidence, dtype=float)
        # as a confidence of 0 and a miss, each unscored product was a perfectly calibrated point: 30 of 60 halved
        # the ECE, and none scored at all gave an ECE of 0
        scored = np.isfinite(confidence) & (y_pred != UNSCORED)
        result["calibration"] = expected_calibration_error(confidence[scored], correct[scored])
        if threshold is not None:
            accepted = accepted_at(y_pred, confidence, threshold)
            result["decision"] = accepted_metrics(accepted, correct, threshold)
    result["per_class"] = per_class(y_true, y_pred, accepted)
    return result

"""Stratified cross-validation of a configuration on a catalogue.

Every product is predicted once, by a model that never saw it; the pooled
out-of-fold predictions are then scored like any other prediction set.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from prodcat.catalog.schema import category_at_level, modality_mask
from prodcat.config import MODALITIES, Config, HeadConfig
from prodcat.evaluate.metrics import (
    HEADLINE_METRICS,
    accepted_metrics,
    evaluate_predictions,
    headline,
    headline_by_modalities,
)
from prodcat.features.base import encodings_counted, make_extractor
from prodcat.formatting import count_text
from prodcat.models.classifier import COUNT, ProductClassifier, TrainingRefused, as_labels, head_skips_collected
from prodcat.models.decision import DecisionPolicy
from prodcat.models.heads import align_proba, stratified_folds

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    """Out-of-fold predictions of every labelled product (``n`` of them), in the order of the input frame's rows
    that have a category (:func:`cross_validate` leaves out the others)."""

    #: ``(n_classes,)`` the categories, the columns of :attr:`proba`
    classes: np.ndarray
    #: ``(n,)`` each product's true category
    y_true: np.ndarray
    #: ``(n, n_classes)`` calibrated probabilities, from the model of the fold that held the product out
    proba: np.ndarray
    #: ``(n,)`` int: the fold each product was held out in
    fold: np.ndarray
    #: ``(n,)`` ``"auto"`` or ``"review"``
    decision: np.ndarray
    #: per product, the modalities it was classified from (``["text", "image"]``, ``[]`` for none)
    modalities_used: list[list[str]]
    #: ``(n,)`` the products' ids
    product_id: np.ndarray
    #: the decision threshold of the fold model that predicted each product (each fold fits its own)
    decision_threshold: np.ndarray
    #: the precision the decision policy was asked for (:attr:`Config.target_precision`)
    target_precision: float = 0.99
    #: wall-clock seconds each fold's model took to fit, and to predict its held-out products
    fit_seconds: list[float] = field(default_factory=list)
    predict_seconds: list[float] = field(default_factory=list)
    #: wall-clock seconds of all the folds, fits and predictions, features encoded or read included
    wall_seconds: float = float("nan")
    #: the folds' features by a cached extractor: items encoded, and read from the cache that were there before
    #: (:class:`~prodcat.features.base.EncodingTally`); ``None`` when not counted
    features: dict[str, int] | None = None
    #: the modalities some fold's model reads (its ``modalities_``), in :data:`~prodcat.config.MODALITIES` order: not
    #: those of a head every fit skipped (photos none of which decode), as a model trained on all of them skips it
    modalities_read: list[str] = field(default_factory=list)

    @property
    def y_pred(self) -> np.ndarray:
        """``(n,)`` the most probable category of each product."""
        return self.classes[self.proba.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        """``(n,)`` the probability of :attr:`y_pred`, in [0, 1]."""
        return self.proba.max(axis=1)

    def metrics(self) -> dict[str, Any]:
        """The cv report's ``metrics.json`` document: :func:`~prodcat.evaluate.metrics.evaluate_predictions`'s, with
        ``decision`` from the folds' own decisions (plus ``automation_ceiling``), per-fold ``folds`` and their
        ``fold_std``, ``by_modalities`` and ``timing`` (median seconds per fold, the folds' ``wall_seconds`` and, when
        counted, ``features_encoded`` and ``features_cached``)."""
        auto = self.decision == "auto"
        result = evaluate_predictions(self.y_true, self.y_pred, self.confidence, accepted=auto)
        correct = self.y_true == self.y_pred
        result["decision"] = accepted_metrics(auto, correct, threshold=None) | {
            # The most that any one threshold on these held-out scores auto-accepts at the target
            # precision (chosen knowing the answers, so not reachable in use): what the model's ranking
            # of its own predictions allows, apart from how well the threshold was estimated.
            "automation_ceiling": DecisionPolicy(self.target_precision).fit(self.confidence, correct).automation_rate_,
            # what the ceiling reaches: without it, a ceiling under the share auto-accepted read as a contradiction
            "target_precision": self.target_precision,
        }
        result["folds"] = [
            headline(self.y_true[self.fold == k], self.y_pred[self.fold == k]) | {"fold": int(k)}
            for k in np.unique(self.fold)
        ]
        # the spread between folds: a second view of the noise, beside the bootstrap intervals
        result["fold_std"] = {m: float(np.std([f[m] for f in result["folds"]])) for m in HEADLINE_METRICS}
        result["by_modalities"] = self.by_modalities()
        result["timing"] = {
            "fit_seconds_median": _median(self.fit_seconds),
            "predict_seconds_median": _median(self.predict_seconds),
            "wall_seconds": self.wall_seconds,
        } | {f"features_{what}": count for what, count in (self.features or {}).items()}
        return result

    def by_modalities(self) -> dict[str, dict[str, float]]:
        """Headline metrics per set of modalities the products were classified from
        (:func:`~prodcat.evaluate.metrics.headline_by_modalities`)."""
        return headline_by_modalities(self.y_true, self.y_pred, self.modalities_used)

    def classified_from(self, modality: str) -> np.ndarray:
        """``(n,)`` bool: whether each product was classified from ``modality`` (``text`` or ``image``), alone or
        with the other: Rakuten's products classified from their text are the challenge's, scored by weighted F1."""
        return np.asarray([modality in m for m in self.modalities_used], dtype=bool)

    def restricted_to(self, rows: np.ndarray) -> CVResult:
        """This result on the products where ``rows`` (``(n,)`` bool) is true, in their order."""
        return dataclasses.replace(
            self,
            y_true=self.y_true[rows],
            proba=self.proba[rows],
            fold=self.fold[rows],
            decision=self.decision[rows],
            modalities_used=[m for m, kept in zip(self.modalities_used, rows, strict=True) if kept],
            product_id=self.product_id[rows],
            decision_threshold=self.decision_threshold[rows],
        )

    def predictions(self) -> pd.DataFrame:
        """One row per product: ``product_id, category, predicted, confidence, decision, decision_threshold,
        modalities_used, fold``; ``modalities_used`` comma-separated (``text,image``), as in ``prodcat predict``'s
        and ``evaluate``'s. ``decision`` is ``auto`` where ``confidence`` reaches ``decision_threshold``, that of the
        row's fold model (just above 1 for one that auto-accepts nothing): rows of two folds are decided apart."""
        return pd.DataFrame(
            {
                "product_id": self.product_id,
                "category": self.y_true,
                "predicted": self.y_pred,
                "confidence": self.confidence,
                "decision": self.decision,
                "decision_threshold": self.decision_threshold,
                "modalities_used": [",".join(m) for m in self.modalities_used],
                "fold": self.fold,
            }
        )


def timing_text(timing: dict[str, float]) -> str:
    """cv's ``timing`` as the console says it: the median fit and predict per fold, which leave out what the first
    fold paid to encode features the later ones read from the cache, then the folds' wall time and where their
    features came from (``fit 2.3 s, predict 0.1 s per fold (median); all folds 18.6 s (wall), features 0 encoded,
    300 read from the cache``); a metrics.json from before these were recorded gives the medians alone."""
    text = (
        f"fit {timing['fit_seconds_median']:.1f} s, predict {timing['predict_seconds_median']:.1f} s per fold (median)"
    )
    if math.isfinite(timing.get("wall_seconds", math.nan)):
        text += f"; all folds {timing['wall_seconds']:.1f} s (wall)"
    if "features_encoded" in timing:
        text += (
            f", features {count_text(timing['features_encoded'])} encoded, "
            f"{count_text(timing['features_cached'])} read from the cache"
        )
    return text


def _median(seconds: list[float]) -> float:
    """The median of ``seconds``; NaN for none (a result built without timing its folds)."""
    return float(np.median(seconds)) if seconds else float("nan")


def min_products_per_category(folds: int, inner_folds: int) -> int:
    """Labelled products a category needs so that every fit of a cross-validation sees it.

    With at least ``folds`` members a category is stratified (not pooled with the rare ones), so each
    test fold takes at most ``ceil(n / folds)`` of them; what stays in the training part must in turn
    reach ``inner_folds``, the classifier's own inner cross-validation, which keeps it in every inner fit.
    """
    n = folds
    while n - math.ceil(n / folds) < inner_folds:
        n += 1
    return n


def category_counts(frame: pd.DataFrame, config: Config) -> pd.Series:
    """Labelled products per category at ``config``'s target level, the largest first."""
    return pd.Series(category_at_level(frame["category"].dropna(), config.target_level)).value_counts()


def cross_validation_obstacle(
    frame: pd.DataFrame, config: Config, folds: int | None, known: Lacking | None = None
) -> str | None:
    """Why ``folds``-fold cross-validation of ``config`` (``prodcat cv``, the label audit) cannot run on
    ``frame``'s labelled products, or, with ``folds=None``, why ``prodcat train`` (whose only
    cross-validation is its ``config.inner_folds`` inner one) cannot; ``None``: it can. ``known``: the run's
    answers of :func:`installation_problem`, not asked again.

    It needs two categories with enough products each to appear in every training part (see
    :func:`min_products_per_category`), counting the products having one of the configured modalities (any,
    by default: a product with neither text nor photo teaches nothing); otherwise the classifier or the
    fold split fails.
    """
    if folds is not None and folds < 2:
        return f"it needs at least 2 cross-validation folds (--folds {folds})"
    labelled = _learnt_from(frame, config)
    counts = category_counts(labelled, config)
    level = f"level {config.target_level}" if config.target_level else "full category path"
    if counts.empty:
        modalities = " or ".join(config.modalities or ("text", "photo"))
        return f"no labelled product with {modalities} to learn from"
    if problem := _unread_modalities(labelled, config, {} if known is None else known):
        return problem
    if len(counts) < 2:
        return f"it needs at least two categories ({level}); the labelled products have {count_text(len(counts))}"
    need = config.inner_folds if folds is None else min_products_per_category(folds, config.inner_folds)
    if (counts >= need).sum() < 2:
        largest = ", ".join(f"{name} ({count_text(n)})" for name, n in counts.iloc[:3].items())
        outer = "" if folds is None else f"{folds}-fold cross-validation with "
        # a sample drawn, smaller than the catalogue (not one larger, which takes every product): draw more
        sample_drawn = config.sample and len(labelled) >= config.sample
        drawn = f" in the sample of {count_text(config.sample)}: draw more (--sample, 0: all)" if sample_drawn else ""
        return (
            f"it needs at least two categories ({level}) with at least {need} labelled products each, for "
            f"{outer}{config.inner_folds} inner folds; the largest are {largest}{drawn}"
            + _fewer_folds(counts, folds, config)
        )
    return None


def _fewer_folds(counts: pd.Series, folds: int | None, config: Config) -> str:
    """What to give instead of ``folds`` outer folds too many for the categories' product ``counts``: the folds two
    of them allow ('--folds 2 to 40' for categories of 40 products), or nothing when none do or no outer folds were
    asked (train). They are a range: fewer folds leave more products in each training part, but fewer than 4 take
    so many into each test fold that the part left may be too small for the inner folds (2 folds need 6 products)."""
    # a category of n products allows n folds at most: the second largest bounds them (and the search)
    most = min(folds or 2, int(counts.iloc[1]) + 1 if len(counts) > 1 else 2)
    enough = [k for k in range(2, most) if (counts >= min_products_per_category(k, config.inner_folds)).sum() >= 2]
    if not enough:
        return ""
    return f"; give --folds {enough[0]}" + (f" to {enough[-1]}" if len(enough) > 1 else "")


def _unread_modalities(labelled: pd.DataFrame, config: Config, known: Lacking) -> str | None:
    """Why no head of ``config`` can learn from the ``labelled`` products: a configured modality none of them
    has, or heads that all read modalities they lack; or what one to be trained needs that the installation lacks
    (``None``: some head reads what they have, and can be trained)."""
    present = _present_modalities(labelled)
    if config.modalities and (absent := [m for m in config.modalities if m not in present]):
        named = " nor ".join({"text": "text", "image": "a photo"}[m] for m in absent)
        return f"the modalities {','.join(config.modalities)} are asked for, but no labelled product has {named}"
    wanted = config.modalities or present
    usable = _heads_used(config, present)
    if not usable:
        heads = ", ".join(f"{head.name} ({head.modality})" for head in config.heads)
        wanted_text = " or ".join(wanted)
        add = f"add a head reading {wanted_text} to the config"
        if not config.modalities:
            return f"no head of the config reads what the labelled products have ({wanted_text}): heads {heads}; {add}"
        # the products may have what the heads read: the modalities asked for (--modalities, the config's) left it out
        theirs = ",".join(m for m in MODALITIES if m in present and any(head.modality == m for head in config.heads))
        instead = f"give --modalities {theirs}, which they read, or " if theirs else ""
        return (
            f"no head of the config reads the modalities asked for ({','.join(wanted)}): heads {heads}; {instead}{add}"
        )
    if all(head.languages for head in usable):  # each for some languages only: is one for the catalogue's?
        language = ProductClassifier._main_language(labelled, config)
        # every usable head has languages (the test above): "or ()" only tells mypy so
        if not any(language in (head.languages or ()) for head in usable):
            heads = ", ".join(f"{head.name} ({','.join(head.languages or ())})" for head in usable)
            return f"the texts are mostly in {language!r}, and every head is for other languages: {heads}"
    return _missing_requirement(usable, labelled, config, known)


def _heads_used(config: Config, present: list[str]) -> list[HeadConfig]:
    """The heads of ``config`` a model trained on products having the modalities ``present`` fits."""
    return [head for head in config.heads if head.modality in (config.modalities or present)]


#: what the installation lacks for each extractor asked of in a run (keyed by its spec as JSON; ``None``: nothing),
#: kept for the run alone: an uncached hub model is asked of the hub once (up to 10 s offline), not once per check
Lacking = dict[str, str | None]


def installation_problem(frame: pd.DataFrame, config: Config, known: Lacking) -> str | None:
    """What a head of ``config`` trained on ``frame``'s labelled products needs that the installation lacks (an
    optional package, a hub model out of reach), or ``None``: :func:`cross_validation_obstacle` says it too, after
    the products to use are known, but train and cv ask it first, before the photos are decoded (all of them when
    only photos are read: minutes on a large catalogue, before a refusal that needed none of them).

    Only the heads trained whatever decoding the photos and drawing ``config.sample`` leave out are checked here, so
    that no run that trains is refused: the heads of the configured modalities (a run left without one is refused
    anyway), or else the text heads when the run surely has a text (one product with text when all are used: it is
    kept whatever its photo; every product when a sample is drawn); a photo head only once a photo is known to
    decode, and a head for some languages only once the sample, whose main language it depends on, is drawn. The
    answers are kept in ``known``, the run's, for the later check."""
    labelled = _learnt_from(frame, config)
    drawn = config.sample is not None and config.sample < len(labelled)
    has_text = modality_mask(labelled, "text")
    surely_present = ["text"] if (has_text.all() if drawn else has_text.any()) else []
    heads = [head for head in _heads_used(config, surely_present) if not (drawn and head.languages)]
    return _missing_requirement(heads, labelled, config, known)


def _learnt_from(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The labelled products of ``frame`` having one of ``config``'s modalities (any, by default)."""
    from prodcat.evaluate.labelled import readable_by

    labelled = frame[frame["category"].notna()]
    return labelled[readable_by(labelled, config.modalities)]


def _present_modalities(products: pd.DataFrame) -> list[str]:
    """The modalities some of ``products`` have."""
    return [m for m in MODALITIES if modality_mask(products, m).any()]


def _missing_requirement(heads: list[HeadConfig], labelled: pd.DataFrame, config: Config, known: Lacking) -> str | None:
    """What an extractor of the ``heads`` trained on the ``labelled`` products needs that the installation lacks
    (an optional package): found when its head was fitted, it was a traceback after the heads before it. Each
    extractor is asked once per run: its answer is taken from, or kept in, ``known``."""
    for head in heads:
        for spec in head.features:
            key = spec.model_dump_json()
            if key not in known:
                known[key] = make_extractor(spec.name, **spec.params).missing_requirement()
            # a head of another language than the catalogue's is not trained (its language read only then)
            if known[key] and (
                not head.languages or ProductClassifier._main_language(labelled, config) in head.languages
            ):
                return f"head {head.name}: {known[key]}"
    return None


def cross_validate(
    frame: pd.DataFrame,
    config: Config | None = None,
    folds: int = 5,
    progress: bool = True,
    only_folds: Collection[int] | None = None,
    n_jobs: int | None = None,
) -> CVResult:
    """Fit ``ProductClassifier(config, n_jobs=n_jobs)`` on ``folds - 1`` folds, predict the last, for each fold.

    ``frame`` is a canonical catalogue frame; its products without a category are left out. The folds are
    stratified by the category at ``config``'s level and drawn with ``config.seed``. Raises ``TrainingRefused``
    naming the fold whose training part cannot train the config, and ``ValueError`` for an empty or out-of-range
    ``only_folds``.

    ``only_folds`` (fold numbers, 0 to ``folds - 1``) runs those folds of the same split alone, for a check that
    cannot afford the whole cross-validation: the result holds their products only, each predicted as the full run
    predicts it (a fold's model is fitted on its own training part, whichever other folds run).

    ``n_jobs``: the processes fitting each model's inner folds (:class:`~prodcat.models.classifier.ProductClassifier`);
    the folds themselves are fitted one after the other.
    """
    config = config or Config()
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    y = category_at_level(as_labels(frame["category"]), config.target_level)  # as the model reads them
    splits = stratified_folds(y, folds, config.seed)
    run = range(folds) if only_folds is None else sorted(set(only_folds))
    if not run:  # none named: a result of no product, whose every metric fails far from the call that emptied it
        raise ValueError(f"only_folds is empty: name some of the {folds} folds, numbered 0 to {folds - 1}")
    if outside := [k for k in run if not 0 <= k < folds]:
        raise ValueError(f"only_folds {outside}: the {folds} folds are numbered 0 to {folds - 1}")
    classes = np.unique(y)
    proba = np.zeros((len(y), len(classes)))
    fold_of = np.full(len(y), -1)  # -1: in a fold not run
    decision = np.empty(len(y), dtype=object)
    threshold = np.zeros(len(y))
    used: list[list[str]] = [[] for _ in range(len(y))]
    ids = frame["product_id"].to_numpy()
    result = CVResult(classes, y, proba, fold_of, decision, used, ids, threshold, config.target_precision)
    skips: dict[tuple[str, str], dict[int, int | None]] = {}  # the folds skipping a head, and its count, by reason
    begun = time.perf_counter()
    with encodings_counted() as tally:
        _run_folds(ProductClassifier(config, n_jobs=n_jobs), frame, y, splits, run, result, skips, progress)
    result.wall_seconds = time.perf_counter() - begun
    result.features = {"encoded": tally.n_encoded, "cached": tally.n_cached}
    _warn_of_skipped_heads(skips, len(run))
    return result if only_folds is None else result.restricted_to(result.fold >= 0)


def _run_folds(
    unfitted: ProductClassifier,
    frame: pd.DataFrame,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    run: Collection[int],
    result: CVResult,
    skips: dict[tuple[str, str], dict[int, int | None]],
    progress: bool,
) -> None:
    """Fit (a clone of ``unfitted``) and predict the folds ``run`` of ``splits`` into ``result``
    (:func:`cross_validate`'s), the heads each fit skipped into ``skips``."""
    folds = len(splits)
    proba, fold_of, decision, threshold, used = (
        result.proba,
        result.fold,
        result.decision,
        result.decision_threshold,
        result.modalities_used,
    )
    for k in tqdm(run, desc="cv folds", disable=not progress):
        train, test = splits[k]
        start = time.perf_counter()
        try:
            with head_skips_collected() as skipped:
                model = clone(unfitted).fit(frame.iloc[train], y[train])
        except TrainingRefused as refusal:  # what the products of one fold cannot train: said naming the fold
            _warn_of_skipped_heads(_add_skips(skips, k, skipped), len(run))
            raise TrainingRefused(f"the training part of fold {k} (of folds 0 to {folds - 1}): {refusal}") from refusal
        _add_skips(skips, k, skipped)
        result.fit_seconds.append(time.perf_counter() - start)
        result.modalities_read = [m for m in MODALITIES if m in result.modalities_read or m in model.modalities_]
        start = time.perf_counter()
        details = model.predict_details(frame.iloc[test])
        result.predict_seconds.append(time.perf_counter() - start)
        proba[test] = align_proba(details.proba, model.categories_, result.classes)
        fold_of[test] = k
        decision[test] = model.policy_.decide(details.proba.max(axis=1))
        threshold[test] = model.policy_.threshold_
        for i, modalities in zip(test, details.modalities_used, strict=True):
            used[i] = modalities


def _add_skips(
    skips: dict[tuple[str, str], dict[int, int | None]], fold: int, skipped: list[tuple[str, str, int | None]]
) -> dict[tuple[str, str], dict[int, int | None]]:
    """``skips`` with the heads ``fold`` skipped (``(name, why, count)``, from
    :func:`~prodcat.models.classifier.head_skips_collected`) added: by head and reason, the count of each fold."""
    for name, why, count in skipped:
        skips.setdefault((name, why), {}).setdefault(fold, count)
    return skips


def _warn_of_skipped_heads(skips: dict[tuple[str, str], dict[int, int | None]], run: int) -> None:
    """Warn once of each head the folds' fits skipped for one reason (``skips``: by head and reason, the count of
    products of each fold that skipped it, of the ``run`` folds run), where each fit would have said it again: 'in
    every fold', or in which, the count the range of the folds' ('64-65')."""
    for (name, why), counts in skips.items():
        folds = "every fold" if len(counts) == run else f"fold{'s' if len(counts) > 1 else ''} {_listed(counts)}"
        known = sorted({count for count in counts.values() if count is not None})
        if known:
            span = count_text(known[0]) + (f"-{count_text(known[-1])}" if len(known) > 1 else "")
            why = why.replace(COUNT, span, 1)
        log.warning("head %s skipped in %s: %s", name, folds, why)


def _listed(folds: Collection[int]) -> str:
    """Fold numbers as 'a, b and c'."""
    numbers = [str(k) for k in sorted(folds)]
    return ", ".join(numbers[:-1]) + " and " + numbers[-1] if len(numbers) > 1 else numbers[0]

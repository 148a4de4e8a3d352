"""The product classifier: modality heads, fusion, calibration and decision policy.

``ProductClassifier(config).fit(frame)`` learns from a canonical catalogue
frame (:mod:`prodcat.catalog.schema`); the target is the category path cut at
``config.level``, so predictions are whole paths and always consistent across
levels (a child is never predicted under the wrong parent).

Training, in order:

1. each head (one per feature family: TF-IDF, a sentence encoder, a CNN...)
   fits its extractors on the products that have it, and out-of-fold probabilities come from an internal stratified CV
   (``config.inner_folds``) of its linear model on that one feature matrix;
2. the fusion (late or stacking) is fitted on those out-of-fold probabilities,
   and fuses them cross-fitted (each inner fold by a fusion fitted on the others);
   ``early`` instead trains linear models on the concatenated features (one per
   modality a product may lack, see :meth:`ProductClassifier._fit_early`);
   ``auto`` does both and keeps early unless late is clearly more accurate out-of-fold
   (:func:`best_scored`);
3. a calibrator (``config.calibration``) is fitted on the fused out-of-fold
   probabilities, and the decision policy picks the confidence threshold that
   reaches ``config.target_precision`` on them;
4. the heads are refitted on all products.

Products with no usable modality are predicted from the class prior.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from prodcat.catalog.schema import (
    category_at_level,
    columns_named,
    given_product_id,
    is_missing,
    modality_mask,
    product_text,
    strings_or_empty,
)
from prodcat.config import NESTED, Config, HeadConfig, checked_config, config_parameters, config_with
from prodcat.features.base import NothingToLearn, extractor_parameters, register, registered_extractors
from prodcat.formatting import count_text
from prodcat.models.calibration import make_calibrator
from prodcat.models.decision import DecisionPolicy
from prodcat.models.fusion import LateFusion, StackingFusion, any_present
from prodcat.models.heads import (
    ModalityHead,
    align_proba,
    class_in_other_folds,
    fill_unknown,
    fold_classes,
    held_out_folds,
    out_of_fold_proba,
    out_of_fold_probas,
    stack_features,
    stratified_folds,
)
from prodcat.parallel import check_n_jobs
from prodcat.parameters import AddedParametersDefaulted
from prodcat.text.clean import clean_texts, main_language

log = logging.getLogger(__name__)
MODALITIES = ("text", "image")
#: training products lacking the earlier modalities (photo-only ones) that early fusion needs to
#: calibrate their model on them alone; with fewer, it is calibrated on every product it reads
MIN_OWN_MODEL_PRODUCTS = 30
#: the columns of a product the model reads: a frame lacking some is read as having no such text or photo
READ_COLUMNS = ("title", "description", "image")
#: before the config's fields among the classifier's parameters (``config__seed``)
CONFIG_PREFIX = f"config{NESTED}"


class TrainingRefused(ValueError):
    """Raised by :meth:`ProductClassifier.fit` when the products given cannot train the config (no head of it can be
    trained on them, a modality it asks for that none has): the message says why, for a user to read as it is (the
    command line says it in one line, exit 2), not a failure of prodcat's."""


@dataclass
class ProbaResult:
    """Calibrated probabilities ``(n, n_classes)`` and, per product, the modalities used."""

    proba: np.ndarray
    modalities_used: list[list[str]]


def as_labels(values: Any) -> np.ndarray:
    """Category labels as an object array of ``str``, ``None`` where missing.

    Numeric ids (Rakuten's ``prdtypecode``) become text: scikit-learn's splitters take an object
    array of numbers for an "unknown" target, and paths are cut at a level as text. So the model learns
    its categories as text (``categories_``, what bundles, the Predictor, the commands and the API name),
    whatever ``y``'s type; an integral float (an integer column with gaps, which pandas reads as floats) loses its
    ``.0``. ``classes_`` and :meth:`ProductClassifier.predict` keep a numeric ``y``'s numbers.
    """
    return np.array([None if pd.isna(v) else _label_text(v) for v in values], dtype=object)


def _numbers(y: Any) -> np.ndarray | None:
    """``y``, ``(n,)`` or ``(n, 1)``, as an array when it is of numbers (a numeric or boolean dtype), whose values
    ``classes_`` keeps as scikit-learn's classifiers do; ``None`` for any other (text, objects, none given)."""
    values = None if y is None else np.asarray(y)
    return values.ravel() if values is not None and values.dtype.kind in "biuf" else None


def _label_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def fit_decision(
    scores: np.ndarray,
    y_index: np.ndarray,
    calibration: str,
    target_precision: float,
    calibrate_on: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, DecisionPolicy]:
    """A calibrator fitted on out-of-fold ``scores`` ``(n, n_classes)``, their calibrated probabilities, and
    the decision policy whose threshold those probabilities reach ``target_precision`` at.

    Both are fitted on the rows ``calibrate_on`` (``(n,)`` bool, default all): the caller leaves out
    those whose category the out-of-fold model was not trained on (see
    :meth:`ProductClassifier._scored_rows`). Such a row is wrong whatever the model, and the model
    that will predict new products knows that category. The calibrator must not learn from them
    (they flattened every confidence), nor the threshold: calibrated without them, they are wrong with
    the confidence of the products the model knows, and a dozen such rows in a few hundred (one
    product per rare category) kept the threshold from reaching 0.99 precision at all, sending every
    product to review. Products of categories with a single training product are then accepted as
    readily as the others; the outer cross-validation (``prodcat cv``) is what measures them.
    """
    rows = np.ones(len(y_index), dtype=bool) if calibrate_on is None else calibrate_on
    calibrator = make_calibrator(calibration).fit(scores[rows], y_index[rows])
    proba = calibrator.transform(scores)
    policy = DecisionPolicy(target_precision).fit(proba[rows].max(axis=1), proba[rows].argmax(axis=1) == y_index[rows])
    return calibrator, proba, policy


def cross_fitted_decisions(
    scores: np.ndarray,
    y_index: np.ndarray,
    calibration: str,
    target_precision: float,
    folds: int,
    seed: int,
    calibrate_on: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities ``(n, n_classes)`` and whether each product is auto-accepted ``(n,)``, each
    product's from a calibrator and a decision threshold fitted on the *other* folds of ``scores`` (on
    their rows ``calibrate_on``, as in :func:`fit_decision`; every product is scored).

    The model's own calibrator and threshold are fitted on all of ``scores``: judged on them, its
    auto-accepted precision would meet the target by construction and its calibration error would be
    near 0. These cross-fitted values are what the training-time estimate reports instead.
    """
    rows = np.ones(len(y_index), dtype=bool) if calibrate_on is None else calibrate_on
    proba, accepted = np.empty_like(scores), np.zeros(len(scores), dtype=bool)
    for train, test in stratified_folds(y_index, folds, seed):
        calibrator, _, policy = fit_decision(scores[train], y_index[train], calibration, target_precision, rows[train])
        proba[test] = calibrator.transform(scores[test])
        accepted[test] = proba[test].max(axis=1) >= policy.threshold_
    return proba, accepted


def product_frame(
    products: pd.DataFrame | Sequence[Mapping[str, Any]], modalities: Collection[str] = ()
) -> pd.DataFrame:
    """``products`` as the model reads them, given to :class:`ProductClassifier` or to
    :meth:`Predictor.predict <prodcat.predict.Predictor.predict>` alike: a DataFrame, or a list of dicts one a product,
    as a frame indexed 0 to n-1 whose ``title`` and ``description`` are text (``""`` where missing or left out, a
    number as text), ``image`` ``None`` where missing or left out, and ``product_id`` text (the row number where
    missing, empty, blank or left out); its other columns as given. Each of those four is read from the column of
    its name in any letter case (``Title``), as the catalogue loaders read them
    (:func:`~prodcat.catalog.schema.column_named`).

    Anything else (a lone dict, a Series, an array) is a ``TypeError``, and products of none of :data:`READ_COLUMNS` a
    ``ValueError``: each of them would be answered the class prior. So are two columns that may hold one of those
    four (``Title`` and ``TITLE``, none named ``title``): which one to read is the caller's choice.

    ``modalities`` are those of the model that reads them: where it reads text, products with no title column beside
    columns it does not read are warned of (``UserWarning``, see :func:`_warn_of_no_title_column`). A model reading
    photos only reads no title: a frame of ``sku`` and ``image`` was warned of all the same.
    """
    frame = _as_frame(products)
    # by name in any letter case, as the catalogue loaders read them (``Title``): it was read as no title
    named = {name: _column_read(frame.columns, name) for name in (*READ_COLUMNS, "product_id")}
    if len(frame) and all(named[column] is None for column in READ_COLUMNS):
        raise ValueError(
            f"the products have none of the columns the model reads ({', '.join(READ_COLUMNS)}); their columns: "
            f"{', '.join(map(str, frame.columns)) or 'none'}"
        )
    if "text" in modalities:
        _warn_of_no_title_column(frame, named)
    as_given = {str(column): column for column in frame.columns}

    def column(name: str) -> list[Any]:
        source = named[name]
        return [None] * len(frame) if source is None else frame[as_given[source]].tolist()

    # from plain lists: per-column pandas operations cost more than the work on the one to a few rows of an API request
    read = {
        "title": strings_or_empty(column("title")),
        "description": strings_or_empty(column("description")),
        "product_id": [given or str(i) for i, given in enumerate(map(given_product_id, column("product_id")))],
        "image": [None if is_missing(v) else v for v in column("image")],
    }
    return frame.reset_index(drop=True).assign(**read)


def _warn_of_no_title_column(frame: pd.DataFrame, named: dict[str, str | None]) -> None:
    """Warn of products read without a title beside columns not read, as the catalogue loaders warn of a table's:
    the Rakuten challenge's X_train_update.csv read with pandas (``designation``, ``description``, ``productid``,
    ``imageid``) was fitted and scored from its descriptions alone, without a word."""
    read = {column for column in named.values() if column is not None}
    unread = [str(c) for c in frame.columns if str(c) not in read and str(c).lower() != "category"]
    if len(frame) and named["title"] is None and unread:
        warnings.warn(
            f"the products have no title column, so they are read without a title; their columns "
            f"{', '.join(unread)} are not read: if one holds the title, name it 'title'",
            UserWarning,
            stacklevel=_stacklevel_outside_prodcat(),
        )


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


def _stacklevel_outside_prodcat() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by the caller of this function that names the first line
    outside prodcat (the user's), however deep in prodcat the call was: a fixed one named prodcat's own line where
    the depth differs (``fit``, ``predict``, ``Predictor.predict``). Python 3.12's ``skip_file_prefixes`` does the
    same; the project runs on 3.11. Where every frame is prodcat's, the outermost is named."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.realpath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _modalities_read(config: Config) -> list[str]:
    """The modalities a model of ``config`` may read: those it asks for (else all) that one of its heads reads."""
    return [m for m in config.modalities or MODALITIES if any(head.modality == m for head in config.heads)]


def _column_read(columns: Sequence[object], name: str) -> str | None:
    """The column of ``columns`` holding the products' ``name`` (:func:`~prodcat.catalog.schema.column_named`), or
    ``None``; a ``ValueError`` when several may (``Title`` and ``TITLE``, none named ``title``). The loaders read
    neither, warning of both and naming the option that chooses one; read as none here, without a word, the products
    were answered without their title (or fit found no ``category`` column)."""
    found = columns_named(columns, name)
    if len(found) > 1:
        raise ValueError(
            f"the columns {' and '.join(map(repr, found))} may each hold the products' {name} (a column is read by "
            f"its name in any letter case, and none is named {name!r} exactly): rename the one to read {name!r}, or "
            "drop the other"
        )
    return found[0] if found else None


def _as_frame(products: Any) -> pd.DataFrame:
    """``products`` as a frame: a DataFrame as it is, a list of dicts a row each. Anything else is a ``TypeError``, a
    lone dict too: it could be one product or a frame's columns."""
    if isinstance(products, pd.DataFrame):
        return products
    given = type(products).__name__
    if isinstance(products, Sequence) and not isinstance(products, str | bytes):
        if not (others := [product for product in products if not isinstance(product, Mapping)]):
            return pd.DataFrame(list(products))
        given = f"a {given} holding {type(others[0]).__name__}"
    raise TypeError(
        f"products are a pandas DataFrame (columns {', '.join(READ_COLUMNS)}, product_id) or a list of dicts, one a "
        f"product, not {given}: e.g. pd.DataFrame({{'title': titles}}), or [product] for one product"
    )


#: where a reason for skipping a head (:func:`head_skipped`) holds the count of products, which differs between fits
COUNT = "\x00count\x00"

#: the heads skipped while :func:`head_skips_collected` collects them, else ``None``
_COLLECTED_SKIPS: ContextVar[list[tuple[str, str, int | None]] | None] = ContextVar("collected_skips", default=None)


def head_skipped(name: str, why: str, count: int | None = None) -> str:
    """Warn that head ``name`` is skipped, ``why`` (its :data:`COUNT` standing for ``count`` products), or hand it to
    the :func:`head_skips_collected` collecting them; returns the reason as said."""
    said = why.replace(COUNT, count_text(count), 1) if count is not None else why
    collected = _COLLECTED_SKIPS.get()
    if collected is None:
        log.warning("head %s skipped: %s", name, said)
    else:
        collected.append((name, why, count))
    return said


@contextmanager
def head_skips_collected() -> Iterator[list[tuple[str, str, int | None]]]:
    """Within it, the heads fits skip are not warned of but listed in the list yielded, as ``(name, why, count)``
    (:func:`head_skipped`): cross-validation says once what each of its folds would have said."""
    collected: list[tuple[str, str, int | None]] = []
    token = _COLLECTED_SKIPS.set(collected)
    try:
        yield collected
    finally:
        _COLLECTED_SKIPS.reset(token)


class ProductClassifier(AddedParametersDefaulted, ClassifierMixin, BaseEstimator):
    """Multimodal category classifier over catalogue frames: a pandas DataFrame of ``n`` products, one a row, of
    columns ``title`` and ``description`` (text; missing or empty: none) and ``image`` (a photo's path, raw bytes or a
    ``PIL.Image``; missing: no photo); a column left out is read as empty in every row. ``category`` (a path such as
    ``Home > Kitchen``) is the target when :meth:`fit` is given no ``y``; other columns are ignored. A list of dicts,
    one a product, is read as the frame of those rows; any input is read as the Predictor reads it
    (:func:`product_frame`).

    Its parameters are ``config`` (:class:`~prodcat.config.Config`, ``None`` for the default) and ``n_jobs``; the
    config's fields and those of its parts are parameters too, as ``config__seed`` or ``config__early__C``, for
    :meth:`set_params` and scikit-learn's searches (:meth:`get_params`). ``n_jobs`` is scikit-learn's: the processes
    fitting the folds of the inner cross-validations (``None``, the default, or 1: this one, unless in joblib's
    ``parallel_config(n_jobs=...)``; -1: one a core), which fit the same models in either (tested); it is how the
    model is fitted, not what it learns, so it is not pickled (:func:`~prodcat.parallel.in_processes`). Fitted, it
    holds
    ``classes_``, the categories as a scikit-learn classifier does (``np.unique(y)``): the columns of
    :meth:`predict_proba`'s probabilities, in that order, and what :meth:`predict` answers; ``y`` given as numbers
    (Rakuten's ``prdtypecode``, ``[10, 40, 2705]``) keeps them, their dtype and numeric order, and any other target
    (text, a frame's ``category`` paths, object arrays) is read as text, sorted. ``categories_`` is always that
    text (``classes_`` itself but for numbers): the columns of :meth:`predict_details`'s probabilities, and the
    labels the Predictor, bundles, the commands and the API name.

    Two fields are the commands' (``prodcat train``, ``cv``), not :meth:`fit`'s: ``config.sample`` is drawn by them, and
    :meth:`fit` learns from every product it is given; ``config.level: auto`` (the default) is resolved by them to the
    catalogue format's usual level (:meth:`~prodcat.config.Config.for_format`: Flipkart's top level), and is the full
    category path here: give ``level`` (or ``y``) for another target.
    """

    # learnt by fit (declared for mypy: scikit-learn's classes are untyped here)
    classes_: np.ndarray
    fusion_: LateFusion | StackingFusion | None
    early_scalers_: dict[str, StandardScaler]

    def __init__(self, config: Config | None = None, n_jobs: int | None = None):
        self.config = config
        self.n_jobs = n_jobs

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """``config``, and with ``deep`` each field of it and of its parts as ``config__<field>`` (the default
        config's when ``config`` is ``None``), as scikit-learn lists a nested estimator's parameters: ``config__seed``,
        ``config__early__C``, ``config__heads__text_tfidf__C``,
        ``config__heads__text_tfidf__features__tfidf__params__title_weight``
        (:func:`~prodcat.config.config_parameters`: a head or an extractor by its name, a member of a vote by its
        position)."""
        params = super().get_params(deep=False)
        config = Config() if self.config is None else self.config
        if deep and isinstance(config, Config):  # anything else is refused by fit
            params |= config_parameters(config, CONFIG_PREFIX)
        return params

    def set_params(self, **params: Any) -> ProductClassifier:
        """Set ``config``, and fields of the config or of its parts as :meth:`get_params` names them
        (``GridSearchCV(model, {"config__early__C": [1, 5]})``; an extractor's parameter the config does not give
        yet too, and an item of a list by its position, ``config__heads__0__C``): the config is a new one, validated as
        a config file is (an unknown field is a ``ValueError`` naming the field it may be a misspelling of, a value
        out of range pydantic's ``ValidationError``, an extractor parameter its head's extractor does not take a
        :class:`~prodcat.config.ConfigError`), the one given before left as it was."""
        fields = {
            name.removeprefix(CONFIG_PREFIX): params.pop(name)
            for name in [n for n in params if n.startswith(CONFIG_PREFIX)]
        }
        super().set_params(**params)
        if fields:
            self.config = config_with(self.config or Config(), fields, CONFIG_PREFIX, type(self).__name__)
        return self

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, y: Any = None) -> ProductClassifier:
        """Learn from the products of ``frame`` (see the class); the target is ``y`` (``(n,)``) when given, else the
        frame's ``category`` paths cut at ``config.level``. Labels are learnt as text (see :func:`as_labels`);
        ``classes_`` keeps a numeric ``y``'s numbers (see the class).

        The config is checked first, whole, as a config file is when it is read
        (:func:`~prodcat.config.checked_config`: a :class:`~prodcat.config.ConfigError`, a ``ValueError``; a config that
        is not a :class:`~prodcat.config.Config`, such as a dict of its fields, a ``TypeError``), and ``n_jobs`` too.
        """
        config = checked_config(self.config or Config())
        check_n_jobs(self.n_jobs)
        frame = product_frame(frame, _modalities_read(config))
        given_y, y = y, self._labels(frame, y, config)
        check_consistent_length(frame, y)
        # a blank label is none, as the catalogue loaders read it: it was learnt as a category '' predicted like any
        if len(unlabelled := np.flatnonzero([label is None or not label.strip() for label in y])):
            where = ", ".join(map(str, unlabelled[:5])) + (", ..." if len(unlabelled) > 5 else "")
            raise ValueError(
                f"every training product needs a category: {len(unlabelled)} of {len(y)} have none (missing or "
                f"blank), at positions {where} (counted from 0); drop the unlabelled ones first"
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least two categories; the products hold {len(classes)}")
        given = _numbers(given_y)
        learnt = self._forget()
        try:
            self._fit_checked(frame, y, classes, config)
            if given is not None:  # learnt as text, answered as given (predict_proba's columns in their order)
                self.text_classes_, self.classes_ = self.classes_, np.unique(given)
        except BaseException:
            # a fit refused past the input checks (a modality the config asks for that no product has, no head
            # trainable), failing or interrupted leaves the model fitted before as it was: half fitted (heads_ set,
            # fusion_ not), it passed check_is_fitted and predict raised AttributeError
            self._forget()
            self.__dict__.update(learnt)
            raise
        return self

    def _fit_checked(self, frame: pd.DataFrame, y: np.ndarray, classes: np.ndarray, config: Config) -> None:
        """:meth:`fit` on checked input: ``y`` the ``(n,)`` labels as text, of the sorted ``classes`` (``categories_``
        while it runs: ``classes_``)."""
        self.classes_ = classes
        y_index = np.searchsorted(self.categories_, y)
        self.prior_ = np.bincount(y_index, minlength=len(self.categories_)) / len(y_index)

        matrices, masks, photos_decoded = self._fit_heads(frame, y, config)
        # what was read of each product (a photo that does not decode is not): for `prodcat train` to name
        # the photos it could not use, decoding them again to say why. A photo head skipped as its products hold one
        # category decoded its photos: those did not fail, and are not decoded again (85,000 photos, a minute)
        self.training_read_ = self._modality_masks(masks)
        if photos_decoded.any():
            self.training_read_["image"] = self.training_read_.get("image", photos_decoded) | photos_decoded
        scored = self._scored_rows(masks, y, config)
        oof = self._fit_fusion(matrices, masks, y, config, scored)
        self.calibrator_, self.oof_proba_, self.policy_ = fit_decision(
            oof, y_index, config.calibration, config.target_precision, scored
        )
        self.oof_y_ = y
        self.oof_cross_fitted_ = cross_fitted_decisions(
            oof, y_index, config.calibration, config.target_precision, config.inner_folds, config.seed, scored
        )

    @staticmethod
    def _labels(frame: pd.DataFrame, y: Any, config: Config) -> np.ndarray:
        """``y`` as text (:func:`as_labels`), or, when ``None``, ``frame``'s ``category`` paths cut at the config's
        level. A column ``(n, 1)`` is read as ``(n,)`` with scikit-learn's ``DataConversionWarning``, as its
        classifiers read it (each label was read as the text of its row, "['Watches']"); any other shape than these
        two is a ``ValueError``."""
        if y is not None:
            return as_labels(y if np.ndim(y) == 1 else column_or_1d(np.asarray(y, dtype=object), warn=True))
        if (category := _column_read(frame.columns, "category")) is None:  # in any letter case, as product_frame
            raise ValueError("no y given, and the frame has no 'category' column to read the products' categories from")
        return as_labels(category_at_level(as_labels(frame[category]), config.target_level))

    def _forget(self) -> dict[str, Any]:
        """Drop what a previous fit learnt (the attributes ending in ``_``), and return it: a refit that does not set
        one (``fusion_scores_`` of ``auto``, the ``early_*_`` of early fusion) must not keep it."""
        learnt = [name for name in vars(self) if name.endswith("_") and not name.startswith("_")]
        return {name: self.__dict__.pop(name) for name in learnt}

    def _fit_heads(
        self, frame: pd.DataFrame, y: np.ndarray, config: Config
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:
        """Fit the extractors of each head that can be trained (``heads_``) on the products it reads; returns
        per head its feature matrix (the rows of the products it can read) and its ``(n,)`` bool mask, and the
        ``(n,)`` bool products whose photo a photo head skipped for its categories decoded.

        A head is skipped when its language is not the catalogue's, when its extractors find nothing to learn
        (:class:`~prodcat.features.base.NothingToLearn`), or when the products it reads hold fewer than two
        categories (a classifier needs two): the other heads answer for them.
        """
        wanted: Sequence[str] = config.modalities or [m for m in MODALITIES if modality_mask(frame, m).any()]
        language = self._main_language(frame, config)
        self.heads_: dict[str, ModalityHead] = {}
        masks: dict[str, np.ndarray] = {}
        matrices: dict[str, Any] = {}
        reads: dict[str, np.ndarray] = {}
        refusals: dict[str, NothingToLearn] = {}  # by head
        skipped: dict[str, str] = {}  # why, by head: the refusal when no head is left says it
        photos_decoded = np.zeros(len(frame), dtype=bool)
        for head_config in config.heads:
            if head_config.modality not in wanted:
                skipped[head_config.name] = f"reads {head_config.modality}, not among the modalities used"
                continue
            if head_config.languages and language not in head_config.languages:
                skipped[head_config.name] = f"the catalogue is mostly {language!r}"
                log.info("head %s skipped: %s", head_config.name, skipped[head_config.name])
                continue
            rows = modality_mask(frame, head_config.modality)
            if not rows.any():
                raise TrainingRefused(f"modality {head_config.modality!r} requested but no product has it")
            try:
                head = ModalityHead(head_config, seed=config.seed).fit_extractors(frame[rows])
            except NothingToLearn as refusal:  # an OCR head on photos without text: the other heads answer
                refusals[head_config.name] = refusal
                continue
            matrix, mask, read = head.features_read(frame)
            if not mask.any():  # the photos given, none decoding
                why = f"it reads none of the {COUNT} products it was given (photos that do not decode are not read)"
                skipped[head_config.name] = head_skipped(head_config.name, why, int(rows.sum()))
                continue
            if len(categories := np.unique(y[mask])) < 2:
                why = f"the {COUNT} products it reads are of category {categories[0]!r}, and a classifier needs two "
                skipped[head_config.name] = head_skipped(head_config.name, why + "categories", int(mask.sum()))
                if head_config.modality == "image":
                    photos_decoded |= mask
                continue
            self.heads_[head_config.name], matrices[head_config.name], masks[head_config.name] = head, matrix, mask
            reads[head_config.name] = read
            log.info("head %s: %d of %d products", head_config.name, mask.sum(), len(frame))
        self._say_heads_left_out(refusals, skipped, wanted)
        return *self._read_only(matrices, masks, reads), photos_decoded

    def _say_heads_left_out(
        self, refusals: dict[str, NothingToLearn], skipped: dict[str, str], wanted: Sequence[str]
    ) -> None:
        """Warn of the heads left out for want of anything to learn (``refusals``, by head), or raise
        ``TrainingRefused`` when no head is left (``heads_``), saying why each was (``skipped``, by head)."""
        # the heads left out for want of anything to learn are warned of, but for the refusal raised when no head is
        # left: the command line says that one as its error (warned of too, it was said twice)
        raised = next(iter(refusals.values())) if refusals and not self.heads_ else None
        for name, refusal in refusals.items():
            if refusal is not raised:
                head_skipped(name, str(refusal))
        if not self.heads_:
            if raised is not None:
                raise TrainingRefused(str(raised)) from raised
            why = "; ".join(f"head {name}: {reason}" for name, reason in skipped.items())
            raise TrainingRefused(f"no head in the config can be trained on the modalities {wanted}: {why}")

    def _read_only(
        self, matrices: dict[str, Any], masks: dict[str, np.ndarray], reads: dict[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The heads' ``matrices`` and ``masks`` without the products that no head of a modality found anything
        in: none of its heads read them (``reads``, over each head's ``matrices`` rows; see
        :meth:`~prodcat.models.heads.ModalityHead.features_read`).

        A text of no term a TF-IDF vocabulary holds (a title in a script the catalogue never used, a lone 'ü')
        is such a row: answered from the classifier's intercept, it was reported read from text, and with a
        photo it was answered by the text model, its text block zeros, not by the photo model (Flipkart,
        fast-text config, 449 held-out products with a photo and a Hindi title: 0.78 right and 81 auto-accepted
        against 0.82 and 253 from their photo alone)."""
        for modality in self.modalities_:
            names = [name for name, head in self.heads_.items() if head.config.modality == modality]
            read = np.zeros(len(masks[names[0]]), dtype=bool)
            for name in names:
                read[masks[name]] |= reads[name]
            for name in names:
                if not (kept := read[masks[name]]).all():
                    matrices[name], masks[name] = matrices[name][np.flatnonzero(kept)], masks[name] & read
        return matrices, masks

    def _scored_rows(self, masks: dict[str, np.ndarray], y: np.ndarray, config: Config) -> np.ndarray:
        """``(n,)`` bool: the products whose own category was in the training part of every inner fold
        that scores them out of fold; the calibrators, the decision threshold, the late fusion and the
        choices among fusions or early models are fitted on them only.

        A category with fewer products than ``config.inner_folds`` may miss from the training part that
        scores one of its products: the product's own category then gets probability 0, whatever the
        model, and calibrating on such rows (a model cannot be calibrated on what it could not predict)
        lowered every product's confidence. The inner cross-validations that score a product are those of
        its heads and early models (over the products they read) and late fusion's cross-fitting (over
        all, on class indices): :func:`own_class_known` replays their folds.
        """
        y_index = np.searchsorted(self.categories_, y)
        scored = own_class_known(y_index, config.inner_folds, config.seed)
        for rows in [*masks.values(), *self._modality_masks(masks).values()]:
            scored[rows] &= own_class_known(y[rows], config.inner_folds, config.seed)
        if len(np.unique(y[scored])) < 2:
            log.warning("too few products per category for the inner folds: calibrated on every product")
            return np.ones(len(y), dtype=bool)
        if not scored.all():
            log.info("%d products of categories too rare for the inner folds left out of calibration", (~scored).sum())
        return scored

    @staticmethod
    def _main_language(frame: pd.DataFrame, config: Config) -> str | None:
        """The training texts' main language, when a head depends on it (read without markup and entities,
        whose tags and attribute names are English whatever the catalogue's language)."""
        if not any(h.languages for h in config.heads):
            return None
        texts = [t for t, ok in zip(product_text(frame), modality_mask(frame, "text"), strict=True) if ok]
        return main_language(clean_texts(texts))

    def _fit_fusion(
        self,
        matrices: dict[str, Any],
        masks: dict[str, np.ndarray],
        y: np.ndarray,
        config: Config,
        scored: np.ndarray,
    ) -> np.ndarray:
        """Fit the heads and their fusion; returns the fused out-of-fold probabilities ``(n, n_classes)``.

        ``auto`` fits early and late fusion on the same inner folds and keeps the one
        :func:`best_scored` picks from their out-of-fold accuracy and calibrated log-loss (recorded
        in ``fusion_scores_``), both on the ``scored`` rows (see :meth:`_scored_rows`).
        """
        fusion = config.fusion if len(self.heads_) > 1 else "late"
        if fusion == "early":
            self.fusion_method_ = "early"
            return self._fit_early(matrices, masks, y, config, scored=scored)
        y_index = np.searchsorted(self.categories_, y)
        probas = self._fit_head_probas(matrices, masks, y, config)
        late_probas = self._late_head_probas(probas, masks, y, config)
        if fusion != "auto":
            self.fusion_method_ = fusion
            return self._fit_late(late_probas, masks, y_index, config, scored)
        candidates = {
            "early": self._fit_early(matrices, masks, y, config, head_probas=probas, scored=scored),
            "late": self._fit_late(late_probas, masks, y_index, config, scored),
        }
        self.fusion_scores_ = out_of_fold_scores(candidates, y_index, len(self.categories_), config.calibration, scored)
        self.fusion_method_ = best_scored(self.fusion_scores_)
        log.info("fusion: %s (out-of-fold %s)", self.fusion_method_, self.fusion_scores_)
        if self.fusion_method_ == "early":
            self.fusion_ = None
        else:
            del self.early_heads_, self.early_modalities_, self.early_calibrators_, self.early_selection_
            del self.early_kept_
            del self.early_scalers_, self.early_widths_
        return candidates[self.fusion_method_]

    def _fit_head_probas(
        self, matrices: dict[str, Any], masks: dict[str, np.ndarray], y: np.ndarray, config: Config
    ) -> dict[str, np.ndarray]:
        """Each head's out-of-fold probabilities ``(n, n_classes)`` (the prior where it cannot speak);
        the heads are then refitted on all their products."""
        probas: dict[str, np.ndarray] = {}
        for name, head in self.heads_.items():
            mask = masks[name]
            full = np.tile(self.prior_, (len(y), 1))
            full[mask] = out_of_fold_proba(
                head, matrices[name], y[mask], self.categories_, config.inner_folds, config.seed, self.n_jobs
            )
            probas[name] = full
            head.fit_matrix(matrices[name], y[mask])
        return probas

    def _late_head_probas(
        self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray], y: np.ndarray, config: Config
    ) -> dict[str, np.ndarray]:
        """The heads' out-of-fold ``probas`` as late fusion reads them: a category missing from the training
        part of a head's inner fold gets its prior mass (:func:`~prodcat.models.heads.fill_unknown`), as a
        category the head never saw does at prediction, instead of a 0 that would veto it."""
        late = {}
        for name, proba in probas.items():
            known = np.ones(proba.shape, dtype=bool)
            known[masks[name]] = fold_classes(y[masks[name]], self.categories_, config.inner_folds, config.seed)
            late[name] = fill_unknown(proba, known, self.prior_)
        return late

    def _fit_late(
        self,
        probas: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        y_index: np.ndarray,
        config: Config,
        scored: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fit the late (or stacking) fusion on the heads' out-of-fold probabilities ``(n, n_classes)``, on
        their ``scored`` rows (default all; see :meth:`_scored_rows`).

        Returns them fused *cross-fitted*: each inner fold's rows by a fusion fitted on the other
        folds. Fused by the fusion fitted on all rows, they would be in-sample: too confident for the
        calibrator and the decision threshold fitted on them (a stacking meta-learner with
        n_heads x n_classes^2 weights is far too confident), and flattering in ``auto``'s comparison.
        """
        # One head: LateFusion with a single fitted weight only sets that head's sharpness.
        stacking = config.fusion == "stacking" and len(self.heads_) > 1
        fusion_type = StackingFusion if stacking else LateFusion
        fit_rows = np.ones(len(y_index), dtype=bool) if scored is None else scored
        self.fusion_ = self._fit_on_rows(fusion_type(), probas, masks, y_index, fit_rows)
        fused = np.empty((len(y_index), len(self.categories_)))
        for train, test in stratified_folds(y_index, config.inner_folds, config.seed):
            in_train = np.isin(np.arange(len(y_index)), train) & fit_rows
            fusion = self._fit_on_rows(fusion_type(), probas, masks, y_index, in_train)
            fused[test] = self._fused_rows(
                fusion, {m: p[test] for m, p in probas.items()}, {m: k[test] for m, k in masks.items()}
            )
        return fused

    @staticmethod
    def _fit_on_rows(
        fusion: LateFusion | StackingFusion,
        probas: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        y_index: np.ndarray,
        rows: np.ndarray,
    ) -> LateFusion | StackingFusion:
        """``fusion`` fitted on the ``rows`` (bool mask) that have a modality."""
        rows = rows & any_present(masks)
        return fusion.fit(
            {m: p[rows] for m, p in probas.items()}, {m: k[rows] for m, k in masks.items()}, y_index[rows]
        )

    def _fused_rows(
        self, fusion: LateFusion | StackingFusion, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``fusion``'s probabilities, the class prior for products with no modality."""
        fused = fusion.predict_proba(probas, masks)
        fused[~any_present(masks)] = self.prior_
        return fused

    def _fit_early(
        self,
        matrices: dict[str, Any],
        masks: dict[str, np.ndarray],
        y: np.ndarray,
        config: Config,
        head_probas: dict[str, np.ndarray] | None = None,
        scored: np.ndarray | None = None,
    ) -> np.ndarray:
        """Linear models on the heads' features side by side (zeros where a head cannot speak).

        One model on every block answers the products with text; products without text get their
        own model, on the image blocks of every product with a photo — even when no training
        product lacks text (Flipkart): a photo-only product given to the main model, its text
        blocks zeros, was right 61% of the time against 88% for the photo model (held-out
        Flipkart, benchmarks/results/robustness_flipkart.json). In a catalogue with many
        photo-only products (Rakuten: 40%) one model for all let those rows pull the shared
        class weights and intercepts: it cost 2 points of weighted F1 on the products with text.
        When a single head reads those blocks, their model is that head, with its own classifier
        on its own features: nothing is left to fuse, and the image head's RBF SVC beats the
        early LinearSVC on standardised CNN features (Rakuten photo-only products: weighted F1
        0.430 vs 0.370). Each model is calibrated before the final calibration, on the rows it
        answers, or on every row it reads (out-of-fold) when fewer than
        :data:`MIN_OWN_MODEL_PRODUCTS` training products are left to it. ``head_probas``: the
        heads' out-of-fold probabilities, when :meth:`_fit_head_probas` has already computed them
        (and fitted the heads), for such a model to reuse. Calibrators and model selection read the
        ``scored`` rows only (default all; see :meth:`_scored_rows`).
        """
        scored = np.ones(len(y), dtype=bool) if scored is None else scored
        self.early_scalers_ = {}
        design = self._early_design(matrices, masks, fit=True)
        has = self._modality_masks(masks)
        self.early_modalities_ = list(self.modalities_)
        self.early_heads_: dict[str, ModalityHead] = {}
        self.early_calibrators_: dict[str, BaseEstimator] = {}
        self.early_selection_: dict[str, dict[str, dict[str, float]]] = {}
        self.early_kept_: dict[str, str] = {}  # the candidate kept, by modality, where there was a choice
        oof = np.tile(self.prior_, (len(y), 1))
        serves = self._early_serves(has)
        for modality, (columns, answered) in serves.items():
            rows = has[modality] | answered
            own = self._early_own_head(modality)
            if own and head_probas is not None:  # the head is fitted and its out-of-fold scores are there
                self.early_heads_[modality] = self.heads_[own]
                proba = head_probas[own][rows]
            else:
                X = self._early_input(modality, columns, rows, design, matrices, masks)
                head, proba = self._early_model(modality, own, X, y[rows], config, scored[rows])
                self.early_heads_[modality] = head.fit_matrix(X, y[rows])
            if len(serves) > 1:
                answers = answered[rows] & scored[rows]
                proba = self._calibrate_early(modality, proba, y[rows], answers, scored[rows], config.calibration)
            oof[answered] = proba[answered[rows]]
        self.fusion_ = None
        return oof

    def _calibrate_early(
        self,
        modality: str,
        proba: np.ndarray,
        y: np.ndarray,
        answers: np.ndarray,
        scored: np.ndarray,
        calibration: str,
    ) -> np.ndarray:
        """The early model of ``modality``'s out-of-fold ``proba`` ``(m, n_classes)`` on the ``m`` rows it
        reads, calibrated on the (scored) rows it ``answers``, or on all the ``scored`` rows it reads when
        fewer than :data:`MIN_OWN_MODEL_PRODUCTS` are left to it; ``y``, ``answers``, ``scored``: ``(m,)``."""
        # One calibrator for a LinearSVC's softmaxed margins and an SVC's Platt probabilities fits
        # neither: each model is first calibrated on the rows it answers.
        rows = answers if answers.sum() >= MIN_OWN_MODEL_PRODUCTS else scored
        calibrator = make_calibrator(calibration).fit(proba[rows], np.searchsorted(self.categories_, y[rows]))
        self.early_calibrators_[modality] = calibrator
        return calibrator.transform(proba)

    def _early_readers(self, modality: str) -> list[str]:
        """The heads whose blocks the early model of ``modality`` reads: those of that modality and the later ones."""
        later = set(self.modalities_[self.modalities_.index(modality) :])
        return [name for name, head in self.heads_.items() if head.config.modality in later]

    def _early_model(
        self, modality: str, own: str | None, X: Any, y: np.ndarray, config: Config, scored: np.ndarray
    ) -> tuple[ModalityHead, np.ndarray]:
        """The (unfitted) early model of ``modality`` and its out-of-fold probabilities on ``X``, ``y``.

        It is ``own`` head when one is given, else ``config.early``; with ``classifier: select``,
        the candidate :func:`best_scored` picks from their out-of-fold predictions on the ``scored``
        rows (scores recorded in ``early_selection_``, the name kept in ``early_kept_``): each distinct
        classifier costs one inner cross-validation (a vote reuses its members'), and only the candidate
        kept is refitted on all rows.
        """
        if own:
            candidates = {own: self.heads_[own]}
        else:
            early = config.early
            choices = early.members if early.classifier == "select" else [early]
            candidates = {
                choice.describe(): ModalityHead(
                    HeadConfig(name=f"early_{modality}", modality=modality, features=[], **choice.model_dump()),
                    seed=config.seed,
                )
                for choice in choices
            }
        probas = out_of_fold_probas(candidates, X, y, self.categories_, config.inner_folds, config.seed, self.n_jobs)
        if len(candidates) == 1:
            return next(iter(candidates.values())), next(iter(probas.values()))
        y_index = np.searchsorted(self.categories_, y)
        scores = out_of_fold_scores(probas, y_index, len(self.categories_), config.calibration, scored)
        best = best_scored(scores)
        self.early_selection_[modality] = scores
        self.early_kept_[modality] = best
        log.info("early %s model: %s (out-of-fold %s)", modality, best, scores)
        return candidates[best], probas[best]

    def _early_own_head(self, modality: str) -> str | None:
        """The head that alone feeds the early model of ``modality``, when that model is not the
        first one: the model is then that head itself. ``None`` otherwise."""
        readers = self._early_readers(modality)
        return readers[0] if modality != self.early_modalities_[0] and len(readers) == 1 else None

    def _early_input(
        self,
        modality: str,
        columns: np.ndarray,
        rows: np.ndarray,
        design: Any,
        matrices: dict[str, Any],
        masks: dict[str, np.ndarray],
    ) -> Any:
        """What the early model of ``modality`` reads for the ``rows`` (bool, ``(n,)``): its design
        ``columns``, or its own head's feature rows when it is that head."""
        own = self._early_own_head(modality)
        if own is None:
            return design[rows][:, columns]
        return matrices[own][rows[masks[own]]]

    def _modality_masks(self, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per modality, ``(n,)`` bool: the products at least one of its heads can read."""
        return {
            m: np.logical_or.reduce([masks[name] for name, h in self.heads_.items() if h.config.modality == m])
            for m in self.modalities_
        }

    def _early_serves(self, has: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per early model: ``(its column indices into the design, the (n,) bool rows it answers)``,
        from the :meth:`_modality_masks` ``has``.

        The model of a modality reads the blocks of that modality and the later ones, and answers
        the products that have it and no earlier modality with a model; the first model also
        answers the products left (they have only modalities without a model of their own).
        """
        widths = [self.early_widths_[name] + 1 for name in self.heads_]  # + the indicator column
        starts = np.concatenate([[0], np.cumsum(widths)])
        answered_before = np.zeros(len(next(iter(has.values()))), dtype=bool)
        serves = {}
        for modality in self.early_modalities_:
            readers = self._early_readers(modality)
            columns = np.concatenate(
                [np.arange(starts[i], starts[i + 1]) for i, name in enumerate(self.heads_) if name in readers]
            )
            serves[modality] = (columns, has[modality] & ~answered_before)
            answered_before |= has[modality]
        first = self.early_modalities_[0]
        serves[first] = (
            serves[first][0],
            serves[first][1] | (any_present(has) & ~answered_before),
        )
        return serves

    def _early_design(self, matrices: dict[str, Any], masks: dict[str, np.ndarray], fit: bool = False) -> Any:
        """All heads' features side by side, ``(n, sum of widths + n_heads)`` CSR.

        ``matrices[name]`` holds the rows of the products that have that head's
        modality (possibly none); other rows are zeros, and one
        indicator column per head says which rows are real. Dense blocks are
        standardised and scaled so their rows weigh about as much as an
        L2-normalised TF-IDF row.
        """
        import scipy.sparse as sp

        n = len(next(iter(masks.values())))
        if fit:
            self.early_widths_ = {name: X.shape[1] for name, X in matrices.items()}
        blocks = []
        for name in self.heads_:
            X, rows = matrices[name], np.flatnonzero(masks[name])
            if not len(rows):
                blocks.append(sp.csr_matrix((n, self.early_widths_[name])))
            else:
                if not sp.issparse(X):
                    if fit:
                        self.early_scalers_[name] = StandardScaler().fit(X)
                    X = self.early_scalers_[name].transform(X) / np.sqrt(X.shape[1])
                # Scatter the rows into place: (n x m) selection matrix times (m x d) features.
                place = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n, len(rows)))
                blocks.append(place @ sp.csr_matrix(X))
            blocks.append(sp.csr_matrix(masks[name][:, None].astype(float)))
        return stack_features(blocks).tocsr()

    # -------------------------------------------------------------- predict
    @property
    def categories_(self) -> np.ndarray:
        """The categories as text, sorted (see the class): ``classes_`` unless :meth:`fit` was given ``y`` of
        numbers."""
        return vars(self).get("text_classes_", self.classes_)

    def predict_details(self, frame: pd.DataFrame) -> ProbaResult:
        """Calibrated probabilities ``(n, n_classes)``, a column per category of ``categories_`` in its order, and the
        modalities each product was classified from."""
        check_is_fitted(self, "heads_")
        frame = product_frame(frame, self.modalities_)
        n = len(frame)
        if not n:  # an empty batch: the extractors' vectorisers refuse 0 rows
            return ProbaResult(np.empty((0, len(self.categories_))), [])
        matrices, masks, reads = {}, {}, {}
        for name, head in self.heads_.items():
            matrices[name], masks[name], reads[name] = head.features_read(frame)
        matrices, masks = self._read_only(matrices, masks, reads)
        has = self._modality_masks(masks)
        if self.fusion_ is None:  # early fusion
            design = self._early_design(matrices, masks)
            fused = np.tile(self.prior_, (n, 1))
            for modality, (columns, answered) in self._early_serves(has).items():
                if answered.any():
                    head = self.early_heads_[modality]
                    X = self._early_input(modality, columns, answered, design, matrices, masks)
                    proba = align_proba(head.predict_proba_matrix(X), head.classes_, self.categories_)
                    calibrator = self.early_calibrators_.get(modality)
                    fused[answered] = proba if calibrator is None else calibrator.transform(proba)
        else:
            probas = {}
            for name, head in self.heads_.items():
                full = np.tile(self.prior_, (n, 1))
                if masks[name].any():
                    proba = align_proba(head.predict_proba_matrix(matrices[name]), head.classes_, self.categories_)
                    # a category the head never saw gets its prior, as in training (see _late_head_probas)
                    full[masks[name]] = fill_unknown(proba, np.isin(self.categories_, head.classes_), self.prior_)
                probas[name] = full
            fused = self.fusion_.predict_proba(probas, masks)
        fused[~any_present(masks)] = self.prior_
        used = [[m for m in has if has[m][i]] for i in range(n)]
        return ProbaResult(self.calibrator_.transform(fused), used)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities ``(n, n_classes)`` of the products of ``frame`` (see the class), a column per
        category of ``classes_`` in its order; each row sums to 1. A product with nothing the model can read (no
        text of a word it knows, no photo) is answered the training categories' frequencies, calibrated."""
        proba = self.predict_details(frame).proba
        if "text_classes_" not in vars(self):
            return proba
        # learnt as text ('10' < '2705' < '40'), answered in the order of the numbers given
        return proba[:, np.searchsorted(self.categories_, as_labels(self.classes_))]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The most probable category of each product of ``frame``, ``(n,)``, of ``classes_``: text, or the numbers
        :meth:`fit` was given."""
        best = self.predict_proba(frame).argmax(axis=1)  # first: an unfitted model raises NotFittedError
        return self.classes_[best]

    def score(self, frame: pd.DataFrame, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy of the predictions for ``frame`` against ``y`` (``None``: the frame's categories, as :meth:`fit`
        reads them), both read as text as :meth:`fit` learns labels (see :func:`as_labels`): numeric ids, compared as
        numbers with the model's text predictions, failed with scikit-learn's 'Mix of label input types (string
        and number)', and ``10.0`` is the model's ``10``."""
        check_is_fitted(self, "heads_")
        frame = product_frame(frame, self.modalities_)
        truth = self._labels(frame, y, self.config or Config())
        return float(accuracy_score(truth, as_labels(self.predict(frame)), sample_weight=sample_weight))

    def set_memory_cache(self, max_items: int, read_disk: bool = False) -> None:
        """Keep at most ``max_items`` recent embeddings per extractor in memory instead of writing them to the
        on-disk cache (a server: the disk does not grow with every new product it sees); with ``read_disk``,
        those already on disk are read from it."""
        for head in self.heads_.values():
            head.set_memory_cache(max_items, read_disk)

    def set_progress(self, enabled: bool) -> None:
        """Show or hide the extractors' progress bars (useful when training, noise when serving)."""
        self.set_extractor_params(progress=enabled)

    def set_extractor_params(self, **params: Any) -> None:
        """Set ``params`` on each fitted extractor declaring them (in ``get_params()``), the others left as they are:
        settings of how an extractor runs, not of what it computes (its progress bar, an encoder's threads), which
        the process using a trained model chooses, as scikit-learn's ``n_jobs``. A name no registered extractor
        declares is a ``ValueError`` (a typo would change nothing); one only other extractors than this model's
        declare changes nothing (``openmp_threads`` of a model without e5)."""
        known = extractor_parameters()
        if unknown := sorted(params.keys() - known):
            raise ValueError(
                f"no feature extractor has the parameter {', '.join(map(repr, unknown))}; theirs: "
                f"{', '.join(sorted(known))}"
            )
        for head in self.heads_.values():
            for extractor in head.extractors_:
                declared = extractor.get_params(deep=False)
                extractor.set_params(**{name: value for name, value in params.items() if name in declared})

    @property
    def modalities_(self) -> list[str]:
        """The modalities its heads read, in :data:`~prodcat.config.MODALITIES` order (``["text", "image"]``)."""
        return [m for m in MODALITIES if any(h.config.modality == m for h in self.heads_.values())]

    def __getstate__(self) -> dict[str, Any]:
        # Out-of-fold training scores and what was read of the training products are for reports, not for the
        # saved model; n_jobs is how it was fitted, not what it learnt: a model fitted in 2 processes pickles as
        # the one fitted in this one, byte for byte (unpickled, it has the default, None)
        unsaved = ("oof_proba_", "oof_y_", "oof_cross_fitted_", "training_read_", "n_jobs")
        state = {k: v for k, v in self.__dict__.items() if k not in unsaved}
        if own := own_extractor_classes(self.config):
            state[OWN_EXTRACTORS] = own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The pickled ``state``, the extractors of one's own it carries (:func:`own_extractor_classes`) registered
        first, so that the config naming them is read in this process too."""
        state = dict(state)
        for extractor in state.pop(OWN_EXTRACTORS, ()):
            register(extractor)
        super().__setstate__(state)


#: the key under which a pickled :class:`ProductClassifier` carries the classes of its extractors of one's own
OWN_EXTRACTORS = "_own_extractors"


def own_extractor_classes(config: Config | None) -> list[type]:
    """The registered extractor classes ``config``'s heads name that are not prodcat's own (a contributor's
    ``myext.Length``): the config holds their names alone, and a process given the classifier pickled (scikit-learn's
    ``n_jobs``, a loky worker) has not registered them, so its ``fit`` refused them as unknown. Pickled with it, they
    are imported (or, defined in a script, rebuilt by cloudpickle) and registered as it is unpickled."""
    registered = registered_extractors()
    named = dict.fromkeys(spec.name for head in (config or Config()).heads for spec in head.features)
    classes = [registered[name] for name in named if name in registered]
    return [cls for cls in classes if not cls.__module__.startswith("prodcat.")]


def out_of_fold_scores(
    probas: dict[str, np.ndarray],
    y_index: np.ndarray,
    n_classes: int,
    calibration: str,
    rows: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Per candidate, the accuracy of its out-of-fold probabilities ``(n, n_classes)``, their
    log-loss once calibrated (``calibration`` as in the config), and the standard error of its
    accuracy gain over the first candidate (paired, product by product; 0 for the first), on the
    ``rows`` (``(n,)`` bool, default all)."""
    rows = np.ones(len(y_index), dtype=bool) if rows is None else rows
    labels, y = np.arange(n_classes), y_index[rows]
    scores, first_right = {}, None
    for name, proba in probas.items():
        p = proba[rows]
        calibrated = make_calibrator(calibration).fit(p, y).transform(p)
        right = (p.argmax(axis=1) == y).astype(float)
        first_right = right if first_right is None else first_right
        gain = right - first_right
        scores[name] = {
            "accuracy": float(right.mean()),
            "log_loss": float(log_loss(y, calibrated, labels=labels)),
            "gain_se": float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else 0.0,
        }
    return scores


def own_class_known(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``(n,)`` bool: whether the inner fold model scoring each row out of fold (the folds of
    :func:`~prodcat.models.heads.stratified_folds`, replayed) was trained on the row's own class."""
    return class_in_other_folds(y, held_out_folds(y, folds, seed))


def best_scored(scores: dict[str, dict[str, float]]) -> str:
    """The candidate of :func:`out_of_fold_scores` to keep, by the one-standard-error rule: the
    first candidate (the simpler one) unless another's accuracy gain over it exceeds the gain's
    standard error; among those that do, the most accurate, the log-loss breaking ties.

    Why: the candidates differ by a few products out of fold, and taking the more accurate
    one outright followed that noise (``benchmarks/results/fusion.md``)."""
    first = next(iter(scores))
    clear = [
        name for name, s in scores.items() if name == first or s["accuracy"] - scores[first]["accuracy"] > s["gain_se"]
    ]
    return max(clear, key=lambda name: (scores[name]["accuracy"], -scores[name]["log_loss"]))

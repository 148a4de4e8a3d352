"""A modality head: extractors for one modality, then a class-weighted classifier.

The head separates the *unsupervised* step (fitting extractors: vocabularies,
codebooks) from the *supervised* one (the classifier), so that internal
cross-validation can reuse one feature matrix and refit only the cheap part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from prodcat.config import ClassifierConfig, HeadConfig
from prodcat.features.base import Extractor, NothingToLearn, seeded_extractor
from prodcat.models.nbsvm import NBSVMClassifier
from prodcat.parallel import in_processes
from prodcat.parameters import AddedParametersDefaulted
from prodcat.silenced import Silenced, silenced

if TYPE_CHECKING:
    from sklearn.utils import Tags

log = logging.getLogger(__name__)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` scores: ``(n, k)`` probabilities, each row summing to 1."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def stack_features(blocks: list[Any]) -> Any:
    """Feature blocks ``(n, d_i)`` side by side: ``(n, sum d_i)``, CSR if any block is sparse, else dense (the
    blocks' dtypes promoted as numpy and scipy do); a single block is returned as it is."""
    if len(blocks) == 1:
        return blocks[0]
    if any(sp.issparse(b) for b in blocks):
        return sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr")
    return np.hstack(blocks)


def checked_block(extractor: Extractor, X: Any, n: int) -> Any:
    """``X``, what ``extractor`` gave for ``n`` products, once known to be an array or a sparse matrix of one row per
    product, ``(n, dim)``. Else a ``ValueError`` naming the extractor and what it gave: an extractor of one's own
    giving ``(n,)`` failed as numpy's AxisError deep in a head's code."""
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[0] == n:
        return X
    gave = f"features of shape {tuple(shape)}" if shape is not None else f"a {type(X).__name__}"
    raise ValueError(
        f"feature extractor {extractor.name!r} gave {gave} for {n} products: transform gives one row per product, "
        "an array or a sparse matrix of shape (n_products, dim)"
    )


def signed_sqrt(X: np.ndarray) -> np.ndarray:
    """Element-wise ``sign(x) * sqrt(|x|)`` (power normalisation), same shape as ``X``."""
    return np.sign(X) * np.sqrt(np.abs(X))


#: training rows above which :class:`PlattSVC` leaves the kernel to libsvm: the kernel matrix it would hold instead
#: takes rows² x 8 bytes (10,000 rows: 800 MB)
MAX_KERNEL_ROWS = 10_000
#: rows whose kernel against the support vectors :class:`PlattSVC` computes at a time when predicting
KERNEL_CHUNK_ROWS = 1_000


class PlattSVC(AddedParametersDefaulted, ClassifierMixin, BaseEstimator):
    """RBF ``SVC(probability=True)`` (``gamma="scale"``): libsvm's Platt-scaled, pairwise-coupled probabilities, the
    kernel computed with matrix products and given to libsvm (``kernel="precomputed"``).

    Why: libsvm evaluates the kernel pair of rows by pair of rows, again in each of the k(k-1)/2 one-vs-one problems
    and in each of the 5 folds of each problem's internal Platt CV. Fashion's image head (4,800 photos, 84 classes,
    1,280 columns; one of 5 outer folds) took 44 CPU-s to fit and 6 to score 1,200 photos, against 5.5 and 0.9 this
    way, with the same predictions (``benchmarks/results/image_head.md``). Above :data:`MAX_KERNEL_ROWS` training
    rows libsvm computes the kernel itself, as before. Predictions read the kernel of the rows against the support
    vectors only, :data:`KERNEL_CHUNK_ROWS` rows at a time.

    scikit-learn 1.9 deprecates ``probability=True`` (removed in 1.11, hence the pin in ``pyproject.toml``); its
    suggested replacement (one-vs-rest sigmoids) gives different probabilities from those every image-head result
    was measured with, so the warning is silenced here rather than on every fit.

    ``X`` is ``(n_samples, n_features)``, dense or CSR (computed in float64), ``y`` the ``(n_samples,)`` labels;
    ``predict_proba`` gives ``(n_samples, n_classes)`` float64 over ``classes_``.
    """

    def __init__(
        self, C: float = 1.0, class_weight: Literal["balanced"] | None = None, random_state: int | None = None
    ):
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled, a PlattSVC of a bundle of format 4, when it was an ``SVC(probability=True)`` itself (its state
        SVC's, with no ``svc_``), holds that SVC as ``svc_``, scoring rows on its own RBF kernel as it did: the
        same probabilities and votes."""
        if "svc_" not in state and "support_" in state:
            svc = SVC.__new__(SVC)
            svc.__setstate__(dict(state))
            state = {
                "C": svc.C,
                "class_weight": svc.class_weight,
                "random_state": svc.random_state,
                "svc_": svc,
                "gamma_": svc._gamma,
                "support_vectors_": None,  # libsvm computes the kernel, as above MAX_KERNEL_ROWS
                "classes_": svc.classes_,
                **{name: state[name] for name in ("n_features_in_", "_sklearn_version") if name in state},
            }
        super().__setstate__(state)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # as SVC's: a head of sparse features may be configured with it
        return tags

    def fit(self, X: Any, y: Any) -> PlattSVC:
        """Fit ``svc_`` on ``X`` ``(n_samples, n_features)`` and ``y`` ``(n_samples,)``, with ``gamma_`` as
        ``gamma="scale"`` sets it: ``1 / (n_features * X.var())``."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, order="C")
        check_classification_targets(y)
        # SVC's gamma="scale", its variance of a sparse matrix included (E[X²] - E[X]², the zeros counted)
        variance = X.multiply(X).mean() - X.mean() ** 2 if sp.issparse(X) else X.var()
        self.gamma_ = 1.0 / (X.shape[1] * variance) if variance else 1.0
        precomputed = X.shape[0] <= MAX_KERNEL_ROWS
        self.svc_ = SVC(
            C=self.C,
            kernel="precomputed" if precomputed else "rbf",
            gamma=self.gamma_,
            class_weight=self.class_weight,
            probability=True,
            random_state=self.random_state,
        )
        with silenced(ProbabilityDeprecated):
            self.svc_.fit(rbf_kernel(X, X, self.gamma_) if precomputed else X, y)
        self.support_vectors_ = X[self.svc_.support_] if precomputed else None
        self.classes_ = self.svc_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, n_classes)`` probabilities over ``classes_``."""
        return self._svc_answer("predict_proba", X)

    def predict(self, X: Any) -> np.ndarray:
        """libsvm's one-vs-one vote, as ``SVC.predict`` (which may differ from the probabilities' argmax)."""
        return self._svc_answer("predict", X)

    def _svc_answer(self, method: str, X: Any) -> np.ndarray:
        check_is_fitted(self, "svc_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        answer = getattr(self.svc_, method)
        if self.support_vectors_ is None:
            return answer(X)
        starts = range(0, X.shape[0], KERNEL_CHUNK_ROWS)  # slices: a sparse matrix has no np.array_split
        return np.concatenate([answer(self._kernel_on_support(X[i : i + KERNEL_CHUNK_ROWS])) for i in starts])

    def _kernel_on_support(self, X: Any) -> np.ndarray:
        """The precomputed kernel libsvm reads for rows ``X``: ``(rows, training rows)``, where it reads the support
        vectors' columns alone (the others are left 0)."""
        kernel = np.zeros((X.shape[0], self.svc_.shape_fit_[0]))
        kernel[:, self.svc_.support_] = rbf_kernel(X, self.support_vectors_, self.gamma_)
        return kernel


#: how a soft vote sharpens a margin member's softmax (see :class:`SoftVoteClassifier`)
VOTE_MARGIN_SCALE = 3.0


class SoftVoteClassifier(AddedParametersDefaulted, ClassifierMixin, BaseEstimator):
    """Mean of the members' probabilities ``(n, n_classes)``, each member fitted on the same rows ``X``
    ``(n, n_features)`` (dense or CSR) and labels ``y`` ``(n,)``.

    A member without probabilities (a linear SVM) contributes ``softmax(margin_scale * margins)``:
    a hinge-loss margin of 1 is already a confident answer, so its margins are sharpened before
    they are averaged with a logistic regression's probabilities (the vote is calibrated after).
    """

    def __init__(self, members: list[BaseEstimator], margin_scale: float = VOTE_MARGIN_SCALE):
        self.members = members
        self.margin_scale = margin_scale

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # passed on to the members, which read TF-IDF blocks
        return tags

    def fit(self, X: Any, y: Any) -> SoftVoteClassifier:
        """Fit a clone of each of ``members`` (``members_``) on ``X`` and ``y``."""
        X, y = validate_data(self, X, y, accept_sparse="csr")
        check_classification_targets(y)
        self.members_ = [clone(member).fit(X, y) for member in self.members]
        self.classes_ = np.asarray(self.members_[0].classes_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, n_classes)``: the mean of the members' probabilities (:func:`classifier_proba`) over ``classes_``."""
        check_is_fitted(self, "members_")
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.mean([classifier_proba(m, X, self.margin_scale) for m in self.members_], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        """``(n,)`` the class of the highest mean probability."""
        best = self.predict_proba(X).argmax(axis=1)  # first: an unfitted model raises NotFittedError
        return self.classes_[best]


class RowSpaceLogisticRegression(AddedParametersDefaulted, LogisticRegression):
    """scikit-learn's L2-penalised :class:`~sklearn.linear_model.LogisticRegression`, solved in the span of its
    training rows when they are fewer than the columns.

    The penalised solution lies in that span (the loss's gradient is a combination of the rows), and L-BFGS,
    started from zero, never leaves it: on the rows' coordinates in an orthonormal basis of the span (at most
    ``n_samples`` columns, from the eigenvectors of ``X X^T``) it takes the same steps, up to rounding and the
    tolerance's test. ``coef_`` is mapped back to ``X``'s columns, so the fitted model is a logistic regression
    in every other respect. Why: on early fusion's design (720 products by 45,000 columns at Flipkart's level
    2, hundreds of categories at the full path) each L-BFGS vector is ``n_classes x n_features``, and the
    solver was most of a label audit's hours (see ``benchmarks/audit_labels.py``).
    """

    coef_: np.ndarray  # set by LogisticRegression.fit, then mapped back to X's columns

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RowSpaceLogisticRegression:
        """``LogisticRegression.fit`` on ``X`` ``(n_samples, n_features)``, in the rows' span when ``n_features >
        n_samples`` and the penalty is L2 alone without ``warm_start`` (otherwise as scikit-learn fits it)."""
        X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
        # L2 alone is said penalty="l2" (l1_ratio None) before scikit-learn 1.8, l1_ratio=0 since (penalty
        # "deprecated", a parameter 1.10 drops)
        penalty = getattr(self, "penalty", "deprecated")
        ridge_only = penalty in ("deprecated", "l2") and self.l1_ratio in (0, None) and not self.warm_start
        coordinates, basis = row_space(X) if ridge_only and X.shape[1] > X.shape[0] else (None, None)
        if coordinates is None or not coordinates.shape[1]:  # a tall (or all-zero) X: nothing to gain
            return super().fit(X, y, sample_weight)
        super().fit(coordinates, y, sample_weight)
        self.coef_ = np.ascontiguousarray((X.T @ (basis @ self.coef_.T)).T)
        self.n_features_in_ = X.shape[1]
        return self


def row_space(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """``X``'s ``(n, d)`` rows in an orthonormal basis of their span, ``(n, r)``, and that basis as combinations
    of the rows, ``(n, r)`` (the basis vectors are ``X.T @ combinations``); ``r`` the rows' rank."""
    eigenvalues, eigenvectors = np.linalg.eigh(gram_matrix(X))
    kept = eigenvalues > eigenvalues[-1] * max(X.shape) * np.finfo(np.float64).eps
    lengths = np.sqrt(eigenvalues[kept])
    return eigenvectors[:, kept] * lengths, eigenvectors[:, kept] / lengths


def gram_matrix(X: Any) -> np.ndarray:
    """``X @ X.T``, ``(n, n)`` float64; a sparse ``X``'s columns filled in over half their rows (embeddings beside
    TF-IDF in early fusion's design) multiplied as dense blocks, which BLAS does many times faster."""
    if not sp.issparse(X):
        X = np.asarray(X, dtype=np.float64)
        return X @ X.T
    X = sp.csc_matrix(X, dtype=np.float64)
    filled = np.diff(X.indptr) > X.shape[0] // 2
    dense = X[:, filled].toarray()
    rest = X[:, ~filled]
    return dense @ dense.T + (rest @ rest.T).toarray()


#: folds of the inner CV that picks C when ``HeadConfig.C`` is a list
C_SEARCH_FOLDS = 3


def build_classifier(config: ClassifierConfig, dense: bool, seed: int) -> BaseEstimator:
    """The supervised part of a head, from its config: normalisation, model, and (if
    ``config.C`` is a list) an inner CV choosing C.

    ``dense``: whether the features it will be fitted on are a dense array; ``config.scale`` applies to those alone
    (a sparse TF-IDF block is left unscaled). ``seed`` seeds the models and the inner CV's folds. Returns an unfitted
    estimator: the model alone, a pipeline with the scaling first, or a :class:`~sklearn.model_selection.GridSearchCV`
    of :data:`C_SEARCH_FOLDS` folds over the list of C (for ``sgd``, ``alpha = 1 / C``); a ``vote`` is a
    :class:`SoftVoteClassifier` of its members' own."""
    if config.classifier == "vote":
        return SoftVoteClassifier([build_classifier(member, dense, seed) for member in config.members])
    candidates = config.C if isinstance(config.C, list) else [config.C]
    C = candidates[0]
    if config.classifier == "logreg":
        model: BaseEstimator = RowSpaceLogisticRegression(C=C, class_weight=config.class_weight, max_iter=2000)
    elif config.classifier == "linearsvc":
        model = LinearSVC(C=C, class_weight=config.class_weight, random_state=seed)
    elif config.classifier == "nbsvm":
        model = NBSVMClassifier(C=C, class_weight=config.class_weight, random_state=seed)
    elif config.classifier == "svc":
        model = PlattSVC(C=C, class_weight=config.class_weight, random_state=seed)
    else:
        model = SGDClassifier(loss="modified_huber", alpha=1.0 / C, class_weight=config.class_weight, random_state=seed)
    steps: list[BaseEstimator] = []
    if dense and config.scale == "sqrt_l2":
        steps = [FunctionTransformer(signed_sqrt), Normalizer()]
    elif dense and config.scale:
        steps = [StandardScaler()]
    pipeline = make_pipeline(*steps, model)
    if len(candidates) == 1:
        return pipeline if steps else model
    step = pipeline.steps[-1][0]
    if config.classifier == "sgd":
        grid = {f"{step}__alpha": [1.0 / c for c in candidates]}
    else:
        grid = {f"{step}__C": candidates}
    return GridSearchCV(pipeline, grid, cv=PooledStratifiedKFold(C_SEARCH_FOLDS, seed))


class ModalityHead(AddedParametersDefaulted, ClassifierMixin, BaseEstimator):
    """Features of one modality (``config.modality``) + a classifier (see :func:`build_classifier`).

    ``fit`` takes a canonical catalogue frame of ``n`` products and their ``(n,)`` labels; ``predict_proba``
    returns ``(n, n_classes)`` over ``classes_`` (the classes seen in training), each row summing to 1. The
    ``*_matrix`` methods do the same from a :meth:`features` matrix. Products lacking the modality should not be
    passed (see :meth:`features_read`).
    """

    def __init__(self, config: HeadConfig, seed: int = 0):
        self.config = config
        self.seed = seed

    # -- unsupervised part -------------------------------------------------
    def fit_extractors(self, frame: pd.DataFrame) -> ModalityHead:
        """Fit the extractors on ``frame``. One that finds nothing to learn there (:class:`NothingToLearn`: OCR
        reading no text on any photo) is left out, with a warning: the head reads its other extractors' features,
        as if configured without it (nor is it run when predicting). With none left, the first refusal is raised."""
        self.extractors_: list[Extractor] = []
        refusals: list[NothingToLearn] = []
        for spec in self.config.features:
            extractor = seeded_extractor(spec.name, spec.params, self.seed)
            try:
                extractor.fit(frame)
            except NothingToLearn as refusal:
                refusals.append(refusal)
            else:
                self.extractors_.append(extractor)
        if not self.extractors_:
            raise refusals[0]
        for skipped in refusals:
            log.warning("head %s trained without an extractor: %s", self.config.name, skipped)
        return self

    def features(self, frame: pd.DataFrame) -> Any:
        """Feature matrix ``(len(frame), dim)``: the extractors' blocks side by side (:func:`stack_features`), CSR
        if one is sparse; ``float32`` unless ``bow``'s ``int64`` counts are among them."""
        return stack_features([checked_block(e, e.transform(frame), len(frame)) for e in self.extractors_])

    def features_read(self, frame: pd.DataFrame) -> tuple[Any, np.ndarray, np.ndarray]:
        """``(features of the available products, available mask, read)`` with each product encoded once: shapes
        ``(mask.sum(), dim)``, ``(len(frame),)`` and ``(mask.sum(),)``. ``read``: whether an extractor found anything
        of each available product, a value outside the columns that the title-description separator sets by itself
        (:meth:`~prodcat.features.base.Extractor.separator_columns`). A title and a description of no term the
        vocabulary holds are not read, whether the product has a description (hence that separator) or not."""
        pairs = [e.transform_available(frame) for e in self.extractors_]
        pairs = [(checked_block(e, x, len(frame)), m) for e, (x, m) in zip(self.extractors_, pairs, strict=True)]
        mask = np.logical_and.reduce([m for _, m in pairs])
        available = np.flatnonzero(mask)
        blocks = [x[available] for x, _ in pairs]
        read = np.logical_or.reduce(
            [_rows_with_values(X, e.separator_columns()) for e, X in zip(self.extractors_, blocks, strict=True)]
        )
        return stack_features(blocks), mask, read

    def set_memory_cache(self, max_items: int, read_disk: bool = False) -> None:
        """Switch every pretrained extractor to a bounded in-memory cache (see
        :meth:`~prodcat.features.base.PretrainedEncoder.use_memory_cache`)."""
        for extractor in self.extractors_:
            if hasattr(extractor, "use_memory_cache"):
                extractor.use_memory_cache(max_items, read_disk)

    # -- supervised part ---------------------------------------------------
    def new_classifier(self, X: Any) -> BaseEstimator:
        """An unfitted classifier of this head's config for the feature matrix ``X`` (scaled if dense)."""
        return build_classifier(self.config, dense=not sp.issparse(X), seed=self.seed)

    def fit_matrix(self, X: Any, y: np.ndarray) -> ModalityHead:
        """Fit ``classifier_`` on a :meth:`features` matrix ``X`` ``(n, dim)`` and labels ``y`` ``(n,)``."""
        self.classifier_ = fitted(self.new_classifier(X), X, y)
        self.classes_ = np.asarray(self.classifier_.classes_)
        return self

    def predict_proba_matrix(self, X: Any) -> np.ndarray:
        """``(n, n_classes)`` probabilities over ``classes_`` from a :meth:`features` matrix ``X`` ``(n, dim)``."""
        return classifier_proba(self.classifier_, X)

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> ModalityHead:
        """:meth:`fit_extractors` on ``frame``, then :meth:`fit_matrix` on its :meth:`features` and ``y`` ``(n,)``."""
        self.fit_extractors(frame)
        return self.fit_matrix(self.features(frame), np.asarray(y))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """``(len(frame), n_classes)`` probabilities over ``classes_``."""
        return self.predict_proba_matrix(self.features(frame))


def _rows_with_values(X: Any, ignored_columns: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: the rows of ``X`` ``(n, d)`` (sparse or dense) holding a value other than 0 outside the
    ``ignored_columns``."""
    values = (X != 0).sum(axis=1)
    if len(ignored_columns):
        values = values - (X[:, ignored_columns] != 0).sum(axis=1)
    return np.asarray(values).ravel() > 0


def classifier_proba(model: BaseEstimator, X: Any, margin_scale: float = 1.0) -> np.ndarray:
    """``(n, n_classes)`` probabilities over ``model.classes_`` of a fitted classifier on ``X`` ``(n, n_features)``;
    a model without them gives ``softmax(margin_scale * margins)`` of its decision function (calibrated later)."""
    if hasattr(model, "predict_proba"):
        try:
            return np.asarray(model.predict_proba(X))
        except AttributeError:  # SGD with a loss that has no probabilities
            pass
    scores = np.asarray(model.decision_function(X))
    if scores.ndim == 1:  # binary
        scores = np.column_stack([-scores, scores])
    return softmax(margin_scale * scores)


def align_proba(proba: np.ndarray, classes: np.ndarray, all_classes: np.ndarray) -> np.ndarray:
    """Place ``(n, len(classes))`` probabilities into ``(n, len(all_classes))`` float64 columns, the others set to
    0; ``classes`` must be among ``all_classes``, which are sorted (as ``classes_`` are)."""
    out = np.zeros((proba.shape[0], len(all_classes)), dtype=np.float64)
    index = np.searchsorted(all_classes, classes)
    out[:, index] = proba
    return out


def fill_unknown(proba: np.ndarray, known: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``(n, k)`` probabilities where the classes a model was not trained on (``known`` False, ``(n, k)``
    or ``(k,)``; :func:`align_proba` gave them 0) get their ``prior`` ``(k,)`` mass, the known ones
    scaled to keep each row summing to 1.

    A model that never saw a category has no evidence against it: its 0 would veto the category in a
    product of the heads' probabilities (late fusion), however sure the other heads are.
    """
    known = np.broadcast_to(known, proba.shape)
    unknown_mass = np.where(known, 0.0, prior).sum(axis=1, keepdims=True)
    return np.where(known, proba * (1.0 - unknown_mass), prior)


class ProbabilityDeprecated(Silenced):
    """scikit-learn 1.9's deprecation of ``SVC(probability=True)``, which :class:`PlattSVC` keeps (see there)."""

    category = FutureWarning
    message = "The `probability` parameter was deprecated"


class FewMembers(Silenced):
    """scikit-learn's warning that a stratum has fewer members than folds (see :class:`PooledStratifiedKFold`)."""

    category = UserWarning
    message = "The least populated class in y has only"


def pooled_strata(y: np.ndarray, min_count: int) -> np.ndarray:
    """``(n,)`` labels to stratify on: those of ``y`` ``(n,)``, but classes with fewer than ``min_count`` members
    pooled into one stratum."""
    counts = pd.Series(y).value_counts()
    return np.where(pd.Series(y).map(counts).to_numpy() >= min_count, y, "__rare__")


class PooledStratifiedKFold(AddedParametersDefaulted, StratifiedKFold):
    """Shuffled stratified K-fold on :func:`pooled_strata` labels, so rare classes never make a split fail.

    The pooled stratum may itself hold fewer products than there are folds (a single-product category): they
    then go to that many folds, as intended, so scikit-learn's warning about it (once per split, ~30 times a
    training run, from every caller: ``prodcat train``/``cv``, the API, Python code) is silenced. Every other
    stratum has ``n_splits`` members or more, so the warning can mean nothing else here.
    """

    def __init__(self, n_splits: int = 5, random_state: int = 0):
        super().__init__(n_splits=n_splits, shuffle=True, random_state=random_state)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(train, test)`` row indices of each fold, stratified on :func:`pooled_strata` of ``y``."""
        with silenced(FewMembers):
            # listed inside the filter: scikit-learn's generator warns when iterated, not when called
            folds = list(super().split(X, pooled_strata(np.asarray(y), self.n_splits), groups))
        return iter(folds)


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled stratified K-fold ``(train, test)`` index pairs; rare classes pooled so no split fails."""
    return list(PooledStratifiedKFold(folds, seed).split(np.zeros(len(y)), y))


def held_out_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``(n,)`` int: the fold of :func:`stratified_folds` (same ``y``, ``folds``, ``seed``) each row is held out
    in, i.e. scored out of fold by the model trained on the other folds."""
    held_out = np.empty(len(y), dtype=int)
    for fold, (_, test) in enumerate(stratified_folds(y, folds, seed)):
        held_out[test] = fold
    return held_out


def class_in_other_folds(y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: whether each row's class (``y``) has a row in another fold than its own (``fold``, the
    fold it is held out in), i.e. whether the model that scored it out of fold was trained on its class."""
    codes = np.unique(y, return_inverse=True)[1]
    cell = codes * (fold.max() + 1) + fold
    return np.bincount(codes)[codes] > np.bincount(cell)[cell]


def out_of_fold_proba(
    head: ModalityHead,
    X: Any,
    y: np.ndarray,
    all_classes: np.ndarray,
    folds: int,
    seed: int,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Out-of-fold probabilities ``(n, len(all_classes))`` of ``head``'s classifier on matrix ``X``.

    Classes too rare to stratify still get predictions: a fold whose training
    part lacks a class gives it probability 0 there (see :func:`fold_classes`),
    and one whose training part holds a single class predicts that class.
    ``n_jobs``: the processes fitting the folds (:func:`fold_probas`).
    """
    return fold_probas([head.new_classifier(X)], X, y, all_classes, folds, seed, n_jobs)[0]


def fold_probas(
    classifiers: list[BaseEstimator],
    X: Any,
    y: np.ndarray,
    all_classes: np.ndarray,
    folds: int,
    seed: int,
    n_jobs: int | None = None,
) -> list[np.ndarray]:
    """Each of ``classifiers``' (unfitted) out-of-fold probabilities ``(n, len(all_classes))`` on ``X``, ``y``.

    Every (classifier, fold) fit is independent and seeded, so they may run in ``n_jobs`` processes
    (:func:`~prodcat.parallel.in_processes`, scikit-learn's ``n_jobs``: ``None`` or 1 this process, -1 one per
    core), with the same results; not threads: liblinear's random generator is the process's.
    """
    splits = stratified_folds(y, folds, seed)
    fits = [(classifier, train, test) for classifier in classifiers for train, test in splits]
    probas = in_processes(_fold_proba, [(c, X, y, train, test, all_classes) for c, train, test in fits], n_jobs)
    oofs = [np.zeros((len(y), len(all_classes))) for _ in classifiers]
    for i, ((_, _, test), proba) in enumerate(zip(fits, probas, strict=True)):
        oofs[i // len(splits)][test] = proba
    return oofs


def _fold_proba(
    classifier: BaseEstimator, X: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, all_classes: np.ndarray
) -> np.ndarray:
    """The probabilities ``(len(test), len(all_classes))`` of ``classifier`` fitted on the ``train`` rows."""
    model = fold_classifier(classifier, X[train], y[train])
    return align_proba(classifier_proba(model, X[test]), np.asarray(model.classes_), all_classes)


def out_of_fold_probas(
    heads: dict[str, ModalityHead],
    X: Any,
    y: np.ndarray,
    all_classes: np.ndarray,
    folds: int,
    seed: int,
    n_jobs: int | None = None,
) -> dict[str, np.ndarray]:
    """:func:`out_of_fold_proba` of each of ``heads`` on the same matrix ``X`` and folds, each distinct
    classifier cross-validated once (the folds of them all fitted together, in ``n_jobs`` processes:
    :func:`fold_probas`).

    A soft vote's out-of-fold probabilities are its members' averaged as :class:`SoftVoteClassifier`
    averages them, so a member that is also one of ``heads`` (early fusion's default chooses between
    NB-SVM and the vote of NB-SVM and a logistic regression) is fitted once per fold, not twice. The
    result is the same: fitted on the same rows, a member is the same model inside the vote and alone.
    """
    leaves: dict[str, ModalityHead] = {}  # the classifiers to cross-validate, votes' members among them

    def collect(head: ModalityHead) -> None:
        if head.config.classifier == "vote":
            for member in _vote_members(head):
                collect(member)
        else:
            leaves.setdefault(head.config.describe(), head)

    for head in heads.values():
        collect(head)
    classifiers = [head.new_classifier(X) for head in leaves.values()]
    done = dict(zip(leaves, fold_probas(classifiers, X, y, all_classes, folds, seed, n_jobs), strict=True))

    def proba(head: ModalityHead) -> np.ndarray:
        key = head.config.describe()
        if key not in done:  # a vote, its members done
            done[key] = np.mean([_vote_share(proba(member), member, X) for member in _vote_members(head)], axis=0)
        return done[key]

    return {name: proba(head) for name, head in heads.items()}


def _vote_members(vote: ModalityHead) -> list[ModalityHead]:
    """The heads of a ``vote`` head's members: its config with each member's classifier fields."""
    return [
        ModalityHead(HeadConfig(**{**vote.config.model_dump(), **member.model_dump()}), vote.seed)
        for member in vote.config.members
    ]


def _vote_share(proba: np.ndarray, member: ModalityHead, X: Any) -> np.ndarray:
    """What ``member``'s probabilities ``(n, k)`` (:func:`classifier_proba`'s) bring to a soft vote: a
    model without probabilities gave ``softmax(margins)``, which the vote takes as
    ``softmax(VOTE_MARGIN_SCALE * margins)``, i.e. ``proba ** VOTE_MARGIN_SCALE`` renormalised."""
    if hasattr(member.new_classifier(X), "predict_proba"):
        return proba
    with np.errstate(divide="ignore"):  # a class the fold did not train on has 0, and keeps it
        return softmax(VOTE_MARGIN_SCALE * np.log(proba))


def fold_classifier(classifier: BaseEstimator, X: Any, y: np.ndarray) -> BaseEstimator:
    """A clone of ``classifier`` fitted on ``X``, ``y``; a constant one when ``y`` holds a single class (an
    inner fold of a modality that few categories have), which a classifier cannot be fitted on."""
    if len(np.unique(y)) < 2:
        return DummyClassifier(strategy="prior").fit(X, y)
    return fitted(clone(classifier), X, y)


class RegressionGuess(Silenced):
    """scikit-learn's guess that more distinct labels than half the rows make a regression target: categories are
    labels whatever their number (a fold of full category paths holds hundreds, most of one or two products)."""

    category = UserWarning
    message = "The number of unique classes is greater than 50% of the number of samples"


def fitted(classifier: BaseEstimator, X: Any, y: np.ndarray) -> BaseEstimator:
    """``classifier.fit(X, y)``, without scikit-learn's warning that ``y`` could be a regression target (printed
    once per fit, dozens of times by a cross-validation at full path)."""
    with silenced(RegressionGuess):
        return classifier.fit(X, y)


def fold_classes(y: np.ndarray, all_classes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``(n, len(all_classes))`` bool: the classes in the training part of the :func:`stratified_folds`
    fold that predicts each row, i.e. those :func:`out_of_fold_proba` can give it (same ``y``, ``folds``,
    ``seed``)."""
    known = np.zeros((len(y), len(all_classes)), dtype=bool)
    for train, test in stratified_folds(y, folds, seed):
        known[test] = np.isin(all_classes, y[train])
    return known

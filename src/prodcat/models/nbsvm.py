"""NB-SVM: a linear SVM on features rescaled per class by naive-Bayes log-count ratios.

Wang & Manning, "Baselines and Bigrams: Simple, Good Sentiment and Topic Classification"
(ACL 2012). For each class, one-vs-rest, every count-like column (no negative value in
training: TF-IDF, bag of words, indicators) is multiplied by how strongly its presence
separates that class from the others,

    r_c = log( (1 + presence count in c) / |.|_1  /  ((1 + presence count elsewhere) / |.|_1) ),

interpolated with 1 so that rare words are damped rather than silenced:
``scale_c = (1 - nb_weight) + nb_weight * |r_c| / mean|r_c|``. Columns with negative values
(standardised embeddings) keep scale 1. A binary class-weighted ``LinearSVC`` per class
then scores the products; the class with the highest margin wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from prodcat.parameters import AddedParametersDefaulted

if TYPE_CHECKING:
    from sklearn.utils import Tags


def _presence_counts(X: Any, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(n_classes, n_columns)``: per class, how many of its rows have a positive value in each column."""
    rows_of_class = sp.csr_matrix(
        (np.ones(len(y)), (np.searchsorted(classes, y), np.arange(len(y)))), shape=(len(classes), len(y))
    )
    counts = rows_of_class @ (X > 0).astype(float)  # one pass over X for every class
    return counts.toarray() if sp.issparse(counts) else np.asarray(counts)


def _column_min(X: Any) -> np.ndarray:
    """``(n_columns,)`` smallest value of each column (a sparse column's implicit zeros count)."""
    return np.asarray(X.min(axis=0).toarray() if sp.issparse(X) else X.min(axis=0)).ravel()


class NBSVMClassifier(AddedParametersDefaulted, ClassifierMixin, BaseEstimator):
    """One-vs-rest linear SVMs on NB-rescaled count-like features.

    ``decision_function`` is ``(n, n_classes)``, or ``(n,)`` with two classes as in scikit-learn:
    half the difference of the two one-vs-rest margins, positive for ``classes_[1]`` (a softmax of
    ``[-d, d]`` is that of the two margins).

    ``C`` is that of each binary :class:`~sklearn.svm.LinearSVC`; ``class_weight``: ``balanced``
    makes positives and negatives weigh the same in each, a ``{category: weight}`` dict weighs every
    product by its category's weight (1 if absent) in each one-vs-rest problem, whichever side it is
    on; ``nb_weight`` in [0, 1] is the share of the log-count ratio in each column's scale (0: a
    plain one-vs-rest SVM).
    """

    def __init__(
        self,
        C: float = 1.0,
        class_weight: str | dict[Any, float] | None = "balanced",
        nb_weight: float = 0.5,
        random_state: int = 0,
    ):
        self.C = C
        self.class_weight = class_weight
        self.nb_weight = nb_weight
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # TF-IDF and bag-of-words blocks, what it is for
        return tags

    def fit(self, X: Any, y: Any) -> NBSVMClassifier:
        """Fit ``scales_`` ``(n_classes, n_features)`` and one binary ``LinearSVC`` per class (``estimators_``) on
        ``X`` ``(n_samples, n_features)``, dense or CSR, and labels ``y`` ``(n_samples,)``. Raises ``ValueError``
        when ``y`` holds fewer than 2 classes."""
        X, y = validate_data(self, X, y, accept_sparse="csr")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"NBSVMClassifier needs samples of at least 2 classes, got 1 class: {self.classes_[0]!r}")
        count_like = _column_min(X) >= 0
        self.scales_ = np.ones((len(self.classes_), X.shape[1]))
        self.estimators_: list[LinearSVC] = []
        counts = _presence_counts(X, y, self.classes_)
        weights = self._product_weights(y)
        # a dict is in the product weights; "balanced" (or None) applies to each binary problem
        binary_weight = self.class_weight if weights is None else None
        total = counts.sum(axis=0)
        for k, label in enumerate(self.classes_):
            p = 1.0 + counts[k]
            q = 1.0 + total - counts[k]
            ratio = np.abs(np.log((p / p.sum()) / (q / q.sum())))[count_like]
            if ratio.size and ratio.mean() > 0:
                self.scales_[k, count_like] = (1 - self.nb_weight) + self.nb_weight * ratio / ratio.mean()
            model = LinearSVC(C=self.C, class_weight=binary_weight, random_state=self.random_state)
            self.estimators_.append(model.fit(self._scaled(X, k), (y == label).astype(int), sample_weight=weights))
        return self

    def _product_weights(self, y: np.ndarray) -> np.ndarray | None:
        """``(n,)`` each product's weight when ``class_weight`` is a ``{category: weight}`` dict, else ``None``:
        its keys are categories, not a binary problem's 0 and 1, so each product keeps its category's."""
        if not isinstance(self.class_weight, dict):
            return None
        return np.array([self.class_weight.get(label, 1.0) for label in y], dtype=float)

    def _scaled(self, X: Any, k: int) -> Any:
        """``X`` with its columns multiplied by class ``k``'s scales."""
        return X @ sp.diags(self.scales_[k]) if sp.issparse(X) else X * self.scales_[k]

    def margins(self, X: Any) -> np.ndarray:
        """``(n, n_classes)``: each class's one-vs-rest margin."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.column_stack([m.decision_function(self._scaled(X, k)) for k, m in enumerate(self.estimators_)])

    def decision_function(self, X: Any) -> np.ndarray:
        """:meth:`margins`, or with two classes ``(n,)`` half their difference (positive for ``classes_[1]``)."""
        margins = self.margins(X)
        return (margins[:, 1] - margins[:, 0]) / 2 if len(self.classes_) == 2 else margins

    def predict(self, X: Any) -> np.ndarray:
        """``(n,)`` the class of the highest one-vs-rest margin of each row of ``X`` ``(n, n_features)``."""
        best = self.margins(X).argmax(axis=1)  # first: an unfitted model raises NotFittedError, not AttributeError
        return self.classes_[best]

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

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted


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


class NBSVMClassifier(ClassifierMixin, BaseEstimator):
    """One-vs-rest linear SVMs on NB-rescaled count-like features; ``decision_function`` is ``(n, n_classes)``.

    ``C`` and ``class_weight`` are those of each binary :class:`~sklearn.svm.LinearSVC`
    (``balanced``: positives and negatives weigh the same in each); ``nb_weight`` in [0, 1]
    is the share of the log-count ratio in each column's scale (0: a plain one-vs-rest SVM).
    """

    def __init__(
        self, C: float = 1.0, class_weight: str | None = "balanced", nb_weight: float = 0.5, random_state: int = 0
    ):
        self.C = C
        self.class_weight = class_weight
        self.nb_weight = nb_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> NBSVMClassifier:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("NBSVMClassifier needs at least two classes")
        count_like = _column_min(X) >= 0
        self.scales_ = np.ones((len(self.classes_), X.shape[1]))
        self.estimators_: list[LinearSVC] = []
        counts = _presence_counts(X, y, self.classes_)
        total = counts.sum(axis=0)
        for k, label in enumerate(self.classes_):
            p = 1.0 + counts[k]
            q = 1.0 + total - counts[k]
            ratio = np.abs(np.log((p / p.sum()) / (q / q.sum())))[count_like]
            if ratio.size and ratio.mean() > 0:
                self.scales_[k, count_like] = (1 - self.nb_weight) + self.nb_weight * ratio / ratio.mean()
            model = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)
            self.estimators_.append(model.fit(self._scaled(X, k), (y == label).astype(int)))
        return self

    def _scaled(self, X: Any, k: int) -> Any:
        """``X`` with its columns multiplied by class ``k``'s scales."""
        return X @ sp.diags(self.scales_[k]) if sp.issparse(X) else X * self.scales_[k]

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return np.column_stack([m.decision_function(self._scaled(X, k)) for k, m in enumerate(self.estimators_)])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

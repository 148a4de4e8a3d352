"""Late and stacking fusion: combining the modality heads' probabilities into one distribution.

(Early fusion, one classifier on the heads' features side by side, is in :mod:`prodcat.models.classifier`.)
Both fusers are fitted on *out-of-fold* head probabilities, so they learn how
much to trust each head on products it has not seen. Inputs are a dict
``head name -> (n, k) probabilities`` and a dict ``head name -> (n,) bool``
saying which products that head can read (a product's row of a head that cannot read it is ignored);
``y_index`` ``(n,)`` is each product's true class as a column index, and ``predict_proba`` returns ``(n, k)``
probabilities, each row summing to 1. A product some head cannot read (no photo, no description) is predicted
from the others alone. The fitted ``modalities_`` holds those head names, sorted, despite its name (renamed,
the models pickled with it would no longer predict).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from prodcat.parameters import AddedParametersDefaulted

#: floor of a head's probability before its log: a 0 (-inf) would veto the class whatever the other heads say
EPS = 1e-6


def any_present(masks: dict[str, np.ndarray]) -> np.ndarray:
    """``(n,)`` bool: the products at least one of the ``masks`` marks present."""
    return np.logical_or.reduce(list(masks.values()))


def _log(p: np.ndarray) -> np.ndarray:
    """Natural log of the probabilities ``p`` (any shape), each floored at :data:`EPS` first."""
    return np.log(np.clip(p, EPS, 1.0))


class LateFusion(AddedParametersDefaulted, BaseEstimator):
    """Weighted geometric mean of the heads' probabilities, weighted per set of heads present.

    Products differ in which heads can speak (no photo, no description), and a
    fused distribution's sharpness grows with the number of heads multiplied in:
    one set of weights for all would leave products with fewer heads badly
    calibrated. So for each set of present heads seen on at least
    ``min_products`` products, one non-negative weight per head is fitted by
    minimising the log-loss of those products' out-of-fold predictions (the
    weights need not sum to 1: they also set the sharpness, even of a single head). Rarer sets use the
    weights fitted on every product, over the heads they have.
    """

    def __init__(self, min_products: int = 30):
        self.min_products = min_products

    def fit(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray], y_index: np.ndarray) -> LateFusion:
        """Fit ``default_weights_`` (``{head: weight}``, on every product with a head) and ``weights_`` (``{set of
        present heads: {head: weight}}``, for each set of at least ``min_products`` products)."""
        self.modalities_ = sorted(probas)
        self.n_classes_ = next(iter(probas.values())).shape[1]
        any_head = np.logical_or.reduce([masks[m] for m in self.modalities_])
        self.default_weights_ = self._fit_weights(self.modalities_, probas, masks, any_head, y_index)
        self.weights_: dict[tuple[str, ...], dict[str, float]] = {}
        for present, rows in self._groups(masks).items():
            if rows.sum() >= self.min_products:
                self.weights_[present] = self._fit_weights(list(present), probas, masks, rows, y_index)
        return self

    def _groups(self, masks: dict[str, np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
        """Rows per set of present heads (products with no head left out)."""
        present = np.column_stack([masks[m] for m in self.modalities_])
        groups = {}
        for pattern in np.unique(present[present.any(axis=1)], axis=0):
            groups[tuple(m for m, p in zip(self.modalities_, pattern, strict=True) if p)] = (present == pattern).all(
                axis=1
            )
        return groups

    def _fit_weights(
        self,
        heads: list[str],
        probas: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        rows: np.ndarray,
        y_index: np.ndarray,
    ) -> dict[str, float]:
        """``{head: weight}`` for ``heads``, each weight in [e^-6, e^3]: those minimising the log-loss of
        :meth:`_combine` on the products of ``rows`` (``(n,)`` bool) at their true classes ``y_index`` ``(n,)``;
        ``probas`` and ``masks`` as :meth:`fit`'s."""
        subset = {m: probas[m][rows] for m in heads}, {m: masks[m][rows] for m in heads}

        def loss(log_weights: np.ndarray) -> float:
            weights = dict(zip(heads, np.exp(log_weights), strict=True))
            return log_loss(y_index[rows], self._combine(weights, *subset), labels=np.arange(self.n_classes_))

        best = minimize(loss, np.zeros(len(heads)), method="L-BFGS-B", bounds=[(-6.0, 3.0)] * len(heads))
        return {m: float(w) for m, w in zip(heads, np.exp(best.x), strict=True)}

    @staticmethod
    def _combine(weights: dict[str, float], probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, k)`` probabilities, rows summing to 1: the softmax of the sum over ``weights``' heads of weight x
        log-probability, ``probas[head]`` ``(n, k)``, where ``masks[head]`` ``(n,)`` says the head reads the product
        (a head that does not adds nothing)."""
        n, k = next(iter(probas.values())).shape
        logits = np.zeros((n, k))
        for m, w in weights.items():
            logits += w * masks[m][:, None] * _log(probas[m])
        logits -= logits.max(axis=1, keepdims=True)
        out = np.exp(logits)
        return out / out.sum(axis=1, keepdims=True)

    def predict_proba(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, n_classes)``; uniform for products with no head."""
        out = np.full((len(next(iter(masks.values()))), self.n_classes_), 1.0 / self.n_classes_)
        for present, rows in self._groups(masks).items():
            weights = self.weights_.get(present) or {m: self.default_weights_[m] for m in present}
            present_probas = {m: probas[m][rows] for m in present}
            out[rows] = self._combine(weights, present_probas, {m: masks[m][rows] for m in present})
        return out


class StackingFusion(AddedParametersDefaulted, BaseEstimator):
    """A multinomial logistic regression on the heads' log-probabilities.

    Its input per product is each head's log-probabilities (zeros where the
    head cannot read the product) plus one indicator per head, so the meta-model
    learns per class which head to believe, and how much when one is absent.
    """

    def __init__(self, C: float = 1.0):
        self.C = C

    def _design(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, n_heads * (n_classes + 1))``, per head its log-probabilities (0 where unread), then its mask."""
        blocks = []
        for m in self.modalities_:
            blocks.append(_log(probas[m]) * masks[m][:, None])
            blocks.append(masks[m][:, None].astype(float))
        return np.hstack(blocks)

    def fit(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray], y_index: np.ndarray) -> StackingFusion:
        """Fit ``model_``, the logistic regression (inverse regularisation ``C``) on :meth:`_design`'s columns."""
        self.modalities_ = sorted(probas)
        self.n_classes_ = next(iter(probas.values())).shape[1]
        # one BLAS thread: L-BFGS makes hundreds of matrix products of a few hundred columns, each waiting for every
        # thread, and on busy cores a thread the OS had paused stalled each of them. Fashion's size (4,800 products,
        # 255 columns, 84 classes): 0.4 CPU-s for 30 iterations on one thread, 7 on two (load 16), the coefficients
        # the same to 1e-6 (rounding: the same on 600 products, to the last bit)
        with threadpool_limits(1, user_api="blas"):
            self.model_ = LogisticRegression(C=self.C, max_iter=3000).fit(self._design(probas, masks), y_index)
        return self

    def predict_proba(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, n_classes)``; a class no training product had gets probability 0."""
        proba = self.model_.predict_proba(self._design(probas, masks))
        out = np.zeros((proba.shape[0], self.n_classes_))
        out[:, self.model_.classes_] = proba
        return out

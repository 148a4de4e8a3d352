"""Combining the modality heads' probabilities into one distribution.

Both fusers are fitted on *out-of-fold* head probabilities, so they learn how
much to trust each head on products it has not seen. Inputs are a dict
``modality -> (n, k) probabilities`` and a dict ``modality -> (n,) bool``
saying which products have that modality; a product missing a modality is
predicted from the others alone.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

EPS = 1e-6


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, EPS, 1.0))


class LateFusion(BaseEstimator):
    """Weighted geometric mean of the heads' probabilities.

    One non-negative weight per modality, fitted by minimising the log-loss of
    the out-of-fold predictions of the products that have every modality (the
    weights need not sum to 1: they also set how sharp the fused distribution
    is). A product with only some modalities uses those heads, their weights
    renormalised to sum to 1.
    """

    def fit(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray], y_index: np.ndarray) -> LateFusion:
        self.modalities_ = sorted(probas)
        n_classes = next(iter(probas.values())).shape[1]
        self.weights_ = {m: 1.0 for m in self.modalities_}
        complete = np.logical_and.reduce([masks[m] for m in self.modalities_])
        if len(self.modalities_) == 1 or not complete.any():
            return self
        subset = ({m: p[complete] for m, p in probas.items()}, {m: k[complete] for m, k in masks.items()})

        def loss(log_weights: np.ndarray) -> float:
            weights = dict(zip(self.modalities_, np.exp(log_weights), strict=True))
            return log_loss(y_index[complete], self._combine(weights, *subset), labels=np.arange(n_classes))

        best = minimize(
            loss, np.zeros(len(self.modalities_)), method="L-BFGS-B", bounds=[(-6.0, 3.0)] * len(self.modalities_)
        )
        self.weights_ = {m: float(w) for m, w in zip(self.modalities_, np.exp(best.x), strict=True)}
        return self

    @staticmethod
    def _combine(weights: dict[str, float], probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        n, k = next(iter(probas.values())).shape
        logits = np.zeros((n, k))
        total = np.zeros(n)
        for m, w in weights.items():
            logits += w * masks[m][:, None] * _log(probas[m])
            total += w * masks[m]
        complete = np.logical_and.reduce([masks[m] for m in weights])
        scale = np.where(complete | (total == 0), 1.0, 1.0 / np.where(total == 0, 1.0, total))
        logits *= scale[:, None]
        logits -= logits.max(axis=1, keepdims=True)
        out = np.exp(logits)
        return out / out.sum(axis=1, keepdims=True)

    def predict_proba(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        return self._combine(self.weights_, probas, masks)


class StackingFusion(BaseEstimator):
    """A multinomial logistic regression on the heads' log-probabilities.

    Its input per product is each head's log-probabilities (zeros where the
    modality is missing) plus one indicator per modality, so the meta-model
    learns per class which head to believe, and how much when one is absent.
    """

    def __init__(self, C: float = 1.0):
        self.C = C

    def _design(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        blocks = []
        for m in self.modalities_:
            blocks.append(_log(probas[m]) * masks[m][:, None])
            blocks.append(masks[m][:, None].astype(float))
        return np.hstack(blocks)

    def fit(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray], y_index: np.ndarray) -> StackingFusion:
        self.modalities_ = sorted(probas)
        self.n_classes_ = next(iter(probas.values())).shape[1]
        self.model_ = LogisticRegression(C=self.C, max_iter=3000).fit(self._design(probas, masks), y_index)
        return self

    def predict_proba(self, probas: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        proba = self.model_.predict_proba(self._design(probas, masks))
        out = np.zeros((proba.shape[0], self.n_classes_))
        out[:, self.model_.classes_] = proba
        return out

"""Post-hoc calibration: make a confidence of 0.9 right nine times in ten.

Fitted on out-of-fold probabilities, never on the training predictions.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from prodcat.parameters import AddedParametersDefaulted

EPS = 1e-9


class TemperatureScaler(AddedParametersDefaulted, BaseEstimator):
    """Divide log-probabilities by one temperature ``T`` fitted by maximum likelihood.

    Keeps the ranking of classes, so accuracy is unchanged.
    """

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> TemperatureScaler:
        logp = np.log(np.clip(proba, EPS, 1.0))

        def nll(log_t: float) -> float:
            scaled = logp / np.exp(log_t)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(np.mean(log_norm - scaled[np.arange(len(y_index)), y_index]))

        self.temperature_ = float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        scaled = np.log(np.clip(proba, EPS, 1.0)) / self.temperature_
        scaled -= scaled.max(axis=1, keepdims=True)
        out = np.exp(scaled)
        return out / out.sum(axis=1, keepdims=True)


class TopLabelCalibrator(AddedParametersDefaulted, BaseEstimator):
    """Re-fit the top class's probability as P(the prediction is right); the other classes share the rest.

    Subclasses give that probability, ``(n,)``, from the ``(n, n_classes)`` probabilities in
    :meth:`_top_probability`, after an optional :meth:`_prescale`. The ranking of every class is kept,
    so accuracy is unchanged.
    """

    def _prescale(self, proba: np.ndarray) -> np.ndarray:
        return proba

    def _top_probability(self, proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform(self, proba: np.ndarray) -> np.ndarray:
        proba = self._prescale(proba)
        n, k = proba.shape
        top = proba.argmax(axis=1)
        confidence = proba.max(axis=1)
        target = np.clip(self._top_probability(proba), 1.0 / k, 1.0)
        # Lowering the top: mix with the uniform distribution (keeps the ranking of every class).
        # Raising it: shrink the other classes proportionally (they stay below the top).
        mix = np.clip((target - 1.0 / k) / np.clip(confidence - 1.0 / k, EPS, None), 1e-3, 1.0)
        lowered = proba * mix[:, None] + (1.0 - mix[:, None]) / k
        rest = np.clip(1.0 - confidence, EPS, None)
        raised = proba * ((1.0 - target) / rest)[:, None]
        raised[np.arange(n), top] = target
        return np.where((target < confidence)[:, None], lowered, raised)


class TopLabelIsotonic(TopLabelCalibrator):
    """Isotonic map of the top-class confidence."""

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> TopLabelIsotonic:
        self.model_ = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
            proba.max(axis=1), (proba.argmax(axis=1) == y_index).astype(float)
        )
        return self

    def _top_probability(self, proba: np.ndarray) -> np.ndarray:
        return self.model_.predict(proba.max(axis=1))


def log_margin(proba: np.ndarray) -> np.ndarray:
    """``(n,)`` log of the ratio of the two highest probabilities of each row of ``proba`` ``(n, n_classes)``."""
    two = np.log(np.clip(np.sort(proba, axis=1)[:, -2:], EPS, 1.0))
    return two[:, 1] - two[:, 0]


class MarginCalibrator(TopLabelCalibrator):
    """Temperature scaling, then the top class's probability set to a logistic function of the log-ratio of
    the two highest probabilities (Platt scaling of the margin to the runner-up).

    A prediction whose runner-up is close is doubtful however high its own probability; the margin ranks
    predictions by how likely they are right better than the top probability does (the auto-accepted share of
    Flipkart at precision 0.99 in ``benchmarks/results/not_adopted.md``), and a confidence that is a
    function of it is what the decision threshold reads. Two parameters, fitted by maximum likelihood: no
    steps as in isotonic regression, whose plateaus the threshold can only take or leave whole.
    """

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> MarginCalibrator:
        self.temperature_ = TemperatureScaler().fit(proba, y_index)
        scaled = self.temperature_.transform(proba)
        right = scaled.argmax(axis=1) == y_index
        # every prediction right (or every one wrong): no margin to learn from, the temperature alone answers
        self.model_ = None
        if 0 < right.sum() < len(right):
            # C large: two parameters and hundreds of products, nothing to regularise
            self.model_ = LogisticRegression(C=1e4).fit(log_margin(scaled)[:, None], right.astype(int))
        return self

    def _prescale(self, proba: np.ndarray) -> np.ndarray:
        return self.temperature_.transform(proba)

    def _top_probability(self, proba: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return proba.max(axis=1)
        return self.model_.predict_proba(log_margin(proba)[:, None])[:, 1]


class IdentityCalibrator(AddedParametersDefaulted, BaseEstimator):
    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> IdentityCalibrator:
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        return proba


def make_calibrator(kind: str) -> BaseEstimator:
    calibrators = {
        "temperature": TemperatureScaler,
        "isotonic": TopLabelIsotonic,
        "margin": MarginCalibrator,
        "none": IdentityCalibrator,
    }
    return calibrators[kind]()

"""Post-hoc calibration: make a confidence of 0.9 right nine times in ten.

Fitted on out-of-fold probabilities, never on the training predictions.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

EPS = 1e-9


class TemperatureScaler(BaseEstimator):
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


class TopLabelIsotonic(BaseEstimator):
    """Isotonic map of the top-class confidence; other classes share the rest proportionally."""

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> TopLabelIsotonic:
        top = proba.argmax(axis=1)
        self.model_ = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
            proba.max(axis=1), (top == y_index).astype(float)
        )
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        n, k = proba.shape
        top = proba.argmax(axis=1)
        confidence = proba.max(axis=1)
        target = np.clip(self.model_.predict(confidence), 1.0 / k, 1.0)
        # Lowering the top: mix with the uniform distribution (keeps the ranking of every class).
        # Raising it: shrink the other classes proportionally (they stay below the top).
        mix = np.clip((target - 1.0 / k) / np.clip(confidence - 1.0 / k, EPS, None), 1e-3, 1.0)
        lowered = proba * mix[:, None] + (1.0 - mix[:, None]) / k
        rest = np.clip(1.0 - confidence, EPS, None)
        raised = proba * ((1.0 - target) / rest)[:, None]
        raised[np.arange(n), top] = target
        return np.where((target < confidence)[:, None], lowered, raised)


class IdentityCalibrator(BaseEstimator):
    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> IdentityCalibrator:
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        return proba


def make_calibrator(kind: str) -> BaseEstimator:
    return {"temperature": TemperatureScaler, "isotonic": TopLabelIsotonic, "none": IdentityCalibrator}[kind]()

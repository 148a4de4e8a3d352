"""Post-hoc calibration: make a confidence of 0.9 right nine times in ten.

Fitted on out-of-fold probabilities, never on the training predictions (a model is surest of the products it was
trained on). Every calibrator ``fit(proba, y_index)`` takes ``(n_samples, n_classes)`` probabilities and the
``(n_samples,)`` column of each product's true class, and ``transform(proba)`` returns ``(n_samples, n_classes)``
probabilities, each row summing to 1, with the classes ranked as before (accuracy unchanged).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from prodcat.parameters import AddedParametersDefaulted

#: floor of a probability before its log: a 0 would give -inf
EPS = 1e-9


class TemperatureScaler(AddedParametersDefaulted, BaseEstimator):
    """Divide log-probabilities by one temperature ``T`` fitted by maximum likelihood.

    Keeps the ranking of classes, so accuracy is unchanged. ``temperature_`` > 1 flattens over-confident
    probabilities, < 1 sharpens under-confident ones.
    """

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> TemperatureScaler:
        """Fit ``temperature_`` (searched in [e^-3, e^3]) minimising the log-loss of ``proba`` ``(n, n_classes)`` at
        the true classes ``y_index`` ``(n,)`` (column indices)."""
        logp = np.log(np.clip(proba, EPS, 1.0))

        def nll(log_t: float) -> float:
            scaled = logp / np.exp(log_t)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(np.mean(log_norm - scaled[np.arange(len(y_index)), y_index]))

        self.temperature_ = float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """``(n, n_classes)``: the softmax of ``log(proba) / temperature_``."""
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
        """``proba`` ``(n, n_classes)`` as the top probability is read from: as given here."""
        return proba

    def _top_probability(self, proba: np.ndarray) -> np.ndarray:
        """``(n,)`` the probability that each row's top class of the prescaled ``proba`` ``(n, n_classes)`` is right."""
        raise NotImplementedError

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """``(n, n_classes)``: ``proba`` (prescaled) with the top class's probability set to
        :meth:`_top_probability` (at least ``1 / n_classes``) and the others rescaled to keep the row summing to 1."""
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
        """Fit ``model_``, a non-decreasing step function from the top probability of ``proba`` ``(n, n_classes)`` to
        the share of those predictions that are right (``y_index`` ``(n,)``, the true classes' columns)."""
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
        """Fit ``temperature_`` (a :class:`TemperatureScaler`) on ``proba`` ``(n, n_classes)`` and ``y_index``
        ``(n,)``, then ``model_``, a logistic regression of whether the prediction is right on the scaled
        :func:`log_margin` (``None`` when every prediction is right, or every one wrong)."""
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
    """No calibration (``calibration: none``): ``transform`` returns the probabilities as they are."""

    def fit(self, proba: np.ndarray, y_index: np.ndarray) -> IdentityCalibrator:
        """Learn nothing: the calibrators' interface."""
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """``proba`` itself."""
        return proba


def make_calibrator(kind: str) -> BaseEstimator:
    """An unfitted calibrator of ``kind`` (the config's ``calibration``): ``temperature``, ``isotonic``, ``margin`` or
    ``none``. Raises ``KeyError`` for another name (the config accepts no other)."""
    calibrators = {
        "temperature": TemperatureScaler,
        "isotonic": TopLabelIsotonic,
        "margin": MarginCalibrator,
        "none": IdentityCalibrator,
    }
    return calibrators[kind]()

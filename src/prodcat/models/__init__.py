"""Supervised models: modality heads, fusion, calibration, the decision policy and ``ProductClassifier``.

:class:`prodcat.models.classifier.ProductClassifier` is the scikit-learn classifier of catalogue frames that
``prodcat train`` and ``prodcat cv`` fit and every front end's Predictor holds; the other modules are its parts, each
a small estimator with ``fit`` and ``predict_proba`` (or ``transform``, or ``decide``).
"""

"""README's headline figures, re-measured: the default model's 5-fold cross-validation on all of Flipkart.

The one data-heavy check guarding what README and ``benchmarks/results/fusion.md`` claim of the default
(accuracy 0.967, 89.3% auto-accepted at precision 0.990, ECE 0.005 on fold seed 0): a change to the features,
the early classifier, the calibration or the decision policy that costs accuracy or automation fails here,
not only in a benchmark nobody re-runs. The bounds leave room for a product or two: the sentence encoders'
vectors differ in their last bit between machines (see docs/measured.md), which can move one prediction.
About two minutes on 2 cores with the embedding cache warm (the inner CV of two early classifiers), four to five cold.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_default_model_cross_validates_on_flipkart_as_measured(flipkart_dir) -> None:
    from prodcat.catalog.loaders import load_catalog
    from prodcat.config import Config
    from prodcat.evaluate.cv import cross_validate

    frame = load_catalog(flipkart_dir).frame
    result = cross_validate(frame, Config(seed=0).for_format("flipkart"), progress=False)
    metrics = result.metrics()
    decision = metrics["decision"]
    assert metrics["n"] == 900
    assert metrics["accuracy"] >= 0.964  # 0.9667 measured: 30 errors, 32 allowed
    assert decision["automation_rate"] >= 0.88 and decision["auto_precision"] >= 0.985  # 89.3% at 0.990
    assert metrics["calibration"]["ece"] <= 0.015  # 0.005; temperature scaling alone gave 0.020
    # the three products without a photo are classified from their text
    assert metrics["by_modalities"]["text"]["n"] == 3

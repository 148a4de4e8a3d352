"""README's headline figures, re-measured: the default model's cross-validation on Flipkart and on Rakuten.

The data-heavy checks guarding what README and ``benchmarks/results/fusion.md`` claim of the default: a change to
the features, the early classifier, the calibration or the decision policy that costs accuracy or automation fails
here, not only in a benchmark nobody re-runs. The bounds leave room for a product or two: the sentence encoders'
vectors differ in their last bit between machines (see docs/measured.md), which can move one prediction.

- Flipkart: the whole 5-fold cross-validation (accuracy 0.967, 89.3% auto-accepted at precision 0.990, ECE 0.005 on
  fold seed 0). About two minutes on 2 cores with the embedding cache warm (the inner CV of two early classifiers),
  four to five cold.
- Rakuten: its whole cross-validation takes 7 to 11 minutes here, so one of its folds, fold 0 of fold seed 0, the
  same split and model as ``prodcat cv``'s (weighted F1 0.758 on the 2,095 products with text over the five folds).
  Fold 0 measured on 2026-12-06: weighted F1 0.7775 on its 405 products with text, accuracy 0.6289 on all 698,
  10.2% auto-accepted (71) at precision 1.000, threshold 0.987. On the 2 cores shared with other work: 3.8 minutes
  with the embedding cache warm (load 7-10), 19 cold (load 9-10, a third of a core for 385 CPU-seconds; e5 read the
  2,095 texts at 2-4 a second). Not timed on a quieter machine: the five folds took 11 minutes beside one benchmark.
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


def test_default_model_scores_rakuten_fold_0_as_measured(rakuten_dir) -> None:
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample
    from prodcat.config import Config
    from prodcat.evaluate.cv import cross_validate
    from prodcat.evaluate.metrics import headline

    catalog = load_catalog(rakuten_dir)
    config = Config(seed=0).for_format(catalog.format)  # the full category path: the 27 product types
    frame = labelled_sample(catalog.frame, config, None)  # the products prodcat cv and benchmarks/fusion.py score
    result = cross_validate(frame, config, progress=False, only_folds=[0])
    metrics = result.metrics()
    with_text = result.classified_from("text")
    assert len(frame) == 3490 and metrics["n"] == 698 and with_text.sum() == 405
    # 0.7775 measured; the 0.75 target is for the five folds' 2,095 (0.758), fold 0 scores above it
    assert headline(result.y_true[with_text], result.y_pred[with_text])["f1_weighted"] >= 0.770
    assert metrics["accuracy"] >= 0.624  # 0.6289 measured: 259 errors, 262 allowed
    # one threshold for the fold, under 1 (above it nothing is auto-accepted): 0.987 measured
    thresholds = set(result.decision_threshold.tolist())
    assert len(thresholds) == 1 and 0.95 < thresholds.pop() < 1.0
    decision = metrics["decision"]
    assert decision["automation_rate"] >= 0.09 and decision["auto_precision"] >= 0.97  # 10.2% (71) at 1.000

"""README's headline figures, re-measured: the default model's cross-validation on Flipkart, Rakuten and fashion.

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
- fashion: its five folds took 52 to 95 minutes (``fusion.json``'s ``seconds``), so fold 0 of fold seed 0 alone, as
  for Rakuten (macro F1 0.943 over the five folds, target 0.93). Measured on 2026-12-07: macro F1 0.9396, accuracy
  0.9692 (37 errors of 1,200), levels 1 and 2 0.9983 and 0.9883, 88.6% auto-accepted (1,063) at precision 0.989,
  threshold 0.953, ECE 0.0055. 472 CPU-seconds: 33 minutes at load 11-15 under ``nice -n 10``, the embedding cache
  nearly warm (3,618 of 16,658 features encoded); cold, 546 CPU-seconds: 49 minutes at load 10-15, the same figures.
  Without its photo head the model fails the accuracy, levels, automation and modalities asserts (docs/measured.md).
  Its model's inner cross-validations fit their folds in 2 processes (``n_jobs=2``, ``--jobs 2``), which train the
  model one process does, byte for byte (``tests/test_parallel.py``): so it guards the default's figures, sooner where
  the 2 cores are free (272 s at load 3-5, docs/measured.md). The Flipkart and Rakuten guards fit in one process, the
  default, so that its path stays guarded too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from prodcat.evaluate.cv import CVResult

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


def fold_0_as_prodcat_cv_scores_it(folder: Path, n_jobs: int | None = None) -> tuple[pd.DataFrame, CVResult]:
    """The labelled products ``prodcat cv FOLDER`` (and ``benchmarks/fusion.py``) score, and the default model's
    predictions of fold 0 of fold seed 0 among them: the same split and fold model as the whole run's (its inner
    folds fitted in ``n_jobs`` processes)."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample
    from prodcat.config import Config
    from prodcat.evaluate.cv import cross_validate

    catalog = load_catalog(folder)
    config = Config(seed=0).for_format(catalog.format)  # both catalogues: the full category path
    frame = labelled_sample(catalog.frame, config, None)
    return frame, cross_validate(frame, config, progress=False, only_folds=[0], n_jobs=n_jobs)


def test_default_model_scores_rakuten_fold_0_as_measured(rakuten_dir) -> None:
    from prodcat.evaluate.metrics import headline

    frame, result = fold_0_as_prodcat_cv_scores_it(rakuten_dir)  # the 27 product types
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


def test_default_model_scores_fashion_fold_0_as_measured(fashion_dir) -> None:
    # the full path: the 84 article types; its inner folds in 2 processes, the model one process trains (see above)
    frame, result = fold_0_as_prodcat_cv_scores_it(fashion_dir, n_jobs=2)
    metrics = result.metrics()
    assert len(frame) == 6000 and metrics["n"] == 1200 and len(result.classes) == 84
    # 0.9396 measured; the 0.93 target is for the five folds' 6,000 (0.943). 22 of the 84 classes have one or two
    # products in a fold: one of them wrong costs macro F1 up to 0.012, so the bound leaves two such errors of room
    assert metrics["f1_macro"] >= 0.915
    assert metrics["accuracy"] >= 0.967  # 0.9692 measured: 37 errors, 39 allowed
    # the three levels of the path, master category / subcategory / article type: 2, 14 and 37 errors measured
    levels = {level: scores["accuracy"] for level, scores in metrics["levels"].items()}
    assert levels.keys() == {"1", "2", "3"} and levels["3"] == metrics["accuracy"]
    assert levels["1"] >= 0.996 and levels["2"] >= 0.986  # 0.9983 and 0.9883: 4 and 16 errors allowed
    # one threshold for the fold, under 1 (above it nothing is auto-accepted): 0.953 measured
    thresholds = set(result.decision_threshold.tolist())
    assert len(thresholds) == 1 and 0.9 < thresholds.pop() < 1.0
    decision = metrics["decision"]
    assert decision["automation_rate"] >= 0.87 and decision["auto_precision"] >= 0.985  # 88.6% (1,063) at 0.989
    assert metrics["calibration"]["ece"] <= 0.015  # 0.0055 measured
    # every product of the fold is classified from its text and its photo
    assert metrics["by_modalities"].keys() == {"text+image"}

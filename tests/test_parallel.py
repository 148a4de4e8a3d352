"""Training's inner cross-validation in worker processes (``ProductClassifier(n_jobs=...)``, ``--jobs``): the same
model as in one process, and the workers' warnings raised in the caller as if the fits had run there."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin

from prodcat.cli import build_parser
from prodcat.config import Config
from prodcat.models.classifier import ProductClassifier
from prodcat.models.heads import RegressionGuess, fold_probas

needs_two_cores = pytest.mark.skipif(
    effective_n_jobs(-1) < 2, reason="one core: n_jobs=2 fits in this process (worker_count), with no worker to test"
)


class WarningClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose fit warns twice: once in its own words (its rows), once in the words of scikit-learn's
    warning that prodcat silences around every fold's fit (:class:`~prodcat.models.heads.RegressionGuess`)."""

    def fit(self, X: Any, y: Any) -> WarningClassifier:
        warnings.warn(f"fitted on {X.shape[0]} rows", UserWarning, stacklevel=1)
        warnings.warn(f"{RegressionGuess.message} (a silenced one)", UserWarning, stacklevel=1)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((X.shape[0], len(self.classes_)), 1 / len(self.classes_))


def warnings_of_the_folds(n_jobs: int, action: str) -> list[tuple[type[Warning], str, str, int]]:
    """The warnings a 3-fold cross-validation of :class:`WarningClassifier` raises here, in ``n_jobs`` processes,
    under the filter ``action``: category, text, file and line of each."""
    y = np.array(["a", "b", "c"] * 20)
    X = sp.csr_matrix(np.eye(60))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(action)
        fold_probas([WarningClassifier()], X, y, np.unique(y), folds=3, seed=0, n_jobs=n_jobs)
    return [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


@needs_two_cores
def test_warnings_raised_in_a_worker_reach_the_caller_as_in_one_process() -> None:
    """A fold fitted in a loky worker printed its warnings (liblinear's ConvergenceWarning) from that process: they
    reached neither the caller's filters nor its log nor pytest. They are raised again in the caller, as many, in the
    same order, at the same file and line, and judged by its filters: shown for each fit under ``always``, once per
    place under ``default`` (the module's registry), and prodcat's silenced ones not at all."""
    always = warnings_of_the_folds(1, "always")
    assert [text for _, text, _, _ in always] == ["fitted on 40 rows"] * 3
    assert always[0][2] == __file__
    assert warnings_of_the_folds(2, "always") == always
    assert warnings_of_the_folds(2, "default") == warnings_of_the_folds(1, "default") == always[:1]
    with pytest.raises(UserWarning, match="fitted on 40 rows"):  # an error where the caller's filters make it one
        warnings_of_the_folds(2, "error")


def test_processes_are_no_more_than_the_fits_nor_the_cores() -> None:
    from prodcat.parallel import worker_count

    assert worker_count(None, 10) == worker_count(1, 10) == 1
    assert worker_count(-1, 10) == worker_count(1000, 10) == min(effective_n_jobs(-1), 10)
    assert worker_count(-1, 1) == 1


def test_how_many_processes_fitted_it_is_not_pickled() -> None:
    """``n_jobs`` is how the model was fitted, not what it learnt: a bundle's model file (whose hash is its version)
    is the same whatever ``--jobs`` trained it; unpickled, the model has the default."""
    config = Config(seed=3)
    assert pickle.dumps(ProductClassifier(config, n_jobs=2)) == pickle.dumps(ProductClassifier(config))
    assert pickle.loads(pickle.dumps(ProductClassifier(config, n_jobs=2))).get_params()["n_jobs"] is None


@pytest.mark.parametrize("command", ["train", "cv", "audit"])
def test_jobs_is_an_option_of_the_commands_that_train(command: str, tmp_path: Path) -> None:
    given = ["DATA", "--out" if command == "train" else "--report", str(tmp_path / "out")]
    parser = build_parser()
    assert parser.parse_args([command, *given]).jobs is None  # ProductClassifier's default: this process
    assert parser.parse_args([command, *given, "--jobs", "-1"]).jobs == -1
    with pytest.raises(SystemExit):
        parser.parse_args([command, *given, "--jobs", "0"])


def test_the_label_audits_jobs_are_refused_without_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prodcat.cli import main

    (tmp_path / "products.csv").write_text("product_id,title,category\n1,Mug,Kitchen\n")
    assert main(["audit", str(tmp_path / "products.csv"), "--report", str(tmp_path / "out"), "--jobs", "2"]) == 2
    assert "--jobs only applies to the label audit: add --labels" in capsys.readouterr().err


@needs_two_cores
def test_two_processes_train_the_model_one_does_on_flipkart(flipkart_dir: Path) -> None:
    """The default model (early fusion choosing between NB-SVM and its vote with a logistic regression, the photo
    head's SVC, the calibration) trained on 300 Flipkart products with ``n_jobs=2`` is the one ``n_jobs=1`` trains:
    the same predictions, probabilities, out-of-fold scores and choices, and pickled, the same bytes (a bundle's
    model file, whose hash is its version). Each worker's BLAS ran one thread and this process's two: the logistic
    regression's out-of-fold log-loss differed in its 13th digit, and the model file with it."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample

    catalog = load_catalog(flipkart_dir)
    config = Config(seed=0, sample=300).for_format(catalog.format)
    frame = labelled_sample(catalog.frame, config, config.sample)
    one, two = (ProductClassifier(config, n_jobs=n_jobs).fit(frame) for n_jobs in (1, 2))
    assert two.early_kept_ == one.early_kept_ and len(one.early_selection_["text"]) == 2
    for candidate, scores in one.early_selection_["text"].items():
        assert two.early_selection_["text"][candidate] == pytest.approx(scores, rel=1e-9)
    np.testing.assert_allclose(two.oof_proba_, one.oof_proba_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(two.predict_proba(frame), one.predict_proba(frame), rtol=0, atol=1e-9)
    assert (two.predict(frame) == one.predict(frame)).all()
    assert two.early_selection_ == one.early_selection_  # to the last digit
    assert pickle.dumps(two) == pickle.dumps(one)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_an_n_jobs_without_meaning_is_refused_before_any_feature_is_extracted(n_jobs: object) -> None:
    """joblib refused ``n_jobs=0`` only at the first parallel call, after every feature matrix was built (the photos'
    embeddings of a whole catalogue); ``fit`` checks it first, with the config."""
    frame = pd.DataFrame(
        {"product_id": ["a"], "title": ["mug"], "description": [""], "image": [None], "category": ["K"]}
    )
    with pytest.raises(ValueError, match="n_jobs="):
        ProductClassifier(Config(), n_jobs=n_jobs).fit(frame)  # type: ignore[arg-type]

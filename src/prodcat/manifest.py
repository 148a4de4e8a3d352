"""A bundle's manifest read, and every file of the bundle checked against it (:mod:`prodcat.bundle` re-exports
these), apart from :mod:`prodcat.bundle`, which imports joblib and numpy: ``prodcat app`` checks a bundle before it
starts its web server, and would hold those libraries for the server's life (its own process loads no model)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prodcat.errors import BundleError
from prodcat.formatting import count_text, counted

#: 2: early fusion keeps one model per modality group (`early_heads_`); 3: the one of a group read by a
#: single head is that head; 4: the TF-IDF extractor has a title block (`title_weight`), which a pickled
#: older extractor lacks; 5: the image head's `PlattSVC` holds an SVC on a precomputed kernel (`svc_`), where
#: it was an SVC itself
FORMAT_VERSION = 5
#: the formats read: the format written, and 4, whose bundles differ only by the image head's PlattSVC, which
#: unpickles into the one of format 5 (:meth:`prodcat.models.heads.PlattSVC.__setstate__`); older ones are refused
READ_FORMATS = (4, FORMAT_VERSION)
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of the file at ``path``, read 1 MiB at a time (a model file does not fill memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the bundle in ``bundle_dir``, its files not checked (:func:`verify_bundle` does). Raises
    :class:`BundleError` saying why when there is none (a file or no folder given), it is no JSON object with a
    ``files`` object, or its ``format_version`` is none of :data:`READ_FORMATS`."""
    path = Path(bundle_dir) / MANIFEST
    if not path.is_file():
        # a bundle's file (MODEL/model.joblib) given for the bundle, or a mistyped folder: said as such
        why = (
            f"{MANIFEST} is missing"
            if path.parent.is_dir()
            else "it is a file"
            if path.parent.exists()
            else "no such folder"
        )
        raise BundleError(
            f"{bundle_dir} is not a prodcat model bundle: {why}; give the folder `prodcat train --out` wrote"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); the bundle is damaged — retrain it") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise BundleError(f"{path} is not a prodcat manifest (a JSON object with a 'files' object); retrain it")
    version = manifest.get("format_version")
    if version not in READ_FORMATS:
        # a newer format is no fault of the bundle: the reader is the one to update
        newer = isinstance(version, int) and version > FORMAT_VERSION
        cure = "upgrade prodcat to read it, or retrain with this version" if newer else "retrain with this version"
        raise BundleError(
            f"{bundle_dir} has bundle format {version!r}{' (a newer prodcat wrote it)' if newer else ''}; "
            f"this prodcat reads formats {' and '.join(map(str, READ_FORMATS))} — {cure}"
        )
    return manifest


def is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds a model bundle: a bundle's manifest (a JSON object of a ``format_version`` and
    ``files``), of any format version, beside every file it lists; a folder that no command loads once it holds
    another file (:func:`verify_bundle`). A manifest alone, copied out of its bundle (to run its config again with
    ``--config``), makes no bundle of the folder it is in."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no manifest, or a file of that name that is not a bundle's (not JSON, not UTF-8)
        return False
    if not (isinstance(manifest, dict) and "format_version" in manifest and isinstance(manifest.get("files"), dict)):
        return False
    return all((folder / name).is_file() for name in manifest["files"])


def verify_bundle(bundle_dir: str | os.PathLike[str], digests: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check every file against the manifest's SHA-256; returns the manifest or raises :class:`BundleError`.

    ``digests``: SHA-256 already computed for some files (name → hex digest), which are then not read again.
    """
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    listed = manifest.get("files", {})
    digests = digests or {}
    for name, expected in listed.items():
        path = root / name
        if name not in digests and not path.is_file():
            raise missing_file(root, name)
        check_digest(root, name, digests[name] if name in digests else sha256_file(path), expected)
    unexpected = sorted(p.name for p in root.iterdir() if p.name not in listed and p.name != MANIFEST)
    if unexpected:
        raise BundleError(
            f"bundle {root}: unexpected files {unexpected}; refusing to load it: a bundle holds only the files its "
            "manifest lists, so move those out of it"
        )
    return manifest


def missing_file(root: Path, name: str) -> BundleError:
    """The error (returned, for the caller to raise) of the bundle in ``root`` lacking its file ``name``."""
    return BundleError(f"bundle {root}: file {name} is missing")


def check_digest(root: Path, name: str, digest: str, expected: str) -> None:
    """Raise :class:`BundleError` when the SHA-256 ``digest`` of the bundle's file ``name`` is not the manifest's
    ``expected`` one (the file was modified)."""
    if digest != expected:
        raise BundleError(
            f"bundle {root}: {name} was modified (SHA-256 differs from the manifest); refusing to load it"
        )


def feedback_text(feedback: dict[str, Any]) -> str:
    """What a bundle's manifest records of the review queue's corrections it was trained on (its ``feedback``), in
    words: ``13 from the review queue sqlite:///q.db, replacing 1 catalogue product``."""
    text = f"{count_text(feedback['corrections'])} from the review queue {feedback['review_queue']}"
    if feedback.get("replacing"):
        text += f", replacing {counted(feedback['replacing'], 'catalogue product')}"
    if feedback.get("relabelling"):
        text += f", relabelling {counted(feedback['relabelling'], 'catalogue product')}"
    return text

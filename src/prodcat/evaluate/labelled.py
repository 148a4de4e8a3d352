"""The labelled products a bundle is scored on (``prodcat evaluate``, ``prodcat robustness``, the web app): their
categories at the model's level, and what makes the figures on them mean less than they seem — the model's own
training data, categories it does not know, too few products, products it cannot read."""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from prodcat.bundle import data_fingerprint, modalities_read_by_bundle, read_training_products
from prodcat.catalog.loaders import LINE_NAMED
from prodcat.catalog.schema import canonical_path, is_missing, modality_mask, strings_or_empty
from prodcat.config import MODALITIES
from prodcat.formatting import count_text, counted, first_few

if TYPE_CHECKING:
    from prodcat.image.decode import ImageSource  # PIL: imported only when photos are read

#: the true categories of labelled products, a list or an array of them
Truth = Sequence[object] | np.ndarray
#: fewer labelled products than this and the figures (and their intervals) are warned about
SMALL_EVALUATION = 30
#: under this share of the labelled products in one of the model's categories, the warning says how few are
FEW_KNOWN = 0.5


def readable_by(frame: pd.DataFrame, modalities: Sequence[str] | None) -> np.ndarray:
    """``(n,)`` bool: the products having one of ``modalities`` (``None`` or empty: of any modality; a product with
    neither text nor photo is readable by no model)."""
    return np.logical_or.reduce([modality_mask(frame, m) for m in modalities or MODALITIES])


# ---------------------------------------------------------------------------------------------- the training data
#: what a bundle's ``data_fingerprint`` is of, recorded in its manifest as ``data_fingerprint_version``: 2, each
#: labelled product's id, category and what the model reads of it, its photo by its content
#: (:func:`training_fingerprint`); a manifest without it (1) holds :func:`~prodcat.bundle.data_fingerprint`,
#: photos by their path, which the same catalogue in another folder changed and a photo replaced at its path did not
DATA_FINGERPRINT_VERSION = 2


def training_fingerprint(
    frame: pd.DataFrame, modalities: Sequence[str], fields: Sequence[tuple[str, str, str]] | None = None
) -> str:
    """The fingerprint of a catalogue's labelled products as a model reading ``modalities`` is trained on them
    (``prodcat train`` fits on the labelled products): the SHA-256 of their digests in sorted order (rows reordered
    do not change it), each of its id, category, and title, description and photo content as far as the model reads
    them. What a bundle records as its ``data_fingerprint`` (:data:`DATA_FINGERPRINT_VERSION`): the same catalogue
    copied to another folder or machine has the same, a product's text, photo or label changed another.

    ``fields``: the :func:`_fields_read` of every product of ``frame``, when already read (each photo is then not
    read again)."""
    fields = _fields_read(frame, modalities) if fields is None else fields
    labelled = frame["category"].notna().to_numpy()
    ids = strings_or_empty(frame["product_id"][labelled])
    read = _kept(fields, labelled)
    categories = frame["category"][labelled].astype(str)
    digests = sorted(
        hashlib.sha256(json.dumps([pid, *what, category]).encode("utf-8")).digest()
        for pid, what, category in zip(ids, read, categories, strict=True)
    )
    return hashlib.sha256(b"".join(digests)).hexdigest()


def _kept(fields: Sequence[tuple[str, str, str]], mask: np.ndarray) -> list[tuple[str, str, str]]:
    """The ``fields`` of the products ``mask`` (``(n,)`` bool) keeps."""
    return [each for each, kept in zip(fields, mask, strict=True) if kept]


def trained_on(
    frame: pd.DataFrame, manifest: Mapping[str, Any], fields: Sequence[tuple[str, str, str]] | None = None
) -> bool:
    """Whether the bundle of ``manifest`` was trained on the labelled products of ``frame`` (``fields``: as
    :func:`training_fingerprint` takes them), by the fingerprint its manifest records: :func:`training_fingerprint`,
    or :func:`~prodcat.bundle.data_fingerprint` (photos by their path) for a bundle written before it."""
    recorded = manifest.get("data_fingerprint")
    if not recorded:
        return False
    if _fingerprints_content(manifest):
        return training_fingerprint(frame, modalities_read_by_bundle(manifest), fields) == recorded
    return bool(data_fingerprint(frame[frame["category"].notna()]) == recorded)


def _fingerprints_content(manifest: Mapping[str, Any]) -> bool:
    """Whether the bundle of ``manifest`` records a :func:`training_fingerprint` of its training data (of the current
    :data:`DATA_FINGERPRINT_VERSION`), which reads what the model reads of each product, its photo too: one recording
    none, or the path fingerprint of a bundle written before (which :func:`trained_on` compares reading no photo),
    needs no product's fields to be told whether it was trained on a catalogue."""
    return (
        bool(manifest.get("data_fingerprint")) and manifest.get("data_fingerprint_version") == DATA_FINGERPRINT_VERSION
    )


def product_fingerprints(frame: pd.DataFrame, modalities: Sequence[str]) -> np.ndarray:
    """``(n,)`` ``uint64``: each product's content digest (the first 8 bytes of a BLAKE2b) of what a model
    reading ``modalities`` reads of it: its title and description (``text``), its photo file's content
    (``image``; its SHA-1, the key the embedding cache already reads it for).

    Not the product_id, which catalogues reuse and rename, nor the category: a product relabelled since is
    still one whose input the model has learnt. The photo by its bytes, not its path: a catalogue copied or
    moved holds the same products. Two products alike in all the model reads are one to it, and share a
    digest. 8 bytes: with 85k training products and as many scored, the chance that two different products
    collide anywhere is about 85k² / 2⁶⁴ ≈ 4e-10. The same product read from another format, its description
    written otherwise, has another content digest: its identity (:func:`_identities`) recognises it.
    """
    return _digests(_fields_read(frame, modalities))


def training_fingerprints(frame: pd.DataFrame, modalities: Sequence[str]) -> np.ndarray:
    """The digests a bundle records of its training products ``frame``, read by a model reading ``modalities``:
    each one's :func:`product_fingerprints`, and those of its text alone and of its photo alone (but none of
    nothing read), so that a product scored without one of them, its photo missing from a copy of the catalogue or
    its text left out, is still recognised by what the model learnt of it; and its identity (:func:`_identities`),
    with its photo and without, so that it is recognised read from another format of its catalogue, its photo
    there or not. Up to five digests a product."""
    return _training_fingerprints(frame, _fields_read(frame, modalities))


def training_record(frame: pd.DataFrame, modalities: Sequence[str]) -> tuple[str, np.ndarray]:
    """What a bundle records of its training products ``frame``, read by a model reading ``modalities``: their
    :func:`training_fingerprint` and their :func:`training_fingerprints`, each photo read once."""
    fields = _fields_read(frame, modalities)
    return training_fingerprint(frame, modalities, fields), _training_fingerprints(frame, fields)


def _training_fingerprints(frame: pd.DataFrame, fields: Sequence[tuple[str, str, str]]) -> np.ndarray:
    """:func:`training_fingerprints` of ``frame``, whose :func:`_fields_read` are ``fields``."""
    alone = [(title, description, "") for title, description, _ in fields] + [("", "", photo) for *_, photo in fields]
    digests = _digests([*fields, *alone])
    identified = _identified(frame)
    with_photo = _identities(frame, [photo for *_, photo in fields])[identified]
    without_photo = _identities(frame, [""] * len(frame))[identified]
    return np.concatenate([digests[digests != _digests([("", "", "")])], with_photo, without_photo])


def _fields_read(
    frame: pd.DataFrame, modalities: Sequence[str], photos_read: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """Each product's title, description and photo digest (:func:`_photo_digest`), ``""`` for what a model reading
    ``modalities`` does not read. ``photos_read``: the digests of the photo files already read, by path, which
    this adds to (default: a new one): no file is read twice, however many products, or calls, name it."""
    n = len(frame)
    reads_text, reads_photo = "text" in modalities, "image" in modalities
    titles = strings_or_empty(frame["title"]) if reads_text else [""] * n
    descriptions = strings_or_empty(frame["description"]) if reads_text else [""] * n
    known = {} if photos_read is None else photos_read
    photos = [_photo_digest_once(source, known) for source in frame["image"]] if reads_photo else [""] * n
    return list(zip(titles, descriptions, photos, strict=True))


def _photo_digest_once(source: object, photos_read: dict[str, str]) -> str:
    """:func:`_photo_digest` of ``source``; of a file named by its path, read unless ``photos_read`` has it (and then
    added to it)."""
    if not isinstance(source, str | os.PathLike):
        return _photo_digest(source)  # bytes or a PIL image: in memory already
    path = os.fspath(source)
    if path not in photos_read:
        photos_read[path] = _photo_digest(source)
    return photos_read[path]


def _identities(frame: pd.DataFrame, photos: Sequence[str]) -> np.ndarray:
    """``(n,)`` ``uint64``: each product's identity digest, of its product_id and title, and of its ``photos`` (its
    :func:`_photo_digest` as a model reading photos reads it, ``""`` for one that does not); meaningful for the
    products :func:`_identified` only.

    What stays of a product read from another format of its catalogue: the description is what formats write
    otherwise (the Flipkart folder appends the seller's specification table to it, a CSV export of the same
    products may hold the description alone), so their content digests (:func:`product_fingerprints`) differ. An
    id is unique within its catalogue only: another catalogue may give the same id to another product, which has
    another title; an id is taken for the same product only beside the same title. A product scored with another
    photo than the one the model learnt stays another product, as by its content.
    """
    ids, titles = strings_or_empty(frame["product_id"]), strings_or_empty(frame["title"])
    # a JSON object, where a content digest hashes an array: no identity is ever a product's content
    return _digests(
        [
            {"product_id": product_id, "title": title, "photo": photo}
            for product_id, title, photo in zip(ids, titles, photos, strict=True)
        ]
    )


def _identified(frame: pd.DataFrame) -> np.ndarray:
    """``(n,)`` bool: the products that have an identity (:func:`_identities`): a title, and an id of their own, not
    one naming their line (:data:`~prodcat.catalog.loaders.LINE_NAMED`: their table gave none, and another table's
    same line is another product)."""
    ids, titles = strings_or_empty(frame["product_id"]), strings_or_empty(frame["title"])
    named = [
        bool(pid) and not LINE_NAMED.fullmatch(pid) and bool(title.strip())
        for pid, title in zip(ids, titles, strict=True)
    ]
    return np.array(named, dtype=bool)


def _digests(fields: Sequence[object]) -> np.ndarray:
    """``(n,)`` ``uint64``: the first 8 bytes of the BLAKE2b of each product's ``fields``, as JSON."""
    # JSON keeps the fields apart: ("a b", "") and ("a", "b") differ
    digests = [hashlib.blake2b(json.dumps(each).encode("utf-8"), digest_size=8).digest() for each in fields]
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64, copy=False)


def _photo_digest(source: object) -> str:
    """The SHA-1 of a product's photo content; ``""`` without one, or when its file cannot be read or is over the
    decoder's size limit (the model reads no photo of it either; such a file is not read)."""
    from prodcat.image.decode import image_content_key, oversized_file  # PIL: only when photos are read

    if is_missing(source) or (isinstance(source, str) and not source.strip()):
        return ""
    if isinstance(source, str | os.PathLike) and not Path(source).is_file():  # is_file: a FIFO would block open()
        return ""
    photo = cast("ImageSource", source)  # a photo cell that is not missing: a path, bytes or a PIL image
    try:
        return "" if oversized_file(photo) is not None else image_content_key(photo)
    except OSError:
        return ""


@dataclass(frozen=True)
class InTraining:
    """How many of the products evaluated the model was trained on, which ones, and what to say of it."""

    count: int
    #: the products evaluated (those the figures beside the caveat count)
    evaluated: int
    #: ``(evaluated,)`` bool, each product's membership; ``None`` when unknown (a bundle that recorded no
    #: product fingerprints, scored on products that are not its whole training catalogue)
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, mask: np.ndarray | None, evaluated: int) -> InTraining:
        """From a membership ``mask`` (``None``: unknown, counted as none)."""
        return cls(0 if mask is None else int(mask.sum()), evaluated, mask)

    @property
    def warning(self) -> str | None:
        """``None`` when none was; the in-sample caveat when all or some were."""
        if not self.count:
            return None
        if self.count == self.evaluated:
            return (
                "these are the very products the model was trained on: every figure is in-sample, near perfect by "
                "construction, and says nothing of new products. For an honest estimate run `prodcat cv` on this "
                "catalogue, or train on part of it and evaluate on the rest"
            )
        unseen = self.evaluated - self.count
        few = (
            f"; only {count_text(unseen)} {'was' if unseen == 1 else 'were'} not, too few for figures on them alone to "
            f"be relied on, their bootstrap intervals far too narrow (score at least {SMALL_EVALUATION} such products)"
            if unseen < SMALL_EVALUATION
            else ""
        )
        return (
            f"{count_text(self.count)} of {count_text(self.evaluated)} products evaluated "
            f"({self.count / self.evaluated:.1%}) were in the model's training data: figures on them are in-sample "
            "(near perfect by construction) and raise the overall figures. For an honest estimate score only products "
            f"the model was not trained on, or run `prodcat cv` on this catalogue{few}"
        )

    @property
    def unchecked(self) -> str | None:
        """What to say when it is unknown which of the scored products the model was trained on (a bundle that
        recorded no product fingerprints, scored on products other than its whole training catalogue); ``None``
        when it is known. Unknown used to pass for none: the demo bundle scored 1.000 on 60 of its own training
        products without a word."""
        if self.mask is not None or self.count:
            return None
        return (
            "the model's bundle does not record which products it was trained on (it was written before they were "
            f"recorded): whether any of these {count_text(self.evaluated)} products were among them cannot be checked, "
            "and on those that were every figure is in-sample, near perfect by construction. Retrain it to have them "
            "checked"
        )


def products_in_training(
    scored: pd.DataFrame,
    manifest: Mapping[str, Any],
    bundle_dir: str | os.PathLike[str],
    catalogue: pd.DataFrame | None = None,
    fields: Sequence[tuple[str, str, str]] | None = None,
) -> InTraining:
    """Which of the ``scored`` labelled products the bundle at ``bundle_dir`` (whose verified ``manifest``
    this is) was trained on: by their :func:`product_fingerprints` or, read from another format of the
    catalogue, by their identity (:func:`_identities`; a bundle written before it recorded identities recognises
    them by their content only) against those it recorded (:func:`training_fingerprints`), or all of them
    when ``catalogue``, the products they were drawn from (default: ``scored`` itself), is its training data
    (its :func:`trained_on`, the only check a bundle recording no product fingerprints allows).
    Training reads the products with one of the configured modalities, so both those and all of
    ``catalogue`` are compared by that fingerprint. ``fields``: the :func:`_fields_read` of ``scored`` by the
    bundle's modalities, when already read (none of their photos is then read again).

    Raises:
        BundleError: the bundle's product fingerprints file is missing or modified.
    """
    photos_read: dict[str, str] = {}  # each photo file read once, for the catalogue's fingerprint and the products'
    of_catalogue = fields if catalogue is None else None
    if _is_training_catalogue(scored if catalogue is None else catalogue, manifest, photos_read, of_catalogue):
        return InTraining.of(np.ones(len(scored), dtype=bool), len(scored))
    trained = read_training_products(bundle_dir, manifest)
    if trained is None:
        return InTraining.of(None, len(scored))
    if fields is None:
        fields = _fields_read(scored, modalities_read_by_bundle(manifest), photos_read)
    identities = _identities(scored, [photo for *_, photo in fields])
    found = np.isin(_digests(fields), trained) | (_identified(scored) & np.isin(identities, trained))
    return InTraining.of(found, len(scored))


def evaluation_record(
    scored: pd.DataFrame, manifest: Mapping[str, Any], bundle_dir: str | os.PathLike[str]
) -> tuple[str, InTraining]:
    """What an evaluation report records of the labelled products ``scored`` by the bundle at ``bundle_dir`` (whose
    verified ``manifest`` this is): their :func:`training_fingerprint` as the bundle reads them (its
    ``data_fingerprint`` where they are its training products) and their :func:`products_in_training`, each photo
    read once.

    Raises:
        BundleError: the bundle's product fingerprints file is missing or modified.
    """
    reads = modalities_read_by_bundle(manifest)
    fields = _fields_read(scored, reads)
    fingerprint = training_fingerprint(scored, reads, fields)
    return fingerprint, products_in_training(scored, manifest, bundle_dir, fields=fields)


def _is_training_catalogue(
    catalogue: pd.DataFrame,
    manifest: Mapping[str, Any],
    photos_read: dict[str, str],
    fields: Sequence[tuple[str, str, str]] | None = None,
) -> bool:
    """Whether the bundle of ``manifest`` was trained on the labelled products of ``catalogue``, or on those of them
    that one of its configured modalities reads (:func:`trained_on`). Their fields (photos too, read into
    ``photos_read``, :func:`_fields_read`), unless given as ``fields``, are read only for a bundle that fingerprints
    them (:func:`_fingerprints_content`): for any other, explaining one product of a catalogue of 84k read all their
    photos."""
    if fields is None and _fingerprints_content(manifest):
        fields = _fields_read(catalogue, modalities_read_by_bundle(manifest), photos_read)
    readable = readable_by(catalogue, manifest.get("config", {}).get("modalities"))
    # a fingerprint ignores the index: all of them readable, the second would hash the same rows again
    candidates = [(catalogue, fields)]
    if not readable.all():
        candidates.append((catalogue[readable], None if fields is None else _kept(fields, readable)))
    return any(trained_on(frame, manifest, read) for frame, read in candidates)


# ---------------------------------------------------------------------------------------------- the categories
def unknown_categories(given: Sequence[object] | pd.Series, labels: Sequence[str]) -> pd.Series:
    """Products per given category that is not one of the model's ``labels``, most frequent first (missing
    categories left out): such products can only be counted wrong."""
    given = pd.Series(given, dtype=object).dropna().astype(str)
    return given[~given.isin(list(labels))].value_counts()


def unknown_categories_warning(truth: Truth, labels: Sequence[str]) -> str | None:
    """What to say when some true categories (at the model's level) are not among the model's ``labels``; how few
    products and categories are among them, when under :data:`FEW_KNOWN` of the products are."""
    unknown = unknown_categories(truth, labels)
    if unknown.empty:
        return None
    named = first_few([f"{name!r} ({count_text(count)})" for name, count in unknown.items()], 5)
    warning = (
        f"{count_text(unknown.sum())} of {count_text(len(truth))} labelled products have a category the model does "
        f"not know ({counted(len(unknown), 'category', 'categories')}: {named}): they can only be counted wrong."
    )
    known, theirs = len(truth) - int(unknown.sum()), counted(len(labels), "category", "categories")
    if not known:
        warning += f" None has one of the model's {theirs}: every figure counts them all wrong."
    elif known < FEW_KNOWN * len(truth):
        categories = pd.Series(truth, dtype=object).dropna().astype(str).nunique()
        warning += (
            f" Only {count_text(known)} ({known / len(truth):.1%}), in {count_text(categories - len(unknown))} of the "
            f"file's {counted(categories, 'category', 'categories')}, have one of the model's {theirs}: the figures "
            "are mostly of products it could not get right."
        )
    # not matched here: a label the model never learnt is counted as it is given, and said so, never remapped
    spelt_otherwise = _model_spellings(unknown.index, labels)
    if spelt_otherwise:
        matches = first_few([f"{given!r} is the model's {label!r}" for given, label in spelt_otherwise.items()], 5)
        them = "it" if len(spelt_otherwise) == 1 else "them"
        warning += (
            f" Of these, {matches} but for case, spacing or Unicode form: spell {them} in the file as the model does "
            "and evaluate again to have their products counted."
        )
    if len(spelt_otherwise) < len(unknown):
        warning += " Is the catalogue, or its category level, the model's?"
    return warning


def no_known_category(truth: Truth, labels: Sequence[str], level: int | None, catalogue_format: str = "") -> str | None:
    """Why a model of ``labels``, predicting ``level`` (``None``: whole paths), is not scored on products whose true
    categories (cut at its level) are ``truth``, read from a catalogue of ``catalogue_format``: none of them is one of
    its categories, nor one of them but for case, spacing or Unicode form (which :func:`unknown_categories_warning`
    names, the products scored); ``None`` when some are, or none is labelled.

    Scored, every product counts wrong: a report of zeros, exit 0, said a model of names scored on a catalogue of
    numeric codes, or Flipkart's on the fashion catalogue, to be wrong about every product."""
    given = pd.Series(truth, dtype=object).dropna().astype(str)
    if given.empty or given.isin(list(labels)).any() or _model_spellings(given.unique(), labels):
        return None
    counts = given.value_counts()
    files = first_few([f"{name!r} ({count_text(count)})" for name, count in counts.items()], 5)
    at = f"level {level} of their paths" if level else "their whole paths"
    return (
        f"none of the {count_text(len(given))} labelled products has one of the model's categories, nor one of them "
        f"but for case: the file's, at the model's level ({at}), are {files}; the model's "
        f"{count_text(len(labels))} are {first_few([repr(label) for label in labels], 5)}. Every product would be "
        f"counted wrong. {_LABEL_SOURCES.get(catalogue_format, _LABEL_SOURCES['csv'])}; a model of this "
        "catalogue's own categories is measured with `prodcat cv` (--level N: the first N levels of its paths)"
    )


#: per catalogue format, where its categories come from, and how to have them read otherwise
_LABEL_SOURCES = {
    "csv": "Evaluate it on products labelled with its categories: name the column holding them with --category-column, "
    "the separator of their levels with --category-sep",
    "rakuten": "A Rakuten folder's categories are the names categories.json gives its prdtypecodes (the codes without "
    "that file), in the language of --language (en by default): give the one the model was trained in",
    "flipkart": "This catalogue is not the model's: evaluate it on products labelled with its categories",
}
_LABEL_SOURCES |= {"parquet": _LABEL_SOURCES["csv"], "fashion": _LABEL_SOURCES["flipkart"]}


def _model_spellings(unknown: Sequence[str] | pd.Index, labels: Sequence[str]) -> dict[str, str]:
    """Of the ``unknown`` categories, those that are one of the model's ``labels`` compared without case, spacing
    or Unicode form ('watches' and 'Watches', 'Watches >  Wrist' and 'Watches > Wrist'): the model's label, by
    category (one only: a category matching several labels, told apart by case alone, is left out)."""
    by_key: dict[str, list[str]] = {}
    for label in labels:
        by_key.setdefault(_loose(label), []).append(label)
    found = {name: by_key.get(_loose(name), []) for name in unknown}
    return {name: matches[0] for name, matches in found.items() if len(matches) == 1}


def _loose(category: str) -> str:
    """``category`` compared without case, spacing or Unicode form (compatibility characters: a full-width 'Ｗ')."""
    return canonical_path(unicodedata.normalize("NFKC", category)).casefold()


def small_evaluation_warning(n: int) -> str | None:
    """What to say when ``n`` labelled products are too few for the figures to mean much."""
    if n >= SMALL_EVALUATION:
        return None
    return (
        f"only {count_text(n)} labelled product{'s' if n != 1 else ''}: the figures are too uncertain to rely on, and "
        "the bootstrap intervals, drawn within each category, understate it (a category of one product never "
        f"varies); score at least {SMALL_EVALUATION}"
    )


def labelled_warnings(in_training: InTraining, truth: Truth, labels: Sequence[str]) -> list[str]:
    """Every caveat on scoring a bundle on labelled products, ``truth`` their true categories at its level
    (``labels`` its categories): some or all in its training data, or no telling (``in_training``, from
    :func:`products_in_training`), unknown categories, too few products."""
    warnings = (
        in_training.warning,
        in_training.unchecked,
        unknown_categories_warning(truth, labels),
        small_evaluation_warning(len(truth)),
    )
    return [warning for warning in warnings if warning]

"""Loaders: map each native catalogue format onto the canonical frame of :mod:`prodcat.catalog.schema`.

One entry point, :func:`load_catalog`, with ``format`` one of

``flipkart``
    the Flipkart sample: a folder with ``flipkart_com-ecommerce_sample.csv`` (+ ``Images/``) or that CSV.
    ``category`` is the whole ``product_category_tree`` path; the training level is the classifier's choice.
    The seller's specification table (``product_specifications``, a Ruby-style hash of key/value pairs)
    is appended to the description as ``Key: value; ...`` text, as many of the catalogue's descriptions
    already carry it ("Specifications of ..."): it names what the short ones leave out (``Type: Bath
    Towel``, ``Ideal For: Baby Boys``). On 5-fold CV it takes the default model from 0.962 / 0.958 /
    0.954 to 0.967 / 0.967 / 0.963 on three fold seeds, and the share auto-accepted at precision 0.99
    from 82-84% to 86-89%, both calibrated by temperature (the margin calibration, default since, 89%;
    ``benchmarks/results/fusion.md``).
``rakuten``
    the Rakuten challenge format: ``X_train_update.csv`` + ``Y_train_CVw08PX.csv`` joined on their
    unnamed row index, photos at ``images/image_train/image_<imageid>_product_<productid>.jpg``, plus the
    photo-only rows of ``image_only_labels.csv`` (empty title and description). ``category`` is the
    *name path* from ``categories.json`` (``language="en"`` or ``"fr"``), so the hierarchy is native
    ("Books > Magazines"); the raw code stays in the ``prdtypecode`` column. Without ``categories.json``
    the category is the code itself. A test file (``X_test_update.csv``, no labels) gives ``category=None``.
``fashion``
    ``styles.csv`` (+ ``images/<id>.jpg``): ``category`` = masterCategory > subCategory > articleType,
    ``title`` = productDisplayName and an empty description. gender, baseColour, season, year and usage
    stay as extra columns and out of the text: they are metadata a seller fills in beside the category
    (``usage``/``gender`` correlate with it), so putting them in the text would make text scores
    depend on fields other catalogues do not have.
``csv`` / ``parquet``
    any table, with column-mapping options (defaults: columns named like the canonical ones). Other
    columns are kept; a CSV column becomes numeric or boolean only when every value is a plain number
    (no exponent, no leading zero, at most 15 digits) or true/false, so codes come back as written.
``auto``
    detected from the files present and the column names.

Rows that cannot be read cleanly (bad quoting, wrong field count, missing label, a named photo file
that does not exist, duplicate ``product_id``, a title or description longer than :data:`MAX_TEXT_CHARS`,
cut there) are kept when possible and always reported in
``Catalog.issues`` as :class:`~prodcat.catalog.schema.RowIssue` with their 1-based line number in the
source file (the header is line 1; Parquet rows are numbered from 1) — never silently dropped, never fatal.
Files are read into tables of text by :mod:`prodcat.catalog.tables`.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Concatenate, ParamSpec, cast

import numpy as np
import pandas as pd

from prodcat.catalog import FORMATS
from prodcat.catalog.schema import (
    COLUMNS,
    SEP,
    Catalog,
    RowIssue,
    canonical_path,
    column_named,
    has_text,
    specification_text,
    with_specifications,
)
from prodcat.catalog.tables import (
    CatalogFormatError,
    SourceTable,
    header_line,
    read_csv_table,
    read_parquet_table,
    sniff_delimiter,
    typed_columns_as_text,
)
from prodcat.formatting import first_few
from prodcat.text.clean import without_invisible

log = logging.getLogger(__name__)


FLIPKART_CSV = "flipkart_com-ecommerce_sample.csv"
RAKUTEN_X = ("X_train_update.csv", "X_test_update.csv")
RAKUTEN_Y = "Y_train_CVw08PX.csv"
RAKUTEN_IMAGE_ONLY = "image_only_labels.csv"
RAKUTEN_CATEGORIES = "categories.json"
FASHION_CSV = "styles.csv"

#: characters kept of a title or description (10x the longest real description, Rakuten's 9,709);
#: the rest of a longer field is cut, and reported, rather than costing minutes of cleaning per product
MAX_TEXT_CHARS = 100_000

# A level name must not contain the separator character, or split_path would cut it in two.
_SEP_CHAR = SEP.strip()
_SEP_REPLACEMENT = "›"


# --------------------------------------------------------------------------------------------------
# Building the canonical frame


def line_name(line: int) -> str:
    """The id of a product whose row gives none: its source line's (``row-12``)."""
    return f"row-{line}"


#: an id of :func:`line_name` (``~2`` added where the catalogue has it already, :func:`_dedupe_ids`): it names a
#: line of its table, not a product, and another table's same line is another product
LINE_NAMED = re.compile(r"row-\d+(?:~\d+)?")


def _text(values: pd.Series) -> pd.Series:
    """Strings with "" for missing values."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _is_blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def join_path(levels: Iterable[object]) -> str | None:
    """Join category levels with :data:`~prodcat.catalog.schema.SEP`, skipping empty ones (``None`` if all are).

    A ``>`` inside a level name is replaced by ``›`` so :func:`~prodcat.catalog.schema.split_path`
    cannot cut a name in two. The invisible characters texts lose (a zero-width space pasted from a web page, the
    byte-order mark of a file concatenated to another: :func:`~prodcat.text.clean.without_invisible`) go too, as
    they go from every label that trains (:func:`~prodcat.catalog.schema.canonical_levels`): here so that a level of
    them alone is empty, no level, and a label of them alone a missing one.
    """
    parts = [
        without_invisible(str(p)).strip().replace(_SEP_CHAR, _SEP_REPLACEMENT)
        for p in levels
        if p is not None and p == p
    ]
    parts = [p for p in parts if p]
    return SEP.join(parts) if parts else None


def split_category(values: pd.Series, sep: str | None) -> pd.Series:
    """Category strings to canonical paths: split on ``sep`` (``None``: one level or a canonical path, whose
    ``>`` separates levels with or without spaces around it: ``Kitchen>Mugs`` is the path ``Kitchen > Mugs``)."""
    blank = _is_blank(values)
    text = _text(values)
    splitter = _SEP_CHAR if sep is None else sep  # join_path strips the spaces around each level
    # each distinct value joined once: a catalogue of a million products holds a few thousand categories
    joined = {value: join_path(value.split(splitter)) for value in set(text.tolist())}
    paths = pd.Series([joined[value] for value in text.tolist()], index=text.index, dtype=object)
    return paths.where(~blank, None)


def _resolve_images(
    names: pd.Series, root: Path, table: SourceTable, ids: pd.Series, *, named: bool
) -> tuple[pd.Series, list[RowIssue]]:
    """Absolute photo paths, ``None`` where absent.

    ``named``: the source names each file explicitly, so a missing file is an issue; when the path is
    only implied by a convention (Rakuten ids, fashion ``<id>.jpg``) a missing photo is normal data. A missing
    photo folder is one issue (a table copied without its photos), also where the files are named (Flipkart's
    ``Images/``) and none is found elsewhere: not one per product, none saying where the photos went.
    """
    without_folder = pd.Series(None, index=names.index, dtype=object), [_photo_folder_missing(root, table)]
    if not named and not root.is_dir():
        return without_folder
    blank = _is_blank(names)
    folder = os.fspath(root)  # joined as text: a pathlib path for each of 200,000 photos took 17 s of a million
    paths = [
        None if is_blank else _photo_path(folder, name.strip())  # " a.jpg" after a comma and a space
        for name, is_blank in zip(_text(names).tolist(), blank.tolist(), strict=True)
    ]
    exists = [p is not None and os.path.isfile(p) for p in paths]
    # photos given as URLs alone (Flipkart's own export) need no folder: each is said to be a URL
    if not root.is_dir() and not any(exists) and not (blank | _are_web_urls(names)).all():
        return without_folder
    issues = []
    if named:
        none_found = not any(exists)  # relative to another folder, likely: the table's own, or the one it was made in
        for at, (path, ok) in enumerate(zip(paths, exists, strict=True)):  # over lists, not Arrow-backed columns
            if path is None or ok:
                continue
            # what the product is then classified from is said by _canonical, which reads its text
            problem = _not_a_file(path, str(names.iloc[at]), root, none_found)
            issues.append(RowIssue(int(table.frame.index[at]), "image", f"{table.name}: {problem}", ids.iloc[at]))
    resolved = pd.Series(
        [p if ok else None for p, ok in zip(paths, exists, strict=True)], index=names.index, dtype=object
    )
    return resolved, issues


def _photo_folder_missing(root: Path, table: SourceTable) -> RowIssue:
    message = f"{table.name}: photo folder {root} not found; every product is read without a photo"
    return RowIssue(1, "image", message + _ROOT_HINT)


def _photo_path(root: str, name: str) -> str:
    """The absolute path of the photo ``name`` under ``root``. A ``file://`` URL names a file of this machine, read
    as its path. A relative path written with Windows' backslashes (``photos\\mug.jpg``, in a table made on Windows)
    is read with slashes when only so does it name a file: on other systems a backslash is a character of the
    file's name."""
    if local := _local_file_url(name):
        return os.path.abspath(local)
    path = os.path.abspath(os.path.join(root, name))
    if "\\" in name and not os.path.isfile(path):
        with_slashes = os.path.abspath(os.path.join(root, name.replace("\\", "/")))
        if os.path.isfile(with_slashes):
            return with_slashes
    return path


_ROOT_HINT = " (--image-root names the folder holding them)"


def _not_a_file(path: str, name: str, root: Path, none_found: bool = False) -> str:
    """Why the photo ``name`` (resolved to ``path``) cannot be read: a URL, a directory or a device, pipe or socket
    is there (or a link to one), a link that leads to nothing, or nothing; ``none_found``: nor is any other photo of
    the table, so a relative one not found is told of ``--image-root``."""
    if (url := web_photo_url(name)) is not None:
        first = "" if url == name.strip() else " (the first of the list given)"
        return f"photo {url!r}{first} is a URL: photos are read from files; {FETCH_PHOTOS}"
    if _URL.match(name) and not _local_file_url(name):
        return f"photo {name!r} is a URL: photos are read from files, download them and give their paths"
    if os.path.isdir(path):
        return f"photo path {name!r}{_under(root, name)} is a directory, not a file"
    if os.path.exists(path):  # neither a file nor a folder (/dev/zero, a FIFO): "not found" would be untrue
        return f"photo path {name!r}{_under(root, name)} is a device, pipe or socket, not a file"
    if os.path.islink(path):  # `ls` lists it: "not found" would send the reader looking for a file that is there
        return (
            f"photo path {name!r}{_under(root, name)} is a symbolic link to no file (its target is missing, "
            "or links lead back to it)"
        )
    under = _under(root, name)
    return f"photo file {name!r} not found{under}{_ROOT_HINT if under and none_found else ''}"


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_WEB_URL = re.compile(r"https?://", re.IGNORECASE)
#: what the issue of a photo given as a web URL says to do
FETCH_PHOTOS = "prodcat fetch-photos downloads them and writes a catalogue naming their files"


def web_photo_url(name: str) -> str | None:
    """The ``http://`` or ``https://`` URL the photo cell ``name`` gives, which ``prodcat fetch-photos`` downloads:
    the cell itself, or the first of a JSON list of them, as Flipkart's own export gives a product's photos
    (``["http://img5a.flixcart.com/image/...jpeg", ...]``); ``None`` for any other cell."""
    name = name.strip()
    if name.startswith("["):
        try:
            photos = json.loads(name)
        except (ValueError, RecursionError):
            return None
        name = photos[0].strip() if isinstance(photos, list) and photos and isinstance(photos[0], str) else ""
    return name if _WEB_URL.match(name) else None


def _are_web_urls(names: pd.Series) -> pd.Series:
    """Whether each photo cell of ``names`` gives a web URL (:func:`web_photo_url`)."""
    cells = _text(names)
    return cells.str.contains("://", regex=False) & cells.map(lambda cell: web_photo_url(cell) is not None)


def _photo_urls(names: pd.Series, frame: pd.DataFrame) -> dict[str, str]:
    """The web URL (:func:`web_photo_url`) of each product of ``frame`` (indexed by source line, as ``names``, the
    source's photo cells) whose photo is given as one, by its product id
    (:attr:`~prodcat.catalog.schema.Catalog.photo_urls`)."""
    cells = _text(names)
    cells = cells[cells.str.contains("://", regex=False)]  # a million photo paths are not each parsed
    return {
        frame.at[line, "product_id"]: url for line, cell in cells.items() if (url := web_photo_url(cell)) is not None
    }


def _local_file_url(name: str) -> str | None:
    """The path a ``file://`` URL of this machine names (``file:///srv/photos/a%20b.jpg``: ``/srv/photos/a b.jpg``),
    ``None`` for any other name: ``file:mug.jpg``, without ``//``, is a file's name, read under the image root."""
    if not _URL.match(name):
        return None
    url = urllib.parse.urlsplit(name)
    if url.scheme.lower() != "file" or url.netloc not in ("", "localhost"):
        return None
    return urllib.parse.unquote(url.path)


def _under(root: Path, name: str) -> str:
    """`` under ROOT`` for a photo named relative to the image root, which is given absolute (a relative CSV path
    made it ``.``); nothing for an absolute path or a ``file://`` URL (it ignores it)."""
    return "" if os.path.isabs(name) or _local_file_url(name) else f" under {Path(root).absolute()}"


def _canonical(
    table: SourceTable,
    *,
    product_id: pd.Series,
    title: pd.Series,
    description: pd.Series,
    image: pd.Series,
    category: pd.Series,
    mapped_columns: Iterable[str],
    text_expected: bool,
    photo_issues: Iterable[RowIssue] = (),
    ids_elsewhere: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, list[RowIssue]]:
    """Assemble the canonical columns in front of the source's unmapped columns, and check ids and labels.

    ``photo_issues`` (of photos not found, :func:`_resolve_images`, or not given as a file) are returned saying
    what each product is then classified from; ``text_expected``: the source has a title or description for each
    product, so one without any (a photo alone) is an issue too.
    """
    issues: list[RowIssue] = []
    ids = _text(product_id).str.strip()
    unnamed = ids.index[ids == ""]
    ids.loc[unnamed] = [line_name(line) for line in unnamed]
    ids, duplicate_issues = _dedupe_ids(ids, table.name, ids_elsewhere)
    # under the id it is predicted by: row-N, or row-N~2 where the catalogue has a product of that id already
    issues += [
        RowIssue(int(line), "product_id", f"{table.name}: missing product_id; named row-{line}", ids.loc[line])
        for line in unnamed
    ]
    issues += duplicate_issues

    labelled = category.notna()
    if labelled.any():  # a partly labelled catalogue: the unlabelled rows are a data problem
        for line in category.index[~labelled]:
            issues.append(
                RowIssue(
                    int(line),
                    "category",
                    f"{table.name}: missing label; the product is kept unlabelled (not trained or evaluated on)",
                    ids.loc[line],
                )
            )

    texts = {}
    for name, values in (("title", title), ("description", description)):
        texts[name], cut_issues = _capped_text(_text(values), name, table.name, ids)
        issues += cut_issues
    canonical = pd.DataFrame(
        {
            "product_id": ids,
            "title": texts["title"],
            "description": texts["description"],
            "image": image.astype(object),
            "category": category.astype(object).where(category.notna(), None),
        }
    )
    mapped = set(mapped_columns) | set(COLUMNS)
    extra = table.frame[[c for c in table.frame.columns if c not in mapped]]
    frame = pd.concat([canonical, _infer_types(extra)], axis=1)
    readable = pd.Series(has_text(canonical), index=canonical.index)
    issues += [
        issue if issue.product_id is None else _without_photo(issue, readable.loc[issue.row])  # None: the folder's
        for issue in _named(list(photo_issues), frame)
    ]
    if text_expected:
        issues += [
            RowIssue(int(line), "text", f"{table.name}: no title or description", ids[line], left_with="image")
            for line in canonical.index[~readable & canonical["image"].notna()]
        ]
    return frame, issues


def _without_photo(issue: RowIssue, with_text: bool) -> RowIssue:
    """The issue of a photo not found, saying what its product is left with: its text, or nothing."""
    if with_text:
        return replace(issue, problem=f"{issue.problem}; the product is kept without a photo", left_with="text")
    nothing = "the product has no title or description either: nothing to classify it from"
    return replace(issue, problem=f"{issue.problem}; {nothing}")


def issues_for_model(issues: list[RowIssue], read_by: Iterable[str]) -> list[RowIssue]:
    """``issues`` as true for a model reading the modalities ``read_by``: a product left with a photo alone (or a
    text alone) is classified from it by a model reading it, from nothing by another (:attr:`RowIssue.message`)."""
    read_by = frozenset(read_by)
    return [replace(issue, read_by=read_by) for issue in issues]


#: the modality each field named by a row issue belongs to (the others, an id or a row, concern every run; a label,
#: the ``category`` field, every run that reads the labels: :func:`issues_of_the_run`)
_FIELD_MODALITY = {"title": "text", "description": "text", "text": "text", "image": "image"}


def issues_of_the_run(
    issues: list[RowIssue],
    read_by: Iterable[str],
    not_drawn: frozenset[str] = frozenset(),
    *,
    reads_labels: bool = True,
) -> list[RowIssue]:
    """Those of ``issues`` that concern a run with a model reading the modalities ``read_by``: not those of a field
    it does not read (a photo not found, for a model reading text), nor those of the labels for a run that does not
    read them (``reads_labels=False``: predict, whose predictions no label changes), nor those of the products
    ``not_drawn`` (ids: the labelled products that a --sample left out); each saying what that model classifies its
    product from (:func:`issues_for_model`). What the commands warn of and the web app's Data page lists."""
    read_by = tuple(read_by)
    concerned = [
        issue
        for issue in issues
        if _FIELD_MODALITY.get(issue.field) in (None, *read_by)
        and (reads_labels or issue.field != "category")
        and issue.product_id not in not_drawn
    ]
    return issues_for_model(concerned, read_by)


def _named(issues: list[RowIssue], frame: pd.DataFrame) -> list[RowIssue]:
    """``issues`` found before the ids were settled, naming each product by its final id (a repeated id
    becomes ``id~2``), so that an issue and the product's prediction carry the same id."""
    final = frame["product_id"]  # indexed by source line, like the issues
    return [
        replace(issue, product_id=final.loc[issue.row])
        if issue.product_id is not None and issue.row in final.index
        else issue
        for issue in issues
    ]


def _capped_text(values: pd.Series, field: str, source: str, ids: pd.Series) -> tuple[pd.Series, list[RowIssue]]:
    """``values`` with each text cut at :data:`MAX_TEXT_CHARS` characters, and one issue per cut text."""
    lengths = values.str.len()
    too_long = lengths.index[lengths > MAX_TEXT_CHARS]
    issues = [
        RowIssue(
            int(line),
            field,
            f"{source}: {lengths.loc[line]:,} characters; the first {MAX_TEXT_CHARS:,} are kept",
            ids.loc[line],
        )
        for line in too_long
    ]
    if len(too_long):
        values = values.copy()
        values.loc[too_long] = values.loc[too_long].str.slice(0, MAX_TEXT_CHARS)
    return values, issues


def _dedupe_ids(
    ids: pd.Series, source: str, elsewhere: dict[str, str] | None = None
) -> tuple[pd.Series, list[RowIssue]]:
    """Keep every row: a repeated id gets a ``~2``, ``~3``... suffix, and each repeat is reported.

    ``elsewhere``: ids already taken by another file of the catalogue, mapped to where they are.
    """
    elsewhere = elsewhere or {}
    duplicated = ids.duplicated(keep="first") | ids.isin(list(elsewhere))
    if not duplicated.any():
        return ids, []
    ids = ids.copy()
    first_seen = {pid: f"line {line}" for line, pid in ids[~duplicated].items()} | elsewhere
    taken = set(ids) | set(elsewhere)
    counts: dict[str, int] = {}
    issues = []
    for line in ids.index[duplicated]:
        pid = ids.loc[line]
        counts[pid] = counts.get(pid, 1) + 1
        new_id = f"{pid}~{counts[pid]}"
        while new_id in taken:
            counts[pid] += 1
            new_id = f"{pid}~{counts[pid]}"
        taken.add(new_id)
        ids.loc[line] = new_id
        issues.append(
            RowIssue(
                int(line),
                "product_id",
                f"{source}: duplicate product_id {pid!r} (first at {first_seen[pid]}); kept as {new_id!r}",
                new_id,  # the id the product is predicted under
            )
        )
    return ids, issues


#: a number as a catalogue writes one: digits with an optional decimal part, no leading zero (codes such
#: as EAN "0012345" or "007"), no exponent ("1E5" is a product code more often than 100000), no inf/nan
_PLAIN_NUMBER = r"[+-]?(?:0|[1-9]\d*)(?:\.\d*)?|[+-]?\.\d+"
#: more digits than a float64 holds exactly: identifiers, kept as written
_MAX_NUMBER_DIGITS = 15


def _infer_types(extra: pd.DataFrame) -> pd.DataFrame:
    """Numbers and booleans back from the strings the csv module gives (Parquet columns are already typed).

    A column becomes numeric only when every value is a plain decimal a float holds exactly, so that
    codes and identifiers come back as written. The values of all the columns are tested at once and the CSV's
    columns converted a block at a time: tested and converted column by column (3 ms of pandas calls each), a
    300 KB CSV of 100,000 empty columns took 5 minutes to read.
    """
    strings = extra.loc[:, _string_columns(extra)]
    if strings.columns.empty:
        return extra
    kinds = _column_kinds(strings)
    cells = strings.to_numpy(dtype=object, copy=True)
    cells[kinds.blank.T] = None  # a blank value is a missing one, whatever its column holds
    as_object = _object_columns(strings)  # the csv reader's; Parquet's string columns keep their dtype

    def block(columns: np.ndarray, values: np.ndarray | None = None) -> pd.DataFrame:
        chosen = cells[:, columns] if values is None else values
        # dtype given: pandas would make a block of Python strings its str dtype, its None NaN
        return pd.DataFrame(chosen, columns=strings.columns[columns], index=extra.index, dtype=chosen.dtype)

    numbers = as_object & kinds.number
    numeric = cells[:, numbers]
    floats = pd.to_numeric(pd.Series(numeric.ravel(), dtype=object)).to_numpy(dtype=float).reshape(numeric.shape)
    integer = kinds.integer[numbers]
    booleans = {
        # cast: a None chosen where blank reads to numpy's stubs as where()'s one-argument form (a tuple)
        name: pd.array(
            cast(np.ndarray, np.where(kinds.blank[j], None, kinds.lowered[j] == "true")).tolist(), dtype="boolean"
        )
        for j, name in enumerate(strings.columns)
        if kinds.boolean[j]
    }
    parts = [
        extra.drop(columns=strings.columns),
        block(as_object & kinds.text),
        block(_among(numbers, ~integer), floats[:, ~integer]),
        block(_among(numbers, integer), floats[:, integer].astype(np.int64)),
        pd.DataFrame(booleans, index=extra.index),
    ]
    # Parquet's string columns, with pandas' nullable types (Int64, Float64, string): few, converted one by one
    for j in np.flatnonzero(~as_object & ~kinds.boolean):
        values = strings.iloc[:, j].where(~kinds.blank[j], None)
        parts.append(pd.to_numeric(values) if kinds.number[j] else values)
    return pd.concat(parts, axis=1)[extra.columns]


def _string_columns(frame: pd.DataFrame) -> np.ndarray:
    """Which columns of ``frame`` :func:`pandas.api.types.is_string_dtype` finds of strings, those of Python
    objects (all the csv reader's) tested all at once: column by column, it cost 0.1 ms each."""
    as_object = _object_columns(frame)
    found = np.zeros(len(frame.columns), dtype=bool)
    found[as_object] = _is_str(frame.loc[:, as_object].to_numpy()).astype(bool).all(axis=0)
    for j in np.flatnonzero(~as_object):
        found[j] = pd.api.types.is_string_dtype(frame.iloc[:, j])
    return found


def _object_columns(frame: pd.DataFrame) -> np.ndarray:
    """Which columns of ``frame`` hold Python objects (numpy's object dtype)."""
    return np.array([dtype == np.dtype(object) for dtype in frame.dtypes], dtype=bool)


#: whether each of an array of objects is a str
_is_str = np.frompyfunc(lambda value: isinstance(value, str), 1, 1)


def _among(chosen: np.ndarray, among_chosen: np.ndarray) -> np.ndarray:
    """The columns (a mask over all) that are ``chosen`` and, among those, ``among_chosen``."""
    mask = np.zeros_like(chosen)
    mask[chosen] = among_chosen
    return mask


@dataclass
class _ColumnKinds:
    """What each column of a table of strings holds: arrays in the order of its columns, ``blank`` and ``lowered``
    (its values in lower case, "" where blank) with a row of values a column."""

    blank: np.ndarray
    lowered: np.ndarray
    #: true/false in any case, one at least
    boolean: np.ndarray
    #: plain numbers, or blanks only
    number: np.ndarray
    #: numbers that pandas.to_numeric makes integers: a value in every row, none with a decimal point
    integer: np.ndarray

    @property
    def text(self) -> np.ndarray:
        return ~self.boolean & ~self.number


def _column_kinds(strings: pd.DataFrame) -> _ColumnKinds:
    """What each column of ``strings`` holds, tested as one Series of all its values: each call of a pandas
    string method costs about as much for one value as for thousands."""
    shape = (len(strings.columns), len(strings))
    flat = pd.Series(strings.to_numpy(dtype=object).ravel(order="F"), dtype=object)  # column after column
    blank = _is_blank(flat)
    texts = flat.where(~blank, "").astype(str)
    number = texts.str.fullmatch(_PLAIN_NUMBER) & (texts.str.count(r"\d") <= _MAX_NUMBER_DIGITS)
    dotted = texts.str.contains(".", regex=False)
    blank, number, dotted = (cells.to_numpy(dtype=bool).reshape(shape) for cells in (blank, number, dotted))
    lowered = texts.str.lower().to_numpy(dtype=object).reshape(shape)
    boolean = ~blank.all(axis=1) & (blank | np.isin(lowered, ["true", "false"])).all(axis=1)
    number = ~boolean & (blank | number).all(axis=1)
    return _ColumnKinds(blank, lowered, boolean, number, number & ~(blank | dotted).any(axis=1))


def _finish(
    frames: list[pd.DataFrame],
    issues: list[RowIssue],
    source: Path,
    fmt: str,
    photo_urls: dict[str, str] | None = None,
    table: SourceTable | None = None,
    read_from: Iterable[str] = (),
    image_column: str | None = None,
) -> Catalog:
    """The catalogue of ``frames`` (each indexed by its source line); ``table``: the one source table they were read
    from, ``read_from`` its columns a field was read from and ``image_column`` the photos' (see
    :attr:`~prodcat.catalog.schema.Catalog.unread_columns`)."""
    lines = [int(line) for part in frames for line in part.index]  # each part is indexed by its source line
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    issues = sorted(issues, key=lambda i: i.row)
    read = set(read_from) | {image_column}
    unread = () if table is None else tuple(str(c) for c in table.frame.columns if c not in read)
    return Catalog(
        frame=frame,
        source=str(source),
        format=fmt,
        issues=issues,
        lines=lines,
        photo_urls=photo_urls or {},
        image_column=image_column,
        unread_columns=unread,
    )


def source_cells(catalog: Catalog) -> pd.DataFrame | None:
    """The cells of ``catalog``'s source table as it gives them (a CSV's strings, ``""`` when empty, not the numbers
    and booleans its extra columns are read as in ``frame``; a Parquet file's typed values), a row a product of
    ``frame`` in its order: the source read again, for ``prodcat fetch-photos`` to write the table back as it was.
    ``None`` for a catalogue of several files (Rakuten, the fashion set), or one read in another way."""
    path = Path(catalog.source)
    if catalog.format == "parquet":
        table = read_parquet_table(path)
    elif catalog.format in ("csv", "flipkart") and path.is_file():
        table = read_csv_table(path)
    else:
        return None
    return table.frame.loc[catalog.lines].reset_index(drop=True)


def _column(table: SourceTable, name: str | None) -> pd.Series:
    """A source column by name, or an all-missing one when ``name`` is None."""
    if name is None:
        return pd.Series(None, index=table.frame.index, dtype=object)
    return table.frame[name]


def _require(table: SourceTable, columns: Iterable[str], fmt: str) -> None:
    missing = [c for c in columns if c not in table.frame.columns]
    if missing:
        raise CatalogFormatError(
            f"{table.name}: missing column(s) {', '.join(missing)} for format {fmt!r}; "
            f"found {', '.join(table.frame.columns)}. Use --format csv with the column-mapping options."
        )


# --------------------------------------------------------------------------------------------------
# Native formats


def load_flipkart(path: Path, image_root: Path | None = None) -> Catalog:
    """The Flipkart sample (folder or CSV): ``uniq_id``, ``product_name``, ``product_category_tree``, and the
    photos in ``Images/`` beside the CSV (or in ``image_root``)."""
    csv_path = path / FLIPKART_CSV if path.is_dir() else path
    table = read_csv_table(csv_path)
    _require(table, ("uniq_id", "product_name", "product_category_tree", "image", "description"), "flipkart")
    # '["Home Furnishing >> Curtains & Accessories >> ..."]': a JSON-ish list holding one " >> " path
    tree = table.frame["product_category_tree"].str.strip().str.removeprefix('["').str.removesuffix('"]')
    ids = table.frame["uniq_id"]
    photos = image_root or csv_path.parent / "Images"
    image, image_issues = _resolve_images(table.frame["image"], photos, table, ids, named=True)
    has_specifications = "product_specifications" in table.frame.columns
    specifications = _column(table, "product_specifications" if has_specifications else None)
    specifications = specifications.map(flipkart_specifications)
    frame, issues = _canonical(
        table,
        product_id=ids,
        title=table.frame["product_name"],
        description=_text(table.frame["description"]).combine(specifications, with_specifications),
        image=image,
        category=split_category(tree, ">>"),
        mapped_columns=("uniq_id", "product_name", "product_specifications"),
        text_expected=True,
        photo_issues=image_issues,
    )
    urls = _photo_urls(table.frame["image"], frame)
    read_from = ("uniq_id", "product_name", "description", "product_specifications", "product_category_tree")
    return _finish([frame], table.issues + issues, csv_path, "flipkart", urls, table, read_from, "image")


def flipkart_specifications(cell: object) -> str:
    """Flipkart's specification hash as text: ``Key: value; ...`` (a pair without a key gives its value).

    ``{"product_specification"=>[{"key"=>"Type", "value"=>"Bath Towel"}, {"value"=>"Pack of 3"}]}``
    gives ``"Type: Bath Towel; Pack of 3"``; ``nil``, a missing cell or ``""`` give ``""``. A cell that is
    not such a hash keeps its quoted strings, so a damaged one still contributes its words.
    """
    if not isinstance(cell, str) or not cell.strip():
        return ""
    try:  # Ruby's `=>` between a quoted key and its value, `nil` for none: JSON after two substitutions
        parsed = json.loads(_RUBY_ARROW.sub('":', cell).replace('":nil', '":null'))
        pairs = parsed["product_specification"] or []
        pairs = [pairs] if isinstance(pairs, dict) else pairs
        return specification_text((pair.get("key"), pair.get("value")) for pair in pairs)
    except (ValueError, KeyError, TypeError, AttributeError):
        texts = [text for text in _QUOTED.findall(cell) if text not in {"product_specification", "key", "value"}]
        return specification_text((None, text) for text in texts)


_RUBY_ARROW = re.compile(r'"=>(?=\s*[\[{"n])')
_QUOTED = re.compile(r'"([^"]*)"')


def rakuten_category_names(path: Path, language: str = "en") -> dict[str, str]:
    """``prdtypecode`` (as a string) → category path from ``categories.json``, made safe to use as labels.

    Two repairs: a name missing its separator ("Video Games & Consoles Game Cards") is split after the
    top level it starts with, and two codes that would share one path get their code appended to the
    leaf, so the name path stays a one-to-one image of the code. A name with no level (``""``, invisible characters) is
    refused (:class:`~prodcat.catalog.CatalogFormatError` naming its codes): it would make the label ``None``.
    """
    table = json.loads(path.read_text(encoding="utf-8"))
    if language not in table:
        raise ValueError(f"{path}: no {language!r} names; available: {', '.join(table)}")
    names = {str(code): name.strip() for code, name in table[language].items()}
    tops = {name.split(SEP)[0] for name in names.values() if SEP in name}
    for code, name in names.items():
        if SEP not in name:
            top = next((t for t in sorted(tops, key=len, reverse=True) if name.startswith(t + " ")), None)
            if top:
                names[code] = top + SEP + name[len(top) :].strip()
    joined = {code: join_path(name.split(SEP)) for code, name in names.items()}
    empty = sorted(code for code, p in joined.items() if p is None)
    if empty:  # a label of no level: refused, as it would be a label "None" (or "None [code]")
        raise CatalogFormatError(
            f"{path}: {language!r} names with no level (blank or invisible characters only) "
            f"for code(s) {', '.join(empty)}"
        )
    paths = {code: p for code, p in joined.items() if p is not None}
    by_path: dict[str, list[str]] = {}
    for code, p in paths.items():
        by_path.setdefault(p, []).append(code)
    for codes in by_path.values():
        if len(codes) > 1:
            for code in codes:
                paths[code] = f"{paths[code]} [{code}]"
    return paths


def load_rakuten(path: Path, language: str = "en", image_root: Path | None = None) -> Catalog:
    """The Rakuten challenge folder (or its ``X_*.csv``): text rows, labels, photos (in
    ``images/image_train/`` or ``image_test/``, or in ``image_root``) and photo-only rows."""
    folder = path if path.is_dir() else path.parent
    x_path = path if path.is_file() else next((folder / n for n in RAKUTEN_X if (folder / n).is_file()), None)
    if x_path is None:
        raise CatalogFormatError(f"{folder}: no {' or '.join(RAKUTEN_X)} found for format 'rakuten'")
    split = "test" if "test" in x_path.name.lower() else "train"
    # a skipped row named by its productid, as the other formats name one by their id
    table = read_csv_table(x_path, id_column=lambda names: "productid")
    _require(table, ("designation", "description", "productid", "imageid"), "rakuten")
    indexed = _name_row_index(table)
    issues = list(table.issues)

    names_path = folder / RAKUTEN_CATEGORIES
    names = rakuten_category_names(names_path, language) if names_path.is_file() else None
    codes = pd.Series(None, index=table.frame.index, dtype=object)
    y_path = folder / RAKUTEN_Y
    if split == "train" and y_path.is_file():
        labels = read_csv_table(y_path)
        _require(labels, ("prdtypecode",), "rakuten")
        labels_indexed = _name_row_index(labels)
        issues += _skipped_by_row_index(labels.issues, labels_indexed)
        for source, named in ((table, indexed), (labels, labels_indexed)):
            if not named:  # the labels are joined on it
                raise CatalogFormatError(
                    f"{source.name}: no row index, the challenge's first column (its header empty), on which "
                    f"{RAKUTEN_Y}'s labels are joined to {x_path.name}'s products; "
                    f"found {', '.join(source.frame.columns)}"
                )
        by_index = labels.frame.drop_duplicates("row_index").set_index("row_index")["prdtypecode"]
        repeated = labels.frame[labels.frame.duplicated("row_index")]
        for line, idx, code in zip(repeated.index, repeated["row_index"], repeated["prdtypecode"], strict=True):
            again = "the same label" if code == by_index[idx] else f"{code}, where the first ({by_index[idx]}) is kept"
            issues.append(RowIssue(int(line), "category", f"{RAKUTEN_Y}: row index {idx} labelled again: {again}"))
        codes = table.frame["row_index"].map(by_index)
        orphans = labels.frame[~labels.frame["row_index"].isin(table.frame["row_index"])]
        issues += [
            RowIssue(int(line), "category", f"{RAKUTEN_Y}: label for row index {idx} which {x_path.name} does not have")
            for line, idx in orphans["row_index"].items()
        ]
    elif split == "train":  # a training table copied without its labels: train and evaluate found none, saying why not
        message = f"{x_path.name}: its labels {RAKUTEN_Y} not found in {folder}; every product is read unlabelled"
        issues.append(RowIssue(1, "category", message))
    table.frame["prdtypecode"] = codes.where(~_is_blank(codes), None)
    category, code_issues = _code_to_path(table, table.frame["productid"], names)
    if indexed:
        code_issues += _repeated_row_indexes(table, labelled=split == "train" and y_path.is_file())

    image_dir = image_root or folder / "images" / f"image_{split}"
    implied = (
        "image_" + table.frame["imageid"].str.strip() + "_product_" + table.frame["productid"].str.strip() + ".jpg"
    )
    image, folder_issues = _resolve_images(implied, image_dir, table, table.frame["productid"], named=False)
    issues += folder_issues
    frame, canonical_issues = _canonical(
        table,
        product_id=table.frame["productid"],
        title=table.frame["designation"],
        description=table.frame["description"],
        image=image,
        category=category,
        mapped_columns=("designation", "productid", "row_index"),
        text_expected=True,
    )
    frames = [frame]
    issues += _named(code_issues, frame) + canonical_issues

    image_only_path = folder / RAKUTEN_IMAGE_ONLY
    if split == "train" and image_only_path.is_file():
        text_ids = {pid: f"{x_path.name} line {line}" for line, pid in frame["product_id"].items()}
        frames.append(_rakuten_image_only(image_only_path, image_dir, names, issues, text_ids))
    catalog = _finish(frames, issues, x_path if path.is_file() else folder, "rakuten")
    catalog.taxonomy = frozenset(names.values()) if names else frozenset()
    return catalog


#: the header of the challenge tables' index column: none, or ``Unnamed: 0``, pandas' name for it in a table read
#: without ``index_col`` and written back with ``index=False``
_ROW_INDEX_HEADERS = ("", "Unnamed: 0")


def _name_row_index(table: SourceTable) -> bool:
    """Name a Rakuten table's index column ``row_index``: its first column, headed as :data:`_ROW_INDEX_HEADERS`.
    ``False`` when it has none (a table that left it out)."""
    columns = list(table.frame.columns)
    if not columns or columns[0] not in _ROW_INDEX_HEADERS:
        return False
    table.frame = table.frame.rename(columns={columns[0]: "row_index"})
    return True


def _skipped_by_row_index(issues: list[RowIssue], indexed: bool) -> list[RowIssue]:
    """``issues`` of Rakuten's labels table, a skipped row named by its row index: the reader names one by its first
    field, the id in most tables, but the labels' row index, which no product has as its id."""
    named = []
    for issue in issues:
        if issue.field == "row" and issue.product_id is not None:
            problem = f"{issue.problem} (row index {issue.product_id})" if indexed else issue.problem
            issue = replace(issue, product_id=None, problem=problem)
        named.append(issue)
    return named


def _repeated_row_indexes(table: SourceTable, labelled: bool) -> list[RowIssue]:
    """A row index given again in ``table``: the challenge's files key each product by it (its label, a submission's
    row); ``labelled``: the labels file gives both products the one label of that index."""
    first: dict[str, int] = {}
    issues = []
    for line, index in table.frame["row_index"].items():
        if index not in first:
            first[index] = int(line)
            continue
        outcome = (
            f"both products are given its label in {RAKUTEN_Y}"
            if labelled
            else "a label or a submission row of that index names both products"
        )
        message = f"{table.name}: row index {index} repeated (first at line {first[index]}); {outcome}"
        issues.append(RowIssue(int(line), "index", message, table.frame["productid"].loc[line]))
    return issues


def _rakuten_image_only(
    path: Path,
    image_dir: Path,
    names: dict[str, str] | None,
    issues: list[RowIssue],
    text_ids: dict[str, str],
) -> pd.DataFrame:
    """The labelled photo-only products (empty title and description); ``text_ids`` are taken already."""
    table = read_csv_table(path)
    _require(table, ("productid", "imageid", "prdtypecode", "image"), "rakuten")
    issues += table.issues
    table.frame["prdtypecode"] = table.frame["prdtypecode"].where(~_is_blank(table.frame["prdtypecode"]), None)
    category, code_issues = _code_to_path(table, table.frame["productid"], names)
    image, image_issues = _resolve_images(table.frame["image"], image_dir, table, table.frame["productid"], named=True)
    empty = pd.Series("", index=table.frame.index, dtype=object)
    frame, canonical_issues = _canonical(
        table,
        product_id=table.frame["productid"],
        title=empty,
        description=empty,
        image=image,
        category=category,
        mapped_columns=("productid",),
        text_expected=False,  # photo-only products by design
        photo_issues=image_issues,
        ids_elsewhere=text_ids,
    )
    issues += _named(code_issues, frame) + canonical_issues
    return frame


def _code_to_path(table: SourceTable, ids: pd.Series, names: dict[str, str] | None) -> tuple[pd.Series, list[RowIssue]]:
    codes = table.frame["prdtypecode"]
    # "10.0" and "10" are the same code (a float column written by pandas)
    as_text = codes.astype(object).map(lambda c: None if pd.isna(c) else str(c).strip().removesuffix(".0"))
    if names is None:
        return as_text, []
    category = as_text.map(names)
    unknown = as_text.notna() & category.isna()
    issues = [
        RowIssue(
            int(line),
            "category",
            f"{table.name}: prdtypecode {code} is not in {RAKUTEN_CATEGORIES}; kept as the code",
            ids.loc[line],
        )
        for line, code in as_text[unknown].items()
    ]
    return category.where(~unknown, as_text), issues


def load_fashion(path: Path, image_root: Path | None = None) -> Catalog:
    """The fashion ``styles.csv`` (folder or file) with ``images/<id>.jpg`` (or ``<id>.jpg`` in ``image_root``)."""
    csv_path = path / FASHION_CSV if path.is_dir() else path
    table = read_csv_table(csv_path)
    levels = ("masterCategory", "subCategory", "articleType")
    _require(table, ("id", "productDisplayName", *levels), "fashion")
    ids = table.frame["id"].str.strip()
    category, tree_issues = _fashion_tree(table, ids, levels)
    photos = image_root or csv_path.parent / "images"
    image, folder_issues = _resolve_images(ids + ".jpg", photos, table, ids, named=False)
    frame, issues = _canonical(
        table,
        product_id=ids,
        title=table.frame["productDisplayName"],
        description=pd.Series("", index=table.frame.index, dtype=object),
        image=image,
        category=category,
        mapped_columns=("id", "productDisplayName"),
        text_expected=True,
    )
    return _finish([frame], table.issues + tree_issues + folder_issues + issues, csv_path, "fashion")


def _fashion_tree(table: SourceTable, ids: pd.Series, levels: tuple[str, ...]) -> tuple[pd.Series, list[RowIssue]]:
    """Category paths forming a tree: each articleType under the one parent most of its products have.

    The source is not a tree (e.g. "Belts" under Accessories > Belts 109 times and Apparel > Topwear
    twice); left as is, one article type would be several leaves and a child would sit under two
    parents. The few re-parented rows are reported; the original level columns stay in the frame.
    """
    frame = table.frame
    # each level as it trains, so that a name written with two spaces or a zero-width space is the same leaf, placed
    # under the same parent: a leaf kept under another parent for its spelling alone trained there as a second class.
    # A level of invisible characters alone is blank, as join_path drops it
    names = pd.DataFrame({level: _levels_as_trained(frame[level]) for level in levels})
    blank_level = names.isna().any(axis=1)
    if blank_level.all():  # no product labelled (a catalogue to predict): no tree, and none of its parents to add
        return pd.Series(None, index=frame.index, dtype=object), []
    parents = names[list(levels[:-1])].apply(join_path, axis=1)
    leaf = names[levels[-1]]
    usual_parent = parents[~blank_level].groupby(leaf[~blank_level]).agg(lambda p: p.value_counts().index[0])
    tree_parent = leaf.map(usual_parent)
    moved = ~blank_level & (tree_parent != parents)
    issues = [
        RowIssue(
            int(line),
            "category",
            f"{table.name}: {levels[-1]} {leaf.loc[line]!r} under {parents.loc[line]!r}, but mostly under "
            f"{tree_parent.loc[line]!r}; placed there so each {levels[-1]} is one leaf",
            ids.loc[line],
        )
        for line in frame.index[moved]
    ]
    category = (tree_parent + SEP + leaf).astype(object)
    return category.where(~blank_level, None), issues


def _levels_as_trained(names: pd.Series) -> pd.Series:
    """Each level's name in the spelling it trains in (:func:`canonical_path`: spacing collapsed, invisible characters
    gone, composed), a ``>`` in it replaced as :func:`join_path` replaces it; ``None`` for a blank one. Each distinct
    name is spelt once: a catalogue holds few."""
    spelt = {}
    for name in names.dropna().unique():
        joined = join_path([name])
        spelt[name] = canonical_path(joined) if joined else None
    spelt_names = names.map(spelt).astype(object)
    return spelt_names.where(spelt_names.notna(), None)


def load_table(
    path: Path,
    *,
    id_column: str | None = None,
    title_column: str | None = None,
    description_column: str | None = None,
    image_column: str | None = None,
    category_column: str | None = None,
    image_root: str | Path | None = None,
    category_sep: str | None = None,
    fmt: str | None = None,
) -> Catalog:
    """Any CSV/TSV/Parquet table. Columns default to the canonical names when present.

    ``fmt``: ``"csv"`` or ``"parquet"``, the reader to use (default: by the file's extension).

    Without an id column, products are named after their source line (``row-<line>``); ``image``
    values relative to ``image_root`` (default: the table's folder) are resolved to absolute paths;
    ``category_sep`` splits category strings into paths (default: already canonical ``A > B``).
    """
    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt == "parquet":
        table = read_parquet_table(path)
    else:  # a skipped row named by its id, wherever the id column is
        table = read_csv_table(path, id_column=lambda names: id_column or column_named(names, "product_id"))
    columns = {
        "product_id": id_column,
        "title": title_column,
        "description": description_column,
        "image": image_column,
        "category": category_column,
    }
    for canonical, given in columns.items():
        if given is not None and given not in table.frame.columns:
            raise CatalogFormatError(
                f"{table.name}: no column {given!r} (given for {canonical}); "
                f"found {', '.join(map(str, table.frame.columns))}"
            )
        if given is None:
            columns[canonical] = column_named(table.frame.columns, canonical)
    if columns["title"] is None and columns["description"] is None and columns["image"] is None:
        raise CatalogFormatError(
            f"{table.name}: no title, description or image column among {', '.join(map(str, table.frame.columns))}; "
            "name them with --title-column / --description-column / --image-column"
        )
    _warn_unmapped(table, columns)
    type_issues = typed_columns_as_text(table, columns) if fmt == "parquet" else []
    if columns["product_id"] is None:
        ids = pd.Series([line_name(line) for line in table.frame.index], index=table.frame.index, dtype=object)
        # each names its product, as every other issue of one does: _canonical takes one naming none for the table's
        type_issues = [replace(issue, product_id=ids.loc[issue.row]) for issue in type_issues]
    else:
        ids = _text(table.frame[columns["product_id"]])
    root = Path(image_root) if image_root is not None else path.parent
    image, image_issues = _resolve_images(_column(table, columns["image"]), root, table, ids, named=True)
    # a photo's bytes in the image column leave its product without a photo, as a photo not found does
    photo_issues = image_issues + [issue for issue in type_issues if issue.field == "image"]
    frame, issues = _canonical(
        table,
        product_id=ids,
        title=_column(table, columns["title"]),
        description=_column(table, columns["description"]),
        image=image,
        category=split_category(_column(table, columns["category"]), category_sep),
        mapped_columns=[c for c in columns.values() if c is not None],
        text_expected=columns["title"] is not None or columns["description"] is not None,
        photo_issues=photo_issues,
    )
    other_type_issues = [issue for issue in type_issues if issue.field != "image"]
    urls = _photo_urls(_column(table, columns["image"]), frame)
    read_from = [column for column in columns.values() if column is not None]
    issues = table.issues + _named(other_type_issues, frame) + issues
    return _finish([frame], issues, path, fmt, urls, table, read_from, columns["image"])


#: the option naming the column of each canonical field
_COLUMN_OPTIONS = {name: f"--{name.removeprefix('product_')}-column" for name in COLUMNS}
#: what products are read as, per field without a column
_WITHOUT = {
    "product_id": "named row-<line>",
    "title": "without a title",
    "description": "without a description",
    "image": "without a photo",
    "category": "unlabelled",
}


def _warn_unmapped(table: SourceTable, columns: dict[str, str | None]) -> None:
    """Warn when a field products are read by (id, title, description, photo) has no column while the table
    has columns left unread: one of them may hold it under another name (``sku``, ``name``, ``photo``), and
    the products would otherwise be read without it, silently (ids ``row-<line>``, no description, no photo).
    A missing category is named then too, as train and evaluate need one; alone it is no warning (predict)."""
    missing = [name for name in COLUMNS if columns.get(name) is None]
    mapped = set(columns.values())
    unread = [str(c) for c in table.frame.columns if c not in mapped]
    if not unread or not set(missing) - {"category"}:
        return
    columns_read = f"the column {unread[0]} is" if len(unread) == 1 else f"the columns {first_few(unread, 10)} are"
    log.warning(
        "%s: no %s column, so its products are read %s; %s not read: if one holds such a field, name it with %s",
        table.name,
        _or(missing),
        ", ".join(_WITHOUT[name] for name in missing),
        columns_read,
        _or([_COLUMN_OPTIONS[name] for name in missing]),
    )


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


# --------------------------------------------------------------------------------------------------
# Entry point


#: the native formats, each with the files that mark its folder and the columns that mark its table
_FOLDER_FILES = {"flipkart": (FLIPKART_CSV,), "rakuten": RAKUTEN_X, "fashion": (FASHION_CSV,)}
_HEADER_COLUMNS = {
    "flipkart": {"uniq_id", "product_category_tree"},
    "fashion": {"masterCategory", "articleType", "productDisplayName"},
    "rakuten": {"designation", "productid", "imageid"},
}


def catalog_files(path: str | Path) -> list[Path]:
    """The files a catalogue at ``path`` is read from, as far as they exist: the table itself, or those of a
    catalogue folder (a Rakuten table's labels, photo-only rows and category names beside it too); the photos
    aside. What an output must never be written over."""
    path = Path(path).expanduser()
    try:
        is_folder = path.is_dir()
    except OSError:  # a path the system cannot look up (a name too long): the loader says why, not a traceback here
        is_folder = False
    if not is_folder and path.name not in RAKUTEN_X:
        return [path]
    folder = path if is_folder else path.parent
    names = (FLIPKART_CSV, *RAKUTEN_X, RAKUTEN_Y, RAKUTEN_IMAGE_ONLY, RAKUTEN_CATEGORIES, FASHION_CSV)
    return [folder / name for name in names if (folder / name).is_file()]


def catalog_file_among(data: str | Path, paths: Iterable[str | Path]) -> Path | None:
    """The first of the :func:`catalog_files` of ``data`` that is one of ``paths`` (links and ``..`` resolved):
    an output written there would overwrite the input; ``None``: none is."""
    targets = {Path(path).expanduser().resolve() for path in paths}
    return next((source for source in catalog_files(data) if source.resolve() in targets), None)


def detect_format(path: str | Path) -> str:
    """Which loader reads ``path``: from the files in a folder, or the columns of a file."""
    path = Path(path)
    if path.is_dir():
        for name, files in _FOLDER_FILES.items():
            if any((path / file).is_file() for file in files):
                return name
        tables = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq"))
        raise CatalogFormatError(
            f"{path}: not a known catalogue folder (expected {FLIPKART_CSV}, {RAKUTEN_X[0]} or {FASHION_CSV}); "
            f"pass one of its tables instead: {', '.join(tables) or 'none found'}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    if path.name in RAKUTEN_X:
        return "rakuten"
    header = set(next(csv.reader([header_line(path)], delimiter=sniff_delimiter(path)), []))
    return next((name for name, columns in _HEADER_COLUMNS.items() if columns <= header), "csv")


_Options = ParamSpec("_Options")
#: failures to read a path that the command line already says in one line, as they are
_SAID_AS_THEY_ARE = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _read_failures_said(
    load: Callable[Concatenate[str | Path, _Options], Catalog],
) -> Callable[Concatenate[str | Path, _Options], Catalog]:
    """``load``, an input/output error reading the catalogue (a failing disk, a dropped network share) raised as a
    :class:`CatalogFormatError` naming the file and why: it ended every command in a traceback."""

    @functools.wraps(load)
    def reading(path: str | Path, *args: _Options.args, **kwargs: _Options.kwargs) -> Catalog:
        try:
            return load(path, *args, **kwargs)
        except OSError as exc:
            if exc.errno is None or isinstance(exc, _SAID_AS_THEY_ARE):  # ours say what is wrong already
                raise
            raise CatalogFormatError(f"{exc.filename or path}: cannot be read ({exc.strerror})") from exc

    return reading


def _catalog_path(path: str | Path) -> Path:
    """``path`` (``~`` expanded), refused unless it is an existing file or folder: no catalogue is read from a
    stream."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not path.is_file() and not path.is_dir():
        # /dev/zero was read until memory ran out, a FIFO or <(zcat ...) waited for a writer or came empty the second
        # time it was read (its header first, then its rows): no catalogue is read from a stream
        raise CatalogFormatError(
            f"{path}: a device, pipe or socket, not a file or folder: save the catalogue to a file and give its path"
        )
    return path


def _check_options_of_format(path: Path, fmt: str, options: dict[str, str | None], language: str | None) -> None:
    """Refuse the reading ``options`` (by parameter name, said as their command-line option) and ``language`` that a
    catalogue of format ``fmt`` has no use for, or an empty --category-sep: each would change nothing, or fail in a
    traceback, without a word."""
    # an unset shell variable ('--category-sep "$SEP"'): str.split refuses it, in a traceback
    if options["category_sep"] == "":
        raise CatalogFormatError("--category-sep is empty: give the separator of the category levels, e.g. '/'")
    given = ["--" + option.replace("_", "-") for option, value in options.items() if value]
    if fmt in _FOLDER_FILES and given:
        detail = f"{', '.join(given)} apply to CSV/Parquet catalogues only"
        raise CatalogFormatError(f"{path} is a {fmt} catalogue, whose columns are known: {detail}")
    if language and fmt != "rakuten":  # taken for the texts' language, it changed nothing, without a word
        raise CatalogFormatError(
            f"{path} is a {fmt} catalogue: --language picks the names of Rakuten's categories only (the language "
            "of a catalogue's texts is detected): leave it out"
        )


@_read_failures_said
def load_catalog(
    path: str | Path,
    format: str = "auto",
    *,
    id_column: str | None = None,
    title_column: str | None = None,
    description_column: str | None = None,
    image_column: str | None = None,
    category_column: str | None = None,
    image_root: str | Path | None = None,
    category_sep: str | None = None,
    language: str | None = None,
) -> Catalog:
    """Load a catalogue of any supported format into a :class:`~prodcat.catalog.schema.Catalog`.

    ``format``: one of :data:`FORMATS` (``auto`` detects it). The column-mapping options
    (``*_column``, ``category_sep``) apply to ``csv``/``parquet``, and are refused for the native formats,
    whose columns are known; ``image_root`` is the photo folder of any format; ``language``
    (``en``/``fr``, default ``en``) picks the Rakuten category names, and is refused for the other formats.
    """
    path = _catalog_path(path)
    if format not in FORMATS:
        raise ValueError(f"unknown catalogue format {format!r}; expected one of {', '.join(FORMATS)}")
    fmt = detect_format(path) if format == "auto" else format
    root = Path(image_root).expanduser() if image_root else None
    if root is not None and not root.is_dir():  # a typo would cost every product its photo, some silently
        raise CatalogFormatError(f"--image-root {image_root}: {'not a folder' if root.exists() else 'no such folder'}")
    # the options of a CSV/Parquet table, refused for the other formats
    table_options = {
        "id_column": id_column,
        "title_column": title_column,
        "description_column": description_column,
        "image_column": image_column,
        "category_column": category_column,
        "category_sep": category_sep,
    }
    _check_options_of_format(path, fmt, table_options, language)
    if fmt == "flipkart":
        return load_flipkart(path, root)
    if fmt == "rakuten":
        return load_rakuten(path, language=language or "en", image_root=root)
    if fmt == "fashion":
        return load_fashion(path, root)
    if path.is_dir():
        raise CatalogFormatError(f"{path}: format {fmt!r} needs a file, not a folder")
    return load_table(path, **table_options, image_root=root, fmt=fmt)


#: the options of :func:`~prodcat.arguments.add_loader_arguments` but ``data`` and ``--format``, as their dests
READING_OPTIONS = (
    *("id_column", "title_column", "description_column", "image_column", "category_column"),
    *("image_root", "category_sep", "language"),
)


def how_read(args: argparse.Namespace, catalog: Catalog) -> dict[str, str]:
    """How ``catalog`` was read from ``args``, for a report to record: its path, its format (as detected) and each
    reading option given (``title_column``, ``category_sep``...), which read the same file otherwise without them."""
    given = {option: str(value) for option in READING_OPTIONS if (value := getattr(args, option)) is not None}
    return {"path": str(args.data), "format": catalog.format, **given}


#: the size of a catalogue's files from which a command says that it reads it, before it does: a CSV of some 10,000
#: products (a second of reading), a Parquet file of some 300,000; a million products were read for 87 s in silence
SAID_READING_FROM = 10 * 2**20


def load_from_args(args: argparse.Namespace) -> Catalog:
    """:func:`load_catalog` with the options added by :func:`~prodcat.arguments.add_loader_arguments`, a line
    ``reading DATA (N MB) ...`` logged first when its files hold :data:`SAID_READING_FROM` bytes or more."""
    if (size := catalog_size(args.data)) >= SAID_READING_FROM:
        log.info("reading %s (%s MB) ...", args.data, f"{size / 2**20:,.0f}")
    return load_catalog(args.data, args.format, **{option: getattr(args, option) for option in READING_OPTIONS})


def catalog_size(path: str | Path) -> int:
    """The bytes of the :func:`catalog_files` of ``path`` (its photos aside); one that cannot be looked up counts
    none: the loader says why it cannot be read."""
    total = 0
    for file in catalog_files(path):
        try:
            total += file.stat().st_size
        except (OSError, ValueError):  # ValueError: a NUL in the path
            continue
    return total

"""The canonical catalogue table every loader produces and everything reads.

A catalogue is a :class:`pandas.DataFrame` with these columns (plus any other
columns of the source, kept as they are):

===============  =====================================================
``product_id``   ``str``, unique
``title``        ``str`` ("" when missing)
``description``  ``str`` ("" when missing)
``image``        ``str`` absolute path of the photo, or ``None``
``category``     ``str`` category *path* such as ``"Home > Curtains"``,
                 or ``None`` for unlabelled products
===============  =====================================================

Loaders return a :class:`Catalog`: that frame plus the :class:`RowIssue` list of
rows that could not be read cleanly (reported, never silently dropped).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prodcat.config import MODALITIES, Modality
from prodcat.formatting import counted
from prodcat.text.clean import clean_texts, without_invisible

COLUMNS = ("product_id", "title", "description", "image", "category")
#: separator of the levels of a category path
SEP = " > "


#: how a message names the modality a product is left with, and that modality as a model reads it
_ITS_MODALITY = {"text": "its text", "image": "its photo"}
_MODALITY_READ = {"text": "text", "image": "photos"}
#: the columns of a table of issues (``OUT.issues.csv``, a report's input_issues.csv, the app's), of
#: :meth:`RowIssue.record`
ISSUE_COLUMNS = ["row", "product_id", "field", "message"]


@dataclass(frozen=True)
class RowIssue:
    """A problem with one source row: ``row`` is its 1-based line/row number in the source.

    ``left_with``: the one modality (``"text"`` or ``"image"``) the problem leaves the product with (a product
    without a title or description, a photo not found). Its :attr:`message` then goes on to say what a model
    reading the modalities ``read_by`` classifies the product from: that modality, or nothing when the model does
    not read it (set by :func:`~prodcat.catalog.loaders.issues_for_model` for the model that runs).
    """

    row: int
    field: str
    problem: str
    product_id: str | None = None
    left_with: Modality | None = None
    read_by: frozenset[str] = frozenset(MODALITIES)

    @property
    def message(self) -> str:
        """The problem, and what the product is left with classified from, by a model reading ``read_by``."""
        if self.left_with is None:
            return self.problem
        if self.left_with in self.read_by:
            return f"{self.problem}: classified from {_ITS_MODALITY[self.left_with]}"
        unread = _MODALITY_READ[self.left_with]
        return f"{self.problem}: nothing to classify it from, as this model does not read {unread}"

    def record(self) -> dict[str, object]:
        """The issue as a row of a table of :data:`ISSUE_COLUMNS`."""
        return {"row": self.row, "product_id": self.product_id, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        who = f" (product {self.product_id})" if self.product_id else ""
        return f"row {self.row}{who}, {self.field}: {self.message}"


#: where a catalogue of a format whose columns are known (which refuses --category-column) has its labels
_LABELS_OF_FORMAT = {
    "rakuten": "a Rakuten X_test_update.csv has no labels, and an X_train_update.csv reads them from "
    "Y_train_CVw08PX.csv beside it; give labelled products as those two files",
    "flipkart": "a Flipkart catalogue reads them from its product_category_tree column, empty in every row",
    "fashion": "a fashion catalogue reads them from its masterCategory, subCategory and articleType columns, all "
    "three given in a row, and no row gives all three",
}


@dataclass
class Catalog:
    """A canonical catalogue frame, where it came from, and what went wrong reading it."""

    frame: pd.DataFrame
    source: str = ""
    format: str = ""
    issues: list[RowIssue] = field(default_factory=list)
    #: the source line (or row) of each product of ``frame``, as in :class:`RowIssue` (empty: unknown)
    lines: list[int] = field(default_factory=list)
    #: the category paths the source's own taxonomy defines as classes (Rakuten's ``categories.json``): one the
    #: parent of another there is a class of its own, products filed at the parent node, not a path stopping short
    taxonomy: frozenset[str] = frozenset()
    #: the URL (``http://``, ``https://``) each product whose photo is given as one names, by product id: not read
    #: (its ``image`` is ``None``, an issue says why), and downloaded by ``prodcat fetch-photos``
    photo_urls: dict[str, str] = field(default_factory=dict)
    #: the source's column the photos were read from (``None``: none, or a format read from several files)
    image_column: str | None = None
    #: the source's columns no field was read from, in its order, those named like a field included (a table's own
    #: ``product_id`` when ``--id-column`` names another): in ``frame`` as typed, but those named like a field; their
    #: cells as the source gave them are :func:`~prodcat.catalog.loaders.source_cells`'
    unread_columns: tuple[str, ...] = ()

    def line_of(self, position: int) -> int:
        """The source line of the product at ``position`` in ``frame`` (its 1-based position when unknown)."""
        return self.lines[position] if self.lines else position + 1

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def labelled(self) -> pd.DataFrame:
        """The products of ``frame`` that have a category, their index kept."""
        return self.frame[self.frame["category"].notna()]

    def no_category_read(self) -> str | None:
        """Why a command that needs labels has none when products were read but not one category: a table whose
        category column has another name ('label', 'cat') is read as unlabelled, as a catalogue to predict is.
        ``None`` when some product has a category, or none was read."""
        if self.frame.empty or self.frame["category"].notna().any():
            return None
        none = f"none of the {len(self.frame):,} products read has a category"
        # a catalogue whose columns are known refuses --category-column: where its labels are read from instead
        return f"{none}: {_LABELS_OF_FORMAT.get(self.format, 'if a column holds them, name it with --category-column')}"


def split_path(category: str) -> list[str]:
    """The levels of a category path, each stripped: ``"Home > Decor"`` is ``["Home", "Decor"]``."""
    return [part.strip() for part in category.split(SEP.strip())]


def canonical_levels(category: str) -> list[str]:
    """The levels of a category path as it trains: without invisible characters
    (:func:`~prodcat.text.clean.without_invisible`), each stripped, its inner spacing collapsed to one space, its
    accents composed (NFC). A level left empty (``"Kitchen > "``, ``"Home >  > Decor"``, one of invisible characters
    alone) is dropped, as the catalogue loaders drop it (:func:`~prodcat.catalog.loaders.join_path`): a path of none
    is spelt ``""``, which ``fit`` refuses as a blank label.

    ``"Watches >  Wrist  Watches "`` and ``"Watches>Wrist Watches"`` are one category written twice, as are
    'Beauté' with its 'é' as one character and as 'e' and a combining accent (a macOS export merged with another),
    and 'Watches' after a zero-width space (pasted from a web page) or a byte-order mark; kept as typed, training
    would learn them as classes that no reader tells apart. This is the one place labels are spelt so: a frame given
    to ``fit``, a correction of the review queue and a catalogue's category alike.
    """
    composed = unicodedata.normalize("NFC", without_invisible(category))
    levels = (" ".join(level.split()) for level in composed.split(SEP.strip()))
    return [level for level in levels if level]


def canonical_path(category: str) -> str:
    """A category path in its one spelling: :func:`canonical_levels` joined by :data:`SEP`."""
    return SEP.join(canonical_levels(category))


def distinguishing_tails(paths: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Each category path's last levels, as few as tell it apart from the other ``paths`` (its whole path when
    none do): ``Tshirts``, but ``Apparel > Accessories`` beside ``Footwear > Accessories``."""
    # a path counts once per tail of its own: a tail counted once belongs to one path only
    shared = Counter(tuple(path[-depth:]) for path in paths for depth in range(1, len(path) + 1))
    tails = []
    for path in paths:
        depth = next((d for d in range(1, len(path)) if shared[tuple(path[-d:])] == 1), len(path))
        tails.append(tuple(path[-depth:]))
    return tails


def category_at_level(categories: pd.Series | list[str], level: int | None) -> np.ndarray:
    """The labels category paths train as: their first ``level`` levels (``None``: the full path), in their
    canonical spelling (:func:`canonical_levels`) at every level, the full path's too.

    Paths shorter than ``level`` are kept whole; values that are no path (``None``, NaN) are kept as they are.
    """
    values = list(categories)
    # a catalogue holds few distinct paths: each is spelt once
    labels = {c: SEP.join(canonical_levels(c)[:level]) for c in set(values) if isinstance(c, str)}
    return np.asarray([labels[c] if isinstance(c, str) else c for c in values], dtype=object)


def model_truth(categories: pd.Series | list[str], level: int | None, labels: Sequence[str]) -> np.ndarray:
    """The true labels of ``categories`` for a model of ``labels`` predicting ``level``: cut there in their
    canonical spelling (:func:`category_at_level`), each spelt as the model's label it is as read now. A model trained
    before labels were composed may hold 'é' as 'e' and a combining accent, one trained before the loaders removed
    invisible characters 'Watches' after a zero-width space, and predicts them so."""
    truth = category_at_level(categories, level)
    # a model's label as a catalogue holding it trains now (canonical_levels: without invisible characters, composed,
    # levels left empty dropped)
    as_read_now = {canonical_path(label): label for label in labels}
    spelt_otherwise = {read: label for read, label in as_read_now.items() if read and read != label}
    if not spelt_otherwise:
        return truth
    return np.asarray([spelt_otherwise.get(label, label) for label in truth], dtype=object)


def depth(categories: pd.Series | list[str]) -> int:
    """The largest number of levels among the given paths."""
    return max((len(split_path(c)) for c in categories if c is not None), default=0)


def deeper_level_warning(categories: pd.Series | list[str], level: int | None, outcome: str) -> str | None:
    """The warning that ``level`` (``None`` or 0: the full path) is deeper than the ``categories`` go, which then
    are taken whole, ``outcome`` saying what is done with them ("predicted", "checked"); ``None`` when it is not.

    Cut deeper than they go, the paths are whole paths: a report must not name a level never used.
    """
    levels = depth(categories)
    # no category at all (an empty catalogue) is not too shallow: explore said the categories 'have 0 level(s)' before
    # its error that there is no labelled product
    if not level or not levels or level <= levels:
        return None
    return f"level {level} asked, but the categories have {levels} level(s): the full paths are {outcome}"


def nested_categories_warning(
    categories: pd.Series | list[str], level: int | None, taxonomy: Collection[str] = ()
) -> str | None:
    """The warning that some of the ``categories``, cut at ``level``, are the parent of another (``A > B`` beside
    ``A > B > C``: a path stopping short of its siblings, a correction naming a parent); ``None`` when none is.

    Such a parent is learnt as a class beside its own subcategories: the predictions are no longer a hierarchy.
    The warning says what the user can do either way: a mislabel (a path stopping short) is corrected to its full
    path, a parent meant as a class (products filed at it on purpose) is learnt as labelled, and ``--level`` trains
    on a strict hierarchy. It advised correcting the labels alone, though a user's own catalogue may file products
    at a parent node on purpose. The depth of the shallowest parent is the deepest level where
    none is: a path parent of another once cut there would be a shallower parent already.

    A pair both of whose paths are classes of the source's own ``taxonomy`` (:attr:`Catalog.taxonomy`: Rakuten's
    'Video Games & Consoles > Video Games', code 40, above its '> PC Video Games', 2905) is no such label: the
    parent is a class of its own, and there are no labels to correct.
    """
    labels = {label for label in category_at_level(categories, level) if isinstance(label, str)}
    defined = {canonical_path(path) for path in taxonomy}
    pairs = [
        (ancestor, label)
        for label in sorted(labels)
        for ancestor in ancestor_paths(label)
        if ancestor in labels and not {ancestor, label} <= defined
    ]
    if not pairs:
        return None
    shown = "; ".join(f"{ancestor!r} above {label!r}" for ancestor, label in pairs[:3])
    flat_level = min(len(split_path(ancestor)) for ancestor, _ in pairs)
    return (
        f"{counted(len(pairs), 'pair')} of categories where one is the parent of the other ({shown}"
        f"{'; ...' if len(pairs) > 3 else ''}): each parent is learnt as a class of its own beside its subcategories, "
        "so a product may be predicted at the parent rather than in one of them, and the predictions are no strict "
        "hierarchy. If those parents are labels stopping short (a cut path, an old correction), correct them to full "
        "paths; if products are filed at the parent on purpose, it is learnt as labelled and nothing needs "
        f"correcting; for a strict hierarchy, give --level {flat_level}, the deepest level where no category is "
        "another's parent"
    )


def ancestor_paths(category: str) -> list[str]:
    """The paths above ``category`` (``A`` and ``A > B`` above ``A > B > C``)."""
    levels = split_path(category)
    return [SEP.join(levels[:cut]) for cut in range(1, len(levels))]


def has_text(frame: pd.DataFrame) -> np.ndarray:
    """Products with readable text, shape ``(n,)`` bool: a title or description holding a letter or a digit
    once cleaned. Markup, entities or punctuation alone (``<p></p>``, ``&nbsp;``, ``...``) are no text: such a
    product is answered from its photo, as one without text is, not from all-zero text features."""
    # a plain loop: pandas string methods cost more than the work on the few rows a server sees. Over lists: iterating
    # a column of pandas' Arrow-backed strings yields its values one call each, 5 times slower (1,000,000 products)
    titles, descriptions = frame["title"].tolist(), frame["description"].tolist()
    return np.fromiter(
        (is_readable(t) or is_readable(d) for t, d in zip(titles, descriptions, strict=True)),
        dtype=bool,
        count=len(frame),
    )


def is_readable(raw: object) -> bool:
    """Whether a raw title or description counts as text (see :func:`has_text`)."""
    if not isinstance(raw, str):
        return False
    if raw.isascii() and "<" not in raw and "&" not in raw:
        # no markup, no entity, no mojibake to repair: cleaning would keep every letter and digit
        return _has_word(raw)
    return _has_word(clean_texts([raw])[0])


def _has_word(text: str) -> bool:
    return any(character.isalnum() for character in text)


def has_image(frame: pd.DataFrame) -> np.ndarray:
    """Products with a photo (a path, bytes or an image in the ``image`` cell), shape ``(n,)`` bool (whether it
    can be read is checked when decoding)."""
    return frame["image"].notna().to_numpy()


def modality_mask(frame: pd.DataFrame, modality: str) -> np.ndarray:
    """:func:`has_text` or :func:`has_image` of ``frame``, ``(n,)`` bool, by ``modality`` (``"text"`` or ``"image"``);
    ``ValueError`` for another."""
    if modality == "text":
        return has_text(frame)
    if modality == "image":
        return has_image(frame)
    raise ValueError(f"unknown modality {modality!r} (expected 'text' or 'image')")


def strings_or_empty(values: Iterable[object]) -> list[str]:
    """Each value as a string, ``""`` where it is missing (see :func:`is_missing`); bytes as the UTF-8 text they hold
    (an invalid sequence as U+FFFD), not as their ``b'...'`` representation."""
    return ["" if is_missing(v) else _as_text(v) for v in values]


#: the characters ``str.strip`` removes around a text (``str.isspace``: spaces, tabs, line breaks, no-break spaces,
#: ...), hence around an id (:func:`given_product_id`), and all a blank cell holds; written out, as finding them reads
#: every code point (0.06-0.15 s at each server start), and checked against Python's rule by the tests
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def given_product_id(value: object) -> str | None:
    """The id ``value`` gives a product, without the spaces around it (``" sku-1 "`` is ``"sku-1"``, as the
    catalogue loaders read it), or ``None`` when it gives none: missing, empty or blank (spaces only, as a
    spreadsheet cell or a form field holding a space): taken as an id, it was shared by every product sent with it.
    The rule of the API (which answers and stores such a product without an id) and of
    :func:`~prodcat.models.classifier.product_frame` (which names it by its row number); the catalogue loaders,
    which strip every id alike (``str.strip``), name it by its source line (``row-<line>``)."""
    return None if is_missing(value) else _as_text(value).strip() or None


def _as_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def product_titles(frame: pd.DataFrame) -> list[str]:
    """Each product's raw title, ``""`` where it is missing."""
    return strings_or_empty(frame["title"].tolist())


#: what :func:`product_text` puts between a title and its description
TEXT_SEPARATOR = " . "


def product_text(frame: pd.DataFrame) -> list[str]:
    """Title and description joined: the raw text every text extractor starts from."""
    titles = product_titles(frame)
    descriptions = strings_or_empty(frame["description"].tolist())
    return [f"{t}{TEXT_SEPARATOR}{d}" if d.strip() else t for t, d in zip(titles, descriptions, strict=True)]


def specification_text(pairs: Iterable[tuple[str | None, object]]) -> str:
    """A seller's key/value attributes as the text read after the description: ``Key: value; ...``.

    ``[("Type", "Bath Towel"), (None, "Pack of 3")]`` gives ``"Type: Bath Towel; Pack of 3"``: a pair
    without a key gives its value alone, and a missing value (``None``, NaN) leaves its pair out. The
    Flipkart loader and the API's ``specifications`` field both write it, so a served product reads as the
    trained ones did.
    """
    parts = [f"{key}: {value}" if key else str(value) for key, value in pairs if not is_missing(value)]
    return "; ".join(part for part in parts if part.strip())


def with_specifications(description: str, specifications: str) -> str:
    """The description followed by its specification text on a new line (either may be empty)."""
    return f"{description}\n{specifications}".strip()


def columns_named(names: Iterable[object], canonical: str) -> list[str]:
    """The columns of a table that may hold the field ``canonical`` by their name: ``[canonical]`` when one has that
    name exactly, else those named so in other letter case (``Title``, ``PRODUCT_ID``: spreadsheets capitalise their
    headers)."""
    texts = [str(name) for name in names]
    if canonical in texts:
        return [canonical]
    return [text for text in texts if text.casefold() == canonical]


def column_named(names: Iterable[object], canonical: str) -> str | None:
    """The column of a table holding the field ``canonical`` by its name: the one of :func:`columns_named`, ``None``
    when there is none, or several (``Title`` and ``TITLE``). The rule of the catalogue loaders (which warn of the
    columns they leave unread) and of :func:`~prodcat.models.classifier.product_frame` (which refuses several)."""
    found = columns_named(names, canonical)
    return found[0] if len(found) == 1 else None


def is_missing(value: object) -> bool:
    """A missing cell: ``None``, ``pd.NA`` or a float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)

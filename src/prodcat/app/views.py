"""What each page of the web app shows, as plain functions on frames and manifests (no Streamlit here).

The Streamlit script (:mod:`prodcat.app.streamlit_app`) only lays these results out, so everything
that can be wrong is tested without a browser. Frames are canonical catalogue frames
(:mod:`prodcat.catalog.schema`); manifests are a bundle's ``manifest.json`` as a dict.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from prodcat.batch import predict_catalog, unused_photo_issues
from prodcat.bundle import modalities_read_by_bundle
from prodcat.catalog.audit.inputs import length_bars
from prodcat.catalog.loaders import CatalogFormatError, issues_of_the_run, load_catalog
from prodcat.catalog.schema import (
    ISSUE_COLUMNS,
    Catalog,
    RowIssue,
    category_at_level,
    depth,
    has_image,
    specification_text,
    strings_or_empty,
    with_specifications,
)
from prodcat.catalog.tables import read_csv_table
from prodcat.evaluate.explain import WordExplanation
from prodcat.evaluate.labelled import (
    SMALL_EVALUATION,
    InTraining,
    products_in_training,
    unknown_categories_warning,
)
from prodcat.evaluate.metrics import UNSCORED, per_class
from prodcat.evaluate.report import auto_precision_note, decided_per_class, interval_text, ranked_per_class
from prodcat.formatting import count_text, counted
from prodcat.image.decode import ImageDecodeError, ImageSource, load_image
from prodcat.manifest import feedback_text
from prodcat.models.decision import accepts_nothing
from prodcat.predict import Predictor, why_nothing_read
from prodcat.serve.settings import ServeSettings, text_over_limit

#: the category shown for products without one
UNLABELLED = "(unlabelled)"
#: photos uploaded on the Predict page are refused beyond the REST API's default limits
MAX_UPLOAD_BYTES: int = ServeSettings.model_fields["max_image_bytes"].default
MAX_UPLOAD_PIXELS: int = ServeSettings.model_fields["max_pixels"].default
#: and texts typed there beyond the API's (:func:`text_refusal`): an explanation of a megabyte of text would hold the
#: page for minutes
MAX_TEXT_CHARS: int = ServeSettings.model_fields["max_text_chars"].default
#: longest side of the photo previews and grid thumbnails, in pixels; a preview is shown at its own width or less:
#: Streamlit shrinking a wider one rounds its height down, to 0 for a banner (a 1000x3 photo), and fails
PREVIEW_SIDE = 200
THUMBNAIL_SIDE = 96


# ---------------------------------------------------------------------------------------------- every page
class PathRefused(ValueError):
    """A path typed in the app lies outside the folders it may open."""


#: characters Streamlit's Markdown would read as formatting inline: LaTeX, emphasis, code, links, strikethrough
_MARKDOWN = re.compile(r"([\\`*_$\[\]~<>])")


#: a command line the library's own messages quote in backticks (`prodcat cv`, `prodcat train --out`)
_QUOTED_COMMAND = re.compile(r"`(prodcat(?: [^`\n]*)?)`")


def as_written(text: str) -> str:
    """``text`` escaped for Streamlit's Markdown (messages, captions, button labels): a category named
    ``Gifts $5 to $10`` or a file ``*new*.csv`` is shown as written, not as LaTeX or emphasis. A command line the
    library quotes in backticks (``give the folder `prodcat train --out` wrote``) is shown as code, where it was shown
    with its backticks; any other backtick is shown as written (a catalogue's text)."""
    parts = _QUOTED_COMMAND.split(text)  # the commands at odd positions: a code span shows its text as written
    return "".join(f"`{part}`" if i % 2 else _MARKDOWN.sub(r"\\\1", part) for i, part in enumerate(parts))


def readable_path(typed: str, roots: Sequence[Path]) -> Path:
    """The path typed (surrounding blanks dropped, ``~`` expanded, links followed) when it lies under one of
    ``roots``: anyone reaching the app must not read other files of the server through it.

    Raises:
        PathRefused: naming the folders allowed; the path is not opened, so nothing is said of it.
    """
    path = Path(typed.strip()).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(map(str, roots))
        raise PathRefused(
            f"{typed.strip()}: outside the folders this app may open ({allowed}); "
            "start `prodcat app` with --root FOLDER to allow another"
        )
    return path


def modification_stamp(path: str | Path) -> tuple[tuple[str, int, int], ...]:
    """``(name, size, mtime_ns)`` of a file, or of each file directly in a folder (a bundle's manifest and
    model, a catalogue folder's tables); empty when there is none. It changes when one is rewritten or
    replaced, which a cache keyed on the path alone would never see."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
    stats = [(file.name, file.stat()) for file in files]
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


#: widest category name written in full beside its bar, in pixels: Streamlit's own bar charts cut names at 100 px
#: ("Video Games & C…" for seven of Rakuten's 27 categories); a longer one is cut, whole in the bar's tooltip
CATEGORY_LABEL_PX = 400


def category_bars(values: pd.Series, title: str, *, unit: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The data and Vega-Lite spec of a horizontal bar per category of ``values`` (indexed by category), in the
    series' order, each bar named by its category in full up to :data:`CATEGORY_LABEL_PX` and its value axis by
    ``title``; values from 0 to 1 (a probability, an F1) on an axis from 0 to 1 when ``unit``: an axis ending at
    the longest bar drew a probability of 0.35 as long as the chart, as if certain."""
    data = pd.DataFrame({"category": values.index.astype(str), "value": values.to_numpy()})
    value_axis: dict[str, Any] = {"field": "value", "type": "quantitative", "title": title}
    if unit:
        value_axis["scale"] = {"domain": [0, 1]}
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {
                "field": "category",
                "type": "nominal",
                "sort": None,
                "title": None,
                "axis": {"labelLimit": CATEGORY_LABEL_PX},
            },
            "x": value_axis,
            "tooltip": [
                {"field": "category", "type": "nominal"},
                {"field": "value", "type": "quantitative", "title": title},
            ],
        },
    }
    return data, spec


def issue_table(issues: Iterable[RowIssue]) -> pd.DataFrame:
    """One row per issue: its source ``row`` (line), ``product_id``, ``field`` and ``message``."""
    return pd.DataFrame([issue.record() for issue in issues], columns=ISSUE_COLUMNS)


def count_and_share(count: int, total: int) -> str:
    """``"3 (0.3%)"``: a count beside its share of ``total``, so that a few products do not read as 0.0%."""
    return f"{count:,} ({count / total:.1%})" if total else f"{count:,}"


# ---------------------------------------------------------------------------------------------- Data page
@dataclass(frozen=True)
class CatalogueSummary:
    """Size and completeness of a catalogue, in products."""

    products: int
    labelled: int
    #: distinct categories among the labelled products, at the level asked for
    categories: int
    #: no photo named, or its file not found by the loader (a file that does not decode still counts as one)
    without_photo_file: int
    without_title: int
    without_description: int


def catalogue_summary(frame: pd.DataFrame, level: int | None) -> CatalogueSummary:
    """Counts of a canonical frame's products and missing fields; ``level`` truncates category paths (None: full)."""
    labelled = frame["category"].dropna()

    def blank(column: str) -> int:
        return sum(not text.strip() for text in strings_or_empty(frame[column]))

    return CatalogueSummary(
        products=len(frame),
        labelled=len(labelled),
        categories=len(set(category_at_level(labelled, level))),
        without_photo_file=int((~has_image(frame)).sum()),
        without_title=blank("title"),
        without_description=blank("description"),
    )


@dataclass(frozen=True)
class LoadedCatalogue:
    """A catalogue read from ``path``."""

    path: str
    #: the :func:`modification_stamp` of its files when read: what is made of it (a predicted sample) holds only
    #: while the path has this stamp
    stamp: tuple[tuple[str, int, int], ...]
    catalog: Catalog
    #: what the loader warned of reading it (columns left unread), which the commands print on the console
    warnings: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: str | Path, stamp: tuple[tuple[str, int, int], ...]) -> LoadedCatalogue:
        """The catalogue at ``path`` loaded (:func:`~prodcat.catalog.loaders.load_catalog`), under ``stamp``, with the
        loader's warnings of this thread."""
        with logged_warnings("prodcat.catalog") as warnings:
            catalog = load_catalog(path)
        return cls(str(path), stamp, catalog, tuple(warnings))


class _ThreadWarnings(logging.Handler):
    """The messages of the warnings logged in the thread that made it: those of another session of the app, each
    in its own thread, are not its own."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def logged_warnings(logger: str) -> Iterator[list[str]]:
    """The messages of the warnings ``logger`` (or one below it) logs in this thread while the block runs."""
    handler = _ThreadWarnings()
    logging.getLogger(logger).addHandler(handler)
    try:
        yield handler.messages
    finally:
        logging.getLogger(logger).removeHandler(handler)


def labels_at(frame: pd.DataFrame, level: int | None) -> pd.Series:
    """Each product's category cut to ``level`` levels, missing (NaN) where it has none; shape ``(n,)``."""
    labelled = frame["category"].notna()
    labels = pd.Series(np.nan, index=frame.index, dtype=object)
    labels[labelled] = category_at_level(frame.loc[labelled, "category"], level)
    return labels


def categories_at(frame: pd.DataFrame, level: int | None) -> pd.Series:
    """Each product's category cut to ``level`` levels, :data:`UNLABELLED` where it has none; shape ``(n,)``."""
    return labels_at(frame, level).fillna(UNLABELLED)


def class_balance(frame: pd.DataFrame, level: int | None) -> pd.Series:
    """Products per category at ``level``, most frequent first (unlabelled products counted as one group)."""
    return categories_at(frame, level).value_counts().rename("products").rename_axis("category")


def text_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Characters in each product's ``title`` and ``description`` (0 when missing), shape ``(n, 2)``."""
    return pd.DataFrame(
        {column: [len(text) for text in strings_or_empty(frame[column])] for column in ("title", "description")},
        index=frame.index,
    )


def length_histogram(lengths: pd.Series, bars: int = 20) -> pd.Series:
    """Products per length bar: indexed by the bar's first length in characters (numeric, so charts keep the order),
    in the audit report's bars (:func:`~prodcat.catalog.audit.inputs.length_bars`): about ``bars`` of a whole number
    of characters each, the last holding the longest 1% of the texts."""
    if not len(lengths):
        return pd.Series([], index=pd.Index([], dtype=int, name="characters"), name="products", dtype=int)
    top, edges = length_bars(lengths.to_numpy(), bars)
    counts, _ = np.histogram(np.minimum(lengths.to_numpy(), top), bins=edges)
    return pd.Series(counts, index=pd.Index(edges[:-1].astype(int), name="characters"), name="products")


def length_caption(field: str, lengths: pd.Series, histogram: pd.Series) -> str:
    """What is said above the ``histogram`` (:func:`length_histogram`) of the ``lengths`` of ``field``: the length
    from which its last bar counts the texts, or that no product has the field (a catalogue without descriptions
    read 'the last bar: 1 characters or more' above one bar at 0 holding every product)."""
    if not lengths.any():
        return f"{field}: no product has one"
    return f"{field} (the last bar: {counted(int(histogram.index[-1]), 'character')} or more)"


def filter_catalogue(
    frame: pd.DataFrame,
    level: int | None,
    category: str | None = None,
    query: str = "",
    photo: bool | None = None,
) -> pd.DataFrame:
    """The products in ``category`` (at ``level``; None: all) whose title or description contains ``query``
    (case-insensitive, literal), with (``photo=True``) or without (``False``) a photo, or either (None)."""
    keep = np.ones(len(frame), dtype=bool)
    if category is not None:
        keep &= (categories_at(frame, level) == category).to_numpy()
    if query.strip():
        needle = query.strip().casefold()
        texts = zip(strings_or_empty(frame["title"]), strings_or_empty(frame["description"]), strict=True)
        keep &= np.fromiter((needle in f"{t}\n{d}".casefold() for t, d in texts), dtype=bool, count=len(frame))
    if photo is not None:
        keep &= has_image(frame) == photo
    return frame[keep]


def thumbnail_uri(source: ImageSource, side: int = THUMBNAIL_SIDE) -> str | None:
    """A product photo as a ``data:image/jpeg`` URI at most ``side`` pixels on its longest side, for an
    image column of a table; None when it cannot be decoded (the grid shows an empty cell)."""
    try:
        image = load_image(source, max_side=side)
    except ImageDecodeError:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def photo_column(paths: Iterable[object], thumbnail: Callable[[str], str | None]) -> list[str | None]:
    """``thumbnail(path)`` for each photo path, None where a product has no photo."""
    return [thumbnail(path) if isinstance(path, str) and path else None for path in paths]


def product_grid(
    frame: pd.DataFrame, level: int | None, thumbnail: Callable[[str], str | None], description_chars: int = 160
) -> pd.DataFrame:
    """One row per product for the browsing grid: ``photo`` (a thumbnail URI from ``thumbnail(path)``, or
    None), ``product_id``, ``title``, ``category`` at ``level``, and the start of the ``description``."""
    return pd.DataFrame(
        {
            "photo": photo_column(frame["image"], thumbnail),
            "product_id": frame["product_id"].to_numpy(),
            "title": strings_or_empty(frame["title"]),
            "category": categories_at(frame, level).to_numpy(),
            "description": [_shorten(d, description_chars) for d in strings_or_empty(frame["description"])],
        }
    )


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------- Model page
def model_overview(manifest: dict[str, Any]) -> pd.Series:
    """The bundle's identity and training set-up, one readable value per field; not the training data's fingerprint,
    64 characters of no space that a table cell cuts at its edge (the page shows it whole, :func:`data_fingerprint`)."""
    config = manifest.get("config", {})
    heads = manifest.get("heads", [])
    # a model of one head fuses nothing, whatever fusion its config names (training says so: 'nothing to fuse')
    fusion = manifest.get("fusion", config.get("fusion")) if len(heads) != 1 else "none: one head, nothing to fuse"
    fields = {
        "version": manifest.get("version"),
        "created": manifest.get("created"),
        "trained on": f"{count_text(manifest['n_train'])} products" if "n_train" in manifest else None,
        # train --feedback: how many of them are the review queue's corrections, and which queue
        "review corrections": feedback_text(manifest["feedback"]) if manifest.get("feedback") else None,
        "categories": count_text(len(manifest.get("labels", []))),
        "category level": config.get("level") or "full path",
        "modalities": ", ".join(modalities_read_by_bundle(manifest)),
        "heads": ", ".join(heads),
        "fusion": fusion,
        "calibration": config.get("calibration"),
        "target precision": config.get("target_precision"),
        "metrics estimated by": manifest.get("metrics", {}).get("estimated_by"),
    }
    return pd.Series({k: str(v) for k, v in fields.items() if v not in (None, "")}, name="value", dtype=object)


def data_fingerprint(manifest: dict[str, Any]) -> str | None:
    """The fingerprint of the bundle's training data, ``None`` when it records none."""
    return str(manifest["data_fingerprint"]) if manifest.get("data_fingerprint") else None


def headline_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Accuracy and F1 scores with their 95% bootstrap intervals, written as the reports and the CLI write them
    (``low–high``, or, of zero width, said to be degenerate; ``–`` where none was recorded): index metric, columns
    value, interval."""
    intervals = metrics.get("intervals", {})
    rows = {
        name: [metrics[name], interval_text(*intervals[name], form="{:.4f}") if name in intervals else "–"]
        for name in ("accuracy", "f1_weighted", "f1_macro")
        if name in metrics
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "95% interval"]).rename_axis("metric")


#: the per-category table's columns of what the decision auto-accepted of each category (:func:`per_class_table`),
#: with their help: a percentage, and counts written as the evaluation report writes them (``3 of 100``), its last
#: column's name the report's. Those of five columns did not fit beside the others on a 1400-pixel screen: the
#: errors were the ones cut off
AUTOMATION_PERCENT = "auto-accepted (%)"
AUTOMATION_COLUMNS: dict[str, str] = {
    AUTOMATION_PERCENT: "Of the category's products, the percentage auto-accepted (right or wrong): the work "
    "automation would take off review.",
    "…of them as another category": "Of the category's products auto-accepted (the second number), those accepted "
    "as another category: errors no one would review.",
    "auto-accepted as it: wrong": "Of the products auto-accepted as this category (the second number), those of "
    "another category: errors no one would review.",
}


def _automation_cells(record: Mapping[str, Any]) -> list[object]:
    """The :data:`AUTOMATION_COLUMNS`' cells of a per_class record (:func:`~prodcat.evaluate.metrics.per_class`)."""
    rate = record["automation_rate"]
    return [
        None if rate is None else 100 * rate,
        f"{record['n_auto_wrong']} of {record['n_auto']}",
        f"{record['n_auto_predicted_wrong']} of {record['n_auto_predicted']}",
    ]


def per_class_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Precision, recall, F1 and support per category, in the evaluation report's order (weakest F1 first and, among
    equals, most products first: :func:`~prodcat.evaluate.report.ranked_per_class`; empty when not recorded); and
    what was auto-accepted of it, the :data:`AUTOMATION_COLUMNS`, when its records say (those of a run that decided:
    :func:`~prodcat.evaluate.report.decided_per_class`)."""
    if not metrics.get("per_class"):
        return pd.DataFrame(columns=["precision", "recall", "f1", "support"])
    records = dict(ranked_per_class(metrics))
    table = pd.DataFrame.from_dict(records, orient="index")[["precision", "recall", "f1", "support"]]
    if decided_per_class(metrics):
        cells = [_automation_cells(record) for record in records.values()]
        table = table.join(pd.DataFrame(cells, index=table.index, columns=list(AUTOMATION_COLUMNS)))
    return table.rename_axis("category")


#: how the :data:`AUTOMATION_COLUMNS` are counted, said after what they were counted on
_AUTOMATION_COUNTED = (
    "the percentage of its products auto-accepted, and how many of those were accepted as another category; of the "
    "products auto-accepted as the category, how many are of another one."
)


def per_class_automation_note(metrics: dict[str, Any]) -> str | None:
    """What to say above the per-category table of ``metrics`` that decided: how its automation columns were
    counted, or that its records do not say (a bundle trained before they did); ``None`` without a decision."""
    if not metrics.get("decision") or not metrics.get("per_class"):
        return None
    if not decided_per_class(metrics):
        return (
            "These records say nothing of what was auto-accepted per category: the bundle was trained by an earlier "
            "prodcat. Train it again to see it."
        )
    return (
        "What the accept-or-review decision auto-accepted of each category, on the same out-of-fold predictions as the "
        f"figures above: {_AUTOMATION_COUNTED}"
    )


def predictions_per_class(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_class_table` of the labelled rows of a predictions ``table``, counted by the reports' own
    :func:`~prodcat.evaluate.metrics.per_class`, auto-accepted where the table's ``decision`` says ``auto``: a
    ``prodcat cv`` table's folds each decided at their own threshold, which no single threshold of the app's
    would reproduce. A product not scored counts in its category's support, as a miss, as the reports count it."""
    labelled = labelled_rows(table)
    predicted = labelled["predicted"].fillna(UNSCORED).astype(str).to_numpy()
    accepted = (labelled["decision"] == "auto").to_numpy()
    records = per_class(labelled["given"].astype(str).to_numpy(), predicted, accepted)
    return per_class_table({"per_class": records})


#: what is said above :func:`predictions_per_class`'s table
PREDICTIONS_PER_CLASS_NOTE = (
    "What the accept-or-review decision of these predictions auto-accepted of each category (their decision column: "
    "in a `prodcat cv` table, each fold's own threshold), counted on all of them whatever the filters above, as the "
    f"evaluation report counts it: {_AUTOMATION_COUNTED}"
)


def levels_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics per hierarchy level (index level 1, 2, ...); empty for flat categories."""
    return pd.DataFrame.from_dict(metrics.get("levels", {}), orient="index").rename_axis("level")


def confidence_figures(confidence: float, threshold: float) -> tuple[str, str]:
    """A prediction's ``confidence`` as a percentage and the decision ``threshold`` as a number, as the Predict page
    shows them side by side, so that they never read against the decision: ``99.9%`` and ``1.000`` (not ``100.0%``)
    for 0.9999999999999996 below a threshold of 1. To 1 decimal of a percent and 3 decimals, correctly rounded at or
    above the threshold; below it the confidence is rounded down, with more decimals where the threshold's rounding
    would meet it (``62.04%`` below ``0.6205``, not ``62.0%`` below ``0.620``)."""
    digits = 3
    # rounded alike, a confidence at or above the threshold never reads below it. A model that accepts nothing has
    # no threshold shown beside it (:func:`decision_sentence`), and one just above 1 would take 16 decimals to tell
    # a confidence of 1 from: '100.00000000000000%'
    if confidence >= threshold or accepts_nothing(threshold):
        return _percent(Decimal(f"{confidence:.{digits}f}"), digits), f"{threshold:.{digits}f}"
    # the confidence as written (repr): 0.58 is not shown as 57.9% for its binary value 0.57999...
    written = Decimal(repr(float(confidence)))
    while True:  # ends: the written confidence lies below the threshold's exact value, which enough digits reach
        shown = written.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_FLOOR)
        limit = f"{threshold:.{digits}f}"
        if shown < Decimal(limit):
            return _percent(shown, digits), limit
        digits += 1


def _percent(share: Decimal, digits: int) -> str:
    """``share`` (a fraction of ``digits`` decimals) as a percentage of ``digits - 2`` decimals."""
    return f"{share * 100:.{digits - 2}f}%"


def decision_sentence(decision: str, confidence: float, threshold: float) -> str:
    """What the Predict page says of a prediction's ``decision`` (``auto`` or ``review``) of this ``confidence`` at
    ``threshold``, written as :func:`confidence_figures` writes it beside the confidence."""
    limit = confidence_figures(confidence, threshold)[1]
    if decision == "auto":
        return f"Auto-accepted: confidence at or above the threshold {limit}."
    if accepts_nothing(threshold):  # "below the threshold 1.000" beside a confidence of 100.0%
        return (
            "Sent to review: this model auto-accepts nothing (at training, no confidence threshold reached "
            "its target precision)."
        )
    return f"Sent to review: confidence below the threshold {limit}."


def decision_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """The accept/review decision and calibration figures, formatted: label -> value, '–' where the manifest
    records none."""
    decision = metrics.get("decision") or {}
    threshold = decision.get("threshold")
    figures = {
        "decision threshold": (threshold, "none: accepts nothing" if accepts_nothing(threshold or 0) else "{:.3f}"),
        "auto-accepted": (decision.get("automation_rate"), "{:.1%}"),
        "precision among auto-accepted": (decision.get("auto_precision"), "{:.3f}"),
        "ECE (0 = calibrated)": ((metrics.get("calibration") or {}).get("ece"), "{:.3f}"),
    }
    return {label: "–" if value is None else form.format(value) for label, (value, form) in figures.items()}


def auto_precision_caption(metrics: dict[str, Any]) -> str | None:
    """How sure the precision among the auto-accepted is, in the words of the reports and the command line
    (:func:`~prodcat.evaluate.report.auto_precision_note`): ``Precision among auto-accepted: 9 of 812 wrong; 95%
    interval 0.979–0.994.``; ``None`` when the bundle records no interval (none accepted, or trained before it
    was recorded)."""
    note = auto_precision_note(metrics.get("decision") or {})
    return f"Precision among auto-accepted: {note}." if note else None


def reliability_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The reliability diagram's points: per confidence bin its ``lower``/``upper`` edges, mean
    ``confidence``, ``accuracy``, product ``count`` and ``gap`` = accuracy - confidence
    (negative: over-confident). Empty when the manifest has no calibration record."""
    bins = metrics.get("calibration", {}).get("bins", [])
    table = pd.DataFrame(bins, columns=["lower", "upper", "confidence", "accuracy", "count"])
    return table.assign(gap=table["accuracy"] - table["confidence"])


# ---------------------------------------------------------------------------------------------- Predict page
def described(description: str, specifications: str) -> str:
    """The description the model reads: followed by the specifications typed one ``Key: value`` per line
    (a line without a key gives its value alone), written as the Flipkart loader writes its table."""
    pairs = []
    for line in specifications.splitlines():
        key, colon, value = line.partition(":")
        pairs.append((key.strip(), value.strip()) if colon and key.strip() else (None, line.strip()))
    return with_specifications(description, specification_text(pairs))


def text_refusal(title: str, description: str) -> str | None:
    """Why the Predict page refuses the texts typed, as the REST API refuses them (422 ``max_text_chars``): the title,
    or the ``description`` with its specifications (as :func:`described` makes it), longer than
    :data:`MAX_TEXT_CHARS`; ``None`` when neither is. Each field alone may hold that many characters: the
    description and its specifications together may not."""
    over = text_over_limit(title, description, MAX_TEXT_CHARS)
    if over is None:
        return None
    name, length = over
    what = "title" if name == "title" else "description with its specifications"
    return (
        f"The {what} is {length:,} characters long, over the limit of {MAX_TEXT_CHARS:,} (the REST API's "
        "max_text_chars, which would refuse it too): shorten it."
    )


def check_photo(data: bytes, name: str) -> Image.Image:
    """A preview (at most :data:`PREVIEW_SIDE` px) of an uploaded photo, checked with the REST API's limits.

    Raises:
        ValueError: naming the file and the reason (empty, too large, not an image, corrupt, too many pixels).
    """
    try:
        return load_image(data, max_side=PREVIEW_SIDE, max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageDecodeError as exc:
        raise ValueError(f"{name}: {exc.reason}") from exc


def nothing_read(model_modalities: Sequence[str], given: Sequence[str]) -> str:
    """What the Predict page says of a product the model could read nothing of: why a model reading
    ``model_modalities`` read none of the modalities ``given`` (``text``, ``image``), see :func:`why_nothing_read`."""
    reasons = why_nothing_read(model_modalities, text="text" in given, photo="image" in given)
    return " ".join(["Nothing to classify: the model could read none of this product.", *map(_as_sentence, reasons)])


def top_k_table(top_k: Sequence[Mapping[str, Any]]) -> pd.Series:
    """A prediction's most probable categories (its ``top_k``) and their probabilities (0-1), most probable first."""
    return pd.Series(
        {entry["category"]: entry["probability"] for entry in top_k}, name="probability", dtype=float
    ).rename_axis("category")


def top_k_entries(cell: object) -> list[dict[str, Any]] | None:
    """The top categories in a predictions table's ``top_k`` cell, the JSON list ``prodcat predict`` writes
    (``[{"category": ..., "probability": ...}, ...]``); ``None`` when the cell holds no such list (left empty, or
    a hand-made table's text)."""
    if not isinstance(cell, str):
        return None
    try:
        entries = json.loads(cell)
    except ValueError:
        return None

    def is_entry(entry: object) -> bool:
        return (
            isinstance(entry, dict)
            and isinstance(entry.get("category"), str)
            and isinstance(entry.get("probability"), int | float)
            and not isinstance(entry.get("probability"), bool)
        )

    return entries if isinstance(entries, list) and all(map(is_entry, entries)) else None


def top_k_text(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """Top categories (:func:`top_k_entries`) as a person reads them in a table cell, ``Watches 0.912 · Kitchen
    0.051``, where the cell showed their JSON (``[{"category": "Watches", "probability": 0.9118...}, ...]``)."""
    return " · ".join(f"{entry['category']} {entry['probability']:.3f}" for entry in entries) or None


def word_weights_table(words: WordExplanation, k: int = 10) -> pd.DataFrame:
    """The ``k`` words that support the predicted category most, then the ``k`` that pull away most (fewer
    when the text has fewer): ``word``, ``weight`` (drop of the category's probability when removed),
    ``runner_up_weight``, ``occurrences``, strongest support first."""
    columns = ["word", "weight", "runner_up_weight", "occurrences"]
    table = pd.DataFrame([asdict(w) for w in words.words], columns=columns)
    table = table.sort_values("weight", ascending=False, kind="stable")
    against = table[table["weight"] < 0].tail(k)
    return pd.concat([table[table["weight"] >= 0].head(k), against]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- Predictions page
class PredictionsFormatError(ValueError):
    """A predictions table the app cannot read: the message names the file, the columns or the products."""


@dataclass(frozen=True)
class Predictions:
    """A :func:`normalise_predictions` table, and what went wrong reading or making it (rows of a CSV
    skipped; products of a sample not scored or read in part)."""

    table: pd.DataFrame
    issues: list[RowIssue]
    #: each product's top categories by its id, read once from the table's ``top_k`` JSON (:func:`top_k_entries`),
    #: which the table then holds as text (:func:`top_k_text`; a cell of no such list as it is)
    top_k: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if "top_k" not in self.table:
            return
        cells = self.table["top_k"].tolist()
        entries = list(map(top_k_entries, cells))
        ids = self.table["product_id"]
        object.__setattr__(self, "top_k", {id_: read for id_, read in zip(ids, entries, strict=True) if read})
        texts = [cell if read is None else top_k_text(read) for cell, read in zip(cells, entries, strict=True)]
        object.__setattr__(self, "table", self.table.assign(top_k=texts))


def normalise_predictions(table: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """A ``prodcat predict`` CSV (``category`` = the prediction) or a ``prodcat cv`` ``predictions.csv``
    (``category`` = the given label, ``predicted``) as one shape: ``product_id, predicted, confidence,
    decision`` and, when known, ``given``; other columns are kept, but for an ``image`` column (dropped). Blank
    cells are missing ones: the CSV reader keeps an empty cell as ``""``, and ``predict_catalog`` writes ``""`` as
    the category of a product it could not score.

    Raises:
        PredictionsFormatError: a required column is missing or there twice, a product_id blank or repeated, or a
            confidence not a number in [0, 1].
    """
    # photos come from the catalogue, typed under the folders the app may open: an `image` column in the file (which
    # `prodcat predict` and `prodcat cv` do not write) made the app read and show any photo of the server's disk
    table = table.drop(columns="image", errors="ignore").replace({"": None})
    if {"category", "predicted", "given"} <= set(table.columns):  # two columns named given: every figure fails
        raise PredictionsFormatError(
            f"{source}: both a category and a given column beside predicted, where category is the given one (as "
            "in a `prodcat cv` predictions.csv); keep one of them"
        )
    table = table.rename(columns={"category": "given"} if "predicted" in table else {"category": "predicted"})
    missing = [c for c in ("product_id", "predicted", "confidence", "decision") if c not in table]
    if missing:
        raise PredictionsFormatError(
            f"{source}: missing column(s) {', '.join(missing)}; expected the output of `prodcat predict` "
            "(product_id, category, confidence, decision, ...) or a `prodcat cv` predictions.csv"
        )
    # read as the text 'None', a blank id would be matched to no product, or two of them called one product twice
    if unnamed := int(table["product_id"].isna().sum()):
        raise PredictionsFormatError(
            f"{source}: {unnamed:,} row(s) without a product_id: each row is the prediction of a product, named by "
            "its id (prodcat predict and cv write one on every row)"
        )
    confidence = pd.to_numeric(table["confidence"], errors="coerce")
    # a product `prodcat predict` could not score has no confidence, and says why in its `error`
    unscored = confidence.isna() & _has_error(table)
    bad = ~confidence.between(0, 1) & ~unscored
    if bad.any():
        ids = ", ".join(table.loc[bad, "product_id"].astype(str).head(5))
        raise PredictionsFormatError(f"{source}: {bad.sum():,} confidence(s) not a number in [0, 1] (products {ids})")
    product_ids = table["product_id"].astype(str)
    # prodcat writes one row per product (the loaders rename a repeated id); two runs pasted together would have
    # every figure of the page count their products twice
    if (repeated := product_ids[product_ids.duplicated()].unique()).size:
        ids = ", ".join(map(repr, repeated[:5])) + (", ..." if repeated.size > 5 else "")
        raise PredictionsFormatError(
            f"{source}: {repeated.size:,} product id(s) on more than one row ({ids}): every figure would count them "
            "twice; keep one row per product (prodcat predict and cv write one)"
        )
    return table.assign(product_id=product_ids, confidence=confidence)


def _has_error(table: pd.DataFrame) -> pd.Series:
    """Rows whose ``error`` column (``prodcat predict``'s) says why they were not scored."""
    if "error" not in table:
        return pd.Series(False, index=table.index)
    return table["error"].fillna("").astype(str).str.strip() != ""


def read_predictions(path: Path, name: str | None = None) -> Predictions:
    """Read and :func:`normalise_predictions` a predictions CSV, as the catalogue loaders read theirs: a row
    that does not parse is skipped and reported, lines that are not UTF-8 are read as Windows-1252 (said).
    ``name``: what messages call the file (default: its path).

    Raises:
        PredictionsFormatError: no such file, a folder, an empty file, a header line alone, or what
            :func:`normalise_predictions` refuses.
    """
    name = name or str(path)
    if not path.exists():
        raise PredictionsFormatError(f"{name}: no such file")
    if path.is_dir():
        raise PredictionsFormatError(f"{name}: a folder; give the predictions CSV in it")
    # the reader names the file by its path in an error, by its file name in a row issue: an upload's are those of a
    # temporary file
    try:
        read = read_csv_table(path)
    except CatalogFormatError as exc:
        raise PredictionsFormatError(str(exc).replace(str(path), name)) from None
    issues = [replace(issue, problem=issue.problem.replace(path.name, Path(name).name, 1)) for issue in read.issues]
    table = normalise_predictions(read.frame.reset_index(drop=True), name)
    # rows skipped (bad quoting, a wrong count of fields) are said by their issues; a file's own issue (its
    # encoding) says nothing of the predictions missing
    if table.empty and not any(issue.field == "row" for issue in issues):
        raise PredictionsFormatError(f"{name}: no prediction in it, its header line alone")
    return Predictions(table, issues)


def read_uploaded_predictions(data: bytes, name: str) -> Predictions:
    """:func:`read_predictions` of an uploaded CSV's bytes (the loaders' reader reads files)."""
    with tempfile.TemporaryDirectory(prefix="prodcat-upload-") as folder:
        path = Path(folder) / "predictions.csv"
        path.write_bytes(data)
        return read_predictions(path, name)


def predict_sample(
    predictor: Predictor,
    catalog: Catalog,
    size: int,
    seed: int = 0,
    chunk_size: int = 64,
    on_progress: Callable[[float], None] | None = None,
) -> Predictions:
    """Predict ``size`` products drawn at random (by ``seed``) from the catalogue (all of them if fewer),
    ``chunk_size`` at a time; ``on_progress`` gets the fraction done (0-1) after each chunk. The issues, by their
    line in the catalogue, are those ``prodcat predict`` lists for the model of the catalogue as a whole (no product
    id: its photo folder not found, its encoding) and of the products drawn (what reading them found: a photo not
    found, a text cut; the photos not used, with why), and the products not scored (which predict says in its error
    column)."""
    frame = catalog.frame
    positions = np.random.default_rng(seed).choice(len(frame), size=min(size, len(frame)), replace=False)
    sample = frame.iloc[positions]
    report = None if on_progress is None else (lambda done: on_progress(done / len(sample)))
    predicted = predict_catalog(predictor, sample, chunk_size, on_chunk=report, progress=False)
    read_by = modalities_read_by_bundle(predictor.manifest)
    drawn = set(sample["product_id"].astype(str))
    # an issue of no product concerns them all: without it, a sample read from text alone (no photo folder) says nothing
    issues = [
        issue
        for issue in issues_of_the_run(catalog.issues, read_by)
        if issue.product_id is None or issue.product_id in drawn
    ]
    issues += [
        RowIssue(catalog.line_of(position), "prediction", f"not scored: {error}", product_id)
        for position, product_id, error in zip(positions, predicted["product_id"], predicted["error"], strict=True)
        if error
    ]
    if "image" in read_by:
        issues += unused_photo_issues(catalog, predicted)
    return Predictions(normalise_predictions(predicted, "sample"), sorted(issues, key=lambda issue: issue.row))


def predictions_level(predicted: pd.Series, labels: Sequence[str], model_level: int | None) -> int | None:
    """The category level of the ``predicted`` categories, to cut the given ones to: the loaded model's
    ``model_level`` when they can be its own (each one of its ``labels``, or as deep as the deepest of them),
    else the number of levels of the deepest (a CSV written by a model of another level)."""
    categories = pd.Series(predicted.dropna().unique(), dtype=object)
    levels = depth(categories)
    if categories.isin(labels).all() or levels == depth(labels):
        return model_level
    return levels


def level_note(level: int | None, model_level: int | None, own_labels: bool) -> str | None:
    """What to say when the predictions are at another category ``level`` than the model's (``None``: they are
    not); ``own_labels``: the table brings its given categories (a ``prodcat cv`` one)."""
    if level == model_level:
        return None
    compared = "its own given categories" if own_labels else f"the given categories cut to {_level_words(level)}"
    return (
        f"These predictions are categories at {_level_words(level)}, the model's at {_level_words(model_level)}: "
        f"another model made them. They are compared with {compared}; {_NOT_THE_MODELS}"
    )


#: why the warnings about the model are left out of another model's predictions
_NOT_THE_MODELS = (
    "what is said of the model (categories it does not know, products it was trained on) does not apply to them and "
    "is left out."
)


def _level_words(level: int | None) -> str:
    return "full paths" if level is None else f"level {level}"


def other_model_note(predicted: pd.Series, labels: Sequence[str]) -> str | None:
    """What to say when none of the ``predicted`` categories, at the model's level, is one of its ``labels`` (another
    model's, of the same depth); ``None`` when one is, or nothing was predicted."""
    categories = set(predicted.dropna())
    if not categories or not categories.isdisjoint(labels):
        return None
    return f"None of these predicted categories is one of the model's: another model made them; {_NOT_THE_MODELS}"


def unknown_predictions_note(table: pd.DataFrame, known: Iterable[str]) -> str | None:
    """What to say when none of the categories ``table`` predicts is ``known`` (the model's labels, the catalogue's
    categories) or one of its given categories: none can agree with a given one, whatever the products (codes of
    another model, of another catalogue); ``None`` when one of them is, or nothing was predicted."""
    predicted = sorted(map(str, table["predicted"].dropna().unique()))
    known = {*known, *labelled_rows(table).get("given", ())}
    if not predicted or any(category in known for category in predicted):
        return None
    examples = ", ".join(map(repr, predicted[:5])) + (", ..." if len(predicted) > 5 else "")
    return (
        f"None of the {len(predicted):,} predicted categories ({examples}) is a category of the model or a given one: "
        "none of these predictions can agree with a given category, whatever the products. Were they written in "
        "other codes (another model's, another catalogue's)?"
    )


def attach_catalogue(table: pd.DataFrame, frame: pd.DataFrame, level: int | None) -> pd.DataFrame:
    """Predictions with each product's ``title``, ``image`` path and, unless the table has its own, its
    ``given`` category cut to ``level``, that of the predictions (:func:`predictions_level`), missing for
    products absent from the catalogue or unlabelled."""
    known = pd.DataFrame(
        {
            "product_id": frame["product_id"].astype(str),
            "title": strings_or_empty(frame["title"]),
            "image": frame["image"].to_numpy(),
        }
        | ({} if "given" in table else {"given": labels_at(frame, level).to_numpy()})
    )
    return table.drop(columns=["title", "image"], errors="ignore").merge(known, on="product_id", how="left")


def filter_predictions(
    table: pd.DataFrame,
    decisions: Iterable[str] = (),
    categories: Iterable[str] = (),
    confidence: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """Rows whose decision is in ``decisions`` and predicted category in ``categories`` (empty: any), and
    whose confidence lies in the closed ``confidence`` range (a product not scored counts as 0)."""
    keep = table["confidence"].fillna(0.0).between(*confidence)
    if decisions := list(decisions):
        keep &= table["decision"].isin(decisions)
    if categories := list(categories):
        keep &= table["predicted"].isin(categories)
    return table[keep]


def labelled_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The predictions whose product has a given category."""
    return table[table["given"].notna()] if "given" in table else table.iloc[0:0]


def compared_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The predictions whose product has a given category and a predicted one: a product `prodcat predict` could
    not score has no prediction to agree or disagree with."""
    labelled = labelled_rows(table)
    return labelled[labelled["predicted"].notna()]


def agreement(table: pd.DataFrame) -> float | None:
    """Share (0-1) of the :func:`compared_rows` whose prediction equals the given category; None when there is
    none (no labels, or no labelled product scored)."""
    compared = compared_rows(table)
    return float((compared["given"] == compared["predicted"]).mean()) if len(compared) else None


def small_sample_caveat(compared: int) -> str | None:
    """What to say of an agreement measured on ``compared`` products (labelled and scored) too few for it to mean much:
    fewer than :data:`~prodcat.evaluate.labelled.SMALL_EVALUATION`, the number below which ``prodcat evaluate`` warns
    of its figures; ``None`` when there are enough, or none (no agreement is shown)."""
    if not compared or compared >= SMALL_EVALUATION:
        return None
    products = "product was" if compared == 1 else "products were"
    return (
        f"Only {compared:,} labelled {products} scored: an agreement measured on so few is too uncertain to rely "
        f"on (each product moves it by {100 / compared:.1f} points); score at least {SMALL_EVALUATION} labelled "
        "products."
    )


def confusion_table(table: pd.DataFrame) -> pd.DataFrame:
    """Products per given category (rows) and predicted category (columns), on the labelled rows."""
    labelled = labelled_rows(table)
    return pd.crosstab(labelled["given"], labelled["predicted"]).rename_axis(index="given", columns="predicted")


def with_photos(table: pd.DataFrame, thumbnail: Callable[[str], str | None], columns: Iterable[str]) -> pd.DataFrame:
    """A ``photo`` column of thumbnails (None without an ``image`` path), then those of ``columns`` the
    table has."""
    view = table[[c for c in columns if c in table]].copy()
    view.insert(0, "photo", photo_column(table["image"], thumbnail) if "image" in table else None)
    return view


def confident_disagreements(table: pd.DataFrame, min_confidence: float) -> pd.DataFrame:
    """Label-noise candidates: labelled products predicted as another category with confidence at least
    ``min_confidence``, most confident first."""
    labelled = labelled_rows(table)
    wrong = labelled[(labelled["given"] != labelled["predicted"]) & (labelled["confidence"] >= min_confidence)]
    return wrong.sort_values("confidence", ascending=False)


def least_confidence_auto_accepted(table: pd.DataFrame, threshold: float) -> float:
    """The least confidence from which every disagreement ``table`` auto-accepted is a label-noise candidate (the
    Predictions page's default): the model's ``threshold``, or lower where the table auto-accepted a product below it
    (a ``prodcat cv`` table, each fold deciding at its own; another model's); at most 1 (a model that auto-accepts
    nothing has a threshold just above it)."""
    auto = table.loc[table["decision"] == "auto", "confidence"].dropna()
    return float(min(threshold, auto.min() if len(auto) else threshold, 1.0))


def disagreements_caption(count: int, listed: int, photos: bool, auto: int = 0) -> str:
    """What is said above the ``count`` confident disagreements, of which the ``listed`` most confident are shown and
    ``auto`` were auto-accepted (the errors no one would have reviewed); ``photos``: whether one of those shown has a
    photo (none has, in a catalogue without photos or without one)."""
    if not count:
        return "None: no labelled product is predicted as another category with at least this confidence."
    if count == 1:
        return ("1 product, with its photo" if photos else "1 product") + (
            "; auto-accepted." if auto else "; left for review."
        )
    their_photo = " with their photo" if photos else ""
    if count <= listed:
        said = f"{count:,} products, most confident first{',' if photos else ''}{their_photo}"
    else:
        said = f"{count:,} products; the {listed:,} most confident{their_photo or ' listed'}"
    return f"{said}; {'all' if auto == count else 'none' if not auto else f'{auto:,}'} of them auto-accepted."


def catalogue_warnings(table: pd.DataFrame, frame: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    """Why the figures of ``table`` (predictions with :func:`attach_catalogue`'s columns) may not mean what they
    seem: predicted products missing from the catalogue ``frame``, given categories the model (of ``labels``;
    ``None``: another model's predictions, not compared) does not predict."""
    unknown = None if labels is None else unknown_categories_warning(labelled_rows(table)["given"], labels)
    return [warning for warning in (_missing_ids(table, frame), unknown) if warning]


def catalogue_products_in_training(
    product_ids: pd.Series, frame: pd.DataFrame, manifest: dict[str, Any], bundle_dir: str | Path
) -> InTraining:
    """How many of the labelled products of the catalogue ``frame`` scored (their ``product_ids``, those whose
    agreement the page shows, :func:`compared_rows`) the bundle at ``bundle_dir``, of this ``manifest``, was trained
    on."""
    return products_in_training(_labelled_among(frame, product_ids), manifest, bundle_dir, catalogue=frame)


def in_training_among(found: InTraining, frame: pd.DataFrame, searched: pd.Series, shown: pd.Series) -> InTraining:
    """``found``, :func:`catalogue_products_in_training` of the products ``searched`` in the catalogue ``frame``,
    cut to those of them whose product_id is one of ``shown`` (the rows the filters keep, of which the agreement is
    measured): no product is looked for again."""
    kept = _labelled_among(frame, searched)["product_id"].astype(str).isin(shown.astype(str)).to_numpy()
    return InTraining.of(None if found.mask is None else found.mask[kept], int(kept.sum()))


def marked_in_training(shown: pd.DataFrame) -> InTraining | None:
    """Of the products whose agreement is shown (:func:`compared_rows` of the filtered rows ``shown``), those a
    ``prodcat evaluate`` predictions.csv marks as in the training data of the model that made it (its ``in_training``
    column, ``True`` or ``False``); ``None`` for a table without that mark on every one of them (``prodcat predict``'s
    and ``prodcat cv``'s have none)."""
    if "in_training" not in shown:
        return None
    marks = compared_rows(shown)["in_training"].astype(str).str.strip().str.lower()
    if not marks.isin(("true", "false")).all():
        return None
    return InTraining.of((marks == "true").to_numpy(), len(marks))


def _labelled_among(frame: pd.DataFrame, product_ids: pd.Series) -> pd.DataFrame:
    """The labelled products of the catalogue ``frame`` whose product_id is one of ``product_ids``, in its order."""
    labelled = frame[frame["category"].notna()]
    return labelled[labelled["product_id"].astype(str).isin(product_ids.astype(str))]


def in_training_caveats(found: InTraining) -> list[str]:
    """What to say of the products predicted the model was trained on (some, all, or no telling: a bundle that
    recorded none, beside products other than its whole training catalogue), as sentences: the command line prints
    the same caveats as clauses after 'warning: '."""
    return [_as_sentence(caveat) for caveat in (found.warning, found.unchecked) if caveat]


def _as_sentence(clause: str) -> str:
    return clause[:1].upper() + clause[1:] + ("" if clause.endswith((".", "?")) else ".")


def _missing_ids(table: pd.DataFrame, frame: pd.DataFrame) -> str | None:
    found = table["product_id"].isin(frame["product_id"].astype(str))
    if found.all():
        return None
    if not found.any():
        return (
            f"None of the {len(table):,} predicted products is in the catalogue (no product_id in common): were they "
            "predicted from another one? Nothing of them comes from it (title, photo, given category: –)."
        )
    return (
        f"{count_and_share(int((~found).sum()), len(table))} of the predicted products are not in the catalogue: "
        "nothing of them comes from it (title, photo, given category: –)."
    )

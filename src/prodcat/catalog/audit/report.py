"""The audit's report folder: ``audit.json``, the self-contained ``audit.html`` with its charts, and the whole
lists it shows the first rows of."""

from __future__ import annotations

import base64
import io
import itertools
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from prodcat.catalog.audit.duplicates import TEXT_DUPLICATE_COLUMNS
from prodcat.catalog.audit.inputs import MAX_EXAMPLES, photo_issue_frame, records_table
from prodcat.catalog.audit.labels import LABEL_ISSUE_COLUMNS
from prodcat.catalog.schema import RowIssue
from prodcat.figures import figure_data_uri, figure_fonts
from prodcat.files import write_csv, write_json, written_together
from prodcat.grouping import SPELLING_DIFFERENCES
from prodcat.report_style import report_environment

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis

#: the whole lists of the report folder, beside audit.json and audit.html
INPUT_ISSUES_CSV = "input_issues.csv"
LABEL_ISSUES_CSV = "label_issues.csv"
PHOTO_ISSUES_CSV = "photo_issues.csv"
TEXT_DUPLICATES_CSV = "text_duplicates.csv"
#: the lists written when they have rows, removed otherwise (a folder would keep another run's)
_LISTS = (INPUT_ISSUES_CSV, TEXT_DUPLICATES_CSV, PHOTO_ISSUES_CSV, LABEL_ISSUES_CSV)
#: the files an audit writes or removes in its report folder
AUDIT_FILES = ("audit.json", "audit.html", *_LISTS)
#: the audit's whole lists of products written as CSVs, by file: their section and key in the audit, and their table.
#: audit.json and audit.html sum them up (:func:`audit_summary`): they grow with the catalogue (a 20,000-product
#: catalogue's duplicate texts made a 10 MB audit.json)
_WHOLE_LISTS: dict[str, tuple[str, str, Callable[[list[dict[str, Any]]], pd.DataFrame]]] = {
    TEXT_DUPLICATES_CSV: (
        "duplicates",
        "members",
        lambda rows: records_table(rows, TEXT_DUPLICATE_COLUMNS, ["first_differing_level"]),
    ),
    PHOTO_ISSUES_CSV: ("images", "issues", photo_issue_frame),
}


def write_audit_report(result: dict[str, Any], out_dir: str | Path, issues: Sequence[RowIssue] = ()) -> list[Path]:
    """Write ``audit.json`` and the self-contained ``audit.html`` in ``out_dir``, and the lists to act on, whole
    (the report shows their first rows): ``input_issues.csv``, the loader ``issues``, ``text_duplicates.csv``, every
    product of a duplicate text group (:func:`~prodcat.catalog.audit.duplicates.duplicate_members`),
    ``photo_issues.csv``, the flagged photos (:func:`~prodcat.catalog.audit.inputs.photo_issues`), and
    ``label_issues.csv``, the suspected mislabels, most suspicious first. Return the paths written (JSON, HTML, then
    the CSVs). A list
    with nothing to hold is removed: the folder would keep another run's. Written whole or not at all
    (:func:`~prodcat.files.written_together`): a failure or Ctrl-C while writing leaves an earlier report whole.

    ``audit.json`` and ``audit.html`` hold :func:`audit_summary`: the CSVs' lists counted, not copied."""
    folder = Path(out_dir)
    with written_together(folder, _LISTS) as staging:
        names = _write_audit_files(result, staging, issues)
    return [folder / name for name in names]


def _write_audit_files(result: dict[str, Any], out_dir: Path, issues: Sequence[RowIssue]) -> list[str]:
    """:func:`write_audit_report`'s files, written in the folder ``out_dir``; their names, in its order."""
    from prodcat.evaluate.report import write_issues

    summary = audit_summary(result)
    write_json(out_dir / "audit.json", summary)
    written = ["audit.json", "audit.html"]
    if issues:
        write_issues(issues, out_dir / INPUT_ISSUES_CSV)
        written.append(INPUT_ISSUES_CSV)
    for name, (section, key, table) in _WHOLE_LISTS.items():
        if rows := result.get(section, {}).get(key):
            write_csv(out_dir / name, table(rows))
            written.append(name)
    labels = result.get("labels")
    if labels and not labels.get("skipped"):
        write_csv(out_dir / LABEL_ISSUES_CSV, pd.DataFrame(labels["issues"], columns=list(LABEL_ISSUE_COLUMNS)))
        written.append(LABEL_ISSUES_CSV)
    env = report_environment("prodcat.catalog")
    env.filters["thumbnail"] = thumbnail
    env.filters["pct"] = lambda x: f"{100 * x:.1f} %"
    html = env.get_template("audit.html.j2").render(
        audit=summary, charts=_charts(result), spelling_differences=SPELLING_DIFFERENCES
    )
    (out_dir / "audit.html").write_text(html, encoding="utf-8")
    return written


def audit_summary(result: dict[str, Any]) -> dict[str, Any]:
    """:func:`~prodcat.catalog.audit.core.audit_catalog`'s ``result`` as ``audit.json`` keeps it, of a size that does
    not grow with the catalogue: each whole list written as a CSV (``duplicates.members``, ``images.issues``) becomes
    ``{"rows": its length, "file": the CSV's name (None when it has no row, and no CSV is written), "first": its first
    MAX_EXAMPLES rows}``; the rest as it is (``labels.issues`` too, whole)."""
    summary = dict(result)
    for name, (section, key, _) in _WHOLE_LISTS.items():
        if key in result.get(section, {}):
            rows = result[section][key]
            listed = {"rows": len(rows), "file": name if rows else None, "first": rows[:MAX_EXAMPLES]}
            summary[section] = summary[section] | {key: listed}
    return summary


def thumbnail(path: str | None, side: int = 96) -> str:
    """A small JPEG of the photo as a ``data:`` URI ("" when there is no readable photo)."""
    from prodcat.image.decode import ImageDecodeError, load_image

    if not path:
        return ""
    try:
        img = load_image(path, max_side=side)
    except ImageDecodeError:
        return ""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _charts(result: dict[str, Any]) -> dict[str, str]:
    """Charts of the audit as PNG ``data:`` URIs, by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}
    # level -> its 40 largest classes, charted up to 100 classes
    charted = {
        name: list(level["counts"])[:40]
        for name, level in result["classes"]["levels"].items()
        if level["counts"] and level["n_classes"] <= 100
    }
    drawn = {name: [textwrap.shorten(label, 60) for label in labels] for name, labels in charted.items()}
    with figure_fonts(itertools.chain.from_iterable(drawn.values()), "the class charts"):
        for name, labels in charted.items():
            counts = result["classes"]["levels"][name]["counts"]
            fig, ax = plt.subplots(figsize=(8, 0.25 * len(labels) + 1))
            # numeric positions: class names such as "10" must not be read as numbers by matplotlib
            ax.barh(range(len(labels)), [counts[k] for k in labels][::-1])
            ax.set_yticks(range(len(labels)), drawn[name][::-1], parse_math=False)
            _counts_products(ax.xaxis)
            ax.set_title(f"classes at level {name}" + (" (40 largest)" if len(counts) > 40 else ""))
            charts[f"classes_{name}"] = figure_data_uri(fig, dpi=90)
    histograms = [
        (field, unit, result["text"][field][unit])
        for field in ("title", "description")
        for unit in ("chars", "words")
        if result["text"][field][unit]
    ]
    if histograms:
        # two a row, a field's chars beside its words: four in a row (a catalogue with descriptions) drew 1,430 px,
        # wider than the report's column, the description words cut off at the window's edge
        rows, columns = -(-len(histograms) // 2), min(len(histograms), 2)
        fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
        for ax in axes.ravel()[len(histograms) :]:  # an odd count leaves a cell empty
            ax.set_visible(False)
        for ax, (field, unit, stats) in zip(axes.ravel(), histograms, strict=False):
            measured = {"chars": "characters", "words": "words"}[unit]
            _histogram(ax, stats["histogram"], f"{measured} (the longest 1% in the last bar)")
            ax.set_title(f"{field} length")
        fig.tight_layout()
        charts["text_lengths"] = figure_data_uri(fig, dpi=90)
    languages = result["languages"]["counts"]
    if languages:
        fig, ax = plt.subplots(figsize=(5, 2.5))
        ax.bar(range(len(languages)), list(languages.values()))
        ax.set_xticks(range(len(languages)), list(languages))
        _counts_products(ax.yaxis)
        ax.set_title("languages")
        charts["languages"] = figure_data_uri(fig, dpi=90)
    quality = result.get("images", {}).get("quality")
    if quality:
        fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
        for ax, key in zip(axes, ("blur", "border_ratio"), strict=True):
            _histogram(ax, quality[key]["histogram"], _QUALITY_UNITS[key])
            ax.set_title({"blur": "detail (low: blurry or plain)", "border_ratio": "white border"}[key])
        fig.tight_layout()
        charts["image_quality"] = figure_data_uri(fig, dpi=90)
    return charts


#: the x axis of each photo score's histogram: what the score measures
_QUALITY_UNITS = {
    "blur": "Laplacian variance (the highest 1% in the last bar)",
    "border_ratio": "share of the photo's area outside its non-white box",
}


def _histogram(ax: Axes, histogram: dict[str, list[float]], measured: str) -> None:
    """The bars of an audit ``histogram`` (its ``edges`` and ``counts`` of products) on ``ax``, the x axis saying
    what is ``measured``, the y axis the products counted."""
    edges = np.asarray(histogram["edges"])
    ax.bar(edges[:-1], histogram["counts"], width=np.diff(edges), align="edge")
    ax.set_xlabel(measured)
    _counts_products(ax.yaxis)


def _counts_products(axis: Axis) -> None:
    """Label ``axis`` as a count of products, with whole-number ticks: 2.5 products read as a rounding error."""
    from matplotlib.ticker import MaxNLocator

    axis.set_label_text("products")
    axis.set_major_locator(MaxNLocator(integer=True))

"""Evaluation reports: ``metrics.json``, the per-product predictions, confusion matrix and reliability diagram
PNGs and one self-contained HTML page (``prodcat evaluate``, ``prodcat cv``); the robustness report."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from prodcat.catalog.schema import ISSUE_COLUMNS, SEP, RowIssue, distinguishing_tails, split_path
from prodcat.evaluate.metrics import HEADLINE_METRICS, UNSCORED
from prodcat.evaluate.robustness import TEXT_AND_PHOTO
from prodcat.figures import figure_fonts
from prodcat.files import write_csv, write_json, written_together
from prodcat.formatting import counted
from prodcat.models.decision import accepts_nothing
from prodcat.report_style import PAGE_CSS

#: true categories the confusion matrix shows at most (the most frequent)
CONFUSION_ROWS = 60
#: characters of a category name on a figure's axis
LABEL_WIDTH = 40
#: true categories up to which the confusion matrix writes its shares in the cells (beyond, a colour bar reads them)
ANNOTATED_ROWS = 30
#: a reliability bin of fewer products is drawn hollow: its accuracy is too noisy to read
SPARSE_BIN = 10
#: the predicted "category" of the products the model could not score, in the confusion counts
NOT_SCORED = "(not scored)"
#: input issues listed on the page (all of them are in input_issues.csv)
ISSUES_SHOWN = 100
#: the files a report writes, or removes, in its folder: those of :func:`write_report` (``prodcat evaluate``, ``prodcat
#: cv``), :func:`write_robustness_report` and ``prodcat explain``'s
EVALUATION_FILES = (
    "metrics.json",
    "predictions.csv",
    "input_issues.csv",
    "confusion_matrix.png",
    "reliability.png",
    "report.html",
)
#: beside the report of a robustness run that did not finish (Ctrl-C, a crash): what a re-run must match to take up
#: its rows
ROBUSTNESS_RESUME = "robustness.resume.json"
ROBUSTNESS_FILES = ("robustness.json", "robustness.png", "report.html", ROBUSTNESS_RESUME)
EXPLAIN_FILES = ("explanations.json", "report.html")
#: the file that tells each command's report, and the command: a folder holding another command's report is refused,
#: as the report.html (or input_issues.csv) of the one would replace the other's, the rest of it left beside
REPORT_MARKERS = {
    "clustering.json": "prodcat explore",
    "metrics.json": "prodcat evaluate or cv",
    "robustness.json": "prodcat robustness",
    "explanations.json": "prodcat explain",
    "audit.json": "prodcat audit",
}


def report_problem(
    report_dir: str | Path, data: str | Path, files: Iterable[str], model: str | Path | None = None
) -> str | None:
    """Why ``--report report_dir`` must not be written: it lies inside a model bundle, the ``model``'s or another
    (which would no longer load), one of the ``files`` the report writes or removes there is a file the catalogue
    ``data`` is read from (a table named predictions.csv in the report folder was overwritten by the predictions, one
    named input_issues.csv deleted), or it holds another command's report (:data:`REPORT_MARKERS`: explore's report.html
    replaced an evaluation's, left with its metrics.json and figures); ``None``: none of these. A report of the same
    command is replaced."""
    from prodcat.arguments import into_bundle
    from prodcat.catalog.loaders import catalog_file_among

    if problem := into_bundle("--report", report_dir, model):
        return problem
    source = catalog_file_among(data, (Path(report_dir).expanduser() / name for name in files))
    if source is not None:
        return (
            f"--report {report_dir} holds the input catalogue {source}, which the report would overwrite: give "
            "another --report"
        )
    folder = Path(report_dir).expanduser()
    for marker, command in REPORT_MARKERS.items():
        if marker not in files and (folder / marker).is_file():
            return (
                f"--report {report_dir} holds a report of {command} ({marker}), which this report would be mixed "
                "with: give another --report"
            )
    return None


def short_labels(labels: Sequence[object] | np.ndarray, width: int = LABEL_WIDTH) -> list[str]:
    """Category names for a figure's axis: a path keeps its last elements, as few as tell it apart from the other
    ``labels`` (``… > Bedsheets``), and a name still longer than ``width`` is cut at its end, with an ellipsis."""
    paths = [split_path(str(label)) for label in labels]
    names = []
    for parts, tail in zip(paths, distinguishing_tails(paths), strict=True):
        name = ("…" + SEP if len(tail) < len(parts) else "") + SEP.join(tail)
        names.append(name if len(name) <= width else name[: width - 1].rstrip() + "…")
    return names


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Products per true (``rows``) and predicted (``columns``) category, every category, as ``counts``: the
    figures behind the matrix, for ``metrics.json``. A product the model could not score is in the
    :data:`NOT_SCORED` column."""
    predicted = np.asarray(y_pred, dtype=object)
    predicted = np.where(pd.isna(predicted) | (predicted == UNSCORED), NOT_SCORED, predicted)
    table = pd.crosstab(
        pd.Series(np.asarray(y_true, dtype=object).astype(str), name="true"),
        pd.Series(predicted.astype(str), name="predicted"),
    )
    return {"rows": table.index.tolist(), "columns": table.columns.tolist(), "counts": table.to_numpy().tolist()}


def confusion_rows(
    y_true: np.ndarray, y_pred: np.ndarray, max_labels: int = CONFUSION_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, columns, matrix)`` of the row-normalised confusion matrix: one row per true category (the
    ``max_labels`` most frequent), one column per shown category and a last one, ``(other)``, for predictions
    of any category not shown (or none: a product not scored), so that every row sums to 1; that column is left
    out when no prediction falls in it (every category shown, every product scored)."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    labels, counts = np.unique(y_true, return_counts=True)
    if len(labels) > max_labels:
        labels = labels[np.argsort(-counts, kind="stable")[:max_labels]]
    position = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1))
    for truth, predicted in zip(y_true, y_pred, strict=True):
        if truth in position:
            matrix[position[truth], position.get(predicted, len(labels))] += 1
    matrix /= np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    if not matrix[:, -1].any():
        return labels, labels.astype(object), matrix[:, :-1]
    return labels, np.array([*labels, "(other)"], dtype=object), matrix


def shown_classes(y_true: np.ndarray, max_labels: int) -> str:
    """What the confusion matrix shows: ``"every one of the 7 true categories"`` or ``"the 60 most frequent of
    the 120 true categories"``."""
    total = len(np.unique(np.asarray(y_true, dtype=object)))
    if total <= max_labels:
        return f"every one of the {total} true categories"
    return f"the {max_labels} most frequent of the {total} true categories"


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, max_labels: int = CONFUSION_ROWS) -> Figure:
    """Row-normalised confusion matrix (:func:`confusion_rows`); with many classes, the most frequent ``max_labels``
    (said in the title)."""
    labels, columns, matrix = confusion_rows(y_true, y_pred, max_labels)
    size = max(6.0, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    shading = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    # category names as written: two '$' would start matplotlib's math text ('Mugs $5-$10' drawn 'Mugs 5−10', and
    # one it cannot parse, such as '$\frac$', failed the whole report)
    ax.set_xticks(range(len(columns)), short_labels(columns), rotation=90, fontsize=7, parse_math=False)
    ax.set_yticks(range(len(labels)), short_labels(labels), fontsize=7, parse_math=False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) > ANNOTATED_ROWS:  # no share in the cells: without a scale the shades could not be read
        fig.colorbar(shading, ax=ax, fraction=0.03, pad=0.02, label="share of the true category's products")
    else:
        for i in range(len(labels)):
            for j in range(len(columns)):
                if matrix[i, j] >= 0.01:
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if matrix[i, j] > 0.5 else "black",
                    )
    # over the figure, not the axes: above axes pushed right by long category names it ran past the figure's edge
    fig.suptitle(f"Confusion matrix, {shown_classes(y_true, max_labels)} (rows sum to 1)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, path: Path, max_labels: int = CONFUSION_ROWS) -> None:
    """:func:`confusion_figure` saved as a PNG, with :func:`figure_fonts` for the category names it shows."""
    shown = short_labels(confusion_rows(y_true, y_pred, max_labels)[1])
    with figure_fonts(shown, "the confusion matrix"):
        fig = confusion_figure(y_true, y_pred, max_labels)
        fig.savefig(path, dpi=110)
    plt.close(fig)


def reliability_figure(calibration: dict[str, Any]) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal; each bin a point labelled
    with its products, hollow under :data:`SPARSE_BIN` of them. No line joins the points: across empty or
    near-empty bins it would draw a trend the data does not hold."""
    bins = calibration["bins"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    total = sum(b["count"] for b in bins)  # no bin (no product scored): no marker is sized by it

    def area(b: dict[str, Any]) -> float:
        """The bin's marker area (points²), growing with its products: one product must not look like hundreds."""
        return 12 + 400 * b["count"] / total

    for sparse in (False, True):
        chosen = [b for b in bins if (b["count"] < SPARSE_BIN) == sparse]
        ax.scatter(
            [b["confidence"] for b in chosen],
            [b["accuracy"] for b in chosen],
            s=[area(b) for b in chosen],
            facecolors="none" if sparse else "tab:blue",
            edgecolors="tab:blue",
            label=f"bin of fewer than {SPARSE_BIN} products" if sparse else "bin (number: its products)",
            zorder=3,
            clip_on=False,  # the bin most products fill sits at confidence 1, half cut by the frame
        )
    for b in bins:
        # right of the marker, at its height: a fixed offset put the count inside a large marker, and that of a bin
        # at accuracy 0 across the x axis
        beside = (area(b) ** 0.5 / 2 + 3, 0)
        point = (b["confidence"], b["accuracy"])
        ax.annotate(str(b["count"]), point, xytext=beside, textcoords="offset points", va="center")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(
        f"Reliability (ECE = {_figure(calibration['ece'])}, {counted(total, 'product')} with a confidence)",
        fontsize=10,
    )
    # below the axes: inside, any corner can hide a bin (upper left: a few products all right at low confidence)
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    for handle in legend.legend_handles[1:]:
        # a scatter's legend handle is a PathCollection (matplotlib types the list as Artist | None)
        cast(PathCollection, handle).set_sizes([30])  # not the first bin's area
    fig.tight_layout()
    return fig


def plot_reliability(calibration: dict[str, Any], path: Path) -> None:
    """:func:`reliability_figure` saved as a PNG."""
    fig = reliability_figure(calibration)
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: the CSS of every evaluation page
PAGE_STYLE = PAGE_CSS + (
    "table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
    ".warnings{background:#fff7e6;border:1px solid #f0b429;padding:.2em 1em;margin:1em 0}.prose td{text-align:left}"
)


def embedded_png(path: Path) -> str:
    """An <img> tag carrying the PNG at ``path`` inline (the report is one self-contained file)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def html_table(head: Sequence[str], rows: Iterable[Sequence[object]], prose: bool = False) -> str:
    """A table of escaped text cells (no header row when ``head`` is empty); numbers are right-aligned, the
    cells of a ``prose`` table left-aligned."""
    header = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    opening = '<table class="prose">' if prose else "<table>"
    return f"{opening}{f'<tr>{header}</tr>' if header else ''}{body}</table>"


def html_page(title: str, body: str) -> str:
    """A whole page: ``body`` under the ``title`` heading."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>"""


def warnings_html(warnings: Sequence[str]) -> str:
    """The warnings, first on a page (none: nothing)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(warning)}</li>" for warning in warnings)
    return f'<div class="warnings"><h2>Warnings</h2><ul>{items}</ul></div>'


def _figure(value: float | None, form: str = "{:.3f}") -> str:
    return "–" if value is None or value != value else form.format(value)  # NaN: nothing to measure


def interval_text(low: float | None, high: float | None, *, form: str = "{:.3f}", dash: str = "–") -> str:
    """A bootstrap interval as read: ``low–high``, or, of zero width, said to be degenerate: resampling the products
    within their categories did not move the figure (categories of one product, or all right or all wrong), which
    makes it no more certain ('1.000–1.000' on 6 products read as certainty)."""
    if low is not None and low == high:
        return f"degenerate: {form.format(low)} in at least 95% of resamples, not a measure of the uncertainty"
    return f"{_figure(low, form)}{dash}{_figure(high, form)}"


def summary_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The headline metrics as rows: name, value, 95% bootstrap interval and, for cross-validation, the spread
    between folds."""
    rows = []
    for key, name in zip(HEADLINE_METRICS, ("accuracy", "F1 weighted", "F1 macro"), strict=True):
        low, high = metrics.get("intervals", {}).get(key, (None, None))
        row = [name, _figure(metrics[key]), interval_text(low, high)]
        rows.append(row + ([fold_spread(metrics, key)] if "fold_std" in metrics else []))
    return rows


def fold_spread(metrics: dict[str, Any], key: str) -> str:
    """The spread between folds of metric ``key``: its standard deviation and the folds' range. The range because the
    folds need not centre on the pooled figure: a fold's macro F1 leaves out the categories it has no product of, so
    at a deep level the folds scored 0.35-0.44 beside a pooled 0.28, which '±0.041' alone set at 0.24-0.32."""
    scores = [fold[key] for fold in metrics["folds"]]
    return f"±{metrics['fold_std'][key]:.3f} (folds {min(scores):.3f}–{max(scores):.3f})"


def decision_rows(decision: dict[str, Any], n: int) -> list[list[str]]:
    """The accept/review decision as rows of a label and a value."""
    rows = []
    if "threshold" in decision:
        threshold = decision["threshold"]
        # a threshold just above 1 reads 1.000: as if a confidence of 1 were accepted
        shown = "none: accepts nothing" if threshold is not None and accepts_nothing(threshold) else _figure(threshold)
        rows.append(["decision threshold", shown])
    rows += [
        ["auto-accepted", f"{_figure(decision['automation_rate'], '{:.1%}')} ({decision['n_auto']} of {n})"],
        [
            "precision among the auto-accepted",
            _figure(decision["auto_precision"]) + parenthesised(auto_precision_note(decision)),
        ],
    ]
    if "automation_ceiling" in decision:
        reaching = f"best threshold reaching precision {decision['target_precision']:g}, chosen knowing the answers"
        rows.append([f"auto-accepted by the {reaching}", _figure(decision["automation_ceiling"], "{:.1%}")])
    return rows


def auto_precision_note(
    decision: dict[str, Any], form: str = "{:.3f}", dash: str = "–", interval_name: str = "95% interval"
) -> str:
    """How sure the precision among the auto-accepted is: '2 of 160 wrong; 95% interval 0.956–0.997', the interval
    named ``interval_name``. Empty for a decision that accepted none, or one of a report written before the interval
    was recorded."""
    low = decision.get("auto_precision_low")
    if not decision.get("n_auto") or low is None or low != low:
        return ""
    interval = interval_text(low, decision["auto_precision_high"], form=form, dash=dash)
    return f"{decision['n_auto_wrong']} of {decision['n_auto']} wrong; {interval_name} {interval}"


def parenthesised(note: str) -> str:
    """`` (note)`` after a figure, nothing for no note."""
    return f" ({note})" if note else ""


def paragraph(text: str) -> str:
    """``text`` escaped in a paragraph, nothing for none."""
    return f"<p>{html.escape(text)}</p>" if text else ""


def issues_html(issues: Sequence[RowIssue]) -> str:
    """The problems the reader met in the input: the rows it skipped (not evaluated) and the others."""
    if not issues:
        return ""
    skipped = sum(issue.field == "row" for issue in issues)
    more = f"; the first {ISSUES_SHOWN} here, all in input_issues.csv" if len(issues) > ISSUES_SHOWN else ""
    rows = ([i.row, i.product_id or "", i.field, i.message] for i in issues[:ISSUES_SHOWN])
    return (
        f"<h2>Input issues</h2><p>{len(issues)} issue(s) reading the catalogue, {skipped} row(s) skipped by the "
        f"reader and not evaluated{more}.</p>" + html_table(["line", "product", "field", "problem"], rows, prose=True)
    )


def write_issues(issues: Sequence[RowIssue], path: Path) -> None:
    """The input issues as a CSV: ``row, product_id, field, message`` (a report's input_issues.csv, ``prodcat
    predict``'s OUT.issues.csv)."""
    write_csv(path, pd.DataFrame([issue.record() for issue in issues], columns=ISSUE_COLUMNS))


def write_report(
    metrics: dict[str, Any],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    report_dir: str | Path,
    title: str,
    *,
    predictions: pd.DataFrame | None = None,
    issues: Sequence[RowIssue] = (),
) -> Path:
    """Write ``metrics.json`` (with the confusion counts), ``confusion_matrix.png``, ``reliability.png``,
    ``report.html`` and, when given, the per-product ``predictions.csv`` and ``input_issues.csv``: every figure
    can be checked against the products. ``metrics["warnings"]``, if any, head the page. A file this report has
    no content for is removed: a folder written before would keep another run's (its input's issues). Written
    whole or not at all (:func:`~prodcat.files.written_together`): a failure or Ctrl-C while writing leaves the
    folder's earlier report whole."""
    folder = Path(report_dir)
    with written_together(folder, ("predictions.csv", "input_issues.csv", "reliability.png")) as out:
        _write_report_files(metrics, y_true, y_pred, out, title, predictions, issues)
    return folder


def _write_report_files(
    metrics: dict[str, Any],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    out: Path,
    title: str,
    predictions: pd.DataFrame | None,
    issues: Sequence[RowIssue],
) -> None:
    """:func:`write_report`'s files, written in the folder ``out``."""
    write_json(out / "metrics.json", metrics | {"confusion": confusion_counts(y_true, y_pred)})
    if predictions is not None:
        write_csv(out / "predictions.csv", predictions)
    if issues:
        write_issues(issues, out / "input_issues.csv")
    plot_confusion(np.asarray(y_true), np.asarray(y_pred), out / "confusion_matrix.png", CONFUSION_ROWS)
    figures = [embedded_png(out / "confusion_matrix.png")]
    if metrics.get("calibration", {}).get("bins"):  # none when no product was scored: nothing to calibrate
        plot_reliability(metrics["calibration"], out / "reliability.png")
        figures.insert(0, embedded_png(out / "reliability.png"))
    figures.append(
        f"<p>The confusion matrix shows {shown_classes(y_true, CONFUSION_ROWS)}; metrics.json has every count.</p>"
    )
    sections = evaluation_sections(metrics, issues, "".join(figures))
    (out / "report.html").write_text(html_page(title, "\n".join(s for s in sections if s)), encoding="utf-8")


def evaluation_sections(metrics: dict[str, Any], issues: Sequence[RowIssue], figures: str) -> list[str]:
    """The HTML sections of an evaluation page, in order ("" for one with nothing to show)."""
    head = ["metric", "value", "95% interval"] + (["spread between folds"] if "fold_std" in metrics else [])
    decision = metrics.get("decision")
    levels = metrics.get("levels", {}).items()
    return [
        warnings_html([*metrics.get("warnings", []), *filter(None, [metrics.get("intervals_warning")])]),
        f"<h2>Summary</h2><p>{counted(metrics['n'], 'product')}.</p>" + html_table(head, summary_rows(metrics)),
        "<h2>Accept / review</h2>" + html_table((), decision_rows(decision, metrics["n"])) if decision else "",
        config_html(metrics.get("config"), (metrics.get("model") or {}).get("fusion")),
        out_of_training_html(metrics.get("not_in_training")),
        "<h2>Per level</h2>"
        + html_table(
            ["level", "accuracy", "F1 weighted", "F1 macro"],
            ([level, *(_figure(m[key]) for key in HEADLINE_METRICS)] for level, m in levels),
        )
        if levels
        else "",
        by_modalities_html(metrics.get("by_modalities")),
        issues_html(issues),
        f"<h2>Figures</h2>{figures}",
        "<h2>Per class (worst first)</h2>" + html_table(per_class_header(metrics), per_class_rows(metrics)),
    ]


def config_html(config: dict[str, Any] | None, fusion_used: str | None = None) -> str:
    """What the figures are of: the heads, fusion, calibration and target precision of ``config`` (metrics.json's: the
    one cross-validated, or the one that trained the model evaluated), "" without. Only metrics.json said them: two
    cv reports of two fusions read the same but for their numbers. ``fusion_used``: the model's (an evaluation's),
    which ``auto`` is followed by."""
    if not config:
        return ""
    heads = config.get("heads") or []
    level = config.get("level")
    rows = [
        ["category level", "full path" if level in (None, 0) else level],
        ["modalities", ", ".join(config.get("modalities") or []) or "all the catalogue has"],
        *([f"head {head.get('name')}", _head_text(head)] for head in heads),
        ["fusion", _fusion_text(config, len(heads), fusion_used)],
        ["calibration", config.get("calibration", "–")],
        ["target precision", config.get("target_precision", "–")],
        ["seed", config.get("seed", "–")],
    ]
    if config.get("sample"):
        rows.append(["sample", f"{config['sample']} labelled products"])
    return (
        "<h2>Configuration</h2><p>As given (heads for other languages or modalities are left out when trained); "
        "metrics.json has it whole, and <code>--config metrics.json</code> runs it again.</p>"
        + html_table((), rows, prose=True)
    )


def _head_text(head: dict[str, Any]) -> str:
    """A head of a config as read: its modality, extractors (with their parameters) and classifier."""
    features = " + ".join(
        feature.get("name", "?")
        + (f"({', '.join(f'{k}={v}' for k, v in feature['params'].items())})" if feature.get("params") else "")
        for feature in head.get("features", [])
    )
    languages = f", for {', '.join(head['languages'])} catalogues" if head.get("languages") else ""
    return f"{head.get('modality')}: {features} → {_classifier_text(head)}{languages}"


def _classifier_text(classifier: dict[str, Any]) -> str:
    """A classifier of a config as :meth:`~prodcat.config.ClassifierConfig.describe` names it, its other fields
    left out; as recorded when it is not one this version reads."""
    from pydantic import ValidationError

    from prodcat.config import ClassifierConfig

    fields = {name: classifier[name] for name in ClassifierConfig.model_fields if name in classifier}
    try:
        return ClassifierConfig.model_validate(fields).describe()
    except ValidationError:
        return str(classifier.get("classifier", "?"))


def _fusion_text(config: dict[str, Any], heads: int, used: str | None = None) -> str:
    """The config's fusion, with early fusion's classifier when it is early (or may be: auto); ``auto`` followed by
    the fusion ``used``, the one its training picked, when it is known (an evaluation's report said 'auto' alone,
    though the model fuses one way)."""
    fusion = str(config.get("fusion", "–"))
    if heads == 1:
        return f"{fusion} (one head: nothing to fuse)"
    shown = fusion
    if fusion == "auto" and used:
        fusion, shown = used, f"auto → {used} (picked in training)"
    if fusion in ("early", "auto") and isinstance(config.get("early"), dict):
        return f"{shown}, early fusion by {_classifier_text(config['early'])}"
    return shown


def by_modalities_html(by_modalities: dict[str, dict[str, float]] | None) -> str:
    """The headline metrics per set of modalities the products were classified from (``by_modalities`` in
    metrics.json), when they were not all classified from the same. Only the console said them: a report on Rakuten
    did not tell its photo-only products' accuracy from the others'. When they all were, one sentence says from what
    (the summary has the figures): the page said nothing of it, and its reader could not tell whether photos were
    read at all, where the console said 'from text+image: n 180'."""
    if not by_modalities:
        return ""
    if len(by_modalities) == 1:
        [(modalities, values)] = by_modalities.items()
        n = cast(int, values["n"])  # a count among the float metrics: metrics.py writes len(y_true)
        if modalities == "none":  # metrics.py's group of the products with nothing read
            return f"<p>{counted(n, 'product')}, none classified: no text or photo of theirs could be read.</p>"
        return f"<p>{counted(n, 'product')}, all classified from {html.escape(modalities)}.</p>"
    rows = (
        [modalities, values["n"], *(_figure(values[key]) for key in HEADLINE_METRICS)]
        for modalities, values in by_modalities.items()
    )
    return "<h2>By what the products were classified from</h2>" + html_table(
        ["classified from", "products", "accuracy", "F1 weighted", "F1 macro"], rows
    )


def out_of_training_html(metrics: dict[str, Any] | None) -> str:
    """The headline figures and the decision on the scored products the model was not trained on ("" without)."""
    if not metrics:
        return ""
    decision = metrics.get("decision")
    return (
        f"<h2>On the {counted(metrics['n'], 'product')} not in the model's training data</h2>"
        "<p>The honest figures: the others are in-sample.</p>"
        + html_table(["metric", "value", "95% interval"], summary_rows(metrics))
        + (html_table((), decision_rows(decision, metrics["n"])) if decision else "")
    )


def decided_per_class(metrics: dict[str, Any]) -> bool:
    """Whether ``metrics``' per-class records say what was auto-accepted (those of a run with a decision policy)."""
    return all("n_auto" in v for v in metrics["per_class"].values())


def per_class_header(metrics: dict[str, Any]) -> list[str]:
    """The column names of :func:`per_class_rows`."""
    automation = ["auto-accepted of its products (accepted as another)", "auto-accepted as it: wrong"]
    return ["class", "precision", "recall", "F1", "support", *(automation if decided_per_class(metrics) else [])]


def ranked_per_class(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``metrics``' per-class records, weakest F1 first and, among equals, most products first (:func:`per_class_rows`'
    order, the app's too)."""
    return sorted(metrics["per_class"].items(), key=lambda kv: (kv[1]["f1"], -kv[1]["support"]))


def per_class_rows(metrics: dict[str, Any]) -> list[list[object]]:
    """Precision, recall, F1 and support per category, weakest F1 first and, among equals, most products first: of
    the many categories at F1 0 of a deep level, the one failing 4 products is not listed after those failing 1,
    alphabetically, nor before them a category no product has (predicted only). Where the run decided, what was
    auto-accepted: the share of the category's products (and how many of them as another category, wrong), and of
    the products auto-accepted as it, those wrong."""
    ranked = ranked_per_class(metrics)
    decided = decided_per_class(metrics)
    return [
        [c, _figure(v["precision"]), _figure(v["recall"]), _figure(v["f1"]), v["support"]]
        + (
            [
                f"{_figure(v['automation_rate'], '{:.1%}')} ({v['n_auto_wrong']} of {v['n_auto']} as another)",
                f"{v['n_auto_predicted_wrong']} of {v['n_auto_predicted']}",
            ]
            if decided
            else []
        )
        for c, v in ranked
    ]


def plot_robustness(clean: dict[str, Any], runs: list[dict[str, Any]], path: Path) -> None:
    """Per perturbation of ``runs`` (grouped by family, in report order): the change of accuracy against the
    ``clean`` run (a dot) with its 95% paired-bootstrap interval, and the share auto-accepted (the clean run's as a
    dashed line)."""
    families = list(dict.fromkeys(r["family"] for r in runs))
    colours = [plt.cm.tab10(families.index(r["family"]) % 10) for r in runs]
    rows = np.arange(len(runs))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.32 * len(runs) + 1.8), sharey=True)
    change = [r["change_vs_clean"]["accuracy"] for r in runs]
    point = np.array([c["difference"] for c in change])
    errors = np.array([[c["difference"] - c["low"], c["high"] - c["difference"]] for c in change]).T
    left.barh(rows, point, color=colours)
    # a dot on each change: a change of 0 within [0, 0] drew no bar and no whisker, a row read as missing
    left.errorbar(point, rows, xerr=errors, fmt="o", ms=3, c="k")
    low, high = left.get_xlim()
    pad = 0.03 * (high - low)  # the bars keep the axis from going past 0, where the dots of no change sat on its edge
    left.set_xlim(low - pad, high + pad)
    left.axvline(0, color="grey", lw=0.8)
    left.set_xlabel(f"accuracy minus clean ({clean['accuracy']:.3f}), 95% paired interval")
    right.barh(rows, [r["decision"]["automation_rate"] for r in runs], color=colours)
    right.axvline(clean["decision"]["automation_rate"], color="grey", ls="--", label="clean")
    right.set_xlim(0, 1)
    right.set_xlabel("share auto-accepted")
    right.legend(loc="lower right", fontsize=8)
    left.set_yticks(rows, [r["name"] for r in runs], fontsize=8)
    left.invert_yaxis()
    # the base too, as the console's and the page's titles: the figure is often shown alone, and under --base no_text
    # its changes are those of the photo path, not of the model as it reads products
    fig.suptitle(
        f"Robustness on {counted(clean['n'], 'product')}"
        + (f", every run with {clean['base']}" if clean["base"] else "")
    )
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def plotted_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The perturbation records the figure shows: those that touched a product (the others change nothing)."""
    return [record for record in records[1:] if record["n_affected"]]


def write_robustness_report(
    records: list[dict[str, Any]], report_dir: str | Path, title: str, warnings: Sequence[str] = ()
) -> Path:
    """Write ``robustness.json`` (the records), ``robustness.png`` (:func:`plot_robustness` of the
    :func:`plotted_runs`, none when there are none) and ``report.html``, headed by the ``warnings``; whole or not at
    all (:func:`~prodcat.files.written_together`), as the report is written again after each run: Ctrl-C or a full
    disk leaves the report of the runs before whole, not a page of other rows than its robustness.json."""
    folder = Path(report_dir)
    with written_together(folder, ("robustness.png",)) as out:
        _write_robustness_files(records, out, title, warnings)
    return folder


def _write_robustness_files(records: list[dict[str, Any]], out: Path, title: str, warnings: Sequence[str]) -> None:
    """:func:`write_robustness_report`'s files, written in the folder ``out``."""
    write_json(out / "robustness.json", records)
    figure = out / "robustness.png"
    if runs := plotted_runs(records):
        plot_robustness(records[0], runs, figure)
    untouched = len(records) - 1 - len(runs)
    left_out = f" ({untouched} perturbation(s) that touched no product left out)" if untouched else ""
    body = f"""{warnings_html(warnings)}
<p>Every row is the same {counted(records[0]["n"], "labelled product")}, one perturbation at a time; products it cannot
touch (no photo to rotate, no description to remove) keep their input and are not counted in "affected".
Δ is perturbed minus clean on the same products, with its 95% paired-bootstrap interval; "flipped" is the share
of the affected products whose predicted category changed. "confidence" is the mean calibrated confidence of the
products the model answered, "auto" the share it auto-accepts (confidence at least the bundle's decision threshold,
{records[0]["decision"]["threshold"]:.3f}) and "auto precision" the accuracy among those.</p>
{html_table(ROBUSTNESS_REPORT_COLUMNS, robustness_report_rows(records))}
{paragraph(degenerate_note(records))}
{text_and_photo_html(records[0].get(TEXT_AND_PHOTO))}
<h2>Figure</h2>{embedded_png(figure) + f"<p>{left_out}</p>" if runs else "<p>No perturbation touched a product.</p>"}"""
    (out / "report.html").write_text(html_page(title, body), encoding="utf-8")


#: the columns of :func:`text_and_photo_rows`
TEXT_AND_PHOTO_COLUMNS = ("text alone and photo alone", "products", "accuracy [95%]", "auto precision [95%]")


def share_cell(share: dict[str, Any]) -> str:
    """A share of :func:`~prodcat.evaluate.robustness.text_and_photo`: ``0.969 (62 of 64) [0.893–0.991]``, ``–`` of
    none."""
    if not share["n"]:
        return "–"
    return f"{share['share']:.3f} ({share['count']} of {share['n']}) [{interval_text(share['low'], share['high'])}]"


def text_and_photo_rows(section: dict[str, Any]) -> list[list[str]]:
    """The rows of the text and photo table, in :data:`TEXT_AND_PHOTO_COLUMNS` order: agree, then disagree."""
    return [
        [f"{name} ({'same' if name == 'agree' else 'different'} category)", str(section[name]["accuracy"]["n"])]
        + [share_cell(section[name][key]) for key in ("accuracy", "auto_precision")]
        for name in ("agree", "disagree")
    ]


def text_and_photo_line(section: dict[str, Any]) -> str:
    """The text and photo section in one line, for the console."""
    agree, disagree = (share_cell(section[name]["auto_precision"]) for name in ("agree", "disagree"))
    share = section["disagreement"]
    return (
        f"Text alone and photo alone disagree on {share['count']} of the {share['n']} products read from both "
        f"({_figure(share['share'])}); auto precision where they agree {agree}, where they disagree {disagree}"
    )


def text_and_photo_html(section: dict[str, Any] | None) -> str:
    """The report's text and photo section (:func:`~prodcat.evaluate.robustness.text_and_photo`); nothing when the
    clean record has none (no_photo and no_text were not both measured)."""
    if section is None:
        return ""
    return f"""<h2>Text and photo</h2>
<p>Of the {counted(section["n_both"], "product")} the model read both the text and the photo of, the text alone (the
no_photo run) and the photo alone (the no_text run) predict different categories for
{share_cell(section["disagreement"])}. Accuracy and auto precision are those of the full prediction (the clean run, with
its decisions) in each group; [95%] is a Wilson interval.</p>
{html_table(TEXT_AND_PHOTO_COLUMNS, text_and_photo_rows(section))}"""


#: the columns of :func:`robustness_rows`
ROBUSTNESS_COLUMNS = (
    "perturbation",
    "affected",
    "accuracy",
    "Δ accuracy [95%]",
    "F1 weighted",
    "F1 macro",
    "confidence",
    "auto",
    "auto precision",
    "flipped",
)
#: the report's columns: the console's, and each perturbation said in words with its severity's unit beside its name
#: (noise_25 or crop_0.5 alone say neither sigma on what scale nor what is kept)
ROBUSTNESS_REPORT_COLUMNS = (ROBUSTNESS_COLUMNS[0], "what", *ROBUSTNESS_COLUMNS[1:])
#: the Δ of a perturbation that touched no product: it changes nothing, and its zero would read as robustness
UNTOUCHED = "n/a — no product affected"


def change_cell(record: dict[str, Any]) -> str:
    """The Δ accuracy cell of a record: empty for the clean run, :data:`UNTOUCHED` for a perturbation that
    touched no product."""
    if "n_affected" not in record:
        return ""
    if not record["n_affected"]:
        return UNTOUCHED
    change = record["change_vs_clean"]["accuracy"]
    if degenerate(record):  # said once under the table (:func:`degenerate_note`), not in each of 17 rows
        return f"{change['difference']:+.3f} [degenerate]"
    return f"{change['difference']:+.3f} [{interval_text(change['low'], change['high'], form='{:+.3f}', dash=', ')}]"


def degenerate(record: dict[str, Any]) -> bool:
    """Whether the paired interval of a perturbed record's Δ accuracy has zero width."""
    change = (record.get("change_vs_clean") or {}).get("accuracy")  # none for the clean run or an untouched one
    return bool(record.get("n_affected")) and change is not None and change["low"] == change["high"]


def degenerate_note(records: list[dict[str, Any]]) -> str:
    """What '[degenerate]' in the robustness table means, when a row says it (else nothing)."""
    if not any(degenerate(record) for record in records):
        return ""
    return (
        "[degenerate]: the same Δ in at least 95% of the paired resamples (too few of the predictions changed for "
        "resampling to move it), not a measure of the uncertainty."
    )


def robustness_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """The robustness table as text cells, one row per record, in :data:`ROBUSTNESS_COLUMNS` order."""
    rows = []
    for r in records:
        decision = r["decision"]
        rows.append(
            [
                r["name"],
                str(r.get("n_affected", "")),
                f"{r['accuracy']:.3f}",
                change_cell(r),
                f"{r['f1_weighted']:.3f}",
                f"{r['f1_macro']:.3f}",
                _figure(r["mean_confidence"]),
                f"{decision['automation_rate']:.1%}",
                _figure(decision["auto_precision"]),
                _figure(r.get("flipped_share_of_affected"), "{:.1%}"),
            ]
        )
    return rows


def robustness_report_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """:func:`robustness_rows` with each record's description after its name, in :data:`ROBUSTNESS_REPORT_COLUMNS`
    order."""
    rows = robustness_rows(records)
    return [[row[0], record["description"], *row[1:]] for record, row in zip(records, rows, strict=True)]

"""Evaluation report: ``metrics.json``, confusion matrix and reliability diagram PNGs, an HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from prodcat.files import write_json


def confusion_rows(
    y_true: np.ndarray, y_pred: np.ndarray, max_labels: int = 60
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, columns, matrix)`` of the row-normalised confusion matrix: one row per true category (the
    ``max_labels`` most frequent), one column per shown category and a last one, ``(other)``, for predictions
    of any category not shown (or none: a product not scored), so that every row sums to 1."""
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
    return labels, np.array([*labels, "(other)"], dtype=object), matrix


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, path: Path, max_labels: int = 60) -> None:
    """Row-normalised confusion matrix (:func:`confusion_rows`); with many classes, the most frequent ``max_labels``."""
    labels, columns, matrix = confusion_rows(y_true, y_pred, max_labels)
    size = max(6.0, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), [str(label)[-40:] for label in columns], rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), [str(label)[-40:] for label in labels], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 30:
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
    ax.set_title("Confusion matrix (rows sum to 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(calibration: dict[str, Any], path: Path) -> None:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal."""
    bins = calibration["bins"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    confidence, accuracy = [b["confidence"] for b in bins], [b["accuracy"] for b in bins]
    ax.plot(confidence, accuracy, "-", color="tab:blue")
    # marker area grows with the bin's products: a bin of one product must not look like one of hundreds
    total = max(sum(b["count"] for b in bins), 1)
    sizes = [12 + 400 * b["count"] / total for b in bins]
    ax.scatter(confidence, accuracy, s=sizes, color="tab:blue", label="model (area: products in the bin)", zorder=3)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE = {calibration['ece']:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: the CSS of every evaluation page
PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
)


def embedded_png(path: Path) -> str:
    """An <img> tag carrying the PNG at ``path`` inline (the report is one self-contained file)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def write_report(
    metrics: dict[str, Any], y_true: np.ndarray, y_pred: np.ndarray, report_dir: str | Path, title: str
) -> Path:
    """Write ``metrics.json``, ``confusion_matrix.png``, ``reliability.png`` and ``report.html``."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    plot_confusion(np.asarray(y_true), np.asarray(y_pred), out / "confusion_matrix.png")
    figures = [embedded_png(out / "confusion_matrix.png")]
    if "calibration" in metrics:
        plot_reliability(metrics["calibration"], out / "reliability.png")
        figures.insert(0, embedded_png(out / "reliability.png"))
    summary = {
        k: metrics[k] for k in ("n", "accuracy", "f1_weighted", "f1_macro", "intervals", "fold_std") if k in metrics
    }
    rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
        f"<td>{v['f1']:.3f}</td><td>{v['support']}</td></tr>"
        for c, v in sorted(metrics["per_class"].items(), key=lambda kv: kv[1]["f1"])
    )
    levels = "".join(
        f"<tr><td>{lvl}</td><td>{m['accuracy']:.3f}</td><td>{m['f1_weighted']:.3f}</td><td>{m['f1_macro']:.3f}</td></tr>"
        for lvl, m in metrics.get("levels", {}).items()
    )
    decision = metrics.get("decision", {})
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=2))}</pre>
<h2>Accept / review</h2><pre>{html.escape(json.dumps(decision, indent=2))}</pre>
{
        "<h2>Per level</h2><table><tr><th>level</th><th>accuracy</th><th>F1 weighted</th><th>F1 macro</th></tr>"
        + levels
        + "</table>"
        if levels
        else ""
    }
<h2>Figures</h2>{"".join(figures)}
<h2>Per class (worst first)</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return out


def plot_robustness(records: list[dict[str, Any]], path: Path) -> None:
    """Per perturbation (grouped by family, in report order): the change of accuracy against the clean run
    with its 95% paired-bootstrap interval, and the share auto-accepted (the clean run's as a dashed line)."""
    clean, runs = records[0], records[1:]
    families = list(dict.fromkeys(r["family"] for r in runs))
    colours = [plt.cm.tab10(families.index(r["family"]) % 10) for r in runs]
    rows = np.arange(len(runs))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.32 * len(runs) + 1.8), sharey=True)
    change = [r["change_vs_clean"]["accuracy"] for r in runs]
    point = np.array([c["difference"] for c in change])
    errors = np.array([[c["difference"] - c["low"], c["high"] - c["difference"]] for c in change]).T
    left.barh(rows, point, color=colours)
    left.errorbar(point, rows, xerr=errors, fmt="none", c="k")
    left.axvline(0, color="grey", lw=0.8)
    left.set_xlabel(f"accuracy minus clean ({clean['accuracy']:.3f}), 95% paired interval")
    right.barh(rows, [r["decision"]["automation_rate"] for r in runs], color=colours)
    right.axvline(clean["decision"]["automation_rate"], color="grey", ls="--", label="clean")
    right.set_xlim(0, 1)
    right.set_xlabel("share auto-accepted")
    right.legend(loc="lower right", fontsize=8)
    left.set_yticks(rows, [r["name"] for r in runs], fontsize=8)
    left.invert_yaxis()
    fig.suptitle(f"Robustness on {clean['n']} products")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_robustness_report(records: list[dict[str, Any]], report_dir: str | Path, title: str) -> Path:
    """Write ``robustness.json`` (the records), ``robustness.png`` (:func:`plot_robustness`) and ``report.html``."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "robustness.json", records)
    plot_robustness(records, out / "robustness.png")
    cells = "".join(
        f"<tr>{''.join(f'<td>{html.escape(c)}</td>' for c in row)}</tr>" for row in robustness_rows(records)
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ROBUSTNESS_COLUMNS)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Every row is the same {records[0]["n"]} labelled products, one perturbation at a time; products it cannot
touch (no photo to rotate, no description to remove) keep their input and are not counted in "affected".
Δ is perturbed minus clean on the same products, with its 95% paired-bootstrap interval; "flipped" is the share
of the affected products whose predicted category changed.</p>
<table><tr>{head}</tr>{cells}</table>
<h2>Figure</h2>{embedded_png(out / "robustness.png")}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return out


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


def robustness_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """The robustness table as text cells, one row per record, in :data:`ROBUSTNESS_COLUMNS` order."""
    rows = []
    for r in records:
        change = r.get("change_vs_clean", {}).get("accuracy")
        decision = r["decision"]
        rows.append(
            [
                r["name"],
                str(r.get("n_affected", "")),
                f"{r['accuracy']:.3f}",
                f"{change['difference']:+.3f} [{change['low']:+.3f}, {change['high']:+.3f}]" if change else "",
                f"{r['f1_weighted']:.3f}",
                f"{r['f1_macro']:.3f}",
                f"{r['mean_confidence']:.3f}",
                f"{decision['automation_rate']:.1%}",
                "" if decision["auto_precision"] is None else f"{decision['auto_precision']:.3f}",
                "" if r.get("flipped_share_of_affected") is None else f"{r['flipped_share_of_affected']:.1%}",
            ]
        )
    return rows

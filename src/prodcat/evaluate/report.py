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
from sklearn.metrics import confusion_matrix


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, path: Path, max_labels: int = 60) -> None:
    """Row-normalised confusion matrix; with many classes, the most frequent ``max_labels``."""
    labels, counts = np.unique(y_true, return_counts=True)
    if len(labels) > max_labels:
        labels = labels[np.argsort(-counts)[:max_labels]]
    matrix = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    matrix /= np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    size = max(6.0, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    short = [str(label)[-40:] for label in labels]
    ax.set_xticks(range(len(labels)), short, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 30:
        for i in range(len(labels)):
            for j in range(len(labels)):
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
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE = {calibration['ece']:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def write_report(
    metrics: dict[str, Any], y_true: np.ndarray, y_pred: np.ndarray, report_dir: str | Path, title: str
) -> Path:
    """Write ``metrics.json``, ``confusion_matrix.png``, ``reliability.png`` and ``report.html``."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    plot_confusion(np.asarray(y_true), np.asarray(y_pred), out / "confusion_matrix.png")
    figures = [_img(out / "confusion_matrix.png")]
    if "calibration" in metrics:
        plot_reliability(metrics["calibration"], out / "reliability.png")
        figures.insert(0, _img(out / "reliability.png"))
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
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head><body>
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

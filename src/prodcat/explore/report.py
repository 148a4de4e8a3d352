"""Write a study as ``clustering.json`` and a self-contained ``report.html``.

The HTML embeds everything (plots as base64 PNG, product thumbnails as base64
JPEG), so it can be mailed or archived as one file. It shows the runs best
first among those on the same products, 2-D maps coloured by true category and
by cluster side by side (with a legend up to 20 categories, beyond it the names
written on the maps where they fit), the cluster-vs-category matrix of the best
run on the most products with its matched accuracy and its chance level (its 30 largest categories;
the whole matrix is a CSV beside the report), and a few products that run puts
in another category's cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from prodcat.catalog.audit import thumbnail
from prodcat.catalog.schema import SEP, distinguishing_tails, split_path
from prodcat.explore.clustering import SAME_PRODUCTS_OVERLAP, ClusteringRun, StudyResult, at_level, json_record
from prodcat.explore.metrics import AMI_NOTE, CHANCE_SHUFFLES, SILHOUETTE_SAMPLE, ClusterMatching
from prodcat.explore.reduction import TSNE2D, make_reduction
from prodcat.figures import figure_data_uri, figure_fonts
from prodcat.files import write_json, written_together
from prodcat.report_style import report_environment

#: feature sets whose 2-D maps are drawn (their best run each), best first
MAPS = 4
#: misplaced products shown
EXAMPLES = 8
#: longest title of a misplaced product shown
TITLE_CHARS = 200
#: longest category name in a map's legend (the full name is in the report's tables)
LEGEND_CHARS = 48
#: most categories a map's legend lists (and tab20 tells apart); beyond, a continuous colour map, no legend, and each
#: category's name written on the map where its products are
LEGEND_MAX = 20
#: longest category name written on a map
MAP_LABEL_CHARS = 28
#: pixels added to a map label's width and height when keeping labels apart (its white outline, a little air)
LABEL_PADDING = 3.0
#: most categories the report's cluster-vs-category matrix shows (the largest); the whole matrix is a CSV beside it
MATRIX_MAX = 30
#: the whole cluster-vs-category matrix of the best run, beside the report
MATRIX_CSV = "clusters_vs_categories.csv"
#: the files a study writes in its report folder
EXPLORE_FILES = ("clustering.json", MATRIX_CSV, "report.html")


def write_report(result: StudyResult, out_dir: str | Path, *, source: str = "") -> tuple[Path, Path]:
    """Write ``clustering.json``, ``report.html`` and the best run's :data:`MATRIX_CSV` in ``out_dir``, whole or not
    at all (:func:`~prodcat.files.written_together`: a failure or Ctrl-C while the maps are drawn leaves an earlier
    report whole); return the first two paths."""
    folder = Path(out_dir)
    with written_together(folder) as staging:
        _write_report_files(result, staging, source)
    return folder / "clustering.json", folder / "report.html"


def _write_report_files(result: StudyResult, out_dir: Path, source: str) -> None:
    """:func:`write_report`'s files, written in the folder ``out_dir``."""
    records = result.records()
    write_json(out_dir / "clustering.json", [json_record(record) for record in records])
    best = result.best()
    matrix_frame(best).to_csv(out_dir / MATRIX_CSV)

    palette = category_palette(sorted(set(result.categories)))
    with figure_fonts(palette, "the maps"):
        maps = [scatter_pair(result, run, palette) for run in best_run_per_feature_set(result)[:MAPS]]
    env = report_environment("prodcat.explore")
    html = env.get_template("report.html.j2").render(
        source=source,
        n=len(result.frame),
        k=result.n_categories,
        at_level=at_level(result.level),
        seed=result.seed,
        sampled_from=result.sampled_from,
        legend_max=LEGEND_MAX,
        ami_note=AMI_NOTE,
        same_products_overlap=SAME_PRODUCTS_OVERLAP,
        product_sets=[
            {"products": products, "records": list(group)}
            for products, group in itertools.groupby(records, key=lambda record: record["product_set"])
        ],
        skipped=result.skipped,
        best=best.record(level=result.level),
        maps=maps,
        matrix=matrix_table(best),
        matrix_csv=MATRIX_CSV,
        accuracy=best.matching.accuracy,
        chance=best.matching.chance,
        chance_shuffles=CHANCE_SHUFFLES,
        silhouette_sample=SILHOUETTE_SAMPLE,
        silhouette_sampled=any(len(run.rows) > SILHOUETTE_SAMPLE for run in result.runs),
        examples=misplaced_examples(result, best, EXAMPLES),
    )
    (out_dir / "report.html").write_text(html, encoding="utf-8")


def best_run_per_feature_set(result: StudyResult) -> list[ClusteringRun]:
    """The best run of each feature set: the best feature set of each product set (most products first), then the
    second best of each, and so on; runs on different products are never ranked against each other."""
    per_product_set = []
    for runs in result.product_sets():
        best: dict[str, ClusteringRun] = {}
        for run in runs:  # best first
            best.setdefault(run.features, run)
        per_product_set.append(list(best.values()))
    return [run for runs in itertools.zip_longest(*per_product_set) for run in runs if run is not None]


def category_palette(categories: list[str]) -> dict[str, Any]:
    """A distinct colour per category (tab10/tab20, then a continuous map for many categories)."""
    import matplotlib

    count = len(categories)
    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20" if count <= LEGEND_MAX else "turbo"]
    return {c: cmap(i if count <= LEGEND_MAX else i / max(count - 1, 1)) for i, c in enumerate(categories)}


def points_2d(result: StudyResult, run: ClusteringRun) -> np.ndarray:
    """2-D coordinates to draw ``run``: the t-SNE of its feature set's blocks (the ``tsne`` reduction, reused when
    it was run), whatever reduction clustered it.

    Not a t-SNE of the points KMeans clustered: the map of a feature set changed with the reductions studied (a
    t-SNE of the 10-D UMAP, whose tight blobs look far better separated than the features are, unless ``tsne`` was
    among them), and a PCA run with ``--components 2`` was drawn as is, under the same caption.

    Computed as the runs are, on one BLAS/OpenMP thread and the study's seed: on every thread of the command's
    process, the map of a study without ``tsne`` could differ from the ``tsne`` run's, and between machines.
    """
    for other in result.runs:
        if other.features == run.features and other.reduction == "tsne" and np.array_equal(other.rows, run.rows):
            return other.points
    if result.feature_space is None:
        points, reducer = run.points, TSNE2D(random_state=result.seed)
    else:
        points = result.feature_space(run.features, run.rows)  # combined as the runs' were, before their reduction
        reducer = make_reduction("tsne", points.shape, seed=result.seed)
    with threadpool_limits(1):
        return reducer.fit_transform(points)


def scatter_pair(result: StudyResult, run: ClusteringRun, palette: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side 2-D maps of ``run``: coloured by true category, and by cluster.

    A cluster takes the colour of the category it is matched to, so the two
    panels read alike where the clustering agrees with the catalogue.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = points_2d(result, run)
    grey = (0.6, 0.6, 0.6, 1.0)
    true_categories = result.categories_of(run)
    cluster_categories = run.matching.predicted(run.clusters)
    # past a legend's reach, and a colour scale's, the names are written on the maps
    labels = map_labels(list(palette)) if len(palette) > LEGEND_MAX else None
    # larger then: 84 names crowd a 12-inch figure
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2) if labels is None else (18, 8.5))
    unnamed = {}
    for ax, categories, side, title in (
        (axes[0], true_categories, "left", "true category"),
        (axes[1], cluster_categories, "right", f"KMeans cluster (ARI {run.scores['ari']:.2f})"),
    ):
        ax.scatter(xy[:, 0], xy[:, 1], c=[palette.get(c, grey) for c in categories], s=8, linewidths=0)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is not None:
            unnamed[side] = label_groups(ax, xy, categories, labels)
    if labels is None:
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=colour, label=legend_label(c)) for c, colour in palette.items()
        ]
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
        fig.subplots_adjust(bottom=0.08 + 0.035 * ((len(handles) + 3) // 4))
    return {
        "features": run.features,
        "reduction": run.reduction,
        "png": figure_data_uri(fig, dpi=80),
        # side -> categories not named on that panel for lack of room, largest first
        "unnamed": {side: groups for side, groups in unnamed.items() if groups},
    }


def label_groups(ax: Any, xy: np.ndarray, groups: np.ndarray, labels: dict[str, str]) -> list[str]:
    """Write each group's label near the median of its points ``xy`` ``(n, 2)`` (``groups``: ``(n,)``, ``None`` for
    points of no group, left unlabelled): small, black on a white outline, legible over points of any colour.
    The median, not the mean: a few stray points do not pull the name away from where most of them are.

    Labels never overlap (:func:`place_labels`): the largest groups are placed first, and a label that finds no
    room is not written. Returns the groups left unnamed, largest first.
    """
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    sizes = pd.Series(groups).dropna().value_counts()
    # largest first, ties by name: the same map always names the same groups
    order = sorted(sizes.index, key=lambda group: (-sizes[group], group))
    medians = np.array([np.median(xy[groups == group], axis=0) for group in order]).reshape(-1, 2)
    texts = [
        ax.text(x, y, labels[group], fontsize=7, ha="center", va="center", path_effects=outline)
        for group, (x, y) in zip(order, medians, strict=True)
    ]
    # matplotlib fits the limits to the points only when drawing: fitted now, data map to the pixels of the saved
    # figure (else to those of the empty axes, 0 to 1, where every label was measured apart from the others)
    ax.autoscale_view()
    renderer = ax.figure.canvas.get_renderer()
    extents = np.array([(box.width, box.height) for box in (t.get_window_extent(renderer) for t in texts)])
    # in pixels, where text sizes are known; the outline widens each label by its stroke
    positions = place_labels(ax.transData.transform(medians), extents.reshape(-1, 2) + LABEL_PADDING)
    unnamed = []
    for group, text, position in zip(order, texts, positions, strict=True):
        if position is None:
            text.remove()
            unnamed.append(group)
        else:
            text.set_position(ax.transData.inverted().transform(position))
    return unnamed


def place_labels(anchors: np.ndarray, sizes: np.ndarray) -> list[tuple[float, float] | None]:
    """Centres for labels that overlap none placed before them, in order: ``anchors`` ``(m, 2)`` wanted centres,
    ``sizes`` ``(m, 2)`` widths and heights, in one unit (pixels). Each label goes at its anchor, else one label
    height above or below it, else nowhere (``None``): a label pushed further would name empty space or another
    group's points. Deterministic, so the same map names the same groups."""
    placed: list[tuple[float, float, float, float]] = []
    positions: list[tuple[float, float] | None] = []
    for (x, y), (width, height) in zip(anchors, sizes, strict=True):
        for centre_y in (y, y + height, y - height):
            box = (x - width / 2, centre_y - height / 2, x + width / 2, centre_y + height / 2)
            if not any(_boxes_overlap(box, other) for other in placed):
                placed.append(box)
                positions.append((float(x), float(centre_y)))
                break
        else:
            positions.append(None)
    return positions


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether boxes ``(x0, y0, x1, y1)`` share some area (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def map_labels(categories: Sequence[str], width: int = MAP_LABEL_CHARS) -> dict[str, str]:
    """Each category's name on a map: the last level of its path, or as many last levels as set it apart from
    the others' ('Tshirts'; 'Topwear > Accessories' when another path ends in 'Accessories'), cut to ``width``
    characters and drawn as written (:func:`legend_label`). The full paths are in the report's tables."""
    tails = distinguishing_tails([split_path(category) for category in categories])
    return {category: legend_label(SEP.join(tail), width) for category, tail in zip(categories, tails, strict=True)}


def legend_label(category: str, width: int = LEGEND_CHARS) -> str:
    """``category`` as matplotlib should print it in a legend: cut to ``width`` characters, and its dollar signs
    escaped. Unescaped, text between two ``$`` is read as mathtext: 'Gifts $5 to $10' printed in italics without
    its dollars, and '$_$' ended the study in the parser's traceback once every run was done; a 3,000-character
    name made the map 19,000 pixels wide (and a longer one over the 65,536 pixels matplotlib can save)."""
    return _shorten(category, width).replace("$", r"\$")


def matrix_table(run: ClusteringRun, limit: int = MATRIX_MAX) -> dict[str, Any]:
    """The matched cluster-vs-category matrix, with each cell's share of its row for shading.

    Rows are categories, largest first, and column ``i`` is the cluster matched to row ``i``'s category, so the
    matched pairs sit on the diagonal (unmatched clusters come last, categories no cluster is matched to after the
    matched ones). Past ``limit`` categories only the ``limit`` largest are shown, with the clusters matched to
    them: the others' products are summed in a last row, and the other clusters' in a last column (the whole matrix
    is :func:`matrix_frame`'s CSV).
    """
    matching = run.matching
    shown = min(limit, len(matching.categories))
    counts, categories, clusters = _matrix_by_size(matching, shown)
    columns = [_cluster_name(matching, c) for c in clusters]
    if shown < len(categories):
        counts = np.vstack([counts[:shown], counts[shown:].sum(axis=0)])
        categories = [*categories[:shown], f"the other {len(categories) - shown} categories"]
        paired = len(set(categories[:shown]) & set(matching.assignment.values()))  # their clusters come first
        if paired < len(clusters):
            counts = np.hstack([counts[:, :paired], counts[:, paired:].sum(axis=1, keepdims=True)])
            columns = [*columns[:paired], f"the other {len(clusters) - paired} clusters"]
    totals = counts.sum(axis=1, keepdims=True).clip(min=1)
    rows = [
        {"category": category, "cells": [(int(v), float(v / totals[i, 0])) for v in counts[i]]}
        for i, category in enumerate(categories)
    ]
    return {
        "columns": columns,
        "rows": rows,
        "features": run.features,
        "reduction": run.reduction,
        "shown": shown,
        "categories": len(matching.categories),
    }


def matrix_frame(run: ClusteringRun) -> pd.DataFrame:
    """The whole matched cluster-vs-category matrix, ordered as :func:`matrix_table`'s: one row per category, one
    column per cluster named with the category matched to it."""
    counts, categories, clusters = _matrix_by_size(run.matching)
    columns = [_cluster_name(run.matching, c) for c in clusters]
    return pd.DataFrame(counts, index=pd.Index(categories, name="category"), columns=columns)


def _cluster_name(matching: ClusterMatching, cluster: int) -> str:
    if cluster in matching.assignment:
        return f"cluster {cluster} → {matching.assignment[cluster]}"
    return f"cluster {cluster} (unmatched)"


def _matrix_by_size(matching: ClusterMatching, shown: int | None = None) -> tuple[np.ndarray, list[str], list[int]]:
    """``matching``'s matrix with its categories largest first (ties in its order) and each matched cluster in
    its category's place, unmatched clusters last: ``(counts, categories, clusters)``. Categories no cluster is
    matched to (the clustering found fewer clusters than categories) follow the matched ones, both among the
    ``shown`` largest categories (by default all) and among the rest: placed by size, the clusters of the matched
    categories after them would leave the diagonal."""
    size_rank = np.argsort(np.argsort(-matching.matrix.sum(axis=1), kind="stable"))
    shown = len(matching.categories) if shown is None else shown
    # category i of the matching's matrix is matched to its column i's cluster, for i < the number of pairs
    matched = len(matching.assignment)
    rows = sorted(range(len(matching.categories)), key=lambda r: (size_rank[r] >= shown, r >= matched, size_rank[r]))
    columns = [*(r for r in rows if r < matched), *range(matched, len(matching.clusters))]
    counts = matching.matrix[np.ix_(rows, columns)]
    return counts, [matching.categories[r] for r in rows], [matching.clusters[c] for c in columns]


def misplaced_examples(result: StudyResult, run: ClusteringRun, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` products whose cluster is matched to another category.

    One product per (true, cluster) confusion, most frequent confusions first,
    so the examples cover the main mix-ups rather than repeat one.
    """
    predicted = run.matching.predicted(run.clusters)
    wrong = pd.DataFrame({"true": result.categories_of(run), "cluster": predicted}, index=run.rows)
    wrong = wrong[wrong["true"] != wrong["cluster"]]
    if wrong.empty:
        return []
    pair_size = wrong.groupby(["true", "cluster"], dropna=False)["true"].transform("size")
    picks = wrong.assign(size=pair_size).drop_duplicates(["true", "cluster"])
    picks = picks.sort_values("size", ascending=False, kind="stable").head(count)
    examples = []
    for row, pick in picks.iterrows():
        product = result.frame.loc[row]
        examples.append(
            {
                "product_id": product["product_id"],
                # a catalogue title runs up to 100,000 characters: whole, one filled the report with a card
                "title": _shorten(product["title"], TITLE_CHARS),
                "description": _shorten(product["description"], 300),
                "category": pick["true"],
                "cluster_category": pick["cluster"] or "an unmatched cluster",
                "confusions": int(pick["size"]),
                "thumbnail": thumbnail(product["image"], side=128),
            }
        )
    return examples


def _shorten(text: str, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"

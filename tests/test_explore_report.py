"""``prodcat explore`` on a small real sample: the study, clustering.json and the self-contained report."""

from __future__ import annotations

import html as html_lib
import json
import re

import numpy as np
import pytest

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.cli import main
from prodcat.explore.clustering import FeasibilityStudy, sample_covering_every_label
from prodcat.explore.report import write_report

CHEAP_FEATURES = ["tfidf", "color_hist", "tfidf+color_hist"]
#: the words of three kinds of products that a TF-IDF tells apart
KIND_WORDS = ["mug ceramic coffee cup", "watch analog steel dial", "baby diaper soft cotton"]


@pytest.fixture(scope="module")
def flipkart_sample(flipkart_dir):
    frame = load_catalog(flipkart_dir).frame
    labels = category_at_level(frame["category"], 1)
    return sample_covering_every_label(frame, labels, 150, seed=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def study(flipkart_sample):
    return FeasibilityStudy(features=CHEAP_FEATURES, reductions=["pca", "tsne"], progress=False).run(flipkart_sample)


def test_study_scores_every_feature_set_and_reduction(study):
    records = study.records()
    assert {(r["features"], r["reduction"]) for r in records} == {
        (f, r) for f in CHEAP_FEATURES for r in ("pca", "tsne")
    }
    assert all(r["n"] == 150 and r["k"] == 7 and r["level"] == 1 for r in records)
    assert [r["ari"] for r in records] == sorted((r["ari"] for r in records), reverse=True)
    by_set = {(r["features"], r["reduction"]): r for r in records}
    # product text groups the 7 Flipkart departments far better than chance; colour alone barely does
    assert by_set["tfidf", "pca"]["ari"] > 0.15
    assert by_set["color_hist", "pca"]["ari"] < by_set["tfidf", "pca"]["ari"]
    assert by_set["tfidf", "tsne"]["dims"] == 2


def test_report_is_self_contained_and_complete(study, tmp_path):
    json_path, html_path = write_report(study, tmp_path, source="flipkart sample")
    records = json.loads(json_path.read_text())
    assert len(records) == 6
    assert (tmp_path / "clusters_vs_categories.csv").exists()  # the whole matrix, beside the report
    assert {"features", "reduction", "ari", "ami", "nmi", "silhouette", "seconds"} <= set(records[0])
    html = html_path.read_text()
    assert "<table" in html and "Misplaced products" in html
    # no external resource: every image is an embedded data: URI
    assert not re.search(r'src="(?!data:)', html)
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3  # one map pair per feature set
    assert 'src="data:image/jpeg;base64,' in html  # misplaced products show their photo
    best = study.best()
    assert f"{100 * best.matching.accuracy:.1f} %" in html
    for category in best.matching.categories:
        assert html_lib.escape(category) in html


def test_command_writes_the_report(flipkart_dir, tmp_path, capsys):
    args = ["--features", "bow", "--reductions", "pca", "--sample", "120", "--no-progress"]
    code = main(["explore", str(flipkart_dir), "--report", str(tmp_path), *args])
    assert code == 0
    records = json.loads((tmp_path / "clustering.json").read_text())
    assert [(r["features"], r["reduction"], r["n"]) for r in records] == [("bow", "pca", 120)]
    assert (tmp_path / "report.html").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "bow" in out
    assert " ARI    AMI    NMI " in out and "AMI is NMI corrected for chance" in out
    # the closing line names every file written, the whole cluster-vs-category matrix too
    written = [tmp_path / name for name in ("clustering.json", "clusters_vs_categories.csv", "report.html")]
    assert all(path.is_file() for path in written)
    assert "wrote {}, {} and {} in ".format(*written) in out


def test_command_refuses_an_unknown_feature_set(flipkart_dir, tmp_path, capsys):
    code = main(["explore", str(flipkart_dir), "--report", str(tmp_path), "--features", "tfidf+nope"])
    assert code == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "clustering.json").exists()


def test_each_feature_set_is_studied_on_the_products_it_describes(flipkart_sample):
    frame = flipkart_sample.copy()
    frame.loc[:29, ["title", "description"]] = ""  # 30 products without any text
    frame.loc[30:39, "image"] = None  # 10 without photo
    study = FeasibilityStudy(features=["bow", "color_hist", "bow+color_hist"], reductions=["pca"], progress=False)
    by_set = {r["features"]: r for r in study.run(frame).records()}
    with_photo = frame["image"].notna().to_numpy()
    assert by_set["bow"]["n"] == 120
    assert by_set["color_hist"]["n"] == with_photo.sum() <= 140
    assert by_set["bow+color_hist"]["n"] == (with_photo & (frame.index >= 30)).sum() == 110  # text and photo


def test_a_feature_set_that_cannot_be_extracted_is_skipped_and_reported(flipkart_sample, tmp_path):
    from prodcat.features.base import Extractor, register

    @register
    class NoKeypoints(Extractor):
        name = "test_explore_no_keypoints"
        modality = "image"

        def fit(self, frame, y=None):
            raise ValueError("no readable photo with keypoints in the catalogue")

        def transform(self, frame):
            raise AssertionError("never fitted")

    features = ["bow", NoKeypoints.name, f"bow+{NoKeypoints.name}"]
    result = FeasibilityStudy(features=features, reductions=["pca"], progress=False).run(flipkart_sample)
    assert [r["features"] for r in result.records()] == ["bow"]
    assert set(result.skipped) == {NoKeypoints.name, f"bow+{NoKeypoints.name}"}
    _, html_path = write_report(result, tmp_path)
    assert "Not studied" in html_path.read_text() and "keypoints" in html_path.read_text()


def test_an_extractor_that_cannot_load_here_is_skipped_not_a_traceback(flipkart_sample):
    """An optional weights package not installed, or an encoder neither cached nor reachable offline, ended the
    whole study in a traceback (exit 1); like an extractor that cannot fit the catalogue, its sets are skipped."""
    from prodcat.features.base import Extractor, register

    def unloadable(name: str, error: Exception) -> str:
        def fit(self, frame, y=None):
            raise error

        register(type(name, (Extractor,), {"name": name, "modality": "text", "fit": fit, "transform": fit}))
        return name

    missing_package = unloadable("test_explore_no_package", ModuleNotFoundError("needs the weights package x"))
    offline = unloadable("test_explore_offline", OSError("not reachable on the Hugging Face hub (offline?)"))
    features = ["bow", missing_package, f"bow+{offline}"]
    result = FeasibilityStudy(features=features, reductions=["pca"], progress=False).run(flipkart_sample)
    assert [r["features"] for r in result.records()] == ["bow"]
    assert result.skipped == {
        missing_package: "needs the weights package x",
        f"bow+{offline}": f"{offline}: not reachable on the Hugging Face hub (offline?)",  # which block failed
    }


def test_category_names_with_dollars_or_of_any_length_are_drawn_as_written(tmp_path, make_products):
    """Matplotlib reads text between two '$' as mathtext: a category '$_$' ended the study in the parser's
    traceback after every run was done, 'Gifts $5 to $10' lost its dollars; a 3,000-character category made each
    map 19,000 pixels wide. The legend now escapes the dollars and cuts long names (the tables keep them whole)."""
    import base64
    import io

    from PIL import Image

    from prodcat.explore.report import LEGEND_CHARS, legend_label

    names = ["Gifts $5 to $10", "$_$ odd", "A" * 3000]
    frame = make_products([f"{KIND_WORDS[i % 3]} {i}" for i in range(30)], [names[i % 3] for i in range(30)])
    result = FeasibilityStudy(features=["tfidf"], reductions=["tsne"], progress=False).run(frame)
    _, html_path = write_report(result, tmp_path)
    html = html_path.read_text()
    (png,) = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    width, _ = Image.open(io.BytesIO(base64.b64decode(png))).size
    assert width < 1200  # the figure's own 12 inches at 80 dpi, not stretched by a legend entry
    assert "A" * 3000 in html and html_lib.escape("Gifts $5 to $10") in html  # whole in the report's text
    assert legend_label("Gifts $5 to $10") == r"Gifts \$5 to \$10"  # drawn with its dollars
    assert legend_label("A" * 3000) == "A" * (LEGEND_CHARS - 1) + "…"


def test_a_misplaced_products_title_is_shortened_as_its_description(tmp_path, make_products):
    """A 100,000-character title (the loaders' limit) was written whole into its card of the report."""
    from prodcat.explore.report import TITLE_CHARS

    titles = [f"{KIND_WORDS[i % 3]} {i}" for i in range(30)]
    titles[0] = "watch analog steel dial " + "x" * 100_000  # a Kitchen product that reads as a watch
    frame = make_products(titles, [["Kitchen", "Watches", "Baby"][i % 3] for i in range(30)])
    result = FeasibilityStudy(features=["tfidf"], reductions=["tsne"], progress=False).run(frame)
    html = write_report(result, tmp_path)[1].read_text()
    assert "<b>watch analog steel dial xxx" in html  # shown among the misplaced products
    assert "x" * TITLE_CHARS not in html


def _products_of_categories(make_products, categories: int, name: str):
    """4 products in each of ``categories`` categories named ``f"{name} NN"``, each category with words of its own."""
    kinds = [i % categories for i in range(4 * categories)]
    return make_products(
        [f"word{k} thing{k} item {i}" for i, k in enumerate(kinds)], [f"{name} {k:02d}" for k in kinds]
    )


@pytest.mark.parametrize(("categories", "said"), [(24, True), (3, False)])
def test_maps_of_many_categories_say_why_they_have_no_legend(tmp_path, categories, said, make_products):
    """Past 20 categories the maps were drawn on a continuous colour scale without a legend, and the page said
    nothing of it: 60 Flipkart categories at level 2 in hues no key named, close ones for different categories."""
    frame = _products_of_categories(make_products, categories, "category")
    result = FeasibilityStudy(features=["tfidf"], reductions=["tsne"], progress=False).run(frame)
    _, html_path = write_report(result, tmp_path)
    note = f"With {categories} categories the maps have no legend: each category's name (its last level"
    assert (note in " ".join(html_path.read_text().split())) == said


@pytest.mark.parametrize("categories", [24, 3])
def test_maps_of_many_categories_name_each_category_where_its_products_are(monkeypatch, categories, make_products):
    """Past 20 categories (27 on Rakuten, 84 on fashion at level 3) the maps had neither legend nor names: hues of
    one continuous scale, no telling which category was where. Each name is now written at the median of its
    products (left) and of the cluster matched to it (right), in black on a white outline; a legend below 21."""
    from prodcat.explore import report

    frame = _products_of_categories(make_products, categories, "Shop > category")
    result = FeasibilityStudy(features=["tfidf"], reductions=["tsne"], level=None, progress=False).run(frame)
    (run,) = result.runs
    drawn = []
    monkeypatch.setattr(report, "figure_data_uri", lambda fig, dpi: drawn.append(fig) or "")
    drawn_pair = report.scatter_pair(result, run, report.category_palette(sorted(set(result.categories))))
    true_panel, cluster_panel = drawn[0].axes
    if categories <= report.LEGEND_MAX:
        assert not true_panel.texts and not cluster_panel.texts and drawn[0].legends
        return
    written = {text.get_text(): text for text in true_panel.texts}
    unnamed = [name.removeprefix("Shop > ") for name in drawn_pair["unnamed"].get("left", [])]
    # the last level: 'Shop' says nothing; each category named on the map or listed below it
    assert sorted([*written, *unnamed]) == [f"category {c:02d}" for c in range(categories)]
    for panel in (true_panel, cluster_panel):
        panel.figure.canvas.draw()
        boxes = [text.get_window_extent() for text in panel.texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    for name, text in written.items():
        members = result.categories_of(run) == f"Shop > {name}"
        # at the median of its products, or one label height above or below it (in pixels)
        median, at = true_panel.transData.transform([np.median(run.points[members], axis=0), text.get_position()])
        line = text.get_window_extent().height + report.LABEL_PADDING
        assert at[0] == pytest.approx(median[0])
        assert min(abs(at[1] - median[1] - shift) for shift in (0, line, -line)) == pytest.approx(0, abs=1e-6)
        (outline,) = text.get_path_effects()
        assert outline._gc["foreground"] == "white"
    matched = {run.matching.assignment[c].removeprefix("Shop > ") for c in np.unique(run.clusters)}
    right_unnamed = {name.removeprefix("Shop > ") for name in drawn_pair["unnamed"].get("right", [])}
    assert sorted([*(text.get_text() for text in cluster_panel.texts), *right_unnamed]) == sorted(matched)


def test_map_labels_never_overlap_the_first_placed_first_else_a_line_above_or_below():
    from prodcat.explore.report import place_labels

    anchors = np.array([[100, 100], [110, 102], [90, 98], [105, 101], [300, 300]], dtype=float)
    sizes = np.array([[40, 10], [40, 10], [40, 10], [40, 10], [40, 10]], dtype=float)
    assert place_labels(anchors, sizes) == [
        (100, 100),  # where its products are
        (110, 112),  # one label height above
        (90, 88),  # below
        None,  # no room at its place, above or below: left unwritten
        (300, 300),
    ]
    assert place_labels(np.empty((0, 2)), np.empty((0, 2))) == []


def test_a_category_is_named_on_a_map_by_as_many_last_levels_as_set_it_apart():
    from prodcat.explore.report import MAP_LABEL_CHARS, map_labels

    paths = ["Apparel > Topwear > Tshirts", "Apparel > Accessories", "Footwear > Accessories", "Gifts $5", "B" * 99]
    assert map_labels(paths) == {
        "Apparel > Topwear > Tshirts": "Tshirts",
        "Apparel > Accessories": "Apparel > Accessories",
        "Footwear > Accessories": "Footwear > Accessories",
        "Gifts $5": r"Gifts \$5",  # drawn with its dollar, not read as mathtext
        "B" * 99: "B" * (MAP_LABEL_CHARS - 1) + "…",
    }


def test_a_feature_sets_map_is_a_tsne_of_its_features_whatever_reduction_clustered_it(flipkart_sample, study):
    """Since t-SNE left the default reductions, a run's map was a t-SNE of the points KMeans clustered: of the 10-D
    UMAP (tight blobs that look far better separated than the features are) or of the PCA, and another map of the
    same feature set when --reductions added tsne, under the same caption '2-D t-SNE of the best feature sets'."""
    from prodcat.explore.report import points_2d

    without_tsne = FeasibilityStudy(features=["tfidf"], reductions=["pca"], progress=False).run(flipkart_sample)
    (pca_run,) = without_tsne.runs
    (tsne_run,) = [run for run in study.runs if (run.features, run.reduction) == ("tfidf", "tsne")]
    np.testing.assert_allclose(points_2d(without_tsne, pca_run), tsne_run.points, atol=1e-4)


@pytest.mark.parametrize("feature_space", [True, False])
def test_a_feature_sets_map_is_drawn_on_one_thread_as_its_runs_are(monkeypatch, make_products, feature_space):
    """Since each run reduces on one BLAS/OpenMP thread (8d02f90), the t-SNE maps of a study without ``tsne`` were
    the last reduction left on every thread of the command's process: their picture could differ from a ``tsne``
    run's, and between machines. They are computed on one thread too, whatever the process has."""
    import dataclasses

    from threadpoolctl import threadpool_info, threadpool_limits

    from prodcat.explore.reduction import TSNE2D
    from prodcat.explore.report import points_2d

    threads = []
    fit = TSNE2D.fit

    def fitted_on(self, X, y=None):
        threads.append(max(pool["num_threads"] for pool in threadpool_info()))
        return fit(self, X, y)

    monkeypatch.setattr(TSNE2D, "fit", fitted_on)
    titles = [f"{KIND_WORDS[i % 3]} {['red', 'blue', 'green', 'big', 'small'][i % 5]}" for i in range(30)]
    frame = make_products(titles, ["Kitchen", "Watches", "Baby"] * 10)
    result = FeasibilityStudy(features=["tfidf"], reductions=["pca"], progress=False).run(frame)
    if not feature_space:  # a result without its blocks: the map is a t-SNE of the run's points
        result = dataclasses.replace(result, feature_space=None)
    with threadpool_limits(2):  # what the command's process has on two cores
        xy = points_2d(result, result.runs[0])
    assert threads == [1]
    assert xy.shape == (30, 2)


def test_a_matrix_of_many_categories_shows_the_largest_with_their_clusters_on_the_diagonal(tmp_path):
    """Fashion's 84 x 84 matrix, rows alphabetical, was a page-wide wall of mostly zeros. Past 30 categories the
    report shows the 30 largest, each with its matched cluster on the diagonal, the rest summed in a last row and
    column; the whole matrix is a CSV beside it, in the same order."""
    import pandas as pd

    from prodcat.explore.clustering import ClusteringRun
    from prodcat.explore.metrics import match_clusters
    from prodcat.explore.report import matrix_frame, matrix_table

    rng = np.random.default_rng(0)
    sizes = rng.permutation(np.arange(5, 45))  # 40 categories of distinct sizes, in no order of name
    categories = np.repeat([f"category {i:02d}" for i in range(40)], sizes)
    clusters = np.repeat((np.arange(40) * 7) % 40, sizes)  # each category its own cluster, ids shuffled
    clusters[::11] = 0  # and some products in cluster 0 whatever their category
    rows = np.arange(len(categories))
    matching = match_clusters(categories, clusters)
    run = ClusteringRun("tfidf", "pca", rows, np.zeros((len(rows), 2)), clusters, {}, matching, 0.0, 0.0)

    table = matrix_table(run, limit=30)
    counts = np.array([[count for count, _ in row["cells"]] for row in table["rows"]])
    by_size = [f"category {i:02d}" for i in np.argsort(-sizes, kind="stable")]
    assert [row["category"] for row in table["rows"]] == [*by_size[:30], "the other 10 categories"]
    assert table["columns"][-1] == "the other 10 clusters" and len(table["columns"]) == 31
    for i, category in enumerate(by_size[:30]):
        assert table["columns"][i].endswith(f"→ {category}")  # its matched cluster in its place: the diagonal
        assert counts[i, i] == matching.matrix[matching.categories.index(category)].max()
    assert counts.sum() == len(categories)  # nothing dropped: the rest is summed
    assert counts[-1].sum() == np.sort(sizes)[:10].sum()

    whole = matrix_frame(run)
    assert whole.shape == (40, 40) and list(whole.index) == by_size and whole.to_numpy().sum() == len(categories)
    whole.to_csv(tmp_path / "matrix.csv")
    assert pd.read_csv(tmp_path / "matrix.csv", index_col=0).equals(whole)


def test_categories_no_cluster_is_matched_to_leave_the_matched_pairs_on_the_diagonal():
    """KMeans may return fewer clusters than categories (products of identical features); a category left without a
    cluster and larger than matched ones took a row of the diagonal, and every matched cluster after it stood one row
    above its category ("cluster 0 → shoes" in the bags' row). Matched categories now come first, then the others,
    in the whole matrix and among the largest shown."""
    from prodcat.explore.clustering import ClusteringRun
    from prodcat.explore.metrics import match_clusters
    from prodcat.explore.report import matrix_frame, matrix_table

    categories = np.repeat(["bags", "shoes", "watches"], [8, 6, 5])
    clusters = np.repeat([0, 1, 0, 1], [4, 4, 6, 5])  # bags split between the shoes' and the watches' clusters
    matching = match_clusters(categories, clusters)
    rows = np.arange(len(categories))
    run = ClusteringRun("tfidf", "pca", rows, np.zeros((len(rows), 2)), clusters, {}, matching, 0.0, 0.0)

    whole = matrix_frame(run)
    assert list(whole.index) == ["shoes", "watches", "bags"]
    assert list(whole.columns) == ["cluster 0 → shoes", "cluster 1 → watches"]
    assert whole.to_numpy().tolist() == [[6, 0], [0, 5], [4, 4]]
    table = matrix_table(run, limit=2)  # the two largest, bags and shoes
    assert [row["category"] for row in table["rows"]] == ["shoes", "bags", "the other 1 categories"]
    assert table["columns"] == ["cluster 0 → shoes", "the other 1 clusters"]
    assert [[count for count, _ in row["cells"]] for row in table["rows"]] == [[6, 0], [4, 4], [0, 5]]


def test_category_glyphs_no_font_has_are_named_in_one_warning_not_drawn_silently(
    tmp_path, caplog, recwarn, make_products
):
    """A CJK or emoji category name was drawn as empty boxes on the maps, with one matplotlib warning per glyph and
    figure naming no category. DejaVu Sans is now followed by any installed CJK or emoji font, and characters none of
    them has are named once, in one warning."""
    import logging

    from prodcat.figures import figure_font_families, installed_figure_fonts, missing_glyphs

    assert figure_font_families({"Noto Sans CJK JP", "Liberation Serif", "Noto Emoji"}) == [
        "DejaVu Sans",
        "Noto Sans CJK JP",
        "Noto Emoji",
    ]
    assert missing_glyphs(["Bags …", "服装 👟", "Sacs à dos"], ["DejaVu Sans"]) == ["服", "装", "👟"]

    names = ["服装", "Shoes 👟", "Bags"]
    frame = make_products([f"{KIND_WORDS[i % 3]} {i}" for i in range(30)], [names[i % 3] for i in range(30)])
    result = FeasibilityStudy(features=["tfidf"], reductions=["tsne"], progress=False).run(frame)
    with caplog.at_level(logging.WARNING, logger="prodcat.figures"):
        write_report(result, tmp_path)
    missing = missing_glyphs(names, figure_font_families(set()))  # what DejaVu Sans alone lacks
    warned = [record.getMessage() for record in caplog.records if "empty boxes" in record.getMessage()]
    if missing_glyphs(names, installed_figure_fonts()):
        assert len(warned) == 1
        assert all(f"{c} (U+{ord(c):04X})" in warned[0] for c in missing)
    else:  # a CJK and an emoji font are installed: drawn, nothing to say
        assert not warned
    assert not [w for w in recwarn if "missing from font" in str(w.message)]

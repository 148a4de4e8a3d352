"""Clustering metrics, cluster matching, block combination and sampling of the feasibility study."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import MethodType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from prodcat.explore import clustering
from prodcat.explore.clustering import (
    FeasibilityStudy,
    check_feature_sets,
    cluster_points,
    distinct_rows,
    sample_covering_every_label,
)
from prodcat.explore.metrics import clustering_scores, match_clusters
from prodcat.explore.reduction import TSNE2D, KNNSmoother, UMAPReducer, combine_blocks, make_reduction
from prodcat.features import base


def blobs(n_per: int = 60, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well separated Gaussian blobs in 5-D and their category names."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10, size=(k, 5))
    points = np.concatenate([c + rng.normal(size=(n_per, 5)) for c in centres])
    categories = np.repeat([f"cat{i}" for i in range(k)], n_per)
    return points, categories


def test_perfect_clustering_scores_one():
    points, categories = blobs()
    clusters = np.unique(categories, return_inverse=True)[1]
    scores = clustering_scores(categories, clusters, points)
    assert scores["ari"] == pytest.approx(1.0)
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["silhouette"] > 0.7
    assert match_clusters(categories, clusters).accuracy == 1.0


def test_permuted_cluster_ids_still_score_one():
    points, categories = blobs()
    codes = np.unique(categories, return_inverse=True)[1]
    permuted = np.array([3, 0, 2, 1])[codes] + 10  # other ids, other order
    scores = clustering_scores(categories, permuted, points)
    assert scores["ari"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)
    matching = match_clusters(categories, permuted)
    assert matching.accuracy == 1.0
    assert list(matching.predicted(permuted)) == list(categories)


def test_random_clusters_score_about_zero():
    rng = np.random.default_rng(1)
    categories = rng.choice(["a", "b", "c", "d", "e"], size=3000)
    clusters = rng.integers(0, 5, size=3000)
    scores = clustering_scores(categories, clusters, rng.normal(size=(3000, 3)))
    assert abs(scores["ari"]) < 0.01
    assert scores["nmi"] < 0.01
    assert abs(scores["silhouette"]) < 0.05


def test_hungarian_matching_pairs_each_cluster_with_its_majority_category():
    categories = ["a", "a", "a", "b", "b", "c", "c"]
    clusters = [7, 7, 5, 5, 5, 9, 7]
    matching = match_clusters(categories, clusters)
    assert matching.assignment == {7: "a", 5: "b", 9: "c"}
    assert matching.accuracy == pytest.approx(5 / 7)
    # columns reordered so that the matched cluster of category i is column i
    assert matching.categories == ["a", "b", "c"]
    assert matching.clusters == [7, 5, 9]
    np.testing.assert_array_equal(matching.matrix, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_matching_with_more_clusters_than_categories_leaves_one_unmatched():
    categories = ["a", "a", "b", "b", "b"]
    clusters = [0, 0, 1, 1, 2]
    matching = match_clusters(categories, clusters)
    assert matching.assignment == {0: "a", 1: "b"}
    assert matching.clusters[-1] == 2  # unmatched cluster comes last
    assert list(matching.predicted(clusters)) == ["a", "a", "b", "b", None]
    assert matching.accuracy == pytest.approx(4 / 5)


def test_the_matched_accuracy_comes_with_its_chance_level():
    """12 products in 11 categories: any 11 clusters match 10 products or more (83%), so the matched accuracy read
    0.917 for clusters that put the two products of k0 apart (ARI below 0), with nothing to tell it was matching alone.
    Its chance level, the mean accuracy of the same clusters dealt at random, is now beside it."""
    categories = ["k0", "k0", *(f"k{i}" for i in range(1, 11))]
    clusters = [0, 1, 1, *range(2, 11)]  # k0's pair split, one of them with k1's product
    matching = match_clusters(categories, clusters)
    assert matching.accuracy == pytest.approx(11 / 12)
    assert 10 / 12 <= matching.chance <= 1 and matching.accuracy - matching.chance < 0.1
    assert match_clusters(categories, clusters, seed=0).chance == matching.chance  # seeded: the same each run
    # many products a category: perfect clusters far above chance, random ones at it
    _, categories = blobs()
    perfect = match_clusters(categories, np.unique(categories, return_inverse=True)[1])
    assert perfect.accuracy == 1.0 and 0.25 <= perfect.chance < 0.35
    random = match_clusters(categories, np.random.default_rng(0).integers(0, 4, size=len(categories)))
    assert random.accuracy == pytest.approx(random.chance, abs=0.05)


def test_the_console_the_json_and_the_report_give_the_chance_level(tmp_path, capsys):
    """`prodcat explore` on 12 products in 11 categories printed 'acc. 0.833' beside an ARI of -0.015 and the report's
    card '83 % matched accuracy', with no chance level to read it against."""
    import json

    from prodcat.cli import main

    data = tmp_path / "products.csv"
    words = ["mug", "watch", "train", "bib", "lamp", "sofa", "kettle", "ring", "scarf", "drill", "phone", "pillow"]
    rows = {"product_id": [f"p{i}" for i in range(12)], "title": [f"{word} for sale" for word in words]}
    pd.DataFrame(rows | {"category": ["k0", *(f"k{i}" for i in range(11))]}).to_csv(data, index=False)
    out = tmp_path / "report"
    args = ["--features", "tfidf", "--reductions", "pca", "--report", str(out), "--no-progress"]
    assert main(["explore", str(data), *args]) == 0
    printed = capsys.readouterr().out
    assert "chance is its level for the same clusters dealt at random" in printed
    (header,) = [line.split() for line in printed.splitlines() if line.startswith("features")]
    (row,) = [line.split() for line in printed.splitlines() if line.startswith("tfidf")]
    chance = float(row[header.index("chance")])
    (record,) = json.loads((out / "clustering.json").read_text())
    assert record["matched_accuracy_chance"] == pytest.approx(chance, abs=5e-4) and chance >= 10 / 12
    html = " ".join((out / "report.html").read_text().split())
    assert f"matched accuracy (chance {100 * chance:.0f} %)" in html
    assert f"(chance level {100 * record['matched_accuracy_chance']:.1f} %)" in html


def _mugs_watches_and_trains(title_end: Callable[[int], str]) -> pd.DataFrame:
    """30 products, text only, of three categories in turn (Kitchen mugs, Watches, Toys trains), each title ended
    by ``title_end(i)``."""
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    return pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(30)],
            "title": [f"{words[i % 3]} {title_end(i)}" for i in range(30)],
            "description": "",
            "image": None,
            "category": ["Kitchen", "Watches", "Toys"] * 10,
        }
    )


def test_a_run_reduces_and_clusters_on_one_thread_whatever_its_jobs(monkeypatch):
    """With --jobs 1 the runs were reduced and clustered in the command's own process on every BLAS and OpenMP thread
    it had, with --jobs 2 in workers on one each: the nearest-neighbour distances, summed in another order, moved UMAP
    (bovw_orb on 42 Flipkart products: ARI 0.050 with --jobs 1, 0.104 with --jobs 2). A run now has one thread."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = []

    def clustered_on(points, n_clusters, **params):
        threads.append(max(pool["num_threads"] for pool in threadpool_info()))
        return cluster_points(points, n_clusters, **params)

    monkeypatch.setattr(clustering, "cluster_points", clustered_on)
    frame = _mugs_watches_and_trains(lambda i: ["red", "blue", "green", "big", "small"][i % 5])
    with threadpool_limits(2):  # what the command's process has on two cores
        FeasibilityStudy(features=["tfidf"], reductions=["pca"], n_jobs=1, progress=False).run(frame)
    assert threads == [1]


def test_knn_smoothing_of_one_dimension_keeps_the_products_apart():
    """--components 1 with pca+knn: the smoothed rows were normalised to -1 or 1, every product one of two points, and
    KMeans' clusters of them scored a silhouette of 1.000 (42 Flipkart products: tfidf ARI 0.087, pca alone 0.199)."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 20)
    points = (np.array([-5.0, 1.0, 6.0])[groups] + rng.normal(scale=0.3, size=60))[:, None]
    smoothed = KNNSmoother().fit_transform(points)
    assert smoothed.shape == (60, 1) and len(np.unique(smoothed)) > 2
    clusters = cluster_points(smoothed, 3, seed=0)
    assert clustering_scores(groups.astype(str), clusters, smoothed)["ari"] == pytest.approx(1.0)


def test_a_feature_sets_blocks_are_combined_on_one_thread(monkeypatch, make_products):
    """The runs reduce on one thread (8d02f90), but their input, the combined blocks, was computed in the command's
    process on every thread: the SVD of Flipkart's TF-IDF differed by up to 7e-5 between one thread and two, so the
    machine's cores still moved the runs and the report's maps. The blocks are combined on one thread too."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = []

    def combined_on(blocks, **params):
        threads.append(max(pool["num_threads"] for pool in threadpool_info()))
        return combine_blocks(blocks, **params)

    monkeypatch.setattr(clustering, "combine_blocks", combined_on)
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    titles = [f"{words[i % 3]} {['red', 'blue', 'green', 'big', 'small'][i % 5]}" for i in range(30)]
    frame = make_products(titles, ["Kitchen", "Watches", "Toys"] * 10)
    with threadpool_limits(2):  # what the command's process has on two cores
        FeasibilityStudy(features=["tfidf"], reductions=["pca"], n_jobs=1, progress=False).run(frame)
    assert threads == [1]


def test_kmeans_recovers_separated_blobs():
    points, categories = blobs(seed=3)
    clusters = cluster_points(points, 4, seed=0)
    assert clustering_scores(categories, clusters, points)["ari"] == pytest.approx(1.0)


def test_combined_blocks_weigh_each_block_equally():
    rng = np.random.default_rng(0)
    dense = rng.normal(scale=100, size=(40, 300)).astype(np.float32)  # large norm, many dims
    sparse = sp.random(40, 500, density=0.05, random_state=0, format="csr") + sp.eye(40, 500, format="csr")
    combined = combine_blocks([dense, sparse], svd_components=10)
    assert combined.shape == (40, 300 + 10)
    dense_norms = np.linalg.norm(combined[:, :300], axis=1)
    sparse_norms = np.linalg.norm(combined[:, 300:], axis=1)
    np.testing.assert_allclose(dense_norms, sparse_norms, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(combined, axis=1), 1.0, rtol=1e-4)


def test_product_without_a_modality_keeps_a_zero_block():
    block = np.ones((3, 4), dtype=np.float32)
    block[1] = 0
    combined = combine_blocks([block, np.ones((3, 2), dtype=np.float32)])
    assert np.all(combined[1, :4] == 0) and np.all(combined[1, 4:] > 0)


def test_reductions_are_seeded_and_have_the_announced_shape():
    points, _ = blobs(n_per=30)
    pca = make_reduction("pca", points.shape, n_components=3).fit_transform(points)
    assert pca.shape == (120, 3)
    assert make_reduction("pca+knn", points.shape, n_components=3).fit_transform(points).shape == (120, 3)
    for name, dims in (("tsne", 2), ("umap", 10)):
        first = make_reduction(name, points.shape, seed=4).fit_transform(points)
        second = make_reduction(name, points.shape, seed=4).fit_transform(points)
        assert first.shape == (120, dims) and first.dtype == np.float32
        np.testing.assert_allclose(first, second)
    with pytest.raises(ValueError, match="unknown reduction 'pca\\+tsne'"):
        make_reduction("pca+tsne", points.shape)  # t-SNE now maps the blocks themselves: "tsne"


def test_knn_smoothing_tightens_groups_relative_to_their_distance():
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(0)
    centres = normalize(rng.normal(size=(2, 20)))
    categories = np.repeat([0, 1], 200)
    points = normalize(centres[categories] + 0.4 * rng.normal(size=(400, 20)))

    def spread_ratio(x: np.ndarray) -> float:
        # mean distance to the own group's centre over the distance between the two centres
        means = np.stack([x[categories == g].mean(axis=0) for g in (0, 1)])
        within = np.linalg.norm(x - means[categories], axis=1).mean()
        return float(within / np.linalg.norm(means[0] - means[1]))

    smoothed = KNNSmoother(n_neighbors=10, steps=2).fit_transform(points)
    assert smoothed.shape == (400, 20)
    np.testing.assert_allclose(np.linalg.norm(smoothed, axis=1), 1.0, rtol=1e-5)
    assert spread_ratio(smoothed) < 0.6 * spread_ratio(points)


def test_knn_smoothing_of_a_tiny_sample_keeps_its_groups_apart():
    """On a dozen products (a study takes 10) each neighbourhood of 10 held nearly every product: two steps
    averaged all of them into nearly the same mean, and KMeans clustered what was left (ARI 0.12 for three groups
    of four far apart, scored and ranked as any run). Neighbourhoods are capped at a third of the products."""
    points, categories = blobs(n_per=4, k=3)
    smoothed = make_reduction("pca+knn", points.shape).fit_transform(points)
    clusters = cluster_points(smoothed, 3, seed=0)
    assert clustering_scores(categories, clusters, smoothed)["ari"] == 1.0


def test_tsne_and_umap_handle_tiny_samples():
    points, _ = blobs(n_per=3, k=3)
    assert TSNE2D().fit_transform(points).shape == (9, 2)
    assert UMAPReducer().fit_transform(points).shape == (9, 7)  # at most n - 2 dimensions


def test_tsne_and_umap_accept_all_zero_rows():
    """A product none of whose words is in the vocabulary has an all-zero bag of words."""
    points, _ = blobs(n_per=20)
    points[:3] = 0
    for name in ("tsne", "umap"):
        assert np.isfinite(make_reduction(name, points.shape).fit_transform(points)).all()


def test_tsne_of_points_all_alike_is_finite():
    """openTSNE's PCA initialisation gave NaN for identical points, and KMeans failed the whole study on them."""
    assert np.isfinite(TSNE2D().fit_transform(np.ones((12, 5), dtype=np.float32))).all()


def test_umap_then_kmeans_separates_groups_that_kmeans_alone_mixes():
    """Two interleaved half-moons: near each other in space, apart along their neighbours."""
    from sklearn.datasets import make_moons

    moons, group = make_moons(300, noise=0.05, random_state=0)
    points = np.hstack([moons, 0.05 * np.random.default_rng(0).normal(size=(300, 8))])
    on_points = cluster_points(points, 2)
    on_umap = cluster_points(UMAPReducer(metric="euclidean").fit_transform(points), 2)
    assert clustering_scores(group, on_umap, points)["ari"] > 0.95
    assert clustering_scores(group, on_points, points)["ari"] < 0.6


def test_sample_covering_every_label_keeps_shares_and_rare_categories():
    labels = np.array(["big"] * 700 + ["mid"] * 250 + ["rare"] * 50)
    frame = pd.DataFrame({"product_id": [str(i) for i in range(1000)], "label": labels})
    sample = sample_covering_every_label(frame, labels, 100, seed=1)
    counts = sample["label"].value_counts()
    assert len(sample) == 100
    assert (counts["big"], counts["mid"], counts["rare"]) == (70, 25, 5)
    assert sample.index.is_monotonic_increasing  # catalogue order kept
    tiny = sample_covering_every_label(frame, labels, 3, seed=1)
    assert set(tiny["label"]) == {"big", "mid", "rare"}
    assert sample_covering_every_label(frame, labels, 5000) is frame


def test_unknown_feature_extractor_is_named_before_any_work():
    with pytest.raises(ValueError, match=r"unknown feature extractor.*no_such_thing.*known: .*tfidf"):
        check_feature_sets(["tfidf", "tfidf+no_such_thing"])


@pytest.mark.parametrize("feature_set", ["tfidf+", "+bow", "tfidf++bow", "+"])
def test_a_feature_set_with_an_empty_part_is_named_before_any_work(feature_set):
    """'tfidf+' was refused as 'unknown feature extractor(s): ; known: ...', naming an empty extractor."""
    with pytest.raises(ValueError) as refused:
        check_feature_sets(["tfidf", feature_set])
    assert str(refused.value) == (
        f"feature set(s) with an empty part: {feature_set!r}; join extractors by one '+', e.g. tfidf+effnet_lite0"
    )


def test_a_study_of_too_few_products_is_refused_with_the_reason():
    """Two products used to end in UMAP's or the vocabulary's own error."""
    frame = pd.DataFrame(
        {
            "product_id": ["a", "b"],
            "title": ["mug", "watch"],
            "description": "",
            "image": None,
            "category": ["Kitchen", "Watches"],
        }
    )
    study = FeasibilityStudy(features=["tfidf"], reductions=["umap"], progress=False)
    with pytest.raises(ValueError, match=r"2 labelled product\(s\): a feasibility study needs at least 10"):
        study.run(frame)


def test_a_catalogue_whose_category_column_was_not_found_is_said_so(tmp_path, capsys):
    """A table naming its categories 'label' was read unlabelled, and the study refused it as '0 labelled
    product(s): a feasibility study needs at least 10', never naming the column it had not found."""
    from prodcat.cli import main

    data = tmp_path / "products.csv"
    rows = {"product_id": [f"p{i}" for i in range(12)], "title": [f"mug {i}" for i in range(12)]}
    pd.DataFrame(rows | {"label": ["Kitchen", "Watches"] * 6}).to_csv(data, index=False)
    args = ["explore", str(data), "--features", "tfidf", "--reductions", "pca", "--no-progress"]
    assert main([*args, "--report", str(tmp_path / "report")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: none of the 12 products read has a category: if a column holds them, name it with --category-column"
    )
    assert main([*args, "--report", str(tmp_path / "report"), "--category-column", "label"]) == 0


def test_a_study_of_a_sample_says_so_and_records_how_to_draw_it_again(tmp_path, capsys):
    """With --sample, the console, clustering.json and the report said '12 products' as of a catalogue of 12: nothing
    told a sample's scores from the catalogue's, and clustering.json held no seed to draw it again."""
    import json

    from prodcat.cli import main

    data = tmp_path / "products.csv"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches", "Toys"] * 10}).to_csv(data, index=False)
    args = ["explore", str(data), "--features", "tfidf", "--reductions", "pca", "--no-progress", "--seed", "3"]
    studies = [
        (["--sample", "12"], 12, 30, "12 products (a sample of the 30 labelled),"),
        ([], 30, None, "30 products,"),
    ]
    for sample, n, sampled_from, said in studies:
        out = tmp_path / f"report-{n}"
        assert main([*args, *sample, "--report", str(out)]) == 0
        assert capsys.readouterr().out.startswith(f"{said} 3 categories at level 1\n")
        (record,) = json.loads((out / "clustering.json").read_text())
        assert (record["n"], record["seed"], record["sampled_from"]) == (n, 3, sampled_from)
        assert ("(a stratified sample of its 30)" in (out / "report.html").read_text()) == bool(sample)


def test_a_study_with_nothing_to_study_says_so_in_one_line(tmp_path, capsys):
    """An empty --features or --reductions is refused by name; feature sets that all fail are listed with their
    reasons (here: no product has text, not the vectorizer's "empty vocabulary"), not as a Python dict."""
    from prodcat.cli import main

    data = tmp_path / "products.csv"
    rows = {"product_id": [f"p{i}" for i in range(12)], "title": "", "description": "", "image": ""}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches"] * 6}).to_csv(data, index=False)
    report = ["--report", str(tmp_path / "report"), "--no-progress"]
    assert main(["explore", str(data), "--features", " , ", *report]) == 2
    assert "error: --features names nothing to study (' , ')" in capsys.readouterr().err
    assert main(["explore", str(data), "--features", "tfidf", "--reductions", ",", *report]) == 2
    assert "error: --reductions names nothing to study (',')" in capsys.readouterr().err
    assert main(["explore", str(data), "--features", "tfidf,bow", "--reductions", "pca", *report]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: no feature set could be studied (tfidf: no product has text; bow: no product has text)"


def _fake_blocks(**parts: object) -> SimpleNamespace:
    """A stand-in for the study's block store: ``get``, ``available``, ``modality`` and ``seconds`` as given, and
    the store's own ``combined`` on top of them."""
    blocks = SimpleNamespace(seed=0, **parts)
    blocks.combined = MethodType(clustering._BlockStore.combined, blocks)
    return blocks


def test_a_combined_feature_set_is_studied_on_the_products_having_all_its_blocks():
    """Zero blocks of the products missing a modality would cluster them together, whatever their category."""
    categories = np.array(["a", "b"] * 15)
    text_rows = np.arange(30) < 27  # the last 3 products have no text
    photo_rows = np.arange(30) >= 2  # the first 2 have no photo
    blocks = _fake_blocks(
        get=lambda name: np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32),
        available={"text": text_rows, "photo": photo_rows},
        modality={"text": "text", "photo": "image"},
        seconds={"text": 0.0, "photo": 0.0},
    )
    study = FeasibilityStudy(progress=False)
    both = study._prepare("text+photo", blocks, categories, {})
    assert both.rows.tolist() == list(range(2, 27))
    assert study._prepare("text", blocks, categories, {}).rows.tolist() == list(range(27))


def test_a_feature_set_describing_fewer_products_than_a_study_needs_is_skipped():
    """4 products with a photo among 30 were clustered and scored ARI 1.000, the best run of the study."""
    blocks = _fake_blocks(
        get=lambda name: np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32),
        available={"tfidf": np.ones(30, dtype=bool), "color_hist": np.arange(30) < 4},
        modality={"tfidf": "text", "color_hist": "image"},
        seconds={"tfidf": 0.0, "color_hist": 0.0},
    )
    skipped: dict[str, str] = {}
    study = FeasibilityStudy(progress=False)
    categories = np.array(["a", "b", "c"] * 10)
    assert study._prepare("tfidf+color_hist", blocks, categories, skipped) is None
    assert study._prepare("color_hist", blocks, categories, skipped) is None
    assert study._prepare("tfidf", blocks, categories, skipped) is not None
    assert skipped == {
        "tfidf+color_hist": "only 4 product(s) have text and a readable photo: a study needs at least 10",
        "color_hist": "only 4 product(s) have a readable photo: a study needs at least 10",
    }


def test_feature_sets_of_corrupt_photos_are_skipped_each_reason_said_once(tmp_path, capsys, monkeypatch):
    """Every photo there but corrupt: 'bovw_orb (bovw_orb: no readable photo ...)' named the extractor twice, and
    color_hist, which fits on zero rows, was 'only 0 product(s) have a photo'. Within a combined set the failing
    extractor is still named, as the reason would not say which block it is."""
    from prodcat.cli import main

    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "photos").mkdir()
    ids = [f"p{i}" for i in range(12)]
    for product_id in ids:
        (tmp_path / "photos" / f"{product_id}.jpg").write_bytes(b"not a jpeg")
    titles = ["red mug tea", "steel wrist watch"] * 6
    rows = {"product_id": ids, "title": titles, "description": "", "image": [f"photos/{i}.jpg" for i in ids]}
    data = tmp_path / "products.csv"
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches"] * 6}).to_csv(data, index=False)
    features = "bovw_orb,color_hist,tfidf+bovw_orb"
    args = ["explore", str(data), "--features", features, "--reductions", "pca", "--report", str(tmp_path / "report")]
    assert main([*args, "--no-progress"]) == 2
    no_keypoints = "no readable photo with keypoints in the catalogue; cannot fit a codebook"
    assert capsys.readouterr().err.strip() == (
        f"error: no feature set could be studied (bovw_orb: {no_keypoints}; color_hist: no product has a readable "
        f"photo; tfidf+bovw_orb: bovw_orb: {no_keypoints})"
    )


def test_the_study_seed_reaches_the_extractors_that_learn_with_randomness(monkeypatch, tmp_path, jpeg_bytes):
    """Word2Vec and the visual-word codebooks take the study's seed, unless the study is given theirs."""

    made = {}
    real = base.make_extractor

    def recording(name, **params):
        def stop(frame):
            raise ValueError("recorded")  # before any fitting

        made[name] = real(name, **params)
        made[name].fit_transform = stop
        return made[name]

    monkeypatch.setattr(base, "make_extractor", recording)
    photo = tmp_path / "mug.jpg"
    photo.write_bytes(jpeg_bytes())
    frame = pd.DataFrame({"product_id": ["a"], "title": ["mug"], "description": [""], "image": [str(photo)]})
    blocks = clustering._BlockStore(frame, {"bovw_orb": {"random_state": 5}}, progress=False, seed=7)
    for name in ("word2vec", "bovw_sift", "bovw_orb"):
        with pytest.raises(ValueError, match="recorded"):
            blocks.get(name)
    assert made["word2vec"].seed == 7 and made["bovw_sift"].random_state == 7
    assert made["bovw_orb"].random_state == 5


def test_a_study_where_each_product_is_alone_in_its_category_is_refused(make_products):
    """A --sample smaller than the categories (or a deep --level) used to print ARI 1.000 for every feature set:
    any clustering into one cluster per product matches one category per product."""
    frame = make_products([f"product {i}" for i in range(12)], [f"Top/leaf {i}" for i in range(12)])
    study = FeasibilityStudy(features=["tfidf"], reductions=["pca"], level=2, progress=False)
    with pytest.raises(ValueError, match=r"each of the 12 products is alone in its category at level 2"):
        study.run(frame)
    # the same for a feature set that describes only some products, each of another category
    categories = np.array(["a", "a", *(f"c{i}" for i in range(12))])
    blocks = _fake_blocks(
        get=lambda name: np.ones((14, 3), dtype=np.float32),
        available={"photo": np.arange(14) >= 2},
        modality={"photo": "image"},
        seconds={"photo": 0.0},
    )
    skipped: dict[str, str] = {}
    assert study._prepare("photo", blocks, categories, skipped) is None
    assert skipped == {"photo": "each of the 12 products it describes is alone in its category"}


def test_a_feature_set_that_cannot_tell_the_products_apart_is_skipped_not_scored_on_rounding_noise():
    """Identical texts gave identical word2vec vectors, which PCA turned into noise in the 7th decimal, which KMeans
    clustered and the report scored (ARI 0.04, silhouette 0.53, as if the texts said something)."""
    frame = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(30)],
            "title": "same title",
            "description": "same description",
            "image": None,
            "category": ["Kitchen", "Watches", "Baby"] * 10,
        }
    )
    study = FeasibilityStudy(features=["word2vec"], reductions=["pca", "pca+knn"], progress=False)
    with pytest.raises(ValueError, match=r"word2vec: its 30 products have only 1 distinct feature vector\(s\)"):
        study.run(frame)
    # two distinct texts among three categories: KMeans into 3 clusters would split one of them by noise
    two_texts = frame.assign(title=["mug", "watch"] * 15)
    with pytest.raises(ValueError, match=r"only 2 distinct feature vector\(s\) .* fewer than their 3 categories"):
        study.run(two_texts)
    three_texts = frame.assign(title=["mug", "watch", "bottle"] * 10)
    assert {run.scores["ari"] for run in study.run(three_texts).runs} == {1.0}


def test_distinct_rows_reads_dense_and_sparse_blocks_together():
    dense = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    sparse = sp.csr_matrix(np.array([[0, 2], [0, 2], [3, 0], [0, 2]], dtype=np.float32))
    assert distinct_rows([dense]) == 2
    assert distinct_rows([sparse]) == 2
    assert distinct_rows([dense, sparse]) == 3  # rows 0 and 1 alike in both blocks


@pytest.mark.parametrize("value", ["0", "-3"])
def test_explore_refuses_a_number_of_components_below_one_before_any_work(tmp_path, capsys, value):
    """--components 0 ended, after the features, in KMeans' 'Found array with 0 feature(s)'."""
    from prodcat.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["explore", str(tmp_path / "missing.csv"), "--report", str(tmp_path / "r"), "--components", value])
    assert stop.value.code == 2
    assert f"argument --components: must be at least 1, got {value}" in capsys.readouterr().err


def test_explore_refuses_zero_jobs_before_any_work(tmp_path, capsys):
    """--jobs 0 ended, after the catalogue was read, in joblib's 'n_jobs == 0 in Parallel has no meaning'."""
    from prodcat.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["explore", str(tmp_path / "missing.csv"), "--report", str(tmp_path / "r"), "--jobs", "0"])
    assert stop.value.code == 2
    assert "argument --jobs: must be 1 or more, or -1 for every core, got 0" in capsys.readouterr().err


def test_explore_says_which_rows_of_the_catalogue_it_skipped(tmp_path, caplog):
    """A malformed row was dropped without a word (the other commands name it)."""
    from prodcat.cli import main

    data = tmp_path / "products.csv"
    rows = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(12)],
            "title": ["red mug tea", "steel wrist watch"] * 6,
            "description": "",
            "image": "",
            "category": ["Kitchen", "Watches"] * 6,
        }
    )
    data.write_text(rows.to_csv(index=False) + "p12,a,b,c,d,e,f\n")
    report = tmp_path / "report"
    args = ["explore", str(data), "--features", "tfidf", "--reductions", "pca", "--report", str(report)]
    assert main([*args, "--no-progress"]) == 0
    assert "1 row issue(s) while reading" in caplog.text
    assert "row 14 (product p12)" in caplog.text


def many_tiny_categories(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """60 categories of 2 products each and a random clustering of the 120 into 60 clusters."""
    categories = np.repeat([f"cat{i}" for i in range(60)], 2)
    return categories, np.random.default_rng(seed).integers(0, 60, size=len(categories))


def test_ami_is_near_zero_for_a_random_clustering_of_many_tiny_categories_where_nmi_is_high():
    """NMI is not corrected for chance: random clusters of 60 pairs score about 0.8; AMI and ARI about 0."""
    categories, clusters = many_tiny_categories()
    scores = clustering_scores(categories, clusters, np.random.default_rng(1).normal(size=(len(clusters), 2)))
    assert scores["nmi"] > 0.7
    assert abs(scores["ami"]) < 0.05 and abs(scores["ari"]) < 0.05
    points, blob_categories = blobs()
    perfect = clustering_scores(blob_categories, np.unique(blob_categories, return_inverse=True)[1], points)
    assert perfect["ami"] == pytest.approx(1.0)


def test_the_report_carries_ami_and_ranks_ari_ties_by_ami_not_nmi(tmp_path):
    """Of two runs with the same ARI, the random one (NMI 0.8, AMI 0) used to come first by its NMI."""
    import json

    from prodcat.explore.clustering import ClusteringRun, StudyResult
    from prodcat.explore.metrics import AMI_NOTE
    from prodcat.explore.report import write_report

    categories, clusters = many_tiny_categories()
    points = np.random.default_rng(1).normal(size=(len(clusters), 2))
    random_scores = clustering_scores(categories, clusters, points)
    # hand-set scores of an informative run with the same ARI, to see what breaks the tie
    informative_scores = {**random_scores, "ami": 0.3, "nmi": 0.6}
    rows = np.arange(len(categories))
    matching = match_clusters(categories, clusters)
    runs = [
        ClusteringRun(name, "pca", rows, points, clusters, scores, matching, 0.0, 0.0)
        for name, scores in (("random", random_scores), ("informative", informative_scores))
    ]
    frame = pd.DataFrame(
        {"product_id": rows.astype(str), "title": "t", "description": "", "image": None, "category": categories}
    )
    result = StudyResult(frame, categories, level=1, seed=0, runs=runs)
    (same_products,) = result.product_sets()
    assert [run.features for run in same_products] == ["informative", "random"]

    json_path, html_path = write_report(result, tmp_path)
    records = json.loads(json_path.read_text())
    assert [r["features"] for r in records] == ["informative", "random"]
    assert records[1]["nmi"] > 0.7 and abs(records[1]["ami"]) < 0.05
    html = html_path.read_text()
    assert "<th>ARI</th><th>AMI</th><th>NMI</th>" in html and "its AMI" in html
    assert "AMI is NMI corrected for chance" in AMI_NOTE and AMI_NOTE in html


def test_a_report_that_cannot_be_written_keeps_the_figures_printed(tmp_path, capsys, monkeypatch):
    """A disk that filled up while the report was written ended the study in OSError's traceback (exit 1), before
    any figure was printed: the whole study was lost."""
    import errno

    from prodcat.cli import main
    from prodcat.explore import report

    def full(path, records):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "write_json", full)
    data = tmp_path / "products.csv"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches", "Toys"] * 10}).to_csv(data, index=False)
    out = tmp_path / "report"
    code = main(
        ["explore", str(data), "--features", "tfidf", "--reductions", "pca", "--report", str(out), "--no-progress"]
    )
    assert code == 2
    printed = capsys.readouterr()
    assert "tfidf                        pca         1.000" in printed.out
    assert printed.err.strip() == (
        f"error: cannot write the report in {out}: No space left on device; the figures above are all "
        "that was kept: free some space or give another --report, and run the study again"
    )


@pytest.mark.parametrize(
    ("titles", "reason"),
    [
        # no word at all: scikit-learn's 'empty vocabulary; perhaps the documents only contain stop words'
        (
            ["a", "b", "c"],
            "no word to read in their texts: none holds a word of two letters or more (stop-words aside)",
        ),
        # every word in every text: 'After pruning, no terms remain. Try a lower min_df or a higher max_df.', options
        # prodcat explore does not have, until the extractors kept every term of such a catalogue (fd3f08e)
        (
            ["same title"] * 3,
            "its 12 products have only 1 distinct feature vector(s) (identical texts or photos), fewer than their 2 "
            "categories: nothing to cluster them by",
        ),
    ],
)
def test_texts_without_a_word_to_tell_products_apart_are_said_in_the_studys_words(titles, reason):
    """Such texts skipped bow and tfidf with scikit-learn's words, which speak of documents, stop words and options
    the study does not have."""
    frame = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(12)],
            "title": titles * 4,
            "description": "",
            "image": None,
            "category": ["Kitchen", "Watches"] * 6,
        }
    )
    study = FeasibilityStudy(features=["bow", "tfidf"], reductions=["pca"], progress=False)
    with pytest.raises(ValueError) as raised:
        study.run(frame)
    assert str(raised.value) == f"no feature set could be studied (bow: {reason}; tfidf: {reason})"


def test_a_feature_set_or_reduction_named_twice_is_studied_once(tmp_path):
    """'--features tfidf,tfidf --reductions pca,pca' studied tfidf with PCA four times, four rows in the table."""
    import json

    from prodcat.cli import main

    data = tmp_path / "products.csv"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches", "Toys"] * 10}).to_csv(data, index=False)
    out = tmp_path / "report"
    args = ["--features", "tfidf, tfidf", "--reductions", "pca,pca", "--report", str(out), "--no-progress"]
    assert main(["explore", str(data), *args]) == 0
    records = json.loads((out / "clustering.json").read_text())
    assert [(r["features"], r["reduction"]) for r in records] == [("tfidf", "pca")]


def test_a_level_deeper_than_the_categories_is_said_and_the_full_path_named(tmp_path, capsys):
    """--level 3 on two-level categories clustered the full paths, and the console, clustering.json and the report
    all named a level 3 the catalogue does not have, without a word, where train, cv and audit warn."""
    import json

    from prodcat.cli import main

    data = tmp_path / "products.csv"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    categories = ["Home > Kitchen", "Fashion > Watches", "Kids > Toys"] * 10
    pd.DataFrame(rows | {"category": categories}).to_csv(data, index=False)
    out = tmp_path / "report"
    args = ["--features", "tfidf", "--reductions", "pca", "--level", "3", "--no-progress"]
    assert main(["explore", str(data), "--report", str(out), *args]) == 0
    printed = capsys.readouterr().out
    assert "warning: level 3 asked, but the categories have 2 level(s): the full paths are clustered against" in printed
    assert "30 products, 3 categories at the full path" in printed
    assert json.loads((out / "clustering.json").read_text())[0]["level"] is None
    assert "in 3 categories at the full path" in " ".join((out / "report.html").read_text().split())


def test_a_single_category_at_the_full_path_is_named_so():
    """--level 0 (the full path) on a catalogue of one category was refused 'a single category at level None'."""
    frame = pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(30)],
            "title": [f"analog wrist watch {i}" for i in range(30)],
            "description": "",
            "image": None,
            "category": "Fashion > Watches",
        }
    )
    with pytest.raises(ValueError, match="a single category at the full path; clustering needs two"):
        FeasibilityStudy(features=["tfidf"], reductions=["pca"], level=None, progress=False).run(frame)


def test_the_benchmark_refuses_an_unknown_study_by_listing_the_known_ones():
    """``benchmarks/explore.py --studies unknown`` ended in a KeyError traceback (after reading the results file)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "explore.py"
    done = subprocess.run([sys.executable, str(script), "--studies", "unknown"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "explore.py: error: argument --studies: unknown study unknown; "
        "known: flipkart, rakuten, fashion_level2, fashion_level3"
    )


def test_umaps_one_off_compilation_is_not_counted_in_the_first_umap_runs_seconds(monkeypatch, request, make_products):
    """numba compiles UMAP on a process's first call: on 2 shared cores a 900-product UMAP took 100 s the first time,
    17-20 s after, and the study's first UMAP run was timed at five times the others. A UMAP whose first call takes
    100 s and every other one 1 s stands in for it, on a clock of its own: the run is timed at its own second."""
    from prodcat.explore import reduction

    clock, calls = [0.0], []

    def slow_on_first_call(self, X, y=None, **fit_params):
        clock[0] += 1.0 if calls else 100.0  # the run's second, or the compilation
        calls.append(len(X))
        return np.random.default_rng(0).normal(size=(len(X), 10)).astype(np.float32)

    monkeypatch.setattr(clustering, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(UMAPReducer, "fit_transform", slow_on_first_call)
    reduction.warm_up_umap.cache_clear()  # compiled once per process: as if this process were new
    request.addfinalizer(reduction.warm_up_umap.cache_clear)  # the next UMAP warms up for real
    _, categories = blobs(n_per=10)
    frame = make_products([f"{category} thing {i}" for i, category in enumerate(categories)], categories)
    (run,) = FeasibilityStudy(features=["tfidf"], reductions=["umap"], progress=False).run(frame).runs
    assert (run.seconds, run.feature_seconds) == (1.0, 0.0)
    assert len(calls) == 2  # the warm-up, then the run


def test_runs_are_ranked_only_against_runs_on_the_same_products(tmp_path):
    """Rakuten's feature sets are studied on 2,095 products with text, 1,835 with a photo, 440 with both: the report,
    clustering.json and the console ranked them in one table, an ARI on the 440 above one on the 2,095. Each product
    set now has its own ranking, named by its products, and the report details the best run on the most products."""
    import json

    from prodcat.explore.clustering import ClusteringRun, StudyResult
    from prodcat.explore.report import write_report

    points, categories = blobs(n_per=20)
    everyone, with_photo = np.arange(len(categories)), np.arange(0, len(categories), 2)
    frame = pd.DataFrame(
        {"product_id": everyone.astype(str), "title": "t", "description": "", "image": None, "category": categories}
    )

    def run(features: str, rows: np.ndarray, ari: float, modalities: str) -> ClusteringRun:
        clusters = np.unique(categories[rows], return_inverse=True)[1]
        scores = {"ari": ari, "ami": ari, "nmi": ari, "silhouette": 0.5}
        matching = match_clusters(categories[rows], clusters)
        return ClusteringRun(features, "pca", rows, points[rows], clusters, scores, matching, 0.0, 0.0, modalities)

    runs = [
        run("tfidf", everyone, 0.4, "text"),
        run("tfidf+color_hist", with_photo, 0.9, "text and a photo"),
        run("bow", everyone, 0.5, "text"),
        run("bow+color_hist", with_photo, 0.7, "text and a photo"),
    ]
    result = StudyResult(frame, categories, level=1, seed=0, runs=runs)
    expected = [
        ("80 products with text", 1, "bow"),
        ("80 products with text", 2, "tfidf"),
        ("40 products with text and a photo", 1, "tfidf+color_hist"),
        ("40 products with text and a photo", 2, "bow+color_hist"),
    ]
    assert [(r["products"], r["rank"], r["features"]) for r in result.records()] == expected
    assert result.best().features == "bow"  # not tfidf+color_hist, whose 0.9 is on half the products

    json_path, html_path = write_report(result, tmp_path)
    assert [(r["products"], r["rank"], r["features"]) for r in json.loads(json_path.read_text())] == expected
    html = " ".join(html_path.read_text().split())
    assert '<th colspan="12">80 products with text</th>' in html
    assert '<th colspan="12">40 products with text and a photo</th>' in html
    assert "<b>0.90</b> (tfidf+color_hist, pca) on 40 products with text and a photo" in html


def _hand_made_study(runs: list[tuple[str, np.ndarray, dict[str, float], str]], n_per: int = 20):
    """A study result of ``4 * n_per`` products (4 blob categories, every product with a title) whose runs are
    ``(features, rows, scores, modalities)``: the figures and product sets its report and console show are set by
    hand."""
    from prodcat.explore.clustering import ClusteringRun, StudyResult

    points, categories = blobs(n_per=n_per)
    frame = pd.DataFrame(
        {"product_id": [f"p{i}" for i in range(len(categories))], "title": "t", "description": "", "image": None}
        | {"category": categories}
    )

    def run(features: str, rows: np.ndarray, scores: dict[str, float], modalities: str) -> ClusteringRun:
        clusters = np.unique(categories[rows], return_inverse=True)[1]
        matching = match_clusters(categories[rows], clusters)
        return ClusteringRun(features, "pca", rows, points[rows], clusters, scores, matching, 0.4496, 0.1, modalities)

    return StudyResult(frame, categories, level=1, seed=0, runs=[run(*given) for given in runs])


def test_the_console_and_the_report_show_the_scores_rounded_once(tmp_path, monkeypatch, capsys):
    """The console table and the report formatted to 3 decimals the scores clustering.json had rounded to 4, and to 1
    the seconds it had rounded to 2: an AMI of 0.59449 (0.594 in the log line, as scikit-learn's figure rounds) read
    0.595, an ARI of 0.70549 read 0.706, 0.4496 s read 0.5. They now format the exact figures; clustering.json keeps
    4 decimals (2 for seconds)."""
    import json

    from prodcat.cli import main
    from prodcat.explore.report import write_report

    scores = {"ari": 0.70549, "ami": 0.59449, "nmi": 0.63049, "silhouette": 0.43049}
    result = _hand_made_study([("tfidf", np.arange(80), scores, "text")])
    monkeypatch.setattr(FeasibilityStudy, "run", lambda self, frame: result)
    data = tmp_path / "products.csv"
    result.frame.to_csv(data, index=False)
    out = tmp_path / "report"
    assert main(["explore", str(data), "--features", "tfidf", "--report", str(out), "--no-progress"]) == 0
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("tfidf")]
    assert row[2:6] == ["0.705", "0.594", "0.630", "0.430"] and row[-1] == "0.4"
    (record,) = json.loads((out / "clustering.json").read_text())
    assert [record[name] for name in ("ari", "ami", "nmi", "silhouette", "seconds")] == [
        0.7055, 0.5945, 0.6305, 0.4305, 0.45
    ]  # fmt: skip
    write_report(result, tmp_path / "again")
    cells = re.findall(r'<td class="num">([^<]*)</td>', (tmp_path / "again" / "report.html").read_text())
    assert cells[1:5] == ["0.705", "0.594", "0.630", "0.430"] and cells[-1] == "0.4"


def test_the_report_says_when_the_silhouette_is_estimated_on_a_sample(tmp_path, monkeypatch):
    """Above 3,000 products a run's silhouette is estimated on 3,000 of them (clustering_scores), and the report said
    nothing of it: its silhouette read as measured on every product, as its ARI is."""
    from prodcat.explore import report

    scores = {"ari": 0.5, "ami": 0.5, "nmi": 0.5, "silhouette": 0.5}
    result = _hand_made_study([("tfidf", np.arange(80), scores, "text")])
    monkeypatch.setattr(report, "SILHOUETTE_SAMPLE", 50, raising=False)  # 80 products: more than it
    report.write_report(result, tmp_path / "sampled")
    said = "on a run of more than 50 products it is estimated on 50 of them drawn with the seed"
    assert said in " ".join((tmp_path / "sampled" / "report.html").read_text().split())
    monkeypatch.setattr(report, "SILHOUETTE_SAMPLE", 80, raising=False)  # every product: nothing to say
    report.write_report(result, tmp_path / "whole")
    assert "estimated on" not in (tmp_path / "whole" / "report.html").read_text()


def test_the_sample_and_its_catalogue_are_counted_as_the_product_sets_are(tmp_path, monkeypatch, capsys):
    """fashion --sample 1500 printed '1500 products (a sample of the 6000 labelled)' and its report '1500 labelled
    products (a stratified sample of its 6000)', beside product sets named '1,500 products with text'."""
    from prodcat.cli import main

    scores = {"ari": 0.5, "ami": 0.5, "nmi": 0.5, "silhouette": 0.5}
    result = _hand_made_study([("tfidf", np.arange(1200), scores, "text")], n_per=300)
    result.sampled_from = 6000
    monkeypatch.setattr(FeasibilityStudy, "run", lambda self, frame: result)
    data = tmp_path / "products.csv"
    result.frame.to_csv(data, index=False)
    out = tmp_path / "report"
    assert main(["explore", str(data), "--features", "tfidf", "--report", str(out), "--no-progress"]) == 0
    assert "1,200 products (a sample of the 6,000 labelled), 4 categories" in capsys.readouterr().out
    html = " ".join((out / "report.html").read_text().split())
    assert "1,200 labelled products (a stratified sample of its 6,000)" in html


def test_a_product_set_missing_categories_is_said_clustered_into_fewer(tmp_path, monkeypatch, capsys):
    """A feature set whose products miss a category (no text in any watch) is clustered into as many clusters as its
    products have categories, 3 of 4; the console said '4 categories' above it and the report 'clustered by KMeans
    into 4 clusters', for every run."""
    from prodcat.cli import main

    scores = {"ari": 0.5, "ami": 0.5, "nmi": 0.5, "silhouette": 0.5}
    result = _hand_made_study(
        [("color_hist", np.arange(80), scores, "a photo"), ("tfidf", np.arange(60), scores, "text")]
    )
    monkeypatch.setattr(FeasibilityStudy, "run", lambda self, frame: result)
    data = tmp_path / "products.csv"
    result.frame.to_csv(data, index=False)
    out = tmp_path / "report"
    assert main(["explore", str(data), "--features", "tfidf,color_hist", "--report", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "80 products, 4 categories at level 1" in printed
    assert "-- 80 products with a photo" in printed and "-- 60 products with text (3 of the categories)" in printed
    html = " ".join((out / "report.html").read_text().split())
    assert "into as many clusters as its products have categories (4 when they have every one" in html
    cells = re.findall(r'<td class="num">([^<]*)</td>', html)
    assert [cells[i * 10 + 7] for i in range(2)] == ["4", "3"]  # each run's clusters


def test_a_product_set_of_text_runs_and_photo_runs_is_named_by_both():
    """On a sample whose products all have text and a photo, tfidf (text) and color_hist (a photo) cluster the same
    products: the set was named by the largest run's products alone, '80 products with text', color_hist's runs
    listed under it in the console, the report and clustering.json. It is now named '80 products with text and a
    photo' (and 'or nearly them' when some lack one)."""
    scores = {"ari": 0.5, "ami": 0.5, "nmi": 0.5, "silhouette": 0.5}
    everyone = np.arange(80)
    same = _hand_made_study([("tfidf", everyone, scores, "text"), ("color_hist", everyone, scores, "a photo")])
    assert {record["product_set"] for record in same.records()} == {"80 products with text and a photo"}
    all_200, with_photo = np.arange(200), np.arange(1, 200)  # 199 with a photo: nearly the same products
    nearly = _hand_made_study(
        [("tfidf", all_200, scores, "text"), ("color_hist", with_photo, scores, "a photo")], n_per=50
    )
    assert {record["product_set"] for record in nearly.records()} == {
        "200 products with text and a photo, or nearly them"
    }
    text_only = _hand_made_study([("tfidf", everyone, scores, "text"), ("bow", everyone, scores, "text")])
    assert {record["product_set"] for record in text_only.records()} == {"80 products with text"}


def test_the_benchmark_keeps_the_best_run_of_each_product_set():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "explore.py"
    spec = importlib.util.spec_from_file_location("explore_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    text, both = "2,095 products with text", "440 products with text and a photo"
    records = [
        {"products": text, "product_set": text, "rank": 1, "features": "e5", "ari": 0.2},
        {"products": text, "product_set": text, "rank": 2, "features": "tfidf", "ari": 0.1},
        {"products": both, "product_set": both, "rank": 1, "features": "e5+effnet_lite0", "ari": 0.3},
    ]
    assert benchmark.best_per_product_set(records) == {
        "2,095 products with text": records[0],
        "440 products with text and a photo": records[2],
    }


def test_runs_on_nearly_the_same_products_are_ranked_together():
    """Flipkart's photo feature sets were studied on 897 of its 900 products (3 have no photo) and ORB's on 891: ranked
    apart, the study's headline became the best text-only run and a combination's better ARI on 897 of the same products
    stood in a table of its own. Sets sharing 99% of their products are one ranking; a set on half of them is not, and
    nor is one on the other half, which has a name of its own (it had the same one: the report showed both sets in one
    ranking, and the benchmark kept the best run of one of them)."""
    from prodcat.explore.clustering import ClusteringRun, StudyResult

    points, categories = blobs(n_per=75)  # 300 products
    everyone, with_photo, half = np.arange(300), np.arange(3, 300), np.arange(0, 300, 2)
    other_half = half + 1  # as many products, none of them the same

    def run(features: str, rows: np.ndarray, ari: float) -> ClusteringRun:
        clusters = np.unique(categories[rows], return_inverse=True)[1]
        scores = {"ari": ari, "ami": ari, "nmi": ari, "silhouette": 0.5}
        matching = match_clusters(categories[rows], clusters)
        return ClusteringRun(features, "pca", rows, points[rows], clusters, scores, matching, 0.0, 0.0, "text")

    runs = [
        run("tfidf", everyone, 0.5),
        run("tfidf+effnet", with_photo, 0.6),
        run("sift", half, 0.9),
        run("orb", other_half, 0.8),
    ]
    result = StudyResult(pd.DataFrame({"category": categories}), categories, level=1, seed=0, runs=runs)
    expected_sets = [["tfidf+effnet", "tfidf"], ["sift"], ["orb"]]
    assert [[run.features for run in group] for group in result.product_sets()] == expected_sets
    assert result.best().features == "tfidf+effnet"
    records = result.records()
    assert [(r["features"], r["rank"], r["product_set"]) for r in records] == [
        ("tfidf+effnet", 1, "300 products with text, or nearly them"),
        ("tfidf", 2, "300 products with text, or nearly them"),
        ("sift", 1, "150 products with text"),
        ("orb", 1, "150 products with text (set 2)"),
    ]
    assert records[0]["products"] == "297 products with text"


@pytest.mark.parametrize("n_jobs", [1000, -1])
def test_no_more_workers_start_than_there_are_cores_and_runs(monkeypatch, n_jobs):
    """``--jobs 1000`` handed joblib 1000 workers, which loky starts at once: hundreds of interpreters for a single
    run, a 10-second study still not done after 5 minutes on 2 cores. Workers are now capped by the cores and the
    runs to do."""
    import joblib

    from prodcat import parallel

    asked = []

    class Recorded(joblib.Parallel):
        def __init__(self, n_jobs, **kwargs):
            asked.append(n_jobs)
            super().__init__(n_jobs=1, **kwargs)  # the runs themselves in this process: the workers asked are checked

    monkeypatch.setattr(clustering, "Parallel", Recorded)
    # a 4-core machine (raising=False: the check fails on what is asked, not on a missing name)
    monkeypatch.setattr(parallel, "effective_n_jobs", lambda n: 4 if n == -1 else n)  # worker_count's
    frame = _mugs_watches_and_trains(str)
    for features, reductions in ((["tfidf"], ["pca"]), (["bow", "tfidf"], ["pca", "pca+knn", "tsne"])):
        FeasibilityStudy(features=features, reductions=reductions, n_jobs=n_jobs, progress=False).run(frame)
    assert asked == [1, 4]  # one run: in this process; six runs: one worker per core


def test_an_unknown_reduction_is_refused_before_the_catalogue_is_read(tmp_path, capsys):
    """'--reductions nope' was refused after the catalogue was read (Flipkart's row issues warned of first), as
    'unknown reduction(s) ['nope']', a Python list, where an unknown feature set was refused before, by name."""
    from prodcat.cli import main

    missing = tmp_path / "no-such-catalogue.csv"
    assert main(["explore", str(missing), "--reductions", "pca,nope", "--report", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown reduction(s): nope; known: pca, pca+knn, tsne, umap"


def test_a_reader_of_the_output_that_left_costs_no_report(tmp_path):
    """`prodcat explore ... | head -2`: the table was printed before the report was written, so once the reader had
    left, the first print ended the study (exit 141) and no report was written."""
    import subprocess
    import sys

    data, report = tmp_path / "products.csv", tmp_path / "report"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches", "Toys"] * 10}).to_csv(data, index=False)
    command = [sys.executable, "-m", "prodcat.cli", "explore", str(data), "--features", "tfidf", "--reductions", "pca"]
    run = subprocess.Popen([*command, "--report", str(report), "--no-progress"], stdout=subprocess.PIPE, text=True)
    run.stdout.close()  # the reader is gone before the first line
    assert run.wait() == 141
    assert (report / "clustering.json").is_file() and (report / "report.html").is_file()


def test_a_sample_of_more_products_than_there_are_is_said_to_take_them_all(tmp_path, caplog):
    """`--sample 45` of 30 labelled products studied the 30 without a word, as train, cv, audit and explain did: the
    run was not the sample its command line said. Each warns once, naming both counts (an exact count says nothing)."""
    from prodcat.cli import main

    data = tmp_path / "products.csv"
    words = ["ceramic coffee mug", "analog wrist watch", "wooden toy train"]
    rows = {"product_id": [f"p{i}" for i in range(30)], "title": [f"{words[i % 3]} {i}" for i in range(30)]}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches", "Toys"] * 10}).to_csv(data, index=False)
    args = ["explore", str(data), "--features", "tfidf", "--reductions", "pca", "--no-progress"]
    explore = [*args, "--report", str(tmp_path / "explore")]
    audit = ["audit", str(data), "--no-images", "--report", str(tmp_path / "audit")]
    taking_all = "the sample size 45 is more than the 30 products to draw from: all of them are used"
    for command in (explore, audit):
        for sample, warned in (("45", True), ("30", False)):
            caplog.clear()
            assert main([*command, "--sample", sample]) == 0
            assert (taking_all in caplog.text) == warned, (command[0], sample)
    from prodcat.catalog.loaders import load_catalog
    from prodcat.commands import labelled_sample  # train's, cv's and robustness's draw
    from prodcat.config import Config

    caplog.clear()
    assert len(labelled_sample(load_catalog(data).frame, Config(), 45)) == 30 and taking_all in caplog.text

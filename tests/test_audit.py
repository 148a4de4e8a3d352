"""``prodcat audit``: sections on real catalogues, crafted problems, the report, and label-noise detection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodcat.catalog.audit import (
    LOW_CV_ACCURACY,
    MIN_SUGGESTION_CONFIDENCE,
    audit_catalog,
    class_balance,
    confident_label_issues,
    duplicate_stats,
    label_issues,
    labelled_above_subcategories,
    language_stats,
    text_stats,
    write_audit_report,
)
from prodcat.catalog.audit.command import _above_subcategories_lines
from prodcat.catalog.audit.labels import _is_default_classifier
from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import Catalog, category_at_level, has_text, product_text
from prodcat.cli import main
from prodcat.config import Config, FeatureSpec, HeadConfig
from prodcat.evaluate.cv import cross_validation_obstacle, min_products_per_category
from prodcat.grouping import conflict_level, spelling_groups
from prodcat.text.clean import clean_texts


def small_catalog(tmp_path: Path) -> Catalog:
    """Eight products with known problems: duplicates (one pair with conflicting labels), markup, bad photo."""
    photo = tmp_path / "broken.jpg"
    photo.write_text("this is not a JPEG")
    rows = [
        ("p1", "Red ceramic coffee mug 300 ml", "A <b>sturdy</b> mug &amp; saucer", None, "Kitchen > Mugs"),
        ("p2", "Red ceramic coffee mug 300 ml", "A <b>sturdy</b> mug &amp; saucer", None, "Home > Decor"),
        ("p3", "Red Ceramic Coffee Mug, 300 ml!", "A sturdy mug & saucer", None, "Kitchen > Mugs"),
        ("p4", "Men's analog wrist watch with leather strap", "", str(photo), "Watches > Wrist"),
        ("p5", "Cotton bath towel set of three", "Soft and absorbent", None, "Home > Bath"),
        (
            "p6",
            "Caf\u00c3\u00a9 cr\u00c3\u00a8me blanket for winter",
            "Warm fleece blanket, queen size",
            None,
            "Home > Bed",
        ),
        ("p7", "Stainless steel water bottle 1 litre", "Keeps drinks cold", None, "Kitchen > Bottles"),
        ("p8", "", "", None, "Kitchen > Mugs"),
    ]
    frame = pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"])
    return Catalog(frame=frame, source="crafted", format="csv")


def test_crafted_catalogue(tmp_path: Path) -> None:
    result = audit_catalog(small_catalog(tmp_path), progress=False)
    duplicates = result["duplicates"]
    # p1, p2, p3 differ only by case, punctuation and markup once cleaned
    assert duplicates["exact"]["groups"] == 1
    assert duplicates["exact"]["largest_groups"][0]["product_ids"] == ["p1", "p2", "p3"]
    assert duplicates["exact"]["conflicting_groups"] == 1
    assert duplicates["exact"]["conflicts"][0]["first_differing_level"] == 1
    markup = result["markup"]
    assert markup["description"]["html_tags"]["products"] == 2
    assert markup["description"]["html_entities"]["products"] == 2
    assert markup["title"]["mojibake"]["products"] == 1
    assert result["text"]["no_text"] == 1 and result["text"]["description"]["missing"] == 1
    images = result["images"]
    assert images["with_photo"] == 1 and images["unreadable"] == 1
    assert images["unreadable_examples"][0]["product_id"] == "p4"
    classes = result["classes"]["levels"]
    assert classes["1"]["n_classes"] == 3 and classes["1"]["counts"]["Kitchen"] == 4
    assert classes["2"]["imbalance_ratio"] == 3.0  # Kitchen > Mugs (3) against single products


def test_confident_label_issues() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    proba = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.8, 0.1, 0.1],
            [0.1, 0.85, 0.05],  # labelled 0, confidently 1
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.4, 0.35, 0.25],  # labelled 1, unsure: below every class threshold
            [0.1, 0.1, 0.8],
            [0.3, 0.2, 0.5],
        ]
    )
    is_issue, suggested = confident_label_issues(labels, proba)
    # thresholds: class 0 mean(0.9, 0.8, 0.1)=0.6, class 1 mean(0.8, 0.7, 0.35)=0.617, class 2 0.65
    assert is_issue.tolist() == [False, False, True, False, False, False, False, False]
    assert suggested[2] == 1 and suggested[5] == -1 and suggested[7] == -1


@pytest.mark.slow
def test_rakuten_audit(rakuten_dir: Path, tmp_path: Path) -> None:
    result = audit_catalog(load_catalog(rakuten_dir), images=False, progress=False)
    assert result["summary"]["products"] == 3490 and result["summary"]["loader_issues"] == 0
    text = result["text"]
    assert text["no_text"] == 1395  # the photo-only products
    assert 0.33 < text["description"]["missing_share"] < 0.37
    assert text["title"]["missing"] == 0
    markup = result["markup"]["description"]
    assert markup["html_entities"]["products"] > 100 and markup["html_tags"]["products"] > 100
    assert result["markup"]["title"]["html_entities"]["products"] > 0
    assert markup["mojibake"]["products"] > 0
    languages = result["languages"]["counts"]
    assert max(languages, key=lambda k: languages[k] if k != "und" else 0) == "fr"
    assert languages["und"] == 1395 and languages["en"] > 100
    levels = result["classes"]["levels"]
    # PC Video Games (2905) sits under Video Games (40): level 2 merges them, the full path keeps 27
    assert [levels[k]["n_classes"] for k in ("1", "2", "3")] == [7, 26, 27]
    json_path, html_path = write_audit_report(result, tmp_path)[:2]  # the lists after them
    assert json.loads(json_path.read_text())["summary"]["labelled"] == 3490
    html = html_path.read_text()
    assert "Books &gt; Magazines" in html and html.count("data:image/png;base64,") >= 3
    assert "Exact duplicates (the same title and description once cleaned, lower-cased" in html  # what it counts


@pytest.mark.slow
def test_flipkart_audit_with_photos(flipkart_dir: Path, tmp_path: Path) -> None:
    catalog = load_catalog(flipkart_dir)
    # photos of a slice (decoding all 900 is the slow part) including the three products without one
    no_photo = catalog.frame.index[catalog.frame["image"].isna()]
    keep = sorted(set(range(120)) | set(no_photo))
    sliced = Catalog(catalog.frame.iloc[keep].reset_index(drop=True), catalog.source, catalog.format, catalog.issues)
    result = audit_catalog(sliced, progress=False)
    assert result["summary"]["loader_issues"] == 3 and result["summary"]["loader_issues_by_field"] == {"image": 3}
    images = result["images"]
    assert images["without_photo"] == 3 and images["with_photo"] == len(keep) - 3 and images["unreadable"] == 0
    quality = images["quality"]
    assert 0 < quality["low_detail"] < images["usable"] and quality["size"]["max_side"] == 640
    assert result["text"]["description"]["missing"] == 0
    html_path = write_audit_report(result, tmp_path)[1]
    html = html_path.read_text()
    assert "Duplicate photos" in html and "data:image/jpeg;base64," in html  # thumbnails


def test_cli_audit(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.drop(columns="image").to_csv(path, index=False)
    report = tmp_path / "report"
    # 7 of 8: the products left out are fewer than the categories (a sample drawn at random), p1 and p2 drawn
    assert main(["audit", str(path), "--report", str(report), "--no-images", "--sample", "7"]) == 0
    result = json.loads((report / "audit.json").read_text())
    assert result["summary"]["products"] == 7 and result["images"]["skipped"]
    html = (report / "audit.html").read_text()
    assert html.startswith("<!doctype html>")
    assert "<b>sturdy</b>" not in html and "&lt;b&gt;sturdy" in html  # product markup shown, never rendered


def test_category_names_with_dollars_are_charted_as_written(tmp_path: Path) -> None:
    """matplotlib read '$...$' in a class chart's labels as a formula: 'Save $\\frac$ now' ended the audit in a
    traceback after the whole catalogue was audited, and 'Mugs $5-$10' lost its dollars."""
    catalog = small_catalog(tmp_path)
    catalog.frame["category"] = ["Save $\\frac$ now", "Mugs $5-$10"] * 4
    result = audit_catalog(catalog, images=False, progress=False)
    html_path = write_audit_report(result, tmp_path / "report")[1]
    assert html_path.read_text().count("data:image/png;base64,") >= 1


def test_audit_charts_label_their_axes_and_count_whole_products(tmp_path: Path, monkeypatch) -> None:
    """The histograms (text lengths, photo detail and white border) had no axis labels, and their product counts
    fractional ticks (2.5, 7.5 products); each chart now says what it measures and counts products in whole
    numbers, on the few products where the default ticks fall between them."""
    from PIL import Image

    from prodcat.catalog.audit import report

    catalog = small_catalog(tmp_path)
    for i in range(5):
        photo = tmp_path / f"photo{i}.png"
        Image.new("RGB", (60 + 20 * i, 80), (40 * i, 90, 200)).save(photo)
        catalog.frame.loc[i, "image"] = str(photo)
    figures = []
    monkeypatch.setattr(report, "figure_data_uri", lambda figure, dpi: figures.append(figure) or "")
    report._charts(audit_catalog(catalog, progress=False))
    charts = [ax for figure in figures for ax in figure.axes if ax.get_visible()]
    histograms = [ax for ax in charts if ax.get_title() != "languages" and not ax.get_title().startswith("classes")]
    assert len(histograms) == 6  # the titles' and descriptions' characters and words, the detail, the border
    assert all(ax.get_xlabel() for ax in histograms)
    for ax in charts:
        ax.figure.canvas.draw()
        # the class charts count along x (horizontal bars), the others along y
        counts = ax.xaxis if ax.get_title().startswith("classes") else ax.yaxis
        assert counts.get_label_text() == "products"
        assert all(float(tick).is_integer() for tick in counts.get_ticklocs()), ax.get_title()


@pytest.mark.slow
def test_labels_finds_planted_mislabels(flipkart_dir: Path) -> None:
    frame = load_catalog(flipkart_dir).frame.copy()
    top = pd.Series(category_at_level(frame["category"], 1), index=frame.index)
    # two products of each of four classes moved to an unrelated top-level category
    moves = {
        "Watches": "Kitchen & Dining",
        "Kitchen & Dining": "Computers",
        "Computers": "Watches",
        "Beauty and Personal Care": "Computers",
    }
    planted = {}
    for source, target in moves.items():
        for i in frame.index[top == source][[5, 60]]:
            planted[frame.at[i, "product_id"]] = source
            frame.at[i, "category"] = f"{target} > Planted"
    # a light text head (word TF-IDF) keeps the 4-fold cross-validation around a minute on 2 cores
    words = HeadConfig(name="text_words", modality="text", features=[FeatureSpec(name="tfidf_word")], C=5.0)
    config = Config(level=1, modalities=["text"], inner_folds=2, heads=[words.model_copy(update={"scale": False})])
    result = label_issues(frame, config, folds=4, progress=False)
    found = {i["product_id"]: i for i in result["issues"]}
    caught = [pid for pid in planted if pid in found]
    # confident learning only flags products another class claims above its own mean confidence:
    # nearly all planted ones, each with its true category suggested
    assert len(caught) >= 6, f"only {len(caught)} of {len(planted)} planted mislabels found"
    assert all(found[pid]["suggested"] == planted[pid] for pid in caught)
    assert all(found[pid]["given"] != planted[pid] and found[pid]["confidence"] > 0.5 for pid in caught)
    # a short list to review (the planted ones and a few real suspects), not a class dump
    assert result["n_issues"] < 0.05 * len(frame)
    assert result["issues"] == sorted(result["issues"], key=lambda i: i["given_probability"])


@pytest.mark.parametrize(
    "content",
    [
        "product_id,title,description,image,category\n",  # header only
        "product_id,title,description,image,category\nv1,Watch,analog,,Watches,\n",  # every row skipped
    ],
    ids=["header-only", "all-rows-skipped"],
)
def test_cli_audit_without_readable_products(tmp_path: Path, content: str, capsys: pytest.CaptureFixture) -> None:
    """With photos audited (the default), a catalogue with no readable row still gets its report:
    that is when the loader issues matter most. Then it exits 2 (it exited 0, and a script went on to train on
    nothing)."""
    path = tmp_path / "shop.csv"
    path.write_text(content)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report)]) == 2
    error = f"error: no product could be read from {path}: {report / 'audit.json'} lists why\n"
    assert capsys.readouterr().err.endswith(error)
    result = json.loads((report / "audit.json").read_text())
    assert result["summary"]["products"] == 0
    assert result["images"]["with_photo"] == 0 and result["images"]["unreadable"] == 0
    rows_skipped = content.count("\n") - 1
    assert result["summary"]["loader_issues"] == rows_skipped
    if rows_skipped:
        assert result["loader_issues"][0]["product_id"] == "v1"
        assert "row skipped" in (report / "audit.html").read_text()


def test_confident_label_issues_ignores_correct_predictions() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    # class 2 has a lone member, predicted without it in training: its threshold is 0, so it
    # "confidently" holds every product
    proba = np.array(
        [
            [0.9, 0.1, 0.0],
            [0.8, 0.2, 0.0],
            [0.55, 0.45, 0.0],  # labelled 0, predicted 0 but below class 0's threshold (0.75)
            [0.1, 0.9, 0.0],
            [0.2, 0.8, 0.0],
            [0.8, 0.2, 0.0],  # labelled 1, confidently 0
            [0.5, 0.5, 0.0],
        ]
    )
    is_issue, suggested = confident_label_issues(labels, proba)
    assert suggested[2] == 2  # the lone class claims it...
    assert not is_issue[2]  # ...but a product predicted as its given label is never an issue
    assert is_issue.tolist() == [False, False, False, False, False, True, False] and suggested[5] == 0


def _tiny_text_catalog(sizes: dict[str, int]) -> pd.DataFrame:
    """Products whose titles mix two words of their category with three words shared by all."""
    vocab = {
        "Kitchen": "mug plate spoon kettle pan bowl",
        "Watches": "watch strap dial analog quartz chrono",
        "Bath": "towel soap shower sponge robe tub",
        "Toys": "doll puzzle blocks teddy kite yoyo",
    }
    shared = ["red", "blue", "large", "small", "set", "pack", "premium", "classic"]
    rng = np.random.default_rng(0)
    rows = []
    for category, n in sizes.items():
        for i in range(n):
            words = [*rng.choice(vocab[category].split(), 2, replace=False), *rng.choice(shared, 3)]
            rows.append((f"{category[:2]}{i}", " ".join(words), "", None, category))
    return pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"])


def _words_config() -> Config:
    """A light text head (word TF-IDF): seconds on a few dozen products."""
    words = HeadConfig(name="text_words", modality="text", features=[FeatureSpec(name="tfidf_word")], C=5.0)
    return Config(level=None, modalities=["text"], heads=[words.model_copy(update={"scale": False})])


def test_label_issues_lone_category_flags_only_mispredicted() -> None:
    # the lone Toys product: its class's self-confidence threshold is ~0, it "claims" every product
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13, "Toys": 1})
    result = label_issues(frame, _words_config(), folds=5, progress=False)
    errors = round((1 - result["cv_accuracy"]) * result["n_labelled"])
    assert 0 < errors < 10
    # only mispredicted products can be flagged (the old rule flagged 25 of 40 here, with 3 errors)
    assert result["n_issues"] <= errors
    # nor the Toys product, predicted by folds that never saw a toy: it was flagged, Kitchen suggested
    # (205 of the 236 Flipkart products flagged at the full path were such lone ones); it is not checked
    assert "To0" not in {issue["product_id"] for issue in result["issues"]} and result["n_unchecked"] == 1
    assert result["warnings"][0].startswith("1 product is not checked: their category has no product in the other")


def test_cross_validation_obstacle() -> None:
    config = Config(level=None)
    # 5 folds, then 5 inner folds on the 4/5 left for training: 7 - ceil(7 / 5) = 5
    assert min_products_per_category(5, 5) == 7 and min_products_per_category(4, 2) == 4
    assert cross_validation_obstacle(_tiny_text_catalog({"Kitchen": 7, "Watches": 7, "Toys": 1}), config, 5) is None
    too_few = cross_validation_obstacle(_tiny_text_catalog({"Kitchen": 7, "Watches": 6}), config, 5)
    assert too_few is not None and "at least 7 labelled products" in too_few and "Watches (6)" in too_few
    one = cross_validation_obstacle(_tiny_text_catalog({"Kitchen": 30}), config, 5)
    assert one is not None and "two categories" in one
    assert "folds" in str(cross_validation_obstacle(_tiny_text_catalog({"Kitchen": 9, "Watches": 9}), config, 1))


@pytest.mark.parametrize("sizes", [{"Kitchen": 6}, {"Kitchen": 1, "Watches": 1}], ids=["one-category", "two-rows"])
def test_cli_audit_labels_skipped_on_tiny_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sizes: dict[str, int]
) -> None:
    """The label audit cannot cross-validate: it is skipped with its reason, the rest of the audit written."""
    path = tmp_path / "shop.csv"
    _tiny_text_catalog(sizes).to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--labels"]) == 0
    result = json.loads((report / "audit.json").read_text())
    assert result["summary"]["products"] == sum(sizes.values()) and "duplicates" in result and "images" in result
    labels = result["labels"]
    assert labels["skipped"] and "n_issues" not in labels
    assert "two categories" in labels["reason"] and ("labelled products each" in labels["reason"]) == (len(sizes) > 1)
    assert labels["reason"] in capsys.readouterr().out
    html = (report / "audit.html").read_text()
    assert "label audit skipped: it needs at least two categories" in html and "likely mislabelled</div>" not in html


def test_cli_audit_leaves_out_the_products_whose_only_photo_does_not_decode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Products read from their photo alone whose photo does not decode teach nothing: train and cv leave them out,
    but the label audit fitted on them, and when no other product was left it ended in a traceback ('no head in the
    config can be trained on the modalities ['image']'). It leaves them out, saying so, and skips when none is left."""
    (tmp_path / "notes.jpg").write_text("not a photo")
    sizes = {"Kitchen": 8, "Watches": 8}
    frame = _tiny_text_catalog(sizes).assign(image="notes.jpg")
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    report = tmp_path / "report"
    audit = ["audit", str(path), "--report", str(report), "--no-images", "--labels", "--modalities", "image"]
    assert main(audit) == 0
    labels = json.loads((report / "audit.json").read_text())["labels"]
    left_out = "16 labelled products have only a photo to read, which does not decode: not checked"
    assert labels["skipped"] and labels["n_labelled"] == 0 and labels["warnings"] == [left_out]
    assert labels["reason"] == "label audit skipped: no labelled product with image to learn from"
    out = capsys.readouterr().out
    assert f"{labels['reason']}\nwarning: {left_out}\n" in out
    assert left_out in (report / "audit.html").read_text()


@pytest.mark.parametrize(
    ("titles", "near_groups"),
    [
        (["blue shirt", "blue shirt"], 0),  # every word in every text: all pruned by max_df before
        (["Shirt 1", "Shirt 2", "Shirt 3"], 1),  # the digits are not words: "shirt" is all there is
        # "shirt", in most texts, was pruned from the vocabulary, which kept "dress" and "10": no shirt had a word left
        (["Shirt 1", "Shirt 2", "Shirt 3", "Dress 10"], 1),
        (["1", "2"], 0),  # no word at all
    ],
    ids=["two-copies", "numbered", "numbered-beside-another", "digits-only"],
)
def test_cli_audit_of_a_tiny_repetitive_catalogue(tmp_path: Path, titles: list[str], near_groups: int) -> None:
    path = tmp_path / "shop.csv"
    pd.DataFrame(
        {
            "product_id": range(len(titles)),
            "title": titles,
            "category": ["Shirts", "Tops", "Tops", "Dresses"][: len(titles)],
        }
    ).to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    duplicates = json.loads((report / "audit.json").read_text())["duplicates"]
    assert duplicates["near"]["groups"] == near_groups
    assert duplicates["exact"]["groups"] == (titles[0] == titles[1])


def test_near_duplicate_texts_are_not_chained() -> None:
    """Shoes ~ shoes ~ shirt, but the first shoes are far from the shirt: the shirt is not pulled into the
    shoes' group, so no conflict (a 21-product group of Benetton shoes and shirts was a level-1 conflict)."""
    shoes = "benetton leather shoes black men formal lace up size"
    texts = [f"{shoes} eight", f"{shoes} nine", f"{shoes.replace('shoes', 'shirt')} nine"]
    texts += ["cotton bath towel set", "steel water bottle", "ceramic coffee mug", "wool winter blanket"]
    labels = ["Footwear > Shoes", "Footwear > Shoes", "Clothing > Shirts"] + ["Home > Decor"] * 4
    frame = pd.DataFrame({"product_id": [f"p{i}" for i in range(len(texts))], "category": labels})
    near = duplicate_stats(frame, texts, similarity=0.8, progress=False)["near"]
    assert [g["product_ids"] for g in near["largest_groups"]] == [["p0", "p1"]]
    assert near["conflicting_groups"] == 0


def test_photo_conflicts_are_reported_by_level(flipkart_dir: Path) -> None:
    """One pizza cutter photo sold by two brands: Flipkart's paths end with the brand, so they differ at level 5."""
    cutters = ["e3c741a05c82c54343b94ed8c1292e2a", "f2751cf0dd59d223cacbc5da5df42a1a"]
    catalog = load_catalog(flipkart_dir)
    frame = catalog.frame[catalog.frame["product_id"].isin(cutters)].reset_index(drop=True)
    result = audit_catalog(Catalog(frame=frame, source="flipkart", format=catalog.format), progress=False)
    duplicates = result["images"]["duplicates"]
    assert duplicates["groups"] == 1 and duplicates["conflicts_by_level"] == {"5": 1}
    assert duplicates["conflicts"][0]["first_differing_level"] == 5


def test_photo_score_statistics_are_exact(flipkart_dir: Path) -> None:
    """Border ratios are not truncated to whole numbers (max was 0), blur's mean and max are not taken after
    clipping at its 99th percentile, and histogram edges are not rounded to one decimal."""
    from prodcat.image.quality import quality_frame

    catalog = load_catalog(flipkart_dir)
    frame = catalog.frame.head(20).reset_index(drop=True)
    quality = audit_catalog(Catalog(frame=frame, source="flipkart", format=catalog.format), progress=False)
    quality = quality["images"]["quality"]
    scores = quality_frame(frame, progress=False)
    assert (
        quality["border_ratio"]["max"] == pytest.approx(scores["border_ratio"].max())
        and 0 < quality["border_ratio"]["max"] < 1
    )
    assert quality["blur"]["max"] == pytest.approx(scores["blur"].max())
    assert quality["blur"]["mean"] == pytest.approx(scores["blur"].mean())
    assert quality["border_ratio"]["histogram"]["edges"][1] == pytest.approx(1 / 30)


@pytest.mark.parametrize("value", ["7", "-1", "0"])
def test_cli_audit_refuses_a_similarity_outside_0_1(tmp_path: Path, value: str) -> None:
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path), "--report", str(tmp_path / "r"), "--similarity", value])
    assert exit_info.value.code == 2 and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--folds", "3", "--level", "1"], "--level, --folds only apply"),
        # one option: it read '--level only apply to the label audit'
        (["--level", "2"], "--level only applies"),
    ],
)
def test_cli_audit_refuses_label_options_without_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], said: str
) -> None:
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    assert main(["audit", str(path), "--report", str(tmp_path / "r"), *options]) == 2
    # "error: ...", as every other command words a refusal (it read "prodcat audit: ...")
    assert capsys.readouterr().err == f"error: {said} to the label audit: add --labels\n"


def test_cli_audit_summary_tells_the_text_photo_and_markup_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    assert main(["audit", str(path), "--report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "photos: 1 given, 7 products without, 1 unreadable" in out
    # p8 has neither text nor photo: it was counted among the products without text, its report line saying
    # '(photo only)'
    assert (
        "products without text: 1 (1 without a photo either: nothing to classify them from); of the 7 with text,"
        " 0 have no title, 1 no description" in out
    )
    html = (tmp_path / "r" / "audit.html").read_text()
    assert "1 of them have no photo either: nothing to classify them from" in html and "photo only" not in html
    # the cards: the title and description ones count among the 7 with text, p8 (no text) in a card of its own; they
    # read '0 no title' and '14.3 % no description' alone, of a catalogue whose product p8 has neither
    cards = re.findall(r'<div class="card"><b>([^<]*)</b>([^<]*)</div>', html)
    assert ("1", "no text (1 nor a photo)") in cards
    assert ("0", "no title, of the 7 with text") in cards and ("14.3 %", "no description, of the 7 with text") in cards
    # the duplicate sentences end on their count ('0 groups with conflicting labels .' without a level to add)
    sentences = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "1 groups with conflicting labels (first differing level: 1: 1)." in sentences
    assert "0 groups with conflicting labels." in sentences and "labels ." not in sentences
    assert "duplicate text groups: 1 exact, 0 near (1 with conflicting labels)" in out
    assert "products with HTML tags, entities or mojibake: 3" in out


def test_the_text_length_histograms_fit_the_report_column(tmp_path: Path) -> None:
    """A catalogue with descriptions has four text length histograms, which were drawn in one row 1,430 px wide in
    audit.html's 1,100 px column: the description words histogram was cut off at the window's edge (Flipkart,
    Rakuten). They are now drawn two a row."""
    import base64
    import io

    from PIL import Image

    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    assert main(["audit", str(path), "--report", str(tmp_path / "r"), "--no-images"]) == 0
    html = (tmp_path / "r" / "audit.html").read_text()
    (chart,) = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="text lengths">', html)
    width, height = Image.open(io.BytesIO(base64.b64decode(chart))).size
    assert width <= 1100 and height > width / 2  # two rows of two


def test_the_text_length_histograms_have_a_bar_per_whole_number_of_words() -> None:
    """Titles of 1 to 14 words were counted in 30 bars of 0.47 words: every other bar held two lengths or none, a
    comb with empty gaps between lengths that every product has. A bar is now a whole number of words (or characters)
    wide, up to 30 bars."""
    titles = [" ".join(["word"] * words) for words in range(1, 15) for _ in range(5)]
    frame = pd.DataFrame({"title": titles, "description": [""] * len(titles), "image": [None] * len(titles)})
    histogram = text_stats(frame)["title"]["words"]["histogram"]
    assert histogram["edges"] == list(range(16))  # 0 to 15: the last bar from 14 up
    assert histogram["counts"] == [0] + [5] * 14
    long_texts = text_stats(frame.assign(title=["x" * (100 * n) for n in range(1, 71)]))["title"]["chars"]
    widths = np.diff(long_texts["histogram"]["edges"])
    assert len(widths) <= 30 and (widths == widths[0]).all() and widths[0] == int(widths[0])


def test_cli_audit_sample_keeps_the_loader_issues_of_its_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    # every row lacks its product id: one loader issue (with no product id) per row
    pd.DataFrame({"product_id": [None] * 10, "title": [f"mug {i}" for i in range(10)], "category": "Kitchen"}).to_csv(
        path, index=False
    )
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images", "--sample", "3"]) == 0
    summary = json.loads((report / "audit.json").read_text())["summary"]
    assert summary["products"] == 3 and summary["loader_issues"] == 3


def test_label_issues_of_a_weak_classifier_warn_and_need_confidence() -> None:
    """Labels shuffled: cross-validation cannot learn them. The audit says its classifier is weak, suggests no
    category below MIN_SUGGESTION_CONFIDENCE, and writes the level and modalities it resolved (not null)."""
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13})
    frame["category"] = frame["category"].sample(frac=1, random_state=0).to_numpy()
    result = label_issues(frame, _words_config(), folds=3, progress=False)
    assert result["cv_accuracy"] < LOW_CV_ACCURACY and any("classifier is weak" in w for w in result["warnings"])
    assert all(issue["confidence"] >= MIN_SUGGESTION_CONFIDENCE for issue in result["issues"])
    assert result["level"] == 0 and result["modalities"] == ["text"]


def test_label_issues_at_a_level_deeper_than_the_paths_say_the_full_paths_are_checked() -> None:
    """--level 3 on one-level categories compares the paths whole: the report said 'level 3', a level that was
    never checked, with no word of it."""
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13})
    config = _words_config().model_copy(update={"level": 3})
    result = label_issues(frame, config, folds=3, progress=False)
    assert result["level"] == 0
    assert result["warnings"] == ["level 3 asked, but the categories have 1 level(s): the full paths are checked"]


def test_label_audit_report_names_the_classifier_it_ran(tmp_path: Path) -> None:
    """The report said 'predictions of the default classifier' whatever --config gave."""
    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13}).to_csv(path, index=False)
    config = tmp_path / "words.yaml"
    config.write_text(
        "heads:\n  - {name: text_words, modality: text, features: [{name: tfidf_word}], C: 5.0, scale: false}\n"
    )
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images", "--labels", "--config", str(config)]) == 0
    html = (report / "audit.html").read_text()
    assert "predictions of the classifier of the config given" in html and "default classifier" not in html
    assert "(full category paths, modalities text;" in html
    # the audit's own options do not make the default classifier another one
    assert _is_default_classifier(Config(level=1, modalities=["text"]))


def test_label_audit_takes_the_seed_train_and_cv_take_and_records_it(tmp_path: Path) -> None:
    """The label audit's folds and models were drawn with the config's seed (0 without one), which no option could
    change, and its report did not say which: --seed overrides the config's, as train's and cv's, and audit.json and
    audit.html name the seed used."""
    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13}).to_csv(path, index=False)
    config = _words_config_file(tmp_path, "seed: 5")
    audit = ["audit", str(path), "--no-images", "--labels", "--folds", "3", "--config", str(config)]
    for flags, seed in [([], 5), (["--seed", "3"], 3)]:
        report = tmp_path / f"report-{seed}"
        assert main([*audit, *flags, "--report", str(report)]) == 0
        assert json.loads((report / "audit.json").read_text())["labels"]["seed"] == seed
        assert f"3-fold (seed {seed}) out-of-fold predictions" in (report / "audit.html").read_text()


def _words_config_file(folder: Path, fields: str) -> Path:
    """A config file of these YAML ``fields`` and the head of :func:`_words_config` (without its other fields)."""
    config = folder / "words.yaml"
    words = "{name: text_words, modality: text, features: [{name: tfidf_word}], C: 5.0, scale: false}"
    config.write_text(f"{fields}\nheads:\n  - {words}\n")
    return config


@pytest.fixture
def audited_products(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The product ids of each catalogue ``prodcat audit`` audits (after its --sample), one set per run."""
    from prodcat.catalog.audit import command as audit_command

    audited: list[set[str]] = []

    def recorded(catalog: Catalog, **options: object) -> dict:
        audited.append(set(catalog.frame["product_id"]))
        return audit_catalog(catalog, **options)

    monkeypatch.setattr(audit_command, "audit_catalog", recorded)
    return audited


def test_audit_draws_its_sample_as_train_does_from_the_seed_and_the_config_and_records_them(
    tmp_path: Path, audited_products: list[set[str]]
) -> None:
    """The audit's --sample was drawn with a fixed random_state=0, whatever --seed or the config's seed, and the
    config's `sample` (a bundle's manifest.json records it) was ignored: the audit now draws the products train and
    cv draw with the same size and seed, the config's sample unless --sample overrides it, and audit.json says
    which."""
    from prodcat.commands import labelled_sample

    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13}).to_csv(path, index=False)
    config = _words_config_file(tmp_path, "seed: 5\nsample: 24")
    audit = ["audit", str(path), "--no-images", "--labels", "--folds", "3", "--config", str(config)]
    for flags, size, seed in [([], 24, 5), (["--seed", "3"], 24, 3), (["--sample", "30"], 30, 5)]:
        report = tmp_path / f"report-{size}-{seed}"
        assert main([*audit, *flags, "--report", str(report)]) == 0
        drawn_by_train = labelled_sample(load_catalog(path).frame, Config(seed=seed), size)
        assert audited_products[-1] == set(drawn_by_train["product_id"])
        assert json.loads((report / "audit.json").read_text())["sample"] == {"size": size, "seed": seed}
        assert (
            f"a sample of {size} products, stratified by category, drawn with seed {seed}"
            in (report / "audit.html").read_text()
        )
    assert len({frozenset(products) for products in audited_products}) == 3
    whole = tmp_path / "whole"  # a sample of every product or more draws none: no sample to report
    assert main([*audit, "--sample", "39", "--report", str(whole)]) == 0
    assert json.loads((whole / "audit.json").read_text())["sample"] is None and len(audited_products[-1]) == 39
    every = tmp_path / "every"  # --sample 0: every product, whatever the config's sample
    assert main([*audit, "--sample", "0", "--report", str(every)]) == 0
    assert json.loads((every / "audit.json").read_text())["sample"] is None and len(audited_products[-1]) == 39


def test_the_seed_of_an_audit_sample_is_taken_without_labels_and_refused_without_a_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], audited_products: list[set[str]]
) -> None:
    """--seed was a label-audit option, refused without --labels: `audit --sample N` was drawn with seed 0 alone.
    It now draws the sample (not only names the seed in audit.json), and is refused naming the options it needs."""
    from prodcat.catalog.audit.command import _sample

    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13}).to_csv(path, index=False)
    audit = ["audit", str(path), "--no-images", "--sample", "6"]
    for seed in (1, 2):
        assert main([*audit, "--seed", str(seed), "--report", str(tmp_path / f"r{seed}")]) == 0
        assert json.loads((tmp_path / f"r{seed}" / "audit.json").read_text())["sample"] == {"size": 6, "seed": seed}
        drawn = _sample(load_catalog(path), Config(seed=seed), 6).frame["product_id"]
        assert audited_products[-1] == set(drawn)
    assert audited_products[0] != audited_products[1]
    assert main(["audit", str(path), "--seed", "1", "--report", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.endswith(
        "error: --seed only applies to a --sample and to the label audit: add --sample N or --labels\n"
    )


def test_spelling_groups_are_the_names_of_one_key() -> None:
    """The categories train warns of and the audit lists: the same but for case, accents, spaces, punctuation or
    symbols, level by level."""
    names = ["Kitchen", "Bath", "kitchen", "Kitchén", "Kitchen > Mugs", "kitchen  >  mugs", "Kitchen > Pans"]
    assert spelling_groups(names) == [["Kitchen", "Kitchén", "kitchen"], ["Kitchen > Mugs", "kitchen  >  mugs"]]
    assert spelling_groups(["Bath", "Kitchen"]) == spelling_groups([]) == []


def test_labels_apart_by_a_symbol_that_names_another_category_or_by_what_stands_between_digits_are_not_grouped() -> (
    None
):
    """Compared on their letters and digits alone, 'C' / 'C#' / 'C++', '1-2 Years' / '12 Years', 'Grade A' / 'Grade
    A+', 'Tools > 1/2 inch' / 'Tools > 12 inch', '½ Sleeve' / '12 Sleeve' were each one category written several ways,
    and train advised correcting them to one spelling. A '+' or '#' is kept, what stands between two digits is one mark
    whatever it is; punctuation, spaces and symbols elsewhere are still spelling."""
    apart = [
        ["C", "C#", "C++"],
        ["1-2 Years", "12 Years"],
        ["2-3 Years", "23 Years"],
        ["Grade A", "Grade A+"],
        ["Tools > 1/2 inch", "Tools > 12 inch"],
        ["½ Sleeve", "12 Sleeve"],
    ]
    for names in apart:
        assert spelling_groups(names) == [], names
    one = [
        ["Shoes", "Shoes."],
        ["Computers / Laptops", "Computers/Laptops"],
        ["T-Shirts", "Tshirts"],
        ["Beauty", "Beauty 💄"],
        ["2 - 3", "2-3"],
        ["1/2", "½"],
    ]
    for names in one:
        assert spelling_groups(names) == [names], names


def test_categories_differing_only_in_spacing_are_one_class_not_several_ways() -> None:
    """'Wrist Watches' and 'Wrist  Watches' (a double space, as in 26 of Flipkart's deep paths) were two classes
    to training, listed as one category written several ways; training collapses spacing within a level now, as it
    strips it around one: they are one class, nothing to correct."""
    spellings = ["Watches > Wrist Watches", "Watches > Wrist  Watches", "Watches >Wrist\u00a0Watches "]
    level = class_balance(pd.Series([*spellings, "Watches > Clocks"]))["levels"]["2"]
    assert level["counts"] == {"Watches > Wrist Watches": 3, "Watches > Clocks": 1}
    assert level["written_several_ways"] == []


def test_cli_audit_finds_categories_written_several_ways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'Kitchen', 'kitchen' and 'Kitchén' are one category to a reader and three to training (which warns); the
    audit, run to find such problems before training, said nothing."""
    path = tmp_path / "shop.csv"
    categories = ["Kitchen > Mugs", "kitchen > Mugs", "Kitchén > Pans", "Kitchen > mugs"]
    categories += ["Bath > Towels", "bath > Towels"]
    pd.DataFrame(
        {"product_id": range(6), "title": ["mug", "cup", "pan", "tea mug", "soap", "towel"], "category": categories}
    ).to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    levels = json.loads((report / "audit.json").read_text())["classes"]["levels"]
    assert levels["1"]["written_several_ways"] == [["Bath", "bath"], ["Kitchen", "Kitchén", "kitchen"]]
    # 'bath > Towels' differs from 'Bath > Towels' at level 1 only: it is not listed again at level 2
    assert levels["2"]["written_several_ways"] == [["Kitchen > Mugs", "Kitchen > mugs", "kitchen > Mugs"]]
    out = capsys.readouterr().out
    assert (
        "categories written in several ways (case, accents, spaces, punctuation or symbols; each way is learnt as a "
        "category of its own):"
        " 3, e.g. 'Bath' / 'bath' at level 1" in out
    )
    html = (report / "audit.html").read_text()
    assert "Kitchen &gt; Mugs (1) / Kitchen &gt; mugs (1) / kitchen &gt; Mugs (1)" in html


def test_label_issues_say_which_labelled_products_they_leave_out() -> None:
    """The summary read '47 labelled' then 'likely mislabelled: 1 of 45', the two products without text left out
    of the label audit without a word."""
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13})
    frame.loc[[0, 20], "title"] = ["", "<p></p>"]  # markup alone is no text either
    result = label_issues(frame, _words_config(), folds=3, progress=False)
    assert result["n_labelled"] == 37
    assert result["warnings"] == ["2 labelled products have no text: not checked"]


def test_label_issues_of_a_photo_model_say_the_products_without_a_photo_in_english() -> None:
    """An audit of the photos alone (--modalities image) warned '26 labelled products have no a photo'."""
    colours = HeadConfig(name="image_colours", modality="image", features=[FeatureSpec(name="color_hist")])
    config = Config(level=None, modalities=["image"], heads=[colours])
    result = label_issues(_tiny_text_catalog({"Kitchen": 13, "Watches": 13}), config, folds=3, progress=False)
    assert result["warnings"] == ["26 labelled products have no photo: not checked"]


@pytest.mark.parametrize(
    ("categories", "said"),
    [
        (["Kitchen", "Kitchen > Mugs"], "1 product in 1 category is labelled"),
        (["Kitchen", "Kitchen", "Kitchen > Mugs"], "2 products in 1 category are labelled"),
    ],
)
def test_the_audit_page_counts_the_products_labelled_above_subcategories_in_words_that_agree(
    categories: list[str], said: str, tmp_path: Path
) -> None:
    """audit.html said '1 products in 1 category is labelled ...' (a 120-product Flipkart sample), and '2 products
    in 1 category is labelled': the verb agreed with the categories, not with the products it is said of."""
    path = tmp_path / "shop.csv"
    titles = [f"item {i}" for i in range(len(categories))]
    pd.DataFrame({"product_id": range(len(categories)), "title": titles, "category": categories}).to_csv(
        path, index=False
    )
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    assert f"{said} with a category that has" in (report / "audit.html").read_text()


def test_cli_audit_finds_products_labelled_above_subcategories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Products labelled 'Kitchen' beside others under 'Kitchen > Mugs' (24 Flipkart products, such as 7 labelled
    'Home Furnishing > Curtains & Accessories > Curtains' beside 8 under it) make a category of their own beside
    their subcategories at any deeper level; the audit said nothing of it."""
    path = tmp_path / "shop.csv"
    categories = ["Kitchen", "Kitchen", "Kitchen > Mugs", "Kitchen > Mugs", "Kitchen > Mugs", "Kitchen > Mugs > Tea"]
    categories += ["Bath > Towels"]
    pd.DataFrame({"product_id": range(7), "title": [f"item {i}" for i in range(7)], "category": categories}).to_csv(
        path, index=False
    )
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    found = json.loads((report / "audit.json").read_text())["classes"]["labelled_above_subcategories"]
    assert found == {
        "categories": 2,
        "products": 5,
        "largest": [
            {"category": "Kitchen > Mugs", "products": 3, "products_under": 1},
            {"category": "Kitchen", "products": 2, "products_under": 4},
        ],
    }
    assert (
        "products labelled with a category that has subcategories: 5 in 2 categories, e.g. 'Kitchen > Mugs' (3; 1"
        " under it)" in capsys.readouterr().out
    )
    assert "5 products in 2 categories are labelled with a category that has" in (report / "audit.html").read_text()
    assert _above_subcategories_lines({"categories": 1, "products": 2, "largest": found["largest"][1:]}) == [
        "products labelled with a category that has subcategories: 2 in 1 category, e.g. 'Kitchen' (2; 4 under it);"
        " at deeper levels they are a category of their own beside their subcategories"
    ]


def test_cli_audit_writes_the_whole_lists_to_act_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report listed the first 200 loader issues and the first 200 suspected mislabels; the other loader
    issues were nowhere, the mislabels only inside audit.json. Both lists are now whole CSVs, removed when a later
    run in the same folder has none."""
    path = tmp_path / "shop.csv"
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13})
    frame.loc[0, "category"] = "Bath"  # a kitchen product labelled Bath
    frame["product_id"] = [None] * 5 + list(frame["product_id"][5:])  # five loader issues
    frame.to_csv(path, index=False)
    config = tmp_path / "words.yaml"
    config.write_text(
        "heads:\n  - {name: text_words, modality: text, features: [{name: tfidf_word}], C: 5.0, scale: false}\n"
    )
    report = tmp_path / "report"
    audit = ["audit", str(path), "--report", str(report), "--no-images"]
    assert main([*audit, "--labels", "--config", str(config), "--folds", "3"]) == 0
    assert f"and {report / 'label_issues.csv'}\n" in capsys.readouterr().out
    loader = pd.read_csv(report / "input_issues.csv")
    assert loader.columns.tolist() == ["row", "product_id", "field", "message"] and len(loader) == 5
    labels = pd.read_csv(report / "label_issues.csv", keep_default_na=False)
    issues = json.loads((report / "audit.json").read_text())["labels"]["issues"]
    assert labels["product_id"].tolist() == [issue["product_id"] for issue in issues]
    assert labels.columns.tolist()[:6] == ["row", "product_id", "title", "image", "given", "suggested"]
    # the source line, as input_issues.csv's: an id renamed by the loader (row-2, id~2) is not in the source
    expected = {"row": 2, "product_id": "row-2", "given": "Bath", "suggested": "Kitchen", "first_differing_level": 1}
    assert expected.items() <= labels.iloc[0].to_dict().items()
    frame.assign(product_id=range(len(frame))).to_csv(path, index=False)
    assert main(audit) == 0
    assert sorted(p.name for p in report.iterdir()) == ["audit.html", "audit.json"]


def test_cli_audit_says_the_classifier_is_weak_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The weak-classifier warning was logged amid the progress bars, then printed again in the summary."""
    path = tmp_path / "shop.csv"
    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13})
    frame["category"] = frame["category"].sample(frac=1, random_state=0).to_numpy()
    frame.to_csv(path, index=False)
    config = tmp_path / "words.yaml"
    config.write_text(
        "heads:\n  - {name: text_words, modality: text, features: [{name: tfidf_word}], C: 5.0, scale: false}\n"
    )
    report = ["--report", str(tmp_path / "report"), "--no-images"]
    assert main(["audit", str(path), *report, "--labels", "--config", str(config), "--folds", "3"]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err + caplog.text).count("the classifier is weak") == 1


def test_cli_audit_warns_of_unchecked_products_before_fitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At Flipkart's full path 500 of 900 products are not checked (categories of one product): the user heard it
    after 57 minutes of fitting; the audit knows it from the folds alone, and says it, with a level that checks."""
    import prodcat.evaluate.cv

    frame = _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 12})
    # Kitchen and Watches one subcategory each; every Bath product a subcategory of its own
    frame["category"] = frame["category"] + " > " + np.where(frame["category"] == "Bath", frame["product_id"], "All")
    frame.to_csv(path := tmp_path / "shop.csv", index=False)
    said_before_fitting = []
    cross_validate = prodcat.evaluate.cv.cross_validate

    def recording_cross_validate(*args: object, **kwargs: object) -> object:
        said_before_fitting.append(capsys.readouterr().out)
        return cross_validate(*args, **kwargs)

    monkeypatch.setattr(prodcat.evaluate.cv, "cross_validate", recording_cross_validate)
    config = tmp_path / "words.yaml"
    config.write_text("heads:\n  - {name: text_words, modality: text, features: [{name: tfidf_word}], scale: false}\n")
    report = ["--report", str(tmp_path / "report"), "--no-images", "--config", str(config)]
    assert main(["audit", str(path), *report, "--labels", "--level", "0"]) == 0
    expected = "12 products are not checked: their category has no product in the other folds"
    assert f"warning: {expected}" in said_before_fitting[0]
    assert said_before_fitting[0].count("warning:") == 1
    assert "(12 of 38); --level 1 checks 38 of them" in said_before_fitting[0]
    labels = json.loads((tmp_path / "report" / "audit.json").read_text())["labels"]
    assert labels["n_unchecked"] == 12 and labels["warnings"][0].startswith(expected)
    # every product checked: nothing said before
    capsys.readouterr()
    assert main(["audit", str(path), *report, "--labels", "--level", "1"]) == 0
    assert "not checked" not in said_before_fitting[1] + capsys.readouterr().out


@pytest.mark.parametrize("name", ["input_issues.csv", "label_issues.csv"])
def test_cli_audit_refuses_a_report_folder_over_its_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The audit writes, or removes, these lists in its report folder: a catalogue of that name there was lost."""
    path = tmp_path / name
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    content = path.read_bytes()
    assert main(["audit", str(path), "--report", str(tmp_path), "--no-images"]) == 2
    assert f"--report {tmp_path} holds the input catalogue {path}" in capsys.readouterr().err
    assert path.read_bytes() == content and not (tmp_path / "audit.json").exists()


@pytest.mark.parametrize(
    ("categories", "separator"),
    [
        (["Kitchen/Mugs", "Kitchen/Pans", "Bath/Towels"], "/"),
        (["Kitchen|Mugs", "Kitchen|Pans", "Bath"], None),  # one category of three without it: names, maybe
        (["Bags/Wallets", "Shoes", "Socks"], None),
        (["Kitchen > Mugs/Cups", "Bath > Towels/Robes"], None),  # already paths
    ],
)
def test_cli_audit_says_when_categories_are_unsplit_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], categories: list[str], separator: str | None
) -> None:
    """Categories written 'Kitchen/Mugs' are one level unless --category-sep / is given: the audit showed a
    one-level catalogue of such names without a word."""
    path = tmp_path / "shop.csv"
    n = len(categories)
    pd.DataFrame({"product_id": range(n), "title": [f"item {i}" for i in range(n)], "category": categories}).to_csv(
        path, index=False
    )
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    assert json.loads((report / "audit.json").read_text())["classes"]["unsplit_separator"] == separator
    hint = "the categories look like paths written with '/', read as one level: pass --category-sep / to read"
    assert (hint in capsys.readouterr().out) == (separator == "/")
    assert ("The categories look like paths written with" in (report / "audit.html").read_text()) == bool(separator)


def test_cli_audit_refuses_an_empty_category_separator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--category-sep "" (an unset shell variable) ended in str.split's 'ValueError: empty separator' traceback."""
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.to_csv(path, index=False)
    assert main(["audit", str(path), "--report", str(tmp_path / "r"), "--no-images", "--category-sep", ""]) == 2
    assert "--category-sep is empty: give the separator of the category levels" in capsys.readouterr().err


def test_audit_reads_each_product_language_as_training_does(fashion_dir: Path) -> None:
    """The audit detected each product's language alone: it counted 1,222 of fashion's 6,000 English titles as
    German, Italian, Spanish or French ('Alma Women Beige Kurta': German), which training reads as English in light
    of the catalogue's languages."""
    catalog = load_catalog(fashion_dir)
    frame = catalog.frame
    clean = clean_texts(product_text(frame))
    lines = [catalog.line_of(position) for position in range(len(frame))]
    stats = language_stats(clean, progress=False, product_ids=frame["product_id"].tolist(), lines=lines)
    assert stats["counts"] == {"en": has_text(frame).sum(), "und": (~has_text(frame)).sum()}  # 5,998 and 2 no title
    assert stats["other"]["products"] == 0  # none of the titles taken for a language prodcat does not read


def test_the_products_in_another_language_are_named_by_their_source_line_and_id() -> None:
    """Without lines, language_stats gave the 0-based position as such a product's "row", where every other audit
    section counts from 1: the audit's only caller passes each product's source line and id, now both required."""
    dutch = "Houten speelgoedtrein voor kinderen. Mooie houten trein met wagons en rails. Geschikt vanaf 3 jaar."
    with pytest.raises(TypeError, match="product_ids"):
        language_stats([dutch], progress=False)
    stats = language_stats(["", dutch], progress=False, product_ids=["p-1", "nl-2"], lines=[2, 3])
    assert [(e["row"], e["product_id"], e["language"]) for e in stats["other"]["first"]] == [(3, "nl-2", "nl")]


def test_audit_names_the_products_written_in_a_language_it_has_no_stop_words_or_lemmas_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Belgian marketplace's Dutch listings were counted as German or English, a Russian one as French or
    Italian, and nothing said so: the audit's languages held fr, en, de, es and it only, and the console none. It now
    counts the languages on the console and names the products written in another one, with the language they are
    read in (whose stop-words and lemmas they get)."""
    rows = [
        ("fr-1", "Housse de couette en coton", "Housse de couette très douce avec deux taies d'oreiller", "Linge"),
        ("fr-2", "Montre homme acier inoxydable", "Montre analogique étanche avec bracelet en cuir", "Montres"),
        ("en-1", "Cotton bath towel, pack of 3", "Soft and absorbent towels, machine washable", "Linge"),
        ("en-2", "Analog watch for men", "Stainless steel strap, water resistant to 50 m", "Montres"),
        ("nl-1", "Katoenen dekbedovertrek 2-persoons", "Zacht katoen dekbedovertrek met twee kussenslopen", "Linge"),
        (
            "nl-2",
            "Houten speelgoedtrein voor kinderen",
            "Mooie houten trein met wagons en rails. Geschikt vanaf 3 jaar.",
            "Jouets",
        ),
        ("ru-1", "Мужские наручные часы", "Аналоговые часы с кожаным ремешком", "Montres"),
    ]
    path = tmp_path / "shop.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "category"]).assign(image="").to_csv(
        path, index=False
    )
    assert main(["audit", str(path), "--report", str(tmp_path / "r"), "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "languages, as training reads them: " in out
    assert (
        "3 products written in a language prodcat has no stop-words or lemmas of (nl 2, ru 1): read as one of fr, en,"
        " de, es, it; listed in audit.json (languages.other)" in out
    )
    other = json.loads((tmp_path / "r" / "audit.json").read_text())["languages"]["other"]
    assert [(p["row"], p["product_id"], p["language"]) for p in other["first"]] == [
        (6, "nl-1", "nl"),
        (7, "nl-2", "nl"),
        (8, "ru-1", "ru"),
    ]
    assert all(p["read_as"] in ("fr", "en", "de", "es", "it") for p in other["first"])
    assert other["first"][2]["text"].startswith("Мужские наручные часы")
    assert "written in a language prodcat has no stop-words or lemmas" in (tmp_path / "r" / "audit.html").read_text()


def test_the_audit_benchmark_measures_an_audit_whose_label_check_was_skipped(tmp_path: Path) -> None:
    """benchmarks/audit_labels.py opened label_issues.csv before asking whether it was there: an audit that skipped
    its label check (a catalogue of one category) ended the benchmark with FileNotFoundError; it flags no row."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("audit_labels_benchmark", root / "benchmarks" / "audit_labels.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 6}).to_csv(path, index=False)
    measured = benchmark.audit(root / "src", path, level=0, report=tmp_path / "report")
    assert json.loads((tmp_path / "report" / "audit.json").read_text())["labels"]["skipped"]
    assert measured["flagged_rows"] == [] and measured["wall_seconds"] > 0 and measured["peak_rss_mb"] > 0


def test_near_duplicates_pair_copies_of_a_text_once_and_group_as_every_pair_would() -> None:
    """Every pair of similar rows was kept, k (k - 1) / 2 of them for k copies of a title (9,000 copies: 2.5 GB, and
    12,000 texts of common words beside them 6.5 GB). Copies are now compared once; the groups read from the pairs
    are those of every pair, on random vectors full of copies."""
    import scipy.sparse as sp

    from prodcat.catalog.audit.duplicates import _similar_pairs
    from prodcat.grouping import representative_groups

    rng = np.random.default_rng(0)
    for _ in range(50):
        distinct = rng.random((8, 5)) * (rng.random((8, 5)) < 0.4)
        picked = rng.integers(0, 8, size=30)
        vectors = sp.csr_matrix(distinct[picked] / np.maximum(np.linalg.norm(distinct[picked], axis=1), 1e-12)[:, None])
        cosine = (vectors @ vectors.T).toarray()
        every_i, every_j = np.nonzero(np.triu(cosine >= 0.8, k=1))
        rows, cols = _similar_pairs(vectors, 0.8, progress=False)
        expected = representative_groups(30, every_i, every_j)
        np.testing.assert_array_equal(representative_groups(30, rows, cols), expected)
    copies = sp.csr_matrix(np.tile([[0.6, 0.8]], (1000, 1)))
    assert len(_similar_pairs(copies, 0.9, progress=False)[0]) == 999  # each copy with the first, not 499,500


def test_a_category_above_subcategories_is_found_however_it_is_spaced() -> None:
    """Training collapses the spacing of a level ('Home  Decor' trains as 'Home Decor'), but the audit compared the
    paths as written: products labelled 'Home  Decor' beside others under 'Home Decor > Vases', one category above
    its subcategories to training, were not found."""
    categories = pd.Series(["Home  Decor", "Home Decor ", "Home Decor > Vases", "Home Decor >  Vases", "Toys"])
    assert labelled_above_subcategories(categories) == {
        "categories": 1,
        "products": 2,
        "largest": [{"category": "Home Decor", "products": 2, "products_under": 2}],
    }


def test_duplicates_whose_labels_differ_only_in_spacing_do_not_conflict() -> None:
    """Training collapses the spacing of a level, so 'Wrist  Watches' and 'Wrist Watches' are one class to it; but
    duplicate texts or photos labelled so were reported as a label conflict at level 2 (26 of Flipkart's deep paths
    hold a double space)."""
    spellings = ["Watches > Wrist  Watches", "Watches > Wrist Watches", "Watches >Wrist\u00a0Watches "]
    assert conflict_level(spellings) == 0
    assert conflict_level([*spellings, "Watches > Wall  Clocks"]) == 2


def test_cli_audit_whose_report_cannot_be_written_keeps_the_summary_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that filled up as the report was written ended the audit in OSError's traceback (exit 1) before its
    summary was printed: the whole audit was lost, with --labels hours of cross-validation. The summary is printed,
    then the one-line error that explore, evaluate and cv give (exit 2)."""
    import errno

    from prodcat.catalog.audit import report

    def full(path: Path, value: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "write_json", full)
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.drop(columns="image").to_csv(path, index=False)
    out = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(out), "--no-images"]) == 2
    printed = capsys.readouterr()
    assert "8 products, 8 labelled, 0 loader issues\n" in printed.out and "wrote" not in printed.out
    assert printed.err.strip().splitlines()[-1] == (
        f"error: cannot write the report in {out}: No space left on device; the figures above are all that was "
        "kept: free some space or give another --report, and run the audit again"
    )


def test_a_label_audit_given_a_cv_report_as_config_takes_its_folds_as_cv_does(tmp_path: Path) -> None:
    """`audit --labels --config CV/metrics.json` ran 5 folds whatever the report's, where cv given the same report
    runs its folds again (4dcb593): the audit's out-of-fold predictions split the products otherwise. It takes the
    report's folds now, unless --folds says others."""
    path = tmp_path / "shop.csv"
    _tiny_text_catalog({"Kitchen": 13, "Watches": 13, "Bath": 13}).to_csv(path, index=False)
    config = _words_config_file(tmp_path, "seed: 5")
    cv = tmp_path / "cv"
    assert main(["cv", str(path), "--config", str(config), "--folds", "3", "--report", str(cv)]) == 0
    audit = ["audit", str(path), "--no-images", "--labels", "--config", str(cv / "metrics.json")]
    for flags, folds in (([], 3), (["--folds", "4"], 4)):
        report = tmp_path / f"audit-{folds}"
        assert main([*audit, *flags, "--report", str(report)]) == 0
        assert f"{folds}-fold (seed 5) out-of-fold predictions" in (report / "audit.html").read_text()


def test_photo_issues_csv_lists_every_flagged_photo_with_its_row(tmp_path: Path) -> None:
    """Only 8 least detailed and 8 most bordered photos, and the duplicate groups whose labels conflict, were named
    (audit.json and audit.html): of Flipkart's 62 low-detail photos, 54 could not be found, nor any duplicate group
    whose labels agree. photo_issues.csv lists every flagged product, with its source line, flags, scores and group,
    and its counts are the summary's."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(0)
    busy = Image.fromarray(rng.integers(0, 200, (64, 64, 3), dtype=np.uint8)).resize(
        (512, 512), Image.Resampling.NEAREST
    )
    photos = {
        "sharp.jpg": busy,
        "plain.jpg": Image.new("RGB", (400, 400), (200, 40, 40)),  # no detail at all
        "framed.jpg": ImageOps.expand(busy.resize((200, 200), Image.Resampling.NEAREST), border=150, fill="white"),
    }
    for name, photo in photos.items():
        photo.save(tmp_path / name, quality=92)
    (tmp_path / "broken.jpg").write_text("not a JPEG")
    rows = [
        ("a", "Red mug", "Ceramic", "sharp.jpg", "Kitchen > Mugs"),
        ("b", "Blue mug", "Ceramic", "sharp.jpg", "Toys > Cars"),  # the same photo, another category
        ("c", "Red cushion", "Cotton", "plain.jpg", "Home > Cushions"),
        ("d", "Watch", "Steel", "framed.jpg", "Watches"),
        ("e", "Towel", "Cotton", "broken.jpg", "Home > Bath"),
        ("f", "Lamp", "LED", "", "Home > Lights"),  # no photo: nothing to flag
    ]
    path = tmp_path / "shop.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report)]) == 0
    table = pd.read_csv(report / "photo_issues.csv", dtype={"product_id": str}).set_index("product_id")
    assert list(table.index) == ["a", "b", "c", "d", "e"]
    assert table["row"].tolist() == [2, 3, 4, 5, 6]  # the CSV's lines, header first
    assert table.loc["a", "issues"] == "duplicate duplicate_conflict" and table.loc["a", "first_differing_level"] == 1
    assert table.loc["a", "duplicate_group"] == table.loc["b", "duplicate_group"]
    assert table.loc["a", "duplicate_kind"] == "exact"
    assert table.loc["c", "issues"] == "low_detail" and table.loc["c", "blur"] < 1
    assert table.loc["d", "issues"] == "white_border" and table.loc["d", "border_ratio"] > 0.5
    assert (table.loc["d", "width"], table.loc["d", "height"]) == (500, 500)
    assert table.loc["e", "issues"] == "unreadable" and "not an image" in table.loc["e", "error"]
    audit = json.loads((report / "audit.json").read_text())
    images, flags = audit["images"], table["issues"].str.split()
    assert images["unreadable"] == sum("unreadable" in f for f in flags)
    assert images["quality"]["low_detail"] == sum("low_detail" in f for f in flags)
    assert images["quality"]["large_white_border"] == sum("white_border" in f for f in flags)
    assert images["duplicates"]["products"] == sum("duplicate" in f for f in flags)
    assert images["quality"]["large_white_border_threshold"] == 0.5
    assert "photo_issues.csv" in (report / "audit.html").read_text()


def test_audit_help_names_every_column_of_its_lists(capsys: pytest.CaptureFixture[str]) -> None:
    """`prodcat audit --help` said it writes audit.json and audit.html; the lists to act on, and their columns,
    were named nowhere but in the code."""
    from prodcat.catalog.audit import LABEL_ISSUE_COLUMNS, PHOTO_ISSUE_COLUMNS, TEXT_DUPLICATE_COLUMNS
    from prodcat.catalog.schema import ISSUE_COLUMNS

    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    out = capsys.readouterr().out
    words = set(re.findall(r"[\w.]+", out))
    assert {"input_issues.csv", "text_duplicates.csv", "photo_issues.csv", "label_issues.csv"} <= words
    assert set(PHOTO_ISSUE_COLUMNS) | set(LABEL_ISSUE_COLUMNS) | set(ISSUE_COLUMNS) <= words
    assert set(TEXT_DUPLICATE_COLUMNS) <= words
    # --no-images said 'do not decode the photos', which --labels does all the same (Rakuten: modalities image, text)
    assert "the label audit still reads them, unless --modalities text" in " ".join(out.split())


def test_low_detail_photos_say_how_many_are_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A photo is scored enlarged to 512 px, so a sharp thumbnail has low detail: all 6,000 of fashion's 60 x 80
    photos were 'low detail (blurry or plain)', and nothing said that their size alone made them so."""
    from PIL import Image

    rng = np.random.default_rng(1)
    sharp = Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8))  # every pixel its own colour
    sharp.save(tmp_path / "thumb.png")
    large = Image.new("RGB", (400, 400), (30, 90, 160))  # plain, and not small
    large.save(tmp_path / "plain.png")
    rows = [("t", "Shirt", "", "thumb.png", "Shirts"), ("p", "Mug", "", "plain.png", "Mugs")]
    path = tmp_path / "shop.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(path, index=False)
    assert main(["audit", str(path), "--report", str(tmp_path / "r")]) == 0
    quality = json.loads((tmp_path / "r" / "audit.json").read_text())["images"]["quality"]
    assert (quality["low_detail"], quality["low_detail_small"], quality["small"]) == (2, 1, 1)
    html = " ".join(re.sub(r"<[^>]+>", " ", (tmp_path / "r" / "audit.html").read_text()).split())
    assert "2 (1 of them small: scored enlarged to 512 px, which blurs them)" in html
    # the console said '6,000' on fashion, and nothing of the white borders
    assert (
        "photos with low detail (blurry or plain): 2 (1 of them small: scored enlarged to 512 px, which blurs them),"
        " small (longest side < 256 px): 1, white border over 50% of the area: 0" in capsys.readouterr().out
    )


def test_text_duplicates_csv_lists_every_product_of_every_group(tmp_path: Path) -> None:
    """The report named the 10 largest duplicate text groups and 50 conflicting ones, their first 20 products each:
    fashion's 448 exact groups (1,119 products) could not be acted on from it. text_duplicates.csv lists every
    member, with its source line, group, and the level from which the group's labels differ."""
    path = tmp_path / "shop.csv"
    catalog = small_catalog(tmp_path).frame.drop(columns="image")
    pd.concat([catalog, catalog.iloc[[4]].assign(product_id="p9")]).to_csv(path, index=False)  # p5's text again
    assert main(["audit", str(path), "--report", str(tmp_path / "r"), "--no-images"]) == 0
    table = pd.read_csv(tmp_path / "r" / "text_duplicates.csv")
    audit = json.loads((tmp_path / "r" / "audit.json").read_text())["duplicates"]
    assert len(table) == audit["exact"]["products"] + audit["near"]["products"] == 5
    by_id = table.set_index("product_id")
    assert (
        by_id.loc[["p1", "p2", "p3"], "group"].nunique() == 1
        and (by_id.loc[["p1", "p2", "p3"], "group_size"] == 3).all()
    )
    assert (by_id.loc[["p1", "p2", "p3"], "first_differing_level"] == 1).all()
    assert by_id.loc[["p5", "p9"], "first_differing_level"].isna().all() and (table["kind"] == "exact").all()
    assert by_id.loc[["p1", "p2", "p3", "p5", "p9"], "row"].tolist() == [2, 3, 4, 6, 10]  # the CSV's lines
    assert by_id.loc["p9", "text"].startswith("Cotton bath towel set of three")


def test_audit_json_sums_up_the_whole_lists_its_csvs_hold(tmp_path: Path) -> None:
    """385185b and 15bee90 put every flagged photo and every product of every duplicate text group in audit.json,
    as well as in their CSVs: 10 MB of audit.json at 20,000 products, growing with the catalogue. audit.json keeps
    each list's row count, its CSV's name and its first MAX_EXAMPLES rows; the CSV every row; audit.html links it."""
    from prodcat.catalog.audit import MAX_EXAMPLES

    (tmp_path / "broken.jpg").write_text("not a JPEG")
    size = MAX_EXAMPLES + 10
    rows = [
        (f"p{i}", "Red ceramic mug", "300 ml", "broken.jpg", f"Kitchen > {'Mugs' if i % 2 else 'Cups'}")
        for i in range(size)
    ]
    path = tmp_path / "shop.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report)]) == 0
    audit = json.loads((report / "audit.json").read_text())
    html = " ".join(re.sub(r"<[^>]+>", " ", (report / "audit.html").read_text()).split())
    for listed, name, said in [
        (audit["duplicates"]["members"], "text_duplicates.csv", "Every product of every group, {} rows"),
        (audit["images"]["issues"], "photo_issues.csv", "Every flagged photo, {} products"),
    ]:
        table = pd.read_csv(report / name, dtype={"product_id": str})
        assert len(table) >= size and listed["rows"] == len(table) and listed["file"] == name
        assert [row["product_id"] for row in listed["first"]] == table["product_id"].head(MAX_EXAMPLES).tolist()
        assert f'href="{name}"' in (report / "audit.html").read_text() and said.format(len(table)) in html
    assert audit["images"]["unreadable"] == size


def test_categories_typed_apart_by_punctuation_spaces_or_symbols_are_one_written_several_ways(
    flipkart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small shop's hand-typed labels on Flipkart's real products: 'Shoes.' beside 'Shoes', 'Computers / Laptops'
    beside 'Computers/Laptops', 'T-Shirts' beside 'Tshirts', 'Beauty 💄' beside 'Beauty'. Each pair was learnt as two
    categories, and neither the audit nor train said a word (they compared case and accents only). They are listed
    as one category written several ways now; 'Shoe' beside 'Shoes' (another word) and two levels of emoji alone
    are not."""
    from prodcat.catalog.loaders import load_flipkart

    frame = load_flipkart(flipkart_dir).frame.head(40)
    typed = ["Shoes", "Shoes.", "Computers/Laptops", "Computers / Laptops", "T-Shirts", "Tshirts"]
    typed += ["Beauty", "Beauty 💄", "Shoe", "💄", "🎁", "Gifts"]
    labels = typed * 2 + ["Towels"] * 8 + ["Mugs"] * 8  # two categories of enough products to train on
    frame = frame.assign(category=labels)[["product_id", "title", "description", "category"]]
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images"]) == 0
    found = json.loads((report / "audit.json").read_text())["classes"]["levels"]["1"]["written_several_ways"]
    assert found == [
        ["Beauty", "Beauty 💄"],
        ["Computers / Laptops", "Computers/Laptops"],
        ["Shoes", "Shoes."],
        ["T-Shirts", "Tshirts"],
    ]
    assert "categories written in several ways (case, accents, spaces, punctuation or symbols; " in (
        capsys.readouterr().out
    )
    assert "Shoes (2) / Shoes. (2)" in (report / "audit.html").read_text()
    # train says it too, before learning them apart
    assert main(["train", str(path), "--config", "fast-text", "--out", str(tmp_path / "m")]) == 0
    assert (
        "warning: 4 categories are written in several ways, differing only in case, accents, spaces, punctuation or "
        "symbols ('Beauty' / 'Beauty 💄'; 'Computers / Laptops' / 'Computers/Laptops'; 'Shoes' / 'Shoes.'; ...): "
        "each way is learnt as a category of its own; correct the labels to one spelling"
    ) in capsys.readouterr().out

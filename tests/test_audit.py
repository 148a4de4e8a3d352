"""``prodcat audit``: sections on real catalogues, crafted problems, the report, and label-noise detection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodcat.catalog.audit import audit_catalog, confident_label_issues, label_issues, write_audit_report
from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import Catalog, category_at_level
from prodcat.cli import main


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
    json_path, html_path = write_audit_report(result, tmp_path)
    assert json.loads(json_path.read_text())["summary"]["labelled"] == 3490
    html = html_path.read_text()
    assert "Books &gt; Magazines" in html and html.count("data:image/png;base64,") >= 3


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
    assert 0 < quality["blurry"] < images["usable"] and quality["size"]["max_side"] == 640
    assert result["text"]["description"]["missing"] == 0
    _, html_path = write_audit_report(result, tmp_path)
    html = html_path.read_text()
    assert "Duplicate photos" in html and "data:image/jpeg;base64," in html  # thumbnails


def test_cli_audit(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    small_catalog(tmp_path).frame.drop(columns="image").to_csv(path, index=False)
    report = tmp_path / "report"
    assert main(["audit", str(path), "--report", str(report), "--no-images", "--sample", "6"]) == 0
    result = json.loads((report / "audit.json").read_text())
    assert result["summary"]["products"] == 6 and result["images"]["skipped"]
    html = (report / "audit.html").read_text()
    assert html.startswith("<!doctype html>")
    assert "<b>sturdy</b>" not in html and "&lt;b&gt;sturdy" in html  # product markup shown, never rendered


@pytest.mark.slow
def test_labels_finds_planted_mislabels(flipkart_dir: Path) -> None:
    from prodcat.config import Config, FeatureSpec, HeadConfig

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

"""The web app: its pure helpers on the real Flipkart catalogue and bundle, each page rendered headless by
Streamlit's AppTest, the ``prodcat app`` command, and a real server answering HTTP."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from prodcat.app import command, streamlit_app, views
from prodcat.app.command import SCRIPT, streamlit_command
from prodcat.batch import predict_catalog
from prodcat.bundle import MANIFEST, MODEL_FILE, PRODUCTS_FILE, read_manifest, save_bundle
from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import Catalog, category_at_level
from prodcat.cli import build_parser, main
from prodcat.evaluate.labelled import InTraining, unknown_categories_warning
from prodcat.evaluate.metrics import per_class
from prodcat.evaluate.report import per_class_header, per_class_rows
from prodcat.features.base import PretrainedEncoder
from prodcat.formatting import count_text
from prodcat.image.decode import accepted_formats
from prodcat.predict import Predictor
from prodcat.serve.inputs import ApiError, ProductRequest, check_text
from prodcat.serve.settings import ServeSettings

#: every run of the app script may load the model and its encoders on first use
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def flipkart_catalog(flipkart_dir: Path) -> Catalog:
    return load_catalog(flipkart_dir)


@pytest.fixture(scope="module")
def flipkart_frame(flipkart_catalog: Catalog) -> pd.DataFrame:
    return flipkart_catalog.frame


CANONICAL = ["product_id", "title", "description", "image", "category"]


def catalogue_csv(frame: pd.DataFrame, path: Path) -> Path:
    """``frame``'s canonical columns written as a CSV catalogue (photo paths absolute), for the app to read."""
    frame[CANONICAL].to_csv(path, index=False)
    return path


def predictions_page(tiny_training, monkeypatch, tmp_path, csv_text: str, name: str = "preds.csv"):
    """The app on the tiny model and its unseen products, on the Predictions page of a CSV holding ``csv_text``."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    csv = tmp_path / name
    csv.write_text(csv_text)
    arguments = (str(tiny_training.bundle), "--data", str(catalogue), "--predictions", str(csv))
    return go_to(start_app(monkeypatch, *arguments), "Predictions")


#: three predictions of the tiny model's unseen products, two of them agreeing with the given category
THREE_PREDICTIONS_CSV = (
    "product_id,category,confidence,decision\n"
    "Kitchen-12,Kitchen,0.9,auto\nToys-12,Kitchen,0.5,review\nWatches-12,Watches,0.95,auto\n"
)


def bundle_copy(bundle: Path, out: Path, **manifest_changes: object) -> Path:
    """A copy of ``bundle`` at ``out`` whose manifest has these top-level fields changed (the manifest is not
    among the files it hashes: the copy still verifies)."""
    shutil.copytree(bundle, out)
    manifest = read_manifest(out) | manifest_changes
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return out


def encoder_calls(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes every pretrained encoder of the bundle's model encodes from now on (an embedding read
    from a cache is not encoded), in any Predictor of the process."""
    calls: list[int] = []
    heads = Predictor.load(bundle).model.heads_.values()
    for cls in {type(e) for head in heads for e in head.extractors_ if isinstance(e, PretrainedEncoder)}:

        def counted(self, items, encode=cls.encode):
            calls.append(len(items))
            return encode(self, items)

        monkeypatch.setattr(cls, "encode", counted)
    return calls


@pytest.fixture(scope="module")
def manifest(flipkart_bundle: Path) -> dict:
    return read_manifest(flipkart_bundle)


# ---------------------------------------------------------------------------------------------- Data helpers
def test_catalogue_summary_counts_the_real_flipkart_sample(flipkart_frame):
    summary = views.catalogue_summary(flipkart_frame, level=1)
    assert (summary.products, summary.labelled, summary.categories) == (900, 900, 7)
    assert summary.without_photo_file == 3  # the three products the datasets README lists
    assert summary.without_title == 0
    assert views.count_and_share(3, 900) == "3 (0.3%)" and views.count_and_share(0, 0) == "0"
    assert views.catalogue_summary(flipkart_frame, level=2).categories > 7


def test_class_balance_counts_every_product_and_groups_the_unlabelled(flipkart_frame):
    balance = views.class_balance(flipkart_frame, level=1)
    assert balance.sum() == 900 and len(balance) == 7
    assert list(balance) == sorted(balance, reverse=True)
    frame = pd.DataFrame({"category": ["A > x", "A > y", None, "B > z"]})
    assert views.class_balance(frame, 1).to_dict() == {"A": 2, views.UNLABELLED: 1, "B": 1}


def test_text_length_histogram_holds_every_product(flipkart_frame):
    lengths = views.text_lengths(flipkart_frame)
    assert lengths.shape == (900, 2)
    assert lengths["title"].iat[0] == len(flipkart_frame["title"].iat[0])
    histogram = views.length_histogram(lengths["description"], bars=10)
    assert histogram.sum() == 900 and len(histogram) in (10, 11)
    assert histogram.index[0] == 0 and histogram.index.is_monotonic_increasing
    assert histogram.iat[-1] >= 9  # the longest 1% land in the last bar
    assert views.length_histogram(pd.Series([], dtype=int)).sum() == 0


def test_text_length_bars_are_whole_numbers_of_characters_up_to_the_longest_but_one_percent():
    # 20 bars from 0 to the longest text: titles of 1 to 14 characters in bars of 0.7, a comb of empty bars between
    # full ones labelled 0, 1, 1, 2, 3, 4, 4...; one description of 10,000 characters beside 99 of 100 put the 99 in
    # the first of bars 500 characters wide. Now the audit report's bars (prodcat audit), as in its histograms
    titles = pd.Series([length for length in range(1, 15) for _ in range(5)])
    assert views.length_histogram(titles).to_dict() == {0: 0} | {length: 5 for length in range(1, 15)}
    descriptions = views.length_histogram(pd.Series([100] * 99 + [10_000]))
    assert descriptions.index[1] == 10 and descriptions[100] == 99 and descriptions.iat[-1] == 1
    assert descriptions.index[-1] == 200  # the 99th percentile's bar, the longest counted in it


def test_a_catalogue_without_descriptions_is_said_to_have_none_not_charted(tiny_training, monkeypatch, tmp_path):
    """The Data page of a catalogue without descriptions (the fashion catalogue's) drew a bar at 0 holding every
    product under 'description (the last bar: 1 characters or more)'. It says there is none, and draws no bars."""
    catalogue = catalogue_csv(tiny_training.trained.assign(description=None), tmp_path / "titles.csv")
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Data")
    captions = [c.value for c in test.main.caption]
    assert "description: no product has one" in captions, captions
    assert not [c for c in captions if c.startswith("description (")]
    histograms = [chart for chart in test.get("vega_lite_chart") if '"characters"' in chart.proto.spec]
    assert len(histograms) == 1  # the titles'
    one = pd.Series([1] * 100)  # a character each
    caption = views.length_caption("title", one, views.length_histogram(one))
    assert caption == "title (the last bar: 1 character or more)"


def test_filter_catalogue_by_category_text_and_photo(flipkart_frame):
    watches = views.filter_catalogue(flipkart_frame, 1, category="Watches")
    assert len(watches) == views.class_balance(flipkart_frame, 1)["Watches"]
    found = views.filter_catalogue(flipkart_frame, 1, query="  WRIST watch ")
    assert len(found) > 0
    assert all("wrist watch" in f"{t}\n{d}".lower() for t, d in zip(found["title"], found["description"], strict=True))
    assert len(views.filter_catalogue(flipkart_frame, 1, photo=False)) == 3
    assert len(views.filter_catalogue(flipkart_frame, 1, category="Watches", photo=True, query="watch")) <= len(watches)


def test_thumbnails_and_grid_rows(flipkart_frame, tmp_path):
    rows = flipkart_frame.head(3)
    uri = views.thumbnail_uri(rows["image"].iat[0])
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    thumbnail = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(thumbnail.size) == views.THUMBNAIL_SIDE
    (tmp_path / "notes.jpg").write_text("not a photo")
    assert views.thumbnail_uri(tmp_path / "notes.jpg") is None
    grid = views.product_grid(rows, 1, views.thumbnail_uri, description_chars=40)
    assert list(grid.columns) == ["photo", "product_id", "title", "category", "description"]
    assert grid["photo"].str.startswith("data:image/jpeg").all()
    assert (grid["description"].str.len() <= 40).all()
    assert grid["category"].isin(views.class_balance(flipkart_frame, 1).index).all()


# ---------------------------------------------------------------------------------------------- Model helpers
def test_model_tables_from_the_bundle_manifest(manifest):
    metrics = manifest["metrics"]
    headline = views.headline_table(metrics)
    assert list(headline.index) == ["accuracy", "f1_weighted", "f1_macro"]
    for name, (low, high) in metrics["intervals"].items():
        assert low < high and headline.loc[name, "95% interval"] == f"{low:.4f}–{high:.4f}"
    per_class = views.per_class_table(metrics)
    assert sorted(per_class.index) == manifest["labels"]
    assert per_class["f1"].is_monotonic_increasing and per_class["support"].sum() == metrics["n"]
    reliability = views.reliability_table(metrics)
    assert reliability["count"].sum() == metrics["n"]
    np.testing.assert_allclose(reliability["gap"], reliability["accuracy"] - reliability["confidence"])
    overview = views.model_overview(manifest)
    assert overview["trained on"] == "300 products" and overview["categories"] == "7"
    assert views.per_class_table({}).empty and views.reliability_table({}).empty and views.levels_table({}).empty


def test_the_per_category_table_lists_categories_of_equal_f1_in_the_reports_order():
    """Most products first among equal F1, as the evaluation report lists them: of a deep level's many categories at
    F1 0, the one failing 4 products came after the one failing 1 (the manifest's order), and the page's order was
    not the report's the manager compares it with."""

    def record(f1: float, support: int) -> dict[str, float | int | None]:
        return {"precision": f1 or None, "recall": f1 if support else None, "f1": f1, "support": support}

    metrics = {"per_class": {"A": record(0.0, 1), "B": record(0.0, 4), "C": record(0.0, 0), "D": record(1.0, 2)}}
    assert list(views.per_class_table(metrics).index) == ["B", "A", "C", "D"]
    assert [row[0] for row in per_class_rows(metrics)] == ["B", "A", "C", "D"]


def test_an_interval_of_zero_width_is_said_to_be_degenerate_as_the_reports_say():
    """'1.0000' low and high read as certainty; the reports and the CLI say such an interval measures nothing."""
    metrics = {"accuracy": 1.0, "f1_weighted": 0.9, "f1_macro": 0.8, "intervals": {"accuracy": [1.0, 1.0]}}
    headline = views.headline_table(metrics)
    assert headline.loc["accuracy", "95% interval"] == (
        "degenerate: 1.0000 in at least 95% of resamples, not a measure of the uncertainty"
    )
    assert list(headline.loc[["f1_weighted", "f1_macro"], "95% interval"]) == ["–", "–"]  # none recorded


# ---------------------------------------------------------------------------------------------- Predict helpers
def test_check_photo_accepts_images_and_names_the_file_otherwise(jpeg_bytes):
    assert views.check_photo(jpeg_bytes((1000, 500)), "a.jpg").size == (views.PREVIEW_SIDE, views.PREVIEW_SIDE // 2)
    with pytest.raises(ValueError, match=r"notes\.jpg: not an image"):
        views.check_photo(b"hello, I am text", "notes.jpg")
    with pytest.raises(ValueError, match=r"big\.png: .*exceeds the limit"):
        views.check_photo(b"\x89PNG\r\n\x1a\n" + bytes(views.MAX_UPLOAD_BYTES), "big.png")
    with pytest.raises(ValueError, match=r"empty\.jpg: empty file"):
        views.check_photo(b"", "empty.jpg")


# ---------------------------------------------------------------------------------------------- Predictions helpers
def test_predictions_tables_of_predict_and_cv_read_as_one_shape(tmp_path):
    predict_csv = tmp_path / "preds.csv"
    predict_csv.write_text("product_id,category,confidence,decision\n007,Watches,0.9,auto\n")
    table = views.read_predictions(predict_csv).table
    assert table.loc[0, ["product_id", "predicted"]].tolist() == ["007", "Watches"]  # ids keep their leading zeros
    cv = pd.DataFrame({"product_id": ["1"], "category": ["Baby Care"], "predicted": ["Watches"]})
    cv = views.normalise_predictions(cv.assign(confidence=0.5, decision="review"))
    assert cv.loc[0, ["given", "predicted"]].tolist() == ["Baby Care", "Watches"]
    with pytest.raises(views.PredictionsFormatError, match=r"odd\.csv: missing column\(s\) confidence, decision"):
        views.normalise_predictions(pd.DataFrame({"product_id": ["1"], "category": ["x"]}), "odd.csv")
    bad = pd.DataFrame({"product_id": ["p1", "p2"], "category": "x", "confidence": [0.5, "high"], "decision": "auto"})
    with pytest.raises(views.PredictionsFormatError, match=r"1 confidence\(s\) .* \(products p2\)"):
        views.normalise_predictions(bad)
    # no confidence is right for a product that says why it was not scored, and it counts as the least sure
    unscored = bad.assign(confidence=[0.5, None], error=["", "model raised"])
    table = views.normalise_predictions(unscored)
    assert views.filter_predictions(table, confidence=(0.0, 0.2))["product_id"].tolist() == ["p2"]
    with pytest.raises(views.PredictionsFormatError, match=r"\(products p2\)"):
        views.normalise_predictions(unscored.assign(error=""))
    # two runs pasted together: every figure would count their products twice
    pasted = tmp_path / "pasted.csv"
    pasted.write_text(
        "product_id,category,confidence,decision\n007,Watches,0.9,auto\n8,Toys,0.4,review\n007,Watches,0.9,auto\n"
    )
    with pytest.raises(
        views.PredictionsFormatError, match=r"pasted\.csv: 1 product id\(s\) on more than one row \('007'\)"
    ):
        views.read_predictions(pasted)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(views.PredictionsFormatError, match=r"binary\.csv: missing column\(s\) product_id"):
        views.read_predictions(tmp_path / "binary.csv")


def test_predictions_csv_read_as_the_catalogue_loaders_read(tmp_path):
    """One bad row or one Windows-1252 line costs that row or nothing, said, not the whole file; a missing file,
    a folder and an empty upload are named plainly."""
    csv = tmp_path / "preds.csv"
    csv.write_bytes(
        b"product_id,category,confidence,decision,error\n"
        b"p1,Caf\xe9 Mugs,0.9,auto,\n"  # Windows-1252: an export from Excel
        b"p2,Watches,0.8,review,,surplus field\n"
        b'p3,,,review,"model raised: ValueError"\n'
    )
    read = views.read_predictions(csv)
    assert read.table["product_id"].tolist() == ["p1", "p3"]
    assert read.table["predicted"].iat[0] == "Café Mugs" and pd.isna(read.table["predicted"].iat[1])
    assert [(issue.row, issue.field) for issue in read.issues] == [(2, "file"), (3, "row")]
    with pytest.raises(views.PredictionsFormatError, match=r"gone\.csv: no such file$"):
        views.read_predictions(tmp_path / "gone.csv")
    with pytest.raises(views.PredictionsFormatError, match=r": a folder; give the predictions CSV in it"):
        views.read_predictions(tmp_path)
    uploaded = views.read_uploaded_predictions(csv.read_bytes(), "mine.csv")
    assert uploaded.table["product_id"].tolist() == ["p1", "p3"]
    with pytest.raises(views.PredictionsFormatError, match=r"^mine\.csv: the file is empty"):
        views.read_uploaded_predictions(b"", "mine.csv")
    # a header line alone was shown as a table of 0 products, without a word
    with pytest.raises(views.PredictionsFormatError, match=r"^mine\.csv: no prediction in it, its header line alone$"):
        views.read_uploaded_predictions(b"product_id,category,confidence,decision\n", "mine.csv")
    # so was one whose header is not UTF-8 (an accented column name saved by Excel), its encoding's issue alone said
    with pytest.raises(views.PredictionsFormatError, match=r"^mine\.csv: no prediction in it, its header line alone$"):
        views.read_uploaded_predictions(b"product_id,category,confidence,decision,r\xe9f\n", "mine.csv")


def test_the_rows_skipped_of_an_uploaded_predictions_csv_are_said_of_the_file_uploaded():
    """They were said of 'predictions.csv', the temporary file the upload is read from, whatever its name."""
    csv = (
        b"product_id,category,confidence,decision\n"
        b"p1,Watches,0.9,auto\np2,Watches,0.8,review,surplus field\n"
        b'p3,"Kitchen,0.7,review\n\xe9,Toys,0.6,review\n'
    )
    read = views.read_uploaded_predictions(csv, "mine.csv")
    assert [issue.problem.split(": ")[0] for issue in read.issues] == ["mine.csv"] * 3
    assert [(issue.row, issue.field) for issue in read.issues] == [(5, "file"), (3, "row"), (4, "row")]


def test_a_predictions_csv_with_rows_without_a_product_id_is_refused_saying_so(tmp_path):
    """A row without a product_id was read as the product 'None' (matched to no product of the catalogue, counted
    among the predictions), and two such rows were refused as '1 product id(s) on more than one row ('None')'."""
    csv = tmp_path / "preds.csv"
    header = "product_id,category,confidence,decision\n"
    for blanks in (1, 2):
        csv.write_text(header + "007,Watches,0.9,auto\n" + ",Toys,0.4,review\n" * blanks)
        with pytest.raises(views.PredictionsFormatError, match=rf"preds\.csv: {blanks} row\(s\) without a product_id"):
            views.read_predictions(csv)


def test_a_predictions_csv_with_a_given_category_twice_is_refused_not_a_traceback(tmp_path):
    """A `prodcat cv` table (category: the given one) with a given column too had two columns named given: the page
    showed 'ValueError: cannot reindex on an axis with duplicate labels' in a traceback."""
    csv = tmp_path / "cv.csv"
    csv.write_text("product_id,category,predicted,given,confidence,decision\nKitchen-1,Kitchen,Kitchen,Toys,0.9,auto\n")
    with pytest.raises(views.PredictionsFormatError, match=r"cv\.csv: both a category and a given column"):
        views.read_predictions(csv)
    csv.write_text(csv.read_text().replace(",given,", ",fold,"))  # the table as prodcat cv writes it
    assert views.read_predictions(csv).table.loc[0, ["given", "predicted"]].tolist() == ["Kitchen", "Kitchen"]


def test_confusion_and_label_noise_candidates(flipkart_frame):
    frame = flipkart_frame.head(4)
    ids = frame["product_id"].tolist()
    given = views.categories_at(frame, 1).tolist()
    table = views.normalise_predictions(
        pd.DataFrame(
            {
                "product_id": [*ids, "not-in-catalogue"],
                "category": [given[0], "Watches", "Watches", given[3], "Watches"],
                "confidence": [0.99, 0.97, 0.40, 0.80, 0.95],
                "decision": ["auto", "auto", "review", "review", "auto"],
            }
        )
    )
    assert "Watches" not in given[1:3]  # the two disagreements below are real ones
    table = views.attach_catalogue(table, frame, level=1)
    assert table["title"].iat[0] == frame["title"].iat[0] and pd.isna(table["given"].iat[4])
    assert views.agreement(table) == 0.5
    confusion = views.confusion_table(table)
    assert confusion.to_numpy().sum() == 4 and confusion.loc[given[1], "Watches"] >= 1
    noise = views.confident_disagreements(table, min_confidence=0.9)
    assert noise["product_id"].tolist() == [ids[1]]
    assert views.confident_disagreements(table, 0.0)["product_id"].tolist() == [ids[1], ids[2]]
    shown = views.filter_predictions(table, decisions=["auto"], confidence=(0.96, 1.0))
    assert shown["product_id"].tolist() == [ids[0], ids[1]]
    assert len(views.filter_predictions(table, categories=["Watches"])) == 3
    assert views.agreement(table.drop(columns="given")) is None
    photos = views.with_photos(noise, views.thumbnail_uri, ("product_id", "given", "fold"))
    assert list(photos.columns) == ["photo", "product_id", "given"]
    assert photos["photo"].iat[0].startswith("data:image/jpeg")
    assert views.with_photos(noise.drop(columns="image"), views.thumbnail_uri, ("given",))["photo"].isna().all()


def test_predict_sample_in_chunks_reports_progress_on_the_page_only(flipkart_bundle, flipkart_catalog, capsys):
    progress: list[float] = []
    predictor = Predictor.load(flipkart_bundle)
    table = views.predict_sample(predictor, flipkart_catalog, 10, chunk_size=4, on_progress=progress.append).table
    assert len(table) == 10 and table["product_id"].is_unique
    assert progress == pytest.approx([0.4, 0.8, 1.0])
    assert table["predicted"].isin(read_manifest(flipkart_bundle)["labels"]).all()
    assert capsys.readouterr().err == ""  # no progress bar on the server's terminal
    again = views.predict_sample(predictor, flipkart_catalog, 10, chunk_size=4).table
    other = views.predict_sample(predictor, flipkart_catalog, 10, seed=1, chunk_size=4).table
    assert again["product_id"].tolist() == table["product_id"].tolist()
    assert set(other["product_id"]) != set(table["product_id"])


def test_a_sample_reports_products_not_scored_and_photos_not_used(flipkart_bundle, flipkart_frame, tmp_path):
    """A product of a photo alone that did not decode was listed as not scored, without why its photo could not be
    used, which prodcat predict lists: the sample lists it now, through the same function."""
    frame = flipkart_frame.head(3).copy()
    (tmp_path / "notes.jpg").write_text("not a photo")
    frame.loc[0, "image"] = frame.loc[1, "image"] = str(tmp_path / "notes.jpg")
    frame.loc[1, ["title", "description"]] = ""
    catalog = load_catalog(catalogue_csv(frame, tmp_path / "catalogue.csv"))
    issues = views.predict_sample(Predictor.load(flipkart_bundle), catalog, 3).issues
    ids, lines = frame["product_id"], [catalog.line_of(position) for position in range(3)]
    assert [(issue.row, issue.product_id, issue.field) for issue in issues] == [
        (lines[0], ids[0], "image"),
        (lines[1], ids[1], "text"),
        (lines[1], ids[1], "prediction"),
        (lines[1], ids[1], "image"),
    ]
    not_an_image = f"photo {tmp_path / 'notes.jpg'} not used: not an image"
    assert issues[0].message.startswith(not_an_image) and issues[0].message.endswith("; predicted without it")
    assert issues[2].message.startswith("not scored: nothing to classify")
    assert issues[3].message.startswith(not_an_image)
    assert issues[3].message.endswith("; no title or description either: nothing to classify it from")


def test_the_apps_predictor_reads_the_disk_cache_and_keeps_what_it_lacks_in_memory(flipkart_bundle, monkeypatch):
    predictor = Predictor.load(flipkart_bundle)
    predictor.model.set_memory_cache(100, read_disk=True)
    calls = encoder_calls(flipkart_bundle, monkeypatch)
    typed = {"title": f"enamel tea mug {uuid.uuid4().hex}"}  # text no cache has seen
    predictor.predict_one(**typed)
    encoded = len(calls)
    predictor.predict_one(**typed)
    assert encoded > 0 and len(calls) == encoded  # the second time from memory
    Predictor.load(flipkart_bundle).predict_one(**typed)
    assert len(calls) == 2 * encoded  # not on disk: a predictor on the disk cache encodes it again


# ---------------------------------------------------------------------------------------------- the app, headless
def start_app(monkeypatch: pytest.MonkeyPatch, *arguments: str) -> AppTest:
    """The app script run as ``streamlit run`` would, with these arguments after ``--``."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *arguments])
    test = AppTest.from_file(str(SCRIPT), default_timeout=RUN_TIMEOUT_S)
    test.run()
    assert not test.exception, [e.value for e in test.exception]
    return test


@pytest.fixture
def app(flipkart_bundle, flipkart_dir, monkeypatch):
    """A function starting the app script as ``streamlit run`` would, with these arguments after ``--``."""
    return lambda *arguments: start_app(monkeypatch, *arguments)


def go_to(test: AppTest, page: str) -> AppTest:
    test.sidebar.radio(key="page").set_value(page).run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def metrics_of(test: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in test.metric}


def bar_chart_order(test: AppTest) -> list[object]:
    """How each horizontal bar chart of the page orders its bars (None: in the data's order)."""
    specs = [json.loads(chart.proto.spec) for chart in test.get("vega_lite_chart")]
    bars = [spec["encoding"]["y"] for spec in specs if spec.get("mark", {}).get("type") == "bar"]
    return [y.get("sort", "alphabetical") for y in bars if y["type"] != "quantitative"]


def predictions_table(test: AppTest):
    """The Predictions page's table of predictions (the first with a ``decision`` column)."""
    return next(d for d in test.dataframe if "decision" in d.value.columns)


def warnings_shown(test: AppTest) -> list[str]:
    """The page's warnings but the one that its agreement counts too few products to rely on
    (:func:`views.small_sample_caveat`), which the handful of products of most tests gets."""
    return [
        w.value for w in test.warning if not re.match(r"Only [\d,]+ labelled products? (was|were) scored:", w.value)
    ]


def issues_shown(test: AppTest) -> pd.DataFrame:
    """The issues table of the page (empty when there is none)."""
    tables = [d.value for d in test.dataframe if list(d.value.columns) == views.ISSUE_COLUMNS]
    return tables[0] if tables else pd.DataFrame(columns=views.ISSUE_COLUMNS)


SAMPLE = "Predict a sample of the catalogue"


def predict_a_sample(test: AppTest, size: int, seed: int = 0) -> AppTest:
    test.radio(key="predictions_source").set_value(SAMPLE).run()
    test.number_input(key="sample_size").set_value(size)
    test.number_input(key="sample_seed").set_value(seed)
    test.button(key="predict_sample").click().run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def test_data_page_shows_the_catalogue_and_a_grid_of_photos(app, flipkart_bundle, flipkart_dir):
    test = app(str(flipkart_bundle), "--data", str(flipkart_dir))
    shown = metrics_of(test)
    assert shown["products"] == "900" and shown["categories (level 1)"] == "7"
    assert shown["without photo file"] == "3 (0.3%)"  # three products, not a share rounded to nothing
    assert bar_chart_order(test) == [None]  # the class balance as counted, most frequent first
    grid = test.dataframe[-1].value
    assert len(grid) == 20 and grid["photo"].str.startswith("data:image/jpeg").all()
    test.selectbox(key="data_category").set_value("Watches").run()
    grid = test.dataframe[-1].value
    assert set(grid["category"]) == {"Watches"}
    test.selectbox(key="data_category").set_value("(any)").run()
    test.radio(key="data_photo").set_value("without").run()
    grid = test.dataframe[-1].value
    assert len(grid) == 3 and grid["photo"].isna().all()


def per_class_shown(test: AppTest) -> pd.DataFrame:
    """The Model page's per-category table."""
    return next(d.value for d in test.dataframe if "f1" in d.value.columns and "support" in d.value.columns)


def test_model_page_shows_the_manifest(app, flipkart_bundle, manifest):
    test = go_to(app(str(flipkart_bundle)), "Model")
    shown = metrics_of(test)
    assert shown["decision threshold"] == f"{manifest['metrics']['decision']['threshold']:.3f}"
    assert shown["ECE (0 = calibrated)"] == f"{manifest['metrics']['calibration']['ece']:.3f}"
    assert sorted(per_class_shown(test).index) == manifest["labels"]
    assert bar_chart_order(test) == [None]  # F1 per category weakest first, not alphabetical
    # the reliability diagram is the reports' figure, its bins as points: no line chart joins them
    marks = [json.loads(chart.proto.spec).get("mark", {}).get("type") for chart in test.get("vega_lite_chart")]
    assert marks == ["bar"] and len(test.get("image")) == 1  # the F1 per category, and the figure
    # drawn at the report PNG's resolution without st.pyplot's deprecated dpi argument, whose notice Streamlit shows
    assert not test.warning, [w.value for w in test.warning]
    headline = next(d.value for d in test.dataframe if "95% interval" in d.value.columns)
    assert list(headline.index) == ["accuracy", "f1_weighted", "f1_macro"]
    assert [s.value for s in test.subheader] == [
        "Metrics recorded at training",
        "Decision and calibration",
        "Per category",
        "Reliability diagram",
    ]


def test_the_per_category_table_says_what_was_auto_accepted_of_each_category_as_the_report_does(
    app, flipkart_bundle, manifest
):
    """A manager deciding whether to automate a category reads, beside its F1, what the decision auto-accepted of it
    and the errors among those: the per_class records' figures, the counts written as the evaluation report's
    per-class table writes them, all in columns that fit beside the others (five cut the errors off on a 1400-px
    screen)."""
    metrics = manifest["metrics"]
    test = go_to(app(str(flipkart_bundle)), "Model")
    shown = per_class_shown(test)
    percent, its_wrong, as_it_wrong = views.AUTOMATION_COLUMNS
    assert list(shown.columns) == ["precision", "recall", "f1", "support", percent, its_wrong, as_it_wrong]
    # the report's cells: '77.5% (6 of 100 as another)' and '2 of 96', under its header 'auto-accepted as it: wrong'
    header, rows = per_class_header(metrics), {row[0]: row for row in per_class_rows(metrics)}
    assert header[-1] == as_it_wrong
    for category, record in metrics["per_class"].items():
        row = shown.loc[category]
        assert row[percent] == pytest.approx(100 * record["automation_rate"], abs=5e-3)
        assert row[its_wrong] == f"{record['n_auto_wrong']} of {record['n_auto']}"
        assert rows[category][-2:] == [f"{row[percent]:.1f}% ({row[its_wrong]} as another)", row[as_it_wrong]]
    # counted over the same products as the decision's headline figures
    of_them = shown[its_wrong].str.extract(r"^(\d+) of (\d+)$").astype(int).sum()
    assert list(of_them) == [metrics["decision"]["n_auto_wrong"], metrics["decision"]["n_auto"]]
    assert any(
        c.value.startswith("What the accept-or-review decision auto-accepted of each category") for c in test.caption
    )


def test_long_category_names_leave_the_per_category_table_on_the_screen(app, flipkart_bundle, manifest, tmp_path):
    """Names of 75 characters took 420 px of a 930-px table at 1400 px (seen in Chromium) and pushed its last two
    columns, the errors, off the screen. The category column is now 190 px wide (the whole table fits: Chromium's
    scroll width equals its width), the names kept whole in the table, read whole by a double click."""
    prefix = "Video Games & Consoles > Roleplaying Games and Miniature Games "
    metrics = manifest["metrics"]
    long = metrics | {"per_class": {prefix + name: record for name, record in metrics["per_class"].items()}}
    test = go_to(app(str(bundle_copy(flipkart_bundle, tmp_path / "long", metrics=long))), "Model")
    [table] = [d for d in test.dataframe if "f1" in d.value.columns and "support" in d.value.columns]
    assert sorted(table.value.index) == sorted(long["per_class"]) and max(map(len, long["per_class"])) >= 75
    category = json.loads(table.proto.columns)["_index"]
    assert category["label"] == "category" and category["width"] == streamlit_app.CATEGORY_WIDTH == 190
    assert "double-click" in category["help"]


def test_the_model_page_says_how_sure_the_precision_among_the_auto_accepted_is_as_the_reports_do(
    app, flipkart_bundle, manifest
):
    """'precision among auto-accepted 0.989' alone, where `prodcat train` printed 'auto errors 9 of 812 wrong; the
    precision's 95% interval 0.9791-0.9942' and the reports say it too: the manager deciding on automation saw
    neither how many errors nor how uncertain the figure is."""
    decision = manifest["metrics"]["decision"]
    test = go_to(app(str(flipkart_bundle)), "Model")
    interval = f"{decision['auto_precision_low']:.3f}–{decision['auto_precision_high']:.3f}"
    said = f"Precision among auto-accepted: {decision['n_auto_wrong']} of {decision['n_auto']} wrong; 95% interval "
    assert said + f"{interval}." in [c.value for c in test.caption], [c.value for c in test.caption]
    assert decision["n_auto"] > 0 and decision["auto_precision_low"] < decision["auto_precision_high"]
    # a bundle trained before the interval was recorded (models/demo), or one accepting nothing: nothing to say
    for recorded in ({"threshold": 0.9, "automation_rate": 0.9, "auto_precision": 0.99, "n_auto": 9}, {}):
        assert views.auto_precision_caption({"decision": recorded}) is None


def test_a_bundle_whose_per_category_records_predate_what_was_auto_accepted_is_said_to_lack_it(
    tiny_training, monkeypatch, tmp_path
):
    """A bundle trained before the records said what was auto-accepted (models/demo) shows its four columns, and the
    page says why the others are missing rather than leaving the manager to look for them."""
    metrics = read_manifest(tiny_training.bundle)["metrics"]
    old = {
        c: {k: record[k] for k in ("precision", "recall", "f1", "support")}
        for c, record in metrics["per_class"].items()
    }
    bundle = bundle_copy(tiny_training.bundle, tmp_path / "old", metrics=metrics | {"per_class": old})
    test = go_to(start_app(monkeypatch, str(bundle)), "Model")
    assert list(per_class_shown(test).columns) == ["precision", "recall", "f1", "support"]
    assert any("trained by an earlier prodcat" in c.value for c in test.caption), [c.value for c in test.caption]


#: how wide a name beside a bar may be, in pixels, where a chart does not say: the labelLimit of Streamlit's theme
STREAMLIT_LABEL_LIMIT_PX = 100


def label_width_px(text: str) -> float:
    """``text``'s width in DejaVu Sans at 12 px: wider than the page's Source Sans at its axis labels' 12 px or less,
    so that a name this wide fits is written in full."""
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 12).getlength(text)


def category_label_limits(test: AppTest) -> list[float]:
    """How wide a category's name may be beside its bar, in pixels, in each horizontal bar chart of the page."""
    specs = [json.loads(chart.proto.spec) for chart in test.get("vega_lite_chart")]
    axes = [spec["encoding"]["y"] for spec in specs if spec.get("mark", {}).get("type") == "bar"]
    return [y.get("axis", {}).get("labelLimit", STREAMLIT_LABEL_LIMIT_PX) for y in axes if y["type"] != "quantitative"]


def test_the_names_of_categories_beside_their_bars_are_written_in_full(app, flipkart_bundle, flipkart_dir, manifest):
    # Flipkart's "Home Decor & Festive Needs" read "Home Decor & Fe…" (Rakuten's 27 categories: seven times
    # "Video Games & C…") in the class balance, the F1 per category and the top categories of a prediction
    widest = max(map(label_width_px, manifest["labels"]))
    assert widest > STREAMLIT_LABEL_LIMIT_PX
    test = app(str(flipkart_bundle), "--data", str(flipkart_dir))
    limits = category_label_limits(test)
    limits += category_label_limits(go_to(test, "Model"))
    go_to(test, "Predict").text_input(key="predict_title").input("Decorative showpiece for Diwali, brass")
    test.button[0].click().run()
    limits += category_label_limits(test)
    assert len(limits) == 3 and min(limits) >= widest


def value_axis_domains(test: AppTest) -> dict[str, list[float] | None]:
    """The domain of the value axis of each category bar chart of the page, by the axis' title (None: the data's)."""
    specs = [json.loads(chart.proto.spec)["encoding"] for chart in test.get("vega_lite_chart")]
    return {spec["x"]["title"]: spec["x"].get("scale", {}).get("domain") for spec in specs if "category" in str(spec)}


def test_probabilities_and_f1_are_drawn_on_an_axis_from_0_to_1(tiny_training, monkeypatch, tmp_path):
    """The top categories of a prediction were drawn on an axis ending at the likeliest one: a probability of 0.35
    filled the chart as a certainty would (the F1 per category likewise); counts of products keep their own."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue))
    assert value_axis_domains(test) == {"products": None}
    assert value_axis_domains(go_to(test, "Model")) == {"F1": [0, 1]}
    go_to(test, "Predict").text_input(key="predict_title").input("wooden mug")
    test.button[0].click().run()
    assert value_axis_domains(test) == {"probability": [0, 1]}


def test_specifications_typed_on_the_predict_page_read_as_the_loader_writes_them():
    typed = "Type: Bath Towel\n  GSM : 500\n\nPack of 3\nRatio: 1:2\n: no key"
    assert (
        views.described("Soft towel.", typed)
        == "Soft towel.\nType: Bath Towel; GSM: 500; Pack of 3; Ratio: 1:2; : no key"
    )
    assert views.described("", "Type: Mug") == "Type: Mug"
    assert views.described("Soft towel.", "  \n") == "Soft towel."


NOTHING_TO_PREDICT = "Type a title or a description (with a letter or a digit), or upload a photo."


def test_predict_page_answers_from_the_bundle_and_refuses_a_non_image(app, flipkart_bundle, manifest, jpeg_bytes):
    test = go_to(app(str(flipkart_bundle)), "Predict")
    test.button[0].click().run()
    assert [w.value for w in test.warning] == [NOTHING_TO_PREDICT]
    test.text_area(key="predict_specifications").input(" ... ").run()
    test.button[0].click().run()
    assert [w.value for w in test.warning] == [NOTHING_TO_PREDICT]
    test.text_input(key="predict_title").input("Titan Neo analog wrist watch for men, stainless steel strap")
    test.text_area(key="predict_specifications").input("Dial Shape: Round\nStrap Material: Stainless Steel")
    test.button[0].click().run()
    shown = metrics_of(test)
    assert shown["category"] == "Watches" and shown["category"] in manifest["labels"]
    assert shown["from"] == "text"
    assert len(test.success) + len(test.warning) == 1  # the decision, auto or review
    assert test.file_uploader(key="predict_photo").label == f"Photo ({accepted_formats()})"  # AVIF too, if decoded
    test.file_uploader(key="predict_photo").set_value(("watch.jpg", b"%PDF-1.4 not a photo", "image/jpeg"))
    test.button[0].click().run()
    assert not test.exception
    assert [e.value for e in test.error] == [
        f"Photo refused: watch.jpg: a PDF document, which is not decoded; convert it to {accepted_formats()}"
    ]
    assert "category" not in metrics_of(test)
    test.file_uploader(key="predict_photo").set_value(("watch.jpg", jpeg_bytes(), "image/jpeg"))
    test.button[0].click().run()
    assert metrics_of(test)["from"] == "text + image" and not test.error


def test_a_photo_a_text_only_model_cannot_read_gets_no_category(tiny_training, monkeypatch, jpeg_bytes):
    """The model would answer its class prior from nothing: the page says so, as the API and prodcat predict do."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), str(tiny_training.bundle)])
    test = AppTest.from_file(str(SCRIPT), default_timeout=RUN_TIMEOUT_S)
    test.run()
    test = go_to(test, "Predict")
    test.file_uploader(key="predict_photo").set_value(("mug.jpg", jpeg_bytes(), "image/jpeg"))
    test.button[0].click().run()
    assert not test.exception and "category" not in metrics_of(test)
    assert [w.value for w in test.warning] == [
        "Nothing to classify: the model could read none of this product. This model does not read photos."
    ]
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen" and metrics_of(test)["from"] == "text"


def test_a_description_and_specifications_longer_together_than_the_api_takes_are_refused_as_it_refuses_them(
    tiny_training, monkeypatch
):
    """Each field held up to 10,000 characters, so the page classified a description and specifications of up to
    20,000 together, which the REST API refuses: it reads them as one text, held to max_text_chars. The page refuses
    what the API refuses, naming the same limit, and takes what it takes."""
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    specifications = "Material: " + "ceramic " * 750  # 6,010 characters, as is the description below
    described = views.described("mug " * 1_500, specifications)
    assert len(described) > views.MAX_TEXT_CHARS == ServeSettings().max_text_chars
    with pytest.raises(ApiError) as refused:
        check_text(ProductRequest("ceramic coffee mug", described), ServeSettings())
    assert (refused.value.limit, refused.value.detail) == (
        "max_text_chars",
        f"description of {len(described)} characters exceeds the limit max_text_chars=10000",
    )

    test.text_area(key="predict_description").input("mug " * 1_500)
    test.text_area(key="predict_specifications").input(specifications)
    test.button[0].click().run()
    assert not test.exception and "category" not in metrics_of(test)
    assert [e.value for e in test.error] == [
        views.as_written(
            f"The description with its specifications is {len(described):,} characters long, over the limit of "
            "10,000 (the REST API's max_text_chars, which would refuse it too): shorten it."
        )
    ]
    room = views.MAX_TEXT_CHARS - len(views.described("", specifications)) - 1  # the line break between the two
    fitting = "mug " * (room // 4) + "m" * (room % 4)
    assert len(views.described(fitting, specifications)) == views.MAX_TEXT_CHARS  # at the limit, not over it
    test.text_area(key="predict_description").input(fitting)
    test.button[0].click().run()
    assert not test.error and metrics_of(test)["category"] == "Kitchen"


def _predict_nothing_to_classify(bundle: Path, monkeypatch, title: str, why: str) -> AppTest:
    """The Predict page of ``bundle`` after ``title`` alone, of which the model reads nothing: no category, and the
    warning saying so, ``why`` after it."""
    test = go_to(start_app(monkeypatch, str(bundle)), "Predict")
    test.text_input(key="predict_title").input(title)
    test.button[0].click().run()
    assert not test.exception and "category" not in metrics_of(test)
    assert [w.value for w in test.warning] == [f"Nothing to classify: the model could read none of this product. {why}"]
    return test


def _predict_a_title_of_no_known_word(bundle: Path, monkeypatch) -> AppTest:
    """The Predict page of ``bundle`` after a title in a script the tiny catalogue never used: no category, and why."""
    why = (
        "None of the words in its title and description is one the model knows (it knows only the words of the "
        "products it was trained on)."
    )
    return _predict_nothing_to_classify(bundle, monkeypatch, "सिरेमिक कॉफ़ी मग", why)


def test_a_title_of_no_word_the_model_knows_gets_no_category_and_says_why(tiny_training, monkeypatch):
    """A title in a script the catalogue never used is not read (its answer would be the class prior), and the
    page said only that the model could read none of the product, though it has letters: it says why."""
    _predict_a_title_of_no_known_word(tiny_training.bundle, monkeypatch)


def test_a_bundle_recording_no_modalities_is_said_to_read_text_and_photos_on_its_pages(
    tiny_bundle_recording_no_modalities, monkeypatch
):
    """The Predict and Model pages read the modalities of the manifest raw, none for an older bundle: a text of no
    word the model knows was told 'This model does not read text.', and the Model page listed no modalities. Both
    go by the bundle's accessor, as the Data page, the commands and the API do: text and image."""
    test = _predict_a_title_of_no_known_word(tiny_bundle_recording_no_modalities, monkeypatch)
    test = go_to(test, "Model")
    assert test.table[0].value.loc["modalities", "value"] == "text, image"


#: a colour per category of the tiny catalogue, for a model that reads photos only
TINY_COLOURS = {"Kitchen": "red", "Watches": "navy", "Toys": "green"}


@pytest.fixture(scope="module")
def tiny_photo_bundle(tiny_training, tmp_path_factory) -> Path:
    """A model reading photos only (the fast config, ``--modalities image``), trained on the tiny catalogue with a
    one-colour photo per category (:data:`TINY_COLOURS`)."""
    folder = tmp_path_factory.mktemp("tiny-photos")
    photos = {category: folder / f"{category}.jpg" for category in TINY_COLOURS}
    for category, photo in photos.items():
        Image.new("RGB", (64, 48), TINY_COLOURS[category]).save(photo)
    frame = tiny_training.trained.assign(image=[str(photos[c]) for c in tiny_training.trained["category"]])
    config = Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml"
    catalogue = catalogue_csv(frame, folder / "catalogue.csv")
    options = ["--config", str(config), "--modalities", "image", "--out", str(folder / "m")]
    assert main(["train", str(catalogue), *options]) == 0
    return folder / "m"


def test_text_a_photo_only_model_cannot_read_gets_no_category_and_says_why(tiny_photo_bundle, monkeypatch, jpeg_bytes):
    """Text alone for a model reading photos only was told 'Nothing to classify: the model could read none of this
    product.' without a word of why, where a photo for a text-only model is told the model does not read photos."""
    why = "This model does not read text."
    test = _predict_nothing_to_classify(tiny_photo_bundle, monkeypatch, "ceramic coffee mug", why)
    test.file_uploader(key="predict_photo").set_value(("mug.jpg", jpeg_bytes(colour="red"), "image/jpeg"))
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen" and metrics_of(test)["from"] == "image"


def test_predictions_page_browses_a_csv_and_predicts_a_sample(app, flipkart_bundle, flipkart_dir, tmp_path):
    catalogue = load_catalog(flipkart_dir).frame
    csv = tmp_path / "preds.csv"
    predicted = predict_catalog(Predictor.load(flipkart_bundle), catalogue.head(12), chunk_size=12)
    # a product `prodcat predict` could not score: no category, no confidence, its reason in `error`
    unscored = {"category": None, "confidence": None, "decision": "review", "top_k": "[]", "error": "model raised"}
    predicted.loc[0, list(unscored)] = list(unscored.values())
    predicted.to_csv(csv, index=False)
    test = go_to(app(str(flipkart_bundle), "--data", str(flipkart_dir), "--predictions", str(csv)), "Predictions")
    assert not test.error and not test.exception
    assert metrics_of(test)["products"] == "12"
    assert "error" in predictions_table(test).proto.column_order  # why a product was not scored
    assert predictions_table(test).value["error"].iat[0] == "model raised"
    # by default the candidates are the disagreements the model would auto-accept: at its very threshold
    assert test.slider(key="noise_confidence").value == Predictor.load(flipkart_bundle).threshold
    assert test.subheader[0].value.startswith("Given (rows)")  # the catalogue's labels are attached
    test.multiselect(key="filter_decision").select("review").run()
    table = pd.read_csv(csv)
    assert metrics_of(test)["products"] == str((table["decision"] == "review").sum())

    predict_a_sample(test, 8)
    assert int(metrics_of(test)["products"]) <= 8  # the "review" filter is still on
    test.multiselect(key="filter_decision").set_value([]).run()
    assert metrics_of(test)["products"] == "8"
    confusion = next(d.value for d in test.dataframe if d.value.index.name == "given")
    assert confusion.to_numpy().sum() == 8
    noise = test.dataframe[-1].value
    assert list(noise.columns[:2]) == ["photo", "product_id"]
    assert (noise["given"] != noise["predicted"]).all()


def test_the_top_categories_of_a_prediction_are_shown_as_text_and_a_small_table_not_as_json(
    tiny_training, monkeypatch, tmp_path
):
    """The Predictions page showed a CSV's top_k as the JSON prodcat predict writes ('[{"category": "Kitchen",
    "probability": 0.8123}, ...]'), in its table and the label-noise one. It is read as text, 'Kitchen 0.812 ·
    Toys 0.150', and a product chosen below the table has its top categories as a small table, as on the Predict
    page; a cell of no such list (a hand-made table's) is shown as it is."""
    top = [{"category": "Kitchen", "probability": 0.8123}, {"category": "Toys", "probability": 0.15}]
    csv = tmp_path / "preds.csv"
    pd.DataFrame(
        {
            "product_id": ["Kitchen-12", "Toys-12", "Watches-12"],
            "category": ["Kitchen", "Kitchen", "Watches"],
            "confidence": [0.8123, 0.95, 0.9],
            "decision": ["review", "auto", "auto"],
            "top_k": [json.dumps(top), "n/a", "[]"],
        }
    ).to_csv(csv, index=False)
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue), "--predictions", str(csv))
    test = go_to(test, "Predictions")
    shown = predictions_table(test).value["top_k"]
    assert shown[:2].tolist() == ["Kitchen 0.812 · Toys 0.150", "n/a"] and pd.isna(shown.iat[2])  # "[]": none
    test.slider(key="noise_confidence").set_value(0.0).run()
    noise = test.dataframe[-1].value  # Toys-12 given Toys, predicted Kitchen
    assert noise["top_k"].tolist() == ["n/a"]
    [small] = [d.value for d in test.dataframe if "probability" in d.value.columns]  # not the per-category table
    assert small["probability"].to_dict() == {"Kitchen": 0.8123, "Toys": 0.15}
    test.selectbox(key="top_k_product").set_value("Toys-12").run()
    assert not [d for d in test.dataframe if "probability" in d.value.columns]
    assert "No top categories recorded for it." in [c.value for c in test.caption]
    test.multiselect(key="filter_decision").select("review").run()  # the product chosen filtered out: the first shown
    assert not test.exception and test.selectbox(key="top_k_product").value == "Kitchen-12"


def test_predicting_a_sample_of_an_empty_catalogue_says_so(app, flipkart_bundle, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("product_id,title,description,image,category\n")
    data_page = app(str(flipkart_bundle), "--data", str(empty))
    assert [i.value for i in data_page.info] == ["The catalogue has no product."]
    test = go_to(data_page, "Predictions")
    test.radio(key="predictions_source").set_value("Predict a sample of the catalogue").run()
    assert not test.exception
    assert [i.value for i in test.info] == ["The catalogue has no product to predict."]


def test_app_reports_a_bad_bundle_and_a_bad_catalogue(app, flipkart_bundle, tmp_path):
    assert "not a prodcat model bundle" in app(str(tmp_path)).error[0].value
    test = app(str(flipkart_bundle), "--data", str(tmp_path / "missing.csv"))
    assert "no such file or folder" in test.sidebar.error[0].value
    assert test.info[0].value.startswith("Give a catalogue")


def test_a_sample_predicted_in_the_app_reads_the_embeddings_cached_on_disk(
    app, flipkart_bundle, flipkart_dir, flipkart_catalog, monkeypatch
):
    # what `prodcat predict` leaves in the on-disk cache for these products
    views.predict_sample(Predictor.load(flipkart_bundle), flipkart_catalog, 8, seed=3)
    calls = encoder_calls(flipkart_bundle, monkeypatch)
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(flipkart_dir)), "Predictions"), 8, seed=3)
    assert metrics_of(test)["products"] == "8"
    assert calls == []  # read from the disk cache: nothing encoded again (the app was ~100x slower than the CLI)


def test_a_predicted_sample_outlives_a_visit_to_another_page_and_another_seed_draws_another(
    app, flipkart_bundle, flipkart_dir
):
    test = go_to(app(str(flipkart_bundle), "--data", str(flipkart_dir)), "Predictions")
    test.radio(key="predictions_source").set_value(SAMPLE).run()
    assert any(i.value.startswith("Stay on this page while the sample is predicted") for i in test.info)
    first = set(predictions_table(predict_a_sample(test, 5)).value["product_id"])
    assert len(first) == 5
    go_to(go_to(test, "Data"), "Predictions")
    assert test.radio(key="predictions_source").value == SAMPLE
    assert set(predictions_table(test).value["product_id"]) == first
    assert set(predictions_table(predict_a_sample(test, 5, seed=1)).value["product_id"]) != first


def test_the_app_shows_the_photos_a_sample_could_not_use(app, flipkart_bundle, flipkart_frame, tmp_path):
    frame = flipkart_frame.head(3).copy()
    (tmp_path / "notes.jpg").write_text("not a photo")
    frame.loc[0, "image"] = str(tmp_path / "notes.jpg")
    catalogue = catalogue_csv(frame, tmp_path / "catalogue.csv")
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(catalogue)), "Predictions"), 3)
    assert test.expander[0].label == "1 issue(s): rows skipped, products not scored or read in part"
    issues = issues_shown(test)
    assert issues["product_id"].tolist() == [frame["product_id"][0]]
    assert "notes.jpg not used: not an image" in issues["message"].iat[0]


def test_a_sample_of_the_whole_catalogue_lists_the_issues_prodcat_predict_lists(
    app, flipkart_bundle, flipkart_frame, tmp_path
):
    """A sample listed the photos that did not decode, not those not found ('photo file ... not found ...: classified
    from its text'), which prodcat predict lists for the same products, beside the others: it lists them now, in the
    catalogue's line order, as predict writes them to OUT.issues.csv."""
    frame = flipkart_frame.head(4).copy()
    (tmp_path / "notes.jpg").write_text("not a photo")
    frame.loc[1, "image"] = str(tmp_path / "notes.jpg")
    frame.loc[2, "image"] = str(tmp_path / "gone.jpg")
    catalogue = catalogue_csv(frame, tmp_path / "catalogue.csv")
    assert main(["predict", str(flipkart_bundle), str(catalogue), "--out", str(tmp_path / "out.csv")]) == 0
    listed_by_predict = pd.read_csv(tmp_path / "out.csv.issues.csv", dtype={"product_id": object})
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(catalogue)), "Predictions"), 4)
    shown = issues_shown(test)
    assert shown.astype(str).to_dict("records") == listed_by_predict.astype(str).to_dict("records")
    assert shown["product_id"].tolist() == frame["product_id"][1:3].tolist()
    assert "notes.jpg not used" in shown["message"].iat[0] and "gone.jpg' not found" in shown["message"].iat[1]
    # and of a part of the catalogue, those of the products drawn only
    part = views.predict_sample(Predictor.load(flipkart_bundle), load_catalog(catalogue), 2, seed=9)
    assert set(part.table["product_id"]) == {frame["product_id"][1], frame["product_id"][3]}
    assert [issue.product_id for issue in part.issues] == [frame["product_id"][1]]


def test_a_sample_lists_the_issues_of_the_whole_catalogue_prodcat_predict_lists(
    flipkart_bundle, tiny_training, fashion_dir, tmp_path
):
    """A sample listed the issues of the products drawn only, not those of no product, of the catalogue as a whole:
    a fashion table copied without its photo folder, every product read from its text alone by a text+photo model,
    showed no issue. A sample lists them now as prodcat predict does, of the fields the model reads."""
    lines = [f"{line}\n" for line in (fashion_dir / "styles.csv").read_text().splitlines()[:6]]
    lines[3] = lines[3].replace("\n", " café\n")  # its name, the last column: one line in Windows-1252
    folder = tmp_path / "fashion"  # without its images/ folder
    folder.mkdir()
    (folder / "styles.csv").write_bytes("".join(lines).encode("cp1252"))
    catalog = load_catalog(folder)
    assert main(["predict", str(flipkart_bundle), str(folder), "--out", str(tmp_path / "out.csv")]) == 0
    listed_by_predict = pd.read_csv(tmp_path / "out.csv.issues.csv", dtype={"product_id": object})
    sample = views.predict_sample(Predictor.load(flipkart_bundle), catalog, 2)
    shown = views.issue_table(sample.issues)
    assert shown.astype(str).to_dict("records") == listed_by_predict.astype(str).to_dict("records")
    assert shown["field"].tolist() == ["image", "file"] and shown["product_id"].isna().all()
    assert "photo folder" in shown["message"].iat[0] and "read as Windows-1252" in shown["message"].iat[1]
    # a text-only model reads no photo: the folder not found does not concern it
    text_only = views.predict_sample(Predictor.load(tiny_training.bundle), catalog, 2)
    assert [issue.field for issue in text_only.issues] == ["file"]


def test_agreement_on_products_the_model_was_trained_on_is_said_to_be_in_sample(
    app, tiny_training, tiny_old_bundle, tmp_path
):
    """The predicted catalogue products the model was trained on are counted, all or some of them, in the words
    of `prodcat evaluate`, as sentences; a bundle recording no product fingerprints recognises its whole training
    catalogue only, and beside other products says it cannot tell (which passed for none of them, though 36 of these
    48 were); a `prodcat cv` table, whose labels are out-of-fold, is not warned of."""
    trained = catalogue_csv(tiny_training.trained, tmp_path / "trained.csv")
    more = catalogue_csv(pd.concat([tiny_training.trained, tiny_training.unseen]), tmp_path / "more.csv")
    for bundle, catalogue, size, found, opening in (
        (tiny_training.bundle, more, 48, InTraining(36, 48), "36 of 48 products evaluated (75.0%) were in the model's"),
        (tiny_training.bundle, trained, 10, InTraining(10, 10), "These are the very products the model was trained on"),
        (tiny_old_bundle, trained, 10, InTraining(10, 10), "These are the very products the model was trained on"),
        (tiny_old_bundle, more, 48, InTraining(0, 48), "The model's bundle does not record which products it was"),
    ):
        test = predict_a_sample(go_to(app(str(bundle), "--data", str(catalogue)), "Predictions"), size)
        shown = warnings_shown(test)
        assert shown == [views.as_written(caveat) for caveat in views.in_training_caveats(found)], (bundle, catalogue)
        assert len(shown) == 1 and shown[0].startswith(opening) and shown[0].endswith("."), shown
    cv = tmp_path / "cv.csv"
    cv.write_text("product_id,category,predicted,confidence,decision\nKitchen-0,Kitchen,Kitchen,0.9,auto\n")
    test = go_to(app(str(tiny_training.bundle), "--data", str(trained), "--predictions", str(cv)), "Predictions")
    assert not warnings_shown(test)


def test_products_trained_on_are_counted_among_the_products_scored_as_the_agreement_is(
    tiny_training, monkeypatch, tmp_path
):
    """The caveat counted the products the model was trained on among every product predicted, those it could not
    score too, which the agreement leaves out: a model trained on Rakuten's texts read '400 of 3,490 scored products
    (11.5%)' beside an agreement on 2,095 products, 400 of them (19.1%) trained on."""
    catalogue = catalogue_csv(pd.concat([tiny_training.trained, tiny_training.unseen]), tmp_path / "more.csv")
    header = "product_id,category,confidence,decision,top_k,modalities_used,error\n"
    scored = "".join(f"{i},{i.split('-')[0]},0.9,auto,[],text,\n" for i in ("Kitchen-0", "Toys-0", "Toys-1", "Toys-12"))
    unscored = "".join(f"{i},,,review,[],,no text\n" for i in ("Kitchen-1", "Kitchen-2", "Watches-0", "Watches-1"))
    csv = tmp_path / "preds.csv"
    csv.write_text(header + scored + unscored)
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.text_input(key="predictions_path").input(str(csv)).run()
    assert metrics_of(test)["agree with the given category"] == "100.0%"
    assert warnings_shown(test) == [views.as_written(caveat) for caveat in views.in_training_caveats(InTraining(3, 4))]
    assert warnings_shown(test)[0].startswith("3 of 4 products evaluated (75.0%) were in the model's training data")
    csv.write_text(header + unscored)  # none scored: no agreement, nothing to say of it
    test.run()
    assert metrics_of(test)["agree with the given category"] == "–" and not warnings_shown(test)


def test_products_trained_on_are_counted_among_the_rows_the_filters_keep(tiny_training, monkeypatch, tmp_path):
    """The caveat counted the products trained on among every row while the agreement beside it counted the rows the
    filters kept: a Rakuten table filtered to its auto-accepted rows still read '400 of 2,095'. It counts those the
    agreement counts now, the training products looked for once, not again at each move of a filter."""
    searched: list[int] = []
    real_search = views.catalogue_products_in_training

    def recorded_search(product_ids: pd.Series, *args: object) -> InTraining:
        searched.append(len(product_ids))
        return real_search(product_ids, *args)

    monkeypatch.setattr(views, "catalogue_products_in_training", recorded_search)
    catalogue = catalogue_csv(pd.concat([tiny_training.trained, tiny_training.unseen]), tmp_path / "more.csv")
    csv = tmp_path / "preds.csv"
    csv.write_text(
        "product_id,category,confidence,decision,top_k,modalities_used,error\n"
        + "".join(f"{i},{i.split('-')[0]},0.9,auto,[],text,\n" for i in ("Kitchen-0", "Toys-0", "Toys-1"))
        + "Toys-12,Toys,0.5,review,[],text,\n"
    )
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.text_input(key="predictions_path").input(str(csv)).run()
    assert warnings_shown(test) == [views.as_written(caveat) for caveat in views.in_training_caveats(InTraining(3, 4))]
    test.multiselect(key="filter_decision").set_value(["auto"]).run()
    assert [m.proto.help for m in test.metric if m.label == "agree with the given category"] == [
        "among the 3 products with a given category that were scored"
    ]
    assert warnings_shown(test) == [views.as_written(caveat) for caveat in views.in_training_caveats(InTraining(3, 3))]
    assert warnings_shown(test)[0].startswith("These are the very products the model was trained on")
    test.multiselect(key="filter_decision").set_value(["review"]).run()  # Toys-12, not trained on
    assert metrics_of(test)["products"] == "1" and not warnings_shown(test)
    assert searched == [4]


def test_an_evaluate_predictions_csv_says_the_products_its_model_was_trained_on_as_evaluate_said_them(
    tiny_training, monkeypatch, tmp_path
):
    """`prodcat evaluate`'s predictions.csv holds the given category beside the predicted one, as a `prodcat cv` one
    does, and marks each product `in_training`: the page took it for a cv table of out-of-fold labels and showed the
    agreement without a word of those trained on (on Flipkart, a model trained on 300 of the 900 products: 94.8%,
    where evaluate warned '300 of 900 products evaluated (33.3%) were in the model's training data'). It says what
    evaluate said now, with the catalogue or without, counted among the rows the filters keep."""
    catalogue = catalogue_csv(pd.concat([tiny_training.trained, tiny_training.unseen]), tmp_path / "more.csv")
    report = tmp_path / "evaluated"
    assert main(["evaluate", str(tiny_training.bundle), str(catalogue), "--report", str(report)]) == 0
    evaluate_said = json.loads((report / "metrics.json").read_text())["warnings"]
    caveat = views.in_training_caveats(InTraining(36, 48))
    assert caveat[0][:-1] in [warning[:1].upper() + warning[1:] for warning in evaluate_said]
    predictions = str(report / "predictions.csv")
    for arguments in ((), ("--data", str(catalogue))):
        test = go_to(
            start_app(monkeypatch, str(tiny_training.bundle), "--predictions", predictions, *arguments), "Predictions"
        )
        assert metrics_of(test)["products"] == "48"
        assert warnings_shown(test) == [views.as_written(said) for said in caveat], arguments
    test.multiselect(key="filter_category").set_value(["Toys"]).run()  # 12 trained on, 4 not
    assert warnings_shown(test) == [views.as_written(said) for said in views.in_training_caveats(InTraining(12, 16))]
    marks = pd.DataFrame({"product_id": ["a"], "given": ["Toys"], "predicted": ["Toys"], "in_training": [""]})
    assert views.marked_in_training(marks) is None  # not marked: looked for in the catalogue as before


def test_catalogue_warnings_count_unknown_ids_and_categories():
    frame = pd.DataFrame({"product_id": ["a", "b", "c", "d"], "category": ["Watches", "Watches", "Shoes", None]})
    table = pd.DataFrame({"product_id": ["a", "b", "c", "d"], "predicted": "Watches", "given": frame["category"]})
    labels = ["Watches", "Baby Care"]
    assert views.catalogue_warnings(table.head(2), frame, labels) == []
    # in the words of `prodcat evaluate`
    [unknown] = views.catalogue_warnings(table, frame, labels)
    assert unknown == unknown_categories_warning(["Watches", "Watches", "Shoes"], labels)
    assert unknown.startswith("1 of 3 labelled products have a category the model does not know (1 category: 'Shoes'")
    [none_known] = views.catalogue_warnings(table.iloc[2:], frame, labels)
    assert none_known.startswith("1 of 1 labelled products have a category the model does not know")
    stray = table.head(2).assign(product_id=["a", "zz"])
    [missing] = views.catalogue_warnings(stray, frame, labels)
    assert missing.startswith("1 (50.0%) of the predicted products are not in the catalogue")
    [none_found] = views.catalogue_warnings(stray.assign(product_id=["x", "y"]), frame, labels)
    assert none_found.startswith("None of the 2 predicted products is in the catalogue")


#: the tiny catalogue's categories as paths of two levels
TINY_PATHS = {"Kitchen": "Home > Kitchen", "Watches": "Accessories > Watches", "Toys": "Home > Toys"}


@pytest.fixture(scope="module")
def tiny_levels(tiny_training, tmp_path_factory) -> tuple[Path, dict[int | None, Path]]:
    """The tiny catalogue with :data:`TINY_PATHS` as categories, and a text model trained on it (the fast config)
    at each level: full paths (``None``) and level 1, by the level."""
    folder = tmp_path_factory.mktemp("tiny-levels")
    frame = tiny_training.trained.assign(category=tiny_training.trained["category"].map(TINY_PATHS))
    catalogue = catalogue_csv(frame, folder / "catalogue.csv")
    config = Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml"
    bundles = {}
    for level in (None, 1):
        bundles[level] = folder / f"level-{level or 'full'}"
        options = ["--config", str(config), "--modalities", "text", "--level", str(level or 0)]
        assert main(["train", str(catalogue), *options, "--out", str(bundles[level])]) == 0
    return catalogue, bundles


def test_the_level_of_predictions_is_the_models_unless_another_model_made_them():
    full, level_1 = ["Home > Kitchen", "Home > Toys"], ["Home", "Accessories"]
    assert views.predictions_level(pd.Series(full), full, None) is None  # the model's own
    assert views.predictions_level(pd.Series([*level_1, None]), full, None) == 1
    assert views.predictions_level(pd.Series(full), level_1, 1) == 2
    # a ragged hierarchy: a full-path model need not predict its deepest categories
    assert views.predictions_level(pd.Series(["Home"]), ["Home", "Toys > Trains"], None) is None
    assert views.predictions_level(pd.Series(["Watches"]), ["Home", "Toys"], 1) == 1  # another model, same level
    assert views.predictions_level(pd.Series([None]), full, None) is None  # nothing predicted: nothing to tell
    assert views.level_note(1, 1, own_labels=False) is None
    assert views.level_note(1, None, own_labels=False).startswith(
        "These predictions are categories at level 1, the model's at full paths: another model made them. They "
        "are compared with the given categories cut to level 1;"
    )
    assert "compared with its own given categories;" in views.level_note(None, 2, own_labels=True)


@pytest.mark.parametrize(("model_level", "csv_level"), [(None, 1), (1, None), (None, None), (1, 1)])
def test_given_categories_are_cut_to_the_level_of_the_predictions_csv(
    tiny_levels, model_level, csv_level, tmp_path, monkeypatch
):
    """A CSV written by a model of another level than the loaded one (level 1 beside a full-path model, or the
    reverse) is compared with the given categories at its own level, which the page says; the model's warnings,
    about another model's predictions, are left out."""
    catalogue, bundles = tiny_levels
    ids, given = ["Kitchen-0", "Watches-0", "Toys-0"], ["Home > Kitchen", "Accessories > Watches", "Home > Toys"]
    predicted = category_at_level(["Home > Kitchen", "Accessories > Watches", "Accessories > Watches"], csv_level)
    csv = tmp_path / "preds.csv"
    table = pd.DataFrame({"product_id": ids, "category": predicted, "confidence": 0.9, "decision": "auto"})
    table.to_csv(csv, index=False)
    bundle = str(bundles[model_level])
    test = go_to(start_app(monkeypatch, bundle, "--data", str(catalogue), "--predictions", str(csv)), "Predictions")
    assert metrics_of(test)["agree with the given category"] == "66.7%"  # 0.0% when cut to the model's level
    confusion = next(d.value for d in test.dataframe if d.value.index.name == "given")
    assert sorted(confusion.index) == sorted(set(category_at_level(given, csv_level)))
    notes = [i.value for i in test.info]
    if model_level == csv_level:  # the model's own: its warning, the products are those it was trained on
        assert notes == [] and [w.split(":")[0] for w in warnings_shown(test)] == [
            "These are the very products the model was trained on"
        ]
    else:  # a full-path CSV is at level 2, its deepest
        assert notes == [views.level_note(csv_level or 2, model_level, own_labels=False)] and not warnings_shown(test)


def test_the_app_warns_when_the_catalogue_does_not_match_the_model_or_the_predictions(
    app, flipkart_bundle, flipkart_frame, tmp_path
):
    other = flipkart_frame.head(4).assign(category="Apparel > Topwear > Shirts")  # a fashion catalogue's category
    catalogue = catalogue_csv(other, tmp_path / "fashion.csv")
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(catalogue)), "Predictions"), 4)
    assert [w.split(" (1 category")[0] for w in warnings_shown(test)] == [
        "4 of 4 labelled products have a category the model does not know"
    ]
    csv = tmp_path / "preds.csv"
    csv.write_text("product_id,category,confidence,decision\nnot-in-it,Watches,0.9,auto\n")
    test = go_to(app(str(flipkart_bundle), "--data", str(catalogue), "--predictions", str(csv)), "Predictions")
    assert [w.value.split(" (no")[0] for w in test.warning] == ["None of the 1 predicted products is in the catalogue"]


def test_catalogue_text_in_a_message_is_shown_as_written_not_as_markdown(
    app, flipkart_bundle, flipkart_frame, tmp_path
):
    """Messages render Markdown: a category 'Gifts $5 to $10' was typeset as LaTeX ('5 to' in italics, the dollars
    gone), '*new*' in italics, '[x](y)' a link."""
    other = flipkart_frame.head(4).assign(category="Gifts $5 to $10 *new*")
    catalogue = catalogue_csv(other, tmp_path / "gifts.csv")
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(catalogue)), "Predictions"), 4)
    [warning] = warnings_shown(test)
    assert "'Gifts \\$5 to \\$10 \\*new\\*'" in warning
    assert views.as_written("[a](b) `c` ~d~ <e> a_b \\") == "\\[a\\](b) \\`c\\` \\~d\\~ \\<e\\> a\\_b \\\\"


def test_a_command_the_library_quotes_in_a_message_is_shown_as_code_not_with_its_backticks(app, tmp_path):
    """A message quoting a command in backticks (a bad bundle: 'give the folder `prodcat train --out` wrote') was
    escaped whole, so that the page showed the backticks themselves. The command is shown as code; the catalogue's
    own text around it, a backtick of it included, is still shown as written."""
    [error] = app(str(tmp_path)).error
    assert error.value.endswith("give the folder `prodcat train --out` wrote")
    assert views.as_written("run `prodcat cv` on 'a `b` *c*' or `prodcat`") == (
        "run `prodcat cv` on 'a \\`b\\` \\*c\\*' or `prodcat`"
    )


def test_a_rewritten_predictions_file_or_catalogue_is_read_again(app, flipkart_bundle, flipkart_frame, tmp_path):
    csv = tmp_path / "preds.csv"
    header = "product_id,category,confidence,decision\n"
    csv.write_text(header + "p1,Watches,0.9,auto\np2,Watches,0.8,auto\np3,Watches,0.7,review\n")
    catalogue = catalogue_csv(flipkart_frame.head(5), tmp_path / "catalogue.csv")
    test = go_to(app(str(flipkart_bundle), "--data", str(catalogue), "--predictions", str(csv)), "Predictions")
    assert metrics_of(test)["products"] == "3"
    csv.write_text(header + "p1,Watches,0.9,auto\n")
    catalogue_csv(flipkart_frame.head(2), catalogue)
    for path in (csv, catalogue):  # a later modification time, whatever the file system's resolution
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 10**9))
    test.run()
    assert metrics_of(test)["products"] == "1"
    assert metrics_of(go_to(test, "Data"))["products"] == "2"


def test_a_photo_replaced_is_shown_anew_in_the_grid(tiny_training, monkeypatch, tmp_path, jpeg_bytes):
    """Thumbnails were cached by path alone: a photo replaced kept its old thumbnail until the server restarted."""
    photo = tmp_path / "mug.jpg"
    photo.write_bytes(jpeg_bytes(colour="red"))
    (tmp_path / "a.csv").write_text("product_id,title,image,category\nmug,red mug,mug.jpg,Kitchen\n")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(tmp_path / "a.csv"))
    red = test.dataframe[-1].value["photo"].iat[0]
    photo.write_bytes(jpeg_bytes(size=(64, 49), colour="blue"))  # another size: another stamp, however coarse its clock
    test.run()
    blue = test.dataframe[-1].value["photo"].iat[0]
    assert red.startswith("data:image/jpeg;base64,") and blue != red


def test_photos_added_since_the_catalogue_was_read_are_seen_once_it_is_read_again(
    tiny_training, monkeypatch, tmp_path, jpeg_bytes
):
    """The catalogue is read again when its table changes, not its photos: one copied where it was not found stayed
    'not found' until the server restarted. The sidebar reads it again on request."""
    (tmp_path / "a.csv").write_text("product_id,title,image,category\nmug,red mug,mug.jpg,Kitchen\n")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(tmp_path / "a.csv"))
    assert metrics_of(test)["without photo file"] == "1 (100.0%)"
    (tmp_path / "mug.jpg").write_bytes(jpeg_bytes())
    test.sidebar.button(key="read_catalogue_again").click().run()
    assert not test.exception and metrics_of(test)["without photo file"] == "0 (0.0%)"


def test_a_sample_predicted_before_the_catalogue_is_read_again_is_dropped(
    app, flipkart_bundle, flipkart_frame, tmp_path
):
    """Reading the catalogue again (its photos copied in) kept the sample predicted before, from its text alone, still
    listing the photo 'not found' that the user had read it again for."""
    frame = flipkart_frame.head(2).copy()
    photo = tmp_path / "late.jpg"
    shutil.copy(frame["image"][0], tmp_path / "kept.jpg")
    frame.loc[0, "image"] = str(photo)
    catalogue = catalogue_csv(frame, tmp_path / "catalogue.csv")
    test = predict_a_sample(go_to(app(str(flipkart_bundle), "--data", str(catalogue)), "Predictions"), 2)
    assert "late.jpg' not found" in issues_shown(test)["message"].iat[0]
    shutil.move(tmp_path / "kept.jpg", photo)
    test.sidebar.button(key="read_catalogue_again").click().run()
    assert not test.exception and "products" not in metrics_of(test)
    test.button(key="predict_sample").click().run()
    assert metrics_of(test)["products"] == "2" and issues_shown(test).empty


def test_the_training_products_are_looked_for_again_once_the_catalogue_is_read_again(
    tiny_training, monkeypatch, tmp_path, jpeg_bytes
):
    """Reading the catalogue again (a photo copied in) dropped its read and the sample, but the search for the model's
    training products among those predicted, cached on the catalogue's stamp (its tables, unchanged), answered from
    the read before: the photo, part of what a photo model recognises its training products by, still missing."""
    looked_in: list[list[object]] = []
    real_search = views.catalogue_products_in_training

    def recorded_search(product_ids: pd.Series, frame: pd.DataFrame, *args: object) -> InTraining:
        looked_in.append(frame["image"].tolist())
        return real_search(product_ids, frame, *args)

    monkeypatch.setattr(views, "catalogue_products_in_training", recorded_search)
    catalogue = catalogue_csv(tiny_training.trained.assign(image=["mug.jpg", *[""] * 35]), tmp_path / "a.csv")
    test = predict_a_sample(
        go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions"), 36
    )
    (tmp_path / "mug.jpg").write_bytes(jpeg_bytes())
    test.sidebar.button(key="read_catalogue_again").click().run()
    predict_a_sample(test, 36)
    assert [images[0] for images in looked_in] == [None, str(tmp_path / "mug.jpg")]


def test_modification_stamp_of_a_bundle_changes_when_its_model_is_replaced(flipkart_bundle, tmp_path):
    bundle = bundle_copy(flipkart_bundle, tmp_path / "bundle")
    stamp = views.modification_stamp(bundle)
    assert [name for name, _, _ in stamp] == sorted([MANIFEST, MODEL_FILE, PRODUCTS_FILE])
    (bundle / MODEL_FILE).write_bytes((bundle / MODEL_FILE).read_bytes())
    os.utime(bundle / MODEL_FILE, ns=(time.time_ns(), (bundle / MODEL_FILE).stat().st_mtime_ns + 10**9))
    assert views.modification_stamp(bundle) != stamp
    assert views.modification_stamp(tmp_path / "missing") == ()


def test_typed_paths_are_confined_to_the_folders_given(app, flipkart_bundle, flipkart_dir, tmp_path):
    roots = [tmp_path / "data"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "escape").symlink_to("/etc")
    assert views.readable_path(f"  {tmp_path}/data/x.csv \n", roots) == tmp_path / "data" / "x.csv"
    for outside in ("/etc/passwd", f"{tmp_path}/data/../secret.csv", f"{tmp_path}/data/escape/passwd"):
        with pytest.raises(views.PathRefused, match=r"outside the folders this app may open"):
            views.readable_path(outside, roots)

    test = app(str(flipkart_bundle), "--data", str(flipkart_dir))
    test.sidebar.text_input(key="catalogue").input("/etc/passwd").run()
    [refused] = [e.value for e in test.sidebar.error]
    assert refused.startswith("/etc/passwd: outside the folders this app may open") and "root:" not in refused
    go_to(test, "Predictions").text_input(key="predictions_path").input("/etc/passwd").run()
    assert [e.value for e in test.main.error] == [refused]
    # a sibling of --data's folder is within reach, its path pasted with blanks around it
    test.sidebar.text_input(key="catalogue").input(f"  {flipkart_dir}  ").run()
    assert not test.sidebar.error


def test_a_catalogue_error_naming_command_line_options_says_what_the_app_reads(app, flipkart_bundle, tmp_path):
    (tmp_path / "odd.csv").write_text("sku,name\n1,mug\n")
    test = app(str(flipkart_bundle), "--data", str(tmp_path / "odd.csv"))
    assert "--title-column" in test.sidebar.error[0].value
    assert test.sidebar.caption[0].value.startswith("The options named are those of the `prodcat` command line")


def test_columns_of_a_catalogue_left_unread_are_said_in_the_sidebar(tiny_training, monkeypatch, tmp_path):
    """The loader's warning of columns left unread (a description under 'desc', photos under 'photo_url') went to
    the server's console only: the page showed every product without description or photo, without a word why."""
    (tmp_path / "odd.csv").write_text("product_id,title,desc,photo_url,category\n1,mug,a mug,http://x/a.jpg,Kitchen\n")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(tmp_path / "odd.csv"))
    [warning] = [w.value for w in test.sidebar.warning]
    assert warning.startswith("odd.csv: no description or image column") and "desc, photo\\_url are not read" in warning
    assert test.sidebar.caption[0].value.startswith("The options named are those of the `prodcat` command line")
    assert metrics_of(test)["without description"] == "1 (100.0%)"
    test.sidebar.text_input(key="catalogue").input(str(catalogue_csv(tiny_training.unseen, tmp_path / "a.csv"))).run()
    assert not test.sidebar.warning


def test_every_catalogue_issue_is_listed(app, flipkart_bundle, tmp_path):
    rows = "".join(f"p{i},mug {i},extra field\n" for i in range(205))
    (tmp_path / "broken.csv").write_text("product_id,title\np,tea mug\n" + rows)
    test = app(str(flipkart_bundle), "--data", str(tmp_path / "broken.csv"))
    assert test.expander[0].label == "205 row issue(s) while reading the catalogue"
    assert len(issues_shown(test)) == 205  # all of them, not the first 200


def test_the_data_page_says_what_the_loaded_model_classifies_a_product_from(
    tiny_training, monkeypatch, tmp_path, jpeg_bytes
):
    """The Data page listed a product of a photo alone as 'classified from its photo' whatever the model, as the
    loader words it: a text-only model cannot read it, and prodcat predict lists it so (issues_for_model)."""
    (tmp_path / "mug.jpg").write_bytes(jpeg_bytes())
    products = tiny_training.unseen.copy()
    products.loc[0, ["title", "description", "image"]] = ["", "", "mug.jpg"]
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue_csv(products, tmp_path / "a.csv")))
    assert issues_shown(test)["message"].tolist() == [
        "a.csv: no title or description: nothing to classify it from, as this model does not read photos"
    ]


def test_the_data_page_lists_the_catalogue_issues_prodcat_predict_lists_for_the_model(
    tiny_training, monkeypatch, tmp_path, jpeg_bytes
):
    """The Data page listed every issue of the catalogue, those of photos too for a text-only model ('photo not
    found...: classified from its text'), which prodcat predict leaves out for it: it lists now what predict writes
    to OUT.issues.csv for the same model and catalogue."""
    (tmp_path / "mug.jpg").write_bytes(jpeg_bytes())
    products = tiny_training.unseen.copy()
    products.loc[0, ["title", "description", "image"]] = ["", "", "mug.jpg"]
    products.loc[1, "image"] = "gone.jpg"
    catalogue = catalogue_csv(products, tmp_path / "a.csv")
    with catalogue.open("a") as rows:
        rows.write("broken,a mug,,,Kitchen,extra field\n")
    assert main(["predict", str(tiny_training.bundle), str(catalogue), "--out", str(tmp_path / "out.csv")]) == 0
    listed_by_predict = pd.read_csv(tmp_path / "out.csv.issues.csv", dtype={"product_id": object})
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue))
    shown = issues_shown(test)
    assert shown.astype(str).to_dict("records") == listed_by_predict.astype(str).to_dict("records")
    assert "image" not in set(shown["field"]) and len(shown) == 2  # the photo-only product and the broken row


def test_model_page_shows_what_the_manifest_records_and_a_dash_for_the_rest(app, flipkart_bundle, manifest, tmp_path):
    metrics = manifest["metrics"] | {"decision": {"threshold": 0.9}}  # an older bundle's record
    test = go_to(app(str(bundle_copy(flipkart_bundle, tmp_path / "bundle", metrics=metrics))), "Model")
    shown = metrics_of(test)
    assert shown["decision threshold"] == "0.900" and shown["precision among auto-accepted"] == "–"
    assert views.decision_metrics({}) == dict.fromkeys(views.decision_metrics({"decision": {}}), "–")


def test_counts_on_the_model_page_have_thousands_separators_as_on_the_other_pages(
    app, flipkart_bundle, manifest, tmp_path
):
    """The Model page wrote '12345 products' where the Data page writes '12,345'."""
    metrics = manifest["metrics"] | {"n": 12_345}
    bundle = bundle_copy(flipkart_bundle, tmp_path / "bundle", n_train=12_345, metrics=metrics)
    test = go_to(app(str(bundle)), "Model")
    assert test.table[0].value.loc["trained on", "value"] == "12,345 products"
    assert [c.value for c in test.caption if "on 12,345 products." in c.value], [c.value for c in test.caption]
    labels = [f"category {number}" for number in range(1_234)]
    assert views.model_overview(manifest | {"labels": labels})["categories"] == "1,234"
    assert count_text("?") == "?" and count_text(True) == "True"  # a manifest's oddities, as they are


# ---------------------------------------------------------------------------------------------- the command
def test_app_command_help_and_its_streamlit_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["app", "--help"])
    assert exit_info.value.code == 0
    assert "--predictions" in (help_text := capsys.readouterr().out) and "--root FOLDER" in help_text
    args = build_parser().parse_args(["app", "models/x", "--data", "cat.csv", "--port", "8600"])
    line = streamlit_command(args)
    assert line[1:5] == ["-m", "streamlit", "run", str(SCRIPT)]
    assert line[line.index("--server.port") + 1] == "8600" and line[line.index("--server.address") + 1] == "127.0.0.1"
    assert line[line.index("--") + 1 :] == [str(Path("models/x").resolve()), "--data", str(Path("cat.csv").resolve())]
    assert main(["app", str(tmp_path)]) == 2
    assert "not a prodcat model bundle" in capsys.readouterr().err


def test_app_command_confines_typed_paths_to_the_folders_given(tmp_path):
    parse = build_parser().parse_args
    data, other = tmp_path / "datasets" / "flipkart", tmp_path / "other"
    args = parse(["app", "m", "--data", str(data), "--root", str(other), "--root", str(tmp_path)])
    assert command.readable_roots(args) == [tmp_path]  # the others lie inside it
    line = streamlit_command(args)
    assert line[line.index("--") + 2 :] == ["--data", str(data), "--root", str(other), "--root", str(tmp_path)]
    assert command.readable_roots(parse(["app", "m"])) == [Path.cwd()]


def test_the_folders_allowed_are_listed_once_each(tmp_path):
    """A path refused listed a folder twice, '--predictions' lying inside a '--root' ('/tmp/x, /tmp/x/cv'), and
    the same folder twice when --data and --predictions share it: each is listed once, a folder inside another
    covered by it, in the order given."""
    parse = build_parser().parse_args
    data, cv, other = tmp_path / "data" / "cat.csv", tmp_path / "reports" / "cv" / "predictions.csv", tmp_path / "o"
    args = parse(["app", "m", "--data", str(data), "--predictions", str(cv), "--root", str(tmp_path / "reports")])
    assert command.readable_roots(args) == [tmp_path / "reports", data.parent]
    both = parse(["app", "m", "--data", str(data), "--predictions", str(data.parent / "p.csv"), "--root", str(other)])
    assert command.readable_roots(both) == [other, data.parent]
    with pytest.raises(views.PathRefused) as refused:
        views.readable_path("/etc/passwd", command.readable_roots(args))
    assert f"({tmp_path / 'reports'}, {data.parent})" in str(refused.value)


@pytest.fixture
def no_server(monkeypatch):
    """``prodcat app`` must stop before starting any web server."""
    monkeypatch.setattr(command.subprocess, "Popen", lambda *a, **k: pytest.fail("a web server was started"))


def test_app_command_refuses_a_damaged_bundle_before_starting(flipkart_bundle, tmp_path, capsys, no_server):
    damaged = bundle_copy(flipkart_bundle, tmp_path / "bundle")
    model = damaged / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # a copy cut short
    assert main(["app", str(damaged)]) == 2
    assert f"bundle {damaged}: {MODEL_FILE} was modified" in capsys.readouterr().err
    model.unlink()
    assert main(["app", str(damaged)]) == 2
    assert f"file {MODEL_FILE} is missing" in capsys.readouterr().err


def test_app_command_refuses_a_manifest_that_does_not_describe_its_model_before_starting(
    tiny_training, tmp_path, capsys, no_server
):
    """The manifest is not among the files hashed: `prodcat app` checked the hashes alone and started a server whose
    every page then said that the bundle does not load. It is refused at start now, in the one line `prodcat predict`
    and `prodcat serve` say for it, exit 2."""
    edited = bundle_copy(tiny_training.bundle, tmp_path / "bundle", labels=["Watches", "Toys", "Kitchen"])
    assert main(["app", str(edited), "--port", str(free_port())]) == 2
    out, err = capsys.readouterr()
    said = (
        f"error: bundle {edited}: its manifest's labels ['Watches', 'Toys', 'Kitchen'] are not its model's "
        "['Kitchen', 'Toys', 'Watches']; its manifest.json was edited or is another model's: refusing to load it "
        "(restore that file, or retrain)\n"
    )
    assert (out, err) == ("", said)
    tiny_training.unseen.to_csv(tmp_path / "products.csv", index=False)
    assert main(["predict", str(edited), str(tmp_path / "products.csv"), "--out", str(tmp_path / "preds.csv")]) == 2
    assert capsys.readouterr().err == said


class LoadsForever:
    """A model whose unpickling does not end: ``prodcat app`` caught while its child loads the bundle."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return time.sleep, (600,)


def session_processes(session: int) -> dict[int, str]:
    """The command lines of the live (not zombie) processes of ``session``, by pid, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # ended meanwhile
            state, _parent, _group, its_session = stat.read_text().rpartition(")")[2].split()[:4]
            if int(its_session) == session and state != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def maps(pid: int, name: str) -> bool:
    """Whether process ``pid`` has mapped a file whose path holds ``name`` (a library it imported)."""
    with contextlib.suppress(OSError):  # ended meanwhile
        return name in Path(f"/proc/{pid}/maps").read_text()
    return False


def catches_or_ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` has a SIGINT handler or ignores SIGINT (Python's own handler is installed early in its
    start, the default then ends it without a word), from /proc."""
    with contextlib.suppress(OSError):  # ended meanwhile
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return bool((int(status["SigCgt"], 16) | int(status["SigIgn"], 16)) & 1 << (signal.SIGINT - 1))
    return False


#: how long a test waits, at the most, for `prodcat app` or its children to reach a state (start, load, end): a
#: deadline, not a time measured; 60 s ran out once at load 16 on 2 cores, where starting the app and its bundle
#: loader took minutes, with nothing wrong
PROCESS_DEADLINE_S = 300


def app_in_its_own_session(bundle: Path) -> subprocess.Popen[bytes]:
    """`prodcat app` on ``bundle`` in a session of its own (its processes found by it, stopped together)."""
    return subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "app", str(bundle), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def bundle_loader(app: subprocess.Popen[bytes], ready: Callable[[int], bool]) -> int:
    """The pid of the child `prodcat app` spawned to load its bundle, once ``ready(pid)`` (PROCESS_DEADLINE_S at the
    most)."""
    deadline = time.monotonic() + PROCESS_DEADLINE_S
    while not (
        loaders := [pid for pid, line in session_processes(app.pid).items() if "spawn_main" in line and ready(pid)]
    ):
        if app.poll() is not None:
            pytest.fail(f"prodcat app ended (exit {app.returncode}), saying: {app.communicate()[1].decode()}")
        assert time.monotonic() < deadline, "no child loads the bundle"
        time.sleep(0.005)
    return loaders[0]


def loads_the_predictor(pid: int) -> bool:
    """Whether ``pid`` has mapped numpy: a bundle loader that imports the Predictor, long after `prodcat app` started
    it (and can stop it)."""
    return maps(pid, "numpy")


@pytest.mark.skipif(sys.platform != "linux", reason="reads the processes from /proc")
def test_app_command_stopped_while_its_child_loads_the_bundle_leaves_no_process(tmp_path):
    """The bundle is loaded in a child before the server starts, by a process pool's worker: `prodcat app` stopped
    meanwhile with SIGTERM (a service manager stops it alone) left that worker and its resource tracker waiting for
    good, the model in memory; the worker killed (the OOM killer) was a traceback of BrokenProcessPool. The child is
    stopped with `prodcat app` now (exit 143, as a shell says of a process it ended), and its end without an answer is
    said."""
    bundle = save_bundle(LoadsForever(), tmp_path / "m", config={}, labels=["a"])
    app = app_in_its_own_session(bundle)
    try:
        bundle_loader(app, loads_the_predictor)
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=PROCESS_DEADLINE_S) == 143
        deadline = time.monotonic() + 30  # the child and the resource tracker end as soon as they are told
        while (left := session_processes(app.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == {}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)

    app = app_in_its_own_session(bundle)
    try:
        os.kill(bundle_loader(app, loads_the_predictor), signal.SIGKILL)
        out, err = app.communicate(timeout=PROCESS_DEADLINE_S)
        assert app.returncode == 1 and out == b""
        assert err.decode().endswith(
            f"ChildProcessError: the process loading bundle {bundle} ended without an answer (exit code -9)\n"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the processes from /proc")
def test_a_ctrl_c_as_the_bundle_loader_starts_is_no_traceback_of_it(tmp_path):
    """The child loading the bundle ignores SIGINT (the terminal's Ctrl+C reaches it too; `prodcat app` stops it) from
    the moment it runs its target: a SIGINT in its start before, once its interpreter handled SIGINT, was its
    KeyboardInterrupt traceback, and its end (exit 1 when it reached it alone). It is blocked until then now: sent
    the SIGINT as soon as it handles one, the loader carries on, and Ctrl+C then stops `prodcat app` as ever, 130,
    with the one line of any command interrupted. Three times: the old loader's start gave a window of some 100 ms
    to this test's 5 ms polls."""
    bundle = save_bundle(LoadsForever(), tmp_path / "m", config={}, labels=["a"])
    for _ in range(3):
        app = app_in_its_own_session(bundle)
        try:
            loader = bundle_loader(app, catches_or_ignores_sigint)
            os.kill(loader, signal.SIGINT)
            assert bundle_loader(app, loads_the_predictor) == loader
            os.killpg(app.pid, signal.SIGINT)  # a terminal's Ctrl+C
            assert app.communicate(timeout=PROCESS_DEADLINE_S) == (b"", b"interrupted\n") and app.returncode == 130
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(app.pid, signal.SIGKILL)


def test_app_command_checks_the_port_before_saying_where_it_listens(flipkart_bundle, capsys, no_server):
    with pytest.raises(SystemExit) as exit_info:
        main(["app", str(flipkart_bundle), "--port", "99999"])
    assert exit_info.value.code == 2
    assert "argument --port: 99999 is not a TCP port (1-65535)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["app", str(flipkart_bundle), "--host", " "])  # an unset variable would listen on every interface
    assert exit_info.value.code == 2
    assert "argument --host: is blank: give an address (0.0.0.0 to listen on every interface)" in (
        capsys.readouterr().err
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", str(flipkart_bundle), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err == f"error: port {port} on 127.0.0.1 is in use: stop what listens there or pass another --port\n"
    )


@dataclasses.dataclass
class EndedServer:
    """In place of the web server ``prodcat app`` starts (``Popen``): one already ended, with ``returncode``."""

    returncode: int = 0

    def wait(self) -> int:
        return self.returncode


def test_app_command_says_an_ipv6_address_as_a_url_a_browser_opens(tiny_training, capsys, monkeypatch):
    monkeypatch.setattr(command, "startup_problem", lambda args: None)  # the machine may have no IPv6
    monkeypatch.setattr(command.subprocess, "Popen", lambda *a, **k: EndedServer())
    assert main(["app", str(tiny_training.bundle), "--host", "::1", "--port", "8502"]) == 0
    assert capsys.readouterr().out == "prodcat app on http://[::1]:8502 (Ctrl+C to stop)\n"
    assert command.app_url("127.0.0.1", 8501) == "http://127.0.0.1:8501"


@pytest.mark.parametrize(("returncode", "status"), [(-signal.SIGTERM, 143), (-signal.SIGKILL, 137), (0, 0), (1, 1)])
def test_app_command_exits_as_a_shell_says_of_a_web_server_ended_by_a_signal(
    tiny_training, monkeypatch, returncode, status
):
    """`prodcat app` exited with its web server's return code, which Popen says -N for a server ended by signal N:
    exit status 241 for SIGTERM, 247 for SIGKILL (the OOM killer). It is 128 + N now, as a shell says (and as
    `prodcat app` says of itself stopped during the bundle load); a server's own exit status is passed on."""
    monkeypatch.setattr(command, "startup_problem", lambda args: None)
    monkeypatch.setattr(command, "load_in_a_child", lambda model: None)
    monkeypatch.setattr(command.subprocess, "Popen", lambda *a, **k: EndedServer(returncode))
    assert main(["app", str(tiny_training.bundle)]) == status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: the model's libraries, which `prodcat app`'s own process (the web server's parent: the model loads in a child, and
#: in the server) has no use for
MODEL_LIBRARIES = ("numpy", "pandas", "sklearn", "scipy", "joblib", "onnxruntime", "torch")


def test_app_command_process_imports_none_of_the_models_libraries(tiny_training) -> None:
    """`prodcat app` checked the bundle's files against its manifest with prodcat.bundle's verify_bundle, which
    imports joblib and numpy: they stayed in its process for as long as the web server ran (54.5 MB against 39.6 MB,
    models/demo), as 27bac06 found of `prodcat serve --workers N`'s supervisor. None of them is imported by the time
    the server starts, the bundle checked and loaded (in a child): run in a process of its own."""
    launcher = f"""
import json, subprocess, sys
from prodcat.cli import main

class Server:
    def wait(self):
        print(json.dumps(sorted(set(sys.modules) & set({MODEL_LIBRARIES!r}))))
        return 0

subprocess.Popen = lambda command, **options: Server()
sys.exit(main(["app", {str(tiny_training.bundle)!r}, "--port", "{free_port()}"]))
"""
    run = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []


@contextlib.contextmanager
def running_app(*options: str) -> Iterator[tuple[subprocess.Popen[bytes], int, httpx.Response]]:
    """`prodcat app OPTIONS --port PORT` started in its own process group (a signal sent to it reaches it alone, and
    a failing test can stop it with its web server), once its health route answers (PROCESS_DEADLINE_S at the most):
    the process, the port and that first answer. Both are killed on the way out."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "app", *options, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None  # piped: what it said, should it stop before answering
        deadline = time.monotonic() + PROCESS_DEADLINE_S
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, f"the app did not answer within {PROCESS_DEADLINE_S} s"
                time.sleep(0.25)
        yield server, port, health
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=20)


def test_prodcat_app_serves_http(flipkart_bundle, flipkart_dir):
    with running_app(str(flipkart_bundle), "--data", str(flipkart_dir)) as (server, port, health):
        assert (health.status_code, health.text) == (200, "ok")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<title>Streamlit</title>" in page.text
        # a service manager stops `prodcat app` alone: the web server must go with it
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)


def test_a_sigint_sent_to_prodcat_app_alone_stops_its_web_server_too(tiny_training):
    """`kill -INT` on `prodcat app` (a SIGINT that, unlike a terminal's Ctrl+C, reaches it alone) left it waiting
    forever for the Streamlit server it started, which kept serving: the server is sent the SIGINT now, and both end,
    `prodcat app` with 130 as on Ctrl+C."""
    with running_app(str(tiny_training.bundle)) as (server, port, _):
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=PROCESS_DEADLINE_S) == 130
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)


def test_word_weights_table_lists_support_first_then_what_pulls_away():
    from prodcat.evaluate.explain import WordExplanation, WordWeight

    weights = {"tea": 0.3, "mug": 0.5, "the": 0.0, "sheet": -0.2, "bed": -0.4}
    words = WordExplanation([WordWeight(w, v, None, 1) for w, v in weights.items()], distinct_words=5)
    table = views.word_weights_table(words, k=2)
    assert list(table["word"]) == ["mug", "tea", "sheet", "bed"]
    assert list(views.word_weights_table(words)["word"]) == ["mug", "tea", "the", "sheet", "bed"]


def test_predict_page_explains_which_words_decided(app, flipkart_bundle):
    test = go_to(app(str(flipkart_bundle)), "Predict")
    test.text_input(key="predict_title").input("Titan Neo analog wrist watch for men, stainless steel strap")
    test.checkbox(key="predict_explain").check()
    test.button[0].click().run()
    assert not test.exception, [e.value for e in test.exception]
    assert metrics_of(test)["category"] == "Watches"
    words = next(d.value for d in test.dataframe if "word" in d.value.columns)
    assert words["word"].iat[0] == "watch" and words["weight"].iat[0] > 0.1  # removing it costs Watches most
    assert words["weight"].is_monotonic_decreasing
    assert [i.value for i in test.info if i.value.startswith("No heatmap:")]  # no photo given


def test_products_not_scored_neither_agree_nor_disagree_with_their_category(tiny_training, monkeypatch, tmp_path):
    """A product `prodcat predict` could not score (no category, its reason in `error`) counted as a disagreement:
    a CSV of two unscored products read '0.0%' agreement, one scored and right among them '50.0%'."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    header = "product_id,category,confidence,decision,top_k,modalities_used,error\n"
    unscored = "Kitchen-12,,,review,[],,model raised\nWatches-12,,,review,[],,model raised\n"
    csv = tmp_path / "preds.csv"
    csv.write_text(header + unscored)
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.text_input(key="predictions_path").input(str(csv)).run()
    assert metrics_of(test)["products"] == "2"
    assert metrics_of(test)["agree with the given category"] == "–"
    csv.write_text(header + unscored + "Toys-12,Toys,0.9,auto,[],text,\n")
    test.run()
    assert metrics_of(test)["agree with the given category"] == "100.0%"
    table = views.attach_catalogue(views.read_predictions(csv).table, tiny_training.unseen, level=None)
    assert views.compared_rows(table)["product_id"].tolist() == ["Toys-12"]


def test_a_cv_predictions_csv_shows_the_threshold_each_row_was_decided_at(tiny_training, monkeypatch, tmp_path):
    """Each fold of `prodcat cv` decides at its own model's threshold: without that column a row at 0.9934 'review'
    beside one at 0.9807 'auto' read as a contradiction."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    csv = tmp_path / "predictions.csv"
    csv.write_text(
        "product_id,category,predicted,confidence,decision,decision_threshold,modalities_used,fold\n"
        "Kitchen-12,Kitchen,Kitchen,0.9934,review,0.9951,text,0\nToys-12,Toys,Toys,0.9807,auto,0.9712,text,1\n"
    )
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.text_input(key="predictions_path").input(str(csv)).run()
    shown = predictions_table(test)
    order = list(shown.proto.column_order)
    assert order.index("decision_threshold") == order.index("decision") + 1
    assert shown.value["decision_threshold"].tolist() == ["0.9951", "0.9712"]  # as written, as every column read


def test_products_of_a_sample_not_scored_neither_agree_nor_disagree(tiny_training, monkeypatch, tmp_path):
    """A product of a predicted sample that could not be scored (here: no text for a text model) had the category
    "" rather than none, so it counted as a disagreement: 12 right of 12 scored read '92.3%', not '100.0%'."""
    blank = pd.DataFrame([("blank-1", "", "", None, "Kitchen")], columns=CANONICAL)
    catalogue = catalogue_csv(pd.concat([tiny_training.unseen, blank]), tmp_path / "unseen.csv")
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test = predict_a_sample(test, 13)
    assert issues_shown(test)["product_id"].tolist() == ["blank-1"]  # not scored
    assert metrics_of(test)["agree with the given category"] == "100.0%"
    assert views.confusion_table(predictions_table(test).value).to_numpy().sum() == 12


def test_a_photo_far_wider_than_high_is_previewed_not_a_traceback(tiny_training, monkeypatch):
    """A banner (1000x3 pixels) was previewed 256x1 pixels, which Streamlit shrank to 200 pixels wide and 0 high:
    'ValueError: height and width must be > 0' in a traceback on the page, no prediction."""
    banner = io.BytesIO()
    Image.new("RGB", (1000, 3), "red").save(banner, "PNG")
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.file_uploader(key="predict_photo").set_value(("banner.png", banner.getvalue(), "image/png"))
    test.button[0].click().run()
    assert not test.exception, [e.value for e in test.exception]
    assert len(test.get("image")) == 1  # the preview
    assert metrics_of(test)["category"] == "Kitchen"


def test_a_product_typed_on_the_predict_page_outlives_a_visit_to_another_page(tiny_training, monkeypatch):
    """Its title, description and specifications (up to 10,000 characters each) were emptied by a look at the
    Model page, as Streamlit forgets the widgets it did not draw."""
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    typed = {"predict_title": "ceramic coffee mug", "predict_description": "a mug", "predict_specifications": "Pack: 2"}
    test.text_input(key="predict_title").input(typed["predict_title"])
    test.text_area(key="predict_description").input(typed["predict_description"])
    test.text_area(key="predict_specifications").input(typed["predict_specifications"])
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen"
    test = go_to(go_to(test, "Model"), "Predict")
    assert not test.warning and not test.exception
    shown = {
        key: test.text_input(key=key).value if key == "predict_title" else test.text_area(key=key).value
        for key in typed
    }
    assert shown == typed
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen"


def test_how_a_prediction_is_asked_for_outlives_a_visit_to_another_page(tiny_training, monkeypatch):
    """The categories shown and the explanation asked for on the Predict page were reset by a look at another page,
    where the product typed there is kept: predicting it again showed 3 categories (5 at most) and no explanation."""
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.slider(key="top_k").set_value(2)
    test.checkbox(key="predict_explain").check()
    test = go_to(go_to(test.button[0].click().run(), "Model"), "Predict")
    test.button[0].click().run()
    [top] = [d.value for d in test.dataframe if "probability" in d.value.columns]
    assert len(top) == 2 and [s.value for s in test.subheader] == ["Why"]


def test_the_data_pages_filters_outlive_a_visit_to_another_page(tiny_training, monkeypatch, tmp_path):
    """The level, category, text, photo and page chosen on the Data page were reset by a look at another page, as
    Streamlit forgets the widgets it did not draw: coming back showed the whole catalogue at the model's level."""
    frame = pd.concat([tiny_training.trained, tiny_training.unseen])
    catalogue = catalogue_csv(frame.assign(category=frame["category"].map(TINY_PATHS)), tmp_path / "paths.csv")
    test = start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue))

    def chosen() -> tuple[object, ...]:
        widgets = (
            test.selectbox(key="data_level"),
            test.selectbox(key="data_category"),
            test.text_input(key="data_query"),
            test.radio(key="data_photo"),
            test.number_input(key="data_page"),
        )
        return *(widget.value for widget in widgets), test.dataframe[-1].value["product_id"].tolist()

    test.selectbox(key="data_level").set_value(1).run()
    test.selectbox(key="data_category").set_value("Home").run()
    test.number_input(key="data_page").set_value(2).run()
    paged = chosen()
    assert paged[:5] == (1, "Home", "", "any", 2) and len(paged[5]) == 32 - 20  # the second page of 32 products
    go_to(go_to(test, "Model"), "Data")
    assert chosen() == paged
    test.text_input(key="data_query").input("wooden").run()
    test.radio(key="data_photo").set_value("without").run()
    searched = chosen()
    assert searched[:5] == (1, "Home", "wooden", "without", 1) and len(searched[5]) == 16
    go_to(go_to(test, "Predict"), "Data")
    assert chosen() == searched


def test_the_data_pages_level_follows_a_bundle_of_another_level_replacing_the_model(tiny_levels, monkeypatch, tmp_path):
    """The bundle replaced on disk under a running app by one of another level (a model retrained on full paths in
    place of one at level 1): the Data page kept the old model's level selected until the user picked it again. It
    shows the new model's level; a level the user picked stays while the model's level does not change."""
    catalogue, bundles = tiny_levels
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles[1], bundle)
    test = start_app(monkeypatch, str(bundle), "--data", str(catalogue))
    assert test.selectbox(key="data_level").value == 1

    def replace_bundle(by: Path) -> None:
        shutil.rmtree(bundle)
        shutil.copytree(by, bundle, copy_function=shutil.copyfile)  # written now: a new modification stamp

    replace_bundle(bundles[None])
    test.run()
    assert test.selectbox(key="data_level").value == 2 and "categories (level 2)" in metrics_of(test)
    test.selectbox(key="data_level").set_value(1).run()
    replace_bundle(bundles[None])  # the same level: the level picked stays
    test.run()
    assert test.selectbox(key="data_level").value == 1
    test.selectbox(key="data_level").set_value(2).run()
    go_to(test, "Model")
    replace_bundle(bundles[1])  # replaced while another page is shown: followed on coming back
    go_to(go_to(test, "Model"), "Data")
    assert test.selectbox(key="data_level").value == 1


def test_an_uploaded_predictions_csv_outlives_a_visit_to_another_page(tiny_training, monkeypatch, tmp_path):
    """Streamlit empties a file uploader its page did not draw: coming back from the Data page showed nothing, where
    a typed path and a predicted sample are shown again. The upload is kept until closed or replaced."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    csv = "product_id,category,confidence,decision\nKitchen-12,Kitchen,0.9,auto\nToys-12,Kitchen,0.5,review\n"
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.file_uploader(key="predictions_upload").set_value(("mine.csv", csv.encode(), "text/csv")).run()
    assert metrics_of(test)["products"] == "2"
    test = go_to(go_to(test, "Data"), "Predictions")
    assert not test.exception and metrics_of(test)["products"] == "2"
    assert "Showing mine.csv, uploaded earlier." in [c.value for c in test.caption]
    test.button(key="forget_upload").click().run()
    assert "products" not in metrics_of(test)


def test_a_path_typed_while_an_upload_is_shown_is_said_not_to_be_read(tiny_training, monkeypatch, tmp_path):
    """The upload wins over a typed path: the page went on showing the uploaded file without a word, as if it were
    the one typed. It says which file it shows, and reads the typed one once the upload is removed."""
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "unseen.csv")
    (tmp_path / "typed.csv").write_text(THREE_PREDICTIONS_CSV)
    uploaded = "product_id,category,confidence,decision\nKitchen-12,Kitchen,0.9,auto\n"
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--data", str(catalogue)), "Predictions")
    test.file_uploader(key="predictions_upload").set_value(("mine.csv", uploaded.encode(), "text/csv")).run()
    test.text_input(key="predictions_path").set_value(str(tmp_path / "typed.csv")).run()
    assert metrics_of(test)["products"] == "1"
    said = f"Showing the uploaded mine.csv, not {tmp_path / 'typed.csv'}: remove the upload to read that file."
    assert [i.value for i in test.info] == [views.as_written(said)]
    test.file_uploader(key="predictions_upload").set_value(None).run()
    assert metrics_of(test)["products"] == "3" and not test.info


def test_the_predictions_pages_filters_outlive_a_visit_to_another_page(tiny_training, monkeypatch, tmp_path):
    """The decisions, categories and confidence range filtering the predictions, and the least confidence of the
    label-noise candidates, were reset by a look at another page: coming back showed every prediction."""
    test = predictions_page(tiny_training, monkeypatch, tmp_path, THREE_PREDICTIONS_CSV)
    widgets = {
        "filter_decision": test.multiselect,
        "filter_category": test.multiselect,
        "filter_confidence": test.slider,
        "noise_confidence": test.slider,
    }
    chosen = {"filter_decision": ["review"], "filter_category": ["Kitchen"], "filter_confidence": (0.4, 0.6)}
    chosen["noise_confidence"] = 0.2
    for key, value in chosen.items():
        widgets[key](key=key).set_value(value).run()

    def shown() -> tuple[list[str], list[str]]:
        """The products of the predictions table and those of the label-noise candidates."""
        return predictions_table(test).value["product_id"].tolist(), test.dataframe[-1].value["product_id"].tolist()

    assert shown() == (["Toys-12"], ["Toys-12"])  # the one product shown is a label-noise candidate at 0.2
    test = go_to(go_to(test, "Model"), "Predictions")
    assert {key: widget(key=key).value for key, widget in widgets.items()} == chosen
    assert shown() == (["Toys-12"], ["Toys-12"])


def test_a_model_that_auto_accepts_nothing_says_so_not_a_threshold_of_1():
    """Training sets the threshold just above 1 when no confidence reaches the target precision: the Predict page
    said 'Sent to review: confidence below the threshold 1.000.' beside a confidence of '100.0%', and the Model
    page showed a threshold of 1.000."""
    from prodcat.models.decision import precision_threshold

    nothing = precision_threshold(np.array([0.9996, 0.8]), np.array([False, True]), target_precision=0.95)
    assert nothing > 1 and f"{nothing:.3f}" == "1.000"
    assert views.decision_sentence("review", 0.9996, nothing) == (
        "Sent to review: this model auto-accepts nothing (at training, no confidence threshold reached its "
        "target precision)."
    )
    # a confidence of 1 is shown as such, not to the 16 decimals that would tell it from that threshold
    assert views.confidence_figures(1.0, nothing)[0] == "100.0%"
    assert views.confidence_figures(0.9996, nothing)[0] == "100.0%"
    # a numpy confidence (as a predictions table holds) reads as a float: its repr is 'np.float64(0.6199)'
    assert views.confidence_figures(np.float64(0.6199), 0.62) == ("61.9%", "0.620")
    assert views.decision_sentence("review", 0.5, 0.62) == "Sent to review: confidence below the threshold 0.620."
    assert views.decision_sentence("auto", 0.7, 0.62) == "Auto-accepted: confidence at or above the threshold 0.620."
    shown = views.decision_metrics({"decision": {"threshold": nothing, "automation_rate": 0.0}})
    assert shown["decision threshold"] == "none: accepts nothing" and shown["auto-accepted"] == "0.0%"
    assert views.decision_metrics({"decision": {"threshold": 0.62}})["decision threshold"] == "0.620"


def test_photo_paths_in_a_predictions_csv_are_not_read(tiny_training, monkeypatch, tmp_path, jpeg_bytes):
    """Typed paths are confined to --root, but an uploaded `prodcat cv`-like CSV with an `image` column naming a
    photo anywhere on the server had the app read it and show it among the label-noise candidates."""
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.jpg").write_bytes(jpeg_bytes())
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    csv = (
        "product_id,category,predicted,confidence,decision,image\n"
        f"Kitchen-12,Kitchen,Toys,0.99,auto,{private / 'secret.jpg'}\n"
    )
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle), "--root", str(allowed)), "Predictions")
    test.file_uploader(key="predictions_upload").set_value(("cv.csv", csv.encode(), "text/csv")).run()
    test.slider(key="noise_confidence").set_value(0.0).run()
    noise = test.dataframe[-1].value
    assert noise["product_id"].tolist() == ["Kitchen-12"] and noise["photo"].isna().all()
    assert "image" not in views.read_uploaded_predictions(csv.encode(), "cv.csv").table


@pytest.mark.parametrize(
    ("confidence", "threshold", "shown", "sentence"),
    [
        (0.9999999999999996, 1.0, "99.9%", "Sent to review: confidence below the threshold 1.000."),
        (0.6199, 0.62, "61.9%", "Sent to review: confidence below the threshold 0.620."),
        (0.6204, 0.62049, "62.04%", "Sent to review: confidence below the threshold 0.6205."),
        (0.58, 0.6, "58.0%", "Sent to review: confidence below the threshold 0.600."),  # not 57.9% for 0.5799999...
        (0.6205, 0.6205, "62.1%", "Auto-accepted: confidence at or above the threshold 0.621."),
        (1.0, 1.0, "100.0%", "Auto-accepted: confidence at or above the threshold 1.000."),
    ],
)
def test_the_confidence_never_reads_against_the_threshold_it_was_decided_by(
    tiny_training, monkeypatch, confidence, threshold, shown, sentence
):
    """A model whose threshold is 1.0 showed '100.0%' beside 'Sent to review: confidence below the threshold 1.000'
    for a confidence of 0.9999999999999996; so did a confidence rounding to the threshold, 0.6199 below 0.62."""
    predict_one = Predictor.predict_one

    def near_the_threshold(self, *args, **kwargs):
        decision = "auto" if confidence >= threshold else "review"
        return dataclasses.replace(predict_one(self, *args, **kwargs), confidence=confidence, decision=decision)

    monkeypatch.setattr(Predictor, "threshold", property(lambda self: threshold))
    monkeypatch.setattr(Predictor, "predict_one", near_the_threshold)
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.button[0].click().run()
    assert metrics_of(test)["confidence"] == shown
    assert [m.value for m in [*test.success, *test.warning]] == [sentence]


def test_a_photo_submitted_on_the_predict_page_outlives_a_visit_to_another_page(
    tiny_photo_bundle, monkeypatch, jpeg_bytes
):
    """The photo was lost by a look at another page, where the text typed is kept: predicting again used the text
    alone, silently (here, for a model reading photos only: no category). It is kept, shown as such, until removed
    (by its button, or from the uploader) or replaced."""
    test = go_to(start_app(monkeypatch, str(tiny_photo_bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.file_uploader(key="predict_photo").set_value(("mug.jpg", jpeg_bytes(colour="red"), "image/jpeg"))
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen" and not test.main.caption
    test = go_to(go_to(test, "Model"), "Predict")
    assert [c.value for c in test.main.caption] == ["Photo: mug.jpg, uploaded earlier, predicted with what is typed."]
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen" and metrics_of(test)["from"] == "image"
    assert len(test.get("image")) == 1  # its preview
    test.button(key="forget_photo").click().run()
    assert not test.main.caption
    test.button[0].click().run()
    assert "category" not in metrics_of(test) and test.warning[0].value.endswith("This model does not read text.")
    # replaced by another photo, then emptied from the uploader: the text alone is predicted, as shown
    test.file_uploader(key="predict_photo").set_value(("toy.jpg", jpeg_bytes(colour="green"), "image/jpeg"))
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Toys"
    test = go_to(go_to(test, "Data"), "Predict")
    assert [c.value for c in test.main.caption] == ["Photo: toy.jpg, uploaded earlier, predicted with what is typed."]
    test.file_uploader(key="predict_photo").set_value(("mug.jpg", jpeg_bytes(colour="red"), "image/jpeg"))
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Kitchen" and not test.main.caption
    test.file_uploader(key="predict_photo").set_value(None)
    test.button[0].click().run()
    assert "category" not in metrics_of(test) and not test.main.caption


def test_a_sample_of_a_catalogue_rewritten_or_a_model_replaced_since_is_dropped_saying_so(
    tiny_training, monkeypatch, tmp_path
):
    """A predicted sample was matched to its catalogue by path only: the catalogue rewritten in place (other products
    under its name), the old sample was still shown, its products 'not in the catalogue'; the bundle replaced (the app
    loads it again), the old model's predictions were shown as the new one's."""
    bundle = bundle_copy(tiny_training.bundle, tmp_path / "bundle")
    catalogue = catalogue_csv(tiny_training.unseen, tmp_path / "catalogue.csv")
    test = go_to(start_app(monkeypatch, str(bundle), "--data", str(catalogue)), "Predictions")
    assert metrics_of(predict_a_sample(test, 12))["products"] == "12" and not warnings_shown(test)

    def dropped_after_touching(*paths: Path) -> list[str]:
        for path in paths:  # a later modification time, whatever the file system's resolution
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 10**9))
        test.run()
        assert "products" not in metrics_of(test)
        return [w.value for w in test.warning]

    catalogue_csv(tiny_training.trained, catalogue)
    assert dropped_after_touching(catalogue) == [
        views.as_written(
            f"The sample predicted earlier is dropped: {catalogue} was rewritten since; predict one again."
        )
    ]
    test.button(key="predict_sample").click().run()
    assert set(predictions_table(test).value["product_id"]) <= set(tiny_training.trained["product_id"])
    assert dropped_after_touching(bundle / MODEL_FILE) == [
        "The sample predicted earlier is dropped: the model was replaced since; predict one again."
    ]
    test.button(key="predict_sample").click().run()
    assert metrics_of(test)["products"] == "12"
    assert dropped_after_touching(bundle / MODEL_FILE, catalogue)[0].endswith(
        "was rewritten and the model was replaced since; predict one again."
    )


def test_an_agreement_on_few_labelled_products_is_said_to_be_too_uncertain(tiny_training, monkeypatch, tmp_path):
    """The page showed the agreement of three labelled products (66.7%) as it shows that of thousands, with no word
    of caution: it now says that so few are too uncertain, below the 30 under which `prodcat evaluate` warns too."""
    test = predictions_page(tiny_training, monkeypatch, tmp_path, THREE_PREDICTIONS_CSV)
    assert metrics_of(test)["agree with the given category"] == "66.7%"
    assert [w.value for w in test.warning] == [
        "Only 3 labelled products were scored: an agreement measured on so few is too uncertain to rely on (each "
        "product moves it by 33.3 points); score at least 30 labelled products."
    ]
    test.multiselect(key="filter_decision").set_value(["review"]).run()  # said of the products the figure counts
    assert [w.value.split(":")[0] for w in test.warning] == ["Only 1 labelled product was scored"]
    assert [views.small_sample_caveat(n) is None for n in (0, 29, 30, 12_345)] == [True, False, True, True]


def test_predicted_categories_none_of_which_is_known_are_said_to_be_so(tiny_training, monkeypatch, tmp_path):
    """A CSV whose categories are neither the model's nor the catalogue's, at the same depth (another model's numeric
    codes), showed 0.0% agreement with no note."""
    test = predictions_page(
        tiny_training,
        monkeypatch,
        tmp_path,
        "product_id,category,confidence,decision\nKitchen-12,10,0.9,auto\nToys-12,2280,0.8,auto\n",
        name="codes.csv",
    )
    csv = tmp_path / "codes.csv"
    assert metrics_of(test)["agree with the given category"] == "0.0%"
    assert [i.value for i in test.info] == [
        views.other_model_note(pd.Series(["10"]), ["Kitchen"]),
        "None of the 2 predicted categories ('10', '2280') is a category of the model or a given one: none of these "
        "predictions can agree with a given category, whatever the products. Were they written in other codes "
        "(another model's, another catalogue's)?",
    ]
    csv.write_text(csv.read_text().replace(",2280,", ",Toys,"))  # one known: disagreements are real ones
    os.utime(csv, ns=(time.time_ns(), csv.stat().st_mtime_ns + 10**9))
    assert metrics_of(test.run())["agree with the given category"] == "50.0%" and not test.info
    table = views.normalise_predictions(
        pd.DataFrame({"product_id": ["1"], "category": ["Shoes"]}).assign(confidence=0.9, decision="auto")
    )
    assert views.unknown_predictions_note(table, ["Shoes", "Toys"]) is None  # another catalogue's, known
    assert views.unknown_predictions_note(table.assign(given="Shoes"), ["Toys"]) is None  # a cv table's own
    assert views.unknown_predictions_note(table.assign(predicted=None), ["Toys"]) is None  # nothing predicted


def test_predictions_none_of_whose_categories_is_the_models_are_not_taken_for_its_own(
    tiny_training, monkeypatch, tmp_path
):
    """A CSV of another model at the model's depth (its categories none of the model's) was taken for the model's own:
    the page warned that the model was trained on these products, and did not know their categories."""
    renamed = {"Kitchen": "Mugs", "Watches": "Clocks", "Toys": "Games"}
    frame = tiny_training.trained.assign(category=tiny_training.trained["category"].map(renamed))
    catalogue = catalogue_csv(frame, tmp_path / "renamed.csv")
    csv = tmp_path / "other.csv"
    csv.write_text("product_id,category,confidence,decision\nKitchen-0,Mugs,0.9,auto\nToys-0,Clocks,0.8,auto\n")
    arguments = (str(tiny_training.bundle), "--data", str(catalogue), "--predictions", str(csv))
    test = go_to(start_app(monkeypatch, *arguments), "Predictions")
    assert metrics_of(test)["agree with the given category"] == "50.0%" and not warnings_shown(test)
    assert [i.value for i in test.info] == [
        "None of these predicted categories is one of the model's: another model made them; what is said of the model "
        "(categories it does not know, products it was trained on) does not apply to them and is left out."
    ]
    csv.write_text(csv.read_text().replace(",Clocks,", ",Toys,"))  # one of the model's: taken for its own
    os.utime(csv, ns=(time.time_ns(), csv.stat().st_mtime_ns + 10**9))
    assert not test.run().info and test.warning


def test_the_label_noise_candidates_of_a_model_that_auto_accepts_nothing_are_shown(
    tiny_training, monkeypatch, tmp_path
):
    """Its threshold lies just above 1, the default least confidence of the candidates: the Predictions page stopped
    on 'The `value` 1.0000001 is greater than the `max_value` 1.0.' in a traceback, below the agreement."""
    monkeypatch.setattr(Predictor, "threshold", property(lambda self: 1.0000001))
    test = predictions_page(
        tiny_training,
        monkeypatch,
        tmp_path,
        "product_id,category,confidence,decision\nKitchen-12,Kitchen,0.9,review\nToys-12,Kitchen,1.0,review\n",
    )
    assert test.slider(key="noise_confidence").value == 1.0
    assert test.dataframe[-1].value["product_id"].tolist() == ["Toys-12"]


def test_the_categories_shown_are_cut_to_a_model_of_fewer_categories_loaded_since(tiny_levels, monkeypatch, tmp_path):
    """The number of categories shown on the Predict page is kept; the bundle replaced by a model of fewer categories
    (which the app loads again), the page stopped on 'The `value` 3 is greater than the `max_value` 2.'"""
    _, bundles = tiny_levels
    bundle = shutil.copytree(bundles[None], tmp_path / "bundle")  # 3 categories
    test = go_to(start_app(monkeypatch, str(bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug")
    test.slider(key="top_k").set_value(3)
    test.button[0].click().run()
    assert len(next(d.value for d in test.dataframe if "probability" in d.value.columns)) == 3
    shutil.rmtree(bundle)
    shutil.copytree(bundles[1], bundle)  # 2 categories
    test.run()
    assert not test.exception, [e.value for e in test.exception]
    assert test.slider(key="top_k").value == 2
    test.button[0].click().run()
    assert len(next(d.value for d in test.dataframe if "probability" in d.value.columns)) == 2


def test_the_number_of_label_noise_candidates_is_said_in_words(tiny_training, monkeypatch, tmp_path):
    """Above the candidates the page read '0 products; the 0 most confident with their photo.' and '1 products; the
    1 most confident ...'; and said they were shown with their photo when none had one (these have none)."""
    test = predictions_page(
        tiny_training,
        monkeypatch,
        tmp_path,
        "product_id,category,confidence,decision\n"
        "Kitchen-12,Kitchen,0.9,auto\nToys-12,Kitchen,0.95,auto\nToys-13,Watches,0.5,review\n",
    )

    def said(least_confidence: float) -> str:
        test.slider(key="noise_confidence").set_value(least_confidence).run()
        return test.main.caption[-1].value

    assert said(0.9) == "1 product; auto-accepted."
    assert said(0.5) == "2 products, most confident first; 1 of them auto-accepted."
    assert said(0.99) == "None: no labelled product is predicted as another category with at least this confidence."
    assert test.dataframe[-1].value.empty
    assert views.disagreements_caption(1, 50, photos=True) == "1 product, with its photo; left for review."
    assert (
        views.disagreements_caption(2, 50, photos=True, auto=2)
        == "2 products, most confident first, with their photo; all of them auto-accepted."
    )
    assert (
        views.disagreements_caption(60, 50, photos=True)
        == "60 products; the 50 most confident with their photo; none of them auto-accepted."
    )
    assert (
        views.disagreements_caption(60, 50, photos=False, auto=3)
        == "60 products; the 50 most confident listed; 3 of them auto-accepted."
    )


def test_the_label_noise_candidates_of_a_cv_table_hold_every_disagreement_its_folds_auto_accepted(
    tiny_training, monkeypatch, tmp_path
):
    """A `prodcat cv` predictions.csv, each fold deciding at its own threshold: by default the candidates started at
    the loaded model's threshold, so a disagreement a fold auto-accepted below it was not listed (on Flipkart's cv, 7
    listed where its report counts 8 auto-accepted errors). Now they start at the lowest confidence the table
    auto-accepted, and the caption says how many of them were auto-accepted, the report's count."""
    monkeypatch.setattr(Predictor, "threshold", property(lambda self: 0.9))
    test = predictions_page(
        tiny_training,
        monkeypatch,
        tmp_path,
        "product_id,category,predicted,confidence,decision,decision_threshold,fold\n"
        "Kitchen-12,Kitchen,Kitchen,0.7,auto,0.6,0\nToys-12,Toys,Kitchen,0.65,auto,0.6,0\n"
        "Watches-12,Watches,Toys,0.62,review,0.9,1\nToys-13,Toys,Toys,0.95,auto,0.9,1\n",
    )
    assert test.slider(key="noise_confidence").value == 0.65
    assert test.dataframe[-1].value["product_id"].tolist() == ["Toys-12"]
    assert test.main.caption[-1].value == "1 product; auto-accepted."
    table = views.normalise_predictions(pd.read_csv(tmp_path / "preds.csv"))
    assert views.least_confidence_auto_accepted(table, 0.5) == 0.5  # the model's threshold where it is lower
    assert views.least_confidence_auto_accepted(table.assign(decision="review"), 0.9) == 0.9
    assert views.least_confidence_auto_accepted(table.assign(decision="review"), 1.0000001) == 1.0


def test_a_cv_table_says_per_category_what_its_folds_auto_accepted_as_the_report_does(
    tiny_training, monkeypatch, tmp_path
):
    """The Predictions page of a cv (or evaluate) table showed the confusion, but not per category the share
    auto-accepted and the errors among them: the manager had to open report.html. Now the Model page's table is
    there, counted by the reports' per_class at the decisions the table holds (each fold's own threshold): at the
    model's threshold (0.9) Kitchen-12 (0.7) and Toys-12 (0.65) would have been left for review."""
    monkeypatch.setattr(Predictor, "threshold", property(lambda self: 0.9))
    csv = (
        "product_id,category,predicted,confidence,decision,decision_threshold,fold\n"
        "Kitchen-12,Kitchen,Kitchen,0.7,auto,0.6,0\nToys-12,Toys,Kitchen,0.65,auto,0.6,0\n"
        "Watches-12,Watches,Toys,0.62,review,0.9,1\nToys-13,Toys,Toys,0.95,auto,0.9,1\n"
    )
    test = predictions_page(tiny_training, monkeypatch, tmp_path, csv)
    shown = per_class_shown(test)
    percent, its_wrong, as_it_wrong = views.AUTOMATION_COLUMNS
    assert list(shown.columns) == ["precision", "recall", "f1", "support", percent, its_wrong, as_it_wrong]
    assert shown[[percent, its_wrong, as_it_wrong]].to_dict("index") == {
        "Watches": {percent: 0.0, its_wrong: "0 of 0", as_it_wrong: "0 of 0"},
        "Toys": {percent: 100.0, its_wrong: "1 of 2", as_it_wrong: "0 of 1"},
        "Kitchen": {percent: 100.0, its_wrong: "0 of 1", as_it_wrong: "1 of 2"},
    }
    assert shown["support"].to_dict() == {"Watches": 1, "Toys": 2, "Kitchen": 1}
    # the evaluation report's cells for the same products and decisions
    given, predicted = ["Kitchen", "Toys", "Watches", "Toys"], ["Kitchen", "Kitchen", "Toys", "Toys"]
    metrics = {"per_class": per_class(np.array(given), np.array(predicted), np.array([True, True, False, True]))}
    for row in per_class_rows(metrics):
        assert row[-1] == shown.loc[row[0], as_it_wrong] and f"({shown.loc[row[0], its_wrong]} as another)" in row[-2]
    assert [s.value for s in test.subheader][-3:] == [
        "Given (rows) against predicted (columns) category",
        "Per category",
        "Confident disagreements (label-noise candidates)",
    ]
    assert any("each fold's own threshold" in c.value for c in test.caption)


def test_the_per_category_table_counts_every_prediction_whatever_the_filters(tiny_training, monkeypatch, tmp_path):
    """Counted on the filtered rows, the table said what its caption denies, the evaluation report's figures: with
    "Predicted category = Kitchen" Kitchen's recall read 1.0 (the Kitchen product predicted Toys filtered out). Now
    it is counted on every prediction of the table, as the report is; the confusion follows the filters."""
    csv = (
        "product_id,category,predicted,confidence,decision\n"
        "Kitchen-12,Kitchen,Kitchen,0.95,auto\nKitchen-13,Kitchen,Toys,0.5,review\n"
        "Toys-12,Toys,Kitchen,0.92,auto\nToys-13,Toys,Toys,0.95,auto\n"
    )
    test = predictions_page(tiny_training, monkeypatch, tmp_path, csv)
    whole = per_class_shown(test)
    assert whole.loc["Kitchen", "recall"] == 0.5 and whole.loc["Kitchen", "support"] == 2
    test.multiselect(key="filter_category").set_value(["Kitchen"]).run()
    assert not test.exception and per_class_shown(test).loc["Kitchen", "recall"] == 0.5
    pd.testing.assert_frame_equal(per_class_shown(test), whole)
    confusion = next(d.value for d in test.dataframe if "Kitchen" in d.value.columns and "f1" not in d.value.columns)
    assert "Toys" not in confusion.columns  # the confusion, of the rows shown: predicted Kitchen only


def test_the_per_category_table_stays_when_the_filters_leave_no_labelled_product(tiny_training, monkeypatch, tmp_path):
    """Counted on the whole table (whatever the filters), the table still sat in the section shown only when the rows
    the filters keep hold a labelled product scored: 'Decision = review', here an unlabelled product alone, hid it.
    Now it stays, the same; the confusion and the label-noise candidates, of the rows shown, are not there."""
    csv = (
        "product_id,category,predicted,confidence,decision\n"
        "Kitchen-12,Kitchen,Kitchen,0.95,auto\nToys-12,Toys,Kitchen,0.92,auto\nNew-1,,Toys,0.5,review\n"
    )
    test = predictions_page(tiny_training, monkeypatch, tmp_path, csv)
    whole = per_class_shown(test)
    assert whole.loc["Kitchen", "precision"] == 0.5 and whole.loc["Toys", "support"] == 1
    test.multiselect(key="filter_decision").set_value(["review"]).run()
    assert not test.exception and metrics_of(test)["agree with the given category"] == "–"
    assert [s.value for s in test.subheader][-1:] == ["Per category"]
    assert "Given (rows) against predicted (columns) category" not in [s.value for s in test.subheader]
    pd.testing.assert_frame_equal(per_class_shown(test), whole)
    assert any("whatever the filters" in c.value for c in test.caption)
    # the confusion and the candidates follow the filters: with a labelled row shown again, they are back
    test.multiselect(key="filter_decision").set_value(["auto"]).run()
    assert [s.value for s in test.subheader][-3:] == [
        "Given (rows) against predicted (columns) category",
        "Per category",
        "Confident disagreements (label-noise candidates)",
    ]


def test_the_least_confidence_of_the_candidates_follows_the_table_shown_until_the_user_moves_it(
    tiny_training, monkeypatch, tmp_path
):
    """Set once a session, the default of the cv table shown first (0.65, a fold's) stayed on for the model's own
    predictions opened next, whose default is the model's threshold (0.9); a value the user chose stays."""
    monkeypatch.setattr(Predictor, "threshold", property(lambda self: 0.9))
    cv = "product_id,category,predicted,confidence,decision\nToys-12,Toys,Kitchen,0.65,auto\n"
    test = predictions_page(tiny_training, monkeypatch, tmp_path, cv, name="cv.csv")
    assert test.slider(key="noise_confidence").value == 0.65
    own = tmp_path / "own.csv"
    own.write_text("product_id,category,confidence,decision\nKitchen-12,Kitchen,0.95,auto\nToys-12,Kitchen,0.92,auto\n")
    test.text_input(key="predictions_path").set_value(str(own)).run()
    assert test.slider(key="noise_confidence").value == 0.9
    test.slider(key="noise_confidence").set_value(0.3).run()
    test.text_input(key="predictions_path").set_value(str(tmp_path / "cv.csv")).run()
    assert test.slider(key="noise_confidence").value == 0.3


def test_categories_in_the_explanation_are_shown_as_written_not_as_markdown(tiny_training, monkeypatch, tmp_path):
    """The caption of the explanation named the predicted category and its runner-up in Markdown: 'Gifts $5 to $10'
    was typeset as LaTeX, the dollars gone. The category predicted, above it, is a metric, whose value is Markdown too:
    'Watches *new*' read 'Watches new', in italics (seen in Chromium)."""
    written = {"Kitchen": "Gifts $5 to $10", "Watches": "Watches *new*", "Toys": "Toys"}
    catalogue = catalogue_csv(
        tiny_training.trained.assign(category=tiny_training.trained["category"].map(written)), tmp_path / "gifts.csv"
    )
    config = Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml"
    options = ["--config", str(config), "--modalities", "text"]
    assert main(["train", str(catalogue), *options, "--out", str(tmp_path / "m")]) == 0
    test = go_to(start_app(monkeypatch, str(tmp_path / "m")), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug 3")
    test.checkbox(key="predict_explain").check()
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Gifts \\$5 to \\$10"
    [caption] = [c.value for c in test.main.caption if c.value.startswith("A weight is")]
    assert "the probability of Gifts \\$5 to \\$10 drops" in caption, caption
    test.text_input(key="predict_title").input("analog wrist watch 3")
    test.button[0].click().run()
    assert metrics_of(test)["category"] == "Watches \\*new\\*"


def test_the_explanation_says_when_its_words_or_squares_are_negligible(tiny_training, monkeypatch):
    """prodcat explain's report and the API (its `negligible`, `largest_drop`) say when no word or square moves the
    probability by 0.01, their weights then ranking noise; the Predict page showed the same tiny weights, and a faint
    heatmap, as if they were what made the model choose. It says it now, in the report's words."""
    from prodcat.evaluate import explain as explaining

    faint = [True]  # the explanation of the model, its weights shrunk a thousandfold while this holds

    def explained(*args, **kwargs):
        explanation = real_explain(*args, **kwargs)
        if not faint[0]:
            return explanation
        words = explanation.words
        pixels = explaining.PixelExplanation(
            heatmap=np.full((4, 4), 0.002),
            reference_probability=0.9,
            largest_drop=0.004,
            largest_change=0.004,
            photo=Image.new("RGB", (64, 64), "white"),
        )
        shrunk = [dataclasses.replace(w, weight=w.weight / 1000) for w in words.words]
        return dataclasses.replace(explanation, words=dataclasses.replace(words, words=shrunk), pixels=pixels)

    real_explain = explaining.explain
    monkeypatch.setattr(explaining, "explain", explained)
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Predict")
    test.text_input(key="predict_title").input("ceramic coffee mug 3")
    test.checkbox(key="predict_explain").check()
    test.button[0].click().run()
    assert not test.exception, [e.value for e in test.exception]
    captions = [c.value for c in test.main.caption]
    assert "Word weights negligible: removing any one word moves the probability by less than 0.01." in captions
    assert (
        "Probability on the photo as decoded: 0.900; hiding one square lowers it by at most 0.0040: negligible "
        "(no square moves it by 0.01), the photo's regions hardly matter here." in captions
    ), captions
    # the model's own weights: 'mug' alone tells Kitchen here, no such note
    faint[0] = False
    test.text_input(key="predict_title").input("mug numbered 3")
    test.button[0].click().run()
    assert not test.exception, [e.value for e in test.exception]
    weights = next(d.value for d in test.dataframe if "word" in d.value.columns)
    assert weights.set_index("word").at["mug", "weight"] >= 0.01
    assert not [c.value for c in test.main.caption if c.value.startswith("Word weights")]


def test_a_metric_too_long_for_its_column_wraps_rather_than_being_cut(tiny_training, monkeypatch):
    """Streamlit cuts a metric's value to one line: the category predicted by a model of Rakuten's full paths read
    'Video Games & C…' at the head of the Predict page (seen in Chromium; the bars below name it in full). Every page
    now carries a style wrapping the values of metrics onto more lines, their text and its Markdown paragraph alike
    (checked in Chromium: 'Toys & Children > Toys' on two lines); AppTest draws no page, so this reads the style."""
    test = start_app(monkeypatch, str(tiny_training.bundle))
    for page in ("Data", "Model", "Predict", "Predictions"):
        styles = [html.proto.body for html in go_to(test, page).get("html")]
        assert [re.sub(r"\s+", " ", style) for style in styles] == [
            '<style>[data-testid="stMetricValue"] * {white-space: normal !important; overflow-wrap: anywhere}</style>'
        ], page


def test_a_model_of_one_head_is_not_said_to_fuse_its_heads(tiny_training, monkeypatch):
    """The Model page read 'fusion: late' for a model of one head, where training says 'one head, nothing to fuse'."""
    assert read_manifest(tiny_training.bundle)["heads"] == ["text_tfidf"]
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Model")
    assert test.table[0].value.loc["fusion", "value"] == "none: one head, nothing to fuse"
    assert views.model_overview({"heads": ["text_tfidf", "image_effnet"], "fusion": "early"})["fusion"] == "early"


def test_the_training_data_fingerprint_is_shown_whole(tiny_training, monkeypatch):
    """The Model page cut the training data's 64-character fingerprint at its table cell's edge: it could be neither
    read nor copied whole. It is shown whole, in a wrapped block whose button copies it."""
    fingerprint = read_manifest(tiny_training.bundle)["data_fingerprint"]
    assert len(fingerprint) == 64
    test = go_to(start_app(monkeypatch, str(tiny_training.bundle)), "Model")
    assert "training data fingerprint" not in test.table[0].value.index
    [block] = [code for code in test.code if code.value == fingerprint]
    assert block.proto.wrap_lines
    assert "Training data fingerprint" in [caption.value for caption in test.caption]

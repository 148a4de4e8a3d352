"""Robustness: each perturbation changes the input as it claims, and ``prodcat robustness`` scores them honestly."""

from __future__ import annotations

import html
import itertools
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import COLUMNS
from prodcat.cli import main
from prodcat.evaluate import robustness
from prodcat.evaluate.report import UNTOUCHED, plotted_runs
from prodcat.evaluate.robustness import (
    PERTURBATIONS,
    WORK_SIDE,
    Perturbation,
    RobustnessStudy,
    get_perturbations,
    text_and_photo,
)
from prodcat.files import write_json
from prodcat.image.decode import load_image
from prodcat.image.quality import image_quality
from prodcat.predict import Prediction


@pytest.fixture(scope="module")
def products(flipkart_dir: Path) -> pd.DataFrame:
    """40 labelled Flipkart products, every 20th row (all seven top-level categories), canonical columns."""
    frame = load_catalog(flipkart_dir).labelled.reset_index(drop=True)[list(COLUMNS)]
    return frame.iloc[::20].head(40).reset_index(drop=True)


def _robustness_command(
    bundle: Path, frame: pd.DataFrame, tmp_path: Path, *perturbations: str
) -> tuple[list[str], Path]:
    """The command of a robustness study of ``bundle`` on the products of ``frame`` (written to
    ``tmp_path/products.csv``) under ``perturbations``, and its report folder (``tmp_path/report``)."""
    data = tmp_path / "products.csv"
    frame.to_csv(data, index=False)
    report = tmp_path / "report"
    command = ["robustness", str(bundle), str(data), "--report", str(report)]
    return [*command, "--perturbations", *perturbations], report


def perturbed_photos(products: pd.DataFrame, name: str, rows: int = 3) -> list[tuple[Image.Image, Image.Image]]:
    """``(photo at the working scale, perturbed photo)`` for the first ``rows`` products."""
    frame = products.head(rows)
    out, affected = PERTURBATIONS[name].apply(frame, seed=0)
    assert affected.all()
    originals = [load_image(path, max_side=WORK_SIDE) for path in frame["image"]]
    return list(zip(originals, out["image"], strict=True))


def test_rotations_turn_the_photo(products: pd.DataFrame) -> None:
    for original, turned in perturbed_photos(products, "rotate_90"):
        assert turned.size == (original.height, original.width)
        assert np.array_equal(np.asarray(turned), np.rot90(np.asarray(original)))  # counter-clockwise
    for original, turned in perturbed_photos(products, "rotate_180"):
        assert np.array_equal(np.asarray(turned), np.asarray(original)[::-1, ::-1])
    for original, tilted in perturbed_photos(products, "rotate_15"):
        assert tilted.width > original.width and tilted.height > original.height  # the canvas grows, nothing cut
        assert np.asarray(tilted)[0, 0].tolist() == [255, 255, 255]  # corners filled white


def test_blur_lowers_the_laplacian_variance_more_with_a_larger_radius(products: pd.DataFrame) -> None:
    for (original, blur2), (_, blur8) in zip(
        perturbed_photos(products, "blur_2"), perturbed_photos(products, "blur_8"), strict=True
    ):
        blur8_detail, blur2_detail, original_detail = (image_quality(img)["blur"] for img in (blur8, blur2, original))
        assert blur8_detail < blur2_detail < original_detail / 2


def test_noise_has_the_given_sigma_and_is_seeded_per_product(products: pd.DataFrame) -> None:
    for sigma in (10, 25):
        for original, noisy in perturbed_photos(products, f"noise_{sigma}"):
            before, after = np.asarray(original, dtype=float), np.asarray(noisy, dtype=float)
            # far from 0 and 255, clipping does not shrink the noise
            unclipped = (before > 4 * sigma) & (before < 255 - 4 * sigma)
            assert unclipped.sum() > 5_000
            assert (after - before)[unclipped].std() == pytest.approx(sigma, rel=0.05)
            # near 0 and 255 clipped, not wrapped around (a pixel of 250 plus 20 read as 14)
            assert np.abs(after - before).max() <= 6 * sigma
    frame = products.head(2)
    first, _ = PERTURBATIONS["noise_25"].apply(frame, seed=0)
    again, _ = PERTURBATIONS["noise_25"].apply(frame.iloc[::-1], seed=0)  # another order, same draws per product
    other_seed, _ = PERTURBATIONS["noise_25"].apply(frame, seed=1)
    assert np.array_equal(np.asarray(first["image"][0]), np.asarray(again["image"].loc[0]))
    assert not np.array_equal(np.asarray(first["image"][0]), np.asarray(other_seed["image"][0]))
    assert frame["image"].map(type).eq(str).all()  # the input frame is left as it was


def test_jpeg_downscale_and_crop(products: pd.DataFrame) -> None:
    def change(name: str) -> float:
        return float(
            np.mean(
                [
                    np.abs(np.asarray(a, float) - np.asarray(b, float)).mean()
                    for a, b in perturbed_photos(products, name)
                ]
            )
        )

    assert 0 < change("jpeg_20") < change("jpeg_5")
    for original, small in perturbed_photos(products, "downscale_32"):
        assert max(small.size) == 32
        assert small.width / small.height == pytest.approx(original.width / original.height, rel=0.1)
    for original, cropped in perturbed_photos(products, "crop_0.5"):
        width, height = round(original.width * 0.5), round(original.height * 0.5)
        assert cropped.size == (width, height)
        # the centre: a corner of the same size (a shot off to one side) is not what the perturbation measures
        left, top = (original.width - width) // 2, (original.height - height) // 2
        assert np.array_equal(np.asarray(cropped), np.asarray(original)[top : top + height, left : left + width])


def test_missing_modalities_blank_the_right_fields(products: pd.DataFrame) -> None:
    frame = products.head(5).copy()
    frame.loc[0, "image"] = None  # a product without a photo is not "affected" by removing it
    frame.loc[1, "description"] = ""
    no_photo, affected = PERTURBATIONS["no_photo"].apply(frame)
    assert no_photo["image"].isna().all() and affected.tolist() == [False, True, True, True, True]
    assert no_photo["title"].equals(frame["title"])
    _, affected = PERTURBATIONS["no_description"].apply(frame)
    assert affected.tolist() == [True, False, True, True, True]
    photo_only, affected = PERTURBATIONS["no_text"].apply(frame)
    assert (photo_only[["title", "description"]] == "").all().all() and affected.all()
    assert photo_only["image"].equals(frame["image"])
    title_only, _ = PERTURBATIONS["title_only"].apply(frame)
    assert title_only["title"].equals(frame["title"]) and title_only["image"].isna().all()
    assert (title_only["description"] == "").all()
    assert frame.loc[2, "image"] is not None  # the input frame is left as it was


def test_removing_a_text_of_markup_alone_affects_no_product(products: pd.DataFrame) -> None:
    """A description of markup or punctuation alone (6 of Rakuten's are '<br />') is no text the model reads, as
    for has_text: removing it changed nothing the model reads, yet counted the product as affected."""
    frame = products.head(4).copy()
    frame["description"] = ["<br />", "&nbsp; ...", "Cotton towel", "   "]
    _, affected = PERTURBATIONS["no_description"].apply(frame)
    assert affected.tolist() == [False, False, True, False]


def test_perturbations_are_chosen_by_name_or_family() -> None:
    assert [p.name for p in get_perturbations(["rotate", "no_photo"])] == [
        "rotate_15",
        "rotate_90",
        "rotate_180",
        "no_photo",
    ]
    with pytest.raises(ValueError, match=r"unknown perturbation 'rotate_45'.*rotate_90"):
        get_perturbations(["rotate_45"])


def test_robustness_command_reproduces_evaluate_and_writes_its_report(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "products.parquet"
    products.to_parquet(data, index=False)
    assert main(["evaluate", str(flipkart_bundle), str(data), "--report", str(tmp_path / "evaluate")]) == 0
    report = tmp_path / "robustness"
    args = ["robustness", str(flipkart_bundle), str(data), "--report", str(report)]
    assert main([*args, "--perturbations", "rotate_90", "no_photo", "no_text"]) == 0
    printed = capsys.readouterr().out
    assert "no_photo" in printed  # the table is printed
    assert {"robustness.json", "robustness.png", "report.html"} <= {p.name for p in report.iterdir()}

    evaluated = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    clean, rotated, no_photo, no_text = json.loads((report / "robustness.json").read_text())
    for key in ("n", "accuracy", "f1_weighted", "f1_macro"):
        assert clean[key] == pytest.approx(evaluated[key], abs=1e-9)
    assert clean["decision"] == pytest.approx(evaluated["decision"])
    assert clean["modalities_used"] == {"text,image": len(products)}

    assert rotated["n_affected"] == len(products) and rotated["modalities_used"] == {"text,image": len(products)}
    assert no_photo["modalities_used"] == {"text": len(products)}  # the Predictor saw no photo
    assert no_text["modalities_used"] == {"image": len(products)}
    for record in (rotated, no_photo, no_text):
        change = record["change_vs_clean"]["accuracy"]
        assert change["difference"] == pytest.approx(record["accuracy"] - clean["accuracy"])
        assert change["low"] <= change["difference"] <= change["high"]
        assert record["n_flipped"] == round(record["flipped_share_of_affected"] * record["n_affected"])
    # photo only is a real loss on Flipkart, whose titles name the product
    assert no_text["accuracy"] < clean["accuracy"] and no_text["n_flipped"] > 0

    assert main([*args, "--base", "missing"]) == 2
    assert "not the family 'missing'" in capsys.readouterr().err

    # the text and photo section: the clean run's products and decisions, split by whether text and photo agree
    section = clean["text_and_photo"]
    groups = [section[name] for name in ("agree", "disagree")]
    assert section["n_both"] == section["disagreement"]["n"] == len(products)
    assert section["disagreement"]["count"] == groups[1]["accuracy"]["n"]
    assert sum(group["accuracy"]["n"] for group in groups) == len(products)
    assert sum(group["accuracy"]["count"] for group in groups) == round(clean["accuracy"] * len(products))
    assert sum(group["auto_precision"]["n"] for group in groups) == clean["decision"]["n_auto"]
    assert "<h2>Text and photo</h2>" in (report / "report.html").read_text()
    disagreement = section["disagreement"]
    said = f"Text alone and photo alone disagree on {disagreement['count']} of the {len(products)} products read "
    assert said in printed


def test_text_and_photo_counts_the_disagreements_and_the_full_predictions_in_each_group() -> None:
    """Among the products read from both, the share whose text-only and photo-only predictions differ, and the
    accuracy and auto precision of the full prediction in each group, with Wilson intervals; a product read from
    its text alone is in neither group."""
    truth = np.array(["A", "A", "B", "B", "B", "A"], dtype=object)
    clean = pd.DataFrame(
        {
            "category": ["A", "A", "B", "A", "A", "A"],
            "confidence": [0.99, 0.5, 0.95, 0.97, 0.4, 0.99],
            "modalities_used": ["text,image"] * 5 + ["text"],
        }
    )
    text_only = np.array(["A", "A", "B", "A", "A", "A"], dtype=object)
    photo_only = np.array(["A", "A", "A", "B", "A", "B"], dtype=object)
    section = text_and_photo(truth, clean, text_only, photo_only, threshold=0.9)
    assert section["n_both"] == 5
    disagree = section["disagreement"]
    assert (disagree["count"], disagree["n"], disagree["share"]) == (2, 5, 0.4)
    assert disagree["low"] == pytest.approx(0.1176, abs=1e-4) and disagree["high"] == pytest.approx(0.7693, abs=1e-4)
    # agree: products 0, 1, 4 (2 right; 0 auto-accepted and right); disagree: 2, 3 (1 right; both auto-accepted)
    assert {key: section["agree"]["accuracy"][key] for key in ("count", "n")} == {"count": 2, "n": 3}
    assert {key: section["agree"]["auto_precision"][key] for key in ("count", "n")} == {"count": 1, "n": 1}
    assert {key: section["disagree"]["accuracy"][key] for key in ("count", "n")} == {"count": 1, "n": 2}
    assert section["disagree"]["auto_precision"]["share"] == 0.5
    # none disagrees: no share to give, not a zero
    assert text_and_photo(truth, clean, text_only, text_only, 0.9)["disagree"]["accuracy"] == {
        "n": 0,
        "count": 0,
        "share": None,
        "low": None,
        "high": None,
    }


def test_a_severity_means_the_same_on_a_small_photo_as_on_a_large_one() -> None:
    """Photos are brought to the working scale, enlarged too: a blur of 4 px is the same share of a 64 px photo
    (fashion's are 60x80) as of a 512 px one, and every perturbed photo is at that scale."""
    squares = np.kron((np.indices((8, 8)).sum(axis=0) % 2) * 255, np.ones((64, 64))).astype(np.uint8)
    large = Image.fromarray(squares).convert("RGB")  # 512 px, squares of 64 px
    small = large.resize((64, 64), Image.Resampling.NEAREST)  # the same squares, of 8 px
    frame = pd.DataFrame({"product_id": ["large", "small"], "image": [large, small]})
    blurred, affected = PERTURBATIONS["blur_4"].apply(frame)
    assert affected.all()
    on_large, on_small = (np.asarray(photo, dtype=float) for photo in blurred["image"])
    assert on_small.shape == on_large.shape == (WORK_SIDE, WORK_SIDE, 3)
    # the enlarged photo's edges are a little softer (Lanczos): 4 grey levels apart on average, against 94 when
    # the small photo is blurred at its own size (8 times as strong a blur), then enlarged
    assert np.abs(on_small - on_large).mean() < 10
    for name in ("downscale_512", "rotate_90", "noise_10", "jpeg_20"):
        (photo,) = PERTURBATIONS[name].apply(frame.tail(1))[0]["image"]
        assert max(photo.size) == WORK_SIDE, name


class ConstantPredictor:
    """Predicts ``Watches`` for every product, and records the chunks it is given."""

    threshold = 0.5
    manifest: ClassVar[dict] = {"modalities": ["text", "image"]}

    def __init__(self) -> None:
        self.chunks: list[pd.DataFrame] = []

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
        self.chunks.append(frame)
        top = [{"category": "Watches", "probability": 0.9}]
        return [Prediction(str(i), "Watches", 0.9, "auto", top, ["text", "image"]) for i in frame["product_id"]]


def study_records(
    predictor: object,
    frame: pd.DataFrame,
    truth: np.ndarray,
    perturbations: list[Perturbation],
    base: Perturbation | None = None,
) -> list[dict[str, object]]:
    """The clean record, then one per perturbation, of a :class:`RobustnessStudy` of these arguments."""
    study = RobustnessStudy(predictor, frame, truth, base=base)
    return [study.clean_record(), *(study.run(perturbation) for perturbation in perturbations)]


def test_the_base_perturbation_is_applied_chunk_by_chunk(
    products: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--base with a photo perturbation decodes one chunk of photos at a time, not the whole catalogue."""
    monkeypatch.setattr(robustness, "CHUNK_SIZE", 4)
    sizes: list[int] = []
    real_apply = Perturbation.apply

    def recorded_apply(self: Perturbation, frame: pd.DataFrame, *args: object) -> tuple[pd.DataFrame, np.ndarray]:
        sizes.append(len(frame))
        return real_apply(self, frame, *args)

    monkeypatch.setattr(Perturbation, "apply", recorded_apply)
    frame = products.head(10)
    predictor = ConstantPredictor()
    base, blur = PERTURBATIONS["rotate_15"], PERTURBATIONS["blur_2"]
    clean, blurred = study_records(predictor, frame, np.full(10, "Watches"), [blur], base=base)
    # the clean run: the base on each chunk (4, 4, 2); the blurred one: the base, then the blur, on each chunk
    assert sizes == [4, 4, 2, 4, 4, 4, 4, 2, 2]
    assert clean["base"] == blurred["base"] == "rotate_15" and blurred["n_affected"] == 10
    first_clean = predictor.chunks[0]["image"].iat[0]
    assert first_clean.width > WORK_SIDE and np.asarray(first_clean)[0, 0].tolist() == [255, 255, 255]  # rotated


def test_a_perturbation_that_touches_no_product_is_not_a_measured_zero(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rotating the photos of products without one changes nothing to measure: n/a, and no bar in the figure;
    removing the text of products without photo leaves the model nothing to read: said."""
    no_photos = products.head(3).assign(image=None)
    args, report = _robustness_command(flipkart_bundle, no_photos, tmp_path, "rotate_15", "no_text")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert UNTOUCHED in next(line for line in printed.splitlines() if line.strip().startswith("rotate_15"))
    warning = "no_text: the model could score none of the 3 products (nothing left it can read)"
    assert f"warning: {warning}" in printed
    clean, rotated, no_text = json.loads((report / "robustness.json").read_text())
    assert rotated["n_affected"] == 0 and rotated["change_vs_clean"] is None
    assert rotated["flipped_share_of_affected"] is None
    assert no_text["modalities_used"] == {"none": 3} and no_text["change_vs_clean"]["accuracy"]["difference"] < 0
    assert plotted_runs([clean, rotated, no_text]) == [no_text]
    page = (report / "report.html").read_text()
    assert UNTOUCHED in page and warning in page and "1 perturbation(s) that touched no product left out" in page


def test_robustness_scores_the_products_the_model_can_read_with_or_without_a_sample(
    flipkart_bundle: Path,
    products: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Products with nothing the model reads are left out of every run, sampled or not, and said so."""
    frame = products.head(14).copy()
    frame.loc[[0, 1], ["title", "description", "image"]] = None  # neither text nor photo
    frame.loc[2, "category"] = "Toys"  # a category the model does not know: warned of
    data = tmp_path / "products.csv"
    frame.to_csv(data, index=False)
    left_out = "2 of the 14 labelled products have none of the modalities the model reads (text or image): left out"
    for sample, scored in ((None, 12), (8, 8)):
        report = tmp_path / f"report-{sample}"
        args = ["robustness", str(flipkart_bundle), str(data), "--report", str(report), "--perturbations", "no_photo"]
        assert main([*args, *(["--sample", str(sample)] if sample else [])]) == 0
        printed = capsys.readouterr().out
        clean, _ = json.loads((report / "robustness.json").read_text())
        assert clean["n"] == scored and clean["modalities_used"] == {"text,image": scored}
        assert f"warning: {left_out}" in printed and left_out in (report / "report.html").read_text()
        assert "warning: only" in printed  # fewer than 30 products
        if sample is None:
            assert "1 of 12 labelled products have a category the model does not know (1 category: 'Toys'" in printed


def test_robustness_of_a_catalogue_whose_category_column_was_not_found_says_so(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table naming its categories 'label' was read unlabelled and refused as having 'no labelled products to
    evaluate against', never naming the column that was not found."""
    data = tmp_path / "heldout.csv"
    tiny_training.unseen.rename(columns={"category": "label"}).to_csv(data, index=False)
    args = ["robustness", str(tiny_training.bundle), str(data), "--report", str(tmp_path / "report")]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: none of the 12 products read has a category: if a column holds them, name it with --category-column"
    )


def test_robustness_counts_the_scored_products_the_model_was_trained_on(
    tiny_training, tiny_old_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Of the products scored (a sample of the catalogue, with --sample), those the model was trained on are
    counted; a bundle recording no product fingerprints still says so of a sample of its training catalogue, and
    of other products that it cannot tell."""
    more = tmp_path / "more.csv"
    pd.concat([tiny_training.trained, tiny_training.unseen]).to_csv(more, index=False)
    trained = tmp_path / "trained.csv"
    tiny_training.trained.to_csv(trained, index=False)
    in_sample = re.escape("warning: these are the very products the model was trained on: every figure is in-sample")
    partly = r"warning: {} of {} products evaluated \({}%\) were in the model's training data: figures on them are"
    for bundle, data, sample, said in (
        (tiny_training.bundle, more, None, partly.format(36, 48, r"75\.0")),
        (tiny_training.bundle, more, 24, partly.format(r"[1-9]\d*", 24, r"[\d.]+")),  # of the 24 drawn, not 36
        (tiny_training.bundle, trained, 10, in_sample),
        (tiny_old_bundle, trained, 10, in_sample),
        (tiny_old_bundle, more, None, None),
    ):
        report = tmp_path / f"report-{bundle.parent.name}-{data.stem}-{sample}"
        args = ["robustness", str(bundle), str(data), "--report", str(report), "--perturbations", "title_only"]
        assert main([*args, *(["--sample", str(sample)] if sample else [])]) == 0
        printed = capsys.readouterr().out
        if said is None:
            assert not re.search(f"{in_sample}|training data", printed)
            assert "warning: the model's bundle does not record which products it was trained on" in printed
        else:
            assert len(re.findall(f"{in_sample}|training data", printed)) == 1 and re.search(said, printed)


def test_perturbations_of_what_the_model_does_not_read_are_not_run(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], jpeg_bytes
) -> None:
    """On a text-only model a photo perturbation counted its products as affected, with a change of +0.000 and
    no flip: robustness to rotation of a model that never sees the photo. It is left out, and said so."""
    unseen = tiny_training.unseen.copy()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes())
    data = tmp_path / "with-photos.csv"
    unseen.assign(image=str(photo)).to_csv(data, index=False)
    report = tmp_path / "report"
    args = ["robustness", str(tiny_training.bundle), str(data), "--report", str(report), "--perturbations"]
    assert main([*args, "rotate_90", "no_photo", "no_description"]) == 0
    said = "not run: rotate_90, no_photo, which change only what the model does not read (it reads text)"
    assert f"warning: {said}" in capsys.readouterr().out
    assert [r["name"] for r in json.loads((report / "robustness.json").read_text())] == ["clean", "no_description"]
    assert said in (report / "report.html").read_text()

    assert main([*args, "rotate"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: not run: rotate_15, rotate_90, rotate_180, which change only what the model does not read "
        "(it reads text): nothing left to measure"
    )


@pytest.mark.parametrize("command", ["robustness", "explore"])
def test_a_negative_seed_is_refused_before_any_work(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--seed -1 ended in numpy's or scikit-learn's traceback ('expected non-negative integer') after the work."""
    model = [str(tmp_path)] if command == "robustness" else []
    with pytest.raises(SystemExit) as refused:
        main([command, *model, str(tmp_path / "products.csv"), "--report", str(tmp_path / "r"), "--seed", "-1"])
    assert refused.value.code == 2
    assert "argument --seed: a seed is from 0 to 4294967295, got -1" in capsys.readouterr().err


def test_a_product_counts_as_affected_only_when_what_the_model_reads_changed(
    tiny_training, tmp_path: Path, jpeg_bytes
) -> None:
    """title_only on a text-only model counted the products with a photo but no description as affected, though
    the model saw them unchanged: the share flipped was diluted by them."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes())
    frame = tiny_training.unseen.assign(image=str(photo))
    frame.loc[::2, "description"] = None  # 6 of the 12 have a title and a photo only
    # ... half of them labelled wrong; the 6 others are named by their description alone, the title telling nothing:
    # the figures of the affected products must not be those of all 12
    frame.loc[::4, "category"] = frame.loc[::4, "category"].map(
        {"Kitchen": "Watches", "Watches": "Toys", "Toys": "Kitchen"}
    )
    frame.loc[1::2, "title"] = "item"
    args, report = _robustness_command(tiny_training.bundle, frame, tmp_path, "title_only", "no_description")
    assert main(args) == 0
    clean, title_only, no_description = json.loads((report / "robustness.json").read_text())
    assert title_only["n_affected"] == no_description["n_affected"] == 6
    assert title_only["modality"] == "text"
    assert (clean["accuracy"], title_only["accuracy"]) == (0.75, 0.25)
    assert title_only["affected_accuracy"] == {"clean": 1.0, "perturbed": 0.0}
    assert (title_only["n_flipped"], title_only["flipped_share_of_affected"]) == (6, 1.0)


def test_a_bundle_whose_stored_config_current_checks_refuse_is_still_measured(tiny_training, tmp_path: Path) -> None:
    """The products to score were drawn with the bundle's whole stored config validated again: a bundle trained
    before a check was added (here a head's language no longer accepted) ended in pydantic's traceback, though
    the sample needs only the model's level, its modalities and the seed."""
    import shutil

    from prodcat.bundle import MANIFEST

    bundle = Path(shutil.copytree(tiny_training.bundle, tmp_path / "old"))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["config"]["heads"][-1]["languages"] = ["english"]  # refused since: not a detected language
    (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    args, report = _robustness_command(bundle, tiny_training.unseen, tmp_path, "no_description")
    assert main([*args, "--sample", "6"]) == 0
    clean, no_description = json.loads((report / "robustness.json").read_text())
    assert clean["n"] == no_description["n"] == 6 and clean["accuracy"] == 1.0


def test_a_base_that_removes_all_or_nothing_the_model_reads_is_refused(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a text-only model, --base no_text left nothing to score: every run, the clean one included, was a table
    of zeros (exit 0); --base no_photo changed nothing the model reads, and the runs were the plain ones under a
    title saying 'every run with no_photo'. Both are refused before the catalogue is read."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    report = tmp_path / "report"
    args = ["robustness", str(tiny_training.bundle), str(data), "--report", str(report), "--perturbations"]
    for base, said in (
        ("no_text", "error: --base no_text removes all the model reads (it reads text): no product could be scored"),
        ("no_photo", "error: --base no_photo changes nothing the model reads (it reads text): leave it out"),
    ):
        assert main([*args, "no_description", "--base", base]) == 2
        assert capsys.readouterr().err.strip() == said
        assert not report.exists()
    assert main([*args, "no_description", "--base", "title_only"]) == 0  # the description only: the title is left
    # the console said 'Robustness on 12 labelled products:' above a 'clean' row that had no description
    assert "Robustness on 12 labelled products, every run with title_only:" in capsys.readouterr().out
    clean, _ = json.loads((report / "robustness.json").read_text())
    assert clean["base"] == "title_only" and clean["modalities_used"] == {"text": 12}


def test_the_mean_confidence_is_that_of_the_products_the_model_answered(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A product the model could not score counted as a confidence of 0: a run scoring none printed a mean
    confidence of 0.000 (a model sure of nothing, where it answered nothing), and half unscored halved it."""
    from prodcat.predict import Predictor

    frame = tiny_training.unseen.copy()
    frame.loc[::2, "title"] = ""  # 6 of the 12 with a description alone: no_description leaves them nothing
    args, report = _robustness_command(tiny_training.bundle, frame, tmp_path, "no_description", "no_text")
    assert main(args) == 0
    _, no_description, no_text = json.loads((report / "robustness.json").read_text())
    titled = frame.iloc[1::2].assign(description="")
    expected = np.mean([p.confidence for p in Predictor.load(tiny_training.bundle).predict(titled)])
    assert no_description["modalities_used"] == {"text": 6, "none": 6}
    assert no_description["mean_confidence"] == pytest.approx(expected)
    assert no_text["mean_confidence"] is None and no_text["ece"] is None
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("no_text")]
    assert row[-4:] == ["–", "0.0%", "–", "100.0%"]  # confidence, auto, auto precision, flipped


def test_a_run_that_leaves_some_products_unreadable_says_so() -> None:
    """no_text on 30 products, 4 of them without photo, fell 0.133 in accuracy without a word that those 4 could not
    be scored at all: it read as a model 13 points worse from the photo alone. Only a run scoring none was said."""
    from prodcat.evaluate.robustness_command import unscored_runs_warnings

    records = [
        {"name": "clean", "n": 30, "modalities_used": {"text,image": 26, "text": 4}},
        {"name": "no_text", "n": 30, "modalities_used": {"image": 26, "none": 4}},
        {"name": "title_only", "n": 3, "modalities_used": {"none": 3}},
    ]
    assert unscored_runs_warnings(records) == [
        "no_text: the model could score 26 of the 30 products; the 4 others (nothing left it can read) count as wrong",
        "title_only: the model could score none of the 3 products (nothing left it can read): every one counts as "
        "wrong",
    ]


def test_the_report_says_what_each_perturbation_does_and_in_what_unit(products: pd.DataFrame, tmp_path: Path) -> None:
    """The report's table named the perturbations only, noise_25 or crop_0.5 or jpeg_5, which say neither sigma on
    what scale, nor what 0.5 of the photo is kept, nor that 5 is a JPEG quality; the descriptions beside them in
    robustness.json were not clearer ('centre 0.5 kept', 'JPEG re-compressed at 5')."""
    from prodcat.evaluate.report import write_robustness_report

    chosen = [PERTURBATIONS[name] for name in ("noise_25", "crop_0.5", "jpeg_5", "downscale_64")]
    frame = products.head(2)
    records = study_records(ConstantPredictor(), frame, np.full(2, "Watches"), chosen)
    page = (write_robustness_report(records, tmp_path, "robustness") / "report.html").read_text()
    rows = [re.findall(r"<td>(.*?)</td>", row)[:2] for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    assert [row for row in rows if row] == [
        ["clean", "as in the catalogue"],
        ["noise_25", "Gaussian noise, sigma 25 (pixel values 0-255)"],
        ["crop_0.5", "centre 50% of each side kept"],
        ["jpeg_5", "JPEG re-compressed at quality 5 of 100"],
        ["downscale_64", "photo shrunk to 64 px on its longest side"],
    ]


def test_the_control_row_says_it_is_the_resampling_not_a_shrinking(products: pd.DataFrame, tmp_path: Path) -> None:
    """downscale_512's row read 'photo shrunk to 512 px on its longest side', on photos it enlarges (fashion's 60x80)
    as on those it shrinks, and nothing in the report said it is the control: the resampling every photo row starts
    with (on 180 held-out Flipkart products, photo path alone, it flipped 1 of them, accuracy -0.006)."""
    from prodcat.evaluate.report import write_robustness_report

    control = PERTURBATIONS["downscale_512"]
    small = pd.DataFrame({"product_id": ["small"], "image": [Image.new("RGB", (60, 80), "red")]})
    assert control.apply(small)[0]["image"].iloc[0].size == (384, WORK_SIDE)  # enlarged, not shrunk
    records = study_records(ConstantPredictor(), products.head(2), np.full(2, "Watches"), [control])
    page = (write_robustness_report(records, tmp_path, "robustness") / "report.html").read_text()
    rows = [re.findall(r"<td>(.*?)</td>", row)[:2] for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    assert ["downscale_512", "control: the photo brought to 512 px alone, as before every photo perturbation"] in rows


def test_the_report_says_what_its_confidence_and_auto_columns_are(products: pd.DataFrame, tmp_path: Path) -> None:
    """The table's "confidence", "auto" and "auto precision" columns were not said: a mean or a share, at what
    threshold, precision of what."""
    from prodcat.evaluate.report import write_robustness_report

    records = study_records(ConstantPredictor(), products.head(2), np.full(2, "Watches"), [])
    page = " ".join((write_robustness_report(records, tmp_path, "robustness") / "report.html").read_text().split())
    assert (
        '"confidence" is the mean calibrated confidence of the products the model answered, "auto" the share it '
        'auto-accepts (confidence at least the bundle\'s decision threshold, 0.500) and "auto precision" the '
        "accuracy among those." in page
    )


def test_products_none_of_which_has_what_the_model_reads_are_refused_in_one_line(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], jpeg_bytes
) -> None:
    """An image model on a catalogue without photos (here a text model on photos without text) left no product to
    score, and the first run ended in pandas' traceback 'ValueError: No objects to concatenate'."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes())
    data, report = tmp_path / "photos-only.csv", tmp_path / "report"
    tiny_training.unseen.assign(title="", description="", image=str(photo)).to_csv(data, index=False)
    assert main(["robustness", str(tiny_training.bundle), str(data), "--report", str(report)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: none of the 12 labelled products has one of the modalities the model reads (text): nothing to measure"
    )
    assert not report.exists()


def test_a_change_of_zero_is_drawn_in_the_figure(products: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    """A perturbation that changed no prediction (0 within [0, 0]) drew no bar and no whisker: its row of the figure
    was blank, as if missing. Each change is now a dot, on the zero line for those."""
    from matplotlib.figure import Figure

    from prodcat.evaluate import report

    drawn: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, *args, **kwargs: drawn.append(figure))
    chosen = [PERTURBATIONS["rotate_15"], PERTURBATIONS["blur_2"]]
    records = study_records(ConstantPredictor(), products.head(2), np.full(2, "Watches"), chosen)
    report.plot_robustness(records[0], records[1:], tmp_path / "robustness.png")
    left = drawn[0].axes[0]
    (dots,) = [line for line in left.lines if line.get_marker() == "o"]
    assert dots.get_xdata().tolist() == [0.0, 0.0] and dots.get_ydata().tolist() == [0, 1]


def test_the_figure_of_runs_on_a_base_names_it(products: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    """robustness.png was titled 'Robustness on 2 products' under --base too: shown alone, the changes of the photo
    path (--base no_text) read as those of the whole model. It names the base, as the console and the page do."""
    from matplotlib.figure import Figure

    from prodcat.evaluate import report

    drawn: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, *args, **kwargs: drawn.append(figure))
    truth, blur = np.full(2, "Watches"), [PERTURBATIONS["blur_2"]]
    for base in (PERTURBATIONS["no_text"], None):
        records = study_records(ConstantPredictor(), products.head(2), truth, blur, base=base)
        report.plot_robustness(records[0], records[1:], tmp_path / "robustness.png")
    assert [figure.get_suptitle() for figure in drawn] == [
        "Robustness on 2 products, every run with no_text",
        "Robustness on 2 products",
    ]


def corrupt_photos(products: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``products`` each with a photo file that begins as a JPEG and decodes to nothing."""
    paths = []
    for i in range(len(products)):
        paths.append(folder / f"corrupt-{i}.jpg")
        paths[-1].write_bytes(b"\xff\xd8\xff\xe0 not a photo " * 4)
    return products.assign(image=[str(path) for path in paths])


def test_a_photo_model_on_photos_none_of_which_decodes_is_refused_before_any_work(
    products: pd.DataFrame, tmp_path: Path
) -> None:
    """An image model on a catalogue whose photos all fail to decode ran to the end, 0.000 in every row: refused,
    naming how many photos were tried and the first failure; one photo that decodes is enough to measure."""
    from prodcat.evaluate.robustness_command import undecoded_photos_said

    frame = corrupt_photos(products.head(5), tmp_path)
    chosen = get_perturbations(["rotate_90", "no_photo"])
    refusal, warning = undecoded_photos_said(frame, ["image"], None, chosen)
    assert warning is None and refusal == (
        f"none of the 5 photos of the products scored decodes (the first: product {frame['product_id'][0]} "
        f"({frame['image'][0]}), image: corrupt JPEG header (Truncated File Read)), and the model reads photos "
        "only: nothing to measure"
    )
    frame.loc[4, "image"] = products["image"][4]
    assert undecoded_photos_said(frame, ["image"], None, chosen) == (None, None)


def test_a_text_and_photo_model_on_photos_none_of_which_decodes_says_its_photo_runs_changed_nothing(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text carries the model, but no_photo counted every product as affected, +0.000 and nothing flipped: read
    as robustness to losing a photo the model never had. No product is affected, and a warning says why; with the
    text removed by --base the model is left nothing and the run is refused."""
    data = tmp_path / "corrupt.csv"
    corrupt_photos(products.head(6), tmp_path).to_csv(data, index=False)
    report, refused = tmp_path / "report", tmp_path / "refused"
    args = ["robustness", str(flipkart_bundle), str(data), "--perturbations"]
    assert main([*args, "rotate_90", "no_photo", "title_only", "--report", str(report)]) == 0
    warning = (
        "none of the 6 photos of the products scored decodes (the first: product {}): the model read the text alone "
        "in every run; the photo perturbations (rotate_90, no_photo) changed nothing it reads"
    )
    printed = capsys.readouterr().out
    assert re.search(f"warning: {re.escape(warning).replace(re.escape('{}'), '.*')}\n", printed)
    clean, rotated, no_photo, title_only = json.loads((report / "robustness.json").read_text())
    assert clean["modalities_used"] == {"text": 6}
    assert rotated["n_affected"] == no_photo["n_affected"] == 0 and no_photo["change_vs_clean"] is None
    assert title_only["n_affected"] == 6  # its description removed
    assert UNTOUCHED in next(line for line in printed.splitlines() if line.strip().startswith("no_photo"))

    assert main([*args, "rotate_90", "--base", "no_text", "--report", str(refused)]) == 2
    assert capsys.readouterr().err.strip().endswith("--base no_text leaves the model photos only: nothing to measure")
    assert not refused.exists()


def test_runs_that_remove_what_the_base_left_or_removed_are_not_run_under_it(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under --base no_text, no_photo and title_only left the model nothing to read: rows of accuracy 0.000 and a Δ
    with an interval, in the table, the JSON and the console; no_description changed only the text the base had
    removed. They are not run, and a warning names them, in the console and the page."""
    args, report = _robustness_command(
        flipkart_bundle, products.head(8), tmp_path, "rotate_90", "no_photo", "no_description", "title_only"
    )
    assert main([*args, "--base", "no_text"]) == 0
    printed = capsys.readouterr().out
    warning = (
        "not run: no_description, which change only what the model does not read once --base no_text is applied (it "
        "reads image); no_photo, title_only, which with --base no_text leave the model nothing to read"
    )
    assert f"warning: {warning}" in printed
    assert [record["name"] for record in json.loads((report / "robustness.json").read_text())] == [
        "clean",
        "rotate_90",
    ]
    rows = [line.split()[0] for line in printed.splitlines() if line.startswith("  ")]
    assert rows == ["perturbation", "clean", "rotate_90"]
    assert html.escape(warning) in (report / "report.html").read_text()

    (alone := tmp_path / "alone").mkdir()
    only_emptied, refused = _robustness_command(flipkart_bundle, products.head(8), alone, "no_photo")
    assert main([*only_emptied, "--base", "no_text"]) == 2
    assert "no_photo, which with --base no_text leave the model nothing to read" in capsys.readouterr().err
    assert not refused.exists()


def test_photos_that_do_not_decode_among_others_are_warned_of_as_evaluate_warns_of_them(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """evaluate, predict, train and cv name the photos a model reading photos could not use, with why; robustness
    said nothing of them unless none of the photos decoded, their products scored from their text alone."""
    frame = products.head(6).copy()
    frame.loc[[1, 4], "image"] = corrupt_photos(frame.loc[[1, 4]], tmp_path)["image"]
    command, _ = _robustness_command(flipkart_bundle, frame, tmp_path, "no_text")
    with caplog.at_level(logging.WARNING, logger="prodcat"):
        assert main(command) == 0
    warned = [record.getMessage() for record in caplog.records if record.name == "prodcat"]
    assert "2 photo(s) not used (their products were read without them):" in warned
    for row in (1, 4):
        not_used = f"(product {frame['product_id'][row]}), image: photo {frame['image'][row]} not used: corrupt JPEG"
        assert any(not_used in message for message in warned), not_used


def _study(tiny_training, tmp_path: Path, *perturbations: str) -> tuple[list[str], Path]:
    """The command of a robustness study of the tiny model on its unseen products under ``perturbations``, and its
    report folder."""
    return _robustness_command(tiny_training.bundle, tiny_training.unseen, tmp_path, *perturbations)


def _rows_reported(report: Path) -> list[tuple[str, bool]]:
    """Each row of the report's robustness.json: its run's name and whether it was taken up from an earlier run."""
    records = json.loads((report / "robustness.json").read_text())
    return [(record["name"], record.get("from_earlier_run", False)) for record in records]


#: the message of the error :func:`_stop_runs` raises
STOPPED = "stopped by the test"


def _stop_runs(patch: pytest.MonkeyPatch, at: set[int], stop: type[BaseException] = KeyboardInterrupt) -> None:
    """Make the runs numbered ``at`` (from 1, the clean run's included, across commands) raise ``stop(STOPPED)``."""
    real_predict = robustness.predict_perturbed
    runs = itertools.count(1)

    def stopped(*args: object, **kwargs: object) -> tuple[pd.DataFrame, np.ndarray]:
        if next(runs) in at:
            raise stop(STOPPED)
        return real_predict(*args, **kwargs)

    patch.setattr(robustness, "predict_perturbed", stopped)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_run_stopped_midway_keeps_the_rows_measured_and_a_re_run_takes_them_up(
    stop: type[BaseException],
    tiny_training,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C (or a crash) in the middle of a study kept nothing: the report was written once, at the end. It is now
    written again after each run, and says it is incomplete; Ctrl-C ends in one line saying what was kept (exit 130),
    and the same command measures only the runs left, saying which rows an earlier run measured. Another seed
    measures everything again."""
    from prodcat.evaluate import report as report_module

    args, report = _study(tiny_training, tmp_path, "no_description", "title_only", "no_text")
    with monkeypatch.context() as patch:
        _stop_runs(patch, at={3}, stop=stop)
        if stop is KeyboardInterrupt:
            assert main(args) == 130
        else:
            with pytest.raises(RuntimeError, match=f"^{STOPPED}$"):
                main(args)
    kept = f"2 of 4 rows (clean, no_description) kept in {report}; run the same command to measure the others"
    said = "interrupted: " if stop is KeyboardInterrupt else "error: the runs stopped on the error below; "
    assert capsys.readouterr().err.strip().splitlines()[-1] == said + kept
    assert [r["name"] for r in json.loads((report / "robustness.json").read_text())] == ["clean", "no_description"]
    page = " ".join((report / "report.html").read_text().split())
    assert "incomplete: 2 of 4 rows measured, not yet title_only, no_text" in page
    assert not [path.name for path in report.iterdir() if path.name.endswith(".tmp")]  # no half-written file

    other_seed = tmp_path / "other-seed"
    shutil.copytree(report, other_seed)
    assert main([*args[:4], str(other_seed), *args[5:], "--seed", "1"]) == 0
    assert not any(r.get("from_earlier_run") for r in json.loads((other_seed / "robustness.json").read_text()))

    # a re-run stopped as it writes its next row keeps the earlier run's rows too: they are written with the clean one
    real_write = report_module.write_robustness_report
    writes: list[object] = []

    def stopped_at_the_second_write(*args: object, **kwargs: object) -> Path:
        writes.append(args[0])
        if len(writes) == 2:
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(report_module, "write_robustness_report", stopped_at_the_second_write)
        assert main(args) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"interrupted: {kept}"

    assert main(args) == 0
    printed = capsys.readouterr().out
    assert _rows_reported(report) == [
        ("clean", False),
        ("no_description", True),
        ("title_only", False),
        ("no_text", False),
    ]
    assert "warning: no_description: measured by an earlier run of this command that did not finish" in printed
    assert "incomplete" not in (report / "report.html").read_text()
    files = [".robustness.lock", "report.html", "robustness.json", "robustness.png"]
    assert sorted(path.name for path in report.iterdir()) == files and (report / ".robustness.lock").read_text() == ""
    assert _records_of_a_run_not_stopped(args, tmp_path / "fresh") == _records_as_if_not_stopped(report)


def test_the_refusal_of_a_photo_model_whose_photo_files_cannot_be_read_names_them(make_products) -> None:
    """An image model on labelled products whose photo files are all missing was refused as 'none of the 2 labelled
    products has one of the modalities the model reads (image)', with no word of the photo files the catalogue
    named: how many could not be read, and the first, end it now (those of unlabelled products are not counted)."""
    from prodcat.catalog.schema import Catalog, RowIssue
    from prodcat.evaluate.robustness_command import photo_files_unread

    issues = [
        RowIssue(2, "image", "photo file 'a.jpg' not found", "p0"),
        RowIssue(3, "image", "photo file 'b.jpg' not found", "p1"),
        RowIssue(4, "image", "photo file 'c.jpg' not found", "unlabelled"),
    ]
    catalog = Catalog(make_products(["a", "b"], ["Toys", "Toys"]), issues=issues, lines=[2, 3])
    assert photo_files_unread(catalog) == (
        " (2 photo file(s) named could not be read; the first: row 2 (product p0), image: photo file 'a.jpg' not found)"
    )
    assert photo_files_unread(Catalog(catalog.frame, lines=[2, 3])) == ""


def _records_as_if_not_stopped(report: Path) -> list[dict[str, object]]:
    """The records of the report's robustness.json as a run not stopped writes them: without ``from_earlier_run``."""
    records = json.loads((report / "robustness.json").read_text())
    return [{key: value for key, value in record.items() if key != "from_earlier_run"} for record in records]


def _records_of_a_run_not_stopped(args: list[str], report: Path) -> list[dict[str, object]]:
    """The records of the robustness command ``args`` run whole with its report in the new folder ``report``."""
    assert main([*args[:4], str(report), *args[5:]]) == 0
    return _records_as_if_not_stopped(report)


def _text_and_photo_study(
    bundle: Path, products: pd.DataFrame, tmp_path: Path, *perturbations: str
) -> tuple[list[str], Path]:
    """The command of a study of ``bundle`` on 6 of the ``products`` under ``perturbations`` (no_photo, no_text and
    rotate_90 if none), and its report folder."""
    runs = perturbations or ("no_photo", "no_text", "rotate_90")
    return _robustness_command(bundle, products.head(6), tmp_path, *runs)


@pytest.mark.parametrize(
    ("stop", "taken_up"),
    [(3, ["no_photo"]), (4, ["no_photo", "no_text"])],
    ids=["between-no_photo-and-no_text", "after-no_text"],
)
def test_a_re_run_after_a_stop_between_or_after_the_single_modality_runs_has_the_uninterrupted_text_and_photo_section(
    stop: int,
    taken_up: list[str],
    flipkart_bundle: Path,
    products: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The section is made from the predictions of no_photo and no_text, which a report's rows do not hold: a run
    stopped between the two and run again ended with no section at all, a shorter report than that of a run not
    stopped. The resume state keeps those predictions now: the re-run's report is the uninterrupted one's, section
    and all."""
    args, report = _text_and_photo_study(flipkart_bundle, products, tmp_path)
    with monkeypatch.context() as patch:
        _stop_runs(patch, {stop})  # clean, no_photo, then no_text (3) or rotate_90 (4) stopped
        assert main(args) == 130
    assert main(args) == 0
    runs = ["no_photo", "no_text", "rotate_90"]
    assert _rows_reported(report) == [("clean", False), *((name, name in taken_up) for name in runs)]
    not_stopped = _records_of_a_run_not_stopped(args, tmp_path / "not-stopped")
    assert not_stopped[0]["text_and_photo"]["n_both"] == 6
    assert _records_as_if_not_stopped(report) == not_stopped
    assert "<h2>Text and photo</h2>" in (report / "report.html").read_text()


def test_a_no_photo_row_whose_predictions_were_not_kept_is_measured_again_for_the_text_and_photo_section(
    flipkart_bundle: Path, products: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk as the resume file is written after no_photo's row leaves the row without its predictions: the
    re-run measures no_photo again rather than take up a row it could make no text and photo section with."""
    from prodcat.evaluate import robustness_command
    from prodcat.evaluate.report import ROBUSTNESS_RESUME

    args, report = _text_and_photo_study(flipkart_bundle, products, tmp_path)
    real_write = robustness_command.write_json

    def resume_not_written_after_no_photo(path: Path, value: dict[str, dict[str, object]]) -> None:
        if path.name == ROBUSTNESS_RESUME and "no_photo" in value.get("single_modality", {}):
            raise OSError(28, "No space left on device")
        real_write(path, value)

    with monkeypatch.context() as patch:
        patch.setattr(robustness_command, "write_json", resume_not_written_after_no_photo)
        _stop_runs(patch, {3})  # no_text
        assert main(args) == 130
    assert [r["name"] for r in json.loads((report / "robustness.json").read_text())] == ["clean", "no_photo"]
    assert main(args) == 0
    assert not any(taken for _, taken in _rows_reported(report))
    assert _records_as_if_not_stopped(report) == _records_of_a_run_not_stopped(args, tmp_path / "not-stopped")


@pytest.mark.parametrize(
    ("again", "has_section"),
    [(["rotate_90"], False), (["no_photo", "rotate_90"], False), (["no_text", "no_photo"], True)],
)
def test_a_re_run_of_other_perturbations_has_a_text_and_photo_section_only_with_both_its_runs(
    again: list[str],
    has_section: bool,
    flipkart_bundle: Path,
    products: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stopped run of no_photo, no_text and rotate_90 run again under other --perturbations copied its text and
    photo section into a report without the rows it was made from (--perturbations rotate_90: no no_photo or no_text
    row). The section is made from the runs of this report only: there when both are in it, as in a run not stopped."""
    args, report = _text_and_photo_study(flipkart_bundle, products, tmp_path)
    with monkeypatch.context() as patch:
        _stop_runs(patch, {4})  # rotate_90, once no_photo and no_text are measured
        assert main(args) == 130
    assert "text_and_photo" in json.loads((report / "robustness.json").read_text())[0]
    args_again, _ = _text_and_photo_study(flipkart_bundle, products, tmp_path, *again)
    assert main(args_again) == 0
    assert _rows_reported(report) == [("clean", False), *((name, name != "rotate_90") for name in again)]
    assert ("text_and_photo" in json.loads((report / "robustness.json").read_text())[0]) is has_section
    assert ("<h2>Text and photo</h2>" in (report / "report.html").read_text()) is has_section
    assert _records_as_if_not_stopped(report) == _records_of_a_run_not_stopped(args_again, tmp_path / "not-stopped")


def test_an_unfinished_report_replaced_by_another_runs_rows_is_not_taken_up_as_its_own(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of another seed, in the folder of an unfinished report, whose report.html could not be written (a full
    disk) wrote its rows to robustness.json beside the earlier run's robustness.resume.json, left in place: the
    earlier command run again took those rows, measured with another seed, as its own. That file is removed as soon
    as the run is found to be another."""
    from prodcat.evaluate import report as report_module

    args, report = _study(tiny_training, tmp_path, "no_description", "title_only")
    with monkeypatch.context() as patch:
        _stop_runs(patch, at={3})  # the second perturbation's
        assert main(args) == 130

    def page_not_written(records: list[dict[str, object]], folder: Path, *args: object, **kwargs: object) -> Path:
        write_json(Path(folder) / "robustness.json", records)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(report_module, "write_robustness_report", page_not_written)
        assert main([*args, "--seed", "1"]) == 2
    other_seed = json.loads((report / "robustness.json").read_text())
    assert [r["name"] for r in other_seed] == ["clean", "no_description", "title_only"]
    capsys.readouterr()

    assert main(args) == 0
    assert not any(r.get("from_earlier_run") for r in json.loads((report / "robustness.json").read_text()))
    assert "measured by an earlier run" not in capsys.readouterr().out


def test_ctrl_c_before_a_re_run_writes_anything_says_the_unfinished_report_is_left_as_it_was(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the clean run of a re-run said 'no row was written to DIR: nothing kept', while the earlier
    run's unfinished report was still there, and its rows taken up by the next run of the same command."""
    args, report = _study(tiny_training, tmp_path, "no_description", "title_only")
    with monkeypatch.context() as patch:
        _stop_runs(patch, at={3, 4})  # the first command's title_only, the second one's clean run
        assert main(args) == main(args) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted: no row of this run was written to {report}, whose unfinished report is left as it was (run "
        "again, the command that wrote it takes up its rows)"
    )
    assert main(args) == 0
    assert _rows_reported(report) == [
        ("clean", False),
        ("no_description", True),
        ("title_only", False),
    ]


def test_a_second_run_on_the_report_folder_of_a_running_study_is_refused_before_any_work(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs started at once on one --report mixed their writes: the second took the rows the first had written as
    those of an unfinished earlier run, and wrote its own among them. The second is now refused, exit 2, in one line
    naming the first's pid, before it predicts anything; the first's report is left to it."""
    args, report = _study(tiny_training, tmp_path, "no_description", "title_only")
    real_predict = robustness.predict_perturbed
    runs = itertools.count(1)
    #: the second run's exit code and what it said, the first's robustness.json before and after it
    second: list[tuple[int, str, bytes, bytes]] = []

    def predict_while_another_run_starts(*predict_args: object, **kwargs: object) -> tuple[pd.DataFrame, np.ndarray]:
        if next(runs) == 3:  # the first run's title_only: its clean and no_description rows are written
            capsys.readouterr()
            before = (report / "robustness.json").read_bytes()
            code = main(args)
            second.append((code, capsys.readouterr().err, before, (report / "robustness.json").read_bytes()))
        return real_predict(*predict_args, **kwargs)

    monkeypatch.setattr(robustness, "predict_perturbed", predict_while_another_run_starts)
    assert main(args) == 0
    [(code, said, before, after)] = second
    assert code == 2 and before == after
    assert said == (
        f"error: another prodcat robustness (pid {os.getpid()}) is writing the report in {report} (it holds "
        f"{report / '.robustness.lock'}): wait for it to finish, or use another --report\n"
    )
    assert next(runs) == 4  # the second run predicted nothing
    assert _rows_reported(report) == [
        ("clean", False),
        ("no_description", False),
        ("title_only", False),
    ]
    files = [".robustness.lock", "report.html", "robustness.json", "robustness.png"]
    assert sorted(path.name for path in report.iterdir()) == files and (report / ".robustness.lock").read_text() == ""


def test_a_re_run_after_a_change_to_the_perturbation_code_measures_every_row_again(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows of an unfinished report were taken up by a re-run of the same command whatever prodcat's code then was:
    its version, 0.1.0, did not change with it, so a fix to a perturbation between the two runs left the rows measured
    before it in the report, marked as measured by the same code. The code that makes the rows is now in the key."""
    args, report = _study(tiny_training, tmp_path, "no_description", "title_only")
    with monkeypatch.context() as patch:
        _stop_runs(patch, at={3})  # title_only
        assert main(args) == 130
    edited = tmp_path / "robustness.py"
    edited.write_text(Path(robustness.__file__).read_text(encoding="utf-8") + "\nWORK_SIDE = 256\n", encoding="utf-8")
    monkeypatch.setattr(robustness, "__file__", str(edited))
    capsys.readouterr()

    assert main(args) == 0
    assert _rows_reported(report) == [
        ("clean", False),
        ("no_description", False),
        ("title_only", False),
    ]
    assert "measured by an earlier run" not in capsys.readouterr().out


def test_a_bundle_recording_no_modalities_leaves_out_the_products_it_cannot_read_saying_so(
    tiny_training, tiny_bundle_recording_no_modalities: Path
) -> None:
    """The study read the modalities of the manifest raw, none for an older bundle, and named them in its warning
    of the products left out (" or ".join(None)): a TypeError whenever a product had neither text nor photo. It
    goes by the bundle's accessor, as evaluate does: text or image."""
    from prodcat.evaluate.robustness_command import scored_products
    from prodcat.predict import Predictor

    labelled = tiny_training.unseen.copy()
    labelled.loc[0, ["title", "description"]] = ""
    predictor = Predictor.load(tiny_bundle_recording_no_modalities)
    frame, warnings = scored_products(labelled, predictor, None, 0)
    assert len(frame) == 11 and labelled["product_id"].iat[0] not in set(frame["product_id"])
    assert warnings == [
        "1 of the 12 labelled products have none of the modalities the model reads (text or image): left out of "
        "every run (`prodcat evaluate` counts them as wrong)"
    ]

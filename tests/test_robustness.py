"""Robustness: each perturbation changes the input as it claims, and ``prodcat robustness`` scores them honestly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import COLUMNS
from prodcat.cli import main
from prodcat.evaluate.robustness import PERTURBATIONS, WORK_SIDE, get_perturbations
from prodcat.image.decode import load_image
from prodcat.image.quality import blur_score


@pytest.fixture(scope="module")
def products(flipkart_dir: Path) -> pd.DataFrame:
    """40 labelled Flipkart products, every 20th row (all seven top-level categories), canonical columns."""
    frame = load_catalog(flipkart_dir).labelled.reset_index(drop=True)[list(COLUMNS)]
    return frame.iloc[::20].head(40).reset_index(drop=True)


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
        assert blur_score(blur8) < blur_score(blur2) < blur_score(original) / 2


def test_noise_has_the_given_sigma_and_is_seeded_per_product(products: pd.DataFrame) -> None:
    for sigma in (10, 25):
        for original, noisy in perturbed_photos(products, f"noise_{sigma}"):
            before, after = np.asarray(original, dtype=float), np.asarray(noisy, dtype=float)
            # far from 0 and 255, clipping does not shrink the noise
            unclipped = (before > 4 * sigma) & (before < 255 - 4 * sigma)
            assert unclipped.sum() > 5_000
            assert (after - before)[unclipped].std() == pytest.approx(sigma, rel=0.05)
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
        assert cropped.size == (round(original.width * 0.5), round(original.height * 0.5))


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
    assert "no_photo" in capsys.readouterr().out  # the table is printed
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

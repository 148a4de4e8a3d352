"""A small shop's catalogue, as a new user brings it: a few dozen of Flipkart's real products, some categories held
by a few of them, some products with a photo and no text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from prodcat.catalog.loaders import load_flipkart
from prodcat.cli import main
from prodcat.commands import labelled_products
from prodcat.config import Config


def _shop(flipkart_dir: Path, path: Path, *, wall_art_titled: bool, wall_art_photo: Path | None = None) -> None:
    """12 watches, 12 kitchen products, and 'Wall art': 3 products of Flipkart's home decor with their photo (or
    ``wall_art_photo``) and, unless ``wall_art_titled``, no title or description, written as a catalogue CSV at
    ``path``."""
    frame = load_flipkart(flipkart_dir).frame
    top = frame["category"].str.split(" > ").str[0]
    parts = [frame[top == name].head(12).assign(category=name) for name in ("Watches", "Kitchen & Dining")]
    wall_art = frame[top == "Home Decor & Festive Needs"].head(3).assign(category="Wall art")
    if not wall_art_titled:
        wall_art = wall_art.assign(title="", description="")
    if wall_art_photo is not None:
        wall_art = wall_art.assign(image=str(wall_art_photo))
    pd.concat([*parts, wall_art])[["product_id", "title", "description", "image", "category"]].to_csv(path, index=False)


def test_a_category_held_only_by_products_the_model_cannot_read_is_said_to_be_lost(
    flipkart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text model trained on a shop whose 'Wall art' is three products with a photo and no text: the log named
    the three products left out, and the console said 'predicting the full category path: 2 categories' of the
    catalogue's three, the category gone without a word. train and cv now say it, naming it."""
    data = tmp_path / "shop.csv"
    _shop(flipkart_dir, data, wall_art_titled=False)
    said = (
        "warning: 1 category is held only by products left out for having none of the modalities text ('Wall art' "
        "(3)): the model cannot learn it and will never predict it; give those products what the model reads, or "
        "read what they have (--modalities)\n"
    )
    text_only = ["--config", "fast-text", "--modalities", "text"]
    assert main(["train", str(data), *text_only, "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert out.count(said) == 1 and "predicting the full category path: 2 categories" in out
    assert main(["cv", str(data), *text_only, "--folds", "3", "--report", str(tmp_path / "cv")]) == 0
    assert capsys.readouterr().out.count(said) == 1

    _shop(flipkart_dir, data, wall_art_titled=True)  # the same products with their text: nothing lost
    assert main(["train", str(data), *text_only, "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "held only by products left out" not in out and "predicting the full category path: 3 categories" in out


def test_a_category_held_only_by_products_whose_photo_does_not_decode_is_said_to_be_lost(
    flipkart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model reading text and photos, trained on a shop whose 'Wall art' is three products with no text and a
    photo that does not decode: they were left out before the modalities were looked at, and the category was gone
    from the model without a word on the console. train now names it."""
    data, photo = tmp_path / "shop.csv", tmp_path / "wall-art.jpg"
    photo.write_text("not a photo")
    _shop(flipkart_dir, data, wall_art_titled=False, wall_art_photo=photo)
    assert main(["train", str(data), "--config", "fast-text", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    said = (
        "warning: 1 category is held only by products left out for having only a photo to read, which does not "
        "decode ('Wall art' (3)): the model cannot learn it and will never predict it; replace those photos\n"
    )
    assert out.count(said) == 1, out
    assert "predicting the full category path: 2 categories" in out


def test_a_correction_whose_category_its_catalogue_product_trains_under_is_not_said_to_be_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """train --feedback keeps the labelled corrections the model reads: a photo alone, sent for a text model, was left
    out, and its category was said held only by products left out, 'the model will never predict it', though it
    trains under that category with its catalogue product's text (:func:`prodcat.commands._with_corrections`).
    Which categories are lost is asked of the catalogue, not of the corrections: nothing said of them."""
    corrections = pd.DataFrame(
        {
            "product_id": ["r1", "r2"],
            "source_product_id": ["sku-7", "sku-8"],
            "title": ["", "mug"],
            "description": ["", ""],
            "image": ["/tmp/x.jpg", None],
            "category": ["Watches", "Kitchen"],
        }
    )
    usable = labelled_products(corrections, Config(modalities=["text"]))
    assert usable["product_id"].tolist() == ["r2"]
    assert "held only by products left out" not in capsys.readouterr().out

"""OCR of product photos: text read, joined, cached by content."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from prodcat.image.decode import ImageItem
from prodcat.image.ocr import PhotoText, text_read_from, with_photo_text


def _cover(path: Path, text: str) -> str:
    img = Image.new("RGB", (640, 200), "white")
    ImageDraw.Draw(img).text((30, 60), text, fill="black", font=ImageFont.load_default(size=64))
    img.save(path, "JPEG", quality=95)
    return str(path)


@pytest.mark.slow
def test_reads_text_from_photo_and_caches_it(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "product_id": ["book", "blank", "none"],
            "title": ["a novel", "a plate", "a thing"],
            "description": ["", "white plate", ""],
            "image": [_cover(tmp_path / "b.jpg", "HARRY POTTER"), _cover(tmp_path / "w.jpg", ""), None],
        }
    )
    ocr = PhotoText(cache_dir=str(tmp_path / "cache"), progress=False)
    texts = ocr.transform(frame)
    assert "HARRY" in texts[0].upper() and "POTTER" in texts[0].upper()
    assert texts[1:] == ["", ""]
    assert len(ocr.cache()) == 2  # one entry per photo content

    warm = PhotoText(cache_dir=str(tmp_path / "cache"), progress=False)
    warm.read = lambda item: pytest.fail(f"photo {item.product_id} read again")  # type: ignore[method-assign]
    assert warm.transform(frame) == texts

    enriched = with_photo_text(frame, texts)
    assert enriched.loc[0, "description"].endswith(texts[0]) and enriched.loc[1, "description"] == "white plate"


def test_join_lines_drops_low_confidence_and_noise() -> None:
    ocr = PhotoText(min_score=0.6, min_chars=2)
    assert ocr.join_lines(["Title", "x", "blurry"], [0.99, 0.99, 0.3]) == "Title"


def test_text_read_from_holds_in_its_own_thread_only(tmp_path: Path) -> None:
    """A server explains a photo in one worker thread (its occluded copies read as the photo: text_read_from) while
    another predicts: the other thread reads each photo's own text, even one of the very copies being explained,
    while the explanation's stand-in is in force."""
    original, copy = Image.new("RGB", (40, 20), "white"), Image.new("RGB", (40, 20), "grey")
    words = {id(original): "COFFEE", id(copy): "WATCH"}
    explaining, predicted = threading.Event(), threading.Event()

    def read(item: ImageItem) -> str:  # the engine, by photo; the explained photo's read waits for the prediction
        if item.source is original:
            explaining.set()
            assert predicted.wait(10), "the other thread read the explained photo's text too"
        return words[id(item.source)]

    ocr = PhotoText(cache_dir=str(tmp_path / "cache"), progress=False)
    ocr.use_memory_cache(10)
    ocr.read = read  # type: ignore[method-assign]
    frame = pd.DataFrame({"product_id": ["p"], "title": [""], "description": [""], "image": [copy]})
    texts: dict[str, list[str]] = {}

    def explain() -> None:
        with text_read_from(original, [copy]):
            texts["explain"] = ocr.transform(frame)

    explainer = threading.Thread(target=explain)
    explainer.start()
    assert explaining.wait(10)
    texts["predict"] = ocr.transform(frame)
    predicted.set()
    explainer.join(10)
    assert texts == {"explain": ["COFFEE"], "predict": ["WATCH"]}

"""OCR of product photos: text read, joined, cached by content."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from prodcat.image.ocr import PhotoText, with_photo_text


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

"""Safe decoding on crafted bad files and on real catalogue photos."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodcat.image.decode import ImageDecodeError, load_image, sniff_image_type


def _jpeg_bytes(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def _png_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of ``side x side`` pixels built row by row (a few dozen KB on disk)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_sniff_by_content_not_name(tmp_path: Path) -> None:
    jpeg = _jpeg_bytes(Image.new("RGB", (8, 8)))
    assert sniff_image_type(jpeg) == "jpeg"
    assert sniff_image_type(_png_bomb(8)) == "png"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_type(b"hello, I am text") is None
    assert sniff_image_type(b"") is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"product title, price, not a photo\n", "not an image"),
    ],
)
def test_unusable_files_name_product_and_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "photo.jpg"  # the name lies: content decides
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason) as info:
        load_image(path, product_id="P42")
    assert "product P42" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_jpeg_is_rejected() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    data = _jpeg_bytes(Image.fromarray(noise))
    with pytest.raises(ImageDecodeError, match="truncated") as info:
        load_image(data[: len(data) // 2], product_id="T1")
    assert "T1" in str(info.value)


def _tiff_with_a_broken_second_page() -> bytes:
    """A valid one-page TIFF whose pointer to a next page leads to a page with no width or height."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), "red").save(buf, "TIFF")  # little-endian ("II"), uncompressed
    data = bytearray(buf.getvalue())
    data += b"\x00" * (len(data) % 2)  # IFDs start on a word boundary
    first = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, first)[0]
    struct.pack_into("<I", data, first + 2 + 12 * entries, len(data))  # the first page's "next page"
    data += struct.pack("<HHHII", 1, 0x0131, 2, 1, 0) + struct.pack("<I", 0)  # one tag (Software), no size
    return bytes(data)


def test_corrupt_later_page_is_rejected_not_raised() -> None:
    # Pillow decodes the first page, then fails on the second one with a TypeError, not an OSError
    with pytest.raises(ImageDecodeError, match="corrupt") as info:
        load_image(_tiff_with_a_broken_second_page(), product_id="TIF1", max_side=224)
    assert "TIF1" in str(info.value)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "nope.jpg", product_id="M1")


def test_png_decompression_bomb_refused_without_decoding() -> None:
    bomb = _png_bomb(20_000)
    assert len(bomb) < 200_000  # 400 M pixels that compress to almost nothing
    with pytest.raises(ImageDecodeError, match="20000x20000 pixels exceeds the limit") as info:
        load_image(bomb, product_id="BOMB")
    assert "BOMB" in str(info.value)


def test_huge_jpeg_decoded_at_reduced_scale() -> None:
    # 12000 x 9000 = 108 M pixels, above the default limit: libjpeg decodes it at 1/2 scale
    data = _jpeg_bytes(Image.new("RGB", (12_000, 9_000), (200, 30, 30)))
    img = load_image(data, product_id="BIG")
    assert img.size == (6_000, 4_500)
    assert img.info["original_size"] == (12_000, 9_000)
    small = load_image(data, max_side=500)
    assert max(small.size) == 500
    assert small.getpixel((10, 10))[0] > 150


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = _jpeg_bytes(Image.new("CMYK", (40, 30), (0, 255, 255, 0)))  # pure red in CMYK
    img = load_image(data)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def test_exif_rotated_jpeg_is_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    data = _jpeg_bytes(Image.new("RGB", (80, 40), "white"), exif=exif.tobytes())
    img = load_image(data)
    assert img.size == (40, 80)


def test_palette_png_with_transparency_composited_on_white() -> None:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    img.paste(1, (10, 0, 20, 20))
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)  # index 0 (red) is transparent
    out = load_image(buf.getvalue())
    assert out.mode == "RGB"
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert out.getpixel((15, 2)) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white(mode: str) -> None:
    img = Image.new(mode, (10, 10), (0, 0) if mode == "LA" else (0, 0, 0, 0))
    out = load_image(img)
    assert out.mode == "RGB" and out.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 10), 32_768, dtype=np.uint16)).save(buf, "PNG")
    r, g, b = load_image(buf.getvalue()).getpixel((5, 5))
    assert r == g == b and 120 <= r <= 135


def test_pil_input_not_mutated() -> None:
    img = Image.new("RGB", (1000, 500), "blue")
    out = load_image(img, max_side=100)
    assert out.size == (100, 50) and img.size == (1000, 500)


@pytest.mark.slow
def test_real_catalogue_photos_decode(flipkart_dir: Path, rakuten_dir: Path) -> None:
    photos = (
        sorted((flipkart_dir / "Images").glob("*.jpg"))[:20]
        + sorted((rakuten_dir / "images" / "image_train").glob("*.jpg"))[:20]
    )
    for path in photos:
        img = load_image(path, product_id=path.stem, max_side=224)
        assert img.mode == "RGB" and max(img.size) == 224
        assert sniff_image_type(path.read_bytes()) == "jpeg"

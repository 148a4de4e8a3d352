"""Safe decoding on crafted bad files and on real catalogue photos."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageChops, ImageCms, JpegImagePlugin, TiffImagePlugin

from prodcat.image import formats
from prodcat.image.decode import (
    ImageDecodeError,
    ImageItem,
    decode_item,
    image_content_key,
    image_items,
    load_image,
    sniff_image_type,
)


def _jpeg_bytes(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def test_sniff_by_content_not_name(png_bomb_bytes: Callable[[int, int], bytes]) -> None:
    jpeg = _jpeg_bytes(Image.new("RGB", (8, 8)))
    assert sniff_image_type(jpeg) == "jpeg"
    assert sniff_image_type(png_bomb_bytes(8, 8)) == "png"
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


#: the start of a real AVIF file, as a phone or a CDN sends it
_AVIF_HEAD = b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00avifmif1miafMA1B\x00\x00\x00\xebmeta"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x01\x00meta", "a HEIC/HEIF photo"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf\x00\x00\x01\x00meta", "a HEIC/HEIF photo"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>', "an SVG drawing"),
        (b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03", "a Photoshop (PSD) file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
    ],
)
def test_known_formats_that_are_not_decoded_are_named(content: bytes, named: str) -> None:
    """A HEIC photo (an iPhone's) or an SVG drawing was 'not an image (content looks like text)': their first
    bytes happen to be valid UTF-8, zero bytes included. Such a file is now named, and the fix given."""
    with pytest.raises(ImageDecodeError) as info:
        load_image(content, product_id="P7")
    assert str(info.value).startswith(f"product P7, image: {named}")
    assert re.search(
        r", which is not decoded; convert it to JPEG, PNG, GIF, BMP, TIFF(, WebP or AVIF| or WebP)$", info.value.reason
    )
    # binary data that is no known format is not called text because it decodes as UTF-8
    with pytest.raises(ImageDecodeError, match=r"not an image \(content looks like unknown binary data\)"):
        load_image(b"\x00\x00\x00\x00\x01\x02 some record \x00\x00", product_id="P7")


@pytest.mark.skipif(not formats.avif_decoded(), reason="this Pillow does not decode AVIF")
def test_avif_photo_decodes_to_its_first_frame() -> None:
    """An AVIF photo (what phones and CDNs send more and more) was refused, 'an AVIF photo, which is not decoded',
    though Pillow reads AVIF from 11.3 on. It decodes like any photo, an animated one to its first frame."""
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((200, 30, 30), (30, 200, 30))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "AVIF", save_all=True, append_images=frames[1:], quality=90)
    assert sniff_image_type(buffer.getvalue()) == "avif"
    for max_side in (None, 10):
        r, g, b = load_image(buffer.getvalue(), max_side=max_side).getpixel((5, 5))
        assert r > 180 and g < 50 and b < 50


def test_avif_without_pillow_support_names_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Pillow has no AVIF decoder (before 11.3, or built without libavif), the photo is refused naming
    the format and what reads it, not as a corrupt file."""
    monkeypatch.setattr(formats, "avif_decoded", lambda: False)
    with pytest.raises(ImageDecodeError) as info:
        load_image(_AVIF_HEAD, product_id="P8")
    assert info.value.reason == (
        "an AVIF photo, which this Pillow does not decode (its wheels do from version 11.3 on); "
        "convert it to JPEG, PNG, GIF, BMP, TIFF or WebP"
    )


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


def test_broken_later_page_is_never_read() -> None:
    """A photo is its first page: a broken second one (Pillow fails on it with a TypeError) lost the photo, 'corrupt',
    when every page was walked to count them."""
    first_page = load_image(_tiff_with_a_broken_second_page(), product_id="TIF1", max_side=224)
    assert first_page.getpixel((0, 0)) == (255, 0, 0)


def test_multi_page_tiff_is_read_at_its_first_page_without_walking_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting the pages (``n_frames``) read each of them, each read scanning those before it: an upload of 60,000
    tiny pages (5 MB) held a server thread 45 s, twice (checked, then predicted). Only the first page is read."""
    pages = [Image.new("RGB", (4, 4), "red")] + [Image.new("RGB", (4, 4), "green")] * 200
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    seeks: list[int] = []
    read_page = TiffImagePlugin.TiffImageFile._seek

    def counted_read_page(img: TiffImagePlugin.TiffImageFile, frame: int) -> None:
        seeks.append(frame)
        read_page(img, frame)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_seek", counted_read_page)
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (255, 0, 0)
    assert seeks == [0]
    # an image given at a later page is still read at its first
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        opened.seek(3)
        assert load_image(opened).getpixel((0, 0)) == (255, 0, 0)


def _jpeg_repeating_its_last_scan(times: int) -> bytes:
    """A progressive JPEG whose last scan is sent ``times`` more times: each is a pass over every block of the photo,
    the JPEG decompression bomb (23 bytes a pass, at any size of the photo)."""
    data = _jpeg_bytes(Image.new("RGB", (32, 32), (120, 130, 140)), progressive=True)
    last_scan = data[data.rfind(b"\xff\xda") : -2]  # up to the end-of-image marker
    return data[:-2] + last_scan * times + data[-2:]


def test_jpeg_of_too_many_scans_is_refused_before_decoding() -> None:
    """A 670 KB JPEG of 20,000 scans of a 6000 x 6000 px photo took 33 s to decode, at any reduced scale; 10 MB
    would take minutes, twice in the API (checked, then predicted), in a thread its 504 cannot stop."""
    with pytest.raises(ImageDecodeError, match="a JPEG of more than 500 scans") as info:
        load_image(_jpeg_repeating_its_last_scan(500), product_id="J1", max_side=64)
    assert "J1" in str(info.value)
    assert load_image(_jpeg_repeating_its_last_scan(400)).size == (32, 32)  # progressive JPEGs still decode


def test_jpeg_of_too_many_scans_is_refused_whatever_lies_between_its_segments() -> None:
    """libjpeg skips bytes between a JPEG's segments (a warning only), but the scan count stopped at them: one zero
    byte before its tables let a 59 KB JPEG of 3,000 scans of a 1500 x 1500 px photo through, 12.7 s to decode."""

    def with_bytes_before_its_tables(jpeg: bytes) -> bytes:
        tables = jpeg.index(b"\xff\xdb")
        return jpeg[:tables] + b"\x00 stray" + jpeg[tables:]

    with pytest.raises(ImageDecodeError, match="a JPEG of more than 500 scans"):
        load_image(with_bytes_before_its_tables(_jpeg_repeating_its_last_scan(500)), max_side=64)
    assert load_image(with_bytes_before_its_tables(_jpeg_repeating_its_last_scan(400))).size == (32, 32)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "nope.jpg", product_id="M1")


def test_png_decompression_bomb_refused_without_decoding(png_bomb_bytes: Callable[[int, int], bytes]) -> None:
    bomb = png_bomb_bytes(20_000, 20_000)
    assert len(bomb) < 200_000  # 400 M pixels that compress to almost nothing
    with pytest.raises(ImageDecodeError, match="20000x20000 pixels exceeds the limit") as info:
        load_image(bomb, product_id="BOMB")
    assert "BOMB" in str(info.value)


def webp_bytes(lossless: bool = False, transparent: bool = False, size: tuple[int, int] = (100, 70)) -> bytes:
    """A WebP photo, its first chunk a lossy ``VP8 `` frame, a lossless ``VP8L`` one, or (``transparent``, lossy)
    an extended file's ``VP8X`` canvas: the three headers that say a WebP's size."""
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 128 if transparent else 255)).save(buffer, "WEBP", lossless=lossless)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("lossless", "transparent", "chunk"), [(False, False, b"VP8 "), (True, False, b"VP8L"), (False, True, b"VP8X")]
)
def test_webp_over_pillows_own_limit_is_too_large_not_corrupt(
    monkeypatch: pytest.MonkeyPatch, lossless: bool, transparent: bool, chunk: bytes
) -> None:
    """A WebP of over twice Pillow's limit (179 M pixels; WebP goes up to 16383 x 16383 = 268 M) was reported
    'corrupt WEBP header (Image size (268402689 pixels) exceeds limit ..., could be decompression bomb DOS
    attack.)': its plugin refuses it while opening. It is a valid photo that is too large, and said so, by its size
    as any other photo is (it said 'over 8000 pixels', Pillow's threshold)."""
    photo = webp_bytes(lossless, transparent)
    assert photo[12:16] == chunk
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000)  # Pillow refuses above 6,000 px: this 7,000 px one
    with pytest.raises(ImageDecodeError) as info:
        load_image(photo, product_id="W1", max_pixels=5_000)
    assert info.value.reason == (
        "100x70 pixels exceeds the limit of 5000 pixels and WEBP cannot be decoded at reduced size; "
        "downscale the photo (or save it as JPEG) and retry"
    )


def test_huge_jpeg_decoded_at_reduced_scale() -> None:
    # 12000 x 9000 = 108 M pixels, above the default limit: libjpeg decodes it at 1/2 scale
    data = _jpeg_bytes(Image.new("RGB", (12_000, 9_000), (200, 30, 30)))
    img = load_image(data, product_id="BIG")
    assert img.size == (6_000, 4_500)
    assert img.info["original_size"] == (12_000, 9_000)
    small = load_image(data, max_side=500)
    assert max(small.size) == 500
    assert small.getpixel((10, 10))[0] > 150


def test_png_of_too_many_chunks_is_refused_before_it_is_opened(png_bomb_bytes: Callable[..., bytes]) -> None:
    """Pillow reads each chunk of a PNG in Python as it opens it: 8 MB of empty 12-byte chunks took 5 s, twice in the
    API (checked, then predicted). Beyond libpng's own limit of 1000 chunks besides the pixels, it is refused unread."""
    with pytest.raises(ImageDecodeError, match="a PNG of more than 1000 chunks of text or other data") as info:
        load_image(png_bomb_bytes(8, 8, text_chunks=1000), product_id="P1")  # and its header chunk
    assert "P1" in str(info.value)
    assert load_image(png_bomb_bytes(8, 8, text_chunks=990)).getpixel((0, 0)) == (0, 0, 0)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_of_too_many_frame_controls_is_refused_as_of_too_many_chunks(
    png_bomb_bytes: Callable[..., bytes],
) -> None:
    """Frame controls (fcTL) were not counted, as an animated PNG's frames are not read, but those before its image
    data are, each in Python as it opens: 9.5 MB of 250,000 of them took 2.3 s to open, three times in the API. An
    animated PNG of more frames than the limit still decodes, its later frames unread."""
    png = png_bomb_bytes(8, 8)
    image_data = png.index(b"IDAT") - 4
    controls = b"".join(
        _png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", number, 8, 8, 0, 0, 1, 10, 0, 0)) for number in range(1001)
    )
    with pytest.raises(ImageDecodeError, match="a PNG of more than 1000 chunks"):
        load_image(png[:image_data] + controls + png[image_data:])
    frames = [Image.new("L", (2, 2), shade) for shade in range(256)] * 5  # each unlike the one before it
    animated = io.BytesIO()
    frames[0].save(animated, "PNG", save_all=True, append_images=frames[1:])
    assert load_image(animated.getvalue()).getpixel((0, 0)) == (0, 0, 0)


def _png_of_image_data_chunks(sizes: Callable[[bytes], list[bytes]]) -> bytes:
    """A 160 x 160 px RGB PNG of noise, written by hand (PNG specification, 5 and 11.2): its 77 KB of image data cut
    into the chunks ``sizes`` makes of it."""
    rows = np.random.default_rng(0).integers(0, 256, (160, 1 + 160 * 3), dtype=np.uint8)
    rows[:, 0] = 0  # each row's filter: none
    data = zlib.compress(rows.tobytes())
    parts = sizes(data)
    assert b"".join(parts) == data
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 160, 160, 8, 2, 0, 0, 0))  # 8-bit RGB
    image = b"".join(_png_chunk(b"IDAT", part) for part in parts)
    return b"\x89PNG\r\n\x1a\n" + header + image + _png_chunk(b"IEND", b"")


def test_png_of_too_many_image_data_chunks_is_refused_before_it_is_opened() -> None:
    """Pillow reads each image data chunk (IDAT) in Python as it decodes: 8 MB of 700,000 empty ones took 3.6 s to
    decode (8 s after the pixels), 9 MB of 1-byte ones 11 s, three times in the API. Empty ones count as side chunks
    (a photo holds none or one); and a PNG of more than 65,536 IDAT chunks (encoders write one a row or every 8 to
    64 KB) is refused, as a TIFF of more strips is."""
    with pytest.raises(ImageDecodeError, match="a PNG of more than 1000 chunks of text or other data"):
        load_image(_png_of_image_data_chunks(lambda data: [b""] * 1001 + [data]))
    with pytest.raises(ImageDecodeError, match="a PNG of more than 1000 chunks of text or other data"):
        load_image(_png_of_image_data_chunks(lambda data: [data] + [b""] * 1001))
    with pytest.raises(ImageDecodeError, match="a PNG whose pixels are cut into more than 65536 chunks"):
        load_image(_png_of_image_data_chunks(lambda data: [data[i : i + 1] for i in range(len(data))]))

    whole = load_image(_png_of_image_data_chunks(lambda data: [data]))
    for sizes in (
        lambda data: [b""] * 990 + [data],
        lambda data: [data[i : i + 1] for i in range(65_535)] + [data[65_535:]],  # at the limit
        lambda data: [data[i : i + 8192] for i in range(0, len(data), 8192)],  # libpng's
        lambda data: [data[i : i + 480] for i in range(0, len(data), 480)],  # one a row
    ):
        assert ImageChops.difference(load_image(_png_of_image_data_chunks(sizes)), whole).getbbox() is None


def _tiff_in_one_row_strips(rows: int) -> bytes:
    """A 1 x ``rows`` px grey TIFF stored a row a strip, uncompressed, little-endian, written by hand (TIFF 6.0)."""
    entries = [(256, 3, 1, 1), (257, 4, 1, rows), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (278, 4, 1, 1)]
    offsets_at = 8 + 2 + 12 * (len(entries) + 2) + 4  # after the header and the directory
    counts_at = offsets_at + 4 * rows
    entries += [(273, 4, rows, offsets_at), (279, 4, rows, counts_at)]  # StripOffsets, StripByteCounts
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    pixels_at = counts_at + 4 * rows
    strips = struct.pack(f"<{rows}I", *range(pixels_at, pixels_at + rows)) + struct.pack(f"<{rows}I", *[1] * rows)
    return b"II*\x00" + struct.pack("<I", 8) + directory + struct.pack("<I", 0) + strips + bytes([200]) * rows


def test_tiff_of_too_many_strips_is_refused_before_it_is_opened() -> None:
    """Pillow sets up each strip of a TIFF in Python as it opens it: a 9 MB column of 1,000,000 one-row strips took
    11 s and 400 MB, three times in the API (opened for its size, checked, predicted)."""
    with pytest.raises(ImageDecodeError, match="a TIFF stored in 65537 strips or tiles, more than 65536") as info:
        load_image(_tiff_in_one_row_strips(65_537), product_id="T2")
    assert "T2" in str(info.value)
    column = load_image(_tiff_in_one_row_strips(1000))
    assert (column.size, column.getpixel((0, 999))) == ((1, 1000), (200, 200, 200))


def test_progressive_jpeg_over_the_pixel_limit_is_refused_whatever_the_scale() -> None:
    """libjpeg holds every DCT coefficient of a progressive JPEG in memory at its full size, whatever the scale it
    decodes at: a 1.7 KB one declaring 28456 x 31884 px was decoded at 1/8 scale, 2.7 GB and 4 s, and one declaring
    more could take a prodcat predict run past the machine's memory. A baseline JPEG still decodes at reduced size."""
    photo = Image.new("RGB", (1200, 1000), (200, 30, 30))
    with pytest.raises(ImageDecodeError, match="1200x1000 pixels exceeds the limit of 500000 pixels and a progressive"):
        load_image(_jpeg_bytes(photo, progressive=True), max_side=64, max_pixels=500_000)
    assert load_image(_jpeg_bytes(photo), max_side=64, max_pixels=500_000).size == (64, 53)


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _sequential_jpeg_in_scans(width: int, height: int) -> bytes:
    """A mid-grey sequential (baseline, SOF0) JPEG whose 3 colour components are each in a scan of their own, as
    ITU T.81 allows (A.2.2). Its Huffman tables hold one code, ``0`` (DC difference 0, then end of block), so each
    8 x 8 block is 2 zero bits."""
    components = b"".join(bytes([number, 0x11, 0]) for number in (1, 2, 3))  # no subsampling, quantisation table 0
    one_code = bytes([1] + [0] * 15) + b"\x00"  # one code of 1 bit, for the symbol 0
    blocks = -(-width // 8) * -(-height // 8)
    scans = b"".join(
        _jpeg_segment(0xDA, bytes([1, number, 0x00, 0, 63, 0])) + bytes(-(-blocks // 4)) for number in (1, 2, 3)
    )
    return (
        b"\xff\xd8"
        + _jpeg_segment(0xDB, bytes([0] + [1] * 64))
        + _jpeg_segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components)
        + _jpeg_segment(0xC4, b"\x00" + one_code + b"\x10" + one_code)
        + scans
        + b"\xff\xd9"
    )


def test_sequential_jpeg_of_several_scans_over_the_pixel_limit_is_refused_whatever_the_scale() -> None:
    """libjpeg holds every DCT coefficient of a JPEG whose colour components are in separate scans at its full size,
    as a progressive one's, whatever the scale it decodes at: a 462-byte one declaring 8000 x 8000 px took 350 MB
    at 1/4 scale, and one declaring 65535 x 65535 px would be decoded at 1/8 scale under the 90 M px limit."""
    data = _sequential_jpeg_in_scans(1200, 1000)
    refused = "1200x1000 pixels exceeds the limit of 500000 pixels and a JPEG of 3 scans cannot be decoded at reduced"
    with pytest.raises(ImageDecodeError, match=refused):
        load_image(data, max_side=64, max_pixels=500_000)
    grey = load_image(data, max_side=64)
    assert (grey.size, grey.getextrema()) == ((64, 53), ((128, 128),) * 3)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = _jpeg_bytes(Image.new("CMYK", (40, 30), (0, 255, 255, 0)))  # pure red in CMYK
    img = load_image(data)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def _without_adobe_marker(jpeg: bytes) -> bytes:
    """``jpeg`` with its APP14 ``Adobe`` segment cut out (marker, 2-byte length, payload)."""
    start = jpeg.index(b"\xff\xee")
    assert jpeg[start + 4 : start + 9] == b"Adobe"
    return jpeg[:start] + jpeg[start + 2 + int.from_bytes(jpeg[start + 2 : start + 4], "big") :]


@pytest.mark.parametrize("adobe_marker", [True, False])
def test_cmyk_jpeg_inks_read_right_with_or_without_the_adobe_marker(adobe_marker: bool) -> None:
    """Pillow reads every CMYK JPEG as Adobe-inverted (0 = full ink), the convention its APP14 marker announces and
    Pillow writes; a file without the marker stores its inks as they are, and came out as its negative (red ink read
    as black). Both files below store red ink (magenta + yellow) in a different convention, and both read red,
    upright by their EXIF orientation."""
    red_ink = Image.new("CMYK", (40, 30), (0, 255, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    # Pillow inverts what it writes: an image of inverted inks written, the file stores the inks themselves
    plain = _without_adobe_marker(_jpeg_bytes(ImageChops.invert(red_ink), exif=exif))
    data = _jpeg_bytes(red_ink, exif=exif) if adobe_marker else plain
    with Image.open(io.BytesIO(data)) as opened:
        assert ("adobe" in opened.info) is adobe_marker
    for source in (data, Image.open(io.BytesIO(data))):
        decoded = load_image(source)
        r, g, b = decoded.getpixel((15, 20))
        assert decoded.size == (30, 40) and r > 200 and g < 60 and b < 60


def test_exif_rotated_jpeg_is_upright() -> None:
    """Upright, not only the right shape (a turn the wrong way has it too), nor its mirror image across the diagonal
    (orientation 5's transpose, which a stripe the whole height of the photo would not tell apart): the stored
    photo's left quarter, turned 90 degrees clockwise, is the top, and its top end the top right."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    stored = Image.new("RGB", (80, 40), "white")
    stored.paste((255, 0, 0), (0, 0, 20, 40))  # the left quarter red...
    stored.paste((0, 0, 255), (0, 0, 20, 20))  # ... but for its top half, blue
    img = load_image(_jpeg_bytes(stored, exif=exif.tobytes()))
    assert img.size == (40, 80)
    pixels = np.asarray(img, dtype=int)
    top_left, top_right = pixels[:16, :16], pixels[:16, 24:]
    assert (top_left[..., 0] > 200).all() and (top_left[..., 1:] < 60).all()  # red
    assert (top_right[..., 2] > 200).all() and (top_right[..., :2] < 60).all()  # blue
    assert (pixels[24:] > 200).all()  # the rest white


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


def test_sixteen_bit_grey_decodes_without_a_floating_point_copy() -> None:
    """A 16-bit grey PNG was converted to 8 bits through whole-image float64 arrays, several at once: over 2.8 GB
    (30 s) for one at the pixel limit, where an 8-bit RGB one of the same size takes 0.9 GB. It is converted band by
    band now: the whole photo is never held in floating point, whose one copy alone takes 8 bytes a pixel."""
    width, height = 3000, 2000
    ramp = (np.arange(width, dtype=np.uint32) * 65535 // (width - 1)).astype(np.uint16)
    data = _png_bytes(Image.fromarray(np.broadcast_to(ramp, (height, width)).copy()))
    tracemalloc.start()
    try:
        out = load_image(data, max_side=224)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * width * height
    assert max(out.getpixel((0, 75))) <= 2 and min(out.getpixel((223, 75))) >= 253  # the ramp, black to white


def _png_bytes(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **save)
    return buf.getvalue()


@pytest.mark.parametrize("size", [(4000, 3), (2000, 1), (3, 4000)])
def test_thin_jpeg_decodes_at_reduced_scale(size: tuple[int, int]) -> None:
    # a side of 3 px asked libjpeg for 3 // 8 = 0 px: ZeroDivisionError inside Pillow
    img = load_image(_jpeg_bytes(Image.new("RGB", size, "red")), max_side=224)
    assert max(img.size) == 224 and min(img.size) == 1
    assert img.getpixel((0, 0))[0] > 200


@pytest.mark.parametrize(("size", "expected"), [((4000, 1), (224, 1)), ((1, 4000), (1, 224)), ((900, 300), (224, 75))])
def test_downscaling_keeps_at_least_one_pixel_per_side(size: tuple[int, int], expected: tuple[int, int]) -> None:
    img = load_image(_png_bytes(Image.new("RGB", size, "red")), max_side=224)
    assert img.size == expected and np.asarray(img).size > 0


def test_unexpected_decoder_failure_loses_only_that_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_draft(*args: object) -> None:
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", broken_draft)
    data = _jpeg_bytes(Image.new("RGB", (1000, 800), "red"))
    with pytest.raises(ImageDecodeError, match="ZeroDivisionError") as info:
        load_image(data, product_id="Z1", max_side=100)
    assert "Z1" in str(info.value)
    assert decode_item(ImageItem("Z1", data), max_side=100) is None


def test_lazily_opened_truncated_pil_image_is_rejected() -> None:
    data = _jpeg_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)))
    lazy = Image.open(io.BytesIO(data[: len(data) // 2]))  # decoded only when its pixels are read
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(lazy, product_id="L1", max_side=100)


def test_unreadable_file_is_undecodable_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good, locked = tmp_path / "good.jpg", tmp_path / "locked.jpg"
    for path in (good, locked):
        path.write_bytes(_jpeg_bytes(Image.new("RGB", (40, 30), "red")))
    real_open = Path.open

    def open_unless_locked(self: Path, *args: object, **kwargs: object) -> object:
        if self == locked:  # tests run as root, which chmod cannot lock out
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_unless_locked)
    with pytest.raises(ImageDecodeError, match="permission denied"):
        load_image(locked, product_id="R1")
    assert decode_item(ImageItem("R1", locked)) is None
    # listed as having no photo, so a batch never hashes (opens) it for its cache key
    frame = pd.DataFrame({"product_id": ["G1", "R1"], "image": [str(good), str(locked)]})
    with caplog.at_level(logging.WARNING):
        items = image_items(frame)
    assert items[0] == ImageItem("G1", str(good)) and items[1] is None
    assert "R1" in caplog.text and "permission denied" in caplog.text


def test_content_key_of_pil_image_follows_the_decoded_picture(tmp_path: Path) -> None:
    def palette_image(colour: tuple[int, int, int]) -> Image.Image:
        img = Image.new("P", (8, 8), 0)
        img.putpalette([*colour, *[0, 0, 0] * 255])
        return img

    assert image_content_key(palette_image((255, 0, 0))) != image_content_key(palette_image((0, 0, 255)))
    keyed = palette_image((255, 0, 0))
    keyed.info["transparency"] = 0  # all of it transparent: white, not red
    assert image_content_key(keyed) != image_content_key(palette_image((255, 0, 0)))
    plain = Image.new("RGB", (20, 10), "red")
    plain.paste((0, 0, 255), (10, 0, 20, 10))
    rotated = plain.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.info["exif"] = exif.tobytes()
    assert image_content_key(rotated) != image_content_key(plain)
    # unchanged for what the decoder leaves as it is, and for files (their keys are on disk)
    assert image_content_key(plain) == hashlib.sha1(b"RGB(20, 10)" + plain.tobytes()).hexdigest()
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg_bytes(plain))
    assert image_content_key(path) == hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", ["P", "1"])
def test_palette_and_bilevel_images_are_averaged_when_downscaled(mode: str) -> None:
    stripes = np.zeros((400, 400), dtype=np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: mid-grey once downscaled, not all white (NEAREST)
    img = Image.fromarray(stripes).convert(mode)
    out = np.asarray(load_image(_png_bytes(img), max_side=100), dtype=np.float64)
    assert abs(out.mean() - 127.5) < 5 and out.std() < 10


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.fromarray(np.full((10, 10), 200, dtype=np.uint16)), 1),  # 16-bit: 200 / 65535, not 200 / 255
        (Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16)), 255),
        (Image.fromarray(np.full((10, 10), 0.8, dtype=np.float32)), 204),  # float: intensities in [0, 1]
        (Image.fromarray(np.full((10, 10), 1.5, dtype=np.float32)), 255),
        (Image.fromarray(np.full((10, 10), -0.5, dtype=np.float32)), 0),
    ],
)
def test_high_depth_images_scaled_by_their_depth(img: Image.Image, expected: int) -> None:
    for max_side in (None, 5):
        r, g, b = load_image(img, max_side=max_side).getpixel((2, 2))
        assert r == g == b == expected


@pytest.mark.parametrize(
    ("background", "square", "expected"),
    [
        (np.array([0, 0, 0], dtype=np.uint8), np.array([255, 0, 0], dtype=np.uint8), (255, 0, 0)),  # RGB
        (np.uint8(0), np.uint8(100), (100, 100, 100)),  # L
        (np.uint16(0), np.uint16(32_768), (128, 128, 128)),  # 16-bit grey
    ],
)
def test_colour_key_transparency_composited_on_white(
    background: np.ndarray, square: np.ndarray, expected: tuple[int, int, int]
) -> None:
    pixels = np.broadcast_to(background, (40, 40, *np.shape(background))).copy()
    pixels[10:30, 10:30] = square
    key = tuple(background.tolist()) if np.ndim(background) else int(background)
    data = _png_bytes(Image.fromarray(pixels), transparency=key)  # tRNS: every pixel of that value is transparent
    for max_side in (None, 10):
        out = load_image(data, max_side=max_side)
        assert out.getpixel((0, 0)) == (255, 255, 255)
        assert out.getpixel((out.width // 2, out.height // 2)) == expected
        assert np.asarray(out)[..., 0].min() >= expected[0]  # no fringe of the key colour where it was blended


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


_D50 = (0.9642, 1.0, 0.8249)
#: colorants of Adobe RGB (1998) adapted to D50, as in its profile (columns: red, green, blue)
_ADOBE_RGB = np.array([[0.60974, 0.20528, 0.14919], [0.31111, 0.62567, 0.06322], [0.01947, 0.06087, 0.74457]])
_ADOBE_GAMMA = 563 / 256
#: colorants of sRGB adapted to D50 (littleCMS's built-in sRGB profile)
_SRGB = np.array([[0.43607, 0.38515, 0.14307], [0.22249, 0.71687, 0.06061], [0.01392, 0.09708, 0.71410]])


def _xyz_numbers(xyz: tuple[float, ...]) -> bytes:
    return b"".join(struct.pack(">i", round(value * 65536)) for value in xyz)


def _icc_profile(space: bytes, device_class: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A minimal ICC v2 profile of ``space`` pixels (PCS Lab for a lookup table, else XYZ) holding ``tags``."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = [], b""
    for signature, element in tags.items():
        table.append(struct.pack(">4sII", signature, offset + len(data), len(element)))
        data += element + b"\x00" * (-len(element) % 4)  # tag data starts on 4-byte boundaries
    body = struct.pack(">I", len(tags)) + b"".join(table) + data
    pcs = b"Lab " if b"A2B0" in tags else b"XYZ "
    header = struct.pack(
        ">I4sI4s4s4s12s4s4sI4s4s8sI12s4s44x",
        128 + len(body),
        b"lcms",
        0x02100000,
        device_class,
        space,
        pcs,
        b"\x00" * 12,
        b"acsp",
        b"APPL",
        0,
        b"none",
        b"none",
        b"\x00" * 8,
        0,
        _xyz_numbers(_D50),
        b"none",
    )
    return header + body


def _adobe_rgb_profile() -> bytes:
    """A matrix/TRC profile with Adobe RGB's primaries and gamma."""
    gamma = b"curv" + struct.pack(">IIH", 0, 1, round(_ADOBE_GAMMA * 256))
    colorants = {
        name: b"XYZ \x00\x00\x00\x00" + _xyz_numbers(tuple(column))
        for name, column in zip((b"rXYZ", b"gXYZ", b"bXYZ"), _ADOBE_RGB.T, strict=True)
    }
    white = b"XYZ \x00\x00\x00\x00" + _xyz_numbers(_D50)
    return _icc_profile(b"RGB ", b"mntr", {b"wtpt": white, **colorants, b"rTRC": gamma, b"gTRC": gamma, b"bTRC": gamma})


def _adobe_to_srgb(rgb: tuple[int, int, int]) -> np.ndarray:
    """An Adobe RGB colour in sRGB, from the colorants (what the profile conversion must give)."""
    linear = np.linalg.solve(_SRGB, _ADOBE_RGB @ ((np.array(rgb) / 255) ** _ADOBE_GAMMA))
    linear = np.clip(linear, 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return encoded * 255


def _cmyk_profile(cyan_lab: tuple[float, float, float]) -> bytes:
    """A CMYK input profile (a 2-point lookup table to Lab): no ink is white, cyan ink alone is ``cyan_lab``,
    any other ink black."""
    clut = bytearray()
    for corner in range(16):  # C, M, Y, K as bits 3 to 0: the first channel varies slowest
        lightness, a, b = {0: (100.0, 0.0, 0.0), 0b1000: cyan_lab}.get(corner, (0.0, 0.0, 0.0))
        clut += bytes([round(lightness * 255 / 100), round(a + 128), round(b + 128)])
    identity = bytes(range(256))
    lut = b"mft1\x00\x00\x00\x00" + bytes([4, 3, 2, 0]) + _xyz_numbers((1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut += identity * 4 + bytes(clut) + identity * 3
    return _icc_profile(b"CMYK", b"prtr", {b"A2B0": lut})


def test_embedded_colour_profile_converted_to_srgb() -> None:
    """An Adobe RGB photo (13 of the fashion sample's, from cameras set to it) was read as if it were sRGB:
    its colours came out dull. Its profile is now applied, as browsers do."""
    colour = (180, 90, 60)
    data = _jpeg_bytes(Image.new("RGB", (40, 30), colour), icc_profile=_adobe_rgb_profile())
    expected = _adobe_to_srgb(colour)
    assert np.abs(expected - colour).max() > 20  # the conversion is no small correction
    for max_side in (None, 10):
        decoded = np.array(load_image(data, max_side=max_side).getpixel((5, 5)))
        assert np.abs(decoded - expected).max() <= 3


def _linear_grey_profile() -> bytes:
    """A grey profile of gamma 1.0: its mid-grey 128 is sRGB 188."""
    linear = b"curv" + struct.pack(">IIH", 0, 1, 256)
    white = b"XYZ \x00\x00\x00\x00" + _xyz_numbers(_D50)
    return _icc_profile(b"GRAY", b"mntr", {b"wtpt": white, b"kTRC": linear})


def test_grey_photo_profile_applied() -> None:
    """A grey photo's own grey profile (Photoshop saves greyscale JPEGs with one) is applied too."""
    data = _jpeg_bytes(Image.new("L", (40, 30), 128), icc_profile=_linear_grey_profile())
    for max_side in (None, 10):
        r, g, b = load_image(data, max_side=max_side).getpixel((5, 5))
        assert r == g == b and abs(r - 188) <= 1


@pytest.mark.parametrize("colour_key", [False, True], ids=["grey with alpha", "16-bit grey with a colour key"])
def test_grey_profile_applied_to_transparent_grey(colour_key: bool) -> None:
    """A grey PNG with transparency kept its grey profile unapplied (mid-grey 128 stayed 128 where a linear
    profile makes it 188), as littleCMS has no transform of grey with alpha. The grey is converted and the
    transparency kept: the top rows, transparent, still come out on white."""
    if colour_key:  # Pillow reads a 16-bit grey PNG with a colour key (tRNS) as grey, then made grey with alpha
        img = Image.fromarray(np.full((30, 40), 128 * 257, dtype=np.uint16))
        img.paste(0, (0, 0, 40, 10))
        save, top = {"transparency": 0}, 255
    else:
        img = Image.new("LA", (40, 30), (128, 255))
        img.paste((128, 128), (0, 0, 40, 10))
        save, top = {}, round(188 * 128 / 255 + 255 * 127 / 255)  # a half-transparent 188 on white
    decoded = np.asarray(load_image(_png_bytes(img, icc_profile=_linear_grey_profile(), **save))).astype(int)
    assert np.abs(decoded[10:] - 188).max() <= 1
    assert np.abs(decoded[:10] - top).max() <= 1


def test_cmyk_profile_gives_the_colour_of_its_inks() -> None:
    """A CMYK JPEG with a press profile was converted by Pillow's formula, blind to the profile: full cyan ink
    was (0, 255, 255), a neon no press prints. The profile now decides (here a real cyan ink, a mid blue)."""
    cyan = (55.0, -37.0, -50.0)
    pixels = Image.new("CMYK", (60, 30), (0, 0, 0, 0))
    pixels.paste((255, 0, 0, 0), (20, 0, 40, 30))
    pixels.paste((0, 0, 0, 255), (40, 0, 60, 30))
    img = load_image(_jpeg_bytes(pixels, icc_profile=_cmyk_profile(cyan)))  # Pillow writes Adobe (inverted) CMYK
    expected = Image.new("LAB", (1, 1), (round(cyan[0] * 2.55), round(cyan[1] + 128), round(cyan[2] + 128)))
    assert np.abs(np.subtract(img.getpixel((30, 15)), expected.convert("RGB").getpixel((0, 0)))).max() <= 4
    assert min(img.getpixel((5, 15))) > 245 and max(img.getpixel((55, 15))) < 10  # paper white, black ink black


@pytest.mark.parametrize(
    ("mode", "profile"),
    [
        ("RGB", ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()),  # the usual one: no-op
        ("L", ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()),  # an RGB profile on a grey photo
        ("RGB", b"not a colour profile at all"),
    ],
)
def test_profiles_that_change_nothing_or_cannot_apply_leave_pixels_as_they_are(mode: str, profile: bytes) -> None:
    """An sRGB photo keeps its exact pixels (and so its cached features); a profile that does not fit is ignored."""
    pixels = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    img = Image.fromarray(pixels).convert(mode)
    assert load_image(_png_bytes(img, icc_profile=profile)).tobytes() == load_image(_png_bytes(img)).tobytes()


def test_lab_tiff_decodes_to_its_colour() -> None:
    """A CIELAB TIFF is converted to sRGB (Pillow's LAB conversion goes through littleCMS), not its L, a, b
    bytes read as R, G, B: pure red stays red, at full size and downscaled."""
    srgb_to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(Image.new("RGB", (40, 30), (255, 0, 0)), srgb_to_lab)
    buffer = io.BytesIO()
    lab.save(buffer, "TIFF")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "LAB"
    for max_side in (None, 10):
        r, g, b = load_image(buffer.getvalue(), max_side=max_side).getpixel((5, 5))
        assert r > 240 and g < 15 and b < 15


def _tiff_with_photometric(img: Image.Image, photometric: int) -> bytes:
    """``img`` saved as TIFF with its PhotometricInterpretation tag (how samples are read) set to ``photometric``."""
    buffer = io.BytesIO()
    img.save(buffer, "TIFF")  # little-endian ("II"), one IFD
    data = bytearray(buffer.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    for entry in range(first + 2, first + 2 + 12 * struct.unpack_from("<H", data, first)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == 262:
            struct.pack_into("<H", data, entry + 8, photometric)
    return bytes(data)


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (np.full((8, 8), 40_000, dtype=np.uint16), 99),  # 16-bit: 1 - 40000 / 65535
        (np.full((8, 8), 0.25, dtype=np.float32), 191),
        (np.full((8, 8), 100, dtype=np.uint8), 155),  # 8-bit, which Pillow inverts itself
    ],
)
def test_white_is_zero_tiff_is_not_a_negative(pixels: np.ndarray, expected: int) -> None:
    """A 16-bit or floating-point grey TIFF stored "white is zero" (as some scanners write) decoded as its
    negative: Pillow inverts such 8-bit greys, not deeper ones. It is inverted at every depth now."""
    data = _tiff_with_photometric(Image.fromarray(pixels), 0)
    for max_side in (None, 4):
        assert load_image(data, max_side=max_side).getpixel((1, 1)) == (expected,) * 3


def test_tiff_of_an_undecoded_pixel_layout_is_not_called_corrupt() -> None:
    """A valid TIFF of a layout Pillow cannot decode (here CIELAB with an alpha channel; CMYK with transparency,
    as Photoshop saves it, is another) was 'corrupt TIFF header (unknown pixel mode)': the seller was sent to
    repair a sound file. It is now named as a layout that is not decoded, with the format to save it in."""
    with pytest.raises(ImageDecodeError) as info:
        load_image(_tiff_with_photometric(Image.new("RGBA", (8, 8), (200, 30, 30, 255)), 8), product_id="T2")
    assert str(info.value).startswith("product T2, image: a TIFF whose colour space, bit depth or extra channels")
    assert "corrupt" not in str(info.value) and info.value.reason.endswith("save it as 8-bit RGB, or as JPEG or PNG")

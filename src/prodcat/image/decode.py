"""Safe decoding: the one function every product photo goes through.

Sellers' photos come as paths, uploaded bytes or in-memory images, in any mode
(CMYK, palette with transparency, RGBA, 16-bit grey), rotated by their EXIF
tag, sometimes truncated, sometimes not images at all, sometimes huge (an
8484 x 11042 px original, a 20000 x 20000 px "decompression bomb"), sometimes
unreadable. :func:`load_image` turns all of them into an upright RGB
:class:`PIL.Image.Image` or raises :class:`ImageDecodeError` naming the product
and the reason, so a batch can log it and go on.

Formats are told by content, never by file name: JPEG, PNG, GIF, BMP, TIFF, WebP
and, where Pillow reads it (11.3 on), AVIF; an animated or multi-page file is read
at its first frame. Other formats met in its place (HEIC, SVG, PDF, ...) are named
in the error.

High-depth pixels are scaled by their depth: 16-bit by 65535, floating-point ones
are intensities in [0, 1] (clipped). Transparency, as an alpha channel or as a
colour key (a PNG's ``tRNS``), is composited on white. An embedded colour profile
(Adobe RGB, Display P3, a CMYK press profile) is converted to sRGB, as browsers do.

Huge JPEGs are decoded at a reduced scale (libjpeg's DCT scaling, 1/2 to 1/8,
via :meth:`PIL.Image.Image.draft`) so they never occupy full-size memory; other
formats cannot be decoded partially and are refused above ``max_pixels``, as is a
JPEG of several scans (a progressive one), whose coefficients libjpeg holds at full size. A JPEG of more scans than
:data:`MAX_JPEG_SCANS` (each a pass over the whole photo, at any scale), or a PNG of more chunks beside
its pixels than :data:`MAX_PNG_SIDE_CHUNKS` or more image data chunks than :data:`MAX_PNG_IDAT_CHUNKS` (each read
in Python), or a TIFF of more strips or tiles
than :data:`MAX_TIFF_BLOCKS` (each set up in Python), is refused unread
(:func:`structure_refusal`).
The limits are parameters so that the REST API can apply the same policy to
uploads.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd
from PIL import Image, ImageChops, ImageOps

from prodcat.catalog.schema import is_missing
from prodcat.image.formats import PIL_FORMATS, accepted_formats, decoded_image_types

#: bump when a photo file decodes to other pixels (2: embedded colour profiles converted to sRGB, and 16-bit or
#: floating-point grey TIFFs stored "white is zero" inverted; 3: the grey profile of a grey photo with transparency
#: applied, and AVIF photos decoded, whose failure was cached; 4: CMYK JPEGs without Adobe's APP14 marker read
#: uninverted; 5: multi-page TIFFs with a broken later page read at their first page, whose failure was cached; 6: PNGs
#: of more than 1000 empty image data chunks, or of more than :data:`MAX_PNG_IDAT_CHUNKS`, refused).
#: Caches of anything computed from decoded photos are keyed on it (:func:`photo_cache_version`), since their content
#: keys hash the file, not the pixels made of it
DECODER_VERSION = 6

try:
    from PIL import ImageCms
except ImportError:  # a Pillow built without littleCMS: embedded colour profiles are ignored
    ImageCms = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: largest number of pixels decoded into memory (after JPEG reduced-size decoding);
#: 90 M pixels is about 270 MB as RGB, and Pillow's own warning threshold
DEFAULT_MAX_PIXELS = 90_000_000
#: largest encoded file accepted, in bytes
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: longest side a photo is decoded at when only whether it decodes matters: JPEGs of 512 px and more then decode at
#: 1/8 scale, the coarsest, half the cost of a 640 px photo in full; every byte is still read and entropy-decoded,
#: so a truncated or corrupt photo is refused as in full (and anything else is: the same checks run on the result)
DECODABILITY_SIDE = 64

#: most scans a JPEG may hold, TurboJPEG's own limit (TJFLAG_LIMITSCANS): each scan of a progressive JPEG is a pass
#: over every block of the photo, at full size whatever the reduced scale, so a file repeating a 23-byte scan holds
#: one more 2 ms pass at 6000 x 6000 px per 23 bytes (a 670 KB one took 33 s); encoders write about ten
MAX_JPEG_SCANS = 500
#: most chunks a PNG may hold besides its image data and animation frames, libpng's own limit
#: (PNG_USER_CHUNK_CACHE_MAX): Pillow reads each chunk in Python, about 7 us, so 8 MB of empty 12-byte chunks took
#: 5 s to open where a photo holds a dozen. An image data chunk (IDAT) holding no byte counts too: it is read as any
#: other, and a photo holds none or one (700,000 of them, 8 MB, took 3 s to decode, 8 s after the pixels)
MAX_PNG_SIDE_CHUNKS = 1000
#: most image data chunks (IDAT) a PNG may cut its pixels into, as :data:`MAX_TIFF_BLOCKS` for a TIFF's strips: Pillow
#: reads each in Python, about 16 us, so 9 MB of 1-byte ones took 11 s to decode; encoders write one every 8 to 64 KB
#: (8,192 for the largest file accepted, 64 MB, at libpng's 8 KB), or one a row, and so a photo's height
MAX_PNG_IDAT_CHUNKS = 65_536
#: the chunks of an animated PNG's later frames: their controls and image data
_PNG_FRAME_CHUNKS = frozenset({b"fcTL", b"fdAT"})
#: most strips or tiles the page of a TIFF read may be stored in: Pillow sets each one up in Python, about 10 us, so
#: a 9 MB TIFF of a 1-pixel column in 1,000,000 one-row strips took 11 s and 400 MB to open; a photo stored a row a
#: strip, as some scanners write them, holds its height in strips
MAX_TIFF_BLOCKS = 65_536
#: the TIFF tags listing the offsets of a page's strips and of its tiles (TIFF 6.0, sections 8 and 15)
_TIFF_BLOCK_OFFSETS = (273, 324)
#: the next marker of a JPEG between its segments, as libjpeg finds it (next_marker): any other bytes skipped (with
#: a warning only), then fill bytes 0xFF, then a byte that is no stuffing (0xFF00)
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")
#: where the entropy-coded data of a JPEG scan ends: a marker, a 0xFF byte that is no stuffing (0xFF00) nor restart
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7]")

#: magic numbers of the formats accepted, checked on content (never on the file name)
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (8, b"WEBP", "webp"),  # after "RIFF" + 4-byte length
)
#: formats met in place of a product photo that are not decoded, told apart to say what the file is:
#: (offset, magic, name); ISO media files other than AVIF (HEIC, MP4) and SVG are told by :func:`unsupported_format`
_OTHER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (4, b"jP  \r\n\x87\n", "a JPEG 2000 image"),
    (0, b"\xff\x0a", "a JPEG XL image"),
    (4, b"JXL \r\n\x87\n", "a JPEG XL image"),
    (0, b"%PDF-", "a PDF document"),  # a product sheet or a scan, uploaded where the photo goes
)
#: brands of an ISO media file (``ftyp`` box) that are still photos
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_HIGH_DEPTH_MODES = (*_SIXTEEN_BIT_MODES, "I", "F")
#: pixels of high depth converted to 8 bits at a time (2 MB each in floating point)
_CONVERSION_BAND_PIXELS = 1 << 18
#: TIFF's PhotometricInterpretation tag
_PHOTOMETRIC_TAG = 262
#: modes whose embedded colour profile is applied, and the mode they are converted to
_MANAGED_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB", "L": "RGB"}

ImageSource = str | os.PathLike[str] | bytes | Image.Image


class ImageDecodeError(ValueError):
    """A photo that cannot be used: the message names the product and the reason."""

    def __init__(self, reason: str, product_id: str | None = None, source: str | None = None):
        self.reason = reason
        self.product_id = product_id
        self.source = source
        who = f"product {product_id}" if product_id else "image"
        where = f" ({source})" if source else ""
        super().__init__(f"{who}{where}, image: {reason}")


class DecodedBytes(bytes):
    """A photo's encoded bytes, holding what :func:`load_image` makes of them at ``max_side`` with its default limits
    (:func:`with_decoding` makes one): :func:`load_image` asked for that decoding of them answers a copy of it, decoding
    nothing. Bytes in every other respect (the same content key, stored or sent as they are), so that a photo decoded
    once, by the REST API's check, is not decoded again by the model."""

    decoded: Image.Image
    max_side: int | None

    def __new__(cls, data: bytes, decoded: Image.Image, max_side: int | None) -> DecodedBytes:
        photo = super().__new__(cls, data)
        photo.decoded, photo.max_side = decoded, max_side
        return photo

    def __reduce__(self) -> tuple[type[bytes], tuple[bytes]]:
        # pickled as the bytes alone (a dask worker, a process pool): the pixels are for this process's decoders
        return bytes, (bytes(self),)


def with_decoding(data: bytes, decoded: Image.Image, max_side: int | None, max_pixels: int, max_bytes: int) -> bytes:
    """``data`` as :class:`DecodedBytes` holding ``decoded``, what ``load_image(data, max_side=max_side,
    max_pixels=max_pixels, max_bytes=max_bytes)`` made of it, when that is also what :func:`load_image` makes of it at
    its default limits; else ``data`` itself. It is when the file and the size it declares are within both: the limits
    then choose no coarser JPEG scale and refuse nothing (a photo over one is not handed over, left to each to refuse
    or decode as it would)."""
    width, height = decoded.info["original_size"]
    if len(data) > min(max_bytes, DEFAULT_MAX_BYTES) or width * height > min(max_pixels, DEFAULT_MAX_PIXELS):
        return data
    return DecodedBytes(data, decoded, max_side)


def sniff_image_type(data: bytes) -> str | None:
    """Image type from the first bytes of ``data``: ``"jpeg"``, ``"png"``, ``"gif"``,
    ``"bmp"``, ``"tiff"``, ``"webp"``, ``"avif"``, or ``None`` if it is none of them."""
    for offset, magic, kind in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if kind == "webp" and data[:4] != b"RIFF":
                continue
            return kind
    if _iso_media_brands(data) & _AVIF_BRANDS:
        return "avif"
    return None


def unsupported_format(data: bytes) -> str | None:
    """What ``data`` is when it is a known picture format that is not decoded (``"a HEIC/HEIF photo"``, ``"an SVG
    drawing"``, ...), or ``None``: an image type (see :func:`sniff_image_type`), text or unknown content."""
    for offset, magic, name in _OTHER_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if brands := _iso_media_brands(data):
        if brands & _HEIF_BRANDS:
            return "a HEIC/HEIF photo (as iPhones save them)"
        return "a video or other ISO media file, not a photo"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in head:
        return "an SVG drawing"
    return None


def _iso_media_brands(data: bytes) -> set[bytes]:
    """The brands of an ISO base media file (AVIF, HEIC, MP4): the major one, then the compatible ones of its
    ``ftyp`` box; empty for any other content."""
    if data[4:8] != b"ftyp":
        return set()
    return {data[8:12]} | {data[i : i + 4] for i in range(16, min(len(data), int.from_bytes(data[:4])), 4)}


def load_image(
    source: ImageSource,
    *,
    product_id: str | None = None,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Decode a photo to an upright RGB image.

    Args:
        source: a file path, the raw bytes of an encoded image, or a PIL image.
        product_id: named in errors.
        max_side: if given, the longest side of the result is at most this many
            pixels (JPEGs are then decoded directly at a reduced scale: faster).
        max_pixels: refuse images that would need more pixels than this in memory.
        max_bytes: refuse encoded files larger than this.

    Returns:
        An sRGB image with EXIF orientation applied and transparency composited on white;
        ``img.info["original_size"]`` is the ``(width, height)`` stored in the file.

    Raises:
        ImageDecodeError: empty, missing, truncated, corrupt, non-image or oversized input.
    """
    if (
        isinstance(source, DecodedBytes)
        and source.max_side == max_side
        and (max_pixels, max_bytes) == (DEFAULT_MAX_PIXELS, DEFAULT_MAX_BYTES)
    ):
        return source.decoded.copy()  # a copy keeps its info (original_size); the caller may change it
    where = None
    try:
        if isinstance(source, Image.Image):
            img, original_size = source, source.size  # may still be lazily decoding a file
        else:
            data, where = _read_bytes(source, product_id, max_bytes)
            img, original_size = _open(data, product_id, where, max_side, max_pixels)
            img.load()
        out = _to_upright_rgb(_limit_side(_blendable(_plain_cmyk_read_as_stored(img)), max_side))
    except (ImageDecodeError, MemoryError):
        raise
    except Exception as exc:
        # a corrupt later page or EXIF block fails only here (TypeError, SyntaxError, ... from the
        # plugins), and so would any decoder bug: one photo lost, never the whole batch
        reason = f"truncated or corrupt file ({type(exc).__name__}: {exc}); re-export the photo"
        raise ImageDecodeError(reason, product_id, where) from exc
    out.info["original_size"] = original_size
    return out


def _read_bytes(
    source: str | os.PathLike[str] | bytes, product_id: str | None, max_bytes: int
) -> tuple[bytes, str | None]:
    if isinstance(source, bytes | bytearray | memoryview):
        data, where = bytes(source), None
    else:
        path = Path(source)
        where = str(path)
        try:
            if path.stat().st_size > max_bytes:
                raise ImageDecodeError(f"file larger than the limit of {max_bytes} bytes", product_id, where)
            data = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(_read_error_reason(exc), product_id, where) from None
    if not data:
        raise ImageDecodeError("empty file (0 bytes)", product_id, where)
    if len(data) > max_bytes:
        raise ImageDecodeError(f"{len(data)} bytes exceeds the limit of {max_bytes} bytes", product_id, where)
    return data, where


def _read_error_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "path is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "file not readable (permission denied)"
    return f"file not readable ({exc.strerror or exc})"


def _open(
    data: bytes, product_id: str | None, where: str | None, max_side: int | None, max_pixels: int
) -> tuple[Image.Image, tuple[int, int]]:
    """The lazily-decoding image (JPEG draft applied) and its size in the file."""
    kind = _decodable_type(data, product_id, where)
    try:  # our own limit below is applied to the pixels actually decoded
        img = open_lazily(data, kind, where or "")
    except Image.DecompressionBombError:  # a valid photo, too large, not a corrupt header
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        reason = _too_large(size_pillow_refused(data), min(max_pixels, pillow_limit), kind.upper())
        raise ImageDecodeError(reason, product_id, where) from None
    except Exception as exc:  # plugins raise SyntaxError, OSError, struct.error, ... on bad headers
        if kind == "tiff" and str(exc) == "unknown pixel mode":  # a valid TIFF that Pillow has no decoder for
            reason = (
                "a TIFF whose colour space, bit depth or extra channels are not decoded (such as CMYK with "
                "transparency, or 16-bit CIELAB); save it as 8-bit RGB, or as JPEG or PNG"
            )
            raise ImageDecodeError(reason, product_id, where) from exc
        raise ImageDecodeError(f"corrupt {kind.upper()} header ({exc})", product_id, where) from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid size {width}x{height}", product_id, where)
    if kind == "jpeg":
        _draft_jpeg(img, max_side, max_pixels)
    if kind == "jpeg" and width * height > max_pixels and (held_whole := _jpeg_held_whole(img, data)):
        too_large = _too_large(f"{width}x{height}", max_pixels, held_whole, "a baseline JPEG of one scan")
        raise ImageDecodeError(too_large, product_id, where)
    if img.size[0] * img.size[1] > max_pixels:
        raise ImageDecodeError(_too_large(f"{width}x{height}", max_pixels, kind.upper()), product_id, where)
    return img, (width, height)


def _decodable_type(data: bytes, product_id: str | None, where: str | None) -> str:
    """The type of the photo ``data`` (:func:`sniff_image_type`'s), or ``ImageDecodeError`` saying why it is not opened:
    not an image, a format this Pillow does not decode, or a structure that would take too long to read."""
    kind = sniff_image_type(data)
    accepted = accepted_formats()
    if kind is not None and kind not in decoded_image_types():
        reason = f"an {kind.upper()} photo, which this Pillow does not decode (its wheels do from version 11.3 on)"
        raise ImageDecodeError(f"{reason}; convert it to {accepted}", product_id, where)
    if kind is None:
        if other := unsupported_format(data):
            raise ImageDecodeError(f"{other}, which is not decoded; convert it to {accepted}", product_id, where)
        looks = "text" if _looks_like_text(data[:512]) else "unknown binary data"
        raise ImageDecodeError(f"not an image (content looks like {looks}); expected {accepted}", product_id, where)
    if refusal := structure_refusal(data, kind):
        raise ImageDecodeError(refusal, product_id, where)
    return kind


def _jpeg_held_whole(img: Image.Image, data: bytes) -> str | None:
    """What the JPEG ``img`` (of bytes ``data``) is when libjpeg keeps every DCT coefficient of it in memory at its
    full size (2 bytes each), whatever the scale it decodes at, to assemble it scan after scan: a progressive one, or
    a sequential one in several scans (its colour components apart); ``None`` for a JPEG of one scan, decoded a row of
    blocks at a time. Decoded at reduced scale, a 1.7 KB progressive file declaring 28456 x 31884 px took 2.7 GB, and
    a 462-byte sequential one of 3 scans declaring 8000 x 8000 px 350 MB."""
    if img.info.get("progressive"):
        return "a progressive JPEG"
    if (scans := _jpeg_scans(data, most=MAX_JPEG_SCANS)) > 1:
        return f"a JPEG of {scans} scans"
    return None


def structure_refusal(data: bytes, kind: str) -> str | None:
    """Why a photo of type ``kind`` (:func:`sniff_image_type`'s) is refused from its structure alone, before it is
    opened: a JPEG of so many scans, a PNG of so many chunks, or a TIFF of so many strips that reading them would take
    seconds to minutes; else ``None``."""
    if kind == "jpeg" and _jpeg_scans(data, most=MAX_JPEG_SCANS + 1) > MAX_JPEG_SCANS:
        return (
            f"a JPEG of more than {MAX_JPEG_SCANS} scans (encoders write about ten), each one more pass over the whole "
            "photo; re-export the photo"
        )
    side_chunks, image_chunks = _png_chunks(data) if kind == "png" else (0, 0)
    if side_chunks > MAX_PNG_SIDE_CHUNKS:
        return (
            f"a PNG of more than {MAX_PNG_SIDE_CHUNKS} chunks of text or other data beside its pixels (a photo holds "
            "a dozen), each read on its own as it opens; re-export the photo"
        )
    if image_chunks > MAX_PNG_IDAT_CHUNKS:
        return (
            f"a PNG whose pixels are cut into more than {MAX_PNG_IDAT_CHUNKS} chunks (encoders write one a row or "
            "every few KB), each read on its own as it decodes; re-export the photo"
        )
    if kind == "tiff" and (blocks := _tiff_blocks(data)) > MAX_TIFF_BLOCKS:
        return (
            f"a TIFF stored in {blocks} strips or tiles, more than {MAX_TIFF_BLOCKS}, each set up on its own as it "
            "opens; re-export the photo"
        )
    return None


def _tiff_blocks(data: bytes) -> int:
    """The strips or tiles the first page of the TIFF ``data`` is stored in, as its first directory declares them
    (TIFF 6.0, section 2: a count of 12-byte entries, each a tag, a type, a count); 0 when it declares none."""
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
    directory = int.from_bytes(data[4:8], order)
    for entry in range(directory + 2, directory + 2 + 12 * int.from_bytes(data[directory : directory + 2], order), 12):
        if int.from_bytes(data[entry : entry + 2], order) in _TIFF_BLOCK_OFFSETS:
            return int.from_bytes(data[entry + 4 : entry + 8], order)
    return 0


def open_lazily(data: bytes, kind: str, filename: str = "") -> Image.Image:
    """``data`` opened by the Pillow plugin of its type ``kind`` (:func:`sniff_image_type`'s), its pixels not decoded.

    Not through ``Image.open``, which refuses a photo over twice ``Image.MAX_IMAGE_PIXELS`` before a JPEG can be
    told to decode at reduced size, and without telling the size it refused: the caller's limits apply to the size
    this tells (WebP's plugin alone still refuses such a photo while opening it: ``Image.DecompressionBombError``;
    :func:`size_pillow_refused` tells its size).
    """
    Image.init()
    factory, _accept = Image.OPEN[PIL_FORMATS[kind]]
    return factory(io.BytesIO(data), filename)


def size_pillow_refused(data: bytes) -> str:
    """The size of a photo whose Pillow plugin refused to open it for its size (``Image.DecompressionBombError``:
    WebP's does, above twice ``Image.MAX_IMAGE_PIXELS``, in words that give no width and height), as
    ``"WIDTHxHEIGHT"`` read from its header, as any other photo's size is said; Pillow's threshold, ``"more than N"``,
    for a header not read here."""
    if size := _webp_canvas_size(data):
        return f"{size[0]}x{size[1]}"
    return f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0)}"


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Width and height a WebP file declares (Google's WebP container specification: the first chunk is a lossy
    ``VP8 `` frame, a lossless ``VP8L`` one, or an extended file's ``VP8X`` canvas), nothing decoded; ``None`` for
    other content."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # the key frame's start code
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # the lossless signature, then 14 bits each of width - 1, height - 1
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # 24 bits each of the canvas width - 1 and height - 1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _too_large(size: str, limit: int, kind: str, decodable: str = "JPEG") -> str:
    """Why a photo of ``size`` pixels over ``limit`` is refused: of a ``kind`` that cannot be decoded at reduced size,
    unlike a ``decodable`` one."""
    return (
        f"{size} pixels exceeds the limit of {limit} pixels and {kind} cannot be decoded at reduced size; "
        f"downscale the photo (or save it as {decodable}) and retry"
    )


def _jpeg_scans(data: bytes, most: int) -> int:
    """The scans (SOS markers) of the JPEG ``data``, counted up to ``most``: its segments walked as ITU T.81 lays
    them out (B.1.1), so that a scan marker inside another segment (an EXIF thumbnail's) is not counted, and bytes
    between segments skipped as libjpeg skips them, so that they hide no scan from the count. Nothing is decoded; a
    file broken before its end is counted up to there, and left to the decoder to refuse."""
    scans, position = 0, 2  # after SOI
    while scans < most and (found := _JPEG_MARKER.search(data, position)):
        marker, position = data[found.start() + 1], found.end()
        if marker == 0xD9:  # EOI
            break
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        position += int.from_bytes(data[position : position + 2])  # the length counts its own 2 bytes
        if marker == 0xDA:  # SOS: its header, then entropy-coded data up to the next marker
            scans += 1
            if (end := _JPEG_MARKER_AFTER_SCAN.search(data, position)) is None:
                break
            position = end.start()
    return scans


def _png_chunks(data: bytes) -> tuple[int, int]:
    """The side chunks of the PNG ``data`` (counted up to one past :data:`MAX_PNG_SIDE_CHUNKS`) and its image data
    chunks, IDAT (up to one past :data:`MAX_PNG_IDAT_CHUNKS`), from their lengths (PNG specification, 5.3), nothing
    read; a file broken before its end is counted up to there. Side chunks are all the others, and the IDAT chunks
    holding no byte, but, once the image data has begun, an animated PNG's later frames (:data:`_PNG_FRAME_CHUNKS`,
    which Pillow reads only when asked for a frame). A frame's chunks before the image data (the first frame's
    control, one) or in a PNG that is not animated are read as it opens or decodes, each in Python as any other
    chunk: they count."""
    side, image, position, animated, frames_begun = 0, 0, 8, False, False  # after the signature
    while (
        side <= MAX_PNG_SIDE_CHUNKS
        and image <= MAX_PNG_IDAT_CHUNKS
        and position + 8 <= len(data)
        and (kind := data[position + 4 : position + 8]) != b"IEND"
    ):
        length = int.from_bytes(data[position : position + 4])
        if kind == b"acTL":  # animated as Pillow has it: more than one frame (fewer than 2**31)
            animated = 1 < int.from_bytes(data[position + 8 : position + 12]) <= 2**31
        frames_begun = frames_begun or (animated and kind == b"IDAT")
        image += kind == b"IDAT"
        side += (length == 0) if kind == b"IDAT" else not (frames_begun and kind in _PNG_FRAME_CHUNKS)
        position += 12 + length  # length, type, data, CRC
    return side, image


def _draft_jpeg(img: Image.Image, max_side: int | None, max_pixels: int) -> None:
    """Ask libjpeg for the coarsest DCT scale (1, 1/2, 1/4, 1/8) that still satisfies
    ``max_side`` (not smaller than it) and brings the pixel count under ``max_pixels``."""
    width, height = img.size
    scale = 1
    # smallest power of two that brings the decoded image under the pixel limit
    while scale < 8 and width * height / scale**2 > max_pixels:
        scale *= 2
    if max_side is not None:
        # largest power of two that keeps the longest side >= max_side
        fit = max(width, height) / max_side
        if fit >= 2:
            scale = max(scale, min(8, 2 ** int(math.log2(fit))))
    if scale > 1:
        # draft() picks the largest scale s with size // requested >= s: request size // scale,
        # at least 1 px (a 4000 x 3 px banner would ask for 0 px and make Pillow divide by zero)
        requested = (max(1, width // scale), max(1, height // scale))
        img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else "RGB", requested)


def _plain_cmyk_read_as_stored(img: Image.Image) -> Image.Image:
    """``img`` with its inks as the file stores them when it is a CMYK JPEG without Adobe's APP14 marker (a new
    image, holding ``img``'s info: its colour profile and EXIF orientation); ``img`` itself otherwise.

    Pillow reads every CMYK JPEG by Adobe's convention, inks stored inverted (0 = full ink), which Photoshop and
    Pillow itself write with that marker; a file without it stores them as they are (libjpeg's default, some
    scanners and prepress tools), and came out as its negative: red ink as near black."""
    if img.format != "JPEG" or img.mode != "CMYK" or "adobe" in img.info:
        return img
    return ImageChops.invert(img)


def _blendable(img: Image.Image) -> Image.Image:
    """``img`` in a mode whose pixels can be averaged when resized: 8-bit, with any
    transparency as an alpha channel. ``img`` itself when it already is (RGB, L, CMYK, RGBA, ...).

    Pillow resizes palette and 1-bit images with NEAREST (1-px stripes come out one
    colour), and averaging would smear a colour key (``tRNS``) into pixels it no longer
    matches. Converting does not mutate ``img``.
    """
    if img.mode in _HIGH_DEPTH_MODES:
        return _to_eight_bit(img)
    if img.mode in ("P", "PA") or "transparency" in img.info:
        return img.convert("RGBA")  # applies a colour key or transparent palette entries as alpha
    if img.mode == "1":
        return img.convert("L")
    return img


def _to_eight_bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or floating-point image as 8-bit grey (``L``, or ``LA`` with a colour key).

    Scaled by the depth, not by the image's own values: 16-bit by 65535, floating point as
    intensities in [0, 1]. Mode ``I`` does not record its depth: 16-bit unless every value fits in 8 bits.
    A TIFF stored "white is zero" is inverted (Pillow inverts such 8-bit greys itself, not deeper ones).

    Converted band by band: the whole image in floating point would take 8 bytes a pixel, several times over
    (over 2 GB for a 16-bit photo at the pixel limit), where the result takes one.
    """
    width, height = img.size
    if img.mode == "F":
        top = 1.0
    elif img.mode in _SIXTEEN_BIT_MODES or cast(float, (img.getextrema() or (0, 0))[1]) > 255:  # None: an empty image;
        # cast: (min, max) of the one band these modes have, where getextrema's type admits one pair per band
        top = 65535.0
    else:
        top = 255.0
    white_is_zero = getattr(img, "tag_v2", {}).get(_PHOTOMETRIC_TAG) == 0
    key = img.info.get("transparency")
    grey = np.empty((height, width), dtype=np.uint8)
    # a 16-bit PNG's tRNS: the key is compared before scaling
    alpha = np.empty((height, width), dtype=np.uint8) if isinstance(key, int | float) else None
    band = max(1, _CONVERSION_BAND_PIXELS // max(1, width))
    for first_row in range(0, height, band):
        rows = slice(first_row, min(first_row + band, height))
        values = np.nan_to_num(np.asarray(img.crop((0, rows.start, width, rows.stop)), dtype=np.float64))
        intensity = values / top
        if white_is_zero:
            intensity = 1.0 - intensity
        grey[rows] = np.clip(intensity * 255.0 + 0.5, 0, 255)
        if alpha is not None:
            alpha[rows] = np.where(values == key, 0, 255)
    out = Image.fromarray(grey)
    if alpha is not None:
        out.putalpha(Image.fromarray(alpha))
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}  # keeps the EXIF orientation
    return out


def _limit_side(img: Image.Image, max_side: int | None) -> Image.Image:
    """``img`` downscaled so that its longest side is ``max_side`` (a copy: never mutates
    the input), or ``img`` itself if it is small enough."""
    longest = max(img.size)
    if max_side is None or longest <= max_side:
        return img
    # ImageOps.contain's rounding, unchanged (cached features stay valid), but never 0 px:
    # contain turns a 4000 x 1 px banner into an empty 224 x 0 image
    width, height = (max_side if side == longest else max(1, round(side / longest * max_side)) for side in img.size)
    return img.resize((width, height), Image.Resampling.BILINEAR)


def _to_upright_rgb(img: Image.Image) -> Image.Image:
    """A :func:`_blendable` image with EXIF orientation applied, converted to sRGB with transparency on white."""
    # an animated GIF or multi-page TIFF given at a later frame: its first one. Not by its n_frames, which walks
    # every page, each TIFF page costing a scan of those before it: a 5 MB TIFF of 60,000 pages held a thread 45 s
    if img.tell() != 0:
        img.seek(0)
    img = _in_srgb(ImageOps.exif_transpose(img))
    if img.mode in _TRANSPARENT_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def _in_srgb(img: Image.Image) -> Image.Image:
    """``img`` converted from its embedded colour profile to sRGB, as a browser shows it; ``img`` itself when
    there is nothing to convert (see :func:`_srgb_transform`). Read as sRGB, an Adobe RGB or Display P3 photo
    comes out dull, and a CMYK one is converted by a formula that ignores its inks."""
    profile = img.info.get("icc_profile")
    # littleCMS converts a grey photo's transparency to none: its grey alone is converted, the alpha put back
    colour_mode = "L" if img.mode == "LA" else img.mode
    transform = _srgb_transform(profile, colour_mode) if profile else None
    if transform is None:
        return img
    if colour_mode == img.mode:
        return transform.apply(img)
    converted = transform.apply(img.convert(colour_mode))
    converted.putalpha(img.getchannel("A"))
    return converted


@functools.lru_cache(maxsize=8)  # the few profiles of a catalogue; a CMYK one can weigh a megabyte
def _srgb_transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform of ``mode`` pixels described by ``profile`` to sRGB, or ``None``: a profile that moves no
    colour by more than one level (an sRGB one: those photos, and their cached features, stay as they were), or
    one that cannot be used (unreadable, or of another colour space than the pixels, such as an RGB profile on a
    grey photo), which browsers ignore too."""
    if ImageCms is None or mode not in _MANAGED_MODES:
        return None
    target = _MANAGED_MODES[mode]
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, target)
    except (OSError, ImageCms.PyCMSError):
        return None
    if mode == "CMYK":  # inks always need converting
        return transform
    # every 32nd level of each channel, 729 colours
    levels = np.arange(0, 257, 32).clip(max=255).astype(np.uint8)
    probe = Image.fromarray(np.stack(np.meshgrid(levels, levels, levels), axis=-1).reshape(1, -1, 3)).convert(mode)
    moved = np.abs(np.asarray(transform.apply(probe), np.int16) - np.asarray(probe.convert(target), np.int16))
    return transform if moved.max() > 1 else None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in text  # valid UTF-8, but no text file holds NUL bytes


@dataclass(frozen=True)
class ImageItem:
    """One product's photo: what to decode, and whom to name when it fails."""

    product_id: str
    source: ImageSource


def image_items(frame: pd.DataFrame) -> list[ImageItem | None]:
    """One :class:`ImageItem` per product, ``None`` where the product has no photo
    or its file is missing or unreadable (logged)."""
    items: list[ImageItem | None] = []
    for product_id, source in zip(frame["product_id"].astype(str), frame["image"], strict=True):
        if _is_missing(source):
            items.append(None)
        elif isinstance(source, str | os.PathLike) and (problem := _file_problem(Path(source))):
            log.warning("product %s, image: %s (%s); treated as having no photo", product_id, problem, source)
            items.append(None)
        else:
            items.append(ImageItem(product_id, source))
    return items


def _file_problem(path: Path) -> str | None:
    """Why the photo file cannot be read, or ``None``. Checked when listing, so that an
    unreadable file is a product without a photo rather than a crash of
    :func:`image_content_key` (which reads it for the cache key) in the middle of a batch."""
    if not path.is_file():  # also keeps open() below from blocking on a FIFO
        return "file not found"
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return _read_error_reason(exc)


def photo_cache_version(version: str) -> str:
    """The cache version of an extractor ``version`` that reads decoded photos: it changes with
    :data:`DECODER_VERSION` too, so a decoding fix is not hidden by vectors cached from the old pixels."""
    return f"{version}-decoder{DECODER_VERSION}"


def image_content_key(source: ImageSource) -> str:
    """SHA-1 of an image's content: file or raw bytes, or the decoded pixels of a PIL image.

    A PIL image's raw pixels are not its picture: the palette, a colour key and the EXIF
    orientation change what :func:`load_image` makes of them, so the key hashes that.
    For an RGB image without orientation it is the same as hashing its own pixels.
    """
    if isinstance(source, Image.Image):
        try:
            pixels = load_image(source)
        except ImageDecodeError:
            pixels = source  # decoding fails again (and is logged) when it is encoded
        digest = hashlib.sha1(f"{pixels.mode}{pixels.size}".encode())
        digest.update(pixels.tobytes())
        return digest.hexdigest()
    if isinstance(source, bytes | bytearray | memoryview):
        return hashlib.sha1(source).hexdigest()
    with open(source, "rb") as file:  # streamed: an oversized file costs no memory before decoding refuses it
        return hashlib.file_digest(file, "sha1").hexdigest()


def oversized_file(source: ImageSource) -> int | None:
    """The size of ``source``'s file when it is over :data:`DEFAULT_MAX_BYTES`, which the extractors' decoding
    refuses unread whatever it holds (so nothing needs to read it: a path may name a disk image, gigabytes); else
    ``None``. Raises :class:`OSError` when the file cannot be stat'ed."""
    if isinstance(source, str | os.PathLike) and (size := os.stat(source).st_size) > DEFAULT_MAX_BYTES:
        return size
    return None


def photo_key(item: ImageItem) -> str:
    """The :func:`image_content_key` an extractor caches ``item``'s photo under. An :func:`oversized_file` is keyed
    by its path and size, unread (it was read whole by each extractor). A file that opened when listed
    (:func:`image_items`) but does not read through (an I/O error) is keyed by its path: its decoding fails in
    turn, naming why, and its product is read without a photo rather than failing its batch."""
    source = item.source
    try:
        if (size := oversized_file(source)) is not None:
            return f"oversized:{source!s}:{size}"  # !s: a path here, where mypy's type admits bytes
        return image_content_key(source)
    except OSError as exc:
        return f"unreadable:{source!s}:{exc.errno}"


def decode_item(item: ImageItem, max_side: int | None = None) -> Image.Image | None:
    """Decoded RGB image, or ``None`` (with a warning naming the product) when unreadable."""
    try:
        return load_image(item.source, product_id=item.product_id, max_side=max_side)
    except ImageDecodeError as exc:
        log.warning("%s; treated as having no photo", exc)
        return None


def _is_missing(source: object) -> bool:
    """None, NaN, pd.NA or an empty path: the product has no photo."""
    return is_missing(source) or (isinstance(source, str) and not source.strip())

"""Photo quality: detail (blur), size, white borders, colour statistics, exact and perceptual duplicates.

Per photo, :func:`image_quality` gives a flat dict of scores; over a catalogue
frame, :func:`quality_frame` computes them for every product in a thread pool
(with a progress bar) and :func:`find_duplicate_images` groups products sharing
the same photo: byte-identical files (SHA-1) and near-identical pictures
(perceptual hash within a Hamming distance and the same colours, of the content inside the photo's white
border), flagging groups whose labels disagree.
``prodcat audit`` reports these.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from prodcat.grouping import conflict_level, representative_groups
from prodcat.image.decode import ImageDecodeError, load_image
from prodcat.progress import progress_bar

#: longest side every photo is analysed at, smaller ones upscaled: detail scores are only comparable at one
#: scale (at its own 50 x 80 pixels, a blurred photo scored 1,637, "sharp")
ANALYSIS_SIDE = 512
#: a channel value above this counts as "white" for borders
WHITE_LEVEL = 235
#: variance of the Laplacian (at ANALYSIS_SIDE) below which a photo has low detail: blurry, upscaled from a
#: thumbnail, or simply a smooth, plain product (most of those flagged on Flipkart)
LOW_DETAIL_THRESHOLD = 100.0
#: longest side, in the file, below which a photo is flagged small
SMALL_SIDE = 256
#: default Hamming distance (of 64 bits) up to which two pHashes are the same picture. Measured on Flipkart's
#: white-background shots: different products (black and gold watch, two mugs) are at 2-6 already, a true copy at 4
PHASH_DISTANCE = 4
#: side of the colour thumbnail compared between photos of close pHash (the pHash is of the grey image)
COLOUR_SIDE = 4
#: largest difference (0-255, mean over RGB) of any thumbnail cell between two photos of the same picture: on
#: Flipkart, a true copy differs by 9, recoloured variants (pink and blue blanket) and new prints by 27 or more
COLOUR_DISTANCE = 16


def border_box(img: Image.Image, level: int = WHITE_LEVEL, pad: int = 2) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` of the non-white content in the image's own pixels,
    ``None`` when the whole photo is white."""
    # the image features crop every photo with it, at their decoding size: not enlarged for nothing
    scaled = _at_analysis_scale(img, upscale=False)
    box = _content_box(_darkest_channel(np.asarray(scaled.convert("RGB"))), level)
    if box is None:
        return None
    sx, sy = img.width / scaled.width, img.height / scaled.height
    left, top, right, bottom = box
    return (
        max(0, int(left * sx) - pad),
        max(0, int(top * sy) - pad),
        min(img.width, int(np.ceil(right * sx)) + pad),
        min(img.height, int(np.ceil(bottom * sy)) + pad),
    )


def crop_borders(img: Image.Image, level: int = WHITE_LEVEL, min_keep: float = 0.05) -> Image.Image:
    """The photo cropped to its non-white content (unchanged if all white or if the
    content would be smaller than ``min_keep`` of each side: noise, not a product)."""
    box = border_box(img, level)
    if box is None:
        return img
    left, top, right, bottom = box
    if (right - left) < min_keep * img.width or (bottom - top) < min_keep * img.height:
        return img
    return img.crop(box) if box != (0, 0, img.width, img.height) else img


def perceptual_hash(img: Image.Image) -> str:
    """64-bit pHash as 16 hex digits (robust to resizing and recompression)."""
    return str(imagehash.phash(img))


def colour_thumbnail(img: Image.Image) -> str:
    """The photo averaged down to :data:`COLOUR_SIDE` x :data:`COLOUR_SIDE` RGB cells, as hex."""
    return img.convert("RGB").resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX).tobytes().hex()


def colour_distance(thumbnails: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Largest per-cell difference (mean over RGB, 0-255) between paired :func:`colour_thumbnail` values."""
    cells = COLOUR_SIDE * COLOUR_SIDE
    first, second = (
        np.frombuffer(bytes.fromhex("".join(side)), np.uint8).reshape(len(side), cells, 3).astype(np.int16)
        for side in (thumbnails, others)
    )
    difference = np.abs(first - second)
    return difference.mean(axis=2).max(axis=1)


def image_quality(img: Image.Image) -> dict[str, Any]:
    """All per-photo scores: ``width``, ``height`` (as stored in the file when ``img`` comes
    from :func:`~prodcat.image.decode.load_image`), ``small`` (longest side below :data:`SMALL_SIDE`),
    ``blur`` (variance of the Laplacian), ``low_detail`` (below :data:`LOW_DETAIL_THRESHOLD`),
    ``border_ratio``, colour statistics, ``phash`` and ``colour_thumbnail`` (both of the content inside the white
    border, as :func:`border_box` finds it)."""
    width, height = img.info.get("original_size", img.size)
    img = _at_analysis_scale(img)  # once, and the pixels' extremes once, for every score
    rgb = np.asarray(img.convert("RGB"))
    darkest = _darkest_channel(rgb)
    box = _content_box(darkest)
    detail = _detail(rgb, box)
    # the picture compared is the product, not its frame: two small products on wide white margins had close
    # pHashes and colours, the margin's (Rakuten's 7 duplicate groups with conflicting labels were all such)
    content = img.crop(box) if box is not None else img
    return {
        "width": width,
        "height": height,
        "small": max(width, height) < SMALL_SIDE,
        "blur": detail,
        "low_detail": detail < LOW_DETAIL_THRESHOLD,
        "border_ratio": _border_ratio(box, darkest.shape),
        **_colour_stats(rgb, darkest),
        "phash": perceptual_hash(content),
        "colour_thumbnail": colour_thumbnail(content),
    }


def quality_frame(frame: pd.DataFrame, n_jobs: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Scores of every product's photo, one row per product of ``frame`` (same index).

    Columns: ``product_id``, ``sha1`` (of the file bytes), ``error`` (why the photo
    is unusable, or ``None``) and the keys of :func:`image_quality` (NaN/None for
    products without a usable photo).
    """
    from prodcat.image.features import image_content_key, image_items

    items = image_items(frame)

    def score(item: Any) -> dict[str, Any]:
        if item is None:
            return {"error": "no photo"}
        try:
            img = load_image(item.source, product_id=item.product_id, max_side=ANALYSIS_SIDE)
        except ImageDecodeError as exc:
            return {"error": exc.reason}
        return {"sha1": image_content_key(item.source), "error": None, **image_quality(img)}

    rows = _thread_map(score, items, n_jobs, progress, "image quality")
    out = pd.DataFrame(rows, index=frame.index)
    out.insert(0, "product_id", frame["product_id"].astype(str).to_numpy())
    # no row at all (empty catalogue) or no usable photo: callers still index these columns (scores NaN, as unscored)
    missing = dict.fromkeys(("sha1", "error", "phash", "colour_thumbnail")) | dict.fromkeys(
        ("low_detail", "small", "blur", "border_ratio", "width", "height"), np.nan
    )
    for column, empty in missing.items():
        if column not in out:
            out[column] = empty
    return out


def find_duplicate_images(
    frame: pd.DataFrame,
    *,
    max_distance: int = PHASH_DISTANCE,
    max_colour_distance: float = COLOUR_DISTANCE,
    label_column: str | None = "category",
    qualities: pd.DataFrame | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Groups of products sharing a photo, exactly or perceptually.

    A group is its first photo (the representative) and the photos within ``max_distance`` of its pHash and
    ``max_colour_distance`` of its :func:`colour_thumbnail`; neighbours of neighbours are not chained in.

    Args:
        frame: canonical catalogue frame.
        max_distance: largest pHash Hamming distance (of 64 bits) counted as the same picture.
        max_colour_distance: largest :func:`colour_distance` counted as the same picture.
        label_column: column compared inside a group (``None`` to skip).
        qualities: a :func:`quality_frame` result to reuse (computed otherwise).
        n_jobs, progress: the threads and progress bar of that :func:`quality_frame` when it is computed.

    Returns:
        One row per product that belongs to a group of two or more:
        ``group`` (int id), ``product_id``, ``kind`` (``"exact"`` if every photo of the
        group has the same bytes, else ``"perceptual"``), ``sha1``, ``phash``,
        ``label``, ``conflict_level`` (the group's :func:`~prodcat.grouping.conflict_level`: the shallowest
        category level at which a member's label differs from the representative's, 0 if none does) and
        ``labels_disagree`` (``conflict_level > 0``).
        Sorted by group, the representative first.
    """
    scores = qualities if qualities is not None else quality_frame(frame, n_jobs=n_jobs, progress=progress)
    usable = scores[scores["error"].isna()]
    columns = ["group", "product_id", "kind", "sha1", "phash", "label", "conflict_level", "labels_disagree"]
    if len(usable) < 2:
        return pd.DataFrame(columns=columns)
    group = _photo_groups(usable, max_distance, max_colour_distance)
    members = np.flatnonzero(np.bincount(group)[group] > 1)
    if not len(members):
        return pd.DataFrame(columns=columns)
    labels = (
        frame.loc[usable.index[members], label_column].to_numpy()
        if label_column and label_column in frame
        else np.full(len(members), None)
    )
    out = pd.DataFrame(
        {
            "group": group[members],
            "product_id": usable["product_id"].to_numpy()[members],
            "sha1": usable["sha1"].to_numpy()[members],
            "phash": usable["phash"].to_numpy()[members],
            "label": labels,
        }
    )
    groups = out.groupby("group")
    out["kind"] = np.where(groups["sha1"].transform("nunique") == 1, "exact", "perceptual")
    # as an array: conflict_level reads labels[0] by position, the representative (each group's first row)
    out["conflict_level"] = groups["label"].transform(lambda labels: conflict_level(labels.to_numpy())).astype(int)
    out["labels_disagree"] = out["conflict_level"] > 0
    out["group"] = pd.factorize(out["group"], sort=True)[0]
    return out.sort_values("group", kind="stable").reset_index(drop=True)[columns]


def _photo_groups(usable: pd.DataFrame, max_distance: int, max_colour_distance: float) -> np.ndarray:
    """Representative position of each usable photo (see :func:`find_duplicate_images`).

    Distances are computed between distinct pHashes only, each standing for its first product, and a product
    sharing a pHash joins that product's group when their colours agree too: m copies of one placeholder photo
    are m comparisons, not m^2 / 2 pairs (20,000 copies: 3 GB of pairs).
    """
    codes = pd.factorize(usable["phash"])[0]
    distinct = np.unique(codes, return_index=True)[1]
    thumbnails = usable["colour_thumbnail"].to_numpy()
    bits = np.stack([imagehash.hex_to_hash(h).hash.ravel() for h in usable["phash"].to_numpy()[distinct]])
    close_r, close_c = _close_pairs(bits.astype(np.uint8), max_distance)
    same_colour = colour_distance(thumbnails[distinct[close_r]], thumbnails[distinct[close_c]]) <= max_colour_distance
    unit_group = representative_groups(len(distinct), close_r[same_colour], close_c[same_colour])
    group = distinct[unit_group[codes]]
    # a product whose colours differ from its pHash's first product (a recoloured variant) stands alone
    recoloured = colour_distance(thumbnails, thumbnails[distinct[codes]]) > max_colour_distance
    group[recoloured] = np.flatnonzero(recoloured)
    return group


def _close_pairs(bits: np.ndarray, max_distance: int, block_bytes: int = 1 << 25) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i < j`` within ``max_distance`` of bit rows ``(n, 64)``, block by block.

    Each block of rows is compared with itself and the rows after it; the block is sized so that
    its ``uint64`` xor holds at most ``block_bytes`` (32 MiB), and the distance is the popcount of
    that xor, so peak memory stays about that whatever ``n`` (unpacking the xor into bits took
    64 bytes a pair instead: 15 GB a block at 85,000 photos).
    """
    packed = np.packbits(bits, axis=1).view(np.uint64).ravel()
    step = max(1, block_bytes // (packed.itemsize * max(1, len(packed))))
    rows, cols = [], []
    for start in range(0, len(packed), step):
        rest = packed[start:]
        distance = np.bitwise_count(rest[:step, None] ^ rest[None, :])
        r, c = np.nonzero(distance <= max_distance)
        keep = r < c
        rows.append(start + r[keep])
        cols.append(start + c[keep])
    return np.concatenate(rows), np.concatenate(cols)


def _thread_map(
    func: Callable[[Any], dict[str, Any]], items: list[Any], n_jobs: int | None, progress: bool, desc: str
) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(n_jobs or os.cpu_count()) as pool:
        return list(progress_bar(pool.map(func, items), total=len(items), desc=desc, disable=not progress, unit="img"))


def _at_analysis_scale(img: Image.Image, upscale: bool = True) -> Image.Image:
    """The photo with its longest side at :data:`ANALYSIS_SIDE`: smaller photos upscaled too, unless not
    ``upscale`` (a box of the content needs no more pixels than the photo has)."""
    if max(img.size) == ANALYSIS_SIDE or (not upscale and max(img.size) < ANALYSIS_SIDE):
        return img
    scale = ANALYSIS_SIDE / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)


def _darkest_channel(rgb: np.ndarray) -> np.ndarray:
    # np.minimum over the three planes: 0.8 ms a photo, where rgb.min(axis=2) took 12 ms
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def _brightest_channel(rgb: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def _detail(rgb: np.ndarray, box: tuple[int, int, int, int] | None) -> float:
    """Variance of the Laplacian of the grey pixels inside ``box`` (all of them when ``None``)."""
    lap = cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F)
    if box is not None:
        left, top, right, bottom = box
        lap = lap[top:bottom, left:right]
    return float(lap.var())


def _border_ratio(box: tuple[int, int, int, int] | None, shape: tuple[int, ...]) -> float:
    if box is None:
        return 1.0
    left, top, right, bottom = box
    return 1.0 - (right - left) * (bottom - top) / (shape[0] * shape[1])


def _colour_stats(rgb: np.ndarray, darkest: np.ndarray) -> dict[str, float]:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return {
        "brightness": float(hsv[..., 2].mean()),
        "saturation": float(hsv[..., 1].mean()),
        "mean_r": float(rgb[..., 0].mean()),
        "mean_g": float(rgb[..., 1].mean()),
        "mean_b": float(rgb[..., 2].mean()),
        "white_share": float((darkest > WHITE_LEVEL).mean()),
        "dark_share": float((_brightest_channel(rgb) < 20).mean()),
    }


def _content_box(darkest: np.ndarray, level: int = WHITE_LEVEL) -> tuple[int, int, int, int] | None:
    """Bounding box ``(left, top, right, bottom)`` of pixels whose darkest channel is at most ``level``.

    A row or column counts as content from a few such pixels on (0.5 % of its length,
    at least 2), so isolated JPEG noise in a white margin does not stretch the box.
    """
    content = darkest <= level
    height, width = content.shape
    rows = np.flatnonzero(content.sum(axis=1) >= max(2, 0.005 * width))
    cols = np.flatnonzero(content.sum(axis=0) >= max(2, 0.005 * height))
    if not len(rows) or not len(cols):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

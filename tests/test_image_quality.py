"""Quality scores on known cases and duplicate detection across a catalogue."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter, ImageOps

from prodcat.grouping import representative_groups
from prodcat.image.quality import (
    ANALYSIS_SIDE,
    COLOUR_SIDE,
    PHASH_DISTANCE,
    _close_pairs,
    crop_borders,
    find_duplicate_images,
    image_quality,
    quality_frame,
)


def _textured(seed: int = 0, size: int = 256) -> Image.Image:
    """A sharp, busy picture: random blocks of colour."""
    blocks = np.random.default_rng(seed).integers(0, 200, (size // 8, size // 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((size, size), Image.Resampling.NEAREST)


def _catalogue(tmp_path: Path, images: dict[str, Image.Image], labels: dict[str, str]) -> pd.DataFrame:
    paths = {}
    for pid, img in images.items():
        paths[pid] = tmp_path / f"{pid}.jpg"
        img.save(paths[pid], "JPEG", quality=92)
    return pd.DataFrame(
        {
            "product_id": list(images),
            "title": "",
            "description": "",
            "image": [str(paths[p]) for p in images],
            "category": [labels[p] for p in images],
        }
    )


def test_blurred_copy_scores_lower() -> None:
    sharp = _textured(size=ANALYSIS_SIDE)  # a smaller one is upscaled, and so smoothed, before scoring
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    assert image_quality(blurred)["blur"] < 0.2 * image_quality(sharp)["blur"]
    assert image_quality(blurred)["low_detail"] and not image_quality(sharp)["low_detail"]


def test_a_small_photo_is_scored_at_the_analysis_scale(flipkart_dir: Path, tmp_path: Path) -> None:
    """A blurred real photo shrunk to 50 x 80 scored 1,637 ("sharp") at its own size; at 512 px it has low
    detail, and it is flagged small. The sharp photo at full size is neither."""
    from prodcat.image.decode import load_image

    photo = load_image(flipkart_dir / "Images" / "29b1ca231e10d5269516b80bf9d0dffc.jpg", max_side=ANALYSIS_SIDE)
    photo.filter(ImageFilter.GaussianBlur(3)).resize((50, 80)).save(tmp_path / "tiny.jpg")
    sharp = image_quality(photo)
    tiny = image_quality(load_image(tmp_path / "tiny.jpg", max_side=ANALYSIS_SIDE))
    assert not sharp["low_detail"] and not sharp["small"]
    assert tiny["low_detail"] and tiny["small"] and (tiny["width"], tiny["height"]) == (50, 80)


def test_white_framed_image_crops_to_its_content() -> None:
    content = _textured(1, 200)
    framed = ImageOps.expand(content, border=(100, 50, 100, 50), fill="white")  # 400 x 300
    assert image_quality(framed)["border_ratio"] == pytest.approx(1 - 200 * 200 / (400 * 300), abs=0.02)
    cropped = crop_borders(framed)
    assert abs(cropped.width - 200) <= 6 and abs(cropped.height - 200) <= 6
    assert image_quality(_textured())["border_ratio"] < 0.01
    blank = Image.new("RGB", (50, 50), "white")
    assert crop_borders(blank).size == (50, 50) and image_quality(blank)["border_ratio"] == 1.0


def test_small_goes_by_the_longest_side_and_a_sliver_of_content_is_not_cropped_to() -> None:
    """'small' is a longest side below SMALL_SIDE: a wide banner 100 px high is not small. And crop_borders keeps a
    photo whose content would be a sliver (a thin line on white, under min_keep of a side) rather than crop to it.
    Each was tested only where both sides agree (50 x 80, square frames), where min and max, or and, do too."""
    assert not image_quality(_textured(size=512).resize((512, 100)))["small"]
    assert image_quality(_textured(size=255).resize((255, 100)))["small"]
    line = Image.new("RGB", (400, 300), "white")
    line.paste(_textured(5, 200).resize((200, 4)), (100, 150))  # 200 px wide, 4 px high: 1.3% of the height
    assert crop_borders(line).size == (400, 300)


def test_a_photo_recoloured_in_one_cell_is_not_a_duplicate(tmp_path: Path) -> None:
    """The colour check compares the thumbnails' largest cell difference: a picture whose one cell of 16 turned from
    red to a green of the same grey (same pHash) is another product, not a copy; averaged over the cells, the
    difference (128 / 16) fell under the threshold."""
    red, green = _textured(6), _textured(6)
    cell = 256 // COLOUR_SIDE
    red.paste((255, 0, 0), (0, 0, cell, cell))
    green.paste((0, 130, 0), (0, 0, cell, cell))  # grey 76 as the red's: the pHash sees the same picture
    frame = _catalogue(
        tmp_path, {"red": red, "green": green, "copy": red.copy()}, dict.fromkeys(["red", "green", "copy"], "Toys")
    )
    assert sorted(find_duplicate_images(frame, progress=False)["product_id"]) == ["copy", "red"]


def test_colour_statistics() -> None:
    stats = image_quality(Image.new("RGB", (64, 64), (255, 0, 0)))
    assert stats["mean_r"] == pytest.approx(255) and stats["mean_g"] == pytest.approx(0)
    assert stats["saturation"] > 250 and stats["white_share"] == 0


def test_duplicates_exact_and_perceptual_with_label_disagreement(tmp_path: Path) -> None:
    original = _textured(2)
    frame = _catalogue(
        tmp_path,
        {
            "a": original,
            "b": original.resize((180, 180)),  # same picture, resized and re-encoded
            "c": _textured(3),
            "d": _textured(4),
        },
        {"a": "Toys", "b": "Books", "c": "Toys", "d": "Toys"},
    )
    shutil.copy(frame.loc[2, "image"], tmp_path / "e.jpg")  # byte-identical copy of c
    frame.loc[4] = ["e", "", "", str(tmp_path / "e.jpg"), "Toys"]
    frame.loc[5] = ["f", "", "", None, "Toys"]  # no photo: not a duplicate of anything

    dups = find_duplicate_images(frame, progress=False)
    groups = {tuple(sorted(g["product_id"])): g for _, g in dups.groupby("group")}
    assert set(groups) == {("a", "b"), ("c", "e")}
    assert (groups["a", "b"]["kind"] == "perceptual").all() and groups["a", "b"]["labels_disagree"].all()
    assert (groups["a", "b"]["conflict_level"] == 1).all()
    assert (groups["c", "e"]["kind"] == "exact").all() and not groups["c", "e"]["labels_disagree"].any()
    assert (groups["c", "e"]["conflict_level"] == 0).all()


def test_a_groups_conflict_level_is_the_shallowest_level_where_a_member_differs(tmp_path: Path) -> None:
    """Pairs alone were tested (one member, one level): a group of three whose members differ from the first at
    levels 2 and 1 conflicts at 1, the shallowest, and a member agreeing with it (level 0) hides no conflict."""
    labels = {
        "a1": "Toys > Cars",
        "a2": "Toys > Trains",
        "a3": "Books > Comics",
        "b1": "Toys > Cars",
        "b2": "Toys > Cars",
        "b3": "Toys > Trains",
    }
    pictures = {"a": _textured(7), "b": _textured(8)}
    frame = _catalogue(tmp_path, {pid: pictures[pid[0]] for pid in labels}, labels)
    dups = find_duplicate_images(frame, progress=False).set_index("product_id")
    assert dups["conflict_level"].to_dict() == {"a1": 1, "a2": 1, "a3": 1, "b1": 2, "b2": 2, "b3": 2}


def _pairs_by_unpacking(bits: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """The former search, in one block: Hamming distances of the xor unpacked into bits."""
    packed = np.packbits(bits, axis=1).view(np.uint64).ravel()
    xor = packed[:, None] ^ packed[None, :]
    distance = np.unpackbits(xor.view(np.uint8), axis=1).reshape(len(packed), -1, 64).sum(axis=2)
    r, c = np.nonzero(distance <= max_distance)
    keep = r < c
    return r[keep], c[keep]


def _near_copies(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 64)`` pHash bits: copies of ``n // 4`` pictures, each bit flipped with probability 4 %,
    so that pairs fall on both sides of any small distance."""
    rng = np.random.default_rng(seed)
    pictures = rng.integers(0, 2, (n // 4, 64), dtype=np.uint8)
    return pictures[rng.integers(0, len(pictures), n)] ^ (rng.random((n, 64)) < 0.04).astype(np.uint8)


@pytest.mark.parametrize("block_bytes", [1, 8 * 300 * 7, 1 << 25])  # a row, 7 rows (uneven), all at once
def test_close_pairs_are_those_of_the_former_search(block_bytes: int) -> None:
    bits = _near_copies(300)
    for max_distance in (0, 3, 6, 20):
        expected = _pairs_by_unpacking(bits, max_distance)
        found = _close_pairs(bits, max_distance, block_bytes=block_bytes)
        assert len(expected[0]) > 0
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])


def test_near_duplicate_search_memory_is_bounded() -> None:
    n = 2500
    scores = _scores(_near_copies(n))
    frame = pd.DataFrame({"product_id": scores["product_id"], "category": "Toys"})
    tracemalloc.start()
    try:
        dups = find_duplicate_images(frame, qualities=scores, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(dups) > n / 2
    # xor blocks of 32 MiB; blocks of 2000 rows unpacked to bits took 2000 x n x 64 bytes (320 MB here)
    assert peak < 64e6, peak


def _scores(bits: np.ndarray) -> pd.DataFrame:
    """A quality frame of products whose photos have pHash ``bits`` ``(n, 64)`` (each its own file)."""
    hashes = [f"{int.from_bytes(np.packbits(row).tobytes(), 'big'):016x}" for row in bits]
    ids = [f"p{i}" for i in range(len(bits))]
    colours = "80" * 3 * COLOUR_SIDE**2  # all grey: only the pHashes tell the photos apart
    return pd.DataFrame({"product_id": ids, "sha1": ids, "error": None, "phash": hashes, "colour_thumbnail": colours})


def test_products_sharing_a_hash_are_grouped_as_by_every_pair() -> None:
    """Distances between distinct hashes only, copies joining their first: the same groups as all pairs."""
    bits = _near_copies(80)
    bits = np.concatenate([bits, bits[:40], bits[:40]])  # exact pHash copies of half the products, twice
    scores = _scores(bits)
    dups = find_duplicate_images(pd.DataFrame({"product_id": scores["product_id"]}), qualities=scores, progress=False)
    r, c = _pairs_by_unpacking(bits, PHASH_DISTANCE)  # find_duplicate_images's default
    group = representative_groups(len(bits), r, c)
    expected = {frozenset(np.flatnonzero(group == g)) for g in np.unique(group) if (group == g).sum() > 1}
    found = {frozenset(int(p[1:]) for p in group) for _, group in dups.groupby("group")["product_id"]}
    assert found == expected and len(found) > 10


def test_many_copies_of_one_photo_cost_links_not_pairs() -> None:
    """20,000 products showing one placeholder photo: 200 million pairs (3 GB) before; now 20,000 links."""
    bits = np.concatenate([np.tile(_near_copies(4)[:1], (20_000, 1)), _near_copies(400, seed=1)])
    scores = _scores(bits)
    tracemalloc.start()
    try:
        dups = find_duplicate_images(
            pd.DataFrame({"product_id": scores["product_id"]}), qualities=scores, progress=False
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dups.groupby("group").size().max() >= 20_000
    assert peak < 64e6, peak


def test_near_photos_are_not_chained() -> None:
    """a ~ b and b ~ c but a far from c: b joins a's group, c stays alone (one chain of 1,005 shoes on fashion)."""
    a = np.zeros(64, dtype=np.uint8)
    b, c = a.copy(), a.copy()
    b[:4] = 1  # 4 bits from a
    c[:8] = 1  # 4 bits from b, 8 from a
    scores = _scores(np.stack([a, b, c]))
    dups = find_duplicate_images(pd.DataFrame({"product_id": scores["product_id"]}), qualities=scores, progress=False)
    assert dups["product_id"].tolist() == ["p0", "p1"]


def test_photo_group_conflict_level_compares_members_with_the_representative() -> None:
    """One level per group, from category paths (not strings), members against the representative only."""
    bits = np.zeros((7, 64), dtype=np.uint8)
    bits[4:, :] = 1  # two pictures: p0-p3 and p4-p6
    scores = _scores(bits)
    labels = ["Toys > Cars", "Toys>Cars", None, "Toys > Cars > Red", "Toys > Cars", "Toys>Cars", "Toys > Dolls"]
    frame = pd.DataFrame({"product_id": scores["product_id"], "category": labels})
    dups = find_duplicate_images(frame, qualities=scores, progress=False)
    assert dups.groupby("group")["conflict_level"].agg(set).tolist() == [{3}, {2}]
    assert dups["labels_disagree"].all()
    agreeing = frame.assign(category=["Toys > Cars", "Toys>Cars", None, "Toys > Cars"] + ["Toys"] * 3)
    dups = find_duplicate_images(agreeing, qualities=scores, progress=False)
    assert (dups["conflict_level"] == 0).all() and not dups["labels_disagree"].any()


def _flipkart_photos(flipkart_dir: Path, product_ids: list[str], labels: list[str]) -> pd.DataFrame:
    images = [str(flipkart_dir / "Images" / f"{pid}.jpg") for pid in product_ids]
    return pd.DataFrame({"product_id": product_ids, "image": images, "category": labels})


def test_recoloured_product_is_not_a_duplicate_but_a_copy_is(flipkart_dir: Path) -> None:
    """Real Flipkart pairs: a pink and a blue blanket at pHash distance 2 (the grey pHash cannot tell them apart)
    are different products; one pizza cutter photographed for two sellers, at distance 4, is the same picture."""
    blankets = ["3f9f12fa8fc6d7ebef136040f179a201", "a371cfcae8c6ec3b82ae37a83a8ae9b9"]
    cutters = ["e3c741a05c82c54343b94ed8c1292e2a", "f2751cf0dd59d223cacbc5da5df42a1a"]
    frame = _flipkart_photos(
        flipkart_dir, blankets + cutters, ["Blankets"] * 2 + ["Cutters > Sam", "Cutters > Agromech"]
    )
    dups = find_duplicate_images(frame, progress=False)
    assert dups["product_id"].tolist() == cutters and dups["labels_disagree"].all()
    assert (dups["conflict_level"] == 2).all()  # both are cutters: the sellers differ


def test_quality_frame_reports_unusable_photos(tmp_path: Path) -> None:
    frame = _catalogue(tmp_path, {"ok": _textured()}, {"ok": "Toys"})
    (tmp_path / "bad.jpg").write_bytes(b"")
    frame.loc[1] = ["bad", "", "", str(tmp_path / "bad.jpg"), "Toys"]
    scores = quality_frame(frame, progress=False)
    assert pd.isna(scores.loc[0, "error"]) and scores.loc[0, "width"] == 256
    assert "empty" in scores.loc[1, "error"] and np.isnan(scores.loc[1, "blur"])


@pytest.mark.slow
def test_real_photos_quality(flipkart_dir: Path) -> None:
    photos = sorted((flipkart_dir / "Images").glob("*.jpg"))[:30]
    frame = pd.DataFrame({"product_id": [p.stem for p in photos], "image": [str(p) for p in photos]})
    scores = quality_frame(frame, progress=False)
    assert scores["error"].isna().all()
    assert (scores["blur"] > 0).all() and scores["border_ratio"].between(0, 1).all()
    assert scores["phash"].str.len().eq(16).all()


def _framed(content: Image.Image, side: int = 500, at: tuple[int, int] | None = None) -> Image.Image:
    """``content`` pasted on a white ``side`` x ``side`` photo (centred unless ``at``), as Rakuten frames its
    small products."""
    photo = Image.new("RGB", (side, side), "white")
    left, top = at or ((side - content.width) // 2, (side - content.height) // 2)
    photo.paste(content, (left, top))
    return photo


def test_small_products_on_wide_white_margins_are_compared_by_their_content(tmp_path: Path) -> None:
    """Two different products of 60 px in the middle of 500 px of white were the same picture to the pHash and the
    colour check of the whole photo (the margin's), so a group 'with conflicting labels' asked to relabel products
    that only share a white frame (all 7 of Rakuten's such groups). Compared inside their border, they are two
    pictures, and the same product in a smaller frame, off-centre, is still found a copy of the first."""
    first, other = _textured(1, 64), _textured(2, 64)
    frame = _catalogue(
        tmp_path,
        {"first": _framed(first), "other": _framed(other), "moved": _framed(first, side=400, at=(40, 300))},
        {"first": "Toys", "other": "Books", "moved": "Toys"},
    )
    dups = find_duplicate_images(frame, progress=False)
    assert sorted(dups["product_id"]) == ["first", "moved"]
    assert not dups["labels_disagree"].any()

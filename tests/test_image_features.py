"""Image extractors: shapes, unreadable photos, cache hits, augmentation."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

from conftest import identity_onnx
from prodcat.features.base import make_extractor
from prodcat.image.augment import RandomAugment, tta_views
from prodcat.image.decode import DEFAULT_MAX_BYTES, image_items
from prodcat.image.features import BagOfVisualWords, StreamSample


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache directory (ONNX export included), shared by this module's tests."""
    return tmp_path_factory.mktemp("prodcat-cache")


def _photo(seed: int, size: tuple[int, int] = (120, 90)) -> Image.Image:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (size[1] // 10, size[0] // 10, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def _frame(tmp_path: Path) -> pd.DataFrame:
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"p{i}.jpg"))
        _photo(i).save(paths[-1], "JPEG")
    (tmp_path / "broken.jpg").write_text("not a photo")
    images = [*paths, str(tmp_path / "broken.jpg"), None, (tmp_path / "p0.jpg").read_bytes()]
    return pd.DataFrame(
        {
            "product_id": ["p0", "p1", "p2", "broken", "nophoto", "p0bytes"],
            "title": "",
            "description": "",
            "image": images,
            "category": None,
        }
    )


def test_effnet_shapes_unreadable_and_cache(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = _frame(tmp_path)
    extractor = make_extractor("effnet_lite0", cache_dir=str(model_cache), progress=False)
    with caplog.at_level(logging.WARNING):
        X = extractor.transform(frame)
    assert X.shape == (6, 1280) and X.dtype == np.float32
    assert "product broken" in caplog.text and "not an image" in caplog.text
    np.testing.assert_array_equal(extractor.available(frame), [True, True, True, False, False, True])
    assert (X[[3, 4]] == 0).all() and (np.abs(X[[0, 1, 2]]).sum(axis=1) > 0).all()
    np.testing.assert_allclose(X[5], X[0], atol=1e-6)  # same bytes, from path or from memory
    assert not np.allclose(X[0], X[1])

    # warm re-run: everything comes from the cache, the encoder is never called
    cache = extractor.disk_cache()
    assert len(cache) == 4  # three photos + the recorded failure, keyed by content
    warm = make_extractor("effnet_lite0", cache_dir=str(model_cache), progress=False)
    warm.encode = lambda items: pytest.fail(f"re-encoded {len(items)} cached photos")  # type: ignore[method-assign]
    np.testing.assert_array_equal(warm.transform(frame), X)


def test_effnet_tta_and_params_have_their_own_cache_keys(tmp_path: Path, model_cache: Path) -> None:
    frame = _frame(tmp_path).iloc[:2]
    plain = make_extractor("effnet_lite0", cache_dir=str(model_cache), progress=False)
    tta = make_extractor("effnet_lite0", cache_dir=str(model_cache), progress=False, tta=True)
    assert plain.item_key(plain.items(frame)[0]) != tta.item_key(tta.items(frame)[0])
    X, X_tta = plain.transform(frame), tta.transform(frame)
    assert X_tta.shape == X.shape and not np.allclose(X, X_tta)


def test_color_histogram(tmp_path: Path) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (50, 50), (230, 20, 20)).save(red)
    frame = pd.DataFrame({"product_id": ["r", "none"], "image": [str(red), None]})
    X = make_extractor("color_hist", cache_dir=str(tmp_path), progress=False).transform(frame)
    assert X.shape == (2, 128)
    assert X[0].sum() == pytest.approx(1) and X[0].max() == pytest.approx(1)  # one bin: all red
    assert (X[1] == 0).all()


@pytest.mark.parametrize("name", ["bovw_orb", "bovw_sift"])
def test_bag_of_visual_words(tmp_path: Path, name: str) -> None:
    frame = _frame(tmp_path)
    extractor = make_extractor(name, n_words=16, progress=False, cache_dir=str(tmp_path)).fit(frame)
    X = extractor.transform(frame)
    assert X.shape == (6, 16)
    norms = np.linalg.norm(X, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2]], 1, atol=1e-5)
    assert norms[3] == 0 and norms[4] == 0
    np.testing.assert_allclose(X[5], X[0])  # same photo as bytes and as a file


@pytest.mark.parametrize("name", ["bovw_orb", "bovw_sift"])
def test_bag_of_visual_words_reads_cached_descriptors(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _frame(tmp_path)
    cold = make_extractor(name, n_words=16, progress=False, cache_dir=str(tmp_path))
    expected = cold.fit_transform(frame)
    np.testing.assert_allclose(expected, cold.transform(frame), atol=1e-6)  # fit_transform == fit then transform
    # three distinct readable photos cached (the unreadable one is not: it is retried next time)
    assert len(cold.descriptor_cache()) == 3
    warm = make_extractor(name, n_words=16, progress=False, cache_dir=str(tmp_path))
    monkeypatch.setattr(type(warm), "detector", lambda self: pytest.fail("detected descriptors of a cached photo"))
    monkeypatch.setattr(type(warm), "_fit_codebook", lambda self, pool: pytest.fail("refitted a cached codebook"))
    np.testing.assert_allclose(warm.fit_transform(frame), expected, atol=1e-6)
    # other detection parameters, other keys: every photo is detected again (the same content once)
    detected: list[str] = []
    monkeypatch.setattr(type(warm), "detect", lambda self, item: detected.append(item.product_id))
    with pytest.raises(ValueError, match="no readable photo"):
        make_extractor(name, n_words=16, progress=False, cache_dir=str(tmp_path), max_keypoints=50).fit(frame)
    assert len(detected) == 4 and {"broken", "p1", "p2"} < set(detected)


@pytest.mark.parametrize("name", ["bovw_orb", "bovw_sift"])
def test_bag_of_visual_words_reports_unreadable_and_featureless_photos_missing(tmp_path: Path, name: str) -> None:
    frame = _frame(tmp_path)
    Image.new("RGB", (120, 90), "white").save(tmp_path / "blank.png")  # decodes, but not one keypoint
    frame.loc[len(frame)] = ["blank", "", "", str(tmp_path / "blank.png"), None]
    Image.effect_noise((300, 1), 60).convert("RGB").save(tmp_path / "banner.png")  # 1 px high: ORB used to fail
    frame.loc[len(frame)] = ["banner", "", "", str(tmp_path / "banner.png"), None]
    expected = [True, True, True, False, False, True, False, False]  # broken, no photo, blank, banner: missing

    extractor = make_extractor(name, n_words=16, progress=False, cache_dir=str(tmp_path))
    X = extractor.fit_transform(frame)
    np.testing.assert_array_equal(extractor.available(frame), expected)
    again, available = extractor.transform_available(frame)
    np.testing.assert_array_equal(available, expected)
    np.testing.assert_allclose(again, X, atol=1e-6)
    assert (X[~available] == 0).all()


def test_orb_finds_keypoints_on_small_photos_and_reads_large_ones_as_before(tmp_path: Path) -> None:
    """ORB detects nothing within 31 px of an edge: on fashion's 60 x 80 photos it found no keypoint, and bovw_orb
    was skipped ('no readable photo with keypoints'). A small photo is enlarged before detection; one decoded down
    to ``max_side`` (every Flipkart photo, a 640 x 150 banner too) is read exactly as before."""
    import cv2

    from prodcat.image.decode import decode_item

    small = []
    for i in range(3):
        small.append(str(tmp_path / f"small{i}.png"))
        _photo(i, (60, 80)).save(small[-1])
    frame = pd.DataFrame({"product_id": ["s0", "s1", "s2"], "image": small})
    orb = make_extractor("bovw_orb", n_words=8, progress=False, cache_dir=str(tmp_path / "cache"))
    assert orb.fit(frame).available(frame).all()

    for size in ((640, 480), (640, 150)):
        path = tmp_path / f"large{size[1]}.png"
        _photo(7, size).save(path)
        (item,) = image_items(pd.DataFrame({"product_id": ["large"], "image": [str(path)]}))
        grey = cv2.cvtColor(np.asarray(decode_item(item, orb.max_side)), cv2.COLOR_RGB2GRAY)
        keypoints, descriptors = orb.detector().detectAndCompute(grey, None)
        strongest = np.argsort([-keypoint.response for keypoint in keypoints])[: orb.max_keypoints]
        np.testing.assert_array_equal(orb.detect(item), descriptors[strongest])


#: a file that opens but whose first read fails (EIO), as a photo on a failing disk or a dropped network share does
OPENS_BUT_DOES_NOT_READ = Path("/proc/self/mem")


@pytest.mark.skipif(not OPENS_BUT_DOES_NOT_READ.is_file(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize(("name", "params"), [("color_hist", {}), ("bovw_orb", {"n_words": 16})])
def test_a_photo_file_that_opens_but_does_not_read_is_a_product_without_a_photo(
    tmp_path: Path, name: str, params: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Hashing it for the cache key raised OSError (Input/output error) out of the extractor: prodcat predict wrote its
    product as not scored ('OSError: [Errno 5] ...'), though it has a title, and evaluate counted it as wrong."""
    frame = _frame(tmp_path).iloc[:3]
    frame.loc[len(frame)] = ["failing-disk", "", "", str(OPENS_BUT_DOES_NOT_READ), None]
    extractor = make_extractor(name, **params, progress=False, cache_dir=str(tmp_path))
    extractor.fit(frame)
    with caplog.at_level(logging.WARNING):
        X, available = extractor.transform_available(frame)
    np.testing.assert_array_equal(available, [True, True, True, False])
    assert (X[3] == 0).all()
    assert "failing-disk" in caplog.text and "file not readable (Input/output error)" in caplog.text


@pytest.mark.parametrize(("name", "params"), [("color_hist", {}), ("bovw_orb", {"n_words": 16})])
def test_a_photo_file_over_the_size_limit_is_not_read_for_its_cache_key(
    tmp_path: Path, name: str, params: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its decoding refuses it unread, whatever it holds, but its cache key hashed it whole: a path naming a disk
    image cost reading gigabytes, once per extractor, for a product then read without its photo."""
    frame = _frame(tmp_path).iloc[:3]
    oversized = tmp_path / "disk.img"
    with oversized.open("wb") as file:
        file.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: no disk used
    frame.loc[len(frame)] = ["disk-image", "", "", str(oversized), None]
    hashed: list[str] = []
    real_digest = hashlib.file_digest

    def recorded_digest(file: Any, digest: str) -> Any:
        hashed.append(file.name)
        return real_digest(file, digest)

    monkeypatch.setattr(hashlib, "file_digest", recorded_digest)
    extractor = make_extractor(name, **params, progress=False, cache_dir=str(tmp_path))
    extractor.fit(frame)
    np.testing.assert_array_equal(extractor.transform_available(frame)[1], [True, True, True, False])
    assert str(oversized) not in hashed and str(tmp_path / "p0.jpg") in hashed


def _noise_frame(directory: Path, n: int) -> pd.DataFrame:
    """``n`` distinct noise photos: hundreds of ORB keypoints each."""
    paths = []
    for i in range(n):
        paths.append(str(directory / f"noise{i}.png"))
        if not Path(paths[-1]).exists():
            Image.effect_noise((160, 160), 40 + i % 50).convert("RGB").rotate(i).save(paths[-1])
    return pd.DataFrame({"product_id": [f"n{i}" for i in range(n)], "image": paths})


def test_bag_of_visual_words_fit_memory_does_not_grow_with_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BagOfVisualWords, "stream_photos", 8)
    monkeypatch.setattr(BagOfVisualWords, "assign_rows", 1000)

    def fit_peak(n: int) -> tuple[int, int]:
        """Peak traced bytes of a fit on ``n`` photos (descriptors already cached), and the bytes
        their descriptors take as the float32 vectors k-means sees."""
        frame = _noise_frame(tmp_path, n)
        extractor = make_extractor(
            "bovw_orb", n_words=8, max_fit_descriptors=500, progress=False, n_jobs=1, cache_dir=str(tmp_path)
        )
        extractor.available(frame)  # detects and caches the descriptors: only the fit is measured
        tracemalloc.start()
        try:
            extractor.fit_transform(frame)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak, sum(len(extractor.detect(item)) for item in image_items(frame)) * 256 * 4

    with threadpool_limits(1):  # OpenMP threads on busy shared cores slow k-means tenfold
        fit_peak(4)  # first fit: imports, out of the measure
        small, _ = fit_peak(16)
        large, large_floats = fit_peak(64)
    # The former fit held every descriptor as floats, twice: peaks of 11 MB (16 photos) and 45 MB (64); now 2 MB.
    assert large < 1.5 * small and large < large_floats / 4, (small, large, large_floats)


def test_stream_sample_is_bounded_seeded_and_blind_to_how_rows_arrive() -> None:
    rows = np.arange(10_000)[:, None] * np.ones((1, 3), dtype=int)
    expected = rows[np.sort(np.argsort(np.random.default_rng(7).random(len(rows)))[:500])]
    one_batch, photo_by_photo = StreamSample(500, seed=7), StreamSample(500, seed=7)
    one_batch.add(rows)
    cuts = np.cumsum(np.random.default_rng(1).integers(0, 30, 1000))
    for part in np.split(rows, cuts[cuts < len(rows)]):  # uneven parts, some empty
        photo_by_photo.add(part)
        assert sum(len(r) for r in photo_by_photo._rows) < 2 * 500  # never twice the sample
    np.testing.assert_array_equal(one_batch.rows(), expected)
    np.testing.assert_array_equal(photo_by_photo.rows(), expected)
    small = StreamSample(500, seed=7)
    small.add(rows[:300])
    np.testing.assert_array_equal(small.rows(), rows[:300])  # fewer rows than the sample: all, in order


def test_bag_of_visual_words_codebook_depends_on_the_seed_not_on_streaming(tmp_path: Path) -> None:
    frame = _noise_frame(tmp_path, 12)

    def words(seed: int, stream_photos: int) -> np.ndarray:
        cache_dir = str(tmp_path / f"cache-{seed}-{stream_photos}")
        extractor = make_extractor(
            "bovw_orb", n_words=8, max_fit_descriptors=1000, random_state=seed, progress=False, cache_dir=cache_dir
        )
        extractor.stream_photos = stream_photos  # type: ignore[misc]
        return extractor.fit(frame).words_

    reference = words(0, 256)
    np.testing.assert_array_equal(words(0, 5), reference)  # fresh caches: both codebooks fitted
    assert not np.allclose(words(1, 256), reference)


def test_augmentation_is_reproducible_from_its_seed_and_keeps_the_size() -> None:
    photo = _photo(0)
    first, again, other = (RandomAugment()(photo, np.random.default_rng(seed)) for seed in (1, 1, 2))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    assert first.size == other.size == photo.size
    assert len(tta_views(photo)) == 2 and len(tta_views(photo, zoom=0.1)) == 4


@pytest.mark.slow
def test_effnet_on_real_photos_separates_categories(flipkart_dir: Path) -> None:
    """Embeddings of real photos carry the category: nearest neighbours mostly agree."""
    from prodcat.catalog.loaders import load_catalog
    from prodcat.catalog.schema import category_at_level

    frame = load_catalog(flipkart_dir).frame
    with_photo = frame[frame["image"].notna()]
    sample = with_photo.groupby(category_at_level(with_photo["category"], 1)).head(12)
    X = make_extractor("effnet_lite0", progress=False).transform(sample)
    y = category_at_level(sample["category"], 1)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1)
    agreement = (y[similarity.argmax(axis=1)] == y).mean()
    assert agreement > 0.6  # chance is 1/7


#: a process exporting ``argv[1]`` with :func:`cached_export`, logging to ``argv[2]`` when it waits for the export lock
#: and when it exports; its export lasts until three processes have waited for the lock (at most 30 s)
EXPORTING_PROCESS = """
import sys, time
from pathlib import Path
from prodcat.features import onnx

model, log = Path(sys.argv[1]), Path(sys.argv[2])

def note(line):
    with open(log, "a") as file:
        file.write(line + "\\n")

class NotedLock(onnx.FileLock):
    def acquire(self, *args, **kwargs):
        note("waiting")
        return super().acquire(*args, **kwargs)

def export(tmp):
    note("export")
    deadline = time.monotonic() + 30
    while log.read_text().count("waiting") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    Path(tmp).write_bytes(b"model")

onnx.FileLock = NotedLock
onnx.cached_export(model, export)
"""


def test_processes_starting_together_export_an_onnx_model_once(tmp_path: Path) -> None:
    """Dask workers on a cold cache: one exports, the others wait for its file (the export costs seconds). The
    export lasts until all three found no model and waited for the lock: however late each process starts."""
    model, log = tmp_path / "models" / "m.onnx", tmp_path / "exports.log"
    workers = [subprocess.Popen([sys.executable, "-c", EXPORTING_PROCESS, str(model), str(log)]) for _ in range(3)]
    assert [worker.wait(timeout=90) for worker in workers] == [0, 0, 0]
    assert sorted(log.read_text().split()) == ["export", "waiting", "waiting", "waiting"]
    assert model.read_bytes() == b"model"
    assert not list(model.parent.glob("*.tmp"))


def test_an_onnx_export_goes_to_a_temporary_folder_when_the_cache_cannot_be_written(
    read_only_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`prodcat serve` in a container (a read-only home, PRODCAT_CACHE_DIR unset) on a cold cache ended in an
    OSError traceback ('Read-only file system: ~/.cache'), exit 1, while exporting the text encoder to ONNX: the
    export now goes to a temporary folder, said once, with how to keep it, and a second extractor reads it."""
    from prodcat.features import onnx

    model = read_only_folder / "cache" / "models" / "m.onnx"
    with caplog.at_level(logging.WARNING):
        written = onnx.cached_export(model, lambda tmp: Path(tmp).write_bytes(b"model"))
    assert written.read_bytes() == b"model" and not written.is_relative_to(read_only_folder)
    assert f"ONNX exports cannot be written to the prodcat cache {model.parent} (Read-only file system)" in caplog.text
    assert "set PRODCAT_CACHE_DIR" in caplog.text

    def exported_again(tmp: str) -> None:
        raise AssertionError("exported again")

    caplog.clear()
    assert onnx.cached_export(model, exported_again) == written
    assert "cannot be written" not in caplog.text  # said once per process


def test_a_visual_words_head_on_photos_without_keypoints_is_left_out(monkeypatch, tmp_path, caplog, capsys):
    """Photos that decode but hold no keypoint (plain colours: a placeholder, a swatch) left the visual words no
    codebook to fit: 'ValueError: ... cannot fit a codebook' ended `prodcat train` in a traceback, exit 1, after the
    heads before it were fitted. It is now nothing to learn, as the OCR reading no text: the head is left out with a
    warning, the text head answers."""
    from conftest import tiny_products
    from prodcat.cli import main

    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))
    products = tiny_products(0, 6)
    (tmp_path / "photos").mkdir()
    for i, product_id in enumerate(products["product_id"]):
        Image.new("RGB", (64, 64), (40 * (i % 6), 90, 200)).save(tmp_path / "photos" / f"{product_id}.png")
    products["image"] = [f"photos/{product_id}.png" for product_id in products["product_id"]]
    products.to_csv(tmp_path / "products.csv", index=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        "inner_folds: 3\nheads:\n"
        "  - {name: words, modality: text, features: [{name: tfidf}], classifier: linearsvc, scale: false}\n"
        "  - {name: visual, modality: image, features: [{name: bovw_orb, params: {n_words: 8}}]}\n"
    )
    args = ["train", str(tmp_path / "products.csv"), "--config", str(config), "--out", str(tmp_path / "m")]
    with caplog.at_level(logging.WARNING):
        assert main(args) == 0
    assert "head visual skipped: bovw_orb: no readable photo with keypoints in the catalogue" in caplog.text
    assert "heads         words; one head, nothing to fuse" in capsys.readouterr().out


def test_onnx_sessions_threads_sleep_between_parallel_regions_rather_than_spin(tmp_path: Path) -> None:
    """The ONNX encoders (MiniLM, EfficientNet, OCR) ran on onnxruntime's default of threads spinning while they wait:
    on the shared cores a spinning thread held a core its session's other thread needed. `prodcat predict` of
    Flipkart with a cold cache took 64 CPU-s before, 53 after, with the same predictions
    (benchmarks/onnx_spinning.py)."""
    from prodcat.features.onnx import onnx_session

    model = identity_onnx(tmp_path / "m.onnx")
    for threads in (None, 1, 2):
        options = onnx_session(model, threads).get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

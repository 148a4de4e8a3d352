"""The on-disk feature cache never stops a run: damaged, unwritable or full caches, entries of the wrong size."""

from __future__ import annotations

import logging
import sqlite3
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodcat.features import cache as cache_module
from prodcat.features.base import make_extractor
from prodcat.features.cache import EmbeddingCache, MemoryCache
from prodcat.image import decode
from prodcat.image.ocr import PhotoText


@pytest.fixture(autouse=True)
def _forget_logged_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "_LOGGED", set())  # each test sees its warnings


def _photos(tmp_path: Path) -> pd.DataFrame:
    paths = []
    for i, colour in enumerate([(230, 20, 20), (20, 20, 230)]):
        paths.append(str(tmp_path / f"p{i}.png"))
        Image.new("RGB", (40, 30), colour).save(paths[-1])
    return pd.DataFrame({"product_id": ["red", "blue"], "image": paths})


def _histograms(frame: pd.DataFrame, cache_dir: Path) -> np.ndarray:
    return make_extractor("color_hist", cache_dir=str(cache_dir), progress=False).transform(frame)


def _cache_file(cache_dir: Path) -> Path:
    return cache_dir / "features" / f"color_hist-v{make_extractor('color_hist').cache_version()}.sqlite"


def _truncate(path: Path) -> None:
    """Cut a checkpointed database file in half, as a copy or a crash interrupted mid-file leaves it."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_cache_file_is_set_aside_and_started_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cache file that was no longer a database ('file is not a database') or was cut short ('database disk
    image is malformed') failed every command that read it, with sqlite3's traceback, until the user found and
    deleted it. It is moved aside as <file>.corrupt, with a warning naming it, and the features are computed."""
    frame = _photos(tmp_path)
    expected = _histograms(frame, tmp_path / "fresh")
    cache_dir = tmp_path / "cache"
    _cache_file(cache_dir).parent.mkdir(parents=True)
    _cache_file(cache_dir).write_bytes(b"this was a cache before the disk was damaged\n" * 200)
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        np.testing.assert_array_equal(_histograms(frame, cache_dir), expected)
    assert f"feature cache {_cache_file(cache_dir)} is damaged (file is not a database)" in caplog.text
    assert _cache_file(cache_dir).with_suffix(".sqlite.corrupt").exists()
    assert len(EmbeddingCache(_cache_file(cache_dir))) == 2  # the new file keeps this run's vectors

    # A large cache cut in half opens, and fails on the first page read that is gone.
    big = EmbeddingCache(_cache_file(cache_dir))
    big.put_many({f"filler{i}": np.ones(128, np.float32) for i in range(2000)})
    _truncate(_cache_file(cache_dir))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        np.testing.assert_array_equal(_histograms(frame, cache_dir), expected)
    assert "is damaged (database disk image is malformed)" in caplog.text
    assert len(EmbeddingCache(_cache_file(cache_dir))) == 2


def test_a_cache_that_cannot_be_written_is_skipped_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk, a read-only cache or a cache folder that cannot be made ended the run (after the features
    were computed) in sqlite3.OperationalError or OSError. The features are now returned without being kept,
    with one warning per file saying why and what to do."""
    frame = _photos(tmp_path)
    expected = _histograms(frame, tmp_path / "fresh")
    real_connect = cache_module._SqliteStore._connect

    def full_disk(self: cache_module._SqliteStore) -> sqlite3.Connection:
        db = real_connect(self)
        db.execute("PRAGMA max_page_count = 1")  # the file may not grow: SQLITE_FULL, as on a full disk
        return db

    cache_dir = tmp_path / "full"
    _cache_file(cache_dir).parent.mkdir(parents=True)
    with sqlite3.connect(_cache_file(cache_dir)) as db:
        db.execute("PRAGMA page_size = 512")  # a vector (512 bytes) then needs a page more than the file has
        db.execute("PRAGMA user_version = 1")  # written now, with that page size
    EmbeddingCache(_cache_file(cache_dir))  # the file exists, with its table, before the disk fills
    monkeypatch.setattr(cache_module._SqliteStore, "_connect", full_disk)
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        np.testing.assert_array_equal(_histograms(frame, cache_dir), expected)
        np.testing.assert_array_equal(_histograms(frame, cache_dir), expected)  # a second batch: no new warning
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"feature cache {_cache_file(cache_dir)} cannot be written (database or disk is full): features are "
        "computed without it; free space, fix its permissions or set PRODCAT_CACHE_DIR to another folder"
    ]

    def read_only(self: cache_module._SqliteStore) -> sqlite3.Connection:  # root ignores chmod: open it read-only
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    cache_dir = tmp_path / "read-only"
    monkeypatch.setattr(cache_module._SqliteStore, "_connect", real_connect)
    EmbeddingCache(_cache_file(cache_dir)).put_many({"unrelated": np.ones(128, np.float32)})
    monkeypatch.setattr(cache_module._SqliteStore, "_connect", read_only)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        np.testing.assert_array_equal(_histograms(frame, cache_dir), expected)
    assert "cannot be written (attempt to write a readonly database)" in caplog.text
    monkeypatch.setattr(cache_module._SqliteStore, "_connect", real_connect)
    assert len(EmbeddingCache(_cache_file(cache_dir))) == 1  # read, not changed

    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        np.testing.assert_array_equal(_histograms(frame, not_a_folder), expected)
    assert f"feature cache {_cache_file(not_a_folder)} cannot be opened (" in caplog.text


def test_a_cached_entry_of_the_wrong_size_is_computed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stored vector or descriptor block of the wrong length (a damaged entry, or one another version wrote
    under the same name) failed the whole batch: 'could not broadcast input array from shape (3,) into shape
    (128,)', or 'cannot reshape array' for a bag of visual words. It is computed again and overwritten."""
    frame = _photos(tmp_path)
    extractor = make_extractor("color_hist", cache_dir=str(tmp_path / "cache"), progress=False)
    expected = extractor.transform(frame)
    cache = extractor.disk_cache()
    first = extractor.item_key(extractor.items(frame)[0])
    cache.put_many({first: np.ones(3, np.float32)})
    with caplog.at_level(logging.WARNING, logger="prodcat.features.base"):
        np.testing.assert_array_equal(extractor.transform(frame), expected)
    assert "color_hist: 1 cached vectors are not of 128 values; encoded again" in caplog.text
    assert cache.get_many([first])[first].size == 128  # overwritten

    orb = make_extractor("bovw_orb", n_words=4, cache_dir=str(tmp_path / "cache"), progress=False)
    photo = tmp_path / "texture.png"
    pixels = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((240, 180), Image.Resampling.NEAREST).save(photo)
    textured = pd.DataFrame({"product_id": ["t"], "image": [str(photo)]})
    expected = orb.fit_transform(textured)
    _items, (key,) = orb._photo_keys(textured)
    orb.descriptor_cache().put_many({key: np.arange(33, dtype=np.uint8)})  # not a whole number of 32-byte rows
    np.testing.assert_array_equal(orb.fit_transform(textured), expected)
    assert orb.descriptor_cache().get_many([key])[key].size % 32 == 0
    codebooks = EmbeddingCache.for_extractor("bovw_orb-codebooks", orb.cache_version(), tmp_path / "cache")
    with sqlite3.connect(codebooks.path) as db:
        (codebook_key,) = [key for (key,) in db.execute("SELECT key FROM vectors")]
    codebooks.put_many({codebook_key: np.ones(5, np.float32)})  # not a whole number of 256-value words
    np.testing.assert_array_equal(orb.fit_transform(textured), expected)


def test_a_damaged_index_is_told_by_its_extended_error_code(tmp_path: Path) -> None:
    """sqlite3 gives the extended result code (SQLITE_CORRUPT_INDEX is 779, SQLITE_CORRUPT 11 in its low byte):
    such a file is damaged as much as one 'malformed' with the plain code, and is set aside, not skipped for ever."""
    path = tmp_path / "cache.sqlite"
    store = EmbeddingCache(path)
    store.put_many({f"k{i}": np.ones(4, np.float32) for i in range(50)})
    with sqlite3.connect(path) as db:  # point the key index at another table's: the index no longer matches
        db.execute("CREATE TABLE other (key TEXT PRIMARY KEY)")
        db.executemany("INSERT INTO other VALUES (?)", [(f"x{i}",) for i in range(50)])
        roots = dict(db.execute("SELECT tbl_name, rootpage FROM sqlite_schema WHERE type = 'index'").fetchall())
        db.execute("PRAGMA writable_schema = ON")
        db.execute(
            "UPDATE sqlite_schema SET rootpage = ? WHERE type = 'index' AND tbl_name = ?", (roots["other"], store.table)
        )
    codes = []

    def delete_all(db: sqlite3.Connection) -> None:
        try:
            db.execute(f"DELETE FROM {store.table} WHERE length(key) > 0")  # row by row, each index entry
        except sqlite3.DatabaseError as exc:
            codes.append(exc.sqlite_errorcode)
            raise

    store._guarded("be written", delete_all, None)
    assert codes == [sqlite3.SQLITE_CORRUPT_INDEX]
    assert path.with_name("cache.sqlite.corrupt").exists() and len(store) == 0


def test_a_decoding_change_is_not_hidden_by_vectors_cached_from_the_old_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Photo caches are keyed on the file's bytes, not on the pixels decoded from them: before the decoder had a
    version of its own, a photo whose decoding a fix changed (an Adobe RGB profile now converted to sRGB) kept
    the vectors of its old pixels on every machine that had cached them, and only there. Every cache of
    decoded photos (embeddings, visual-word descriptors and codebooks, OCR text) is now filed under
    DECODER_VERSION too."""
    frame = _photos(tmp_path)
    cache_dir = tmp_path / "cache"
    _histograms(frame, cache_dir)
    warm = make_extractor("color_hist", cache_dir=str(cache_dir), progress=False)
    warm.encode = lambda items: pytest.fail("cached photos encoded again")  # type: ignore[method-assign]
    warm.transform(frame)

    extractors = [make_extractor(name, cache_dir=str(cache_dir)) for name in ("color_hist", "effnet_lite0", "bovw_orb")]
    before = [e.cache_version() for e in extractors] + [PhotoText(cache_dir=str(cache_dir)).cache().path.name]
    monkeypatch.setattr(decode, "DECODER_VERSION", decode.DECODER_VERSION + 1)
    after = [e.cache_version() for e in extractors] + [PhotoText(cache_dir=str(cache_dir)).cache().path.name]
    assert all(old != new for old, new in zip(before, after, strict=True)), (before, after)
    encoded = []
    bumped = make_extractor("color_hist", cache_dir=str(cache_dir), progress=False)
    bumped.encode = lambda items: encoded.extend(items) or np.zeros((len(items), bumped.dim), np.float32)  # type: ignore[method-assign]
    bumped.transform(frame)
    assert len(encoded) == 2  # both photos decoded again
    assert make_extractor("tfidf_word").cache_version() == make_extractor("tfidf_word").version  # text: its own


def test_the_servers_memory_cache_keeps_the_most_recently_used_vectors_up_to_its_bound() -> None:
    """README's bounded in-memory cache of the server had no test: past max_items it drops the least recently used
    vector, a read counting as a use, and keeps vectors as float32."""
    memory = MemoryCache(max_items=2)
    memory.put_many({"a": [1.0], "b": [2.0]})
    assert list(memory.get_many(["a"])) == ["a"]  # read: "b" is now the least recently used
    memory.put_many({"c": [3.0]})
    assert len(memory) == 2 and set(memory.get_many(["a", "b", "c"])) == {"a", "c"}
    stored = memory.get_many(["c"])["c"]
    assert stored.dtype == np.float32 and stored.tolist() == [3.0]
    with pytest.raises(ValueError, match="max_items must be >= 1"):
        MemoryCache(max_items=0)


def test_the_memory_cache_keeps_a_vectors_own_row_not_the_batch_it_was_computed_in() -> None:
    """Encoders store each row of a batch's array (up to 64 products, 1,280 floats a photo). The cache kept the row
    as it came, a view holding the whole batch alive: one product still in the cache kept all 64 rows, so its bound
    in entries was no bound in bytes (the soak's mix of repeated and new products, simulated: 10,000 photo vectors of
    48.8 MB held 66.8-72.0 MB of batches). It keeps a copy of the row now."""
    memory: MemoryCache[np.ndarray] = MemoryCache(max_items=10)
    batch = np.ones((64, 1280), dtype=np.float32)
    memory.put_many({"a": batch[0]})
    batch_freed = weakref.ref(batch)
    del batch
    assert batch_freed() is None
    stored = memory.get_many(["a"])["a"]
    assert stored.base is None and stored.nbytes == 1280 * 4 and (stored == 1).all()


#: run in a fresh interpreter (tqdm keeps its lock for the process's life, so an earlier test's bar would hide one):
#: prints how many multiprocessing semaphores encoding with a disabled progress bar made, and whether a shown bar
#: still counts the items
_SEMAPHORES_OF_A_DISABLED_BAR = """
import io, multiprocessing.synchronize as synchronize
import numpy as np
made = []
created = synchronize.SemLock.__init__
def counting(self, *args, **kwargs):
    made.append(args)
    created(self, *args, **kwargs)
synchronize.SemLock.__init__ = counting
from prodcat.features.base import encode_with_cache
from prodcat.features.cache import MemoryCache
from prodcat.image.quality import _thread_map
vectors = encode_with_cache(["a", "b", "c"], str, lambda chunk: np.ones((len(chunk), 2)), MemoryCache(10), 2,
                            batch_size=2, progress=False)
assert vectors.shape == (3, 2) and vectors.sum() == 6
assert _thread_map(lambda item: {"item": item}, [1, 2], 1, False, "photos") == [{"item": 1}, {"item": 2}]
print(len(made), flush=True)
from prodcat.progress import progress_bar
assert list(progress_bar([1, 2], disable=True)) == [1, 2]
shown = io.StringIO()
with progress_bar(total=3, file=shown, disable=False) as bar:
    bar.update(3)
print("3/3" in shown.getvalue(), len(made) > 0)
"""


def test_a_disabled_progress_bar_makes_no_multiprocessing_lock() -> None:
    """Each prodcat serve --workers N worker logged at the server's stop 'resource_tracker: There appear to be 2 leaked
    semaphore objects', in plain text in the JSON log: tqdm makes a multiprocessing lock (a named semaphore) for every
    bar, disabled ones included, and the workers' extractors encode with a disabled bar. None is made for one now; a
    bar shown is tqdm's, lock included."""
    import subprocess
    import sys

    said = subprocess.run(
        [sys.executable, "-c", _SEMAPHORES_OF_A_DISABLED_BAR], capture_output=True, text=True, timeout=120
    )
    assert said.stdout.split("\n")[:2] == ["0", "True True"], said.stderr

"""``prodcat cache``: what the feature cache holds, which files an older prodcat wrote, and pruning them alone."""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodcat.cli import main
from prodcat.features.base import encodings_counted, make_extractor
from prodcat.image import decode

OLD_DECODER = decode.DECODER_VERSION - 1
MINILM = make_extractor("minilm").version
#: the files of the cache fixture that prune deletes: a stale database with its journal, a damaged one, an old export
PRUNED = {
    f"features/color_hist-v1-decoder{OLD_DECODER}.sqlite",
    f"features/color_hist-v1-decoder{OLD_DECODER}.sqlite-wal",
    "features/usem3-v1.sqlite.corrupt",
    "models/minilm-v0.onnx",
    "models/minilm-v0.onnx.lock",
}


def _photos(folder: Path) -> pd.DataFrame:
    paths = []
    for i, colour in enumerate([(230, 20, 20), (20, 20, 230), (20, 230, 20)]):
        paths.append(str(folder / f"p{i}.png"))
        Image.new("RGB", (40, 30), colour).save(paths[-1])
    return pd.DataFrame({"product_id": ["red", "blue", "green"], "image": paths})


def _histograms(frame: pd.DataFrame, cache: Path) -> np.ndarray:
    return make_extractor("color_hist", cache_dir=str(cache), progress=False).transform(frame)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder (``$PRODCAT_CACHE_DIR``) holding color_hist's vectors of 3 photos, computed, and files faked by
    name beside them: the same vectors under the previous decoder (stale) and the next one (a later prodcat's), an
    extractor this prodcat does not know, a damaged file set aside, ONNX exports of MiniLM's version and an older one
    (with its lock), and files put there by hand: beside the cache folder's, in features/ and models/."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(folder))
    _histograms(_photos(tmp_path), folder)
    features = folder / "features"
    current = features / f"color_hist-v1-decoder{decode.DECODER_VERSION}.sqlite"
    shutil.copy(current, features / f"color_hist-v1-decoder{OLD_DECODER}.sqlite")
    (features / f"color_hist-v1-decoder{OLD_DECODER}.sqlite-wal").write_bytes(b"\0" * 100)
    shutil.copy(current, features / f"color_hist-v1-decoder{decode.DECODER_VERSION + 1}.sqlite")
    shutil.copy(current, features / "someplugin-v3.sqlite")
    (features / "usem3-v1.sqlite.corrupt").write_bytes(b"damaged" * 10)
    models = folder / "models"
    models.mkdir()
    (models / f"minilm-v{MINILM}.onnx").write_bytes(b"onnx" * 1000)
    (models / f"minilm-v{MINILM}.onnx.lock").touch()
    (models / "minilm-v0.onnx").write_bytes(b"onnx" * 500)
    (models / "minilm-v0.onnx.lock").touch()
    (folder / "notes.txt").write_text("mine")
    (features / "my-backup.sqlite.bak").write_bytes(current.read_bytes())
    (models / "handmade.onnx").write_bytes(b"mine")
    return folder


def _files(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def _rows(text: str) -> dict[str, list[str]]:
    """The table's rows by file, their cells split on runs of 2+ spaces."""
    return {cells[0]: cells[1:] for line in text.splitlines() if len(cells := re.split(r"\s{2,}", line.strip())) > 2}


def test_info_lists_each_file_with_its_size_version_items_and_status_writing_nothing(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user had no way to tell which cache files were of old versions, nor their sizes: `prodcat cache` lists each,
    current from the versions the code writes, stale when older, newer or unknown (kept) otherwise; and reading it
    writes nothing (a read-only SQLite connection leaves -wal and -shm files beside each database)."""
    before = _files(cache)
    assert main(["cache"]) == 0
    assert _files(cache) == before
    out = capsys.readouterr().out
    rows = _rows(out)
    now = decode.DECODER_VERSION
    assert rows[f"features/color_hist-v1-decoder{now}.sqlite"][1:] == [
        "3",
        "vectors",
        "color_hist",
        "1",
        str(now),
        "current",
    ]
    stale = rows[f"features/color_hist-v1-decoder{OLD_DECODER}.sqlite"]
    assert stale[1:6] == ["3", "vectors", "color_hist", "1", str(OLD_DECODER)]
    assert stale[6] == f"stale: this prodcat writes v1-decoder{now}"
    assert rows[f"features/color_hist-v1-decoder{now + 1}.sqlite"][-1].startswith("newer")
    assert rows["features/someplugin-v3.sqlite"][-1] == "unknown"
    assert rows["features/usem3-v1.sqlite.corrupt"][-1] == "damaged: set aside when found damaged"
    assert rows[f"models/minilm-v{MINILM}.onnx"][-1] == "current"
    assert rows["models/minilm-v0.onnx"][-1] == f"stale: this prodcat writes v{MINILM}"
    for by_hand in ("notes.txt", "features/my-backup.sqlite.bak", "models/handmade.onnx"):
        assert rows[by_hand][-1] == "unknown: not a name prodcat writes; kept"
    # the stale database's size is its own and its journal's
    size = (cache / "features" / f"color_hist-v1-decoder{OLD_DECODER}.sqlite").stat().st_size + 100
    assert stale[0] == f"{size / 1024:.1f} KiB"
    assert "which `prodcat cache prune` deletes" in out


def test_a_new_decoder_makes_the_files_of_the_old_one_stale(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Current is read from the code (DECODER_VERSION, each extractor's version), not from a list kept by hand."""
    monkeypatch.setattr(decode, "DECODER_VERSION", decode.DECODER_VERSION + 1)
    assert main(["cache"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[f"features/color_hist-v1-decoder{OLD_DECODER + 1}.sqlite"][-1].startswith("stale")
    assert rows[f"features/color_hist-v1-decoder{OLD_DECODER + 2}.sqlite"][-1] == "current"


def test_prune_deletes_the_stale_and_damaged_files_alone_and_the_cache_still_serves(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`prodcat cache prune --dry-run` lists what prune deletes and deletes nothing; prune deletes those (journals
    and locks with them), says how much it freed, and keeps every current, newer or unknown file: the vectors cached
    are still read, not computed again."""
    before = _files(cache)
    assert main(["cache", "prune", "--dry-run"]) == 0
    assert _files(cache) == before
    dry = capsys.readouterr().out
    gone = PRUNED
    freed = sum(before[name] for name in gone)
    assert f"would free {len(gone)} files, {freed / 1024:.1f} KiB in {cache}" in dry

    assert main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert _files(cache) == {name: size for name, size in before.items() if name not in gone}
    assert f"freed {freed / 1024:.1f} KiB in {cache}" in out
    with encodings_counted() as tally:
        _histograms(_photos(tmp_path), cache)
    assert (tally.n_cached, tally.n_encoded) == (3, 0)

    assert main(["cache", "prune"]) == 0
    assert "nothing stale" in capsys.readouterr().out


def test_prune_beside_runs_holding_the_files_open(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run writing the current file, and one of an older prodcat writing the stale one, both mid-transaction while
    prune runs: both commit without an error, the current file is whole with its new row, the stale one is gone."""
    features = cache / "features"
    current = features / f"color_hist-v1-decoder{decode.DECODER_VERSION}.sqlite"
    stale = features / f"color_hist-v1-decoder{OLD_DECODER}.sqlite"
    (features / f"{stale.name}-wal").unlink()  # the fixture's fake journal: this test opens the file for real
    runs = [sqlite3.connect(path, isolation_level=None) for path in (current, stale)]
    for run in runs:
        run.execute("PRAGMA journal_mode=WAL")
        run.execute("BEGIN IMMEDIATE")
        run.execute("INSERT INTO vectors (key, vec) VALUES ('new', x'00')")
    assert main(["cache", "prune"]) == 0
    for run in runs:
        run.execute("COMMIT")
        run.close()
    assert not stale.exists()
    with closing(sqlite3.connect(current)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM vectors").fetchone() == (4,)


def test_clear_needs_yes_and_deletes_what_prodcat_wrote(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`prodcat cache clear` deletes the current files too: refused without --yes, deleting nothing; with it, every
    file prodcat names as it does goes, and the files put in the folder by hand stay: in features/ and models/ too,
    where clear deleted them (features/my-backup.sqlite.bak, models/handmade.onnx). Cleared again, it finds nothing
    to delete and says so, exit 0, as prune does: it asked for --yes (exit 2) to delete 0 files."""
    by_hand = {"notes.txt", "features/my-backup.sqlite.bak", "models/handmade.onnx"}
    before = _files(cache)
    assert main(["cache", "clear"]) == 2
    assert "give --yes to delete them" in capsys.readouterr().err
    assert _files(cache) == before
    assert main(["cache", "clear", "--yes"]) == 0
    assert _files(cache) == {name: size for name, size in before.items() if name in by_hand}
    capsys.readouterr()
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == f"nothing prodcat wrote in the prodcat cache {cache}\n"
    assert _files(cache) == {name: size for name, size in before.items() if name in by_hand}


def test_files_are_told_apart_by_their_whole_stem_not_by_the_name_beginning_it(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file was taken for an extractor's when its name began with that extractor's and a '-': a plugin's
    `minilm-ft-v0.sqlite` (the plugin not installed here) was listed as minilm's, stale, and pruned; `e5-large-v1`
    was e5's, current; bovw_orb's vectors (it writes none) and e5's ONNX export (it makes none) too. Each extractor
    declares the stems its code writes, matched whole: the files the extractors write are theirs, these are unknown
    and kept; a sentence_transformer file is current whichever model it is, and says it is not checked."""
    strangers = [
        "features/minilm-ft-v0.sqlite",
        "features/e5-large-v1.sqlite",
        f"features/bovw_orb-v2-decoder{decode.DECODER_VERSION}.sqlite",
        "models/e5-v1.onnx",
    ]
    for name in strangers:
        (cache / name).write_bytes(b"plugin")
    # files written by the extractors' own code: their file names are the ones they declare
    photo = tmp_path / "texture.png"
    pixels = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((240, 180), Image.Resampling.NEAREST).save(photo)
    textured = pd.DataFrame({"product_id": ["t"], "image": [str(photo)]})
    make_extractor("bovw_orb", n_words=4, progress=False).fit(textured)
    model_file = make_extractor("sentence_transformer", model_name="org/model").disk_cache().path
    export = make_extractor("effnet_lite1")._export_path()
    export.write_bytes(b"onnx")
    before = _files(cache)
    assert main(["cache"]) == 0
    rows = _rows(capsys.readouterr().out)
    for name in strangers:
        assert rows[name][-1] == "unknown" and not {"minilm", "e5", "bovw_orb"} & set(rows[name]), rows[name]
    orb = f"bovw_orb  2  {decode.DECODER_VERSION}  current"
    for holds in ("descriptors", "codebooks"):
        (name,) = [name for name in rows if name.startswith(f"features/bovw_orb-{holds}-")]
        assert "  ".join(rows[name][-4:]) == orb
    assert rows[f"features/{model_file.name}"][-3:] == [
        "sentence_transformer",
        "1",
        "current: one file per model, whose weights are not checked: delete an old model's by hand",
    ]
    assert rows[f"models/{export.name}"][-3:] == ["effnet_lite1", "2", "current"]
    assert main(["cache", "prune"]) == 0
    assert _files(cache) == {name: size for name, size in before.items() if name not in PRUNED}


def test_options_that_do_not_go_with_the_action_are_refused(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(cache)
    assert main(["cache", "--dry-run"]) == 2
    assert main(["cache", "prune", "--yes"]) == 2
    assert _files(cache) == before


def test_an_empty_or_missing_cache_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "is empty" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "none")]) == 0
    capsys.readouterr()
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "none")]) == 0  # not 2, asking for --yes
    assert capsys.readouterr().out == f"nothing prodcat wrote in the prodcat cache {tmp_path / 'none'}\n"
    assert not (tmp_path / "none").exists()

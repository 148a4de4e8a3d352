"""The review queue on a SQLite file and on a real PostgreSQL server.

PostgreSQL: start one with ``eval "$(bash scripts/postgres.sh)"`` (it exports
``PRODCAT_TEST_POSTGRES_URL``); without that variable those cases are skipped (conftest.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import random
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import REPO_ROOT, tiny_products
from prodcat.catalog.schema import COLUMNS, SPACES, given_product_id
from prodcat.cli import main
from prodcat.review import store as store_module
from prodcat.review.store import (
    PENDING,
    RECORDED,
    REVIEWED,
    SUPERSEDED,
    NewReview,
    ReviewNotFoundError,
    ReviewStore,
    load_corrections,
)

T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty review database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviews.db'}"
    postgres_url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        # the records first: they reference the photos
        connection.execute(sa.text("DROP TABLE IF EXISTS prodcat_review_items"))
        connection.execute(sa.text("DROP TABLE IF EXISTS prodcat_review_photos"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def store(db_url: str):
    store = ReviewStore(db_url)
    yield store
    store.close()


def review(title: str, decision: str = "review", image: bytes | None = None, **changes) -> NewReview:
    fields = {
        "request_id": f"req-{title}",
        "model_version": "v1",
        "title": title,
        "description": f"about {title}",
        "predicted_category": "Home Furnishing",
        "confidence": 0.42,
        "decision": decision,
        "top_k": [{"category": "Home Furnishing", "probability": 0.42}, {"category": "Baby Care", "probability": 0.3}],
        "image": image,
        "image_type": "jpeg" if image is not None else None,
    }
    return NewReview(**(fields | changes))


def test_records_reviews_as_pending_and_auto_predictions_as_recorded(store: ReviewStore) -> None:
    first = store.record(review("towel"))
    second = store.record(review("watch", decision="auto"))
    assert first != second
    assert [item.id for item in store.items(PENDING)] == [first]
    assert [item.id for item in store.items(RECORDED)] == [second]
    assert store.count(PENDING) == 1 and store.count(None) == 2
    item = store.get(first)
    assert (item.title, item.description, item.decision, item.status) == ("towel", "about towel", "review", PENDING)
    assert item.top_k[0] == {"category": "Home Furnishing", "probability": 0.42}
    assert item.created_at.tzinfo is not None and not item.has_image


def test_records_after_an_id_page_steadily_while_the_ones_listed_leave_the_status(store: ReviewStore) -> None:
    ids = store.record_many([review(f"product {i}") for i in range(12)])
    first = store.items(PENDING, limit=5)
    for item in first:
        store.submit(item.id, "Baby Care")
    # offset 5 skips 5 records that were never listed; after the last id listed, none is skipped
    assert [item.id for item in store.items(PENDING, limit=5, offset=5)] == ids[10:]
    assert [item.id for item in store.items(PENDING, limit=5, after_id=first[-1].id)] == ids[5:10]
    assert [item.id for item in store.items(PENDING, limit=5, after_id=ids[7], offset=1)] == ids[9:]
    assert store.items(PENDING, after_id=ids[-1]) == []
    assert [item.id for item in store.items(REVIEWED, after_id=0)] == ids[:5]


def test_submission_moves_a_record_out_of_the_queue(store: ReviewStore) -> None:
    ids = [store.record(review(f"product {i}")) for i in range(3)]
    done = store.submit(ids[1], "Baby Care > Bath", reviewer="alice")
    assert (done.status, done.corrected_category, done.reviewer) == (REVIEWED, "Baby Care > Bath", "alice")
    assert done.reviewed_at is not None
    assert [item.id for item in store.items(PENDING)] == [ids[0], ids[2]]
    # a later submission replaces the earlier one
    assert store.submit(ids[1], "Baby Care").corrected_category == "Baby Care"
    assert store.count(REVIEWED) == 1


def test_paging_is_oldest_first(store: ReviewStore) -> None:
    ids = [store.record(review(f"p{i}")) for i in range(5)]
    assert [item.id for item in store.items(limit=2)] == ids[:2]
    assert [item.id for item in store.items(limit=2, offset=2)] == ids[2:4]
    assert store.items(limit=2, offset=10) == []


def test_unknown_record_raises(store: ReviewStore) -> None:
    with pytest.raises(ReviewNotFoundError, match="no review record with id 999"):
        store.submit(999, "Watches")
    with pytest.raises(ReviewNotFoundError):
        store.get(999)


def test_photo_is_kept_byte_for_byte(store: ReviewStore, jpeg_bytes: Callable[..., bytes]) -> None:
    photo = jpeg_bytes()
    with_photo = store.record(review("lamp", image=photo))
    without = store.record(review("pen"))
    assert store.image(with_photo) == (photo, "jpeg")
    assert store.image(without) is None
    assert store.get(with_photo).has_image


def test_corrections_are_a_canonical_catalogue_with_photo_files(
    db_url: str, tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    store = ReviewStore(db_url)
    photo = jpeg_bytes(colour="blue")
    corrected = store.record(review("blue lamp", image=photo, source_product_id="SKU-1"))
    store.record(review("still pending"))
    text_only = store.record(review("cotton towel"))
    store.submit(corrected, "Home Decor & Festive Needs")
    store.submit(text_only, "Baby Care")
    store.close()

    frame = load_corrections(db_url, image_dir=tmp_path / "photos")
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert frame["product_id"].tolist() == [f"review-{corrected}", f"review-{text_only}"]
    assert frame["category"].tolist() == ["Home Decor & Festive Needs", "Baby Care"]
    assert frame["title"].tolist() == ["blue lamp", "cotton towel"]
    assert frame["source_product_id"].tolist() == ["SKU-1", None]
    photo_path = Path(frame["image"].iloc[0])
    assert photo_path.is_absolute() and photo_path.read_bytes() == photo
    assert frame["image"].iloc[1] is None
    # idempotent: the same photo file is reused
    again = load_corrections(db_url, image_dir=tmp_path / "photos")
    assert again["image"].iloc[0] == str(photo_path)


def test_a_correction_whose_photo_is_gone_is_read_without_it(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes], caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite does not enforce the record's reference to its photo: a photo row deleted by hand made
    # load_corrections fail on the whole queue (TypeError writing None) and leave an empty temporary file
    db_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(db_url)
    gone = store.record(review("blue lamp", image=jpeg_bytes(colour="blue")))
    kept = store.record(review("cotton towel"))
    store.submit(gone, "Home Decor & Festive Needs")
    store.submit(kept, "Baby Care")
    store.close()
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM prodcat_review_photos"))
    engine.dispose()

    frame = load_corrections(db_url, image_dir=tmp_path / "photos")
    assert frame["title"].tolist() == ["blue lamp", "cotton towel"]
    assert frame["image"].tolist() == [None, None]
    assert "is not in the database: its record is read without a photo" in caplog.text
    assert not (tmp_path / "photos").exists() or not any((tmp_path / "photos").iterdir())


def test_corrections_photos_go_to_a_temporary_folder_when_the_cache_cannot_be_written(
    tmp_path: Path,
    read_only_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    jpeg_bytes: Callable[..., bytes],
) -> None:
    """train --feedback on a queue holding a photo ended in an OSError traceback ('Read-only file system') when the
    prodcat cache, where the photos are written for training to read, could not be written (a read-only home, as in
    many containers), though no cache stops a run: training without --feedback went on, its features not kept."""
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(url)
    photo = jpeg_bytes(colour="red")
    store.submit(store.record(review("red mug", image=photo)), "Kitchen & Dining")
    store.close()
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(read_only_folder / "cache"))
    with caplog.at_level(logging.WARNING, logger="prodcat.review.store"):
        frame = load_corrections(url)
    written = Path(frame["image"].iloc[0])
    assert written.read_bytes() == photo and not written.is_relative_to(read_only_folder)
    cache = read_only_folder / "cache" / "review-images"
    assert f"photos cannot be written to the prodcat cache {cache} (Read-only file system): they are written to " in (
        caplog.text
    )


def test_corrections_on_a_cache_that_cannot_be_written_keep_one_temporary_folder_said_once(
    tmp_path: Path,
    read_only_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    jpeg_bytes: Callable[..., bytes],
) -> None:
    """On a read-only cache each reading of the corrections (a server's, a notebook's, train --feedback's) made a new
    temporary folder, writing the photos again, and warned again: the fallback was kept once per process for the ONNX
    exports only. It is kept per folder for every caller now: the second reading finds the photos where the first
    wrote them, unsaid."""
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(url)
    store.submit(store.record(review("red mug", image=jpeg_bytes(colour="red"))), "Kitchen & Dining")
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(read_only_folder / "cache"))
    with caplog.at_level(logging.WARNING, logger="prodcat.features.cache"):
        first = Path(store.corrections()["image"].iloc[0])
        said = caplog.text.count("cannot be written to the prodcat cache")
        second = Path(store.corrections()["image"].iloc[0])
    store.close()
    assert second == first and first.is_file() and not first.is_relative_to(read_only_folder)
    assert said == 1 and caplog.text.count("cannot be written to the prodcat cache") == 1


def test_no_corrections_gives_an_empty_canonical_frame(db_url: str) -> None:
    ReviewStore(db_url).close()  # a queue with nothing reviewed yet
    frame = load_corrections(db_url)
    assert frame.empty and set(COLUMNS) <= set(frame.columns)
    assert isinstance(frame, pd.DataFrame)


def test_corrections_refuse_a_sqlite_file_that_does_not_exist_and_create_nothing(tmp_path: Path) -> None:
    """A mistyped --feedback path must not train on an empty queue it has just created."""
    missing = tmp_path / "typo" / "reviews.db"
    with pytest.raises(FileNotFoundError, match=f"no review database at {missing}"):
        load_corrections(f"sqlite:///{missing}")
    assert not missing.parent.exists()


def test_corrections_refuse_a_folder_saying_it_is_one(tmp_path: Path) -> None:
    """--feedback sqlite:///FOLDER was refused with 'no such file', though the path was there: a folder."""
    with pytest.raises(FileNotFoundError, match=f"no review database at {tmp_path} .*: a folder, not the database"):
        load_corrections(f"sqlite:///{tmp_path}")


def test_corrections_refuse_a_database_without_the_review_tables(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        sqlite3.connect(sa.engine.make_url(db_url).database).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(FileNotFoundError, match="holds no review queue"):
        load_corrections(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("prodcat_review_items")  # nothing created
    engine.dispose()


def test_corrections_tell_a_damaged_sqlite_queue_from_a_file_that_is_none(tmp_path: Path) -> None:
    """A truncated queue was 'not a review database: check the path', which sends its owner looking elsewhere."""
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    for index in range(200):
        store.record(review(f"mug {index} " + "ceramic " * 50))
    store.close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FileNotFoundError, match=r"is a damaged database \(.*malformed.*\): restore it from a backup"):
        load_corrections(f"sqlite:///{path}")
    path.write_text("product_id,title\n1,mug\n")
    with pytest.raises(FileNotFoundError, match=r"is not a review database \(file is not a database\): check the path"):
        load_corrections(f"sqlite:///{path}")


def run_with_a_read_only_folder(folder: Path, code: str) -> str:
    """What the Python ``code`` prints, run with ``folder`` mounted read-only, in a mount namespace of its own that
    nothing else sees. Tests run as root, whom file modes cannot keep from writing: a read-only file system can."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command to mount a folder read-only")
    where = shlex.quote(str(folder))
    mount = f"mount --bind -o ro {where} {where} && mount -o remount,bind,ro {where} {where}"
    # exit 98: the mount took files still
    script = f'{mount} || exit 99; touch {where}/probe && exit 98; exec {shlex.quote(sys.executable)} -c "$0"'
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, code], capture_output=True, text=True, timeout=120)
    if result.returncode in (98, 99) or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a folder read-only here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def read_corrections_in_a_read_only_mount(folder: Path, database: str, image_dir: Path) -> str:
    """What ``load_corrections`` of the SQLite file ``database`` of the read-only ``folder`` gives (JSON of its
    categories) or raises (its message)."""
    return run_with_a_read_only_folder(
        folder,
        "import json\nfrom prodcat.review.store import load_corrections\n"
        f"try:\n    print(json.dumps(load_corrections('sqlite:///{folder / database}', {str(image_dir)!r})"
        "['category'].tolist()))\nexcept Exception as exc:\n    print(exc)",
    )


def test_corrections_are_read_from_a_queue_in_a_read_only_folder(tmp_path: Path) -> None:
    """A queue on a read-only mount or share (a copy handed to training, a backup) was refused by train --feedback as
    'sqlite:///... is not a review database (unable to open database file): check the path': SQLite creates a
    database's -shm file beside it to read it in WAL mode. It is read now: as immutable when it has no -wal file, read
    only when its -wal and -shm files are there (the commits in the -wal read too), and refused, saying why and what
    to do, when its -wal file is there without its -shm file."""
    live, mounted = tmp_path / "live", tmp_path / "mounted"
    mounted.mkdir()
    store = ReviewStore(f"sqlite:///{live / 'reviews.db'}")
    store.submit(store.record(review("mug")), "Kitchen & Dining")
    store.close()  # the last connection closed: every commit is in the database file, no -wal left
    shutil.copy(live / "reviews.db", mounted)
    assert read_corrections_in_a_read_only_mount(mounted, "reviews.db", tmp_path / "photos") == '["Kitchen & Dining"]'

    store = ReviewStore(f"sqlite:///{live / 'reviews.db'}")
    store.submit(store.record(review("towel")), "Baby Care")  # in the -wal only while the store is open
    for name in ("reviews.db", "reviews.db-wal", "reviews.db-shm"):  # a copy of a running server's queue
        shutil.copy(live / name, mounted / name.replace("reviews", "running"))
    store.close()
    expected = '["Kitchen & Dining", "Baby Care"]'
    assert read_corrections_in_a_read_only_mount(mounted, "running.db", tmp_path / "photos") == expected

    (mounted / "running.db-shm").unlink()
    refused = read_corrections_in_a_read_only_mount(mounted, "running.db", tmp_path / "photos")
    assert refused == (
        f"sqlite:///{mounted / 'running.db'} cannot be read in its read-only folder {mounted} (unable to open database "
        "file): its last writes are in running.db-wal, which SQLite reads there only beside running.db-shm; copy the "
        "database with its -wal file to a folder that can be written, and read it there"
    )


def test_a_queue_of_an_earlier_layout_in_a_read_only_folder_is_read(tmp_path: Path) -> None:
    """A queue of the previous layout was migrated by train --feedback when it opened it, which a read-only folder
    does not allow: refused 'attempt to write a readonly database' (then, since 564fff8, 'copy it to a folder that can
    be written'). A reader now reads it as it is."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    legacy_database(f"sqlite:///{folder / 'reviews.db'}", [random_photo(3, size=5_000)])
    assert read_corrections_in_a_read_only_mount(folder, "reviews.db", tmp_path / "photos") == '["Clocks"]'
    assert [path.read_bytes() for path in (tmp_path / "photos").iterdir()] == [random_photo(3, size=5_000)]


@pytest.mark.parametrize("database", ["reviews.db", "new/reviews.db"])
def test_the_server_refuses_a_queue_it_cannot_write_in_one_line(tmp_path: Path, database: str) -> None:
    """prodcat serve --review-db on a read-only mount stopped in SQLAlchemy's two lines ('cannot open the review
    database (OperationalError: (sqlite3.OperationalError) unable to open database file\n(Background on this error at:
    https://sqlalche.me/...)); check --review-db'), which say nothing of why, or, its folder to be made, in an
    OSError traceback ('Read-only file system'). It now says what cannot be written and what to do, in one line."""
    folder = tmp_path / "mounted"
    ReviewStore(f"sqlite:///{folder / 'reviews.db'}").close()
    said = run_with_a_read_only_folder(
        folder,
        "from prodcat.review.store import ReviewStore\nfrom prodcat.serve.command import _review_database_problem\n"
        f"try:\n    ReviewStore('sqlite:///{folder / database}')\nexcept Exception as exc:\n"
        "    print(_review_database_problem(exc))",
    )
    blocked = folder / database if database == "reviews.db" else folder  # the file there, else the folder to make it in
    assert said == (
        f"cannot write the review queue {folder / database} (sqlite:///{folder / database}): {blocked} is "
        "read-only to this process (a read-only mount, or another user's); the server records there every prediction "
        "sent to review and every correction, SQLite its -wal and -shm files beside the database: give --review-db a "
        "file in a folder it can write"
    )


def train_with_feedback(tmp_path: Path, url: str) -> int:
    """``prodcat train`` of a model of four tiny products with ``--feedback url``: its exit code."""
    tiny_products(0, 4).to_csv(tmp_path / "products.csv", index=False)
    arguments = ["train", str(tmp_path / "products.csv"), "--config", str(REPO_ROOT / "configs" / "fast-text.yaml"),
                 "--modalities", "text", "--out", str(tmp_path / "model"), "--feedback", url]  # fmt: skip
    return main(arguments)


def test_train_never_shows_the_review_queue_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """train --feedback on a queue it could not reach printed its URL as given, password included, to a console that
    CI logs keep ('cannot read the review queue postgresql+psycopg://bob:hunter2@...'): the store's own messages hide
    it, and so does this one now."""
    unreachable = "postgresql+psycopg://bob:hunter2@127.0.0.1:1/reviews"  # nothing listens on port 1
    assert train_with_feedback(tmp_path, unreachable) == 2
    error = capsys.readouterr().err
    assert "error: cannot read the review queue postgresql+psycopg://bob:***@127.0.0.1:1/reviews: " in error
    assert "hunter2" not in error


def test_a_review_queue_url_whose_port_is_no_number_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL whose port is no number (HOST:PORT as the help writes it, a port typed twice) ended train --feedback and
    serve --review-db in SQLAlchemy's ValueError traceback ('invalid literal for int() with base 10'), and train's
    error line, had it been reached, showed the password: a URL SQLAlchemy cannot parse was shown as given."""
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:5432:5432/reviews"
    with pytest.raises(sa.exc.ArgumentError, match=r"^its port is not a number \(invalid literal for int\(\)"):
        ReviewStore(url)  # the server's store: serve says SQLAlchemy's errors in one line
    assert train_with_feedback(tmp_path, url) == 2
    error = capsys.readouterr().err
    assert (
        "error: cannot read the review queue postgresql+psycopg://bob:***@127.0.0.1:5432:5432/reviews: its port is "
        "not a number (invalid literal for int() with base 10: '5432:5432')"
    ) in error.splitlines()
    # not 'Traceback': logging's handler, made by an earlier test's run, may report writing to its closed capture
    assert "ValueError: invalid literal" not in error and "hunter2" not in error


def test_train_says_in_one_line_that_a_review_queue_driver_is_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """train --feedback mysql://... (a driver prodcat does not install) ended in a ModuleNotFoundError traceback, as
    did serve --review-db."""
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("MySQLdb is installed here")
    assert train_with_feedback(tmp_path, "mysql://bob@127.0.0.1:1/q") == 2
    error = capsys.readouterr().err
    assert (
        "error: cannot read the review queue mysql://bob@127.0.0.1:1/q: its driver mysql needs the Python module "
        "MySQLdb, which is not installed (the review queue is kept in SQLite, sqlite:///FILE, or PostgreSQL, "
        "postgresql+psycopg://USER@HOST/DB)"
    ) in error.splitlines()
    assert "ModuleNotFoundError" not in error


def test_only_the_latest_correction_of_a_product_is_trained_on(store: ReviewStore, tmp_path: Path) -> None:
    """Two records of one product, corrected differently, would train on conflicting labels."""
    first = store.record(review("mug", source_product_id="SKU-1"))
    no_source = store.record(review("towel"))
    second = store.record(review("mug again", source_product_id="SKU-1"))
    other_no_source = store.record(review("towel again"))
    store.submit(second, "Kitchen & Dining")
    store.submit(first, "Home Decor & Festive Needs")  # reviewed last: it wins, although recorded first
    store.submit(no_source, "Baby Care")
    store.submit(other_no_source, "Home Furnishing")
    frame = store.corrections(tmp_path)
    assert frame["product_id"].tolist() == [f"review-{i}" for i in (first, no_source, other_no_source)]
    assert frame["category"].tolist() == ["Home Decor & Festive Needs", "Baby Care", "Home Furnishing"]


def test_a_product_recorded_with_spaces_around_its_id_before_they_were_stripped_trains_once(
    store: ReviewStore, tmp_path: Path
) -> None:
    """df24314 strips a product_id from /predict on ('SKU-1 ' is stored 'SKU-1'), but a queue written before holds
    the ids as sent: the product's correction recorded then and the one recorded since were two products to
    train --feedback, both trained on, conflicting labels, and neither replaced the catalogue's SKU-1 (the loaders
    strip ids) when the old one was the latest. They are one product now, given as 'SKU-1'."""
    before = store.record(review("mug", source_product_id=" SKU-1\u00a0"))  # as the API stored it before df24314
    since = store.record(review("mug again", source_product_id="SKU-1"))
    store.submit(since, "Kitchen & Dining")
    store.submit(before, "Home Decor & Festive Needs")  # reviewed last: it wins
    frame = store.corrections(tmp_path)
    assert frame[["product_id", "source_product_id", "category"]].values.tolist() == [
        [f"review-{before}", "SKU-1", "Home Decor & Festive Needs"]
    ]


def stored_product_ids(db_url: str) -> list[str | None]:
    """Each record's ``source_product_id`` as stored, in id order."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(sa.text("SELECT source_product_id FROM prodcat_review_items ORDER BY id")))
    finally:
        engine.dispose()


def python_spaces() -> str:
    """Every character ``str.isspace`` holds a space, hence those ``str.strip`` removes around a text."""
    return "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def test_the_spaces_stripped_around_stored_ids_are_every_one_str_strip_removes() -> None:
    """The migration strips around a stored id the characters of a constant (finding them reads every code point, a
    tenth of a second at each server start): exactly those the API's str.strip removes, in this Python."""
    assert python_spaces() == SPACES
    assert all(not c.strip() for c in SPACES)


def test_a_queue_holding_ids_with_spaces_around_them_has_them_stripped_when_the_server_opens_it(db_url: str) -> None:
    """A queue written before df24314 holds ids as sent (' SKU-1 '), the API since stores and looks ids up stripped:
    correcting the product's new record left its old record pending (a correction supersedes the pending records of
    its product, compared by stored id), and GET /reviews?product_id=SKU-1 did not list it. The server strips the
    stored ids when it opens the queue, as the API strips an id (given_product_id: every space Python strips; a blank
    id is no id), keeping the product index; a reader leaves them as they are."""
    spaces = python_spaces()
    assert given_product_id(f"{spaces}SKU-2{spaces}") == "SKU-2" and given_product_id(spaces) is None
    sent = [" SKU-1 ", f"{spaces}SKU-2{spaces}", spaces, "", "SKU 3", "SKU-1"]
    before = ReviewStore(db_url)  # records as the API stored them before df24314
    old, every_space, blank, empty, inner, same = (
        before.record(review(f"product {i}", source_product_id=p)) for i, p in enumerate(sent)
    )
    before.close()
    ReviewStore(db_url, create=False).close()
    assert stored_product_ids(db_url) == sent

    store = ReviewStore(db_url)
    try:
        assert stored_product_ids(db_url) == ["SKU-1", "SKU-2", None, None, "SKU 3", "SKU-1"]
        assert product_indexes(db_url) == [["source_product_id", "status"]]
        new = store.record(review("mug again", source_product_id="SKU-1"))
        store.submit(new, "Kitchen & Dining")
        assert [(item.id, item.status) for item in store.items(None, product_id="SKU-1")] == [
            (old, SUPERSEDED),
            (same, SUPERSEDED),
            (new, REVIEWED),
        ]
        assert [item.id for item in store.items(PENDING)] == [every_space, blank, empty, inner]
    finally:
        store.close()


def test_a_queue_in_a_latin1_postgresql_database_opens_its_ids_stripped_of_the_spaces_it_can_hold(
    postgres_url: str,
) -> None:
    """A PostgreSQL database in LATIN1 (a cluster initialised in a Western European locale) holds no U+3000: the
    stripping named every space Python strips in its queries, which the driver refused before sending them
    (UnicodeEncodeError), and the server no longer started on such a database, even an empty one. The spaces it can
    hold are stripped (a no-break space among them); the others cannot be in its ids."""
    name = f"prodcat_latin1_{os.getpid()}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    latin1 = "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0 {latin1}")
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        before = ReviewStore(url)
        for product in ("\xa0SKU-1 ", "caf\xe9 mug\t", " \xa0"):
            before.record(review(f"product {product}", source_product_id=product))
        before.close()
        ReviewStore(url).close()
        assert stored_product_ids(url) == ["SKU-1", "caf\xe9 mug", None]
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def test_ids_with_spaces_a_server_of_an_earlier_version_is_still_writing_are_stripped_too(db_url: str) -> None:
    """The migration runs while a server of an earlier version may still be writing the queue: a record it is
    writing meanwhile is waited for and stripped with the others (PostgreSQL: without a lock on the table, the update
    does not see it), and one it writes after the migration is stripped at the next start."""
    earlier = ReviewStore(db_url)  # the server of the earlier version, storing ids as sent
    earlier.record(review("mug", source_product_id=" SKU-1"))
    with another_servers_transaction(db_url) as (connection, pool):
        connection.execute(
            sa.insert(store_module._ReviewRow.__table__).values(
                created_at=datetime.now(UTC), request_id="req-cup", model_version="v1", source_product_id="SKU-2\t",
                title="cup", description="", predicted_category="Home Furnishing", confidence=0.4, decision="review",
                top_k=[], status=PENDING,
            )
        )  # fmt: skip
        opening = waiting_for_the_lock(db_url, pool, ReviewStore, db_url)  # the upgraded server
    upgraded = opening.result(timeout=20)
    try:
        assert stored_product_ids(db_url) == ["SKU-1", "SKU-2"]
        earlier.record(review("lamp", source_product_id="SKU-3 "))
        assert upgraded.count(product_id="SKU-3") == 0
        ReviewStore(db_url).close()  # the next start
        assert stored_product_ids(db_url) == ["SKU-1", "SKU-2", "SKU-3"]
        assert upgraded.count(product_id="SKU-3") == 1
    finally:
        upgraded.close()
        earlier.close()


def test_the_check_for_ids_to_strip_is_not_bounded_by_the_statement_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's start reads every product id for spaces to strip; under the statement timeout the API gives its
    store (its request timeout and a second) a large queue failed the start. It runs unbounded, as the migrations do
    (the check made to take 0.5 s against a 0.1 s timeout)."""
    ReviewStore(postgres_url).close()
    check = store_module._has_padded_product_ids

    def slow_check(connection: sa.Connection) -> bool:
        connection.execute(sa.text("SELECT pg_sleep(0.5)"))
        return check(connection)

    monkeypatch.setattr(store_module, "_has_padded_product_ids", slow_check)
    ReviewStore(postgres_url, statement_timeout_s=0.1).close()


def test_a_correction_supersedes_the_pending_records_of_its_product_and_they_are_found_by_its_id(
    store: ReviewStore, tmp_path: Path
) -> None:
    """A product predicted twice left two pending records, none to be found by the product's id: a reviewer corrected
    one and the other stayed in the queue for good. Its other pending records are superseded, in the same
    transaction; records of other products, or without an id, stay pending; GET /reviews?product_id= finds them."""
    first, auto, second = (
        store.record(review(title, decision, source_product_id="SKU-1"))
        for title, decision in (("mug", "review"), ("mug", "auto"), ("mug again", "review"))
    )
    other, unnamed = store.record(review("towel", source_product_id="SKU-2")), store.record(review("towel"))
    assert [item.id for item in store.items(None, product_id="SKU-1")] == [first, auto, second]
    assert store.count(PENDING, product_id="SKU-1") == 2 and store.count(None, product_id="SKU-9") == 0
    store.submit(second, "Kitchen & Dining")
    assert [item.id for item in store.items(PENDING)] == [other, unnamed]
    assert [(item.id, item.status) for item in store.items(None, product_id="SKU-1")] == [
        (first, SUPERSEDED),
        (auto, RECORDED),
        (second, REVIEWED),
    ]
    assert store.get(first).corrected_category is None
    # a superseded record may still be corrected: the latest correction trains, and supersedes the earlier one
    store.submit(first, "Home Decor & Festive Needs")
    assert [item.id for item in store.items(REVIEWED)] == [first]
    assert (store.get(second).status, store.get(second).corrected_category) == (SUPERSEDED, "Kitchen & Dining")
    assert store.corrections(tmp_path)["category"].tolist() == ["Home Decor & Festive Needs"]


def test_a_later_correction_of_a_product_supersedes_its_earlier_one_as_training_does(
    store: ReviewStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Record 3 corrected to Watches, then record 27 of the same product to Kitchen & Dining: both stayed reviewed,
    GET /reviews?status=reviewed listed record 3 as training as Watches, while train --feedback keeps record 27
    alone. The earlier correction is superseded, its category, reviewer and time kept; the reviewed records are the
    corrections that train, and training says which it leaves out."""
    first, second, other = (
        store.record(review(title, source_product_id=product))
        for title, product in (("mug", "SKU-1"), ("mug again", "SKU-1"), ("lamp", "SKU-2"))
    )
    store.submit(first, "Watches", "ana")
    store.submit(other, "Home Decor & Festive Needs")
    store.submit(second, "Kitchen & Dining", "bo")
    assert [item.id for item in store.items(REVIEWED)] == [second, other]
    earlier = store.get(first)
    assert (earlier.status, earlier.corrected_category, earlier.reviewer) == (SUPERSEDED, "Watches", "ana")
    with caplog.at_level(logging.INFO, logger="prodcat.review.store"):
        frame = store.corrections(tmp_path)
    assert frame["product_id"].tolist() == [f"review-{second}", f"review-{other}"]
    assert (
        f"1 correction overridden by a later correction of the same product, left out of the training data: "
        f"review-{first}"
    ) in caplog.messages


def write_as_an_earlier_version(db_url: str, review_id: int, category: str, at: datetime) -> None:
    """Mark the record reviewed as ``category`` at ``at``, as a version before a correction superseded its product's
    earlier corrections left it: reviewed whatever the product's other records."""
    items = store_module._ReviewRow.__table__
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            sa.update(items)
            .where(items.c.id == review_id)
            .values(status=REVIEWED, corrected_category=category, reviewed_at=at)
        )
    engine.dispose()


def test_a_queue_of_an_earlier_version_has_its_overridden_corrections_superseded_when_the_server_opens_it(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue an earlier version wrote holds every correction of a product reviewed: the server opening it
    supersedes all but the last, as training reads it, and says so; a product with a record that cannot be read is
    left as it is; train --feedback reads it as it is, writing nothing, and says which correction it leaves out."""
    with contextlib.closing(ReviewStore(db_url)) as earlier:
        ids = [
            earlier.record(review(title, source_product_id=product))
            for title, product in (("mug", "SKU-1"), ("mug again", "SKU-1"), ("lamp", "SKU-2"), ("lamp", "SKU-2"))
        ]
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    for review_id, category, minutes in zip(ids, ["Watches", "Kitchen & Dining", "A", "B"], [1, 2, 4, 3], strict=True):
        write_as_an_earlier_version(db_url, review_id, category, moment + timedelta(minutes=minutes))
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:  # SKU-2's last correction, by hand, now unreadable
        connection.execute(sa.text(f"UPDATE prodcat_review_items SET top_k = '{{}}' WHERE id = {ids[2]}"))
    engine.dispose()
    with caplog.at_level(logging.INFO, logger="prodcat.review.store"):
        frame = load_corrections(db_url, tmp_path)
    assert frame["product_id"].tolist() == [f"review-{ids[1]}"]
    assert (
        "1 correction overridden by a later correction of the same product, left out of the training data: "
        f"review-{ids[0]}"
    ) in caplog.messages
    with contextlib.closing(ReviewStore(db_url, create=False)) as reader:
        assert reader.count(REVIEWED) == 4  # read as it is
    caplog.clear()
    with contextlib.closing(ReviewStore(db_url)) as upgraded:
        # SKU-2's corrections are left as they are, its unreadable last one included
        assert [item.id for item in upgraded.items(REVIEWED)] == [ids[1], ids[2], ids[3]]
        assert (upgraded.get(ids[0]).status, upgraded.get(ids[0]).corrected_category) == (SUPERSEDED, "Watches")
    assert "1 correction overridden by a later correction of its product, which versions before" in caplog.text
    assert load_corrections(db_url, tmp_path)["product_id"].tolist() == [f"review-{ids[1]}"]


def test_a_queue_whose_undecidable_corrections_are_left_as_they_are_is_only_read_at_the_next_start(
    tmp_path: Path,
) -> None:
    """A product of two reviewed records, one unreadable (which is the last is unknown), is left as it is when the
    server opens the queue; each later start took the write lock for that migration again, finding nothing to change:
    a server starting while another process of the queue wrote (a worker of --workers N, a batch) waited for it, and
    failed 'database is locked' after SQLite's busy timeout. It reads the queue alone now, as for any migrated one."""
    path = tmp_path / "reviews.db"
    url = f"sqlite:///{path}"
    with contextlib.closing(ReviewStore(url)) as earlier:
        ids = [earlier.record(review(title, source_product_id="SKU-2")) for title in ("lamp", "lamp again")]
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    for minutes, review_id in enumerate(ids):
        write_as_an_earlier_version(url, review_id, "Lighting", moment + timedelta(minutes=minutes))
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(f"UPDATE prodcat_review_items SET top_k = '{{}}' WHERE id = {ids[1]}")
    ReviewStore(url).close()  # the start after the upgrade: SKU-2 left as it is
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process of the queue, writing
        with contextlib.closing(ReviewStore(url)) as started:
            assert started.count(REVIEWED) == 2
    finally:
        writer.close()


def test_records_marked_reviewed_by_hand_without_a_time_are_trained_on(
    store: ReviewStore, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A status set to 'reviewed' by SQL, reviewed_at left empty, made train --feedback fail with AttributeError's
    traceback ('NoneType' object has no attribute 'tzinfo') once its product had another reviewed record."""
    stamped = store.record(review("mug", source_product_id="SKU-1"))
    by_hand = store.record(review("mug again", source_product_id="SKU-1"))
    alone = store.record(review("lamp", source_product_id="SKU-2"))
    other_by_hand = store.record(review("lamp again", source_product_id="SKU-2"))
    store.submit(stamped, "Kitchen & Dining")
    items = sa.table("prodcat_review_items", sa.column("id"), sa.column("status"), sa.column("corrected_category"))
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        for review_id in (by_hand, alone, other_by_hand):
            edit = sa.update(items).where(items.c.id == review_id)
            connection.execute(edit.values(status=REVIEWED, corrected_category=f"Hand {review_id}"))
    engine.dispose()

    frame = store.corrections(tmp_path)
    # a stamped review is the latest of its product; of two without a time, the last recorded
    assert frame["product_id"].tolist() == [f"review-{stamped}", f"review-{other_by_hand}"]
    assert frame["category"].tolist() == ["Kitchen & Dining", f"Hand {other_by_hand}"]
    assert frame["reviewed_at"].isna().tolist() == [False, True]
    assert f"review records {by_hand}, {alone}, {other_by_hand} are reviewed without a reviewed_at" in caplog.text


@contextlib.contextmanager
def another_servers_transaction(db_url: str) -> Iterator[tuple[sa.Connection, ThreadPoolExecutor]]:
    """A transaction of another server on ``db_url`` holding the write lock (SQLite: the database's), committed on
    leaving, and a thread to run this store's call that waits for it."""
    other = sa.create_engine(db_url)
    try:
        with other.connect() as connection, ThreadPoolExecutor(1) as pool:
            transaction = connection.begin()
            if other.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection, pool
            transaction.commit()
    finally:
        other.dispose()


#: how a statement that takes SQLite's write lock begins
SQLITE_WRITES = ("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")


def waiting_for_the_lock(db_url: str, pool: ThreadPoolExecutor, call: Callable[..., T], *args: object) -> Future[T]:
    """``call(*args)`` run on ``pool``'s thread, returned once it waits for the lock another transaction holds: on
    PostgreSQL, a server process of the database waits for a lock; on SQLite, the call's thread began a statement that
    takes the write lock. A call that ends first, or has not waited after 20 s, fails the test: a sleep in its place
    let a call that started late (a loaded machine) run after the other transaction, testing nothing."""
    threads: list[threading.Thread] = []

    def run() -> T:
        threads.append(threading.current_thread())
        return call(*args)

    began_writing = threading.Event()

    def began(connection, cursor, statement: str, *_: object) -> None:
        if threading.current_thread() in threads and statement.lstrip().upper().startswith(SQLITE_WRITES):
            began_writing.set()

    engine = sa.create_engine(db_url)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", began)
    waiting_on_a_lock = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    def waits() -> bool:
        if engine.dialect.name == "sqlite":
            return began_writing.is_set()
        with engine.connect() as connection:
            return connection.execute(waiting_on_a_lock).scalar_one() > 0

    try:
        future = pool.submit(run)
        deadline = time.monotonic() + 20
        while not waits():
            if future.done():
                pytest.fail(f"{call.__qualname__} ended without waiting for the lock: it returned {future.result()!r}")
            assert time.monotonic() < deadline, f"{call.__qualname__} has not waited for the lock after 20 s"
            time.sleep(0.01)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", began)
        engine.dispose()
    return future


def test_a_submission_is_stamped_once_it_holds_the_write_lock(store: ReviewStore, db_url: str) -> None:
    """reviewed_at follows commit order: a submission that waited for another one is stamped after it."""
    review_id = store.record(review("watch"))
    items = sa.table(
        "prodcat_review_items",
        sa.column("id"),
        sa.column("corrected_category"),
        sa.column("status"),
        sa.column("reviewed_at", sa.DateTime(timezone=True)),
    )
    by_id = sa.update(items).where(items.c.id == review_id)
    with another_servers_transaction(db_url) as (connection, pool):
        connection.execute(by_id.values(corrected_category="Baby Care", status=REVIEWED))  # holds the lock
        waiting = waiting_for_the_lock(db_url, pool, store.submit, review_id, "Watches")
        overwritten_at = datetime.now(UTC)
        connection.execute(by_id.values(reviewed_at=overwritten_at))
    done = waiting.result(timeout=20)
    assert done.corrected_category == "Watches"
    assert done.reviewed_at > overwritten_at
    assert store.get(review_id).reviewed_at == done.reviewed_at


def test_corrections_of_two_records_of_one_product_at_once_both_commit(store: ReviewStore, db_url: str) -> None:
    """Each submission supersedes the other records of its product: two at once, each holding its own record and
    waiting for the other's, deadlocked on PostgreSQL (one failed, 503). They take the product's records in id
    order: the second waits for the first, then finds its record superseded, and corrects it."""
    first, second = (store.record(review(title, source_product_id="SKU-1")) for title in ("mug", "mug again"))
    items = sa.table("prodcat_review_items", sa.column("id"), sa.column("status"))
    with another_servers_transaction(db_url) as (connection, pool):
        # another server's submission of the first record, holding it
        connection.execute(sa.update(items).where(items.c.id == first).values(status=REVIEWED))
        waiting = waiting_for_the_lock(db_url, pool, store.submit, second, "Kitchen & Dining")
        connection.execute(sa.update(items).where(items.c.id == second).values(status=SUPERSEDED))
    done = waiting.result(timeout=20)
    assert (done.status, done.corrected_category) == (REVIEWED, "Kitchen & Dining")
    # the later correction supersedes the first, which the other server's committed first
    assert [item.status for item in store.items(None, product_id="SKU-1")] == [SUPERSEDED, REVIEWED]


def product_indexes(db_url: str) -> list[list[str]]:
    """The columns of each index of the records that starts with ``source_product_id``."""
    engine = sa.create_engine(db_url)
    try:
        indexes = sa.inspect(engine).get_indexes("prodcat_review_items")
    finally:
        engine.dispose()
    return [index["column_names"] for index in indexes if index["column_names"][0] == "source_product_id"]


def test_a_products_records_are_indexed_in_a_new_queue_and_in_one_an_earlier_version_made(db_url: str) -> None:
    """A correction finds the pending records of its product to supersede them (0e2e50d), and GET /reviews?product_id=
    a product's records, by a column no index covered: each correction scanned the whole queue holding SQLite's write
    lock (136 ms a correction at 200,000 records, 4 ms before). The server makes the index, in a queue of an earlier
    version too; a reader adds nothing."""
    ReviewStore(db_url).close()
    assert product_indexes(db_url) == [["source_product_id", "status"]]
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:  # as a queue made before the index
        connection.execute(sa.text("DROP INDEX ix_prodcat_review_items_product_status"))
    engine.dispose()
    ReviewStore(db_url, create=False).close()
    assert product_indexes(db_url) == []
    ReviewStore(db_url).close()
    assert product_indexes(db_url) == [["source_product_id", "status"]]


def test_concurrent_writers_lose_nothing(store: ReviewStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: store.record(review(f"item {i}")), range(40)))
    assert len(set(ids)) == 40
    assert store.count(PENDING) == 40


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    store.record(review("towel"))
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


#: cells a person may leave behind when editing the SQLite file by hand, and what is said of each
HAND_EDITS = {
    "top_k": ("'[{\"category\": '", "Expecting value"),
    "created_at": ("'yesterday'", "Invalid isoformat string: 'yesterday'"),
    "reviewed_at": ("'soon'", "Invalid isoformat string: 'soon'"),
    "confidence": ("'high'", "'high' is not a number"),
    "title": ("CAST(x'436166e9' AS TEXT)", "not UTF-8 text (byte 0xe9 at offset 3)"),  # 'Café' in Latin-1
}


def edit_by_hand(path: Path, review_id: int, column: str, value: str | None = None) -> tuple:
    """Set a cell, to the SQL ``value`` (default: :data:`HAND_EDITS`'), as a person with the sqlite3 shell would;
    returns the record's raw cells."""
    value = HAND_EDITS[column][0] if value is None else value
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE prodcat_review_items SET {column} = {value} WHERE id = ?", [review_id])
    return raw_record(path, review_id)


@pytest.mark.parametrize("column", HAND_EDITS)
def test_a_record_with_a_cell_edited_into_something_unreadable_is_reported_and_the_others_listed(
    tmp_path: Path, column: str
) -> None:
    """One such cell failed every listing of the queue (a JSON, date or UTF-8 error) and every record around it
    with it."""
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    first, broken, _ = store.record_many([review("towel"), review("watch"), review("lamp")])
    edited = edit_by_hand(path, broken, column)

    listed = store.items(PENDING)
    assert [getattr(item, "title", None) for item in listed] == ["towel", None, "lamp"]
    assert listed[1] == store_module.UnreadableRecord(broken, column, listed[1].reason)
    assert HAND_EDITS[column][1] in listed[1].reason
    assert store.count(PENDING) == 3
    assert store.get(first).title == "towel"
    with pytest.raises(store_module.UnreadableRecordError, match=f"review record {broken}: its {column} cannot"):
        store.get(broken)
    store.close()
    assert raw_record(path, broken) == edited  # kept as it is


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("top_k", """'[{"category": "Towels", "probability": NaN}]'""", "is not a list of {category, probability}"),
        ("top_k", """'[{"category": "Towels", "probability": 1e999}]'""", "is not a list of {category, probability}"),
        ("confidence", "9e999", "inf is not a number"),  # SQLite's infinity
        ("top_k", "'" + "[" * 100_000 + "]" * 100_000 + "'", "maximum recursion depth exceeded"),
    ],
    ids=["nan-probability", "infinite-probability", "infinite-confidence", "json-deeper-than-the-stack"],
)
def test_a_cell_no_json_answer_can_hold_or_too_deep_to_parse_is_an_unreadable_record_not_a_lost_queue(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    """A non-finite number read as a readable record, which no JSON answer can hold: GET /reviews answered null
    where its schema promises a number (a renderer refusing NaN fails the whole page). JSON nested past Python's
    stack raised RecursionError out of the listing: every listing of the queue, and every training run on its
    corrections, failed."""
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    _, broken, _ = store.record_many([review("towel"), review("watch"), review("lamp")])
    edit_by_hand(path, broken, column, value)

    listed = store.items(PENDING)
    assert [getattr(item, "title", None) for item in listed] == ["towel", None, "lamp"]
    assert listed[1] == store_module.UnreadableRecord(broken, column, listed[1].reason)
    assert reason in listed[1].reason
    for item in listed[::2]:  # the records around it, as the API answers them
        json.dumps([item.confidence, item.top_k], allow_nan=False)
    store.close()


def raw_record(path: Path, review_id: int) -> tuple:
    with sqlite3.connect(path) as connection:
        connection.text_factory = bytes
        return connection.execute("SELECT * FROM prodcat_review_items WHERE id = ?", [review_id]).fetchone()


def test_a_correction_of_an_unreadable_record_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    broken = store.record(review("watch"))
    edited = edit_by_hand(path, broken, "top_k")
    with pytest.raises(store_module.UnreadableRecordError, match="its top_k cannot be read"):
        store.submit(broken, "Home Furnishing")
    store.close()
    assert raw_record(path, broken) == edited  # not stamped reviewed


def test_a_record_whose_status_was_edited_into_no_status_is_unreadable_and_left_as_it_is(tmp_path: Path) -> None:
    """A status cell edited by hand into none of the queue's statuses ('done') read as a readable record: GET
    /reviews/{id} answered 500 internal_error (its answer's schema refused the value) rather than
    review_record_unreadable naming the cell, as for the other columns, and a correction stamped it reviewed,
    changing an unreadable record. It is unreadable now, and a correction of it is refused whole."""
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    broken = store.record(review("watch"))
    edited = edit_by_hand(path, broken, "status", "'done'")
    for read in (store.get, functools.partial(store.submit, category="Home Furnishing")):
        with pytest.raises(store_module.UnreadableRecordError, match=f"record {broken}: its status cannot be read"):
            read(broken)
    store.close()
    assert raw_record(path, broken) == edited  # not stamped reviewed


def test_training_corrections_leave_out_an_unreadable_record_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    ids = store.record_many([review("towel"), review("watch"), review("lamp")])
    for review_id in ids:
        store.submit(review_id, "Home Furnishing")
    store.close()
    edit_by_hand(path, ids[1], "reviewed_at")

    corrections = load_corrections(f"sqlite:///{path}", tmp_path / "images")

    assert list(corrections["title"]) == ["towel", "lamp"]
    assert f"review record {ids[1]}: its reviewed_at cannot be read" in caplog.text


def test_a_correction_overridden_by_an_unreadable_one_is_not_trained_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A product reviewed again, its later correction left unreadable by a hand edit: the earlier correction, which
    the reviewer had overridden, was trained on in its stead (a queue of an earlier version, which left it reviewed;
    a correction now supersedes it)."""
    path = tmp_path / "reviews.db"
    store = ReviewStore(f"sqlite:///{path}")
    overridden, latest, other = store.record_many(
        [review("mug", source_product_id="SKU-1"), review("mug", source_product_id="SKU-1"), review("lamp")]
    )
    store.submit(latest, "Kitchen & Dining")
    store.submit(other, "Home Furnishing")
    store.close()
    write_as_an_earlier_version(f"sqlite:///{path}", overridden, "Home Furnishing", datetime(2026, 1, 1, tzinfo=UTC))
    edit_by_hand(path, latest, "top_k")

    corrections = load_corrections(f"sqlite:///{path}", tmp_path / "images")

    assert corrections["product_id"].tolist() == [f"review-{other}"]
    assert f"review record {latest}: its top_k cannot be read" in caplog.text
    assert f"review records {overridden} are left out of the training data too" in caplog.text


class _Connecting(Exception):
    """Raised instead of connecting, once the connection's parameters are seen."""


def test_postgres_connections_carry_keepalives_and_timeouts_unless_the_url_sets_them() -> None:
    url = "postgresql+psycopg://prodcat@127.0.0.1:1/prodcat?keepalives_idle=7"
    engine = store_module._make_engine(url, None, connect_timeout_s=5, network_timeout_s=20)
    handed_to_psycopg: dict[str, object] = {}

    @sa.event.listens_for(engine, "do_connect")
    def capture(_dialect: object, _record: object, _args: object, parameters: dict[str, object]) -> None:
        handed_to_psycopg.update(parameters)
        raise _Connecting

    with pytest.raises(_Connecting):
        engine.connect()
    expected = {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": "7",  # the URL's own value wins
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 20_000,  # milliseconds
    }
    assert {key: handed_to_psycopg.get(key) for key in expected} == expected


def test_postgres_drivers_without_libpq_get_none_of_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """pg8000 refuses libpq's keepalives_idle, tcp_user_timeout...: a store on it could not connect at all."""
    created: dict[str, object] = {}
    monkeypatch.setattr(store_module.sa, "create_engine", lambda url, **kwargs: created.update(kwargs) or kwargs)
    store_module._make_engine("postgresql+pg8000://prodcat@127.0.0.1:1/prodcat", None, 5, 20)
    assert created["connect_args"] == {}
    store_module._make_engine("postgresql://prodcat@127.0.0.1:1/prodcat", None, 5, 20)  # psycopg by default
    assert created["connect_args"]["tcp_user_timeout"] == 20_000


def test_a_postgres_store_socket_gives_up_on_a_silent_server_by_default(postgres_url: str) -> None:
    store = ReviewStore(postgres_url)
    try:
        with store.engine.connect() as connection:
            descriptor = connection.connection.dbapi_connection.pgconn.socket
            with socket.socket(fileno=os.dup(descriptor)) as sock:
                options = {
                    "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "probes": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    "unacknowledged_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                }
    finally:
        store.close()
    # silent for 30 s, then 3 probes 10 s apart: dropped after the documented 60 s, as is unacknowledged data
    assert options == {"keepalive": 1, "idle": 30, "interval": 10, "probes": 3, "unacknowledged_ms": 60_000}


def random_photo(seed: int, size: int = 1_000_000) -> bytes:
    """Incompressible bytes, so that a stored copy costs its full size on disk."""
    return random.Random(seed).randbytes(size)


def stored_photos(db_url: str) -> list[tuple[str, int]]:
    """(SHA-256, size) of every photo body the database holds."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            query = "SELECT sha256, LENGTH(content) FROM prodcat_review_photos ORDER BY sha256"
            return [(sha, size) for sha, size in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def database_bytes(store: ReviewStore) -> int:
    """What the review tables take on disk: the SQLite file after a checkpoint, or PostgreSQL's relation sizes."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
            return pages * connection.exec_driver_sql("PRAGMA page_size").scalar()
        tables = [n for n in ("prodcat_review_items", "prodcat_review_photos") if sa.inspect(connection).has_table(n)]
        sizes = [connection.scalar(sa.text("SELECT pg_total_relation_size(:t)"), {"t": t}) for t in tables]
        return sum(sizes)


def test_a_photo_shared_by_a_batch_is_stored_once(store: ReviewStore, db_url: str) -> None:
    photo = random_photo(1)
    before = database_bytes(store)
    ids = store.record_many([review(f"item {i}", image=photo) for i in range(64)])
    assert len(set(ids)) == 64
    # one body on disk, not 64: the database grew by about one photo
    assert database_bytes(store) - before < 2 * len(photo)
    assert stored_photos(db_url) == [(store_module.hashlib.sha256(photo).hexdigest(), len(photo))]
    for review_id in ids:
        assert store.image(review_id) == (photo, "jpeg")
        assert store.get(review_id).has_image


def test_distinct_photos_stay_distinct_and_repeats_across_requests_are_shared(store: ReviewStore, db_url: str) -> None:
    photos = [random_photo(seed, size=20_000) for seed in range(3)]
    first = store.record_many([review(f"a{i}", image=photos[i % 3]) for i in range(6)])
    # a later request with a photo already stored, a new one and none
    later = store.record_many([review("b0", image=photos[1]), review("b1", image=random_photo(9, 300)), review("b2")])
    for i, review_id in enumerate(first):
        assert store.image(review_id) == (photos[i % 3], "jpeg")
    assert store.image(later[0]) == (photos[1], "jpeg")
    assert store.image(later[1]) == (random_photo(9, 300), "jpeg")
    assert store.image(later[2]) is None and not store.get(later[2]).has_image
    assert sorted(size for _, size in stored_photos(db_url)) == [300, 20_000, 20_000, 20_000]


def test_the_type_recorded_with_each_record_is_returned_with_its_photo(store: ReviewStore) -> None:
    photo = random_photo(4, size=100)
    as_jpeg, as_png = store.record_many([review("a", image=photo), review("b", image=photo, image_type="png")])
    assert store.image(as_jpeg) == (photo, "jpeg")
    assert store.image(as_png) == (photo, "png")


def test_a_photo_another_transaction_is_inserting_is_waited_for_not_an_error(store: ReviewStore, db_url: str) -> None:
    photo = random_photo(5, size=50_000)
    other = sa.create_engine(db_url)
    try:
        with other.connect() as connection, ThreadPoolExecutor(1) as pool:
            transaction = connection.begin()
            connection.execute(
                sa.text("INSERT INTO prodcat_review_photos (sha256, content) VALUES (:sha, :content)"),
                {"sha": store_module.hashlib.sha256(photo).hexdigest(), "content": photo},
            )
            # the store's insert waits on the uncommitted row (or SQLite's write lock)
            pending = waiting_for_the_lock(db_url, pool, store.record, review("lamp", image=photo))
            transaction.commit()
            review_id = pending.result(timeout=20)
    finally:
        other.dispose()
    assert store.image(review_id) == (photo, "jpeg")
    assert len(stored_photos(db_url)) == 1


def test_concurrent_writers_of_one_photo_store_it_once(store: ReviewStore, db_url: str) -> None:
    shared = random_photo(6, size=200_000)

    def write(i: int) -> list[int]:
        return store.record_many([review(f"s{i}", image=shared), review(f"o{i}", image=random_photo(100 + i, 500))])

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(write, range(16)))
    for i, (with_shared, with_own) in enumerate(batches):
        assert store.image(with_shared) == (shared, "jpeg")
        assert store.image(with_own) == (random_photo(100 + i, 500), "jpeg")
    assert sorted(size for _, size in stored_photos(db_url)) == [500] * 16 + [200_000]


# the records table as stores before photos were kept once wrote it, a copy of the photo in each row
_LEGACY = sa.MetaData()
_LEGACY_ITEMS = sa.Table(
    "prodcat_review_items",
    _LEGACY,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("model_version", sa.String(128)),
    sa.Column("source_product_id", sa.String(256)),
    sa.Column("title", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("image", sa.LargeBinary),
    sa.Column("image_type", sa.String(16)),
    sa.Column("image_sha256", sa.String(64)),
    sa.Column("predicted_category", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Column("decision", sa.String(16)),
    sa.Column("top_k", sa.JSON),
    sa.Column("status", sa.String(16), index=True),
    sa.Column("corrected_category", sa.Text),
    sa.Column("reviewer", sa.String(128)),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
)


def legacy_database(db_url: str, photos: list[bytes | None]) -> list[int]:
    """A review database in the previous layout, one record per photo (``None``: without); their ids."""
    engine = sa.create_engine(db_url)
    _LEGACY.create_all(engine)
    rows = [
        {
            "created_at": datetime(2024, 5, 1, tzinfo=UTC),
            "request_id": f"req-{i}",
            "model_version": "v0",
            "source_product_id": None,
            "title": f"old {i}",
            "description": "",
            "image": photo,
            "image_type": "png" if photo is not None else None,
            "image_sha256": store_module.hashlib.sha256(photo).hexdigest() if photo is not None else None,
            "predicted_category": "Watches",
            "confidence": 0.5,
            "decision": "review",
            "top_k": [{"category": "Watches", "probability": 0.5}],
            "status": REVIEWED if i == 0 else PENDING,
            "corrected_category": "Clocks" if i == 0 else None,
            "reviewer": "bob" if i == 0 else None,
            "reviewed_at": datetime(2024, 5, 2, tzinfo=UTC) if i == 0 else None,
        }
        for i, photo in enumerate(photos)
    ]
    with engine.begin() as connection:
        ids = list(connection.scalars(sa.insert(_LEGACY_ITEMS).returning(_LEGACY_ITEMS.c.id), rows))
    engine.dispose()
    return ids


def item_columns(db_url: str) -> set[str]:
    engine = sa.create_engine(db_url)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns("prodcat_review_items")}
    finally:
        engine.dispose()


def test_a_database_of_the_previous_layout_is_migrated_in_place(db_url: str, tmp_path: Path) -> None:
    shared, other = random_photo(7, size=30_000), random_photo(8, size=40_000)
    old_ids = legacy_database(db_url, [shared, shared, None, other, shared])
    assert "image" in item_columns(db_url)

    store = ReviewStore(db_url)
    try:
        assert "image" not in item_columns(db_url)
        assert sorted(size for _, size in stored_photos(db_url)) == [30_000, 40_000]
        expected = [(shared, "png"), (shared, "png"), None, (other, "png"), (shared, "png")]
        assert [store.image(i) for i in old_ids] == expected
        assert [store.get(i).has_image for i in old_ids] == [True, True, False, True, True]
        corrected = store.get(old_ids[0])
        assert (corrected.status, corrected.corrected_category, corrected.reviewer) == (REVIEWED, "Clocks", "bob")
        assert store.count(PENDING) == 4
        # new records follow the old ones and share the photos moved out of them
        new_id = store.record(review("new", image=shared))
        assert new_id > max(old_ids)
        assert store.image(new_id) == (shared, "jpeg")
        assert len(stored_photos(db_url)) == 2
        frame = store.corrections(tmp_path / "photos")
        assert Path(frame["image"].iloc[0]).read_bytes() == shared
    finally:
        store.close()
    # opening it again finds nothing left to do
    ReviewStore(db_url).close()
    assert len(stored_photos(db_url)) == 2


def test_a_reader_reads_a_queue_of_the_previous_layout_as_it_is(db_url: str, tmp_path: Path) -> None:
    """train --feedback migrated a queue of the previous layout in place, as the server does: a server of the previous
    version still writing it then had every record it sent to review refused (no image column any more), and a reader
    allowed to read only (a read-only mount, a PostgreSQL role without ALTER) failed. A reader now reads it as it is,
    photos included, and leaves it so."""
    shared = random_photo(11, size=20_000)
    old_ids = legacy_database(db_url, [shared, shared, None])
    frame = load_corrections(db_url, tmp_path / "photos")
    assert frame["category"].tolist() == ["Clocks"]
    assert Path(frame["image"].iloc[0]).read_bytes() == shared
    reader = ReviewStore(db_url, create=False)
    try:
        assert [reader.image(i) for i in old_ids] == [(shared, "png"), (shared, "png"), None]
        assert reader.count() == 2
    finally:
        reader.close()
    assert "image" in item_columns(db_url)
    engine = sa.create_engine(db_url)
    try:
        assert not sa.inspect(engine).has_table("prodcat_review_photos")
    finally:
        engine.dispose()


def test_a_failed_migration_leaves_the_previous_layout_untouched(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = random_photo(10, size=10_000)
    old_ids = legacy_database(db_url, [photo, None])

    def interrupted(*args: object) -> None:
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(store_module, "_drop_inline_photos", interrupted)
    with pytest.raises(RuntimeError, match="killed half-way"):
        ReviewStore(db_url)
    assert "image" in item_columns(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("prodcat_review_photos")
        assert connection.scalar(sa.select(_LEGACY_ITEMS.c.image).where(_LEGACY_ITEMS.c.id == old_ids[0])) == photo
    engine.dispose()

    monkeypatch.undo()
    store = ReviewStore(db_url)
    assert store.image(old_ids[0]) == (photo, "png") and store.image(old_ids[1]) is None
    store.close()


def test_the_server_refuses_a_queue_it_cannot_write_before_loading_the_model(tmp_path: Path) -> None:
    """prodcat serve started in a read-only working folder (its default queue ./prodcat-reviews.db) loaded the model
    first, seconds to a minute on a cold cache, and refused the queue only then. The queue is checked first now, in the
    same words: a bundle that cannot load is not reached (it was, and its error was the one said)."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    bundle = tmp_path / "model"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")  # no bundle: loading it would fail
    with socket.socket() as probe:  # a free port: the port is checked first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said = run_with_a_read_only_folder(
        folder,
        f"import os, sys\nos.chdir({str(folder)!r})\nos.environ.pop('PRODCAT_REVIEW_DB', None)\n"
        "sys.stderr = sys.stdout\nfrom prodcat.cli import main\n"
        f"print(main(['serve', {str(bundle)!r}, '--port', '{port}']))",
    )
    path = folder / "prodcat-reviews.db"
    assert said == (
        f"error: cannot write the review queue {path} (sqlite:///prodcat-reviews.db): {folder} is read-only to this "
        "process (a read-only mount, or another user's); the server records there every prediction sent to review and "
        "every correction, SQLite its -wal and -shm files beside the database: give --review-db a file in a folder it "
        "can write\n2"
    )

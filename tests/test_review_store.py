"""The review queue on a SQLite file and on a real PostgreSQL server.

PostgreSQL: start one with ``eval "$(bash scripts/postgres.sh)"`` (it exports
``PRODCAT_TEST_POSTGRES_URL``); without that variable those cases are skipped.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from prodcat.catalog.schema import COLUMNS
from prodcat.review.store import (
    PENDING,
    RECORDED,
    REVIEWED,
    NewReview,
    ReviewNotFoundError,
    ReviewStore,
    load_corrections,
)

POSTGRES_URL = os.environ.get("PRODCAT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty review database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviews.db'}"
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: run `eval \"$(bash scripts/postgres.sh)\"` to set "
                    "PRODCAT_TEST_POSTGRES_URL")  # fmt: skip
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS prodcat_review_items"))
    engine.dispose()
    return POSTGRES_URL


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


def test_no_corrections_gives_an_empty_canonical_frame(db_url: str) -> None:
    frame = load_corrections(db_url)
    assert frame.empty and set(COLUMNS) <= set(frame.columns)
    assert isinstance(frame, pd.DataFrame)


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

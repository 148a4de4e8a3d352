"""The human-review queue: predictions a person must check, and the categories they gave.

Every prediction whose decision is ``review`` (and, on request, every prediction) is
recorded with the product itself — title, description and the uploaded photo bytes —
so that a correction can be trained on later (:func:`load_corrections`, used by
``prodcat train --feedback DB_URL``).

Storage goes through SQLAlchemy: a SQLite file by default (``sqlite:///path.db``), or
PostgreSQL by URL (``postgresql+psycopg://user@host:port/db``). A write is only
acknowledged after its transaction commits, and SQLite runs in WAL mode with
``synchronous=FULL`` so that a committed record survives the process being killed
(PostgreSQL's default ``synchronous_commit=on`` gives the same guarantee).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

#: status of a record waiting for a person
PENDING = "pending"
#: status of a record a person has corrected or confirmed
REVIEWED = "reviewed"
#: status of an ``auto`` prediction recorded only because every prediction is kept
RECORDED = "recorded"

#: where :func:`load_corrections` writes stored photos when no folder is given
DEFAULT_IMAGE_DIR = Path.home() / ".cache" / "prodcat" / "review-images"


class _Base(DeclarativeBase):
    pass


class _ReviewRow(_Base):
    __tablename__ = "prodcat_review_items"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    request_id: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str] = mapped_column(sa.String(128))
    source_product_id: Mapped[str | None] = mapped_column(sa.String(256))
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text)
    image: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    image_type: Mapped[str | None] = mapped_column(sa.String(16))
    image_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    predicted_category: Mapped[str] = mapped_column(sa.Text)
    confidence: Mapped[float] = mapped_column(sa.Float)
    decision: Mapped[str] = mapped_column(sa.String(16))
    top_k: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    corrected_category: Mapped[str | None] = mapped_column(sa.Text)
    reviewer: Mapped[str | None] = mapped_column(sa.String(128))
    reviewed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


@dataclass(frozen=True)
class NewReview:
    """One prediction to record: the product as submitted and what the model said."""

    request_id: str
    model_version: str
    title: str
    description: str
    predicted_category: str
    confidence: float
    decision: str
    top_k: list[dict[str, Any]]
    source_product_id: str | None = None
    #: the uploaded photo exactly as received, and its sniffed type (``"png"``, ``"jpeg"``, ...)
    image: bytes | None = None
    image_type: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """A stored record (without the photo bytes: fetch them with :meth:`ReviewStore.image`)."""

    id: int
    created_at: datetime
    request_id: str
    model_version: str
    source_product_id: str | None
    title: str
    description: str
    has_image: bool
    predicted_category: str
    confidence: float
    decision: str
    top_k: list[dict[str, Any]]
    status: str
    corrected_category: str | None
    reviewer: str | None
    reviewed_at: datetime | None

    @classmethod
    def _from_row(cls, row: _ReviewRow) -> ReviewItem:
        return cls(
            id=row.id,
            created_at=_as_utc(row.created_at),
            request_id=row.request_id,
            model_version=row.model_version,
            source_product_id=row.source_product_id,
            title=row.title,
            description=row.description,
            has_image=row.image_sha256 is not None,
            predicted_category=row.predicted_category,
            confidence=row.confidence,
            decision=row.decision,
            top_k=row.top_k,
            status=row.status,
            corrected_category=row.corrected_category,
            reviewer=row.reviewer,
            reviewed_at=_as_utc(row.reviewed_at) if row.reviewed_at else None,
        )


def _as_utc(moment: datetime) -> datetime:
    """SQLite keeps no time zone: every time stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ReviewNotFoundError(KeyError):
    """No record with that id."""


def _durable_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL (not WAL's usual NORMAL): fsync the log at every commit, so an acknowledged write survives a kill
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _durable_sqlite)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


class ReviewStore:
    """The review queue in one database; safe to share between threads of one process.

    Parameters
    ----------
    url:
        SQLAlchemy URL: ``sqlite:///reviews.db`` or ``postgresql+psycopg://user@host:port/db``.
        The table is created if missing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        # never show a password that may be in the URL
        return f"ReviewStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def record(self, review: NewReview) -> int:
        """Store one prediction; returns its id once the transaction has committed."""
        return self.record_many([review])[0]

    def record_many(self, reviews: list[NewReview]) -> list[int]:
        """Store several predictions in one transaction (one durable commit); their ids, in order,
        once it has committed. All or none are stored."""
        now = datetime.now(UTC)
        rows = [
            {
                "created_at": now,
                "request_id": review.request_id,
                "model_version": review.model_version,
                "source_product_id": review.source_product_id,
                "title": review.title,
                "description": review.description,
                "image": review.image,
                "image_type": review.image_type if review.image is not None else None,
                "image_sha256": hashlib.sha256(review.image).hexdigest() if review.image is not None else None,
                "predicted_category": review.predicted_category,
                "confidence": review.confidence,
                "decision": review.decision,
                "top_k": review.top_k,
                "status": PENDING if review.decision == "review" else RECORDED,
            }
            for review in reviews
        ]
        # a Core INSERT .. RETURNING: the ORM's unit of work costs more CPU than the write itself
        insert = sa.insert(_ReviewRow).returning(_ReviewRow.id, sort_by_parameter_order=True)
        with self.engine.begin() as connection:
            return list(connection.scalars(insert, rows))

    def items(self, status: str | None = PENDING, *, limit: int = 50, offset: int = 0) -> list[ReviewItem]:
        """Records oldest first, filtered by ``status`` (``None``: all)."""
        query = sa.select(_ReviewRow).order_by(_ReviewRow.id).limit(limit).offset(offset)
        if status is not None:
            query = query.where(_ReviewRow.status == status)
        with self._sessions() as session:
            return [ReviewItem._from_row(row) for row in session.scalars(query)]

    def count(self, status: str | None = PENDING) -> int:
        query = sa.select(sa.func.count()).select_from(_ReviewRow)
        if status is not None:
            query = query.where(_ReviewRow.status == status)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def get(self, review_id: int) -> ReviewItem:
        with self._sessions() as session:
            return ReviewItem._from_row(self._row(session, review_id))

    def image(self, review_id: int) -> tuple[bytes, str] | None:
        """The stored photo of a record and its type, or ``None`` when it had none."""
        with self._sessions() as session:
            row = self._row(session, review_id)
            return (row.image, row.image_type or "") if row.image is not None else None

    def submit(self, review_id: int, category: str, reviewer: str | None = None) -> ReviewItem:
        """Record the category a person chose (a later submission replaces an earlier one)."""
        with self._sessions.begin() as session:
            row = self._row(session, review_id)
            row.corrected_category = category
            row.reviewer = reviewer
            row.reviewed_at = datetime.now(UTC)
            row.status = REVIEWED
            session.flush()
            return ReviewItem._from_row(row)

    def corrections(self, image_dir: str | Path | None = None) -> pd.DataFrame:
        """Reviewed records as a canonical catalogue frame (see :func:`load_corrections`)."""
        folder = Path(image_dir or DEFAULT_IMAGE_DIR).expanduser().resolve()
        query = sa.select(_ReviewRow).where(_ReviewRow.status == REVIEWED).order_by(_ReviewRow.id)
        records = []
        with self._sessions() as session:
            for row in session.scalars(query):
                records.append(
                    {
                        "product_id": f"review-{row.id}",
                        "title": row.title,
                        "description": row.description,
                        "image": _materialise(folder, row.image, row.image_type) if row.image is not None else None,
                        "category": row.corrected_category,
                        "source_product_id": row.source_product_id,
                        "predicted_category": row.predicted_category,
                        "model_version": row.model_version,
                        "reviewed_at": row.reviewed_at,
                    }
                )
        columns = ["product_id", "title", "description", "image", "category", "source_product_id",
                   "predicted_category", "model_version"]  # fmt: skip
        # object columns keep missing values as None, as the canonical schema wants
        frame = pd.DataFrame({c: pd.Series([r[c] for r in records], dtype=object) for c in columns})
        frame["reviewed_at"] = pd.to_datetime(pd.Series([r["reviewed_at"] for r in records], dtype=object), utc=True)
        return frame

    @staticmethod
    def _row(session: Session, review_id: int) -> _ReviewRow:
        row = session.get(_ReviewRow, review_id)
        if row is None:
            raise ReviewNotFoundError(f"no review record with id {review_id}")
        return row


def _materialise(folder: Path, content: bytes, image_type: str | None) -> str:
    """Write a stored photo once, named by its content hash; returns its absolute path."""
    path = folder / f"{hashlib.sha256(content).hexdigest()}.{image_type or 'bin'}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        # write then rename, so a concurrent reader never sees half a file
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            tmp.write(content)
        os.replace(tmp.name, path)
    return str(path)


def load_corrections(url: str, image_dir: str | Path | None = None) -> pd.DataFrame:
    """The corrections people made in the review queue, ready to train on.

    Returns a canonical catalogue frame (``product_id`` = ``"review-<id>"``, ``title``,
    ``description``, ``image``, ``category`` = the corrected category path) plus
    ``source_product_id``, ``predicted_category``, ``model_version`` and ``reviewed_at``.
    Stored photos are written to ``image_dir`` (default ``~/.cache/prodcat/review-images``)
    under their SHA-256, so ``image`` holds an absolute path like every other catalogue.
    """
    store = ReviewStore(url)
    try:
        return store.corrections(image_dir)
    finally:
        store.close()

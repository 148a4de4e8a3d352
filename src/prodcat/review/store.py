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

A photo is stored once per distinct content, in ``prodcat_review_photos`` keyed by its
SHA-256; records name it by that hash. A batch whose items all carry one photo therefore
writes its bytes once, not once per item. A database written before this layout (a copy of
the photo in every record) is migrated in place, in one transaction, when the server's store opens it, as are the
product ids of a queue written before they were stored without the spaces around them; a reader
(``prodcat train --feedback``) reads it as it is, writing nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from prodcat.catalog.schema import SPACES, given_product_id
from prodcat.features.cache import default_cache_dir, writable_cache_folder
from prodcat.formatting import counted, first_few
from prodcat.review import CONNECT_TIMEOUT_S, NETWORK_TIMEOUT_S, require_writable_sqlite_file

#: status of a record waiting for a person
PENDING = "pending"
#: status of a record a person has corrected or confirmed
REVIEWED = "reviewed"
#: status of an ``auto`` prediction recorded only because every prediction is kept
RECORDED = "recorded"
#: status of a record left pending, or corrected, when another record of its product was corrected later: the product
#: is decided, and a reviewer would otherwise find it again (a product predicted twice before its review); a corrected
#: one keeps its category, reviewer and time, and trains as nothing, as ``train --feedback`` keeps a product's last
#: correction alone
SUPERSEDED = "superseded"
#: every status, in the order they are listed
STATUSES = (PENDING, REVIEWED, RECORDED, SUPERSEDED)


def default_image_dir() -> Path:
    """Where :func:`load_corrections` writes stored photos when no folder is given: ``review-images`` in the
    prodcat cache (``$PRODCAT_CACHE_DIR``, read at the call, default ``~/.cache/prodcat``)."""
    return default_cache_dir() / "review-images"


log = logging.getLogger(__name__)

_ITEMS = "prodcat_review_items"
_PHOTOS = "prodcat_review_photos"
#: PostgreSQL advisory lock held while a store creates or migrates the tables ("prodcat" in ASCII)
_SCHEMA_LOCK = 0x70726F64636174
#: the first key of the PostgreSQL advisory lock a correction holds on its product (the second: the product's hash),
#: "prod" in ASCII
_PRODUCT_LOCK = 0x70726F64


class _Base(DeclarativeBase):
    pass


class _PhotoRow(_Base):
    """One photo body, stored once whatever the number of records that carry it."""

    __tablename__ = _PHOTOS

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


class _ReviewRow(_Base):
    __tablename__ = _ITEMS
    # a correction supersedes the pending records of its product, and GET /reviews?product_id= lists a product's
    # records of one status: without it, each correction scanned the queue holding SQLite's write lock (136 ms at
    # 200,000 records, 4 ms before superseding), as the status index alone matches most of a queue
    __table_args__ = (sa.Index(f"ix_{_ITEMS}_product_status", "source_product_id", "status"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    request_id: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str] = mapped_column(sa.String(128))
    source_product_id: Mapped[str | None] = mapped_column(sa.String(256))
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text)
    image_type: Mapped[str | None] = mapped_column(sa.String(16))
    #: the photo's key in ``prodcat_review_photos`` (``None``: no photo)
    image_sha256: Mapped[str | None] = mapped_column(
        sa.String(64), sa.ForeignKey(_PhotoRow.sha256, name=f"{_ITEMS}_image_sha256_fkey")
    )
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


@dataclass(frozen=True)
class UnreadableRecord:
    """A record holding a cell its column's type cannot read, e.g. after the database file was edited by hand
    (``top_k`` left as broken JSON, a date as ``yesterday``, text in another encoding than UTF-8). The record is
    kept as it is; readers report it instead of failing on every record around it."""

    id: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"review record {self.id}: its {self.column} cannot be read ({self.reason}); fix or delete that cell"


class UnreadableRecordError(ValueError):
    """The record asked for holds a cell that cannot be read (see :class:`UnreadableRecord`)."""

    def __init__(self, record: UnreadableRecord) -> None:
        super().__init__(str(record))
        self.record = record


def _as_utc(moment: datetime) -> datetime:
    """SQLite keeps no time zone: every time stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ReviewNotFoundError(KeyError):
    """No record with that id."""


class ReviewQueueNotFoundError(FileNotFoundError):
    """No review queue where a reader looked: a SQLite file that does not exist, or a database without the
    review tables. (A :class:`FileNotFoundError`, so that the command line reports it in one line.)"""


def _text_keeping_bad_bytes(data: bytes) -> str:
    """SQLite TEXT as ``str``; bytes that are not UTF-8 (written by hand) are kept as surrogates, for
    :func:`_unreadable_reason` to report, where sqlite3 would fail the whole query on them."""
    return data.decode("utf-8", "surrogateescape")


def _reading_bad_bytes(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = _text_keeping_bad_bytes


def _durable_sqlite(dbapi_connection: Any, record: Any) -> None:
    _reading_bad_bytes(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL (not WAL's usual NORMAL): fsync the log at every commit, so an acknowledged write survives a kill
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # a checkpointed WAL is cut back to 64 MB rather than keeping the size of its largest transaction
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


def _bounded_statements(dbapi_connection: Any, _record: Any, milliseconds: int) -> None:
    """Have PostgreSQL cancel a statement of this connection still running, or waiting for a lock another
    session holds, after ``milliseconds``: its thread then ends and gives the connection back."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET outside any transaction holds for the session
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {milliseconds}")
    dbapi_connection.autocommit = autocommit


#: SQLAlchemy's PostgreSQL drivers that connect through libpq, which takes :func:`postgres_network_args`.
LIBPQ_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})


def postgres_network_args(url: sa.engine.URL, connect_timeout_s: int, network_timeout_s: int) -> dict[str, int]:
    """libpq's connection parameters that give up on a dead network, unless ``url`` sets them itself.

    Without them a thread waiting on a server behind a dead network waits for the kernel's TCP to give up:
    about 2 hours when the connection is idle (no keepalives), 15 minutes while a statement is unacknowledged
    (``tcp_retries2``). Keepalive probes start after half of ``network_timeout_s`` of silence and three unanswered
    ones drop the connection; ``tcp_user_timeout`` drops it when sent data stays unacknowledged that long.
    """
    idle = max(1, network_timeout_s // 2)
    defaults = {
        "connect_timeout": connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": max(1, (network_timeout_s - idle) // 3),
        "keepalives_count": 3,
        "tcp_user_timeout": network_timeout_s * 1000,  # milliseconds
    }
    return {name: value for name, value in defaults.items() if name not in url.query}


def parsed_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """``url`` as SQLAlchemy reads it. A port that is no number (``HOST:PORT`` copied from a help text, ``HOST:5432:1``)
    fails there in a bare ValueError, a traceback on the console: raised as an :class:`~sqlalchemy.exc.ArgumentError`,
    as is any other URL it cannot parse, which the commands say in one line."""
    try:
        return sa.engine.make_url(url)
    except ValueError as exc:  # int() of the port; ArgumentError is no ValueError
        raise sa.exc.ArgumentError(f"its port is not a number ({exc})") from None


#: the password of a URL as SQLAlchemy finds it (``scheme://user:password@...``)
_URL_PASSWORD = re.compile(r"^([\w+]+://[^:/]*:)[^@]*@")


def shown_url(url: str | sa.engine.URL) -> str:
    """``url`` as said to a person, in a message or a log: its password hidden (``***``), also in a string SQLAlchemy
    cannot parse, where it stands as SQLAlchemy would read it."""
    try:
        return parsed_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _URL_PASSWORD.sub(r"\1***@", str(url))


def _sqlite_file(url: sa.engine.URL) -> Path | None:
    """The file a SQLite URL names (``None``: another database, one in memory, or a URL SQLite reads as a URI)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "uri" in url.query:
        return None
    return Path(url.database).expanduser().resolve()


def _in_a_read_only_folder(url: sa.engine.URL) -> Path | None:
    """The SQLite file ``url`` names when this process cannot write in its folder (a read-only mount, a share),
    ``None`` otherwise."""
    path = _sqlite_file(url)
    return path if path is not None and not os.access(path.parent, os.W_OK) else None


def _read_only_sqlite(url: sa.engine.URL, path: Path) -> sa.engine.URL:
    """``url``, naming the SQLite file ``path`` in a read-only folder, as SQLite opens it there. An ordinary open fails
    ('unable to open database file'): reading a database in WAL mode creates its ``-shm`` file beside it. With no
    ``-wal`` (nor rollback ``-journal``) file beside it, the database file holds every commit and is read as immutable;
    otherwise read-only, which SQLite can do when its ``-wal`` and ``-shm`` files are both there (as immutable, the
    commits in the ``-wal`` would go unread)."""
    pending = any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-journal"))
    mode = {"mode": "ro"} if pending else {"immutable": "1"}
    return url.set(database=f"file:{urllib.parse.quote(str(path))}", query={**url.query, **mode, "uri": "true"})


def _make_engine(
    url: str,
    statement_timeout_s: float | None,
    connect_timeout_s: int,
    network_timeout_s: int,
    *,
    read_only: bool = False,
) -> Engine:
    """An engine on the database ``url``; ``read_only``: for a reader, which can also read a SQLite file in a folder
    it cannot write."""
    parsed = parsed_url(url)
    if parsed.get_backend_name() == "sqlite":
        if read_only and (path := _in_a_read_only_folder(parsed)) is not None:
            engine = sa.create_engine(_read_only_sqlite(parsed, path), connect_args={"check_same_thread": False})
            sa.event.listen(engine, "connect", _reading_bad_bytes)
            return engine
        if (path := _sqlite_file(parsed)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _durable_sqlite)
        return engine
    connect_args = (
        postgres_network_args(parsed, connect_timeout_s, network_timeout_s)
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in LIBPQ_DRIVERS
        else {}  # pg8000, asyncpg...: libpq's parameter names would be refused at connect
    )
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as exc:  # the URL's driver is not installed (mysql://: MySQLdb): a traceback on the console
        raise sa.exc.NoSuchModuleError(
            f"its driver {parsed.drivername} needs the Python module {exc.name}, which is not installed (the review "
            "queue is kept in SQLite, sqlite:///FILE, or PostgreSQL, postgresql+psycopg://USER@HOST/DB)"
        ) from None
    if statement_timeout_s is not None and engine.dialect.name == "postgresql":
        milliseconds = max(1, math.ceil(statement_timeout_s * 1000))
        sa.event.listen(engine, "connect", functools.partial(_bounded_statements, milliseconds=milliseconds))
    return engine


class ReviewStore:
    """The review queue in one database; safe to share between threads of one process.

    Parameters
    ----------
    url:
        SQLAlchemy URL: ``sqlite:///reviews.db`` or ``postgresql+psycopg://user@host:port/db``.
        A database of the previous layout is migrated, unless ``create`` is ``False``.
    create:
        Create the SQLite file and the tables if missing (the server). ``False`` (a reader such as
        ``prodcat train --feedback``): raise :class:`ReviewQueueNotFoundError` instead, creating nothing,
        since a mistyped URL would otherwise read as an empty queue. Such a store only reads: a queue of the previous
        layout is read as it is, for a server of the previous version may still be writing it (migrated, it would
        refuse that server's every record) and its folder, or the reader's database role, may be read-only.
    statement_timeout_s:
        PostgreSQL: a statement still running after it, or waiting that long for a lock, is cancelled by the
        server (the API passes its ``request_timeout_s`` and a second: a call its request gave up on does not hold
        a thread and a connection for good). Creating or migrating the tables, and the check of the product ids
        at the start, is not bounded. SQLite waits at most 10 s for its write lock whatever this says. ``None``: no
        limit.
    connect_timeout_s, network_timeout_s:
        PostgreSQL: the longest a connection may take to open, and the longest the server may stay silent on an
        open one (TCP keepalives, ``tcp_user_timeout``) before the connection is dropped and its call fails, so
        that a dead network does not hold a thread for the kernel's 15 minutes to 2 hours (see
        :func:`postgres_network_args`). libpq parameters given in the URL's query (``?keepalives_idle=5``) win.
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        statement_timeout_s: float | None = None,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
        network_timeout_s: int = NETWORK_TIMEOUT_S,
    ) -> None:
        self.url = url
        if not create:
            _require_sqlite_file(url)  # before the engine, which would create the file and its folder
        else:
            _require_writable_sqlite_file(url)
        self.engine = _make_engine(url, statement_timeout_s, connect_timeout_s, network_timeout_s, read_only=not create)
        try:
            if create:
                _create_or_migrate(self.engine, url)
            # a reader's queue of the previous layout is read as it is: each photo in the records carrying it
            self._inline_photos = not create and _require_review_tables(self.engine, url) == "inline-photos"
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._insert_photos = _insert_ignoring_duplicates(self.engine.dialect.name)

    def __repr__(self) -> str:
        # never show a password that may be in the URL
        return f"ReviewStore({shown_url(self.url)!r})"

    def close(self) -> None:
        """Close the database connections of its pool (a store used after opens new ones)."""
        self.engine.dispose()

    def record(self, review: NewReview) -> int:
        """Store one prediction; returns its id once the transaction has committed."""
        return self.record_many([review])[0]

    def record_many(self, reviews: list[NewReview]) -> list[int]:
        """Store several predictions in one transaction (one durable commit); their ids, in order,
        once it has committed. All or none are stored.

        Each distinct photo is hashed and sent once, however many of the reviews carry it."""
        now = datetime.now(UTC)
        # the items of one request share one bytes object: hash it once, not once per item
        digests: dict[int, str] = {}
        photos: dict[str, bytes] = {}
        for review in reviews:
            if review.image is not None and id(review.image) not in digests:
                digests[id(review.image)] = digest = hashlib.sha256(review.image).hexdigest()
                photos.setdefault(digest, review.image)
        rows = [
            {
                "created_at": now,
                "request_id": review.request_id,
                "model_version": review.model_version,
                "source_product_id": review.source_product_id,
                "title": review.title,
                "description": review.description,
                "image_type": review.image_type if review.image is not None else None,
                "image_sha256": digests[id(review.image)] if review.image is not None else None,
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
            if photos:  # before the records, which reference them
                connection.execute(self._insert_photos, [{"sha256": k, "content": v} for k, v in photos.items()])
            return list(connection.scalars(insert, rows))

    def items(
        self,
        status: str | None = PENDING,
        *,
        product_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        after_id: int | None = None,
    ) -> list[ReviewItem | UnreadableRecord]:
        """Records oldest first (in id order), filtered by ``status`` (``None``: all) and ``product_id`` (the caller's
        id of the product, ``None``: any), those of an id above ``after_id`` alone when it is given (a page that
        starts after the last record of the previous one, however many of those left the status since); a record with
        a cell that cannot be read is in its place as an :class:`UnreadableRecord`."""
        query = _matching(_RAW_RECORDS, status, product_id)
        if after_id is not None:
            query = query.where(_ReviewRow.id > after_id)
        query = query.order_by(_ReviewRow.id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            return [
                row if isinstance(row, UnreadableRecord) else ReviewItem._from_row(row)
                for row in _read(connection, query)
            ]

    def count(self, status: str | None = PENDING, *, product_id: str | None = None) -> int:
        """How many records :meth:`items` would list without its page limits."""
        query = _matching(sa.select(sa.func.count()).select_from(_ReviewRow), status, product_id)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def get(self, review_id: int) -> ReviewItem:
        """The record; raises :class:`UnreadableRecordError` when one of its cells cannot be read."""
        with self.engine.connect() as connection:
            return ReviewItem._from_row(_readable(connection, review_id))

    def image(self, review_id: int) -> tuple[bytes, str] | None:
        """The stored photo of a record and its type, or ``None`` when it had none."""
        if self._inline_photos:
            query = sa.select(_INLINE_ITEMS.c.image_type, _INLINE_ITEMS.c.image.label("content")).where(
                _INLINE_ITEMS.c.id == review_id
            )
        else:
            query = (
                sa.select(_ReviewRow.image_type, _PhotoRow.content)
                .outerjoin(_PhotoRow, _PhotoRow.sha256 == _ReviewRow.image_sha256)
                .where(_ReviewRow.id == review_id)
            )
        with self.engine.connect() as connection:
            found = connection.execute(query).one_or_none()
        if found is None:
            raise _not_found(review_id)
        return (found.content, found.image_type or "") if found.content is not None else None

    def submit(self, review_id: int, category: str, reviewer: str | None = None) -> ReviewItem:
        """Record the category a person chose (a later submission replaces an earlier one); the other pending or
        reviewed records of its product (same ``source_product_id``) become :data:`SUPERSEDED`, in the same
        transaction: the last correction of a product is its only :data:`REVIEWED` record, the one that trains.

        The record is locked before it is stamped, so that ``reviewed_at`` order is commit order: a
        submission that waited for a concurrent one of the same record is stamped after it."""
        with self._sessions.begin() as session:
            self._lock(session, review_id)
            stamp = {"corrected_category": category, "reviewer": reviewer, "reviewed_at": _clock(session)}
            # a record of no known status is left as it is: unreadable, it is refused below
            known = _ReviewRow.status.in_(STATUSES)
            session.execute(
                sa.update(_ReviewRow).where(_ReviewRow.id == review_id, known).values(status=REVIEWED, **stamp)
            )
            product = sa.select(_ReviewRow.source_product_id).where(_ReviewRow.id == review_id).scalar_subquery()
            session.execute(
                sa.update(_ReviewRow)
                .where(_ReviewRow.source_product_id == product, _ReviewRow.id != review_id, _OVERRIDABLE)
                .values(status=SUPERSEDED)
            )
            # an unreadable record raises here, before the commit: nothing of the submission is kept
            return ReviewItem._from_row(_readable(session.connection(), review_id))

    def corrections(self, image_dir: str | Path | None = None) -> pd.DataFrame:
        """Reviewed records as a canonical catalogue frame (see :func:`load_corrections`)."""
        # looked for at the first photo: reading a queue without any makes no folder
        folder = functools.cache(lambda: Path(image_dir).expanduser().resolve() if image_dir else _photo_cache())
        query = _RAW_RECORDS.where(_ReviewRow.status == REVIEWED).order_by(_ReviewRow.id)
        records = []
        with self._sessions() as session:
            rows, unreadable = _readable_or_not(_read(session.connection(), query))
            for record in unreadable:
                log.warning("%s: its correction is left out of the training data", record)
            if undecided := _source_products(session, [record.id for record in unreadable]):
                # an unreadable correction may be its product's latest: an earlier one it overrode must not stand in
                left_out = [row.id for row in rows if _product_of(row) in undecided]
                rows = [row for row in rows if _product_of(row) not in undecided]
                if left_out:
                    log.warning(
                        "review records %s are left out of the training data too: another correction of their "
                        "product cannot be read, so which one is the latest is unknown",
                        ", ".join(map(str, left_out)),
                    )
            _warn_of_unstamped(rows)
            latest = _latest_per_product(rows)
            _say_overridden(session, {row.id for row in rows} - {row.id for row in latest})
            for row in latest:
                records.append(
                    {
                        "product_id": f"review-{row.id}",
                        "title": row.title,
                        "description": row.description,
                        "image": _materialise(session, folder(), row.image_sha256, row.image_type, self._inline_photos)
                        if row.image_sha256 is not None
                        else None,
                        "category": row.corrected_category,
                        "source_product_id": _product_of(row),
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
    def _lock(session: Session, review_id: int) -> None:
        """Lock the record and the pending and reviewed records of its product, which its submission supersedes, until
        the transaction ends (SQLite: the database's write lock)."""
        if session.get_bind().dialect.name == "sqlite":
            # pysqlite would only take the lock at the UPDATE, after the caller has stamped the row
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        product = sa.select(_ReviewRow.source_product_id).where(_ReviewRow.id == review_id).scalar_subquery()
        if session.get_bind().dialect.name == "postgresql":
            # the submissions of one product one at a time: the row locks below alone let two corrections of its
            # superseded records lock sets of rows that the commit of a third changed (each its own record and none
            # of the other's), and both stayed reviewed; a product's records may be many (--record-all) to lock all
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PRODUCT_LOCK, sa.func.hashtext(product))))
        # PostgreSQL: in id order, so that two submissions of one product's records wait for each other rather than
        # each holding its own record and waiting for the other's (a deadlock, one of them failed)
        locked = (
            sa.select(_ReviewRow.id)
            .where((_ReviewRow.id == review_id) | ((_ReviewRow.source_product_id == product) & _OVERRIDABLE))
            .order_by(_ReviewRow.id)
            .with_for_update()
        )
        if review_id not in session.scalars(locked).all():
            raise _not_found(review_id)


#: the records a correction of another record of their product supersedes: those awaiting review, and its earlier
#: corrections
_OVERRIDABLE = _ReviewRow.status.in_((PENDING, REVIEWED))

#: every column of the records as the driver returns it, read by its own type afterwards (:func:`_read`), so that a
#: cell its type cannot read fails its record alone rather than the whole query
# cast: a declarative class's __table__ is its Table (typed as the FromClause any mapped class may have)
_ITEMS_TABLE = cast(sa.Table, _ReviewRow.__table__)
_RAW_RECORDS = sa.select(*(sa.type_coerce(c, sa.types.NullType()).label(c.key) for c in _ITEMS_TABLE.columns))


def _matching(query: sa.Select, status: str | None, product_id: str | None) -> sa.Select:
    """``query`` on the records of ``status`` and ``product_id`` (``None``: any)."""
    if status is not None:
        query = query.where(_ReviewRow.status == status)
    if product_id is not None:
        query = query.where(_ReviewRow.source_product_id == product_id)
    return query


def _readable_or_not(read: list[_ReviewRow | UnreadableRecord]) -> tuple[list[_ReviewRow], list[UnreadableRecord]]:
    """What :func:`_read` read, in its order: the records read, and those reported as unreadable."""
    rows: list[_ReviewRow] = []
    unreadable: list[UnreadableRecord] = []
    for row in read:
        if isinstance(row, UnreadableRecord):
            unreadable.append(row)
        else:
            rows.append(row)
    return rows, unreadable


def _read(connection: Connection, query: sa.Select) -> list[_ReviewRow | UnreadableRecord]:
    """The records of ``query`` (on :data:`_RAW_RECORDS`), each read as the ORM reads it, or reported as unreadable
    at its first cell that cannot be."""
    dialect = connection.dialect
    result = connection.execute(query)
    # a processor may depend on the type the server says it sent (psycopg: a float column's numeric type code)
    sent_types = {name: type_code for name, type_code, *_ in result.cursor.description}
    columns = [
        (column, column.type.dialect_impl(dialect).result_processor(dialect, sent_types[column.key]))
        for column in _ITEMS_TABLE.columns
    ]
    records: list[_ReviewRow | UnreadableRecord] = []
    for raw in result.mappings():
        values = {}
        for column, process in columns:
            value = raw[column.key]
            try:
                values[column.key] = value = process(value) if process is not None and value is not None else value
                reason = _unreadable_reason(column, value)
            # RecursionError: JSON nested deeper than Python's stack, which json.loads does not call a ValueError
            except (ValueError, TypeError, RecursionError) as exc:
                reason = str(exc)
            if reason is not None:
                records.append(UnreadableRecord(raw["id"], column.key, reason))
                break
        else:
            records.append(_ReviewRow(**values))
    return records


def _readable(connection: Connection, review_id: int) -> _ReviewRow:
    """One record, read by :func:`_read`: :class:`ReviewNotFoundError` or :class:`UnreadableRecordError`."""
    found = _read(connection, _RAW_RECORDS.where(_ReviewRow.id == review_id))
    if not found:
        raise _not_found(review_id)
    if isinstance(found[0], UnreadableRecord):
        raise UnreadableRecordError(found[0])
    return found[0]


def _unreadable_reason(column: sa.Column, value: Any) -> str | None:
    """Why a cell, read by its column's type, is not what the column holds (``None``: it is)."""
    if value is None:
        return None if column.nullable else "empty"
    if isinstance(column.type, sa.JSON):  # top_k: the categories and their probabilities
        entries = value if isinstance(value, list) else [None]
        if all(
            isinstance(e, dict) and isinstance(e.get("category"), str) and _is_number(e.get("probability"))
            for e in entries
        ):
            return None
        return f"{json.dumps(value)[:80]} is not a list of {{category, probability}} objects"
    expected = column.type.python_type
    if expected is float:
        return None if _is_number(value) else f"{value!r:.80} is not a number"
    if not isinstance(value, expected) or isinstance(value, bool):
        return f"{value!r:.80} is not a {expected.__name__}"
    if column.key == "status" and value not in STATUSES:  # no queue lists it, and no answer's schema takes it
        return f"{value!r:.80} is not a status ({', '.join(STATUSES)})"
    return _not_utf8(value) if isinstance(value, str) else None


def _is_number(value: Any) -> bool:
    """A finite number: NaN and infinity (SQLite's ``9e999``, JSON's ``NaN``, which Python's json reads) fit a float
    but no JSON answer: the API wrote ``null`` where its schema promises a number, and a renderer refusing them (as
    Starlette's JSONResponse does) fails the whole page of the queue around such a record."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past a float's range: no float field takes it either
        return False


def _not_utf8(text: str) -> str | None:
    """Why text read by :func:`_text_keeping_bad_bytes` is not UTF-8 (``None``: it is)."""
    try:
        text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
    return None


def _clock(session: Session) -> datetime:
    """Now, read once the transaction holds its lock. PostgreSQL's clock (``clock_timestamp()``, not the
    transaction's start ``now()``) is the one clock that servers on several hosts share."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(datetime, session.scalar(sa.select(sa.func.clock_timestamp())))  # never NULL: a timestamp
    return datetime.now(UTC)


def _source_products(session: Session | Connection, review_ids: list[int]) -> set[str]:
    """The products (:func:`_product_of`) of the records ``review_ids`` that name one; ``source_product_id`` is a
    text column that no type conversion reads, hence readable in a record that is not."""
    if not review_ids:
        return set()
    query = sa.select(_ReviewRow.source_product_id).where(
        _ReviewRow.id.in_(review_ids), _ReviewRow.source_product_id.is_not(None)
    )
    return {product for source in session.scalars(query) if (product := given_product_id(source)) is not None}


def _product_of(row: _ReviewRow) -> str | None:
    """The product a record names, its ``source_product_id`` read as the API reads a ``product_id`` since df24314,
    without the spaces around it: a queue written before holds ids as sent (``" sku-1 "``), which would otherwise be
    another product than the records of ``"sku-1"`` written since, both trained on, and than the catalogue's
    ``sku-1``, which the loaders strip too (``train --feedback`` replaces a corrected catalogue product by its id).
    The server strips the stored ids when it opens the queue (:func:`_strip_product_ids`); ``train --feedback`` writes
    nothing, and reads a queue no server of this version opened yet, or records a server of an earlier version still
    writing it stored since, as they are."""
    return given_product_id(row.source_product_id)


def _latest_per_product(rows: list[_ReviewRow]) -> list[_ReviewRow]:
    """``rows`` (reviewed records) without those of a product reviewed again later: of the records with one
    product (:func:`_product_of`), only the last reviewed one is kept (ties: the last recorded). Records without a
    source id are all kept."""
    latest: dict[str, _ReviewRow] = {}
    for row in rows:
        if (product := _product_of(row)) is None:
            continue
        kept = latest.get(product)
        if kept is None or _review_order(row) > _review_order(kept):
            latest[product] = row
    return [row for row in rows if (product := _product_of(row)) is None or latest[product] is row]


def _warn_of_unstamped(rows: list[_ReviewRow]) -> None:
    """Name the reviewed ``rows`` with no ``reviewed_at``, which :func:`_latest_per_product` orders first."""
    if unstamped := [row.id for row in rows if row.reviewed_at is None]:
        log.warning(
            "review records %s are reviewed without a reviewed_at (set by hand?): each counts as reviewed before "
            "every stamped review of its product; set reviewed_at to say when they were reviewed",
            ", ".join(map(str, unstamped)),
        )


def _say_overridden(session: Session, reviewed: set[int]) -> None:
    """Say which corrections do not train as a later correction of their product overrides them: the ``reviewed``
    records :func:`_latest_per_product` left out (a queue no server of this version opened yet), and the corrected
    records :meth:`ReviewStore.submit` superseded."""
    superseded = sa.select(_ReviewRow.id).where(
        _ReviewRow.status == SUPERSEDED, _ReviewRow.corrected_category.is_not(None)
    )
    if overridden := sorted(reviewed | set(session.scalars(superseded))):
        log.info(
            "%s overridden by a later correction of the same product, left out of the training data: %s",
            counted(len(overridden), "correction"),
            first_few([f"review-{review_id}" for review_id in overridden], 5),
        )


def _review_order(row: _ReviewRow) -> tuple[datetime, int]:
    """When a record was reviewed, then its id; a time left empty (a status set by hand) sorts first."""
    return (_as_utc(row.reviewed_at) if row.reviewed_at else datetime.min.replace(tzinfo=UTC)), row.id


def _not_found(review_id: int) -> ReviewNotFoundError:
    return ReviewNotFoundError(f"no review record with id {review_id}")


def _insert_ignoring_duplicates(dialect_name: str) -> sa.Insert:
    """An INSERT of photos that leaves a photo already stored as it is.

    Two transactions may store the same photo at once: ``ON CONFLICT DO NOTHING`` makes the
    second wait for the first and then skip its row, where a plain INSERT would fail it with a
    unique violation. Other backends get a plain INSERT that skips photos already committed.
    """
    inserts: dict[str, Callable[[Any], postgresql.Insert | sqlite.Insert]] = {
        "postgresql": postgresql.insert,
        "sqlite": sqlite.insert,
    }
    dialect_insert = inserts.get(dialect_name)
    if dialect_insert is not None:
        return dialect_insert(_PhotoRow).on_conflict_do_nothing(index_elements=[_PhotoRow.sha256])
    stored = sa.select(_PhotoRow.sha256).where(_PhotoRow.sha256 == sa.bindparam("sha256"))
    return sa.insert(_PhotoRow).from_select(
        [_PhotoRow.sha256, _PhotoRow.content],
        sa.select(sa.bindparam("sha256"), sa.bindparam("content", type_=sa.LargeBinary)).where(~stored.exists()),
    )


def _require_sqlite_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (opening it would create an empty database)."""
    parsed = parsed_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database).expanduser().resolve()
    if not path.is_file():
        what = "a folder, not the database file in it" if path.is_dir() else "no such file"
        raise ReviewQueueNotFoundError(
            f"no review database at {path} ({url}): {what}; check the path, the file the server's "
            "--review-db names (a relative sqlite:/// path is read from the current folder)"
        )


def _require_writable_sqlite_file(url: str) -> None:
    """Refuse a SQLite file the server could not write (:func:`~prodcat.review.require_writable_sqlite_file`)."""
    if (path := _sqlite_file(parsed_url(url))) is not None:
        require_writable_sqlite_file(path, url)


def _require_review_tables(engine: Engine, url: str) -> str:
    """Refuse a database holding no review queue (``url``: as given, ``engine``'s may be SQLite's read-only form of it):
    nothing is created in it. Returns its layout (see :func:`_layout`)."""
    shown = shown_url(url)
    try:
        with engine.connect() as connection:
            layout = _layout(connection)
    except sa.exc.DatabaseError as exc:
        if engine.dialect.name != "sqlite":  # e.g. a server that cannot be reached: not a wrong file
            raise
        if (path := _in_a_read_only_folder(parsed_url(url))) is not None and "unable to open" in str(exc.orig):
            raise ReviewQueueNotFoundError(
                f"{shown} cannot be read in its read-only folder {path.parent} ({exc.orig}): its last writes are in "
                f"{path.name}-wal, which SQLite reads there only beside {path.name}-shm; copy the database with its "
                "-wal file to a folder that can be written, and read it there"
            ) from None
        # SQLite tells a file that is no database ("file is not a database") from a damaged one
        damaged = "malformed" in str(exc.orig)
        advice = "restore it from a backup (sqlite3's .recover may save part of it)" if damaged else "check the path"
        what = "a damaged database" if damaged else "not a review database"
        raise ReviewQueueNotFoundError(f"{shown} is {what} ({exc.orig}): {advice}") from None
    if layout == "incomplete":
        raise ReviewQueueNotFoundError(
            f"{shown} holds no review queue (no {_ITEMS} table): check the URL, the database the server's "
            "--review-db names"
        )
    return layout


def _create_or_migrate(engine: Engine, url: str) -> None:
    """Create the tables, or bring a database of the previous layout to this one, its product ids stored stripped
    (:func:`_strip_product_ids`) and its overridden corrections superseded (:func:`_supersede_overridden_corrections`),
    in one transaction (``url``: the database as given, for the messages).

    One store at a time does this (SQLite: the write lock; PostgreSQL: an advisory lock), so
    that servers starting together neither race to create tables nor migrate twice. A database
    already in this layout, its ids stripped and no correction left overridden, is only read.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # the check reads every product id: not bounded by the requests' statement timeout either
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        if (
            _layout(connection) == "current"
            and not _has_padded_product_ids(connection)
            and not _has_overridden_corrections(connection)
        ):
            return
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite would run the DDL below outside any transaction: take the write lock first
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            # waiting for another store's migration, and moving every photo, may take long
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
        layout = _layout(connection)  # again, under the lock: another store may have done it meanwhile
        _Base.metadata.create_all(connection)
        for index in _ITEMS_TABLE.indexes:  # those of an existing table too, which create_all leaves out
            index.create(connection, checkfirst=True)
        shown = shown_url(url)
        if layout == "inline-photos":
            _migrate_inline_photos(connection, shown)
        _strip_product_ids(connection, shown)
        _supersede_overridden_corrections(connection, shown)


def _layout(connection: Connection) -> str:
    """``"current"``, ``"unindexed"`` (this layout without an index added since: a queue written by an earlier
    version), ``"inline-photos"`` (the previous layout: a copy of the photo in every record) or ``"incomplete"``
    (tables missing)."""
    inspector = sa.inspect(connection)
    if inspector.has_table(_ITEMS) and "image" in {column["name"] for column in inspector.get_columns(_ITEMS)}:
        return "inline-photos"
    if not (inspector.has_table(_ITEMS) and inspector.has_table(_PHOTOS)):
        return "incomplete"
    indexed = {index["name"] for index in inspector.get_indexes(_ITEMS)}
    return "current" if all(index.name in indexed for index in _ITEMS_TABLE.indexes) else "unindexed"


def _spaces_held(connection: Connection) -> str:
    """The characters of :data:`SPACES` the database can hold, hence all an id stored in it can start or end with: a
    PostgreSQL database in LATIN1 holds no U+3000, and a query naming one is refused before it is sent
    (UnicodeEncodeError), which failed the server's start."""
    if connection.dialect.name != "postgresql":
        return SPACES
    # psycopg: Python's name of the connection's encoding, that of the database
    encoding = getattr(getattr(connection.connection.dbapi_connection, "info", None), "encoding", "utf-8")
    return "".join(space for space in SPACES if _encodable(space, encoding))


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _padded_product_id(spaces: str) -> sa.ColumnElement[bool]:
    """The records whose ``source_product_id`` the API would not store as it is since df24314: starting or ending
    with a space (one of ``spaces``, :func:`_spaces_held`), or empty (no id). A queue written before holds ids as
    sent."""
    product = _ITEMS_TABLE.c.source_product_id
    first, last = sa.func.substr(product, 1, 1), sa.func.substr(product, sa.func.length(product), 1)
    return first.in_(tuple(spaces)) | last.in_(tuple(spaces)) | (product == "")


def _has_padded_product_ids(connection: Connection) -> bool:
    """Whether a record holds a product id as a version before df24314 stored it (:func:`_padded_product_id`): a
    read of every id, at the server's start (about 0.1 s at 200,000 records, SQLite scanning the product index)."""
    padded = _padded_product_id(_spaces_held(connection))
    return connection.scalar(sa.select(sa.literal(1)).where(padded).limit(1)) is not None


def _strip_product_ids(connection: Connection, url: str) -> None:
    """Store each product id as the API stores one since df24314, without the spaces around it, a blank one as no
    id (:func:`~prodcat.catalog.schema.given_product_id`): a queue written before holds ids as sent (``" sku-1 "``),
    where a correction supersedes the pending records of its product and ``GET /reviews?product_id=`` lists them by
    the stored id, which the index on it finds (``url``: the database as logged).

    One UPDATE of the records whose id stripping changes (SQL's ``trim`` of :data:`SPACES` is ``str.strip``): a queue
    already stripped is left as it is, and ids that a server of an earlier version still writing stores after this
    are stripped at the next start (until then ``train --feedback`` reads them stripped, :func:`_product_of`)."""
    if connection.dialect.name == "postgresql":
        # a server of an earlier version may be writing: its records written meanwhile are updated too, and its
        # corrections, locking their product's records in id order, neither deadlock with the update (which fails
        # one of the two) nor supersede by an id that changes under them; reads go on
        connection.execute(sa.text(f"LOCK TABLE {_ITEMS} IN EXCLUSIVE MODE"))
    product = _ITEMS_TABLE.c.source_product_id
    trim = sa.func.btrim if connection.dialect.name == "postgresql" else sa.func.trim
    spaces = _spaces_held(connection)
    stripped = sa.func.nullif(trim(product, spaces), "")
    records = connection.execute(
        sa.update(_ITEMS_TABLE).where(_padded_product_id(spaces)).values(source_product_id=stripped)
    ).rowcount
    if records:
        log.warning(
            "review store %s: %d records held their product id with spaces around it, as versions before this one "
            "stored it: stored without them now, as the API stores an id",
            url,
            records,
        )


def _products_corrected_twice() -> sa.Select:
    """The products of more than one :data:`REVIEWED` record: a queue written before a correction superseded the
    earlier corrections of its product, read through the index on the product and status."""
    return (
        sa.select(_ReviewRow.source_product_id)
        .where(_ReviewRow.status == REVIEWED, _ReviewRow.source_product_id.is_not(None))
        .group_by(_ReviewRow.source_product_id)
        .having(sa.func.count() > 1)
    )


def _has_overridden_corrections(connection: Connection) -> bool:
    """Whether the queue holds :func:`_overridden_corrections`, read a few products at a time: the first of an
    earlier version's queue has some, and the products left as they are (a record unreadable) are few."""
    products = list(connection.scalars(_products_corrected_twice()))
    return any(
        _overridden_corrections(connection, products[start : start + 100]) for start in range(0, len(products), 100)
    )


def _overridden_corrections(connection: Connection, products: sa.Select | list[str]) -> list[int]:
    """The :data:`REVIEWED` records of ``products`` (a list, or a query of them: :func:`_products_corrected_twice`) a
    later correction of their product overrides, which a queue written before
    :meth:`ReviewStore.submit` superseded them holds (``GET /reviews?status=reviewed`` listed them, and their
    ``trains_as``, though ``train --feedback`` keeps a product's last correction alone, :func:`_latest_per_product`).
    A product with a record that cannot be read is left out: which of its corrections is the last is unknown
    (``train --feedback`` trains none of them)."""
    twice = _RAW_RECORDS.where(_ReviewRow.status == REVIEWED, _ReviewRow.source_product_id.in_(products))
    rows, unreadable = _readable_or_not(_read(connection, twice.order_by(_ReviewRow.id)))
    undecided = _source_products(connection, [record.id for record in unreadable])
    rows = [row for row in rows if _product_of(row) not in undecided]
    return sorted({row.id for row in rows} - {row.id for row in _latest_per_product(rows)})


def _supersede_overridden_corrections(connection: Connection, url: str) -> None:
    """Mark :data:`SUPERSEDED` the :func:`_overridden_corrections`. ``url``: the database as logged."""
    overridden = _overridden_corrections(connection, _products_corrected_twice())
    for start in range(0, len(overridden), 500):  # bounded statements, whatever the number of records
        chunk = overridden[start : start + 500]
        connection.execute(sa.update(_ReviewRow).where(_ReviewRow.id.in_(chunk)).values(status=SUPERSEDED))
    if overridden:
        log.warning(
            "review store %s: %s overridden by a later correction of its product, which versions before this one "
            "left reviewed, superseded now: GET /reviews?status=reviewed lists the corrections that train",
            url,
            counted(len(overridden), "correction"),
        )


#: the records of the previous layout as far as they differ from this one: a copy of the photo in each
_INLINE_ITEMS = sa.table(
    _ITEMS,
    sa.column("id"),
    sa.column("image", sa.LargeBinary),
    sa.column("image_type"),
    sa.column("image_sha256"),
)


def _migrate_inline_photos(connection: Connection, url: str) -> None:
    """Move the photo copies of a previous-layout database (an ``image`` column in every record)
    into the photos table, once per distinct content, and drop that column (``url``: the database as logged)."""
    if connection.dialect.name == "postgresql":
        # a server of the previous version may still be writing: no record may arrive with a
        # photo between the copy and the drop
        connection.execute(sa.text(f"LOCK TABLE {_ITEMS} IN EXCLUSIVE MODE"))
    log.warning("review store %s: moving photos out of the records, one copy per distinct photo", url)
    with_photo = _INLINE_ITEMS.c.image.is_not(None)
    firsts = connection.execute(
        sa.select(_INLINE_ITEMS.c.image_sha256, sa.func.min(_INLINE_ITEMS.c.id))
        .where(with_photo)
        .group_by(_INLINE_ITEMS.c.image_sha256)
    ).all()
    insert = _insert_ignoring_duplicates(connection.dialect.name)
    for digest, first_id in firsts:  # one photo in memory at a time
        content = connection.scalar(sa.select(_INLINE_ITEMS.c.image).where(_INLINE_ITEMS.c.id == first_id))
        connection.execute(insert, [{"sha256": digest, "content": content}])
    _drop_inline_photos(connection)
    # neither backend gives the freed pages back to the file system by itself
    vacuum = "VACUUM" if connection.dialect.name == "sqlite" else f"VACUUM FULL {_ITEMS}"
    log.warning("review store %s: %d distinct photos kept; run `%s` to free the disk space", url, len(firsts), vacuum)


def _drop_inline_photos(connection: Connection) -> None:
    """The last step of the migration: the copies go, and records reference the photos table."""
    connection.execute(sa.text(f"ALTER TABLE {_ITEMS} DROP COLUMN image"))
    if connection.dialect.name != "sqlite":  # SQLite cannot add a constraint to an existing table
        (key,) = _ITEMS_TABLE.c.image_sha256.foreign_keys
        # cast: the constraint of a column's ForeignKey, set once its table is (the mapped one is)
        connection.execute(sa.schema.AddConstraint(cast(sa.ForeignKeyConstraint, key.constraint)))


def _photo_cache() -> Path:
    """The folder of the prodcat cache that corrections' photos are written to (:func:`default_image_dir`) or, when this
    process cannot write there (a read-only home or cache), a temporary folder removed when the process exits
    (:func:`~prodcat.features.cache.writable_cache_folder`)."""
    return writable_cache_folder(default_image_dir(), "the review queue's photos", "prodcat-review-photos-")


def _materialise(session: Session, folder: Path, digest: str, image_type: str | None, inline: bool) -> str | None:
    """Write a stored photo once, named by its content hash; returns its absolute path, or ``None`` (logged) when the
    database no longer holds it (a photo row deleted by hand: SQLite does not enforce the reference). ``inline``: the
    queue is of the previous layout, the photo in each record carrying it."""
    path = folder / f"{digest}.{image_type or 'bin'}"
    if not path.exists():  # the bytes are only read from the database when the file is missing
        if inline:
            stored = sa.select(_INLINE_ITEMS.c.image).where(_INLINE_ITEMS.c.image_sha256 == digest).limit(1)
        else:
            stored = sa.select(_PhotoRow.content).where(_PhotoRow.sha256 == digest)
        content = session.scalar(stored)
        if content is None:
            log.warning("review photo %s is not in the database: its record is read without a photo", digest)
            return None
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
    Stored photos are written to ``image_dir`` (default :func:`default_image_dir`)
    under their SHA-256, so ``image`` holds an absolute path like every other catalogue.

    One row per product: of the records with the same ``source_product_id``, without the spaces around it (a product
    predicted and corrected more than once), only the last reviewed is kept, so that a product never trains
    under two labels; ``source_product_id`` is given so. Records without a ``source_product_id`` are all kept.

    Raises :class:`ReviewQueueNotFoundError` (a :class:`FileNotFoundError`), creating nothing, when
    ``url`` names a SQLite file that does not exist or a database without the review tables; warns when the queue
    holds no correction, saying how many records await one.
    """
    store = ReviewStore(url, create=False)
    try:
        corrections = store.corrections(image_dir)
        # asked for corrections, a caller expects some: an empty queue (or one read too early) says so, loud
        if not store.count(REVIEWED):
            log.warning(
                "the review queue %s holds no correction: %d record(s) await review (GET /reviews lists them); "
                "nothing of it is trained on",
                shown_url(url),
                store.count(PENDING),
            )
        return corrections
    finally:
        store.close()

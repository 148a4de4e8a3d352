"""The review queue and feedback store (:mod:`.store`)."""

import os
from pathlib import Path

#: how long a PostgreSQL connection may take to open, and a server may stay silent (TCP) before its connection is
#: dropped, by default (seconds); here, apart from the store, so that ``prodcat serve``'s parser states them
#: without importing SQLAlchemy
CONNECT_TIMEOUT_S = 10
NETWORK_TIMEOUT_S = 60


def database_url_problem(text: str, *, creates_file: bool = False) -> str | None:
    """Why ``text`` is no URL of a review-queue database, ``None`` if it is one. A path (the SQLite file, as one names
    it) failed where the database was opened, in SQLAlchemy's words ('Could not parse SQLAlchemy URL from given URL
    string'): ``train --feedback`` after reading the catalogue, ``serve --review-db`` after loading the model. A
    SQLite URL naming no file (``sqlite://``, ``sqlite:///:memory:``) is none either: it holds no queue to keep.

    A path is answered with the URL to give only where that URL would open: a SQLite file, or a file still to be
    made when ``creates_file`` (the server's); a CSV, a folder or, for a reader, a missing file would only move the
    error one step on ('not a review database', 'no such file')."""
    if "://" not in text:
        return f"{text} is not a database URL{_path_hint(text, creates_file)}"
    scheme, _, rest = text.partition("://")
    # SQLite's in-memory database: a server started on it answered every prediction sent to review 503, each thread's
    # connection having a database of its own, without the tables; and it would lose the queue when it stops
    if scheme.split("+")[0].strip().lower() == "sqlite" and rest.partition("?")[0] in ("", "/", "/:memory:"):
        return (
            f"{text} names no file but SQLite's in-memory database, one per connection and lost when the process ends: "
            "give sqlite:///FILE (e.g. sqlite:///prodcat-reviews.db)"
        )
    return None


#: the first bytes of every SQLite database file
_SQLITE_HEADER = b"SQLite format 3\x00"
_URLS = "sqlite:///FILE for a SQLite file, postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"


def _path_hint(path_text: str, creates_file: bool) -> str:
    """The end of the refusal of the path ``path_text`` given for a database URL: the URL to give instead."""
    path = Path(path_text).expanduser()
    if path.is_dir():
        return f", and it is a folder: give the URL of the review queue's database ({_URLS})"
    if not path.exists() and not creates_file:
        return f", and there is no such file: give the URL of the review queue's database ({_URLS})"
    if path.exists() and not _may_be_sqlite(path):
        return (
            ", and the file is no SQLite database (a catalogue?): give the URL of the review queue's database, the "
            f"one the server's --review-db names ({_URLS})"
        )
    return (
        f": give sqlite:///{path_text} for the SQLite file, postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"
    )


def _may_be_sqlite(path: Path) -> bool:
    """Whether the file ``path`` starts as a SQLite database does, or is empty (SQLite's empty database), or cannot be
    read here (then it is for the database to say why)."""
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except OSError:
        return True
    return header in (b"", _SQLITE_HEADER)


class ReviewQueueNotWritableError(PermissionError):
    """A review queue that must be written cannot be: the server's SQLite file, or its folder, that this process
    cannot write (a read-only mount, another user's folder) or a folder given for the file. Here, apart from the
    store, for ``prodcat serve`` to report it without importing SQLAlchemy."""


def require_writable_sqlite_file(path: Path, url: str) -> None:
    """Refuse the SQLite file ``path`` (which ``url`` names) of a queue the server could not write: in a read-only
    folder, it failed at start in SQLite's words ('unable to open database file'), or with a traceback when its folder
    was to be made; a read-only file, at the first prediction sent to review. Without SQLAlchemy: ``prodcat serve``
    checks it before loading the model."""
    if path.is_dir():  # SQLite: 'unable to open database file'
        raise ReviewQueueNotWritableError(
            f"cannot write the review queue {path} ({url}): it is a folder; give --review-db a file in it, e.g. "
            f"sqlite:///{path / 'prodcat-reviews.db'}"
        )
    # the file and its folder, where SQLite writes its -wal and -shm files; else the nearest folder there is, where the
    # file (and the folders between) is to be made
    to_write = [path, path.parent] if path.exists() else [next(folder for folder in path.parents if folder.exists())]
    if (blocked := next((where for where in to_write if not os.access(where, os.W_OK)), None)) is not None:
        raise ReviewQueueNotWritableError(
            f"cannot write the review queue {path} ({url}): {blocked} is read-only to this process (a "
            "read-only mount, or another user's); the server records there every prediction sent to review and "
            "every correction, SQLite its -wal and -shm files beside the database: give --review-db a file in a "
            "folder it can write"
        )

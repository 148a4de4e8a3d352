"""The review queue and feedback store (:mod:`.store`)."""

#: how long a PostgreSQL connection may take to open, and a server may stay silent (TCP) before its connection is
#: dropped, by default (seconds); here, apart from the store, so that ``prodcat serve``'s parser states them
#: without importing SQLAlchemy
CONNECT_TIMEOUT_S = 10
NETWORK_TIMEOUT_S = 60


def database_url_problem(text: str) -> str | None:
    """Why ``text`` is no URL of a review-queue database, ``None`` if it is one. A path (the SQLite file, as one names
    it) failed where the database was opened, in SQLAlchemy's words ('Could not parse SQLAlchemy URL from given URL
    string'): ``train --feedback`` after reading the catalogue, ``serve --review-db`` after loading the model. A
    SQLite URL naming no file (``sqlite://``, ``sqlite:///:memory:``) is none either: it holds no queue to keep."""
    if "://" not in text:
        return (
            f"{text} is not a database URL: give sqlite:///{text} for the SQLite file, "
            "postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"
        )
    scheme, _, rest = text.partition("://")
    # SQLite's in-memory database: a server started on it answered every prediction sent to review 503, each thread's
    # connection having a database of its own, without the tables; and it would lose the queue when it stops
    if scheme.split("+")[0].strip().lower() == "sqlite" and rest.partition("?")[0] in ("", "/", "/:memory:"):
        return (
            f"{text} names no file but SQLite's in-memory database, one per connection and lost when the process ends: "
            "give sqlite:///FILE (e.g. sqlite:///prodcat-reviews.db)"
        )
    return None


class ReviewQueueNotWritableError(PermissionError):
    """A review queue that must be written cannot be: the server's SQLite file, or its folder, that this process
    cannot write (a read-only mount, another user's folder) or a folder given for the file; a queue of an earlier
    layout, to be migrated, in a read-only folder. Here, apart from the store, for ``prodcat serve`` to report it
    without importing SQLAlchemy."""

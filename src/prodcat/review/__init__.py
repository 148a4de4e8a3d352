"""The review queue and feedback store (:mod:`.store`)."""

#: how long a PostgreSQL connection may take to open, and a server may stay silent (TCP) before its connection is
#: dropped, by default (seconds); here, apart from the store, so that ``prodcat serve``'s parser states them
#: without importing SQLAlchemy
CONNECT_TIMEOUT_S = 10
NETWORK_TIMEOUT_S = 60


def database_url_problem(text: str) -> str | None:
    """Why ``text`` is no URL of a review-queue database, ``None`` if it is one. A path (the SQLite file, as one names
    it) failed where the database was opened, in SQLAlchemy's words ('Could not parse SQLAlchemy URL from given URL
    string'): ``train --feedback`` after reading the catalogue, ``serve --review-db`` after loading the model."""
    if "://" in text:
        return None
    return (
        f"{text} is not a database URL: give sqlite:///{text} for the SQLite file, "
        "postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"
    )


class ReviewQueueNotWritableError(PermissionError):
    """The server cannot write its review queue where it is told to: a SQLite file, or its folder, that this process
    cannot write (a read-only mount, another user's folder). Here, apart from the store, for ``prodcat serve`` to
    report it without importing SQLAlchemy."""

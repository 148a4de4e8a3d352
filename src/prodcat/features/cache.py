"""On-disk cache of per-item embeddings, keyed by content and extractor version.

One SQLite file per extractor and version under the cache directory
(``$PRODCAT_CACHE_DIR``, default ``~/.cache/prodcat``): SQLite gives atomic
writes and safe concurrent readers for free, so an interrupted extraction
keeps everything it finished and a parallel run never reads half a vector.

A cache never stops a run: a file that is no longer a database (damaged by a
copy, a crash of the machine, a full disk) is set aside as ``<file>.corrupt``
and started afresh, and a cache that cannot be opened or written (a read-only
or full disk) is skipped, the features computed without being kept. Either is
logged once per file and process, naming the file and the reason.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_V = TypeVar("_V")


class KeyValueCache(Protocol[_V]):
    """What the extractors use of a cache of ``_V`` values (vectors, texts): on disk or in memory."""

    def get_many(self, keys: Iterable[str]) -> dict[str, _V]: ...

    def put_many(self, values: dict[str, _V]) -> None: ...


#: SQLite's answers for a file whose content is damaged (not the disk or the permissions), as primary result codes:
#: sqlite3 gives the extended one (SQLITE_CORRUPT_INDEX is 779), whose low byte is the primary code
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
#: (cache file, problem) pairs already logged by this process: a warning per file, not per batch
_LOGGED: set[tuple[Path, str]] = set()


def default_cache_dir() -> Path:
    """``$PRODCAT_CACHE_DIR``, read at each call, else ``~/.cache/prodcat``."""
    return Path(os.environ.get("PRODCAT_CACHE_DIR", Path.home() / ".cache" / "prodcat"))


#: the temporary folder standing for each cache folder this process found it cannot write (resolved path -> folder)
_FALLBACKS: dict[Path, Path] = {}
_FALLBACKS_LOCK = threading.Lock()


def writable_cache_folder(folder: Path, what: str, prefix: str, advice: str = "") -> Path:
    """``folder`` of the prodcat cache, made if missing, when this process can write there; else (a read-only home or
    cache, as in many containers) a temporary folder named ``prefix...``, removed when the process exits, with a
    warning saying that ``what`` (a plural: "the review queue's photos") is written there instead, and ``advice``
    after it: as no cache does, it does not stop a run.

    The temporary folder is made and said once per folder and process: later calls for ``folder`` return it, so what
    was written there is found again."""
    folder = folder.expanduser().resolve()
    with _FALLBACKS_LOCK:
        if (fallback := _FALLBACKS.get(folder)) is not None:
            return fallback
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):  # what writing a file there meets
                return folder
        except OSError as exc:
            reason = exc.strerror or exc
        fallback = _FALLBACKS[folder] = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, fallback, ignore_errors=True)
    log.warning(
        "%s cannot be written to the prodcat cache %s (%s): they are written to %s instead, removed when this run "
        "ends%s",
        what,
        folder,
        reason,
        fallback,
        advice,
    )
    return fallback


def content_key(text: str) -> str:
    """SHA-1 hex digest of ``text`` in UTF-8: the cache key of a content (a photo's is
    :func:`~prodcat.image.decode.image_content_key`)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class _SqliteStore:
    """A key -> value store in one SQLite file; subclasses say how a value is stored."""

    #: table, value column and its SQL type
    table: ClassVar[str] = ""
    column: ClassVar[str] = ""
    value_type: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._guarded("be opened", self._create, None)

    def _create(self, db: sqlite3.Connection) -> None:
        columns = f"key TEXT PRIMARY KEY, {self.column} {self.value_type} NOT NULL"
        db.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})")

    @classmethod
    def for_extractor(cls, name: str, version: str, cache_dir: str | os.PathLike[str] | None = None) -> Self:
        """The store of an extractor's outputs: ``<cache dir>/features/<name>-v<version>.sqlite``."""
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        return cls(root / "features" / f"{name}-v{version}.sqlite")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _guarded(self, doing: str, operation: Callable[[sqlite3.Connection], _T], fallback: _T) -> _T:
        """``operation`` on a connection, committed; ``fallback`` when the file cannot be used (logged once).

        A damaged file is set aside and ``operation`` run again on a new, empty one.
        """
        for attempt in range(2):
            file_id = _file_id(self.path)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(self._connect()) as db, db:
                    if attempt:
                        self._create(db)
                    return operation(db)
            except sqlite3.DatabaseError as exc:
                if attempt == 0 and ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in _CORRUPT_CODES:
                    self._set_aside(file_id, exc)
                    continue
                self._log_once(doing, exc)
            except OSError as exc:  # the folder cannot be made
                self._log_once(doing, exc)
            break
        return fallback

    def _set_aside(self, file_id: tuple[int, int] | None, exc: sqlite3.DatabaseError) -> None:
        """Move the damaged file (with its journal) to ``<file>.corrupt``, replacing an older one, unless
        another process already did (the file is no longer the one found damaged)."""
        if file_id is None or _file_id(self.path) != file_id:
            return
        aside = self.path.with_name(f"{self.path.name}.corrupt")
        log.warning("feature cache %s is damaged (%s): set aside as %s and started afresh", self.path, exc, aside)
        for suffix in ("", "-wal", "-shm"):  # a journal left beside a new file would be replayed into it
            with suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")

    def _log_once(self, doing: str, exc: Exception) -> None:
        reason = str(exc) or type(exc).__name__
        if (self.path, reason) not in _LOGGED:
            _LOGGED.add((self.path, reason))
            log.warning(
                "feature cache %s cannot %s (%s): features are computed without it; free space, fix its "
                "permissions or set PRODCAT_CACHE_DIR to another folder",
                self.path,
                doing,
                reason,
            )

    def _encode(self, value: Any) -> Any:
        return value

    def _decode(self, stored: Any) -> Any:
        return stored

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)

        def read(db: sqlite3.Connection) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, stored in db.execute(
                    f"SELECT key, {self.column} FROM {self.table} WHERE key IN ({marks})", chunk
                ):
                    found[key] = self._decode(stored)
            return found

        return self._guarded("be read", read, {}) if keys else {}

    def put_many(self, values: dict[str, Any]) -> None:
        rows = [(k, self._encode(v)) for k, v in values.items()]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(f"INSERT OR REPLACE INTO {self.table} (key, {self.column}) VALUES (?, ?)", rows)

        if rows:
            self._guarded("be written", write, None)

    def __len__(self) -> int:
        return self._guarded(
            "be read", lambda db: int(db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]), 0
        )


def _file_id(path: Path) -> tuple[int, int] | None:
    """Device and inode of ``path`` (``None`` if absent): tells a file from its replacement."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class _ArrayStore(_SqliteStore):
    """Key -> flat numpy array of ``dtype``, stored as raw bytes."""

    value_type = "BLOB"
    dtype: ClassVar[type] = np.float32

    def _encode(self, value: np.ndarray) -> bytes:
        return np.ascontiguousarray(value, dtype=self.dtype).tobytes()

    def _decode(self, stored: bytes) -> np.ndarray:
        return np.frombuffer(stored, dtype=self.dtype)


class EmbeddingCache(_ArrayStore):
    """Key -> ``float32`` vector."""

    table = "vectors"
    column = "vec"


class DescriptorCache(_ArrayStore):
    """Key -> ``uint8`` bytes, returned flat ``(k * width,)``: a photo's ``k`` local descriptors
    (``k`` may be 0), the caller knowing their ``width``. A quarter of the size of float32 vectors."""

    table = "descriptors"
    column = "data"
    dtype = np.uint8


class TextCache(_SqliteStore):
    """Key -> ``str`` (e.g. OCR text read from a photo), beside the vector caches."""

    table = "texts"
    column = "text"
    value_type = "TEXT"


class MemoryCache(Generic[_V]):
    """A bounded, thread-safe, least-recently-used key -> vector store with the
    :class:`EmbeddingCache` interface, for processes that must not grow the disk cache."""

    def __init__(self, max_items: int):
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, _V]:
        found = {}
        with self._lock:
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key]
        return found

    def put_many(self, values: dict[str, _V]) -> None:
        with self._lock:
            for key, value in values.items():
                self._items[key] = self._stored(value)
                self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def _stored(self, value: Any) -> Any:
        """``value`` as kept: a vector as ``float32``, a copy of its own (a row of a batch's array would keep the
        whole batch alive)."""
        return np.array(value, dtype=np.float32)


class TextMemoryCache(MemoryCache[str]):
    """A :class:`MemoryCache` of ``str`` values, with the :class:`TextCache` interface (OCR text of photos)."""

    def _stored(self, value: str) -> str:
        return value


class ReadThroughMemoryCache(Generic[_V]):
    """The on-disk cache read but never written, over a bounded :class:`MemoryCache` that keeps the vectors
    computed since (the :class:`EmbeddingCache` interface): for a process whose inputs mix catalogue products,
    cached on disk by training or ``prodcat predict``, with throw-away ones that must not grow the disk.

    ``disk`` gives the on-disk cache at each read, as its owner's parameters say it then: a ``cache_dir`` set after
    the memory cache was (``set_params``, a config) is the one read."""

    def __init__(self, disk: Callable[[], EmbeddingCache | TextCache], memory: MemoryCache[_V]):
        self.disk = disk
        self.memory = memory

    def get_many(self, keys: Iterable[str]) -> dict[str, _V]:
        keys = list(keys)
        found = self.memory.get_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            found.update(self.disk().get_many(missing))
        return found

    def put_many(self, values: dict[str, _V]) -> None:
        self.memory.put_many(values)

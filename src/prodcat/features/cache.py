"""On-disk cache of per-item embeddings, keyed by content and extractor version.

One SQLite file per extractor and version under the cache directory
(``$PRODCAT_CACHE_DIR``, default ``~/.cache/prodcat``): SQLite gives atomic
writes and safe concurrent readers for free, so an interrupted extraction
keeps everything it finished and a parallel run never reads half a vector.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np


def default_cache_dir() -> Path:
    return Path(os.environ.get("PRODCAT_CACHE_DIR", Path.home() / ".cache" / "prodcat"))


def content_key(data: bytes | str) -> str:
    """SHA-1 hex digest of bytes or UTF-8 text: the cache key of a content."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha1(data).hexdigest()


class _SqliteStore:
    """A key -> value store in one SQLite file; subclasses say how a value is stored."""

    #: table, value column and its SQL type
    table: ClassVar[str] = ""
    column: ClassVar[str] = ""
    value_type: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
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

    def _encode(self, value: Any) -> Any:
        return value

    def _decode(self, stored: Any) -> Any:
        return stored

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        found: dict[str, Any] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, stored in db.execute(
                    f"SELECT key, {self.column} FROM {self.table} WHERE key IN ({marks})", chunk
                ):
                    found[key] = self._decode(stored)
        return found

    def put_many(self, values: dict[str, Any]) -> None:
        rows = [(k, self._encode(v)) for k, v in values.items()]
        with self._connect() as db:
            db.executemany(f"INSERT OR REPLACE INTO {self.table} (key, {self.column}) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])


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


class MemoryCache:
    """A bounded, thread-safe, least-recently-used key -> vector store with the
    :class:`EmbeddingCache` interface, for processes that must not grow the disk cache."""

    def __init__(self, max_items: int):
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found = {}
        with self._lock:
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key]
        return found

    def put_many(self, values: dict[str, np.ndarray]) -> None:
        with self._lock:
            for key, value in values.items():
                self._items[key] = np.asarray(value, dtype=np.float32)
                self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ReadThroughMemoryCache:
    """The on-disk cache read but never written, over a bounded :class:`MemoryCache` that keeps the vectors
    computed since (the :class:`EmbeddingCache` interface): for a process whose inputs mix catalogue products,
    cached on disk by training or ``prodcat predict``, with throw-away ones that must not grow the disk."""

    def __init__(self, disk: EmbeddingCache, memory: MemoryCache):
        self.disk = disk
        self.memory = memory

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(keys)
        found = self.memory.get_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            found.update(self.disk.get_many(missing))
        return found

    def put_many(self, values: dict[str, np.ndarray]) -> None:
        self.memory.put_many(values)

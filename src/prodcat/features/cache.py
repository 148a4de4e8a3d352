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
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    return Path(os.environ.get("PRODCAT_CACHE_DIR", Path.home() / ".cache" / "prodcat"))


def content_key(data: bytes | str) -> str:
    """SHA-1 hex digest of bytes or UTF-8 text: the cache key of a content."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha1(data).hexdigest()


def file_key(path: str | os.PathLike[str]) -> str:
    """Content key of a file (its bytes), so a replaced photo is re-encoded."""
    return content_key(Path(path).read_bytes())


class EmbeddingCache:
    """A key -> ``float32`` vector store in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    @classmethod
    def for_extractor(cls, name: str, version: str, cache_dir: str | os.PathLike[str] | None = None) -> EmbeddingCache:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        return cls(root / "features" / f"{name}-v{version}.sqlite")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(keys)
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])


class TextCache:
    """A key -> ``str`` store in one SQLite file (e.g. OCR text read from a photo), beside
    the vector caches: ``<cache dir>/features/<name>-v<version>.sqlite``."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS texts (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    @classmethod
    def for_extractor(cls, name: str, version: str, cache_dir: str | os.PathLike[str] | None = None) -> TextCache:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        return cls(root / "features" / f"{name}-v{version}.sqlite")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        found: dict[str, str] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, text FROM texts WHERE key IN ({marks})", chunk))
        return found

    def put_many(self, texts: dict[str, str]) -> None:
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO texts (key, text) VALUES (?, ?)", list(texts.items()))

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM texts").fetchone()[0])

"""Files written whole or not at all (batch parts and outputs, collected pages, photos and catalogues)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def temporary_sibling(path: Path) -> Path:
    """A fresh name beside ``path`` (same file system, so renaming it over ``path`` is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def write_atomically(path: Path, write: Callable[[IO[Any]], None], mode: str = "wb") -> None:
    """Write ``path`` through ``write(handle)`` into a temporary sibling, flushed to disk, then renamed over it:
    readers (and a resumed run) see the whole file or none of it. Created with the usual permissions (umask),
    unlike :mod:`tempfile`'s private ones: the output is for others to read."""
    temporary = temporary_sibling(path)
    try:
        with open(temporary, mode, encoding=None if "b" in mode else "utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

"""How a collection writes its files: whole or not at all (:func:`prodcat.files.write_atomically`), in UTF-8."""

from __future__ import annotations

from pathlib import Path

from prodcat.files import write_atomically


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in UTF-8 (:func:`utf8`), whole or not at all."""
    write_bytes(path, utf8(text))


def utf8(text: str) -> bytes:
    """``text`` encoded in UTF-8, a character that has no encoding written ``?``."""
    # a lone surrogate (JSON allows one; a collector may pass it on) becomes "?" rather than failing the write
    return text.encode("utf-8", errors="replace")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary sibling renamed over it)."""
    write_atomically(path, lambda handle: handle.write(data))

"""Progress bars that cost nothing when they are not shown.

tqdm builds even a disabled bar under its write lock, whose first use creates a multiprocessing lock: a named
semaphore in every process that makes one (each ``prodcat serve --workers N`` worker, once an extractor encoded a
product), registered with multiprocessing's resource tracker, which said at the server's stop 'There appear to be 2
leaked semaphore objects'. A bar not shown is no tqdm here, so no lock (nor tqdm's monitor thread) is made for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class _NoBar:
    """What a disabled bar does: nothing, passing ``iterable``'s items through."""

    def __init__(self, iterable: Iterable[Any] | None) -> None:
        self.iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable or ())

    def update(self, n: float = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(iterable: Iterable[Any] | None = None, *, disable: bool = False, **options: Any) -> Any:
    """``tqdm.auto.tqdm(iterable, **options)``, or when ``disable`` a stand-in with its ``update``, ``close``,
    iteration and context manager that makes no tqdm (so no lock, see the module)."""
    if disable:
        return _NoBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)

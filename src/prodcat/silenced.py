"""Warnings silenced while one of prodcat's calls runs, in the thread (the context) making it alone.

``warnings.catch_warnings`` is not thread-safe before Python 3.14: it keeps the process's one list of filters on entry
and puts it back on exit, so two threads whose blocks overlap put back each other's. Two fits in threads (a joblib
threading backend, ``GridSearchCV(n_jobs=2)`` under it, a server training in a worker thread) left the filter one of
them added behind, silencing scikit-learn's warnings in the whole process from then on, and the warnings meant to be
silenced were shown by the thread whose filter the other had taken away.

Here a warning to silence is declared once as a subclass of :class:`Silenced`: its filter (``ignore`` its message of
its category) is put at the head of ``warnings.filters`` when the class is made, and stays there. What it matches is
decided warning by warning: its category is the filter's, and a warning's category is a "subclass" of it only while
:func:`silenced` runs in the context warning (a ``ContextVar``, so each thread, or asyncio task, has its own). The
list of filters is not swapped, so nothing is left behind; it is only put back at the head of the list (in place)
when something was put before it since, or it was dropped (a ``catch_warnings`` block around its import, pytest's
per-test one), as ``catch_warnings`` and ``filterwarnings("ignore")`` put theirs first.

The filter is a plain one of a compiled message and a class: scikit-learn's joblib workers, which copy the caller's
filters into their own by ``filterwarnings`` (``sklearn.utils.parallel``), make the same filter again, and one pickled
to a process worker is the same class there.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, cast

#: the :class:`Silenced` classes whose warnings the running context silences
_ACTIVE: ContextVar[frozenset[type]] = ContextVar("silenced_warnings", default=frozenset())
#: held while a filter is put back at the head of the list, so two threads do not both put it there
_PLACING = threading.Lock()


class _SilencedKind(type):
    """The metaclass of :class:`Silenced`: ``issubclass(category, cls)``, which is how the warnings machinery asks a
    filter whether it applies to a warning of ``category``, is true for ``cls.category`` and its subclasses only
    while the running context silences ``cls``."""

    # set on each class by Silenced and its subclasses (declared here for the metaclass's own methods)
    category: type[Warning]
    message: str | None
    filter: tuple[Any, ...]

    def __subclasscheck__(cls, subclass: Any) -> bool:
        if type.__subclasscheck__(cls, subclass):
            return True
        return cls in _ACTIVE.get() and isinstance(subclass, type) and issubclass(subclass, cls.category)

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        if bases != (Warning,):  # a silenced warning, not Silenced itself
            message = None if cls.message is None else re.compile(cls.message, re.IGNORECASE)
            # as warnings.filterwarnings makes one: a copy made by it compares equal
            cls.filter = ("ignore", message, cls, None, 0)
            _put_first(cls.filter)


class Silenced(Warning, metaclass=_SilencedKind):
    """A warning prodcat silences around its own calls: a subclass, made once at a module's top level, names its
    ``category`` and ``message`` (a regular expression matched at the start of the message, letter case ignored, as
    ``warnings.filterwarnings`` reads it; ``None``: any), and :func:`silenced` silences it. Never raised itself."""

    category: ClassVar[type[Warning]] = Warning
    message: ClassVar[str | None] = None
    filter: ClassVar[tuple[Any, ...]]


@contextmanager
def silenced(*kinds: type[Silenced]) -> Iterator[None]:
    """Within it, the warnings of ``kinds`` are ignored in this thread (this context) alone; the filters of the other
    threads and of the caller are as they were."""
    for kind in kinds:
        _put_first(kind.filter)
    token = _ACTIVE.set(_ACTIVE.get() | frozenset(kinds))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _put_first(entry: tuple[Any, ...]) -> None:
    """``entry`` among the first filters of ``warnings.filters``, before every filter that is not a
    :class:`Silenced` one; the list changed in place, only when it is not already there."""

    def in_place(filters: Sequence[Any]) -> bool:
        for each in filters:
            if each == entry:
                return True
            if not isinstance(each[2], _SilencedKind):
                return False
        return False

    if in_place(warnings.filters):
        return
    with _PLACING:
        filters = cast(list[Any], warnings.filters)  # a list at run time, typeshed says Sequence: changed in place
        if not in_place(filters):
            filters[:] = [entry, *(each for each in filters if each != entry)]

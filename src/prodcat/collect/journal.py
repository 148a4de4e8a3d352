"""Values by product id that survive a run killed outright: a JSON object, and a journal of the values recorded
since it was written (the photos that failed, and the URL each photo was fetched from:
:mod:`prodcat.collect.photos`)."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from prodcat.collect.writing import write_text
from prodcat.files import append_line

log = logging.getLogger(__name__)


_Value = TypeVar("_Value")


class JournaledRecord(Generic[_Value]):
    """Values by product id, kept in the JSON object at ``path``, written by :meth:`save`, and in the ``journal``
    beside it, where :meth:`record` appends each value as a JSON ``[product_id, value]`` line until :meth:`save` folds
    the journal in: a run killed outright (kill -9, the OOM killer) leaves every value it recorded, and the next run
    folds them in. Rewriting the whole JSON at each value instead would write the record once a photo, gigabytes over
    tens of thousands of photos.

    ``parse`` makes a value as read from either file into the one kept, ``None`` for one that is not of its shape
    (left out); ``unreadable`` is what follows when a file cannot be read (its values lost). ``forget_earlier``: start
    empty, and empty the files on disk (a run killed afterwards leaves only its own values).
    """

    def __init__(
        self,
        path: Path,
        journal: Path,
        parse: Callable[[Any], _Value | None],
        unreadable: str,
        *,
        forget_earlier: bool = False,
    ):
        self.path = path
        self.journal = journal
        self._values: dict[str, _Value] = {}
        if not forget_earlier:
            saved = _read_json_object(path, unreadable).items()
            for product_id, value in itertools.chain(saved, _read_journal(journal, unreadable)):
                if (parsed := parse(value)) is not None:
                    self._values[product_id] = parsed
        # a killed run's journal is folded in before this run appends to it, after a line the kill may have cut
        if forget_earlier or journal.is_file():
            self.save()

    def get(self, product_id: str) -> _Value | None:
        """The value kept for ``product_id``, ``None`` if none is."""
        return self._values.get(product_id)

    def record(self, product_id: str, value: _Value) -> None:
        """Keep ``value`` for ``product_id``, appended to the journal at once (a run killed next keeps it)."""
        self._values[product_id] = value
        append_line(self.journal, json.dumps([product_id, value]))  # escaped: a lone surrogate encodes

    def product_ids(self) -> set[str]:
        """The products a value is kept for."""
        return set(self._values)

    def forget(self, product_ids: Iterable[str]) -> None:
        """Drop the values of ``product_ids``, from the files too once :meth:`save` writes them."""
        for product_id in product_ids:
            self._values.pop(product_id, None)

    def save(self) -> None:
        """Write every value kept to ``path`` whole, then remove the journal it now holds."""
        _save_json_object(self.path, self._values)
        self.journal.unlink(missing_ok=True)


def _read_journal(path: Path, unreadable: str) -> list[tuple[str, Any]]:
    """The ``(product_id, value)`` entries of a :class:`JournaledRecord` journal, in the order recorded (none when
    there is no such file); a line cut by the kill, or damaged since, is skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
    except OSError as exc:
        log.warning("%s is unreadable (%s): %s", path, exc, unreadable)
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            entries.append((entry[0], entry[1]))
    return entries


def _read_json_object(path: Path, otherwise: str) -> dict[str, Any]:
    """The JSON object an earlier run saved at ``path``; empty when the file is missing or damaged (a warning then
    says what follows: ``otherwise``)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s): %s", path, exc, otherwise)
        return {}
    return saved if isinstance(saved, dict) else {}


def _save_json_object(path: Path, saved: dict[str, Any]) -> None:
    """Write ``saved`` at ``path`` for the next run's :func:`_read_json_object`: not created while empty, emptied
    when it was."""
    if saved or path.exists():
        write_text(path, json.dumps(saved, indent=2, ensure_ascii=False))

"""What the prodcat cache folder holds, and which of it this prodcat no longer reads: ``prodcat cache``.

The folder (:func:`~prodcat.features.cache.default_cache_dir`) holds

- ``features/<name>[-<what>]-v<version>[-decoder<N>].sqlite``: the outputs of an extractor, filed under its
  ``cache_version()`` (:meth:`~prodcat.features.base.Extractor.cache_version`, the decoder's
  :data:`~prodcat.image.decode.DECODER_VERSION` for those reading photos), with SQLite's ``-wal`` and ``-shm`` beside
  it, and ``<file>.corrupt``, a damaged file set aside (:mod:`prodcat.features.cache`);
- ``models/<name>-v<version>[-<side>px].onnx``: the ONNX exports (:mod:`prodcat.features.onnx`), each with the
  ``.lock`` file its exporters wait on, and the ``.tmp`` file of an export under way or interrupted;
- ``review-images/``: the review queue's photos, written from its database when missing
  (:func:`~prodcat.review.store.default_image_dir`).

Which version is current is read from the code: the extractors registered, each with the classes whose caches it
writes and the stems of their files (:meth:`~prodcat.features.base.Extractor.cache_owners`), matched exactly. A file of
a lower version is stale: no code of this prodcat opens it, so deleting it cannot touch a file a run of this prodcat
is using. A file of a higher version (a later prodcat sharing the folder), or of a stem no extractor here declares (a
plugin not installed here: ``minilm_ft-v1.sqlite`` is not ``minilm``'s), is kept. A file not named as prodcat names
its files (``my-backup.sqlite.bak``, ``handmade.onnx``) is not prodcat's: ``clear`` keeps it too.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

from prodcat.features.base import CacheOwner, ExtractorPluginError, extractor_names, find_extractor

#: the statuses of an entry
CURRENT, STALE, NEWER, DAMAGED, UNKNOWN, KEPT = "current", "stale", "newer", "damaged", "unknown", "kept"
#: those ``prodcat cache prune`` deletes
PRUNED = frozenset({STALE, DAMAGED})

_FEATURE_FILE = re.compile(r"(?P<stem>.+)-v(?P<version>[^-]+)(?:-decoder(?P<decoder>[^-]+))?\.sqlite")
_ONNX_FILE = re.compile(r"(?P<stem>.+?)-v(?P<version>[^-]+?)(?:-\d+px)?\.onnx")
#: what SQLite keeps beside a database, and the set-aside copy of a damaged one
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_CORRUPT = ".corrupt"
#: an export's lock file, and its temporary file (``tempfile.mkstemp``: the name, 8 random characters, ``.tmp``)
_ONNX_COMPANION = re.compile(r"(?P<base>.+\.onnx)(?:\.lock|\w{8}\.tmp)")


@dataclass
class CacheEntry:
    """A file of the cache with those kept beside it (SQLite's journal, an export's lock), or a folder."""

    #: relative to the cache folder; a folder's ends with ``/``
    name: str
    #: every file of it present, its companions first (deleted in that order)
    files: list[Path] = field(default_factory=list)
    #: what it holds: ``vectors``, ``descriptors``, ``codebooks``, ``texts``, ``ONNX export``...
    holds: str = ""
    extractor: str = ""
    version: str = ""
    decoder: str = ""
    #: rows of its SQLite table, or files of a folder; ``None``: not known
    items: int | None = None
    status: str = UNKNOWN
    #: why it has its status, when a reader needs telling (``this prodcat writes v2-decoder6``)
    note: str = ""
    #: written by prodcat (in ``features/``, ``models/``, ``review-images/``), not a file put in its folder by hand
    ours: bool = True

    @property
    def size(self) -> int:
        """Bytes of its files (0 for one deleted since the scan)."""
        total = 0
        for path in self.files:
            with suppress(OSError):
                total += path.stat().st_size
        return total

    @property
    def prunable(self) -> bool:
        """Whether ``prodcat cache prune`` deletes it."""
        return self.status in PRUNED


@dataclass(frozen=True)
class Owner:
    """A class writing files in the cache, as this prodcat has it (:class:`~prodcat.features.base.CacheOwner`)."""

    name: str
    #: that of its ONNX export
    version: str
    #: that of its cached outputs
    cache_version: str


def current_owners() -> dict[str, Owner]:
    """The cache owners of this prodcat by the stems of their files, after the folder (``features/bovw_orb-codebooks``,
    ``features/sentence_transformer-*``: :meth:`~prodcat.features.base.Extractor.cache_owners`): those of every
    registered extractor and installed extractor plugin (a plugin that fails to load is left out: its files are
    unknown, and kept)."""
    classes: dict[str, type[CacheOwner]] = {}
    for name in extractor_names():
        with suppress(ExtractorPluginError):
            if (extractor := find_extractor(name)) is not None:
                classes.update(extractor.cache_owners())
    owners = {}
    for stem, owner in classes.items():
        with suppress(TypeError):  # a plugin's cache_version that needs an instance: its files are kept as unknown
            owners[stem] = Owner(owner.name, str(owner.version), str(owner.cache_version()))
    return owners


def scan(folder: Path, owners: dict[str, Owner] | None = None) -> list[CacheEntry]:
    """The entries of the cache ``folder`` (none if it does not exist), by name; ``owners``: those
    :func:`current_owners` gives, read then when not given."""
    if not folder.is_dir():
        return []
    owners = current_owners() if owners is None else owners
    entries: list[CacheEntry] = []
    for child in sorted(folder.iterdir()):
        if child.name == "features" and child.is_dir():
            entries += _grouped(child, _sqlite_base, lambda name, files: _feature_entry(name, files, owners))
        elif child.name == "models" and child.is_dir():
            entries += _grouped(child, _onnx_base, lambda name, files: _onnx_entry(name, files, owners))
        elif child.name == "review-images" and child.is_dir():
            files = _files_under(child)
            entries.append(
                CacheEntry(
                    f"{child.name}/",
                    files,
                    holds="review queue photos",
                    items=len(files),
                    status=KEPT,
                    note="written again from the review database when missing",
                )
            )
        else:
            entries.append(_not_ours(CacheEntry(child.name + ("/" if child.is_dir() else ""), _files_under(child))))
    return entries


def _not_ours(entry: CacheEntry) -> CacheEntry:
    """``entry``, said to be no file prodcat writes: unknown, and kept by every action."""
    entry.ours, entry.holds, entry.status, entry.note = False, "", UNKNOWN, "not a name prodcat writes; kept"
    return entry


def _files_under(path: Path) -> list[Path]:
    """``path`` if a file, else every file below it."""
    if not path.is_dir():
        return [path]
    return sorted(Path(root) / name for root, _, names in os.walk(path) for name in names)


def _grouped(
    folder: Path, base: Callable[[str], str], entry: Callable[[str, list[Path]], CacheEntry]
) -> list[CacheEntry]:
    """The entries of ``folder``'s files, each file under its ``base`` name (a journal under its database's)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file():
            groups.setdefault(base(path.name), []).append(path)
    # the main file last: its journal deleted first is never left beside a database it does not belong to
    return [
        entry(f"{folder.name}/{name}", sorted(files, key=lambda path: path.name == name))
        for name, files in sorted(groups.items())
    ]


def _sqlite_base(name: str) -> str:
    for suffix in _SQLITE_COMPANIONS:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _onnx_base(name: str) -> str:
    found = _ONNX_COMPANION.fullmatch(name)
    return found["base"] if found else name


def _owner(stem: str, owners: dict[str, Owner]) -> str:
    """The key among ``owners`` of the files of ``stem`` (``features/bovw_orb-codebooks``): ``stem`` itself, else the
    longest prefix of it declared (``features/sentence_transformer-*``); ``""``: none (a plugin's
    ``features/minilm_ft`` is not ``features/minilm``'s)."""
    if stem in owners:
        return stem
    prefixes = [key for key in owners if key.endswith("*") and stem.startswith(key[:-1]) and len(stem) >= len(key)]
    return max(prefixes, key=len, default="")


#: the note of a current file of one model among several (``features/sentence_transformer-*``)
_ONE_OF_MODELS = "one file per model, whose weights are not checked: delete an old model's by hand"


def _owned(entry: CacheEntry, stem: str, version: str, owners: dict[str, Owner], *, export: bool) -> None:
    """Give ``entry``, of files of ``stem`` and ``version``, its extractor and status (unknown without an owner); an
    ONNX ``export``'s version is its owner's ``version``, another file's its ``cache_version``."""
    key = _owner(stem, owners)
    if not key:
        return
    owner = owners[key]
    entry.extractor = owner.name
    entry.status, entry.note = _status(version, owner.version if export else owner.cache_version)
    if entry.status == CURRENT and key.endswith("*"):
        entry.note = _ONE_OF_MODELS


def _feature_entry(name: str, files: list[Path], owners: dict[str, Owner]) -> CacheEntry:
    folder, _, file_name = name.partition("/")
    damaged = file_name.endswith(_CORRUPT)
    entry = CacheEntry(name, files)
    found = _FEATURE_FILE.fullmatch(file_name.removesuffix(_CORRUPT))
    if found is None:
        return _not_ours(entry)
    entry.version, entry.decoder = found["version"], found["decoder"] or ""
    table, entry.items = _table_rows(files[-1]) if files[-1].name == file_name and not damaged else ("", None)
    entry.holds = "codebooks" if found["stem"].endswith("-codebooks") else table
    version = f"{entry.version}-decoder{entry.decoder}" if entry.decoder else entry.version
    _owned(entry, f"{folder}/{found['stem']}", version, owners, export=False)
    if damaged:
        entry.status, entry.note = DAMAGED, "set aside when found damaged"
    return entry


def _onnx_entry(name: str, files: list[Path], owners: dict[str, Owner]) -> CacheEntry:
    folder, _, file_name = name.partition("/")
    entry = CacheEntry(name, files, holds="ONNX export")
    if files[-1].name != file_name:  # its lock or temporary file alone
        entry.holds = "unfinished export" if files[-1].name.endswith(".tmp") else "lock of an export"
    found = _ONNX_FILE.fullmatch(file_name)
    if found is None:
        return _not_ours(entry)
    entry.version = found["version"]
    _owned(entry, f"{folder}/{found['stem']}", entry.version, owners, export=True)
    return entry


def _version_numbers(version: str) -> tuple[int, int] | None:
    """``2-decoder6`` as ``(2, 6)``, ``1`` as ``(1, 0)``; ``None`` for another form (a plugin's ``1.2b``)."""
    found = re.fullmatch(r"(\d+)(?:-decoder(\d+))?", version)
    return None if found is None else (int(found[1]), int(found[2] or 0))


def _status(version: str, now: str) -> tuple[str, str]:
    """The status of a file of ``version`` when this prodcat writes ``now``, and its note: older in every part is
    stale; newer in one and older in none, newer; otherwise unknown (both kept)."""
    if version == now:
        return CURRENT, ""
    found, current = _version_numbers(version), _version_numbers(now)
    note = f"this prodcat writes v{now}"
    if found is None or current is None:
        return UNKNOWN, note
    if all(old <= new for old, new in zip(found, current, strict=True)):
        return STALE, note
    if all(old >= new for old, new in zip(found, current, strict=True)):
        return NEWER, note + "; a later prodcat wrote it"
    return UNKNOWN, note


def _table_rows(path: Path) -> tuple[str, int | None]:
    """The table of a cache file and its rows; ``("", None)`` when it cannot be read.

    Nothing is written: a file with its WAL journal (a run has it open) is read through it, read-only; one without
    (every run closed it: all of it is in the file) is read as immutable, since a read-only connection to a WAL
    database would create the journal files, and leave them. A run opening it meanwhile can only make the count
    fail or miss its latest rows."""
    journal = all(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    mode = "mode=ro" if journal else "immutable=1"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=5)) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if len(tables) != 1:
                return "", None
            (table,) = tables
            return table, int(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    except sqlite3.Error:
        return "", None


def delete(entries: Iterable[CacheEntry]) -> tuple[int, list[str]]:
    """Delete the files of ``entries``: the bytes freed, and a line for each file that could not be (one gone
    already is freed by whoever deleted it)."""
    freed, failed = 0, []
    for entry in entries:
        for path in entry.files:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                failed.append(f"{path}: {error.strerror or error}")
                continue
            freed += size
    return freed, failed


def size_text(size: int) -> str:
    """Bytes as a person reads them: ``512 B``, ``180.0 KiB``, ``47.5 MiB``, ``1.2 GiB``."""
    value, unit = float(size), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"

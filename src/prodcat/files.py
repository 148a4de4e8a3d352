"""Files written whole or not at all (batch parts and outputs, collected pages, photos and catalogues, report
folders), the CSV every output table is written as, the JSON of the reports, the line a command ends with on whether
its report was written, and the lock that keeps two runs from writing one output."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Self

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from prodcat.formatting import say_error
from prodcat.processes import machine, running


def temporary_sibling(path: Path) -> Path:
    """A fresh name beside ``path`` (same file system, so renaming it over ``path`` is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


#: a :func:`temporary_sibling`'s name; ``of``: the name of the path it stands beside
_TEMPORARY_NAME = re.compile(r"\.(?P<of>.+)\.[0-9a-f]{12}\.tmp")


def temporary_sibling_of(name: str) -> str | None:
    """The name of the path whose :func:`temporary_sibling` ``name`` is, or ``None`` (not one): what a run killed
    outright leaves behind."""
    match = _TEMPORARY_NAME.fullmatch(name)
    return None if match is None else match["of"]


def write_atomically(path: Path, write: Callable[[IO[Any]], object], mode: str = "wb") -> None:
    """Write ``path`` through ``write(handle)`` into a temporary sibling, flushed to disk, then renamed over it:
    readers (and a resumed run) see the whole file or none of it. Created with the usual permissions (umask),
    unlike :mod:`tempfile`'s private ones: the output is for others to read. Text is UTF-8, its line ends
    written as given (a CSV's CRLF stays CRLF on every system)."""
    temporary = temporary_sibling(path)
    text = "b" not in mode
    try:
        with (
            _naming(path),
            open(temporary, mode, encoding="utf-8" if text else None, newline="" if text else None) as handle,
        ):
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def append_line(path: Path, line: str) -> None:
    """Append ``line`` and a line end to the UTF-8 text file ``path`` (created when missing): a journal's entry, which
    a process killed outright leaves on disk once this returns, or leaves cut (its reader skips a cut last line)."""
    with _naming(path), path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(line + "\n")


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError raised without a file name: a write, flush or fsync failing (a full disk) names
    none, and ``cannot write None`` told a user nothing."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def csv_text(table: pd.DataFrame, header: bool = True) -> str:
    """``table`` as CSV without its index, records ending in CRLF (RFC 4180): the writer then quotes a field
    holding a lone carriage return too (an old-Mac line break, in a text or an id), which readers take for the
    end of a line; with records ending in "\\n" it stayed unquoted and cut its row in two."""
    return table.to_csv(index=False, header=header, lineterminator="\r\n")


def write_csv(path: Path, table: pd.DataFrame) -> None:
    """``table`` as :func:`csv_text`, written atomically."""
    write_atomically(path, lambda handle: handle.write(csv_text(table)), mode="w")


@contextmanager
def written_together(folder: Path, stale: Iterable[str] = ()) -> Iterator[Path]:
    """A staging folder inside ``folder`` (same file system) to write a set of files into, in subfolders too: once
    the block ends, each is moved over its namesake in ``folder`` (renames, cheap for large figures), then those
    named in ``stale`` (paths relative to ``folder``) that it did not write are removed (an earlier set's, with
    nothing to replace them). A block failing or interrupted leaves ``folder`` as it was, not an earlier report's
    files mixed with some of this one's; the staging folder goes either way. Those that runs killed outright left in
    ``folder`` are removed first (:func:`remove_abandoned_staging`). A ``folder`` the block made, and its parents, go
    too when it fails and leaves them empty: the user would find an empty folder, as if a report had been written."""
    made = made_folders(folder)
    try:
        remove_abandoned_staging(folder)
        staging = temporary_sibling(folder / f"{_STAGING}.{machine()}-{os.getpid()}")
        staging.mkdir()
        try:
            yield staging
            written = {path.relative_to(staging).as_posix() for path in staging.rglob("*") if not path.is_dir()}
            for name in sorted(written):  # renames, all written: the moments a Ctrl-C could split them
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, folder / name)
            for name in set(stale) - written:
                (folder / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        remove_empty_folders(made)
        raise


def made_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; those this call made, deepest first (see
    :func:`remove_empty_folders`). Each is made on its own and listed only if its ``mkdir`` made it: a path through
    ``..`` spells folders that exist as missing ones (``runs/../mine`` while ``runs`` is missing), and a run failing
    removed the user's empty ``mine``; a folder another run makes meanwhile is that run's."""
    made = []
    for path in reversed([folder, *folder.parents]):
        try:
            path.mkdir()
        except OSError:
            if not path.is_dir():  # as mkdir's exist_ok: a folder there is no error, a file or anything else is
                raise
            continue
        made.append(path)
    return made[::-1]


def remove_empty_folders(made: list[Path]) -> None:
    """Remove the folders ``made`` by a run that failed (:func:`made_folders`), deepest first, as long as they are
    empty: a folder holding anything (a file another run wrote meanwhile) is kept, and so are those above it."""
    for path in made:
        try:
            path.rmdir()  # refuses a folder that is not empty
        except OSError:
            return


#: what :func:`written_together` names its staging folders after, with the host (:func:`~prodcat.processes.machine`)
#: and pid of the run writing there
_STAGING = "staging"
_STAGING_OWNER = re.compile(rf"{_STAGING}\.(?P<host>.+)-(?P<pid>\d+)")


def remove_abandoned_staging(folder: Path) -> None:
    """Delete the staging folders of :func:`written_together` in ``folder`` whose run is no longer running (killed
    outright: SIGKILL, the OOM killer, a power cut), each as large as a report. Another run writing the same folder
    at the same time keeps its own: its process is alive. One of another host (a shared network folder) is left, its
    run beyond this machine's sight."""
    host = machine()
    for path in folder.iterdir():
        owner = _STAGING_OWNER.fullmatch(temporary_sibling_of(path.name) or "")
        if owner and owner["host"] == host and not running(int(owner["pid"])):
            shutil.rmtree(path, ignore_errors=True)


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented UTF-8 JSON that strict parsers read: NaN and infinities become ``null`` (a metric
    with nothing to measure, e.g. the precision of no auto-accepted product), numpy scalars and arrays plain. Written
    atomically: a report rewritten as its run goes on (robustness) is never left half written by Ctrl-C."""
    text = json.dumps(_plain(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_atomically(path, lambda handle: handle.write(text), mode="w")


#: what a command that prints its figures before writing its report keeps when the report cannot be written
FIGURES_KEPT = "the figures above are all that was kept"


def write_failure(write: Callable[[], object]) -> OSError | None:
    """Run ``write``, a report's writing, before its command prints its figures; the OSError it raised (a full disk),
    for the command to say after them (:func:`report_not_written`), or ``None``: written. Printed first, the
    figures lost the report when the reader of the output had gone (``| head``); written after, a full disk lost
    the figures."""
    try:
        write()
    except OSError as error:
        return error
    return None


def report_not_written(report: str | Path, error: OSError, kept: str, run: str) -> str:
    """What the error line says when the report in the folder ``report`` could not be written (a full disk): that,
    and what of the work was ``kept`` (printed above, or nothing), rather than OSError's traceback; ``run``: what to
    run again."""
    return (
        f"cannot write the report in {report}: {error.strerror or error}; {kept}: free some space or give another "
        f"--report, and run the {run} again"
    )


def report_exit_code(
    report: str | Path, failure: OSError | None, run: str, written: Callable[[], str] | None = None
) -> int:
    """Say, after the figures, whether the ``run``'s report was written in ``report`` or why not (``failure``:
    :func:`write_failure`'s, in :func:`report_not_written`'s line on stderr), and return the command's exit code:
    2 if it was not, else 0. ``written`` makes the line saying it was (default: "Report written to REPORT" after a
    blank line), called only then: what it names exists only once written."""
    if failure:
        return say_error(report_not_written(report, failure, FIGURES_KEPT, run))
    print(written() if written else f"\nReport written to {report}")
    return 0


class RunBusyError(Exception):
    """Another run holds a :class:`RunLock`: what it writes is that run's, being written."""


class RunLock:
    """The lock of what one run writes (``prodcat predict``'s output, ``prodcat robustness``'s report folder): the
    hidden file ``path``, locked by the OS (released by a crash too, so a killed run never blocks the next) and holding
    the pid of its holder. A second run is refused with ``busy`` naming that pid, ``command`` (``"prodcat predict"``),
    what it is ``writing`` and what to do ``instead`` (``"write to another --out"``); a pid that a run killed outright
    left in the file (its OS lock died with it) is taken over with a note in ``log`` (the caller's: its command's log
    level applies).

    The file is emptied by a run that ends, not removed (filelock removes it where that is safe: Windows, its soft
    lock): a run that opened it before the holder ended and locks it after would hold a removed file, while a third
    run made and locked a new one at ``path``: two holders."""

    def __init__(
        self,
        path: Path,
        *,
        command: str,
        writing: str,
        instead: str,
        log: logging.Logger,
        busy: type[RunBusyError] = RunBusyError,
    ) -> None:
        self.path = path
        self.command, self.writing, self.instead = command, writing, instead
        self.log, self.busy = log, busy
        self._lock = FileLock(path)

    def recorded_pid(self) -> str:
        """The pid the lock file holds on its first line (filelock's own soft lock, used on a file system without
        ``flock``, records it so too); "" if none can be read."""
        with contextlib.suppress(OSError):  # no file, or one locked against reading (Windows)
            first_line = self.path.read_text(encoding="ascii", errors="replace").partition("\n")[0].strip()
            return first_line if first_line.isdigit() else ""
        return ""

    def __enter__(self) -> Self:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = f" (pid {pid})" if (pid := self.recorded_pid()) else ""
            raise self.busy(
                f"another {self.command}{holder} is writing {self.writing} (it holds {self.path}): "
                f"wait for it to finish, or {self.instead}"
            ) from None
        # read under the lock: a run that ends empties its lock file, so a pid found there is a run that was killed
        left_by = self.recorded_pid()
        if left_by != str(os.getpid()):  # else filelock's soft lock recorded this run already
            if left_by:
                self.log.info(
                    "taking over %s, left by %s pid %s, which ended without emptying it (killed?)",
                    self.path,
                    self.command,
                    left_by,
                )
            with contextlib.suppress(OSError):  # the pid is for the messages only
                self.path.write_text(f"{os.getpid()}\n", encoding="ascii")
        return self

    def __exit__(self, *exc_info: object) -> None:
        # emptied on every way out (an error, Ctrl-C), so that a pid found there means a run killed outright
        with contextlib.suppress(OSError):  # removed by its holder (a folder made for the run), or read-only
            os.truncate(self.path, 0)
        self._lock.release()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value

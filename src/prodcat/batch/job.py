"""A resumable batch run: every finished chunk on disk at once, the output assembled at the end.

::

    preds.csv.parts/              beside the output, while the run is unfinished
      state.json                  what the parts belong to: bundle, input fingerprint, chunk size, top-k, rows,
                                  the library versions and prodcat's prediction code
      part-000000.parquet         predictions of rows [0, chunk_size), written to a temporary file, then renamed;
                                  its metadata holds the size and times of each row's photo file
      part-000001.parquet         ...

Running the same command again after a crash or Ctrl-C resumes: finished chunks are kept, only the missing
ones are scored. A work directory left by a run with another model, other input rows or other chunking is
refused (its parts would not fit) with what differs, and so is one left by other code (another version of
prodcat or of a library, prodcat's prediction code edited: one output would mix two versions' predictions);
``restart=True`` (``--restart``) deletes it and starts over. A finished chunk one of whose photo files changed
since it was scored (replaced at the same path, created, removed) is scored again. Once every chunk is there,
the parts are concatenated in input order into the output (written to a temporary file, then renamed) and the
work directory is removed. An output that is a symbolic link is written through it, to the file it points at
(resolved once, at the start), as a shell's ``>`` does. Two runs on one output would write each other's
chunks: a second run is refused while ``.preds.csv.lock`` beside the output is held (an OS lock, released by a
crash too, so a killed run never blocks its resumption; the lock file holds the pid of its holder, named when
a run is refused).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, get_args, get_origin, get_type_hints

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from prodcat.batch.engines import Chunk, Engine, bundle_identity
from prodcat.batch.installation import Installation
from prodcat.batch.scoring import OUTPUT_COLUMNS, BatchError, chunk_bounds, model_failed
from prodcat.bundle import data_fingerprint, modalities_read_by_bundle
from prodcat.files import (
    RunBusyError,
    RunLock,
    csv_text,
    temporary_sibling,
    temporary_sibling_of,
    write_atomically,
)
from prodcat.formatting import count_text, counted, first_few
from prodcat.models.classifier import product_frame

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
#: version of the work directory's layout; a directory of another version is refused like a mismatch
#: (2: the input fingerprint leaves the given categories out; 3: each part records the stamps of its photos;
#: 4: the state records the library versions and prodcat's prediction code)
WORKDIR_FORMAT = 4
#: the key, in a part's Parquet metadata, of the :func:`photo_stamps` of its chunk when it was scored
PHOTO_STAMPS_KEY = b"prodcat.photo_stamps"


class ResumeMismatchError(BatchError):
    """The work directory beside the output belongs to another run (model, input, chunking or code)."""


class OutputBusyError(BatchError, RunBusyError):
    """Another run holds the output's lock: the parts beside it are that run's, being written."""


@dataclass(frozen=True)
class RunState:
    """What a work directory's parts belong to (``state.json``)."""

    format: int
    bundle_version: str
    #: :func:`~prodcat.batch.engines.bundle_identity`: SHA-256 of the manifest, hence of every bundle file
    bundle_identity: str
    #: :func:`~prodcat.bundle.data_fingerprint` of the input rows, in order (chunk i is rows of that order)
    data_fingerprint: str
    total_rows: int
    chunk_size: int
    top_k: int
    #: the :class:`~prodcat.batch.installation.Installation` of this process, the driver (on a dask cluster each worker
    #: compares its own with it). Absent from the state of a work directory of format 3 or before, refused by its format
    libraries: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)

    def differences(self, other: RunState) -> list[str]:
        """What differs from ``other`` (the unfinished run), in words; empty if the parts fit this run."""
        if self.format != other.format:  # what else another layout records is not comparable
            which = "an older" if other.format < self.format else "a newer"
            return [f"the layout of {which} prodcat (work directory format {other.format} there, {self.format} now)"]
        found = []
        if self.bundle_identity != other.bundle_identity:
            found.append(self._other_model(other))
        if self.data_fingerprint != other.data_fingerprint or self.total_rows != other.total_rows:
            there, now = counted(other.total_rows, "product"), count_text(self.total_rows)
            found.append(f"other input data ({there} there, {now} now, or changed)")
        if self.chunk_size != other.chunk_size:
            there, now = count_text(other.chunk_size), count_text(self.chunk_size)
            found.append(f"another chunk size ({there} there, {now} now)")
        if self.top_k != other.top_k:
            found.append(f"another --top-k ({other.top_k} there, {self.top_k} now)")
        found += Installation(self.libraries, self.code).differences(Installation(other.libraries, other.code))
        return found

    def _other_model(self, other: RunState) -> str:
        """How the bundle of ``other`` differs from this run's, whose identities differ. The version is the model
        file's digest: a bundle of the same version holds the same model with another manifest (retrained to the
        same model, its manifest.json rewritten), which 'bundle version X there, X now' did not tell."""
        if self.bundle_version != other.bundle_version:
            return f"another model (bundle version {other.bundle_version} there, {self.bundle_version} now)"
        return (
            f"another model bundle (bundle version {self.bundle_version} in both, the same model file, but another "
            "manifest.json: retrained or rewritten since)"
        )


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The work directory of an output file: ``preds.csv`` -> ``preds.csv.parts`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(work_dir: Path, index: int) -> Path:
    """The Parquet file in ``work_dir`` holding the scored chunk ``index`` (``part-000042.parquet``)."""
    return work_dir / f"part-{index:06d}.parquet"


def output_target(out: str | os.PathLike[str]) -> Path:
    """The file written for the output ``out``: the one it points at if it is a symbolic link (written through,
    as a shell's ``>`` does: replacing the link with a file would leave what it points at stale), else ``out``.
    Its lock and work directory are beside that file, so two links to one file share them."""
    out = Path(out)
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def photo_stamps(chunk: pd.DataFrame) -> list[list[int] | None]:
    """``[size, mtime_ns, ctime_ns]`` of each row's photo file, ``None`` where there is none (no path, or no file
    there): how a resumption tells that a photo was replaced, created or removed at its path since its chunk was
    scored, as make and rsync tell changed files. A ``stat`` costs a tenth of hashing the content (6 against 70 µs
    a photo on Rakuten's), which would read every photo of the finished chunks again on each resumption. The
    change time moves too when a photo is copied in with its old modification time (``cp -p``) or made readable
    (``chmod``); on Windows it is the creation time, and the modification time still moves."""
    stamps: list[list[int] | None] = []
    for photo in chunk["image"]:
        try:
            status = os.stat(photo) if isinstance(photo, str | os.PathLike) else None
        except (OSError, ValueError):  # ValueError: a NUL in the path
            status = None
        stamps.append(None if status is None else [status.st_size, status.st_mtime_ns, status.st_ctime_ns])
    return stamps


def _write_part(path: Path, table: pd.DataFrame, stamps: list[list[int] | None]) -> None:
    """Write a chunk's predictions with the :func:`photo_stamps` they were scored from."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**arrow.schema.metadata, PHOTO_STAMPS_KEY: json.dumps(stamps)})
    write_atomically(path, lambda handle: pq.write_table(arrow, handle))


def _remove_leftovers(out: Path) -> None:
    """Delete what runs killed outright (kill -9, a power cut, the OOM killer) left of their temporary files: the
    output being assembled, a work directory renamed aside to be deleted, one being created; parts being written
    are inside the work directory. Nothing reads them, and each can be as large as the output. Called under the
    output's lock: no run is writing them. Told by :func:`prodcat.files.temporary_sibling_of`."""
    work_dir = work_dir_for(out)
    ours = {out.name, work_dir.name}
    leftovers = [path for path in out.parent.iterdir() if temporary_sibling_of(path.name) in ours]
    if work_dir.is_dir():
        leftovers += [path for path in work_dir.iterdir() if temporary_sibling_of(path.name) is not None]
    for path in leftovers:
        log.info("removing %s, left by an interrupted run", path)
        _delete(path)


def _delete(path: Path) -> None:
    """Delete the folder tree, file or symbolic link (not what it points at) ``path``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _remove_work_dir(work_dir: Path) -> None:
    """Delete ``work_dir`` after renaming it out of the way: an interrupted deletion (Ctrl-C, a kill) leaves
    a hidden ``.tmp`` sibling, never a work directory stripped of its ``state.json`` that the next run
    would refuse to resume. What --restart deletes may be no work directory at all (a file of that name, which a
    resumption refuses, saying --restart deletes it)."""
    doomed = temporary_sibling(work_dir)
    work_dir.rename(doomed)
    _delete(doomed)


def _finished_part(path: Path, chunk: pd.DataFrame) -> bool:
    """Whether ``path`` holds the predictions of the products of ``chunk``, in their order, readable to the end,
    scored from the photo files there now.

    Neither a damaged part (a disk error, a copy cut short) nor a hand-edited one can come from atomic writes;
    such a part is scored again, not trusted: its footer alone may read while its data does not, and the run
    would then fail at the end, when the parts are joined, on every resumption."""
    try:
        table = pq.read_table(path)
        recorded = json.loads((table.schema.metadata or {}).get(PHOTO_STAMPS_KEY, b"null"))
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, and so is a JSONDecodeError
        log.warning("%s cannot be read (%s): scoring that chunk again", path, exc)
        return False
    ids = chunk["product_id"].tolist()
    if (
        table.column_names != list(OUTPUT_COLUMNS)
        or table.column("product_id").to_pylist() != ids
        or not isinstance(recorded, list)
        or len(recorded) != len(ids)
    ):
        log.warning("%s does not hold this chunk's predictions: scoring that chunk again", path)
        return False
    photos = chunk["image"].tolist()
    changed = [photo for photo, then, now in zip(photos, recorded, photo_stamps(chunk), strict=True) if then != now]
    if changed:
        listed = first_few([str(photo) for photo in changed], 3)
        log.warning("photo(s) changed since %s was scored (%s): scoring that chunk again", path.name, listed)
        return False
    return True


def _read_state(path: Path) -> RunState:
    """The :class:`RunState` written at ``path``; ``ValueError`` or ``TypeError`` saying why if it is not one (edited by
    hand, or by another program): a field of another type (``null``, ``"20"`` for 20) was compared as it was, and failed
    in a traceback or said 'another chunk size (20 there, 20 now)'."""
    recorded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(recorded, dict):
        raise ValueError(f"{path.name} holds a JSON {type(recorded).__name__}, not an object")
    # named here: RunState(**recorded) said 'RunState.__init__() missing 6 required positional arguments: ...'
    names = [state_field.name for state_field in fields(RunState)]
    if unknown := [str(name) for name in recorded if name not in names]:
        raise ValueError(f"{path.name} has field(s) this prodcat does not write: {first_few(unknown, 5)}")
    # libraries and code have defaults: a state of format 3 or before lacks them, and is refused by its format
    required = [state_field.name for state_field in fields(RunState) if state_field.default_factory is MISSING]
    if lacking := [name for name in required if name not in recorded]:
        raise ValueError(f"{path.name} lacks the field(s) {first_few(lacking, 10)}")
    state = RunState(**recorded)
    types = get_type_hints(RunState)
    if wrong := [name for name, expected in types.items() if not _is_of_type(getattr(state, name), expected)]:
        raise TypeError(f"{path.name}: {', '.join(wrong)} not of the type prodcat writes")
    return state


def _is_of_type(value: object, expected: type) -> bool:
    """Whether ``value``, read from JSON, is an ``expected``: ``int`` (not a bool), ``str``, ``dict[str, str]``."""
    if get_origin(expected) is dict:
        keys, values = get_args(expected)
        return isinstance(value, dict) and all(isinstance(k, keys) and isinstance(v, values) for k, v in value.items())
    return type(value) is expected


def _open_work_dir(work_dir: Path, state: RunState, restart: bool, frame: pd.DataFrame) -> set[int]:
    """Create the work directory, or reuse a matching one; returns the indices of its finished chunks
    (``frame``: the products of the run, in order)."""
    # lexists: a symbolic link pointing nowhere is there too (not a missing work directory, which the rename into its
    # place failed on: 'Not a directory'), refused as any other non-work directory, and unlinked by --restart
    if os.path.lexists(work_dir) and restart:
        log.info("--restart: removing the unfinished run in %s", work_dir)
        _remove_work_dir(work_dir)
    if not os.path.lexists(work_dir):
        # state.json first, in a temporary directory renamed into place: a work directory always has one
        staging = temporary_sibling(work_dir)
        staging.mkdir()
        (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
        staging.rename(work_dir)
        return set()
    try:
        previous = _read_state(work_dir / STATE_FILE)
    except (OSError, ValueError, TypeError) as exc:
        raise ResumeMismatchError(
            f"{work_dir} is not a prodcat work directory that can be resumed ({exc}); "
            "start over with --restart (deletes it), or write to another --out"
        ) from exc
    differences = state.differences(previous)
    if differences:
        raise ResumeMismatchError(
            f"{work_dir} holds an unfinished run with " + "; ".join(differences) + ". Rerun with the same model, "
            "data, options and prodcat installation to resume it, or start over with --restart (deletes its finished "
            "chunks)"
        )
    bounds = chunk_bounds(state.total_rows, state.chunk_size)
    return {
        index
        for index, (start, stop) in enumerate(bounds)
        if part_path(work_dir, index).is_file() and _finished_part(part_path(work_dir, index), frame.iloc[start:stop])
    }


def _write_output(work_dir: Path, n_chunks: int, out: Path) -> tuple[int, int]:
    """Concatenate the parts in input order into ``out`` (CSV), one part in memory at a time; returns the
    numbers of auto-accepted and of failed products. A disk too full for the CSV (every chunk scored, the parts
    beside it) is :func:`_no_room_for_the_output`."""
    auto = errors = 0
    #: bytes of CSV text rendered so far, and of how many chunks: the CSV's size, estimated if the disk fills up
    rendered = chunks_rendered = 0

    def write(handle: IO[Any]) -> None:
        nonlocal auto, errors, rendered, chunks_rendered
        if n_chunks == 0:
            handle.write(csv_text(pd.DataFrame(columns=list(OUTPUT_COLUMNS))))
        for index in range(n_chunks):
            table = pd.read_parquet(part_path(work_dir, index))
            auto += int((table["decision"] == "auto").sum())
            errors += int((table["error"].fillna("") != "").sum())
            text = csv_text(table, header=index == 0)
            rendered += len(text.encode("utf-8"))
            chunks_rendered += 1
            handle.write(text)

    try:
        write_atomically(out, write, mode="w")
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not chunks_rendered:
            raise
        raise _no_room_for_the_output(out, exc, rendered * n_chunks // chunks_rendered) from exc
    return auto, errors


def _no_room_for_the_output(out: Path, exc: OSError, size: int) -> BatchError:
    """The error of a disk that filled up as the scored chunks were written into the CSV ``out`` of about ``size``
    bytes. The same command fails again there until room is made, after a whole night of scoring each time: said
    with the CSV's size and the room there, not as a disk that filled up mid-run."""
    try:
        free = f"{_size_text(shutil.disk_usage(out.parent).free)} free there now"
    except OSError:
        free = "the free space there unknown"
    return BatchError(
        f"cannot write {out}: {exc.strerror or exc}. Every chunk is scored, but the CSV needs about "
        f"{_size_text(size)} beside their parts ({free}): make room, then run the same command, which writes it "
        "without scoring again"
    )


def _size_text(size: float) -> str:
    """A size in bytes as a person reads it, to three figures: ``812 bytes``, ``36.8 MB``, ``1.2 GB``."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 999.5:
            return f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:,.3g} TB"


@dataclass(frozen=True)
class RunSummary:
    """What a :func:`score_catalog` call did, for its caller's one-line report."""

    out: Path
    total: int
    #: products scored by this call (the others came from an earlier, interrupted run)
    scored: int
    auto_accepted: int
    errors: int

    def report_line(self) -> str:
        """The run's one line: how many predictions, where, the share auto-accepted, those an interrupted run
        scored and those that could not be scored, counts with thousands separators as the rest of the output."""
        resumed = (
            f"; {count_text(self.total - self.scored)} from the interrupted run" if self.scored < self.total else ""
        )
        failed = f"; {count_text(self.errors)} could not be scored (see the error column)" if self.errors else ""
        return (
            f"{counted(self.total, 'prediction')} written to {self.out} "
            f"({self.auto_accepted / max(self.total, 1):.1%} auto-accepted{resumed}{failed})"
        )


def score_catalog(
    frame: pd.DataFrame,
    out: str | os.PathLike[str],
    engine: Engine,
    *,
    chunk_size: int = 2000,
    top_k: int = 5,
    restart: bool = False,
    progress: bool = True,
    on_locked: Callable[[], object] | None = None,
) -> RunSummary:
    """Score every row of ``frame`` with ``engine`` and write the ``predict`` CSV to ``out`` (one row per
    input row, in input order), keeping each finished chunk of ``chunk_size`` rows in ``<out>.parts/`` so
    that an interrupted call resumes where it stopped when called again with the same arguments.

    Raises :class:`ResumeMismatchError` if ``<out>.parts/`` belongs to another run and ``restart`` is false,
    :class:`OutputBusyError` if another call is writing ``out``. ``on_locked`` is called once ``out`` is this
    call's to write (its lock held), before any scoring: what a caller writes beside ``out`` then (its input's
    issues) never overwrites the files of another run writing it.
    """
    out = output_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = product_frame(frame, modalities_read_by_bundle(engine.manifest))
    installation = Installation.here()
    state = RunState(
        format=WORKDIR_FORMAT,
        bundle_version=str(engine.manifest.get("version", "")),
        bundle_identity=bundle_identity(engine.manifest),
        # the given categories are not read: a catalogue relabelled meanwhile resumes
        data_fingerprint=data_fingerprint(frame, ordered=True, labels=False),
        total_rows=len(frame),
        chunk_size=chunk_size,
        top_k=top_k,
        libraries=installation.libraries,
        code=installation.code,
    )
    lock = RunLock(
        out.with_name(f".{out.name}.lock"),
        command="prodcat predict",
        writing=str(out),
        instead="write to another --out",
        log=log,
        busy=OutputBusyError,
    )
    with lock:
        if on_locked is not None:
            on_locked()
        return _score_locked(frame, out, engine, state, restart, progress)


class _FailureStreak:
    """Stops a run whose every product so far has failed, as :func:`~prodcat.batch.scoring.score_chunk` does
    within one chunk: chunks of one product cannot tell a bad product from a broken model on their own.
    The parts of the streak are removed, so that a resumed run scores those products again."""

    def __init__(self) -> None:
        self.parts: list[Path] | None = []
        self.products = 0

    def add(self, part: Path, table: pd.DataFrame) -> None:
        if self.parts is None:  # a product was scored: the model works
            return
        if not table["error"].map(model_failed).all():
            self.parts = None
            return
        self.parts.append(part)
        self.products += len(table)
        if self.products >= 2:
            for path in self.parts:
                path.unlink(missing_ok=True)
            last = table["error"].iat[-1]
            raise BatchError(
                f"every one of the first {self.products} products of this run failed (last: {last}): the model "
                "or its environment is broken, not the products"
            )


def _score_locked(
    frame: pd.DataFrame, out: Path, engine: Engine, state: RunState, restart: bool, progress: bool
) -> RunSummary:
    """:func:`score_catalog`'s work, once the output's lock is held."""
    chunk_size, top_k = state.chunk_size, state.top_k
    work_dir = work_dir_for(out)
    bounds = chunk_bounds(len(frame), chunk_size)
    _remove_leftovers(out)
    finished = _open_work_dir(work_dir, state, restart, frame)
    done_rows = sum(stop - start for index, (start, stop) in enumerate(bounds) if index in finished)
    if finished:
        log.info("resuming %s: %d of %d chunks already scored", work_dir, len(finished), len(bounds))

    #: each chunk's photo stamps, taken before it is scored: a photo replaced while its chunk is being scored
    #: then differs from its part's record, and a resumption scores that chunk again
    stamps: dict[int, list[list[int] | None]] = {}

    def missing_chunks() -> Iterator[Chunk]:
        for index, (start, stop) in enumerate(bounds):
            if index not in finished:
                chunk = frame.iloc[start:stop]
                stamps[index] = photo_stamps(chunk)
                yield index, chunk

    # a run killed once every chunk was on disk is only to be assembled: no engine is started (a dask cluster took
    # 12 s to start and load the model on every worker, for nothing to score)
    if len(finished) < len(bounds):
        with (
            engine,
            tqdm(total=len(frame), initial=done_rows, desc="predict", unit="product", disable=not progress) as bar,
        ):
            failing = _FailureStreak()
            for index, table in engine.score(missing_chunks(), top_k):
                path = part_path(work_dir, index)
                _write_part(path, table, stamps.pop(index))
                failing.add(path, table)
                bar.update(len(table))
    # said: joining a million products' parts into the CSV took 50 s on 2 shared cores, the progress bar at its end
    # and nothing else shown meanwhile
    log.info("every chunk is scored: writing %s (%s)", out, counted(len(frame), "row"))
    auto, errors = _write_output(work_dir, len(bounds), out)
    _remove_work_dir(work_dir)
    return RunSummary(out, len(frame), len(frame) - done_rows, auto, errors)

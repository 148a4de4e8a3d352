"""A resumable batch run: every finished chunk on disk at once, the output assembled at the end.

::

    preds.csv.parts/              beside the output, while the run is unfinished
      state.json                  what the parts belong to: bundle, input fingerprint, chunk size, top-k, rows
      part-000000.parquet         predictions of rows [0, chunk_size), written to a temporary file, then renamed
      part-000001.parquet         ...

Running the same command again after a crash or Ctrl-C resumes: finished chunks are kept, only the missing
ones are scored. A work directory left by a run with another model, other input rows or other chunking is
refused (its parts would not fit) with what differs; ``restart=True`` (``--restart``) deletes it and starts
over. Once every chunk is there, the parts are concatenated in input order into the output (written to a
temporary file, then renamed) and the work directory is removed. Two runs on one output would write
each other's chunks: a second run is refused while ``.preds.csv.lock`` beside the output is held (an OS
lock, released by a crash too, so a killed run never blocks its resumption).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow.parquet as pq
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from prodcat.batch.engines import Chunk, Engine, bundle_identity
from prodcat.batch.scoring import OUTPUT_COLUMNS, BatchError, chunk_bounds, model_failed
from prodcat.bundle import data_fingerprint
from prodcat.files import csv_text, temporary_sibling, temporary_sibling_of, write_atomically
from prodcat.predict import normalise_input

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
#: version of the work directory's layout; a directory of another version is refused like a mismatch
#: (2: the input fingerprint leaves the given categories out)
WORKDIR_FORMAT = 2


class ResumeMismatchError(BatchError):
    """The work directory beside the output belongs to another run (model, input or chunking)."""


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

    def differences(self, other: RunState) -> list[str]:
        """What differs from ``other`` (the unfinished run), in words; empty if the parts fit this run."""
        found = []
        if self.format != other.format:
            found.append(f"work directory format {other.format} there, {self.format} now")
        if self.bundle_identity != other.bundle_identity:
            found.append(f"another model (bundle version {other.bundle_version} there, {self.bundle_version} now)")
        if self.data_fingerprint != other.data_fingerprint or self.total_rows != other.total_rows:
            found.append(f"other input data ({other.total_rows} products there, {self.total_rows} now, or changed)")
        if self.chunk_size != other.chunk_size:
            found.append(f"another chunk size ({other.chunk_size} there, {self.chunk_size} now)")
        if self.top_k != other.top_k:
            found.append(f"another --top-k ({other.top_k} there, {self.top_k} now)")
        return found


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The work directory of an output file: ``preds.csv`` -> ``preds.csv.parts`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def part_path(work_dir: Path, index: int) -> Path:
    return work_dir / f"part-{index:06d}.parquet"


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
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _remove_work_dir(work_dir: Path) -> None:
    """Delete ``work_dir`` after renaming it out of the way: an interrupted deletion (Ctrl-C, a kill) leaves
    a hidden ``.tmp`` sibling, never a work directory stripped of its ``state.json`` that the next run
    would refuse to resume."""
    doomed = temporary_sibling(work_dir)
    work_dir.rename(doomed)
    shutil.rmtree(doomed)


def _finished_part(path: Path, ids: list[str]) -> bool:
    """Whether ``path`` holds the predictions of the products ``ids``, in their order, readable to the end.

    Neither a damaged part (a disk error, a copy cut short) nor a hand-edited one can come from atomic writes;
    such a part is scored again, not trusted: its footer alone may read while its data does not, and the run
    would then fail at the end, when the parts are joined, on every resumption."""
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        log.warning("%s cannot be read (%s): scoring that chunk again", path, exc)
        return False
    if table.column_names != list(OUTPUT_COLUMNS) or table.column("product_id").to_pylist() != ids:
        log.warning("%s does not hold this chunk's predictions: scoring that chunk again", path)
        return False
    return True


def _open_work_dir(work_dir: Path, state: RunState, restart: bool, ids: list[str]) -> set[int]:
    """Create the work directory, or reuse a matching one; returns the indices of its finished chunks
    (``ids``: the products of the run, in order)."""
    if work_dir.exists() and restart:
        log.info("--restart: removing the unfinished run in %s", work_dir)
        _remove_work_dir(work_dir)
    if not work_dir.exists():
        # state.json first, in a temporary directory renamed into place: a work directory always has one
        staging = temporary_sibling(work_dir)
        staging.mkdir()
        (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
        staging.rename(work_dir)
        return set()
    try:
        previous = RunState(**json.loads((work_dir / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ResumeMismatchError(
            f"{work_dir} is not a prodcat work directory that can be resumed ({exc}); "
            "start over with --restart (deletes it), or write to another --out"
        ) from exc
    differences = state.differences(previous)
    if differences:
        raise ResumeMismatchError(
            f"{work_dir} holds an unfinished run with " + "; ".join(differences) + ". Rerun with the same model, "
            "data and options to resume it, or start over with --restart (deletes its finished chunks)"
        )
    bounds = chunk_bounds(state.total_rows, state.chunk_size)
    return {
        index
        for index, (start, stop) in enumerate(bounds)
        if part_path(work_dir, index).is_file() and _finished_part(part_path(work_dir, index), ids[start:stop])
    }


def _write_output(work_dir: Path, n_chunks: int, out: Path) -> tuple[int, int]:
    """Concatenate the parts in input order into ``out`` (CSV), one part in memory at a time; returns the
    numbers of auto-accepted and of failed products."""
    auto = errors = 0

    def write(handle: IO[Any]) -> None:
        nonlocal auto, errors
        if n_chunks == 0:
            handle.write(csv_text(pd.DataFrame(columns=list(OUTPUT_COLUMNS))))
        for index in range(n_chunks):
            table = pd.read_parquet(part_path(work_dir, index))
            auto += int((table["decision"] == "auto").sum())
            errors += int((table["error"].fillna("") != "").sum())
            handle.write(csv_text(table, header=index == 0))

    write_atomically(out, write, mode="w")
    return auto, errors


@dataclass(frozen=True)
class RunSummary:
    """What a :func:`score_catalog` call did, for its caller's one-line report."""

    out: Path
    total: int
    #: products scored by this call (the others came from an earlier, interrupted run)
    scored: int
    auto_accepted: int
    errors: int


def score_catalog(
    frame: pd.DataFrame,
    out: str | os.PathLike[str],
    engine: Engine,
    *,
    chunk_size: int = 2000,
    top_k: int = 5,
    restart: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Score every row of ``frame`` with ``engine`` and write the ``predict`` CSV to ``out`` (one row per
    input row, in input order), keeping each finished chunk of ``chunk_size`` rows in ``<out>.parts/`` so
    that an interrupted call resumes where it stopped when called again with the same arguments.

    Raises :class:`ResumeMismatchError` if ``<out>.parts/`` belongs to another run and ``restart`` is false,
    :class:`~prodcat.batch.scoring.BatchError` if another call is writing ``out``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = normalise_input(frame)
    state = RunState(
        format=WORKDIR_FORMAT,
        bundle_version=str(engine.manifest.get("version", "")),
        bundle_identity=bundle_identity(engine.manifest),
        # the given categories are not read: a catalogue relabelled meanwhile resumes
        data_fingerprint=data_fingerprint(frame, ordered=True, labels=False),
        total_rows=len(frame),
        chunk_size=chunk_size,
        top_k=top_k,
    )
    lock = FileLock(out.with_name(f".{out.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BatchError(
            f"another prodcat predict is writing {out} (it holds {lock.lock_file}): "
            "wait for it to finish, or write to another --out"
        ) from None
    try:
        summary = _score_locked(frame, out, engine, state, restart, progress)
        # removed while still held: a run that opened the file meanwhile fails to lock it and stops
        with contextlib.suppress(OSError):
            os.unlink(lock.lock_file)
        return summary
    finally:
        lock.release()


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
    finished = _open_work_dir(work_dir, state, restart, frame["product_id"].tolist())
    done_rows = sum(stop - start for index, (start, stop) in enumerate(bounds) if index in finished)
    if finished:
        log.info("resuming %s: %d of %d chunks already scored", work_dir, len(finished), len(bounds))

    def missing_chunks() -> Iterator[Chunk]:
        for index, (start, stop) in enumerate(bounds):
            if index not in finished:
                yield index, frame.iloc[start:stop]

    with (
        engine,
        tqdm(total=len(frame), initial=done_rows, desc="predict", unit="product", disable=not progress) as bar,
    ):
        failing = _FailureStreak()
        for index, table in engine.score(missing_chunks(), top_k):
            path = part_path(work_dir, index)
            write_atomically(path, lambda handle, table=table: table.to_parquet(handle))
            failing.add(path, table)
            bar.update(len(table))
    auto, errors = _write_output(work_dir, len(bounds), out)
    _remove_work_dir(work_dir)
    return RunSummary(out, len(frame), len(frame) - done_rows, auto, errors)

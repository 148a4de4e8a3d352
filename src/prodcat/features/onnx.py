"""ONNX models exported once from their offline PyTorch weights, then run with onnxruntime.

onnxruntime is several times faster than eager PyTorch on a small CPU and
keeps torch out of the serving path; torch is only imported for the one-off
export, whose file is cached under ``<cache dir>/models``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from prodcat.features.cache import default_cache_dir, writable_cache_folder
from prodcat.silenced import Silenced, silenced

log = logging.getLogger(__name__)

_EXPORT_LOCK = threading.Lock()


class ExportNotices(Silenced):
    """Any warning of a one-off export to ONNX (constant folding, the legacy exporter): noise, silenced in the
    exporting thread alone."""


def models_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the ONNX exports are kept: ``models`` in ``cache_dir``, or in :func:`default_cache_dir`."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "models"


def cached_export(path: Path, export: Callable[[str], None]) -> Path:
    """``path``, made by ``export(tmp_file)`` the first time (atomically: no half-written model is ever seen).

    Threads and processes (dask workers starting together on a cold cache) wait for one export
    rather than each running its own: a lock file beside ``path`` is held while exporting.

    A cache this process cannot write (a read-only home, as in many containers) has the export written to a
    temporary folder instead (:func:`_export_folder`), and that path returned: a model already exported there is read.
    """
    if path.exists():
        return path
    path = _export_folder(path.parent) / path.name
    if path.exists():  # exported to the temporary folder earlier in this process
        return path
    with _EXPORT_LOCK, FileLock(f"{path}.lock"):
        if path.exists():  # another process exported it while this one waited
            return path
        log.info("exporting to ONNX once: %s", path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            # constant-folding and legacy-exporter notices are noise for a one-off export
            with silenced(ExportNotices):
                export(tmp)
            os.chmod(tmp, 0o644)  # mkstemp creates it private; the cache is shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _export_folder(folder: Path) -> Path:
    """``folder``, or when it cannot be written, the temporary folder standing for it in this process, removed at
    exit, said once (:func:`~prodcat.features.cache.writable_cache_folder`)."""
    return writable_cache_folder(
        folder,
        "ONNX exports",
        "prodcat-onnx-",
        advice="; each start exports them again (seconds to minutes): set PRODCAT_CACHE_DIR to a folder this process "
        "can write, or export them once into the cache it reads (any prodcat predict or serve run where it is "
        "writable)",
    )


#: onnxruntime's ``session.intra_op.allow_spinning`` of every session: ``"0"``, its threads sleep between parallel
#: regions instead of spinning (onnxruntime's default, ``"1"``), as a spinning thread holds a core that the others
#: need, its own session's other thread included, once the cores are shared. The same predictions, for less CPU
#: (``benchmarks/onnx_spinning.py``; ``docs/measured.md``)
ALLOW_SPINNING = "0"


def onnx_session(path: str | os.PathLike[str], threads: int | None = None, *, cpu_memory_arena: bool = True) -> Any:
    """An onnxruntime CPU session using ``threads`` intra-op threads (default: all cores).

    Its threads sleep between parallel regions, unless :data:`ALLOW_SPINNING` says otherwise. ``cpu_memory_arena``:
    whether it keeps onnxruntime's CPU memory arena (its default). Kept, the arena grows to what the session's largest
    call needed and holds it for the process's life; calls of 64 photos or texts take some 15-25% less CPU than
    without. The extractors running a session (MiniLM, the EfficientNets) take it as their parameter
    ``cpu_memory_arena``, read when they make the session (on first use): how a process runs their model, not what it
    computes, as ``prodcat serve --release-memory`` sets it (``False``) on the model it loads. Kept, the photo and
    MiniLM sessions of ``models/demo`` held some 650 MB more after calls of 1 to 200 products (1,313 MB against
    661 MB), for the same vectors (``docs/api.md``).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = cpu_memory_arena
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", ALLOW_SPINNING)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

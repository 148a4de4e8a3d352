"""Batch scoring of whole catalogues: chunked, resumable, in this process or on a dask cluster.

- :func:`score_catalog` writes ``prodcat predict``'s CSV, keeping every finished chunk on disk
  (``<out>.parts/``) so that an interrupted run resumes (:mod:`prodcat.batch.job`);
- :func:`predict_catalog` returns the same table in memory (``prodcat evaluate``);
- engines: :class:`LocalEngine` (default), ``prodcat.batch.dask_engine.DaskEngine`` (``--engine dask``).
"""

from prodcat.batch.engines import LocalEngine
from prodcat.batch.job import (
    OutputBusyError,
    ResumeMismatchError,
    RunSummary,
    output_target,
    score_catalog,
    work_dir_for,
)
from prodcat.batch.scoring import (
    NOTHING_TO_READ,
    OUTPUT_COLUMNS,
    BatchError,
    predict_catalog,
    score_chunk,
    undecodable_photos,
    unused_photo_issue,
    unused_photo_issues,
)

__all__ = [
    "NOTHING_TO_READ",
    "OUTPUT_COLUMNS",
    "BatchError",
    "LocalEngine",
    "OutputBusyError",
    "ResumeMismatchError",
    "RunSummary",
    "output_target",
    "predict_catalog",
    "score_catalog",
    "score_chunk",
    "undecodable_photos",
    "unused_photo_issue",
    "unused_photo_issues",
    "work_dir_for",
]

"""Calls run in joblib's loky worker processes (scikit-learn's ``n_jobs``), each call's warnings raised in the caller
as if the call had run there."""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from joblib import Parallel, delayed, effective_n_jobs
from threadpoolctl import threadpool_limits

T = TypeVar("T")


def check_n_jobs(n_jobs: int | None) -> None:
    """Refuse an ``n_jobs`` joblib gives no meaning (0, or not a whole number), as a ``ValueError`` naming it: checked
    before any work, not by the first parallel call after every feature was extracted."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0):
        raise ValueError(f"n_jobs={n_jobs!r}: give None or 1 (this process), N processes, or -1 (one a core)")


def worker_count(n_jobs: int | None, calls: int) -> int:
    """The processes worth starting for ``calls`` calls at ``n_jobs`` (joblib's reading: ``None`` or 1 this process,
    -1 every core, -2 all but one): no more than the calls, nor than the cores. loky starts every worker it is given
    at once: ``--jobs 1000`` started hundreds of interpreters for a single call, which had not ended after 5 minutes
    on 2 cores (10 s with 2)."""
    return max(1, min(effective_n_jobs(n_jobs), effective_n_jobs(-1), calls))


def in_processes(function: Callable[..., T], calls: Sequence[tuple[Any, ...]], n_jobs: int | None) -> list[T]:
    """``[function(*arguments) for arguments in calls]``, in :func:`worker_count` loky processes (``function`` of a
    module's top level), or in this one when that is 1.

    - Arrays of over 1 MB among the arguments, a sparse matrix's too, reach the workers memory-mapped (joblib's
      default), not copied into each.
    - Each call runs on one BLAS (and OpenMP) thread, in this process as in a worker, so that where it runs changes
      nothing of its result: a sum split over another number of threads rounds otherwise (a logistic regression's
      out-of-fold log-loss moved in its 13th digit, and with it the bundle's model file and version). One thread is
      also faster here: OpenBLAS's two threads on the inner folds' matrices spent 3 times the CPU, spinning (Flipkart's
      default model fitted in 24-35 s with its inner folds on 2 threads, 10-14 s on one; fashion's fold 0 in 366 s
      against 267, 2026-12-07, docs/measured.md).
    - The warnings a call raises in a worker are raised again here, in the order it raised them, at their own file
      and line, through this process's filters, as if the call had run here (:func:`raised_again`): a worker's
      filters are its own, and what it printed reached neither the caller's filters, its log nor ``pytest.warns``.
    """
    workers = worker_count(n_jobs, len(calls))
    if workers == 1:
        with threadpool_limits(1):
            return [function(*arguments) for arguments in calls]
    # processes, whatever backend a joblib parallel_config around the call names: the callers' fits are not thread-safe
    outcomes = Parallel(n_jobs=workers, backend="loky")(
        delayed(_warnings_recorded)(function, arguments) for arguments in calls
    )
    results = []
    for result, raised in outcomes:
        for warning in raised:
            raised_again(*warning)
        results.append(result)
    return results


#: a warning raised in a worker as it is sent back: its message (the warning itself, or its text when that does not
#: pickle), category, file and line
RaisedWarning = tuple[Warning | str, type[Warning], str, int]


def _warnings_recorded(function: Callable[..., T], arguments: tuple[Any, ...]) -> tuple[T, list[RaisedWarning]]:
    """``function(*arguments)``, on one thread, and every warning it raised, none filtered out here (the caller's
    filters decide, :func:`raised_again`), but for those prodcat silences around its own calls
    (:mod:`prodcat.silenced`, whose filters go back to the head of the list as those calls start)."""
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always")
        result = function(*arguments)
    return result, [(_sendable(w.message), w.category, w.filename, w.lineno) for w in caught]


def _sendable(message: Warning | str) -> Warning | str:
    """``message`` if it pickles (a warning class of one's own may not), else its text."""
    try:
        pickle.dumps(message)
    except Exception:
        return str(message)
    return message


def raised_again(message: Warning | str, category: type[Warning], filename: str, lineno: int) -> None:
    """Raise the warning a worker raised at ``filename``:``lineno`` here, as ``warnings.warn`` would have: judged by
    this process's filters against the module of that file, and shown once per place where the filters say
    ``default`` (the module's ``__warningregistry__``)."""
    module = _module_of(filename)
    if module is None:  # a file of no module imported here: shown as warn would show a warning of no module
        warnings.warn_explicit(message, category, filename, lineno)
        return
    namespace = vars(module)
    registry = namespace.setdefault("__warningregistry__", {})
    warnings.warn_explicit(message, category, filename, lineno, module.__name__, registry, namespace)


def _module_of(filename: str) -> Any:
    """The module imported here whose file ``filename`` is, or ``None``."""
    modules = [(module, getattr(module, "__file__", None)) for module in list(sys.modules.values())]
    exact = (module for module, path in modules if path == filename)
    real = os.path.realpath(filename)
    linked = (module for module, path in modules if path and os.path.realpath(path) == real)
    return next(exact, None) or next(linked, None)

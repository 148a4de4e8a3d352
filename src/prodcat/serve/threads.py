"""Blocking work (photo checks, explanations, review-store calls) in worker threads that a request's timeout
abandons.

:class:`~prodcat.serve.middleware.RequestGuard` cancels a request at ``request_timeout_s`` and answers 504; a
thread cannot be stopped, so the request leaves it running. anyio gives the thread's limiter token back the moment
its caller is cancelled, which would let the next caller start beside the abandoned thread (two explanations where
one may run, store calls piling up behind a stuck database): :func:`run_abandonable` keeps the token until the
thread ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread

T = TypeVar("T")


async def run_abandonable(function: Callable[..., T], *args: Any, limiter: anyio.CapacityLimiter | None = None) -> T:
    """``function(*args)`` in a worker thread, no longer awaited once the request is cancelled (its 504 leaves
    on time). With ``limiter``, the thread holds one of its tokens until it ends, even abandoned; a call
    abandoned before its thread started never runs."""
    if limiter is None:
        return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)
    borrower = object()
    await limiter.acquire_on_behalf_of(borrower)
    claim = threading.Lock()  # whoever claims first (the thread starting, the caller leaving) releases the token
    started = abandoned = False

    def run() -> T:
        nonlocal started
        with claim:
            if abandoned:
                raise anyio.get_cancelled_exc_class()
            started = True
        try:
            return function(*args)
        finally:
            anyio.from_thread.run_sync(limiter.release_on_behalf_of, borrower)

    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except BaseException:
        with claim:
            abandoned = True
            release = not started
        if release:
            limiter.release_on_behalf_of(borrower)
        raise

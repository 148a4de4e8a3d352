"""Blocking work (photo checks, explanations, review-store calls) in worker threads that a request's timeout
abandons.

:class:`~prodcat.serve.middleware.RequestGuard` cancels a request at ``request_timeout_s`` and answers 504; a
thread cannot be stopped, so the request leaves it running. anyio gives the thread's limiter token back the moment
its caller is cancelled, which would let the next caller start beside the abandoned thread (two explanations where
one may run, store calls piling up behind a stuck database, photo decodes past the pool's 40 threads):
:func:`run_abandonable` keeps the token until the thread ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


#: the limiter of the worker thread itself: the call's own ``limiter`` already bounds it
_UNBOUNDED = anyio.CapacityLimiter(math.inf)


async def run_abandonable(
    function: Callable[..., T],
    *args: Any,
    limiter: anyio.CapacityLimiter | None = None,
    before: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``function(*args)`` in a worker thread, no longer awaited once the request is cancelled (its 504 leaves
    on time). The thread holds a token of ``limiter`` (default: anyio's, 40 threads) until it ends, even
    abandoned; a call abandoned before its thread started never runs. ``before`` is awaited once the token is held,
    just before the thread starts: what it raises ends the call unrun, the token given back (a client that left
    while the call waited for its turn)."""
    limiter = limiter or anyio.to_thread.current_default_thread_limiter()
    loop = asyncio.get_running_loop()
    borrower = object()
    await limiter.acquire_on_behalf_of(borrower)
    if before is not None:
        try:
            await before()
        except BaseException:
            limiter.release_on_behalf_of(borrower)
            raise
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
            # handed to the loop, not waited for: a loop that stopped (the server stopping) never takes it, and a
            # thread waiting for it would keep the process from exiting
            with contextlib.suppress(RuntimeError):  # the loop has closed: no one waits for the token
                loop.call_soon_threadsafe(limiter.release_on_behalf_of, borrower)

    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True, limiter=_UNBOUNDED)
    except BaseException:
        with claim:
            abandoned = True
            release = not started
        if release:
            limiter.release_on_behalf_of(borrower)
        raise

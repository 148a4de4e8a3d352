"""Ctrl-C kept from the child processes a command starts, which the command itself stops; SIGTERM met as Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigint_held_back() -> Iterator[None]:
    """SIGINT blocked in this thread while the block runs, hence in the threads it starts and the processes they
    spawn, for their whole life (threads inherit a signal mask, and a process keeps it across fork and exec).

    A terminal's Ctrl-C goes to every process of the foreground group, the children too: each printed its
    KeyboardInterrupt traceback (a local dask cluster's workers; `prodcat app`'s bundle loader in the tens of
    milliseconds before it ignores SIGINT) while the command, which alone handles Ctrl-C, stopped them anyway. A
    SIGINT that comes meanwhile waits until the block ends, then interrupts this process."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield  # no Ctrl-C to hold back outside the main thread; none of this on Windows
        return
    # multiprocessing's resource tracker unblocks SIGINT in the thread that starts it (a spawned process or a dask
    # worker's queue starts it); once it runs, it is not started again
    from multiprocessing import resource_tracker  # not at import: the CLI reads this module before any command

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ctrl-C ignored while the block runs (in the main thread; elsewhere no handler can be set): the clean-up of a
    command that Ctrl-C is already stopping, which takes seconds (a local dask cluster's close). An impatient second
    Ctrl-C cut it short, leaving the cluster to dask's own close at exit, which a third one failed in a traceback.
    Unlike :func:`sigint_held_back`, a Ctrl-C meanwhile is dropped, not delivered once the block ends, whichever
    thread the kernel gives it to."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM received in :func:`sigterm_as_ctrl_c`: a KeyboardInterrupt, so that what a command does on Ctrl-C
    (keep its finished chunks, pages or runs and say how to resume) it does on SIGTERM too."""


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[list[int]]:
    """SIGTERM raises :class:`Terminated` in this process while the block runs; yields the list of the SIGTERMs
    received (empty if none), for the exit code (143, not Ctrl-C's 130).

    ``timeout``, ``docker stop``, a job scheduler or a CI runner end a command with SIGTERM, which killed it on the
    spot: the kept work and the line saying how to resume went unsaid, a lock file or a local cluster's workers left
    behind. A child forked meanwhile inherits the handler: there SIGTERM ends it as it would have (the parent,
    pools and dask's nannies, stop their children so)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # a handler is only set from the main thread
        return
    parent = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != parent:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        received.append(signum)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Ctrl-C kept from the child processes a command starts, which the command itself stops."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from multiprocessing import resource_tracker


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
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

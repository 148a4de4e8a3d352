"""A function run in a spawned child interpreter for what it raises: what it imports and loads ends with the child."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from types import FrameType
from typing import Any

from prodcat.signals import sigint_held_back


def run_in_a_child(target: Callable[..., object], *args: Any, doing: str) -> None:
    """Run ``target(*args)`` (a module-level function: the child imports it) in a spawned child interpreter, and
    raise here what it raised; its return value is dropped. What it imports and loads (a model, its libraries)
    would otherwise stay in this process, a long-lived one (a web server, its supervisor). ``doing`` says what the
    child does, for its end without an answer: ``ChildProcessError: the process {doing} ended without an answer``, and
    for an exception that cannot come back as itself (see :func:`_answerable`): ``ChildProcessError: {doing}: {its
    type}: {its message}``.

    A process of its own answering on a pipe, not a process pool: a pool's worker waits for its next task on a queue
    whose writing end it holds too, so this process killed (SIGTERM, the OOM killer) left it and its resource tracker
    waiting for good, a loaded model in memory. This child ends once it has answered, and is stopped with this
    process on Ctrl+C or SIGTERM (exit 143 then, as a shell reports a process it ended).
    """
    context = multiprocessing.get_context("spawn")
    answers, answer = context.Pipe(duplex=False)
    child = context.Process(target=_run_and_answer, args=(target, args, doing, answer), name=f"prodcat: {doing}")
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        # Ctrl+C reaches the child too, which it ignores once it runs its target: until then, it has SIGINT blocked
        # (its tens of milliseconds of start, a KeyboardInterrupt traceback otherwise); here it waits for the start
        with sigint_held_back():
            child.start()
        answer.close()  # the child's end: its exit without an answer is then an EOFError here
        error = answers.recv()
    except EOFError:
        child.join()
        raise ChildProcessError(f"the process {doing} ended without an answer (exit code {child.exitcode})") from None
    except BaseException:
        if child.pid is not None:
            child.terminate()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.pid is not None:
            child.join()
    if error is not None:
        raise error


def _run_and_answer(target: Callable[..., object], args: tuple[Any, ...], doing: str, answer: Connection) -> None:
    """In the child of :func:`run_in_a_child`: run ``target(*args)``, answer what that raised (``None``: nothing)."""
    # Ctrl+C reaches the child too: the parent stops it, rather than a traceback of its interrupted imports (it
    # started with SIGINT blocked, see run_in_a_child; ignored, it stays harmless should anything unblock it)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    error = None
    try:
        target(*args)
    except Exception as raised:
        error = _answerable(raised, doing)
    with contextlib.suppress(BrokenPipeError):  # the parent killed meanwhile (kill -9): no one left to answer
        answer.send(error)


def _answerable(raised: Exception, doing: str) -> Exception:
    """``raised``, the child's traceback in a note (for --verbose), if it comes through the pipe as itself; else a
    ``ChildProcessError: {doing}: {its type}: {its message}`` with that note. An exception that does not pickle (it
    holds a lock) ended the child without an answer, one whose ``__init__`` takes other arguments than its ``args``
    failed to unpickle in the parent (a TypeError of those arguments): its message was lost either way."""
    said = "".join(traceback.format_exception_only(raised)).rstrip("\n")  # before the note: not part of the message
    where = f"raised in the process {doing}:\n{traceback.format_exc()}"
    raised.add_note(where)
    try:
        ForkingPickler.loads(ForkingPickler.dumps(raised))  # as the pipe sends it and the parent reads it
    except Exception:
        substitute = ChildProcessError(f"{doing}: {said}")
        substitute.add_note(where)
        return substitute
    return raised


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)

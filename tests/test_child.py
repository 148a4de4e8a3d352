"""run_in_a_child: what the spawned child raised is raised here, with its message, whatever the exception holds."""

from __future__ import annotations

import threading

import pytest

from prodcat.child import run_in_a_child


class TakesAPathAndAReason(Exception):
    """An exception whose ``__init__`` takes other arguments than its ``args`` (one message): it pickles, and
    unpickling it calls ``TakesAPathAndAReason(message)``, a TypeError."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")


class HoldsALock(Exception):
    """An exception holding a lock, which does not pickle."""

    def __init__(self, message: str):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_taking_a_path_and_a_reason(path: str, reason: str) -> None:
    raise TakesAPathAndAReason(path, reason)


def raise_holding_a_lock(message: str) -> None:
    raise HoldsALock(message)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize(
    ("target", "args", "said"),
    [
        (raise_taking_a_path_and_a_reason, ("model.joblib", "locked"), "TakesAPathAndAReason: model.joblib: locked"),
        (raise_holding_a_lock, ("the cache is busy",), "HoldsALock: the cache is busy"),
    ],
)
def test_an_exception_that_cannot_come_back_as_itself_comes_back_with_its_type_message_and_traceback(
    target, args, said
):
    """The child's exception came back through a pipe, pickled: one that failed to unpickle here was a TypeError of
    its __init__'s arguments, one that failed to pickle ended the child without an answer ("ended without an answer
    (exit code 1)"), the child's message lost either way. It is a ChildProcessError saying the exception's type and
    message now, the child's traceback in its note (shown by a traceback, and --verbose)."""
    with pytest.raises(ChildProcessError) as raised:
        run_in_a_child(target, *args, doing="loading bundle m")
    assert str(raised.value) == f"loading bundle m: {__name__}.{said}"
    (note,) = raised.value.__notes__
    assert note.startswith("raised in the process loading bundle m:\nTraceback (most recent call last):\n")
    assert f"in {target.__name__}\n" in note and note.endswith(f"{__name__}.{said}\n")


def test_an_exception_that_comes_back_as_itself_keeps_its_type():
    """What callers catch by type (a BundleError, a database's error) is still raised as itself."""
    with pytest.raises(ValueError) as raised:
        run_in_a_child(raise_value_error, "no such bundle", doing="loading bundle m")
    assert raised.value.args == ("no such bundle",)
    (note,) = raised.value.__notes__
    assert note.startswith("raised in the process loading bundle m:\n") and "in raise_value_error\n" in note

"""How the messages a person reads write numbers, the same on the command line, in the reports and in the app; and
the command line's error and warning lines, each one line whatever the catalogue it quotes holds."""

from __future__ import annotations

import glob
import logging
import re
import sys
from collections.abc import Sequence
from numbers import Integral

#: what a line on the console shows escaped: control characters (C0 with line breaks, tabs and ESC, DEL, C1), the
#: Unicode line and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates (which
#: reorder what follows them on screen)
_UNSHOWN_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: the exit code of a command refusing what it was given (argparse's for a usage error)
REFUSED_EXIT = 2


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing each record to ``sys.stderr`` as it is when the record comes, not as it was when the handler
    was made: a handler keeping the stream of its day wrote, once that stream was replaced and closed (a caller's
    ``contextlib.redirect_stderr``, pytest's capture), '--- Logging error --- ... I/O operation on closed file'
    in place of every later record of the process, prodcat's command lines run again included."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> object:
        """The process's ``sys.stderr`` of the moment."""
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        raise AttributeError("a StderrHandler writes to sys.stderr of the moment; it has no stream to set")


def count_text(count: object) -> str:
    """A count with thousands separators (``12,345``), a numpy integer (a pandas sum) as well as Python's; anything
    but an integer (a value missing from a manifest, or edited by hand) as it is."""
    return f"{count:,}" if isinstance(count, Integral) and not isinstance(count, bool) else str(count)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` as :func:`count_text` writes it, then ``noun``, or its ``plural`` (default: ``noun`` + "s") unless
    the count is one: ``1 product``, ``12,345 products``, ``2 categories``."""
    return f"{count_text(count)} {noun if count == 1 else plural or noun + 's'}"


def first_few(items: Sequence[str], most: int) -> str:
    """The first ``most`` of ``items`` joined by commas, then "and N more" for the others, so that a message naming
    them stays one readable line however many there are: ``a, b, c and 12 more``."""
    shown = ", ".join(items[:most])
    return shown + (f" and {count_text(len(items) - most)} more" if len(items) > most else "")


def _escaped(match: re.Match[str]) -> str:
    character = match.group()
    return _ESCAPES.get(character) or (
        f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}"
    )


def one_line(text: str) -> str:
    """``text`` with what :data:`_UNSHOWN_IN_A_LINE` matches escaped (``\\n``, ``\\x1b``, ``\\u202e``): a
    catalogue's product id, category or file name quoted in a message can neither forge a line nor drive the terminal.
    Accents and non-Latin text are kept as they are."""
    return _UNSHOWN_IN_A_LINE.sub(_escaped, text)


def error_line(message: object) -> str:
    """The command line's error line saying ``message`` (an exception: its text): ``error: ...``, in one line
    (:func:`one_line`)."""
    return f"error: {one_line(str(message))}"


def warning_line(message: object) -> str:
    """The command line's warning line saying ``message``: ``warning: ...``, in one line (:func:`one_line`)."""
    return f"warning: {one_line(str(message))}"


def say_error(message: object, *notes: str) -> int:
    """Print :func:`error_line`'s line of ``message`` on stderr, then each of the ``notes`` that is not empty (what
    was kept, what to do) on a line of its own, escaped as it is; return :data:`REFUSED_EXIT`, the exit code of a
    command that stops there."""
    print(error_line(message), *(one_line(note) for note in notes if note), sep="\n", file=sys.stderr)
    return REFUSED_EXIT


def say_warning(message: object) -> None:
    """Print :func:`warning_line`'s line of ``message`` on stdout, among the command's figures; flushed, so that it
    is read before the work that follows it (into a pipe, stdout is written in blocks)."""
    print(warning_line(message), flush=True)


#: the advice that ends a refusal of what the shell put in place of an unquoted ``*``
QUOTE_THE_STAR = "give * in quotes ('*') so the shell does not expand it"


def an_unquoted_star(names: Sequence[str]) -> bool:
    """Whether ``names`` are exactly what the shell puts in place of an unquoted ``*`` here: the name of every file
    and folder of the current folder but the hidden ones, each once (in whatever order the shell's locale sorts
    them). A name that is one of several files, typed by hand, is not."""
    return sorted(names) == sorted(glob.glob("*"))

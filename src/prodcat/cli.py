"""The one command line: ``prodcat <command> ...``.

Each command lives beside the code it drives, in a module exposing ``add_parser(subparsers)``; the parser it
registers sets ``func(args) -> int``. Those modules import no library the commands drive (pandas, scikit-learn,
Pillow...), and ``func`` imports the command's code when it runs (:func:`~prodcat.arguments.run_later`, or imports
inside it): ``prodcat --help`` and a usage error are answered in a fraction of a second, not after seconds of
imports. Where the code is a large module of its own, the parser is a ``*_parser`` module beside it.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import logging
import os
import select
import sys
from typing import NoReturn, TextIO

from prodcat import installed_version
from prodcat.catalog import CatalogFormatError
from prodcat.errors import BundleError, RunRefused
from prodcat.formatting import QUOTE_THE_STAR, StderrHandler, an_unquoted_star, one_line, say_error
from prodcat.signals import Terminated, sigterm_as_ctrl_c

#: modules that register a subcommand, in the order ``--help`` lists them
COMMAND_MODULES = (
    "prodcat.commands_parser",
    "prodcat.catalog.audit_parser",
    "prodcat.explore.command",
    "prodcat.serve.command",
    "prodcat.collect.command",
    "prodcat.app.command",
    "prodcat.evaluate.robustness_parser",
    "prodcat.evaluate.explain_parser",
    "prodcat.features.cache_command",
)


class OneLineFormatter(logging.Formatter):
    """The command line's log lines, each one line as it is written: a line break, an escape sequence or another
    control character in a message (a catalogue's product id, a file name, a library's words) is shown escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so that what a catalogue holds cannot forge a log line or drive the terminal.
    Accents and non-Latin text are kept as they are. A traceback appended to a record keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


#: the commands whose servers stop on SIGTERM as servers do (uvicorn's and Streamlit's own handlers), not as Ctrl-C
STOPPED_AS_SERVERS = frozenset({"serve", "app"})
#: a command ended by SIGTERM exits as a shell reports a program SIGTERM stopped (128 + 15)
TERMINATED_EXIT = 143

#: what Ctrl-C says of a command that does not say more itself: not that nothing was written, as one stopped while
#: writing its report (evaluate's figures, explore's maps) has written part of it
INTERRUPTED = "interrupted"


class _OneLineUsageErrors(argparse.ArgumentParser):
    """argparse's parser, its usage error (``prodcat predict: error: ...``, exit 2) in one line as the commands' own
    error lines are (:func:`~prodcat.formatting.one_line`): it may quote the file names an unquoted * expanded to, or
    a config file's words. A command's parser is of its class too (``add_subparsers``' default)."""

    def error(self, message: str) -> NoReturn:
        super().error(one_line(message))


def build_parser() -> argparse.ArgumentParser:
    """The ``prodcat`` parser: its global options and every command of :data:`COMMAND_MODULES`."""
    parser = _OneLineUsageErrors(
        prog="prodcat",
        description="Categorise marketplace products from their text and photo.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="prodcat's debug logging")
    parser.add_argument("--version", action="version", version=f"prodcat {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's parser in ``parser`` (:func:`build_parser`'s), by command name."""
    (commands,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(commands.choices)


def main(argv: list[str] | None = None) -> int:
    """The console script: :func:`run` ``argv`` (``None``: ``sys.argv[1:]``) and return its exit code; Ctrl-C or
    SIGTERM is 130 or 143, a closed pipe on standard output 141, without a traceback."""
    try:
        code = run(argv)
        sys.stdout.flush()  # a reader gone is met here, not in the interpreter's last flush (exit 120, a message)
        return code
    except KeyboardInterrupt as interrupt:  # at any moment: the seconds of imports before a command too, no traceback
        # the commands that keep work when interrupted (predict's chunks, collect's pages, robustness's runs) say so
        # and return 130 themselves; the others write their bundle or report at their end
        print(INTERRUPTED, file=sys.stderr)
        return TERMINATED_EXIT if isinstance(interrupt, Terminated) else 130
    except BrokenPipeError:
        if not reader_gone(sys.stdout):  # another pipe or socket: a failure to show
            raise
        # `prodcat ... | head` once head has its lines: what is left to print goes nowhere, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a program stopped by a closed pipe


def reader_gone(stream: TextIO) -> bool:
    """Whether ``stream`` is a pipe whose reading end is closed."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (a captured stream), no poll (Windows)
        return False


def _several_catalogues(command: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> str | None:
    """The refusal of several catalogues given to ``command``, which reads one (its positional ``data``): the files
    an unquoted ``*`` expanded to (``prodcat predict models/demo data/*.csv``) were refused as 'unrecognized
    arguments', as if they were a mistaken option. ``None`` when the arguments left over before any option
    (``extra``) are no such files.

    One is read, not several: a command's output, resumable chunks, issues and report are of one catalogue, and
    catalogues of several formats or repeating each other's ids have no one sound joining; the user joins them."""
    reads_data = any(action.dest == "data" and not action.option_strings for action in command._actions)
    if not reads_data or not extra:
        return None
    given = [args.data, *extra]
    own_out = ", each with its own --out" if "--out" in command._option_string_actions else ""
    return (
        f"one catalogue is read at a time, and {len(given)} were given: {' '.join(given)} (a * left unquoted gives "
        f"every file it matches); run the command once per catalogue{own_out}, or join them into one table first"
    )


def _star_after_an_option(argv: list[str], extra: list[str]) -> str | None:
    """The refusal of the files an unquoted ``*`` given as an option's value expanded to (``prodcat serve MODEL
    --cors-origins *`` in a folder of several files): the option took the first name, and argparse refused the others
    as 'unrecognized arguments', without a word of the shell. ``None`` unless the option's value and the arguments
    left over after it (``extra``, those before any option) are exactly what the shell puts in place of ``*`` here
    (:func:`~prodcat.formatting.an_unquoted_star`)."""
    starts = [i for i in range(2, len(argv)) if argv[i : i + len(extra)] == extra]
    if not extra or not starts:
        return None
    option, value = argv[starts[0] - 2], argv[starts[0] - 1]
    names = [value, *extra]
    if not option.startswith("-") or not an_unquoted_star(names):
        return None
    return (
        f"unrecognized arguments: {' '.join(extra)}: {option} was given {' '.join(names)}, the names of this "
        f"folder's files, as the shell puts in place of an unquoted *: {QUOTE_THE_STAR}"
    )


def run(argv: list[str] | None = None) -> int:
    """:func:`main` but for Ctrl-C and a reader of the output that left: parse ``argv`` and run its command, a user's
    mistake said in one line (exit 2)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse refuses them in the top-level usage, which shows none of the command's options
        command = command_parsers(parser)[args.command]
        extra = list(itertools.takewhile(lambda argument: not argument.startswith("-"), unknown))
        command.error(
            _several_catalogues(command, args, extra)
            or _star_after_an_option(sys.argv[1:] if argv is None else argv, extra)
            or f"unrecognized arguments: {' '.join(unknown)}"
        )
    handler = StderrHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # --verbose is prodcat's debug output, not every library's (matplotlib alone logs pages of font matching)
    logging.getLogger("prodcat").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        if args.command in STOPPED_AS_SERVERS:
            return int(args.func(args) or 0)
        with sigterm_as_ctrl_c() as terminated:
            code = int(args.func(args) or 0)
        # a command that said its own words of an interrupt returned Ctrl-C's code
        return TERMINATED_EXIT if terminated and code == 130 else code
    except (
        CatalogFormatError,
        BundleError,
        FileExistsError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
        RunRefused,
    ) as exc:
        if args.verbose:
            raise
        # what the user gave is wrong: no traceback; one line, as a log line (it may quote a catalogue's header or cell)
        return say_error(exc)


if __name__ == "__main__":
    sys.exit(main())

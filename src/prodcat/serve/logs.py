"""Structured logs: one JSON object per line, with any ``extra={...}`` fields of the record."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

from prodcat.formatting import StderrHandler

#: attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: extras that only make sense on a terminal (uvicorn's ANSI-coloured copy of its message)
_DROPPED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    """Each record as one JSON object: ``time`` (UTC, ISO 8601 to the millisecond), ``level``, ``logger``,
    ``message``, the record's ``extra`` fields, and ``exception`` (its traceback) when it has one."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of ``record`` (a value JSON cannot hold written as its ``str``)."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES | _DROPPED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


#: uvicorn's loggers with handlers of their own, which :func:`configure_json_logging` sends to the root's instead
_UVICORN = ("uvicorn", "uvicorn.error")


def configure_json_logging(level: str = "info") -> None:
    """Send every logger's records (uvicorn's included) to stderr as JSON lines."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # every logger at that level: the command line had set prodcat's to info (debug with --verbose), so a server of one
    # process (configured after it, in the same process) logged each request at --log-level warning or error
    logging.getLogger("prodcat").setLevel(logging.NOTSET)
    logging.captureWarnings(True)  # Python warnings become JSON lines too
    for name in _UVICORN:
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


#: the loggers :func:`configure_json_logging` sets, the root logger first
_CONFIGURED = ("", "prodcat", *_UVICORN)


@contextlib.contextmanager
def logging_given_back() -> Iterator[None]:
    """The logging set-up of the process as it was before the block, whatever :func:`configure_json_logging` did in
    it: handlers, levels and propagation of the loggers it sets, and Python's warnings as they were shown. Without
    it a ``serve`` that refused its settings, or stopped, left every later record of the process (another command
    run from the same Python) in JSON on the root logger, and the handlers the caller had set dropped."""
    kept = [
        (logger, logger.handlers[:], logger.level, logger.propagate) for logger in map(logging.getLogger, _CONFIGURED)
    ]
    showwarning = warnings.showwarning
    try:
        yield
    finally:
        logging.captureWarnings(False)  # the warnings shown as before the first capture
        if warnings.showwarning is not showwarning:  # they were logged before the block
            logging.captureWarnings(True)
        for logger, handlers, level, propagate in kept:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


#: a terminal's colour codes (onnxruntime colours its warnings)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: onnxruntime's severity letter in its own lines: ``[W:onnxruntime:Default, ...]``
_NATIVE_LEVEL = re.compile(r"\[([VIWEF]):onnxruntime:")
_NATIVE_LEVELS = {
    "V": logging.DEBUG,
    "I": logging.INFO,
    "W": logging.WARNING,
    "E": logging.ERROR,
    "F": logging.CRITICAL,
}


@contextlib.contextmanager
def native_stderr_logged(logger_name: str) -> Iterator[None]:
    """What native code writes on the process's stderr (file descriptor 2) while the block runs, logged after it, one
    record of ``logger_name`` a line, without colour codes: it went into the JSON log as plain text. For the server's
    own process only: everything written on fd 2 meanwhile is taken, Python's included. Taken into a file, not a pipe
    (nothing to fill and block the writer), given back and logged whatever the block ends with: a library's own
    error line before the exception it raises is logged ahead of that exception."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as taken:
        kept = os.dup(2)
        os.dup2(taken.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(kept, 2)
            os.close(kept)
            taken.seek(0)
            _log_native_lines(logger_name, _ANSI.sub("", taken.read().decode("utf-8", "replace")))


def _log_native_lines(logger_name: str, text: str) -> None:
    """Log each line of ``text`` as a record of ``logger_name``, at the level of onnxruntime's letter (else warning)."""
    logger = logging.getLogger(logger_name)
    for line in filter(None, (line.strip() for line in text.splitlines())):
        level = _NATIVE_LEVEL.search(line)
        logger.log(_NATIVE_LEVELS[level[1]] if level else logging.WARNING, line)


def import_native_libraries_logged() -> None:
    """Import onnxruntime (where installed) with what it writes on stderr as it starts logged: it said 'Failed to
    persist telemetry device ID' (a read-only home) in ANSI colours, not through Python's logging, which it offers no
    hook into."""
    with native_stderr_logged("onnxruntime"), contextlib.suppress(ImportError):
        importlib.import_module("onnxruntime")

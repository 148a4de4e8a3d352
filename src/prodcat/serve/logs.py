"""Structured logs: one JSON object per line, with any ``extra={...}`` fields of the record."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

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


def configure_json_logging(level: str = "info") -> None:
    """Send every logger's records (uvicorn's included) to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # every logger at that level: the command line had set prodcat's to info (debug with --verbose), so a server of one
    # process (configured after it, in the same process) logged each request at --log-level warning or error
    logging.getLogger("prodcat").setLevel(logging.NOTSET)
    logging.captureWarnings(True)  # Python warnings become JSON lines too
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

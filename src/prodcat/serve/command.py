"""``prodcat serve MODEL``: the REST API on a model bundle (uvicorn)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import re
import shutil
import signal
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_origin

from pydantic import ValidationError

from prodcat.arguments import add_help_completed_by, into_bundle, user_path
from prodcat.formatting import REFUSED_EXIT, say_error
from prodcat.processes import machine, running
from prodcat.serve.settings import (
    METRICS_DIR_VARIABLE,
    OLD_METRICS_DIR_VARIABLE,
    ServeSettings,
    metrics_dir_setting,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

#: settings given their own handling (positional MODEL; the key never as a flag)
_NOT_FLAGS = ("bundle", "api_key")
#: in a flag's help, the default of a setting that computes it (the photo types Pillow decodes) until --help
_COMPUTED_DEFAULT = "default computed on --help"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve a model bundle over HTTP (REST API with a review queue)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve POST /predict, POST /predict-batch, POST /explain, /health, /ready, /model, /metrics, "
        "/docs, /redoc and the review queue (/reviews). Every option can also be set by its environment variable.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat serve models/flipkart --port 8000
              PRODCAT_API_KEY=$(cat key) prodcat serve models/flipkart --review-db postgresql+psycopg://me@db/prodcat
              curl -F title="Cotton bath towel" -F image=@towel.jpg http://127.0.0.1:8000/predict
            """),
        add_help=False,
    )
    add_help_completed_by(serve, _show_computed_defaults)
    serve.add_argument(
        "model", type=user_path, help="model bundle directory (handed to the server processes as PRODCAT_BUNDLE)"
    )
    serve.add_argument(
        "--api-key-file",
        type=user_path,
        help="file holding the key the /reviews endpoints require (or env PRODCAT_API_KEY; never a flag)",
    )
    for name, field in ServeSettings.model_fields.items():
        if name in _NOT_FLAGS:
            continue
        flag = "--" + name.replace("_", "-")
        if field.annotation is bool:
            default = "off unless given"
        elif field.default_factory is not None:
            default = _COMPUTED_DEFAULT
        else:
            default = f"default {_shown(field.default)}"
        help_text = f"{field.description} ({default}; env PRODCAT_{name.upper()})"
        if field.annotation is bool:
            serve.add_argument(flag, dest=name, action="store_true", default=None, help=help_text)
        elif get_origin(field.annotation) is tuple:  # a list: given more than once, its values add up
            serve.add_argument(flag, dest=name, metavar=name.upper(), action="append", help=help_text)
        else:
            serve.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)
    serve.set_defaults(func=run_serve)


def _shown(default: object) -> str:
    if default is None:  # e5_threads: the library's own
        return "the library's own"
    if isinstance(default, tuple):  # an empty list (cors_origins): none
        return ",".join(default) or "none"
    return str(default)


def _show_computed_defaults(serve: argparse.ArgumentParser) -> None:
    """Write the computed defaults in their flags' help (see :data:`_COMPUTED_DEFAULT`)."""
    for action in serve._actions:
        if action.help and _COMPUTED_DEFAULT in action.help:
            default = ServeSettings.model_fields[action.dest].get_default(call_default_factory=True)
            action.help = action.help.replace(_COMPUTED_DEFAULT, f"default {_shown(default)}")


def _say_settings_problems(error: ValidationError, key_source: str = "PRODCAT_API_KEY") -> int:
    """An error line per refused setting, naming it as it is given (its flag and its variable; the API key by
    ``key_source``, where it was read), rather than pydantic's report of several lines and a link; returns the exit
    code."""
    for problem in error.errors():
        name = str(problem["loc"][0])
        if name == "api_key":
            given = key_source
        elif name in _NOT_FLAGS:
            given = f"PRODCAT_{name.upper()}"
        else:
            given = f"--{name.replace('_', '-')} / PRODCAT_{name.upper()}"
        # pydantic's own messages say what was expected, and the value given follows; ours (ValueError: 'value_error')
        # name what they refuse themselves, where it helps (a key never)
        value = "" if name == "api_key" or problem["type"] == "value_error" else f" (got {problem['input']!r})"
        say_error(f"{given}: {problem['msg'].removeprefix('Value error, ')}{value}")
    return REFUSED_EXIT


def _export_flags(args: argparse.Namespace) -> None:
    """Set the ``PRODCAT_*`` variable of every settings flag given."""
    for name, field in ServeSettings.model_fields.items():
        value = getattr(args, name, None)
        if name in _NOT_FLAGS or value is None:
            continue
        if field.annotation is bool:
            value = "true"
        elif isinstance(value, list):  # a list flag given more than once
            value = ",".join(value)
        os.environ[f"PRODCAT_{name.upper()}"] = value


def build_app_from_env() -> FastAPI:
    """:func:`~prodcat.serve.app.create_app_from_env`, imported when called: only the process that builds an app
    imports what it serves with."""
    from prodcat.serve.app import create_app_from_env

    return create_app_from_env()


def _review_database_problem(error: Exception) -> str | None:
    """What the error line refusing a review database that cannot be opened (an error of SQLAlchemy's) says, ``None``
    for any other error. SQLAlchemy is imported once an error is met: with --workers N, the child checking the
    database opens it, and uvicorn's supervisor, this process for the server's life, has no other use for it."""
    from prodcat.review import ReviewQueueNotWritableError

    if isinstance(error, ReviewQueueNotWritableError):
        return str(error)
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(error, SQLAlchemyError):
        return None
    # the database's own words, in one line: SQLAlchemy's add the statement and a line linking to its documentation
    reason = " ".join(str(getattr(error, "orig", None) or error).split())
    return f"cannot open the review database ({type(error).__name__}: {reason}); check --review-db"


#: a SQLite URL naming a file: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, a driver after ``+``
_SQLITE_FILE_URL = re.compile(r"^sqlite(?:\+\w+)?:///(?P<path>[^?]+)")


def _review_database_in_bundle(url: str, bundle: str) -> str | None:
    """Why the review queue must not be the SQLite file ``url`` names: inside a model bundle (the one served or
    another), which no command loads once it holds another file, the queue's -wal and -shm files included; ``None``
    for a file elsewhere or another database. Read without SQLAlchemy, which uvicorn's supervisor never imports."""
    if (match := _SQLITE_FILE_URL.match(url)) is None or match["path"] == ":memory:":
        return None
    return into_bundle("--review-db", match["path"], bundle)


def _review_database_unwritable(url: str) -> str | None:
    """Why the server could not write the SQLite file of its review queue that ``url`` names, said before the model
    loads (it was said once it had, seconds to a minute on a cold cache), in the store's words; ``None`` for a file it
    can write, or another database. Read without SQLAlchemy, which uvicorn's supervisor never imports."""
    from prodcat.review import ReviewQueueNotWritableError, require_writable_sqlite_file

    match = _SQLITE_FILE_URL.match(url)
    if match is None or match["path"] == ":memory:" or re.search(r"[?&]uri=", url):  # a URI: SQLite reads it
        return None
    try:
        require_writable_sqlite_file(Path(match["path"]).expanduser().resolve(), url)
    except ReviewQueueNotWritableError as exc:
        return str(exc)
    return None


def _metrics_dir_problem() -> str | None:
    """Why the user's ``PROMETHEUS_MULTIPROC_DIR`` (or its older name, :func:`metrics_dir_setting`) cannot hold the
    server's metrics, said before the model loads: the app's first instrument failed in prometheus_client's words,
    naming a file in it only, and an empty one had prometheus_client write them in the current folder; ``None`` when
    unset or a writable folder."""
    if (setting := metrics_dir_setting()) is None:
        return None
    name, folder = setting
    if folder == "":
        return f"{name} is set but empty: give the folder the server processes write their metrics in, or unset it"
    if os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
        return None
    return f"{name}={folder} is not a writable folder: the server processes write their metrics there"


@contextlib.contextmanager
def _metrics_dir_unset() -> Iterator[None]:
    """The block runs without the user's ``PROMETHEUS_MULTIPROC_DIR`` (nor its older name): the check child that
    builds the app, whose metrics are no server's, left a file of them in that folder at every start of
    ``--workers N``."""
    given = {
        name: os.environ.pop(name) for name in (METRICS_DIR_VARIABLE, OLD_METRICS_DIR_VARIABLE) if name in os.environ
    }
    try:
        yield
    finally:
        os.environ.update(given)


#: the private folder of metrics of a server of several processes, in the temporary folder: ``PREFIX-HOST-PID-XXXX``,
#: HOST :func:`~prodcat.processes.machine`, PID its supervisor's (this process's), XXXX tempfile's
_PRIVATE_METRICS_PREFIX = "prodcat-metrics"
_PRIVATE_METRICS = re.compile(rf"{_PRIVATE_METRICS_PREFIX}-(?P<host>.+)-(?P<pid>\d+)-[^-]+")
#: a file of metrics of prometheus_client's multiprocess mode, named after the pid of the process that writes it
_METRICS_FILE = re.compile(r".+_(?P<pid>\d+)\.db")


def _remove_abandoned_metrics_folders() -> None:
    """Delete the private folders of metrics (:func:`_metrics_of_every_worker`) that servers killed outright
    (SIGKILL, the OOM killer) left in the temporary folder, one at each such end, which nothing removed: those whose
    supervisor (the pid in its name) and every worker (the pid each file is named after) no longer run. Another
    server's is kept while any of its processes runs, its supervisor or a worker left running when it was killed, as
    is one of another host or user, or holding anything but files of metrics, and the folder the user's
    ``PROMETHEUS_MULTIPROC_DIR`` (or its older name) names, whatever its name: this server's workers write there."""
    if os.name == "nt":  # no pid is known to have ended there (prodcat.processes)
        return
    host = machine()
    users = _users_metrics_dir()
    for path in Path(tempfile.gettempdir()).glob(f"{_PRIVATE_METRICS_PREFIX}-*"):
        owner = _PRIVATE_METRICS.fullmatch(path.name)
        if owner is None or owner["host"] != host:
            continue
        try:
            if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            if users is not None and path.samefile(users):
                continue
            files = [_METRICS_FILE.fullmatch(file.name) if file.is_file() else None for file in path.iterdir()]
        except OSError:  # removed meanwhile, or not ours to read
            continue
        workers = [f["pid"] for f in files if f is not None]  # all of them when None is not in files
        if None not in files and not any(running(int(pid)) for pid in (owner["pid"], *workers)):
            shutil.rmtree(path, ignore_errors=True)


def _users_metrics_dir() -> Path | None:
    """The folder the user's ``PROMETHEUS_MULTIPROC_DIR`` (or its older name) names, when it is one (checked at
    start, :func:`_metrics_dir_problem`); ``None`` when unset."""
    if (setting := metrics_dir_setting()) is None or not os.path.isdir(setting[1]):
        return None
    return Path(setting[1])


@contextlib.contextmanager
def _metrics_of_every_worker() -> Iterator[None]:
    """Every worker's /metrics adds up the metrics of all (prometheus_client's multiprocess mode): each writes its own
    in the user's ``PROMETHEUS_MULTIPROC_DIR`` (or its older name), or else a private folder made here and removed
    once the server has stopped, or by the next start if it was killed (named after this process, see
    :func:`_remove_abandoned_metrics_folders`). Set in this process's environment before uvicorn spawns its workers,
    which inherit it and import prometheus_client with it; after the bundle's check, whose child's metrics are no
    server's."""
    if metrics_dir_setting() is not None:  # a folder of the user's: refused at start unless it is one
        yield
        return
    prefix = f"{_PRIVATE_METRICS_PREFIX}-{machine()}-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.environ[METRICS_DIR_VARIABLE] = folder
        try:
            yield
        finally:
            del os.environ[METRICS_DIR_VARIABLE]


@contextlib.contextmanager
def _supervisor_closing_the_port_at_stop() -> Iterator[None]:
    """Within it, ``uvicorn.run(workers=N)`` runs a supervisor that closes its listening socket as soon as it stops
    (SIGTERM, SIGINT), before it tells its workers to: each worker closes its own copy as its shutdown begins, so a
    connection made from then on is refused at once, as a server of one process refuses it, and a client or load
    balancer tries another server. uvicorn's supervisor held its copy open until every worker had ended (their
    requests in flight answered, up to ``--request-timeout-s``): the kernel still took new connections into the
    port's queue, where no process read them, and each waited unanswered until the supervisor exited and reset it.
    uvicorn.run builds its supervisor from ``uvicorn.main.Multiprocess``, replaced here by a subclass for the
    block's time."""
    from uvicorn.supervisors import Multiprocess

    # the module, which the package's ``main`` (its command line) hides as an attribute
    uvicorn_main: Any = importlib.import_module("uvicorn.main")

    class ClosingMultiprocess(Multiprocess):
        def terminate_all(self) -> None:  # called once, as the supervisor stops (SIGHUP's restart does not)
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    uvicorn_main.Multiprocess = ClosingMultiprocess
    try:
        yield
    finally:
        uvicorn_main.Multiprocess = Multiprocess


class _Stopped(Exception):
    """The server of one process stopped by SIGTERM (or SIGHUP), once it had shut down (:func:`_stopped_gracefully`)."""


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped


def _hang_up(signum: int, _frame: object) -> None:
    logging.getLogger(__name__).warning(
        "SIGHUP: stopping, the requests in flight answered first: one server process cannot be replaced while it "
        "serves; with --workers 2 or more, SIGHUP replaces them one by one (a bundle replaced on disk loaded so)"
    )
    signal.raise_signal(signal.SIGTERM)  # uvicorn's graceful shutdown, then _stop


@contextlib.contextmanager
def _stopped_gracefully() -> Iterator[None]:
    """The block runs a server of one process (``uvicorn.run`` without workers), which SIGTERM or SIGHUP stops once
    its requests in flight are answered, leaving the block (:class:`_Stopped`, raised here): uvicorn shuts down on
    SIGTERM and then raises it again with the handler it found, which killed the process at once, its exit handlers
    unrun (a temporary folder of ONNX exports left behind), and SIGHUP, which uvicorn leaves alone, killed it at once,
    the requests in flight unanswered. With --workers N, uvicorn's supervisor handles both itself."""
    handlers = {signal.SIGTERM: _stop} | ({signal.SIGHUP: _hang_up} if hasattr(signal, "SIGHUP") else {})  # Windows
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_serve(args: argparse.Namespace) -> int:
    """``prodcat serve``: the process's logging set-up given back as it was once the server stopped or refused."""
    from prodcat.serve.logs import logging_given_back

    with logging_given_back():
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from prodcat.app.command import port_problem
    from prodcat.child import run_in_a_child
    from prodcat.errors import BundleError
    from prodcat.serve.logs import configure_json_logging
    from prodcat.serve.protocol import GuardedHttpToolsProtocol

    # Flags become PRODCAT_* variables: the worker processes read the same settings from the environment.
    os.environ["PRODCAT_BUNDLE"] = str(Path(args.model).resolve())
    key_source = "PRODCAT_API_KEY"
    if args.api_key_file:
        # a refusal names the file: PRODCAT_API_KEY below only carries the key to the workers, the user never set it
        key_source = f"--api-key-file {args.api_key_file}"
        key = args.api_key_file.read_text(encoding="utf-8").strip()
        if not key:  # the server would answer 401 to every review call
            return say_error(f"{key_source} is empty: write the API key in it")
        os.environ["PRODCAT_API_KEY"] = key
    _export_flags(args)
    try:
        settings = ServeSettings()
        # a port in use was said by uvicorn only once the model had loaded, in a JSON log line, exit 3
        # a queue written into the bundle (the default ./prodcat-reviews.db served from the bundle's folder) would
        # stop it loading at the next start, with a word of unexpected files only
        if problem := (
            port_problem(settings.host, settings.port)
            or _review_database_in_bundle(settings.review_db, args.model)
            or _review_database_unwritable(settings.review_db)
            or _metrics_dir_problem()
        ):
            return say_error(problem)
        # Built here first so that a bad bundle or database fails now, with its message, not in a worker;
        # this also creates the review tables once rather than concurrently in each worker. With --workers N, each
        # worker builds its own: this one is built in a child that ends with it, since in uvicorn's supervisor (this
        # process) the model and its libraries would stay for the server's life (FastAPI's caches of an app's
        # endpoints keep the model they answer with)
        if settings.workers == 1:
            app = build_app_from_env()
        else:
            configure_json_logging(settings.log_level)  # the supervisor's lines (uvicorn's) as the workers' are
            with _metrics_dir_unset():
                run_in_a_child(build_app_from_env, doing="checking the bundle and the review database")
    except ValidationError as exc:
        return _say_settings_problems(exc, key_source)
    except BundleError as exc:
        return say_error(exc)
    except Exception as exc:
        if (problem := _review_database_problem(exc)) is None:
            raise
        return say_error(problem)
    _remove_abandoned_metrics_folders()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "timeout_keep_alive": settings.keep_alive_s,
        # a request's head bounded in time and size, a silent connection closed (uvicorn bounds neither)
        # and the requests in flight in each process, answered 503 too_busy past it in the API's error shape
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            head_timeout_s=settings.request_timeout_s,
            max_concurrent_requests=settings.max_concurrent_requests,
        ),
        "log_config": None,
        "access_log": False,
    }
    if settings.workers == 1:
        with contextlib.suppress(_Stopped), _stopped_gracefully():
            uvicorn.run(app, **common)
    else:
        with _metrics_of_every_worker(), _supervisor_closing_the_port_at_stop():
            # SIGHUP replaces the workers one by one, each once its replacement serves: uvicorn's own 5 s for
            # that stopped every restart of a model that takes longer to load (4 s for models/demo on an idle
            # machine, 21 s with two loading on a busy one), leaving the old workers in place
            uvicorn.run(
                "prodcat.serve.app:create_app_from_env",
                factory=True,
                workers=settings.workers,
                timeout_worker_healthcheck=settings.worker_start_timeout_s,
                **common,
            )
    return 0

"""``prodcat app MODEL``: the web app on a model bundle (``streamlit run`` on :mod:`prodcat.app.streamlit_app`)."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from prodcat.arguments import user_path
from prodcat.child import run_in_a_child
from prodcat.formatting import say_error
from prodcat.manifest import verify_bundle

SCRIPT = Path(__file__).with_name("streamlit_app.py")
#: after Ctrl+C, how long the web server has to stop on the SIGINT the terminal sent it too before it is sent one
SERVER_STOP_GRACE_S = 5.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat app`` among ``subparsers``; its ``func`` runs it (the command's code imported then)."""
    app = subparsers.add_parser(
        "app",
        help="web app to explore a catalogue, a model and its predictions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A Streamlit app with four pages: Data (a catalogue's balance, completeness and products), "
        "Model (the bundle's manifest and training metrics), Predict (one product from a form) and Predictions "
        "(browse a predictions CSV or predict a sample of the catalogue; confusion and label-noise candidates). "
        "A path typed in the app must lie in a folder it may open (see --root): whoever reaches the app reads "
        "the server's files through it.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat app models/flipkart --data ../shared/datasets/flipkart
              prodcat app models/flipkart --data ../shared/datasets/flipkart --predictions preds.csv --port 8502
              prodcat app models/flipkart --root /srv/catalogues --host 0.0.0.0
            """),
    )
    add_app_arguments(app)
    app.add_argument(
        "--host",
        type=host_address,
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    app.add_argument("--port", type=port_number, default=8501, help="TCP port, 1-65535 (default 8501)")
    app.set_defaults(func=run_app)


def host_address(text: str) -> str:
    """A ``--host`` value: not blank, which the web server would take for every interface (an unset variable
    in ``--host "$HOST"`` must not open the app, and the server's files, to the network)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is blank: give an address (0.0.0.0 to listen on every interface)")
    return text.strip()


def port_number(text: str) -> int:
    """A ``--port`` value: an integer from 1 to 65535."""
    port = int(text)  # argparse reports a ValueError as "invalid port_number value"
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments the Streamlit script itself reads (after ``--`` on the ``streamlit run`` line)."""
    parser.add_argument("model", type=user_path, help="model bundle directory")
    parser.add_argument(
        "--data", type=user_path, help="catalogue to explore and predict (any format `prodcat train` reads)"
    )
    parser.add_argument(
        "--predictions", type=user_path, help="predictions CSV to browse (from `prodcat predict` or `prodcat cv`)"
    )
    parser.add_argument(
        "--root",
        action="append",
        type=user_path,
        metavar="FOLDER",
        help="a folder whose catalogues and predictions CSVs may be opened by typing their path in the app "
        "(repeatable); the folders holding --data and --predictions always may; with none of these, the current "
        "folder. Uploads are not concerned.",
    )


def readable_roots(args: argparse.Namespace) -> list[Path]:
    """The folders a path typed in the app may lie in (see ``--root``), resolved, each once: a folder inside another
    is covered by it (the refusal of a path listed ``/srv/x, /srv/x/cv`` when ``--predictions`` lay in a ``--root``)."""
    given = [Path(path).resolve().parent for path in (args.data, args.predictions) if path]
    roots = ([Path(root).resolve() for root in args.root or []] + given) or [Path.cwd()]
    return [
        root
        for i, root in enumerate(roots)
        if not any(root.is_relative_to(other) and (other != root or j < i) for j, other in enumerate(roots))
    ]


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line serving the app for the parsed ``prodcat app`` arguments."""
    app_arguments = [str(Path(args.model).resolve())]
    paths = [("--data", args.data), ("--predictions", args.predictions)] + [("--root", r) for r in args.root or []]
    for flag, value in paths:
        if value:
            app_arguments += [flag, str(Path(value).resolve())]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SCRIPT),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        # no browser to open on a server, no first-run e-mail prompt, and no usage statistics sent out
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # the menu a viewer needs, without the developer's "Deploy" and re-run buttons
        "--client.toolbarMode",
        "viewer",
        "--",
        *app_arguments,
    ]


def startup_problem(args: argparse.Namespace) -> str | None:
    """What keeps the app from starting, checked before any server (rather than in a browser tab after)."""
    if importlib.util.find_spec("streamlit") is None:
        return "the web app needs Streamlit: pip install 'prodcat[app]'"
    for flag, value in (("--data", args.data), ("--predictions", args.predictions)):
        if value and not Path(value).exists():
            return f"{flag} {value}: no such file or folder"
    for root in args.root or []:
        if not Path(root).is_dir():
            return f"--root {root}: no such folder"
    return port_problem(args.host, args.port)


def port_problem(host: str, port: int) -> str | None:
    """Why the app could not listen on ``host:port`` (in use, an address not of this machine), or ``None``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # bound with SO_REUSEADDR, as the web server binds: a port left in TIME_WAIT is free to it
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is in use: stop what listens there or pass another --port"
        return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def app_url(host: str, port: int) -> str:
    """The address to open: an IPv6 host in brackets (``http://::1:8501`` is no URL a browser opens)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def load_in_a_child(model: str) -> None:
    """Load the bundle at ``model`` as the app's pages load it (:meth:`Predictor.load
    <prodcat.predict.Predictor.load>`) in a spawned child interpreter (:func:`~prodcat.child.run_in_a_child`), and
    raise here what that raised: in this process the model's libraries (some 1,400 modules, 180 MB) would stay for
    as long as the server runs."""
    run_in_a_child(_load_bundle, model, doing=f"loading bundle {model}")


def _load_bundle(model: str) -> None:
    from prodcat.predict import Predictor

    Predictor.load(model)


def shell_exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + N for a child ended by signal N, which ``Popen`` says -N
    (as this process's exit status, -N would read 256 - N: 241 for SIGTERM)."""
    return 128 - returncode if returncode < 0 else returncode


def run_app(args: argparse.Namespace) -> int:
    """Run ``prodcat app`` with the parsed ``args``; returns the exit code."""
    # a bad bundle is a BundleError, one line and exit 2 (cli.run), before any server rather than on its page. First
    # every file against the manifest's SHA-256, in a fraction of a second (a mistyped or damaged bundle), as the
    # other mistakes below are said: by prodcat.manifest, not prodcat.bundle, whose joblib and numpy would stay in
    # this process, the web server's parent, for as long as it runs
    verify_bundle(args.model)
    if problem := startup_problem(args):
        return say_error(problem)
    # then loaded as `prodcat predict` and `prodcat serve` load it (the model unpickled, the manifest agreeing with
    # it). The app loads it again, in case it changed since
    load_in_a_child(str(args.model))
    print(f"prodcat app on {app_url(args.host, args.port)} (Ctrl+C to stop)")
    server = subprocess.Popen(streamlit_command(args))
    # a service manager stops `prodcat app` alone, with SIGTERM: the web server it started must stop too
    # (Ctrl+C reaches both already: the terminal signals the whole process group)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: server.send_signal(signum))
    try:
        return shell_exit_status(server.wait())
    except KeyboardInterrupt:
        # a SIGINT sent to `prodcat app` alone (kill -INT, a script, a supervisor) does not reach the server, which
        # would outlive it: it is forwarded once the server has had time to stop on a terminal's Ctrl+C
        try:
            server.wait(timeout=SERVER_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGINT)
            server.wait()
        return 130  # the app's usual stop, which Streamlit's own line says: not cli.main's "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous)

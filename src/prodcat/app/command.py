"""``prodcat app MODEL``: the web app on a model bundle (``streamlit run`` on :mod:`prodcat.app.streamlit_app`)."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from prodcat.bundle import read_manifest

SCRIPT = Path(__file__).with_name("streamlit_app.py")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    app = subparsers.add_parser(
        "app",
        help="web app to explore a catalogue, a model and its predictions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A Streamlit app with four pages: Data (a catalogue's balance, completeness and products), "
        "Model (the bundle's manifest and training metrics), Predict (one product from a form) and Predictions "
        "(browse a predictions CSV or predict a sample of the catalogue; confusion and label-noise candidates).",
        epilog=textwrap.dedent("""\
            examples:
              prodcat app models/flipkart --data ../shared/datasets/flipkart
              prodcat app models/flipkart --data ../shared/datasets/flipkart --predictions preds.csv --port 8502
            """),
    )
    add_app_arguments(app)
    app.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    app.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    app.set_defaults(func=run_app)


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments the Streamlit script itself reads (after ``--`` on the ``streamlit run`` line)."""
    parser.add_argument("model", help="model bundle directory")
    parser.add_argument("--data", help="catalogue to explore and predict (any format `prodcat train` reads)")
    parser.add_argument("--predictions", help="predictions CSV to browse (from `prodcat predict` or `prodcat cv`)")


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line serving the app for the parsed ``prodcat app`` arguments."""
    app_arguments = [str(Path(args.model).resolve())]
    for flag, value in (("--data", args.data), ("--predictions", args.predictions)):
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


def run_app(args: argparse.Namespace) -> int:
    # Fail here, with the reason, rather than in a browser tab after the server started.
    if importlib.util.find_spec("streamlit") is None:
        print("error: the web app needs Streamlit: pip install 'prodcat[app]'", file=sys.stderr)
        return 2
    read_manifest(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main), before any server
    for flag, value in (("--data", args.data), ("--predictions", args.predictions)):
        if value and not Path(value).exists():
            print(f"error: {flag} {value}: no such file or folder", file=sys.stderr)
            return 2
    print(f"prodcat app on http://{args.host}:{args.port} (Ctrl+C to stop)")
    server = subprocess.Popen(streamlit_command(args))
    # a service manager stops `prodcat app` alone, with SIGTERM: the web server it started must stop too
    # (Ctrl+C reaches both already: the terminal signals the whole process group)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: server.send_signal(signum))
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)

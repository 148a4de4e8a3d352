"""The small run of a benchmark script: ``--sample N`` products, to check in a minute that the script runs. Its
numbers are no benchmark: they go to a new temporary folder unless ``--out`` names a place, never over
``benchmarks/results``."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def add_small_run_options(
    parser: argparse.ArgumentParser,
    out_help: str,
    sample: str = "a stratified sample of N labelled products of each catalogue",
) -> None:
    """Add ``--sample N`` and ``--out``, ``out_help`` saying what ``--out`` names and its default, ``sample`` what
    the run is made on."""
    parser.add_argument(
        "--sample",
        type=_positive,
        metavar="N",
        help=f"{sample}: a quick check that the script runs, written to a new temporary folder unless --out names one",
    )
    parser.add_argument("--out", type=Path, help=out_help)


def output(out: Path | None, sample: int | None, default: Path) -> Path:
    """Where a run writes its results, the folder it is in made: ``out`` if given; else ``default`` (in
    benchmarks/results) for a run on whole catalogues, or its name in a new temporary folder for a ``sample`` run."""
    path = out or (default if sample is None else Path(tempfile.mkdtemp(prefix="prodcat-benchmark-")) / default.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return number

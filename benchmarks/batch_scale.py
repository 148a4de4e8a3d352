"""Batch scoring at scale: the peak memory of ``prodcat predict`` against the catalogue's size, and the on-disk
embedding cache it leaves per product.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/batch_scale.py [--sizes 20000 100000 200000]
        [--bundle BUNDLE] [--cache-bundle models/demo] [--cache-products 1000]
    PYTHONPATH=src .venv/bin/python benchmarks/batch_scale.py --sample 200   # a check that it runs

The catalogues are Flipkart's 900 product texts repeated to each size, each product given an id and a title of its
own (the row number appended: every text distinct, as a real catalogue's are), text only (CSV, the canonical
columns). Each size is scored by ``prodcat predict`` in a process of its own, the chunks of 2,000 by default:

- ``peak_rss_mb``: its peak resident memory (``ru_maxrss`` of the child), the catalogue read whole included;
  ``mb_per_1000_products``: the growth of that peak per 1,000 products between the smallest and the largest size;
- ``seconds``, ``out_mb`` (the CSV) for each size.

The bundle (``--bundle``; else one trained here on Flipkart with ``configs/fast-text.yaml``, text only) reads no
embedding cache. ``--cache-bundle`` (``models/demo`` by default: the default config's sentence encoders) then scores
the first ``--cache-products`` products of the catalogue from an empty cache folder (``PRODCAT_CACHE_DIR``):
``cache_bytes_per_product`` is each cache file's size over those products, what a catalogue of that many distinct texts
adds to ``~/.cache/prodcat`` (photos not counted: none here).

Writes ``benchmarks/results/batch_scale.json``, or the file ``--out`` names; ``--sample N`` runs sizes N and 2N, and
the cache on N/2 products, into a new temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from prodcat.catalog.loaders import load_catalog
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "batch_scale.json"
PRODCAT = [sys.executable, "-c", "import sys; from prodcat.cli import main; sys.exit(main())"]


def catalogue(size: int, path: Path) -> Path:
    """Flipkart's texts repeated to ``size`` products, each with an id and a title of its own, written to ``path``."""
    flipkart = load_catalog(DATASETS / "flipkart").frame
    rows = flipkart.iloc[[i % len(flipkart) for i in range(size)]].reset_index(drop=True)
    numbers = pd.Series(range(size)).astype(str)
    frame = pd.DataFrame(
        {
            "product_id": "sku-" + numbers,
            "title": rows["title"].astype(str) + " " + numbers,
            "description": rows["description"].fillna(""),
            "image": "",
            "category": "",
        }
    )
    frame.to_csv(path, index=False)
    return path


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``prodcat ARGS`` in a process of its own; its wall time in seconds and its peak RSS in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*PRODCAT, *args], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"prodcat {' '.join(args)} failed: {stderr.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024  # KB on Linux


def trained_bundle(folder: Path) -> Path:
    """A text-only fast-text bundle trained on Flipkart in ``folder``."""
    bundle = folder / "fast-text"
    config = str(ROOT / "configs" / "fast-text.yaml")
    run(["train", str(DATASETS / "flipkart"), "--config", config, "--modalities", "text", "--out", str(bundle)])
    return bundle


def memory(bundle: Path, sizes: list[int], chunk_size: int, work: Path) -> dict[str, Any]:
    """Peak RSS and time of ``prodcat predict`` on each size."""
    runs = {}
    for size in sizes:
        data = catalogue(size, work / f"catalogue-{size}.csv")
        out = work / f"preds-{size}.csv"
        seconds, rss = run(["predict", str(bundle), str(data), "--out", str(out), "--chunk-size", str(chunk_size)])
        runs[str(size)] = {
            "seconds": round(seconds, 1),
            "peak_rss_mb": round(rss),
            "catalogue_mb": round(data.stat().st_size / 1e6, 1),
            "out_mb": round(out.stat().st_size / 1e6, 1),
        }
        print(size, runs[str(size)], flush=True)
    small, large = runs[str(min(sizes))], runs[str(max(sizes))]
    growth = (large["peak_rss_mb"] - small["peak_rss_mb"]) / max(max(sizes) - min(sizes), 1) * 1000
    return {"runs": runs, "mb_per_1000_products": round(growth, 2)}


def cache(bundle: Path, products: int, work: Path) -> dict[str, Any]:
    """The cache files a run of ``bundle`` on ``products`` distinct texts writes to an empty cache folder."""
    folder = work / "cache"
    data = catalogue(products, work / f"cache-catalogue-{products}.csv")
    seconds, _ = run(
        ["predict", str(bundle), str(data), "--out", str(work / "cache-preds.csv")],
        env={"PRODCAT_CACHE_DIR": str(folder)},
    )
    files = {path.name: path.stat().st_size for path in sorted((folder / "features").glob("*.sqlite"))}
    return {
        "bundle": str(bundle),
        "products": products,
        "seconds": round(seconds, 1),
        "cache_bytes": files,
        "cache_bytes_per_product": {name: round(size / products) for name, size in files.items()},
        "total_bytes_per_product": round(sum(files.values()) / products),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 200_000])
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--bundle", type=Path, help="a bundle reading text (default: fast-text trained on Flipkart)")
    parser.add_argument("--cache-bundle", type=Path, default=ROOT / "models" / "demo")
    parser.add_argument("--cache-products", type=int, default=1000)
    add_small_run_options(parser, f"results file (default {RESULTS})", "sizes N and 2N, the cache on N/2 products")
    args = parser.parse_args()
    sizes, products = (args.sizes, args.cache_products) if args.sample is None else ([args.sample, 2 * args.sample], 0)
    with tempfile.TemporaryDirectory(prefix="prodcat-batch-scale-") as temporary:
        work = Path(temporary)
        bundle = args.bundle or trained_bundle(work)
        result: dict[str, Any] = {
            "command": "PYTHONPATH=src .venv/bin/python benchmarks/batch_scale.py " + " ".join(sys.argv[1:]),
            "catalogue": "flipkart texts repeated, each title numbered (text only)",
            "bundle": str(args.bundle or "fast-text trained on flipkart, text only"),
            "chunk_size": args.chunk_size,
            "cpus": os.cpu_count(),
            "memory": memory(bundle, sizes, args.chunk_size, work),
            "cache": cache(args.cache_bundle, products or max(args.sample // 2, 1), work),
            "load_average_after": os.getloadavg()[0],
        }
    path = output(args.out, args.sample, RESULTS)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

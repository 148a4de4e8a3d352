"""Reading a large catalogue: the wall time and peak memory of ``load_catalog`` on CSV and Parquet.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/loader_scale.py [--sizes 100000 200000] [--repeats 3]
    PYTHONPATH=src .venv/bin/python benchmarks/loader_scale.py --sample 2000   # a check that it runs

The catalogues are Flipkart's products (as ``load_catalog`` reads them) repeated to each size, each given an id and a
title of its own (the row number appended), a ``price`` and a ``brand`` column beside the canonical ones, and one
product in five a photo: a name relative to the table's folder (``Images/<file>.jpg``, Flipkart's photos linked
there), as a seller's export names them. They are written under ``--work`` (``/tmp/loader-perf`` by default) as CSV
and Parquet. Each is read ``--repeats`` times, each in a process of its own:

- ``seconds``: the median wall time of ``load_catalog`` (the import of prodcat not counted); ``cpu_seconds``: the
  median CPU time (user and system) of it, which a machine busy with other work changes less;
- ``peak_mb_above_start``: the median of the process's peak resident memory (``ru_maxrss``) less its resident memory
  just before reading; ``file_mb``: the table's size on disk.

Writes ``benchmarks/results/loader_scale.json``, or the file ``--out`` names; ``--sample N`` reads N products once,
into a new temporary folder unless ``--out`` is given. ``PYTHONPATH`` picks the code measured (another tree's ``src``
measures it instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from prodcat.catalog.loaders import load_catalog
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "loader_scale.json"

#: run in a child: prints the seconds load_catalog took and its peak RSS above the RSS before it, in MB
_CHILD = """
import json, resource, sys, time
from prodcat.catalog.loaders import load_catalog
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, cpu_before = rss_mb(), cpu()
started = time.perf_counter()
catalog = load_catalog(sys.argv[1])
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_before
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb_above_start": peak - before,
                  "products": len(catalog)}))
"""


def catalogue(size: int, folder: Path) -> tuple[Path, Path]:
    """Flipkart's products repeated to ``size``, one in five with a photo, written to ``folder`` as CSV and Parquet."""
    flipkart = load_catalog(DATASETS / "flipkart").frame
    rows = flipkart.iloc[[i % len(flipkart) for i in range(size)]].reset_index(drop=True)
    numbers = pd.Series(range(size)).astype(str)
    photos = rows["image"].map(lambda path: f"Images/{Path(path).name}" if isinstance(path, str) else "")
    frame = pd.DataFrame(
        {
            "product_id": "sku-" + numbers,
            "title": rows["title"].astype(str) + " " + numbers,
            "description": rows["description"].fillna(""),
            "image": photos.where(pd.Series(range(size)) % 5 == 0, ""),
            "category": rows["category"].fillna(""),
            "price": (pd.Series(range(size)) % 997 + 0.5).astype(float),
            "brand": rows["title"].astype(str).str.split().str[0],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    images = folder / "Images"
    if not images.exists():
        images.symlink_to(DATASETS / "flipkart" / "Images")
    csv_path, parquet_path = folder / f"catalog-{size}.csv", folder / f"catalog-{size}.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path


def measure(path: Path, repeats: int) -> dict[str, Any]:
    """The median seconds and peak memory of reading ``path`` in ``repeats`` processes of their own."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "products": runs[0]["products"],
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "seconds": round(statistics.median(run["seconds"] for run in runs), 2),
        "cpu_seconds": round(statistics.median(run["cpu_seconds"] for run in runs), 2),
        "peak_mb_above_start": round(statistics.median(run["peak_mb_above_start"] for run in runs), 1),
        "runs": [{key: round(value, 2) for key, value in run.items()} for run in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/loader-perf"))
    add_small_run_options(parser, f"the results file (default {RESULTS.relative_to(ROOT)})", "N products, read once")
    args = parser.parse_args()
    sizes, repeats = ([args.sample], 1) if args.sample else (args.sizes, args.repeats)
    result: dict[str, Any] = {"repeats": repeats, "load": os.getloadavg()[0], "sizes": {}}
    for size in sizes:
        csv_path, parquet_path = catalogue(size, args.work)
        result["sizes"][str(size)] = {"csv": measure(csv_path, repeats), "parquet": measure(parquet_path, repeats)}
        print(json.dumps({str(size): result["sizes"][str(size)]}), flush=True)
    path = output(args.out, args.sample, RESULTS)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path}")


if __name__ == "__main__":
    main()

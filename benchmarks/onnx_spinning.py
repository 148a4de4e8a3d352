"""`prodcat predict` with onnxruntime's threads sleeping between parallel regions (prodcat's setting) or spinning
(onnxruntime's default), side by side.

    .venv/bin/python benchmarks/onnx_spinning.py [--bundle models/demo] [--catalogue flipkart] [--repeats 3]
    .venv/bin/python benchmarks/onnx_spinning.py --sample 20 --repeats 1   # a check that it runs

Each run is a `prodcat predict BUNDLE CATALOGUE` in a process of its own, from an empty embedding cache (the ONNX
exports shared), so every text and photo is encoded: the MiniLM and EfficientNet encoders run on onnxruntime, the
USE-m3 and e5 encoders do not. The two settings take turns to go first in each repeat. Per setting, medians over
``--repeats``: ``seconds`` (wall), ``cpu_seconds`` (user + system, every thread), ``max_rss_mb``; the load average
before each run; and whether the two settings wrote the same CSV.

``--sample N`` scores the catalogue's first N products. Writes ``benchmarks/results/onnx_spinning.json``, or the
file ``--out`` names.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prodcat.catalog.loaders import load_catalog
from prodcat.features.cache import default_cache_dir
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "onnx_spinning.json"
#: onnxruntime's ``session.intra_op.allow_spinning`` of each setting
SETTINGS = {"sleeping": "0", "spinning": "1"}
#: a `prodcat predict` whose sessions take ``argv[1]`` as their setting, the rest its arguments
PREDICT = """
import sys
from prodcat.features import onnx
from prodcat.cli import main
onnx.ALLOW_SPINNING = sys.argv[1]
sys.exit(main(["predict", *sys.argv[2:]]))
"""


def run(setting: str, bundle: Path, catalogue: Path, out: Path, cache: Path) -> dict[str, float]:
    """One `prodcat predict` in a new process on the empty feature cache ``cache``: wall and CPU seconds, peak
    memory."""
    cache.mkdir()
    models = default_cache_dir() / "models"
    if models.is_dir():
        (cache / "models").symlink_to(models)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", PREDICT, SETTINGS[setting], str(bundle), str(catalogue), "--out", str(out)],
        env={**os.environ, "PRODCAT_CACHE_DIR": str(cache)},
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"prodcat predict ({setting}) failed with exit {process.returncode}")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "load_before": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("models/demo"))
    parser.add_argument("--catalogue", default="flipkart", help="a folder of ../shared/datasets")
    parser.add_argument("--repeats", type=int, default=3)
    add_small_run_options(parser, "results file (default: benchmarks/results/onnx_spinning.json)", "first N products")
    args = parser.parse_args()
    results_path = output(args.out, args.sample, RESULTS)
    scratch = Path(tempfile.mkdtemp(prefix="prodcat-onnx-spinning-"))
    catalogue = DATASETS / args.catalogue
    if args.sample is not None:
        catalogue = scratch / "sample.csv"
        load_catalog(DATASETS / args.catalogue).frame.head(args.sample).to_csv(catalogue, index=False)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    outputs: dict[str, set[bytes]] = {name: set() for name in SETTINGS}
    for repeat in range(args.repeats):
        names = list(SETTINGS) if repeat % 2 == 0 else list(reversed(SETTINGS))
        for name in names:
            out = scratch / f"{name}-{repeat}.csv"
            runs[name].append(run(name, args.bundle, catalogue, out, scratch / f"cache-{name}-{repeat}"))
            outputs[name].add(out.read_bytes())
            print(f"repeat {repeat} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[name][-1].items()))
    results: dict[str, Any] = {
        "command": "PYTHONPATH=src .venv/bin/python benchmarks/onnx_spinning.py "
        f"--bundle {args.bundle} --catalogue {args.catalogue} --repeats {args.repeats}",
        "date": datetime.date.today().isoformat(),
        "products": len(load_catalog(catalogue).frame),
        "cpus": os.cpu_count(),
        "same_csv": len(outputs["sleeping"] | outputs["spinning"]) == 1,
        "settings": {
            name: {
                "allow_spinning": SETTINGS[name],
                **{
                    f"{measure}_median": round(statistics.median(run[measure] for run in runs[name]), 2)
                    for measure in ("seconds", "cpu_seconds", "max_rss_mb")
                },
                "runs": [{k: round(v, 2) for k, v in run.items()} for run in runs[name]],
            }
            for name in SETTINGS
        },
    }
    spinning, sleeping = results["settings"]["spinning"], results["settings"]["sleeping"]
    results["sleeping_vs_spinning"] = {
        measure: round(sleeping[f"{measure}_median"] / spinning[f"{measure}_median"], 2)
        for measure in ("seconds", "cpu_seconds")
    }
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in results.items() if k != "settings"}, indent=2))
    print(f"results written to {results_path}")


if __name__ == "__main__":
    main()

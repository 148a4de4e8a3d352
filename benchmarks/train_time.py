"""Training time and memory of configurations side by side: what `prodcat train` spends fitting a model.

    .venv/bin/python benchmarks/train_time.py [--catalogue flipkart] [--configs default,configs/early-nbsvm.yaml]
                                              [--jobs 1,2] [--cv-fold K] [--repeats 3] [--no-warm-up]
    .venv/bin/python benchmarks/train_time.py --sample 200 --repeats 1  # a check that it runs (a minute)
    # the inner cross-validation in 1 or 2 processes (--jobs), on Flipkart and on fashion's fold 0:
    .venv/bin/python benchmarks/train_time.py --configs default --jobs 1,2 --out benchmarks/results/train_jobs.json
    .venv/bin/python benchmarks/train_time.py --catalogue fashion --cv-fold 0 --configs default --jobs 1,2 \\
        --out benchmarks/results/train_jobs.json

Fits :class:`~prodcat.models.classifier.ProductClassifier` on every labelled product of the catalogue (as
`prodcat train` does: its configuration for the catalogue's format, inner cross-validation, calibration and
threshold included), or with ``--cv-fold K`` on the training part of fold K of `prodcat cv`'s 5-fold split (fold 0
of fashion: the model of ``tests/test_measured.py``'s fashion guard), once per configuration, number of processes
fitting the inner folds (``--jobs``, its ``n_jobs``) and repeat. Each fit runs in a new process, as `prodcat train`
does, so that no fit inherits another's memory or worker processes. The embedding cache is warmed first (unless
``--no-warm-up``: warm already), so the times are the supervised part (TF-IDF, classifiers, inner CVs), not the
encoders. The variants are interleaved within each repeat, their order rotated, so that the machine's load hits
them alike; medians over ``--repeats`` and each one's ratio to the first variant.

Memory: the peak, over the fit's process and its workers, of their resident memory summed, sampled every 0.1 s
(psutil), catalogue and features included. A page two processes share (the memory-mapped feature matrix the workers
read, the libraries' code) counts in each, so the sum overstates what the machine gives them.

Writes ``benchmarks/results/train_time.json`` (one entry per catalogue, or catalogue and fold, replaced by a new
run), or the file ``--out`` names; a ``--sample`` run, whose figures are no benchmark, a new temporary folder's unless
``--out`` is given. Each entry records its command and the load average before and after it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from prodcat.catalog.loaders import load_catalog
from prodcat.commands import labelled_sample
from prodcat.config import Config, load_config
from prodcat.models.classifier import ProductClassifier, as_labels
from prodcat.models.heads import stratified_folds
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "train_time.json"
DEFAULT = "default"
#: the folds of `prodcat cv`'s split, whose fold --cv-fold names
CV_FOLDS = 5
#: seconds between two samples of the fit's memory
SAMPLE_EVERY = 0.1


def _config(name: str, catalog_format: str) -> Config:
    """The configuration named ``name`` (``default`` or a YAML path) for a catalogue of ``catalog_format``."""
    return (Config() if name == DEFAULT else load_config(ROOT / name)).for_format(catalog_format)


def fit_once(catalogue: str, name: str, sample: int | None, cv_fold: int | None, n_jobs: int) -> dict[str, float]:
    """Seconds to fit the configuration ``name`` with ``n_jobs`` on the products the options name, and how many."""
    from prodcat.catalog.schema import category_at_level

    catalog = load_catalog(DATASETS / catalogue)
    config = _config(name, catalog.format)
    frame = labelled_sample(catalog.frame, config, sample)
    if cv_fold is not None:  # as prodcat cv (and the test_measured guards) split it
        y = category_at_level(as_labels(frame["category"]), config.target_level)
        frame = frame.iloc[stratified_folds(y, CV_FOLDS, config.seed)[cv_fold][0]]
    start = time.perf_counter()
    ProductClassifier(config, n_jobs=n_jobs).fit(frame)
    return {"seconds": time.perf_counter() - start, "products": len(frame)}


def timed_fit(args: argparse.Namespace, name: str, n_jobs: int) -> tuple[dict[str, float], float]:
    """:func:`fit_once` in a new process, and its peak resident memory (MB, the process and its workers summed)."""
    command = [sys.executable, __file__, "--catalogue", args.catalogue, "--fit", name, "--fit-jobs", str(n_jobs)]
    command += ["--sample", str(args.sample)] if args.sample else []
    command += ["--cv-fold", str(args.cv_fold)] if args.cv_fold is not None else []
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    tree = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            processes = [tree, *tree.children(recursive=True)]
            peak = max(peak, sum(_rss(process) for process in processes))
        except psutil.NoSuchProcess:
            pass
        time.sleep(SAMPLE_EVERY)
    out, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"the fit of {name} with {n_jobs} job(s) failed (exit {child.returncode})")
    return json.loads(out.strip().splitlines()[-1]), peak / 2**20


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:  # ended between the listing and the reading
        return 0


def _joblib_folder() -> str:
    """``JOBLIB_TEMP_FOLDER=... `` when it is set (where the workers' memory-mapped arrays are written), else ``""``."""
    folder = os.environ.get("JOBLIB_TEMP_FOLDER")
    return f"JOBLIB_TEMP_FOLDER={folder} " if folder else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="flipkart", help="a folder of the shared datasets")
    parser.add_argument("--configs", default=f"{DEFAULT},configs/early-nbsvm.yaml", help="comma-separated")
    parser.add_argument("--jobs", default="1", help="comma-separated numbers of processes fitting the inner folds")
    parser.add_argument("--cv-fold", type=int, choices=range(CV_FOLDS), help="fit the training part of this fold")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-warm-up", action="store_true", help="the embedding cache is warm: no fit first")
    parser.add_argument("--fit", help=argparse.SUPPRESS)  # a child's one fit, of this configuration
    parser.add_argument("--fit-jobs", type=int, default=1, help=argparse.SUPPRESS)
    add_small_run_options(parser, "results file (default: benchmarks/results/train_time.json)")
    args = parser.parse_args()
    if args.fit:
        print(json.dumps(fit_once(args.catalogue, args.fit, args.sample, args.cv_fold, args.fit_jobs)))
        return
    out = output(args.out, args.sample, RESULTS)
    jobs = [int(n) for n in args.jobs.split(",")]
    variants = [(name, n) for name in args.configs.split(",") for n in jobs]
    labels = [name if len(jobs) == 1 else f"{name}, n_jobs={n}" for name, n in variants]
    load_before = os.getloadavg()
    for name in [] if args.no_warm_up else args.configs.split(","):  # warm the embedding cache
        timed_fit(args, name, 1)
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    memory: dict[str, list[float]] = {label: [] for label in labels}
    products: dict[str, float] = {}
    for repeat in range(args.repeats):
        turn = repeat % len(variants)
        for (name, n_jobs), label in zip(variants[turn:] + variants[:turn], labels[turn:] + labels[:turn], strict=True):
            fit, peak_mb = timed_fit(args, name, n_jobs)
            products[label] = fit["products"]
            seconds[label].append(round(fit["seconds"], 2))
            memory[label].append(round(peak_mb))
            print(args.catalogue, label, seconds[label][-1], f"{memory[label][-1]} MB", flush=True)
    medians = {label: statistics.median(values) for label, values in seconds.items()}
    results = json.loads(out.read_text()) if out.exists() else {}
    key = args.catalogue if args.cv_fold is None else f"{args.catalogue}, fold {args.cv_fold}"
    results[key] = {
        label: {
            "products": products[label],
            "median_seconds": medians[label],
            "ratio_to_first": round(medians[label] / medians[labels[0]], 2),
            "seconds": seconds[label],
            "median_peak_rss_mb": statistics.median(memory[label]),
            "peak_rss_mb": memory[label],
        }
        for label in labels
    }
    results[key] |= {
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "command": _joblib_folder()
        + "PYTHONPATH=src .venv/bin/python benchmarks/train_time.py "
        + " ".join(sys.argv[1:]),
    }
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results[key], indent=2))
    print(f"results written to {out}")


if __name__ == "__main__":
    main()

"""The feasibility study (``prodcat explore``) on every catalogue, with cold and warm timings on Flipkart (issue 5).

    .venv/bin/python benchmarks/explore.py                          # everything (cold + warm Flipkart, then the rest)
    .venv/bin/python benchmarks/explore.py --studies flipkart       # Flipkart only
    .venv/bin/python benchmarks/explore.py --no-cold                # skip the cold run (uses the shared cache)
    .venv/bin/python benchmarks/explore.py --seeds 0,1,2            # + the fixed configuration under 3 seeds
    .venv/bin/python benchmarks/explore.py --studies flipkart --no-cold --sample 200  # a check that it runs (2 min)

Studies run separately are merged into the results file (a study run again replaces its entry).

Each study is a real ``prodcat explore`` subprocess (imports, loading, extraction, reductions, report
included in the wall time). The cold Flipkart run gets an empty cache folder (``PRODCAT_CACHE_DIR``;
the exported ONNX model is rebuilt too), the warm run repeats it on the same folder. Other studies use
the shared cache. Per study: wall seconds, the best run of each product set (runs are ranked only against runs on
the same products: each feature set is studied on the products having its modalities) and every record of
``clustering.json``.
With ``--seeds``, every study also runs one fixed configuration (:data:`FIXED`, chosen once for all
catalogues: no per-catalogue tuning) under each seed, and records its ARI per seed and their median;
the seed also draws the fashion samples.
Writes ``benchmarks/results/explore.json`` (or the file ``--out`` names; a ``--sample`` run, each study on that many
products, a new temporary folder's unless ``--out`` is given: its numbers are no benchmark); the reports go to a
temporary folder, printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from small_run import add_small_run_options, output

DATASETS = Path(os.environ.get("PRODCAT_DATASETS", Path(__file__).resolve().parents[1].parent / "shared" / "datasets"))
RESULTS = Path(__file__).resolve().parent / "results"
#: study name -> (catalogue folder, extra ``prodcat explore`` arguments)
STUDIES = {
    "flipkart": ("flipkart", []),
    "rakuten": ("rakuten", ["--level", "0"]),  # the challenge's 27 classes
    "fashion_level2": ("fashion", ["--level", "2", "--sample", "3000"]),
    "fashion_level3": ("fashion", ["--level", "3", "--sample", "3000"]),
}


#: the configuration run under several seeds on every catalogue (``--seeds``)
FIXED = ("minilm+e5+effnet_lite0", "umap")


def run_study(
    name: str, reports: Path, env: dict[str, str], more: Sequence[str] = (), sample: int | None = None
) -> dict:
    """Run ``prodcat explore`` for study ``name`` (``more``: extra arguments; ``sample``: products studied, in the
    study's own sample's stead); return its wall time and records."""
    folder, extra = STUDIES[name]
    out = reports / name
    if sample is not None:
        extra = [*_without_sample(extra), "--sample", str(sample)]
    extra = [*extra, *more]
    command = [sys.executable, "-m", "prodcat.cli", "explore", str(DATASETS / folder), "--report", str(out), *extra]
    load = os.getloadavg()[0]  # the cores are shared: say how busy they were
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*command, "--no-progress"], check=True, env=env)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # user + system CPU of the study and its workers: what the wall time would approach on idle cores x cores
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    records = json.loads((out / "clustering.json").read_text())
    return {
        "command": " ".join(["prodcat", *command[3:]]),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average_at_start": round(load, 1),
        # ranked only among runs on the same products: each feature set is studied on those having its modalities
        "best": records[0],  # on the most products
        "best_per_product_set": best_per_product_set(records),
        "records": records,
    }


def _without_sample(arguments: Sequence[str]) -> list[str]:
    """``arguments`` without their ``--sample N``."""
    kept = list(arguments)
    if "--sample" in kept:
        at = kept.index("--sample")
        del kept[at : at + 2]
    return kept


def best_per_product_set(records: Sequence[dict]) -> dict[str, dict]:
    """Products studied ('440 products with text and a photo') -> the best record of ``clustering.json`` on them."""
    return {record["product_set"]: record for record in records if record["rank"] == 1}


def seed_runs(name: str, seeds: Sequence[int], reports: Path, sample: int | None = None) -> dict:
    """ARI of the :data:`FIXED` configuration on study ``name`` under each seed (on ``sample`` products, when
    given), and their median."""
    features, reduction = FIXED
    ari = {}
    for seed in seeds:
        more = ["--features", features, "--reductions", reduction, "--seed", str(seed)]
        ari[seed] = run_study(name, reports / f"seed{seed}", dict(os.environ), more, sample)["best"]["ari"]
    return {"features": features, "reduction": reduction, "ari": ari, "median": statistics.median(ari.values())}


def study_names(text: str) -> list[str]:
    """``--studies``: a comma list of :data:`STUDIES` names (an unknown one is refused before any study runs)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if unknown := [name for name in names if name not in STUDIES]:
        raise argparse.ArgumentTypeError(f"unknown study {', '.join(unknown)}; known: {', '.join(STUDIES)}")
    if not names:
        raise argparse.ArgumentTypeError(f"names no study ({text!r}); known: {', '.join(STUDIES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--studies",
        type=study_names,
        default=list(STUDIES),
        help=f"comma list among {', '.join(STUDIES)} (default: all)",
    )
    parser.add_argument("--no-cold", action="store_true", help="skip the cold Flipkart run")
    parser.add_argument("--seeds", help="comma list of seeds to run the fixed configuration with (e.g. 0,1,2)")
    add_small_run_options(parser, "results file (default: benchmarks/results/explore.json)")
    args = parser.parse_args()
    reports = Path(tempfile.mkdtemp(prefix="prodcat-explore-"))
    path = output(args.out, args.sample, RESULTS / "explore.json")
    # studies run separately accumulate in one file
    results: dict = json.loads(path.read_text()) if path.exists() else {"studies": {}}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    for name in args.studies:
        if name == "flipkart" and not args.no_cold:
            with tempfile.TemporaryDirectory(prefix="prodcat-cold-") as cache:
                env = {**os.environ, "PRODCAT_CACHE_DIR": cache}
                cold = run_study(name, reports, env, sample=args.sample)
                warm = run_study(name, reports, env, sample=args.sample)
            results["studies"][name] = {
                **warm,
                "cold_seconds": cold["seconds"],
                "cold_cpu_seconds": cold["cpu_seconds"],
                "warm_seconds": warm["seconds"],
            }
        else:
            results["studies"][name] = run_study(name, reports, dict(os.environ), sample=args.sample)
        study = results["studies"][name]
        if args.seeds:
            seeds = [int(s) for s in args.seeds.split(",")]
            study["fixed_configuration"] = seed_runs(name, seeds, reports, args.sample)
            print(f"{name}: {FIXED} ARI per seed {study['fixed_configuration']['ari']}")
        print(f"{name}: {study['seconds']} s")
        for products, best in study["best_per_product_set"].items():
            print(f"  best on {products}: {best['features']} / {best['reduction']} ARI {best['ari']:.3f}")
        path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}; reports in {reports}")


if __name__ == "__main__":
    main()

"""Time and memory of the label audit (`prodcat audit DATA --labels`) of two revisions side by side.

    .venv/bin/python benchmarks/audit_labels.py --baseline REV [--candidate REV] [--levels 1,2] [--repeats 3]
                                                [--catalogue flipkart]
    .venv/bin/python benchmarks/audit_labels.py --baseline HEAD~1 --levels 1 --repeats 1 --sample 200  # a check

Exports each revision's sources (``git archive``; candidate default ``HEAD``) to a temporary folder and runs
``prodcat audit ../shared/datasets/CATALOGUE --labels --no-images --level N`` on each, alternately (the order
switched every repeat, so the shared machine's load hits both alike), each run under ``/usr/bin/time -v``: wall
and CPU seconds and peak memory, medians over the repeats. Every run's ``label_issues.csv`` is compared with the
baseline's first one at that level: the products flagged by one and not the other, by row. Run it with the
feature cache warm (any ``prodcat cv`` or audit of the catalogue fills it), so the times are the
cross-validation's fits, not the encoders.

Merges its levels into ``benchmarks/results/audit_labels.json`` (one entry per catalogue and level), or the file
``--out`` names; ``--sample N`` audits a sample of N products (``prodcat audit --sample``), numbers that are no
benchmark, merged into a new temporary folder's file unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "audit_labels.json"
#: what /usr/bin/time -v reports, by the key it is stored under
TIME_FIELDS = {
    "wall_seconds": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)",
    "user_seconds": r"User time \(seconds\): (.+)",
    "system_seconds": r"System time \(seconds\): (.+)",
    "peak_rss_mb": r"Maximum resident set size \(kbytes\): (.+)",
}


def export(revision: str, into: Path) -> Path:
    """The ``src`` folder of ``revision``'s sources, extracted under ``into``."""
    into.mkdir(parents=True)
    archive = into / "src.tar"
    subprocess.run(["git", "archive", f"--output={archive}", revision, "src"], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def audit_arguments(data: Path | str, level: int, sample: int | None) -> list[str]:
    """``prodcat audit``'s arguments for a label audit of ``data`` at ``level`` (of a ``sample`` of its products)."""
    arguments = ["audit", str(data), "--labels", "--no-images", "--level", str(level)]
    return arguments + (["--sample", str(sample)] if sample is not None else [])


def audit(source: Path, data: Path, level: int, report: Path, sample: int | None = None) -> dict[str, Any]:
    """One label audit with the ``source`` tree's code: /usr/bin/time's measures and the rows flagged."""
    command = [sys.executable, "-m", "prodcat.cli", *audit_arguments(data, level, sample), "--report", str(report)]
    env = os.environ | {"PYTHONPATH": str(source)}
    run = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=True)
    measures = {key: re.search(pattern, run.stderr).group(1) for key, pattern in TIME_FIELDS.items()}
    issues = report / "label_issues.csv"
    flagged: list[int] = []
    if issues.exists():  # not written when the audit skipped the labels (too few products to cross-validate)
        with issues.open(newline="", encoding="utf-8") as file:
            flagged = sorted(int(row["row"]) for row in csv.DictReader(file))
    return {
        # h:mm:ss or m:ss.ss
        "wall_seconds": round(
            sum(float(part) * 60**i for i, part in enumerate(measures["wall_seconds"].split(":")[::-1])), 1
        ),
        "cpu_seconds": round(float(measures["user_seconds"]) + float(measures["system_seconds"]), 1),
        "system_seconds": float(measures["system_seconds"]),
        "peak_rss_mb": round(int(measures["peak_rss_mb"]) / 1024),
        "flagged_rows": flagged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the revision measured against, e.g. HEAD~1")
    parser.add_argument("--candidate", default="HEAD")
    parser.add_argument("--catalogue", default="flipkart", help="a folder of the shared datasets")
    parser.add_argument("--levels", default="1,2", help="comma-separated category levels (0: the full path)")
    parser.add_argument("--repeats", type=int, default=3)
    add_small_run_options(
        parser, "results file (default: benchmarks/results/audit_labels.json)", sample="a sample of N products"
    )
    args = parser.parse_args()
    out = output(args.out, args.sample, RESULTS)
    data = DATASETS / args.catalogue
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        sources = {name: export(getattr(args, name), work / name) for name in ("baseline", "candidate")}
        for level in map(int, args.levels.split(",")):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
            for repeat in range(args.repeats):
                for name in list(sources)[:: 1 if repeat % 2 == 0 else -1]:
                    report = work / f"{name}-{level}-{repeat}"
                    runs[name].append(audit(sources[name], data, level, report, args.sample))
                    print(args.catalogue, level, name, {k: v for k, v in runs[name][-1].items() if k != "flagged_rows"})
            reference = set(runs["baseline"][0]["flagged_rows"])
            results = json.loads(out.read_text()) if out.exists() else {}  # another level may have written
            results[f"{args.catalogue} level {level}"] = {
                "command": " ".join(
                    ["prodcat", *audit_arguments(f"../shared/datasets/{args.catalogue}", level, args.sample)]
                ),
                "repeats": args.repeats,
                "load_average_after": round(os.getloadavg()[0], 1),
                **{name: _summary(getattr(args, name), name_runs, reference) for name, name_runs in runs.items()},
            }
            candidate, baseline = (results[f"{args.catalogue} level {level}"][n] for n in ("candidate", "baseline"))
            candidate["wall_ratio"] = round(candidate["wall_seconds_median"] / baseline["wall_seconds_median"], 2)
            out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {out}")


def _summary(revision: str, runs: list[dict[str, Any]], reference: set[int]) -> dict[str, Any]:
    """Medians of ``runs`` and, per run, the rows flagged against the ``reference`` run's, both ways."""
    hash_ = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True)
    return {
        "revision": hash_.stdout.strip(),
        **{
            f"{key}_median": statistics.median(run[key] for run in runs)
            for key in ("wall_seconds", "cpu_seconds", "system_seconds", "peak_rss_mb")
        },
        "runs": [{k: v for k, v in run.items() if k != "flagged_rows"} for run in runs],
        "flagged": [len(run["flagged_rows"]) for run in runs],
        "flagged_not_in_baseline_first_run": [sorted(set(run["flagged_rows"]) - reference) for run in runs],
        "not_flagged_of_baseline_first_run": [sorted(reference - set(run["flagged_rows"])) for run in runs],
    }


if __name__ == "__main__":
    main()

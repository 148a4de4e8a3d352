"""Training time of configurations side by side: what `prodcat train` spends fitting a model.

    .venv/bin/python benchmarks/train_time.py [--catalogue flipkart] [--configs default,configs/early-nbsvm.yaml]
                                              [--repeats 3]
    .venv/bin/python benchmarks/train_time.py --sample 200 --repeats 1  # a check that it runs (a minute)

Fits :class:`~prodcat.models.classifier.ProductClassifier` on every labelled product of the catalogue (as
`prodcat train` does: its configuration for the catalogue's format, inner cross-validation, calibration and
threshold included) once per configuration and repeat. The embedding cache is warmed first, so the times are
the supervised part (TF-IDF, classifiers, inner CVs), not the encoders. Configurations are interleaved within
each repeat, their order rotated, so that the machine's load hits them alike; medians over ``--repeats`` and
each one's ratio to the first configuration.

Writes ``benchmarks/results/train_time.json`` (one entry per catalogue, replaced by a new run), or the file
``--out`` names; a ``--sample`` run, whose times are no benchmark, a new temporary folder's unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from prodcat.catalog.loaders import load_catalog
from prodcat.commands import labelled_sample
from prodcat.config import Config, load_config
from prodcat.models.classifier import ProductClassifier
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "train_time.json"
DEFAULT = "default"


def _config(name: str, catalog_format: str) -> Config:
    """The configuration named ``name`` (``default`` or a YAML path) for a catalogue of ``catalog_format``."""
    return (Config() if name == DEFAULT else load_config(ROOT / name)).for_format(catalog_format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="flipkart", help="a folder of the shared datasets")
    parser.add_argument("--configs", default=f"{DEFAULT},configs/early-nbsvm.yaml", help="comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    add_small_run_options(parser, "results file (default: benchmarks/results/train_time.json)")
    args = parser.parse_args()
    out = output(args.out, args.sample, RESULTS)
    catalog = load_catalog(DATASETS / args.catalogue)
    names = args.configs.split(",")
    configs = {name: _config(name, catalog.format) for name in names}
    frames = {name: labelled_sample(catalog.frame, config, args.sample) for name, config in configs.items()}
    for name, config in configs.items():  # warm the embedding cache (and the first-call imports)
        ProductClassifier(config).fit(frames[name])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            start = time.perf_counter()
            ProductClassifier(configs[name]).fit(frames[name])
            seconds[name].append(round(time.perf_counter() - start, 2))
            print(args.catalogue, name, seconds[name][-1], flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.catalogue] = {
        name: {
            "products": len(frames[name]),
            "median_seconds": medians[name],
            "ratio_to_first": round(medians[name] / medians[names[0]], 2),
            "seconds": seconds[name],
        }
        for name in names
    }
    results[args.catalogue]["cpu_count"] = os.cpu_count()
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results[args.catalogue], indent=2))
    print(f"results written to {out}")


if __name__ == "__main__":
    main()

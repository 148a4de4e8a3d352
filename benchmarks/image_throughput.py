"""End-to-end image embedding throughput: read + decode + EfficientNet-Lite0 (ONNX).

Run (from the repository root, nothing else heavy running):

    .venv/bin/python benchmarks/image_throughput.py [--images 320] [--repeats 3] [--threads 2]
    .venv/bin/python benchmarks/image_throughput.py --sample 16 --repeats 1  # a check, in a temporary folder

Measures, side by side in one run and on the same photos, images/second for:

- ``model_only``: the onnxruntime session on pre-decoded ``uint8`` batches (the ceiling);
- ``plain_loop``: decode each photo at full size, resize, then infer, batch after batch
  (the obvious baseline: decoding and inference never overlap);
- ``extractor_cold``: ``make_extractor("effnet_lite0").transform(frame)`` with an empty
  feature cache (content hashing, decoding in a thread pool ahead of inference, JPEG
  reduced-size decoding, cache writes included);
- ``extractor_warm``: the same call again: every vector comes from the cache.

on Rakuten's 500 x 500 JPEGs and on Flipkart's photos (up to 640 px). Medians of
``--repeats`` runs (each cold run gets a fresh temporary cache directory; the ONNX
export is made once beforehand, as in real use). Writes
``benchmarks/results/image_throughput.json``, or the file ``--out`` names. ``--sample N`` reads N photos per source
instead of ``--images``: a check that the script runs, written to a new temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from prodcat.features.base import make_extractor
from prodcat.features.onnx import onnx_session
from prodcat.image.decode import load_image
from prodcat.image.features import EffNetLite0, fit_square
from small_run import add_small_run_options, output

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("PRODCAT_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "benchmarks" / "results" / "image_throughput.json"
SOURCES = {
    "rakuten_500px": DATASETS / "rakuten" / "images" / "image_train",
    "flipkart_640px": DATASETS / "flipkart" / "Images",
}


def frame_of(paths: list[Path]) -> pd.DataFrame:
    return pd.DataFrame({"product_id": [p.stem for p in paths], "image": [str(p) for p in paths]})


def images_per_second(run: Callable[[], object], n_images: int, repeats: int) -> dict[str, float]:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(n_images / (time.perf_counter() - start))
    return {"median": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}


def bench_source(paths: list[Path], model_path: Path, threads: int, repeats: int, batch: int) -> dict[str, object]:
    session = onnx_session(model_path, threads)
    size = 224
    frame = frame_of(paths)

    def model_only(tensors: np.ndarray) -> None:
        for start in range(0, len(tensors), batch):
            session.run(None, {"images": tensors[start : start + batch]})

    def plain_loop() -> None:
        for start in range(0, len(paths), batch):
            tensors = np.stack([np.asarray(fit_square(load_image(p), size)) for p in paths[start : start + batch]])
            session.run(None, {"images": tensors})

    # one extractor whose ONNX session is loaded before timing; each cold run points it at an
    # empty feature cache directory, so it hashes, decodes and embeds every photo
    extractor = make_extractor("effnet_lite0", threads=threads, progress=False, onnx_path=str(model_path))
    extractor.session()
    scratch = Path(tempfile.mkdtemp(prefix="prodcat-bench-"))
    cold_dirs = iter(range(repeats + 1))

    def cold_extractor() -> np.ndarray:
        extractor.cache_dir = str(scratch / f"cold{next(cold_dirs)}")
        return extractor.transform(frame)

    all_tensors = np.stack([np.asarray(fit_square(load_image(p), size)) for p in paths])
    model_only(all_tensors[:batch])  # warm-up: session initialisation, page cache of the files
    results: dict[str, object] = {
        "n_images": len(paths),
        "model_only": images_per_second(lambda: model_only(all_tensors), len(paths), repeats),
        "plain_loop": images_per_second(plain_loop, len(paths), repeats),
        "extractor_cold": images_per_second(cold_extractor, len(paths), repeats),
    }
    cold_vectors = cold_extractor()  # fills one more cold cache: the warm runs read it
    encoded: list[int] = []
    original_encode = extractor.encode
    extractor.encode = lambda items: encoded.append(len(items)) or original_encode(items)  # type: ignore[method-assign]
    results["extractor_warm"] = images_per_second(lambda: extractor.transform(frame), len(paths), repeats)
    results["warm_images_encoded"] = sum(encoded)  # 0: extraction skipped
    results["warm_equals_cold"] = bool(np.array_equal(extractor.transform(frame), cold_vectors))
    shutil.rmtree(scratch)
    ceiling = results["model_only"]["median"]  # type: ignore[index]
    for name in ("plain_loop", "extractor_cold"):
        results[f"{name}_vs_model_only"] = round(results[name]["median"] / ceiling, 2)  # type: ignore[index]
    results["extractor_cold_vs_plain_loop"] = round(
        results["extractor_cold"]["median"] / results["plain_loop"]["median"],  # type: ignore[index]
        2,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320, help="photos per source")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (= cores)")
    parser.add_argument("--batch", type=int, default=32)
    add_small_run_options(
        parser, "results file (default: benchmarks/results/image_throughput.json)", sample="N photos per source"
    )
    args = parser.parse_args()
    results_path = output(args.out, args.sample, RESULTS)

    model_path = EffNetLite0().model_path()  # export once (shared model cache), like real use
    report: dict[str, object] = {
        "command": "benchmarks/image_throughput.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v is not None),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "machine": platform.platform(),
    }
    for name, folder in SOURCES.items():
        if not folder.is_dir():
            print(f"skipping {name}: {folder} not found (set PRODCAT_DATASETS)")
            continue
        paths = sorted(folder.glob("*.jpg"))[: args.sample or args.images]
        report[name] = bench_source(paths, model_path, args.threads, args.repeats, args.batch)
        print(name, json.dumps(report[name], indent=1), flush=True)
    report["load_average_at_end"] = os.getloadavg()
    results_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()

"""Load test of the REST API on loopback: latency percentiles and throughput, text-only and text + photo.

    .venv/bin/python benchmarks/load_api.py                      # trains the bundles on 200 Flipkart products
    .venv/bin/python benchmarks/load_api.py --bundle models/flipkart --duration 10
    # e5 (a French catalogue's default model) on 1 and 2 OpenMP threads, taking turns
    .venv/bin/python benchmarks/load_api.py --dataset rakuten --configs default --workloads text --workers 1 \
        --e5-threads 1,2,2,1 --concurrency 1,8 --duration 20
    # two versions of the code taking turns (each a src folder, e.g. from git archive), photo and batch requests
    # (benchmarks/results/load_api_spinning.json gathers three such runs, with the commands)
    .venv/bin/python benchmarks/load_api.py --bundle models/demo --workloads photo,batch --workers 1 \
        --pythonpath OLD/src,NEW/src,NEW/src,OLD/src --concurrency 1,8 --out /tmp/versions.json

Starts a real ``prodcat serve`` (SQLite review queue with synchronous=FULL) with 1, then 2 worker
processes (one server per ``--workers`` and ``--e5-threads`` value), and drives each with an asyncio client
(aiohttp: ~0.4 CPU-ms per request where httpx took ~2, CPU the server shares on this machine) at concurrency 1, 8
and 32 for ``--duration`` seconds per cell:
``text`` requests are JSON title + description of real products; ``photo`` requests are
multipart title + description + a real product photo resized to 500 x 500 JPEG; ``batch`` requests are multipart
``/predict-batch`` of :data:`BATCH_PRODUCTS` such products, each with its photo. Every product sent is
a new product to the server's embedding caches: a reference number is added to the title and the
photo gets a counter in a JPEG comment segment. One bundle per ``--configs`` entry (the default
config, and the fast text recipe), trained on the same 200 products of ``--dataset`` (Flipkart: English, MiniLM;
Rakuten: French, e5), measured one after the other. Client and server share the machine's cores. Targets (set for
Flipkart): p99 < 50 ms (text) and < 300 ms (photo) at concurrency 8, and no 5xx at all. Writes
``benchmarks/results/load_api.json`` (Flipkart) or ``load_api_e5.json`` (Rakuten). ``--pythonpath`` runs each server
on the code of a src folder of its own (its ``PYTHONPATH``), to compare two versions of it on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import pandas as pd
from PIL import Image

from prodcat.catalog.loaders import load_catalog
from prodcat.features.cache import default_cache_dir

REPO = Path(__file__).resolve().parents[1]
#: the results file of each catalogue the bundles can be trained on (Rakuten's default model encodes with e5)
RESULTS_BY_DATASET = {"flipkart": "load_api.json", "rakuten": "load_api_e5.json"}
#: products the bundles are trained on; the requests send the next ones
TRAINING_PRODUCTS = 200
TARGETS_P99_MS = {"text": 50.0, "photo": 300.0}
TARGET_CONCURRENCY = 8
#: the workloads; ``batch`` (no target) sends this many products with photos per ``/predict-batch`` request
WORKLOADS = ("text", "photo", "batch")
BATCH_PRODUCTS = 16


def datasets_dir() -> Path:
    return Path(os.environ.get("PRODCAT_DATASETS", REPO.parent / "shared" / "datasets"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shuffled_products(catalogue: Path, photos: bool) -> pd.DataFrame:
    """The catalogue's products that have a title (and a photo, if ``photos``), in a fixed shuffle: the first
    :data:`TRAINING_PRODUCTS` are trained on, the next ones requested."""
    frame = load_catalog(catalogue).frame
    kept = frame["title"].str.strip() != ""  # Rakuten lists products known only by their photo
    if photos:
        kept &= frame["image"].notna()
    return frame[kept].sample(frac=1.0, random_state=0)


def train_bundle(catalogue: Path, folder: Path, config: str, photos: bool) -> Path:
    """A bundle on the first products of :func:`shuffled_products` at the categories' top level (Flipkart's 7), with
    ``config`` (a config file, or ``default``); of text and photo if ``photos``, else of text alone."""
    data = folder / "train.parquet"
    if not data.exists():
        frame = shuffled_products(catalogue, photos).iloc[:TRAINING_PRODUCTS]
        frame[["product_id", "title", "description", "image", "category"]].to_parquet(data)
    out = folder / f"bundle-{Path(config).stem}"
    command = [sys.executable, "-m", "prodcat.cli", "train", str(data), "--out", str(out),
               "--modalities", "text,image" if photos else "text", "--level", "1"]  # fmt: skip
    if config != "default":
        command += ["--config", str(REPO / config)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out


def isolated_cache(folder: Path) -> Path:
    """An empty embedding cache that reuses the exported ONNX models (no re-export, no shared-cache growth)."""
    cache = folder / "cache"
    cache.mkdir()
    shared_models = default_cache_dir() / "models"
    if shared_models.is_dir():
        (cache / "models").symlink_to(shared_models)
    return cache


def start_server(
    bundle: Path, folder: Path, workers: int, e5_threads: int | None, pythonpath: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``prodcat serve`` of ``bundle`` on a free port, ready; ``e5_threads`` None leaves serve's own default;
    ``pythonpath`` (a src folder) runs the server on that code instead of the installed one."""
    port = free_port()
    env = os.environ | {"PRODCAT_CACHE_DIR": str(isolated_cache(folder)), "PRODCAT_LOG_LEVEL": "warning"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "prodcat.cli", "serve", str(bundle), "--port", str(port),
               "--workers", str(workers), "--review-db", f"sqlite:///{folder / 'reviews.db'}"]  # fmt: skip
    if e5_threads is not None:
        command += ["--e5-threads", str(e5_threads)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"server did not start: see {folder / 'server.log'}")


def products(catalogue: Path, photos: bool, n: int = 100) -> list[dict[str, Any]]:
    """Products not in the training sample, with their photo as a 500 x 500 JPEG if ``photos``."""
    frame = shuffled_products(catalogue, photos).iloc[TRAINING_PRODUCTS : TRAINING_PRODUCTS + n]
    out = []
    for _, row in frame.iterrows():
        product = {"title": row["title"], "description": row["description"][:1000]}
        if photos:
            buffer = io.BytesIO()
            Image.open(row["image"]).convert("RGB").resize((500, 500)).save(buffer, "JPEG", quality=90)
            product["jpeg"] = buffer.getvalue()
        out.append(product)
    return out


def unique_jpeg(jpeg: bytes, serial: int) -> bytes:
    """The same pixels with a different file: a JPEG comment (COM segment) right after the SOI marker."""
    comment = f"load_api request {serial}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def new_product(catalogue: list[dict[str, Any]], serial: int) -> dict[str, str]:
    """The title and description of product ``serial``: a reference number makes every text new to the server's
    embedding cache, like a new product."""
    product = catalogue[serial % len(catalogue)]
    return {"title": f"{product['title']} ref {serial}", "description": product["description"]}


def add_photo(form: aiohttp.FormData, name: str, catalogue: list[dict[str, Any]], serial: int) -> None:
    """Product ``serial``'s photo as the file part ``name``, a file new to the server (:func:`unique_jpeg`)."""
    jpeg = unique_jpeg(catalogue[serial % len(catalogue)]["jpeg"], serial)
    form.add_field(name, jpeg, filename="photo.jpg", content_type="image/jpeg")


def batch_form(catalogue: list[dict[str, Any]], serial: int) -> aiohttp.FormData:
    """A ``/predict-batch`` form of :data:`BATCH_PRODUCTS` new products, each naming its photo part."""
    form = aiohttp.FormData()
    serials = [serial * BATCH_PRODUCTS + k for k in range(BATCH_PRODUCTS)]
    items = [new_product(catalogue, s) | {"product_id": f"ref-{s}", "image": f"photo{s}"} for s in serials]
    form.add_field("products", json.dumps(items), content_type="application/json")
    for s in serials:
        add_photo(form, f"photo{s}", catalogue, s)
    return form


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (Linux ``/proc``), in seconds."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def run_cell(
    url: str,
    server_pid: int,
    workload: str,
    catalogue: list[dict[str, Any]],
    concurrency: int,
    duration: float,
    serial: Iterator[int],
) -> dict:
    """One cell; ``serial`` numbers the requests of every cell sent to this server, so that none repeats a text or
    a photo of an earlier cell, which the server's embedding caches would answer."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def send(http: aiohttp.ClientSession) -> None:
        i = next(serial)
        started = time.perf_counter()
        if workload == "text":
            request = http.post("/predict", json=new_product(catalogue, i))
        elif workload == "photo":
            form = aiohttp.FormData(new_product(catalogue, i))
            add_photo(form, "image", catalogue, i)
            request = http.post("/predict", data=form)
        else:
            request = http.post("/predict-batch", data=batch_form(catalogue, i))
        async with request as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1

    async def user(http: aiohttp.ClientSession, deadline: float) -> None:
        while time.perf_counter() < deadline:
            await send(http)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as http:
        warm_until = time.perf_counter() + 1.0  # connections opened, caches and thread pools warm
        await asyncio.gather(*(user(http, warm_until) for _ in range(concurrency)))
        latencies.clear()
        statuses.clear()
        model_before = await model_seconds(http)
        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        await asyncio.gather(*(user(http, started + duration) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu
        model_after = await model_seconds(http)
    ms = np.asarray(latencies) * 1000
    return {
        "workload": workload,
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        # the cores are shared: how busy they were as the cell started (this benchmark's previous cell included)
        "load_average_1min_before": round(load_before, 2),
        "errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "model_ms_mean": model_ms_mean(model_before, model_after),
        # CPU time per request, whatever else runs on the machine: what the cores can sustain when idle
        "server_cpu_ms_per_request": round(server_cpu / len(latencies) * 1000, 2),
        "client_cpu_ms_per_request": round(client_cpu / len(latencies) * 1000, 2),
    }


def model_ms_mean(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    """Mean time in ms of one Predictor.predict call during a cell, from the server's model-latency histogram's
    ``(sum, count)`` read ``before`` and ``after`` it (every worker's calls: /metrics adds them up); None when no call
    was counted."""
    calls = after[1] - before[1]
    if calls <= 0:
        return None
    return round((after[0] - before[0]) / calls * 1000, 1)


async def model_seconds(http: aiohttp.ClientSession) -> tuple[float, float]:
    """``(sum, count)`` of the server's model-latency histogram, every worker's calls."""
    async with http.get("/metrics") as response:
        text = await response.text()
    values = dict(re.findall(r"^prodcat_model_latency_seconds_(sum|count) (\S+)$", text, re.MULTILINE))
    return float(values.get("sum", 0)), float(values.get("count", 0))


def measure(
    bundle: Path,
    folder: Path,
    server_setup: dict[str, int | None],
    catalogue: list[dict],
    workloads: list[str],
    levels: list[int],
    duration: float,
):
    """Every (workload, concurrency) cell against one server of ``server_setup`` (its ``workers`` and
    ``e5_threads``); returns what its ``/model`` says and the cells."""
    server, url = start_server(bundle, folder, **server_setup)
    try:
        model = httpx.get(f"{url}/model").json()
        cells = []
        serial = count()
        cell_of = functools.partial(run_cell, url, server.pid, serial=serial)
        for workload in workloads:
            for concurrency in levels:
                measured = asyncio.run(cell_of(workload, catalogue, concurrency, duration))
                cell = server_setup | measured
                print(json.dumps(cell), flush=True)
                cells.append(cell)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return model, cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: train one per --configs)")
    parser.add_argument(
        "--dataset",
        choices=list(RESULTS_BY_DATASET),
        default="flipkart",
        help="catalogue the bundles are trained on and the requests come from (default flipkart)",
    )
    parser.add_argument(
        "--configs",
        default="default,configs/fast-text.yaml",
        help="configs to train a bundle with on 200 products, side by side (default: the default config "
        "and configs/fast-text.yaml)",
    )
    parser.add_argument(
        "--workloads", default="text,photo", help="comma-separated: text, photo, batch (default text,photo)"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per cell (default 8)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default 1,8,32)")
    parser.add_argument("--workers", default="1,2", help="server processes, one server per value (default 1,2)")
    parser.add_argument(
        "--e5-threads",
        help="prodcat serve --e5-threads, one server per value for each --workers; a value may repeat (1,2,2,1: the "
        "settings taking turns as the machine's load drifts) (default: none given, serve's own)",
    )
    parser.add_argument(
        "--pythonpath",
        help="src folders, comma-separated: one server per value for each --workers and --e5-threads, running that "
        "code (its PYTHONPATH); a value may repeat, as in --e5-threads (default: the installed prodcat)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="results file (default: benchmarks/results/load_api.json; load_api_e5.json for rakuten)",
    )
    args = parser.parse_args()
    catalogue_dir = datasets_dir() / args.dataset
    if not catalogue_dir.is_dir():
        print(f"{args.dataset} dataset not found at {catalogue_dir} (set PRODCAT_DATASETS)", file=sys.stderr)
        return 1
    out = args.out or REPO / "benchmarks" / "results" / RESULTS_BY_DATASET[args.dataset]
    workloads = args.workloads.split(",")
    if unknown := set(workloads) - set(WORKLOADS):
        parser.error(f"--workloads: unknown {', '.join(sorted(unknown))}; choose among {', '.join(WORKLOADS)}")
    photos = bool({"photo", "batch"} & set(workloads))
    levels = [int(c) for c in args.concurrency.split(",")]
    e5_threads = [int(threads) for threads in args.e5_threads.split(",")] if args.e5_threads else [None]
    pythonpaths = args.pythonpath.split(",") if args.pythonpath else [None]
    server_setups = [
        {"workers": int(workers), "e5_threads": threads} | ({"pythonpath": path} if path else {})
        for workers in args.workers.split(",")
        for threads in e5_threads
        for path in pythonpaths
    ]
    load_before = os.getloadavg()[0]
    cells = []
    with tempfile.TemporaryDirectory(prefix="prodcat-load-") as tmp:
        folder = Path(tmp)
        bundles = (
            {args.bundle.name: args.bundle}
            if args.bundle
            else {config: train_bundle(catalogue_dir, folder, config, photos) for config in args.configs.split(",")}
        )
        catalogue = products(catalogue_dir, photos)
        for name, bundle in bundles.items():
            for run, setup in enumerate(server_setups):
                run_folder = folder / f"{Path(name).stem}-{run}"
                run_folder.mkdir()
                model, measured = measure(bundle, run_folder, setup, catalogue, workloads, levels, args.duration)
                described = {"config": name, "model_version": model["version"], "heads": model["manifest"]["heads"]}
                cells += [described | cell for cell in measured]
    targets = [
        {
            key: cell[key]
            for key in ("config", "workload", "workers", "e5_threads", "pythonpath", "concurrency")
            if key in cell
        }
        | {
            "p99_ms_target": TARGETS_P99_MS[cell["workload"]],
            "p99_ms": cell["p99_ms"],
            "met": cell["p99_ms"] < TARGETS_P99_MS[cell["workload"]],
        }
        for cell in cells
        if cell["concurrency"] == TARGET_CONCURRENCY and cell["workload"] in TARGETS_P99_MS
    ]
    result = {
        "command": "python benchmarks/load_api.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # other processes on the same cores change everything: say how busy the machine was
            "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "duration_s_per_cell": args.duration,
        "zero_5xx": all(c["errors_5xx"] == 0 for c in cells),
        "targets": targets,
        "cells": cells,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"targets": targets, "zero_5xx": result["zero_5xx"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

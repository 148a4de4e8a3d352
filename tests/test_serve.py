"""The REST API, end to end: a real ``prodcat serve`` process on loopback, a real bundle
trained on 200 Flipkart products (text + photo), real photos, and crafted bad inputs.

Every refusal must name its limit, and the server must still answer afterwards.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import pytest
from PIL import Image

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.features.base import make_extractor
from prodcat.image.decode import image_content_key
from prodcat.processes import machine
from prodcat.review.store import ReviewStore, load_corrections

pytestmark = pytest.mark.slow

API_KEY = "test-key-5f1c0d9e"
MODALITIES = "text,image"
#: limits of the test server, small enough to cross cheaply
LIMITS = {
    "max_image_bytes": 1_000_000,
    "max_request_bytes": 3_000_000,
    "max_pixels": 25_000_000,
    "max_text_chars": 2_000,
    "max_batch_items": 8,
    "request_timeout_s": 20,  # generous: a loaded CI machine must not turn slow answers into 504s
}


# ------------------------------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``prodcat serve`` in a subprocess, on 127.0.0.1 and a free port; its log in a file."""

    def __init__(self, bundle: Path, db_url: str, log_path: Path, *flags: str) -> None:
        self.bundle, self.db_url, self.log_path, self.flags = bundle, db_url, log_path, flags
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 180) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "prodcat.cli", "serve", str(self.bundle), "--port", str(port),
                   "--review-db", self.db_url, *self.flags]  # fmt: skip
        env = os.environ | {"PRODCAT_API_KEY": API_KEY}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def limit_flags() -> list[str]:
    return [arg for name, value in LIMITS.items() for arg in (f"--{name.replace('_', '-')}", str(value))]


def raw_http(url: str, head: bytes, body_parts: list[bytes], pause: float = 0.0, timeout: float = 30) -> str:
    """Send a hand-made request (slow or without Content-Length) and return the status line and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered early and closed: read what it said
            time.sleep(pause)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in data:
                break
    return b"".join(chunks).decode("latin-1")


def assert_refused(response: httpx.Response, status: int, error: str, limit_value: Any = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["request_id"] == response.headers["x-request-id"]
    if limit_value is not None:
        assert body["limit"] == error and body["limit_value"] == limit_value
        assert f"{error}={limit_value}" in body["detail"]
    return body


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def flipkart_split(flipkart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """200 products to train on (written as Parquet) and 40 others, with photos, to query."""
    frame = load_catalog(flipkart_dir).frame
    frame = frame[frame["image"].notna()].sample(frac=1.0, random_state=0).reset_index(drop=True)
    train_path = tmp_path_factory.mktemp("serve-data") / "train.parquet"
    frame.iloc[:200][["product_id", "title", "description", "image", "category"]].to_parquet(train_path)
    return train_path, frame.iloc[200:240].reset_index(drop=True)


@pytest.fixture(scope="session")
def bundle(flipkart_split: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    train_path, _ = flipkart_split
    out = tmp_path_factory.mktemp("serve-bundle") / "model"
    command = [sys.executable, "-m", "prodcat.cli", "train", str(train_path), "--out", str(out),
               "--modalities", MODALITIES, "--level", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def heldout(flipkart_split: tuple[Path, pd.DataFrame]) -> pd.DataFrame:
    return flipkart_split[1]


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("serve")
    running = Server(bundle, f"sqlite:///{folder / 'reviews.db'}", folder / "server.log", *limit_flags()).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture
def keyed() -> dict[str, str]:
    return {"X-API-Key": API_KEY}


def photo_of(product: pd.Series) -> bytes:
    return Path(product["image"]).read_bytes()


def multipart_product(product: pd.Series) -> dict[str, Any]:
    return {
        "data": {"title": product["title"], "description": product["description"][:1500]},
        "files": {"image": ("photo.jpg", photo_of(product), "image/jpeg")},
    }


def top_level(category: str) -> str:
    return str(category_at_level([category], 1)[0])


def assert_still_predicts(client: httpx.Client, product: pd.Series) -> None:
    """After a refusal the model still answers: a real product, text and photo, gets one of its categories
    (the refusal must not have taken the model from the requests that follow, as a wedged worker would)."""
    response = client.post("/predict", **multipart_product(product))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["category"] in client.get("/model").json()["labels"]
    assert sorted(body["modalities_used"]) == ["image", "text"]


# ------------------------------------------------------------------------------------------ endpoints
def test_health_ready_model_docs(client: httpx.Client, bundle: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    manifest = json.loads((bundle / "manifest.json").read_text())
    ready = client.get("/ready").json()
    assert ready == {"ready": True, "model_version": manifest["version"], "labels": len(manifest["labels"])}
    model = client.get("/model").json()
    assert model["version"] == manifest["version"] and model["labels"] == manifest["labels"]
    assert model["manifest"]["metrics"] == manifest["metrics"]
    schema = client.get("/openapi.json").json()
    endpoints = {"/predict", "/predict-batch", "/explain", "/health", "/ready", "/model", "/metrics", "/reviews"}
    assert endpoints <= set(schema["paths"])


def test_the_docs_pages_load_offline(client: httpx.Client) -> None:
    """Swagger UI and ReDoc come from the server itself: FastAPI's defaults fetch them from a CDN (blank offline)."""
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html
        scripts = re.findall(r'src="([^"]+\.js)"', html)
        assert scripts and all(client.get(script).status_code == 200 for script in scripts), scripts
    stylesheet = re.search(r'href="([^"]+\.css)"', client.get("/docs").text)
    assert stylesheet and client.get(stylesheet.group(1)).status_code == 200


def test_predict_text_and_photo_multipart(client: httpx.Client, heldout: pd.DataFrame, bundle: Path) -> None:
    product = heldout.iloc[0]
    response = client.post("/predict", **multipart_product(product), headers={"X-Request-ID": "seller-42.a"})
    assert response.status_code == 200, response.text
    body = response.json()
    labels = json.loads((bundle / "manifest.json").read_text())["labels"]
    assert body["request_id"] == "seller-42.a" == response.headers["x-request-id"]
    assert body["category"] in labels and body["decision"] in ("auto", "review")
    assert sorted(body["modalities_used"]) == ["image", "text"]
    probabilities = [entry["probability"] for entry in body["top_k"]]
    assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert body["top_k"][0] == {"category": body["category"], "probability": body["confidence"]}
    assert (body["decision"] == "review") == (body["review_id"] is not None)


def test_predict_json_text_only_and_top_k(client: httpx.Client, heldout: pd.DataFrame) -> None:
    product = heldout.iloc[1]
    response = client.post("/predict?top_k=2", json={"title": product["title"], "product_id": "SKU-7"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["modalities_used"] == ["text"] and len(body["top_k"]) == 2 and body["product_id"] == "SKU-7"
    assert client.post("/predict?top_k=999", json={"title": "towel"}).status_code == 422


def test_photo_only_product(client: httpx.Client, heldout: pd.DataFrame) -> None:
    response = client.post("/predict", files={"image": ("p.jpg", photo_of(heldout.iloc[2]), "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json()["modalities_used"] == ["image"]


def test_explain_words_and_heatmap(client: httpx.Client, heldout: pd.DataFrame) -> None:
    """``POST /explain``: /predict's answer with word weights and a heatmap; inputs refused as /predict's are."""
    product = heldout.iloc[0]
    predicted = client.post("/predict", **multipart_product(product)).json()
    response = client.post("/explain?max_words=5&grid=4&overlay=true", **multipart_product(product))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"]["category"] == predicted["category"] and body["prediction"]["review_id"] is None
    assert body["prediction"]["confidence"] == pytest.approx(predicted["confidence"], abs=1e-5)
    words = [w["word"] for w in body["words"]["weights"]]
    assert len(words) == 5 and all(word in product["title"] for word in words)
    heatmap = body["pixels"]["heatmap"]
    assert len(heatmap) == 4 and all(len(row) == 4 for row in heatmap)
    # what the CLI's report says of them, the API says too: whether any word or square matters
    pixels, weights = body["pixels"], [abs(w["weight"]) for w in body["words"]["weights"]]
    assert pixels["largest_change"] >= abs(pixels["largest_drop"])
    assert pixels["negligible"] == (pixels["largest_change"] < 0.01)
    assert body["words"]["negligible"] == (max(weights) < 0.01)
    overlay = Image.open(io.BytesIO(base64.b64decode(body["pixels"]["overlay_png"])))
    assert list(overlay.size) == body["pixels"]["photo_size"]

    text_only = client.post("/explain?max_words=3", json={"title": product["title"]}).json()
    assert text_only["pixels"] is None and text_only["pixels_skipped"] == "the product has no photo"
    corrupt = {"data": {"title": "lamp"}, "files": {"image": ("b.jpg", photo_of(product)[:300], "image/jpeg")}}
    assert_refused(client.post("/explain", **corrupt), 422, "image_corrupt")
    assert_refused(client.post("/explain", json={"title": "t" * 2001}), 422, "max_text_chars", 2000)
    assert_refused(client.post("/explain?grid=50", json={"title": "lamp"}), 422, "invalid_request")


def test_api_gives_the_same_answer_as_the_predictor(client: httpx.Client, heldout: pd.DataFrame, bundle: Path) -> None:
    """No second preprocessing in the API: same product, same probabilities as ``Predictor.predict``."""
    from prodcat.predict import Predictor

    products = heldout.iloc[3:6]
    products = products.assign(description=products["description"].str[:1500])  # as multipart_product sends it
    direct = Predictor.load(bundle).predict(products, top_k=3)
    for (_, product), expected in zip(products.iterrows(), direct, strict=True):
        body = client.post("/predict?top_k=3", **multipart_product(product)).json()
        assert body["category"] == expected.category
        assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-5)


def test_batch_is_accurate_on_heldout_products(client: httpx.Client, heldout: pd.DataFrame) -> None:
    products = heldout.iloc[8:16]
    fields = [{"title": p["title"], "description": p["description"][:1500], "image": f"photo{i}"}
              for i, (_, p) in enumerate(products.iterrows())]  # fmt: skip
    files = [(f"photo{i}", (f"{i}.jpg", photo_of(p), "image/jpeg")) for i, (_, p) in enumerate(products.iterrows())]
    response = client.post("/predict-batch", data={"products": json.dumps(fields)}, files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(8)) and all(r["error"] is None for r in results)
    predicted = [r["prediction"]["category"] for r in results]
    truth = [top_level(c) for c in products["category"]]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert accuracy >= 0.6, (predicted, truth)


def test_batch_bad_items_fail_alone(client: httpx.Client, heldout: pd.DataFrame) -> None:
    good = heldout.iloc[16]
    items = [
        {"title": good["title"]},
        {"title": "x" * (LIMITS["max_text_chars"] + 1)},
        {"title": "   "},
        {"title": "towel", "colour": "red"},
        "not an object",
        {"title": good["title"], "description": good["description"][:500]},
    ]
    response = client.post("/predict-batch", json=items)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["error"]["error"] if r["error"] else "ok" for r in results] == [
        "ok", "max_text_chars", "empty_product", "unknown_field", "invalid_item", "ok"]  # fmt: skip
    assert results[1]["error"]["limit_value"] == LIMITS["max_text_chars"]


def test_multipart_batch_with_bad_photos(client: httpx.Client, heldout: pd.DataFrame) -> None:
    photo = photo_of(heldout.iloc[17])
    fields = [
        {"title": heldout.iloc[17]["title"], "image": "good"},
        {"title": "lamp", "image": "corrupt"},
        {"title": "lamp", "image": "text"},
        {"title": "lamp", "image": "absent"},
        {"image": "good"},
    ]
    files = [("good", ("a.jpg", photo, "image/jpeg")), ("corrupt", ("b.jpg", photo[:300], "image/jpeg")),
             ("text", ("c.jpg", b"just some text", "image/jpeg"))]  # fmt: skip
    response = client.post("/predict-batch", data={"products": json.dumps(fields)}, files=files)
    assert response.status_code == 200, response.text
    outcomes = [(r["error"]["error"], r["error"]["status"]) if r["error"] else "ok" for r in response.json()["results"]]
    assert outcomes == ["ok", ("image_corrupt", 422), ("image_type", 415), ("image_missing", 422), "ok"]


# ------------------------------------------------------------------------------------------ limits
def test_oversized_batch(client: httpx.Client) -> None:
    response = client.post("/predict-batch", json=[{"title": "towel"}] * (LIMITS["max_batch_items"] + 1))
    assert_refused(response, 413, "max_batch_items", LIMITS["max_batch_items"])


def test_oversized_text(client: httpx.Client) -> None:
    body = assert_refused(
        client.post("/predict", json={"title": "towel", "description": "d" * 2001}), 422, "max_text_chars", 2000
    )
    assert "description of 2001 characters" in body["detail"]
    form = {"title": "t" * 2001}
    assert_refused(client.post("/predict", data=form, files={"image": ("a.jpg", b"", "image/jpeg")}), 422,
                   "image_empty")  # fmt: skip
    assert_refused(client.post("/predict", data=form, files={"x": ("a", b"", "text/plain")}), 422, "unknown_field")


@pytest.mark.parametrize(
    ("name", "content", "status", "error"),
    [
        ("zero bytes", b"", 422, "image_empty"),
        ("corrupt JPEG", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, 422, "image_corrupt"),
        ("text named .jpg", b"<html>not a photo</html>", 415, "image_type"),
        ("PDF", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 415, "image_type"),
    ],
)
def test_bad_photos(
    client: httpx.Client, heldout: pd.DataFrame, name: str, content: bytes, status: int, error: str
) -> None:
    response = client.post("/predict", data={"title": "lamp"}, files={"image": ("photo.jpg", content, "image/jpeg")})
    body = assert_refused(response, status, error)
    if error == "image_type":
        assert body["limit"] == "image_types" and "jpeg" in body["detail"]
    assert client.get("/health").status_code == 200
    assert_still_predicts(client, heldout.iloc[21])


def test_truncated_real_photo(client: httpx.Client, heldout: pd.DataFrame) -> None:
    photo = photo_of(heldout.iloc[18])
    response = client.post("/predict", files={"image": ("p.jpg", photo[: len(photo) // 2], "image/jpeg")})
    assert_refused(response, 422, "image_corrupt")
    assert_still_predicts(client, heldout.iloc[18])  # the same product, its photo whole


def test_decompression_bomb_png(
    client: httpx.Client, heldout: pd.DataFrame, png_bomb_bytes: Callable[[int, int], bytes]
) -> None:
    bomb = png_bomb_bytes(20_000, 20_000)
    assert len(bomb) < LIMITS["max_image_bytes"]
    response = client.post("/predict", data={"title": "poster"}, files={"image": ("poster.png", bomb, "image/png")})
    body = assert_refused(response, 413, "max_pixels", LIMITS["max_pixels"])
    assert "pixels exceeds the limit" in body["detail"]
    assert client.get("/health").status_code == 200
    assert_still_predicts(client, heldout.iloc[22])


def test_oversized_photo_bytes(client: httpx.Client) -> None:
    big = b"\xff\xd8\xff\xe0" + b"\0" * LIMITS["max_image_bytes"]
    response = client.post("/predict", data={"title": "lamp"}, files={"image": ("big.jpg", big, "image/jpeg")})
    assert_refused(response, 413, "max_image_bytes", LIMITS["max_image_bytes"])


def test_wrong_request_content_type(client: httpx.Client) -> None:
    response = client.post("/predict", content=b"title=lamp", headers={"Content-Type": "text/plain"})
    assert_refused(response, 415, "content_type")
    assert_refused(client.post("/predict"), 415, "content_type")
    assert_refused(client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"}),
                   422, "invalid_json")  # fmt: skip
    assert_refused(client.post("/predict", json={}), 422, "empty_product")


def test_request_body_limit_by_length_and_by_stream(server: Server) -> None:
    limit = LIMITS["max_request_bytes"]
    declared = raw_http(
        server.url,
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {limit + 1}\r\n\r\n"
        .encode(), [],
    )  # fmt: skip
    assert declared.startswith("HTTP/1.1 413") and f"max_request_bytes={limit}" in declared
    chunk = b"a" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (limit // len(chunk) + 2) + [b"0\r\n\r\n"]
    streamed = raw_http(
        server.url,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunks,
    )
    assert streamed.startswith("HTTP/1.1 413") and "max_request_bytes" in streamed
    assert httpx.get(f"{server.url}/health").status_code == 200


# ------------------------------------------------------------------------------------------ review queue
def test_review_queue_round_trip(
    client: httpx.Client, server: Server, heldout: pd.DataFrame, keyed: dict[str, str], tmp_path: Path
) -> None:
    reviewed: list[tuple[int, pd.Series, bytes]] = []
    for _, product in heldout.iloc[20:40].iterrows():
        body = client.post("/predict", **multipart_product(product)).json()
        assert (body["decision"] == "review") == (body["review_id"] is not None)
        if body["review_id"] is not None:
            reviewed.append((body["review_id"], product, photo_of(product)))
    assert reviewed, "the model auto-accepted all 20 products: no review decision to test with"

    assert_refused(client.get("/reviews"), 401, "api_key")
    assert_refused(client.get("/reviews", headers={"X-API-Key": API_KEY + "x"}), 401, "api_key")
    pending = client.get("/reviews?limit=500", headers=keyed).json()
    assert {review_id for review_id, _, _ in reviewed} <= {item["id"] for item in pending["items"]}
    review_id, product, photo = reviewed[0]
    item = client.get(f"/reviews/{review_id}", headers=keyed).json()
    assert (item["title"], item["status"], item["has_image"]) == (product["title"], "pending", True)
    assert client.get(f"/reviews/{review_id}/image", headers=keyed).content == photo

    correct = top_level(product["category"])
    assert_refused(client.post(f"/reviews/{review_id}", json={"category": correct}), 401, "api_key")
    done = client.post(f"/reviews/{review_id}", json={"category": correct, "reviewer": "ana"}, headers=keyed)
    assert done.status_code == 200 and done.json()["status"] == "reviewed"
    assert_refused(client.post("/reviews/999999", json={"category": correct}, headers=keyed), 404, "not_found")

    corrections = load_corrections(server.db_url, image_dir=tmp_path)
    row = corrections.set_index("product_id").loc[f"review-{review_id}"]
    assert (row["title"], row["category"]) == (product["title"], correct)
    assert Path(row["image"]).read_bytes() == photo


def test_metrics_and_json_logs(client: httpx.Client, server: Server, heldout: pd.DataFrame) -> None:
    # a photo never seen before (a fresh JPEG comment): its embedding is computed, not read from the cache
    photo = photo_of(heldout.iloc[19])
    comment = f"unique {time.time_ns()}".encode()
    fresh = photo[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + photo[2:]
    assert client.post("/predict", files={"image": ("new.jpg", fresh, "image/jpeg")}).status_code == 200
    # not added to the on-disk cache (the server, another process here, keeps it in memory: test_serve_decode.py's
    # test_the_server_keeps_a_new_photos_embedding_in_its_memory_and_writes_none_to_disk sees it)
    assert not make_extractor("effnet_lite0").disk_cache().get_many([image_content_key(fresh)])
    response = client.post("/predict", json={"title": "Stainless steel analog watch"})
    assert response.status_code == 200
    client.post("/predict", json={"title": "y" * 3000})
    metrics = client.get("/metrics").text
    assert 'prodcat_requests_total{method="POST",route="/predict",status="200"}' in metrics
    assert 'prodcat_errors_total{error="max_text_chars"}' in metrics
    assert "prodcat_decisions_total{decision=" in metrics
    assert 'prodcat_request_latency_seconds_bucket{le="0.05",method="POST",route="/predict"}' in metrics
    assert "prodcat_model_latency_seconds_count" in metrics
    # one process keeping its metrics in memory: the scrape in flight, its model, its own process metrics
    assert metric_value(metrics, "prodcat_requests_in_flight") == 1
    assert [value for _, value in models_served(metrics)] == [1.0]
    assert metric_value(metrics, "process_resident_memory_bytes") > 100e6

    request_id = response.json()["request_id"]
    deadline = time.monotonic() + 10  # the access line is written after the response: later on a loaded machine
    while True:
        lines = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]  # all JSON
        access = [line for line in lines if line.get("request_id") == request_id]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["route"] == "/predict" and access[0]["latency_ms"] > 0
    assert API_KEY not in server.log_text()


def answered(connection: HTTPConnection, method: str, path: str, product: dict[str, str] | None = None) -> str:
    """The body of a 200 answer to ``method path`` (``product`` as JSON) on a kept-alive ``connection``."""
    body, headers = (json.dumps(product), {"Content-Type": "application/json"}) if product else (None, {})
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    text = response.read().decode()
    assert response.status == 200, text
    return text


def connections_to_each_worker(server: Server, workers: int) -> tuple[dict[int, HTTPConnection], int]:
    """One kept-alive connection to each of the server's ``workers`` processes, by pid, opened until each has taken
    one (at most 60), each after a GET /health, whose answer shows it accepted; and the number of those requests."""
    supervisor = psutil.Process(server.process.pid)  # psutil: in the test extras
    port = int(server.url.rsplit(":", 1)[1])
    by_worker: dict[int, HTTPConnection] = {}
    for opened in range(1, 61):
        connection = HTTPConnection("127.0.0.1", port, timeout=30)
        answered(connection, "GET", "/health")
        client_port = connection.sock.getsockname()[1]
        [owner] = [
            child.pid
            for child in supervisor.children(recursive=True)
            for held in child.net_connections(kind="tcp")
            if held.raddr and held.laddr.port == port and held.raddr.port == client_port
        ]
        if owner in by_worker:
            connection.close()
        else:
            by_worker[owner] = connection
        if len(by_worker) == workers:
            return by_worker, opened
    raise AssertionError(f"60 connections went to {len(by_worker)} of the {workers} workers")


def metric_value(exposition: str, sample: str) -> float:
    """The value of ``sample`` (its name and labels as /metrics writes them) in a Prometheus text exposition."""
    [value] = re.findall(rf"^{re.escape(sample)} (\S+)$", exposition, re.MULTILINE)
    return float(value)


def models_served(exposition: str) -> list[tuple[str, float]]:
    """The bundles of ``prodcat_model_info`` in a Prometheus text exposition, with their values."""
    found = re.findall(
        r'^prodcat_model_info\{bundle="([^"]*)",model_version="[^"]+"\} (\S+)$', exposition, re.MULTILINE
    )
    return [(bundle, float(value)) for bundle, value in found]


#: in a fresh interpreter with PROMETHEUS_MULTIPROC_DIR set: a worker killed with a request in flight, serving model
#: v0, then this one serving v1 with a request in flight; what /metrics says then, and once this one has stopped
_A_KILLED_WORKERS_GAUGES = """
import os, re, sys
from prodcat.serve.metrics import ApiMetrics
if os.fork() == 0:
    killed = ApiMetrics()
    killed.serving("b", "v0")
    killed.in_flight.inc()
    os._exit(0)
os.wait()
metrics = ApiMetrics()
metrics.serving("b", "v1")
metrics.in_flight.inc()
print(metrics.render().decode())
metrics.close()
print("=====")
print(ApiMetrics().render().decode())
"""


def test_requests_in_flight_and_the_model_served_count_running_workers_only(tmp_path: Path) -> None:
    """/metrics had no gauge of requests in flight and nothing naming the model served. prodcat_requests_in_flight
    adds up the running workers' (prometheus_client's livesum), prodcat_model_info names each bundle and model_version
    a running worker serves; a worker killed outright (here with a request in flight) is forgotten, and one that
    stops forgets itself."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    said = subprocess.run([sys.executable, "-c", _A_KILLED_WORKERS_GAUGES], capture_output=True, text=True, env=env)
    assert said.returncode == 0, said.stderr
    running, stopped = said.stdout.split("=====")
    assert metric_value(running, "prodcat_requests_in_flight") == 1
    assert 'prodcat_model_info{bundle="b",model_version="v1"} 1.0' in running
    assert "v0" not in running
    assert "\nprodcat_requests_in_flight " not in stopped  # no running worker: none of its requests
    assert "prodcat_model_info{" not in stopped
    assert "process_resident_memory_bytes" not in running  # only the answering worker's could be read: none given


def test_metrics_of_several_workers_count_every_workers_requests(
    tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --workers 2, GET /metrics counted the requests of the worker that answered it alone: a Prometheus scrape
    saw the totals jump up and down as one worker or the other answered. Each worker's /metrics now adds up both,
    in a private folder the server removes as it stops (made in TMPDIR, here a folder of the test's)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    server = Server(tiny_training.bundle, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log", "--workers", "2")
    server.start()
    try:
        workers, health = connections_to_each_worker(server, 2)
        for connection, products in zip(workers.values(), (2, 3), strict=True):
            for i in range(products):
                answered(connection, "POST", "/predict", {"title": f"analog wrist watch {100 + i}"})
            answered(connection, "GET", "/health")
        health += 2
        sample = 'prodcat_requests_total{{method="{}",route="{}",status="200"}}'
        expected = {sample.format("GET", "/health"): health, sample.format("POST", "/predict"): 5}
        expected["prodcat_model_latency_seconds_count"] = 5
        for connection in workers.values():  # each worker's answer counts both workers' requests
            # a request is counted, and leaves the requests in flight, once its answer is sent: the last ones (the
            # other worker's scrape just answered included) may still be, for a moment
            deadline = time.monotonic() + 10
            while True:
                exposition = answered(connection, "GET", "/metrics")
                counted = {name: metric_value(exposition, name) for name in expected}
                in_flight = metric_value(exposition, "prodcat_requests_in_flight")
                if (counted == expected and in_flight == 1) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert counted == expected
            assert "# HELP prodcat_requests_total HTTP requests answered" in exposition
            # the scrape itself is in flight; one model served, said once for both workers
            assert in_flight == 1
            assert models_served(exposition) == [(str(Path(tiny_training.bundle).resolve()), 1.0)]
            connection.close()
        [shared] = tmp_path.glob("prodcat-metrics-*")
        assert {path.name.rsplit("_", 1)[1] for path in shared.iterdir()} >= {f"{pid}.db" for pid in workers}
    finally:
        server.stop()
    assert not shared.exists()


def test_schemathesis_finds_no_server_error(server: Server, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
               "--checks", "not_a_server_error", "--max-examples", "15", "--seed", "1", "--workers", "1",
               "--generation-database", "none", "--header", f"X-API-Key: {API_KEY}", "--no-color",
               "--request-timeout", "30", "--report-dir", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout, result.stdout[-6000:]
    assert httpx.get(f"{server.url}/health").status_code == 200


# ------------------------------------------------------------------------------------------ durability
def test_acknowledged_reviews_survive_sigkill(bundle: Path, heldout: pd.DataFrame, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    server = Server(bundle, db_url, tmp_path / "server.log", "--record-all").start()
    titles = [f"{title} #{i}" for i, title in enumerate(heldout["title"].iloc[:10].tolist() * 3)]

    def predict(title: str) -> int:
        response = httpx.post(f"{server.url}/predict", json={"title": title}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["review_id"]

    try:
        with ThreadPoolExecutor(6) as pool:
            acknowledged = list(pool.map(predict, titles))
        server.kill()  # SIGKILL right after the last acknowledgement: no shutdown, no flush
    finally:
        server.stop()
    assert len(set(acknowledged)) == len(titles)

    restarted = Server(bundle, db_url, tmp_path / "server.log").start()
    try:
        listed = httpx.get(f"{restarted.url}/reviews?status=recorded&limit=500", headers={"X-API-Key": API_KEY}).json()
        pending = httpx.get(f"{restarted.url}/reviews?status=pending&limit=500", headers={"X-API-Key": API_KEY}).json()
    finally:
        restarted.stop()
    stored = {item["id"]: item["title"] for item in listed["items"] + pending["items"]}
    assert set(acknowledged) <= set(stored)
    assert sorted(stored[i] for i in acknowledged) == sorted(titles)
    assert ReviewStore(db_url).count(None) == len(titles)


def test_review_queue_on_postgresql(bundle: Path, heldout: pd.DataFrame, tmp_path: Path, postgres_url: str) -> None:
    server = Server(bundle, postgres_url, tmp_path / "server.log", "--record-all").start()
    try:
        product = heldout.iloc[5]
        body = httpx.post(f"{server.url}/predict", timeout=60, **multipart_product(product)).json()
        review_id = body["review_id"]
        status = "pending" if body["decision"] == "review" else "recorded"
        listed = httpx.get(f"{server.url}/reviews?status={status}&limit=500", headers={"X-API-Key": API_KEY}).json()
        assert review_id in {item["id"] for item in listed["items"]}
        answer = httpx.post(f"{server.url}/reviews/{review_id}", json={"category": top_level(product["category"])},
                            headers={"X-API-Key": API_KEY})  # fmt: skip
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    corrections = load_corrections(postgres_url, image_dir=tmp_path).set_index("product_id")
    row = corrections.loc[f"review-{review_id}"]
    assert row["category"] == top_level(product["category"])
    assert Path(row["image"]).read_bytes() == photo_of(product)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["serve", "/nonexistent/bundle"], "is not a prodcat model bundle"),
        (["serve", "BUNDLE", "--max-pixels", "many"], "--max-pixels / PRODCAT_MAX_PIXELS"),
        (["serve", "BUNDLE", "--review-db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], "--review-db"),
    ],
)
def test_serve_command_fails_fast_with_a_clear_message(bundle: Path, arguments: list[str], message: str) -> None:
    arguments = [str(bundle) if a == "BUNDLE" else a for a in arguments]
    result = subprocess.run([sys.executable, "-m", "prodcat.cli", *arguments], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2 and message in result.stderr


def test_serve_reads_a_bundle_under_a_tilde_the_shell_left(bundle: Path, tmp_path: Path) -> None:
    """`prodcat serve '~/models/x'` said '~/models/x is not a prodcat model bundle', where every other command
    reads ~ as the home folder: the bundle is found (the run then stops at the unreachable review database)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "bundle").symlink_to(bundle, target_is_directory=True)
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    command = [sys.executable, "-m", "prodcat.cli", "serve", "~/bundle", "--review-db", unreachable]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ | {"HOME": str(home)})
    assert result.returncode == 2 and "check --review-db" in result.stderr, result.stderr


#: the names prometheus_client reads its folder of metrics by: the lower-case one when the other is not set
METRICS_DIR_NAMES = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


@pytest.mark.parametrize("variable", METRICS_DIR_NAMES)
def test_serve_refuses_a_metrics_folder_it_cannot_write(
    tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    """A PROMETHEUS_MULTIPROC_DIR that is no folder was refused once the model had loaded, in prometheus_client's
    words naming neither the variable nor what it is for ('[Errno 2] No such file or directory:
    '.../histogram_10483.db''). It is refused before, naming it, exit 2; a folder of the user's is where the workers
    write their metrics, and is left there when the server stops. The same of prometheus_multiproc_dir, which
    prometheus_client still reads: it went unchecked, the check child wrote its file there, and with --workers N the
    workers wrote theirs in a private folder instead (PROMETHEUS_MULTIPROC_DIR, set to it, comes first)."""
    import uvicorn

    import prodcat.serve.logs
    from prodcat.cli import main

    served_with: list[dict[str, str]] = []
    monkeypatch.setattr(
        uvicorn,
        "run",
        lambda app, **options: served_with.append(
            {name: os.environ[name] for name in METRICS_DIR_NAMES if name in os.environ}
        ),
    )
    monkeypatch.setattr(prodcat.serve.logs, "configure_json_logging", lambda level: None)
    folder = tmp_path / "metrics"
    for name in METRICS_DIR_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(folder))
    arguments = ["serve", str(tiny_training.bundle), "--port", "0", "--review-db", f"sqlite:///{tmp_path / 'r.db'}"]
    for workers in ("1", "2"):
        assert main([*arguments, "--workers", workers]) == 2
        assert capsys.readouterr().err == (
            f"error: {variable}={folder} is not a writable folder: the server processes write their metrics there\n"
        )
    assert served_with == []
    folder.mkdir()
    assert main([*arguments, "--workers", "2"]) == 0
    assert served_with == [{variable: str(folder)}] and folder.is_dir()
    # the check child that built the app before the workers start wrote none of its metrics there
    assert list(folder.iterdir()) == []


def _metrics_folder(parent: Path, name: str, *files: str) -> str:
    """A folder ``name`` in ``parent`` holding the empty ``files``; its name."""
    (parent / name).mkdir()
    for file in files:
        (parent / name / file).write_bytes(b"")
    return name


def _ended_pid() -> int:
    """The pid of a process that has ended."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)


@pytest.fixture
def serve_workers(tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """``prodcat serve --workers 2`` of the tiny bundle, ``tmp_path`` its temporary folder, uvicorn stubbed: each
    call serves once (exit 0) and returns the PROMETHEUS_MULTIPROC_DIR of every run so far, as the workers had it."""
    import tempfile

    import uvicorn

    import prodcat.serve.logs
    from prodcat.cli import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in METRICS_DIR_NAMES:
        monkeypatch.delenv(name, raising=False)
    served_with: list[str] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda app, **options: served_with.append(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    )
    monkeypatch.setattr(prodcat.serve.logs, "configure_json_logging", lambda level: None)
    arguments = ["serve", str(tiny_training.bundle), "--port", "0", "--review-db", f"sqlite:///{tmp_path / 'r.db'}"]

    def serve() -> list[str]:
        assert main([*arguments, "--workers", "2"]) == 0
        return served_with

    return serve


def test_each_server_process_logs_the_model_it_serves_once_loaded(tiny_training, tmp_path: Path) -> None:
    """Nothing in the log named the model a server serves, nor said when a worker had loaded it: with --workers N,
    uvicorn's 'Uvicorn running on ...' comes before any worker has (35.8 s before the first answer for models/demo,
    two workers on a busy machine), and after a SIGHUP the replacements load the bundle then on disk. Each process
    now logs 'model loaded' with the bundle, its version, its labels and the seconds it took."""
    server = Server(tiny_training.bundle, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log", "--workers", "2")
    server.start()
    try:
        version = httpx.get(f"{server.url}/model", timeout=10).json()["version"]
        deadline = time.monotonic() + 60  # the second worker may still be loading
        while len(loaded := [line for line in server.log_text().splitlines() if '"model loaded"' in line]) < 3:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.3)
    finally:
        server.stop()
    # the two workers', and that of the process that checked the bundle before they started
    for line in map(json.loads, loaded):
        assert line["model_version"] == version and line["bundle"] == str(tiny_training.bundle.resolve())
        assert line["labels"] > 1 and line["load_s"] >= 0 and line["level"] == "info"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_server_of_one_process_stopped_by_sigterm_or_sighup_shuts_down_and_exits_0(
    tiny_training, tmp_path: Path, signum: int
) -> None:
    """One server process (no --workers) shut down on SIGTERM, then uvicorn raised it again and it died of it (-15,
    143 in a shell): its exit handlers unrun (the temporary folder of its ONNX exports left behind), and a stop
    answered differently than with --workers 2, which exits 0. SIGHUP (`systemctl reload`, a closed terminal) killed
    it at once (-1), the requests in flight unanswered. Both now stop it gracefully, exit 0, SIGHUP saying why it
    stops rather than reloads."""
    server = Server(tiny_training.bundle, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log").start()
    assert server.process is not None
    try:
        server.process.send_signal(signum)
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop()
    log = server.log_text()
    assert "Application shutdown complete." in log
    assert ("SIGHUP: stopping, the requests in flight answered first" in log) is (signum == signal.SIGHUP)


def test_a_server_of_several_workers_refuses_new_connections_once_stopping(tiny_training, tmp_path: Path) -> None:
    """`prodcat serve --workers 2` stopped by SIGTERM while a request was in flight (here a client slow to send its
    body, answered 408 at --request-timeout-s) still took new connections until every worker had ended: its
    supervisor held the port open, no process read them, and each waited unanswered, then was reset (on models/demo,
    a request sent 1.5 s after the SIGTERM, 28.7 s later). A server of one process refused them at once.
    Now the supervisor closes the port as it stops: a new connection is refused while the request in flight is
    still being answered, and that request still gets its answer."""
    server = Server(tiny_training.bundle, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log")
    server.flags = ("--workers", "2", "--request-timeout-s", "15")
    server.start()
    assert server.process is not None
    host, port = server.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=60)
    try:
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b'Content-Length: 40\r\n\r\n{"title":')  # fmt: skip
        deadline = time.monotonic() + 30
        while metric_value(httpx.get(f"{server.url}/metrics", timeout=10).text, "prodcat_requests_in_flight") < 2:
            assert time.monotonic() < deadline, "the slow request never reached a worker"
            time.sleep(0.1)
        server.process.send_signal(signal.SIGTERM)
        refused_while_answering = False
        # until the slow request is answered: then the workers end, and the port closes with the supervisor
        while not select.select([slow], [], [], 0.1)[0]:
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
            except ConnectionRefusedError:
                refused_while_answering = not select.select([slow], [], [], 0)[0]
                break
        answer = slow.recv(65536).decode("latin-1")
        exit_code = server.process.wait(timeout=60)
    finally:
        slow.close()
        server.stop()
    assert refused_while_answering, server.log_text()[-3000:]
    assert answer.startswith("HTTP/1.1 408 "), answer
    assert exit_code == 0


def test_a_server_of_one_process_logs_at_the_level_asked(tiny_training, tmp_path: Path) -> None:
    """`prodcat serve --log-level warning` (or error) still logged a line per request, at info, and --log-level
    debug none of prodcat's debug lines: the command line had set prodcat's loggers to info before the server's
    logging was set (with --workers N, the workers, processes of their own, were at the level asked)."""
    server = Server(tiny_training.bundle, f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log")
    server.flags = ("--log-level", "warning")
    server.start()
    try:
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/reviews", timeout=10).status_code == 401  # logged at info: no line
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    assert lines == [line for line in lines if line["level"] in ("warning", "error", "critical")]


def test_a_sighup_restart_gives_each_new_worker_the_time_to_load_the_model(
    tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGHUP to `prodcat serve --workers 2` (a bundle replaced on disk) restarts the workers one by one, each old
    one stopped once its replacement serves. uvicorn waited 5 s for that, which loading models/demo outlasts on a
    busy machine (21 s seen): 'New child process ... was not ready in time; keeping worker ... and aborting the
    restart', the old model served on. --worker-start-timeout-s (PRODCAT_WORKER_START_TIMEOUT_S) is that time now,
    120 s unless given."""
    import uvicorn

    import prodcat.serve.logs
    from prodcat.cli import main

    waited: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: waited.append(options["timeout_worker_healthcheck"]))
    monkeypatch.setattr(prodcat.serve.logs, "configure_json_logging", lambda level: None)
    for name in METRICS_DIR_NAMES:
        monkeypatch.delenv(name, raising=False)
    arguments = ["serve", str(tiny_training.bundle), "--port", "0", "--review-db", f"sqlite:///{tmp_path / 'r.db'}"]
    arguments += ["--workers", "2"]
    assert main(arguments) == main([*arguments, "--worker-start-timeout-s", "300"]) == 0
    monkeypatch.setenv("PRODCAT_WORKER_START_TIMEOUT_S", "45")
    assert main(arguments) == 0
    assert waited == [120, 300, 45]


def test_serve_removes_the_metrics_folders_of_servers_killed_outright(
    serve_workers: Callable[[], list[str]], tmp_path: Path
) -> None:
    """A server of several workers killed outright (SIGKILL, the OOM killer) left its private folder of metrics in
    the temporary folder for good, one more at each such end. The next start removes those whose supervisor and
    workers have all ended; not one of a server still running, by its supervisor (the pid in the folder's name) or
    by a worker left running when its supervisor was killed (the pid a file of it is named after), nor one of another
    host, nor one holding anything but files of metrics."""
    ended, alive, host = _ended_pid(), os.getpid(), machine()
    folder = functools.partial(_metrics_folder, tmp_path)
    folder(f"prodcat-metrics-{host}-{ended}-killed", f"counter_{ended}.db", f"histogram_{ended}.db")
    folder(f"prodcat-metrics-{host}-{ended}-beforeanyworker")
    kept = {
        folder(f"prodcat-metrics-{host}-{alive}-running", f"counter_{ended}.db"),
        folder(f"prodcat-metrics-{host}-{ended}-orphanedworker", f"counter_{ended}.db", f"histogram_{alive}.db"),
        folder(f"prodcat-metrics-elsewhere.example-{ended}-otherhost", f"counter_{ended}.db"),
        folder(f"prodcat-metrics-{host}-{ended}-notes", f"counter_{ended}.db", "notes.txt"),
    }
    [own] = serve_workers()
    assert {path.name for path in tmp_path.glob("prodcat-metrics-*")} == kept
    # the server's own, named after its supervisor, was in the same folder and is removed as it stops
    assert Path(own).parent == tmp_path and Path(own).name.startswith(f"prodcat-metrics-{host}-{alive}-")
    assert not Path(own).exists()


def test_serve_keeps_the_metrics_folder_the_user_names_whatever_its_name(
    serve_workers: Callable[[], list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PROMETHEUS_MULTIPROC_DIR named as a killed server's private folder (one left by a server killed outright,
    given again to keep its counts) was removed by the start as a killed server's, after the check that it is a
    folder: every worker then died at its first metric ('No such file or directory: .../histogram_PID.db') and
    uvicorn started others, which died alike, until stopped. The folder the user names is the server's: kept, and
    served with; a killed server's beside it is still removed."""
    ended, host = _ended_pid(), machine()
    chosen = tmp_path / _metrics_folder(tmp_path, f"prodcat-metrics-{host}-{ended}-chosen", f"counter_{ended}.db")
    _metrics_folder(tmp_path, f"prodcat-metrics-{host}-{ended}-killed", f"counter_{ended}.db")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(chosen))
    assert serve_workers() == [str(chosen)]
    assert [path.name for path in tmp_path.glob("prodcat-metrics-*")] == [chosen.name]
    assert [path.name for path in chosen.iterdir()] == [f"counter_{ended}.db"]


@pytest.mark.parametrize("variable", METRICS_DIR_NAMES)
def test_serve_refuses_an_empty_metrics_folder_variable(
    tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    """PROMETHEUS_MULTIPROC_DIR set but empty (``PROMETHEUS_MULTIPROC_DIR= prodcat serve MODEL``) was taken: with one
    worker prometheus_client then wrote counter_PID.db and histogram_PID.db in the current folder at every start (in
    the bundle's, for a server started there, which then refused to load it). It is refused before the model loads,
    exit 2, whatever the number of workers; prometheus_multiproc_dir too, which prometheus_client reads alike."""
    import uvicorn

    from prodcat.cli import main

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: pytest.fail("the server started"))
    for name in METRICS_DIR_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "")
    monkeypatch.chdir(tmp_path)
    arguments = ["serve", str(tiny_training.bundle), "--port", "0", "--review-db", f"sqlite:///{tmp_path / 'r.db'}"]
    for workers in ("1", "2"):
        assert main([*arguments, "--workers", workers]) == 2
        assert capsys.readouterr().err == (
            f"error: {variable} is set but empty: give the folder the server processes write their metrics in, or "
            "unset it\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_review_queue_inside_a_model_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite review queue inside a bundle (--review-db sqlite:///MODEL/reviews.db, or the default
    ./prodcat-reviews.db with the server started in the bundle's folder) was written there with its -wal and -shm
    files, and the bundle refused to load at the next start ('unexpected files'). It is refused before anything is
    written, in one line; a queue beside the bundle is not."""
    from prodcat.cli import main
    from prodcat.serve.command import _review_database_in_bundle

    bundle = tmp_path / "model"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"format_version": 3, "files": {}}))
    refusal = (
        "error: --review-db {path} is inside the model bundle {bundle}, which holds its own files only (with another "
        "there it no longer loads): write it elsewhere"
    )
    with socket.socket() as probe:  # a free port: the port is checked first
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    inside = bundle / "reviews.db"
    assert main(["serve", str(bundle), "--port", port, "--review-db", f"sqlite:///{inside}"]) == 2
    assert capsys.readouterr().err == refusal.format(path=inside, bundle=bundle) + "\n"
    monkeypatch.chdir(bundle)
    monkeypatch.delenv("PRODCAT_REVIEW_DB")  # the flag's, as serve exports it for its workers: the default now
    assert main(["serve", ".", "--port", port]) == 2
    assert capsys.readouterr().err == refusal.format(path="prodcat-reviews.db", bundle=".") + "\n"
    assert sorted(path.name for path in bundle.iterdir()) == ["manifest.json"]
    assert _review_database_in_bundle(f"sqlite:///{tmp_path / 'reviews.db'}", str(bundle)) is None
    assert _review_database_in_bundle("sqlite+pysqlite:///:memory:", str(bundle)) is None
    assert _review_database_in_bundle("postgresql+psycopg://u@h/db", str(bundle)) is None


def test_serve_starts_beside_a_metrics_folder_named_after_no_possible_pid(
    serve_workers: Callable[[], list[str]], tmp_path: Path
) -> None:
    """A folder of the temporary folder named as a server's private folder of metrics but after a pid no process
    can have (beyond a C int) stopped every start of ``prodcat serve`` with a traceback, OverflowError from the check
    of that pid, once the model had been checked. No run made it: it is kept, and the server starts."""
    host = machine()
    kept = {
        _metrics_folder(tmp_path, f"prodcat-metrics-{host}-{2**64}-huge"),
        _metrics_folder(tmp_path, f"prodcat-metrics-{host}-{_ended_pid()}-hugefile", f"counter_{2**64}.db"),
    }
    [own] = serve_workers()
    assert {path.name for path in tmp_path.glob("prodcat-metrics-*")} == kept
    assert not Path(own).exists()


def test_serve_keeps_the_metrics_folder_of_a_server_in_another_pid_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server in a pid namespace of its own (a container of the same host name, as ``docker run --network host``
    gives, sharing /tmp) named its private folder of metrics after the host and its pid there, which reads as ended
    here: a start here removed the folder of that running server. Made by the same code in a namespace of its own
    (unshare, as a container would), its folder is kept while it runs."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    server = (
        "import os, sys, time; from prodcat.serve.command import _metrics_of_every_worker as m\n"
        "with m():\n    print(os.environ['PROMETHEUS_MULTIPROC_DIR'], flush=True); sys.stdin.read()"
    )
    # a pid high in the namespace's numbering, which no process here is likely to have
    inner = (
        f"echo {pid_max - 50} > /proc/sys/kernel/ns_last_pid && {shlex.quote(sys.executable)} -c {shlex.quote(server)}"
    )
    command = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "sh", "-c", inner]
    env = os.environ | {"TMPDIR": str(tmp_path)}
    process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(process.stdout.readline().strip())
        if not folder.name:
            pytest.skip("no pid namespace of one's own here (unshare refused)")
        pid = int(folder.name.rsplit("-", 2)[1])
        if psutil.pid_exists(pid):
            pytest.skip(f"pid {pid} runs here too")
        import tempfile

        from prodcat.serve.command import _remove_abandoned_metrics_folders

        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        _remove_abandoned_metrics_folders()
        assert folder.is_dir()
    finally:
        process.communicate("", timeout=60)
    assert not folder.exists()  # removed by the server itself as it stops


def test_what_onnxruntime_writes_on_stderr_as_it_starts_is_logged_as_json(tmp_path: Path) -> None:
    """A server in a container (a read-only home) wrote onnxruntime's '[W:onnxruntime:Default, telemetry_1ds.cc:613
    operator()] Failed to persist telemetry device ID' in ANSI colours, plain text in its JSON log: onnxruntime writes
    it on file descriptor 2 as it is imported, through no Python logger. The server imports it before loading the
    model, and logs what it wrote, one JSON record a line, at the level its letter says."""
    code = (
        "import os\nfrom prodcat.serve import logs\nlogs.configure_json_logging('info')\n"
        "logs.import_native_libraries_logged()\nwith logs.native_stderr_logged('onnxruntime'):\n"
        "    os.write(2, b'\\x1b[0;93m[E:onnxruntime:Default, x.cc:1] broken\\x1b[m\\n')\n"
    )
    # HOME: where onnxruntime cannot persist its telemetry device ID; CI left out: with it set (as .ci/run sets it)
    # onnxruntime has no telemetry, and so writes nothing as it starts
    read_only_home = {**{k: v for k, v in os.environ.items() if k != "CI"}, "HOME": "/proc"}
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=read_only_home)
    assert said.returncode == 0, said.stderr
    records = [json.loads(line) for line in said.stderr.splitlines()]  # JSON lines only
    assert [(record["logger"], record["level"]) for record in records][-1] == ("onnxruntime", "error")
    assert records[-1]["message"] == "[E:onnxruntime:Default, x.cc:1] broken"
    telemetry = [record for record in records if "telemetry" in record["message"]]
    assert [(record["logger"], record["level"]) for record in telemetry] == [("onnxruntime", "warning")]
    assert "\x1b" not in said.stderr


def test_what_native_code_wrote_before_an_exception_is_logged_and_stderr_given_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library's own error line written on fd 2 just before it raised (an import failing with something other than
    ImportError) was lost with the file it had been taken into: only the lines of a block that ended normally were
    logged. They are logged whatever the block ends with, and fd 2 is given back."""
    from prodcat.serve.logs import native_stderr_logged

    before = os.fstat(2)
    logged = caplog.at_level("WARNING", logger="onnxruntime")
    with logged, pytest.raises(RuntimeError, match="failed"), native_stderr_logged("onnxruntime"):
        os.write(2, b"[E:onnxruntime:Default, x.cc:1] the real reason\n")
        raise RuntimeError("failed")
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("ERROR", "[E:onnxruntime:Default, x.cc:1] the real reason")
    ]
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)

"""The API's input checks and error mapping, in-process (no model, no server process): what a request costs
before it is refused, and what a failing review store answers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import fastapi.applications
import httpx
import hypothesis
import pandas as pd
import pytest
import schemathesis
import sqlalchemy as sa
import starlette.formparsers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr, ValidationError
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.exc import OperationalError
from starlette.datastructures import FormData, Headers, UploadFile

from conftest import REPO_ROOT, TinyTraining
from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.cli import main
from prodcat.image.formats import avif_decoded, decoded_image_types
from prodcat.predict import Prediction
from prodcat.review.store import NewReview, ReviewStore, load_corrections
from prodcat.serve import inputs, service
from prodcat.serve.app import create_app
from prodcat.serve.inputs import ApiError, ProductRequest, batch_items_from_form, batch_items_from_json
from prodcat.serve.schemas import MAX_PRODUCT_ID_CHARS, MAX_SPECIFICATIONS
from prodcat.serve.settings import ServeSettings

API_KEY = "inputs-test-key"
#: a request limit that every answer not held back on purpose meets on a loaded CI machine (a 0.1 s one failed at
#: load average 13 on 2 cores): a test of the timeout holds its request past the limit with an event, not a race
LOADED_MACHINE_TIMEOUT_S = 3.0


def test_a_photo_part_named_by_every_item_is_read_and_checked_once(
    monkeypatch: pytest.MonkeyPatch, jpeg_bytes: Callable[..., bytes]
) -> None:
    checks: list[int] = []
    real_check = inputs.check_image_bytes

    def counted_check(data: bytes, settings: ServeSettings) -> str:
        checks.append(len(data))
        return real_check(data, settings)

    monkeypatch.setattr(inputs, "check_image_bytes", counted_check)
    settings = ServeSettings()
    products = [{"title": f"mug {i}", "image": "shared"} for i in range(settings.max_batch_items)]
    photo = UploadFile(io.BytesIO(jpeg_bytes()), filename="a.jpg", headers=Headers({"content-type": "image/jpeg"}))
    form = FormData([("products", json.dumps(products)), ("shared", photo)])

    items = asyncio.run(batch_items_from_form(form, settings))

    assert all(isinstance(item, ProductRequest) and item.image_type == "jpeg" for item in items)
    assert len(items) == settings.max_batch_items and len(checks) == 1
    assert all(item.image_bytes is items[0].image_bytes for item in items)  # one copy, shared


@pytest.mark.parametrize(
    ("body", "max_items", "status", "error", "detail"),
    [
        # many tiny objects or arrays: refused past what the products (and their specifications) hold,
        # before any of them is built
        ("[" + ",".join(["{}"] * 200_000) + "]", 64, 413, "max_batch_items", "opens 200001 JSON arrays and objects"),
        ("[" + ",".join(["[]"] * 1_000_000) + "]", 64, 413, "max_batch_items", "64 product(s) hold at most 64129"),
        # longer than max_batch_items products of the longest texts could be, escaped
        (json.dumps([{"title": "mug", "description": " " * 24_000_000}]), 64, 413, "max_batch_items", "bytes"),
        # deeper than the parser recurses: too many containers for 64 products...
        ("[" * 100_000, 64, 413, "max_batch_items", "opens 100000 JSON arrays"),
        # ... and, where they leave room for it, malformed, not a server error
        ("[" * 2_001, 64, 422, "invalid_json", "nested too deeply"),
        # a number too long for Python to convert: said so, not Python's advice to its own programmers
        ('[{"title": "mug", "product_id": ' + "9" * 5_000 + "}]", 64, 422, "invalid_json", "a number of 5000 digits"),
    ],
)
def test_json_batches_are_refused_before_they_cost_memory(
    body: str, max_items: int, status: int, error: str, detail: str
) -> None:
    with pytest.raises(ApiError) as refused:
        batch_items_from_json(body.encode(), ServeSettings(max_batch_items=max_items))
    assert (refused.value.status, refused.value.error) == (status, error)
    assert detail in refused.value.detail


def test_json_products_are_measured_before_they_are_parsed() -> None:
    """Brackets inside strings (escaped quotes included) are text, not arrays: only real containers count."""
    settings = ServeSettings()
    text = 'a \\"quoted\\" [{' * 500  # a description full of brackets, with escaped quotes before them
    product = inputs.product_from_json(json.dumps({"title": "mug", "description": text}).encode(), settings)
    assert product.description == text
    batch = json.dumps([{"title": "mug", "description": text, "specifications": {"Type": "[x]"}}] * 64)
    assert len(batch_items_from_json(batch.encode(), settings)) == 64

    nested = json.dumps({"title": "mug", "specifications": {"Type": "Mug"}, "tags": [[]] * 2000})
    with pytest.raises(ApiError) as refused:
        inputs.product_from_json(nested.encode(), settings)
    assert (refused.value.status, refused.value.error) == (422, "invalid_json")
    assert "opens 2003 JSON arrays and objects" in refused.value.detail
    huge = json.dumps({"title": "mug", "description": "x" * 400_000})
    with pytest.raises(ApiError) as refused:
        inputs.product_from_json(huge.encode(), settings)
    assert (refused.value.status, refused.value.limit) == (413, "max_text_chars")
    # said in a sentence (it was 'the JSON body of 400035 bytes: 1 product(s) of the longest texts take at most
    # 364096 exceeds the limit ...')
    assert refused.value.detail == (
        "the JSON body of 400035 bytes (more than the 364096 that 1 product with texts of at most 10000 characters can "
        "take) exceeds the limit max_text_chars=10000"
    )


def test_a_text_too_long_is_422_naming_its_field_and_a_body_too_long_413_naming_its_part(tmp_path: Path) -> None:
    """max_text_chars refuses a field too long (422, the title or description and its length) and, before parsing, a
    JSON body or field of more bytes than a product within it can be (413, a request entity too large), each said as
    the OpenAPI document says, which had 'text too long' under 422 only. A multipart batch's products field was
    called 'a JSON batch', and the texts' limit went unsaid in characters."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), ServeSettings(max_text_chars=20), store)) as client:
        title = client.post("/predict", json={"title": "a ceramic mug, 350 ml"})
        assert (title.status_code, title.json()["error"], title.json()["detail"]) == (
            422,
            "max_text_chars",
            "title of 21 characters exceeds the limit max_text_chars=20",
        )
        padded = b'{"title": "mug"' + b" " * 5_000 + b"}"
        body = client.post("/predict", content=padded, headers={"content-type": "application/json"})
        assert (body.status_code, body.json()["error"], body.json()["detail"]) == (
            413,
            "max_text_chars",
            "the JSON body of 5016 bytes (more than the 4816 that 1 product with texts of at most 20 characters can "
            "take) exceeds the limit max_text_chars=20",
        )
        products = json.dumps([{"title": "mug", "description": "x" * 310_000}])
        field = client.post("/predict-batch", files={"products": (None, products)})
        assert (field.status_code, field.json()["error"]) == (413, "max_batch_items")
        assert field.json()["detail"] == (
            f"the products field of {len(products)} bytes (more than the 308224 that 64 products with texts of at most "
            "20 characters can take) exceeds the limit max_batch_items=64"
        )
        documented = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]
        assert "`max_text_chars` for a JSON body or field of more bytes" in documented["413"]["description"]
        assert "a field too long (`max_text_chars`: a title" in documented["422"]["description"]


class OneCategoryModel:
    """A stand-in for the predictor: every product is in its first category, with low confidence (so it goes to
    review). ``level``: the depth its labels were cut at in training (``None``: full paths)."""

    def __init__(self, labels: tuple[str, str] = ("Kitchen > Mugs", "Home > Decor"), level: int | None = None) -> None:
        self.labels = list(labels)
        self.manifest: dict[str, Any] = {"config": {"level": level}}
        self.version = "test"

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Any]:
        first, second = self.labels
        top = [{"category": first, "probability": 0.6}, {"category": second, "probability": 0.4}]
        return [Prediction(pid, first, 0.6, "review", top[:top_k], ["text"]) for pid in frame["product_id"]]


def mug_for_review(photo: bytes | None = None) -> NewReview:
    """A prediction queued for review as /predict records it, written straight to a store: a test of the store's
    routes needs no request that must answer in time first."""
    top_k = [{"category": "Kitchen > Mugs", "probability": 0.6}]
    image_type = "jpeg" if photo is not None else None
    return NewReview("seed", "test", "mug", "", "Kitchen > Mugs", 0.6, "review", top_k, None, photo, image_type)


class BrokenStore(ReviewStore):
    """A review store whose database went away after start-up."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    items = count = get = image = submit = record_many = _fail


@pytest.fixture
def client(tmp_path) -> TestClient:
    settings = ServeSettings(api_key=API_KEY)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        yield client


def test_a_text_or_photo_at_its_limit_is_served_and_one_more_is_refused(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """max_text_chars and max_image_bytes are the longest text and the largest photo served: the limits were tested
    one past them only, so a server refusing at the limit itself passed."""
    photo = jpeg_bytes()
    settings = ServeSettings(max_text_chars=12, max_image_bytes=len(photo))
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:

        def answer(title: str, description: str = "", image: bytes | None = None) -> tuple[int, str | None]:
            product = {"title": title, "description": description}
            if image:  # multipart
                response = client.post("/predict", data=product, files={"image": ("a.jpg", image, "image/jpeg")})
            else:
                response = client.post("/predict", json=product)
            return response.status_code, response.json().get("error")

        assert answer("ceramic mugs") == answer("mug", "a" * 12) == answer("mug", image=photo) == (200, None)
        assert answer("ceramic mugs!") == answer("mug", "a" * 13) == (422, "max_text_chars")
        assert answer("mug", image=photo + b"\0") == (413, "max_image_bytes")


def test_a_photo_of_max_pixels_is_served_and_one_row_more_is_refused(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """max_pixels, the largest photo by width x height, was tested far past the limit only (a 20,000 x 20,000 bomb)."""
    settings = ServeSettings(max_pixels=64 * 48)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        for size, expected in (((64, 48), (200, None)), ((64, 49), (413, "max_pixels"))):
            photo = ("a.jpg", jpeg_bytes(size), "image/jpeg")
            response = client.post("/predict", data={"title": "mug"}, files={"image": photo})
            assert (response.status_code, response.json().get("error")) == expected, size


def test_a_photo_past_pillows_own_limit_is_refused_naming_its_size(
    client: TestClient, png_bomb_bytes: Callable[[int, int], bytes]
) -> None:
    """A photo over twice Pillow's decompression-bomb limit (179 M pixels), a 20,000 x 20,000 PNG, was refused as
    'image of more than 178956970 pixels': Pillow's threshold, not the photo's size (the app names it)."""
    bomb = ("poster.png", png_bomb_bytes(20_000, 20_000), "image/png")
    response = client.post("/predict", data={"title": "poster"}, files={"image": bomb})
    assert (response.status_code, response.json()["detail"]) == (
        413,
        "image of 20000x20000 pixels exceeds the limit max_pixels=50000000",
    )


def test_a_webp_past_pillows_own_limit_is_refused_naming_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WebP's Pillow plugin refuses a photo over twice Pillow's limit itself, while opening it: such a photo was
    refused as 'image of more than 178956970 pixels', Pillow's threshold, where a PNG says its size."""
    photo = io.BytesIO()
    Image.new("RGB", (100, 70), (200, 30, 30)).save(photo, "WEBP")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000)  # refused by the plugin above 6,000 px: this 7,000 px one
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), ServeSettings(max_pixels=5_000), store)) as client:
        image = {"image": ("poster.webp", photo.getvalue(), "image/webp")}
        response = client.post("/predict", data={"title": "poster"}, files=image)
    assert (response.status_code, response.json()["detail"]) == (
        413,
        "image of 100x70 pixels exceeds the limit max_pixels=5000",
    )
    # with max_pixels above the plugin's own limit, the refusal is the plugin's: it said max_pixels=10000 was exceeded
    with TestClient(create_app(OneCategoryModel(), ServeSettings(max_pixels=10_000), store)) as client:
        response = client.post("/predict", data={"title": "poster"}, files=image)
    assert (response.status_code, response.json()["detail"]) == (
        413,
        "image of 100x70 pixels exceeds the 6000 pixels a WEBP photo is opened to (max_pixels=10000)",
    )


def test_product_ids_and_corrections_the_review_store_cannot_hold_are_refused(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    form = {"title": "mug", "product_id": "p" * 257}
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    refused = client.post("/predict", data=form, files=photo)  # multipart: the JSON schema's limit did not apply
    assert (refused.status_code, refused.json()["error"]) == (422, "product_id_length")
    refused = client.post("/predict", json={"title": "mug", "product_id": "a\x00b"})
    assert (refused.status_code, refused.json()["error"]) == (422, "text_nul")

    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    keyed = {"X-API-Key": API_KEY}
    for category in ("   ", "Kitchen\x00"):
        refused = client.post(f"/reviews/{review_id}", json={"category": category}, headers=keyed)
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request"), category
    assert client.post(f"/reviews/{review_id}", json={"category": "Kitchen > Mugs"}, headers=keyed).status_code == 200


def test_a_photo_shared_by_batch_items_is_decoded_once_and_fails_them_all(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: Callable[..., bytes]
) -> None:
    decoded: list[int] = []
    real_check = service.check_image_content

    def counted_check(data: bytes, settings: ServeSettings, side: int | None) -> bytes:
        decoded.append(len(data))
        return real_check(data, settings, side)

    monkeypatch.setattr(service, "check_image_content", counted_check)
    items = json.dumps([{"title": f"mug {i}", "image": "shared"} for i in range(64)])
    for photo, outcome in ((jpeg_bytes(), "prediction"), (jpeg_bytes()[:200], "error")):
        decoded.clear()
        answer = client.post("/predict-batch", data={"products": items}, files={"shared": ("a.jpg", photo)})
        results = answer.json()["results"]
        assert [sorted(k for k, v in r.items() if v is not None) for r in results] == [sorted(["index", outcome])] * 64
        assert len(decoded) == 1
    assert {r["error"]["error"] for r in answer.json()["results"]} == {"image_corrupt"}


@pytest.mark.parametrize("endpoint", ["/predict", "/predict-batch", "/explain"])
def test_work_in_threads_answers_504_at_the_request_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: Callable[..., bytes], endpoint: str
) -> None:
    """The timeout holds for photo checks and explanations, which run in threads that cannot be cancelled. A photo
    check has its share of the request's time: a photo past it was a 504 for its whole request, the other products of
    a batch unanswered; it is now its own error, 504 image_check_timeout (in a batch, that item's: 200). /explain,
    which checked its photo inside the explanation, answered the request's 504 timeout: it now answers as /predict."""
    release = threading.Event()

    def stuck(*args: Any) -> None:
        release.wait(30)

    monkeypatch.setattr(service, "check_image_content", stuck)
    settings = ServeSettings(request_timeout_s=0.5)
    batch = endpoint == "/predict-batch"
    fields = {"products": json.dumps([{"title": "mug", "image": "p"}])} if batch else {"title": "mug"}
    part = "p" if batch else "image"
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        started = time.monotonic()
        answer = client.post(endpoint, data=fields, files={part: ("a.jpg", jpeg_bytes())})
        waited = time.monotonic() - started
        release.set()
    error = answer.json()["results"][0]["error"] if batch else answer.json()
    expected = {"/predict": 504, "/predict-batch": 200, "/explain": 504}[endpoint]
    assert (answer.status_code, error["status"], error["error"]) == (expected, 504, "image_check_timeout"), answer.text
    assert waited < 10  # the stuck check would hold the answer for 30 s
    assert "review queue" not in error["detail"]  # nothing is on its way to it


def test_photo_checks_of_concurrent_requests_run_no_more_at_once_than_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: Callable[..., bytes]
) -> None:
    """Each request checked its photo on its own thread, up to anyio's 40: a PNG is decoded in full (150 MB at
    max_pixels), and 24 concurrent uploads of a 143 KB one held the server at 5 GB. At most the cores now run."""
    slots, requests = 2, 5
    monkeypatch.setattr(service, "PHOTO_CHECKS_AT_ONCE", slots)
    running, peak = 0, 0
    lock = threading.Lock()
    all_slots_busy, more_than_the_slots = threading.Event(), threading.Event()

    def check(*args: Any) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running >= slots:
                all_slots_busy.set()
            if running > slots:
                more_than_the_slots.set()
        # the first checks wait for each other, then leave room for one past the slots to start beside them
        all_slots_busy.wait(10)
        more_than_the_slots.wait(1)
        with lock:
            running -= 1

    monkeypatch.setattr(service, "check_image_content", check)
    settings = ServeSettings(request_timeout_s=60)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:

        def post() -> int:
            return client.post("/predict", data={"title": "mug"}, files={"image": ("a.jpg", jpeg_bytes())}).status_code

        with ThreadPoolExecutor(requests) as pool:
            statuses = list(pool.map(lambda _: post(), range(requests)))
    assert statuses == [200] * requests
    assert peak == slots


def test_an_explanation_of_more_words_than_the_server_allows_is_refused_before_the_model_runs() -> None:
    """/explain?max_words=100 was taken (up to 100): each word is one more model pass over the whole text, and 100
    took a median 55 s on a loaded 2-core machine, past the request timeout, holding the one explanation slot and
    the CPU. Above max_explain_words it is refused at once, naming the limit; the default fits a lower limit."""
    model_calls = "prodcat_model_latency_seconds_count"
    for limit, default_words in ((60, 60), (10, 10)):
        settings = ServeSettings(max_explain_words=limit)
        with TestClient(create_app(OneCategoryModel(), settings, ReviewStore("sqlite://"))) as client:
            refused = client.post(f"/explain?max_words={limit + 1}", json={"title": "mug"})
            assert (refused.status_code, refused.json()["error"]) == (422, "max_explain_words"), refused.text
            assert (refused.json()["limit"], refused.json()["limit_value"]) == ("max_explain_words", limit)
            assert refused.json()["detail"].startswith(f"max_words={limit + 1} exceeds the limit")
            assert f"{model_calls} 0.0" in client.get("/metrics").text  # refused before the model ran
            words = " ".join(f"word{i}" for i in range(70))
            for query in (f"?max_words={limit}", ""):
                explained = client.post(f"/explain{query}", json={"title": words})
                assert explained.status_code == 200, explained.text
                assert len(explained.json()["words"]["weights"]) == default_words
            documented = client.get("/openapi.json").json()["paths"]["/explain"]["post"]
            (max_words,) = [parameter for parameter in documented["parameters"] if parameter["name"] == "max_words"]
            assert (max_words["schema"]["maximum"], max_words["schema"]["default"]) == (limit, default_words)
            # its 422 reasons listed it as they list the others' (the refusal's error code in backticks)
            reasons = documented["responses"]["422"]["description"]
            assert f"`max_explain_words` ({limit}), refused before the model runs (`max_explain_words`)" in reasons


def test_an_explanation_whose_client_left_before_its_turn_is_not_run() -> None:
    """One explanation runs at a time, each holding the model for seconds (about 3 s on models/demo, 20 s with e5).
    One whose client had left (a client's timeout, often retried) still ran when its turn came, for no one: in a
    soak of models/demo, explanations of clients gone after 0.05 s queued up and made those of waiting clients time
    out (504 at 30 s). The client gone, it is not run: 499 (as a client gone while sending its body), the model
    untouched, nothing sent."""
    app = create_app(OneCategoryModel(), ServeSettings(), ReviewStore("sqlite://"))
    body = json.dumps({"title": "blue ceramic mug"}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/explain", "raw_path": b"/explain", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # the body, then the client is gone
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    with TestClient(app) as client:
        exposition = client.get("/metrics").text
        assert client.post("/explain", json={"title": "blue ceramic mug"}).status_code == 200  # a client who waits
    assert sent == []
    assert 'prodcat_requests_total{method="POST",route="/explain",status="499"} 1.0' in exposition
    assert "prodcat_model_latency_seconds_count 0.0" in exposition


def test_a_504_says_when_its_predictions_may_still_be_recorded_for_review(tmp_path: Path) -> None:
    """A prediction's review record, written after its request answered 504, was not said: the client could not
    know that sending the product again would put it in the queue twice."""
    release = threading.Event()

    class SlowWrites(ReviewStore):
        def record_many(self, reviews: list[NewReview]) -> list[int]:
            release.wait(15)
            return super().record_many(reviews)

    store = SlowWrites(f"sqlite:///{tmp_path / 'reviews.db'}")
    settings = ServeSettings(request_timeout_s=LOADED_MACHINE_TIMEOUT_S)
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        alone = client.post("/predict", json={"title": "mug"}, headers={"X-Request-ID": "alone"})
        batch = client.post("/predict-batch", json=[{"title": "mug"}, {"title": "lamp"}])
        release.set()
    assert (alone.status_code, batch.status_code) == (504, 504)
    assert alone.json()["detail"] == (
        f"the request was not answered within the limit request_timeout_s={LOADED_MACHINE_TIMEOUT_S}; the review "
        "queue may still record "
        "1 of its predictions (request_id alone): sent again, they would be recorded twice"
    )
    assert "the review queue may still record 2 of its predictions" in batch.json()["detail"]
    # and it does: the write under way ends (the batch's, queued behind it, went with its request)
    _until(lambda: store.count(None) >= 1, "the record under way was not written")


def test_specifications_reach_the_model_as_the_flipkart_loader_writes_its_table(
    client: TestClient, tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A seller's attributes sent as JSON or multipart read as a trained product's specification table did."""
    cell = (
        '{"product_specification"=>[{"key"=>"Type", "value"=>"Bath Towel"}, {"key"=>"GSM", "value"=>"500"}, '
        '{"value"=>"Pack of 3"}, {"key"=>"Pack of", "value"=>"3"}, {"key"=>"Pack of", "value"=>"4"}, '
        '{"key"=>"Colour", "value"=>nil}, {"value"=>"Machine washable"}]}'
    )
    columns = {"uniq_id": "towel", "product_name": "Cotton Bath Towel", "product_category_tree": '["Home >> Towels"]'}
    row = {**columns, "image": "", "description": "Soft towel.", "product_specifications": cell}
    pd.DataFrame([row]).to_csv(tmp_path / "flipkart_com-ecommerce_sample.csv", index=False)
    trained_as = load_catalog(tmp_path, format="flipkart").frame["description"].iloc[0]
    table = "Type: Bath Towel; GSM: 500; Pack of 3; Pack of: 3; Pack of: 4; Machine washable"
    assert trained_as == f"Soft towel.\n{table}"

    # repeated keys and several values without a key: only the list form holds them
    pairs = [
        {"key": "Type", "value": "Bath Towel"},
        {"key": "GSM", "value": 500},
        {"value": "Pack of 3"},
        {"key": "Pack of", "value": "3"},
        {"key": "Pack of", "value": "4"},
        {"key": "Colour", "value": None},
        {"value": "Machine washable"},
    ]
    product = {"title": "Cotton Bath Towel", "description": "Soft towel."}
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    as_json = client.post("/predict", json={**product, "specifications": pairs}).json()
    form = {**product, "specifications": json.dumps(pairs)}
    as_form = client.post("/predict", data=form, files=photo).json()
    as_object = client.post("/predict", json={**product, "specifications": {"Type": "Bath Towel", "Colour": None}})
    keyed = {"X-API-Key": API_KEY}
    for answer in (as_json, as_form):
        stored = client.get(f"/reviews/{answer['review_id']}", headers=keyed).json()
        assert stored["description"] == trained_as
    stored = client.get(f"/reviews/{as_object.json()['review_id']}", headers=keyed).json()
    assert stored["description"] == "Soft towel.\nType: Bath Towel"

    # not an object or list of pairs, nested, cut short; true/false and non-finite numbers are no attribute
    for bad in ('["Type"]', '{"Type": {"Colour": "red"}}', '{"Type": ', '{"Washable": true}', '{"GSM": 1e400}'):
        refused = client.post("/predict", data={**product, "specifications": bad}, files=photo)
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_specifications"), bad
    for bad_json in (["Type"], {"Washable": False}, [{"key": "Type"}], [{"value": "x", "colour": "red"}]):
        refused = client.post("/predict", json={**product, "specifications": bad_json})
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_specifications"), bad_json


@pytest.mark.parametrize(
    ("specifications", "said"),
    [
        ({"Washable": True}, "specifications.object.Washable: a value is text, a finite number or null"),
        ([{"key": "Colour", "value": ["red"]}], "specifications.pairs.0.value: a value is text, a finite number"),
        ("Type: Mug", "specifications: an object of attributes or a list of key/value pairs"),
    ],
)
def test_a_bad_specification_is_refused_in_one_clear_sentence(
    client: TestClient, specifications: Any, said: str
) -> None:
    """pydantic named each member of the unions it tried (three types per value, both forms of the whole):
    'specifications.dict[str,nullable[union[str,int,float]]].Washable.str: Input should be a valid string; ...'."""
    for form in (False, True):
        if form:
            fields = {"title": "mug", "specifications": json.dumps(specifications)}
            refused = client.post("/predict", data=fields, files={"image": ("a.jpg", b"")})
        else:
            refused = client.post("/predict", json={"title": "mug", "specifications": specifications})
        detail = refused.json()["detail"]
        assert refused.status_code == 422 and said in detail and ";" not in detail and "union" not in detail, detail


@pytest.mark.parametrize(
    ("value", "said", "said_of_title"),
    [
        ('"\\ud800 mug"', "{field}: not valid Unicode: a lone surrogate (an escape such as \\ud800 without its pair); "
         "send UTF-8 text", "title is not valid Unicode (lone surrogate); send UTF-8 text"),
        ("9" * 5_000, "the body holds a number of 5000 digits, more than the 4300 this server reads", None),
        # said "String should match pattern '\\S'"
        ('" \\t"', "{field}: Input should not be blank (spaces alone)",
         "give a title or description with a letter or a digit, or a photo (multipart field 'image')"),
    ],
)  # fmt: skip
def test_a_product_alone_in_a_batch_or_a_correction_is_refused_in_the_same_words(
    client: TestClient, value: str, said: str, said_of_title: str | None
) -> None:
    """/predict read its JSON with pydantic's parser, batches and corrections with Python's: a lone surrogate
    was 'Invalid JSON: unexpected end of hex escape' alone (the escape is whole) and 'unable to parse raw data
    as a unicode string' in a batch; a 5,000-digit number 'number out of range' alone, 'a number of 5000
    digits, too long to read' in a batch. A title is optional text as a description is (eeca4c3): its lone surrogate
    is refused in the description's words, and a blank one is no title (a product with nothing to classify)."""
    json_type = {"content-type": "application/json"}
    product = f'{{"title": {value}}}'
    alone = client.post("/predict", content=product, headers=json_type)
    batch = client.post("/predict-batch", content=f"[{product}]", headers=json_type)
    in_batch = batch.json() if batch.status_code == 422 else batch.json()["results"][0]["error"]
    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    correction = client.post(
        f"/reviews/{review_id}", content=f'{{"category": {value}}}', headers=json_type | {"X-API-Key": API_KEY}
    )
    of_title = said.format(field="title") if said_of_title is None else said_of_title
    assert (alone.status_code, alone.json()["detail"]) == (422, of_title)
    assert in_batch["detail"] == of_title
    assert (correction.status_code, correction.json()["detail"]) == (422, said.format(field="category"))


_ONE_LINE = "Input should be one line, without a line break, tab or other control character:"


@pytest.mark.parametrize(
    ("reviewer", "said"),
    [
        ("", "reviewer: String should have at least 1 character"),
        (" \t", "reviewer: Input should not be blank (spaces alone)"),
        # stored as given (old code), a line break cut the lines of whatever lists the queue line by line
        ("ana\nsmith", f"reviewer: {_ONE_LINE} '\\n' (U+000A)"),
        ("ana\tsmith\u2028", f"reviewer: {_ONE_LINE} '\\t' (U+0009), '\\u2028' (U+2028)"),
        ("ana\x1b[31m", f"reviewer: {_ONE_LINE} '\\x1b' (U+001B)"),
    ],
)
def test_a_correction_by_a_blank_reviewer_or_one_holding_a_control_character_is_refused(
    client: TestClient, reviewer: str, said: str
) -> None:
    """An empty or blank reviewer was stored as given, a name that names no one (a client's unset variable), where a
    blank category is refused, and so was one holding a control character: refused alike, nothing stored; left out or
    null, the correction has no reviewer."""
    keyed = {"X-API-Key": API_KEY}
    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    refused = client.post(
        f"/reviews/{review_id}", json={"category": "Home > Decor", "reviewer": reviewer}, headers=keyed
    )
    assert (refused.status_code, refused.json()["error"], refused.json()["detail"]) == (422, "invalid_request", said)
    assert client.get(f"/reviews/{review_id}", headers=keyed).json()["status"] == "pending"
    correction = client.get("/openapi.json").json()["paths"]["/reviews/{review_id}"]["post"]["requestBody"]
    schema = correction["content"]["application/json"]["schema"]["properties"]["reviewer"]
    assert {"minLength": 1, "pattern": "\\S"}.items() <= schema["anyOf"][0].items()
    stored = client.post(f"/reviews/{review_id}", json={"category": "Home > Decor", "reviewer": None}, headers=keyed)
    assert (stored.status_code, stored.json()["reviewer"]) == (200, None)


def test_a_products_records_are_found_by_its_id_and_its_correction_supersedes_the_others(client: TestClient) -> None:
    """A product predicted twice left two pending records, with no way to look them up by product id: a reviewer
    corrected one and the other stayed pending for good."""
    keyed = {"X-API-Key": API_KEY}
    first, second = (client.post("/predict", json={"title": "mug", "product_id": "SKU-1"}).json() for _ in range(2))
    other = client.post("/predict", json={"title": "lamp", "product_id": "SKU-2"}).json()["review_id"]
    listed = client.get("/reviews", params={"product_id": "SKU-1"}, headers=keyed).json()
    assert (listed["total"], [item["id"] for item in listed["items"]]) == (2, [first["review_id"], second["review_id"]])
    client.post(f"/reviews/{second['review_id']}", json={"category": "Home > Decor"}, headers=keyed)
    pending = client.get("/reviews", headers=keyed).json()
    assert [item["id"] for item in pending["items"]] == [other]
    superseded = client.get("/reviews", params={"status": "superseded", "product_id": "SKU-1"}, headers=keyed).json()
    assert [(item["id"], item["status"]) for item in superseded["items"]] == [(first["review_id"], "superseded")]
    assert client.get("/reviews", params={"product_id": "SKU-9"}, headers=keyed).json()["total"] == 0
    refused = client.get("/reviews", params={"product_id": "SKU\x00"}, headers=keyed)
    assert (refused.status_code, refused.json()["error"]) == (422, "text_nul")
    parameters = client.get("/openapi.json").json()["paths"]["/reviews"]["get"]["parameters"]
    assert "superseded" in next(p for p in parameters if p["name"] == "status")["schema"]["pattern"]


def test_a_key_given_twice_in_one_object_is_refused_not_half_read(client: TestClient) -> None:
    """JSON parsers keep the last value of a repeated key and drop the others without a word: a product whose
    client merged two records would be classified from one title, a correction stored as one of two categories."""
    json_type = {"content-type": "application/json"}
    refused = client.post("/predict", content='{"title": "mug", "title": "lamp"}', headers=json_type)
    assert (refused.status_code, refused.json()["error"]) == (422, "repeated_field")
    assert "'title' is given more than once" in refused.json()["detail"]

    specifications = '{"Colour": "red", "Colour": "blue"}'
    refused = client.post(
        "/predict", content=f'{{"title": "mug", "specifications": {specifications}}}', headers=json_type
    )
    detail = refused.json()["detail"]
    assert refused.status_code == 422 and "'Colour' is given more than once in specifications" in detail
    assert "list of key/value pairs" in detail
    refused = client.post(
        "/predict", data={"title": "mug", "specifications": specifications}, files={"image": ("a.jpg", b"")}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_specifications")
    pairs = '[{"key": "Colour", "value": "red", "key": "Size"}]'
    refused = client.post("/predict", data={"title": "mug", "specifications": pairs}, files={"image": ("a.jpg", b"")})
    assert "'key' is given more than once in specifications[0]:" in refused.json()["detail"]

    # in a batch, the item alone fails
    batch = '[{"product_id": "a", "title": "mug", "title": "lamp"}, {"title": "mug"}]'
    answered = client.post("/predict-batch", content=batch, headers=json_type)
    first, second = answered.json()["results"]
    assert first["error"]["error"] == "repeated_field" and "'title'" in first["error"]["detail"]
    assert first["error"]["product_id"] == "a" and second["error"] is None

    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    correction = '{"category": "Home > Decor", "category": "Kitchen > Mugs"}'
    refused = client.post(f"/reviews/{review_id}", content=correction, headers=json_type | {"X-API-Key": API_KEY})
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
    assert client.get(f"/reviews/{review_id}", headers={"X-API-Key": API_KEY}).json()["corrected_category"] is None


#: every query parameter of the API, by route, with a value each route answers 200 to
QUERY_PARAMETERS = {
    ("POST", "/predict"): {"top_k": "1"},
    ("POST", "/predict-batch"): {"top_k": "1"},
    ("POST", "/explain"): {"top_k": "1", "max_words": "3", "grid": "3", "overlay": "false"},
    ("GET", "/reviews"): {"status": "pending", "product_id": "SKU-1", "limit": "5", "offset": "0", "after_id": "0"},
    ("POST", "/reviews/{review_id}"): {"new_category": "false"},
}
#: what each route of QUERY_PARAMETERS is sent, besides its query
ROUTE_BODIES = {
    "/predict": {"title": "mug"},
    "/predict-batch": [{"title": "mug"}],
    "/explain": {"title": "mug"},
    "/reviews/{review_id}": {"category": "Kitchen > Mugs"},
}


def query_request(client: TestClient, method: str, path: str, query: list[tuple[str, str]]) -> httpx.Response:
    """``method path?query`` with the route's body and the API key, ``{review_id}`` a record queued for review."""
    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    url = path.replace("{review_id}", str(review_id))
    return client.request(method, url, params=query, json=ROUTE_BODIES.get(path), headers={"X-API-Key": API_KEY})


def test_query_parameters_tested_are_every_one_the_api_takes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    declared = {
        (method.upper(), path): {parameter["name"] for parameter in operation.get("parameters", [])
                                 if parameter["in"] == "query"}
        for path, operations in paths.items()
        for method, operation in operations.items()
    }  # fmt: skip
    assert {route: names for route, names in declared.items() if names} == {
        route: set(values) for route, values in QUERY_PARAMETERS.items()
    }


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [(method, path, name) for (method, path), values in QUERY_PARAMETERS.items() for name in values],
)
def test_a_query_parameter_given_twice_is_refused_naming_it(
    client: TestClient, method: str, path: str, name: str
) -> None:
    """/predict?top_k=3&top_k=5 was answered as ?top_k=5: FastAPI reads the last value of a parameter given more than
    once and drops the others, silently. A client sending one twice has a bug: it is told so, as any refusal."""
    value = QUERY_PARAMETERS[method, path][name]
    refused = query_request(client, method, path, [(name, value), (name, value)])
    assert refused.status_code == 422, refused.text
    assert refused.json() | {"request_id": None} == {
        "error": "invalid_request",
        "detail": f"query parameter {name!r} given 2 times",
        "limit": None,
        "limit_value": None,
        "status": 422,
        "request_id": None,
        "product_id": None,
    }


def test_query_parameters_given_once_are_read_and_others_may_repeat(client: TestClient) -> None:
    for (method, path), values in QUERY_PARAMETERS.items():
        answered = query_request(client, method, path, [*values.items(), ("utm_source", "a"), ("utm_source", "b")])
        assert answered.status_code == 200, (path, answered.text)
    assert len(client.post("/predict?top_k=1", json={"title": "mug"}).json()["top_k"]) == 1
    # each name repeated said, in the order given; the key is checked first, as for any other malformed query
    refused = client.post("/explain?grid=3&top_k=1&top_k=2&top_k=1&grid=4", json={"title": "mug"})
    assert refused.json()["detail"] == "query parameter 'grid' given 2 times; query parameter 'top_k' given 3 times"
    assert client.get("/reviews?limit=1&limit=2").status_code == 401
    assert client.head("/reviews?limit=1&limit=2", headers={"X-API-Key": API_KEY}).status_code == 422


@pytest.mark.parametrize("title", ["<p></p>", "&nbsp;", "...", "\u200b\u200b", "\u0301\u0301"])
def test_a_title_with_no_letter_or_digit_is_no_product(client: TestClient, title: str) -> None:
    """Markup, punctuation, zero-width or combining characters alone pass a non-blank check but hold no text."""
    refused = client.post("/predict", json={"title": title, "description": f"<b>{title}</b>"})
    assert (refused.status_code, refused.json()["error"]) == (422, "empty_product")
    assert client.post("/predict", json={"title": f"{title} mug"}).status_code == 200
    assert client.post("/predict", json={"title": title, "description": "ceramic mug"}).status_code == 200


def test_a_review_submission_is_read_only_once_the_key_is_checked(client: TestClient) -> None:
    """FastAPI reads a declared body before its dependencies run: a client without the key must not make
    the server read megabytes."""
    pulled: list[int] = []

    def megabytes() -> Iterator[bytes]:
        for chunk in range(64):
            pulled.append(chunk)
            yield b"x" * 2**20

    headers = {"content-type": "application/json"}
    refused = client.post("/reviews/1", content=megabytes(), headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (401, "api_key")
    assert pulled == []

    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    keyed = {"X-API-Key": API_KEY}
    refused = client.post(f"/reviews/{review_id}", content=megabytes(), headers=headers | keyed)
    assert (refused.status_code, refused.json()["error"]) == (413, "body_size")
    as_text = {"content-type": "text/plain"} | keyed
    refused = client.post(f"/reviews/{review_id}", content=json.dumps({"category": "Home > Decor"}), headers=as_text)
    assert (refused.status_code, refused.json()["error"]) == (415, "content_type")
    accepted = client.post(f"/reviews/{review_id}", json={"category": "Home > Decor", "reviewer": "ana"}, headers=keyed)
    assert accepted.status_code == 200 and accepted.json()["corrected_category"] == "Home > Decor"


def test_a_compressed_body_is_refused_as_such_not_as_broken_json_or_multipart(client: TestClient) -> None:
    """A gzipped body was read as it is: 422 'not valid JSON (... can't decode byte 0x8b ...)', 400 invalid_multipart
    for a form, and a body labelled gzip but sent plain was read as plain."""
    form = multipart_body({"products": (b'[{"title": "mug"}]', None)})
    requests = {
        "/predict": (gzip.compress(b'{"title": "mug"}'), {"content-type": "application/json"}),
        "/predict-batch": (gzip.compress(form[0]), form[1]),
        "/reviews/1": (gzip.compress(b'{"category": "Home > Decor"}'), {"content-type": "application/json"}),
        "/explain": (b'{"title": "mug"}', {"content-type": "application/json"}),
    }
    for path, (body, headers) in requests.items():
        refused = client.post(path, content=body, headers=headers | {"content-encoding": "gzip", "X-API-Key": API_KEY})
        assert (refused.status_code, refused.json()["error"]) == (415, "content_encoding"), path
        assert "'gzip'" in refused.json()["detail"]
    plain = client.post("/predict", json={"title": "mug"}, headers={"content-encoding": "identity"})
    assert plain.status_code == 200


def test_a_json_body_is_utf8_and_one_declaring_another_charset_is_refused(client: TestClient) -> None:
    """A JSON body declared 'application/json; charset=latin-1' was read as UTF-8 all the same: an 'é' in it was
    422 'the body is not valid JSON ('utf-8' codec can't decode byte 0xe9 in position 14: invalid continuation
    byte)', Python's words, and the same body in UTF-8 was read. JSON is UTF-8 (RFC 8259): another charset declared
    is refused 415 for what it is, on every JSON route; UTF-8 bytes undeclared, or declared in any spelling, are read;
    other bytes undeclared are refused naming the first."""
    latin1, utf8 = '{"title": "café mug"}'.encode("latin-1"), '{"title": "café mug"}'.encode()
    advice = "JSON is UTF-8 (RFC 8259): send the body in UTF-8, declaring no charset or charset=utf-8"
    latin1_declared = {"content-type": "application/json; charset=latin-1", "X-API-Key": API_KEY}
    for path, body in (("/predict", latin1), ("/predict-batch", b"[" + utf8 + b"]"), ("/reviews/1", b"{}")):
        refused = client.post(path, content=body, headers=latin1_declared)
        assert (refused.status_code, refused.json()["detail"]) == (
            415,
            f"the request declares the charset 'latin-1': {advice}",
        ), path
        assert refused.json()["error"] == "json_charset"
    # US-ASCII is UTF-8's subset: a client declaring it sends UTF-8 (its ASCII bytes are read so, as are others)
    utf8_spellings = ("application/json", "application/json; charset=UTF8", 'application/json; charset="utf-8"')
    # an empty charset declares none: it was refused 415, 'the request declares the charset ""'
    for content_type in (*utf8_spellings, "application/json; charset=us-ascii", "application/json; charset="):
        assert client.post("/predict", content=utf8, headers={"content-type": content_type}).status_code == 200
    undeclared = client.post("/predict", content=latin1, headers={"content-type": "application/json"})
    assert (undeclared.status_code, undeclared.json()["error"], undeclared.json()["detail"]) == (
        422,
        "invalid_json",
        f"the body is not UTF-8 text (byte 0xe9 at offset 14): {advice}",
    )


def test_a_correction_names_a_category_of_the_model_unless_it_says_it_is_new(client: TestClient) -> None:
    """A typo would become a category of its own once the corrections are trained on."""
    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    keyed = {"X-API-Key": API_KEY}
    refused = client.post(f"/reviews/{review_id}", json={"category": "Kitchen > Mug"}, headers=keyed)
    assert (refused.status_code, refused.json()["error"]) == (422, "unknown_category")
    assert "did you mean 'Kitchen > Mugs'?" in refused.json()["detail"]
    new = client.post(f"/reviews/{review_id}?new_category=true", json={"category": "Kitchen > Teapots"}, headers=keyed)
    assert new.status_code == 200 and new.json()["corrected_category"] == "Kitchen > Teapots"


@pytest.fixture
def top_level_client(tmp_path) -> TestClient:
    """A model trained on top-level categories (``--level 1``)."""
    settings = ServeSettings(api_key=API_KEY)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(("Watches", "Kitchen"), level=1), settings, store)) as client:
        yield client


def submit(client: TestClient, category: str, new_category: bool = False) -> Any:
    review_id = client.post("/predict", json={"title": "steel watch"}).json()["review_id"]
    query = "?new_category=true" if new_category else ""
    return client.post(f"/reviews/{review_id}{query}", json={"category": category}, headers={"X-API-Key": API_KEY})


def refused_detail(client: TestClient, category: str, new_category: bool, error: str) -> str:
    """The ``detail`` of the 422 answering a correction to ``category`` (:func:`submit`), which must be refused with
    the code ``error``."""
    refused = submit(client, category, new_category)
    assert (refused.status_code, refused.json()["error"]) == (422, error), refused.text
    return refused.json()["detail"]


def test_a_correction_deeper_than_the_models_labels_says_the_label_it_trains_as(top_level_client: TestClient) -> None:
    """Training cuts a corrected path at the model's level: a deeper path under a label is that label."""
    deeper = submit(top_level_client, "Watches > Wrist Watches")
    assert deeper.status_code == 200, deeper.text
    assert (deeper.json()["corrected_category"], deeper.json()["trains_as"]) == ("Watches > Wrist Watches", "Watches")
    stored = top_level_client.get(f"/reviews/{deeper.json()['id']}", headers={"X-API-Key": API_KEY}).json()
    assert stored["trains_as"] == "Watches"

    detail = refused_detail(top_level_client, "Wtches > Wrist Watches", False, "unknown_category")
    assert "'Wtches'" in detail and "did you mean 'Watches'" in detail

    new = submit(top_level_client, "Board Games > Puzzles", new_category=True)
    assert new.status_code == 200, new.text
    assert (new.json()["corrected_category"], new.json()["trains_as"]) == ("Board Games > Puzzles", "Board Games")


def test_a_correction_overridden_by_a_later_one_of_its_product_trains_as_nothing(top_level_client: TestClient) -> None:
    """Record 3 corrected to Watches, then record 27 of the same product to Kitchen: GET /reviews?status=reviewed
    still listed record 3, trains_as Watches, while train --feedback keeps record 27 alone. Record 3 is superseded,
    its correction kept, trains_as null; the reviewed list is what trains."""
    keyed = {"X-API-Key": API_KEY}
    first, second = (
        top_level_client.post("/predict", json={"title": title, "product_id": "SKU-1"}).json()["review_id"]
        for title in ("steel watch", "steel watch again")
    )
    for review_id, category in ((first, "Watches"), (second, "Kitchen")):
        answer = top_level_client.post(f"/reviews/{review_id}", json={"category": category}, headers=keyed)
        assert answer.status_code == 200 and answer.json()["trains_as"] == category, answer.text
    reviewed = top_level_client.get("/reviews?status=reviewed", headers=keyed).json()
    assert [(item["id"], item["trains_as"]) for item in reviewed["items"]] == [(second, "Kitchen")]
    earlier = top_level_client.get(f"/reviews/{first}", headers=keyed).json()
    assert (earlier["status"], earlier["corrected_category"], earlier["trains_as"]) == ("superseded", "Watches", None)


@pytest.fixture
def three_level_client(tmp_path) -> TestClient:
    """A model predicting full three-level paths, as one trained on the fashion catalogue."""
    settings = ServeSettings(api_key=API_KEY)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    model = OneCategoryModel(("Apparel > Topwear > Kurtas", "Footwear > Shoes > Casual Shoes"))
    with TestClient(create_app(model, settings, store)) as client:
        yield client


@pytest.mark.parametrize(
    ("category", "above", "under", "new_under_it"),
    [
        ("Apparel", "Apparel", "'Apparel > Topwear > Kurtas'", "Apparel > Rain Gear > Ponchos"),
        ("footwear > shoes", "Footwear > Shoes", "'Footwear > Shoes > Casual Shoes'", "Footwear > Shoes > Clogs"),
    ],
)
@pytest.mark.parametrize("new_category", [False, True])
def test_a_correction_above_the_models_categories_is_refused_even_as_a_new_one(
    three_level_client: TestClient, category: str, above: str, under: str, new_under_it: str, new_category: bool
) -> None:
    """'Apparel' on a model predicting 'Apparel > Topwear > Kurtas' was refused as unknown with no hint, and accepted
    with ?new_category=true: retrained, the model learnt 'Apparel' as a class beside its own subcategories, its
    predictions no longer a hierarchy (per-level metrics counting 'Apparel' as a level-2 and level-3 class)."""
    detail = refused_detail(three_level_client, category, new_category, "category_too_shallow")
    assert detail.startswith(f"{category!r} is above the model's categories, which go deeper under {above!r} ({under})")
    assert detail.endswith(f"or a new one under {above!r} with ?new_category=true")
    accepted = submit(three_level_client, new_under_it, new_category=True)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("new_category", [False, True])
@pytest.mark.parametrize("category", ["Apparel > Topwear > Kurtas > Silk", "apparel > topwear > KURTAS > Silk > Long"])
def test_a_correction_under_a_category_of_a_full_path_model_is_refused_even_as_a_new_one(
    three_level_client: TestClient, category: str, new_category: bool
) -> None:
    """'Apparel > Topwear > Kurtas > Silk' on a model of full paths was accepted with ?new_category=true (and, without,
    refused with the advice to add it): it trains as its full path, and the retrained model learnt it as a class
    beside its own parent 'Apparel > Topwear > Kurtas' (train warning of the pair), its predictions no longer a
    hierarchy."""
    assert refused_detail(three_level_client, category, new_category, "category_too_deep") == (
        f"{category!r} is under the model's category 'Apparel > Topwear > Kurtas': it would train as a "
        "class beside its own parent, the model's categories no longer a hierarchy; name 'Apparel > Topwear > Kurtas'"
    )
    accepted = submit(three_level_client, "Apparel > Topwear > Kurtas")
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("category", ["Jewellery", "Jewellery > Earrings"])
def test_a_new_category_shallower_than_every_category_of_the_model_is_refused(
    three_level_client: TestClient, category: str
) -> None:
    """'Jewellery' as a new category beside the model's three-level paths was accepted: retrained, 'Jewellery' was a
    class of levels 2 and 3 too (per-level metrics counting it there), a path no product of the catalogue has."""
    levels = len(category.split(" > "))
    assert refused_detail(three_level_client, category, True, "category_too_shallow") == (
        f"{category!r} has {levels} level(s), where every category of the model has 3 (e.g. 'Apparel > Topwear > "
        "Kurtas'): name the new category's path down to level 3"
    )
    accepted = submit(three_level_client, "Accessories > Jewellery > Earrings", new_category=True)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    "category", ["Kurtas", "kurtas", "Topwear > Kurtas", "Footwear > Topwear > Kurtas", "Apparel > Tops > Kurtas"]
)
def test_a_category_named_by_its_last_level_or_under_another_parent_suggests_the_models_path(
    three_level_client: TestClient, category: str
) -> None:
    """'Kurtas' alone, a reviewer's shorthand for the model's 'Apparel > Topwear > Kurtas', was refused as unknown with
    no suggestion: no label is close to it in spelling."""
    detail = refused_detail(three_level_client, category, False, "unknown_category")
    assert "did you mean 'Apparel > Topwear > Kurtas'" in detail
    # the advice holds: a new category of fewer levels than the model's is refused (it ended in a stray comma:
    # '... for a new one, named down to level 3,')
    levels = len(category.split(" > "))
    new_one = "a new one, named down to level 3" if levels < 3 else "a new one"
    assert detail.endswith(f"add ?new_category=true for {new_one}")


@pytest.mark.parametrize(
    ("fixture", "variant", "existing"),
    [
        ("top_level_client", "watches", "Watches"),
        ("top_level_client", "WATCHES > Wrist Watches", "Watches"),
        ("client", "kitchen > mugs", "Kitchen > Mugs"),
        ("client", "  kitchen  >   Mugs ", "Kitchen > Mugs"),
        # invisible characters and compatibility forms: the same label to a reader, another class to training (a
        # label differing in invisible characters alone is refused for them: category_invisible_character)
        ("top_level_client", "watches\u200b", "Watches"),
        ("top_level_client", "wat\u00adches", "Watches"),
        ("top_level_client", "\uff37\uff41\uff54\uff43\uff48\uff45\uff53", "Watches"),  # fullwidth
        ("client", "Kitchen >\u2060Mugs\x7f", "Kitchen > Mugs"),
    ],
)
def test_a_new_category_differing_from_a_label_in_case_or_unicode_forms_is_refused(
    request: pytest.FixtureRequest, fixture: str, variant: str, existing: str
) -> None:
    """It would become a second class beside the existing one."""
    client = request.getfixturevalue(fixture)
    for new_category in (True, False):
        assert repr(existing) in refused_detail(client, variant, new_category, "category_variant")


@pytest.mark.parametrize(
    ("fixture", "category", "written", "trains_as", "new_categories"),
    [
        ("top_level_client", "Watches ", "Watches", "Watches", (False, True)),
        ("top_level_client", " Watches > Wrist Watches", "Watches > Wrist Watches", "Watches", (False, True)),
        ("top_level_client", "Watches>Wrist Watches", "Watches > Wrist Watches", "Watches", (False, True)),
        # below the model's level
        ("top_level_client", "Watches >  Wrist Watches ", "Watches > Wrist Watches", "Watches", (False, True)),
        ("top_level_client", "Watches > Wrist  Watches", "Watches > Wrist Watches", "Watches", (False, True)),
        ("top_level_client", "Watches > Wrist\u00a0Watches", "Watches > Wrist Watches", "Watches", (False, True)),
        ("client", "  Kitchen  >   Mugs ", "Kitchen > Mugs", "Kitchen > Mugs", (False, True)),
        # new categories, spelt one way as existing ones are
        ("top_level_client", " Board Games>Puzzles ", "Board Games > Puzzles", "Board Games", (True,)),
        ("top_level_client", "Board  Games > Jigsaw  Puzzles", "Board Games > Jigsaw Puzzles", "Board Games", (True,)),
        ("client", "Garden >  Hand  Tools ", "Garden > Hand Tools", "Garden > Hand Tools", (True,)),
        # decomposed (NFD, 'e' and a combining accent, as some keyboards send it): stored composed, as typed elsewhere
        ("client", "Bijoux > Cre\u0301oles", "Bijoux > Cr\u00e9oles", "Bijoux > Cr\u00e9oles", (True,)),
        (
            "top_level_client",
            "Watches > Montres a\u0300 quartz",
            "Watches > Montres \u00e0 quartz",
            "Watches",
            (False, True),
        ),
    ],
)
def test_a_correction_is_stored_in_one_spelling_new_category_or_not(
    request: pytest.FixtureRequest,
    fixture: str,
    category: str,
    written: str,
    trains_as: str,
    new_categories: tuple[bool, ...],
) -> None:
    """Spaces around or inside a level were refused (422 category_variant) in a correction naming the model's
    category, but stored as typed in a new category ('Garden >  Hand  Tools '), a full-path model then training it
    as a class of its own. A reviewer means the same category whatever the spacing, which no screen shows: both
    are stored in one spelling, each level stripped, its spacing collapsed, and answered as stored."""
    client = request.getfixturevalue(fixture)
    for new_category in new_categories:
        accepted = submit(client, category, new_category)
        assert accepted.status_code == 200, accepted.text
        assert (accepted.json()["corrected_category"], accepted.json()["trains_as"]) == (written, trains_as)
        stored = client.get(f"/reviews/{accepted.json()['id']}", headers={"X-API-Key": API_KEY}).json()
        assert (stored["corrected_category"], stored["trains_as"]) == (written, trains_as)


def test_a_label_the_model_has_decomposed_is_named_in_its_own_spelling(tmp_path: Path) -> None:
    """A catalogue's decomposed label (NFD) keeps its spelling when a correction names it composed, as it is typed: a
    correction is stored composed, its trained level in the model's spelling, the levels below it composed. It trains
    composed (`trains_as`), as training now composes every category, the model's products of that label included."""
    decomposed = "Cre\u0301oles"
    settings = ServeSettings(api_key=API_KEY)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel((decomposed, "Watches"), level=1), settings, store)) as client:
        for typed in (decomposed, "Cr\u00e9oles", "Cr\u00e9oles > Cre\u0301oles dore\u0301es"):
            accepted = submit(client, typed)
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["trains_as"] == "Cr\u00e9oles"
            assert accepted.json()["corrected_category"].removeprefix(decomposed) in ("", " > Cr\u00e9oles dor\u00e9es")


def test_two_spellings_of_a_new_category_train_as_one_class(tmp_path: Path) -> None:
    """On a full-path model, 'Garden > Tools' and ' Garden>Tools ' were stored as typed and, cut at no level, trained
    as two classes. Posted now, they are stored as one path; stored as typed by an earlier version, they train as
    one label, the one `trains_as` says."""
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = ReviewStore(url)
    with TestClient(create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY), store)) as client:
        posted = [
            submit(client, spelling, new_category=True).json() for spelling in ("Garden > Tools", " Garden>Tools ")
        ]
        assert {answer["corrected_category"] for answer in posted} == {"Garden > Tools"}
        earlier = client.post("/predict", json={"title": "rake"}).json()["review_id"]
        store.submit(earlier, "Garden  >Tools", None)  # as the server stored it before
        assert client.get(f"/reviews/{earlier}", headers={"X-API-Key": API_KEY}).json()["trains_as"] == "Garden > Tools"
    corrections = load_corrections(url)
    assert len(corrections) == 3
    # prodcat train cuts the corrections' paths so (ProductClassifier.fit)
    assert set(category_at_level(corrections["category"], None)) == {"Garden > Tools"}


def test_openapi_lists_why_a_correction_is_refused(client: TestClient) -> None:
    """The new_category parameter said it could be refused, but neither it nor the 422 response named the error
    codes a client gets back."""
    submission = client.get("/openapi.json").json()["paths"]["/reviews/{review_id}"]["post"]
    (new_category,) = [parameter for parameter in submission["parameters"] if parameter["name"] == "new_category"]
    refusals = submission["responses"]["422"]["description"]
    codes = ["unknown_category", "category_variant", "category_empty_level", "category_invisible_character"]
    for code in [*codes, "category_undefined_character", "category_too_shallow", "category_too_deep"]:
        assert f"`{code}`" in new_category["description"] and f"`{code}`" in refusals, code
    assert "`invalid_request`" in refusals
    assert submission["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


@pytest.mark.parametrize(
    ("fixture", "category"),
    [
        ("top_level_client", ">"),
        ("top_level_client", " > Wrist Watches"),  # would train as ''
        ("top_level_client", "Watches >> Wrist Watches"),  # Flipkart's separator: an empty level between
        ("client", "Kitchen >  > Mugs"),
        ("client", "Kitchen > Mugs > "),
        ("client", "Kitchen > \u200b"),  # invisible characters alone
        ("top_level_client", "\x01\x02"),
    ],
)
def test_a_correction_with_an_empty_level_is_refused(
    request: pytest.FixtureRequest, fixture: str, category: str
) -> None:
    """No catalogue loader writes a path with an empty level: as a new category it would train as one ('' for
    ' > Wrist Watches' at level 1)."""
    client = request.getfixturevalue(fixture)
    for new_category in (True, False):
        assert repr(category) in refused_detail(client, category, new_category, "category_empty_level")


@pytest.mark.parametrize(
    "category",
    [
        "Watches > Wrist\nWatches",
        "Watches > Wr\u200bist",
        "Watches > Men > \u202eWrist",
        # the model's own label but for an invisible character, which its canonical spelling takes away
        "Watches\u200b",
        "Wat\u00adches",
        "\ufeffWatches",
        # the model's own level: cut there, its levels were stripped of the line break before they were checked
        "Watches\n",
        "\tWatches",
        "Watches\r > Wrist Watches",
    ],
)
@pytest.mark.parametrize("new_category", [False, True])
def test_a_correction_with_a_character_that_shows_nothing_is_refused_at_every_level(
    top_level_client: TestClient, category: str, new_category: bool
) -> None:
    """'Watches > Wrist\nWatches' was accepted by a top-level model (it trains as 'Watches') and stored whole, so a
    model trained deeper on the corrections would have learnt a label with a line break or a hidden character;
    'Watches\n' was accepted as 'Watches' and stored with its line break."""
    detail = refused_detail(top_level_client, category, new_category, "category_invisible_character")
    assert detail.startswith(f"the field 'category' ({category!r}) holds characters")
    assert submit(top_level_client, "Watches > Wrist Watches", new_category).json()["trains_as"] == "Watches"


@pytest.mark.parametrize("category", ["Garden\nTools", "Garden\tTools", "Garden\u200bTools", "Garden > Tools\r"])
def test_a_new_category_with_a_character_that_shows_nothing_is_refused(client: TestClient, category: str) -> None:
    """A label with a line break, a tab or a zero-width space in it looks like another and breaks the tables it is
    written to."""
    refused_detail(client, category, True, "category_invisible_character")
    assert submit(client, "Garden > Tools", True).status_code == 200


@pytest.mark.parametrize(
    ("fixture", "category", "code_point"),
    [
        ("client", "Garden \u0378Tools", "U+0378"),  # unassigned (between Greek letters)
        ("client", "Garden > Tools\U000e0080", "U+E0080"),  # unassigned, beside the tag characters
        ("client", "Garden \ue000 Tools", "U+E000"),  # private use
        ("top_level_client", "Watches > \U000f0000", "U+F0000"),  # supplementary private use, below the model
    ],
)
def test_a_category_with_a_code_point_that_is_no_character_is_refused(
    request: pytest.FixtureRequest, fixture: str, category: str, code_point: str
) -> None:
    """Unassigned and private-use code points were accepted in a new category: each font draws them its own way
    (or as a box), so the label could not be read back or told apart from another."""
    client = request.getfixturevalue(fixture)
    detail = refused_detail(client, category, True, "category_undefined_character")
    assert detail.startswith(f"the field 'category' ({category!r})") and code_point in detail
    assert submit(client, "Garden > Tools", True).status_code == 200


@pytest.mark.parametrize("endpoint", ["/predict", "/predict-batch"])
def test_a_multipart_body_the_parser_refuses_says_why(
    client: TestClient, jpeg_bytes: Callable[..., bytes], endpoint: str
) -> None:
    """Starlette answers 'Invalid multipart data.' alone, e.g. for a filename of a few kilobytes (over
    python-multipart's limit on a part's headers): the parser's reason is said."""
    fields = {"products": json.dumps([{"title": "mug", "image": "p"}])} if endpoint == "/predict-batch" else {}
    part = "p" if fields else "image"
    refused = client.post(endpoint, data=fields, files={part: ("a" * 5000 + ".jpg", jpeg_bytes(), "image/jpeg")})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_multipart"), refused.text
    assert "header" in refused.json()["detail"] and "filename" in refused.json()["detail"]
    garbled = client.post(
        endpoint, content=b"--b\r\nbroken\r\n", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert (garbled.status_code, garbled.json()["error"]) == (400, "invalid_multipart")
    assert garbled.json()["detail"] != "Invalid multipart data."
    # a boundary over the parser's 256 bytes was refused as the parser was built, outside its error mapping: 500
    boundary = "b" * 300
    overlong = client.post(
        endpoint,
        content=f"--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert (overlong.status_code, overlong.json()["error"]) == (400, "invalid_multipart"), overlong.text
    assert "Boundary length 300 exceeds maximum of 256" in overlong.json()["detail"]
    assert client.post(endpoint, data=fields, files={part: ("a.jpg", jpeg_bytes(), "image/jpeg")}).status_code == 200


@pytest.mark.parametrize(
    ("products", "detail"),
    [
        ("[{title: 'mug'}]", "the products field is not valid JSON (Expecting property name enclosed in double quotes"),
        ('{"title": "mug"}', "the products field must be a JSON array of products"),
    ],
)
def test_a_multipart_batch_whose_products_field_is_no_json_array_says_which_field(
    client: TestClient, jpeg_bytes: Callable[..., bytes], products: str, detail: str
) -> None:
    """It was said of 'the body', which in a multipart request holds the photos too, and was valid multipart."""
    refused = client.post(
        "/predict-batch", data={"products": products}, files={"p": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_json")
    assert refused.json()["detail"].startswith(detail), refused.json()["detail"]


def test_a_batch_photo_sent_as_a_text_field_is_refused_with_its_item_as_a_single_products_is(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A photo part without a filename is a text field. /predict refuses its product 422 image_not_file ("'image'
    must be a file part"), but a batch refused the whole request, 400 invalid_multipart 'Too many text fields: 'p1'
    is one more than the 1 this endpoint takes', the other products unanswered. Now the item naming it gets 422
    image_not_file naming the part, the others are answered; a text field no item names is 422 unknown_field, as
    /predict answers a field it does not take (it too was 400 invalid_multipart)."""
    single = client.post("/predict", files={"title": (None, "mug"), "product_id": (None, "a"), "image": (None, "x")})
    products = json.dumps([{"title": "mug", "product_id": "a", "image": "p1"}, {"title": "cup", "image": "p2"}])
    parts = {"products": (None, products), "p1": (None, "x"), "p2": ("b.jpg", jpeg_bytes(), "image/jpeg")}
    results = client.post("/predict-batch", files=parts).json()["results"]
    error = results[0]["error"]
    assert (
        (error["status"], error["error"], error["product_id"])
        == (422, "image_not_file", "a")
        == (
            single.status_code,
            single.json()["error"],
            single.json()["product_id"],
        )
    )
    assert error["detail"] == "'p1' must be a file part (filename=...), not a text field"
    record = client.get(f"/reviews/{results[1]['prediction']['review_id']}", headers={"X-API-Key": API_KEY}).json()
    assert record["has_image"]  # the other product answered, with its photo
    # a text field named by an item refused for another fault is that item's, not a field the batch does not take
    refused_item = json.dumps([{"title": 5, "image": "p1"}, {"title": "cup", "image": "p2"}, {"image": ["p1"]}])
    results = client.post("/predict-batch", files={**parts, "products": (None, refused_item)}).json()["results"]
    errors = [result["error"] and result["error"]["error"] for result in results]
    assert errors == ["invalid_item", None, "invalid_item"]
    stray = client.post("/predict-batch", files={**parts, "colour": (None, "red")})
    assert (stray.status_code, stray.json()["error"]) == (422, "unknown_field"), stray.text
    assert "['colour']" in stray.json()["detail"]


def test_a_batch_file_part_no_item_names_is_refused_as_a_text_field_no_item_names_is(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A photo part no item names (an item whose ``image`` was left out or misspelt) was dropped without a word and
    its product answered 200 from its text alone, while /predict refuses a file part it does not take 422
    unknown_field and the batch refuses a text field no item names so. It is 422 unknown_field now, naming it."""
    photo = ("a.jpg", jpeg_bytes(), "image/jpeg")
    single = client.post("/predict", files={"title": (None, "mug"), "photo": photo})
    assert (single.status_code, single.json()["error"]) == (422, "unknown_field"), single.text
    products = json.dumps([{"title": "mug", "image": "p1"}, {"title": "cup"}])
    stray = client.post("/predict-batch", files={"products": (None, products), "p1": photo, "p2": photo})
    assert (stray.status_code, stray.json()["error"]) == (422, "unknown_field"), stray.text
    assert "['p2']" in stray.json()["detail"]
    # a part named by a refused item is that item's
    refused_item = json.dumps([{"title": "mug", "image": "p1"}, {"title": 5, "image": "p2"}])
    results = client.post("/predict-batch", files={"products": (None, refused_item), "p1": photo, "p2": photo})
    assert results.status_code == 200, results.text
    assert [r["error"] and r["error"]["error"] for r in results.json()["results"]] == [None, "invalid_item"]


def test_a_multipart_body_cut_short_is_refused_rather_than_read_without_its_last_part(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A body ending before its closing boundary (cut inside the photo part) was answered 200, classified by its
    title alone and queued for review so: the parser drops an unfinished part without a word."""
    whole = (
        b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nceramic mug\r\n'
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + jpeg_bytes()
        + b"\r\n--b--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b"}
    assert client.post("/predict", content=whole, headers=headers).status_code == 200
    refused = client.post("/predict", content=whole[:-200], headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_multipart"), refused.text
    assert "ends before its closing boundary" in refused.json()["detail"]


def test_a_record_edited_by_hand_into_an_unreadable_cell_does_not_fail_the_review_queue(tmp_path: Path) -> None:
    """GET /reviews answered 500 internal_error for every page holding such a record: no reviewer could list the
    queue until someone found the cell in the database file."""
    path = tmp_path / "reviews.db"
    with TestClient(
        create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY), ReviewStore(f"sqlite:///{path}"))
    ) as client:
        ids = [client.post("/predict", json={"title": title}).json()["review_id"] for title in ("mug", "cup", "jug")]
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE prodcat_review_items SET top_k = '[{' WHERE id = ?", [ids[1]])
        keyed = {"X-API-Key": API_KEY}

        listed = client.get("/reviews", headers=keyed)
        assert listed.status_code == 200, listed.text
        assert [item["title"] for item in listed.json()["items"]] == ["mug", "jug"]
        assert [(r["id"], r["column"]) for r in listed.json()["unreadable"]] == [(ids[1], "top_k")]
        assert listed.json()["total"] == 3
        correction = {"category": "Kitchen > Mugs"}
        for refused in (
            client.get(f"/reviews/{ids[1]}", headers=keyed),
            client.post(f"/reviews/{ids[1]}", json=correction, headers=keyed),
        ):
            assert (refused.status_code, refused.json()["error"]) == (500, "review_record_unreadable")
            assert f"review record {ids[1]}: its top_k cannot be read" in refused.json()["detail"]
        assert client.get(f"/reviews/{ids[2]}", headers=keyed).status_code == 200


def test_a_reviewer_correcting_the_pending_records_page_by_page_sees_every_one(tmp_path: Path) -> None:
    """120 pending records, listed 50 at a time and each page corrected before the next: ?offset=50 then started
    50 records past the first uncorrected one (the corrected ones had left the list), and records 51 to 100 were
    never shown. The next page is now asked for by ?after_id=, the page's next_after_id: every record is shown once,
    in the list's order (id), and the last page says no page follows (null)."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    ids = store.record_many([mug_for_review() for _ in range(120)])
    keyed = {"X-API-Key": API_KEY}
    with TestClient(create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY), store)) as client:
        by_offset = client.get("/reviews?limit=50", headers=keyed).json()
        for item in by_offset["items"]:
            client.post(f"/reviews/{item['id']}", json={"category": "Kitchen > Mugs"}, headers=keyed)
        skipped = client.get("/reviews?limit=50&offset=50", headers=keyed).json()["items"]
        assert skipped[0]["id"] == ids[100]  # what offset paging does, kept for compatibility: 50 never shown

        shown, query = [item["id"] for item in by_offset["items"]], f"after_id={by_offset['next_after_id']}"
        assert by_offset["next_after_id"] == ids[49]
        while query:
            listed = client.get(f"/reviews?limit=50&{query}", headers=keyed)
            assert listed.status_code == 200, listed.text
            page = listed.json()
            assert page["total"] == 120 - len(shown)  # the records left pending, as before
            for item in page["items"]:
                shown.append(item["id"])
                client.post(f"/reviews/{item['id']}", json={"category": "Kitchen > Mugs"}, headers=keyed)
            query = page["next_after_id"] is not None and f"after_id={page['next_after_id']}"
        assert shown == ids and len(page["items"]) == 20
        # a page that ends exactly at the last record says no page follows, as an empty one does
        assert (
            client.get(f"/reviews?status=reviewed&limit=20&after_id={ids[99]}", headers=keyed).json()["next_after_id"]
            is None
        )
        assert client.get("/reviews?status=reviewed&limit=20", headers=keyed).json()["next_after_id"] == ids[19]
        spec = client.get("/openapi.json").json()
        parameters = {p["name"]: p for p in spec["paths"]["/reviews"]["get"]["parameters"]}
        assert "next_after_id" in parameters["after_id"]["description"]
        assert "next_after_id" in spec["components"]["schemas"]["ReviewListOut"]["properties"]


def multipart_body(fields: dict[str, tuple[bytes, str | None]], charset: str | None = None) -> tuple[bytes, dict]:
    """A multipart body of text fields given as raw bytes, each with the charset its part declares (if any), and
    its headers (the request's own charset parameter, if any): what a client sending another encoding sends."""
    body = b""
    for name, (value, part_charset) in fields.items():
        declared = f"Content-Type: text/plain; charset={part_charset}\r\n" if part_charset else ""
        body += f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n{declared}\r\n'.encode() + value + b"\r\n"
    content_type = "multipart/form-data; boundary=b" + (f"; charset={charset}" if charset else "")
    return body + b"--b--\r\n", {"content-type": content_type}


@pytest.mark.parametrize("endpoint", ["/predict", "/predict-batch"])
def test_multipart_text_not_in_its_charset_is_refused_naming_the_field(client: TestClient, endpoint: str) -> None:
    """Text in another encoding than UTF-8, with no charset said, was read as Latin-1 without a word: mojibake
    ('caf\xe9' or 'é\x99¶å\x99¨') that the model classified and the review queue stored."""
    batch = endpoint == "/predict-batch"
    field = "products" if batch else "title"
    for title, encoding in (("Café crème mug", "cp1252"), ("陶器のマグカップ", "shift_jis")):
        text = json.dumps([{"title": title}], ensure_ascii=False) if batch else title
        body, headers = multipart_body({field: (text.encode(encoding), None)})
        refused = client.post(endpoint, content=body, headers=headers)
        assert (refused.status_code, refused.json()["error"]) == (422, "text_encoding"), (encoding, refused.text)
        assert f"field {field!r} is not valid utf-8 text" in refused.json()["detail"]
    # codecs Python knows but that are no charsets (of bytes to bytes, of host names) were answered 500 internal_error
    for charset in ("klingon-8", "base64", "zlib", "rot13", "idna", "punycode"):
        for part_charset, request_charset in ((charset, None), (None, charset)):
            body, headers = multipart_body({field: (b"mug", part_charset)}, request_charset)
            refused = client.post(endpoint, content=body, headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (415, "text_charset"), (charset, refused.text)
            assert f"declares the charset {charset!r}, which this server does not know" in refused.json()["detail"]


def test_a_photo_sent_as_base64_or_a_data_url_is_told_so(client: TestClient, jpeg_bytes: Callable[..., bytes]) -> None:
    """A photo part holding the photo written as text (base64, as a JSON API or a browser's readAsDataURL gives it) was
    refused 'image content is not an image', of what its sender knows to be a photo."""
    encoded = base64.b64encode(jpeg_bytes())
    url_safe = base64.urlsafe_b64encode(jpeg_bytes())
    assert url_safe[: inputs.PICTURE_HEAD] != encoded[: inputs.PICTURE_HEAD]  # its '-' and '_' are in the head read
    base64_jpeg = "base64 text of a JPEG photo, not the photo's bytes"
    for content, found in (
        (encoded, base64_jpeg),
        (base64.encodebytes(jpeg_bytes()), base64_jpeg),  # in lines of 76 characters, as MIME writes it
        # the URL-safe alphabet (RFC 4648 section 5: '-' and '_' for '+' and '/'), padded or not, was 'not an image'
        (url_safe, base64_jpeg),
        (url_safe.rstrip(b"="), base64_jpeg),
        (b"data:image/jpeg;base64," + encoded, "a data URL (data:...;base64,...), not the photo's bytes"),
        (b"a mug, blue", "not an image;"),
        (b"Data: a mug, blue", "not an image;"),  # no data URL: no media type, nor a comma after it
    ):
        refused = client.post("/predict", data={"title": "mug"}, files={"image": ("a.jpg", content, "image/jpeg")})
        assert (refused.status_code, refused.json()["error"]) == (415, "image_type"), refused.text
        assert refused.json()["detail"].startswith(f"image content is {found}"), refused.text


def test_a_png_of_too_many_chunks_is_refused_as_undecodable(
    client: TestClient, png_bomb_bytes: Callable[..., bytes]
) -> None:
    """Opened for its size before it was checked, a PNG of 700,000 empty chunks (8 MB) held a thread 5 s there, then
    as long again in each decoding; it answered 200."""
    photo = png_bomb_bytes(8, 8, text_chunks=5000)
    refused = client.post("/predict", data={"title": "mug"}, files={"image": ("a.png", photo, "image/png")})
    assert (refused.status_code, refused.json()["error"]) == (422, "image_corrupt"), refused.text
    assert "a PNG of more than 1000 chunks of text or other data beside its pixels" in refused.json()["detail"]


def test_a_photo_sent_as_a_text_field_is_told_so_not_told_its_encoding(
    client: TestClient, jpeg_bytes: Callable[..., bytes], png_bomb_bytes: Callable[[int, int], bytes]
) -> None:
    """``curl -F 'image=<photo.jpg'`` sends a photo's bytes with no filename, as a text field: it was refused
    'field 'image' is not valid utf-8 text (byte 0xff at offset 0) ... declare its charset', which sends the client
    looking at encodings."""
    for photo, kind in ((jpeg_bytes(), "JPEG"), (png_bomb_bytes(8, 8), "PNG")):
        body, headers = multipart_body({"title": (b"mug", None), "image": (photo, None)})
        refused = client.post("/predict", content=body, headers=headers)
        assert (refused.status_code, refused.json()["error"]) == (422, "image_not_file"), refused.text
        assert f"field 'image' holds a {kind} photo sent as a text field" in refused.json()["detail"]
        assert "curl -F 'image=@FILE'" in refused.json()["detail"]


@pytest.mark.parametrize("endpoint", ["/predict", "/predict-batch"])
@pytest.mark.parametrize("declared_by", ["part", "request"])
def test_multipart_text_is_read_in_the_charset_it_declares(client: TestClient, endpoint: str, declared_by: str) -> None:
    batch = endpoint == "/predict-batch"
    title = "陶器のマグカップ"
    text = json.dumps([{"title": title}], ensure_ascii=False) if batch else title
    field = "products" if batch else "title"
    part_charset, request_charset = ("shift_jis", None) if declared_by == "part" else (None, "shift_jis")
    body, headers = multipart_body({field: (text.encode("shift_jis"), part_charset)}, request_charset)
    answer = client.post(endpoint, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    review_id = answer.json()["results"][0]["prediction"]["review_id"] if batch else answer.json()["review_id"]
    stored = client.get(f"/reviews/{review_id}", headers={"X-API-Key": API_KEY}).json()
    assert stored["title"] == title


@pytest.mark.parametrize("multipart", [False, True])
def test_a_batch_giving_one_product_id_to_several_items_is_refused_naming_them(
    client: TestClient, multipart: bool
) -> None:
    """Two products under one id were both answered, told apart by position alone, and both queued for review:
    ``train --feedback`` keeps the last correction of each id, so one of the two corrections was dropped unsaid."""
    products = [{"title": t, "product_id": i} for t, i in [("mug", "A"), ("towel", "B"), ("cup", "A"), ("jug", "")]]

    def send() -> httpx.Response:
        # a text part sent as files= makes the test client send multipart
        body = {"files": {"products": (None, json.dumps(products))}} if multipart else {"json": products}
        return client.post("/predict-batch", **body)

    keyed = {"X-API-Key": API_KEY}
    queued = client.get("/reviews", headers=keyed).json()["total"]

    refused = send()

    assert (refused.status_code, refused.json()["error"]) == (422, "duplicate_product_id"), refused.text
    assert "'A' (items 0, 2)" in refused.json()["detail"] and "'B'" not in refused.json()["detail"]
    assert client.get("/reviews", headers=keyed).json()["total"] == queued
    products[2]["product_id"] = "C"
    assert send().status_code == 200


def test_multipart_forms_are_read_without_starlettes_form_parser(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: Callable[..., bytes]
) -> None:
    """The charset checks subclassed Starlette's MultiPartParser and used its private attributes, with no upper bound
    on Starlette: an upgrade changing them would break every multipart request in users' installs."""

    def changed(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Starlette's form parser changed")

    monkeypatch.setattr(starlette.formparsers.MultiPartParser, "__init__", changed)
    body, headers = multipart_body({"title": ("陶器のマグカップ".encode("shift_jis"), "shift_jis")})
    assert client.post("/predict", content=body, headers=headers).status_code == 200
    photo = jpeg_bytes()
    review_id = client.post("/predict", data={"title": "mug"}, files={"image": ("mug.jpg", photo)}).json()["review_id"]
    assert client.get(f"/reviews/{review_id}/image", headers={"X-API-Key": API_KEY}).content == photo


@pytest.mark.parametrize("content", ["", " \n\t "])
def test_serve_refuses_an_empty_api_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """Every review call would answer 401: the server must not start."""
    key_file = tmp_path / "key"
    key_file.write_text(content)
    assert main(["serve", str(tmp_path), "--api-key-file", str(key_file)]) == 2
    error = capsys.readouterr().err
    assert f"--api-key-file {key_file} is empty" in error and len(error.strip().splitlines()) == 1
    # the same key given by the environment
    monkeypatch.setenv("PRODCAT_API_KEY", content)
    assert main(["serve", str(tmp_path)]) == 2
    assert "the API key is empty" in capsys.readouterr().err


def test_a_review_store_gone_away_answers_503_in_the_error_shape(tmp_path) -> None:
    settings = ServeSettings(api_key=API_KEY)
    store = BrokenStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    keyed = {"X-API-Key": API_KEY}
    with TestClient(create_app(OneCategoryModel(), settings, store), raise_server_exceptions=False) as client:
        for response in (
            client.get("/ready"),
            client.get("/reviews", headers=keyed),
            client.get("/reviews/1", headers=keyed),
            client.post("/reviews/1", json={"category": "Home > Decor"}, headers=keyed),
            client.post("/predict", json={"title": "mug"}),  # a review decision must be recorded
        ):
            body = response.json()
            assert (response.status_code, body["error"]) == (503, "review_store_unavailable"), response.text
            assert body["request_id"] == response.headers["X-Request-ID"]
        assert client.get("/health").status_code == 200  # still serving


def test_an_unexpected_failure_answers_500_in_the_error_shape_with_its_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception no handler knows (a driver's bug) left the request guard for Starlette, which answered a bare
    'Internal Server Error' in text, without X-Request-ID or a count in /metrics: nothing tied it to the
    traceback in the log. It is answered as every error is, and the logged traceback carries the same id."""

    class FailingStore(ReviewStore):
        def items(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the database driver")

    app = create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY), FailingStore(f"sqlite:///{tmp_path / 'r.db'}"))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/reviews", headers={"X-API-Key": API_KEY})
        metrics = client.get("/metrics").text
    body = answer.json()
    assert (answer.status_code, body["error"]) == (500, "internal_error")
    assert body["request_id"] == answer.headers["X-Request-ID"]
    assert 'prodcat_errors_total{error="internal_error"} 1.0' in metrics
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert logged.request_id == body["request_id"] and "a bug in the database driver" in str(logged.exc_info[1])
    assert "ErrorOut" in str(app.openapi()["paths"]["/reviews"]["get"]["responses"]["500"])


def test_a_client_that_leaves_while_sending_its_body_is_no_server_error(caplog: pytest.LogCaptureFixture) -> None:
    """Starlette's ClientDisconnect, raised when a client goes away halfway through its body, was taken for a
    failure of the server: a traceback in the log, a 500 answered to no one, counted as internal_error."""
    app = create_app(OneCategoryModel(), ServeSettings(), ReviewStore("sqlite://"))
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b'{"title": "mu', "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")], "scheme": "http", "http_version": "1.1",
             "server": ("test", 80), "client": ("client", 1234), "app": app}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    with TestClient(app) as client:
        metrics = client.get("/metrics").text
    assert sent == []  # no one to answer
    assert 'prodcat_requests_total{method="POST",route="/predict",status="499"} 1.0' in metrics
    assert "internal_error" not in metrics and not [record for record in caplog.records if record.exc_info]


def test_every_get_route_answers_head_as_it_answers_get_without_the_body(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """HEAD /ready, /model and /metrics answered 405, /health alone took it: load balancers and uptime probes
    send HEAD to readiness endpoints, and RFC 9110 has a server answer HEAD wherever it answers GET."""
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    review_id = client.post("/predict", data={"title": "mug"}, files=photo).json()["review_id"]
    keyed = {"X-API-Key": API_KEY}
    paths = client.get("/openapi.json").json()["paths"]
    readable = [template.replace("{review_id}", str(review_id)) for template, ops in paths.items() if "get" in ops]
    assert {"/health", "/ready", "/model", "/metrics", "/reviews"} <= set(readable)
    for path in [*readable, "/docs", "/redoc", "/openapi.json"]:
        got, head = client.get(path, headers=keyed), client.head(path, headers=keyed)
        assert (head.status_code, head.headers["content-type"]) == (200, got.headers["content-type"]), path
        assert head.content == b"", path
    # the review queue's key is checked as on GET
    assert client.head("/reviews").status_code == 401


def test_an_empty_product_id_is_no_id(client: TestClient, jpeg_bytes: Callable[..., bytes]) -> None:
    as_json = client.post("/predict", json={"title": "mug", "product_id": ""}).json()
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    as_form = client.post("/predict", data={"title": "mug", "product_id": ""}, files=photo).json()
    assert as_json["product_id"] is None and as_form["product_id"] is None


def test_a_blank_product_id_is_no_id_as_an_empty_one_is(client: TestClient, jpeg_bytes: Callable[..., bytes]) -> None:
    """A product_id of spaces was an id: echoed, stored as its review record's product (a correction of one product
    sent with it superseded the pending records of every other), and two items of a batch sending it were refused
    422 duplicate_product_id. It is no id, as an empty one is, and as a catalogue's blank id is (``row-<line>``)."""
    as_json = client.post("/predict", json={"title": "mug", "product_id": "   "}).json()
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    as_form = client.post("/predict", data={"title": "mug", "product_id": " \t"}, files=photo).json()
    assert as_json["product_id"] is None and as_form["product_id"] is None
    stored = client.get(f"/reviews/{as_json['review_id']}", headers={"X-API-Key": API_KEY}).json()
    assert stored["source_product_id"] is None

    batch = client.post(
        "/predict-batch", json=[{"title": "mug", "product_id": " "}, {"title": "cup", "product_id": " "}]
    )
    assert batch.status_code == 200, batch.text
    assert [result["prediction"]["product_id"] for result in batch.json()["results"]] == [None, None]


def test_a_padded_product_id_is_answered_as_prodcat_predict_reads_it(
    client: TestClient, jpeg_bytes: Callable[..., bytes], tmp_path: Path
) -> None:
    """An id with spaces around it (' sku-1 ', a spreadsheet's cell) was echoed and stored as sent, where the
    catalogue loaders of ``prodcat predict`` read 'sku-1': one product scored both ways came back under two ids, and
    its review record was not found under the id of its catalogue. Both strip it now."""
    catalogue = tmp_path / "products.csv"
    catalogue.write_text("product_id,title\n sku-1 ,mug\n")
    assert load_catalog(catalogue).frame["product_id"].tolist() == ["sku-1"]

    as_json = client.post("/predict", json={"title": "mug", "product_id": " sku-1 "}).json()
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    as_form = client.post("/predict", data={"title": "mug", "product_id": "\tsku-1 "}, files=photo).json()
    assert as_json["product_id"] == as_form["product_id"] == "sku-1"
    keyed = {"X-API-Key": API_KEY}
    assert client.get(f"/reviews/{as_json['review_id']}", headers=keyed).json()["source_product_id"] == "sku-1"
    listed = client.get("/reviews", params={"product_id": " sku-1"}, headers=keyed).json()
    assert listed["total"] == 2

    padded = [{"title": "mug", "product_id": " sku-1 "}, {"title": "cup", "product_id": "sku-2 "}]
    batch = client.post("/predict-batch", json=padded)
    assert batch.status_code == 200, batch.text
    assert [result["prediction"]["product_id"] for result in batch.json()["results"]] == ["sku-1", "sku-2"]
    # the same id, padded or not, is one product's
    repeated = client.post("/predict-batch", json=[{"title": "mug", "product_id": "sku-1"}, padded[0]])
    assert (repeated.status_code, repeated.json()["error"]) == (422, "duplicate_product_id"), repeated.text
    assert "'sku-1' (items 0, 1)" in repeated.json()["detail"]


def test_a_numeric_product_id_is_read_as_the_text_it_is_written_as(client: TestClient, tmp_path: Path) -> None:
    """A backend posting its numeric SKU ({"product_id": 7}) was refused 422 invalid_json, though ``prodcat
    predict`` reads a catalogue's numeric ids as text and a form always sends text. A number is now the id it is
    written as, as a CSV id column keeps it (7.0 stays "7.0", 1e3 "1e3"), in /predict, /explain and batch items;
    true/false are refused, no id; the OpenAPI document says a number is taken."""
    catalogue = tmp_path / "products.csv"
    catalogue.write_text("product_id,title\n7,mug\n7.0,cup\n1e3,bowl\n")
    assert load_catalog(catalogue).frame["product_id"].tolist() == ["7", "7.0", "1e3"]

    for written, read in [("7", "7"), ("7.0", "7.0"), ("1e3", "1e3"), ("-2.50", "-2.50")]:
        body = f'{{"title": "mug", "product_id": {written}}}'.encode()
        for path in ("/predict", "/explain"):
            answer = client.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
            got = answer.json()["product_id"] if path == "/predict" else answer.json()["prediction"]["product_id"]
            assert got == read, (path, written)
    batch = client.post("/predict-batch", json=[{"title": "mug", "product_id": 7}, {"title": "cup", "product_id": 8}])
    assert batch.status_code == 200, batch.text
    assert [result["prediction"]["product_id"] for result in batch.json()["results"]] == ["7", "8"]
    # 7 and "7" are one product's id
    repeated = client.post(
        "/predict-batch", json=[{"title": "mug", "product_id": 7}, {"title": "cup", "product_id": "7"}]
    )
    assert (repeated.status_code, repeated.json()["error"]) == (422, "duplicate_product_id"), repeated.text

    refused = client.post("/predict", json={"title": "mug", "product_id": True})
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_json")
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/explain", "/predict-batch"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        product = body.get("items", body)
        assert {"type": "number"} in product["properties"]["product_id"]["anyOf"], path


def test_a_product_id_keeps_the_control_characters_inside_it_as_the_catalogue_loaders_do(
    client: TestClient, tmp_path: Path
) -> None:
    """An id holding a tab or a line break inside it (not around it) is kept as given, as the catalogue loaders keep
    it and ``prodcat predict`` writes it (quoted in its CSV): ``train --feedback`` replaces a catalogue product by its
    correction where the record's ``source_product_id`` is the catalogue's id, so an id the API refused or rewrote
    could never be corrected. (Refusing such ids, as a review's ``reviewer`` is refused, was weighed and left out:
    the loaders take them.)"""
    catalogue = tmp_path / "products.csv"
    catalogue.write_text('product_id,title,category\n"sku\n1",mug,Kitchen > Mugs\n"\tsku\t2 ",cup,Kitchen > Mugs\n')
    ids = load_catalog(catalogue).frame["product_id"].tolist()
    assert ids == ["sku\n1", "sku\t2"]
    keyed = {"X-API-Key": API_KEY}
    for sent, catalogued in zip(["sku\n1", "\tsku\t2 "], ids, strict=True):
        answer = client.post("/predict", json={"title": "mug", "product_id": sent}).json()
        assert answer["product_id"] == catalogued
        listed = client.get("/reviews", params={"product_id": catalogued}, headers=keyed).json()
        assert [item["source_product_id"] for item in listed["items"]] == [catalogued]
        client.post(f"/reviews/{answer['review_id']}", json={"category": "Home > Decor"}, headers=keyed)
    corrections = load_corrections(f"sqlite:///{tmp_path / 'reviews.db'}", image_dir=tmp_path / "photos")
    assert sorted(corrections["source_product_id"]) == sorted(ids)


def test_a_product_ids_length_is_the_stripped_ids_however_it_is_sent(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """The JSON schema's limit counted the spaces around a product_id, which the API strips (df24314): the longest
    id and a space was refused 422 as JSON (a /predict body, a batch item, the GET /reviews filter) but served as
    multipart, whose length was checked once stripped. One rule now: the stripped id's length."""
    longest, keyed = "x" * MAX_PRODUCT_ID_CHARS, {"X-API-Key": API_KEY}
    photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    answers = [
        client.post("/predict", json={"title": "mug", "product_id": longest + " "}),
        client.post("/predict", data={"title": "mug", "product_id": " " + longest}, files=photo),
    ]
    batch = client.post("/predict-batch", json=[{"title": "mug", "product_id": f"\t{longest} "}])
    assert [answer.status_code for answer in (*answers, batch)] == [200, 200, 200], batch.text
    echoed = [answer.json()["product_id"] for answer in answers]
    assert [*echoed, batch.json()["results"][0]["prediction"]["product_id"]] == [longest] * 3
    listed = client.get("/reviews", params={"product_id": longest + " "}, headers=keyed)
    assert (listed.status_code, listed.json()["total"]) == (200, 3), listed.text
    # a character more is refused however it is sent
    over = " " + longest + "x "
    refused = [
        client.post("/predict", json={"title": "mug", "product_id": over}),
        client.post("/predict", data={"title": "mug", "product_id": over}, files=photo),
        client.get("/reviews", params={"product_id": over}, headers=keyed),
    ]
    assert [answer.status_code for answer in refused] == [422, 422, 422]
    item = client.post("/predict-batch", json=[{"title": "mug", "product_id": over}]).json()["results"][0]
    assert item["error"]["status"] == 422


def test_an_over_long_product_id_gets_one_error_code_however_it_is_sent(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """An id of 257 characters was refused 422 ``invalid_json`` as a JSON body ('String should have at most 256
    characters'), ``invalid_item`` as a batch item, and ``product_id_length`` as multipart: ``product_id_length``
    now, naming the limit; a batch item is not named by the id refused. The GET /reviews filter answered
    ``invalid_request`` 'Value should have at most 256 items after validation': ``product_id_length`` too, in the
    same words."""
    over, photo = "x" * (MAX_PRODUCT_ID_CHARS + 1), {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
    single = [
        client.post("/predict", json={"title": "mug", "product_id": over}),
        client.post("/predict", data={"title": "mug", "product_id": over}, files=photo),
        client.get("/reviews", params={"product_id": over}, headers={"X-API-Key": API_KEY}),
    ]
    assert [(answer.status_code, answer.json()["error"]) for answer in single] == [(422, "product_id_length")] * 3
    details = {answer.json()["detail"] for answer in single}
    assert details == {f"product_id of {MAX_PRODUCT_ID_CHARS + 1} characters; at most {MAX_PRODUCT_ID_CHARS}"}
    # the photo part named by the item, as a multipart batch's parts must be (a80b663)
    products = json.dumps([{"title": "mug", "product_id": over, "image": "image"}])
    batches = [
        client.post("/predict-batch", json=[{"title": "mug", "product_id": over}]),
        client.post("/predict-batch", data={"products": products}, files=photo),
    ]
    errors = [batch.json()["results"][0]["error"] for batch in batches]
    assert [(error["error"], error.get("product_id")) for error in errors] == [("product_id_length", None)] * 2


def test_a_blank_product_id_filter_is_refused_not_answered_with_no_records(client: TestClient) -> None:
    """GET /reviews?product_id=%20 read the filter stripped, "", and answered that no record has it (total 0), though
    a blank id is no product's (1da2ae4: a prediction sent with one is stored without an id). It is refused 422,
    saying to leave product_id out to list every product's records."""
    keyed = {"X-API-Key": API_KEY}
    unnamed = client.post("/predict", json={"title": "mug", "product_id": " "}).json()["review_id"]
    for blank in ("", " ", "\t\u00a0"):
        refused = client.get("/reviews", params={"product_id": blank}, headers=keyed)
        assert (refused.status_code, refused.json().get("error")) == (422, "invalid_request"), repr(blank)
        assert "leave product_id out to list every product's records" in refused.json()["detail"]
    assert [item["id"] for item in client.get("/reviews", headers=keyed).json()["items"]] == [unnamed]


def test_invented_http_methods_share_one_metrics_label(client: TestClient) -> None:
    for method in ("FOO1", "FOO2", "BREW"):
        assert client.request(method, "/health").status_code == 405
    for page in ("/docs", "/openapi.json", "/no-such-page"):
        client.get(page)
    assert client.get("/static-offline-docs/swagger-ui.css").status_code == 200  # a file the /docs page loads
    metrics = client.get("/metrics").text
    assert 'method="other"' in metrics and "FOO1" not in metrics and "BREW" not in metrics
    # the documentation pages under their own label, apart from the unmatched paths
    assert 'route="/docs"' in metrics and 'route="/openapi.json"' in metrics and 'route="unmatched"' in metrics
    # and their files, which were counted as unmatched, with status 200
    assert 'prodcat_requests_total{method="GET",route="/static-offline-docs",status="200"} 1.0' in metrics
    assert 'route="unmatched",status="200"' not in metrics


def test_a_body_refused_by_its_declared_length_counts_under_its_route() -> None:
    """The 413 answered before routing, on a Content-Length over max_request_bytes, was counted under
    route="unmatched", as a path no route takes: /predict's refusals were missing from its own series."""
    app = create_app(OneCategoryModel(), ServeSettings(max_request_bytes=100), ReviewStore("sqlite://"))
    with TestClient(app) as client:
        refused = [
            client.post(path, content=b"{}" * 100, headers={"Content-Type": "application/json"})
            for path in ("/predict", "/reviews/7")
        ]
        metrics = client.get("/metrics").text
    assert [(answer.status_code, answer.json()["error"]) for answer in refused] == [(413, "max_request_bytes")] * 2
    assert 'prodcat_requests_total{method="POST",route="/predict",status="413"} 1.0' in metrics
    assert 'prodcat_requests_total{method="POST",route="/reviews/{review_id}",status="413"} 1.0' in metrics
    assert 'route="unmatched"' not in metrics


def test_an_unknown_path_is_not_found_as_a_missing_record_is(client: TestClient) -> None:
    """An unknown path answered 404 'http_error' ('Not Found') where a missing review answers 404 'not_found':
    one code for what is not there, the path named (a typo shows)."""
    missing_record = client.get("/reviews/999", headers={"X-API-Key": API_KEY})
    for path in ("/predictt", "/reviews/1/photo", "/static-offline-docs/no-such.css"):
        unknown = client.get(path)
        assert (unknown.status_code, unknown.json()["error"]) == (404, missing_record.json()["error"]), path
        assert repr(path) in unknown.json()["detail"]
    assert 'prodcat_errors_total{error="not_found"} 4.0' in client.get("/metrics").text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_json_body_in_another_encoding_is_refused_declared_or_not(client: TestClient, encoding: str) -> None:
    """A UTF-16 or UTF-32 body was refused 415 json_charset when it declared its charset, and read when it declared
    none (json.loads detects them): JSON is UTF-8, whatever the request declares; a UTF-8 byte-order mark is still
    skipped."""
    body = '{"title": "café mug"}'
    for content_type in ("application/json", f"application/json; charset={encoding}"):
        response = client.post("/predict", content=body.encode(encoding), headers={"content-type": content_type})
        assert response.status_code in (415, 422), (content_type, response.status_code)
    undeclared = client.post("/predict", content=body.encode(encoding), headers={"content-type": "application/json"})
    assert (undeclared.status_code, undeclared.json()["error"], undeclared.json()["detail"]) == (
        422,
        "invalid_json",
        "the body is not UTF-8 text (byte 0xff at offset 0): JSON is UTF-8 (RFC 8259): send the body in UTF-8, "
        "declaring no charset or charset=utf-8",
    )
    marked = client.post("/predict", content=body.encode("utf-8-sig"), headers={"content-type": "application/json"})
    assert marked.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/predict/"), ("POST", "/predict-batch/"), ("GET", "/health/"), ("GET", "/reviews/")]
)
def test_a_path_with_a_trailing_slash_is_not_found_not_redirected(client: TestClient, method: str, path: str) -> None:
    """POST /predict/ answered 307 to /predict: most clients do not resend a body to a redirect (the others send it
    twice). A slash too many is an unknown path like any other."""
    response = client.request(
        method, path, json={"title": "ceramic mug"}, headers={"X-API-Key": API_KEY}, follow_redirects=False
    )
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert "location" not in response.headers and repr(path) in response.json()["detail"]


def test_a_405_allows_every_method_of_its_path(client: TestClient) -> None:
    """Starlette's 405 named the methods of the first route on the path only: DELETE /reviews/1 answered
    'Allow: GET' (no POST) and DELETE /health 'Allow: HEAD' (no GET). HEAD goes with GET, undocumented. Its error
    code was the catch-all 'http_error' ('Method Not Allowed'): it is 'method_not_allowed', its detail the Allow
    header in words."""
    paths = client.get("/openapi.json").json()["paths"]
    for template, operations in paths.items():
        path = template.replace("{review_id}", "1")
        response = client.request("DELETE", path, headers={"X-API-Key": API_KEY})
        assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed"), path
        allowed = set(response.headers["allow"].split(", "))
        assert allowed == {method.upper() for method in operations} | ({"HEAD"} if "get" in operations else set())
        assert (
            response.json()["detail"] == f"method DELETE not allowed on {path!r}: it takes {response.headers['allow']}"
        )
    assert f'prodcat_errors_total{{error="method_not_allowed"}} {len(paths)}.0' in client.get("/metrics").text
    # under the documentation pages' static files, their own Allow stands
    assert client.post("/static-offline-docs/swagger-ui.css").headers["allow"] == "GET, HEAD"


#: a browser's preflight of a correction from the page of an origin: POST with its key, as JSON
CORRECTION_PREFLIGHT = {
    "Origin": "https://shop.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-api-key",
}


def test_a_browser_page_of_an_origin_given_may_call_the_api(tmp_path: Path) -> None:
    """A server answered no CORS: the preflight OPTIONS of a browser page on another origin got 405, so that no
    front-end there could call it. --cors-origins (PRODCAT_CORS_ORIGINS) names the origins whose pages may: their
    preflight is answered, the review queue's key header allowed, and every answer (an error's included) lets the page
    read it and its X-Request-ID. Off by default, as before; another origin's preflight is refused."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY), store)) as closed:
        refused = closed.options("/reviews/1", headers=CORRECTION_PREFLIGHT)
        assert (refused.status_code, refused.json()["error"]) == (405, "method_not_allowed")
        answer = closed.post("/predict", json={"title": "mug"}, headers={"Origin": "https://shop.example.com"})
        assert not [name for name in answer.headers if name.startswith("access-control-")]

    settings = ServeSettings(api_key=API_KEY, cors_origins="https://shop.example.com,HTTP://LocalHost:3000")
    assert settings.cors_origins == ("https://shop.example.com", "http://localhost:3000")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        preflight = client.options("/reviews/1", headers=CORRECTION_PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example.com"
        assert {"POST", "GET"} <= set(preflight.headers["access-control-allow-methods"].split(", "))
        allowed = {name.lower() for name in preflight.headers["access-control-allow-headers"].split(", ")}
        assert {"x-api-key", "content-type", "x-request-id"} <= allowed
        page = {"Origin": "http://localhost:3000"}
        for answer in (
            client.post("/predict", json={"title": "mug"}, headers=page),
            client.post("/predict", json={}, headers=page),  # a 422
            client.get("/reviews", headers=page),  # a 401: no key
        ):
            assert answer.headers["access-control-allow-origin"] == "http://localhost:3000", answer.text
            assert answer.headers["access-control-expose-headers"] == "X-Request-ID"
        elsewhere = client.options("/reviews/1", headers={**CORRECTION_PREFLIGHT, "Origin": "https://other.example"})
        assert elsewhere.status_code == 400 and "access-control-allow-origin" not in elsewhere.headers
        # an OPTIONS that is no preflight is still a method the path does not take
        assert client.options("/health").status_code == 405


def test_a_refused_cors_preflight_answers_the_apis_error_shape(tmp_path: Path) -> None:
    """A preflight from an origin not given got Starlette's plain-text 400 'Disallowed CORS origin', alone of the
    API's errors not JSON, with no request id to quote. It is 400 cors_refused in the error shape now, saying what is
    refused (the origin, a method or a header), with its X-Request-ID, and counted in the metrics."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    settings = ServeSettings(api_key=API_KEY, cors_origins="https://shop.example.com")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        elsewhere = {**CORRECTION_PREFLIGHT, "Origin": "https://other.example", "X-Request-ID": "pre-1"}
        refused = client.options("/reviews/1", headers=elsewhere)
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["x-request-id"] == "pre-1"
        assert refused.json() == {
            "error": "cors_refused",
            "detail": "CORS preflight refused: the origin 'https://other.example' is not one of the server's "
            "--cors-origins",
            "limit": None,
            "limit_value": None,
            "status": 400,
            "request_id": "pre-1",
            "product_id": None,
        }
        method = client.options("/reviews/1", headers={**CORRECTION_PREFLIGHT, "Access-Control-Request-Method": "PUT"})
        assert method.status_code == 400 and method.json()["detail"] == (
            "CORS preflight refused: the method 'PUT' is not one it allows (GET, HEAD, POST)"
        )
        assert len(method.headers["x-request-id"]) == 32
        assert 'prodcat_errors_total{error="cors_refused"} 2.0' in client.get("/metrics").text


def test_a_list_flag_of_serve_given_more_than_once_adds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """--cors-origins may be given once per origin, or comma-separated, as --image-types (given twice, its last
    value alone was kept, without a word)."""
    from prodcat.cli import build_parser
    from prodcat.serve.command import _export_flags

    for name in ("PRODCAT_CORS_ORIGINS", "PRODCAT_IMAGE_TYPES"):
        monkeypatch.delenv(name, raising=False)
    arguments = ["serve", "model", "--cors-origins", "https://shop.example.com", "--image-types", "jpeg",
                 "--cors-origins", "http://localhost:3000,http://localhost:8080", "--image-types", "png"]  # fmt: skip
    _export_flags(build_parser().parse_args(arguments))
    settings = ServeSettings()
    assert settings.cors_origins == ("https://shop.example.com", "http://localhost:3000", "http://localhost:8080")
    assert settings.image_types == ("jpeg", "png")


def test_a_photo_part_sent_twice_fails_its_items_not_the_batch(jpeg_bytes: Callable[..., bytes]) -> None:
    settings = ServeSettings()
    products = [{"title": "mug", "image": "twice"}, {"title": "lamp"}]
    parts = [UploadFile(io.BytesIO(jpeg_bytes()), filename=f"{i}.jpg") for i in range(2)]
    form = FormData([("products", json.dumps(products)), ("twice", parts[0]), ("twice", parts[1])])
    first, second = asyncio.run(batch_items_from_form(form, settings))
    assert isinstance(first, ApiError) and first.error == "repeated_field"
    assert isinstance(second, ProductRequest) and second.title == "lamp"


def test_openapi_documents_every_status_the_predict_endpoints_answer(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict-batch", "/explain"):
        assert {"200", "400", "413", "415", "422", "500", "504"} <= set(paths[path]["post"]["responses"]), path
        assert "`image_check_timeout`" in paths[path]["post"]["responses"]["504"]["description"], path
    # only the endpoints that write to the review queue can find it unreachable
    assert "503" in paths["/predict"]["post"]["responses"] and "503" not in paths["/explain"]["post"]["responses"]
    assert "503" in paths["/reviews"]["get"]["responses"]


def test_openapi_marks_every_field_of_an_answer_required_and_no_more_of_a_request(client: TestClient) -> None:
    """The fields an answer always holds, null when empty, were optional in /openapi.json when they had a default
    (PredictionOut's product_id and review_id, ErrorOut's limit, limit_value, request_id and product_id, ReviewOut's
    trains_as, HealthOut's status...): generated clients typed them as possibly unset. Every answer's field is
    required now; a request's optional fields stay optional."""
    schema = client.get("/openapi.json").json()
    for name, component in schema["components"]["schemas"].items():  # the answers' (the requests' are inlined)
        assert set(component.get("required", [])) == set(component["properties"]), name
    prediction = client.post("/predict", json={"title": "ceramic mug"}).json()
    assert set(prediction) == set(schema["components"]["schemas"]["PredictionOut"]["required"])
    assert prediction["product_id"] is None
    error = client.post("/predict", json={}).json()
    assert set(error) == set(schema["components"]["schemas"]["ErrorOut"]["required"]) and error["limit"] is None
    paths = schema["paths"]
    product = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in product  # each field optional: what a product has is classified (anyOf)
    submission = paths["/reviews/{review_id}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert submission["required"] == ["category"]


def test_openapi_says_what_each_status_of_a_review_record_means(client: TestClient) -> None:
    """GET /reviews's status parameter, and a record's status, said what `superseded` means (0e2e50d) but none of the
    other statuses a client filters by or reads."""
    schema = client.get("/openapi.json").json()
    (status,) = [p for p in schema["paths"]["/reviews"]["get"]["parameters"] if p["name"] == "status"]
    record_status = schema["components"]["schemas"]["ReviewOut"]["properties"]["status"]
    for description in (status["description"], record_status["description"]):
        for value in record_status["enum"]:
            assert f"`{value}`: " in description, (value, description)


def test_openapi_gives_the_review_list_no_answer_of_a_record(client: TestClient) -> None:
    """GET /reviews was documented as answering 404 'no such record' and 500 for a record that cannot be read: it
    answers neither (a page may be empty; an unreadable record is listed under ``unreadable``)."""
    paths = client.get("/openapi.json").json()["paths"]
    listed = paths["/reviews"]["get"]["responses"]
    assert "404" not in listed and "review_record_unreadable" not in listed["500"]["description"]
    assert client.get("/reviews?offset=1000", headers={"X-API-Key": API_KEY}).status_code == 200
    for operation in [*paths["/reviews/{review_id}"].values(), paths["/reviews/{review_id}/image"]["get"]]:
        answers = operation["responses"]
        assert "404" in answers and "review_record_unreadable" in answers["500"]["description"], operation["summary"]


def test_openapi_gives_each_operation_the_short_id_docs_api_md_lists(client: TestClient) -> None:
    """FastAPI made the operation ids of the function's name, path and method (``predict_batch_predict_batch_post``),
    which an OpenAPI client generator turns into its methods' names. Each operation has its own short camelCase id,
    the one the routes table of docs/api.md gives."""
    paths = client.get("/openapi.json").json()["paths"]
    served = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    table = (REPO_ROOT / "docs" / "api.md").read_text().partition("## Routes")[2]
    documented = {
        f"{method} {path.replace('{id}', '{review_id}')}": operation_id
        for method, path, operation_id in re.findall(r"^\| `([A-Z]+)(?:`/`[A-Z]+)? ([^`]+)` \| `(\w+)` \|", table, re.M)
    }
    assert served == documented
    assert len(set(served.values())) == len(served)
    assert all(re.fullmatch("[a-z]+(?:[A-Z][a-z]+)*", operation_id) for operation_id in served.values()), served


@pytest.mark.parametrize(
    ("path", "field", "fields"),
    [
        ("/predict", "specifications", {"title"}),
        ("/explain", "specifications", {"title"}),
        ("/predict-batch", "products", set()),
    ],
)
def test_openapi_declares_the_json_of_multipart_fields(
    client: TestClient, jpeg_bytes: Callable[..., bytes], path: str, field: str, fields: set[str]
) -> None:
    """The multipart fields 'products' and 'specifications' hold JSON, but /openapi.json declared 'products' a
    plain string (the product's schema only as text in its description) and 'specifications' without its
    schema: a generated client had nothing to build or check the JSON from. Each now declares its media type, the
    JSON's schema (contentSchema), an application/json encoding and an example, which the API takes."""
    form = client.get("/openapi.json").json()["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
    declared = form["schema"]["properties"][field]
    assert (declared["type"], declared["contentMediaType"]) == ("string", "application/json")
    assert form["encoding"][field] == {"contentType": "application/json"}
    assert declared["description"]
    if field == "products":
        assert declared["contentSchema"]["type"] == "array"
        products = declared["contentSchema"]["items"]["properties"]
        assert set(products) == {"title", "description", "specifications", "product_id", "image"}
    else:
        attributes, null = declared["contentSchema"]["anyOf"]
        assert [shape["type"] for shape in attributes["oneOf"]] == ["object", "array"] and null == {"type": "null"}
    (example,) = declared["examples"]
    # the example as a generated client sends it: a part of type application/json, beside the form's other fields
    photos = {"photo1": ("watch.jpg", jpeg_bytes(), "image/jpeg")} if field == "products" else {}
    sent = client.post(
        path,
        data={name: "Analog watch" for name in fields},
        files={field: (None, example, "application/json"), **photos},
    )
    assert sent.status_code == 200, sent.text
    if field == "products":
        assert [item["error"] for item in sent.json()["results"]] == [None] * len(json.loads(example))


def _properties_named(node: Any, name: str) -> Iterator[Any]:
    """Every schema of a property ``name`` in an OpenAPI document, a multipart field's JSON as its contentSchema."""
    if isinstance(node, dict):
        if name in node.get("properties", {}):
            declared = node["properties"][name]
            yield declared.get("contentSchema", declared)
        for value in node.values():
            yield from _properties_named(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from _properties_named(value, name)


@pytest.mark.parametrize(
    "fields",
    [{"description": "ceramic coffee mug"}, {"title": "", "specifications": json.dumps({"Type": "Coffee Mug"})}],
    ids=["description", "specifications"],
)
def test_openapi_takes_the_forms_of_a_description_or_specifications_alone(
    client: TestClient, fields: dict[str, str]
) -> None:
    """The multipart body of /predict and /explain was documented as needing a photo or a title that is not blank
    (its anyOf), while the API answers a product of a description alone, or of specifications alone, 200: a client
    or proxy checking its requests against /openapi.json refused them. Each text field with something in it is one
    of the alternatives now, as the API reads them."""
    assert client.post("/predict", files={name: (None, value) for name, value in fields.items()}).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/explain"):
        alternatives = paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["anyOf"]
        assert any(
            all(name in fields for name in alternative["required"])
            and all(
                re.search(declared["pattern"], fields[name])
                for name, declared in alternative.get("properties", {}).items()
            )
            for alternative in alternatives
        ), path


#: a product without a title, as a catalogue row without one: its title left out, null, empty or blank
_UNTITLED = {
    "left out": {"description": "ceramic coffee mug"},
    "null": {"title": None, "description": "ceramic coffee mug"},
    "empty": {"title": "", "description": "ceramic coffee mug"},
    "blank": {"title": "   ", "description": "ceramic coffee mug"},
    "specifications alone": {"title": "", "specifications": {"Type": "Coffee Mug"}},
}


def _answers_in_every_form(client: TestClient, product: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """(status, error or "ok") of ``product`` sent to /predict and /explain as JSON and as a form, and as the item of
    a JSON and of a multipart batch (a batch item's own error)."""
    # a form field is text: null is an empty field, specifications their JSON
    form = {name: (None, json.dumps(v) if isinstance(v, dict) else v or "") for name, v in product.items()}
    answers = {
        **{f"JSON {path}": client.post(path, json=product) for path in ("/predict", "/explain")},
        **{f"form {path}": client.post(path, files=form) for path in ("/predict", "/explain")},
        "JSON batch": client.post("/predict-batch", json=[product]),
        "form batch": client.post("/predict-batch", files={"products": (None, json.dumps([product]))}),
    }
    outcomes = {}
    for where, answer in answers.items():
        body = answer.json()
        error = body["results"][0]["error"] if "results" in body else body.get("error") and body
        outcomes[where] = (error["status"], error["error"]) if error else (answer.status_code, "ok")
    return outcomes


@pytest.mark.parametrize("untitled", list(_UNTITLED), ids=list(_UNTITLED))
def test_a_product_without_a_title_is_classified_from_its_description_in_every_form(
    client: TestClient, untitled: str
) -> None:
    """One product, two rules: a multipart /predict or /explain answered a product of a description alone 200, and
    a multipart batch item too, while JSON /predict, /explain and /predict-batch items refused it, 422 invalid_json
    or invalid_item 'title: Field required' (or 'should not be blank'). The catalogue loaders keep a row without a
    title, classified from its description, and `prodcat predict` answers it so: every form of the API does now,
    and /openapi.json no longer lists the title as required."""
    assert set(_answers_in_every_form(client, _UNTITLED[untitled]).values()) == {(200, "ok")}
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/explain"):
        assert "required" not in paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"], path
    assert (
        "required"
        not in paths["/predict-batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]["items"]
    )


@pytest.mark.parametrize("product", [{}, {"title": ""}, {"title": None}, {"title": "   "}, {"title": "!!!"}])
def test_a_product_with_nothing_to_classify_is_refused_alike_in_every_form(
    client: TestClient, product: dict[str, Any]
) -> None:
    """A product with no readable text and no photo got 422 empty_product as a form, and 422 invalid_json or
    invalid_item as JSON when its title was missing or blank: one fault, one code, 422 empty_product, everywhere."""
    if not product:  # a form of no field at all is no form: an empty title field is the nearest
        product = {"title": ""}
        assert client.post("/predict", json={}).json()["error"] == "empty_product"
    assert set(_answers_in_every_form(client, product).values()) == {(422, "empty_product")}


def test_null_specifications_are_none_as_a_null_description_is_in_every_form(client: TestClient) -> None:
    """A `description` sent as null is none, as left out, and an empty `specifications` form field is none too; but
    JSON `"specifications": null` (a table's missing cell, as pandas' to_json writes it) was refused, 422
    invalid_json or invalid_item 'specifications: an object of attributes or a list of key/value pairs', and so was a
    form field holding `null`. Null specifications are none now, as JSON, as a form field and in a batch item, and
    /openapi.json says they take null."""
    assert set(_answers_in_every_form(client, {"title": "mug", "specifications": None}).values()) == {(200, "ok")}
    form = {"title": (None, "mug"), "specifications": (None, "null")}
    assert client.post("/predict", files=form).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    declared = list(_properties_named(paths, "specifications"))
    assert len(declared) == 6 and all({"type": "null"} in schema["anyOf"] for schema in declared)


def test_a_field_the_api_does_not_take_is_refused_alike_in_every_form(client: TestClient) -> None:
    """A product's form refused a field it does not take 422 unknown_field, naming the fields it takes, but the same
    product as JSON got 422 invalid_json ('colour: Extra inputs are not permitted'), and invalid_item as a batch
    item, JSON or multipart: one fault, three codes. It is unknown_field everywhere now, in the same words; a JSON
    product with something else wrong keeps its invalid_json, listing every fault."""
    product = {"title": "mug", "colour": "red"}
    assert set(_answers_in_every_form(client, product).values()) == {(422, "unknown_field")}
    expected = "['description', 'product_id', 'specifications', 'title']"
    assert client.post("/predict", json=product).json()["detail"] == f"unknown field(s) ['colour']; expected {expected}"
    photo = client.post("/predict", json={"title": "mug", "image": "photo.jpg"}).json()
    assert (photo["error"], photo["detail"].rsplit("; ", 1)[1]) == (
        "unknown_field",
        "a photo is sent in a multipart form, as its file part",
    )
    both = client.post("/predict", json={"title": 5, "colour": "red"}).json()
    assert both["error"] == "invalid_json" and "title:" in both["detail"] and "colour:" in both["detail"]


def test_a_key_given_twice_or_bad_specifications_get_the_forms_code_as_json_and_batch_items(
    client: TestClient,
) -> None:
    """A field given twice in a form got 422 repeated_field, a key given twice in a JSON product invalid_json (an
    item of a JSON batch invalid_item); specifications that are no object or list of pairs got invalid_specifications
    in a form and invalid_json or invalid_item as JSON. When it is all that is wrong, JSON answers the form's code
    now, in a batch for the item alone; with another fault too it is invalid_json, listing every fault."""
    json_type = {"content-type": "application/json"}
    twice = client.post("/predict", content='{"title": "mug", "title": "cup"}', headers=json_type).json()
    assert (twice["error"], twice["status"]) == ("repeated_field", 422)
    assert "'title' is given more than once" in twice["detail"]
    batch = '[{"product_id": "a", "title": "mug", "title": "cup"}, {"title": "mug"}]'
    first, second = client.post("/predict-batch", content=batch, headers=json_type).json()["results"]
    assert (first["error"]["error"], first["error"]["product_id"], second["error"]) == ("repeated_field", "a", None)
    form = client.post("/predict", files=[("title", (None, "mug")), ("title", (None, "cup"))]).json()
    assert form["error"] == "repeated_field"

    bad = {"title": "mug", "specifications": {"a": True}}
    assert set(_answers_in_every_form(client, bad).values()) == {(422, "invalid_specifications")}
    repeated_inside = '{"title": "mug", "specifications": {"Colour": "red", "Colour": "blue"}}'
    inside = client.post("/predict", content=repeated_inside, headers=json_type).json()
    assert inside["error"] == "invalid_specifications" and "in specifications" in inside["detail"]

    several = client.post("/predict", json={"title": 5, "specifications": {"a": True}}).json()
    assert several["error"] == "invalid_json" and "title:" in several["detail"], several
    both = client.post("/predict", content='{"title": "mug", "title": "cup", "colour": "red"}', headers=json_type)
    assert both.json()["error"] == "invalid_json"


def test_a_product_id_of_no_text_or_number_is_refused_saying_what_an_id_is(client: TestClient) -> None:
    """{"product_id": true} was refused 'product_id: Input should be a valid string', though a number is taken
    (d92d685): the refusal says an id is text or a number now, as JSON and as a batch item."""
    json_type = {"content-type": "application/json"}
    for given, said in (("true", "a number"), ("[7]", "a number"), ("NaN", "a finite number")):
        product = f'{{"title": "mug", "product_id": {given}}}'
        single = client.post("/predict", content=product, headers=json_type).json()
        item = client.post("/predict-batch", content=f"[{product}]", headers=json_type).json()["results"][0]["error"]
        for refused, error in ((single, "invalid_json"), (item, "invalid_item")):
            assert (refused["error"], refused["detail"]) == (error, f"product_id: Input should be text or {said}")


def _documented_error_codes() -> set[tuple[int, str]]:
    """(status, error) of each row of docs/api.md's table of status codes."""
    text = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    table = text.split("## Status codes", 1)[1].split("\n## ", 1)[0]
    return {
        (int(status), code)
        for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]*) \|", table, flags=re.MULTILINE)
        for code in re.findall(r"`([a-z_]+)`", codes)
    }


def test_every_error_the_api_answers_is_in_the_table_of_status_codes(
    client: TestClient, tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """docs/api.md's table of status codes is where an integrator maps the API's errors to what to do, but it left
    out a third of them: 503 review_store_unavailable (the one to retry) and 415 content_type among them, and the
    422s of a malformed JSON body, batch item or form. Every refusal provoked here, one per error code the API
    answers, is in it under its status now."""
    photo = jpeg_bytes()
    keyed = {"X-API-Key": API_KEY}
    review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/predict", {"content": b"--b\r\n", "headers": multipart}),
        ("GET", "/reviews", {}),
        ("GET", "/nope", {}),
        ("GET", f"/reviews/{review_id}/image", {"headers": keyed}),
        ("DELETE", "/health", {}),
        ("POST", "/predict-batch", {"json": [{"title": "mug"}] * 65}),
        ("POST", f"/reviews/{review_id}", {"json": {"category": "m" * 20_000}, "headers": keyed}),
        (
            "POST",
            "/predict",
            {"files": {"title": (None, "mug"), "image": ("a.jpg", photo + b"0" * (11 << 20), "image/jpeg")}},
        ),
        ("POST", "/predict", {"content": b"mug", "headers": {"Content-Type": "text/plain"}}),
        ("POST", "/predict", {"content": b"{}", "headers": {"Content-Type": "application/json; charset=latin-1"}}),
        (
            "POST",
            "/predict",
            {"content": b"{}", "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"}},
        ),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "image": ("a.svg", b"<svg/>", "image/svg+xml")}}),
        ("POST", "/predict", {"files": {"title": (None, "mug", "text/plain; charset=bogus")}}),
        ("POST", "/predict", {"json": {"title": ["mug"]}}),
        ("POST", "/predict-batch", {"json": [{"title": 5}]}),
        ("POST", "/predict-batch", {"json": []}),
        ("POST", "/predict", {"json": {"title": "!!!"}}),
        ("POST", "/predict-batch", {"files": {"photo": ("a.jpg", photo, "image/jpeg")}}),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "specifications": (None, "{")}}),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "image": ("a.jpg", photo[:100], "image/jpeg")}}),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "image": ("a.jpg", b"", "image/jpeg")}}),
        ("POST", "/predict-batch", {"files": {"products": (None, '[{"title": "mug", "image": "p"}]')}}),
        ("POST", "/predict", {"files": [("title", (None, "mug")), ("title", (None, "cup"))]}),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "colour": (None, "red")}}),
        ("POST", "/predict", {"files": {"title": ("title.txt", b"mug", "text/plain")}}),
        ("POST", "/predict", {"json": {"title": "mug\x00"}}),
        (
            "POST",
            "/predict-batch",
            {"json": [{"title": "mug", "product_id": "a"}, {"title": "cup", "product_id": "a"}]},
        ),
        ("POST", "/predict", {"json": {"title": "mug", "product_id": "a" * 300}}),
        ("POST", "/predict?top_k=0", {"json": {"title": "mug"}}),
        ("POST", "/predict", {"files": {"title": (None, "caf\xe9".encode("latin-1"))}}),
        ("POST", "/predict", {"files": {"title": (None, "mug"), "image": (None, photo)}}),
        ("POST", "/predict", {"json": {"title": "m" * 10_001}}),
        ("POST", "/explain?max_words=1000", {"json": {"title": "mug"}}),
        *[
            ("POST", f"/reviews/{review_id}", {"json": {"category": category}, "headers": keyed})
            for category in (
                "Mugs",
                "kitchen > mugs",
                "Home >  > Decor",
                "Kitchen",
                "Kitchen > Mugs > Tall",
                "Kitchen > Mugs\u200b",
                "Kitchen > Mugs\ue000",
            )
        ],
    ]
    answered = set()
    for method, path, options in requests:
        error = client.request(method, path, **options).json()
        error = error["results"][0]["error"] if "results" in error else error  # a batch item's own
        answered.add((error["status"], error["error"]))
    # a store gone away (503), and a queue closed, the server started without a key (403)
    for store, key, path in ((BrokenStore, API_KEY, "/ready"), (ReviewStore, None, "/reviews")):
        settings = ServeSettings(api_key=key)
        with TestClient(
            create_app(OneCategoryModel(), settings, store(f"sqlite:///{tmp_path / path[1:]}.db"))
        ) as other:
            error = other.get(path).json()
            answered.add((error["status"], error["error"]))
    assert len(answered) == len(requests) + 2, sorted(answered)  # each request provokes its own error
    assert sorted(answered - _documented_error_codes()) == []


#: products that /predict and /explain refuse before the model reads them, as JSON or as a form, and the refusal
_REFUSED_PRODUCTS = {
    "text too long": ({"title": "m" * 10_001}, None, "max_text_chars"),
    "title not text": ({"title": 5}, None, "invalid_json"),
    "unknown field": ({"title": "mug", "colour": "red"}, None, "unknown_field"),
    "nothing readable": ({"title": "!!!"}, None, "empty_product"),
    "form text too long": ({"title": "m" * 10_001}, {}, "max_text_chars"),
    "form specifications": ({"title": "mug", "specifications": "{"}, {}, "invalid_specifications"),
    "svg photo": (
        {"title": "mug"},
        {"image": ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")},
        "image_type",
    ),
    "empty photo": ({"title": "mug"}, {"image": ("a.jpg", b"", "image/jpeg")}, "image_empty"),
}


@pytest.mark.parametrize("path", ["/predict", "/explain"])
@pytest.mark.parametrize("refused", list(_REFUSED_PRODUCTS), ids=list(_REFUSED_PRODUCTS))
def test_a_refused_product_is_named_by_its_product_id_as_in_a_batch(
    client: TestClient, path: str, refused: str
) -> None:
    """ErrorOut's product_id is 'the product's product_id, when the request gave one', and a batch's item errors
    give it; /predict and /explain answered it null for every refusal of their input checks (text too long, a blank
    title, an unknown field, an SVG or empty photo, broken specifications...), only a photo that failed to decode
    naming its product. Each names it now (without the spaces around it, as it is answered)."""
    fields, files, error = _REFUSED_PRODUCTS[refused]
    product = {**fields, "product_id": " sku-7 "}
    if files is None:
        answer = client.post(path, json=product)
    else:  # every field a part: a multipart form, photo or not
        answer = client.post(path, files={name: (None, value) for name, value in product.items()} | files)
    assert (answer.json()["error"], answer.json()["product_id"]) == (error, "sku-7"), answer.text[:300]


def test_openapi_bounds_the_specifications_as_an_object_or_a_list(client: TestClient) -> None:
    """The limit of 1000 attributes was declared as `maxLength: 1000` beside the oneOf of an object and a list:
    JSON Schema applies maxLength to strings only, so the document let any number through. Each form now states
    it (maxProperties, maxItems): the number the API refuses past."""
    paths = client.get("/openapi.json").json()["paths"]
    declared = list(_properties_named(paths, "specifications"))
    assert len(declared) == 6  # the JSON and the multipart bodies of /predict, /explain and /predict-batch
    for schema in declared:
        assert "maxLength" not in schema
        attributes, null = schema["anyOf"]  # null: none, as left out
        assert null == {"type": "null"}
        as_object, as_pairs = attributes["oneOf"]
        assert (as_object["type"], as_object["maxProperties"]) == ("object", MAX_SPECIFICATIONS)
        assert (as_pairs["type"], as_pairs["maxItems"]) == ("array", MAX_SPECIFICATIONS)
    for count, allowed in ((MAX_SPECIFICATIONS, True), (MAX_SPECIFICATIONS + 1, False)):
        # null values, left out of the text, so that the text's own length limit stays out of the way
        for specifications in ({str(i): None for i in range(count)}, [{"value": None}] * count):
            answer = client.post("/predict", json={"title": "mug", "specifications": specifications})
            assert (answer.status_code == 200) is allowed, answer.text[:200]


@pytest.mark.parametrize("form", ["object", "pairs"])
def test_too_many_specifications_are_refused_saying_how_many_were_sent(client: TestClient, form: str) -> None:
    """a27068f moved the limit onto each form, where pydantic's check of an object stops counting at it: 1001
    attributes were refused as 'specifications.object: Dictionary should have at most 1000 items after validation,
    not more'. Either form, as JSON or as a multipart field, is now refused saying how many it holds."""
    count = MAX_SPECIFICATIONS + 1
    specifications = {str(i): None for i in range(count)} if form == "object" else [{"value": None}] * count
    said = f"specifications: {count} attributes exceed the limit of {MAX_SPECIFICATIONS}"
    as_json = client.post("/predict", json={"title": "mug", "specifications": specifications})
    as_form = client.post(
        "/predict",
        data={"title": "mug"},
        files={"specifications": (None, json.dumps(specifications), "application/json")},
    )
    for refused in (as_json, as_form):
        assert (refused.status_code, refused.json()["detail"]) == (422, said), refused.text[:300]


def test_every_route_documents_what_the_request_guard_answers_on_it(tmp_path: Path) -> None:
    """The guard around every request answers 413 to a body declared over max_request_bytes and 504 past
    request_timeout_s, on any route, and 408 where a body is read: GET /reviews answered 504 and GET /health 413
    though their schemas listed neither, nor did POST /reviews/{id} list 408."""
    settings = ServeSettings(api_key=API_KEY, request_timeout_s=LOADED_MACHINE_TIMEOUT_S, max_request_bytes=1_000)
    store = HungStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    review_id = store.record(mug_for_review())
    app = create_app(OneCategoryModel(), settings, store)

    async def request_each() -> dict[tuple[str, str], httpx.Response]:
        async def unfinished_body() -> AsyncIterator[bytes]:
            yield b'{"category": '
            await asyncio.Event().wait()  # the rest never arrives

        keyed = {"X-API-Key": API_KEY}
        store.hang.set()  # the listing waits for the store past the limit
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
                requests = {
                    ("get", "/reviews"): http.get("/reviews", headers=keyed),
                    ("get", "/health"): http.request("GET", "/health", content=b"x" * 1_001),
                    ("post", "/reviews/{review_id}"): http.post(
                        f"/reviews/{review_id}",
                        content=unfinished_body(),
                        headers={**keyed, "Content-Type": "application/json"},
                    ),
                }
                return dict(zip(requests, await asyncio.gather(*requests.values()), strict=True))
        finally:
            store.release.set()

    answers = asyncio.run(request_each())
    paths = app.openapi()["paths"]
    statuses = {route: (answer.status_code, answer.json()["error"]) for route, answer in answers.items()}
    assert statuses == {
        ("get", "/reviews"): (504, "timeout"),
        ("get", "/health"): (413, "max_request_bytes"),
        ("post", "/reviews/{review_id}"): (408, "request_timeout"),
    }
    for (method, path), answer in answers.items():
        documented = paths[path][method]["responses"].get(str(answer.status_code), {})
        schema = documented.get("content", {}).get("application/json", {}).get("schema", {})
        assert schema.get("$ref", "").endswith("/ErrorOut"), (method, path, answer.status_code)
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert {"413", "504"} <= set(operation["responses"]), (method, path)
            assert ("408" in operation["responses"]) == (method == "post"), (method, path)


class HungStore(ReviewStore):
    """A review store whose reads and corrections hang, once ``hang`` is set, until ``release`` is (a stuck
    database connection); ``entered`` and ``left`` count the calls that reached it and those that ended."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.hang, self.release = threading.Event(), threading.Event()
        self.entered: list[str] = []
        self.left: list[str] = []

    def _hung(name: str) -> Any:  # a method factory, run in the class body
        def call(self: HungStore, *args: Any, **kwargs: Any) -> Any:
            if self.hang.is_set():
                self.entered.append(name)
                self.release.wait(15)
                self.left.append(name)
            return getattr(ReviewStore, name)(self, *args, **kwargs)

        return call

    items, count, get, image, submit = map(_hung, ("items", "count", "get", "image", "submit"))


def test_the_review_routes_answer_504_at_the_limit_while_the_store_hangs(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """/ready and the review queue's routes ran their store calls in Starlette's threadpool, which does not give
    up: a 504 came only once the store answered (never, from a stuck connection). They answer at the limit now,
    and a correction left running says that it may still be saved, and that sending it again is safe."""
    store = HungStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    review_id = store.record(mug_for_review(jpeg_bytes()))
    keyed = {"X-API-Key": API_KEY}
    app = create_app(
        OneCategoryModel(), ServeSettings(api_key=API_KEY, request_timeout_s=LOADED_MACHINE_TIMEOUT_S), store
    )
    reads = [("GET", "/ready"), ("GET", "/reviews"), ("GET", f"/reviews/{review_id}"),
             ("GET", f"/reviews/{review_id}/image")]  # fmt: skip
    bodies = {**dict.fromkeys(reads), ("POST", f"/reviews/{review_id}"): {"category": "Home > Decor"}}

    async def request_each() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            return await asyncio.gather(
                *(http.request(*call, headers=keyed, json=body) for call, body in bodies.items())
            )

    store.hang.set()
    started = time.monotonic()
    answers = {
        call: (a.status_code, a.json()["error"], a.json()["detail"])
        for call, a in zip(bodies, asyncio.run(request_each()), strict=True)
    }
    assert time.monotonic() - started < 12  # the hung store would hold them 15 s
    assert {status_error[:2] for status_error in answers.values()} == {(504, "timeout")}
    submitted = answers["POST", f"/reviews/{review_id}"][2]
    assert submitted.startswith(
        f"the request was not answered within the limit request_timeout_s={LOADED_MACHINE_TIMEOUT_S}; "
    )
    assert f"the correction may still be saved (GET /reviews/{review_id} shows whether it was)" in submitted
    assert "sending it again is safe" in submitted
    assert "may still be saved" not in answers["GET", "/reviews"][2]
    store.hang.clear()
    store.release.set()
    # the abandoned correction ends as one transaction: saved whole
    _until(lambda: store.get(review_id).status == "reviewed", "the abandoned correction was not saved")
    assert store.get(review_id).corrected_category == "Home > Decor"


def test_a_hung_review_store_holds_a_few_threads_and_predictions_go_on(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """Every review-store call abandoned at the timeout goes on in its thread: behind a stuck database, 45
    listings took all 40 of the threads that photo checks and Starlette share, and a prediction with a photo
    answered 504. Store calls now hold a few threads at most; the others wait, answer 504 and never run."""
    store = HungStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    # a limit long enough for the first store calls' threads to start on a loaded machine (a call abandoned before
    # its thread started never runs: at 0.5 s none had, once, and the test had nothing to check)
    app = create_app(OneCategoryModel(), ServeSettings(api_key=API_KEY, request_timeout_s=3), store)

    async def listings_then_prediction() -> tuple[list[httpx.Response], httpx.Response, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as http:
            listings = [asyncio.ensure_future(http.get("/reviews", headers={"X-API-Key": API_KEY})) for _ in range(45)]
            deadline = time.monotonic() + 10
            while not store.entered and time.monotonic() < deadline:  # the store holds threads: the case to test
                await asyncio.sleep(0.05)
            photo = {"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}
            predicted = await http.post("/predict", data={"title": "mug"}, files=photo)
            answers = await asyncio.gather(*listings)  # each at the limit: no store call starts after it
            hung = len(store.entered)
            store.hang.clear()
            store.release.set()
            while len(store.left) < hung:  # the abandoned threads end (before the loop does)
                await asyncio.sleep(0.05)
        return answers, predicted, hung

    store.hang.set()
    listings, predicted, hung = asyncio.run(listings_then_prediction())
    assert {(answer.status_code, answer.json()["error"]) for answer in listings} == {(504, "timeout")}
    assert predicted.status_code == 200, predicted.text
    assert 1 <= hung <= 8


def test_the_openapi_schema_is_built_with_the_app_not_by_the_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI built /openapi.json at its first request, in the event loop where nothing interrupts it: a build
    slower than request_timeout_s (tens of milliseconds, more on a busy machine) ended with the timeout raised
    after the answer had started, a cut connection. The app builds it once, when it is created."""
    build = fastapi.applications.get_openapi

    def slow_build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(LOADED_MACHINE_TIMEOUT_S + 1)  # a busy machine
        return build(*args, **kwargs)

    monkeypatch.setattr(fastapi.applications, "get_openapi", slow_build)
    settings = ServeSettings(request_timeout_s=LOADED_MACHINE_TIMEOUT_S)
    app = create_app(OneCategoryModel(), settings, ReviewStore("sqlite://"))
    with TestClient(app) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200 and "/predict" in answer.json()["paths"]


def test_a_correction_waiting_for_a_lock_ends_at_the_request_timeout_on_postgresql(postgres_url: str) -> None:
    """A correction of a record that another session holds locked (an operator's open transaction) answered 504
    at the limit, but its statement waited on in the database for as long as the lock was held, holding a
    thread and a connection. The server's store has PostgreSQL cancel it at request_timeout_s: it ends,
    writing nothing."""
    keyed = {"X-API-Key": API_KEY}
    settings = ServeSettings(api_key=API_KEY, request_timeout_s=LOADED_MACHINE_TIMEOUT_S, review_db=postgres_url)
    operator = sa.create_engine(postgres_url)
    with TestClient(create_app(OneCategoryModel(), settings)) as client, operator.connect() as session:
        review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]
        lock = session.begin()
        session.execute(sa.text(f"SELECT id FROM prodcat_review_items WHERE id = {review_id} FOR UPDATE"))
        answer = client.post(f"/reviews/{review_id}", json={"category": "Home > Decor"}, headers=keyed)
        assert (answer.status_code, answer.json()["error"]) == (504, "timeout")
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%prodcat_review%'"
        )
        deadline = time.monotonic() + 10
        with operator.connect() as monitor:
            while monitor.execute(waiting).scalar_one():
                assert time.monotonic() < deadline, "the correction still waits for the lock"
                time.sleep(0.1)
        lock.rollback()
        assert client.get(f"/reviews/{review_id}", headers=keyed).json()["status"] == "pending"
    operator.dispose()


def test_a_streamed_body_over_the_limit_is_413_on_every_endpoint(tmp_path) -> None:
    settings = ServeSettings(api_key=API_KEY, max_request_bytes=1_000)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), settings, store)) as client:
        review_id = client.post("/predict", json={"title": "mug"}).json()["review_id"]

        def chunks():  # no Content-Length: only counting the bytes as they arrive can refuse it
            yield b'{"category": "'
            yield b"x" * 2_000
            yield b'"}'

        headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
        for path in (f"/reviews/{review_id}", "/predict"):
            refused = client.post(path, content=chunks(), headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (413, "max_request_bytes"), path


def test_a_product_the_model_reads_nothing_of_is_refused_not_given_the_class_prior(
    tiny_training, tmp_path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A text-only model and a product with only a photo: the checks let it through (it has a photo), but the
    model reads none of it, so its answer would be the class prior. Refused (422), in a batch for that item
    only, and never queued for review, as `prodcat predict` gives such a product no category."""
    from prodcat.predict import Predictor

    settings = ServeSettings(record_all=True)
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(Predictor.load(tiny_training.bundle), settings, store)) as client:
        refused = client.post("/predict", files={"image": ("mug.jpg", jpeg_bytes(), "image/jpeg")})
        assert (refused.status_code, refused.json()["error"]) == (422, "nothing_to_classify")
        assert "this model does not read photos" in refused.json()["detail"]
        explained = client.post("/explain", files={"image": ("mug.jpg", jpeg_bytes(), "image/jpeg")})
        assert (explained.status_code, explained.json()["error"]) == (422, "nothing_to_classify")

        products = json.dumps([{"image": "photo"}, {"title": "ceramic coffee mug"}])
        files = {"photo": ("mug.jpg", jpeg_bytes(), "image/jpeg")}
        results = client.post("/predict-batch", data={"products": products}, files=files).json()["results"]
        assert results[0]["error"]["error"] == "nothing_to_classify" and results[0]["prediction"] is None
        assert results[1]["prediction"]["category"] == "Kitchen"
        assert results[1]["prediction"]["modalities_used"] == ["text"]
        assert store.count("pending") + store.count("recorded") == 1  # the text product's record only


def test_a_text_of_no_word_the_model_knows_is_refused_saying_so(
    tiny_training, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A title in a script the catalogue never used has letters, yet none of its words is one the text model
    knows: refused 422 nothing_to_classify, told to 'give a title or description with a letter or a digit'
    though it had some. It is told that none of its words is one the model knows, and what the model reads."""
    from prodcat.predict import Predictor

    with TestClient(create_app(Predictor.load(tiny_training.bundle), ServeSettings())) as client:
        unknown = client.post("/predict", json={"title": "सिरेमिक कॉफ़ी मग"})
        assert (unknown.status_code, unknown.json()["error"]) == (422, "nothing_to_classify")
        assert unknown.json()["detail"] == (
            "nothing to classify: the model reads text, and found none it could use in this product: none of the "
            "words in its title and description is one the model knows (it knows only the words of the products it "
            "was trained on)"
        )
        # beside a photo this model does not read, each is said
        files = {"image": ("mug.jpg", jpeg_bytes(), "image/jpeg")}
        both = client.post("/predict", data={"title": "सिरेमिक कॉफ़ी मग"}, files=files).json()["detail"]
        assert both.endswith("was trained on); this model does not read photos")


def test_a_bundle_recording_no_modalities_refuses_a_text_it_cannot_read_as_reading_text(
    tiny_bundle_recording_no_modalities,
) -> None:
    """The API read the modalities of the manifest raw, none for an older bundle: a text of no word the model knows
    was refused as 'the model reads its inputs [...]: this model does not read text'. It goes by the bundle's
    accessor, as prodcat predict does: the model reads text and image, none of whose words it knows."""
    from prodcat.predict import Predictor

    with TestClient(create_app(Predictor.load(tiny_bundle_recording_no_modalities), ServeSettings())) as client:
        refused = client.post("/predict", json={"title": "सिरेमिक कॉफ़ी मग"})
    assert (refused.status_code, refused.json()["error"]) == (422, "nothing_to_classify")
    assert refused.json()["detail"].startswith(
        "nothing to classify: the model reads text and image, and found none it could use in this product: none of "
        "the words in its title and description is one the model knows"
    )


def test_a_json_body_starting_with_a_byte_order_mark_is_read_as_a_batch_is(
    client: TestClient, jpeg_bytes: Callable[..., bytes]
) -> None:
    """A UTF-8 BOM (Notepad's files, PowerShell's requests): /predict-batch read past it, /predict answered
    422 'expected value at line 1 column 1'."""
    bom = b"\xef\xbb\xbf"
    headers = {"content-type": "application/json"}
    single = client.post("/predict", content=bom + b'{"title": "ceramic mug"}', headers=headers)
    assert single.status_code == 200 and single.json()["category"] == "Kitchen > Mugs"
    batch = client.post("/predict-batch", content=bom + b'[{"title": "ceramic mug"}]', headers=headers)
    assert batch.status_code == 200 and batch.json()["results"][0]["prediction"]["category"] == "Kitchen > Mugs"
    form = {"title": "ceramic mug", "specifications": '\ufeff{"Material": "Ceramic"}'}
    photo = {"image": ("mug.jpg", jpeg_bytes(), "image/jpeg")}
    assert client.post("/predict", data=form, files=photo).status_code == 200


def test_each_refused_item_of_a_batch_names_its_product(client: TestClient, jpeg_bytes: Callable[..., bytes]) -> None:
    """A batch's error carries the product_id its item gave, as a prediction does: not only its index, even
    where one refusal (a corrupt photo part) is shared by several items."""
    items = [
        {"product_id": "ok-1", "title": "ceramic mug"},
        {"product_id": "bad-field", "title": "mug", "colour": "red"},  # does not parse: its id still names it
        {"product_id": "no-text", "title": "..."},
        {"title": "..."},  # no id given: none named
    ]
    results = client.post("/predict-batch", json=items).json()["results"]
    assert results[0]["prediction"]["product_id"] == "ok-1"
    named = [(r["error"]["error"], r["error"]["product_id"]) for r in results[1:]]
    assert named == [("unknown_field", "bad-field"), ("empty_product", "no-text"), ("empty_product", None)]

    products = [{"product_id": f"shared-{i}", "title": "mug", "image": "photo"} for i in range(2)]
    files = {"photo": ("mug.jpg", jpeg_bytes()[:40], "image/jpeg")}  # cut short: it does not decode
    results = client.post("/predict-batch", data={"products": json.dumps(products)}, files=files).json()["results"]
    assert [(r["error"]["error"], r["error"]["product_id"]) for r in results] == [
        ("image_corrupt", "shared-0"),
        ("image_corrupt", "shared-1"),
    ]


def test_a_photo_in_a_format_not_decoded_is_named(client: TestClient) -> None:
    """An iPhone's HEIC was answered 'image content is not an image', which sends the seller looking for a text file."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    refused = client.post("/predict", data={"title": "mug"}, files={"image": ("IMG_0001.HEIC", heic)})
    assert (refused.status_code, refused.json()["error"]) == (415, "image_type")
    assert refused.json()["detail"].startswith("image content is a HEIC/HEIF photo (as iPhones save them); accepted")
    text = client.post("/predict", data={"title": "mug"}, files={"image": ("a.jpg", b"just some notes")})
    assert text.json()["detail"].startswith("image content is not an image;")


@pytest.mark.skipif(not avif_decoded(), reason="this Pillow does not decode AVIF")
def test_an_avif_photo_is_accepted_as_prodcat_predict_reads_it(client: TestClient) -> None:
    """An AVIF photo was answered 415 'image content is an AVIF photo': the API accepts by default every type
    the decoder reads, as prodcat predict and the app do."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "AVIF")
    answer = client.post("/predict", data={"title": "mug"}, files={"image": ("mug.avif", buffer.getvalue())})
    assert answer.status_code == 200, answer.json()
    cut = client.post("/predict", data={"title": "mug"}, files={"image": ("mug.avif", buffer.getvalue()[:-40])})
    assert (cut.status_code, cut.json()["error"]) == (422, "image_corrupt")


def test_a_server_without_a_key_says_how_to_give_it_one(tmp_path) -> None:
    """A server started without a key answered the queue's routes 403 'the server has no PRODCAT_API_KEY',
    though --api-key-file is the other way README gives (and the one that keeps the key out of the environment)."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    with TestClient(create_app(OneCategoryModel(), ServeSettings(), store)) as client:
        closed = client.get("/reviews", headers={"X-API-Key": API_KEY})
    assert (closed.status_code, closed.json()["error"]) == (403, "review_closed")
    assert "PRODCAT_API_KEY" in closed.json()["detail"] and "--api-key-file" in closed.json()["detail"]


def test_serve_on_a_port_in_use_says_so_before_loading_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A busy --port was found by uvicorn only after the bundle had loaded (seconds, minutes for a large one),
    and said in a JSON log line ('[Errno 98] error while attempting to bind ...'), exit 3; prodcat app said it
    first, in one line. serve does too now, before reading the bundle (here a folder that is none)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", str(tmp_path / "no-model"), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert error.strip() == f"error: port {port} on 127.0.0.1 is in use: stop what listens there or pass another --port"


def test_image_types_read_alike_from_the_flag_and_its_variable_and_unknown_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PRODCAT_IMAGE_TYPES=jpeg,png, written as --image-types takes it, ended serve in a pydantic-settings
    traceback (the variable had to be JSON); and a name the content sniffer never gives (--image-types jpg,png)
    started a server that refused every JPEG photo 415."""
    monkeypatch.setenv("PRODCAT_IMAGE_TYPES", "JPEG, png")
    assert ServeSettings().image_types == ("jpeg", "png")
    monkeypatch.setenv("PRODCAT_IMAGE_TYPES", '["jpeg", "png"]')
    assert ServeSettings().image_types == ("jpeg", "png")
    monkeypatch.delenv("PRODCAT_IMAGE_TYPES")
    assert main(["serve", str(tmp_path / "no-model"), "--image-types", "jpg,png"]) == 2
    assert "jpg: not a photo type decoded here; choose among jpeg,png," in capsys.readouterr().err
    with pytest.raises(ValueError, match="no photo type given"):
        ServeSettings(image_types=" , ")


def test_a_refused_serve_setting_is_one_line_naming_its_flag_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PRODCAT_PORT=abc printed 'error: invalid serve settings:' above pydantic's report: the field name, the
    message with its type code, and a link to pydantic's documentation, five lines for one mistake."""
    monkeypatch.setenv("PRODCAT_PORT", "abc")
    assert main(["serve", str(tmp_path / "no-model"), "--max-pixels", "many"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --port / PRODCAT_PORT: Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc')",
        "error: --max-pixels / PRODCAT_MAX_PIXELS: Input should be a valid integer, unable to parse string as an "
        "integer (got 'many')",
    ]
    monkeypatch.delenv("PRODCAT_PORT")
    monkeypatch.delenv("PRODCAT_MAX_PIXELS")  # set by the flag above
    monkeypatch.setenv("PRODCAT_API_KEY", " ")
    assert main(["serve", str(tmp_path / "no-model")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: PRODCAT_API_KEY: the API key is empty: set PRODCAT_API_KEY to the key, or unset it"
    )


@pytest.mark.parametrize(
    ("flag", "value", "line"),
    [
        (
            "--image-types",
            "jpg",
            "error: --image-types / PRODCAT_IMAGE_TYPES: jpg: not a photo type decoded here; choose among "
            f"{','.join(decoded_image_types())}",
        ),
        (
            "--image-types",
            "[jpeg",
            "error: --image-types / PRODCAT_IMAGE_TYPES: '[jpeg' is not a JSON list (Expecting value at character 1); "
            'give the types as jpeg,png or ["jpeg", "png"]',
        ),
        (
            "--cors-origins",
            "https://shop.example.com/",
            "error: --cors-origins / PRODCAT_CORS_ORIGINS: 'https://shop.example.com/' is not an origin: give "
            "scheme://host[:port] as a browser sends it, e.g. https://shop.example.com or http://localhost:3000 (no "
            "path, no trailing slash), or * for any origin",
        ),
        (
            "--log-level",
            "loud",
            "error: --log-level / PRODCAT_LOG_LEVEL: 'loud' is no log level; choose among "
            "debug,info,warning,error,critical",
        ),
        (
            "--max-pixels",
            "0",
            "error: --max-pixels / PRODCAT_MAX_PIXELS: Input should be greater than or equal to 1 (got '0')",
        ),
    ],
)
def test_a_refused_serve_setting_says_the_value_given_once(
    flag: str,
    value: str,
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refusal in prodcat's own words, which name what they refuse, was followed by the value again: '--image-types
    / PRODCAT_IMAGE_TYPES: jpg: not a photo type decoded here; ... (got 'jpg')', --review-db's path three times.
    pydantic's words name no value, so it follows them. --log-level loud ended in the logging module's traceback.
    --image-types '[jpeg' (a JSON list cut short) was said in json's words alone, naming nothing given."""
    variable = f"PRODCAT_{flag.removeprefix('--').replace('-', '_').upper()}"
    monkeypatch.setenv(variable, value)  # the flag sets it: unset again after the test
    assert main(["serve", str(tmp_path / "no-model"), flag, value]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize("level", ["critical", " WARN", "Debug"])
def test_every_log_level_the_logging_module_takes_is_taken(level: str) -> None:
    """The check of --log-level (52e2a7a) took debug, info, warning and error only: PRODCAT_LOG_LEVEL=critical (a
    quiet server) or warn, which the logging module took, no longer started the server."""
    assert ServeSettings(log_level=level).log_level == level.strip().lower()


def test_a_default_top_k_above_the_largest_a_caller_may_ask_for_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """prodcat serve --top-k 30 (under the default --max-top-k 20) started a server whose every answer held 30
    categories, while a caller asking for ?top_k=30 got 422."""
    with pytest.raises(ValidationError, match="lower than --top-k"):
        ServeSettings(top_k=30)
    assert ServeSettings(top_k=30, max_top_k=30).top_k == 30
    assert main(["serve", str(tmp_path / "no-model"), "--top-k", "30"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --max-top-k / PRODCAT_MAX_TOP_K: 20 is lower than --top-k / PRODCAT_TOP_K (30), the categories an "
        "answer holds by default: raise --max-top-k or lower --top-k"
    ]


def test_a_review_db_path_is_refused_naming_its_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """prodcat serve --review-db reviews.db (the SQLite file's path) failed once the model had loaded, in
    SQLAlchemy's words ('Could not parse SQLAlchemy URL from given URL string'): refused first now, as
    train --feedback refuses it, naming the URL to give; from PRODCAT_REVIEW_DB too."""
    refusal = (
        "error: --review-db / PRODCAT_REVIEW_DB: reviews.db is not a database URL: give sqlite:///reviews.db for the "
        "SQLite file, postgresql+psycopg://USER@HOST/DB for a PostgreSQL database"
    )
    assert main(["serve", str(tmp_path / "no-model"), "--review-db", "reviews.db"]) == 2
    assert capsys.readouterr().err.splitlines() == [refusal]
    monkeypatch.setenv("PRODCAT_REVIEW_DB", "reviews.db")
    assert main(["serve", str(tmp_path / "no-model")]) == 2
    assert capsys.readouterr().err.splitlines() == [refusal]
    assert ServeSettings(review_db="sqlite:///reviews.db").review_db == "sqlite:///reviews.db"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite+pysqlite:///:memory:?cache=1"]
)
def test_a_review_db_naming_no_file_is_refused(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prodcat serve --review-db sqlite:// (or sqlite:///:memory:) started, then answered every prediction sent to
    review 503 review_store_unavailable ('no such table'): each of the store's connections had an in-memory database
    of its own, the tables in one only; and it would have lost the queue when it stopped."""
    assert main(["serve", str(tmp_path / "no-model"), "--review-db", url]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --review-db / PRODCAT_REVIEW_DB: {url} names no file but SQLite's in-memory database, one per "
        "connection and lost when the process ends: give sqlite:///FILE (e.g. sqlite:///prodcat-reviews.db)"
    ]


@pytest.mark.parametrize("key", ["ключ", "clé", " padded-key "])
def test_an_api_key_no_client_can_send_is_refused_at_start(key: str) -> None:
    """A server started with PRODCAT_API_KEY='ключ' answered 401 to every review call whatever the client sent
    (a header value is read as Latin-1 bytes), 'clé' to curl's UTF-8, ' padded-key ' to every client (a header
    value loses its outer spaces)."""
    with pytest.raises(ValidationError, match="printable ASCII"):
        ServeSettings(api_key=key)
    unchecked = ServeSettings.model_construct(api_key=SecretStr(key))
    with TestClient(create_app(OneCategoryModel(), unchecked, ReviewStore("sqlite://"))) as client:
        assert client.get("/reviews", headers={"X-API-Key": key.strip().encode("utf-8")}).status_code == 401


def test_a_refused_key_is_named_by_the_file_it_was_read_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key from --api-key-file that no client can send was reported as 'error: PRODCAT_API_KEY: ...', a
    variable the user never set: the line names the file and its flag, and never the key."""
    key_file = tmp_path / "key"
    key_file.write_text("clé-secrète\n", encoding="utf-8")
    assert main(["serve", str(tmp_path / "no-model"), "--api-key-file", str(key_file)]) == 2
    error = capsys.readouterr().err
    assert error.strip() == (
        f"error: --api-key-file {key_file}: the API key must be printable ASCII with no space at either end "
        "(it travels in the X-API-Key header)"
    )
    assert "PRODCAT_API_KEY" not in error and "secr" not in error


def test_serve_help_states_each_default_once() -> None:
    """--image-types read '(default: every type decoded) (default jpeg,png,...; env PRODCAT_IMAGE_TYPES)'."""
    from prodcat.cli import build_parser

    parser = build_parser()
    serve = next(action for action in parser._actions if action.dest == "command").choices["serve"]
    helps = {action.dest: action.help for action in serve._actions if action.help and "env PRODCAT_" in action.help}
    assert "image_types" in helps
    assert all(text.count("(default") <= 1 for text in helps.values()), helps


#: the API's own OpenAPI schema: it depends on the settings only (the limits it states), not on the model or store
CONTRACT_SETTINGS = ServeSettings(api_key=API_KEY)
CONTRACT = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(OneCategoryModel(), CONTRACT_SETTINGS, ReviewStore("sqlite://"))
)
CONTRACT.config.update(headers={"X-API-Key": API_KEY})
CONTRACT.config.generation.update(modes=list(GenerationMode))


@pytest.fixture
def served(tmp_path: Path, jpeg_bytes: Callable[..., bytes]) -> FastAPI:
    """An app serving :data:`CONTRACT` with one review record (id 1) with a photo, so that the record routes
    answer 200 as well as 404."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'reviews.db'}")
    assert store.record(mug_for_review(jpeg_bytes())) == 1
    return create_app(OneCategoryModel(), CONTRACT_SETTINGS, store)


@CONTRACT.parametrize()
@hypothesis.settings(derandomize=True, database=None, deadline=None, max_examples=10,
                     suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
def test_every_answer_matches_the_openapi_schema(case: schemathesis.Case, served: FastAPI) -> None:
    """Valid and invalid requests generated from /openapi.json (boundaries of every parameter included): no
    server error, and every status code, content type and body is one the schema documents for that route."""
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
    case.call_and_validate(app=served, checks=checks)


#: the variables run_serve sets from its flags, for the worker processes
SERVE_VARIABLES = ("PRODCAT_API_KEY", "PRODCAT_BUNDLE", "PRODCAT_PORT", "PRODCAT_WORKERS", "PRODCAT_REVIEW_DB")


class ServedWithWorkers(NamedTuple):
    status: int
    #: what uvicorn was asked to serve: the workers' app factory, by its import path
    served: list[str]
    #: the levels this process's logging was set to, as JSON lines
    json_logging: list[str]


def serve_with_workers(arguments: list[str], monkeypatch: pytest.MonkeyPatch) -> ServedWithWorkers:
    """``prodcat serve ARGUMENTS --workers 2`` in this process, uvicorn and the process-wide JSON logging replaced.
    Port 0 (any free one) passes serve's check that the port is free whatever else runs on the machine: a port found
    free, then given, could be taken meanwhile by another process, and the check then refused it."""
    import uvicorn

    import prodcat.serve.logs

    run = ServedWithWorkers(0, [], [])
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: run.served.append(app))
    monkeypatch.setattr(prodcat.serve.logs, "configure_json_logging", run.json_logging.append)
    return run._replace(status=main(["serve", *arguments, "--workers", "2", "--port", "0"]))


def _serve_in_process(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[Any, dict[str, Any]]:
    """``prodcat serve`` of the tiny bundle with ``flags`` run in this process, uvicorn and the process-wide settings
    replaced: the app and the options it gave ``uvicorn.run``. Port 0 as in :func:`serve_with_workers`."""
    import uvicorn

    import prodcat.serve.logs

    given: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: given.append((app, options)))
    monkeypatch.setattr(prodcat.serve.logs, "configure_json_logging", lambda level: None)
    monkeypatch.setattr(sys, "setswitchinterval", lambda interval: None)  # create_app_from_env's, process-wide
    review_db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["serve", str(tiny_training.bundle), "--review-db", review_db, "--port", "0", *flags]) == 0
    return given[0]


def test_serve_keeps_an_idle_connection_open_as_long_as_asked(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn closed an idle keep-alive connection after its own 5 s, which no option changed and no Keep-Alive
    header said (seen black-box: a connection left idle after GET /health closed at 5.0 s): a client pool or load
    balancer keeping idle connections longer sent requests on connections the server was closing, a POST failing
    with a connection reset. --keep-alive-s (PRODCAT_KEEP_ALIVE_S) sets it, 5 s by default as before."""

    def kept(*flags: str) -> int:
        return _serve_in_process(tiny_training, tmp_path, monkeypatch, *flags)[1]["timeout_keep_alive"]

    assert (kept(), kept("--keep-alive-s", "75")) == (5, 75)
    monkeypatch.setenv("PRODCAT_KEEP_ALIVE_S", "65")
    assert kept() == 65


def _served_by_serve_options(options: dict[str, Any], metrics: Any = None) -> tuple[Any, threading.Thread, int]:
    """A uvicorn server in a thread, with the options ``prodcat serve`` gave ``uvicorn.run`` (its HTTP protocol among
    them), serving an app that reads the request's body and answers 200: what is tested is what happens before a
    request reaches the app. ``metrics``: the app's ``state.metrics``, as prodcat's app has its ``ApiMetrics``.
    Returns the server, its thread and its port (:func:`_served_in_thread`); ``server.config.app.state.begun`` lists
    the paths of the requests that reached the app (their heads read, counted in flight), for
    :func:`_until_the_app_has_begun`."""
    import types

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app.state.begun.append(scope["path"])  # type: ignore[attr-defined]
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    app.state = types.SimpleNamespace(metrics=metrics, begun=[])  # type: ignore[attr-defined]
    return _served_in_thread(app, options)


def _served_in_thread(app: Any, options: dict[str, Any]) -> tuple[Any, threading.Thread, int]:
    """``app`` served by uvicorn in a thread, on a free port, with the options ``prodcat serve`` gave ``uvicorn.run``
    (its HTTP protocol among them). Returns the server, its thread and its port."""
    import socket

    import uvicorn

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    kept = {
        name: options[name] for name in ("timeout_keep_alive", "http", "log_config", "access_log") if name in options
    }
    server = uvicorn.Server(uvicorn.Config(app, **kept))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    _until(lambda: server.started, "the server did not start")
    return server, thread, listening.getsockname()[1]


#: how long a test waits, at the most, for a server in a thread to reach a state: a deadline, not a time measured
#: (on 2 cores at load 16 a thread can wait seconds for the interpreter)
STATE_DEADLINE_S = 120


def _until(reached: Callable[[], object], failure: str) -> None:
    """Return once ``reached()`` is true; fail saying ``failure`` when it is not after STATE_DEADLINE_S."""
    deadline = time.monotonic() + STATE_DEADLINE_S
    while not reached():
        assert time.monotonic() < deadline, f"{failure} within {STATE_DEADLINE_S} s"
        time.sleep(0.01)


def _until_the_app_has_begun(server: Any, requests: int) -> None:
    """Return once ``requests`` requests reached the app of :func:`_served_by_serve_options`: each then is in flight
    until its body comes. A fixed 0.5 s wait for that was short on a loaded machine, the request counted after the
    test's next one (200 for the 503 expected)."""
    _until(lambda: len(server.config.app.state.begun) >= requests, f"{requests} requests did not reach the app")


def _answer_to(port: int, sent: bytes, wait_s: float = 15.0) -> bytes:
    """What the server at ``port`` answers to ``sent`` (b'' when it closes without a word), read until it closes the
    connection; fails when it has not closed it within ``wait_s``."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as connection:
        with contextlib.suppress(ConnectionResetError):  # refused while sending: its answer is still to be read
            connection.sendall(sent)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"the connection was still open after {wait_s} s, having received {received[:200]!r}")
    return received


def test_serve_bounds_a_request_head_in_time_and_size(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn bounds a request's head neither in time nor in size, and every limit of the app starts once the head
    has arrived (seen black-box on `prodcat serve models/demo`): a connection that sent nothing, or a header byte
    every 2 s (slowloris), was still open 30 s later, unanswered; 203 MB of headers on one connection grew the server
    by 197 MB, unanswered, until the client closed it. Now a silent connection is closed after --keep-alive-s, a head
    not arrived within --request-timeout-s gets 408 request_timeout, and one over 64 KiB 431, each in the API's error
    shape, the connection closed; a request after them is answered."""
    from prodcat.serve.schemas import ErrorOut

    _, options = _serve_in_process(
        tiny_training, tmp_path, monkeypatch, "--keep-alive-s", "1", "--request-timeout-s", "1"
    )
    server, thread, port = _served_by_serve_options(options)
    try:
        assert _answer_to(port, b"") == b""  # closed
        slow = _answer_to(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        head_too_long = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 1024 * 1024 + b"\r\n\r\n"
        long = _answer_to(port, head_too_long)
        assert _answer_to(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(b"\r\n\r\nok")
    finally:
        server.should_exit = True
        thread.join(10)
    for answer, status, error, limit in (
        (slow, 408, "request_timeout", "request_timeout_s"),
        (long, 431, "request_header_fields_too_large", None),
    ):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode(), answer[:300]
        out = ErrorOut.model_validate_json(body)
        assert (out.status, out.error, out.limit) == (status, error, limit)
        assert f"x-request-id: {out.request_id}".encode() in head.split(b"\r\n")


def test_serve_answers_408_to_a_body_not_arrived_in_time_and_serves_on(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose body has not arrived within --request-timeout-s gets 408 request_timeout naming the limit (its
    fault, not the server's: not 504), and the server answers the next request. ``prodcat serve``'s own app and
    uvicorn options, served in a thread at a 1 s limit: tests/test_serve.py's server, whose limit is the 20 s a loaded
    CI machine needs for its other answers, waited those 20 s for it."""
    from prodcat.serve.schemas import ErrorOut

    app, options = _serve_in_process(tiny_training, tmp_path, monkeypatch, "--request-timeout-s", "1")
    server, thread, port = _served_in_thread(app, options)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    try:
        started = time.monotonic()
        slow = _answer_to(port, head + b'{"title"')
        waited = time.monotonic() - started
        after = _answer_to(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        server.should_exit = True
        thread.join(10)
    status, _, body = slow.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408"), slow[:300]
    out = ErrorOut.model_validate_json(body)
    assert (out.error, out.limit, out.limit_value) == ("request_timeout", "request_timeout_s", 1.0)
    assert "the request body had not arrived within the limit request_timeout_s=1.0" in out.detail
    assert waited >= 0.5  # at the limit, not at once
    assert after.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_caps_the_requests_in_flight_answering_503_in_the_error_shape(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """Requests in flight were not capped: each may hold a body of up to --max-request-bytes (64 MiB: some 80 MB of
    the server's memory each, measured), so enough clients at once could exhaust it. Past --max-concurrent-requests
    in flight in a server process (each worker with --workers N), a request gets 503 too_busy in the API's error
    shape, with Retry-After; once those in flight are answered, the next is served."""
    import socket

    from prodcat.serve.schemas import ErrorOut

    _, options = _serve_in_process(
        tiny_training, tmp_path, monkeypatch, "--workers", workers, "--max-concurrent-requests", "2"
    )
    server, thread, port = _served_by_serve_options(options)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
    held = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(2)]
    try:
        for connection in held:  # in flight until their bodies come
            connection.sendall(head)
        _until_the_app_has_begun(server, 2)
        busy = _answer_to(port, head + b"body")
        for connection in held:
            connection.sendall(b"body")
        answered = [connection.recv(65536) for connection in held]
        after = _answer_to(port, head + b"body")
    finally:
        for connection in held:
            connection.close()
        server.should_exit = True
        thread.join(10)
    assert [answer.split(b"\r\n")[0] for answer in [*answered, after]] == [b"HTTP/1.1 200 OK"] * 3
    busy_head, _, body = busy.partition(b"\r\n\r\n")
    assert busy_head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable", busy[:300]
    out = ErrorOut.model_validate_json(body)
    assert (out.status, out.error, out.limit, out.limit_value) == (503, "too_busy", "max_concurrent_requests", 2)
    lines = busy_head.lower().split(b"\r\n")
    assert b"retry-after: 1" in lines and f"x-request-id: {out.request_id}".encode() in lines


def test_serve_answers_probes_past_the_cap_and_counts_the_requests_it_refuses_itself(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under saturation, GET /health, /ready and /metrics got 503 too_busy like any request: an orchestrator would
    restart a busy but healthy server, and its metrics went blind exactly when they mattered. They are answered past
    the cap now (a POST to them is not). And the requests the server's protocol refuses before the app (503 too_busy,
    431 and 408 of a request head) were in no metric: they are counted in prodcat_errors_total by error code."""
    import socket

    from prodcat.serve.metrics import ApiMetrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    _, options = _serve_in_process(
        tiny_training, tmp_path, monkeypatch, "--max-concurrent-requests", "1", "--request-timeout-s", "1"
    )
    metrics = ApiMetrics()
    server, thread, port = _served_by_serve_options(options, metrics)
    held = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        held.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
        _until_the_app_has_begun(server, 1)  # in flight until its body comes
        statuses = {
            f"{method} {path}": _answer_to(
                port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            .split(b"\r\n")[0]
            .decode()
            for method, path in [("GET", "/health"), ("GET", "/ready"), ("HEAD", "/metrics"), ("POST", "/health")]
        }
        held.sendall(b"body")
        held.recv(65536)
        too_long = _answer_to(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        too_slow = _answer_to(port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    finally:
        held.close()
        server.should_exit = True
        thread.join(10)
    ok, busy = "HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"
    assert statuses == {"GET /health": ok, "GET /ready": ok, "HEAD /metrics": ok, "POST /health": busy}
    assert [too_long.split(b"\r\n")[0], too_slow.split(b"\r\n")[0]] == [
        b"HTTP/1.1 431 Request Header Fields Too Large",
        b"HTTP/1.1 408 Request Timeout",
    ]
    counted = {
        error: metrics.registry.get_sample_value("prodcat_errors_total", {"error": error})
        for error in ("too_busy", "request_header_fields_too_large", "request_timeout")
    }
    assert counted == {"too_busy": 1.0, "request_header_fields_too_large": 1.0, "request_timeout": 1.0}


def test_serve_refuses_a_head_too_large_that_arrives_in_one_chunk(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head limit counted the chunks read after the one a request began in: a head of 130 KB (twice the 64 KiB
    limit) sent at once was read in one chunk on loopback and reached the app, 200. The request line and headers
    parsed are counted too now: 431, the app never run (no second answer), the connection closed."""

    _, options = _serve_in_process(tiny_training, tmp_path, monkeypatch)
    server, thread, port = _served_by_serve_options(options)
    try:
        answers = [
            _answer_to(port, b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\nConnection: close\r\n\r\n")
            for size in (60_000, 70_000, 130_000)
        ]
    finally:
        server.should_exit = True
        thread.join(10)
    assert [answer.count(b"HTTP/1.1 ") for answer in answers] == [1, 1, 1]
    assert [answer.split(b"\r\n")[0] for answer in answers] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 431 Request Header Fields Too Large",
        b"HTTP/1.1 431 Request Header Fields Too Large",
    ]


def test_the_server_protocol_refuses_a_uvicorn_without_the_internals_it_relies_on() -> None:
    """GuardedHttpToolsProtocol overrides private methods of uvicorn's HttpToolsProtocol (_start_asgi_task above
    all), while pyproject allowed uvicorn>=0.29, which has none: the cap on requests in flight would silently never
    apply. A uvicorn lacking them is refused when the protocol is imported, at start-up, naming what is missing."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from prodcat.serve.protocol import require_uvicorn_internals

    require_uvicorn_internals(HttpToolsProtocol)  # the installed one has them all

    class Older(HttpToolsProtocol):
        _start_asgi_task = None  # type: ignore[assignment]

    with pytest.raises(ImportError, match=r"HttpToolsProtocol has no _start_asgi_task: install the uvicorn"):
        require_uvicorn_internals(Older)


def test_serve_with_workers_keeps_no_model_in_the_supervisor(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --workers N, the app built to check the bundle and the review database before starting stayed in
    uvicorn's supervisor for the server's whole life, its model beside the N workers' (some 0.5 GB for a Flipkart
    model of the default config): deleting run_serve's name for it (1e443f4) released nothing, FastAPI's caches of
    its endpoints keeping them and the model they answer with. It is built in a child process now, which ends with
    it: no model is loaded here, and the child has created the review tables. The supervisor's own log lines
    (uvicorn's) are JSON, as they were when the app built here set the logging up."""
    import gc
    import weakref

    from prodcat.predict import Predictor

    loaded: list[weakref.ref[Predictor]] = []
    load = Predictor.load.__func__

    def recorded_load(cls: type[Predictor], *args: Any, **kwargs: Any) -> Predictor:
        predictor = load(cls, *args, **kwargs)
        loaded.append(weakref.ref(predictor))
        return predictor

    monkeypatch.setattr(Predictor, "load", classmethod(recorded_load))
    database = tmp_path / "reviews.db"
    arguments = [str(tiny_training.bundle), "--review-db", f"sqlite:///{database}"]
    # its own lines (uvicorn's) are JSON, as the workers'
    assert serve_with_workers(arguments, monkeypatch) == (0, ["prodcat.serve.app:create_app_from_env"], ["info"])
    gc.collect()
    assert [ref for ref in loaded if ref() is not None] == []
    assert "prodcat_review_items" in sa.inspect(sa.create_engine(f"sqlite:///{database}")).get_table_names()


def test_a_review_db_that_cannot_be_opened_is_refused_in_one_line(
    tiny_training: TinyTraining, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review database that could not be opened was refused in SQLAlchemy's words over two lines or more ('...
    unable to open database file\n(Background on this error at: https://sqlalche.me/...)'), PostgreSQL's with its own
    line breaks; a folder given for the SQLite file said only 'unable to open database file'."""
    bundle = str(tiny_training.bundle)
    assert main(["serve", bundle, "--review-db", f"sqlite:///{tmp_path}"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: cannot write the review queue {tmp_path} (sqlite:///{tmp_path}): it is a folder; give --review-db a "
        f"file in it, e.g. sqlite:///{tmp_path / 'prodcat-reviews.db'}"
    ]
    assert main(["serve", bundle, "--review-db", "postgresql+psycopg://nobody@127.0.0.1:1/none"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: cannot open the review database (OperationalError: connection failed: ")
    assert line.endswith("Is the server running on that host and accepting TCP/IP connections?); check --review-db")


def test_a_refused_serve_gives_the_process_its_logging_back(
    tiny_training: TinyTraining, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A serve refusing its review database (after building its app) left the root logger with a JSON handler
    writing to the stderr of that moment, the caller's handlers dropped: once that stream was closed, every later
    record of the process (another command run from the same Python, the next test file) printed '--- Logging
    error --- ... I/O operation on closed file' in its place."""
    root = logging.getLogger()
    before = (root.handlers[:], root.level, logging.getLogger("prodcat").level)
    with contextlib.redirect_stderr(io.StringIO()) as said:
        database = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # refused once the app is built
        assert main(["serve", str(tiny_training.bundle), "--review-db", database]) == 2
    assert said.getvalue().splitlines()[-1].startswith("error: cannot open the review database")
    said.close()
    assert (root.handlers, root.level, logging.getLogger("prodcat").level) == before
    logging.getLogger("prodcat.serve").warning("a record after serve")
    assert "Logging error" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{tmp_path}"], "is not a prodcat model bundle"),
        (["{bundle}", "--review-db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], "check --review-db"),
    ],
)
def test_serve_with_workers_refuses_what_its_check_in_a_child_finds(
    tiny_training: TinyTraining,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    """The check before the workers start, in a child process, refuses a bad bundle or an unreachable review
    database in its one line, exit 2, as in the server's own process: its error comes back from the child."""
    arguments = [argument.format(tmp_path=tmp_path, bundle=tiny_training.bundle) for argument in arguments]
    assert serve_with_workers(arguments, monkeypatch)[:2] == (2, [])
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error


#: libraries of the workers (a model's, the review store's) that uvicorn's supervisor has no use for
WORKERS_LIBRARIES = ("numpy", "pandas", "sklearn", "scipy", "joblib", "onnxruntime", "torch", "sqlalchemy")


def test_serve_with_workers_supervisor_imports_none_of_the_workers_libraries(
    tiny_training: TinyTraining, tmp_path: Path
) -> None:
    """With --workers N, uvicorn's supervisor (the process running ``prodcat serve``) loads no model and opens no
    database, yet held numpy, pandas, scikit-learn, scipy and SQLAlchemy for the server's life (209 MB against 46 MB
    now, models/demo): the command line imported prodcat.bundle (joblib, numpy) to catch a bad bundle's error, the
    settings prodcat.image.decode (pandas; scikit-learn through the catalogue schema) for the photo types Pillow
    decodes, run_serve SQLAlchemy to catch a database's error. None of them is imported by the time uvicorn starts,
    the bundle and the review database checked (in a child): run in a process of its own, whose modules are its own."""
    database = tmp_path / "reviews.db"
    arguments = ["serve", str(tiny_training.bundle), "--workers", "2", "--port", "0",
                 "--review-db", f"sqlite:///{database}"]  # fmt: skip
    supervisor = f"""
import json, sys
import uvicorn
from prodcat.cli import main
uvicorn.run = lambda app, **options: print(json.dumps([app, sorted(set(sys.modules) & set({WORKERS_LIBRARIES!r}))]))
sys.exit(main({arguments!r}))
"""
    environment = {name: value for name, value in os.environ.items() if name not in SERVE_VARIABLES}
    run = subprocess.run([sys.executable, "-c", supervisor], capture_output=True, text=True, env=environment)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == ["prodcat.serve.app:create_app_from_env", []]
    assert "prodcat_review_items" in sa.inspect(sa.create_engine(f"sqlite:///{database}")).get_table_names()


def test_photo_checks_in_request_threads_leave_the_warning_filters_as_they_were(monkeypatch) -> None:
    """Each photo's header check silenced Pillow's DecompressionBombWarning in a ``warnings.catch_warnings`` block,
    which keeps and puts back the process's one list of filters: checks overlapping in the server's request threads
    put back each other's, leaving its 'ignore' behind for the whole process. The filters are now as they were, and
    the warning is still silenced in the checks."""
    import warnings

    from prodcat.serve.inputs import _check_declared_pixels

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 40 x 40 photo warns (over 1,000), is not refused (2,000)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(buffer, "PNG")
    photo = buffer.getvalue()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, as on a loaded server
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            _check_declared_pixels(photo, 10_000)  # alone, once: a silenced warning's filter takes its place
            before = list(warnings.filters)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: _check_declared_pixels(photo, 10_000), range(4000)))
            after = list(warnings.filters)
    finally:
        sys.setswitchinterval(interval)
    assert [each for each in after if each not in before] == []
    assert not [each for each in shown if issubclass(each.category, Image.DecompressionBombWarning)]

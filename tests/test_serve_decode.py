"""The REST API decodes each photo once: its check decodes it as the model does, and hands the model those pixels."""

from __future__ import annotations

import io
import json
import pickle
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from prodcat.cli import main
from prodcat.image import decode
from prodcat.predict import Predictor
from prodcat.serve import service
from prodcat.serve.app import create_app, load_serving_predictor
from prodcat.serve.settings import ServeSettings


def noisy_jpeg(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (600, 400)) -> bytes:
    """A JPEG of ``size`` pixels of ``colour`` with noise: decoded at reduced scale (1/2 for the colour histogram's
    256 px), each one other pixels."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


COLOURS = {"Kitchen": (200, 60, 40), "Watches": (40, 60, 200)}


@pytest.fixture
def photo_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundle reading photos alone, by their colour histogram (decoded at 256 px), trained on noisy red and blue
    photos; its embeddings cached in ``tmp_path``."""
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))
    rows = []
    for category, colour in COLOURS.items():
        for i in range(8):
            (tmp_path / f"{category}-{i}.jpg").write_bytes(noisy_jpeg(colour, seed=i, size=(120, 90)))
            rows.append((f"{category}-{i}", "", "", f"{category}-{i}.jpg", category))
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(data, index=False)
    config = tmp_path / "photo.yaml"
    config.write_text("heads:\n  - {name: photo, modality: image, features: [{name: color_hist}]}\n")
    assert main(["train", str(data), "--config", str(config), "--out", str(tmp_path / "m")]) == 0
    return tmp_path / "m"


def decodes_counted(monkeypatch: pytest.MonkeyPatch, held: bytes | None = None) -> tuple[Counter, threading.Event]:
    """Every decoding of a photo (:func:`prodcat.image.decode._open`, which each one begins with) counted by its
    bytes; a decoding of ``held`` waits until the event returned is set (30 s at most)."""
    opened: Counter = Counter()
    release = threading.Event()
    real_open = decode._open

    def counted_open(data: bytes, *args: object) -> tuple[Image.Image, tuple[int, int]]:
        opened[bytes(data)] += 1
        if data == held:
            release.wait(30)
        return real_open(data, *args)

    monkeypatch.setattr(decode, "_open", counted_open)
    return opened, release


def model_probabilities(bundle: Path, photos: list[bytes]) -> list[list[dict]]:
    """The top categories the model gives each photo decoding it itself (a predictor of its own: nothing cached)."""
    predictor = Predictor.load(bundle)
    predictor.model.set_memory_cache(100)
    products = [{"product_id": f"p{i}", "image": photo} for i, photo in enumerate(photos)]
    return [prediction.top_k for prediction in predictor.predict(products, top_k=2)]


def test_a_photo_is_decoded_once_and_the_model_reads_the_pixels_it_would_decode(
    photo_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each photo of /predict was decoded twice: by its check (at 64 px), then by the model (at its own side, here the
    colour histogram's 256 px), the second decoding within no budget of the request's photo checks. The check now
    decodes it as the model does and hands it those pixels: one decoding, and the same answer as the model's own."""
    settings = ServeSettings(request_timeout_s=60)
    photos = [noisy_jpeg(COLOURS["Kitchen"], seed=100), noisy_jpeg(COLOURS["Watches"], seed=101)]
    opened, _ = decodes_counted(monkeypatch)
    with TestClient(create_app(load_serving_predictor(photo_model, settings), settings, None)) as client:
        answers = [client.post("/predict", data={"title": "a"}, files={"image": ("a.jpg", p)}) for p in photos]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    assert [opened[photo] for photo in photos] == [1, 1]
    assert [answer.json()["top_k"] for answer in answers] == model_probabilities(photo_model, photos)
    assert [answer.json()["category"] for answer in answers] == ["Kitchen", "Watches"]


def test_the_server_keeps_a_new_photos_embedding_in_its_memory_and_writes_none_to_disk(
    photo_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a server does with a photo it never saw (test_serve.py's end-to-end test sees only the disk): its
    embedding is computed once and kept in the process's bounded memory cache, which answers the same photo sent
    again; the on-disk cache, which training filled, does not grow."""
    settings = ServeSettings(request_timeout_s=60)
    predictor = load_serving_predictor(photo_model, settings)
    [extractor] = predictor.model.heads_["photo"].extractors_
    in_memory, on_disk = len(extractor.cache()), len(extractor.disk_cache())
    encoded: list[int] = []
    real_encode = type(extractor).encode

    def counted_encode(self: object, items: list) -> np.ndarray:
        encoded.append(len(items))
        return real_encode(self, items)

    monkeypatch.setattr(type(extractor), "encode", counted_encode)
    photo = noisy_jpeg(COLOURS["Watches"], seed=300)
    with TestClient(create_app(predictor, settings, None)) as client:
        answers = [client.post("/predict", data={"title": "a"}, files={"image": ("a.jpg", photo)}) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    assert answers[0].json()["top_k"] == answers[1].json()["top_k"]
    assert encoded == [1]  # the second answer read the vector the first one computed
    assert len(extractor.disk_cache()) == on_disk == 16  # the training's photos alone
    assert len(extractor.cache()) == in_memory + 1 and extractor.cache().max_items == settings.embedding_cache_items


def test_a_photo_slow_to_decode_costs_its_item_an_error_and_the_others_are_decoded_once(
    photo_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of fast photos and one slow to decode: the slow one is refused 504 image_check_timeout within the
    request's time for photo checks, the others predicted as the model predicts them, each decoded once (their
    second decoding, by the model, was outside any budget of theirs)."""
    monkeypatch.setattr(service, "SLOW_PHOTO_S", 0.05)
    monkeypatch.setattr(service, "PHOTO_CHECKS_AT_ONCE", 2)
    settings = ServeSettings(request_timeout_s=4)
    fast = [noisy_jpeg(COLOURS["Kitchen"], seed=200), noisy_jpeg(COLOURS["Watches"], seed=201)]
    slow = noisy_jpeg(COLOURS["Watches"], seed=202)
    opened, release = decodes_counted(monkeypatch, held=slow)
    photos = [fast[0], slow, fast[1]]
    items = [{"product_id": f"sku-{i}", "image": f"p{i}"} for i in range(len(photos))]
    parts = [(f"p{i}", ("a.jpg", photo)) for i, photo in enumerate(photos)]
    try:
        with TestClient(create_app(load_serving_predictor(photo_model, settings), settings, None)) as client:
            answer = client.post("/predict-batch", data={"products": json.dumps(items)}, files=parts)
    finally:
        release.set()
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    error = results[1]["error"]
    assert (error["status"], error["error"], error["product_id"]) == (504, "image_check_timeout", "sku-1")
    assert [opened[photo] for photo in photos] == [1, 1, 1]
    assert [results[i]["prediction"]["top_k"] for i in (0, 2)] == model_probabilities(photo_model, fast)


def test_pixels_are_handed_over_only_as_the_decoder_asked_would_make_them() -> None:
    """A photo's pixels decoded at one side, within the decoder's default limits, are what load_image answers when
    asked for that side at those limits; any other side or limit decodes the photo afresh, a photo over the default
    limits (a server set to take larger ones) is not handed over, and the bytes travel to another process alone."""
    photo = noisy_jpeg(COLOURS["Kitchen"], seed=300)
    decoded = decode.load_image(photo, max_side=256)
    handed = decode.with_decoding(photo, decoded, 256, decode.DEFAULT_MAX_PIXELS, 10 * 1024 * 1024)
    assert isinstance(handed, decode.DecodedBytes) and handed == photo
    marked = decoded.copy()
    marked.putpixel((0, 0), (1, 2, 3))  # told apart from a fresh decoding
    handed = decode.DecodedBytes(photo, marked, 256)
    assert decode.load_image(handed, max_side=256).getpixel((0, 0)) == (1, 2, 3)
    for asked in ({"max_side": 128}, {"max_side": 256, "max_pixels": 1_000_000}, {"max_side": 256, "max_bytes": 10**6}):
        assert decode.load_image(handed, **asked).getpixel((0, 0)) != (1, 2, 3), asked
    huge = decoded.copy()
    huge.info["original_size"] = (10_000, 10_000)  # 100 M pixels, over the decoder's default 90 M
    assert type(decode.with_decoding(photo, huge, 256, 200_000_000, 10 * 1024 * 1024)) is bytes
    assert type(pickle.loads(pickle.dumps(handed))) is bytes

"""Shared fixtures: where the real catalogues are, skipping cleanly when they are absent.

The datasets are read in place (never copied into the repository): from
``$PRODCAT_DATASETS`` when set, otherwise ``<repo>/../shared/datasets``. A missing catalogue or PostgreSQL server
skips the tests that need them, saying why (``make test`` lists each skip with its reason).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]

# created now rather than by the first command a test runs, so that the level each command gives it
# (prodcat.cli.run: INFO, DEBUG with --verbose) is one that restored_process_state puts back
logging.getLogger("prodcat")


@pytest.fixture(autouse=True)
def restored_process_state() -> Iterator[None]:
    """Put back, after each test, the process state it changed that later tests would inherit: the environment
    (``prodcat serve`` run in-process exports its flags as ``PRODCAT_*`` variables for its workers; a test may
    set variables with plain ``os.environ``), exactly, and the levels of the loggers that existed before it (every
    command sets the ``prodcat`` logger's; some quieten a library's: urllib3, distributed, openTSNE).

    A test's fixtures of a wider scope are set up before this snapshot: what they change stays for the session."""
    environment = dict(os.environ)
    known = [logging.root, *logging.Logger.manager.loggerDict.values()]
    levels = [(logger, logger.level) for logger in known if isinstance(logger, logging.Logger)]  # not placeholders
    yield
    for name in os.environ.keys() - environment.keys():
        del os.environ[name]
    for name, value in environment.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    for logger, level in levels:
        if logger.level != level:  # setLevel clears every logger's cache: only where needed
            logger.setLevel(level)


@pytest.fixture(autouse=True)
def serve_on_any_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """``prodcat serve`` without ``--port`` checks that its default port, 8000, is free before anything else: a test
    of another refusal would then depend on what else runs on the machine (a developer's own server). Port 0 (any
    free one) passes that check; a test of the port gives its own."""
    monkeypatch.setenv("PRODCAT_PORT", "0")


@pytest.fixture
def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that takes no file nor folder, as on a read-only mount: ``os.open`` and ``os.mkdir`` inside it
    raise ``OSError(EROFS)`` (tests run as root, whom chmod cannot lock out: the file system refuses instead)."""
    folder = tmp_path / "read-only"
    folder.mkdir()

    def refused_inside(call: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            if Path(path).is_relative_to(folder):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return call(path, *args, **kwargs)

        return guarded

    monkeypatch.setattr(os, "open", refused_inside(os.open))
    monkeypatch.setattr(os, "mkdir", refused_inside(os.mkdir))
    return folder


def datasets_dir() -> Path:
    """The folder holding ``flipkart/``, ``rakuten/``, ``fashion/``, ``rakuten_en_translated/``."""
    configured = os.environ.get("PRODCAT_DATASETS")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"


def dataset_dir(name: str) -> Path:
    """``datasets_dir()/name``, or skip the test saying where it was looked for and how to point to it."""
    path = datasets_dir() / name
    if not path.is_dir():
        pytest.skip(f"dataset {name!r} not found at {path} (set PRODCAT_DATASETS to the datasets folder)")
    return path


@pytest.fixture
def postgres_url() -> str:
    """The URL of the test PostgreSQL server (``$PRODCAT_TEST_POSTGRES_URL``), or skip the test saying how to start
    one."""
    url = os.environ.get("PRODCAT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            'PostgreSQL not configured: run `eval "$(bash scripts/postgres.sh)"` to set PRODCAT_TEST_POSTGRES_URL'
        )
    return url


@pytest.fixture(scope="session")
def flipkart_dir() -> Path:
    return dataset_dir("flipkart")


@pytest.fixture(scope="session")
def rakuten_dir() -> Path:
    return dataset_dir("rakuten")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return dataset_dir("fashion")


@pytest.fixture(scope="session")
def flipkart_training(flipkart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real text+image model trained through the CLI on a stratified sample of 300 Flipkart products:
    the bundle directory, and the ``ProductClassifier`` that ``prodcat train`` fitted, as it was in memory
    (with its out-of-fold training scores, which the saved bundle leaves out). Training is the slow part:
    every test that needs a trained bundle shares this one."""
    from prodcat.cli import main
    from prodcat.models.classifier import ProductClassifier

    fitted: list[ProductClassifier] = []
    real_fit = ProductClassifier.fit

    def recorded_fit(self: ProductClassifier, *args: Any, **kwargs: Any) -> ProductClassifier:
        fitted.append(real_fit(self, *args, **kwargs))
        return fitted[-1]

    out = tmp_path_factory.mktemp("bundle") / "flipkart"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ProductClassifier, "fit", recorded_fit)
        assert main(["train", str(flipkart_dir), "--out", str(out), "--sample", "300"]) == 0
    assert len(fitted) == 1, "prodcat train fits one model"
    return out, fitted[0]


@pytest.fixture(scope="session")
def flipkart_bundle(flipkart_training: tuple[Path, Any]) -> Path:
    """The bundle directory of :func:`flipkart_training`."""
    return flipkart_training[0]


#: the words of the synthetic catalogue's categories: each product's title is its category's words and a number
TINY_WORDS = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch", "Toys": "wooden toy train"}


def tiny_products(start: int, count: int) -> pd.DataFrame:
    """``count`` synthetic products per category of :data:`TINY_WORDS`, numbered from ``start`` (id
    ``Category-number``, a title and description naming the number, no photo), canonical columns."""
    rows = [
        (f"{category}-{i}", f"{words} {i}", f"a {words} numbered {i}", None, category)
        for category, words in TINY_WORDS.items()
        for i in range(start, start + count)
    ]
    return pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"])


class TinyTraining(NamedTuple):
    """A model trained on a synthetic catalogue: its bundle, the 36 products it was trained on and 12 others."""

    bundle: Path
    trained: pd.DataFrame
    unseen: pd.DataFrame


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory: pytest.TempPathFactory) -> TinyTraining:
    """A text-only model trained through the CLI (the fast config), in seconds, on 12 synthetic products of
    each of 3 categories; the unseen products are the next 4 of each category (numbered 12 to 15)."""
    from prodcat.cli import main

    folder = tmp_path_factory.mktemp("tiny")
    trained = tiny_products(0, 12)
    trained.to_csv(folder / "train.csv", index=False)
    config = str(REPO_ROOT / "configs" / "fast-text.yaml")
    args = ["train", str(folder / "train.csv"), "--config", config, "--modalities", "text", "--out", str(folder / "m")]
    assert main(args) == 0
    return TinyTraining(folder / "m", trained, tiny_products(12, 4))


@pytest.fixture(scope="session")
def tiny_old_bundle(tiny_training: TinyTraining, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The :func:`tiny_training` bundle as one written before product fingerprints were recorded: no
    training_products.npy, none listed in its manifest (which still verifies)."""
    import json
    import shutil

    from prodcat.bundle import MANIFEST, PRODUCTS_FILE

    out = shutil.copytree(tiny_training.bundle, tmp_path_factory.mktemp("tiny-old") / "m")
    (out / PRODUCTS_FILE).unlink()
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["files"][PRODUCTS_FILE]
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_bundle_recording_no_modalities(tiny_training: TinyTraining, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The :func:`tiny_training` bundle (a text-only model) with no ``modalities`` in its manifest, as older bundles
    and hand-edited ones have: read as reading every modality (``bundle.modalities_read_by_bundle``). The manifest is
    not among the files hashed: the bundle still verifies."""
    import json
    import shutil

    from prodcat.bundle import MANIFEST

    out = shutil.copytree(tiny_training.bundle, tmp_path_factory.mktemp("tiny-unrecorded") / "m")
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["modalities"]
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return out


def crafted_products(titles: Sequence[str], categories: Sequence[str]) -> pd.DataFrame:
    """Products of these titles and categories (ids ``p0``, ``p1``, ..., no description nor photo), canonical
    columns."""
    return pd.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(len(titles))],
            "title": list(titles),
            "description": "",
            "image": None,
            "category": list(categories),
        }
    )


@pytest.fixture
def make_products() -> Callable[[Sequence[str], Sequence[str]], pd.DataFrame]:
    """:func:`crafted_products`, for tests that study or audit a small catalogue of their own."""
    return crafted_products


def solid_jpeg(size: tuple[int, int] = (64, 48), colour: str | tuple[int, int, int] = "navy") -> bytes:
    """A one-colour JPEG photo of ``size`` (width, height) pixels, as its file bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def jpeg_bytes() -> Callable[..., bytes]:
    """:func:`solid_jpeg`, for tests that post or store a small valid photo."""
    return solid_jpeg


def png_bomb(width: int, height: int, text_chunks: int = 0) -> bytes:
    """A valid 1-bit greyscale PNG of ``width x height`` black pixels, written row by row without Pillow: a few
    dozen KB on disk for 400 M pixels (20,000 x 20,000), what a decompression bomb is; ``text_chunks`` empty text
    chunks after its header, the other bomb, of chunks each read on its own."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + the packed bits of a row
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale, no interlace
    texts = chunk(b"tEXt", b"k\x00") * text_chunks
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + texts + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture
def png_bomb_bytes() -> Callable[..., bytes]:
    """:func:`png_bomb`, for tests of the pixel limit (or of a small valid PNG)."""
    return png_bomb


def identity_onnx(path: Path) -> Path:
    """``path``, an ONNX model that gives its one float back: enough for an onnxruntime session's options."""
    import onnx

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    return path

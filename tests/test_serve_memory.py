"""What a server process keeps of the memory its model calls take (docs/api.md, "Serving, each grows past that")."""

from __future__ import annotations

import os
import pickle
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import TinyTraining
from prodcat.cli import main
from prodcat.features.base import make_extractor
from prodcat.image.features import EffNetLite0
from prodcat.predict import Predictor
from prodcat.serve import app
from prodcat.serve.app import load_serving_predictor
from prodcat.serve.settings import ServeSettings
from prodcat.text.embeddings import MiniLMEncoder

#: the extractors that run an onnxruntime session, each taking ``cpu_memory_arena``
ONNX_EXTRACTORS = ("minilm", "effnet_lite0")


def mean_pixel_onnx(path: Path) -> Path:
    """``path``, an ONNX model of EfficientNet's signature (``images``, uint8 ``(n, side, side, 3)``, to ``(n, 1280)``):
    each photo's mean pixel value, 1,280 times. An ``onnx_path`` for ``effnet_lite0`` needing no export."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "one"], ["column"]),
        helper.make_node("Tile", ["column", "repeats"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mean_pixel",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["n", "side", "side", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 1280])],
        initializer=[
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
            helper.make_tensor("repeats", TensorProto.INT64, [2], [1, 1280]),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of a MiniLM head and a photo head (``effnet_lite0`` on :func:`mean_pixel_onnx`), trained through the
    CLI on 18 synthetic products of 3 categories, each with a photo of its category's shade."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("onnx-model")
    titles = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch", "Toys": "wooden toy train"}
    rows = []
    for shade, (category, words) in enumerate(titles.items()):
        for i in range(6):
            photo = folder / f"{category}-{i}.png"
            Image.new("RGB", (40, 30), (80 * shade + i, 90, 90)).save(photo)
            rows.append((f"{category}-{i}", f"{words} {i}", "", str(photo), category))
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(
        folder / "train.csv", index=False
    )
    model = mean_pixel_onnx(folder / "photo.onnx")
    (folder / "onnx.yaml").write_text(
        "heads:\n"
        "  - {name: text_minilm, modality: text, features: [{name: minilm}], C: 1.0}\n"
        f"  - {{name: photo, modality: image, features: [{{name: effnet_lite0, params: {{onnx_path: '{model}'}}}}]}}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRODCAT_CACHE_DIR", str(folder / "cache"))
        assert (
            main(
                ["train", str(folder / "train.csv"), "--config", str(folder / "onnx.yaml"), "--out", str(folder / "m")]
            )
            == 0
        )
    return folder / "m"


def onnx_sessions(predictor: Predictor) -> dict[str, Any]:
    """The onnxruntime session of each ONNX extractor of ``predictor``'s model that has made one, by extractor name."""
    sessions = {}
    for extractor in (e for head in predictor.model.heads_.values() for e in head.extractors_):
        if isinstance(extractor, EffNetLite0):
            sessions[extractor.name] = getattr(extractor, "_model_session", None)
        elif isinstance(extractor, MiniLMEncoder):
            sessions[extractor.name] = getattr(extractor, "_model", None) and extractor._model[1]
    return {name: session for name, session in sessions.items() if session is not None}


def test_release_memory_makes_a_servers_onnx_sessions_without_cpu_memory_arena(
    onnx_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's ONNX sessions (MiniLM, EfficientNet) keep onnxruntime's CPU memory arena, which grows to what the
    largest call needed and holds it for the process's life: with `--release-memory` they have none (by default they
    keep it, as the batch commands do: less CPU a call). Predictions of 1 to 200 products, as a server makes them:
    1,313 MB with the arena, 574 MB with `--release-memory`. It is the model's setting (its extractors'
    ``cpu_memory_arena``), not the process's: a session made elsewhere in the process after such a server loaded (a
    batch command's, another model's) kept the arena, where a module-wide switch turned it off for every one."""
    fixed: list[bool] = []  # glibc's threshold, a process-wide setting: tested in a process of its own below
    monkeypatch.setattr(app, "fix_mmap_threshold", lambda: fixed.append(True))
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(onnx_bundle.parent / "cache"))  # its MiniLM export
    for release_memory in (False, True):
        sessions = onnx_sessions(load_serving_predictor(onnx_bundle, ServeSettings(release_memory=release_memory)))
        arenas = {name: session.get_session_options().enable_cpu_mem_arena for name, session in sessions.items()}
        assert arenas == dict.fromkeys(ONNX_EXTRACTORS, not release_memory)
        assert fixed == [True] * release_memory
    elsewhere = make_extractor("effnet_lite0", onnx_path=str(mean_pixel_onnx(tmp_path / "m.onnx")), progress=False)
    assert elsewhere.session().get_session_options().enable_cpu_mem_arena
    assert onnx_sessions(Predictor.load(onnx_bundle)) == {}  # a loaded model makes its sessions when first used


@pytest.mark.parametrize("name", ONNX_EXTRACTORS)
def test_an_onnx_extractor_pickled_before_cpu_memory_arena_was_a_parameter_loads_keeping_the_arena(name: str) -> None:
    """Bundles pickled their MiniLM and EfficientNet extractors before the arena was their parameter: such an
    extractor reads as one built now (``get_params`` would raise on a missing parameter, and the bundle not load),
    keeping the arena as they all did, until a server given `--release-memory` sets it."""
    older = make_extractor(name, progress=False, cpu_memory_arena=False)
    del older.cpu_memory_arena  # as an older version pickled it
    loaded = pickle.loads(pickle.dumps(older))
    assert loaded.get_params() == make_extractor(name, progress=False).get_params()
    assert loaded.cpu_memory_arena is True


#: run in a fresh interpreter (its allocator as a server process's starts): loads the bundle as a server given
#: --release-memory does, then twice allocates and frees a block of 16 MB, printing how many MB more it holds after
FREED_BLOCKS = """
import re, sys
from pathlib import Path
import numpy as np
from prodcat.serve.app import load_serving_predictor
from prodcat.serve.settings import ServeSettings

def rss_mb():
    return int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text())[1]) // 1024

load_serving_predictor(Path(sys.argv[1]), ServeSettings(release_memory=True))
before = rss_mb()
for _ in range(2):
    block = np.ones(16 * 2**20 // 8)
    del block
print(rss_mb() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc thresholds")
def test_release_memory_has_a_server_process_give_a_freed_large_block_back_to_the_system(
    tiny_training: TinyTraining,
) -> None:
    """glibc's threshold past which a block gets pages of its own moves up to the largest block freed (up to 32 MB):
    the next block of that size came from the heap and stayed there once freed (16 MB held after two blocks of 16 MB).
    A server's model calls allocate and free such buffers on several threads: without onnxruntime's arena, a soak of
    `models/demo` grew to 1,833 MB (2,160 MB at most) instead of 1,098 MB with it. With `--release-memory` a server
    process fixes the threshold at glibc's default (128 KiB): each block is given back once freed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    args = [sys.executable, "-c", FREED_BLOCKS, str(tiny_training.bundle)]
    held = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=300).stdout
    assert int(held.split()[-1]) < 8

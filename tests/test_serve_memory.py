"""What a server process keeps of the memory its model calls take (docs/api.md, "Serving, each grows past that")."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TinyTraining, identity_onnx
from prodcat.features import onnx
from prodcat.serve.app import load_serving_predictor
from prodcat.serve.settings import ServeSettings


def test_release_memory_makes_a_servers_onnx_sessions_without_cpu_memory_arena(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's ONNX sessions (MiniLM, EfficientNet) keep onnxruntime's CPU memory arena, which grows to what the
    largest call needed and holds it for the process's life: with `--release-memory` they have none (by default they
    keep it, as the batch commands do: less CPU a call). Predictions of 1 to 200 products, as a server makes them:
    1,313 MB with the arena, 574 MB with `--release-memory`."""
    monkeypatch.setattr(onnx, "_cpu_memory_arena", True, raising=False)  # as a process starts; restored after
    model = identity_onnx(tmp_path / "m.onnx")
    load_serving_predictor(tiny_training.bundle, ServeSettings())
    assert onnx.onnx_session(model).get_session_options().enable_cpu_mem_arena
    load_serving_predictor(tiny_training.bundle, ServeSettings(release_memory=True))
    assert not onnx.onnx_session(model).get_session_options().enable_cpu_mem_arena


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

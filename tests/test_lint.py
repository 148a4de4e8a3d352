"""The code's lint, run by the test command so that CI keeps it (`make lint` runs the same checks)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["src", "tests", "benchmarks"]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_finds_nothing(check: list[str]) -> None:
    """ruff's rules of pyproject.toml, incl. its complexity limits (C901, PLR0912, PLR0915), hold everywhere."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip(f"ruff is not installed beside {sys.executable} (pip install -e '.[test]')")
    run = subprocess.run([str(ruff), *check, *CHECKED], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_finds_nothing() -> None:
    """mypy, pinned in the test extra, finds no error in src/prodcat with pyproject.toml's [tool.mypy]. Its cache
    (.mypy_cache, git-ignored) only speeds a second run: a fresh clone checks from none."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip(f"mypy is not installed in {sys.executable}'s environment (pip install -e '.[test]')")
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr

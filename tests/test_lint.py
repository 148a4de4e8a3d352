"""The code's lint, run by the test command so that CI keeps it (`make lint` runs the same two checks)."""

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

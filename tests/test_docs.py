"""README claims that code can check: the config block it calls the defaults is the defaults."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from prodcat.config import Config

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def test_the_readme_config_block_is_the_default_config() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"The defaults, as a file .*?```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "README lost its defaults block"
    written = Config.model_validate(yaml.safe_load(block.group(1)))
    assert written.model_dump() == Config().model_dump()


def _ignored_by_git(paths: list[str]) -> set[str]:
    """Those of ``paths`` (relative to the repo, existing or not) that the repo's .gitignore hides."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and the repository's .git")
    found = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: none is ignored
    return set(found.stdout.splitlines())


def test_what_the_readme_commands_write_in_the_repo_is_ignored_and_no_source_is() -> None:
    """The Use block's commands, run from the repo root as it says, left preds.csv, champagne-preds.csv (and their
    .issues.csv and .parts/) and data/ untracked, one `git add .` from a commit of predictions and collected photos.
    Everything they write is ignored, and no tracked file nor a new one beside the sources."""
    block = re.search(r"## Use\n\n```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README lost its Use block"
    written = []
    for option, path in re.findall(r"--(out|report) (\S+)", block.group(1)):
        if Path(path).is_absolute():  # outside the repo
            continue
        # a bundle's, report's or collected folder's files; predict's (and train's) issues file, parts and lock
        written.append(f"{path}/file")
        if option == "out":
            lock = Path(path).with_name(f".{Path(path).name}.lock").as_posix()
            written += [path, f"{path}.issues.csv", f"{path}.parts/part-00000.parquet", lock]
    assert {"preds.csv", "champagne-preds.csv", "data/champagne/file"} <= set(written)
    assert set(written) - _ignored_by_git(written) == set()
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    sources = [*tracked, "src/prodcat/data/new.py", "tests/data/products.csv", "benchmarks/preds.py"]
    assert _ignored_by_git(sources) == set()

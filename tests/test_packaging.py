"""prodcat released: the files its wheel and its sdist hold, and the configs the wheel ships, read by their name
wherever prodcat runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from prodcat.cli import build_parser, command_parsers
from prodcat.config import SHIPPED_CONFIGS, ConfigError, load_config, shipped_configs

REPO = Path(__file__).resolve().parents[1]


def _tracked() -> list[str]:
    """The files that git tracks and the working tree has: those of a clone, not whatever else lies in a working
    tree."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and the repository's .git")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, text=True).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).exists()]


@pytest.fixture(scope="module")
def source() -> list[str]:
    """The files git tracks, as a clone has them."""
    return _tracked()


@pytest.fixture(scope="module")
def clone(source: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the working tree's tracked files, as a clone a release is built from (a link kept a link)."""
    folder = tmp_path_factory.mktemp("clone")
    for name in source:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, folder / name, follow_symlinks=False)
    return folder


@pytest.fixture(scope="module")
def wheel_files(clone: Path) -> set[str]:
    """The names in a wheel built from ``clone`` as a release is (setuptools, no build isolation: the venv's own;
    some 5 s)."""
    out = clone / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", out, clone],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("prodcat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_file_of_the_package(source: list[str], wheel_files: set[str]) -> None:
    """The wheel held the package's code and report templates, not its configs: a user of the installed prodcat
    following README (`prodcat train data/food.csv --config configs/fast-text.yaml`) had no such file, in the
    repository only. Every file git tracks under src/prodcat (code, templates, configs) is in the wheel, and so are
    the licence and the command's entry point."""
    package = {name.removeprefix("src/") for name in source if name.startswith("src/prodcat/")}
    assert {f"prodcat/configs/{name}.yaml" for name in shipped_configs()} <= package
    assert sorted(package - wheel_files) == []
    assert "prodcat-0.1.0.dist-info/licenses/LICENSE" in wheel_files
    assert "prodcat-0.1.0.dist-info/entry_points.txt" in wheel_files


def test_the_wheel_says_prodcat_is_typed(wheel_files: set[str]) -> None:
    """mypy, checking a plugin's package (README: an extractor of one's own) against the installed prodcat, skipped
    prodcat's types: 'module is installed, but missing library stubs or py.typed marker'. The wheel holds the PEP 561
    marker, py.typed (mypy finds no error in src/prodcat: tests/test_lint.py)."""
    assert "prodcat/py.typed" in wheel_files


def test_the_sdist_holds_every_file_git_tracks(source: list[str], clone: Path) -> None:
    """The sdist held the package, README, the licence and the tests but not tests/conftest.py (its fixtures: its
    tests could not run), nor the docs/ pages README links to, the benchmarks and results they cite, the Makefile or
    configs/. Built from the tracked files (MANIFEST.in), it holds every one of them; configs/, a link to the
    package's folder, as its files."""
    out = clone / "sdist"
    build = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    subprocess.run([sys.executable, "-c", build, out], cwd=clone, check=True, capture_output=True)
    (sdist,) = out.glob("prodcat-*.tar.gz")
    with tarfile.open(sdist) as archive:
        held = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {
        f"{name}/{file.name}" if (REPO / name).is_symlink() else name
        for name in source
        for file in (sorted((REPO / name).iterdir()) if (REPO / name).is_symlink() else [REPO / name])
    }
    assert {"tests/conftest.py", "docs/configuration.md", "configs/fast-text.yaml", "Makefile"} <= expected
    assert sorted(expected - held) == []


def test_the_repository_configs_folder_is_the_shipped_one() -> None:
    """The repository's configs/ (named by the pages and the benchmarks) links to the package's: one copy, the one the
    wheel ships. An unpacked sdist holds the link written out as files: the same files, byte for byte."""
    configs = REPO / "configs"
    if configs.is_symlink():
        assert configs.resolve() == SHIPPED_CONFIGS.resolve()
    else:
        assert all(
            (configs / f"{name}.yaml").read_bytes() == (SHIPPED_CONFIGS / f"{name}.yaml").read_bytes()
            for name in shipped_configs()
        )
    assert sorted(path.stem for path in configs.glob("*.yaml")) == shipped_configs()
    assert {"fast-text", "early-nbsvm", "early-vote", "with-photo-text"} <= set(shipped_configs())


def test_a_shipped_config_is_read_by_its_name_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the repository (where an installed prodcat runs) `--config configs/fast-text.yaml` was refused,
    '[Errno 2] No such file or directory', and no name reached the configs prodcat ships: `--config fast-text` reads
    it from the package, wherever the command runs."""
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["train", "products.csv", "--out", "models/food", "--config", "fast-text"])
    assert args.config == load_config(REPO / "configs" / "fast-text.yaml")
    assert [head.name for head in args.config.heads] == ["text_tfidf", "image_effnet"]
    assert load_config("early-vote") == load_config(REPO / "configs" / "early-vote.yaml")
    # and the help says which names it takes
    assert "by its name: early-logreg, " in " ".join(command_parsers(build_parser())["train"].format_help().split())


def test_a_file_of_the_name_wins_over_a_shipped_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's file named as a shipped config (no suffix) is the one read: the name reaches the package's only where
    no such file is."""
    monkeypatch.chdir(tmp_path)
    Path("fast-text").write_text("target_precision: 0.95\n", encoding="utf-8")
    assert load_config("fast-text").target_precision == 0.95
    assert load_config("fast-text") != load_config(SHIPPED_CONFIGS / "fast-text.yaml")


def test_a_missing_config_says_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's path of a shipped config, given where it is not (an installed prodcat's folder), names the
    config to give instead; a bare name that is no config lists those prodcat ships. Another missing path is refused
    as before, by the file system."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^configs/fast-text\.yaml: no such file; .*give its name alone, fast-text$"):
        load_config("configs/fast-text.yaml")
    with pytest.raises(ConfigError, match=r"^fast_text: no such file, nor a config prodcat ships \(early-logreg, .*"):
        load_config("fast_text")
    with pytest.raises(FileNotFoundError):
        load_config("mine/experiment.yaml")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "products.csv", "--out", "m", "--config", "configs/fast-text.yaml"])

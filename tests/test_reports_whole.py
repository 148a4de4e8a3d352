"""Every report folder is written whole or not at all (:func:`prodcat.files.written_together`), and the staging
folders of runs killed outright are removed by the next run writing there, never those of a run still writing."""

from __future__ import annotations

import errno
import os
import pathlib
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prodcat.cli import main
from prodcat.files import written_together
from prodcat.processes import machine

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


def staging_folder(report: Path, pid: int) -> Path:
    """A staging folder as the run ``pid`` of this machine names it in ``report``, holding a file it wrote."""
    folder = report / f".staging.{machine()}-{pid}.0123456789ab.tmp"
    folder.mkdir()
    (folder / "report.html").write_text("half written", encoding="utf-8")
    return folder


def dead_pid() -> int:
    """The pid of a process that ran and ended (reaped): a run killed outright."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def failing_html(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Path.write_text`` raising a full disk's error for an HTML page: audit, explore and explain write theirs so,
    after their data files (JSON, CSVs)."""
    write_text = pathlib.Path.write_text

    def write(path: Path, *args: object, **kwargs: object) -> int:
        if path.suffix == ".html":
            raise NO_SPACE
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write)


def failing_robustness_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """robustness's page failing with a full disk, after its robustness.json and figure."""

    def page(*args: object) -> str:
        raise NO_SPACE

    monkeypatch.setattr("prodcat.evaluate.report.html_page", page)


def audit(bundle: Path, data: Path, report: Path) -> list[str]:
    return ["audit", str(data), "--report", str(report), "--no-images"]


def explore(bundle: Path, data: Path, report: Path) -> list[str]:
    return [
        "explore",
        str(data),
        "--features",
        "tfidf",
        "--reductions",
        "pca",
        "--no-progress",
        "--report",
        str(report),
    ]


def explain(bundle: Path, data: Path, report: Path) -> list[str]:
    return ["explain", str(bundle), str(data), "--sample", "3", "--report", str(report)]


def robustness(bundle: Path, data: Path, report: Path) -> list[str]:
    return ["robustness", str(bundle), str(data), "--report", str(report), "--perturbations", "title_only"]


def evaluate(bundle: Path, data: Path, report: Path) -> list[str]:
    return ["evaluate", str(bundle), str(data), "--report", str(report)]


def cv(bundle: Path, data: Path, report: Path) -> list[str]:
    config = Path(__file__).parents[1] / "configs" / "fast-text.yaml"
    return ["cv", str(data), "--config", str(config), "--modalities", "text", "--folds", "2", "--report", str(report)]


#: each command writing a report folder, and how to make the writing of its page fail with a full disk
FAILING_PAGE = {audit: failing_html, explore: failing_html, explain: failing_html, robustness: failing_robustness_page}


@pytest.fixture
def two_catalogues(tiny_training, tmp_path) -> tuple[Path, Path]:
    """The tiny model's training products, then those and unseen ones: two runs' reports differ."""
    older, data = tmp_path / "older.csv", tmp_path / "products.csv"
    tiny_training.trained.to_csv(older, index=False)
    pd.concat([tiny_training.trained, tiny_training.unseen]).to_csv(data, index=False)
    return older, data


@pytest.mark.parametrize("command", FAILING_PAGE, ids=lambda command: command.__name__)
def test_a_report_failing_while_written_leaves_the_older_report_whole(
    command, tiny_training, two_catalogues, tmp_path, monkeypatch, capsys
):
    """explore, audit, explain and robustness wrote their report's files one at a time: a full disk as the page was
    written left the new run's JSON (and CSVs, figures) beside the older run's page, a mix of two runs. The older
    report is now left byte for byte, and no staging folder."""
    report, (older, data) = tmp_path / "report", two_catalogues
    assert main(command(tiny_training.bundle, older, report)) == 0
    older_report = contents(report)

    FAILING_PAGE[command](monkeypatch)
    capsys.readouterr()
    assert main(command(tiny_training.bundle, data, report)) == 2
    assert f"error: cannot write the report in {report}: No space left on device" in capsys.readouterr().err
    assert contents(report) == older_report
    assert not [path for path in report.iterdir() if path.name.startswith(".staging.")]


@pytest.mark.parametrize("command", [*FAILING_PAGE, evaluate, cv], ids=lambda command: command.__name__)
def test_a_report_failing_in_a_folder_it_made_leaves_no_folder_and_keeps_the_users_own(
    command, tiny_training, two_catalogues, tmp_path, monkeypatch, capsys
):
    """A report failing in a new folder (a full disk) left that folder behind, empty, and the folders made above it:
    the user then met an empty report folder. Those the run made are removed now; an empty folder the user had
    before the run is kept, and so is one holding anything."""
    data = two_catalogues[1]
    new, had, held = tmp_path / "runs" / "report", tmp_path / "had", tmp_path / "held"
    had.mkdir()
    held.mkdir()
    (held / "notes.txt").write_text("mine", encoding="utf-8")
    FAILING_PAGE.get(command, failing_html)(monkeypatch)
    for report in (new, had, held):
        capsys.readouterr()
        assert main(command(tiny_training.bundle, data, report)) == 2
        assert f"error: cannot write the report in {report}: No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # robustness's lock file, emptied, stays in a folder the run did not make (prodcat.files.RunLock says why)
    lock = {".robustness.lock": b""} if command is robustness else {}
    assert had.is_dir() and contents(had) == lock
    assert contents(held) == {"notes.txt": b"mine"} | lock


@pytest.mark.parametrize("command", FAILING_PAGE, ids=lambda command: command.__name__)
def test_the_next_run_removes_the_staging_folder_of_a_killed_run_not_of_a_live_one(
    command, tiny_training, two_catalogues, tmp_path
):
    """A run killed outright (SIGKILL) while writing its report left its staging folder, as large as a report,
    in the report folder for good. The next run writing there removes it (its pid is dead), not that of a run still
    writing (alive: this process)."""
    report, (older, data) = tmp_path / "report", two_catalogues
    assert main(command(tiny_training.bundle, older, report)) == 0
    abandoned, live = staging_folder(report, dead_pid()), staging_folder(report, os.getpid())
    assert main(command(tiny_training.bundle, data, report)) == 0
    assert not abandoned.exists()
    assert contents(live) == {"report.html": b"half written"}


def test_files_written_together_replace_those_of_a_subfolder_and_remove_its_stale_ones(tmp_path):
    """explain's heatmaps are in a subfolder (overlays/): its files are moved one by one over the older report's,
    those it no longer has removed, the others (a user's) kept; moving the subfolder whole failed on the older one."""
    report = tmp_path / "report"
    (report / "overlays").mkdir(parents=True)
    for name in ("0000.png", "0001.png", "notes.txt"):
        (report / "overlays" / name).write_text(f"older {name}", encoding="utf-8")
    with written_together(report, ["overlays/0000.png", "overlays/0001.png"]) as staging:
        (staging / "overlays").mkdir()
        (staging / "overlays" / "0000.png").write_text("new", encoding="utf-8")
        (staging / "report.html").write_text("page", encoding="utf-8")
    assert contents(report) == {
        "overlays/0000.png": b"new",
        "overlays/notes.txt": b"older notes.txt",
        "report.html": b"page",
    }


@pytest.mark.parametrize("command", [audit, explore, explain, evaluate], ids=lambda command: command.__name__)
def test_a_report_page_keeps_its_text_off_the_edges_of_a_narrow_window(command, tiny_training, tmp_path):
    """The pages of audit, explore, explain and evaluate (cv's and robustness's are written as evaluate's) centred a
    column of at most 1,100 or 1,200 px with ``margin: auto`` and no padding: in a window no wider, the text touched
    its edges. Their body now has a horizontal padding."""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    tiny_training.trained.to_csv(data, index=False)
    assert main(command(tiny_training.bundle, data, report)) == 0
    page = (report / ("audit.html" if command is audit else "report.html")).read_text(encoding="utf-8")
    styles = " ".join(re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL))
    body = " ".join(re.findall(r"(?<![\w.#-])body\s*\{([^}]*)\}", styles))
    assert re.search(r"margin\s*:\s*2em auto", body) and "max-width" in body, body  # a centred column
    assert re.search(r"padding\s*:\s*0 [1-9]", body), body  # its sides padded

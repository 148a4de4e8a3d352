"""The closing line of a command that writes a report (:func:`prodcat.files.report_exit_code`), which evaluate, cv,
robustness, explore and audit share, and the folders a report run makes and removes again when it fails."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from prodcat.files import RunLock, made_folders, remove_empty_folders, report_exit_code


def test_report_exit_code_says_the_report_written_or_why_not(tmp_path, capsys):
    report = tmp_path / "report"
    assert report_exit_code(report, None, "study") == 0
    assert capsys.readouterr() == (f"\nReport written to {report}\n", "")
    assert report_exit_code(report, None, "study", lambda: f"wrote {report / 'a.json'}") == 0
    assert capsys.readouterr() == (f"wrote {report / 'a.json'}\n", "")

    def names_files_not_written() -> str:
        raise AssertionError("the line of a report written is made only once it is")

    full = OSError(errno.ENOSPC, "No space left on device")
    assert report_exit_code(report, full, "study", names_files_not_written) == 2
    assert capsys.readouterr() == (
        "",
        f"error: cannot write the report in {report}: No space left on device; the figures above are all that was "
        "kept: free some space or give another --report, and run the study again\n",
    )


def test_a_pid_left_in_a_run_lock_is_taken_over_with_a_note_saying_its_run_did_not_empty_the_file(tmp_path, caplog):
    """A run that ends empties its lock file (a95c237), no longer removes it: the note on a pid left there said the
    run 'ended without removing it', which every run does now."""
    path = tmp_path / ".preds.csv.lock"
    path.write_text("4321\n")
    lock = RunLock(path, command="prodcat predict", writing="the output", instead="", log=logging.getLogger("t"))
    with caplog.at_level("INFO", logger="t"), lock:
        assert path.read_text() == f"{os.getpid()}\n"
    assert caplog.messages == [
        f"taking over {path}, left by prodcat predict pid 4321, which ended without emptying it (killed?)"
    ]
    assert path.read_text() == ""


def test_a_failed_run_removes_the_folders_it_made_and_no_other_spelt_through_dot_dot(tmp_path, monkeypatch):
    """``runs/../mine/report`` while ``runs`` is missing spells ``mine``, the user's folder, as missing: it was
    listed as made, and a run failing there removed it (empty) while it left ``runs``, which it had made."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    made = made_folders(Path("runs/../mine/report"))
    assert (tmp_path / "runs").is_dir() and (tmp_path / "mine" / "report").is_dir()
    remove_empty_folders(made)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]
    assert list((tmp_path / "mine").iterdir()) == []


def test_a_file_in_place_of_a_folder_to_make_is_refused_and_an_existing_folder_is_not_made(tmp_path):
    (tmp_path / "runs").write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError):
        made_folders(tmp_path / "runs" / "report")
    assert made_folders(tmp_path) == []

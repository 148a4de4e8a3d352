"""``prodcat train | predict | evaluate | cv``: the supervised workflow on the command line (the commands' parsers
are :mod:`prodcat.commands_parser`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from prodcat.arguments import into_bundle, unwritable_folder
from prodcat.batch import (
    BatchError,
    LocalEngine,
    OutputBusyError,
    ResumeMismatchError,
    output_target,
    predict_catalog,
    score_catalog,
    undecodable_photos,
    unused_photo_issues,
    work_dir_for,
)
from prodcat.batch.engines import Engine
from prodcat.bundle import modalities_read_by_bundle, model_level, read_manifest, save_bundle
from prodcat.catalog.loaders import catalog_file_among, how_read, issues_of_the_run, load_from_args
from prodcat.catalog.schema import (
    Catalog,
    RowIssue,
    category_at_level,
    deeper_level_warning,
    has_text,
    modality_mask,
    model_truth,
    nested_categories_warning,
    split_path,
)
from prodcat.commands_parser import DEFAULT_FOLDS, LOCAL_WORKERS, WORKER_WAIT_S
from prodcat.config import MODALITIES, RECORDED_CONFIG, Config
from prodcat.errors import RunRefused
from prodcat.evaluate.labelled import (
    DATA_FINGERPRINT_VERSION,
    evaluation_record,
    labelled_warnings,
    no_known_category,
    product_fingerprints,
    readable_by,
    training_fingerprint,
    training_record,
)
from prodcat.evaluate.metrics import (
    HEADLINE_METRICS,
    accepted_metrics,
    evaluate_predictions,
    headline_by_modalities,
)
from prodcat.evaluate.report import (
    EVALUATION_FILES,
    auto_precision_note,
    interval_text,
    report_problem,
    write_issues,
    write_report,
)
from prodcat.files import report_exit_code, write_failure
from prodcat.formatting import count_text, counted, first_few, one_line, say_error, say_warning
from prodcat.grouping import SPELLING_DIFFERENCES, spelling_groups
from prodcat.manifest import feedback_text

if TYPE_CHECKING:
    from prodcat.evaluate.cv import Lacking
    from prodcat.models.classifier import ProductClassifier
    from prodcat.predict import Predictor

log = logging.getLogger("prodcat")
#: the figures :func:`print_metrics` leads with, each with its interval where the metrics have one
HEADLINE = ("n", *HEADLINE_METRICS)


# ---------------------------------------------------------------------------------------------- helpers
def read_catalog(args: argparse.Namespace, listed_in: Path, read_by: tuple[str, ...], listed_once: str) -> Catalog:
    """The catalogue of ``args.data``, its issues warned of (all of them are written to ``listed_in`` once
    ``listed_once`` happens), but for those of fields a model reading the modalities ``read_by`` does not read
    (:func:`issues_of_the_run`)."""
    catalog = catalog_of_the_run(args, read_by)
    _warn_of_read_issues(catalog.issues, args.data, listed_in, listed_once)
    return catalog


def catalog_of_the_run(args: argparse.Namespace, read_by: tuple[str, ...], reads_labels: bool = True) -> Catalog:
    """The catalogue of ``args.data`` with the issues of a run of a model reading ``read_by`` only (and of its
    labels, if it ``reads_labels``), not warned of: a command that uses some of its products warns of theirs
    (:func:`warn_of_issues_of_products`)."""
    catalog = _load_catalog(args)
    return dataclasses.replace(catalog, issues=issues_of_the_run(catalog.issues, read_by, reads_labels=reads_labels))


def warn_of_issues_of_products(catalog: Catalog, data: str, left_out: frozenset[str]) -> None:
    """Warn of the issues of ``catalog`` (:func:`catalog_of_the_run`'s) but for those of the products ``left_out``
    (ids: a --sample did not draw them, or --ids did not name them), as train and cv warn of those of their sample
    alone; the rows no product came of (skipped) are warned of still."""
    _warn_of_read_issues([issue for issue in catalog.issues if issue.product_id not in left_out], data, None)


def ids_not_drawn(candidates: pd.DataFrame, drawn: pd.DataFrame) -> frozenset[str]:
    """The ids of the products of ``candidates`` that are not among those ``drawn`` from them."""
    return frozenset(candidates["product_id"].astype(str)) - frozenset(drawn["product_id"].astype(str))


def _load_catalog(args: argparse.Namespace) -> Catalog:
    catalog = load_from_args(args)
    log.info("%s: %s (%s format)", args.data, counted(len(catalog), "product"), catalog.format)
    return catalog


def _warn_of_read_issues(
    issues: list[RowIssue], data: str, listed_in: Path | None, listed_once: str | None = None
) -> None:
    _log_issues(issues, f"row issue(s) while reading {data}", listed_in, listed_once)


#: what train and cv do, as their refusals say it
_DOES = {"train": "train", "cv": "cross-validate"}


def read_training_data(
    args: argparse.Namespace, known: Lacking, listed_in: Path, listed_once: str | None = None
) -> tuple[Catalog, Config, pd.DataFrame]:
    """What ``train`` and ``cv`` run on: the catalogue of ``args.data`` (without the products whose only readable
    photo does not decode, :func:`without_unreadable_photos`), the config, and the labelled products to use (a
    --sample of them). Of the catalogue's issues, only those of the run are kept and warned of, pointing to
    ``listed_in`` (written once ``listed_once`` happens, if given): none of a product the sample did not draw, nor
    of a field the model does not read. What the installation lacks to train the config is asked first, and kept in
    the run's ``known`` for its later check (:func:`~prodcat.evaluate.cv.installation_problem`)."""
    from prodcat.evaluate.cv import installation_problem

    catalog = _load_catalog(args)
    config = build_config(args, catalog.format)
    if problem := installation_problem(catalog.frame, config, known):  # before the photos are decoded
        raise RunRefused(f"cannot {_DOES[args.command]}: {problem}")
    unreadable = unreadable_photos(catalog, config)
    # drawn among the products a model can read, as it always was: a seed draws the same products (the candidates'
    # photos are decoded, drawn or not, to know which are readable)
    readable = _without_products(catalog, unreadable)
    frame = labelled_sample(readable.frame, config, config.sample)
    labelled = catalog.frame[catalog.frame["category"].notna()]
    candidates = labelled[readable_by(labelled, config.modalities)]
    # once a sample is drawn, the products left out before the draw (a photo alone that does not decode, none of the
    # modalities read) are no more the run's than those not drawn
    sampled = len(frame) < len(candidates) - len(unreadable)
    not_drawn = ids_not_drawn(labelled, frame) if sampled else frozenset()
    _warn_of_left_out([issue for issue in unreadable.values() if issue.product_id not in not_drawn])
    undecodable = pd.Series(np.isin(np.arange(len(catalog.frame)), list(unreadable)), index=catalog.frame.index)
    if not sampled and (lost := _categories_left_out(labelled, frame, config, undecodable[labelled.index])):
        say_warning(lost)
    read_by = _modalities_read_by(config)
    _warn_of_read_issues(issues_of_the_run(catalog.issues, read_by, not_drawn), args.data, listed_in, listed_once)
    return dataclasses.replace(readable, issues=issues_of_the_run(readable.issues, read_by, not_drawn)), config, frame


def _log_issues(
    issues: list[RowIssue], what: str, listed_in: Path | None = None, listed_once: str | None = None
) -> None:
    """Warn of how many ``issues`` there are (``what`` they are) and name the first five, saying which file
    lists them all (``listed_in``), or will once ``listed_once`` happens (train's list comes with its model)."""
    if issues:
        once = f" once {listed_once}" if listed_once else ""
        listed = f" (all listed in {listed_in}{once})" if listed_in else ""
        shown = "; first ones:" if len(issues) > 5 else ":"
        log.warning("%s %s%s%s", count_text(len(issues)), what, listed, shown)
        for issue in issues[:5]:
            log.warning("  %s", issue)


def _first_five(names: list[str]) -> str:
    """``names`` as a comma-separated list cut after the fifth (``a, b, c, d, e, ...``)."""
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


#: --out suffixes of other formats than the plain CSV predict writes, which readers would take at their word
_NOT_CSV = {
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".feather": "Feather",
    ".arrow": "Arrow",
    ".json": "JSON",
    ".jsonl": "JSON lines",
    # prodcat's own reader, like most, splits a .tsv at tabs: the CSV would come back as one column
    ".tsv": "tab-separated text",
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".gz": "a gzip file",
    ".bz2": "a bzip2 file",
    ".xz": "an xz file",
    ".zst": "a zstd file",
    ".zip": "a zip archive",
}


def _predict_options_problem(args: argparse.Namespace, out: Path) -> str | None:
    """What is wrong with ``prodcat predict``'s options, checked before anything is scored (``out``: the file
    --out writes, :func:`~prodcat.batch.output_target`)."""
    return _scoring_options_problem(args) or _out_problem(args, out)


def _scoring_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with how ``prodcat predict`` is told to score: sizes below 1, dask's options without its
    engine."""
    for name, value in (("--chunk-size", args.chunk_size), ("--top-k", args.top_k), ("--workers", args.workers)):
        if value is not None and value < 1:
            return f"{name} must be at least 1, got {value}"
    if args.workers is not None and (args.engine != "dask" or args.scheduler):
        # it was ignored: the local engine is this process, and a cluster's workers are its own
        where = f"the cluster at --scheduler {args.scheduler} has its own" if args.scheduler else "add --engine dask"
        return f"--workers sizes the local cluster of --engine dask: {where}, or leave --workers out"
    if args.worker_wait is not None and args.engine != "dask":
        return "--worker-wait is how long --engine dask waits for a worker: add --engine dask, or leave it out"
    return None


def _out_problem(args: argparse.Namespace, out: Path) -> str | None:
    """What is wrong with the file ``out`` that ``prodcat predict --out`` writes: it must be a CSV file, in a folder
    that can be written, that is neither in the model's bundle nor a file of the input catalogue."""
    if out.is_dir():
        return f"--out {out} is a directory; give the CSV file to write"
    if (kind := _NOT_CSV.get(out.suffix.lower())) is not None:
        return (
            f"--out {out}: prodcat predict writes plain CSV text, not {kind}, and a {out.suffix} name would mislead "
            "whatever reads it: name the file .csv"
        )
    if problem := into_bundle("--out", out, args.model):
        return problem
    if file := next((parent for parent in out.parents if parent.exists() and not parent.is_dir()), None):
        return f"--out {out} is under {file}, which is a file, not a folder"
    if problem := unwritable_folder(out.parent, "the predictions"):  # a read-only mount, no permission
        return f"--out {out}: {problem}"
    if out.exists() and (read := catalog_file_among(args.data, [out])) is not None:
        data = Path(args.data).expanduser()
        what = "the input catalogue" if read == data else f"a file of the input catalogue {args.data}"
        return f"--out {out} is {what}: it would be overwritten by the predictions"
    return None


def _with_unused_photos(
    catalog: Catalog, predictions: pd.DataFrame | None, listed_in: Path, listed_once: str | None = None
) -> list[RowIssue]:
    """The catalogue's issues and those of the photos a model reading photos did not use, of ``predictions`` (its
    ``product_id`` and ``modalities_used``; ``None`` for a model that reads none), in line order: what a report, or
    predict's ``OUT.issues.csv``, lists as its input issues. The photos are warned of, pointing to the file
    ``listed_in`` that lists them all (written once ``listed_once`` happens, if given)."""
    unused = [] if predictions is None else unused_photo_issues(catalog, predictions)
    _log_issues(unused, _UNUSED_PHOTOS, listed_in, listed_once)
    return sorted(catalog.issues + unused, key=lambda issue: issue.row)


#: the photos a model reading photos did not use, as every command warns of them
_UNUSED_PHOTOS = "photo(s) not used (their products were read without them)"


def warn_of_unused_photos(catalog: Catalog, predictions: pd.DataFrame) -> None:
    """Warn of the photos of ``predictions`` (``product_id``, ``modalities_used``, of a model reading photos) that the
    model did not use, with why, the first five named: as train, cv, evaluate and predict do, for the commands that
    list no input issues in a file (explain, robustness)."""
    _log_issues(unused_photo_issues(catalog, predictions), _UNUSED_PHOTOS)


def without_unreadable_photos(catalog: Catalog, config: Config, what: str = "labelled product(s)") -> Catalog:
    """The catalogue without the labelled products a model of ``config`` reads from their photo alone (no text,
    or text not read) when that photo does not decode: no model could read anything of them, and each would be
    learnt, and scored in cross-validation, as its category's prior. They are warned of as ``what`` they are, and
    added to the catalogue's issues with why their photo failed (decoded here: the embedding cache keeps no
    reason)."""
    unreadable = unreadable_photos(catalog, config)
    _warn_of_left_out(list(unreadable.values()), what)
    return _without_products(catalog, unreadable)


def unreadable_photos(catalog: Catalog, config: Config) -> dict[int, RowIssue]:
    """The labelled products a model of ``config`` reads from their photo alone (no text, or text not read) whose
    photo does not decode, by position in the catalogue's frame, with why (:func:`without_unreadable_photos`)."""
    if not _reads_photos(config):
        return {}
    frame = catalog.frame
    others = [m for m in (config.modalities or MODALITIES) if m != "image"]
    photo_only = frame["category"].notna().to_numpy() & modality_mask(frame, "image")
    if others:
        photo_only &= ~readable_by(frame, others)
    # none has text the model reads: it would be readable otherwise
    return undecodable_photos(catalog, np.flatnonzero(photo_only), np.zeros(photo_only.sum(), dtype=bool))


def _warn_of_left_out(unreadable: list[RowIssue], what: str = "labelled product(s)") -> None:
    """Name the products of ``unreadable`` (:func:`unreadable_photos`), ``what`` they are, as left out."""
    if unreadable:
        left_out = [str(issue.product_id) for issue in unreadable]
        log.warning(
            "%s %s have only a photo to read, which does not decode: left out (%s)",
            count_text(len(left_out)),
            what,
            _first_five(left_out),
        )


def _without_products(catalog: Catalog, unreadable: dict[int, RowIssue]) -> Catalog:
    """The catalogue without the products at the positions of ``unreadable``, their issues added to its own."""
    if not unreadable:
        return catalog
    frame = catalog.frame
    kept = np.setdiff1d(np.arange(len(frame)), list(unreadable))
    return dataclasses.replace(
        catalog,
        frame=frame.iloc[kept].reset_index(drop=True),
        lines=[catalog.line_of(position) for position in kept],
        issues=sorted([*catalog.issues, *unreadable.values()], key=lambda issue: issue.row),
    )


def input_issues_path(out: str | Path) -> Path:
    """``OUT.issues.csv``: the input issues of the file or folder ``out`` written beside it (named like OUT.parts/:
    one per output)."""
    out = _named_by_itself(out)
    return out.with_name(out.name + ".issues.csv")


def _named_by_itself(path: str | Path) -> Path:
    """``path``, absolute when its name says nothing of it (``.``, ``..``: ``train --out .``, ``cv --report .``), so
    that a file named after it, beside it, is named after the folder it is (a relative ``.`` has no name to extend:
    ValueError)."""
    path = Path(path)
    return Path(os.path.abspath(path)) if path.name in ("", "..") else path


def write_input_issues(issues: list[RowIssue], out: str | Path) -> Path | None:
    """``OUT.issues.csv`` beside the output ``out`` (predict's predictions, train's model, a failed run's
    ``OUT.failed-run``): each input problem with its line number (a skipped row has no prediction, so this file is
    what accounts for it); columns ``row, product_id, field, message``. ``None``, and no file (a previous run's would
    describe other input), when there is none."""
    path = input_issues_path(out)
    if not issues:
        path.unlink(missing_ok=True)
        return None
    write_issues(issues, path)
    return path


def labelled_part(catalog: Catalog) -> Catalog | None:
    """``catalog``, its frame cut to its labelled products (its issues kept whole); ``None``, after saying why,
    when there are none."""
    labelled = np.flatnonzero(catalog.frame["category"].notna().to_numpy())
    if not len(labelled):
        say_error(catalog.no_category_read() or "the catalogue has no labelled products to evaluate against")
        return None
    frame = catalog.frame.iloc[labelled].reset_index(drop=True)
    return dataclasses.replace(catalog, frame=frame, lines=[catalog.line_of(p) for p in labelled.tolist()])


def build_config(args: argparse.Namespace, catalog_format: str) -> Config:
    """The config of a run of train, cv or audit on a catalogue of ``catalog_format``: ``--config``'s (the default
    one without), each option given overriding the field it shares (``--level 0`` and ``--sample 0``: none);
    audit has no ``--fusion``."""
    config = args.config or Config()
    updates: dict[str, Any] = {}
    # the config's modalities in another order are the config's, kept as it lists them (and replacing nothing)
    if args.modalities and set(args.modalities) != set(config.modalities or ()):
        updates["modalities"] = args.modalities
    if args.level is not None:
        updates["level"] = None if args.level == 0 else args.level
    if fusion := vars(args).get("fusion"):
        updates["fusion"] = fusion
    if args.seed is not None:
        updates["seed"] = args.seed
    if args.sample is not None:
        updates["sample"] = args.sample or None
    # a field the config file gives, replaced without a word: the run was not the file's experiment, nor said so
    for field, value in updates.items():
        if field in config.model_fields_set and getattr(config, field) != value:
            log.info(
                "--%s %s replaces the config's %s: %s",
                field,
                _as_option(field, value),
                field,
                _as_option(field, getattr(config, field)),
            )
    return Config.model_validate(config.model_dump() | updates).for_format(catalog_format)


def _as_option(field: str, value: Any) -> str:
    """The config ``field``'s ``value`` as its option writes it: ``text,image``, 0 for none (the full path, every
    product); no modalities, which no option writes, as what they mean."""
    if value is None:
        return "every modality the catalogue has" if field == "modalities" else "0"
    return ",".join(value) if isinstance(value, list) else str(value)


def labelled_products(frame: pd.DataFrame, config: Config, sample: int | None = None) -> pd.DataFrame:
    """The labelled products of ``frame`` that have one of the configured modalities. The others are left out, and
    said so unless a ``sample`` smaller than the rest is to be drawn: they are then no more the run's than the
    products it does not draw."""
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    usable = readable_by(frame, config.modalities)
    if not usable.all():
        what = _lacking(config)
        left_out = frame.loc[~usable, "product_id"].astype(str).tolist()
        if sample is None or sample >= usable.sum():
            log.warning(
                "%s labelled product(s) have %s: left out (%s)", count_text(len(left_out)), what, _first_five(left_out)
            )
        frame = frame[usable].reset_index(drop=True)
    return frame


def _lacking(config: Config) -> str:
    """What a labelled product left out for having nothing a model of ``config`` reads has, as the warnings say it."""
    return f"none of the modalities {','.join(config.modalities)}" if config.modalities else "no text or photo"


def _categories_left_out(
    labelled: pd.DataFrame, trained: pd.DataFrame, config: Config, undecodable: pd.Series
) -> str | None:
    """What to say of the categories (at ``config``'s target level) of the catalogue's ``labelled`` products that none
    of the products ``trained`` holds, all of them left out as the model reads none of their modalities, or as their
    only photo to read does not decode (``undecodable``, aligned with ``labelled``): no model learns them, nor ever
    predicts them. A shop's 'Wall art', of three products with a photo and no text, was gone from a text model
    without a word: the log named the three products, the console 'predicting the full category path: 9 categories'
    of the ten. Asked of the catalogue alone, before any correction, and of all its products (not of a sample)."""
    categories = pd.Series(category_at_level(labelled["category"], config.target_level), index=labelled.index)
    held = categories.isin(set(category_at_level(trained["category"], config.target_level)))
    lost = categories[~held].value_counts()
    if lost.empty:
        return None
    unread = ~readable_by(labelled, config.modalities)
    read_them = "give those products what the model reads, or read what they have (--modalities)"
    why = [
        (f"having {_lacking(config)}", read_them),
        ("having only a photo to read, which does not decode", "replace those photos"),
    ]
    apply = [(~held & unread).any(), (~held & undecodable & ~unread).any()]
    reasons = [reason for reason, applies in zip(why, apply, strict=True) if applies]
    named = first_few([f"{name!r} ({count_text(count)})" for name, count in lost.items()], 5)
    them = "it" if len(lost) == 1 else "them"
    return (
        f"{counted(len(lost), 'category', 'categories')} {'is' if len(lost) == 1 else 'are'} held only by products "
        f"left out for {' or '.join(reason for reason, _ in reasons)} ({named}): the model cannot learn {them} and "
        f"will never predict {them}; {', or '.join(advice for _, advice in reasons)}"
    )


def labelled_sample(frame: pd.DataFrame, config: Config, size: int | None) -> pd.DataFrame:
    """The :func:`labelled_products`, or a stratified sample of ``size`` of them (:func:`pooled_stratified_sample`)."""
    frame = labelled_products(frame, config, size)
    if size is None:
        return frame
    return pooled_stratified_sample(frame, config, size).reset_index(drop=True)


def warn_if_the_sample_takes_all(size: int, available: int) -> None:
    """Warn that a sample of ``size`` products (``--sample``, or a config's ``sample``: not named, as either can
    be), more than the ``available`` ones it is drawn from, takes them all: the run is not the sample asked for."""
    if size > available:
        log.warning(
            "the sample size %s is more than the %s to draw from: all of them are used",
            size,
            counted(available, "product"),
        )


#: the stratum of the products without a category, which a sample keeps in their share as it keeps each category's
_UNLABELLED = "__unlabelled__"


def pooled_stratified_sample(frame: pd.DataFrame, config: Config, size: int) -> pd.DataFrame:
    """``size`` products of ``frame`` (all of them when it has no more), drawn with ``config.seed`` and stratified on
    their category at ``config.target_level`` (the unlabelled ones a stratum of their own), the categories too rare to
    split pooled, as the model's inner folds pool them (a rare category may be left out: unlike the feasibility
    study's :func:`~prodcat.explore.clustering.sample_covering_every_label`), ``frame``'s index kept: the ``--sample``
    of ``train`` and ``cv`` (among their labelled products) and of ``audit`` (among all)."""
    if size >= len(frame):
        warn_if_the_sample_takes_all(size, len(frame))
        return frame
    from sklearn.model_selection import train_test_split

    from prodcat.models.heads import pooled_strata

    categories = category_at_level(frame["category"], config.target_level)
    strata = pooled_strata(np.where(pd.isna(categories), _UNLABELLED, categories), 2)
    sizes = pd.Series(strata).value_counts()
    if sizes.iloc[-1] < 2:  # one single-product category pools into a stratum of one: it joins the largest
        strata = np.where(strata == sizes.index[-1], sizes.index[0], strata)
    # a sample, or the products it leaves out, fewer than the strata cannot be stratified: a plain random sample (the
    # checks that follow say whether it is enough to train on)
    stratify = strata if min(size, len(frame) - size) >= len(np.unique(strata)) else None
    sample, _ = train_test_split(frame, train_size=size, stratify=stratify, random_state=config.seed)
    return sample


def print_metrics(metrics: dict[str, Any], title: str, target_precision: float | None = None) -> None:
    """Print the ``metrics`` of an evaluation, a cv or a training's out-of-fold estimate under ``title``, the
    automation said against the ``target_precision`` the threshold was chosen for, if given."""
    print(f"\n{title}")
    for key in HEADLINE:
        if key in metrics:
            value = metrics[key]
            low_high = metrics.get("intervals", {}).get(key)
            interval = interval_text(*low_high, form="{:.4f}", dash="-") if low_high else ""
            spread = f"  (95% bootstrap interval {interval})" if low_high else ""
            print(f"  {key:<14}{value:.4f}{spread}" if isinstance(value, float) else f"  {key:<14}{count_text(value)}")
    for level, values in metrics.get("levels", {}).items():
        print(f"  level {level}: " + "  ".join(f"{key} {values[key]:.4f}" for key in HEADLINE_METRICS))
    if "calibration" in metrics:
        print(f"  ECE           {ece_text(metrics['calibration'], metrics['n'])}")
    if "decision" in metrics:
        d = metrics["decision"]
        precision = "–" if np.isnan(d["auto_precision"]) else f"{d['auto_precision']:.4f}"  # none accepted
        target = f" (target {target_precision})" if target_precision else ""
        print(f"  auto-accepted {d['automation_rate']:.1%} at precision {precision}{target}")
        if sure := auto_precision_note(d, form="{:.4f}", dash="-", interval_name="the precision's 95% interval"):
            print(f"  auto errors   {sure}")
        if "automation_ceiling" in d:  # cv only, which always knows its target
            print(
                f"  auto ceiling  {d['automation_ceiling']:.1%} (the best single threshold reaching precision "
                f"{target_precision} on these held-out scores, chosen knowing the answers)"
            )
    if "intervals_warning" in metrics:  # categories of a few products: intervals drawn within them hardly move
        say_warning(metrics["intervals_warning"])


def ece_text(calibration: dict[str, Any], n: int) -> str:
    """The ECE as printed: on the products the model gave a confidence (those it could not score have none to
    calibrate), said when they are fewer than the ``n`` products scored; '–' when there are none."""
    with_confidence = calibration.get("n", n)
    if not with_confidence:
        return "– (no product was scored: no confidence to calibrate)"
    ece = f"{calibration['ece']:.4f}"
    return ece if with_confidence == n else f"{ece} (on the {count_text(with_confidence)} products scored)"


# ---------------------------------------------------------------------------------------------- commands
def describe_target(
    frame: pd.DataFrame, config: Config, single_product_consequence: str, taxonomy: Collection[str] = ()
) -> list[str]:
    """Warn of the labels' problems (categories written several ways, with a single product, texts shared across
    categories, a category the parent of another unless both are classes of the source's ``taxonomy``, a level
    deeper than the paths), then say which level is predicted over how many categories. Returns the warnings, for a
    report to carry as the console does."""
    from prodcat.evaluate.cv import category_counts

    counts = category_counts(frame, config)
    level = config.target_level
    too_deep = deeper_level_warning(frame["category"], level, "predicted")
    found = [
        label_variants_warning(counts),
        placeholder_categories_warning(counts),
        single_products_warning(counts, single_product_consequence),
        conflicting_copies_warning(frame, config),
        nested_categories_warning(frame["category"], level, taxonomy),
        too_deep,
    ]
    warnings = [warning for warning in found if warning]
    for warning in warnings:
        say_warning(warning)
    what = f"level {level}" if level and not too_deep else "the full category path"
    print(f"predicting {what}: {count_text(len(counts))} categories")
    return warnings


def label_variants_warning(counts: pd.Series) -> str | None:
    """Which categories (of their product ``counts``) are another written differently: the same but for case,
    accents, spaces, punctuation or symbols ('Kitchen', 'kitchen', 'Kitchén', 'Kitchen.'; not '+', '#', nor what
    stands between two digits: :func:`~prodcat.grouping.label_key`), as hand-typed labels or two merged exports give
    (spacing is collapsed in training: :func:`~prodcat.catalog.schema.category_at_level`). Each is learnt as a
    category of its own, splitting one category's products between labels the model cannot tell apart."""
    variants = spelling_groups(counts.index.astype(str))
    if not variants:
        return None
    shown = "; ".join(" / ".join(map(repr, group)) for group in variants[:3]) + ("; ..." if len(variants) > 3 else "")
    return (
        f"{count_text(len(variants))} {'category is' if len(variants) == 1 else 'categories are'} written in several "
        f"ways, differing only in {SPELLING_DIFFERENCES} ({shown}): each way is learnt as a category of its own; "
        "correct the labels to one spelling"
    )


#: what a spreadsheet or a script writes in a cell that has no value ('nan': a missing value turned into text)
MISSING_VALUE_WORDS = frozenset({"nan", "none", "null", "n/a", "#n/a", "na", "undefined"})


def placeholder_categories_warning(counts: pd.Series) -> str | None:
    """Which categories (of their product ``counts``) are, or have a level that is, a word for a missing value
    ('nan', 'None', 'N/A', 'NULL', 'Watches > nan'): a label written by an export that had none, learnt as a
    category of its own and predicted for new products, when the product is unlabelled or its path shorter."""
    counts = counts.set_axis(counts.index.astype(str))
    found = [
        name for name in counts.index if any(level.casefold() in MISSING_VALUE_WORDS for level in split_path(name))
    ]
    if not found:
        return None
    found.sort(key=lambda name: (-counts[name], name))  # the most products first, ties by name
    products = int(counts[found].sum())
    named = _first_five([f"{name!r} ({count_text(counts[name])})" for name in found])
    return (
        f"{count_text(len(found))} {'category reads' if len(found) == 1 else 'categories read'} as a missing value "
        f"({named}; {counted(products, 'product')}): each is learnt as a category of its own; if these products "
        "have no category (or no deeper level), leave the cell empty (or end the path before it)"
    )


def single_products_warning(counts: pd.Series, consequence: str) -> str | None:
    """Which categories (of their product ``counts``) have a single labelled product (a correction into a
    new category, a typo in a label): the internal cross-validation never sees them in a training part."""
    if not (alone := counts[counts == 1]).any():
        return None
    names = _first_five([repr(str(name)) for name in alone.index])
    have = "category has" if len(alone) == 1 else "categories have"
    return f"{count_text(len(alone))} {have} a single labelled product ({names}): {consequence}"


def conflicting_copies_warning(frame: pd.DataFrame, config: Config) -> str | None:
    """How many labelled products have the very title and description of a product of another category (at
    the predicted level): the text cannot tell them apart, so one of each such pair is an error the model must
    make, or a label to correct. The photo is left out: it would cost a read of every photo, and the text
    decides most products."""
    texts = frame[has_text(frame)]
    copies = pd.DataFrame(
        {
            "text": product_fingerprints(texts, ["text"]),
            "category": category_at_level(texts["category"], config.target_level),
            "title": texts["title"].to_numpy(),
        }
    )
    conflicting = copies.groupby("text")["category"].transform("nunique") > 1
    if not conflicting.any():
        return None
    found = copies[conflicting]
    example = found[found["text"] == found["text"].iloc[0]]
    named = " / ".join(sorted(map(str, example["category"].unique())))
    groups = found["text"].nunique()
    return (
        f"{count_text(len(found))} labelled products in {count_text(groups)} group{'s' if groups > 1 else ''} share "
        f"their title and description with a product of another category (e.g. {example['title'].iloc[0]!r}: "
        f"{named}): the text cannot tell them apart; `prodcat audit` lists the duplicates"
    )


class _IssuesAwaitingOutput:
    """The input issues of a run that warns of them before it writes the output that lists them (``train``'s model,
    MODEL.issues.csv beside it; ``cv``'s and ``evaluate``'s report, its input_issues.csv), as a context around the
    run's work. A run that leaves it without having :meth:`written` its output (refused, failing, interrupted), whose
    warnings said the issues would be listed with it, lists them in ``OUT.failed-run.issues.csv`` beside ``out``
    instead and says so on stderr: an output already at ``out`` stays whole, its own list included, and no part of
    this run's is mixed with it. A run that writes its output removes that file, an earlier failed run's."""

    def __init__(self, output: str, out: str | Path, listed_in: Path) -> None:
        #: what the run writes ("model", "report") and the file in or beside it that lists the issues
        self.output, self.listed_in = output, listed_in
        #: what the warnings of the issues say their list waits for
        self.once = f"the {output} is written"
        #: the issues warned of so far: the run adds those it finds as it goes (the photos a model could not use)
        self.issues: list[RowIssue] = []
        self._failed_run = _failed_run(out)
        self._written = False

    def written(self) -> None:
        """Record that the run wrote its output: the issues are, or will be, listed with it."""
        self._written = True

    def write_output(
        self, write: Callable[[list[RowIssue]], object], catalog: Catalog, predictions: pd.DataFrame | None
    ) -> OSError | None:
        """Write the output with ``write(issues)``, the issues being the run's and those of the photos the model did
        not use (:func:`_with_unused_photos` of ``catalog`` and ``predictions``, warned of as listed once the output
        is written); the error that stopped it (:func:`~prodcat.files.write_failure`), or ``None``: :meth:`written`."""
        self.issues = _with_unused_photos(catalog, predictions, self.listed_in, self.once)
        failure = write_failure(lambda: write(self.issues))
        if not failure:
            self.written()
        return failure

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:  # an exception goes on, shown after the issues' line
        path = input_issues_path(self._failed_run)
        if self._written:
            path.unlink(missing_ok=True)  # an earlier run's, which wrote nothing
            return
        try:
            if self.issues:  # beside a folder not made yet (a report's parent): made, as the output would have been
                path.parent.mkdir(parents=True, exist_ok=True)
            # a previous failed run's list goes when there are none: it was of another run
            written = write_input_issues(self.issues, self._failed_run)
        except OSError as exc:  # the disk that refused the output refuses this file too: said, not a second traceback
            reason = exc.strerror or exc
            print(f"no {self.output} was written, nor its input issues to {path}: {reason}", file=sys.stderr)
            return
        if written:
            count = count_text(len(self.issues))
            print(
                f"no {self.output} was written: the {count} input issue(s) of this run are listed in {written}",
                file=sys.stderr,
            )


def _failed_run(out: str | Path) -> Path:
    """``OUT.failed-run``, beside the model or report folder ``out``: the name a run that wrote nothing at ``out``
    lists its input issues under (``OUT.failed-run.issues.csv``, :func:`input_issues_path`)."""
    path = _named_by_itself(out)
    return path.with_name(path.name + ".failed-run")


def _read_training_run(
    args: argparse.Namespace, awaiting: _IssuesAwaitingOutput
) -> tuple[Catalog, Config, pd.DataFrame, Lacking]:
    """:func:`read_training_data` for a train or cv run, whose issues ``awaiting`` keeps until its output lists them,
    and what the installation lacks, asked once in the run (the check before fitting reads it again)."""
    known: Lacking = {}
    catalog, config, frame = read_training_data(args, known, awaiting.listed_in, awaiting.once)
    awaiting.issues = catalog.issues
    return catalog, config, frame, known


def run_train(args: argparse.Namespace) -> int:
    awaiting = _IssuesAwaitingOutput("model", args.out, input_issues_path(args.out))
    catalog, config, frame, known = _read_training_run(args, awaiting)
    with awaiting:
        trained = _train_and_save(args, config, frame, known, catalog.taxonomy)
        if trained is None:  # refused, or the bundle not written: said why
            return 2
        awaiting.written()
    out, read = trained
    # beside the bundle, whose bytes depend on the training data alone: on every run, as the feature cache
    # remembers that a photo failed but not why
    issues = _with_unused_photos(catalog, read, awaiting.listed_in)
    if written := write_input_issues(issues, out):
        print(f"{count_text(len(issues))} input issue(s): see {written}")
    print(f"\nModel bundle written to {out}")
    return 0


def _train_and_save(
    args: argparse.Namespace, config: Config, frame: pd.DataFrame, known: Lacking, taxonomy: Collection[str]
) -> tuple[Path, pd.DataFrame | None] | None:
    """:func:`run_train`'s training on the labelled products ``frame`` (of a catalogue whose source defines the
    classes ``taxonomy``, :attr:`~prodcat.catalog.schema.Catalog.taxonomy`) and the bundle it writes: its path and,
    for a config reading photos (its model may read none: none decoded), the modalities it read of each training
    product (``product_id``, ``modalities_used``); ``None``, said why, when no model was written."""
    from prodcat.evaluate.cv import cross_validation_obstacle
    from prodcat.models.classifier import ProductClassifier, TrainingRefused

    if args.feedback:
        from sqlalchemy.exc import SQLAlchemyError

        from prodcat.review.store import load_corrections, shown_url

        try:
            corrections = load_corrections(args.feedback)
        except SQLAlchemyError as exc:  # an unreachable server, wrong credentials: said in one line
            reason = getattr(exc, "orig", None) or exc
            say_error(f"cannot read the review queue {shown_url(args.feedback)}: {reason}")
            return None
        frame, feedback = _with_corrections(frame, corrections, config, args.feedback)
    else:
        feedback = None
    # training cross-validates inside (calibration, fusion and threshold on out-of-fold scores)
    if problem := cross_validation_obstacle(frame, config, folds=None, known=known):
        say_error(f"cannot train: {problem}")
        return None
    describe_target(frame, config, "the model learns it from that product alone", taxonomy)
    try:
        model = ProductClassifier(config, n_jobs=args.jobs).fit(frame)
    except TrainingRefused as refusal:  # what only fitting finds (an OCR head reading no text on any photo)
        say_error(f"cannot train: {refusal}")
        return None
    proba, accepted = model.oof_cross_fitted_
    predicted = model.categories_[proba.argmax(axis=1)]
    metrics = evaluate_predictions(model.oof_y_, predicted, proba.max(axis=1), accepted=accepted)
    metrics["decision"] = accepted_metrics(accepted, model.oof_y_ == predicted, model.policy_.threshold_)
    metrics["estimated_by"] = (
        f"internal {config.inner_folds}-fold cross-validation (out-of-fold); calibration and decision threshold "
        "cross-fitted over the same folds"
    )
    print_metrics(
        metrics, f"Trained on {count_text(len(frame))} products; out-of-fold estimate:", config.target_precision
    )
    # a single head is used as it is ("late fusion" of one head, in the model's terms)
    fused = f"{model.fusion_method_} fusion" if len(model.heads_) > 1 else "one head, nothing to fuse"
    print(f"  heads         {', '.join(model.heads_)}; {fused}")
    for modality, chosen in getattr(model, "early_kept_", {}).items():
        accuracy = model.early_selection_[modality][chosen]["accuracy"]
        print(f"  early {modality:<7} {chosen} (out-of-fold accuracy {accuracy:.3f})")
    if feedback is not None:
        print(f"  corrections   {feedback_text(feedback)}")
    try:
        out = _save_trained(model, frame, config, metrics, args.out, feedback)
    except OSError as exc:  # a full disk, a file system gone read-only meanwhile: one line, not a traceback
        say_error(
            f"cannot write the model bundle {args.out}: {exc.strerror or exc}; nothing was written there (a bundle "
            "already there is kept): free some space or give another --out, and train again"
        )
        return None
    if not _reads_photos(config):  # no photo to have gone unused
        return out, None
    # a photo head skipped as none of its photos decodes leaves a model of no photo: each of them is listed still
    return out, pd.DataFrame(
        {"product_id": frame["product_id"], "modalities_used": _modalities_read(model.training_read_)}
    )


def _with_corrections(
    frame: pd.DataFrame, corrections: pd.DataFrame, config: Config, url: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The labelled products ``frame`` with the review queue's ``corrections`` (:func:`load_corrections`, read from
    ``url``), and what the bundle's manifest records of them (``feedback``: the queue, without credentials, and how
    many corrections trained, see :func:`~prodcat.manifest.feedback_text`). A corrected catalogue product trains under
    its correction only: replaced by it, or, when the model reads nothing of the correction's own record (a photo alone
    for a text-only model, a stored photo that does not decode), kept with the corrected category, rather than trained
    under the label the reviewer overrode."""

    # a stored photo may not decode either (the store keeps the bytes it was given): left out as in a catalogue
    usable = without_unreadable_photos(Catalog(corrections, url), config, "reviewed correction(s)").frame
    usable = labelled_products(usable, config)
    labelled = corrections[corrections["category"].notna() & corrections["source_product_id"].notna()]
    unread = labelled[~labelled["product_id"].isin(usable["product_id"])]
    replaced = frame["product_id"].isin(usable["source_product_id"].dropna())
    relabelled = frame["product_id"].map(dict(zip(unread["source_product_id"], unread["category"], strict=True)))
    catalogue = frame["category"]  # the catalogue's own labels, before any correction
    frame = frame.assign(category=relabelled.where(relabelled.notna(), catalogue))
    log.info(
        "added %s reviewed correction(s) from the review queue, replacing %s catalogue product(s)%s",
        count_text(len(usable)),
        count_text(replaced.sum()),
        f"; {count_text(relabelled.notna().sum())} more, whose correction's record the model reads nothing of, "
        "train under their correction with their catalogue's text and photo"
        if relabelled.notna().any()
        else "",
    )
    _warn_of_new_categories(catalogue, pd.concat([usable["category"], relabelled.dropna()]), config)
    feedback = {
        "review_queue": _recorded_url(url),
        "corrections": len(usable),
        "replacing": int(replaced.sum()),
        "relabelling": int(relabelled.notna().sum()),
    }
    return pd.concat([frame[~replaced], usable], ignore_index=True), feedback


def _recorded_url(url: str) -> str:
    """The review queue's ``url`` as a bundle records it, which anyone holding the bundle reads: without its user name,
    password and query (libpq takes ``?password=`` too), ``postgresql+psycopg://db.example:5432/reviews``."""
    from sqlalchemy.util import immutabledict

    from prodcat.review.store import parsed_url

    parsed = parsed_url(url)
    if parsed.get_backend_name() != "sqlite":
        parsed = parsed._replace(username=None, password=None, query=immutabledict())
    return parsed.render_as_string(hide_password=False)


def _warn_of_new_categories(catalogue: pd.Series, corrected: pd.Series, config: Config) -> None:
    """Name the categories, at the level trained, that the ``corrected`` labels bring and the ``catalogue``'s labels
    do not have, with their products: each is learnt as a new category from the corrections alone (a queue of a model
    of another catalogue, or a ``?new_category=true`` correction).

    A new one whose last level the catalogue files under another parent (``Watches > Mugs`` beside ``Kitchen > Mugs``)
    is named with the catalogue's path: a reviewer may have put a known category under a wrong parent, which trains as
    a second class of it."""
    known = {label for label in category_at_level(catalogue, config.target_level) if isinstance(label, str)}
    by_last_level: dict[str, list[str]] = {}
    for label in sorted(known):
        by_last_level.setdefault(split_path(label)[-1], []).append(label)
    counts = pd.Series(category_at_level(corrected, config.target_level)).value_counts()
    new = [(label, count) for label, count in counts.items() if label not in known]
    if not new:
        return
    named, beside_one = [], []
    for label, count in new:
        levels = split_path(label)
        same_name = by_last_level.get(levels[-1], []) if len(levels) > 1 else []
        beside_one.append(bool(same_name))
        beside = f", beside the catalogue's {' and '.join(map(repr, same_name[:2]))}" if same_name else ""
        named.append(f"{label!r} ({count}{beside})")
    shown = 5
    log.warning(
        "the corrections bring %s the catalogue has no product of, learnt from them alone: %s%s",
        counted(len(new), "category", "categories"),
        first_few(named, shown),
        "; one beside a catalogue's category of the same last level may be under a wrong parent, and trains as a "
        "second class of it: correct it to the catalogue's path if so"
        if any(beside_one[:shown])  # of those named
        else "",
    )


def _modalities_read(read: dict[str, np.ndarray]) -> list[str]:
    """Per product, the modalities a model read of it (``read``: per modality, ``(n,)`` bool), comma-separated
    as in predictions' ``modalities_used``."""
    rows = zip(*read.values(), strict=True)
    return [",".join(m for m, was_read in zip(read, row, strict=True) if was_read) for row in rows]


def _save_trained(
    model: ProductClassifier,
    frame: pd.DataFrame,
    config: Config,
    metrics: dict[str, Any],
    out: Path,
    feedback: dict[str, Any] | None = None,
) -> Path:
    """Write the fitted ``model`` (trained on ``frame`` with ``config``, and the review queue's corrections
    ``feedback`` says, :func:`_with_corrections`) as a bundle at ``out``."""
    # the training data by its content, the same wherever the catalogue is; each product by what the model reads of
    # it, and by its text or photo alone: evaluating on some of them, whole or without one, is then said to be in-sample
    fingerprint, products = training_record(frame, model.modalities_)
    return save_bundle(
        model,
        out,
        config=config.model_dump(),
        labels=[str(c) for c in model.categories_],
        metrics=metrics,
        fingerprint=fingerprint,
        products=products,
        extra={
            "data_fingerprint_version": DATA_FINGERPRINT_VERSION,
            "modalities": model.modalities_,
            "heads": list(model.heads_),
            "fusion": model.fusion_method_,
            "early_selection": getattr(model, "early_selection_", {}),
            "early_kept": getattr(model, "early_kept_", {}),
            "n_train": len(frame),
        }
        | ({"feedback": feedback} if feedback is not None else {}),
    )


def _product_whose_photo_is(out: Path, frame: pd.DataFrame) -> str | None:
    """The id of the product of ``frame`` whose photo is the file ``out`` (the predictions would overwrite it),
    ``None`` if none is. Only the photos of ``out``'s name are compared (a stat of each of a catalogue's photos takes
    minutes on a network file system): one reached through a link of another name is not seen."""
    if not out.is_file():
        return None
    # as lists, the end of the text first: a Path made of each of a million photos took 6 s
    for product_id, photo in zip(frame["product_id"].tolist(), frame["image"].tolist(), strict=True):
        if isinstance(photo, str) and photo.endswith(out.name) and Path(photo).name == out.name:
            try:
                if Path(photo).samefile(out):
                    return str(product_id)
            except OSError:  # no file there: the catalogue's issues say so
                continue
    return None


def _batch_engine(args: argparse.Namespace) -> Engine:
    """The engine ``predict`` scores with: a dask cluster's (``--engine dask``), else this process."""
    if args.engine == "dask":
        from prodcat.batch.dask_engine import DaskEngine

        # distributed logs every worker's start, connection and stop at INFO: pages around the progress bar
        logging.getLogger("distributed").setLevel(logging.WARNING)
        return DaskEngine(
            args.model,
            scheduler=args.scheduler,
            workers=args.workers or LOCAL_WORKERS,
            worker_wait_s=args.worker_wait or WORKER_WAIT_S,
        )
    return LocalEngine.from_bundle(args.model)


def run_predict(args: argparse.Namespace) -> int:
    if args.scheduler and args.engine != "dask":
        return say_error("--scheduler is a dask cluster's address: add --engine dask")
    # a link is written through, and what it points at is checked (the catalogue, the bundle) and locked
    out = output_target(args.out)
    if problem := _predict_options_problem(args, out):
        return say_error(problem)
    # a mistyped MODEL is said before a catalogue of millions is read, not after
    manifest = read_manifest(args.model)
    # the labels a catalogue may have are not read: their issues do not concern the predictions
    read_by = modalities_read_by_bundle(manifest)
    catalog = catalog_of_the_run(args, read_by, reads_labels=False)
    if _catalog_refused_for_prediction(catalog, out, read_by, args.data):
        return 2
    frame = catalog.frame

    def list_input_issues() -> None:
        # warned of "all listed in OUT.issues.csv" as that file is written: once the output is this run's, and again
        # once the photos the model could not use are known; a run interrupted, failing or refused by its parts
        # leaves the list of its own input's issues, not none or an earlier run's; one refused before (another run
        # writing the output, --out a photo) neither writes it nor says it does
        _warn_of_read_issues(catalog.issues, args.data, input_issues_path(out))
        write_input_issues(catalog.issues, out)

    engine = _batch_engine(args)
    try:
        summary = score_catalog(
            frame,
            out,
            engine,
            chunk_size=args.chunk_size,
            top_k=args.top_k,
            restart=args.restart,
            on_locked=list_input_issues,
        )
    except (ResumeMismatchError, OutputBusyError) as exc:
        # no "run the same command to resume": the parts there are another run's, or those of the run writing now
        return say_error(exc)
    except BatchError as exc:
        return say_error(exc, _kept_chunks(out))
    except OSError as exc:  # a full disk, a file system gone read-only mid-run: what is finished stays
        return say_error(f"cannot write the predictions: {exc.strerror or exc}", _kept_chunks(out))
    except KeyboardInterrupt:
        print(one_line("; ".join(filter(None, ["interrupted", _kept_chunks(out)]))), file=sys.stderr)
        return 130
    # written before anything is printed: a reader of the output that stops early (| head) ends the run there
    issues = _with_unused_photos(catalog, _modalities_used(engine, out), input_issues_path(out))
    issues_file = write_input_issues(issues, out)
    print(summary.report_line())
    if issues_file:
        skipped = sum(issue.field == "row" for issue in catalog.issues)
        print(
            f"{count_text(len(issues))} input issue(s), {count_text(skipped)} row(s) skipped and not predicted: see "
            f"{issues_file}"
        )
    return 0


def _catalog_refused_for_prediction(catalog: Catalog, out: Path, read_by: tuple[str, ...], data: str) -> bool:
    """Whether ``prodcat predict`` refuses the catalogue read, said on stderr: --out is one of its photos, the model
    reads nothing of its products, or none was read. Else the products it reads nothing of are warned of."""
    frame = catalog.frame
    if (product := _product_whose_photo_is(out, frame)) is not None:
        say_error(f"--out {out} is the photo of product {product}: it would be overwritten by the predictions")
        return True
    # scored, each got its error (nothing to classify), and a run of no prediction exited 0
    readable = readable_by(frame, read_by)
    if _refused_as_unreadable(readable, read_by, data):
        return True
    if frame.empty:
        # refused before scoring, as a catalogue with nothing the model reads is: no output of no prediction, no
        # "0 predictions written" beside the error; the rows skipped are warned of here, as no file lists them
        _warn_of_read_issues(catalog.issues, data, None)
        say_error(f"no product could be read from {data}")
        return True
    if unread := int((~readable).sum()):
        log.warning(
            "%s", _unread_warning(unread, len(frame), read_by, "they get no category, their error column saying why")
        )
    return False


def _modalities_used(engine: Engine, out: Path) -> pd.DataFrame | None:
    """The ``product_id`` and ``modalities_used`` of the predictions written to ``out``, read back for a model that
    reads photos (to list those it did not use); ``None`` for one that reads none."""
    if "image" not in modalities_read_by_bundle(engine.manifest):
        return None
    return pd.read_csv(out, usecols=["product_id", "modalities_used"], dtype=str, keep_default_na=False)


def _kept_chunks(out: str | Path) -> str:
    """The note on resuming when an earlier or this run left finished chunks to resume from; ``""``: none did."""
    work_dir = work_dir_for(out)
    if not any(work_dir.glob("part-*.parquet")):
        return ""
    return f"finished chunks are kept in {work_dir}: run the same command to resume"


def run_evaluate(args: argparse.Namespace) -> int:
    from prodcat.predict import Predictor

    if problem := report_problem(args.report, args.data, EVALUATION_FILES, args.model):
        return say_error(problem)
    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    awaiting = _report_awaited(args.report)
    read_by = modalities_read_by_bundle(predictor.manifest)
    catalog = read_catalog(args, awaiting.listed_in, read_by, awaiting.once)
    awaiting.issues = catalog.issues
    with awaiting:
        return _evaluate(args, predictor, labelled_part(catalog), read_by, awaiting)


def _report_awaited(report: str | Path) -> _IssuesAwaitingOutput:
    """The input issues of a ``cv`` or ``evaluate`` run, listed in the input_issues.csv of its ``report`` folder."""
    return _IssuesAwaitingOutput("report", report, Path(report) / "input_issues.csv")


def _evaluate(
    args: argparse.Namespace,
    predictor: Predictor,
    catalog: Catalog | None,
    read_by: tuple[str, ...],
    awaiting: _IssuesAwaitingOutput,
) -> int:
    """:func:`run_evaluate`'s scoring of ``predictor``, which reads ``read_by``, on the labelled part of the catalogue
    (``catalog``; ``None``: it has none, said) and its report, written by ``awaiting``."""
    if catalog is None:
        return 2
    frame = catalog.frame
    # scored, each counted as wrong: a report of accuracy 0 on a catalogue the model reads nothing of, exit 0
    if _refused_as_unreadable(readable_by(frame, read_by), read_by, args.data):
        return 2
    if "text" not in read_by:  # nor a photo model on photos none of which decodes (decoded until one does)
        from prodcat.evaluate.robustness_command import undecoded_photos_said

        if refusal := undecoded_photos_said(frame, read_by, None, [])[0]:
            return say_error(refusal)
    level = model_level(predictor.manifest)
    truth = model_truth(frame["category"], level, predictor.labels)
    # scored, every product counted wrong: a report of zeros, exit 0, on a catalogue of other categories
    if refusal := no_known_category(truth, predictor.labels, level, catalog.format):
        return say_error(f"{args.data}: {refusal}")
    table = predict_catalog(predictor, frame, 2000)
    predicted = table["category"].to_numpy(dtype=object)
    # a product the model could not score (no category, its ``error`` filled) counts as wrong, confidence 0
    confidence = table["confidence"].to_numpy(dtype=float)
    metrics = evaluate_predictions(truth, predicted, confidence, predictor.threshold)
    # which model was scored, and the config that trained it: given as --config, train or cv runs it again
    # and the fusion it uses: the one training picked for the config's `fusion: auto`, which the config keeps
    metrics["model"] = {
        "bundle": str(args.model),
        "version": predictor.manifest.get("version"),
        "fusion": predictor.manifest.get("fusion"),
        # the review queue's corrections it trained on (train --feedback), None without
        "feedback": predictor.manifest.get("feedback"),
    }
    metrics[RECORDED_CONFIG] = predictor.manifest.get(RECORDED_CONFIG)
    # and its products, as cv's: a bundle's data_fingerprint where they are its training products, read as it reads;
    # and which of them it was trained on, from the same fields read (each photo once)
    fingerprint, in_training = evaluation_record(frame, predictor.manifest, args.model)
    metrics["data"] = how_read(args, catalog) | {"fingerprint": fingerprint}
    # as cv's: the products classified from their photo alone (Rakuten's 40%) were told apart on no page
    modalities_used = [used.split(",") if used else () for used in table["modalities_used"].fillna("")]
    metrics["by_modalities"] = headline_by_modalities(truth, predicted, modalities_used)
    metrics["warnings"] = labelled_warnings(in_training, truth, predictor.labels)
    unread = int((table["modalities_used"].fillna("") == "").sum())  # a photo that did not decode counts too
    if unread:
        consequence = "they get no category and count as wrong"
        metrics["warnings"].append(_unread_warning(unread, len(table), read_by, consequence))
    predictions = table.rename(columns={"category": "predicted"})
    predictions.insert(1, "category", truth)  # as `prodcat cv`'s predictions.csv: the true, then the predicted
    if in_training.mask is not None:  # unknown for a bundle that recorded no product fingerprints: no column
        predictions["in_training"] = in_training.mask
        if 0 < in_training.count < in_training.evaluated:  # some in training: the honest figures on the rest
            unseen = ~in_training.mask
            metrics["not_in_training"] = evaluate_predictions(
                truth[unseen], predicted[unseen], confidence[unseen], predictor.threshold
            )
    title = f"Evaluation of {args.model} on {args.data}"
    failure = awaiting.write_output(
        lambda issues: write_report(
            metrics, truth, predicted, args.report, title, predictions=predictions, issues=issues
        ),
        catalog,
        predictions if "image" in read_by else None,
    )
    _print_evaluation(metrics, len(frame))
    return report_exit_code(args.report, failure, "evaluation")


def _print_evaluation(metrics: dict[str, Any], evaluated: int) -> None:
    """``prodcat evaluate``'s figures on the console (``metrics``, of ``evaluated`` labelled products): the headline,
    by the modalities read, on the products not in the model's training data when some were, then its warnings.
    The share auto-accepted is said against the precision its threshold was set for, as by train and cv: unsaid,
    'at precision 0.9875' did not tell a miss of the target 0.99 (none for a bundle that recorded no config)."""
    target = (metrics.get(RECORDED_CONFIG) or {}).get("target_precision")
    print_metrics(metrics, f"Evaluation on {count_text(evaluated)} labelled products:", target)
    print_by_modalities(metrics["by_modalities"])
    if "not_in_training" in metrics:
        honest = "On those not in the model's training data (the honest figures):"
        print_metrics(metrics["not_in_training"], honest, target)
    for warning in metrics["warnings"]:
        say_warning(warning)


def print_by_modalities(by_modalities: dict[str, dict[str, float]]) -> None:
    """One console line per set of modalities the products were classified from (metrics.json's
    ``by_modalities``), under the figures of ``evaluate`` and ``cv``: counts of up to 999,999 aligned."""
    for modalities, values in by_modalities.items():
        print(
            f"  from {modalities + ':':<11} n {count_text(values['n']):<7} accuracy {values['accuracy']:.4f}  "
            f"f1_weighted {values['f1_weighted']:.4f}"
        )


def _unread_warning(unread: int, total: int, read_by: tuple[str, ...], consequence: str) -> str:
    """What to say of the ``unread`` of ``total`` products with nothing a model reading ``read_by`` can read (see
    batch.scoring.NOTHING_TO_READ), and of the ``consequence``."""
    return (
        f"{count_text(unread)} of {count_text(total)} products have no {' or '.join(read_by)} the model can read: "
        f"{consequence}"
    )


#: per modality, the fields of a product that hold it, and the options naming their columns
_MODALITY_FIELDS = {
    "text": ("a title or description", "--title-column / --description-column"),
    "image": ("a photo", "--image-column"),
}


def _refused_as_unreadable(readable: np.ndarray, read_by: tuple[str, ...], data: str) -> bool:
    """Whether the catalogue ``data`` is refused, having products of which none is ``readable`` (``(n,)`` bool) by a
    model reading ``read_by``: said in one line on stderr (its command then exits 2)."""
    if len(readable) and not readable.any():
        say_error(_nothing_readable(len(readable), read_by, data))
        return True
    return False


def _nothing_readable(total: int, read_by: tuple[str, ...], data: str) -> str:
    """Why none of the ``total`` products of the catalogue ``data`` can be classified by a model reading ``read_by``,
    none having any of those modalities (the table has no such column, or they are all empty)."""
    fields, options = zip(*(_MODALITY_FIELDS[modality] for modality in read_by), strict=True)
    return (
        f"{data}: none of its {count_text(total)} products has {' or '.join(fields)}, which the model reads "
        f"({' and '.join(read_by)}): nothing to classify; if a column holds them under another name, name it with "
        f"{' / '.join(options)}"
    )


def _reads_photos(config: Config) -> bool:
    """Whether models trained with ``config`` read photos (where the products have them)."""
    return "image" in _modalities_read_by(config)


def _modalities_read_by(config: Config) -> tuple[str, ...]:
    """The modalities models trained with ``config`` read (where the products have them)."""
    return tuple(m for m in config.modalities or MODALITIES if any(head.modality == m for head in config.heads))


def fold_count_of_the_run(args: argparse.Namespace) -> int:
    """The folds of a cv or a label audit: ``--folds``, else those of the cv report given as ``--config`` (the same
    split again, said as it is not the usual default), else :data:`DEFAULT_FOLDS`."""
    folds = args.folds or args.recorded_folds or DEFAULT_FOLDS
    if not args.folds and args.recorded_folds:
        log.info("%d folds, as the cv report given as --config records (--folds to choose others)", folds)
    return folds


def run_cv(args: argparse.Namespace) -> int:
    if problem := report_problem(args.report, args.data, EVALUATION_FILES):
        return say_error(problem)
    folds = fold_count_of_the_run(args)
    awaiting = _report_awaited(args.report)
    catalog, config, frame, known = _read_training_run(args, awaiting)
    with awaiting:
        return _cross_validate(args, catalog, config, frame, folds, awaiting, known)


def _cross_validate(
    args: argparse.Namespace,
    catalog: Catalog,
    config: Config,
    frame: pd.DataFrame,
    folds: int,
    awaiting: _IssuesAwaitingOutput,
    known: Lacking,
) -> int:
    """:func:`run_cv`'s cross-validation of ``config`` in ``folds`` on the labelled products ``frame`` of ``catalog``
    and its report, written by ``awaiting``."""
    from prodcat.evaluate.cv import cross_validate, cross_validation_obstacle, timing_text
    from prodcat.models.classifier import TrainingRefused

    if problem := cross_validation_obstacle(frame, config, folds, known):
        return say_error(f"cannot cross-validate: {problem}")
    warnings = describe_target(frame, config, "no fold can learn it: its product is counted wrong", catalog.taxonomy)
    try:
        result = cross_validate(frame, config, folds=folds, n_jobs=args.jobs)
    except TrainingRefused as refusal:
        return say_error(f"cannot cross-validate: {refusal}")
    metrics = result.metrics()
    metrics["config"] = config.model_dump()
    # with the config and the folds: the run, to run again; and its products, to tell whether the catalogue read
    # again is still the same (a bundle's data_fingerprint, of the same products and the modalities its model reads,
    # those the fold models read: not the photos of an image head every fold skipped, as train skips it)
    metrics["data"] = how_read(args, catalog) | {"fingerprint": training_fingerprint(frame, result.modalities_read)}
    if warnings:  # the report says what the console said of the labels
        metrics["warnings"] = warnings
    title = f"{folds}-fold cross-validation on {args.data}"
    predictions = result.predictions()
    failure = awaiting.write_output(
        lambda issues: write_report(
            metrics, result.y_true, result.y_pred, args.report, title, predictions=predictions, issues=issues
        ),
        catalog,
        predictions if _reads_photos(config) else None,
    )
    print_metrics(
        metrics, f"{folds}-fold cross-validation on {count_text(len(frame))} products:", result.target_precision
    )
    print_by_modalities(metrics["by_modalities"])
    print(f"  {timing_text(metrics['timing'])}")
    return report_exit_code(args.report, failure, "cross-validation")

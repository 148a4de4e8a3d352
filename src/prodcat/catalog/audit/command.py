"""``prodcat audit`` (its parser: :mod:`prodcat.catalog.audit_parser`): the options checked, the sample drawn, the
report written and summed up on the console."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from prodcat.catalog.audit.core import audit_catalog
from prodcat.catalog.audit.labels import label_audit_outlook
from prodcat.catalog.audit.report import AUDIT_FILES, write_audit_report
from prodcat.catalog.schema import Catalog
from prodcat.config import Config
from prodcat.files import report_exit_code, write_failure
from prodcat.formatting import count_text, counted, say_error, say_warning, warning_line
from prodcat.grouping import SPELLING_DIFFERENCES


def run_audit(args: argparse.Namespace) -> int:
    """Run ``prodcat audit`` with the parsed ``args``; returns the exit code."""
    from prodcat.catalog.loaders import CatalogFormatError, load_from_args
    from prodcat.commands import build_config, fold_count_of_the_run, warn_if_the_sample_takes_all
    from prodcat.evaluate.report import report_problem

    if problem := _unused_options_problem(args) or report_problem(args.report, args.data, AUDIT_FILES):
        return say_error(problem)
    try:
        catalog = load_from_args(args)
    except (CatalogFormatError, FileNotFoundError) as error:
        return say_error(error)
    # as train's and cv's: --sample and --seed draw the products audited, with or without --labels
    label_config, folds = build_config(args, catalog.format), fold_count_of_the_run(args)
    # a sample of at least the whole catalogue draws nothing, and is no sample to report
    drawn = label_config.sample if label_config.sample and label_config.sample < len(catalog.frame) else None
    if label_config.sample and not drawn:
        warn_if_the_sample_takes_all(label_config.sample, len(catalog.frame))
    if drawn:
        catalog = _sample(catalog, label_config, drawn)
    if args.labels and (outlook := label_audit_outlook(catalog.frame, label_config, folds)):
        say_warning(outlook)  # flushed: before the hours a deep level's audit may take, not after
    result = audit_catalog(
        catalog,
        images=not args.no_images,
        labels=args.labels,
        label_config=label_config,
        folds=folds,
        similarity=args.similarity,
        n_jobs=args.jobs,
    )
    result["sample"] = {"size": drawn, "seed": label_config.seed} if drawn else None
    written: list[Path] = []
    # a report that cannot be written (a full disk) is said after the summary, not in a traceback that loses it with
    # the audit (with --labels, the hours of its cross-validation)
    failure = write_failure(lambda: written.extend(write_audit_report(result, args.report, catalog.issues)))
    for line in summary_lines(result):
        print(line)
    if code := report_exit_code(
        args.report, failure, "audit", lambda: f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}"
    ):
        return code
    if catalog.frame.empty:  # the report says why (its loader issues); a script must not go on to train on nothing
        return say_error(f"no product could be read from {args.data}: {written[0]} lists why")
    return 0


#: options of the label audit, refused without --labels rather than silently ignored
_LABEL_OPTIONS = ("config", "level", "modalities", "folds", "jobs")


def _unused_options_problem(args: argparse.Namespace) -> str | None:
    """The options given that nothing of the audit asked for would read (they were silently ignored): those of the
    label audit without --labels, --seed without --sample or --labels; ``None`` when none is."""
    unused = [f"--{name}" for name in _LABEL_OPTIONS if getattr(args, name) is not None]
    if unused and not args.labels:
        return f"{', '.join(unused)} only {'applies' if len(unused) == 1 else 'apply'} to the label audit: add --labels"
    if args.seed is not None and not (args.labels or args.sample):
        return "--seed only applies to a --sample and to the label audit: add --sample N or --labels"
    return None


def _sample(catalog: Catalog, config: Config, size: int) -> Catalog:
    """The ``size`` products of ``catalog`` that train's and cv's draw takes with ``config``
    (:func:`~prodcat.commands.pooled_stratified_sample`), with the loader issues of their rows only."""
    from prodcat.commands import pooled_stratified_sample

    sampled = pooled_stratified_sample(catalog.frame, config, size).sort_index()
    lines = [catalog.line_of(position) for position in sampled.index]
    kept = set(lines)
    return Catalog(
        frame=sampled.reset_index(drop=True),
        source=catalog.source,
        format=catalog.format,
        issues=[issue for issue in catalog.issues if issue.row in kept],
        lines=lines,
    )


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The console summary of an audit: one line per section with findings."""
    summary, exact, near = result["summary"], result["duplicates"]["exact"], result["duplicates"]["near"]
    lines = [
        f"{counted(summary['products'], 'product')}, {count_text(summary['labelled'])} labelled, "
        f"{counted(summary['loader_issues'], 'loader issue')}",
        _text_line(result["text"]),
        f"duplicate text groups: {count_text(exact['groups'])} exact, {count_text(near['groups'])} near"
        f" ({count_text(exact['conflicting_groups'] + near['conflicting_groups'])} with conflicting labels)",
        f"products with HTML tags, entities or mojibake: {count_text(result['markup']['products_with_any'])}",
        *_language_lines(result["languages"]),
        *_separator_lines(result["classes"]["unsplit_separator"]),
        *_spelling_lines(result["classes"]["levels"]),
        *_above_subcategories_lines(result["classes"]["labelled_above_subcategories"]),
        *_photo_lines(result["images"]),
    ]
    labels = result.get("labels")
    if labels and labels.get("skipped"):
        lines.append(labels["reason"])
    elif labels:
        lines.append(f"likely mislabelled: {count_text(labels['n_issues'])} of {count_text(labels['n_labelled'])}")
    if labels:
        lines += [warning_line(warning) for warning in labels["warnings"]]
    return lines


def _separator_lines(separator: str | None) -> list[str]:
    if separator is None:
        return []
    return [
        f"the categories look like paths written with {separator!r}, read as one level: pass --category-sep"
        f" {shlex.quote(separator)} to read their levels"
    ]


def _spelling_lines(levels: dict[str, Any]) -> list[str]:
    groups = [(name, group) for name, level in levels.items() for group in level["written_several_ways"]]
    if not groups:
        return []
    name, first = groups[0]
    return [
        f"categories written in several ways ({SPELLING_DIFFERENCES}; each way is learnt as a category of its"
        f" own): {count_text(len(groups))}, e.g. {' / '.join(map(repr, first))} at level {name}"
    ]


def _above_subcategories_lines(found: dict[str, Any]) -> list[str]:
    if not found["categories"]:
        return []
    first, categories = found["largest"][0], found["categories"]
    return [
        f"products labelled with a category that has subcategories: {count_text(found['products'])} in"
        f" {counted(categories, 'category', 'categories')}, e.g. {first['category']!r}"
        f" ({count_text(first['products'])}; {count_text(first['products_under'])} under it); at deeper levels they"
        " are a category of their own beside their subcategories"
    ]


def _text_line(text: dict[str, Any]) -> str:
    return (
        f"products without text: {count_text(text['no_text'])}{_nothing_to_read(text['no_text_nor_photo'])}; of the"
        f" {count_text(text['products_with_text'])} with text, {count_text(text['title']['missing'])} have no title,"
        f" {count_text(text['description']['missing'])} no description"
    )


def _language_lines(languages: dict[str, Any]) -> list[str]:
    """The languages as training reads them, and the products written in another one, which are read as one of
    them: a Dutch listing with German stop-words and lemmas."""
    from prodcat.text.clean import LANGUAGES

    lines = [f"languages, as training reads them: {_counts_text(languages['counts'])}"]
    if other := languages["other"]["products"]:
        lines.append(
            f"{counted(other, 'product')} written in a language prodcat has no stop-words or lemmas of"
            f" ({_counts_text(languages['other']['counts'])}): read as one of {', '.join(LANGUAGES)};"
            " listed in audit.json (languages.other)"
        )
    return lines


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count_text(count)}" for name, count in counts.items())


def _nothing_to_read(count: int) -> str:
    return f" ({count_text(count)} without a photo either: nothing to classify them from)" if count else ""


def _small_ones(quality: dict[str, Any]) -> str:
    """What the low-detail count owes to size: a photo is scored enlarged to 512 px, which blurs a thumbnail."""
    if not (small := quality["low_detail_small"]):
        return ""
    return f" ({count_text(small)} of them small: scored enlarged to 512 px, which blurs them)"


def _photo_lines(images: dict[str, Any]) -> list[str]:
    if images.get("skipped"):
        return ["photos not audited (--no-images)"]
    lines = [
        f"photos: {count_text(images['with_photo'])} given, {counted(images['without_photo'], 'product')} without,"
        f" {count_text(images['unreadable'])} unreadable"
    ]
    quality, duplicates = images.get("quality"), images.get("duplicates")
    if quality:
        lines.append(
            f"photos with low detail (blurry or plain): {count_text(quality['low_detail'])}{_small_ones(quality)},"
            f" small (longest side < {quality['small_side']} px): {count_text(quality['small'])}, white border over"
            f" {quality['large_white_border_threshold']:.0%} of the area: {count_text(quality['large_white_border'])}"
        )
    if duplicates:
        lines.append(
            f"duplicate photo groups: {count_text(duplicates['exact_groups'])} exact,"
            f" {count_text(duplicates['perceptual_groups'])} perceptual"
            f" ({count_text(duplicates['conflicting_groups'])} with conflicting labels)"
        )
    return lines

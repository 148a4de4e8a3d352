"""The parser of ``prodcat audit``, whose code is :mod:`prodcat.catalog.audit`: apart from it, so that building it
imports none of the libraries the audit needs (see :mod:`prodcat.cli`)."""

from __future__ import annotations

import argparse
import textwrap

from prodcat.arguments import (
    add_config_option,
    add_jobs_option,
    add_loader_arguments,
    add_modalities_option,
    category_level,
    fold_count,
    random_seed,
    report_dir,
    run_later,
    sample_size,
)

#: TF-IDF cosine similarity from which two texts count as near duplicates (``--similarity``)
NEAR_DUPLICATE_SIMILARITY = 0.9


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat audit`` among ``subparsers``; its ``func`` runs it (the command's code imported then)."""
    parser = subparsers.add_parser(
        "audit",
        help="audit a catalogue: classes, texts, duplicates, markup, photos, label noise",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write DIR/audit.json and a self-contained DIR/audit.html: class balance per level, text lengths,\n"
            "missing titles/descriptions/photos, languages, exact and near duplicate texts (and those whose\n"
            "labels conflict), HTML/entities/mojibake, unreadable photos and photo quality (blur, white\n"
            "borders, colour, duplicate photos). --labels adds the products whose category disagrees\n"
            "confidently with cross-validated predictions (confident learning), with a suggested category.\n"
            "\n"
            "The whole lists to act on, one product a row (written when they have one), beside them:\n"
            "  input_issues.csv  rows the loader skipped or mended, missing photo files: row, product_id,\n"
            "                    field, message\n"
            "  text_duplicates.csv  every product of a duplicate text group: row, product_id, category, kind\n"
            "                    (exact, near), group, group_size, first_differing_level (its labels'), text\n"
            "  photo_issues.csv  flagged photos: row, product_id, image, category, issues (unreadable,\n"
            "                    low_detail, small, white_border, duplicate, duplicate_conflict), error, blur,\n"
            "                    border_ratio, width, height, duplicate_group, duplicate_kind,\n"
            "                    first_differing_level; the thresholds are in audit.json and audit.html\n"
            "  label_issues.csv  (--labels) row, product_id, title, image, given, suggested,\n"
            "                    first_differing_level, confidence, given_probability; most suspicious first"
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              prodcat audit ../shared/datasets/rakuten --report reports/rakuten-audit
              prodcat audit ../shared/datasets/flipkart --report reports/flipkart --labels
              prodcat audit ../shared/datasets/rakuten --report out --labels --level 0 --modalities text
              prodcat audit products.csv --title-column name --category-column cat --category-sep / --report out
              prodcat audit big.parquet --report out --no-images --sample 5000
            """
        ),
    )
    add_loader_arguments(parser)
    parser.add_argument(
        "--report", required=True, type=report_dir, metavar="DIR", help="folder of the report and its lists"
    )
    parser.add_argument(
        "--sample",
        type=sample_size,
        metavar="N",
        help="audit a sample of N products (quick look), stratified by category and drawn with the seed, as train's "
        "and cv's, 0 = all of them (default: the config's, else all); recorded in audit.json with its seed",
    )
    parser.add_argument(
        "--seed",
        type=random_seed,
        help="seed of the --sample drawn and of the label audit's folds and models, as train's and cv's (default: the "
        "config's, 0): another split tells which products are flagged by the split alone; recorded in audit.json",
    )
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="do not audit the photos (much faster); the label audit still reads them, unless --modalities text",
    )
    parser.add_argument(
        "--similarity",
        type=similarity_threshold,
        default=NEAR_DUPLICATE_SIMILARITY,
        help=f"TF-IDF cosine from which texts are near duplicates (default {NEAR_DUPLICATE_SIMILARITY})",
    )
    labels = parser.add_argument_group("label noise (--labels)")
    labels.add_argument("--labels", action="store_true", help="find likely mislabelled products (cross-validation)")
    add_config_option(
        labels,
        help="YAML or TOML experiment config of the cross-validation, or a bundle's manifest.json or a cv report's "
        "metrics.json (fields left out keep their defaults; --level, --modalities, --sample and --seed override its "
        "fields; a cv report's folds are taken unless --folds is given)",
    )
    labels.add_argument(
        "--level",
        type=category_level,
        help="category depth checked, 0 = full path (default: the config's, else the catalogue's usual target, as "
        "train's: Flipkart top level, else full path)",
    )
    add_modalities_option(labels)
    labels.add_argument(
        "--folds", type=fold_count, help="cross-validation folds (default: a cv report's given as --config, else 5)"
    )
    add_jobs_option(labels)
    parser.set_defaults(func=run_later("prodcat.catalog.audit:run_audit"))


def similarity_threshold(text: str) -> float:
    """A cosine similarity threshold in (0, 1] (at -1 every text was a near duplicate of every other)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a cosine similarity threshold is in (0, 1], got {value}")
    return value

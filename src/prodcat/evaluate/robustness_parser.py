"""The parser of ``prodcat robustness``, whose code is :mod:`prodcat.evaluate.robustness_command`: apart from it,
so that building it imports none of the libraries the command needs (see :mod:`prodcat.cli`)."""

from __future__ import annotations

import argparse
import textwrap

from prodcat.arguments import (
    add_help_completed_by,
    add_loader_arguments,
    positive_int,
    random_seed,
    report_dir,
    run_later,
    user_path,
)

DESCRIPTION = textwrap.dedent("""\
    Predict the same labelled products clean and under each perturbation, and write
    DIR/robustness.json (one record per perturbation), DIR/robustness.png and DIR/report.html.
    Use products the model was not trained on: on its own training data every number is too high
    (said, with how many of the products scored it was trained on). The products scored are the
    labelled ones with a modality the model reads, with or without --sample; the others are left out
    and counted. Photos are brought to 512 px on their longest side first (enlarged when smaller), so a
    severity in pixels is the same share of every photo. The report is written again as each run
    ends: Ctrl-C (exit 130) or a crash keeps the rows measured, and the same command run again
    measures only the others (the report names the rows taken from the earlier run).

    perturbations: {perturbations}
    families (all their severities): {families}
    """)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat robustness`` among ``subparsers``; its ``func`` runs it (the command's code imported then)."""
    parser = subparsers.add_parser(
        "robustness",
        help="score a model on perturbed copies of a labelled catalogue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION.format(perturbations="(listed by --help)", families="(listed by --help)"),
        epilog=textwrap.dedent("""\
            examples:
              prodcat robustness models/flipkart heldout.parquet --report reports/robustness
              prodcat robustness models/flipkart heldout.csv --report reports/rot --perturbations rotate no_photo
            """),
        add_help=False,
    )
    add_help_completed_by(parser, _list_perturbations)
    parser.add_argument("model", type=user_path, help="model bundle directory")
    add_loader_arguments(parser)
    parser.add_argument("--report", required=True, type=report_dir, metavar="DIR", help="report directory")
    parser.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="a stratified sample of N labelled products (quick runs; default: all of them)",
    )
    parser.add_argument(
        "--perturbations", nargs="+", metavar="NAME", help="perturbations or families to run (default: all)"
    )
    parser.add_argument(
        "--base",
        metavar="NAME",
        help="a perturbation applied to every run, the clean one included: e.g. no_text measures the photo "
        "perturbations on the photo path alone (the text otherwise decides most products) (default: none)",
    )
    parser.add_argument(
        "--seed", type=random_seed, default=0, help="seed of the random perturbations and the sample (default 0)"
    )
    parser.set_defaults(func=run_later("prodcat.evaluate.robustness_command:run_robustness"))


def _list_perturbations(parser: argparse.ArgumentParser) -> None:
    """Name the perturbations in the help: their registry imports Pillow and pandas, read when help is shown."""
    from prodcat.evaluate.robustness import PERTURBATIONS

    families = sorted({p.family for p in PERTURBATIONS.values()})
    parser.description = DESCRIPTION.format(perturbations=", ".join(PERTURBATIONS), families=", ".join(families))

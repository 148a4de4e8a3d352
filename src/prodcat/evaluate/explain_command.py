"""``prodcat explain MODEL DATA``: why the model chose each category — an HTML report of word and pixel weights
(the command's parser: :mod:`prodcat.evaluate.explain_parser`)."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from prodcat.bundle import model_level
from prodcat.catalog.schema import category_at_level, is_missing
from prodcat.evaluate.explain import (
    AGAINST_RGB,
    FULL_COLOUR_DROP,
    NEGLIGIBLE_DROP,
    SUPPORT_RGB,
    ExplainSettings,
    Explanation,
    PixelExplanation,
    WordExplanation,
    explain,
    readable_text,
    word_spans,
)
from prodcat.evaluate.labelled import InTraining, products_in_training
from prodcat.files import report_not_written, write_json, written_together
from prodcat.formatting import count_text, counted, one_line, say_error, say_warning
from prodcat.report_style import report_environment

log = logging.getLogger("prodcat")
#: embeddings kept in memory while explaining: the occluded variants are throw-away, never written to disk
MEMORY_CACHE_ITEMS = 10_000
#: smaller photos are enlarged to this many pixels on their longest side under their heatmap (fashion's are 60x80)
OVERLAY_SIDE = 320
#: the files this command writes in DIR/overlays/: the product's position in the report, from 0000
OVERLAY_NAME = re.compile(r"\d{4,}\.png")


def run_explain(args: argparse.Namespace) -> int:
    """Run ``prodcat explain`` with the parsed ``args``; returns the exit code."""
    from prodcat.bundle import modalities_read_by_bundle, read_manifest
    from prodcat.commands import (
        catalog_of_the_run,
        ids_not_drawn,
        warn_if_the_sample_takes_all,
        warn_of_issues_of_products,
        warn_of_unused_photos,
    )
    from prodcat.evaluate.report import EXPLAIN_FILES, report_problem
    from prodcat.predict import Predictor

    if problem := report_problem(args.report, args.data, EXPLAIN_FILES, args.model):
        return say_error(problem)
    try:
        settings = ExplainSettings(max_words=args.max_words, grid=args.grid)
    except ValueError as exc:
        return say_error(exc)
    # warned of: the issues of the products explained, in the fields the model reads (a photo not found does not
    # concern a text model)
    catalog = catalog_of_the_run(args, modalities_read_by_bundle(read_manifest(args.model)))
    catalogue = catalog.frame
    try:
        products = choose_products(catalogue, args.ids, args.sample)
    except ValueError as exc:
        return say_error(exc)
    if args.sample:
        warn_if_the_sample_takes_all(args.sample, len(catalogue))
    warn_of_issues_of_products(catalog, args.data, ids_not_drawn(catalogue, products))
    predictor = Predictor.load(args.model)  # a damaged bundle: BundleError, one line and exit 2 (cli.main)
    in_training = products_in_training(products, predictor.manifest, args.model, catalogue)
    # the occluded variants are throw-away: in memory only; the products themselves are read from the disk cache
    predictor.model.set_memory_cache(MEMORY_CACHE_ITEMS, read_disk=True)
    explanations = [
        explain(predictor, row, settings) for row in tqdm(products.to_dict("records"), desc="explain", unit="product")
    ]
    if "image" in modalities_read_by_bundle(predictor.manifest):
        used = [",".join(explanation.prediction.modalities_used) for explanation in explanations]
        warn_of_unused_photos(catalog, pd.DataFrame({"product_id": products["product_id"], "modalities_used": used}))
    level = model_level(predictor.manifest)
    source = f"{args.model} on {args.data}"
    try:
        out = write_explain_report(explanations, products, args.report, source, level, in_training)
    except OSError as error:  # a full disk: one line, not OSError's traceback, after what can be kept of the work
        for explanation in explanations:
            print(explanation_line(explanation))
        kept = "each product's category and top words above are all that was kept (no heatmap)"
        return say_error(report_not_written(args.report, error, kept, "explanation"))
    if warning := in_training_warning(in_training):
        say_warning(warning)
    print(f"{counted(len(explanations), 'explanation')} written to {out}")
    return 0


def explanation_line(explanation: Explanation) -> str:
    """One product's explanation in a line: ``'p1: Watches (97.1%, auto); top words: analog (+0.4120), ...'``, or
    why the model read nothing of it; a line break or escape sequence its id or category holds shown escaped
    (:func:`~prodcat.formatting.one_line`)."""
    prediction = explanation.prediction
    if not explanation.scored:
        return one_line(f"{prediction.product_id}: nothing read ({explanation.words_skipped})")
    words = [f"{w.word} ({w.weight:+.4f})" for w in explanation.words.supporting(5)] if explanation.words else []
    note = f" ({note})" if explanation.words and (note := words_note(explanation.words)) else ""
    return one_line(
        f"{prediction.product_id}: {prediction.category} ({prediction.confidence:.1%}, {prediction.decision}); "
        f"top words: {', '.join(words) or 'none'}{note}"
    )


def words_note(words: WordExplanation) -> str | None:
    """What the word weights amount to when every one is negligible (``None`` otherwise): 'top words: none' read
    as if the text had not mattered, when the model was only as sure without any one of its words."""
    if not words.negligible:
        return None
    return f"negligible: removing any one word moves the probability by less than {NEGLIGIBLE_DROP:g}"


def in_training_warning(in_training: InTraining) -> str | None:
    """What to say when some or all of the products explained were in the model's training data (``None``: none
    was, or it is unknown)."""
    if not in_training.count:
        return None
    which = (
        "every product explained was"
        if in_training.count == in_training.evaluated
        else f"{count_text(in_training.count)} of the {count_text(in_training.evaluated)} products explained (marked) "
        "were"
    )
    return (
        f"{which} in the model's training data: such an explanation shows what the model learnt of that very "
        "product, not how it reads new ones; explain products it was not trained on"
    )


def choose_products(frame: pd.DataFrame, ids: list[str] | None, sample: int | None) -> pd.DataFrame:
    """The rows of ``ids`` (in that order, each once) or ``sample`` random rows; ``ValueError`` naming unknown ids."""
    if ids is not None:
        by_id = frame.drop_duplicates("product_id").set_index("product_id", drop=False)
        unknown = [i for i in ids if i not in by_id.index]
        if unknown:
            # quoted: an empty id (an unset shell variable) or one with spaces is seen as what it is
            raise ValueError(f"product id(s) not in the catalogue: {', '.join(map(repr, unknown))}")
        return by_id.loc[list(dict.fromkeys(ids))].reset_index(drop=True)  # an id given twice is explained once
    if sample is None or sample < 1:
        raise ValueError(f"--sample must be at least 1, got {sample}")
    if frame.empty:  # 0 explanations and an empty report, exit 0, said nothing of why
        raise ValueError("the catalogue has no products to explain")
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
    explanations: list[Explanation],
    products: pd.DataFrame,
    out_dir: str | Path,
    source: str,
    level: int | None,
    in_training: InTraining | None = None,
) -> Path:
    """Write ``explanations.json``, ``overlays/NNNN.png`` and ``report.html`` in ``out_dir``; return the HTML path.
    The texts shown are those the words were weighed in (cleaned of markup), the true categories cut to the
    model's ``level``; the products the model was trained on (``in_training``, from
    :func:`~prodcat.evaluate.labelled.products_in_training`) are said, each record's ``in_training`` ``None``
    when unknown. Written whole or not at all (:func:`~prodcat.files.written_together`): a failure or Ctrl-C while
    the heatmaps are drawn leaves an earlier report whole."""
    folder = Path(out_dir)
    # a previous report's heatmaps: their numbers would name other products (or none) in this one
    stale = [
        f"overlays/{path.name}" for path in (folder / "overlays").glob("*.png") if OVERLAY_NAME.fullmatch(path.name)
    ]
    with written_together(folder, stale) as staging:
        _write_explain_files(explanations, products, staging, source, level, in_training)
    return folder / "report.html"


def _write_explain_files(
    explanations: list[Explanation],
    products: pd.DataFrame,
    out_dir: Path,
    source: str,
    level: int | None,
    in_training: InTraining | None,
) -> None:
    """:func:`write_explain_report`'s files, written in the folder ``out_dir``."""
    (out_dir / "overlays").mkdir()
    records, cards = [], []
    mask = None if in_training is None else in_training.mask
    for index, (explanation, product) in enumerate(zip(explanations, products.to_dict("records"), strict=True)):
        record = explanation.as_dict() | {"in_training": None if mask is None else bool(mask[index])}
        overlay = None
        if explanation.pixels is not None:
            overlay = f"overlays/{index:04d}.png"
            (out_dir / overlay).write_bytes(explanation.pixels.overlay_png(min_side=OVERLAY_SIDE))
            record["pixels"]["overlay"] = overlay
        records.append(record)
        cards.append(_card(explanation, product, level) | {"overlay": overlay, "in_training": record["in_training"]})
    write_json(out_dir / "explanations.json", records)
    env = report_environment("prodcat.evaluate")
    (out_dir / "report.html").write_text(
        env.get_template("explain.html.j2").render(
            source=source,
            cards=cards,
            full_colour=FULL_COLOUR_DROP,
            warning=in_training_warning(in_training) if in_training else None,
        ),
        encoding="utf-8",
    )


def _card(explanation: Explanation, product: dict[str, Any], level: int | None) -> dict[str, Any]:
    """What the report shows of one product: its texts as the model read them, coloured by word weight, its
    true category at the model's level and what its heatmap amounts to."""
    weights = explanation.words.weights_by_word() if explanation.words else {}
    # as on the photo: scaled to the largest weight alone, drops of 0.0002 were painted as boldly as one of 0.5
    scale = max([FULL_COLOUR_DROP, *(abs(w) for w in weights.values())])
    title, description = readable_text(product)
    truth = product.get("category")
    return {
        "explanation": explanation,
        "truth": None if is_missing(truth) else category_at_level([str(truth)], level)[0],
        "title": _styled(coloured_segments(title, weights), scale),
        "description": _styled(coloured_segments(description, weights), scale),
        "top_words": explanation.words.supporting(5) if explanation.words else [],
        "words_note": words_note(explanation.words) if explanation.words else None,
        "pixel_note": pixel_note(explanation.pixels) if explanation.pixels else None,
    }


def pixel_note(pixels: PixelExplanation) -> str:
    """What the heatmap amounts to: the largest drop of the probability when one square is hidden, and whether
    every change is negligible (its colours then stay faint)."""
    if pixels.largest_drop > 0:
        note = f"hiding one square lowers it by at most {pixels.largest_drop:.4f}"
    else:
        note = "hiding any one square never lowers it"
    if not pixels.negligible:
        return note
    return f"{note}: negligible (no square moves it by {NEGLIGIBLE_DROP:g}), the photo's regions hardly matter here"


def _styled(segments: list[tuple[str, float | None]], scale: float) -> list[dict[str, Any]]:
    """Segments with a background: red for words supporting the category, blue against, alpha by |weight|."""
    out: list[dict[str, Any]] = []
    for piece, weight in segments:
        if weight is None:
            out.append({"text": piece, "style": None, "weight": None})
            continue
        alpha = min(1.0, abs(weight) / scale)
        rgb = ",".join(map(str, SUPPORT_RGB if weight > 0 else AGAINST_RGB))
        out.append({"text": piece, "style": f"background: rgba({rgb},{alpha:.2f})", "weight": weight})
    return out

"""One chunk of products to one table of predictions, whatever an individual product holds.

:meth:`prodcat.predict.Predictor.predict` already turns the usual bad input into an answer
(an undecodable or missing photo: the product is classified from its text). A product the model
reads nothing of (neither readable text nor a usable photo, or only words the model does not know) gets
no category here: the model could only answer its class prior, so its row says why
(:func:`~prodcat.predict.nothing_read_reason`) and sends it to review, as the API refuses it
(422 ``nothing_to_classify``). Anything else that makes the model raise is isolated by bisection, so one
product that breaks the model costs its own row, not its chunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from prodcat.bundle import modalities_read_by_bundle
from prodcat.catalog.schema import Catalog, RowIssue, has_text
from prodcat.image.decode import DECODABILITY_SIDE, ImageDecodeError, load_image
from prodcat.models.classifier import product_frame
from prodcat.predict import NOTHING_TO_READ, Prediction, Predictor, nothing_read_reason

log = logging.getLogger(__name__)

#: the columns of ``prodcat predict``'s CSV; ``error`` is empty unless the product could not be scored
OUTPUT_COLUMNS = ("product_id", "category", "confidence", "decision", "top_k", "modalities_used", "error")


def model_failed(error: object) -> bool:
    """Whether an ``error`` cell says the model raised on the product (not that the product had nothing to read:
    :data:`~prodcat.predict.NOTHING_TO_READ` and why; an exception's begins with its type's name)."""
    return isinstance(error, str) and error != "" and not error.startswith(f"{NOTHING_TO_READ}:")


class BatchError(RuntimeError):
    """A batch run cannot go on: the message says why and what to do."""


def prediction_row(prediction: Prediction) -> dict[str, object]:
    """One output row of a product the model read: ``top_k`` as JSON, ``modalities_used`` comma-separated. The
    confidence is written whole, as the decision compared it with the threshold: rounded, one just below the
    threshold could read as at or above it, and vice versa."""
    return {
        "product_id": prediction.product_id,
        "category": prediction.category,
        "confidence": prediction.confidence,
        "decision": prediction.decision,
        "top_k": json.dumps(prediction.top_k, ensure_ascii=False),
        "modalities_used": ",".join(prediction.modalities_used),
        "error": "",
    }


def unscored_row(product_id: str, reason: str) -> dict[str, object]:
    """The row of a product the model could not score: no category, no confidence, ``reason`` in ``error``,
    and ``review``: a person categorises it (``decision`` stays ``auto`` or ``review``, as the CLI promises)."""
    return {
        "product_id": product_id,
        "category": "",
        "confidence": float("nan"),
        "decision": "review",
        "top_k": "[]",
        "modalities_used": "",
        "error": reason,
    }


def _score_rows(predictor: Predictor, chunk: pd.DataFrame, top_k: int) -> list[dict[str, object]]:
    """The rows of ``chunk``'s products; one the model read nothing of gets :func:`unscored_row`, saying why."""
    try:
        predictions = predictor.predict(chunk, top_k=top_k)
    except Exception as exc:  # any failure of a product must stay that product's
        if len(chunk) == 1:
            product_id = str(chunk["product_id"].iat[0])
            log.warning("product %s could not be scored (recorded in the error column): %s", product_id, exc)
            return [unscored_row(product_id, f"{type(exc).__name__}: {exc}")]
        # Halve until the failing products are alone: a single bad product in a chunk of n costs
        # about 2n extra product predictions (fewer once the good halves' embeddings are cached).
        middle = len(chunk) // 2
        return _score_rows(predictor, chunk.iloc[:middle], top_k) + _score_rows(predictor, chunk.iloc[middle:], top_k)
    modalities = modalities_read_by_bundle(predictor.manifest)
    return [
        prediction_row(prediction)
        if prediction.modalities_used
        else unscored_row(
            prediction.product_id, nothing_read_reason(modalities, product.title, product.description, product.image)
        )
        for prediction, product in zip(predictions, product_frame(chunk).itertuples(), strict=True)
    ]


def score_chunk(predictor: Predictor, chunk: pd.DataFrame, top_k: int = 5) -> pd.DataFrame:
    """Predictions for the ``n`` rows of ``chunk`` (a canonical frame): an ``(n, len(OUTPUT_COLUMNS))`` table
    in the rows' order.

    A product whose prediction raises gets an ``error`` row and the others are scored; if every one of
    several products fails, the model or the environment is broken rather than the products, and
    :class:`BatchError` is raised instead of writing a chunk of errors.
    """
    rows = _score_rows(predictor, chunk, top_k)
    failed = [row for row in rows if model_failed(row["error"])]
    if len(rows) > 1 and len(failed) == len(rows):
        raise BatchError(
            f"every one of the {len(rows)} products from {rows[0]['product_id']} to {rows[-1]['product_id']} "
            f"failed (first: {failed[0]['error']}): the model or its environment is broken, not the products"
        )
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def chunk_bounds(n_rows: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` row ranges of the chunks of ``n_rows`` rows; chunk ``i`` starts at
    ``i * chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    return [(start, min(start + chunk_size, n_rows)) for start in range(0, n_rows, chunk_size)]


def predict_catalog(
    predictor: Predictor,
    frame: pd.DataFrame,
    chunk_size: int,
    top_k: int = 5,
    on_chunk: Callable[[int], None] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predictions for every row of ``frame`` in memory, chunk by chunk (bounded model memory), as the
    ``predict`` table. For a large catalogue written to a file, :func:`prodcat.batch.score_catalog`
    keeps each finished chunk on disk and resumes.

    ``on_chunk``, if given, is called after each chunk with the number of products predicted so far
    (the web app's progress bar); ``progress=False`` hides the terminal one (a caller with its own).

    Raises:
        ValueError: products of none of the columns the model reads; TypeError: ``frame`` no frame of products (read
        as :func:`~prodcat.models.classifier.product_frame` reads them, once, before any chunk: each chunk refused
        in turn, then halved to its products, read as a broken model).
    """
    frame = product_frame(frame, modalities_read_by_bundle(predictor.manifest))
    bounds = chunk_bounds(len(frame), chunk_size)
    tables = []
    with tqdm(total=len(frame), desc="predict", unit="product", disable=not progress) as bar:
        for start, stop in bounds:
            tables.append(score_chunk(predictor, frame.iloc[start:stop], top_k))
            bar.update(stop - start)
            if on_chunk is not None:
                on_chunk(stop)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(OUTPUT_COLUMNS))


def unused_photo_issue(
    photo: str, line: int, product_id: str, has_text: bool = True, text_read: bool = True
) -> RowIssue | None:
    """Why a product's photo was not used by a model reading photos (it does not decode, or exceeds the size
    limits), as an issue of the catalogue's ``line``; ``None`` if it decodes. The embedding cache keeps only
    that a photo failed, so the photo is decoded again here to tell why (small: only the failure matters).
    ``has_text``: whether the product has a title or description; ``text_read``: whether the model read it, and
    predicted the product without its photo (a model reading photos only does not)."""
    try:
        load_image(photo, max_side=DECODABILITY_SIDE)
    except ImageDecodeError as exc:
        if not has_text:
            outcome = "no title or description either: nothing to classify it from"
        elif not text_read:
            outcome = "the model reads photos only, not its title or description: nothing to classify it from"
        else:
            outcome = "predicted without it"
        return RowIssue(line, "image", f"photo {photo} not used: {exc.reason}; {outcome}", product_id)
    return None


def unused_photo_issues(catalog: Catalog, predictions: pd.DataFrame) -> list[RowIssue]:
    """One issue per product of ``predictions`` (``product_id``, ``modalities_used``: a model reading photos
    scored it) that names a photo the model did not use, with the reason (:func:`~prodcat.batch.unused_photo_issue`):
    a rerun, reading the cache, would otherwise say nothing, and a report would not list it."""
    product_id = catalog.frame["product_id"].astype(str)
    position = pd.Series(np.arange(len(product_id)), index=product_id)
    scored = predictions["product_id"].astype(str)
    photo_unused = ~predictions["modalities_used"].fillna("").str.contains("image")
    # of the catalogue's products only: train's reviewed corrections have no line in it
    listed = photo_unused & scored.isin(position.index)
    at = position.loc[scored[listed]].to_numpy()
    with_photo = catalog.frame["image"].iloc[at].notna().to_numpy()
    text_read = predictions["modalities_used"].fillna("").str.contains("text")[listed].to_numpy()
    return list(undecodable_photos(catalog, at[with_photo], text_read[with_photo]).values())


def undecodable_photos(catalog: Catalog, positions: np.ndarray, text_read: np.ndarray) -> dict[int, RowIssue]:
    """Of the products at ``positions`` of the catalogue's frame (each with a photo; ``text_read``: whether the
    model read its text), those whose photo does not decode, by position, with why
    (:func:`~prodcat.batch.unused_photo_issue`)."""
    products = catalog.frame.iloc[positions]
    with ThreadPoolExecutor() as pool:  # decoding releases the GIL
        issues = pool.map(
            unused_photo_issue,
            products["image"],
            map(catalog.line_of, positions),
            products["product_id"].astype(str),
            has_text(products),
            text_read,
        )
        return {position: issue for position, issue in zip(positions, issues, strict=True) if issue}

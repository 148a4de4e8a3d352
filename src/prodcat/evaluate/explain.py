"""Why the model chose a category: which words and which pixels, by occlusion.

Model-agnostic: an explanation only calls :meth:`prodcat.predict.Predictor.predict`, so it explains
the real fused, calibrated model whatever its config (TF-IDF, sentence encoders, CNN; early or late
fusion). Each product costs ONE batched ``predict`` call holding the product as given and all its
variants:

- **words**: every distinct word (case-folded, as the model's tokens cut the text: "wrist-watch" is "wrist" and
  "watch"; all its occurrences in the title and the description, inside hyphenated words too,
  removed together, since Flipkart descriptions repeat the title: removing one copy would hide
  the word's weight; a letter an apostrophe joins, "l'" or the "s" of "men's", not weighed) among the first
  ``max_words`` distinct words of the text, title first. A word's
  weight is the drop of the predicted category's calibrated probability when it is removed from the text as the
  model reads it (cleaned, the drop measured from that cleaned text):
  positive = the word supports the category, negative = it pulls away from it;
- **pixels**: a ``grid x grid`` lattice of cells over the photo; a grey square of ``patch_cells x
  patch_cells`` cells slides over it one cell at a time (``(grid - patch_cells + 1)²`` occluded
  copies), and each cell's weight is the mean probability drop of the squares covering it. Grey
  (128) is the CNN's zero input (Lite0 is fed ``(x - 127) / 128``): "nothing here" rather than a
  colour. The text read on the photo (``photo_text_tfidf``, OCR) is not occluded: every copy reads the text of
  the photo as given (:func:`~prodcat.image.ocr.text_read_from`), so an OCR head costs one OCR per product, not
  one per square (about 0.4 s each), and the heatmap shows what the other photo features see.

Cost: one model row per word and one per square (49 with the defaults). Every row goes through the
predictor's embedding cache, so the unchanged photo of the word variants and the unchanged text of
the photo variants are embedded once; the sentence encoders reading one text per word dominate (MiniLM most:
each word is one more pass of it over up to 256 word pieces): about 3 s per Flipkart product (MiniLM + USE-m3;
median 2.8 s) on an idle 2-core machine, 5-8 s on a shared one, 10 s on one busy with other work (load 6-10;
16 s when USE-m3 ran its BLAS on two threads), 19 s per Rakuten product (e5) on the machine shared
(``benchmarks/explain.py``; ``prodcat explain`` on 10 Flipkart products, warm cache: 3.3 s each idle).
``max_words`` bounds it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Any, cast

import numpy as np
import pandas as pd
from PIL import Image

from prodcat.bundle import modalities_read_by_bundle
from prodcat.catalog.schema import is_missing
from prodcat.evaluate.explain_settings import NEGLIGIBLE_DROP, ExplainSettings
from prodcat.image.decode import ImageDecodeError, ImageSource, load_image
from prodcat.image.ocr import text_read_from
from prodcat.predict import Prediction, PredictorLike, nothing_read_reason
from prodcat.text.clean import clean_text, word_pattern

TEXT_FIELDS = ("title", "description")
#: the heatmap's colours are full at its largest weight, but never at less than this one: noise is not painted
FULL_COLOUR_DROP = 0.05
#: RGB of the words and cells that support the predicted category, and of those that pull away from it
SUPPORT_RGB, AGAINST_RGB = (220, 38, 38), (37, 99, 235)


@dataclass
class WordWeight:
    """One distinct word (all its occurrences) and what removing it does."""

    word: str
    #: drop of the predicted category's probability when every occurrence is removed (positive = supports it)
    weight: float
    #: the same drop for the runner-up category (positive = supports the runner-up), ``None`` with one class
    runner_up_weight: float | None
    #: occurrences in the title and the description
    occurrences: int


@dataclass
class WordExplanation:
    """Word weights in reading order (first occurrence)."""

    words: list[WordWeight]
    #: distinct words in the text; only the first ``len(words)`` were explained (``ExplainSettings.max_words``)
    distinct_words: int

    def top(self, k: int) -> list[WordWeight]:
        """The ``k`` words that support the predicted category most."""
        return sorted(self.words, key=lambda w: -w.weight)[:k]

    def supporting(self, k: int) -> list[WordWeight]:
        """Those of the :meth:`top` ``k`` that support the category at all: 'top words: Set (-0.223)' named a word
        whose removal raised it."""
        return [w for w in self.top(k) if w.weight > 0]

    def weights_by_word(self) -> dict[str, float]:
        """Case-folded word -> weight (what :func:`word_spans` keys match)."""
        return {w.word.casefold(): w.weight for w in self.words}

    @property
    def negligible(self) -> bool:
        """Whether removing any one word moves the probability by less than :data:`NEGLIGIBLE_DROP`, as
        :attr:`PixelExplanation.negligible`: the weights then rank noise (a model as sure without any one word, its
        other words or its photo enough), not what made it choose."""
        return max((abs(w.weight) for w in self.words), default=0.0) < NEGLIGIBLE_DROP


@dataclass
class PixelExplanation:
    """A heatmap of probability drops over the photo."""

    #: ``(grid, grid)`` float, row-major from the top-left cell: mean drop of the predicted
    #: category's probability when a grey square covers the cell (positive = the cell supports it)
    heatmap: np.ndarray
    #: the predicted category's probability on the unoccluded photo as decoded for occlusion
    reference_probability: float
    #: the largest drop of that probability when one square is hidden (negative: every square raises it)
    largest_drop: float
    #: the largest change of it, up or down, when one square is hidden
    largest_change: float
    #: the photo as occluded, at most ``ExplainSettings.photo_side`` pixels per side
    photo: Image.Image = field(repr=False)

    @property
    def negligible(self) -> bool:
        """Whether hiding any one square moves the probability by less than :data:`NEGLIGIBLE_DROP`: the
        heatmap then ranks noise, and the photo does not matter to this prediction."""
        return self.largest_change < NEGLIGIBLE_DROP

    def overlay(self, opacity: float = 0.7, min_side: int = 0) -> Image.Image:
        """The photo, enlarged (Lanczos) to ``min_side`` pixels on its longest side if smaller, with the heatmap
        upsampled (bilinear) to its size and painted over it: red where the pixels support the predicted
        category, blue where they pull away. The paint's opacity grows with the absolute weight, up to
        ``opacity`` at the largest one or at :data:`FULL_COLOUR_DROP`, whichever is larger: cells that do not
        matter stay as they are, and a heatmap of negligible drops stays faint."""
        photo = self.photo
        if max(photo.size) < min_side:
            scale = min_side / max(photo.size)
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        scale = max(float(np.abs(self.heatmap).max()), FULL_COLOUR_DROP)
        cells = Image.fromarray(self.heatmap.astype(np.float32), mode="F")
        relative = np.asarray(cells.resize(photo.size, Image.Resampling.BILINEAR)) / scale  # -1..1
        colour = np.where(relative[..., None] > 0, SUPPORT_RGB, AGAINST_RGB) / 255
        strength = opacity * np.abs(relative)[..., None]
        painted = np.asarray(photo, dtype=np.float32) / 255 * (1 - strength) + colour * strength
        return Image.fromarray(np.round(painted * 255).astype(np.uint8), mode="RGB")

    def overlay_png(self, opacity: float = 0.7, min_side: int = 0) -> bytes:
        """:meth:`overlay` encoded as PNG."""
        buffer = io.BytesIO()
        self.overlay(opacity, min_side).save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


@dataclass
class Explanation:
    """A prediction and, where the product has them and the model used them, its word and pixel weights."""

    prediction: Prediction
    #: the second most probable category (what the ``runner_up_weight`` of words refer to)
    runner_up: str | None
    words: WordExplanation | None
    #: why there are no word weights (``None`` when there are)
    words_skipped: str | None
    pixels: PixelExplanation | None
    #: why there is no heatmap (``None`` when there is one)
    pixels_skipped: str | None

    @classmethod
    def nothing_to_read(cls, product_id: str, reason: str) -> Explanation:
        """The explanation of a product the model read nothing of: no category (the model could only answer its
        class prior), no confidence, sent to review, as ``prodcat predict`` answers it; ``reason``: why
        (:func:`~prodcat.predict.nothing_read_reason`), for the words and the photo alike."""
        prediction = Prediction(product_id, category="", confidence=float("nan"), decision="review")
        return cls(prediction, None, None, reason, None, reason)

    @property
    def scored(self) -> bool:
        """Whether the model read something of the product (see :meth:`nothing_to_read`)."""
        return bool(self.prediction.modalities_used)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the heatmap as a list of rows, the photo left out."""
        return {
            "prediction": self.prediction.as_dict(),
            "runner_up": self.runner_up,
            "words": None
            if self.words is None
            else {
                "distinct_words": self.words.distinct_words,
                "weights": [asdict(w) for w in self.words.words],
                "negligible": self.words.negligible,
            },
            "words_skipped": self.words_skipped,
            "pixels": None
            if self.pixels is None
            else {
                "heatmap": self.pixels.heatmap.tolist(),
                "reference_probability": self.pixels.reference_probability,
                "largest_drop": self.pixels.largest_drop,
                "largest_change": self.pixels.largest_change,
                "negligible": self.pixels.negligible,
                "photo_size": list(self.pixels.photo.size),
            },
            "pixels_skipped": self.pixels_skipped,
        }


# ---------------------------------------------------------------------------------------------- words
@cache
def _word() -> re.Pattern[str]:
    """A word as the model's tokens cut the text (:func:`~prodcat.text.clean.word_pattern`): letters, digits and
    combining marks, "wrist-watch" two words, "wrist" and "watch", as the model reads them: weighed whole, removing
    "watch" left the "watch" of "wrist-watch" in the text, and its weight understated what the model reads of it."""
    return re.compile(word_pattern())


#: the apostrophes that elide a letter ("l'eau", "d'or") or add one ("men's"), straight and typographic
APOSTROPHES = "'’"


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, case-folded word)`` of every word of ``text`` explain weighs, in order: elided letters left out
    (:func:`_elision`), so that weighing the word 's' (a size 'S') neither removes nor colours the 's' of "men's"."""
    return [(m.start(), m.end(), m.group().casefold()) for m in _word().finditer(text) if not _elision(text, *m.span())]


def _elision(text: str, start: int, end: int) -> bool:
    """Whether the word ``text[start:end]`` is a letter an apostrophe joins to a word ("l'" of "l'eau", the "s" of
    "men's"): the model's bag of words drops it (a word of two characters at least), and it is not weighed."""
    if end - start != 1 or not text[start].isalpha():
        return False
    return (end < len(text) and text[end] in APOSTROPHES) or (start > 0 and text[start - 1] in APOSTROPHES)


def remove_words(text: str, words: set[str]) -> str:
    """``text`` without any occurrence of the case-folded ``words`` (the rest, punctuation included, kept)."""
    pieces, position = [], 0
    for start, end, word in word_spans(text):
        if word in words:
            pieces.append(text[position:start])
            position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _distinct_words(title: str, description: str) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """Distinct case-folded words in reading order (elided letters left out, :func:`word_spans`), their counts and their
    first spelling."""
    counts: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for text in (title, description):
        for start, end, word in word_spans(text):
            counts[word] = counts.get(word, 0) + 1
            spelling.setdefault(word, text[start:end])
    return list(counts), counts, spelling


# ---------------------------------------------------------------------------------------------- pixels
def _cell_edges(size: int, grid: int) -> np.ndarray:
    """``grid + 1`` pixel boundaries splitting ``size`` pixels into ``grid`` near-equal cells."""
    return np.round(np.linspace(0, size, grid + 1)).astype(int)


def occluded_copies(photo: Image.Image, settings: ExplainSettings) -> tuple[list[Image.Image], list[tuple[int, int]]]:
    """One copy of ``photo`` per position of the grey square, and each square's top-left ``(row, col)`` cell."""
    xs, ys = _cell_edges(photo.width, settings.grid), _cell_edges(photo.height, settings.grid)
    positions = settings.grid - settings.patch_cells + 1
    copies, corners = [], []
    for row in range(positions):
        for col in range(positions):
            copy = photo.copy()
            box = (xs[col], ys[row], xs[col + settings.patch_cells], ys[row + settings.patch_cells])
            copy.paste(settings.fill, box)
            copies.append(copy)
            corners.append((row, col))
    return copies, corners


def _heatmap(drops: np.ndarray, corners: list[tuple[int, int]], settings: ExplainSettings) -> np.ndarray:
    """Per cell, ``(grid, grid)``: the mean drop of the squares covering it."""
    total = np.zeros((settings.grid, settings.grid))
    covered = np.zeros((settings.grid, settings.grid))
    size = settings.patch_cells
    for drop, (row, col) in zip(drops, corners, strict=True):
        total[row : row + size, col : col + size] += drop
        covered[row : row + size, col : col + size] += 1
    return total / covered


# ---------------------------------------------------------------------------------------------- explain
def readable_text(product: Mapping[str, Any]) -> tuple[str, str]:
    """The title and description as the model reads them: markup and entities cleaned away (the model cleans
    the same way), or "<b>" and "&eacute;" would be words, and removing one would hand the model broken markup."""
    title, description = (clean_text(None if is_missing(product.get(n)) else str(product.get(n))) for n in TEXT_FIELDS)
    return title, description


def explain(
    predictor: PredictorLike, product: Mapping[str, Any], settings: ExplainSettings | None = None, top_k: int = 5
) -> Explanation:
    """Explain the prediction for one product by occluding its words and its photo, in one ``predict`` call.

    Args:
        predictor: the loaded model (any config: explanations only call ``predictor.predict``, and read the
            modalities of ``predictor.manifest``).
        product: a canonical row: ``title``, ``description``, ``image`` (a path, the encoded bytes or
            a PIL image; missing = no photo), ``product_id`` (missing keys count as empty).
        settings: cost bounds (words, lattice, photo size); the defaults when ``None``.
        top_k: categories in the returned prediction.

    Returns:
        The prediction for the product as given, with word weights if the model classified it from its
        text and a heatmap if it classified it from its photo; ``words_skipped`` / ``pixels_skipped``
        say why one is missing. A product with nothing the model can read gets no category (as from
        ``prodcat predict``: the model would answer its class prior), both skipped with
        :func:`~prodcat.predict.nothing_read_reason`.
    """
    settings = settings or ExplainSettings()
    original: dict[str, Any] = {name: product.get(name) for name in ("product_id", *TEXT_FIELDS, "image")}
    title, description = readable_text(original)
    words, counts, spelling = _distinct_words(title, description)
    # variants of what the model does not read would only cost model rows (50 photos for a text-only model);
    # the bundle's manifest says what it reads (a predictor without one is asked about both)
    reads = modalities_read_by_bundle(predictor.manifest)
    explained = words[: settings.max_words] if "text" in reads else []
    # the words are removed from the text as the model reads it, cleaned, and weighed against that text: a head that
    # reads the raw text (``layout``: its markup, its raw length) saw every variant lose the markup, which was weighed
    # in every word (a product told by its markup alone: each word 1.0, though removing any changed nothing)
    cleaned = original | {"title": title, "description": description}
    baseline = [cleaned] if explained and _cleaning_changes(original, cleaned) else []
    rows = [original, *baseline]
    rows += [
        cleaned | {"title": remove_words(title, {w}), "description": remove_words(description, {w})} for w in explained
    ]
    photo_start = len(rows)

    photo, photo_problem = (
        _decoded_photo(original, settings) if "image" in reads else (None, "the model does not read photos")
    )
    corners: list[tuple[int, int]] = []
    photo_variants: list[Image.Image] = []
    if photo is not None:
        copies, corners = occluded_copies(photo, settings)
        photo_variants = [photo, *copies]
        rows += [original | {"image": image} for image in photo_variants]

    # every category's probability for every row: the runner-up of a variant may be anything; the text on the
    # photo (OCR, seconds a photo) read once, on the photo as given, for every variant
    with text_read_from(original["image"], photo_variants):
        predictions = predictor.predict(pd.DataFrame(rows), top_k=len(predictor.labels))
    first = predictions[0]
    if not first.modalities_used:
        reason = nothing_read_reason(reads, original["title"], original["description"], original["image"])
        return Explanation.nothing_to_read(first.product_id, reason)
    proba = np.array([_probabilities(p, predictor.labels) for p in predictions])
    ranked = first.top_k
    predicted = predictor.labels.index(first.category)
    runner_up = predictor.labels.index(ranked[1]["category"]) if len(ranked) > 1 else None

    word_explanation, words_skipped = None, None
    if not words:
        words_skipped = "the product has no text (no title or description words)"
    elif "text" not in reads:
        words_skipped = "the model does not read text"
    elif "text" not in first.modalities_used:
        words_skipped = "the model did not classify this product from its text"
    else:
        drops = proba[len(baseline)] - proba[1 + len(baseline) : photo_start]
        word_explanation = WordExplanation(
            words=[
                WordWeight(
                    word=spelling[word],
                    weight=float(drops[i, predicted]),
                    runner_up_weight=None if runner_up is None else float(drops[i, runner_up]),
                    occurrences=counts[word],
                )
                for i, word in enumerate(explained)
            ],
            distinct_words=len(words),
        )

    pixel_explanation, pixels_skipped = None, photo_problem
    if photo is not None:
        photo_rows = proba[photo_start:, predicted]
        if "image" not in first.modalities_used:
            pixels_skipped = "the model did not classify this product from its photo"
        else:
            pixel_explanation = _pixel_explanation(
                photo, photo_rows[0], photo_rows[0] - photo_rows[1:], corners, settings
            )
    return Explanation(
        prediction=replace(first, top_k=ranked[:top_k]),
        runner_up=None if runner_up is None else predictor.labels[runner_up],
        words=word_explanation,
        words_skipped=words_skipped,
        pixels=pixel_explanation,
        pixels_skipped=pixels_skipped,
    )


def _cleaning_changes(original: Mapping[str, Any], cleaned: Mapping[str, Any]) -> bool:
    """Whether the ``cleaned`` title or description (:func:`readable_text`) differs from the ``original`` one."""
    return any(("" if is_missing(original[n]) else str(original[n])) != cleaned[n] for n in TEXT_FIELDS)


def _pixel_explanation(
    photo: Image.Image,
    reference: float,
    drops: np.ndarray,
    corners: list[tuple[int, int]],
    settings: ExplainSettings,
) -> PixelExplanation:
    """The heatmap of the probability ``drops`` of the squares at ``corners``, against the ``reference``
    probability of the unoccluded ``photo``."""
    return PixelExplanation(
        heatmap=_heatmap(drops, corners, settings),
        reference_probability=float(reference),
        largest_drop=float(drops.max()),
        largest_change=float(np.abs(drops).max()),
        photo=photo,
    )


def _decoded_photo(product: Mapping[str, Any], settings: ExplainSettings) -> tuple[Image.Image | None, str | None]:
    """The photo decoded for occlusion, or ``None`` and why not."""
    source = product.get("image")
    if is_missing(source) or (isinstance(source, str) and not source.strip()):
        return None, "the product has no photo"
    try:
        # not missing: a path, bytes or a PIL image (load_image refuses anything else)
        photo = load_image(
            cast(ImageSource, source), product_id=product.get("product_id") or None, max_side=settings.photo_side
        )
    except ImageDecodeError as exc:
        return None, f"the photo cannot be decoded: {exc.reason}"
    # cells of at least one pixel
    if min(photo.size) < settings.grid:
        return None, f"the photo ({photo.width}x{photo.height} px) is smaller than the {settings.grid}-cell grid"
    return photo, None


def _probabilities(prediction: Prediction, labels: list[str]) -> list[float]:
    """The probabilities of a prediction made with ``top_k = len(labels)``, in the order of ``labels``."""
    by_label = {entry["category"]: entry["probability"] for entry in prediction.top_k}
    return [by_label[label] for label in labels]


__all__ = [
    "ExplainSettings",
    "Explanation",
    "PixelExplanation",
    "WordExplanation",
    "WordWeight",
    "explain",
    "occluded_copies",
    "remove_words",
    "word_spans",
]

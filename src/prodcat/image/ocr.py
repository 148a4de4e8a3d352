"""Text read from the product photo (OCR), an optional extra text source.

Book, game and DVD covers carry their titles; :class:`PhotoText` reads them with
``rapidocr`` (PP-OCR detection + recognition, models bundled with the package,
offline, run by onnxruntime) and returns one string per product, cached on
disk by image content so a photo is read once. :class:`PhotoTextTfidf` (``photo_text_tfidf``
in a config) is the registered extractor of an image head: a TF-IDF of that text. Or append it to the
product text with :func:`with_photo_text` before a text extractor.

Measured on Rakuten and Flipkart (``benchmarks/results/image_head.md``): neither gained from it, so no default
head reads it; it costs about 0.4 s per Rakuten photo on 2 cores (median of 20, ``docs/configuration.md``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin

from prodcat.features.base import CacheOwner, Extractor, NothingToLearn, by_key, register, values_with_cache
from prodcat.features.cache import ReadThroughMemoryCache, TextCache, TextMemoryCache
from prodcat.image.decode import ImageItem, ImageSource, decode_item, image_items, photo_cache_version, photo_key
from prodcat.text.clean import clean_texts
from prodcat.text.features import Analyzer, TfidfCharExtractor, TfidfWordExtractor

log = logging.getLogger(__name__)

#: the OCR's settings that :class:`PhotoText` and :class:`PhotoTextTfidf` both default to (scikit-learn reads each
#: estimator's parameters from its own signature, so both list them): the least confidence of a line kept, the
#: fewest characters of one, the longest side a photo is decoded at, and the photos read at once
DEFAULT_MIN_SCORE = 0.6
DEFAULT_MIN_CHARS = 2
DEFAULT_MAX_SIDE = 1000
DEFAULT_WORKERS = 1

#: photos (by ``id``) whose text is read from another photo instead of their own: see :func:`text_read_from`
_TEXT_SOURCES: ContextVar[dict[int, ImageSource] | None] = ContextVar("prodcat_photo_text_sources", default=None)


@contextmanager
def text_read_from(source: ImageSource, copies: Iterable[Image.Image]) -> Iterator[None]:
    """Within it, in this thread, the text OCR reads on each of ``copies`` (the very objects) is that of ``source``.

    For the occluded copies of a photo that :func:`~prodcat.evaluate.explain.explain` predicts: each grey square
    would cost an OCR of its copy (0.2 to 2 s; 49 squares with the default lattice); read from the photo they cover,
    it is read once, and the heatmap shows what the other photo features see, the text held as read on the photo.
    """
    token = _TEXT_SOURCES.set((_TEXT_SOURCES.get() or {}) | dict.fromkeys(map(id, copies), source))
    try:
        yield
    finally:
        _TEXT_SOURCES.reset(token)


def _text_source(item: ImageItem | None) -> ImageItem | None:
    """The photo whose text stands for ``item``'s (see :func:`text_read_from`): its own unless it is a copy."""
    sources = _TEXT_SOURCES.get() or {}
    if item is None or id(item.source) not in sources:
        return item
    return ImageItem(item.product_id, sources[id(item.source)])


class PhotoText(TransformerMixin, BaseEstimator):
    """OCR of each product's photo: ``transform(frame) -> list[str]`` (``""`` without text or photo).

    Args:
        min_score: recognised lines below this confidence (0-1) are dropped.
        min_chars: lines shorter than this (after stripping) are dropped: OCR noise.
        max_side: photos are decoded with their longest side at most this many pixels.
        threads: onnxruntime intra-op threads (default: all cores).
        workers: photos read concurrently (each holds a decoded image in memory).
        cache_dir: where the per-photo text cache lives (default: the prodcat cache dir).
        progress: show a progress bar.
    """

    name = "ocr_rapidocr"
    version = "1"
    _model_engine: Any  # the RapidOCR engine, built at first use (see _engine; None once its threads change)

    def __init__(
        self,
        min_score: float = DEFAULT_MIN_SCORE,
        min_chars: int = DEFAULT_MIN_CHARS,
        max_side: int = DEFAULT_MAX_SIDE,
        threads: int | None = None,
        workers: int = DEFAULT_WORKERS,
        cache_dir: str | None = None,
        progress: bool = True,
    ):
        self.min_score = min_score
        self.min_chars = min_chars
        self.max_side = max_side
        self.threads = threads
        self.workers = workers
        self.cache_dir = cache_dir
        self.progress = progress

    def fit(self, frame: pd.DataFrame, y: Any = None) -> PhotoText:
        return self

    def cache(self) -> TextCache | TextMemoryCache | ReadThroughMemoryCache[str]:
        """Where texts are looked up and stored: the on-disk cache, unless :meth:`use_memory_cache` switched this
        instance to a bounded in-memory one."""
        memory = getattr(self, "_model_memory_cache", None)
        return self.disk_cache() if memory is None else memory

    @classmethod
    def cache_version(cls) -> str:
        """The version its texts are cached under: its own and the decoder's."""
        return photo_cache_version(cls.version)

    def disk_cache(self) -> TextCache:
        return TextCache.for_extractor(self.name, self.cache_version(), self.cache_dir)

    def use_memory_cache(self, max_items: int, read_disk: bool = False) -> None:
        """Keep at most ``max_items`` recent texts in memory instead of writing them to the on-disk cache, reading
        the disk's too with ``read_disk``: as :meth:`~prodcat.features.base.PretrainedEncoder.use_memory_cache`
        does for vectors (a server's photos, perturbed ones). Not pickled."""
        memory = TextMemoryCache(max_items)
        self._model_memory_cache = ReadThroughMemoryCache(self.disk_cache, memory) if read_disk else memory

    def key(self, item: ImageItem) -> str:
        """The cache key of ``item``'s text: its photo's content key and the settings that change what is read."""
        return f"{photo_key(item)}|{self.min_score:g}|{self.min_chars}|{self.max_side}"

    def transform(self, frame: pd.DataFrame) -> list[str]:
        """One string per product of ``frame``: the recognised lines joined by `` . ``."""
        items = [_text_source(item) for item in image_items(frame)]
        keys = [None if it is None else self.key(it) for it in items]
        with ThreadPoolExecutor(self.workers) as pool:
            # stored one by one: an interrupted run keeps what it read
            found = values_with_cache(
                by_key(keys, items),
                lambda photos: pool.map(self.read, photos),
                self.cache(),
                desc="ocr",
                store_every=1,
                progress=self.progress,
                unit="img",
            )
        return [found[k] if k is not None else "" for k in keys]

    def read(self, item: ImageItem) -> str:
        """The text of one photo (``""`` if unreadable: logged by the decoder)."""
        img = decode_item(item, self.max_side)
        if img is None:
            return ""
        result = self._engine()(np.asarray(img)[:, :, ::-1])  # rapidocr expects BGR like OpenCV
        return self.join_lines(result.txts or (), result.scores or ())

    def join_lines(self, lines: Sequence[str], scores: Sequence[float]) -> str:
        """The recognised ``lines`` whose confidence ``scores`` (0-1) reach ``min_score`` and that hold ``min_chars``
        characters or more once stripped, joined by `` . ``."""
        kept = [t.strip() for t, s in zip(lines, scores, strict=True) if s >= self.min_score]
        return " . ".join(t for t in kept if len(t) >= self.min_chars)

    def set_params(self, **params: Any) -> PhotoText:
        if params.get("threads", self.threads) != self.threads:
            self._model_engine = None  # built for the former thread count
        return super().set_params(**params)

    def _engine(self) -> Any:
        if getattr(self, "_model_engine", None) is None:
            from rapidocr import RapidOCR

            self._model_engine = RapidOCR(
                params={
                    "Global.log_level": "error",  # "no text found" is a normal outcome here
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads or os.cpu_count() or 1,
                }
            )
        return self._model_engine

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_model")}


#: the settings of :class:`PhotoTextTfidf` that are its :class:`PhotoText`'s
_READER_SETTINGS = ("min_score", "min_chars", "max_side", "threads", "workers", "cache_dir", "progress")


@register
class PhotoTextTfidf(Extractor):
    """TF-IDF of the text :class:`PhotoText` reads on each product's photo, ``float32`` CSR ``(n, vocabulary size)``,
    rows L2-normalised; the vocabulary is learnt from the training photos' text.

    An image extractor (it reads the photo), for an image head of its own or beside ``effnet_lite0`` in one. A photo
    without text, or that does not decode, gets a zero row and is still :meth:`available` (it has a photo): beside
    Lite0 the head keeps the photos Lite0 reads, text or not; alone, such a row holds nothing, and the head reports
    the product not read (:meth:`~prodcat.models.heads.ModalityHead.features_read`), left to the other heads. When
    the OCR reads no text on any training photo, ``fit`` raises :class:`~prodcat.features.base.NothingToLearn`: the
    head is trained without this extractor (Lite0 alone), or, alone in it, is left out of the model.

    Each photo's text is cached on disk by content (:meth:`PhotoText.cache`): a photo is read once, at about
    0.4 s on 2 cores (Rakuten; ``docs/configuration.md``).

    Args:
        analyzer: ``char_wb`` (character n-grams within words: robust to OCR's misread letters), ``char`` or
            ``word``.
        ngram_range: n-gram lengths, in characters (``char*``) or words.
        min_df: n-grams kept: those of at least this many training photos (or this share of them).
        sublinear_tf: ``1 + log(tf)`` term frequencies.
        min_score, min_chars, max_side, threads, workers, cache_dir, progress: the OCR's, see :class:`PhotoText`.
    """

    name = "photo_text_tfidf"
    modality = "image"

    def __init__(
        self,
        analyzer: Analyzer = "char_wb",
        ngram_range: tuple[int, int] = (2, 4),
        min_df: int | float = 2,
        sublinear_tf: bool = True,
        min_score: float = DEFAULT_MIN_SCORE,
        min_chars: int = DEFAULT_MIN_CHARS,
        max_side: int = DEFAULT_MAX_SIDE,
        threads: int | None = None,
        workers: int = DEFAULT_WORKERS,
        cache_dir: str | None = None,
        progress: bool = True,
    ):
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.min_score = min_score
        self.min_chars = min_chars
        self.max_side = max_side
        self.threads = threads
        self.workers = workers
        self.cache_dir = cache_dir
        self.progress = progress

    def missing_requirement(self) -> str | None:
        if importlib.util.find_spec("rapidocr") is None:
            return f"{self.name} needs rapidocr, a dependency of prodcat (pip install 'rapidocr==3.10.0')"
        return None

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """It caches nothing itself; :class:`PhotoText`, which it reads photos with, caches their texts."""
        return {f"features/{PhotoText.name}": PhotoText}

    def reader(self) -> PhotoText:
        """The OCR, built once per instance (its engine and memory cache are not pickled), with this extractor's
        settings as they are now: one changed by ``set_params`` since it was built reaches it."""
        settings = {name: getattr(self, name) for name in _READER_SETTINGS}
        if getattr(self, "_model_reader", None) is None:
            self._model_reader = PhotoText(**settings)
        return self._model_reader.set_params(**settings)

    def use_memory_cache(self, max_items: int, read_disk: bool = False) -> None:
        """See :meth:`PhotoText.use_memory_cache`."""
        self.reader().use_memory_cache(max_items, read_disk)

    def photo_texts(self, frame: pd.DataFrame) -> list[str]:
        """Each product's photo text, cleaned as product text is (``""`` without text or photo)."""
        return clean_texts(self.reader().transform(frame))

    def fit(self, frame: pd.DataFrame, y: Any = None) -> PhotoTextTfidf:
        self.fit_transform(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None, **fit_params: Any) -> sp.csr_matrix:
        texts = self.photo_texts(frame)
        self.vectorizer_ = self._vectorizer()
        try:
            return self.vectorizer_.fit_transform_cleaned(texts)
        except ValueError as error:
            if "empty vocabulary" not in str(error):  # an invalid parameter, say: not the photos' doing
                raise
            # not a word read on any photo (it reads some on 416 of Flipkart's 897): a small catalogue, a fold
            raise NothingToLearn(
                # scikit-learn's words ('perhaps the documents only contain stop words') would mislead here
                f"{self.name}: OCR read no text on the {len(frame)} products' photos, nothing to learn a vocabulary "
                "from; leave this extractor out for this catalogue"
            ) from None

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        return self.vectorizer_.transform_cleaned(self.photo_texts(frame))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.vectorizer_.get_feature_names_out()

    def _vectorizer(self) -> TfidfWordExtractor | TfidfCharExtractor:
        if self.analyzer == "word":
            return TfidfWordExtractor(
                ngram_range=self.ngram_range, min_df=self.min_df, max_df=1.0, sublinear_tf=self.sublinear_tf
            )
        return TfidfCharExtractor(
            ngram_range=self.ngram_range, analyzer=self.analyzer, min_df=self.min_df, sublinear_tf=self.sublinear_tf
        )

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if not k.startswith("_model")}


def with_photo_text(frame: pd.DataFrame, photo_text: Sequence[str], column: str = "description") -> pd.DataFrame:
    """A copy of ``frame`` whose ``column`` ends with the text read from each photo."""
    out = frame.copy()
    base = out[column].fillna("").astype(str)
    extra = pd.Series(list(photo_text), index=out.index)
    out[column] = np.where(extra.str.len() > 0, base + " . " + extra, base)
    return out

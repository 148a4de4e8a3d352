"""Text read from the product photo (OCR), an optional extra text source.

Book, game and DVD covers carry their titles; :class:`PhotoText` reads them with
``rapidocr`` (PP-OCR detection + recognition, models bundled with the package,
offline, run by onnxruntime) and returns one string per product, cached on
disk by image content so a photo is read once. Append it to the product text
with :func:`with_photo_text` before a text extractor.

Measured on Rakuten (``benchmarks/results/image_head.md``): see there whether it
pays for its cost (a few seconds per photo on 2 cores).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from prodcat.features.cache import TextCache
from prodcat.image.decode import ImageItem, decode_item, image_items, photo_cache_version, photo_key

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        min_score: float = 0.6,
        min_chars: int = 2,
        max_side: int = 1000,
        threads: int | None = None,
        workers: int = 1,
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

    def cache(self) -> TextCache:
        return TextCache.for_extractor(self.name, photo_cache_version(self.version), self.cache_dir)

    def key(self, item: ImageItem) -> str:
        return f"{photo_key(item)}|{self.min_score:g}|{self.min_chars}|{self.max_side}"

    def transform(self, frame: pd.DataFrame) -> list[str]:
        """One string per product of ``frame``: the recognised lines joined by `` . ``."""
        from tqdm.auto import tqdm

        items = image_items(frame)
        keys = [None if it is None else self.key(it) for it in items]
        cache = self.cache()
        found = cache.get_many({k for k in keys if k is not None})
        todo = {k: it for k, it in zip(keys, items, strict=True) if k is not None and k not in found}
        with (
            ThreadPoolExecutor(self.workers) as pool,
            tqdm(total=len(todo), desc="ocr", disable=not self.progress or not todo, unit="img") as bar,
        ):
            for key, text in zip(todo, pool.map(self.read, todo.values()), strict=True):
                cache.put_many({key: text})  # one by one: an interrupted run keeps what it read
                found[key] = text
                bar.update()
        return [found[k] if k is not None else "" for k in keys]

    def read(self, item: ImageItem) -> str:
        """The text of one photo (``""`` if unreadable: logged by the decoder)."""
        img = decode_item(item, self.max_side)
        if img is None:
            return ""
        result = self._engine()(np.asarray(img)[:, :, ::-1])  # rapidocr expects BGR like OpenCV
        return self.join_lines(result.txts or (), result.scores or ())

    def join_lines(self, lines: Sequence[str], scores: Sequence[float]) -> str:
        kept = [t.strip() for t, s in zip(lines, scores, strict=True) if s >= self.min_score]
        return " . ".join(t for t in kept if len(t) >= self.min_chars)

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


def with_photo_text(frame: pd.DataFrame, photo_text: Sequence[str], column: str = "description") -> pd.DataFrame:
    """A copy of ``frame`` whose ``column`` ends with the text read from each photo."""
    out = frame.copy()
    base = out[column].fillna("").astype(str)
    extra = pd.Series(list(photo_text), index=out.index)
    out[column] = np.where(extra.str.len() > 0, base + " . " + extra, base)
    return out

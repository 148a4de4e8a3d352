"""Robustness: the same labelled products, perturbed one way at a time, predicted by the same bundle.

A :class:`Perturbation` is a named, seeded, deterministic change of a canonical frame: either a
transform of each product's photo (rotation, Gaussian noise, Gaussian blur, JPEG re-compression,
downscaling, a centre crop) or the removal of a modality (no photo, no description, no text,
title only). They are registered by name in :data:`PERTURBATIONS`, several severities per family.

A :class:`RobustnessStudy` predicts the clean frame once and each perturbed copy, one at a time (so that a
command keeps each record as it comes), through the
:class:`~prodcat.predict.Predictor` (the one path every front end uses), and scores each run against
the clean one on the same products: the headline metrics, the accept/review decision, the paired
bootstrap difference, and the products whose prediction flipped. Products a perturbation cannot
touch (no photo to rotate, no description to remove) keep their clean input and are counted apart
(``n_affected``), so a metric is never quietly diluted or inflated by them.

Photos are decoded by :func:`prodcat.image.decode.load_image` (the one safe decoder) and brought to a
working scale of :data:`WORK_SIDE` pixels on the longest side, shrunk or enlarged (fashion's 60x80
photos too), so that a severity in pixels (blur radius, JPEG blocks, noise grain) is the same share of
every photo on every catalogue; ``downscale_512``, that resampling alone, is the control. They are
handed to the Predictor as PIL images: nothing is written next to the dataset, and the embeddings of
perturbed photos go to a bounded in-memory cache, not the on-disk one.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from prodcat.catalog.schema import has_image, is_missing, is_readable
from prodcat.evaluate.metrics import accepted_at, evaluate_predictions, paired_difference, wilson_interval
from prodcat.image.decode import DECODABILITY_SIDE, ImageDecodeError, ImageItem, decode_item, load_image

log = logging.getLogger(__name__)

#: longest side, in pixels, photos are brought to before a perturbation: pixel severities are relative to it
WORK_SIDE = 512
#: products perturbed and predicted at a time (bounds the decoded photos held in memory: ~0.8 MB each)
CHUNK_SIZE = 256

#: ``(photo, rng) -> photo``: an RGB PIL image in, an RGB PIL image out
ImageTransform = Callable[[Image.Image, np.random.Generator], Image.Image]


# ---------------------------------------------------------------------------------------------- photo transforms
def at_working_scale(photo: Image.Image) -> Image.Image:
    """``photo`` resized (Lanczos, aspect kept) to :data:`WORK_SIDE` pixels on its longest side, enlarged when
    smaller: a blur of 2 px on a 60x80 photo would otherwise be as strong as one of 13 px on a 512 px one."""
    scale = WORK_SIDE / max(photo.size)
    if scale == 1:
        return photo
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.resize(size, Image.Resampling.LANCZOS)


def rotate(img: Image.Image, rng: np.random.Generator, degrees: float) -> Image.Image:
    """Counter-clockwise rotation by ``degrees``; the canvas grows to keep the whole photo, corners filled white
    (a multiple of 90 degrees is an exact transpose: width and height swap at 90 and 270)."""
    return img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")


def gaussian_noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """Independent Gaussian noise of standard deviation ``sigma`` (0-255 pixel units) on every channel,
    clipped to 0-255 (so the change is smaller on white or black areas)."""
    pixels = np.asarray(img, dtype=np.float32)
    noisy = pixels + rng.normal(0.0, sigma, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB")


def gaussian_blur(img: Image.Image, rng: np.random.Generator, radius: float) -> Image.Image:
    """Gaussian blur of standard deviation ``radius`` pixels."""
    return img.filter(ImageFilter.GaussianBlur(radius))


def jpeg_recompress(img: Image.Image, rng: np.random.Generator, quality: int) -> Image.Image:
    """The photo saved as a JPEG at ``quality`` (1-95) and decoded again: block artefacts, colour bleeding."""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return load_image(buffer.getvalue())


def downscale(img: Image.Image, rng: np.random.Generator, side: int) -> Image.Image:
    """The photo shrunk (Lanczos, aspect kept) to at most ``side`` pixels on its longest side."""
    small = img.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    return small


def centre_crop(img: Image.Image, rng: np.random.Generator, keep: float) -> Image.Image:
    """The central ``keep`` fraction of each side (``keep**2`` of the area): a product shot too close."""
    width, height = max(1, round(img.width * keep)), max(1, round(img.height * keep))
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return img.crop((left, top, left + width, top + height))


# ---------------------------------------------------------------------------------------------- perturbations
@dataclass(frozen=True)
class Perturbation:
    """One named way of degrading a product.

    Exactly one of ``image_transform`` (applied to every decodable photo) and ``blank`` (canonical
    columns emptied: ``title``/``description`` to ``""``, ``image`` to ``None``) is set.
    """

    name: str
    #: the group it belongs to in tables and charts, e.g. ``"blur"``
    family: str
    description: str
    #: its strength in ``unit`` (``None`` for missing modalities)
    severity: float | None = None
    unit: str = ""
    image_transform: ImageTransform | None = None
    blank: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.image_transform is None) == (not self.blank):
            raise ValueError(f"perturbation {self.name!r}: give either an image_transform or columns to blank")

    @property
    def modality(self) -> str:
        """The modality it touches: ``"image"``, ``"text"`` or ``"text,image"``."""
        if self.image_transform is not None:
            return "image"
        touched = {_column_modality(column) for column in self.blank}
        return ",".join(m for m in ("text", "image") if m in touched)

    def seen_by(self, modalities: Sequence[str]) -> Perturbation | None:
        """This perturbation as a model reading ``modalities`` sees it: ``None`` when it changes nothing the model
        reads; else with only the columns the model reads blanked, so that a product counts as affected only when
        its input to the model changed (``title_only`` on a text-only model counted the products with a photo
        but no description, which the model saw unchanged)."""
        if not set(self.modality.split(",")) & set(modalities):
            return None
        return replace(self, blank=tuple(c for c in self.blank if _column_modality(c) in modalities))

    def removes_all(self, modalities: Sequence[str]) -> bool:
        """Whether it blanks every column a model reading ``modalities`` reads: nothing is left it can score."""
        read = {column for column in ("title", "description", "image") if _column_modality(column) in modalities}
        return read <= set(self.blank)

    def apply(
        self, frame: pd.DataFrame, seed: int = 0, photos_read: np.ndarray | None = None
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """A perturbed copy of a canonical ``frame`` and the ``(n,)`` bool mask of the products it changed.

        Deterministic: a product's random draws depend only on ``seed`` and its ``product_id``, not on
        its position or on the other products in the batch. ``frame`` itself is left untouched.
        ``photos_read``: the ``(n,)`` products whose photo the model read unperturbed (``None``: those with a
        photo); removing a photo that does not decode changes nothing the model reads, and affects no product.
        """
        out = frame.copy()
        if self.image_transform is not None:
            images, affected = [], np.zeros(len(frame), dtype=bool)
            for i, (product_id, source) in enumerate(zip(frame["product_id"], frame["image"], strict=True)):
                # unreadable photos are logged by decode_item and left as they are: the Predictor skips them too
                photo = None if is_missing(source) else decode_item(ImageItem(str(product_id), source), WORK_SIDE)
                affected[i] = photo is not None
                if photo is not None:
                    source = self.image_transform(at_working_scale(photo), product_rng(seed, product_id))
                images.append(source)
            out["image"] = pd.Series(images, index=frame.index, dtype=object)
            return out, affected
        affected = np.zeros(len(frame), dtype=bool)
        for column in self.blank:
            if column == "image":
                affected |= has_image(frame) if photos_read is None else photos_read
                out["image"] = None
            else:
                # a text of markup or punctuation alone ("<br />", 6 of Rakuten's descriptions) is no text the model
                # reads: removing it changes nothing
                affected |= np.array([is_readable(v) for v in frame[column]], dtype=bool)
                out[column] = ""
        return out, affected


def _column_modality(column: str) -> str:
    """The modality a canonical column holds: ``image`` or ``text`` (title, description)."""
    return "image" if column == "image" else "text"


def product_rng(seed: int, product_id: object) -> np.random.Generator:
    """The random generator of one product: seeded by ``seed`` and a CRC-32 of its id (stable across runs)."""
    return np.random.default_rng([seed, zlib.crc32(str(product_id).encode("utf-8"))])


def _image_family(
    family: str, transform: Callable[..., Image.Image], parameter: str, unit: str, values: Iterable[float], text: str
) -> list[Perturbation]:
    """One perturbation per severity ``value`` of ``transform(img, rng, **{parameter: value})``."""
    return [
        Perturbation(
            name=f"{family}_{value:g}",
            family=family,
            description=text.format(value=value),
            severity=float(value),
            unit=unit,
            image_transform=partial(transform, **{parameter: value}),
        )
        for value in values
    ]


#: every registered perturbation by name, in report order
PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in [
        *_image_family("rotate", rotate, "degrees", "degrees", (15, 90, 180), "photo rotated {value:g} degrees"),
        *_image_family(
            "noise",
            gaussian_noise,
            "sigma",
            "pixel sigma (0-255)",
            (10, 25, 50),
            "Gaussian noise, sigma {value:g} (pixel values 0-255)",
        ),
        *_image_family(
            "blur",
            gaussian_blur,
            "radius",
            "pixels",
            (2, 4, 8),
            f"Gaussian blur, radius {{value:g}} px at {WORK_SIDE} px",
        ),
        *_image_family(
            "jpeg",
            jpeg_recompress,
            "quality",
            "JPEG quality",
            (20, 5),
            "JPEG re-compressed at quality {value:g} of 100",
        ),
        *_image_family(
            "downscale",
            downscale,
            "side",
            "pixels (longest side)",
            # the working scale first: CONTROL, below, is that severity
            (WORK_SIDE, 64, 32),
            "photo shrunk to {value:g} px on its longest side",
        ),
        *_image_family(
            "crop", centre_crop, "keep", "fraction of each side", (0.7, 0.5), "centre {value:.0%} of each side kept"
        ),
        Perturbation("no_photo", "missing", "photo removed (text only)", blank=("image",)),
        Perturbation("no_description", "missing", "description removed (title and photo)", blank=("description",)),
        Perturbation(
            "no_text", "missing", "title and description removed (photo only)", blank=("title", "description")
        ),
        Perturbation(
            "title_only", "missing", "description and photo removed (title only)", blank=("description", "image")
        ),
    ]
}


#: the control: shrunk to the working scale, so nothing but the resampling every photo perturbation starts with (a
#: smaller photo is enlarged to it); its change is the part of every photo row's that the resampling alone makes
CONTROL = f"downscale_{WORK_SIDE}"
PERTURBATIONS[CONTROL] = replace(
    PERTURBATIONS[CONTROL],
    description=f"control: the photo brought to {WORK_SIDE} px alone, as before every photo perturbation",
)


def get_perturbations(names: Iterable[str] | None = None) -> list[Perturbation]:
    """The registered perturbations called ``names`` (a family name stands for all its severities); all if ``None``."""
    if names is None:
        return list(PERTURBATIONS.values())
    chosen: list[Perturbation] = []
    for name in names:
        matches = [p for p in PERTURBATIONS.values() if name in (p.name, p.family)]
        if not matches:
            families = sorted({p.family for p in PERTURBATIONS.values()})
            raise ValueError(
                f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)} (or a family: {', '.join(families)})"
            )
        chosen += [p for p in matches if p not in chosen]
    return chosen


# ---------------------------------------------------------------------------------------------- evaluation
def predict_perturbed(
    predictor: Any,
    frame: pd.DataFrame,
    perturbation: Perturbation | None,
    seed: int = 0,
    base: Perturbation | None = None,
    photos_read: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``predict`` table of ``frame`` perturbed by ``base`` then ``perturbation`` (each ``None``: none),
    and the ``(n,)`` mask of the products ``perturbation`` changed (``photos_read``: as in
    :meth:`Perturbation.apply`); chunk by chunk, both applied to one chunk at a time, so that only one chunk
    of decoded photos is in memory."""
    from prodcat.batch import predict_catalog

    tables, masks = [], []
    for start in range(0, len(frame), CHUNK_SIZE):
        rows = slice(start, start + CHUNK_SIZE)
        chunk = frame.iloc[rows]
        if base is not None:
            chunk, _ = base.apply(chunk, seed)
        affected = np.zeros(len(chunk), dtype=bool)
        if perturbation is not None:
            chunk, affected = perturbation.apply(chunk, seed, None if photos_read is None else photos_read[rows])
        masks.append(affected)
        tables.append(predict_catalog(predictor, chunk, CHUNK_SIZE, progress=False))
    return pd.concat(tables, ignore_index=True), np.concatenate(masks)


def score_run(
    truth: np.ndarray,
    table: pd.DataFrame,
    threshold: float,
    clean: pd.DataFrame | None = None,
    affected: np.ndarray | None = None,
) -> dict[str, Any]:
    """One robustness record: headline metrics and their intervals, mean confidence (of the products scored),
    ECE, the decision, the modalities the products were classified from; against a ``clean`` table, the paired
    change of each headline metric (perturbed minus clean), the flipped predictions and the affected products'
    accuracy."""
    predicted = table["category"].to_numpy(dtype=object)
    confidence = table["confidence"].to_numpy(dtype=float)
    metrics = evaluate_predictions(truth, predicted, confidence, threshold)
    record: dict[str, Any] = {key: metrics[key] for key in ("n", "accuracy", "f1_weighted", "f1_macro", "intervals")}
    # of the products given a confidence, as the ECE: one the model could not score has none (it counts as wrong,
    # and in modalities_used as "none"); none scored, no mean (a 0 would read as a model sure of nothing)
    answered = confidence[np.isfinite(confidence)]
    record["mean_confidence"] = float(answered.mean()) if len(answered) else None
    record["ece"] = metrics["calibration"]["ece"]
    # no product auto-accepted: no precision (None, as NaN is not JSON)
    record["decision"] = {k: None if v != v else v for k, v in metrics["decision"].items()}
    record["modalities_used"] = {k or "none": int(v) for k, v in table["modalities_used"].value_counts().items()}
    if clean is None or affected is None:
        return record
    clean_predicted = clean["category"].to_numpy(dtype=object)
    flipped = predicted != clean_predicted
    record["n_affected"] = int(affected.sum())
    record["n_flipped"] = int(flipped.sum())
    if (flipped & ~affected).any():  # the Predictor is deterministic: an untouched product must not move
        log.warning("%d products flipped without being perturbed", int((flipped & ~affected).sum()))
    # a perturbation that touched no product has no change to measure: its zero would read as robustness
    touched = affected.any()
    record["flipped_share_of_affected"] = float(flipped[affected].mean()) if touched else None
    record["change_vs_clean"] = paired_difference(truth, clean_predicted, predicted) if touched else None
    record["affected_accuracy"] = {
        "clean": float((clean_predicted[affected] == truth[affected]).mean()) if touched else None,
        "perturbed": float((predicted[affected] == truth[affected]).mean()) if touched else None,
    }
    return record


#: the runs whose predictions :func:`text_and_photo` compares: the text alone, the photo alone
SINGLE_MODALITY_RUNS = ("no_photo", "no_text")
#: the key of the clean record holding its :func:`text_and_photo` section, once both those runs are measured
TEXT_AND_PHOTO = "text_and_photo"


def _share(successes: np.ndarray, among: np.ndarray) -> dict[str, Any]:
    """The share of ``among`` (``(n,)`` bool) that ``successes`` holds: counts, share and 95% Wilson interval."""
    n, hits = int(among.sum()), int((successes & among).sum())
    low, high = wilson_interval(hits, n)
    return {"n": n, "count": hits, "share": hits / n if n else None} | (
        {"low": low, "high": high} if n else {"low": None, "high": None}
    )


def text_and_photo(
    truth: np.ndarray, clean: pd.DataFrame, text_only: np.ndarray, photo_only: np.ndarray, threshold: float
) -> dict[str, Any]:
    """How often the text and the photo disagree, and what that says of the full prediction.

    Among the ``n_both`` products the ``clean`` run read both of (``modalities_used`` ``text,image``):
    ``disagreement``, the share whose ``text_only`` (the ``no_photo`` run's) and ``photo_only`` (the ``no_text``
    run's) predicted categories differ; then, in each group (``agree``, ``disagree``), the ``accuracy`` of the full
    (clean) prediction and its ``auto_precision``, among those it auto-accepts at ``threshold``. Each a count, a
    share and its 95% Wilson interval. No prediction or decision is changed: they are the clean run's."""
    both = clean["modalities_used"].to_numpy(dtype=object) == "text,image"
    differ = both & (np.asarray(text_only, dtype=object) != np.asarray(photo_only, dtype=object))
    predicted = clean["category"].to_numpy(dtype=object)
    correct = predicted == truth
    accepted = accepted_at(predicted, clean["confidence"].to_numpy(dtype=float), threshold)
    groups = {"agree": both & ~differ, "disagree": differ}
    return {
        "n_both": int(both.sum()),
        "disagreement": _share(differ, both),
        **{
            name: {"accuracy": _share(correct, group), "auto_precision": _share(correct, group & accepted)}
            for name, group in groups.items()
        },
    }


@dataclass
class RobustnessStudy:
    """The runs of one robustness study of ``predictor`` on ``frame``, each scored on all its products.

    ``truth`` is the ``(n,)`` true category of each row of ``frame`` at the model's level. ``base``, if
    given, is applied first to every run, the clean one included (``no_text``: the photo path alone),
    chunk by chunk as the perturbations are (a photo one would otherwise hold every decoded photo in
    memory at once), and is named in every record. The clean run is predicted once, when first needed
    (:attr:`clean_table`); each perturbation is then measured against it, one at a time (:meth:`run`), so
    that its record can be kept before the next one starts.
    """

    predictor: Any
    frame: pd.DataFrame
    truth: np.ndarray
    seed: int = 0
    base: Perturbation | None = None
    #: the predicted categories of the :data:`SINGLE_MODALITY_RUNS` run so far, or taken up from an earlier run, by name
    single_modality: dict[str, np.ndarray] = field(default_factory=dict)

    @cached_property
    def clean_table(self) -> pd.DataFrame:
        """The ``predict`` table of the clean run (under ``base``)."""
        return predict_perturbed(self.predictor, self.frame, None, self.seed, self.base)[0]

    def clean_record(self) -> dict[str, Any]:
        """The record of the clean run."""
        described = self.base.description if self.base else "as in the catalogue"
        header = {"name": "clean", "family": "clean", "description": described}
        return self._named(header | score_run(self.truth, self.clean_table, self.predictor.threshold))

    @cached_property
    def photos_read(self) -> np.ndarray:
        """``(n,)`` bool: the products whose photo the clean run read. A photo it did not read (it does not decode) is
        no input whose removal changes anything."""
        used = self.clean_table["modalities_used"]
        return np.array(["image" in str(modalities).split(",") for modalities in used], dtype=bool)

    def run(self, perturbation: Perturbation) -> dict[str, Any]:
        """The record of ``perturbation``, against the clean run on the same products. A perturbation that touches no
        product has no change to measure: its ``change_vs_clean`` is ``None``."""
        clean = self.clean_table
        table, affected = predict_perturbed(
            self.predictor, self.frame, perturbation, self.seed, self.base, self.photos_read
        )
        if perturbation.name in SINGLE_MODALITY_RUNS:
            self.single_modality[perturbation.name] = table["category"].to_numpy(dtype=object)
        header = {
            "name": perturbation.name,
            "family": perturbation.family,
            "description": perturbation.description,
            "modality": perturbation.modality,
            "severity": perturbation.severity,
            "unit": perturbation.unit,
        }
        return self._named(header | score_run(self.truth, table, self.predictor.threshold, clean, affected))

    def text_and_photo(self) -> dict[str, Any] | None:
        """:func:`text_and_photo` of the clean run, once both :data:`SINGLE_MODALITY_RUNS` have run (else ``None``)."""
        if not all(name in self.single_modality for name in SINGLE_MODALITY_RUNS):
            return None
        text_only, photo_only = (self.single_modality[name] for name in SINGLE_MODALITY_RUNS)
        return text_and_photo(self.truth, self.clean_table, text_only, photo_only, self.predictor.threshold)

    def _named(self, record: dict[str, Any]) -> dict[str, Any]:
        return record | {"base": self.base.name if self.base else None}


# ---------------------------------------------------------------------------------------------- photos that decode
@dataclass(frozen=True)
class UndecodedPhotos:
    """Photos none of which decodes: how many there are (all of them tried) and the first failure (``None``: there
    is no photo)."""

    tried: int
    first_error: ImageDecodeError | None


def undecoded_photos(frame: pd.DataFrame) -> UndecodedPhotos | None:
    """``None`` when one of the photos of ``frame`` decodes, else what was tried. They are decoded in order until one
    does: one decode on a sound catalogue, at a small size (only whether it decodes matters)."""
    tried, first_error = 0, None
    for product_id, source in zip(frame["product_id"], frame["image"], strict=True):
        if is_missing(source):
            continue
        tried += 1
        try:
            load_image(source, product_id=str(product_id), max_side=DECODABILITY_SIDE)
        except ImageDecodeError as error:
            first_error = first_error or error
        else:
            return None
    return UndecodedPhotos(tried, first_error)

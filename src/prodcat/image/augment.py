"""Photo augmentation: random variants for training, deterministic views for test time.

Training: :class:`RandomAugment` draws a rotation, a horizontal flip, a zoom
(random crop then resize back) and a colour jitter from the generator it is given,
so a seeded view is reproducible (``benchmarks/image_head.py finetune`` trains on them).

Test time: :func:`tta_views` gives the flipped and zoomed views whose
embeddings are averaged (see ``tta`` of the ``effnet_lite0`` extractor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

#: the fill of a product photo's backdrop: corners a rotation uncovers, a square's padding
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class RandomAugment:
    """A random photometric and geometric variant of a product photo.

    Attributes:
        max_rotation: rotations are uniform in ``[-max_rotation, max_rotation]`` degrees
            (corners filled white, like a product backdrop).
        flip_probability: chance of a horizontal mirror.
        min_zoom: the kept crop covers ``[min_zoom, 1]`` of each side (then resized back).
        jitter: brightness, contrast and saturation factors are uniform in ``[1 - jitter, 1 + jitter]``.
    """

    max_rotation: float = 15.0
    flip_probability: float = 0.5
    min_zoom: float = 0.8
    jitter: float = 0.2

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        if rng.random() < self.flip_probability:
            img = ImageOps.mirror(img)
        if self.max_rotation:
            angle = rng.uniform(-self.max_rotation, self.max_rotation)
            img = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=WHITE)
        zoom = rng.uniform(self.min_zoom, 1.0)
        if zoom < 1.0:
            width, height = round(img.width * zoom), round(img.height * zoom)
            left = int(rng.integers(0, img.width - width + 1))
            top = int(rng.integers(0, img.height - height + 1))
            img = img.resize(img.size, Image.Resampling.BILINEAR, box=(left, top, left + width, top + height))
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(rng.uniform(1 - self.jitter, 1 + self.jitter))
        return img


def tta_views(img: Image.Image, zoom: float = 0.0) -> list[Image.Image]:
    """Deterministic views averaged at test time: the photo and its mirror, plus (if
    ``zoom > 0``) the central crop covering ``1 - zoom`` of each side, and its mirror."""
    views = [img, ImageOps.mirror(img)]
    if zoom > 0:
        width, height = round(img.width * (1 - zoom)), round(img.height * (1 - zoom))
        left, top = (img.width - width) // 2, (img.height - height) // 2
        central = img.crop((left, top, left + width, top + height))
        views += [central, ImageOps.mirror(central)]
    return views

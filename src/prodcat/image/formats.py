"""The photo types this installation decodes, apart from :mod:`prodcat.image.decode`, which imports numpy and
pandas: the server's settings check ``--image-types`` against them, in ``prodcat serve --workers N``'s supervisor
too, a process that loads no model and would hold those libraries for the server's life. Pillow is imported once
asked (:func:`avif_decoded`): ``prodcat serve``'s parser, built from the settings' fields, goes without it."""

from __future__ import annotations

import functools

#: our type name -> Pillow format name
PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "webp": "WEBP",
    "avif": "AVIF",
}


@functools.cache
def avif_decoded() -> bool:
    """Whether this Pillow decodes AVIF: its wheels do from version 11.3 on; older ones, or a build without
    libavif, do not (an AVIF photo is then refused, naming the format)."""
    from PIL import features

    try:
        return features.check_module("avif")
    except ValueError:  # a Pillow older than 11.3 knows no such module
        return False


def decoded_image_types() -> tuple[str, ...]:
    """The types :func:`~prodcat.image.decode.sniff_image_type` names that
    :func:`~prodcat.image.decode.load_image` decodes here."""
    return tuple(kind for kind in PIL_FORMATS if kind != "avif" or avif_decoded())


def accepted_formats() -> str:
    """``"JPEG, PNG, GIF, BMP, TIFF, WebP or AVIF"``: the formats decoded here, as users know them."""
    names = ["WebP" if kind == "webp" else PIL_FORMATS[kind] for kind in decoded_image_types()]
    return f"{', '.join(names[:-1])} or {names[-1]}"

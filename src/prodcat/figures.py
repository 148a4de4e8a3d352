"""What every figure of prodcat is drawn with: the fonts, so that CJK and emoji in category names are drawn when a
font that has them is installed (and named in one warning when none is), and the PNG ``data:`` URI reports embed.

matplotlib draws every text in DejaVu Sans unless told otherwise, and a character DejaVu Sans lacks (CJK, emoji) as
an empty box, with one warning per glyph and figure that does not say which name it was in.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import warnings
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prodcat.formatting import first_few

log = logging.getLogger(__name__)

#: fonts asked, when installed, for the glyphs DejaVu Sans lacks: CJK, then emoji in black and white (colour emoji
#: fonts are bitmaps matplotlib cannot scale)
FALLBACK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Noto Emoji",
    "Symbola",
)
#: most missing glyphs a warning names
GLYPHS_NAMED = 20


def figure_font_families(installed: Collection[str]) -> list[str]:
    """The fonts figures are drawn with: DejaVu Sans (matplotlib's own), then those of :data:`FALLBACK_FONTS`
    among the ``installed`` families, which matplotlib asks for the glyphs DejaVu Sans lacks."""
    return ["DejaVu Sans", *(family for family in FALLBACK_FONTS if family in installed)]


def installed_figure_fonts() -> list[str]:
    """:func:`figure_font_families` of the fonts matplotlib finds on this machine."""
    from matplotlib import font_manager

    return figure_font_families(font_manager.fontManager.get_font_names())


def missing_glyphs(texts: Iterable[str], families: Sequence[str]) -> list[str]:
    """The characters of ``texts`` that no font of ``families`` has, in order of first appearance (spaces and
    invisible characters aside)."""
    from matplotlib import font_manager

    charmaps = [
        _charmap(
            font_manager.fontManager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        )
        for family in families
    ]
    characters = dict.fromkeys(c for text in texts for c in text if c.isprintable() and not c.isspace())
    return [c for c in characters if not any(ord(c) in charmap for charmap in charmaps)]


@functools.cache
def _charmap(font_path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_path).get_charmap())


@contextmanager
def figure_fonts(names: Iterable[str], drawn_on: str) -> Iterator[None]:
    """Draw (create and save) figures with :func:`installed_figure_fonts`; warn once of the characters of the
    category ``names`` none of them has, naming them and the figures they are ``drawn_on`` ("the maps"), in place of
    matplotlib's warning per glyph and figure."""
    import matplotlib

    families = installed_figure_fonts()
    if missing := missing_glyphs(names, families):
        named = first_few([f"{c} (U+{ord(c):04X})" for c in missing], GLYPHS_NAMED)
        log.warning(
            "%s of the category names drawn as empty boxes on %s: no installed font has them (fonts used: %s; a font "
            "among %s, e.g. Debian's fonts-noto-cjk, is used once installed)",
            named, drawn_on, ", ".join(families), ", ".join(FALLBACK_FONTS),
        )  # fmt: skip
    with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # said once, above
        yield


def figure_png(fig: Any, dpi: int) -> bytes:
    """A matplotlib figure as PNG bytes, ``dpi`` pixels per inch of its size (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure_data_uri(fig: Any, dpi: int) -> str:
    """A matplotlib figure as a PNG ``data:`` URI (the figure is closed)."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi)).decode()

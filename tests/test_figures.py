"""The fonts of every figure with category names (explore maps, confusion matrix, audit class charts): DejaVu Sans,
then any installed CJK or emoji font; glyphs none has named in one warning, not one matplotlib warning per glyph."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest

from prodcat import figures

#: category names of glyphs DejaVu Sans lacks (CJK, emoji) beside plain ones
NAMES = ["服装", "Shoes 👟", "Bags"]


@pytest.fixture
def only_dejavu_sans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Figures drawn as on a machine with no CJK nor emoji font (this one, CI's), whatever this machine has; the
    characters of :data:`NAMES` DejaVu Sans lacks."""
    monkeypatch.setattr(figures, "installed_figure_fonts", lambda: ["DejaVu Sans"])
    missing = figures.missing_glyphs(NAMES, ["DejaVu Sans"])
    assert missing == ["服", "装", "👟"]
    return missing


@pytest.fixture
def fallback_font(monkeypatch: pytest.MonkeyPatch) -> str:
    """matplotlib's fonts as on a machine with Noto Sans CJK JP installed, played by STIXGeneral's file (matplotlib
    ships no CJK font); a character that font has and DejaVu Sans lacks."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    manager = font_manager.fontManager
    # the files matplotlib ships, not a font-cache look-up: a cache built beside a matplotlib since removed (another
    # virtual environment's) lists no STIXGeneral, and findfont refuses it
    stix, dejavu = (
        str(Path(matplotlib.get_data_path(), "fonts/ttf", name)) for name in ("STIXGeneral.ttf", "DejaVuSans.ttf")
    )
    installed = copy.copy(manager)  # a font manager of its own: none of the real one's cached look-ups
    installed.ttflist = [*manager.ttflist, font_manager.FontEntry(fname=stix, name="Noto Sans CJK JP", size="scalable")]
    monkeypatch.setattr(font_manager, "fontManager", installed)
    only_fallback = set(FT2Font(stix).get_charmap()) - set(FT2Font(dejavu).get_charmap())
    return next(chr(code) for code in sorted(only_fallback) if chr(code).isalpha())


def _glyph_warnings(recwarn: pytest.WarningsRecorder) -> list[str]:
    return [str(warning.message) for warning in recwarn if "missing from font" in str(warning.message)]


def _box_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "empty boxes" in record.getMessage()]


def test_confusion_matrix_names_the_glyphs_no_font_has_in_one_warning(only_dejavu_sans, tmp_path, caplog, recwarn):
    """The confusion matrix drew a CJK or emoji category name as empty boxes with one matplotlib warning per glyph
    (6 for 3 glyphs), naming no category; it now warns once, naming each glyph."""
    from prodcat.evaluate.report import plot_confusion

    truth = np.array(NAMES * 4)
    with caplog.at_level(logging.WARNING, logger="prodcat.figures"):
        plot_confusion(truth, np.roll(truth, 1), tmp_path / "confusion_matrix.png")
    (warned,) = _box_warnings(caplog)
    assert all(f"{c} (U+{ord(c):04X})" in warned for c in only_dejavu_sans) and "confusion matrix" in warned
    assert not _glyph_warnings(recwarn)
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0


def test_audit_class_charts_name_the_glyphs_no_font_has_in_one_warning(
    only_dejavu_sans, tmp_path, caplog, recwarn, make_products
):
    """The audit's class charts drew CJK or emoji category names as empty boxes with one matplotlib warning per glyph
    and level; they now warn once, naming each glyph."""
    from prodcat.catalog.audit import audit_catalog, write_audit_report
    from prodcat.catalog.schema import Catalog

    frame = make_products([f"product number {i}" for i in range(12)], [f"Shop > {NAMES[i % 3]}" for i in range(12)])
    result = audit_catalog(Catalog(frame=frame, source="crafted", format="csv"), images=False, progress=False)
    with caplog.at_level(logging.WARNING, logger="prodcat.figures"):
        html_path = write_audit_report(result, tmp_path)[1]
    (warned,) = _box_warnings(caplog)
    assert all(f"{c} (U+{ord(c):04X})" in warned for c in only_dejavu_sans) and "class charts" in warned
    assert not _glyph_warnings(recwarn)
    assert html_path.read_text(encoding="utf-8").count("data:image/png;base64,") >= 2  # both levels charted


def test_an_installed_fallback_font_follows_dejavu_sans(fallback_font, tmp_path, caplog, recwarn):
    """An installed CJK font is asked, after DejaVu Sans, for the glyphs DejaVu Sans lacks: those it has are not
    said to be drawn as boxes, the others are."""
    import matplotlib.pyplot as plt

    from prodcat.evaluate.report import confusion_figure

    assert figures.installed_figure_fonts() == ["DejaVu Sans", "Noto Sans CJK JP"]
    names = [f"Shop {fallback_font}", "服装"]
    assert figures.missing_glyphs(names, figures.installed_figure_fonts()) == ["服", "装"]
    with caplog.at_level(logging.WARNING, logger="prodcat.figures"), figures.figure_fonts(names, "the test figure"):
        figure = confusion_figure(np.array(names), np.array(names))
        assert all(
            label.get_fontfamily() == ["DejaVu Sans", "Noto Sans CJK JP"] for label in figure.axes[0].get_yticklabels()
        )
        figure.savefig(Path(tmp_path) / "drawn.png")
    plt.close(figure)
    (warned,) = _box_warnings(caplog)
    assert "服 (U+670D), 装 (U+88C5) of the category names" in warned and fallback_font not in warned
    assert "fonts used: DejaVu Sans, Noto Sans CJK JP" in warned
    assert not _glyph_warnings(recwarn)

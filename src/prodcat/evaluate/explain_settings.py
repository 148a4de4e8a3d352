"""What an explanation may cost (:class:`ExplainSettings`): apart from :mod:`prodcat.evaluate.explain`, which imports
pandas and Pillow, so that ``prodcat explain``'s parser states its defaults without them."""

from __future__ import annotations

from dataclasses import dataclass

#: a photo no square of which (or a text no word of which) moves the predicted category's probability by this much
#: does not matter to it; here so that the API's schemas can state it without importing the explanation's libraries
NEGLIGIBLE_DROP = 0.01


@dataclass(frozen=True)
class ExplainSettings:
    """How much an explanation may cost: at most ``max_words + (grid - patch_cells + 1)²`` model rows."""

    #: distinct words explained, in reading order (title, then description); later words get no weight
    max_words: int = 60
    #: cells per side of the photo lattice; the heatmap is ``(grid, grid)``
    grid: int = 8
    #: side of the grey square, in cells (stride one cell)
    patch_cells: int = 2
    #: longest side, in pixels, the photo is decoded at for occlusion (bounds memory: one copy per square)
    photo_side: int = 512
    #: RGB grey of the occluding square
    fill: tuple[int, int, int] = (128, 128, 128)

    def __post_init__(self) -> None:
        if self.max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {self.max_words}")
        if not 1 <= self.patch_cells < self.grid:
            raise ValueError(f"need 1 <= patch_cells < grid, got patch_cells={self.patch_cells}, grid={self.grid}")

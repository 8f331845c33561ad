"""The blurriest region of a photo: the blur effect of :mod:`.score` measured tile by tile.

A sharp street with one motion-blurred car scores sharp as a whole: the car is a small part
of the frame's neighbouring-pixel contrast. So the same measure is also taken on tiles of
1/8 of the shorter side (on the half-size luminance the whole score uses), overlapping by
half, and the blurriest tile *with detail* is the photo's blurriest region. A tile without
detail (a mean neighbouring-pixel difference under :data:`DETAIL_FLOOR`: sky, a wall) reads
as blurry to this measure and says nothing, so it is left out.

Naturally soft parts of sharp photos (clouds, out-of-focus backgrounds, smooth surfaces) also
score high on a tile, higher than the whole frame does; :data:`REGION_MARGIN` is how much
blurrier than ``--threshold`` a region must be to count, chosen on sharp photos
(``python bench/blur_region.py``; figures in bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tiles are this fraction of the shorter side (in cells of half a tile: tiles overlap by half).
TILES_PER_SHORT_SIDE = 8
#: The smallest cell, in pixels of the measured (half-size) image: tiles of 16 px at least.
MIN_CELL = 8
#: A tile with a smaller mean neighbouring-pixel difference has no detail to measure.
DETAIL_FLOOR = 1.0 / 255
#: A region counts as blurry when its score is above ``threshold + REGION_MARGIN``.
REGION_MARGIN = 0.30
#: Lines per strip: bounds the temporary arrays to a few strips of the image.
_STRIP_CELLS = 16


@dataclass(frozen=True)
class Region:
    """The blurriest tile with detail: its ``score`` (0 sharp .. 1 blurry) and where it lies,
    ``x, y, width, height`` in pixels of the image measured (full size)."""

    score: float
    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, object]:
        return {"score": round(self.score, 4), "x": self.x, "y": self.y, "width": self.width, "height": self.height}


def blurriest_region(grey: np.ndarray, taps: int, scale: int, box_filter) -> Region | None:
    """The blurriest tile of ``grey`` (the luminance the whole score measured, ``scale`` image
    pixels per sample) with detail; None when the image is too small for two tiles a side or
    no tile has detail. ``box_filter(lines, taps)``: the re-blur of :mod:`.score`."""
    cell = max(MIN_CELL, min(grey.shape) // (2 * TILES_PER_SHORT_SIDE))
    if min(grey.shape) // cell < 3:  # under 2 overlapping tiles a side: the whole score says it all
        return None
    rows_d, rows_v = _cell_sums(grey, taps, cell, box_filter)
    cols_d, cols_v = (a.T for a in _cell_sums(np.ascontiguousarray(grey.T), taps, cell, box_filter))
    ny, nx = min(rows_d.shape[0], cols_d.shape[0]), min(rows_d.shape[1], cols_d.shape[1])
    tiles = [_tile_sums(a[:ny, :nx]) for a in (rows_d, rows_v, cols_d, cols_v)]
    d_rows, v_rows, d_cols, v_cols = tiles
    detail = (d_rows + d_cols) / (2 * (2 * cell) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.fmax((d_rows - v_rows) / d_rows, (d_cols - v_cols) / d_cols)
    score = np.where(detail >= DETAIL_FLOOR, score, np.nan)
    if not np.isfinite(score).any():
        return None
    ty, tx = np.unravel_index(int(np.nanargmax(score)), score.shape)
    side = 2 * cell * scale
    return Region(float(score[ty, tx]), int(tx * cell * scale), int(ty * cell * scale), side, side)


def _cell_sums(grey: np.ndarray, taps: int, cell: int, box_filter) -> tuple[np.ndarray, np.ndarray]:
    """Sums of D and V (see :mod:`.score`) along axis 1 over cells of ``cell x cell``
    samples (full cells only), computed strip by strip."""
    ny, nx = grey.shape[0] // cell, (grey.shape[1] - 1) // cell
    edges = np.arange(nx) * cell
    d_sums, v_sums = np.zeros((ny, nx)), np.zeros((ny, nx))
    step = _STRIP_CELLS * cell
    for y0 in range(0, ny * cell, step):
        lines = grey[y0 : min(y0 + step, ny * cell)]
        d = np.abs(np.diff(lines, axis=1))[:, : nx * cell]
        db = np.abs(np.diff(box_filter(lines, taps), axis=1))[:, : nx * cell]
        v = np.maximum(d - db, 0.0)
        rows = slice(y0 // cell, y0 // cell + lines.shape[0] // cell)
        for sums, part in ((d_sums, d), (v_sums, v)):
            across = np.add.reduceat(part.astype(np.float64), edges, axis=1)
            sums[rows] = across.reshape(-1, cell, nx).sum(axis=1)
    return d_sums, v_sums


def _tile_sums(cells: np.ndarray) -> np.ndarray:
    """Sums over tiles of 2 x 2 cells, one cell apart (tiles overlap by half)."""
    return cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]

"""Tile planning, padding indices and blended stitching (no model knowledge).

A large image is processed as overlapping tiles. Each tile's output is
multiplied by a smooth window that ramps up over the overlap with its
neighbours, accumulated into a full-size buffer together with the window
itself, and the sum is finally divided by the accumulated weights. Because
every window is strictly positive, the normalisation is always defined, and a
model that returns its input reproduces the input (up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Tile:
    """Half-open box ``[y0, y1) x [x0, x1)`` in image coordinates."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def _starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, length)``, spread evenly.

    Neighbours overlap by at least ``overlap`` pixels and every start is a
    multiple of ``align`` (which must divide ``length - tile``).
    """
    if tile >= length:
        return [0]
    last = length - tile
    if last % align:
        raise ValueError(f"align={align} must divide image size - tile ({last})")
    stride = (tile - overlap) // align  # in units of ``align``
    if stride < 1:
        raise ValueError(f"tile - overlap must be at least align={align}")
    units = last // align
    gaps = -(-units // stride)
    # floor(i * units / gaps) steps by at most ceil(units / gaps) <= stride units, so every
    # overlap is at least ``overlap`` and the steps differ by at most one unit.
    return [align * ((i * units) // gaps) for i in range(gaps + 1)]


def plan_tiles(
    height: int, width: int, tile: int | tuple[int, int], overlap: int, align: int = 1
) -> list[Tile]:
    """Cover a ``height x width`` image with tiles of at most ``tile`` pixels per side.

    ``tile`` is a side or a ``(tile_height, tile_width)`` pair. Every pixel is
    covered; neighbouring tiles overlap by at least ``overlap`` pixels whenever
    the image is larger than one tile. Tiles are spread evenly (each is exactly
    ``min(tile, side)`` pixels per side) and start at multiples of ``align``,
    which must then divide ``height - tile`` and ``width - tile`` where those are
    positive (the engine aligns tiles to the model's size multiple so that
    strided layers sample the same grid as on the whole image). Row-major order.
    """
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if th < 1 or tw < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    if not 0 <= overlap < min(th, tw):
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap} tile={tile}")
    if align < 1:
        raise ValueError(f"align must be positive, got {align}")
    ys = _starts(height, th, overlap, align)
    xs = _starts(width, tw, overlap, align)
    return [Tile(y, x, min(y + th, height), min(x + tw, width)) for y in ys for x in xs]


def fit_tile(length: int, tile: int, overlap: int, align: int = 1) -> int:
    """The smallest tile side (a multiple of ``align``, <= ``tile``) that needs as few tiles
    along an axis of ``length`` pixels as ``tile`` does: avoids processing a mostly
    redundant last tile (e.g. 1504 px with 1248 px tiles becomes two 784 px tiles).
    """
    if tile >= length:
        return tile  # one tile; plan_tiles clips it to the image
    count = -(-(length - overlap) // (tile - overlap))
    fitted = -(-(length - overlap) // count) + overlap
    return min(tile, padded_size(fitted, align))


#: Weight of the pixels a ramp skips (outermost part of the overlap): small but > 0.
FLOOR = 1e-3


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool, ramp: float) -> torch.Tensor:
    """1-D window: raised-cosine ramps at the chosen ends, 1 elsewhere.

    The ramp spans the central ``ramp`` fraction of the ``overlap`` pixels; the
    outer part keeps a small floor weight, because a tile's output is least
    accurate next to its own edge (the network sees no context past it).
    """
    w = torch.ones(length, dtype=torch.float64)
    n = min(overlap, length // 2) if (ramp_start and ramp_end) else min(overlap, length)
    if n <= 0:
        return w
    r = max(1, min(n, round(n * ramp)))
    skip = (n - r) // 2
    # Sampled at pixel centres, so a ramp and its mirror image sum to exactly one
    # where two neighbours overlap by ``n`` pixels.
    t = (torch.arange(r, dtype=torch.float64) + 0.5) / r
    up = torch.ones(n, dtype=torch.float64)
    up[:skip] = 0.0
    up[skip : skip + r] = 0.5 - 0.5 * torch.cos(math.pi * t)
    up = up.clamp(min=FLOOR)
    if ramp_start:
        w[:n] = up
    if ramp_end:
        w[length - n :] = torch.minimum(w[length - n :], up.flip(0))
    return w


def blend_window(
    h: int,
    w: int,
    overlap: int,
    top: bool = True,
    bottom: bool = True,
    left: bool = True,
    right: bool = True,
    ramp: float = 1.0,
) -> torch.Tensor:
    """Blending weights for one ``h x w`` tile, as a float32 ``(h, w)`` tensor, > 0 everywhere.

    Each flagged side ramps from near 0 to 1 (raised cosine) over the central
    ``ramp`` fraction of its ``overlap`` pixels; sides on the image border
    should not be flagged, so they keep full weight.
    """
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"ramp must be in (0, 1], got {ramp}")
    wy = _ramp(h, overlap, top, bottom, ramp)
    wx = _ramp(w, overlap, left, right, ramp)
    return torch.outer(wy, wx).to(torch.float32)


def tile_window(t: Tile, height: int, width: int, overlap: int, ramp: float = 1.0) -> torch.Tensor:
    """The blend window of tile ``t`` in a ``height x width`` image (no ramp on image borders)."""
    return blend_window(
        t.height,
        t.width,
        overlap,
        top=t.y0 > 0,
        bottom=t.y1 < height,
        left=t.x0 > 0,
        right=t.x1 < width,
        ramp=ramp,
    )


class Stitcher:
    """Accumulates weighted tile outputs into an ``H x W x C`` float32 numpy array.

    The output array is allocated once and normalised in place, so stitching a
    large photo costs one output array plus one ``H x W`` weight map.
    """

    def __init__(self, height: int, width: int, channels: int = 3) -> None:
        self.height = height
        self.width = width
        self.out = np.zeros((height, width, channels), dtype=np.float32)
        self._acc = torch.from_numpy(self.out)  # shares memory with ``out``
        self._weight = torch.zeros(height, width, dtype=torch.float32)

    def add(self, t: Tile, values: torch.Tensor, window: torch.Tensor) -> None:
        """Add ``values`` (``C x h x w`` for tile ``t``) weighted by ``window`` (``h x w``)."""
        values = values.to(torch.float32)
        self._acc[t.y0 : t.y1, t.x0 : t.x1] += (values * window).permute(1, 2, 0)
        self._weight[t.y0 : t.y1, t.x0 : t.x1] += window

    def result(self, clip: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
        """Normalise by the accumulated weights (in place) and return the array."""
        if bool((self._weight <= 0).any()):
            raise ValueError("some pixels were not covered by any tile")
        self._acc.div_(self._weight.unsqueeze(-1))
        if clip is not None:
            self._acc.clamp_(clip[0], clip[1])
        self._weight = torch.empty(0)
        return self.out


def reflect_indices(n: int, stop: int, start: int = 0) -> np.ndarray:
    """Indices into ``[0, n)`` for virtual positions ``start..stop-1`` of a reflect-padded axis.

    Positions inside ``[0, n)`` map to themselves; positions past either end
    mirror without repeating the edge pixel (like ``F.pad(mode="reflect")``),
    and keep mirroring for pads longer than the axis (a triangle wave), so even
    a 1-pixel axis can be padded (it repeats its only pixel).
    """
    pos = np.arange(start, stop, dtype=np.int64)
    if n == 1:
        return np.zeros_like(pos)
    period = 2 * (n - 1)
    pos = np.mod(pos, period)
    return np.where(pos < n, pos, period - pos)


def padded_size(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-n // multiple) * multiple


def pad_to_multiple(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad an ``H x W x C`` array at the bottom and right up to multiples of ``multiple``.

    The one size-multiple padding of the package: the same reflection as the engine's tiles
    (:func:`reflect_indices`), so even a 1-pixel image can be padded. Returns ``rgb``
    itself when no padding is needed; crop the result back with ``[:H, :W]``.
    """
    h, w = rgb.shape[:2]
    hp, wp = padded_size(h, multiple), padded_size(w, multiple)
    if (hp, wp) == (h, w):
        return rgb
    return rgb[np.ix_(reflect_indices(h, hp), reflect_indices(w, wp))]

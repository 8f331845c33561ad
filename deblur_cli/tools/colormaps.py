"""Colour maps for attention heatmaps, without a plotting dependency.

Each map is a handful of (position, RGB) control points; values in between are
linearly interpolated into a 256-entry lookup table. The control points are
sampled from the well-known maps they are named after, so the look is close to
the originals but not identical.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from deblur_cli.errors import UsageError

ControlPoints = tuple[tuple[float, tuple[float, float, float]], ...]

#: Control points (position in [0, 1], RGB in [0, 1]). Every map runs low -> high.
COLORMAPS: dict[str, ControlPoints] = {
    # Perceptual rainbow, blue low / red high like the paper's figures.
    "turbo": (
        (0.0, (0.190, 0.072, 0.232)),
        (0.1, (0.270, 0.380, 0.830)),
        (0.2, (0.220, 0.620, 0.990)),
        (0.3, (0.090, 0.830, 0.820)),
        (0.4, (0.300, 0.970, 0.500)),
        (0.5, (0.640, 0.990, 0.230)),
        (0.6, (0.880, 0.870, 0.210)),
        (0.7, (0.990, 0.660, 0.160)),
        (0.8, (0.950, 0.410, 0.090)),
        (0.9, (0.800, 0.190, 0.020)),
        (1.0, (0.480, 0.016, 0.011)),
    ),
    # The classic (not perceptually uniform) rainbow.
    "jet": (
        (0.0, (0.0, 0.0, 0.5)),
        (0.125, (0.0, 0.0, 1.0)),
        (0.375, (0.0, 1.0, 1.0)),
        (0.625, (1.0, 1.0, 0.0)),
        (0.875, (1.0, 0.0, 0.0)),
        (1.0, (0.5, 0.0, 0.0)),
    ),
    "viridis": (
        (0.0, (0.267, 0.005, 0.329)),
        (0.125, (0.283, 0.141, 0.458)),
        (0.25, (0.229, 0.322, 0.546)),
        (0.375, (0.172, 0.449, 0.558)),
        (0.5, (0.128, 0.567, 0.551)),
        (0.625, (0.135, 0.659, 0.518)),
        (0.75, (0.369, 0.789, 0.383)),
        (0.875, (0.678, 0.864, 0.190)),
        (1.0, (0.993, 0.906, 0.144)),
    ),
    "inferno": (
        (0.0, (0.001, 0.000, 0.014)),
        (0.125, (0.157, 0.045, 0.329)),
        (0.25, (0.341, 0.062, 0.429)),
        (0.375, (0.550, 0.161, 0.406)),
        (0.5, (0.735, 0.216, 0.330)),
        (0.625, (0.902, 0.364, 0.198)),
        (0.75, (0.978, 0.557, 0.035)),
        (0.875, (0.978, 0.800, 0.250)),
        (1.0, (0.988, 0.998, 0.645)),
    ),
    "gray": (
        (0.0, (0.0, 0.0, 0.0)),
        (1.0, (1.0, 1.0, 1.0)),
    ),
}

LUT_SIZE = 256


def colormap_names() -> tuple[str, ...]:
    return tuple(COLORMAPS)


@cache
def colormap_lut(name: str) -> np.ndarray:
    """The (256, 3) uint8 lookup table of a named map; UsageError for unknown names."""
    points = COLORMAPS.get(name)
    if points is None:
        raise UsageError(
            f"unknown colormap {name!r}: choose one of {', '.join(colormap_names())}"
        )
    positions = np.array([p for p, _ in points], dtype=np.float64)
    colours = np.array([c for _, c in points], dtype=np.float64)
    grid = np.linspace(0.0, 1.0, LUT_SIZE)
    lut = np.stack([np.interp(grid, positions, colours[:, k]) for k in range(3)], axis=1)
    out = np.round(lut * 255.0).astype(np.uint8)
    out.setflags(write=False)  # cached and shared between callers
    return out


def apply_colormap(values: np.ndarray, name: str) -> np.ndarray:
    """Map values in [0, 1] (any shape; NaN and out-of-range are clipped) to uint8 RGB (..., 3)."""
    lut = colormap_lut(name)
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    idx = np.rint(np.clip(v, 0.0, 1.0) * (LUT_SIZE - 1)).astype(np.intp)
    return lut[idx]

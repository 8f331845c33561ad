"""Pictures of attention for `deblur attention-map`: heatmaps, overlays, the summary figure.

Pure rendering from arrays to uint8 pictures (no files, no model): the command in
:mod:`deblur_cli.tools.attention` decides what to draw and writes through :mod:`deblur_cli.files.image_io`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deblur_cli.files.image_io import to_uint8
from deblur_cli.tools.colormaps import apply_colormap, colormap_lut

MapKey = tuple[int, str]  # (scale index, 0 = coarsest; block name)

PANEL_SIZE = 320  # summary panels fit in a PANEL_SIZE x PANEL_SIZE box
MAX_COLUMNS = 6  # longer summary rows wrap
OVERLAY_ALPHA = 0.5
# Display contrast stretch: robust to a few extreme pixels.
STRETCH_PERCENTILES = (1.0, 99.0)


def display_values(values: np.ndarray, normalize: bool) -> np.ndarray:
    """Map attention values to [0, 1] for display (percentile stretch, or as is when flat)."""
    if not normalize:
        return np.clip(values, 0.0, 1.0)
    lo, hi = np.percentile(values, STRETCH_PERCENTILES)
    if hi - lo < 1e-6:  # a (nearly) constant map: show its absolute level
        return np.clip(values, 0.0, 1.0)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def render_heatmap(values: np.ndarray, colormap: str, normalize: bool = True) -> np.ndarray:
    """H x W attention -> H x W x 3 uint8 heatmap."""
    return apply_colormap(display_values(values, normalize), colormap)


def render_overlay(
    rgb: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA
) -> np.ndarray:
    """Alpha-blend a uint8 heatmap over a float [0, 1] image; returns uint8."""
    return to_uint8((1.0 - alpha) * np.clip(rgb, 0.0, 1.0) + alpha * (heatmap.astype(np.float32) / 255.0))


@dataclass(frozen=True)
class Panel:
    """One labelled picture of the summary figure."""

    label: str
    image: np.ndarray  # uint8 H x W x 3


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: bitmap font
        return ImageFont.load_default()


def _panel_size(h: int, w: int) -> tuple[int, int]:
    s = PANEL_SIZE / max(h, w)
    return max(1, round(w * s)), max(1, round(h * s))


def render_summary(rows: list[list[Panel]], title: str, colormap: str, legend: str) -> Image.Image:
    """Grid of labelled panels (one list per row), a title and a low-high colour bar."""
    font, title_font = _font(14), _font(16)
    margin, gap, label_h, title_h, bar_h = 12, 8, 20, 28, 44
    h, w = rows[0][0].image.shape[:2]
    pw, ph = _panel_size(h, w)
    cols = max(len(r) for r in rows)
    width = max(2 * margin + cols * pw + (cols - 1) * gap, 2 * margin + 360)
    height = title_h + margin + len(rows) * (label_h + ph + gap) + bar_h + margin
    fig = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(fig)
    draw.text((margin, margin // 2), title, fill="black", font=title_font)
    y = title_h + margin
    for row in rows:
        for i, panel in enumerate(row):
            x = margin + i * (pw + gap)
            draw.text((x, y + 2), panel.label, fill="black", font=font)
            picture = Image.fromarray(panel.image).resize(
                (pw, ph), Image.Resampling.BILINEAR, reducing_gap=2.0
            )
            fig.paste(picture, (x, y + label_h))
        y += label_h + ph + gap
    _draw_colour_bar(fig, draw, (margin, y + 4), colormap, legend, font)
    return fig


def _draw_colour_bar(
    fig: Image.Image,
    draw: ImageDraw.ImageDraw,
    at: tuple[int, int],
    colormap: str,
    legend: str,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    x, y = at
    bar_w, bar_h = 256, 12
    bar = np.repeat(colormap_lut(colormap)[None], bar_h, axis=0)
    draw.text((x, y), "low", fill="black", font=font)
    fig.paste(Image.fromarray(bar), (x + 36, y + 3))
    draw.text((x + 36 + bar_w + 6, y), "high", fill="black", font=font)
    draw.text((x, y + bar_h + 8), legend, fill="dimgray", font=font)


def _label(key: MapKey, values: np.ndarray, all_scales: bool) -> str:
    s, b = key
    where = f"{b} s{s}" if all_scales else b
    return f"{where}  ({float(values.min()):.3f}-{float(values.max()):.3f})"


def summary_rows(
    rgb: np.ndarray,
    deblurred: np.ndarray,
    heatmaps: dict[MapKey, np.ndarray],
    spatial: dict[MapKey, np.ndarray],
    all_scales: bool,
) -> list[list[Panel]]:
    rows = [[Panel("input", to_uint8(rgb)), Panel("deblurred", to_uint8(deblurred))]]
    for s in sorted({k[0] for k in heatmaps}, reverse=True):  # finest first
        for side in ("enc", "dec"):
            keys = [k for k in heatmaps if k[0] == s and k[1].startswith(side)]
            row = [Panel(_label(k, spatial[k], all_scales), heatmaps[k]) for k in keys]
            rows.extend(row[i : i + MAX_COLUMNS] for i in range(0, len(row), MAX_COLUMNS))
    return rows


def channel_csv(channel: dict[MapKey, np.ndarray]) -> bytes:
    """Channel-attention weights as CSV rows: scale, block, channel, weight."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scale", "block", "channel", "weight"])
    for (s, b), weights in channel.items():
        writer.writerows([s, b, i, f"{float(v):.6f}"] for i, v in enumerate(weights))
    return buf.getvalue().encode("utf-8")


def save_npy(f: IO[bytes], values: np.ndarray) -> None:
    """A map as ``.npy`` (float32 in [0, 1]), never pickled."""
    np.save(f, values, allow_pickle=False)

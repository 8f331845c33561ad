"""``deblur attention-map``: where the network looks.

For each chosen residual attention block (paper numbering: encoder blocks
enc1..enc9, decoder blocks dec1..dec9) the spatial attention map is upsampled
to the image size and written as a colour heatmap, as an overlay on the input,
and into one summary figure laid out like the paper's Fig. 8 (input, deblurred
output, encoder maps, decoder maps). ``raw`` also writes the maps as ``.npy``
and the channel-attention weights as CSV.

Large images are downscaled (not tiled) so that their long side is at most
``max_side``: channel attention pools over whatever the network sees, so
separately processed tiles would get different channel weights and the stitched
maps would show seams; one pass keeps the maps comparable across the picture.
Every output is then at the downscaled size, and the result carries a note.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from deblur_cli.colormaps import apply_colormap, colormap_lut, colormap_names
from deblur_cli.errors import OutputError, ResourceError, UsageError
from deblur_cli.engine import resolve_device
from deblur_cli.fsutil import atomic_path, same_file
from deblur_cli.image_io import load_image
from deblur_cli.model import AttentiveDeblurNet, ModelConfig

#: The blocks of the paper's Fig. 8: 2nd, 5th and 8th encoder and decoder blocks.
DEFAULT_BLOCKS: tuple[str, ...] = ("enc2", "enc5", "enc8", "dec2", "dec5", "dec8")
SCALES: tuple[str, ...] = ("finest", "all")
MIN_SIDE_LIMIT = 16

PANEL_SIZE = 320  # summary panels fit in a PANEL_SIZE x PANEL_SIZE box
MAX_COLUMNS = 6  # longer summary rows wrap
OVERLAY_ALPHA = 0.5
JPEG_QUALITY = 92
# Display contrast stretch: robust to a few extreme pixels.
STRETCH_PERCENTILES = (1.0, 99.0)

_LOWER = "lower the maximum side for attention maps"
_BLOCK_RE = re.compile(r"^(enc|dec)(\d+)$")

MapKey = tuple[int, str]  # (scale index, 0 = coarsest; block name)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AttentionOptions:
    """What ``attention_map`` computes and writes.

    ``normalize``: stretch each heatmap between its 1st and 99th percentile for
    display (attention maps often span a narrow range); the ``.npy``
    files always keep the absolute values in [0, 1].
    """

    blocks: tuple[str, ...] = DEFAULT_BLOCKS
    scale: str = "finest"
    colormap: str = "turbo"
    raw: bool = False
    max_side: int = 2048
    normalize: bool = True

    def __post_init__(self) -> None:
        blocks = self.blocks.split(",") if isinstance(self.blocks, str) else self.blocks
        object.__setattr__(self, "blocks", tuple(b.strip() for b in blocks if b.strip()))
        if self.scale not in SCALES:
            raise UsageError(f"unknown scale {self.scale!r}: use one of {', '.join(SCALES)}")
        colormap_lut(self.colormap)  # raises UsageError naming the valid maps
        if self.max_side < MIN_SIDE_LIMIT:
            raise UsageError(
                f"max side must be at least {MIN_SIDE_LIMIT} pixels, got {self.max_side}"
            )


@dataclass
class AttentionResult:
    """Files written (in order) and notes for the user (e.g. the image was downscaled)."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- block names


def _block_range_text(blocks_per_side: int) -> str:
    n = blocks_per_side
    return f"enc1..enc{n} and dec1..dec{n}, comma-separated, or 'all'"


def _valid_block(name: str, blocks_per_side: int) -> str | None:
    """Canonical name ('enc05' -> 'enc5') or None when out of range or malformed."""
    m = _BLOCK_RE.match(name.strip().lower())
    if m is None:
        return None
    index = int(m.group(2))
    return f"{m.group(1)}{index}" if 1 <= index <= blocks_per_side else None


def parse_blocks(spec: str, blocks_per_side: int = 9) -> tuple[str, ...]:
    """Parse 'enc2,enc5,dec8' (or 'all') into validated, de-duplicated block names."""
    if blocks_per_side < 1:
        raise UsageError("this model has no residual attention blocks")
    if spec.strip().lower() == "all":
        return all_blocks(blocks_per_side)
    names = [s for s in (part.strip() for part in spec.split(",")) if s]
    if not names:
        raise UsageError(f"no blocks given: use {_block_range_text(blocks_per_side)}")
    canonical = [_valid_block(n, blocks_per_side) for n in names]
    bad = [n for n, c in zip(names, canonical) if c is None]
    if bad:
        raise UsageError(
            f"unknown block{'s' if len(bad) > 1 else ''} {', '.join(bad)}: "
            f"use {_block_range_text(blocks_per_side)}"
        )
    return tuple(dict.fromkeys(c for c in canonical if c is not None))


def all_blocks(blocks_per_side: int) -> tuple[str, ...]:
    return tuple(f"{side}{i}" for side in ("enc", "dec") for i in range(1, blocks_per_side + 1))


def check_blocks(config: ModelConfig, blocks: Iterable[str]) -> tuple[str, ...]:
    """Validate names against a model; UsageError for unknown blocks or blocks without SA."""
    blocks = tuple(blocks)
    chosen = parse_blocks(",".join(blocks), config.blocks_per_side)
    without_sa = [b for b in chosen if not _has_spatial_attention(config, b)]
    if without_sa:
        sides = sorted({"encoder" if b.startswith("enc") else "decoder" for b in without_sa})
        raise UsageError(
            f"block{'s' if len(without_sa) > 1 else ''} {', '.join(without_sa)} "
            f"{'have' if len(without_sa) > 1 else 'has'} no spatial attention in this model "
            f"({' and '.join(sides)} spatial attention is disabled); choose other blocks"
        )
    return chosen


def _has_spatial_attention(config: ModelConfig, block: str) -> bool:
    if block.startswith("enc"):
        return config.encoder_spatial_attention
    return config.decoder_spatial_attention


def _scale_indices(num_scales: int, scale: str) -> tuple[int, ...]:
    if scale == "finest":
        return (num_scales - 1,)
    if scale == "all":
        return tuple(range(num_scales))
    raise UsageError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")


# ---------------------------------------------------------------- computation


def _pad_to_multiple(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad bottom/right to a multiple; numpy reflects repeatedly, so tiny images work."""
    h, w = rgb.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return rgb
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect")


def compute_attention(
    model: AttentiveDeblurNet,
    rgb: np.ndarray,
    blocks: Iterable[str],
    scale: str,
    device: str = "cpu",
) -> tuple[np.ndarray, dict[MapKey, np.ndarray], dict[MapKey, np.ndarray]]:
    """Run the model once and collect attention of the chosen blocks.

    ``rgb``: float32 H x W x 3 in [0, 1]. Returns the deblurred image (H x W x 3,
    clipped to [0, 1]), the spatial maps keyed (scale, block) upsampled
    bilinearly to H x W (float32 in [0, 1]), and the channel-attention vectors
    (C,) keyed the same way (absent when the model has no CA). Scale 0 is the
    coarsest. ``device`` is auto, cpu, cuda or cuda:N; the model is moved there
    and left there, in its previous train/eval mode. Runs in float32.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 image, got shape {rgb.shape}")
    chosen = check_blocks(model.config, blocks)
    scales = _scale_indices(model.config.num_scales, scale)
    dev = resolve_device(device)
    h, w = rgb.shape[:2]
    padded = _pad_to_multiple(np.asarray(rgb, dtype=np.float32), model.config.size_multiple)
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.inference_mode():
            outputs, attention = model(x.to(dev), return_attention=True)
            deblurred = outputs[-1][0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()
            spatial: dict[MapKey, np.ndarray] = {}
            channel: dict[MapKey, np.ndarray] = {}
            for s in scales:
                for b in chosen:
                    att = attention[s].blocks[b]
                    assert att.spatial is not None  # check_blocks guarantees SA
                    # Upsample to the padded size first so coarse maps stay aligned, then crop.
                    up = F.interpolate(
                        att.spatial.float(), size=x.shape[-2:], mode="bilinear", align_corners=False
                    )
                    spatial[(s, b)] = up[0, 0, :h, :w].clamp(0, 1).cpu().numpy().astype(np.float32)
                    if att.channel is not None:
                        channel[(s, b)] = att.channel[0].float().cpu().numpy()
    except torch.cuda.OutOfMemoryError:
        raise ResourceError(f"out of GPU memory computing attention at {w}x{h}; {_LOWER}") from None
    except RuntimeError as e:
        if "alloc" in str(e).lower():  # CPU allocator failure
            raise ResourceError(f"out of memory computing attention at {w}x{h}; {_LOWER}") from None
        raise
    finally:
        model.train(was_training)
    return np.ascontiguousarray(deblurred), spatial, channel


# ---------------------------------------------------------------- rendering


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
    blended = (1.0 - alpha) * np.clip(rgb, 0.0, 1.0) * 255.0 + alpha * heatmap.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


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


# ---------------------------------------------------------------- files


def _load_rgb(path: Path) -> np.ndarray:
    """Float32 H x W x 3 in [0, 1], oriented; image_io raises InputError when unusable."""
    return load_image(path).rgb


def _fit_max_side(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, str | None]:
    """Downscale (antialiased) so the long side is at most ``max_side``; note when it happens."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb, None
    s = max_side / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    small = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    out = small[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32)
    note = (
        f"image downscaled from {w}x{h} to {nw}x{nh} for attention maps; "
        f"all outputs are {nw}x{nh}"
    )
    return np.ascontiguousarray(out), note


def _tag(scale: int, block: str, all_scales: bool) -> str:
    return f"{block}_s{scale}" if all_scales else block


@dataclass(frozen=True)
class _Plan:
    """Every output path, decided before any computation so conflicts fail fast."""

    heatmaps: dict[MapKey, Path]
    overlays: dict[MapKey, Path]
    arrays: dict[MapKey, Path]
    csv: Path | None
    summary: Path

    def all_paths(self) -> list[Path]:
        paths = [*self.heatmaps.values(), *self.overlays.values(), *self.arrays.values()]
        return paths + ([self.csv] if self.csv else []) + [self.summary]


def _plan(
    stem: str, out_dir: Path, keys: list[MapKey], all_scales: bool, raw: bool, with_csv: bool
) -> _Plan:
    tags = {k: _tag(*k, all_scales) for k in keys}
    return _Plan(
        heatmaps={k: out_dir / f"{stem}_{t}_heatmap.png" for k, t in tags.items()},
        overlays={k: out_dir / f"{stem}_{t}_overlay.jpg" for k, t in tags.items()},
        arrays={k: out_dir / f"{stem}_{t}.npy" for k, t in tags.items()} if raw else {},
        csv=out_dir / f"{stem}_channel_attention.csv" if raw and with_csv else None,
        summary=out_dir / f"{stem}_attention_summary.png",
    )


def _check_outputs(out_dir: Path, paths: list[Path], image_path: Path, overwrite: bool) -> None:
    """Fail before any work when an output would replace the input or an existing file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output folder is a file: {out_dir}")
    for p in paths:
        if same_file(p, image_path):
            raise OutputError(f"refusing to write over the input: {p}")
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(
            f"output exists: {existing[0]}{more}; use --overwrite to replace existing files"
        )


def _make_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out_dir}: {e.strerror or e}") from None


def _save(path: Path, write: Callable[[Path], None]) -> None:
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _save_image(path: Path, image: Image.Image | np.ndarray, **params) -> None:
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    _save(path, lambda tmp: im.save(tmp, format=fmt, **params))


def _save_npy(path: Path, values: np.ndarray) -> None:
    _save(path, lambda tmp: np.save(tmp, values.astype(np.float32), allow_pickle=False))


def _save_channel_csv(path: Path, channel: dict[MapKey, np.ndarray]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scale", "block", "channel", "weight"])
    for (s, b), weights in channel.items():
        writer.writerows([s, b, i, f"{float(v):.6f}"] for i, v in enumerate(weights))
    _save(path, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def _label(key: MapKey, values: np.ndarray, all_scales: bool) -> str:
    s, b = key
    where = f"{b} s{s}" if all_scales else b
    return f"{where}  ({float(values.min()):.3f}-{float(values.max()):.3f})"


def _summary_rows(
    rgb: np.ndarray,
    deblurred: np.ndarray,
    heatmaps: dict[MapKey, np.ndarray],
    spatial: dict[MapKey, np.ndarray],
    all_scales: bool,
) -> list[list[Panel]]:
    rows = [[Panel("input", _to_uint8(rgb)), Panel("deblurred", _to_uint8(deblurred))]]
    for s in sorted({k[0] for k in heatmaps}, reverse=True):  # finest first
        for side in ("enc", "dec"):
            keys = [k for k in heatmaps if k[0] == s and k[1].startswith(side)]
            row = [Panel(_label(k, spatial[k], all_scales), heatmaps[k]) for k in keys]
            rows.extend(row[i : i + MAX_COLUMNS] for i in range(0, len(row), MAX_COLUMNS))
    return rows


def attention_map(
    model: AttentiveDeblurNet,
    image_path: Path,
    out_dir: Path,
    options: AttentionOptions = AttentionOptions(),
    progress: Progress | None = None,
    overwrite: bool = False,
    device: str = "auto",
) -> AttentionResult:
    """Write heatmaps, overlays, a summary figure (and with ``raw`` arrays and CSV) for one image.

    Files in ``out_dir`` (created): ``<stem>_<block>[_s<k>]_heatmap.png``,
    ``<stem>_<block>[_s<k>]_overlay.jpg``, ``<stem>_attention_summary.png``;
    with ``raw`` also ``<stem>_<block>[_s<k>].npy`` and ``<stem>_channel_attention.csv``.
    ``_s<k>`` appears with ``scale="all"`` (k = 0 is the coarsest scale).
    Existing files are an OutputError unless ``overwrite``; the input is never written.
    ``device``: auto, cpu, cuda or cuda:N (the model is moved there).
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    cfg = model.config
    blocks = check_blocks(cfg, options.blocks)
    scales = _scale_indices(cfg.num_scales, options.scale)
    all_scales = options.scale == "all"
    keys = [(s, b) for s in scales for b in blocks]
    plan = _plan(image_path.stem, out_dir, keys, all_scales, options.raw, cfg.channel_attention)
    _check_outputs(out_dir, plan.all_paths(), image_path, overwrite)
    loaded = _load_rgb(image_path)
    _make_dir(out_dir)

    result = AttentionResult()
    total = 1 + len(plan.all_paths())
    done = 0

    def step(path: Path | None = None) -> None:
        nonlocal done
        done += 1
        if path is not None:
            result.files.append(path)
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    rgb, note = _fit_max_side(loaded, options.max_side)
    if note:
        result.notes.append(note)
    deblurred, spatial, channel = compute_attention(
        model, rgb, blocks, options.scale, device
    )
    step()

    heatmaps: dict[MapKey, np.ndarray] = {}
    for key in keys:
        heat = render_heatmap(spatial[key], options.colormap, options.normalize)
        heatmaps[key] = heat
        _save_image(plan.heatmaps[key], heat)
        step(plan.heatmaps[key])
        _save_image(plan.overlays[key], render_overlay(rgb, heat), quality=JPEG_QUALITY)
        step(plan.overlays[key])
        if options.raw:
            _save_npy(plan.arrays[key], spatial[key])
            step(plan.arrays[key])
    if plan.csv is not None:
        _save_channel_csv(plan.csv, channel)
        step(plan.csv)
    elif options.raw:
        result.notes.append("the model has no channel attention; no channel CSV written")

    if options.normalize:
        stretch = "each map contrast-stretched (1-99 percentile)"
    else:
        stretch = "absolute values 0-1"
    legend = f"{options.colormap}; {stretch}; labels give each map's min-max"
    title = f"{image_path.name}: spatial attention"
    rows = _summary_rows(rgb, deblurred, heatmaps, spatial, all_scales)
    figure = render_summary(rows, title, options.colormap, legend)
    _save_image(plan.summary, figure)
    step(plan.summary)
    if all_scales:
        finest = cfg.num_scales - 1
        result.notes.append(f"scale suffix _s0 is the coarsest scale, _s{finest} the finest")
    return result


__all__ = [
    "DEFAULT_BLOCKS",
    "AttentionOptions",
    "AttentionResult",
    "all_blocks",
    "attention_map",
    "check_blocks",
    "colormap_names",
    "compute_attention",
    "parse_blocks",
    "render_heatmap",
    "render_overlay",
]

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

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from deblur_cli.errors import UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import atomic_write, make_folder
from deblur_cli.files.paths import FileSet, check_output_file, check_output_folder
from deblur_cli.network import architectures
from deblur_cli.network.architectures import AttentionLayout, NetworkConfig
from deblur_cli.network.engine import out_of_memory_as_error, resolve_device
from deblur_cli.network.tiling import pad_to_multiple
from deblur_cli.progress import Progress
from deblur_cli.tools.attention_render import (
    MapKey,
    channel_csv,
    display_values,
    render_heatmap,
    render_overlay,
    render_summary,
    save_npy,
    summary_rows,
)
from deblur_cli.tools.colormaps import colormap_lut, colormap_names

if TYPE_CHECKING:
    from torch import nn

    from deblur_cli.weights import LocatedWeights

#: The blocks of the paper's Fig. 8: 2nd, 5th and 8th encoder and decoder blocks.
DEFAULT_BLOCKS: tuple[str, ...] = ("enc2", "enc5", "enc8", "dec2", "dec5", "dec8")
SCALES: tuple[str, ...] = ("finest", "all")
MIN_SIDE_LIMIT = 16
JPEG_QUALITY = 92

_LOWER = "lower the maximum side for attention maps"
_BLOCK_RE = re.compile(r"^(enc|dec)(\d+)$")


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


def layout(config: NetworkConfig) -> AttentionLayout:
    """Where the network's attention maps are, as its architecture says; UsageError for an
    architecture without attention maps."""
    arch = architectures.of(config)
    if arch.attention is None:
        raise UsageError(f"the {arch.name} architecture has no attention maps")
    return arch.attention(config)


def check_blocks(config: NetworkConfig, blocks: Iterable[str]) -> tuple[str, ...]:
    """Validate names against a model; UsageError for unknown blocks or blocks without SA."""
    blocks = tuple(blocks)
    where = layout(config)
    chosen = parse_blocks(",".join(blocks), where.blocks_per_side)
    without_sa = [b for b in chosen if not (where.encoder_spatial if b.startswith("enc") else where.decoder_spatial)]
    if without_sa:
        sides = sorted({"encoder" if b.startswith("enc") else "decoder" for b in without_sa})
        raise UsageError(
            f"block{'s' if len(without_sa) > 1 else ''} {', '.join(without_sa)} "
            f"{'have' if len(without_sa) > 1 else 'has'} no spatial attention in this model "
            f"({' and '.join(sides)} spatial attention is disabled); choose other blocks"
        )
    return chosen


def _scale_indices(num_scales: int, scale: str) -> tuple[int, ...]:
    if scale == "finest":
        return (num_scales - 1,)
    if scale == "all":
        return tuple(range(num_scales))
    raise UsageError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")


# ---------------------------------------------------------------- computation


def compute_attention(
    model: nn.Module,
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
    config = architectures.config_of(model)
    chosen = check_blocks(config, blocks)
    scales = _scale_indices(layout(config).scales, scale)
    dev = resolve_device(device)
    h, w = rgb.shape[:2]
    padded = pad_to_multiple(np.asarray(rgb, dtype=np.float32), config.size_multiple)
    x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.inference_mode(), out_of_memory_as_error(f"computing attention at {w}x{h}", _LOWER):
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
    finally:
        model.train(was_training)
    return np.ascontiguousarray(deblurred), spatial, channel


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


# ---------------------------------------------------------------- plan and run


@dataclass(frozen=True)
class AttentionPlan:
    """Every output path, decided and checked before the model runs."""

    image: Path
    out_dir: Path
    options: AttentionOptions
    weights: LocatedWeights | None  # the weights file, when the plan located it
    blocks: tuple[str, ...]
    keys: tuple[MapKey, ...]
    heatmaps: dict[MapKey, Path]
    overlays: dict[MapKey, Path]
    arrays: dict[MapKey, Path]
    csv: Path | None
    summary: Path
    overwrite: bool = False  # outputs checked while planning may be replaced

    @property
    def all_scales(self) -> bool:
        return self.options.scale == "all"

    def all_paths(self) -> list[Path]:
        paths = [*self.heatmaps.values(), *self.overlays.values(), *self.arrays.values()]
        return paths + ([self.csv] if self.csv else []) + [self.summary]


def plan_attention(
    image: Path,
    out_dir: Path,
    options: AttentionOptions,
    config: NetworkConfig | None = None,
    overwrite: bool = False,
    *,
    weights: str | os.PathLike[str] | LocatedWeights | None = None,
) -> AttentionPlan:
    """Check the input and the output folder, locate the weights, then name and check
    every output (creates nothing).

    ``config``: the architecture to be used (which blocks have spatial attention, how many
    scales, whether there is channel attention); None: read it from ``weights`` (a spec,
    None for the default weights), located only after the cheap checks passed.
    """
    image, out_dir = Path(image), Path(out_dir)
    image_io.check_readable(image)
    inputs = FileSet([image])
    check_output_folder(out_dir, inputs)
    located = None
    if config is None:
        from deblur_cli.weights import LocatedWeights, resolve

        located = weights if isinstance(weights, LocatedWeights) else resolve(None if weights is None else os.fspath(weights))
        config = located.config()
    blocks = check_blocks(config, options.blocks)
    where = layout(config)
    scales = _scale_indices(where.scales, options.scale)
    keys = tuple((s, b) for s in scales for b in blocks)
    tags = {k: (f"{k[1]}_s{k[0]}" if options.scale == "all" else k[1]) for k in keys}
    stem, raw = image.stem, options.raw
    plan = AttentionPlan(
        image, out_dir, options, located, blocks, keys,
        heatmaps={k: out_dir / f"{stem}_{t}_heatmap.png" for k, t in tags.items()},
        overlays={k: out_dir / f"{stem}_{t}_overlay.jpg" for k, t in tags.items()},
        arrays={k: out_dir / f"{stem}_{t}.npy" for k, t in tags.items()} if raw else {},
        csv=out_dir / f"{stem}_channel_attention.csv" if raw and where.channel else None,
        summary=out_dir / f"{stem}_attention_summary.png",
        overwrite=overwrite,
    )
    for path in plan.all_paths():
        check_output_file(path, inputs, overwrite, create_folder=True)
    return plan


def run_attention(
    model: nn.Module, plan: AttentionPlan, progress: Progress | None = None, device: str = "auto"
) -> AttentionResult:
    """Compute the maps of a plan and write its files (through image_io, atomically)."""
    options, result = plan.options, AttentionResult()
    loaded = image_io.load_image(plan.image).rgb
    make_folder(plan.out_dir)
    total, done = 1 + len(plan.all_paths()), 0

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
    deblurred, spatial, channel = compute_attention(model, rgb, plan.blocks, options.scale, device)
    step()
    heatmaps: dict[MapKey, np.ndarray] = {}
    for key in plan.keys:
        heatmaps[key] = render_heatmap(spatial[key], options.colormap, options.normalize)
        image_io.save_picture(plan.heatmaps[key], heatmaps[key], overwrite=plan.overwrite)
        step(plan.heatmaps[key])
        image_io.save_picture(plan.overlays[key], render_overlay(rgb, heatmaps[key]), quality=JPEG_QUALITY, overwrite=plan.overwrite)
        step(plan.overlays[key])
        if options.raw:
            values = spatial[key].astype(np.float32)
            atomic_write(plan.arrays[key], functools.partial(save_npy, values=values), overwrite=plan.overwrite)
            step(plan.arrays[key])
    if plan.csv is not None:
        atomic_write(plan.csv, lambda f: f.write(channel_csv(channel)), overwrite=plan.overwrite)
        step(plan.csv)
    elif options.raw:
        result.notes.append("the model has no channel attention; no channel CSV written")
    stretch = "each map contrast-stretched (1-99 percentile)" if options.normalize else "absolute values 0-1"
    legend = f"{options.colormap}; {stretch}; labels give each map's min-max"
    rows = summary_rows(rgb, deblurred, heatmaps, spatial, plan.all_scales)
    figure = render_summary(rows, f"{plan.image.name}: spatial attention", options.colormap, legend)
    image_io.save_picture(plan.summary, figure, overwrite=plan.overwrite)
    step(plan.summary)
    if plan.all_scales:
        finest = layout(architectures.config_of(model)).scales - 1
        result.notes.append(f"scale suffix _s0 is the coarsest scale, _s{finest} the finest")
    return result


def attention_map(
    model: nn.Module,
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
    plan = plan_attention(image_path, out_dir, options, architectures.config_of(model), overwrite)
    return run_attention(model, plan, progress, device)


__all__ = [
    "DEFAULT_BLOCKS", "AttentionOptions", "AttentionPlan", "AttentionResult", "all_blocks",
    "attention_map", "check_blocks", "colormap_names", "compute_attention", "display_values",
    "parse_blocks", "plan_attention", "render_heatmap", "render_overlay", "run_attention",
]

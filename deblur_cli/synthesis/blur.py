"""Realistic, spatially varying motion-blur synthesis from sharp photos.

A blurry photo is the average, in linear light, of the sharp scene seen through
a moving camera during the exposure. We model that directly:

* camera shake: a random trajectory (Boracchi & Foi style: inertia, random
  impulses, a pull back to the start) gives a translation per sub-frame;
* camera rotation along a smooth path: in-plane roll plus small tilts about the
  x and y axes, applied as homographies ``K R_t K^-1``, so the blur differs
  across the image (longer streaks far from the centre, keystone effects);
* independently moving objects: soft-edged blobs cut from another region of the
  photo, each with its own curved motion, composited over the background;
* sub-frames are averaged in linear light (``x ** gamma``); the target is the
  middle sub-frame, whose camera warp is the identity, so pairs are aligned;
* signal-dependent sensor noise and an optional JPEG round trip.

Variety options (off by default; :data:`VARIED` is the recommended training mix) add other
camera-path families (straight pans, tremor, jerks), GoPro-style discrete sub-frames, other
averaging gammas, zoom and off-centre rotation blur, box and star objects that turn,
Poisson-Gaussian noise in linear light, in-camera sharpening, 4:4:4 JPEG and crop scales
(:func:`random_region`). See docs/synthesis.md.

Everything is done with one batched bilinear ``grid_sample`` over all
sub-frames, which is fast enough to make training pairs on the fly on a CPU.

This module is the entry point: crops (:func:`random_region`) and :func:`synthesize`. The
configuration and strengths are in :mod:`deblur_cli.synthesis.config`, the camera paths and
the motion plan in :mod:`deblur_cli.synthesis.motion`; turning a plan into pixels (warps,
objects, noise, JPEG) is in :mod:`deblur_cli.synthesis.render`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deblur_cli.synthesis.config import SynthesisConfig, sample_strength
from deblur_cli.synthesis.motion import _MotionPlan, _plan_motion  # camera paths and the motion plan
from deblur_cli.synthesis.render import _degrade, _render  # warps, noise, JPEG

# Largest number of output pixels warped in one grid_sample call (bounds memory on big images).
_CHUNK_PIXELS = 4_000_000


def random_region(photo: np.ndarray, side: int, rng: np.random.Generator, cfg: SynthesisConfig) -> np.ndarray:
    """A random ``side x side`` region of an ``H x W x C`` photo (uint8 or float), at a random scale.

    The scale is drawn log-uniformly from ``cfg.scale_range``: a region of ``side / scale``
    pixels is cut and resized to ``side`` (area-averaged when shrinking), so the blur meets
    finer (scale < 1) or softer (scale > 1) detail per pixel than the photo has. Photos
    smaller than the region are mirrored at the edges. At scale 1 the region is cut as is.
    """
    lo, hi = cfg.scale_range
    scale = 1.0 if lo == hi == 1.0 else math.exp(rng.uniform(math.log(lo), math.log(hi)))
    src = max(1, int(round(side / scale)))
    ph, pw = max(0, src - photo.shape[0]), max(0, src - photo.shape[1])
    if ph or pw:
        photo = np.pad(photo, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")
    h, w = photo.shape[:2]
    y, x = int(rng.integers(0, h - src + 1)), int(rng.integers(0, w - src + 1))
    region = photo[y : y + src, x : x + src]
    if src == side:
        return region
    return _resize_square(region, side)


def _resize_square(region: np.ndarray, side: int) -> np.ndarray:
    if region.dtype == np.uint8:
        from PIL import Image

        return np.array(Image.fromarray(region).resize((side, side), Image.Resampling.BICUBIC))  # writable
    t = torch.from_numpy(np.ascontiguousarray(region)).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.interpolate(t, size=(side, side), mode="bicubic", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp_(0.0, 1.0).numpy().astype(region.dtype)


def _check_image(sharp: torch.Tensor, margin: int) -> None:
    if sharp.ndim != 3 or sharp.shape[0] != 3:
        raise ValueError(f"expected a 3xHxW image, got shape {tuple(sharp.shape)}")
    if sharp.shape[1] <= 2 * margin or sharp.shape[2] <= 2 * margin:
        raise ValueError(f"image {tuple(sharp.shape[1:])} is too small for a margin of {margin}")


def _subframes(
    sharp: torch.Tensor,
    rng: np.random.Generator,
    cfg: SynthesisConfig = SynthesisConfig(),
    strength: float = 0.5,
    margin: int = 0,
) -> tuple[torch.Tensor, int]:
    """All sub-frames in linear light (n, 3, h, w) and the middle index (for tests and pictures)."""
    _check_image(sharp, margin)
    h, w = sharp.shape[1] - 2 * margin, sharp.shape[2] - 2 * margin
    plan = _plan_motion(rng, cfg, strength, h, w)
    lin = sharp.float().clamp(0.0, 1.0).pow(plan.gamma)
    return _render(lin, plan, margin, range(plan.n)).transpose(0, 1), plan.middle


def synthesize(
    sharp: torch.Tensor,
    rng: np.random.Generator,
    cfg: SynthesisConfig = SynthesisConfig(),
    strength: float | None = None,
    *,
    margin: int = 0,
    degrade: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Make an aligned ``(blurry, target)`` pair from a sharp ``3xHxW`` float image in [0, 1].

    ``strength`` (None: drawn with :func:`sample_strength`) scales all motion; 0 returns the
    input unchanged, without noise or JPEG. The outer ``margin`` pixels are context only:
    content moves in from them, and both outputs are ``3 x (H - 2 margin) x (W - 2 margin)``.
    The target is the middle sub-frame (the sharp input, plus any object layers at their
    middle position). ``degrade=False`` makes the noise-free twin of a pair: the same random
    draws (so the same crop and blur), without noise, sharpening or JPEG applied.
    """
    _check_image(sharp, margin)
    sharp = sharp.float().clamp(0.0, 1.0)
    h, w = sharp.shape[1] - 2 * margin, sharp.shape[2] - 2 * margin
    crop = sharp[:, margin : margin + h, margin : margin + w]
    if strength is None:
        strength = sample_strength(rng, cfg)
    if strength <= 0:
        return crop.clone(), crop.clone()

    plan = _plan_motion(rng, cfg, strength, h, w)
    if plan.is_static():
        blurry, target = crop.clone(), crop.clone()
    else:
        blurry, target = _blur_from_plan(sharp, plan, cfg, margin)
    degraded = _degrade(blurry, rng, cfg, gamma=plan.gamma)  # drawn even for the twin: same draws after
    return (degraded if degrade else blurry), target


def _blur_from_plan(
    sharp: torch.Tensor, plan: _MotionPlan, cfg: SynthesisConfig, margin: int
) -> tuple[torch.Tensor, torch.Tensor]:
    lin = sharp.pow(plan.gamma)
    h, w = sharp.shape[1] - 2 * margin, sharp.shape[2] - 2 * margin
    per_chunk = max(1, _CHUNK_PIXELS // (h * w * (1 + len(plan.blobs))))
    total = torch.zeros(3, h, w)
    middle = None
    for start in range(0, plan.n, per_chunk):
        frames = range(start, min(start + per_chunk, plan.n))
        rendered = _render(lin, plan, margin, frames)
        total += rendered.sum(1)
        if plan.middle in frames:
            middle = rendered[:, plan.middle - start].clone()
        del rendered
    inv = 1.0 / plan.gamma
    blurry = (total / plan.n).clamp_(0.0, 1.0).pow_(inv)
    if plan.blobs:
        assert middle is not None  # plan.middle is one of the sub-frames rendered
        target = middle.clamp_(0.0, 1.0).pow_(inv)
    else:  # the middle sub-frame is the input itself: return it bit-exactly
        target = sharp[:, margin : margin + h, margin : margin + w].clone()
    return blurry, target


__all__ = ["random_region", "synthesize"]

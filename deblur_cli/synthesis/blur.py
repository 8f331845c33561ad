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

This module is the entry point: the configuration, strengths, crops and :func:`synthesize`.
The camera paths and the motion plan are in :mod:`deblur_cli.synthesis_motion`; turning a
plan into pixels (warps, objects, noise, JPEG) is in :mod:`deblur_cli.synthesis_render`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from deblur_cli.errors import UsageError
from deblur_cli.synthesis_motion import (  # camera paths and the motion plan
    OBJECT_SHAPES,
    TRAJECTORY_FAMILIES,
    _MotionPlan,
    _plan_motion,
    family_trajectory,
    random_trajectory,
)
from deblur_cli.synthesis_render import _degrade, _render  # warps, noise, JPEG

# Largest number of output pixels warped in one grid_sample call (bounds memory on big images).
_CHUNK_PIXELS = 4_000_000


@dataclass(frozen=True)
class SynthesisConfig:
    """Parameters of the blur model. Lengths are in pixels of the synthesised image (the crop)."""

    min_subframes: int = 7  # sub-frames averaged per exposure (GoPro-style 7..13); odd counts are used
    max_subframes: int = 13
    max_shake_px: float = 24.0  # camera-shake trajectory extent at strength 1
    max_rotation_deg: float = 2.0  # in-plane rotation over the exposure at strength 1
    tilt_fraction: float = 0.25  # out-of-plane tilts (about x and y) as a fraction of max_rotation_deg
    focal_range: tuple[float, float] = (0.8, 2.0)  # focal length / long side of the image
    object_prob: float = 0.5  # chance that a pair has 1..max_objects moving object layers
    max_objects: int = 2
    max_object_px: float = 32.0  # an object's own motion over the exposure at strength 1
    gamma: float = 2.2  # sub-frames are averaged in linear light
    noise_prob: float = 0.8  # chance of sensor noise on a blurred pair
    noise_max: float = 0.02  # noise std at white, at most (shot + read noise)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)
    strength: tuple[float, float] = (0.0, 1.0)  # range the per-pair strength is drawn from
    strength_beta: tuple[float, float] = (2.0, 2.5)  # Beta(a, b) shape of that draw: favours moderate blur
    none_prob: float = 0.05  # chance that a pair gets the lowest strength (no blur at 0)
    max_step_px: float = 1.5  # add sub-frames so the camera moves at most this far between two
    max_rendered_subframes: int = 41  # cap on sub-frames after that densification (speed)
    margin: int = 32  # context pixels the datasets cut around a crop; removed after warping
    # Variety (issue 10, part 5). The defaults reproduce the original model draw for draw;
    # VARIED below is the recommended training mix. See docs/synthesis.md.
    trajectory_weights: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # walk, line, tremor, jerk
    discrete_prob: float = 0.0  # chance of averaging only the drawn min..max sub-frames (GoPro-style ghosts)
    gamma_range: tuple[float, float] | None = None  # per-pair averaging gamma instead of `gamma` (1: encoded values)
    zoom_prob: float = 0.0  # chance of zoom blur about a random point
    max_zoom: float = 0.05  # relative scale change over the exposure at strength 1
    spin_prob: float = 0.0  # chance of rotation-dominated blur about a random point (shake reduced)
    max_spin_deg: float = 6.0  # that rotation over the exposure at strength 1
    object_speed: tuple[float, float] = (0.3, 1.0)  # object speed, fraction of strength * max_object_px
    object_size: tuple[float, float] = (0.08, 0.3)  # object semi-axes, fraction of the crop's short side
    object_shape_weights: tuple[float, float, float] = (1.0, 0.0, 0.0)  # wobbly ellipse, rounded box, star
    max_object_spin_deg: float = 0.0  # an object's own rotation over the exposure at strength 1 (rolling)
    poisson_prob: float = 0.0  # chance that the noise is Poisson-Gaussian in linear light instead
    photons_range: tuple[float, float] = (200.0, 5000.0)  # photo-electrons at white for it (log-uniform)
    sharpen_prob: float = 0.0  # chance of an in-camera unsharp mask after the noise, before JPEG
    jpeg_444_prob: float = 0.0  # chance of JPEG without chroma subsampling (else 4:2:0)
    scale_range: tuple[float, float] = (1.0, 1.0)  # crop scale (log-uniform): <1 shrinks a larger area, >1 enlarges

    def __post_init__(self) -> None:
        if not 1 <= self.min_subframes <= self.max_subframes:
            raise UsageError("synthesis: need 1 <= min_subframes <= max_subframes")
        lo, hi = self.strength
        if not 0.0 <= lo <= hi:
            raise UsageError("synthesis: strength must be a range (lo, hi) with 0 <= lo <= hi")
        q_lo, q_hi = self.jpeg_quality
        if not 1 <= q_lo <= q_hi <= 100:
            raise UsageError("synthesis: jpeg_quality must be a range within 1..100")
        if self.gamma <= 0 or self.margin < 0 or self.max_step_px <= 0:
            raise UsageError("synthesis: gamma and max_step_px must be > 0, margin >= 0")
        for name in _PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"synthesis: {name} must be between 0 and 1")
        for name in _WEIGHTS:
            weights = getattr(self, name)
            if len(weights) != _WEIGHTS[name] or min(weights) < 0 or sum(weights) <= 0:
                raise UsageError(f"synthesis: {name} must be {_WEIGHTS[name]} weights >= 0, not all 0")
        for name in _RANGES:
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and 0 < value[0] <= value[1]):
                raise UsageError(f"synthesis: {name} must be a range (lo, hi) with 0 < lo <= hi")
        if self.max_zoom < 0 or self.max_spin_deg < 0 or self.max_object_spin_deg < 0:
            raise UsageError("synthesis: max_zoom, max_spin_deg and max_object_spin_deg must be >= 0")
        speed_ok = 0.0 <= self.object_speed[0] <= self.object_speed[1]
        if not speed_ok or not 0 < self.object_size[0] <= self.object_size[1]:
            raise UsageError("synthesis: object_speed and object_size must be ranges (lo, hi), lo <= hi")


_PROBABILITIES = (
    "object_prob", "noise_prob", "jpeg_prob", "none_prob", "discrete_prob", "zoom_prob", "spin_prob",
    "poisson_prob", "sharpen_prob", "jpeg_444_prob",
)
_WEIGHTS = {"trajectory_weights": 4, "object_shape_weights": 3}
_RANGES = ("gamma_range", "photons_range", "scale_range")

#: Strength shape weighted toward mild and medium shake: of the strengths drawn from (0, 1),
#: 8% below 0.1, 39% mild, 44% medium, 9% strong (Beta(2, 2.5): 4 / 24 / 46 / 25%).
MILD_MEDIUM_BETA: tuple[float, float] = (2.0, 4.0)

#: The recommended training mix (issue 10, part 5): every family of motion, sub-frame
#: sampling, averaging gamma, object, noise, camera pipeline and crop scale. Use as
#: ``SynthesisConfig(**VARIED)`` or as the ``[synthesis]`` table of a training TOML.
VARIED: dict[str, object] = {
    "trajectory_weights": (0.4, 0.2, 0.25, 0.15),
    "discrete_prob": 0.15,
    "gamma_range": (1.0, 2.4),
    "zoom_prob": 0.15,
    "max_zoom": 0.08,
    "spin_prob": 0.15,
    "max_spin_deg": 6.0,
    "object_speed": (0.2, 1.2),
    "object_size": (0.05, 0.3),
    "object_shape_weights": (0.4, 0.3, 0.3),
    "max_object_spin_deg": 30.0,
    "poisson_prob": 0.5,
    "sharpen_prob": 0.25,
    "jpeg_444_prob": 0.3,
    "jpeg_quality": (50, 95),
    "scale_range": (0.6, 1.5),
    "strength_beta": MILD_MEDIUM_BETA,
}


def sample_strength(rng: np.random.Generator, cfg: SynthesisConfig) -> float:
    """Draw a per-pair strength in ``cfg.strength``: Beta-shaped, favouring moderate blur."""
    lo, hi = cfg.strength
    if hi <= lo or rng.random() < cfg.none_prob:
        return float(lo)
    a, b = cfg.strength_beta
    return float(lo + (hi - lo) * rng.beta(a, b))


# Strength classes of the validation sets (bench/data/val*): ranges of ``strength``, so the
# camera-shake extent is ``strength * max_shake_px`` (2.4-7.2 px mild, 7.2-14.4 medium,
# 14.4-24 strong at the default 24 px).
STRENGTH_CLASSES: dict[str, tuple[float, float]] = {
    "mild": (0.1, 0.3),
    "medium": (0.3, 0.6),
    "strong": (0.6, 1.0),
}


def strength_class(strength: float) -> str:
    """The class (``none``, ``mild``, ``medium`` or ``strong``) a strength in [0, 1+] falls into."""
    if strength < STRENGTH_CLASSES["mild"][0]:
        return "none"
    for name, (_, hi) in STRENGTH_CLASSES.items():
        if strength < hi:
            return name
    return "strong"


def config_for_class(cfg: SynthesisConfig, name: str) -> SynthesisConfig:
    """``cfg`` restricted to one strength class: uniform strength within its range, never unblurred."""
    if name not in STRENGTH_CLASSES:
        raise UsageError(f"synthesis: unknown strength class {name!r} (choose {', '.join(STRENGTH_CLASSES)})")
    return replace(cfg, strength=STRENGTH_CLASSES[name], strength_beta=(1.0, 1.0), none_prob=0.0)




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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Make an aligned ``(blurry, target)`` pair from a sharp ``3xHxW`` float image in [0, 1].

    ``strength`` (None: drawn with :func:`sample_strength`) scales all motion; 0 returns the
    input unchanged, without noise or JPEG. The outer ``margin`` pixels are context only:
    content moves in from them, and both outputs are ``3 x (H - 2 margin) x (W - 2 margin)``.
    The target is the middle sub-frame (the sharp input, plus any object layers at their
    middle position).
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
    return _degrade(blurry, rng, cfg, gamma=plan.gamma), target


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
        target = middle.clamp_(0.0, 1.0).pow_(inv)
    else:  # the middle sub-frame is the input itself: return it bit-exactly
        target = sharp[:, margin : margin + h, margin : margin + w].clone()
    return blurry, target


__all__ = [
    "MILD_MEDIUM_BETA", "OBJECT_SHAPES", "STRENGTH_CLASSES", "TRAJECTORY_FAMILIES", "VARIED",
    "SynthesisConfig", "config_for_class", "family_trajectory", "random_region", "random_trajectory",
    "sample_strength", "strength_class", "synthesize",
]

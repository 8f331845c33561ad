"""Parameters of the blur model: :class:`SynthesisConfig` and its checks, the recommended
training mix :data:`VARIED`, and per-pair strengths (:func:`sample_strength`, the validation
sets' :data:`STRENGTH_CLASSES`, :func:`strength_class`, :func:`config_for_class`).

The bottom of the synthesis package: ``motion``, ``render`` and ``blur`` read this
configuration; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deblur_cli.errors import UsageError


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
    # Variety. The defaults reproduce the original model draw for draw;
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
    # Chance that a pair is camera translation only: one blur kernel over the whole crop (no
    # rotation, zoom, spin or moving object). Hand-held shake is often close to that, and the
    # network learns this family fastest (docs/training.md, the blur-first recipe).
    uniform_prob: float = 0.0

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
    "poisson_prob", "sharpen_prob", "jpeg_444_prob", "uniform_prob",
)
_WEIGHTS = {"trajectory_weights": 4, "object_shape_weights": 3}
_RANGES = ("gamma_range", "photons_range", "scale_range")

#: Strength shape weighted toward mild and medium shake: of the strengths drawn from (0, 1),
#: 8% below 0.1, 39% mild, 44% medium, 9% strong (Beta(2, 2.5): 4 / 24 / 46 / 25%).
MILD_MEDIUM_BETA: tuple[float, float] = (2.0, 4.0)

#: The recommended training mix: every family of motion, sub-frame
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

#: Named blur mixes for the ``preset`` key of a training TOML's ``[synthesis]`` table, so a
#: recipe that reuses a landed mix names it instead of copying its values (weights/*.toml).
SYNTHESIS_PRESETS: dict[str, dict[str, object]] = {
    "varied": VARIED,
    # The mix of the bundled k3-v2 weights: VARIED with strength weighted further toward mild
    # shake and more unblurred pairs (docs/training.md#choosing-the-recipe-by-measurement).
    "k3-v2": {**VARIED, "strength_beta": (2.0, 5.0), "none_prob": 0.15},
}


def expand_synthesis_preset(table: dict[str, object]) -> dict[str, object]:
    """A ``[synthesis]`` table with its optional ``preset`` key replaced by the preset's values
    (the table's own keys win), so saved run configs hold every value explicitly."""
    table = dict(table)
    name = table.pop("preset", None)
    if name is None:
        return table
    if name not in SYNTHESIS_PRESETS:
        raise UsageError(f"unknown synthesis preset {name!r}; choose from {', '.join(SYNTHESIS_PRESETS)}")
    return {**SYNTHESIS_PRESETS[name], **table}


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


__all__ = [
    "MILD_MEDIUM_BETA", "STRENGTH_CLASSES", "SYNTHESIS_PRESETS", "VARIED", "SynthesisConfig", "config_for_class",
    "expand_synthesis_preset", "sample_strength",
    "strength_class",
]

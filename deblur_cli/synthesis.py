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

Everything is done with one batched bilinear ``grid_sample`` over all
sub-frames, which is fast enough to make training pairs on the fly on a CPU.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deblur_cli.errors import DataError, InputError, OutputError, UsageError

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
        for name in ("object_prob", "noise_prob", "jpeg_prob", "none_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"synthesis: {name} must be between 0 and 1")


# ---------------------------------------------------------------------------------------------
# Camera trajectories


def random_trajectory(rng: np.random.Generator, n_samples: int, extent: float) -> np.ndarray:
    """A random camera-shake path sampled at ``n_samples`` equal time steps, shape ``(n, 2)`` (x, y).

    The path is a particle moving at constant speed with inertia: each step keeps most of
    its direction, gets a Gaussian nudge (its "anxiety"), is pulled back towards where it
    started, and now and then receives a large random impulse (a jerk). Of a walk twice
    as long as needed, the exposure is the window whose middle lies nearest its centroid,
    so the blur is centred on the middle sample (the target). The larger side of the
    bounding box is scaled to ``extent`` px and the middle sample ``n // 2`` is (0, 0).
    """
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    if extent <= 0 or n_samples == 1:
        return np.zeros((n_samples, 2))
    steps = max(64, 4 * n_samples) | 1  # odd, so the window has a middle step
    walk = _random_walk(rng, 2 * steps)
    best, best_score = 0, np.inf
    for start in np.linspace(0, steps, 9).astype(int):
        window = walk[start : start + steps]
        size = max(np.ptp(window.real), np.ptp(window.imag), 1e-12)
        score = abs(window.mean() - window[steps // 2]) / size
        if score < best_score:
            best, best_score = start, score
    pos = walk[best : best + steps]

    times = np.linspace(0.0, steps - 1, n_samples)
    xy = np.stack([np.interp(times, np.arange(steps), pos.real), np.interp(times, np.arange(steps), pos.imag)], 1)
    size = max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]))
    if size < 1e-12:
        return np.zeros((n_samples, 2))
    xy = xy * (extent / size)
    return xy - xy[n_samples // 2]


def _random_walk(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Positions (complex) of the constant-speed particle with inertia, impulses and a pull home."""
    anxiety = rng.uniform(0.02, 0.35)  # 0: a smooth pan; large: a jittery hand
    impulse_prob = rng.uniform(0.0, 0.05)
    pull = rng.uniform(0.0, 0.3)
    nudges = anxiety * (rng.standard_normal(steps) + 1j * rng.standard_normal(steps))
    impulses = rng.random(steps) < impulse_prob
    impulse_dirs = np.exp(2j * np.pi * rng.random(steps))
    pos = np.zeros(steps, dtype=complex)
    vel = np.exp(2j * np.pi * rng.random())
    for t in range(1, steps):
        vel = vel + nudges[t] - pull * pos[t - 1] / steps
        if impulses[t]:
            vel = vel + 2.0 * abs(vel) * impulse_dirs[t]
        vel = vel / max(abs(vel), 1e-12)  # constant speed: randomness only bends the path
        pos[t] = pos[t - 1] + vel
    return pos


def sample_strength(rng: np.random.Generator, cfg: SynthesisConfig) -> float:
    """Draw a per-pair strength in ``cfg.strength``: Beta-shaped, favouring moderate blur."""
    lo, hi = cfg.strength
    if hi <= lo or rng.random() < cfg.none_prob:
        return float(lo)
    a, b = cfg.strength_beta
    return float(lo + (hi - lo) * rng.beta(a, b))


def _rotation(roll: float, tilt_x: float, tilt_y: float) -> np.ndarray:
    cz, sz = math.cos(roll), math.sin(roll)
    cx, sx = math.cos(tilt_x), math.sin(tilt_x)
    cy, sy = math.cos(tilt_y), math.sin(tilt_y)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1.0]])
    rx = np.array([[1.0, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1.0, 0], [-sy, 0, cy]])
    return rz @ ry @ rx


def _smooth_path(rng: np.random.Generator, amount: float) -> Callable[[np.ndarray], np.ndarray]:
    """A random smooth 1-D path of normalised time (0 at the middle sub-frame), range ~``amount``."""
    linear = amount * rng.uniform(-1.0, 1.0)
    bend = amount * rng.uniform(-1.0, 1.0)
    return lambda taus: linear * taus + bend * 2.0 * taus**2


def _travel(path: np.ndarray) -> float:
    """Length of a densely sampled path, (n,) or (n, 2)."""
    steps = np.diff(path, axis=0)
    return float(np.abs(steps).sum() if steps.ndim == 1 else np.linalg.norm(steps, axis=1).sum())


# ---------------------------------------------------------------------------------------------
# Motion plan: everything random about one pair, drawn before any pixel is touched


@dataclass(frozen=True)
class _Blob:
    """A soft-edged object layer: shape, where its content comes from, and its own motion."""

    centre: np.ndarray  # (2,) centred output coordinates at the middle sub-frame
    radii: np.ndarray  # (2,) ellipse semi-axes in px
    angle: float
    harmonics: np.ndarray  # (2, 2): amplitude and phase of the outline's 2nd and 3rd harmonics
    edge_px: float
    source_shift: np.ndarray  # (2,) where the content is cut from, relative to the object
    motion: np.ndarray  # (n, 2) own offset per sub-frame, zero at the middle


@dataclass(frozen=True)
class _MotionPlan:
    homographies: np.ndarray  # (n, 3, 3) centred output coords -> centred source coords
    shake: np.ndarray  # (n, 2) camera translation per sub-frame
    blobs: tuple[_Blob, ...]

    @property
    def n(self) -> int:
        return len(self.shake)

    @property
    def middle(self) -> int:
        return self.n // 2

    def is_static(self) -> bool:
        eye = np.broadcast_to(np.eye(3), self.homographies.shape)
        return not self.blobs and np.allclose(self.shake, 0.0) and np.allclose(self.homographies, eye)


def _odd_count(rng: np.random.Generator, lo: int, hi: int) -> int:
    choices = [k for k in range(lo, hi + 1) if k % 2 == 1] or [lo | 1]
    return int(rng.choice(choices))


_DENSE = 129  # samples of a path used to measure how far it travels


def _plan_motion(rng: np.random.Generator, cfg: SynthesisConfig, strength: float, h: int, w: int) -> _MotionPlan:
    n_min = _odd_count(rng, cfg.min_subframes, cfg.max_subframes)
    dense = np.linspace(-0.5, 0.5, _DENSE)
    shake = random_trajectory(rng, _DENSE, strength * cfg.max_shake_px)
    rot = math.radians(strength * cfg.max_rotation_deg)
    tilt = rot * cfg.tilt_fraction
    roll, tilt_x, tilt_y = _smooth_path(rng, rot), _smooth_path(rng, tilt), _smooth_path(rng, tilt)
    focal = rng.uniform(*cfg.focal_range) * max(h, w)
    motions: list[Callable[[np.ndarray], np.ndarray]] = []
    if strength > 0 and cfg.max_objects > 0 and rng.random() < cfg.object_prob:
        motions = [_object_motion(rng, cfg, strength) for _ in range(int(rng.integers(1, cfg.max_objects + 1)))]

    # Enough sub-frames that the fastest point moves at most max_step_px between two of them,
    # so strong blur is a continuous streak rather than separate copies.
    travel = _travel(shake) + 0.5 * math.hypot(h, w) * _travel(roll(dense))
    travel += max((_travel(m(dense)) for m in motions), default=0.0)
    n = max(n_min, min(int(math.ceil(travel / cfg.max_step_px)) + 1, cfg.max_rendered_subframes) | 1)
    taus = np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1)
    rotations = (_rotation(r, a, b) for r, a, b in zip(roll(taus), tilt_x(taus), tilt_y(taus)))
    homs = np.stack([_centred_homography(r, focal) for r in rotations])
    blobs = tuple(_random_blob(rng, m(taus), h, w) for m in motions)
    return _MotionPlan(homographies=homs, shake=_resample(shake, n), blobs=blobs)


def _resample(path: np.ndarray, n: int) -> np.ndarray:
    """Resample a path (sampled at equal times, centred on its middle) to ``n`` samples, keeping the centre."""
    old = np.linspace(0.0, 1.0, len(path))
    new = np.linspace(0.0, 1.0, n)
    out = np.stack([np.interp(new, old, path[:, 0]), np.interp(new, old, path[:, 1])], 1)
    return out - out[n // 2]


def _centred_homography(rot: np.ndarray, focal: float) -> np.ndarray:
    """``K R K^-1`` in image-centred coordinates, with the centre's own shift removed.

    The shake trajectory already supplies the translation; removing the shift keeps the
    blur extent governed by ``max_shake_px`` while the rotation adds the spatial variation.
    """
    k = np.diag([focal, focal, 1.0])
    hom = k @ rot @ np.linalg.inv(k)
    hom = hom / hom[2, 2]
    shift = np.array([[1.0, 0, -hom[0, 2]], [0, 1.0, -hom[1, 2]], [0, 0, 1.0]])
    return shift @ hom


def _object_motion(
    rng: np.random.Generator, cfg: SynthesisConfig, strength: float
) -> Callable[[np.ndarray], np.ndarray]:
    """An object's own path over normalised time: a random direction, speed and curvature."""
    speed = strength * cfg.max_object_px * rng.uniform(0.3, 1.0)
    direction = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([math.cos(direction), math.sin(direction)])
    curve = speed * rng.uniform(-0.5, 0.5) * np.array([-math.sin(direction), math.cos(direction)])
    return lambda taus: taus[:, None] * vel + 2.0 * taus[:, None] ** 2 * curve


def _random_blob(rng: np.random.Generator, motion: np.ndarray, h: int, w: int) -> _Blob:
    size = min(h, w)
    centre = rng.uniform(-0.4, 0.4, 2) * np.array([w, h])
    radii = rng.uniform(0.08, 0.3, 2) * size
    # Content from elsewhere in the image, so the object differs from the background it covers.
    shift = np.zeros(2)
    for _ in range(8):
        target = rng.uniform(-0.5, 0.5, 2) * np.array([w, h])
        shift = target - centre
        if np.hypot(*shift) > 1.5 * radii.max():
            break
    harmonics = np.stack([rng.uniform(0, 0.15, 2), rng.uniform(0, 2 * np.pi, 2)], 1)
    return _Blob(
        centre=centre,
        radii=radii,
        angle=float(rng.uniform(0, np.pi)),
        harmonics=harmonics,
        edge_px=float(rng.uniform(0.7, 2.5)),
        source_shift=shift,
        motion=motion - motion[len(motion) // 2],
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def _translation(offset: np.ndarray) -> np.ndarray:
    return np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]], [0.0, 0.0, 1.0]])


def _project(mats: np.ndarray, xs: torch.Tensor, ys: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Projective maps (k, 3, 3) applied to the pixel grid ``ys x xs`` -> (k, len(ys), len(xs), 2).

    Numerators and denominator are sums of a column term and a row term, so the grid costs a
    few broadcast operations per pixel; ``out`` (a view into a larger buffer) avoids copies.
    """
    m = torch.as_tensor(mats, dtype=torch.float32)
    cols = m[:, None, None, :2, 0] * xs[None, None, :, None]  # (k, 1, w, 2)
    rows = m[:, None, None, :2, 1] * ys[None, :, None, None] + m[:, None, None, :2, 2]  # (k, h, 1, 2)
    den_cols = m[:, None, None, 2:, 0] * xs[None, None, :, None]
    den = den_cols + (m[:, None, None, 2:, 1] * ys[None, :, None, None] + m[:, None, None, 2:, 2])
    if out is None:
        out = torch.empty(len(m), len(ys), len(xs), 2)
    torch.add(cols, rows, out=out)
    return out.div_(den)


def _blob_alpha(blob: _Blob, local: torch.Tensor) -> torch.Tensor:
    """Soft coverage in [0, 1] of a blob, given points in its unit-ellipse frame (..., 2)."""
    u, v = local[..., 0], local[..., 1]
    rho = torch.sqrt(u * u + v * v).clamp_min_(1e-6)
    c1, s1 = u / rho, v / rho  # cos and sin of the polar angle; higher orders by recurrence
    c2, s2 = c1 * c1 - s1 * s1, 2.0 * c1 * s1
    c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
    outline = torch.ones_like(rho)
    for (cos_k, sin_k), (amp, phase) in zip(((c2, s2), (c3, s3)), blob.harmonics):
        outline += float(amp) * (cos_k * math.cos(phase) - sin_k * math.sin(phase))
    dist_px = (rho - outline) * float(blob.radii.mean())
    return (0.5 - dist_px / blob.edge_px).clamp_(0.0, 1.0)


def _blob_box(blob: _Blob, local: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
    """Output rectangle (y0, y1, x0, x1) outside which the blob is transparent in every sub-frame."""
    reach = 1.0 + float(blob.harmonics[:, 0].sum()) + blob.edge_px / float(blob.radii.min())
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ring = np.stack([reach * np.cos(ang), reach * np.sin(ang), np.ones_like(ang)])  # (3, 48)
    back = np.linalg.inv(local) @ ring  # (n, 3, 48): the outline in centred output coordinates
    xy = back[:, :2] / back[:, 2:3]
    x0 = int(np.floor(xy[:, 0].min() + (w - 1) / 2.0)) - 1
    x1 = int(np.ceil(xy[:, 0].max() + (w - 1) / 2.0)) + 2
    y0 = int(np.floor(xy[:, 1].min() + (h - 1) / 2.0)) - 1
    y1 = int(np.ceil(xy[:, 1].max() + (h - 1) / 2.0)) + 2
    x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    return (y0, y1, x0, x1) if x0 < x1 and y0 < y1 else None


def _render(lin: torch.Tensor, plan: _MotionPlan, margin: int, frames: range) -> torch.Tensor:
    """Render sub-frames ``frames`` in linear light: (3, len, h, w) with h, w = input minus margins.

    Every layer of every sub-frame is a projective map from output pixels to source
    pixels. All layers go through one ``grid_sample`` call; object layers are only
    evaluated inside the rectangle they can reach.
    """
    _, src_h, src_w = lin.shape
    h, w = src_h - 2 * margin, src_w - 2 * margin
    xs = torch.arange(w, dtype=torch.float32) - (w - 1) / 2.0
    ys = torch.arange(h, dtype=torch.float32) - (h - 1) / 2.0
    # centred source coordinates -> grid_sample's [-1, 1] (align_corners=False)
    cx, cy = margin + (w - 1) / 2.0, margin + (h - 1) / 2.0
    to_grid = np.array(
        [
            [2.0 / src_w, 0.0, (cx + 0.5) * 2.0 / src_w - 1.0],
            [0.0, 2.0 / src_h, (cy + 0.5) * 2.0 / src_h - 1.0],
            [0.0, 0.0, 1.0],
        ]
    )
    idx = list(frames)
    n = len(idx)
    cam = np.stack([_translation(plan.shake[i]) @ plan.homographies[i] for i in idx])

    boxes, contents, alphas = [], [], []  # per visible object layer
    for blob in plan.blobs:
        c, s = math.cos(blob.angle), math.sin(blob.angle)
        unit = np.diag([1.0 / blob.radii[0], 1.0 / blob.radii[1], 1.0]) @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])
        local = np.stack([unit @ _translation(-blob.centre - blob.motion[i]) @ m for i, m in zip(idx, cam)])
        box = _blob_box(blob, local, h, w)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        alphas.append(_blob_alpha(blob, _project(local, xs[x0:x1], ys[y0:y1])))
        moves = [_translation(blob.source_shift - blob.motion[i]) for i in idx]
        contents.append(np.stack([to_grid @ move @ m for move, m in zip(moves, cam)]))
        boxes.append(box)

    # One grid for everything: background frames, then each object's content inside its box.
    sizes = [n * h * w] + [n * (y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes]
    grid = torch.empty(1, 1, sum(sizes), 2)
    parts = torch.split(grid[0, 0], sizes)
    _project(to_grid @ cam, xs, ys, out=parts[0].view(n, h, w, 2))
    for part, mats, (y0, y1, x0, x1) in zip(parts[1:], contents, boxes):
        _project(mats, xs[x0:x1], ys[y0:y1], out=part.view(n, y1 - y0, x1 - x0, 2))
    sampled = F.grid_sample(lin[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0, :, 0]

    out = sampled[:, : sizes[0]].view(3, n, h, w)  # channels first: no transposes needed
    if plan.middle in idx:  # identity warp: copy exactly rather than interpolate
        out[:, idx.index(plan.middle)] = lin[:, margin : margin + h, margin : margin + w]
    start = sizes[0]
    for size, alpha, (y0, y1, x0, x1) in zip(sizes[1:], alphas, boxes):
        obj = sampled[:, start : start + size].view(3, n, y1 - y0, x1 - x0)
        start += size
        region = out[:, :, y0:y1, x0:x1]
        region.copy_(torch.lerp(region, obj, alpha))
    return out


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
    lin = sharp.float().clamp(0.0, 1.0).pow(cfg.gamma)
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
    return _degrade(blurry, rng, cfg), target


def _blur_from_plan(
    sharp: torch.Tensor, plan: _MotionPlan, cfg: SynthesisConfig, margin: int
) -> tuple[torch.Tensor, torch.Tensor]:
    lin = sharp.pow(cfg.gamma)
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
    inv = 1.0 / cfg.gamma
    blurry = (total / plan.n).clamp_(0.0, 1.0).pow_(inv)
    if plan.blobs:
        target = middle.clamp_(0.0, 1.0).pow_(inv)
    else:  # the middle sub-frame is the input itself: return it bit-exactly
        target = sharp[:, margin : margin + h, margin : margin + w].clone()
    return blurry, target


def _degrade(img: torch.Tensor, rng: np.random.Generator, cfg: SynthesisConfig) -> torch.Tensor:
    """Sensor noise (shot + read, std at white <= noise_max) then an optional JPEG round trip."""
    if cfg.noise_max > 0 and rng.random() < cfg.noise_prob:
        sigma = rng.uniform(0.0, cfg.noise_max)
        shot = rng.uniform(0.0, 1.0)  # share of the variance that grows with brightness
        std = torch.sqrt(img * (shot * sigma**2) + (1.0 - shot) * sigma**2)
        noise = torch.from_numpy(rng.standard_normal(img.shape, dtype=np.float32))
        img = (img + std * noise).clamp_(0.0, 1.0)
    if rng.random() < cfg.jpeg_prob:
        img = _jpeg_round_trip(img, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return img


def _jpeg_round_trip(img: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image

    arr = (img.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        out = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------
# Writing a dataset: deblur make-pairs


def make_pairs(
    sharp_dir: Path,
    out_dir: Path,
    *,
    cfg: SynthesisConfig = SynthesisConfig(),
    seed: int = 0,
    crop: int | None = None,
    pairs_per_image: int = 1,
    progress: Callable[[int, int], None] | None = None,
    on_error: Callable[[Path, str], None] | None = None,
) -> int:
    """Blur every photo under ``sharp_dir`` and write a GoPro-layout dataset; return the pair count.

    Layout: ``out_dir/<photo stem>/{blur,sharp}/<stem>_<k>.png``, ``k = 0..pairs_per_image-1``.
    With ``crop`` each pair is a random ``crop x crop`` region; without, the whole photo less
    a border of ``cfg.margin`` pixels (the border supplies the content that moves into view).
    Each photo's pairs depend only on ``(seed, photo index)``. Files are written atomically.
    ``out_dir`` must be new or empty. Photos that cannot be read are passed to ``on_error``
    and skipped; without ``on_error`` they are listed in an InputError once the rest are done.
    """
    from deblur_cli.datasets import load_rgb, sharp_photos

    sharp_dir, out_dir = Path(sharp_dir), Path(out_dir)
    if not sharp_dir.is_dir():
        raise DataError(f"sharp photo folder not found: {sharp_dir}")
    if pairs_per_image < 1 or (crop is not None and crop < 1):
        raise UsageError("pairs_per_image and crop must be positive")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputError(f"output folder {out_dir} already exists and is not empty; choose a new folder")
    inside = out_dir.resolve()
    photos = [p for p in sharp_photos(sharp_dir) if inside not in p.resolve().parents]
    if not photos:
        raise DataError(f"no images found in {sharp_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out_dir}: {e.strerror or e}") from None

    failed: list[str] = []
    written = 0
    for i, (photo, name) in enumerate(zip(photos, _sequence_names(photos))):
        rng = np.random.default_rng([seed, i])
        try:
            image = torch.from_numpy(load_rgb(photo)).permute(2, 0, 1).contiguous()
        except DataError as e:
            failed.append(f"{photo.name} ({e})")
            if on_error is not None:
                on_error(photo, str(e))
        else:
            for k in range(pairs_per_image):
                region, margin = _region(image, crop, cfg.margin, rng)
                blurry, target = synthesize(region, rng, cfg, margin=margin)
                _write_pair(out_dir / name, f"{name}_{k}", blurry, target)
                written += 1
        if progress is not None:
            progress(i + 1, len(photos))
    if failed and on_error is None:
        raise InputError(f"{len(failed)} of {len(photos)} photos could not be used: " + "; ".join(failed[:3]))
    return written


def _sequence_names(photos: list[Path]) -> list[str]:
    """Photo stems, made unique (``a.jpg`` and ``a.png`` become ``a`` and ``a_2``)."""
    names: list[str] = []
    seen: set[str] = set()
    for p in photos:
        name, k = p.stem, 2
        while name in seen:
            name, k = f"{p.stem}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


def _region(image: torch.Tensor, crop: int | None, margin: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
    """The area to synthesise from (with its context margin) and the margin to pass along."""
    _, h, w = image.shape
    if crop is None:
        m = min(margin, (min(h, w) - 1) // 4)  # small photos keep most of their area
        return image, m
    if min(h, w) < crop:  # upscale photos smaller than the crop
        scale = crop / min(h, w)
        size = (max(crop, round(h * scale)), max(crop, round(w * scale)))
        image = F.interpolate(image[None], size=size, mode="bicubic", align_corners=False)[0].clamp_(0, 1)
        _, h, w = image.shape
    side = crop + 2 * margin
    if h < side or w < side:  # not enough context: mirror the edges
        ph, pw = max(0, side - h), max(0, side - w)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        image = F.pad(image[None], pad, mode="replicate" if min(h, w) <= max(pad) else "reflect")[0]
        _, h, w = image.shape
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return image[:, y : y + side, x : x + side], margin


def _write_pair(folder: Path, stem: str, blurry: torch.Tensor, target: torch.Tensor) -> None:
    from PIL import Image

    from deblur_cli.fsutil import atomic_write

    for sub, img in (("blur", blurry), ("sharp", target)):
        try:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {folder / sub}: {e.strerror or e}") from None
        arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        atomic_write(folder / sub / f"{stem}.png", lambda f, a=arr: Image.fromarray(a).save(f, format="PNG"))

"""Motion of one synthesised exposure: the camera-path families and the motion plan.

Everything random about a pair's motion is drawn here, before any pixel is touched: the
camera-shake path (:func:`random_trajectory`, and the line, tremor and jerk families of
:func:`family_trajectory`), the camera rotation, zoom and off-centre spin, the moving
objects and the number of sub-frames (:func:`_plan_motion` -> :class:`_MotionPlan`).
Lengths are in pixels of the synthesised crop, times are normalised to the exposure
(-0.5 .. 0.5, 0 at the middle sub-frame). :mod:`deblur_cli.synthesis.render` turns a plan
into pixels; :mod:`deblur_cli.synthesis.blur` (the entry point) uses both. The parameters
are :mod:`deblur_cli.synthesis.config`'s ``SynthesisConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # types only
    from deblur_cli.synthesis.config import SynthesisConfig

TRAJECTORY_FAMILIES = ("walk", "line", "tremor", "jerk")
OBJECT_SHAPES = ("ellipse", "box", "star")


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


def family_trajectory(rng: np.random.Generator, family: str, n_samples: int, extent: float) -> np.ndarray:
    """A camera path of one family, like :func:`random_trajectory`: ``(n, 2)``, larger side ``extent``, middle 0.

    * ``walk``: :func:`random_trajectory` (inertia, nudges, impulses);
    * ``line``: a straight pan at a speed that rises or falls, slightly bent;
    * ``tremor``: smooth hand tremor, a sum of sinusoids (0.3-3 cycles per exposure, amplitude
      ~ 1 / frequency) per axis: loops and zig-zags;
    * ``jerk``: still, a quick move (e.g. pressing the shutter), still again, with a little
      tremor: a bright dot at each end of a faint streak.

    Of each path drawn over twice the exposure, the window whose middle lies nearest the
    path's centroid is kept (as for the walk), so the blur is centred on the target.
    """
    if family == "walk":
        return random_trajectory(rng, n_samples, extent)
    if family not in TRAJECTORY_FAMILIES:
        raise ValueError(f"unknown trajectory family {family!r}")
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    if extent <= 0 or n_samples == 1:
        return np.zeros((n_samples, 2))
    path = {"line": _line_path, "tremor": _tremor_path, "jerk": _jerk_path}[family](rng)
    windows = [path(np.linspace(-0.5, 0.5, n_samples) + shift) for shift in np.linspace(-0.5, 0.5, 9)]
    sizes = [max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1e-12) for xy in windows]
    best, best_score = windows[0], np.inf
    for xy, size in zip(windows, sizes):
        if size < 0.5 * max(sizes):  # a window that misses most of the motion (e.g. a jerk's still part)
            continue
        score = np.linalg.norm(xy.mean(0) - xy[n_samples // 2]) / size
        if score < best_score:
            best, best_score = xy, score
    size = max(np.ptp(best[:, 0]), np.ptp(best[:, 1]))
    if size < 1e-12:
        return np.zeros((n_samples, 2))
    best = best * (extent / size)
    return best - best[n_samples // 2]


def _line_path(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    direction = rng.uniform(0, 2 * np.pi)
    along = np.array([math.cos(direction), math.sin(direction)])
    across = np.array([-along[1], along[0]])
    accel = rng.uniform(-0.9, 0.9)  # < 1: the pan never reverses
    bend = rng.uniform(-0.15, 0.15)
    return lambda t: (t + 0.5 * accel * t**2)[:, None] * along + (bend * t**2)[:, None] * across


def _tremor_path(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    k = int(rng.integers(2, 5))
    freqs = rng.uniform(0.3, 3.0, (2, k))
    amps = rng.standard_normal((2, k)) / freqs
    phases = rng.uniform(0, 2 * np.pi, (2, k))
    drift = rng.standard_normal(2) * rng.uniform(0.0, 1.0)
    def path(t: np.ndarray) -> np.ndarray:
        waves = amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :, None] + phases[:, None])
        return waves.sum(-1).T + t[:, None] * drift

    return path


def _jerk_path(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    start, duration = rng.uniform(-0.4, 0.2), rng.uniform(0.05, 0.35)
    direction = rng.uniform(0, 2 * np.pi)
    along = np.array([math.cos(direction), math.sin(direction)])
    overshoot = rng.uniform(0.0, 0.3)
    tremor = _tremor_path(rng)
    jitter = 0.02 / max(float(np.abs(tremor(np.linspace(-1.0, 1.0, 65))).max()), 1e-12)  # 2% of the move

    def path(t: np.ndarray) -> np.ndarray:
        u = np.clip((t - start) / duration, 0.0, 1.0)
        move = u * u * (3 - 2 * u) + overshoot * np.sin(np.pi * u) ** 2 * (u > 0.5)
        return move[:, None] * along + jitter * tremor(t)

    return path


def _shake(rng: np.random.Generator, cfg: SynthesisConfig, n_samples: int, extent: float) -> np.ndarray:
    """The camera-shake path of one pair: a family drawn by ``cfg.trajectory_weights``."""
    weights = np.asarray(cfg.trajectory_weights, dtype=float)
    if np.count_nonzero(weights) == 1:  # no draw: the default stays the original model, draw for draw
        family = TRAJECTORY_FAMILIES[int(np.flatnonzero(weights)[0])]
    else:
        family = TRAJECTORY_FAMILIES[int(rng.choice(len(weights), p=weights / weights.sum()))]
    return family_trajectory(rng, family, n_samples, extent)


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
    exponent: float = 2.0  # outline |u|^p + |v|^p = 1 before the harmonics: 2 an ellipse, larger a rounded box
    spin: np.ndarray | None = None  # (n,) own rotation per sub-frame in radians, zero at the middle


@dataclass(frozen=True)
class _MotionPlan:
    homographies: np.ndarray  # (n, 3, 3) centred output coords -> centred source coords
    shake: np.ndarray  # (n, 2) camera translation per sub-frame
    blobs: tuple[_Blob, ...]
    gamma: float = 2.2  # sub-frames are averaged in x ** gamma

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
    shake = _shake(rng, cfg, _DENSE, strength * cfg.max_shake_px)
    # Drawn only when asked for, so mixes without it keep their draws.
    uniform = cfg.uniform_prob > 0 and rng.random() < cfg.uniform_prob
    if uniform:  # translation only: every pixel gets the same kernel
        cfg = replace(cfg, max_rotation_deg=0.0, object_prob=0.0, zoom_prob=0.0, spin_prob=0.0)
    rot = math.radians(strength * cfg.max_rotation_deg)
    tilt = rot * cfg.tilt_fraction
    roll, tilt_x, tilt_y = _smooth_path(rng, rot), _smooth_path(rng, tilt), _smooth_path(rng, tilt)
    focal = rng.uniform(*cfg.focal_range) * max(h, w)
    motions: list[Callable[[np.ndarray], np.ndarray]] = []
    if strength > 0 and cfg.max_objects > 0 and rng.random() < cfg.object_prob:
        motions = [_object_motion(rng, cfg, strength) for _ in range(int(rng.integers(1, cfg.max_objects + 1)))]
    # The variety options draw nothing at their defaults, so the original model is unchanged.
    spin = math.radians(strength * cfg.max_object_spin_deg)
    spins = [_smooth_path(rng, spin) if spin > 0 else None for _ in motions]
    warps = _extra_warps(rng, cfg, strength, h, w)
    if any(warp.kind == "spin" for warp in warps):
        shake = shake * rng.uniform(0.2, 0.6)  # rotation-dominated: the rotation is the main motion
    discrete = cfg.discrete_prob > 0 and rng.random() < cfg.discrete_prob
    gamma = cfg.gamma if cfg.gamma_range is None else float(rng.uniform(*cfg.gamma_range))

    # Enough sub-frames that the fastest point moves at most max_step_px between two of them,
    # so strong blur is a continuous streak rather than separate copies.
    travel = _travel(shake) + 0.5 * math.hypot(h, w) * _travel(roll(dense))
    travel += sum(warp.reach * _travel(warp.amount(dense)) for warp in warps)
    object_reach = cfg.object_size[1] * min(h, w)
    own = [_travel(m(dense)) + (object_reach * _travel(r(dense)) if r else 0.0) for m, r in zip(motions, spins)]
    travel += max(own, default=0.0)
    n = max(n_min, min(int(math.ceil(travel / cfg.max_step_px)) + 1, cfg.max_rendered_subframes) | 1)
    if discrete:  # GoPro-style: only the drawn frame count, strong motion shows separate copies
        n = n_min
    taus = np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1)
    rotations = (_rotation(r, a, b) for r, a, b in zip(roll(taus), tilt_x(taus), tilt_y(taus)))
    homs = np.stack([_centred_homography(r, focal) for r in rotations])
    for warp in warps:
        homs = np.stack([warp.matrix(v) @ hom for v, hom in zip(warp.amount(taus), homs)])
    blobs = tuple(
        _random_blob(rng, cfg, m(taus), h, w, spin=r(taus) if r else None) for m, r in zip(motions, spins)
    )
    return _MotionPlan(homographies=homs, shake=_resample(shake, n), blobs=blobs, gamma=gamma)


@dataclass(frozen=True)
class _Warp:
    """A zoom or an off-centre rotation over the exposure, about ``centre`` (centred px)."""

    kind: str  # "zoom": amount is the log scale; "spin": amount is the angle in radians
    centre: np.ndarray
    amount: Callable[[np.ndarray], np.ndarray]  # of normalised time, 0 at the middle
    reach: float  # px moved per unit of amount by the farthest corner

    def matrix(self, value: float) -> np.ndarray:
        """Output -> source map at one instant."""
        if self.kind == "zoom":
            lin = math.exp(value) * np.eye(2)
        else:
            c, s = math.cos(value), math.sin(value)
            lin = np.array([[c, -s], [s, c]])
        out = np.eye(3)
        out[:2, :2] = lin
        out[:2, 2] = self.centre - lin @ self.centre
        return out


def _extra_warps(rng: np.random.Generator, cfg: SynthesisConfig, strength: float, h: int, w: int) -> list[_Warp]:
    """Zoom and rotation-dominated blur of one pair (each with its probability), about random points."""
    warps = []
    options = (("zoom", cfg.zoom_prob, cfg.max_zoom), ("spin", cfg.spin_prob, math.radians(cfg.max_spin_deg)))
    for kind, prob, full in options:
        if prob <= 0 or full <= 0 or strength <= 0 or rng.random() >= prob:
            continue
        amount = strength * full * rng.uniform(0.3, 1.0) * (1 if rng.random() < 0.5 else -1)
        bend = rng.uniform(-0.5, 0.5)
        centre = rng.uniform(-0.5, 0.5, 2) * np.array([w, h])
        corners = np.array([[x, y] for x in (-w / 2, w / 2) for y in (-h / 2, h / 2)])
        reach = float(np.linalg.norm(corners - centre, axis=1).max())
        path = lambda taus, a=amount, b=bend: a * (taus + 2.0 * b * taus**2)  # noqa: E731
        warps.append(_Warp(kind, centre, path, reach))
    return warps


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
    speed = strength * cfg.max_object_px * rng.uniform(*cfg.object_speed)
    direction = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([math.cos(direction), math.sin(direction)])
    curve = speed * rng.uniform(-0.5, 0.5) * np.array([-math.sin(direction), math.cos(direction)])
    return lambda taus: taus[:, None] * vel + 2.0 * taus[:, None] ** 2 * curve


def _random_blob(
    rng: np.random.Generator,
    cfg: SynthesisConfig,
    motion: np.ndarray,
    h: int,
    w: int,
    spin: np.ndarray | None = None,
) -> _Blob:
    size = min(h, w)
    centre = rng.uniform(-0.4, 0.4, 2) * np.array([w, h])
    radii = rng.uniform(*cfg.object_size, 2) * size
    # Content from elsewhere in the image, so the object differs from the background it covers.
    shift = np.zeros(2)
    for _ in range(8):
        target = rng.uniform(-0.5, 0.5, 2) * np.array([w, h])
        shift = target - centre
        if np.hypot(*shift) > 1.5 * radii.max():
            break
    harmonics = np.stack([rng.uniform(0, 0.15, 2), rng.uniform(0, 2 * np.pi, 2)], 1)
    angle = float(rng.uniform(0, np.pi))
    edge_px = float(rng.uniform(0.7, 2.5))
    exponent = 2.0
    weights = np.asarray(cfg.object_shape_weights, dtype=float)
    shape = OBJECT_SHAPES[int(np.flatnonzero(weights)[0])] if np.count_nonzero(weights) == 1 else (
        OBJECT_SHAPES[int(rng.choice(len(weights), p=weights / weights.sum()))]
    )
    if shape == "box":  # a rounded rectangle: superellipse, straight sides
        exponent = float(rng.uniform(4.0, 10.0))
        harmonics[:, 0] = 0.0
    elif shape == "star":  # deep lobes
        harmonics[:, 0] = rng.uniform(0.15, 0.3, 2)
    return _Blob(
        centre=centre,
        radii=radii,
        angle=angle,
        harmonics=harmonics,
        edge_px=edge_px,
        source_shift=shift,
        motion=motion - motion[len(motion) // 2],
        exponent=exponent,
        spin=None if spin is None else spin - spin[len(spin) // 2],
    )

"""An independent motion-blur process, written from the physics, for bench/data/val_independent.

    python bench/independent_blur.py ../shared/data/photos/val bench/data/val_independent --size 384 --seed 0

It shares no code with ``deblur_cli/synthesis.py`` (only image reading/writing and PSNR come
from the package), so weights that merely learnt that module's habits do not score well here.
The model of one exposure:

* scene: the photo is a plane facing the camera at depth 1, plus moving object layers;
* camera: a 6-DoF pose over the exposure time t in [0, 1], each of the three rotations and three
  translations a linear drift plus a sum of three sinusoids (frequencies 0.2-2.5 cycles per
  exposure, amplitude ~1/frequency, i.e. smooth hand tremor); a per-pair Dirichlet draw
  weights tilt (pan/tilt), roll, sideways translation and translation along the axis (zoom);
  frame t is the plane-induced homography ``K (R_t + T_t n^T) K^-1`` relative to mid-exposure;
* blur size: the pose is scaled so that the mean, over a 5x5 grid of image points, of the
  larger side of each point's path bounding box equals a target extent in pixels (the class);
* objects (probability 0.6, 1-2 of them): discs that roll (spin = speed / radius), star-convex
  polygons and rounded boxes that spin a little, textured with another part of the photo,
  each moving on its own parabola at 0.5-2x the camera's blur extent;
* exposure: a box shutter sampled at enough instants that no point moves more than 0.5 px
  between two, rendered with bicubic warps and averaged in linear light (exact sRGB curve);
  the target is the instant t = 0.5 (camera warp = identity, objects at mid-flight);
* sensor: Poisson shot noise (300-5000 photo-electrons at white) plus Gaussian read noise
  (1-6 e-), per channel; camera pipeline: sRGB encoding, 8-bit rounding and, with probability
  0.6, a JPEG round trip (quality 70-95, 4:2:0 chroma).

Classes use the same blur extents as ``deblur_cli.synthesis.STRENGTH_CLASSES`` at its default
24 px shake: mild 2.4-7.2 px, medium 7.2-14.4 px, strong 14.4-24 px. The manifest's
``strength`` is the extent / 24 px, comparable to the synthesis set's.
"""

from __future__ import annotations

import argparse
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import valsets
from PIL import Image, ImageDraw

EXTENT_CLASSES: dict[str, tuple[float, float]] = {"mild": (2.4, 7.2), "medium": (7.2, 14.4), "strong": (14.4, 24.0)}
REFERENCE_EXTENT_PX = 24.0  # extent at "strength 1", as the project's synthesis defaults


@dataclass(frozen=True)
class BlurSpec:
    """Knobs of the process. Lengths in pixels of the crop."""

    margin: int = 96  # context around the crop that content moves in from
    object_prob: float = 0.6
    max_objects: int = 2
    max_step_px: float = 0.5  # densest motion between two time samples
    min_frames: int = 25
    max_frames: int = 161
    photons_at_white: tuple[float, float] = (300.0, 5000.0)  # log-uniform
    read_noise_e: tuple[float, float] = (1.0, 6.0)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (70, 95)


# ---------------------------------------------------------------------------------------------
# Colour


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


# ---------------------------------------------------------------------------------------------
# Camera path


@dataclass(frozen=True)
class CameraPath:
    """Sum-of-sinusoids 6-DoF pose: ``pose(t) = scale * (drift (t - 1/2) + sum a sin(2 pi f t + phi))``."""

    drift: np.ndarray  # (6,)
    amps: np.ndarray  # (6, 3)
    freqs: np.ndarray  # (6, 3) cycles per exposure
    phases: np.ndarray  # (6, 3)
    focal: float  # px

    def pose(self, t: np.ndarray, scale: float) -> np.ndarray:
        """(len(t), 6): rx, ry, rz (radians), tx, ty, tz (units of the scene depth), zero at t = 1/2."""
        def raw(tt: np.ndarray) -> np.ndarray:
            waves = self.amps[None] * np.sin(2 * np.pi * self.freqs[None] * tt[:, None, None] + self.phases[None])
            return self.drift[None] * (tt[:, None] - 0.5) + waves.sum(-1)

        return scale * (raw(np.asarray(t, dtype=np.float64)) - raw(np.array([0.5])))

    def homographies(self, t: np.ndarray, scale: float) -> np.ndarray:
        """(len(t), 3, 3): centred reference-image coordinates -> centred coordinates at time t."""
        k = np.diag([self.focal, self.focal, 1.0])
        k_inv = np.linalg.inv(k)
        normal = np.array([0.0, 0.0, 1.0])
        out = []
        for rx, ry, rz, tx, ty, tz in self.pose(t, scale):
            h = k @ (_rotation(rx, ry, rz) + np.outer([tx, ty, tz], normal)) @ k_inv
            out.append(h / h[2, 2])
        return np.stack(out)


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation vector (rx, ry, rz) -> matrix (Rodrigues)."""
    v = np.array([rx, ry, rz])
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    a = v / angle
    cross = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def random_path(rng: np.random.Generator, size: int) -> CameraPath:
    """A random unit-scale path; :func:`fit_scale` then sets its blur size."""
    focal = rng.uniform(0.7, 1.8) * size
    groups = rng.dirichlet([2.0, 0.8, 1.2, 0.6])  # tilt (rx, ry), roll, sideways (tx, ty), along the axis
    # unit steps: a tilt of 1/focal rad or a sideways move of 1/focal depth moves the centre 1 px;
    # a roll of 2/size rad or an axial move of 2/size moves the border 1 px.
    unit = np.array([1 / focal, 1 / focal, 2 / size, 1 / focal, 1 / focal, 2 / size])
    weight = np.array([groups[0], groups[0], groups[1], groups[2], groups[2], groups[3]]) * unit
    freqs = rng.uniform(0.2, 2.5, (6, 3))
    amps = rng.standard_normal((6, 3)) / freqs * weight[:, None]
    drift = rng.standard_normal(6) * rng.uniform(0.0, 3.0) * weight
    return CameraPath(drift=drift, amps=amps, freqs=freqs, phases=rng.uniform(0, 2 * np.pi, (6, 3)), focal=focal)


def _probe_points(size: int) -> np.ndarray:
    g = np.linspace(-0.45, 0.45, 5) * size
    xx, yy = np.meshgrid(g, g)
    return np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])  # (3, 25)


def point_paths(path: CameraPath, scale: float, size: int, t: np.ndarray) -> np.ndarray:
    """(len(t), 25, 2): where each probe point of the reference image is at each time."""
    moved = path.homographies(t, scale) @ _probe_points(size)
    return np.transpose(moved[:, :2] / moved[:, 2:3], (0, 2, 1))


def blur_extent(path: CameraPath, scale: float, size: int) -> float:
    """Mean over probe points of the larger side of the point's path bounding box (px)."""
    xy = point_paths(path, scale, size, np.linspace(0, 1, 129))
    return float(np.max(np.ptp(xy, axis=0), axis=1).mean())


def fit_scale(path: CameraPath, target_px: float, size: int) -> float:
    """The scale that gives ``blur_extent == target_px`` (secant on the near-linear map)."""
    scale = 1.0
    for _ in range(8):
        ext = blur_extent(path, scale, size)
        if ext <= 1e-9:
            return 0.0
        if abs(ext - target_px) < 0.01:
            break
        scale *= target_px / ext
    return scale


# ---------------------------------------------------------------------------------------------
# Moving objects


@dataclass(frozen=True)
class MovingObject:
    """A textured sprite (premultiplied linear RGB + alpha, square, centred) and its motion."""

    sprite: torch.Tensor  # (4, s, s)
    centre: np.ndarray  # (2,) reference-image centred coordinates at t = 1/2
    velocity: np.ndarray  # (2,) px per exposure
    accel: np.ndarray  # (2,) px per exposure^2
    spin: float  # radians per exposure
    angle: float  # at t = 1/2

    def placement(self, t: float) -> tuple[np.ndarray, float]:
        d = t - 0.5
        return self.centre + self.velocity * d + 0.5 * self.accel * d * d, self.angle + self.spin * d


def _shape_mask(rng: np.random.Generator, kind: str, radius: float, side: int) -> np.ndarray:
    """Anti-aliased coverage (side x side, float in [0, 1]) of a shape centred in the square."""
    ss = 4
    big = Image.new("L", (side * ss, side * ss), 0)
    draw = ImageDraw.Draw(big)
    c, r = side * ss / 2.0, radius * ss
    if kind == "disc":
        draw.ellipse([c - r, c - r, c + r, c + r], fill=255)
    elif kind == "box":
        aspect = rng.uniform(0.5, 1.0)
        w, h = r, r * aspect
        draw.rounded_rectangle([c - w, c - h, c + w, c + h], radius=rng.uniform(0.05, 0.4) * h, fill=255)
    else:  # star-convex polygon
        n = int(rng.integers(5, 10))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.55, 1.0, n)
        draw.polygon([(c + q * math.cos(a), c + q * math.sin(a)) for a, q in zip(ang, rad)], fill=255)
    small = big.resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def random_object(rng: np.random.Generator, lin: np.ndarray, size: int, camera_px: float) -> MovingObject:
    """An object with texture from a random place of the region ``lin`` (linear RGB, H x W x 3)."""
    kind = str(rng.choice(["disc", "polygon", "box"], p=[0.4, 0.35, 0.25]))
    radius = rng.uniform(0.06, 0.2) * size
    side = int(math.ceil(2 * radius)) + 6
    h, w, _ = lin.shape
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    texture = torch.from_numpy(np.ascontiguousarray(lin[y : y + side, x : x + side])).permute(2, 0, 1).float()
    texture = torch.rot90(texture, int(rng.integers(0, 4)), dims=(1, 2))
    alpha = torch.from_numpy(_shape_mask(rng, kind, radius, side))[None]
    speed = max(3.0, camera_px * rng.uniform(0.5, 2.0))
    direction = rng.uniform(0, 2 * np.pi)
    unit = np.array([math.cos(direction), math.sin(direction)])
    velocity = speed * unit
    accel = speed * rng.uniform(-0.6, 0.6) * np.array([-unit[1], unit[0]])  # a curved path
    if kind == "disc":  # rolling: the rim moves with the ground
        spin = speed / radius * (1 if rng.random() < 0.5 else -1)
    else:
        spin = rng.uniform(-0.5, 0.5) * speed / radius
    centre = rng.uniform(-0.35, 0.35, 2) * size
    return MovingObject(
        sprite=torch.cat([texture * alpha, alpha]),
        centre=centre,
        velocity=velocity,
        accel=accel,
        spin=float(spin),
        angle=float(rng.uniform(0, 2 * np.pi)),
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def _grid_for(mats: np.ndarray, size: int, src_side: int) -> torch.Tensor:
    """Sampling grids (k, size, size, 2) for maps from centred output px to source px (src square of src_side)."""
    c = (size - 1) / 2.0
    ax = torch.arange(size, dtype=torch.float64) - c
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    pts = torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(-1, 3)  # (p, 3)
    m = torch.as_tensor(mats, dtype=torch.float64)
    src = torch.einsum("kij,pj->kpi", m, pts)
    src = src[..., :2] / src[..., 2:3]
    sc = (src_side - 1) / 2.0
    grid = (src + sc + 0.5) * (2.0 / src_side) - 1.0  # align_corners=False
    return grid.reshape(len(m), size, size, 2).float()


def render_frames(
    lin: torch.Tensor, path: CameraPath, scale: float, objects: list[MovingObject], size: int, t: np.ndarray
) -> torch.Tensor:
    """Linear-light frames (len(t), 3, size, size) at times ``t``; ``lin`` is the (3, S, S) region."""
    src_side = lin.shape[-1]
    inv = np.linalg.inv(path.homographies(t, scale))  # output (time t) -> reference
    frames = F.grid_sample(
        lin[None].expand(len(t), -1, -1, -1),
        _grid_for(inv, size, src_side),
        mode="bicubic",
        padding_mode="reflection",
        align_corners=False,
    ).clamp_(min=0.0)
    for obj in objects:
        side = obj.sprite.shape[-1]
        mats = []
        for ti, ref in zip(t, inv):
            pos, ang = obj.placement(float(ti))
            c, s = math.cos(-ang), math.sin(-ang)
            to_local = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.array(
                [[1, 0, -pos[0]], [0, 1, -pos[1]], [0, 0, 1.0]]
            )
            mats.append(to_local @ ref)
        layer = F.grid_sample(
            obj.sprite[None].expand(len(t), -1, -1, -1),
            _grid_for(np.stack(mats), size, side),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        alpha = layer[:, 3:4].clamp(0.0, 1.0)
        frames = frames * (1.0 - alpha) + layer[:, :3].clamp(min=0.0)
    return frames


def frame_count(path: CameraPath, scale: float, objects: list[MovingObject], size: int, spec: BlurSpec) -> int:
    """Odd count so that no probe point or object moves more than ``max_step_px`` between samples."""
    dense = np.linspace(0, 1, 257)
    xy = point_paths(path, scale, size, dense)
    camera = float(np.linalg.norm(np.diff(xy, axis=0), axis=-1).sum(0).max())
    travel = camera
    for obj in objects:  # on screen an object's rim moves by its own path, its spin and the camera's
        pos = np.stack([obj.placement(float(ti))[0] for ti in dense])
        rim = abs(obj.spin) * obj.sprite.shape[-1] / 2.0
        travel = max(travel, float(np.linalg.norm(np.diff(pos, axis=0), axis=-1).sum()) + rim + camera)
    n = int(math.ceil(travel / spec.max_step_px)) + 1
    return min(max(n, spec.min_frames), spec.max_frames) | 1


def blur_pair(
    region: np.ndarray,
    rng: np.random.Generator,
    target_px: float,
    size: int,
    spec: BlurSpec = BlurSpec(),
    clean: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(blurry, sharp, measured camera extent px) for a sRGB region of side ``size + 2 margin``.

    ``clean``: the noise-free twin, the same draws (so the same blur) with no sensor noise or JPEG."""
    lin_np = srgb_to_linear(region.astype(np.float64)).astype(np.float32)
    lin = torch.from_numpy(lin_np).permute(2, 0, 1).contiguous()
    path = random_path(rng, size)
    scale = fit_scale(path, target_px, size)
    objects = []
    if rng.random() < spec.object_prob:
        count = int(rng.integers(1, spec.max_objects + 1))
        objects = [random_object(rng, lin_np, size, target_px) for _ in range(count)]
    n = frame_count(path, scale, objects, size, spec)
    times = (np.arange(n) + 0.5) / n  # box shutter, midpoint rule; the middle sample is t = 1/2
    total = torch.zeros(3, size, size)
    for start in range(0, n, 16):
        total += render_frames(lin, path, scale, objects, size, times[start : start + 16]).sum(0)
    blurry_lin = (total / n).permute(1, 2, 0).numpy().astype(np.float64)
    sharp_lin = render_frames(lin, path, scale, objects, size, np.array([0.5]))[0].permute(1, 2, 0).numpy()
    noisy = _sensor(blurry_lin, rng, spec)
    blurry = linear_to_srgb(np.clip(blurry_lin, 0.0, 1.0) if clean else noisy)
    if rng.random() < spec.jpeg_prob:
        quality = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
        if not clean:
            blurry = _jpeg(blurry, quality)
    sharp = linear_to_srgb(sharp_lin.astype(np.float64))
    return blurry.astype(np.float32), sharp.astype(np.float32), blur_extent(path, scale, size)


def _sensor(lin: np.ndarray, rng: np.random.Generator, spec: BlurSpec) -> np.ndarray:
    """Poisson-Gaussian noise: photo-electrons at white log-uniform, read noise in electrons."""
    lo, hi = spec.photons_at_white
    white = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    read = rng.uniform(*spec.read_noise_e)
    electrons = rng.poisson(np.clip(lin, 0.0, 1.0) * white) + rng.normal(0.0, read, lin.shape)
    return np.clip(electrons / white, 0.0, 1.0)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    arr = (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", type=int, default=3, help="crops per photo; classes cycle mild, medium, strong")
    ap.add_argument("--clean", action="store_true", help="the noise-free twin: same crops and blur, no noise or JPEG")
    args = ap.parse_args()
    torch.set_num_threads(1)
    valsets.check_empty(args.out)
    spec = BlurSpec()
    rows = []
    for i, photo in enumerate(valsets.photos(args.photos)):
        rng = np.random.default_rng([args.seed, 1_000_003, i])  # never the synthesis set's streams
        crops = valsets.pick_crops(valsets.load_photo(photo), args.size, spec.margin, args.crops, rng)
        order = rng.permutation(args.crops)
        for k, region in enumerate(crops):
            cls = valsets.CLASSES[int(order[k]) % len(valsets.CLASSES)]
            target = rng.uniform(*EXTENT_CLASSES[cls])
            blurry, sharp, extent = blur_pair(region, rng, target, args.size, spec, clean=args.clean)
            name = f"{photo.stem}_{k}_{cls}"
            ipsnr = valsets.write_pair(args.out, photo.stem, name, blurry, sharp)
            rows.append(valsets.PairRow(name, photo.stem, cls, extent / REFERENCE_EXTENT_PX, extent, ipsnr))
            print(f"{name}: extent {extent:.1f} px, input PSNR {ipsnr:.2f} dB", flush=True)
    valsets.write_manifest(args.out, rows)
    print(valsets.summary(rows))


if __name__ == "__main__":
    main()

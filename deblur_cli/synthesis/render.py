"""Rendering of a planned exposure: projective warps of every sub-frame in one batched
``grid_sample``, soft-edged object layers, then sensor noise and a JPEG round trip.

The random choices (trajectories, rotations, objects) are made in
:mod:`deblur_cli.synthesis.motion`; this module turns them into pixels.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # types only
    from deblur_cli.synthesis.config import SynthesisConfig
    from deblur_cli.synthesis.motion import _Blob, _MotionPlan

def _translation(offset: np.ndarray) -> np.ndarray:
    return np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]], [0.0, 0.0, 1.0]])


def _unrotate(angle: float) -> np.ndarray:
    """Rotation by ``-angle`` (radians): into the frame of something turned by ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


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
    if blob.exponent != 2.0:  # superellipse: a rounded box
        p = float(blob.exponent)
        rho = (u.abs().pow(p) + v.abs().pow(p)).pow(1.0 / p)
    dist_px = (rho - outline) * float(blob.radii.mean())
    return (0.5 - dist_px / blob.edge_px).clamp_(0.0, 1.0)


def _blob_box(blob: _Blob, local: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
    """Output rectangle (y0, y1, x0, x1) outside which the blob is transparent in every sub-frame."""
    reach = 1.0 + float(blob.harmonics[:, 0].sum()) + blob.edge_px / float(blob.radii.min())
    reach *= 2.0 ** max(0.0, 0.5 - 1.0 / blob.exponent)  # a superellipse's corners reach farther
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
        scale = np.diag([1.0 / blob.radii[0], 1.0 / blob.radii[1], 1.0])
        if blob.spin is None:
            unit = scale @ _unrotate(blob.angle)
            local = np.stack([unit @ _translation(-blob.centre - blob.motion[i]) @ m for i, m in zip(idx, cam)])
            moves = [_translation(blob.source_shift - blob.motion[i]) for i in idx]
        else:  # the object turns as it moves (rolling): outline and content rotate about its centre
            turned = [scale @ _unrotate(blob.angle + blob.spin[i]) for i in idx]
            local = np.stack([u @ _translation(-blob.centre - blob.motion[i]) @ m for u, i, m in zip(turned, idx, cam)])
            home = _translation(blob.centre + blob.source_shift)
            moves = [home @ _unrotate(blob.spin[i]) @ _translation(-blob.centre - blob.motion[i]) for i in idx]
        box = _blob_box(blob, local, h, w)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        alphas.append(_blob_alpha(blob, _project(local, xs[x0:x1], ys[y0:y1])))
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



def _degrade(
    img: torch.Tensor, rng: np.random.Generator, cfg: SynthesisConfig, gamma: float | None = None
) -> torch.Tensor:
    """Sensor noise, an optional in-camera sharpening, then an optional JPEG round trip.

    Noise: Gaussian whose variance grows with brightness (std at white <= noise_max), or with
    ``poisson_prob`` Poisson shot noise (``photons_range`` electrons at white) plus Gaussian
    read noise (std <= noise_max) in linear light (``x ** gamma``).
    """
    if cfg.noise_max > 0 and rng.random() < cfg.noise_prob:
        if cfg.poisson_prob > 0 and rng.random() < cfg.poisson_prob:
            img = _poisson_gaussian(img, rng, cfg, cfg.gamma if gamma is None else gamma)
        else:
            sigma = rng.uniform(0.0, cfg.noise_max)
            shot = rng.uniform(0.0, 1.0)  # share of the variance that grows with brightness
            std = torch.sqrt(img * (shot * sigma**2) + (1.0 - shot) * sigma**2)
            noise = torch.from_numpy(rng.standard_normal(img.shape, dtype=np.float32))
            img = (img + std * noise).clamp_(0.0, 1.0)
    if cfg.sharpen_prob > 0 and rng.random() < cfg.sharpen_prob:
        img = _unsharp_mask(img, amount=rng.uniform(0.2, 1.0), sigma=rng.uniform(0.6, 1.6))
    if rng.random() < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        full_chroma = cfg.jpeg_444_prob > 0 and rng.random() < cfg.jpeg_444_prob
        img = _jpeg_round_trip(img, quality, subsampling=0 if full_chroma else None)
    return img


def _poisson_gaussian(img: torch.Tensor, rng: np.random.Generator, cfg: SynthesisConfig, gamma: float) -> torch.Tensor:
    lo, hi = cfg.photons_range
    white = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    read = rng.uniform(0.0, cfg.noise_max)
    lin = img.clamp(0.0, 1.0).pow(gamma).numpy()
    electrons = rng.poisson(lin * white).astype(np.float32)
    noisy = electrons / white + read * rng.standard_normal(lin.shape, dtype=np.float32)
    return torch.from_numpy(noisy).clamp_(0.0, 1.0).pow_(1.0 / gamma)


def _unsharp_mask(img: torch.Tensor, amount: float, sigma: float) -> torch.Tensor:
    """``img + amount * (img - gaussian(img))``, clipped: the halo-prone sharpening of cameras."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    x = F.pad(img[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
    return (img + amount * (img - x)).clamp_(0.0, 1.0)


def _jpeg_round_trip(img: torch.Tensor, quality: int, subsampling: int | None = None) -> torch.Tensor:
    from PIL import Image

    from deblur_cli.files.image_io import to_uint8

    arr = to_uint8(img.permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    extra = {} if subsampling is None else {"subsampling": subsampling}  # 0: 4:4:4; default 4:2:0
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, **extra)
    buf.seek(0)
    with Image.open(buf) as decoded:
        out = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()

"""Full-reference image quality metrics: PSNR, SSIM and MS-SSIM.

Conventions (shared by all three functions, as in GoPro deblurring papers):

- Inputs: two images of the same shape. A numpy array is ``H x W x C`` (channels
  last, the library's image layout); a torch tensor is ``C x H x W`` or
  ``1 x C x H x W``. A 2-D input is one channel. Values are used as given (no
  clipping, no colour conversion); ``data_range`` is the span of valid values
  (1.0 for the library's float images in [0, 1], 255 for 8-bit data).
- Colour space: the metrics are computed on the given channels, normally RGB;
  there is no conversion to luma (Y). SSIM and MS-SSIM are computed per channel
  and averaged over the channels.
- Arithmetic is float64 on the device of the first tensor argument (CPU for
  numpy inputs), so results do not depend on the input dtype beyond its rounding.
- Functions return a Python ``float``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor

SSIM_WINDOW = 11  # Gaussian window size (Wang et al. 2004)
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Per-scale exponents of Wang, Simoncelli & Bovik 2003, finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr(a: ArrayLike, b: ArrayLike, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    Value range: (-inf, +inf]; ``float("inf")`` for identical images.
    Colour space: as given (normally RGB); the MSE is taken over all pixels and
    all channels together (not per channel), as GoPro evaluations do.
    Border handling: none, every pixel counts (no border crop).
    """
    x, y = _pair(a, b)
    _check_range(data_range)
    with torch.no_grad():
        mse = float(torch.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: ArrayLike, b: ArrayLike, data_range: float = 1.0) -> float:
    """Structural similarity index (Wang et al. 2004), mean over the image and channels.

    Value range: [-1, 1]; 1 for identical images.
    Colour space: as given (normally RGB), computed per channel then averaged.
    Window: 11x11 Gaussian, sigma 1.5 (separable, normalised); population
    (co)variances; K1 = 0.01, K2 = 0.03.
    Border handling: only the 'valid' region where the window lies fully inside
    the image is averaged, i.e. (11 - 1) // 2 = 5 pixels are dropped on every
    side. This equals scikit-image's ``structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``, which filters with reflect padding
    and then crops 5 pixels per side, so padded values never reach the mean.
    Images smaller than 11 pixels along an axis use, on that axis, the largest
    odd window that fits (same sigma, renormalised); scikit-image refuses them.
    """
    x, y = _pair(a, b)
    _check_range(data_range)
    with torch.no_grad():
        full, _ = _ssim_terms(x, y, data_range)
    return float(full.mean())


def ms_ssim(
    a: ArrayLike,
    b: ArrayLike,
    data_range: float = 1.0,
    *,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003).

    ``prod_j cs_j ** w_j`` over scales 1..M-1 times ``ssim_M ** w_M`` at the
    coarsest scale M, per channel, then averaged over channels. Each scale is the
    previous one 2x2 average-pooled (an odd trailing row or column is dropped).
    ``cs_j`` is the mean contrast-structure term and ``ssim_M`` the mean SSIM, both
    with the window, constants and 'valid'-region border handling of :func:`ssim`.

    Value range: [0, 1]; 1 for identical images. Negative per-scale terms
    (anti-correlated structure) are clamped to 0 before the fractional powers.
    Colour space: as given (normally RGB), per channel then averaged.
    Small images: a scale is used only while both sides are at least 11 pixels
    there, so fewer than 5 scales are used below 176 pixels (11 * 2**4); the weights
    of the scales used are renormalised to sum to 1. With all 5 scales the published
    weights are used as they are (they sum to 1.0001). An image under 22 pixels has
    one scale and MS-SSIM equals :func:`ssim`. It never fails for size reasons.
    ``weights`` (finest scale first) sets the number of scales and their exponents.
    """
    return ssim_and_ms_ssim(a, b, data_range, weights=weights)[1]


def ssim_and_ms_ssim(
    a: ArrayLike,
    b: ArrayLike,
    data_range: float = 1.0,
    *,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> tuple[float, float]:
    """``(ssim(a, b), ms_ssim(a, b))`` in one pass: MS-SSIM's finest scale is SSIM's work.

    Same conventions as :func:`ssim` and :func:`ms_ssim`; about 40% faster than
    calling both.
    """
    x, y = _pair(a, b)
    _check_range(data_range)
    w = _scale_weights(weights, x)
    with torch.no_grad():
        terms: list[torch.Tensor] = []
        for s in range(len(w)):
            if s > 0:
                x, y = _halve(x), _halve(y)
            full, cs = _ssim_terms(x, y, data_range)
            if s == 0:
                single = float(full.mean())
            terms.append(cs if s < len(w) - 1 else full)
        stacked = torch.stack(terms).clamp(min=0.0)  # (scales, C)
        per_channel = torch.prod(stacked ** w[:, None], dim=0)
    return single, float(per_channel.mean())


def _scale_weights(weights: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """All weights when every scale fits ``x`` (C, H, W), else those that fit, summing to 1."""
    w = torch.tensor([float(v) for v in weights], dtype=torch.float64, device=x.device)
    if w.numel() == 0 or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError(f"MS-SSIM weights must be finite and non-negative, got {tuple(weights)!r}")
    used = w[: _usable_scales(x.shape[-2:], len(w))]
    if len(used) == len(w):
        return w  # as published (Wang et al.'s five weights sum to 1.0001; kept as is)
    if float(used.sum()) <= 0.0:
        raise ValueError(
            f"the {len(used)} MS-SSIM scale(s) that fit a {x.shape[-2]}x{x.shape[-1]} image all have weight 0"
        )
    return used / used.sum()


def _usable_scales(size: Sequence[int], wanted: int) -> int:
    """Number of scales (at most ``wanted``) whose image keeps both sides >= the window."""
    h, w = int(size[0]), int(size[1])
    count = 0
    while count < wanted and min(h, w) >= SSIM_WINDOW:
        count += 1
        h, w = h // 2, w // 2
    return max(1, count)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling of a (C, H, W) tensor; an odd last row or column is dropped."""
    return F.avg_pool2d(x[None], 2)[0]


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and mean contrast-structure term over the valid region.

    ``x`` and ``y`` are float64 (C, H, W). Returns two (C,) tensors. Channels are
    filtered one at a time to bound memory on large photos.
    """
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    kh = _gaussian_window(x.shape[-2])
    kw = _gaussian_window(x.shape[-1])
    full, cs = [], []
    for xc, yc in zip(x, y):
        maps = torch.stack([xc, yc, xc * xc, yc * yc, xc * yc])  # (5, H, W)
        mu_x, mu_y, e_xx, e_yy, e_xy = _valid_filter(maps, kh, kw)
        var_x = e_xx - mu_x * mu_x
        var_y = e_yy - mu_y * mu_y
        cov = e_xy - mu_x * mu_y
        cs_map = (2 * cov + c2) / (var_x + var_y + c2)
        lum_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
        full.append((lum_map * cs_map).mean())
        cs.append(cs_map.mean())
    return torch.stack(full), torch.stack(cs)


def _gaussian_window(side: int) -> list[float]:
    """Normalised 1-D Gaussian (sigma 1.5) of 11 taps, or the largest odd size <= ``side``."""
    size = min(SSIM_WINDOW, side if side % 2 else side - 1)
    g = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * SSIM_SIGMA**2)) for i in range(size)]
    total = sum(g)
    return [v / total for v in g]


def _valid_filter(maps: torch.Tensor, kh: list[float], kw: list[float]) -> torch.Tensor:
    """Separable filtering of (..., H, W) maps with no padding ('valid' output).

    Written as in-place weighted sums of shifted views rather than ``conv2d``:
    with one channel and float64, CPU ``conv2d`` measured ~10x slower on 720p.
    """
    return _valid_filter_1d(_valid_filter_1d(maps, kh, -2), kw, -1)


def _valid_filter_1d(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    n = x.shape[dim] - len(taps) + 1
    out = torch.mul(x.narrow(dim, 0, n), taps[0])
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, n), alpha=taps[k])
    return out


def _to_chw(x: ArrayLike, device: torch.device) -> torch.Tensor:
    """numpy H x W [x C] or torch [1 x] C x H x W (or H x W) -> float64 (C, H, W) tensor."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3:
            raise ValueError(f"expected a C x H x W tensor, got shape {tuple(x.shape)}")
    else:
        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"expected an H x W x C array, got shape {arr.shape}")
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return t.to(device=device, dtype=torch.float64).contiguous()


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    device = next((t.device for t in (a, b) if isinstance(t, torch.Tensor)), torch.device("cpu"))
    x, y = _to_chw(a, device), _to_chw(b, device)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)} (C, H, W)")
    if x.shape[-1] == 0 or x.shape[-2] == 0 or x.shape[0] == 0:
        raise ValueError(f"empty image of shape {tuple(x.shape)} (C, H, W)")
    return x, y


def _check_range(data_range: float) -> None:
    if not data_range > 0 or not math.isfinite(data_range):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")

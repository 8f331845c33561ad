"""Metrics cross-checked against scikit-image (test-only dependency).

Tolerances: SSIM within 1e-7 and PSNR within 1e-6 dB of scikit-image (both sides
compute in float64; observed differences are ~1e-15). MS-SSIM has no
scikit-image implementation: it is checked against a reference assembled here
from scikit-image's Gaussian filter and numpy pooling, within 1e-7.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data as skdata
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deblur_cli.quality import metrics
from deblur_cli.quality.metrics import MS_SSIM_WEIGHTS, ms_ssim, psnr, ssim, ssim_and_ms_ssim

SSIM_TOL = 1e-7
PSNR_TOL_DB = 1e-6


def sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
    )


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return img
    return gaussian(img, sigma=sigma, mode="reflect", channel_axis=-1, preserve_range=True)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def astronaut(h: int = 128, w: int = 160) -> np.ndarray:
    return skdata.astronaut()[100 : 100 + h, 150 : 150 + w].astype(np.float64) / 255.0


def structured(h: int, w: int) -> np.ndarray:
    """Gradients, a checkerboard and a sinusoid in the three channels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    checker = ((yy // 4 + xx // 4) % 2).astype(np.float64)
    return np.stack([xx / max(w - 1, 1), checker, 0.5 + 0.5 * np.sin(xx / 3.0 + yy / 5.0)], axis=-1)


def pairs():
    rng = _rng(1)
    a = rng.random((37, 53, 3))
    yield "random", a, np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    s = structured(64, 96)
    yield "structured-blur", s, blur(s, 1.2)
    n = astronaut()
    yield "natural-noise", n, np.clip(n + 0.05 * rng.standard_normal(n.shape), 0, 1)
    yield "natural-blur", n, blur(n, 2.0)
    yield "minimum-size", rng.random((11, 11, 3)), rng.random((11, 11, 3))
    yield "unrelated", astronaut(), structured(128, 160)


@pytest.mark.parametrize("label,a,b", list(pairs()), ids=[p[0] for p in pairs()])
def test_ssim_matches_scikit_image(label, a, b):
    expected = sk_ssim(a, b)
    assert abs(ssim(a, b) - expected) < SSIM_TOL
    assert abs(ssim(b, a) - expected) < SSIM_TOL


@pytest.mark.parametrize("label,a,b", list(pairs()), ids=[p[0] for p in pairs()])
def test_psnr_matches_scikit_image(label, a, b):
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a, b, data_range=1.0)) < PSNR_TOL_DB


def test_float32_inputs_match_float64_reference():
    a = astronaut().astype(np.float32)
    b = blur(a, 1.5).astype(np.float32)
    assert abs(ssim(a, b) - sk_ssim(a, b)) < SSIM_TOL
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=1.0)) < PSNR_TOL_DB


def test_8bit_data_range():
    rng = _rng(2)
    a = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert abs(psnr(a, b, data_range=255) - peak_signal_noise_ratio(a, b, data_range=255)) < PSNR_TOL_DB
    assert abs(ssim(a, b, data_range=255) - sk_ssim(a, b, data_range=255)) < SSIM_TOL


def test_torch_chw_tensors_equal_numpy_hwc():
    a = astronaut()
    b = blur(a, 1.0)
    ta, tb = torch.from_numpy(a).permute(2, 0, 1).float(), torch.from_numpy(b).permute(2, 0, 1).float()
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert ssim(ta, tb) == pytest.approx(ssim(a32, b32), abs=1e-12)
    assert psnr(ta, tb) == pytest.approx(psnr(a32, b32), abs=1e-9)
    assert ms_ssim(ta[None], tb[None]) == pytest.approx(ms_ssim(a32, b32), abs=1e-12)
    assert ssim(ta, b32) == pytest.approx(ssim(a32, b32), abs=1e-12)  # mixed inputs


def test_identical_images():
    a = astronaut()
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_known_psnr_value():
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-9)


def test_shape_mismatch_and_bad_range_raise():
    a = np.zeros((16, 16, 3))
    with pytest.raises(ValueError, match="shape"):
        ssim(a, np.zeros((16, 17, 3)))
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((16, 16, 1)))
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0)
    with pytest.raises(ValueError, match="weights"):
        ms_ssim(a, a, weights=(-1.0, 1.0))


def test_ssim_of_anticorrelated_images_is_negative_and_ms_ssim_clamped():
    a = structured(64, 64)
    b = 1.0 - a
    assert ssim(a, b) < 0
    assert ssim(a, b) == pytest.approx(sk_ssim(a, b), abs=SSIM_TOL)
    assert 0.0 <= ms_ssim(a, b) < 0.1


# ---------------------------------------------------------------- MS-SSIM


def _pool(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    return img[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


def _reference_terms(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and contrast-structure term, from scikit-image's Gaussian filter."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def f(x):
        return gaussian(x, sigma=1.5, mode="reflect", truncate=3.5, preserve_range=True)

    full, cs = [], []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        mx, my = f(x), f(y)
        vx, vy, vxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        cs_map = ((2 * vxy + c2) / (vx + vy + c2))[5:-5, 5:-5]
        lum = ((2 * mx * my + c1) / (mx * mx + my * my + c1))[5:-5, 5:-5]
        full.append((lum * cs_map).mean())
        cs.append(cs_map.mean())
    return np.array(full), np.array(cs)


def _reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array(MS_SSIM_WEIGHTS)
    result = np.ones(a.shape[-1])
    for j, wj in enumerate(w):
        full, cs = _reference_terms(a, b)
        result *= np.maximum(full if j == len(w) - 1 else cs, 0) ** wj
        a, b = _pool(a), _pool(b)
    return float(result.mean())


def test_ms_ssim_matches_reference_built_from_scikit_image():
    a = skdata.astronaut()[:180, 100:300].astype(np.float64) / 255.0  # 180 px: 5 full scales
    for b in (blur(a, 1.5), np.clip(a + 0.05 * _rng(3).standard_normal(a.shape), 0, 1)):
        assert abs(ms_ssim(a, b) - _reference_ms_ssim(a, b)) < SSIM_TOL


def test_one_scale_is_the_contrast_structure_term():
    """With all weight on the finest scale, MS-SSIM is that scale's mean cs term, not SSIM."""
    a = astronaut()
    b = blur(a, 1.5)
    _, cs = _reference_terms(a, b)
    value = ms_ssim(a, b, weights=(1.0, 0.0, 0.0, 0.0, 0.0))
    assert abs(value - cs.mean()) < SSIM_TOL
    assert abs(value - ssim(a, b)) > 1e-4  # luminance is excluded, so it differs from SSIM


def test_coarsest_scale_is_ssim_of_the_pooled_images():
    a = skdata.astronaut()[:200, :240].astype(np.float64) / 255.0
    b = blur(a, 2.0)
    pa, pb = a, b
    for _ in range(4):
        pa, pb = _pool(pa), _pool(pb)
    assert abs(ms_ssim(a, b, weights=(0, 0, 0, 0, 1.0)) - sk_ssim(pa, pb)) < SSIM_TOL


def test_single_weight_is_plain_ssim():
    a = astronaut()
    b = blur(a, 1.0)
    assert ms_ssim(a, b, weights=(1.0,)) == pytest.approx(ssim(a, b), abs=1e-12)


def test_ms_ssim_monotone_under_blur_and_noise():
    a = skdata.astronaut()[:192, 64:256].astype(np.float64) / 255.0
    blurred = [ms_ssim(a, blur(a, s)) for s in (0.5, 1.0, 2.0, 4.0)]
    assert all(x > y for x, y in zip(blurred, blurred[1:])), blurred
    noise = _rng(4).standard_normal(a.shape)
    noisy = [ms_ssim(a, np.clip(a + s * noise, 0, 1)) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(x > y for x, y in zip(noisy, noisy[1:])), noisy
    assert all(0.0 <= v < 1.0 for v in blurred + noisy)


def test_combined_call_equals_separate_calls():
    a = astronaut()
    b = blur(a, 1.3)
    s, m = ssim_and_ms_ssim(a, b)
    assert s == ssim(a, b)
    assert m == ms_ssim(a, b)


@pytest.mark.parametrize(
    "size,scales",
    [((1, 1), 1), ((5, 7), 1), ((21, 300), 1), ((22, 22), 2), ((100, 100), 4), ((175, 500), 4), ((176, 176), 5)],
)
def test_small_images_use_fewer_scales(size, scales):
    assert metrics._usable_scales(size, 5) == scales
    rng = _rng(5)
    a = rng.random((*size, 3))
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)
    value = ms_ssim(a, b)
    assert 0.0 <= value <= 1.0
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    if scales == 1:
        assert value == pytest.approx(ssim(a, b), abs=1e-12)


def test_small_images_shrink_the_ssim_window():
    rng = _rng(6)
    a, b = rng.random((5, 7, 3)), rng.random((5, 7, 3))
    assert -1.0 <= ssim(a, b) <= 1.0
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # A 5x7 window over a 5x7 image leaves one valid position, equal to a direct computation.
    g = metrics._gaussian_window
    w = np.outer(g(5), g(7))
    c1, c2 = 0.01**2, 0.03**2
    per_channel = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]
        mx, my = (w * x).sum(), (w * y).sum()
        vx, vy, vxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
        per_channel.append((2 * mx * my + c1) * (2 * vxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim(a, b) == pytest.approx(np.mean(per_channel), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_any_size_gives_bounded_scores(h, w, seed):
    rng = _rng(seed)
    a, b = rng.random((h, w, 3)), rng.random((h, w, 3))
    s, m = ssim_and_ms_ssim(a, b)
    assert -1.0 <= s <= 1.0
    assert 0.0 <= m <= 1.0
    assert s == pytest.approx(ssim(b, a), abs=1e-12)  # symmetric
    if min(h, w) >= 11:
        assert abs(s - sk_ssim(a, b)) < SSIM_TOL

"""bench/uniform_shake.py: one curved camera-shake kernel per crop, 5-45 px."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import uniform_shake as us  # noqa: E402
import valsets  # noqa: E402


@pytest.mark.parametrize("extent", [5.0, 20.0, 45.0])
def test_kernel_has_the_extent_sums_to_one_and_is_centred(extent):
    kernel = us.rasterise(us.shake_path(np.random.default_rng(int(extent)), extent))
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0) and kernel.min() >= 0
    half = kernel.shape[0] // 2
    grid = np.arange(kernel.shape[0]) - half
    assert abs((kernel.sum(0) * grid).sum()) < 0.5 and abs((kernel.sum(1) * grid).sum()) < 0.5
    ys, xs = np.nonzero(kernel > 1e-6)
    assert extent - 1 <= max(np.ptp(xs), np.ptp(ys)) <= extent + 2  # bilinear splats widen it by up to 1 px each way


def test_kernels_differ_and_some_curve():
    straightness = []
    for seed in range(12):
        path = us.shake_path(np.random.default_rng(seed), 30.0)
        chord = np.linalg.norm(path[-1] - path[0])
        straightness.append(chord / np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    assert min(straightness) < 0.8 and max(straightness) > 0.9  # curled traces and nearly straight ones


def test_blur_region_is_the_convolution_in_linear_light():
    rng = np.random.default_rng(0)
    region = np.zeros((40 + 2 * us.MARGIN, 40 + 2 * us.MARGIN, 3), np.float32)
    region[us.MARGIN + 20, us.MARGIN + 20] = 1.0  # a point light
    kernel = us.rasterise(us.shake_path(np.random.default_rng(1), 9.0))
    out = us.blur_region(region, kernel, 40, rng)
    lin = us.srgb_to_linear(out[..., 0].astype(np.float64))
    h = kernel.shape[0] // 2
    spot = lin[20 - h : 20 + h + 1, 20 - h : 20 + h + 1]
    assert np.corrcoef(spot.ravel(), kernel.ravel())[0, 1] > 0.95  # the point spreads into the kernel
    assert lin.sum() == pytest.approx(1.0, abs=0.1)


def test_main_writes_a_set_that_evaluate_reads(tmp_path, monkeypatch):
    from PIL import Image

    from deblur_cli.data.datasets import find_pairs

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((140, 150, 3)) * 255).astype(np.uint8)).save(photos / "p0.png")
    out = tmp_path / "set"
    monkeypatch.setattr(sys, "argv", ["uniform_shake", str(photos), str(out), "--size", "48"])
    us.main()
    pairs = find_pairs(out)
    manifest = valsets.read_manifest(out)
    assert len(pairs) == 3 and set(manifest) == {p.name for p in pairs}
    assert sorted(r.cls for r in manifest.values()) == sorted(valsets.CLASSES)
    for r in manifest.values():
        lo, hi = us.EXTENT_CLASSES[r.cls]
        assert lo <= r.blur_px <= hi
        kernel = us.load_kernel(out / "p0" / "kernel" / f"{r.name}.npy")
        assert kernel.sum() == pytest.approx(1.0)

"""Tests for deblur_cli.synthesis: exactness at zero motion, alignment, trajectories, strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deblur_cli.errors import UsageError
from deblur_cli.synthesis import (
    SynthesisConfig,
    _blob_alpha,
    _blob_box,
    _degrade,
    _plan_motion,
    _project,
    _subframes,
    random_trajectory,
    sample_strength,
    synthesize,
)

CLEAN = SynthesisConfig(noise_prob=0.0, jpeg_prob=0.0)  # blur only, so outputs can be compared exactly
NO_OBJECTS = SynthesisConfig(noise_prob=0.0, jpeg_prob=0.0, object_prob=0.0)


def textured(size: int = 80, seed: int = 0) -> torch.Tensor:
    """A smooth random texture with detail at several scales, 3 x size x size in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(1, 3, size, size)
    for cells in (4, 8, 16, 32):
        noise = torch.rand(1, 3, cells, cells, generator=g)
        img += F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)
    img = img[0] / 4.0
    return ((img - img.min()) / (img.max() - img.min())).contiguous()


def grad_mag(img: torch.Tensor) -> float:
    return float((img[:, 1:, :] - img[:, :-1, :]).abs().mean() + (img[:, :, 1:] - img[:, :, :-1]).abs().mean())


def test_zero_strength_returns_input_exactly_even_with_noise_and_jpeg() -> None:
    sharp = textured(48)
    cfg = SynthesisConfig(noise_prob=1.0, jpeg_prob=1.0)
    blurry, target = synthesize(sharp, np.random.default_rng(0), cfg, strength=0.0)
    assert torch.equal(blurry, sharp) and torch.equal(target, sharp)
    blurry, target = synthesize(sharp, np.random.default_rng(0), cfg, strength=0.0, margin=8)
    assert torch.equal(blurry, sharp[:, 8:-8, 8:-8]) and torch.equal(target, sharp[:, 8:-8, 8:-8])


def test_zero_motion_config_returns_input_exactly() -> None:
    sharp = textured(48)
    cfg = SynthesisConfig(max_shake_px=0.0, max_rotation_deg=0.0, object_prob=0.0, noise_prob=0.0, jpeg_prob=0.0)
    blurry, target = synthesize(sharp, np.random.default_rng(3), cfg, strength=1.0)
    assert torch.equal(blurry, sharp) and torch.equal(target, sharp)


def test_shapes_and_range_with_margin() -> None:
    sharp = textured(72)
    for seed in range(4):
        blurry, target = synthesize(sharp, np.random.default_rng(seed), SynthesisConfig(object_prob=1.0), margin=12)
        assert blurry.shape == target.shape == (3, 48, 48)
        assert blurry.dtype == target.dtype == torch.float32
        for t in (blurry, target):
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def test_target_is_middle_subframe_and_blurry_its_average() -> None:
    sharp = textured(64)
    for cfg in (CLEAN, SynthesisConfig(noise_prob=0.0, jpeg_prob=0.0, object_prob=1.0)):
        frames, middle = _subframes(sharp, np.random.default_rng(7), cfg, strength=0.8, margin=8)
        blurry, target = synthesize(sharp, np.random.default_rng(7), cfg, strength=0.8, margin=8)
        assert frames.shape[0] % 2 == 1 and middle == frames.shape[0] // 2
        assert torch.allclose(target, frames[middle].pow(1 / cfg.gamma), atol=1e-5)
        assert torch.allclose(blurry, frames.mean(0).pow(1 / cfg.gamma), atol=1e-5)
    # without objects the middle sub-frame is the (cropped) input itself
    frames, middle = _subframes(sharp, np.random.default_rng(7), NO_OBJECTS, strength=0.8, margin=8)
    assert torch.allclose(frames[middle], sharp[:, 8:-8, 8:-8].pow(CLEAN.gamma), atol=1e-6)
    assert not torch.allclose(frames[0], frames[middle])


def test_blurry_is_aligned_with_target() -> None:
    sharp = textured(96, seed=1)
    for seed in range(6):
        blurry, target = synthesize(sharp, np.random.default_rng(seed), NO_OBJECTS, strength=0.15, margin=12)
        assert not torch.equal(blurry, target)
        aligned = F.mse_loss(blurry[:, 4:-4, 4:-4], target[:, 4:-4, 4:-4]).item()
        for dy, dx in ((2, 0), (-2, 0), (0, 2), (0, -2)):
            shifted = torch.roll(target, shifts=(dy, dx), dims=(1, 2))[:, 4:-4, 4:-4]
            assert aligned < F.mse_loss(blurry[:, 4:-4, 4:-4], shifted).item()


def test_same_seed_reproduces_different_seeds_differ() -> None:
    sharp = textured(48)
    a = synthesize(sharp, np.random.default_rng(11), SynthesisConfig(), strength=0.7)
    b = synthesize(sharp, np.random.default_rng(11), SynthesisConfig(), strength=0.7)
    c = synthesize(sharp, np.random.default_rng(12), SynthesisConfig(), strength=0.7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_blur_increases_with_strength() -> None:
    sharp = textured(96, seed=2)
    means = []
    for strength in (0.0, 0.3, 1.0):
        blurred = [synthesize(sharp, np.random.default_rng(s), CLEAN, strength=strength, margin=16)[0] for s in range(4)]
        mags = [grad_mag(b) for b in blurred]
        means.append(np.mean(mags))
    assert means[0] > means[1] > means[2]


def test_rotation_blurs_corners_more_than_centre() -> None:
    sharp = textured(128, seed=3)
    cfg = SynthesisConfig(
        max_shake_px=0.0, max_rotation_deg=12.0, tilt_fraction=0.0, object_prob=0.0, noise_prob=0.0, jpeg_prob=0.0
    )
    blurry, target = synthesize(sharp, np.random.default_rng(5), cfg, strength=1.0, margin=16)
    err = (blurry - target).abs().mean(0)
    centre = float(err[40:56, 40:56].mean())
    corners = float((err[:16, :16].mean() + err[:16, -16:].mean() + err[-16:, :16].mean() + err[-16:, -16:].mean()) / 4)
    assert corners > 3 * centre


def test_objects_move_independently_of_the_camera() -> None:
    sharp = textured(96, seed=4)
    cfg = SynthesisConfig(
        max_shake_px=0.0, max_rotation_deg=0.0, object_prob=1.0, max_object_px=20.0, noise_prob=0.0, jpeg_prob=0.0
    )
    blurry, target = synthesize(sharp, np.random.default_rng(2), cfg, strength=1.0, margin=8)
    static = sharp[:, 8:-8, 8:-8]
    changed = (target - static).abs().amax(0) > 1e-4  # where an object was pasted
    assert 0 < changed.float().mean() < 1  # part of the image, not all of it
    blurred = (blurry - target).abs().amax(0) > 1e-3
    assert blurred.any() and not blurred.all()  # static background stays sharp


def translate(offset: np.ndarray) -> np.ndarray:
    return np.array([[1.0, 0, offset[0]], [0, 1.0, offset[1]], [0, 0, 1.0]])


def test_object_box_holds_everything_the_object_covers() -> None:
    """Objects are only evaluated inside a box; check on the full frame that nothing lies outside it."""
    h, w = 60, 80
    xs, ys = torch.arange(w) - (w - 1) / 2.0, torch.arange(h) - (h - 1) / 2.0
    cfg = SynthesisConfig(object_prob=1.0, max_objects=2)
    checked = 0
    for seed in range(10):
        plan = _plan_motion(np.random.default_rng(seed), cfg, 1.0, h, w)
        for blob in plan.blobs:
            cam = [translate(s) @ hm for s, hm in zip(plan.shake, plan.homographies)]
            c, s = np.cos(blob.angle), np.sin(blob.angle)
            unit = np.diag([1 / blob.radii[0], 1 / blob.radii[1], 1.0]) @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])
            move = [translate(-blob.centre - m) for m in blob.motion]
            local = np.stack([unit @ t @ k for t, k in zip(move, cam)])
            alpha = _blob_alpha(blob, _project(local, xs, ys))
            inside = torch.zeros(h, w, dtype=torch.bool)
            box = _blob_box(blob, local, h, w)
            if box is not None:
                inside[box[0] : box[1], box[2] : box[3]] = True
                checked += 1
            assert float((alpha * ~inside).max()) == 0.0
            assert box is None or float(alpha.max()) > 0.0
    assert checked >= 5


def test_trajectory_centred_scaled_and_reproducible() -> None:
    for n in (7, 8, 13):
        traj = random_trajectory(np.random.default_rng(n), n, 24.0)
        assert traj.shape == (n, 2)
        assert np.allclose(traj[n // 2], 0.0)
        assert np.isclose(max(np.ptp(traj[:, 0]), np.ptp(traj[:, 1])), 24.0)
    one, again, two = (random_trajectory(np.random.default_rng(s), 9, 5.0) for s in (1, 1, 2))
    assert np.array_equal(one, again) and not np.allclose(one, two)
    assert np.array_equal(random_trajectory(np.random.default_rng(0), 5, 0.0), np.zeros((5, 2)))


def test_trajectory_blur_is_centred_on_the_middle_sample() -> None:
    rng = np.random.default_rng(0)
    offsets = [np.linalg.norm(random_trajectory(rng, 65, 1.0).mean(0)) for _ in range(50)]
    assert np.median(offsets) < 0.15 and max(offsets) < 0.35  # in units of the extent


def test_strength_distribution_favours_moderate_blur() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([sample_strength(rng, SynthesisConfig()) for _ in range(2000)])
    assert draws.min() >= 0.0 and draws.max() <= 1.0
    assert 0.3 < np.median(draws) < 0.6
    assert (draws > 0.8).mean() < 0.15 and (draws == 0.0).mean() > 0.01
    fixed = SynthesisConfig(strength=(0.4, 0.4))
    assert sample_strength(rng, fixed) == 0.4


def test_noise_is_bounded_and_jpeg_keeps_shape() -> None:
    img = torch.full((3, 64, 64), 0.5)
    noisy = _degrade(img, np.random.default_rng(0), SynthesisConfig(noise_prob=1.0, noise_max=0.02, jpeg_prob=0.0))
    assert 0.0 < float((noisy - img).std()) <= 0.03
    jpeg = _degrade(textured(64), np.random.default_rng(0), SynthesisConfig(noise_prob=0.0, jpeg_prob=1.0))
    assert jpeg.shape == (3, 64, 64) and float(jpeg.min()) >= 0.0 and float(jpeg.max()) <= 1.0


def test_bad_config_and_input_are_refused() -> None:
    with pytest.raises(UsageError):
        SynthesisConfig(min_subframes=9, max_subframes=7)
    with pytest.raises(UsageError):
        SynthesisConfig(strength=(0.5, 0.2))
    with pytest.raises(ValueError):
        synthesize(torch.zeros(1, 8, 8), np.random.default_rng(0))
    with pytest.raises(ValueError):
        synthesize(torch.zeros(3, 8, 8), np.random.default_rng(0), margin=4)

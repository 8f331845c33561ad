"""Tests for deblur_cli.synthesis: exactness at zero motion, alignment, trajectories, strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deblur_cli.errors import UsageError
from deblur_cli.synthesis import (
    SynthesisConfig,
    _plan_motion,
    random_trajectory,
    sample_strength,
    synthesize,
)
from deblur_cli.synthesis.blur import _subframes
from deblur_cli.synthesis.render import _blob_alpha, _blob_box, _degrade, _project

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


# ---------------------------------------------------------------------------------------------
# Variety options (issue 10, part 5)

from dataclasses import replace  # noqa: E402

from deblur_cli.synthesis import (  # noqa: E402
    MILD_MEDIUM_BETA,
    STRENGTH_CLASSES,
    TRAJECTORY_FAMILIES,
    VARIED,
    config_for_class,
    family_trajectory,
    random_region,
    strength_class,
)
from deblur_cli.synthesis.render import _jpeg_round_trip  # noqa: E402

STILL = SynthesisConfig(noise_prob=0.0, jpeg_prob=0.0, object_prob=0.0, max_shake_px=0.0, max_rotation_deg=0.0)


def test_variety_fields_at_their_defaults_change_nothing() -> None:
    explicit = replace(CLEAN, trajectory_weights=(1, 0, 0, 0), discrete_prob=0.0, zoom_prob=0.0, spin_prob=0.0,
                       object_shape_weights=(1, 0, 0), max_object_spin_deg=0.0, poisson_prob=0.0, sharpen_prob=0.0)
    img = textured(96)
    for seed in range(4):
        a = synthesize(img, np.random.default_rng(seed), CLEAN, margin=16)
        b = synthesize(img, np.random.default_rng(seed), explicit, margin=16)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("family", TRAJECTORY_FAMILIES)
def test_every_trajectory_family_is_centred_scaled_and_reproducible(family: str) -> None:
    a = family_trajectory(np.random.default_rng(1), family, 65, 20.0)
    b = family_trajectory(np.random.default_rng(1), family, 65, 20.0)
    assert np.array_equal(a, b) and a.shape == (65, 2)
    assert np.allclose(a[32], 0.0) and max(np.ptp(a[:, 0]), np.ptp(a[:, 1])) == pytest.approx(20.0)
    offsets = [np.linalg.norm(family_trajectory(np.random.default_rng(s), family, 65, 1.0).mean(0)) for s in range(20)]
    assert np.median(offsets) < 0.3  # the blur stays near the target (units of the extent)


def test_trajectory_families_have_their_own_shapes() -> None:
    def straightness(path: np.ndarray) -> float:  # chord / path length: 1 for a straight line
        return float(np.linalg.norm(path[-1] - path[0]) / np.linalg.norm(np.diff(path, axis=0), axis=1).sum())

    def dwell(path: np.ndarray) -> float:  # share of steps moving < 10% of the mean step
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        return float((steps < 0.1 * steps.mean()).mean())

    paths = {
        f: [family_trajectory(np.random.default_rng(s), f, 129, 10.0) for s in range(12)] for f in TRAJECTORY_FAMILIES
    }
    assert min(straightness(p) for p in paths["line"]) > 0.9
    assert np.median([straightness(p) for p in paths["tremor"]]) < np.median([straightness(p) for p in paths["line"]])
    assert np.median([dwell(p) for p in paths["jerk"]]) > 0.2 > np.median([dwell(p) for p in paths["line"]])


def test_trajectory_weights_pick_the_family() -> None:
    lines = replace(NO_OBJECTS, trajectory_weights=(0, 1, 0, 0), max_rotation_deg=0.0)
    plan = _plan_motion(np.random.default_rng(0), lines, 1.0, 64, 64)
    chord = np.linalg.norm(plan.shake[-1] - plan.shake[0])
    assert chord > 0.9 * np.linalg.norm(np.diff(plan.shake, axis=0), axis=1).sum()
    with pytest.raises(UsageError):
        SynthesisConfig(trajectory_weights=(0, 0, 0, 0))


def test_discrete_prob_keeps_only_the_drawn_subframes() -> None:
    dense = _plan_motion(np.random.default_rng(0), NO_OBJECTS, 1.0, 64, 64)
    ghosts = _plan_motion(np.random.default_rng(0), replace(NO_OBJECTS, discrete_prob=1.0), 1.0, 64, 64)
    assert dense.n > 13 and 7 <= ghosts.n <= 13 and ghosts.n % 2 == 1


def test_gamma_range_sets_the_averaging_space() -> None:
    img = textured(64)
    plain = replace(NO_OBJECTS, gamma_range=(1.0, 1.0))
    frames, _ = _subframes(img, np.random.default_rng(3), plain, strength=0.8)
    blurry, _ = synthesize(img, np.random.default_rng(3), plain, strength=0.8)
    assert torch.allclose(blurry, frames.mean(0).clamp(0, 1), atol=1e-5)  # averaged as encoded values
    linear, _ = synthesize(img, np.random.default_rng(3), NO_OBJECTS, strength=0.8)
    assert float((linear - blurry).abs().max()) > 0.01
    with pytest.raises(UsageError):
        SynthesisConfig(gamma_range=(0.0, 2.2))


def test_zoom_and_spin_are_scale_and_rotation_about_a_point() -> None:
    zoom = _plan_motion(np.random.default_rng(0), replace(STILL, zoom_prob=1.0, max_zoom=0.1), 1.0, 64, 64)
    assert np.allclose(zoom.homographies[zoom.middle], np.eye(3))
    first = zoom.homographies[0][:2, :2]
    assert abs(first[0, 0] - 1.0) > 0.01 and np.allclose(first, first[0, 0] * np.eye(2))
    spin = _plan_motion(np.random.default_rng(0), replace(STILL, spin_prob=1.0, max_spin_deg=10.0), 1.0, 64, 64)
    lin = spin.homographies[0][:2, :2]
    assert np.allclose(lin @ lin.T, np.eye(2)) and abs(lin[0, 1]) > 0.01  # a rotation by a visible angle
    shaky = replace(STILL, max_shake_px=24.0, spin_prob=1.0)
    assert np.ptp(_plan_motion(np.random.default_rng(0), shaky, 1.0, 64, 64).shake, axis=0).max() <= 0.6 * 24.0 + 1e-9


def test_object_shapes_spin_and_speed() -> None:
    cfg = replace(NO_OBJECTS, object_prob=1.0, max_objects=1, object_shape_weights=(0, 1, 0), max_object_spin_deg=90.0)
    plan = _plan_motion(np.random.default_rng(0), cfg, 1.0, 64, 64)
    (blob,) = plan.blobs
    assert blob.exponent > 2.0 and blob.spin is not None and blob.spin[plan.middle] == 0.0 and abs(blob.spin[0]) > 0.05
    big = replace(blob, radii=np.array([30.0, 30.0]), edge_px=1.0)
    corner = torch.tensor([[0.8, 0.8]])  # inside a rounded box, outside the ellipse
    assert float(_blob_alpha(big, corner)[0]) == 1.0
    assert float(_blob_alpha(replace(big, exponent=2.0), corner)[0]) == 0.0
    blurry, target = synthesize(textured(96), np.random.default_rng(0), cfg, strength=1.0, margin=16)
    assert blurry.shape == target.shape == (3, 64, 64) and torch.isfinite(blurry).all()
    still = replace(cfg, object_speed=(0.0, 0.0), max_object_spin_deg=0.0)
    assert np.allclose(_plan_motion(np.random.default_rng(0), still, 1.0, 64, 64).blobs[0].motion, 0.0)


def test_poisson_noise_falls_with_more_light_and_sharpening_overshoots() -> None:
    img = torch.full((3, 64, 64), 0.5)
    cfg = SynthesisConfig(noise_prob=1.0, poisson_prob=1.0, noise_max=1e-4, jpeg_prob=0.0)  # read noise ~0
    dim = _degrade(img, np.random.default_rng(0), replace(cfg, photons_range=(50.0, 50.0)))
    bright = _degrade(img, np.random.default_rng(0), replace(cfg, photons_range=(5000.0, 5000.0)))
    assert float(dim.std()) > 3 * float(bright.std()) > 0
    assert abs(float(bright.mean()) - 0.5) < 0.01
    edge = torch.full((3, 32, 32), 0.3)
    edge[:, :, 16:] = 0.7
    sharp = _degrade(edge, np.random.default_rng(0), SynthesisConfig(noise_prob=0.0, jpeg_prob=0.0, sharpen_prob=1.0))
    assert float(sharp.max()) > 0.705 and float(sharp.min()) < 0.295  # overshoot on both sides of the edge


def test_jpeg_without_chroma_subsampling_keeps_colour_detail() -> None:
    img = torch.zeros(3, 64, 64)
    img[0, :, ::2] = 1.0  # red/green stripes one pixel wide: chroma detail
    img[1, :, 1::2] = 1.0
    err_420 = float((_jpeg_round_trip(img, 90) - img).abs().mean())
    err_444 = float((_jpeg_round_trip(img, 90, subsampling=0) - img).abs().mean())
    assert err_444 < 0.5 * err_420


def test_random_region_scales_the_photo() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 400, dtype=np.float32)[None, :, None], (300, 1, 3))
    same = random_region(ramp, 96, np.random.default_rng(0), SynthesisConfig())
    rng = np.random.default_rng(0)
    y, x = int(rng.integers(0, 300 - 96 + 1)), int(rng.integers(0, 400 - 96 + 1))
    assert np.array_equal(same, ramp[y : y + 96, x : x + 96])  # scale 1: a plain cut, same draws as before
    half = random_region(ramp, 96, np.random.default_rng(0), SynthesisConfig(scale_range=(0.5, 0.5)))
    assert half.shape == (96, 96, 3)
    assert float(np.diff(half[48], axis=0).mean()) == pytest.approx(2.0 / 399, rel=0.05)
    tiny = (ramp[:40, :40] * 255).astype(np.uint8)
    small = random_region(tiny, 96, np.random.default_rng(0), SynthesisConfig(scale_range=(2.0, 2.0)))
    assert small.shape == (96, 96, 3) and small.dtype == np.uint8 and small.flags.writeable


def test_varied_config_makes_valid_reproducible_pairs() -> None:
    cfg = SynthesisConfig(**VARIED)
    img = textured(96)
    for seed in range(8):
        blurry, target = synthesize(img, np.random.default_rng(seed), cfg, margin=16)
        again, _ = synthesize(img, np.random.default_rng(seed), cfg, margin=16)
        assert blurry.shape == target.shape == (3, 64, 64) and torch.equal(blurry, again)
        assert float(blurry.min()) >= 0.0 and float(blurry.max()) <= 1.0


def test_mild_medium_strength_shape_and_classes() -> None:
    rng = np.random.default_rng(0)
    default = np.array([sample_strength(rng, SynthesisConfig()) for _ in range(3000)])
    mild = np.array([sample_strength(rng, SynthesisConfig(strength_beta=MILD_MEDIUM_BETA)) for _ in range(3000)])
    assert (mild >= 0.6).mean() < 0.12 < (default >= 0.6).mean()
    assert ((mild >= 0.1) & (mild < 0.6)).mean() > 0.75
    assert [strength_class(s) for s in (0.0, 0.2, 0.45, 0.9, 1.2)] == ["none", "mild", "medium", "strong", "strong"]
    for name, (lo, hi) in STRENGTH_CLASSES.items():
        cfg = config_for_class(SynthesisConfig(), name)
        draws = [sample_strength(rng, cfg) for _ in range(200)]
        assert all(lo <= s <= hi and strength_class(s) in (name, "strong") for s in draws)
    with pytest.raises(UsageError):
        config_for_class(SynthesisConfig(), "extreme")


def test_motion_names_stay_importable_from_synthesis() -> None:
    """The camera paths and motion plan live in synthesis.motion; the package re-exports the same objects."""
    from deblur_cli import synthesis
    from deblur_cli.synthesis import motion as synthesis_motion

    for name in ("random_trajectory", "family_trajectory", "TRAJECTORY_FAMILIES", "OBJECT_SHAPES", "_plan_motion"):
        assert getattr(synthesis, name) is getattr(synthesis_motion, name)
    assert set(synthesis.__all__) <= set(dir(synthesis))


def test_noise_free_twin_has_the_same_blur_and_no_degradation():
    import numpy as np
    import torch

    from deblur_cli.synthesis import SynthesisConfig, synthesize

    sharp = torch.rand(3, 64 + 2 * 8, 64 + 2 * 8)
    noisy_cfg = SynthesisConfig(noise_prob=1.0, jpeg_prob=1.0)
    quiet_cfg = SynthesisConfig(noise_prob=1.0, noise_max=0.0, jpeg_prob=0.0)
    noisy, t1 = synthesize(sharp, np.random.default_rng(4), noisy_cfg, 0.5, margin=8)
    twin, t2 = synthesize(sharp, np.random.default_rng(4), noisy_cfg, 0.5, margin=8, degrade=False)
    clean, _ = synthesize(sharp, np.random.default_rng(4), quiet_cfg, 0.5, margin=8)
    assert torch.equal(t1, t2)
    assert torch.allclose(twin, clean, atol=1e-6)  # the blur without noise or JPEG
    assert (noisy - twin).abs().mean() > 0.005


def test_uniform_prob_gives_one_kernel_over_the_whole_crop():
    import numpy as np

    from deblur_cli.synthesis import SynthesisConfig
    from deblur_cli.synthesis.motion import _plan_motion

    everything = dict(object_prob=1.0, zoom_prob=1.0, spin_prob=1.0, max_rotation_deg=5.0)
    uniform = _plan_motion(np.random.default_rng(0), SynthesisConfig(uniform_prob=1.0, **everything), 0.8, 64, 64)
    assert not uniform.blobs and np.allclose(uniform.homographies, np.eye(3))
    assert np.ptp(uniform.shake, axis=0).max() > 1.0  # the camera still moves
    mixed = _plan_motion(np.random.default_rng(0), SynthesisConfig(uniform_prob=0.0, **everything), 0.8, 64, 64)
    assert mixed.blobs and not np.allclose(mixed.homographies, np.eye(3))

"""Inference engine: devices, precisions, padding, tiled vs whole-image equivalence, OOM retry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import deblur_cli.network.engine as engine
from deblur_cli.errors import ResourceError, UsageError
from deblur_cli.methods import InferenceOptions
from deblur_cli.network import architectures
from deblur_cli.network.engine import (
    DEFAULT_OVERLAP,
    Engine,
    resolve_device,
    resolve_precision,
)
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig
from deblur_cli.network.tiling import fit_tile


@dataclass(frozen=True)
class EngineOpts:
    """The fields the engine reads (``engine.EngineOptions``), without the user-facing floor
    of the one options value: tiny tiles keep these tests of the tiling fast."""

    device: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    tile_overlap: int | None = None


TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
CPU32 = EngineOpts(device="cpu", precision="fp32")


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A structured test picture: smooth colour waves, flat patches and a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], -1)
    for _ in range(8):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        img[y0 : y0 + h // 4, x0 : x0 + w // 4] = rng.random(3)
    img += 0.05 * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def _bytes_per_pixel(config: ModelConfig, precision: str) -> float:
    """The memory model the engine sizes tiles by: the architecture's own."""
    return architectures.of(config).bytes_per_pixel(config, precision)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _model(config: ModelConfig = TINY, seed: int = 0) -> AttentiveDeblurNet:
    torch.manual_seed(seed)
    return AttentiveDeblurNet(config)


def _identity_model() -> AttentiveDeblurNet:
    """Global residual with a zeroed output conv: every scale returns its input exactly."""
    config = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1, global_residual=True)
    model = AttentiveDeblurNet(config)
    with torch.no_grad():
        for net in model.nets:
            net.out_conv.weight.zero_()
            net.out_conv.bias.zero_()
    return model


# ---- devices and precisions --------------------------------------------------------------


def test_fp16_on_cpu_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="fp16 needs CUDA"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(UsageError, match="fp16 needs CUDA"):
        Engine(_model(), EngineOpts(device="cpu", precision="fp16"))


def test_cuda_requested_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ResourceError, match="CUDA is not available"):
            resolve_device(name)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_device_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device(name)


def test_unknown_precision_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown precision"):
        InferenceOptions(precision="fp8")
    with pytest.raises(UsageError, match="unknown precision"):
        resolve_precision("half", torch.device("cpu"))


@pytest.mark.parametrize("tile,overlap", [(0, 16), (-5, 16), (64, -1)])
def test_bad_tile_options_are_usage_errors(tile: int, overlap: int) -> None:
    with pytest.raises(UsageError):
        InferenceOptions(tile=tile, tile_overlap=overlap)


def test_auto_precision_on_cpu_follows_bf16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # forcing it stays allowed
    assert resolve_precision("fp32", cpu) == "fp32"


def test_deblurrer_resolves_and_prepares_model() -> None:
    model = _model().train()
    d = Engine(model, CPU32)
    assert d.device == torch.device("cpu") and d.precision == "fp32"
    assert not d.model.training


# ---- shapes, padding, tiny images ---------------------------------------------------------


@pytest.mark.parametrize("h,w", [(1, 1), (17, 33), (1001, 7), (16, 16)])
@pytest.mark.parametrize("tile", [None, 64])
def test_odd_sizes_keep_their_shape(h: int, w: int, tile: int | None) -> None:
    d = Engine(_model(), EngineOpts(device="cpu", precision="fp32", tile=tile))
    out = d.run(_image(h, w))
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_bf16_on_cpu_runs_close_to_fp32() -> None:
    model = _model()
    x = _image(48, 64)
    ref = Engine(model, CPU32).run(x)
    out = Engine(model, EngineOpts(device="cpu", precision="bf16")).run(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert _psnr(out, ref) > 30


def test_rejects_non_rgb_arrays() -> None:
    d = Engine(_model(), CPU32)
    for shape in ((8, 8), (8, 8, 4), (0, 8, 3)):
        bad = np.zeros(shape, np.float32)
        with pytest.raises(ValueError, match="H x W x 3"):
            d.run(bad)


# ---- tiled vs whole image -----------------------------------------------------------------


def _tiled_vs_whole(config: ModelConfig, seed: int, h: int, w: int, tile: int) -> tuple[float, int]:
    model = _model(config, seed)
    x = _image(h, w, seed)
    whole = Engine(model, CPU32).run(x)
    calls: list[tuple[int, int]] = []
    tiled = Engine(model, EngineOpts(device="cpu", precision="fp32", tile=tile)).run(
        x, progress=lambda done, total: calls.append((done, total))
    )
    return _psnr(tiled, whole), calls[-1][1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiled_matches_whole_image_tiny_random_weights(seed: int) -> None:
    # With random weights the network's receptive field is wide; the default overlap with
    # 128px tiles keeps the seams >= 50 dB (measured 57-75 dB for seeds 0-5).
    psnr, tiles = _tiled_vs_whole(TINY, seed, 192, 256, tile=128)
    assert tiles == 6
    assert psnr >= 50, f"tiled vs whole PSNR {psnr:.1f} dB"


@pytest.mark.slow
def test_tiled_matches_whole_image_default_config_random_weights() -> None:
    # Seed 1 is the hardest of seeds 0-3 measured (63 dB with the default 64px overlap).
    psnr, tiles = _tiled_vs_whole(ModelConfig(), 1, 192, 256, tile=128)
    assert tiles == 6
    assert psnr >= 50, f"tiled vs whole PSNR {psnr:.1f} dB"


def test_identity_model_through_whole_image_path_is_exact() -> None:
    x = _image(37, 53)
    out = Engine(_identity_model(), CPU32).run(x)
    np.testing.assert_array_equal(out, x)


@settings(max_examples=12, deadline=None)
@given(
    h=st.integers(1, 160),
    w=st.integers(1, 160),
    tile=st.integers(16, 96),
    overlap=st.integers(0, 48),
)
def test_identity_model_reproduces_input_through_tiles(h: int, w: int, tile: int, overlap: int) -> None:
    x = _image(h, w, seed=h * 1000 + w)
    opts = EngineOpts(device="cpu", precision="fp32", tile=tile, tile_overlap=overlap)
    d = Engine(_identity_model(), opts)
    out = d.run(x)
    assert out.shape == x.shape
    # Blending identical tiles only costs float rounding in the weighted average.
    np.testing.assert_allclose(out, x, rtol=0, atol=1e-6)


def test_progress_reports_every_tile() -> None:
    calls: list[tuple[int, int]] = []
    Engine(_model(), EngineOpts(device="cpu", precision="fp32", tile=32, tile_overlap=8)).run(
        _image(50, 70), progress=lambda d, t: calls.append((d, t))
    )
    total = calls[-1][1]
    assert total > 1
    assert calls == [(i, total) for i in range(total + 1)]


# ---- tile size choice ---------------------------------------------------------------------


def test_given_tile_is_rounded_to_the_model_multiple() -> None:
    d = Engine(_model(), EngineOpts(device="cpu", tile=100))
    assert d.tile_size_for(500, 500) == 96
    assert Engine(_model(), EngineOpts(device="cpu", tile=5)).tile_size_for(500, 500) == 16
    assert d.tile_size_for(90, 96) is None  # the whole padded image fits in one tile


def test_auto_tile_keeps_estimated_memory_under_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_mem_available", lambda: None)
    d = Engine(AttentiveDeblurNet(ModelConfig()), EngineOpts(device="cpu", precision="fp32"))
    assert d.tile_size_for(200, 300) is None
    tile = d.tile_size_for(4000, 6000)
    assert tile is not None and tile % 16 == 0 and tile >= engine.MIN_TILE
    per_px = _bytes_per_pixel(ModelConfig(), "fp32")
    assert tile * tile * per_px <= engine.CPU_BUDGET_BYTES
    assert (tile + 16) ** 2 * per_px + engine._PASS_OVERHEAD_BYTES > engine.CPU_BUDGET_BYTES


def test_auto_tile_shrinks_with_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Engine(AttentiveDeblurNet(ModelConfig()), EngineOpts(device="cpu", precision="fp32"))
    monkeypatch.setattr(engine, "_mem_available", lambda: 64 << 30)
    roomy = d.tile_size_for(4000, 6000)
    monkeypatch.setattr(engine, "_mem_available", lambda: 700 << 20)
    tight = d.tile_size_for(4000, 6000)
    assert roomy is not None and tight is not None and tight < roomy


def test_memory_estimate_scales_with_widths() -> None:
    small = _bytes_per_pixel(TINY, "fp32")
    default = _bytes_per_pixel(ModelConfig(), "fp32")
    wide = _bytes_per_pixel(ModelConfig(widths=(64, 128, 256)), "fp32")
    assert 0 < small < default < wide
    assert _bytes_per_pixel(ModelConfig(), "bf16") < default


def test_tiles_are_fitted_to_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _flaky_forward(monkeypatch, failures=0)
    opts = EngineOpts(device="cpu", precision="fp32", tile=128, tile_overlap=16)
    out = Engine(_model(), opts).run(_image(150, 40))
    assert out.shape == (150, 40, 3)
    # 160 padded rows need two 128px tiles; two 96px tiles (overlap 32 >= 16) do as well.
    assert set(seen) == {(96, 48)} and len(seen) == 2
    assert fit_tile(160, 128, 16, 16) == 96


# ---- out-of-memory retry ------------------------------------------------------------------


def _flaky_forward(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[tuple[int, int]]:
    """Make Engine._forward raise OutOfMemoryError ``failures`` times; record pass sizes."""
    seen: list[tuple[int, int]] = []
    real = Engine._forward
    left = [failures]

    def forward(self: Engine, x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        if left[0] > 0:
            left[0] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, x)

    monkeypatch.setattr(Engine, "_forward", forward)
    return seen


def test_oom_retry_halves_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _flaky_forward(monkeypatch, failures=1)
    x = _image(256, 256)
    calls: list[tuple[int, int]] = []
    d = Engine(_identity_model(), EngineOpts(device="cpu", precision="fp32", tile=256 + 16))
    out = d.run(x, progress=lambda done, total: calls.append((done, total)))
    assert seen[0] == (256, 256)  # whole image first (the tile is larger than the image)
    assert set(seen[1:]) == {(128, 128)}
    assert calls[0] == (0, 1) and calls[-1][0] == calls[-1][1] > 1
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_oom_retry_goes_down_to_the_minimum_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _flaky_forward(monkeypatch, failures=10**6)
    opts = EngineOpts(device="cpu", precision="fp32", tile=256, tile_overlap=0)
    with pytest.raises(ResourceError, match="out of memory .* 64px tiles"):
        Engine(_model(), opts).run(_image(512, 512))
    assert [s[0] for s in seen] == [256, 128, 64]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Engine, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("something else")

    monkeypatch.setattr(Engine, "_forward", broken)
    with pytest.raises(RuntimeError, match="something else"):
        Engine(_model(), CPU32).run(_image(32, 32))


def test_default_overlap_is_documented_value() -> None:
    assert Engine(_model(), EngineOpts(device="cpu")).tile_overlap == DEFAULT_OVERLAP == 64

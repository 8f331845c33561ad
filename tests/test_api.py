"""The Python API: same type and depth out as in, one inference path, model reuse, threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deblur_cli
from deblur_cli import api
from deblur_cli.errors import UsageError, WeightsError
from deblur_cli.files.image_io import quantize
from deblur_cli.methods import InferenceOptions
from deblur_cli.network.engine import Engine
from deblur_cli.network.model import AttentiveDeblurNet
from deblur_cli.weights import save_weights
from tests.conftest import TINY


@pytest.fixture(scope="module")
def model() -> AttentiveDeblurNet:
    torch.manual_seed(0)
    return AttentiveDeblurNet(TINY)


@pytest.fixture(scope="module")
def deblurrer(model: AttentiveDeblurNet) -> api.Deblurrer:
    return api.Deblurrer(model=model, device="cpu", precision="fp32")


def _image(h: int = 24, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _engine_output(model: AttentiveDeblurNet, rgb: np.ndarray) -> np.ndarray:
    """What the engine itself returns: the API must add nothing but conversions."""
    return Engine(model, InferenceOptions(device="cpu", precision="fp32")).run(rgb)


def test_import_is_light() -> None:
    code = (
        "import sys, deblur_cli; from deblur_cli import Deblurrer, deblur; import deblur_cli.api;"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_package_exports_the_api() -> None:
    assert deblur_cli.Deblurrer is api.Deblurrer
    assert deblur_cli.deblur is api.deblur
    with pytest.raises(AttributeError):
        deblur_cli.no_such_name  # noqa: B018


def test_uint8_rgb_matches_the_engine(deblurrer: api.Deblurrer, model: AttentiveDeblurNet) -> None:
    rgb8 = (_image() * 255).round().astype(np.uint8)
    out = deblurrer(rgb8)
    assert out.dtype == np.uint8 and out.shape == rgb8.shape
    expected = quantize(_engine_output(model, rgb8 / np.float32(255)), np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_uint16_grey_stays_grey_and_16_bit(deblurrer: api.Deblurrer, model: AttentiveDeblurNet) -> None:
    grey = (np.random.default_rng(1).random((20, 30)) * 65535).astype(np.uint16)
    out = deblurrer(grey)
    assert out.dtype == np.uint16 and out.shape == grey.shape
    rgb = np.repeat((grey / np.float32(65535))[..., None], 3, axis=2)
    expected = quantize(_engine_output(model, rgb).mean(axis=2), np.uint16)
    np.testing.assert_array_equal(out, expected)
    assert len(np.unique(out)) > 100  # the 16 bits are used, not 8 bits scaled up


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_alpha_passes_through_untouched(deblurrer: api.Deblurrer, dtype: type) -> None:
    maxval = np.iinfo(dtype).max
    rgba = (np.random.default_rng(2).random((16, 16, 4)) * maxval).astype(dtype)
    out = deblurrer(rgba)
    assert out.shape == rgba.shape and out.dtype == dtype
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    grey_alpha = rgba[..., 2:]
    out2 = deblurrer(grey_alpha)
    assert out2.shape == grey_alpha.shape
    np.testing.assert_array_equal(out2[..., 1], grey_alpha[..., 1])


def test_float_in_float_out(deblurrer: api.Deblurrer, model: AttentiveDeblurNet) -> None:
    rgb = _image().astype(np.float64)
    out = deblurrer(rgb)
    assert out.dtype == np.float64 and out.shape == rgb.shape
    np.testing.assert_allclose(out, _engine_output(model, rgb.astype(np.float32)), atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "out_mode"),
    [("RGB", "RGB"), ("L", "L"), ("LA", "LA"), ("RGBA", "RGBA"), ("I;16", "I;16"), ("F", "F"), ("P", "RGB"), ("CMYK", "RGB")],
)
def test_pil_images_come_back_as_pil(deblurrer: api.Deblurrer, mode: str, out_mode: str) -> None:
    base = Image.fromarray((_image(18, 26) * 255).astype(np.uint8))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    elif mode == "F":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.float32) / 255)
    else:
        image = base.convert(mode)
    out = deblurrer(image)
    assert isinstance(out, Image.Image)
    assert out.mode == out_mode and out.size == image.size
    if "A" in mode:
        np.testing.assert_array_equal(np.asarray(out)[..., -1], np.asarray(image)[..., -1])
    assert not np.array_equal(np.asarray(out), np.asarray(image.convert(out_mode)))  # it did run


def test_pil_mode_i_from_a_16_bit_png(deblurrer: api.Deblurrer, tmp_path: Path) -> None:
    grey = (np.random.default_rng(3).random((12, 20)) * 65535).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    image = Image.open(tmp_path / "g.png")
    image.load()
    out = deblurrer(image)
    assert out.mode == image.mode and out.size == image.size
    assert np.asarray(out).max() > 255  # still 16-bit values


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4), np.int32), np.zeros((0, 4, 3), np.uint8), np.zeros((2, 2, 2, 3), np.uint8)],
)
def test_bad_arrays_are_usage_errors(deblurrer: api.Deblurrer, bad: np.ndarray) -> None:
    with pytest.raises(UsageError):
        deblurrer(bad)


def test_not_an_image_is_a_type_error(deblurrer: api.Deblurrer) -> None:
    with pytest.raises(TypeError):
        deblurrer([[0, 1], [2, 3]])  # type: ignore[arg-type]


def test_options_are_checked(model: AttentiveDeblurNet) -> None:
    with pytest.raises(UsageError):
        api.Deblurrer(model=model, device="cpu", precision="fp16")
    with pytest.raises(UsageError):
        api.Deblurrer(model=model, tile=0)
    with pytest.raises(UsageError):
        api.Deblurrer(model=model, threads=0)


def test_tiled_run_goes_through_the_engine_tiles(model: AttentiveDeblurNet) -> None:
    d = api.Deblurrer(model=model, device="cpu", precision="fp32", tile=64, tile_overlap=8)
    seen: list[tuple[int, int]] = []
    out = d(_image(96, 160), progress=lambda done, total: seen.append((done, total)))
    assert out.shape == (96, 160, 3)
    assert seen[-1][0] == seen[-1][1] > 1


def test_weights_from_a_file_and_missing_weights(tmp_path: Path, model: AttentiveDeblurNet) -> None:
    path = tmp_path / "tiny.safetensors"
    save_weights(model, path)
    d = api.Deblurrer(str(path), device="cpu", precision="fp32")
    assert d.weights_info is not None and d.weights_info.config == TINY
    rgb = _image()
    np.testing.assert_allclose(d(rgb), _engine_output(model, rgb), atol=1e-6)
    with pytest.raises(WeightsError):
        api.Deblurrer(str(tmp_path / "missing.safetensors"))


def test_one_call_reuses_the_loaded_model(
    tmp_path: Path, model: AttentiveDeblurNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deblur_cli.weights as weights_module

    path = tmp_path / "tiny.safetensors"
    save_weights(model, path)
    calls: list[str | None] = []
    real = weights_module.load_model

    def counting(spec: str | None = None, **kw: object):
        calls.append(spec)
        return real(spec, **kw)

    monkeypatch.setattr(weights_module, "load_model", counting)
    monkeypatch.setattr(api, "_CACHED", None)
    rgb8 = (_image() * 255).astype(np.uint8)
    a = deblur_cli.deblur(rgb8, str(path), device="cpu", precision="fp32")
    b = deblur_cli.deblur(rgb8, str(path), device="cpu", precision="fp32")
    np.testing.assert_array_equal(a, b)
    assert calls == [str(path)]
    deblur_cli.deblur(rgb8, str(path), device="cpu", precision="fp32", tile=64)
    assert len(calls) == 2  # other options: a new Deblurrer


def test_shared_between_threads(deblurrer: api.Deblurrer) -> None:
    images = [(_image(seed=s) * 255).astype(np.uint8) for s in range(4)]
    expected = [deblurrer(im) for im in images]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = deblurrer(images[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i], expected[i])

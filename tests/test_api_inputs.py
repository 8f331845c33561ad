"""Issue 21, items 3, 4, 10 and 13: the Python API reads images by the rules files follow.

* Float samples outside 0..1 (a float array in 0..255, ``.convert('F')``), NaN, infinity and
  negative floats are a UsageError naming the range, never clipped (item 3).
* A big-endian 16-bit grey image (``I;16B``) is read as the CLI reads the same file (item 4).
* Every Pillow mode either works or is a UsageError, never a raw Pillow error (item 13).
* ``tile`` and ``threads`` have the command line's limits (item 10).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli import api
from deblur_cli.errors import UsageError
from deblur_cli.files import image_io, memory
from deblur_cli.network.limits import MIN_TILE, available_cores
from deblur_cli.network.model import AttentiveDeblurNet
from tests.conftest import TINY


@pytest.fixture(scope="module")
def identity() -> api.Deblurrer:
    """A network whose output is exactly its input (fp32): the conversions are what is seen."""
    torch.manual_seed(0)
    model = AttentiveDeblurNet(dataclasses.replace(TINY, global_residual=True))
    with torch.no_grad():
        for net in model.nets:
            net.out_conv.weight.zero_()
            net.out_conv.bias.zero_()
    return api.Deblurrer(model=model.eval(), device="cpu", precision="fp32")


def _ramp(h: int = 12, w: int = 20) -> np.ndarray:
    return np.linspace(0.0, 1.0, h * w, dtype=np.float32).reshape(h, w)


# ---------------------------------------------------------------------------- item 3


@pytest.mark.parametrize(
    "values, needle",
    [
        pytest.param(_ramp() * 255, "0..1", id="float-0-255"),
        pytest.param(_ramp() - 0.5, "0..1", id="negative"),
        pytest.param(np.where(_ramp() > 0.5, np.nan, _ramp()), "NaN or infinite", id="nan"),
        pytest.param(np.where(_ramp() > 0.5, np.inf, _ramp()), "NaN or infinite", id="inf"),
    ],
)
@pytest.mark.parametrize("layout", ["grey", "rgb", "pil-F"])
def test_floats_outside_0_1_are_refused_not_clipped(identity, values, needle, layout):
    if layout == "rgb":
        image = np.repeat(values[..., None], 3, axis=2)
    elif layout == "pil-F":
        image = Image.fromarray(values.astype(np.float32), mode="F")
    else:
        image = values
    with pytest.raises(UsageError, match=needle):
        identity(image)


def test_convert_F_of_an_8_bit_photo_is_refused(identity):
    photo = Image.fromarray((_ramp() * 255).astype(np.uint8)).convert("F")  # 0..255 floats
    with pytest.raises(UsageError, match=r"from 0 to 255, outside the 0\.\.1"):
        identity(photo)


def test_float_alpha_outside_0_1_is_refused(identity):
    rgba = np.concatenate([np.repeat(_ramp()[..., None], 3, axis=2), np.full((12, 20, 1), 255.0, np.float32)], axis=2)
    with pytest.raises(UsageError, match="alpha"):
        identity(rgba)


@pytest.mark.parametrize("bad", [70000, -3])
def test_mode_I_outside_0_65535_is_refused(identity, bad):
    samples = (_ramp() * 60000).astype(np.int32)
    samples[0, 0] = bad
    with pytest.raises(UsageError, match="0..65535"):
        identity(Image.fromarray(samples, mode="I"))


def test_floats_inside_0_1_pass_exactly(identity):
    rgb = np.repeat(_ramp()[..., None], 3, axis=2).astype(np.float64)
    np.testing.assert_allclose(identity(rgb), rgb, atol=1e-6)


# ---------------------------------------------------------------------------- item 4


def test_big_endian_16_bit_grey_reads_as_the_file_does(identity, tmp_path: Path):
    grey = (_ramp() * 65535).astype(">u2")
    image = Image.fromarray(grey)
    assert image.mode == "I;16B"
    out = identity(image)
    assert out.mode == "I;16B" and out.size == image.size
    np.testing.assert_array_equal(np.asarray(out).astype(np.uint16), grey.astype(np.uint16))
    image.save(tmp_path / "grey.tif")  # the CLI's path: a big-endian 16-bit grey TIFF
    loaded = image_io.load_image(tmp_path / "grey.tif")
    samples, _ = memory.from_pil(Image.open(tmp_path / "grey.tif"))
    np.testing.assert_array_equal(memory.to_float_rgb(samples[..., None]), loaded.rgb)


# ---------------------------------------------------------------------------- item 13


MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_works_or_is_a_usage_error(identity, mode):
    base = Image.fromarray((np.random.default_rng(1).random((10, 14, 3)) * 255).astype(np.uint8))
    try:
        image = base.convert(mode)
    except ValueError:
        image = Image.new(mode, base.size)
    try:
        out = identity(image)
    except UsageError:
        return
    assert isinstance(out, Image.Image) and out.size == image.size


def test_premultiplied_grey_alpha_comes_back_as_LA(identity):
    la = Image.fromarray(np.dstack([(_ramp() * 255).astype(np.uint8), np.full((12, 20), 128, np.uint8)]), mode="LA")
    out = identity(la.convert("La"))
    assert out.mode == "LA"
    np.testing.assert_array_equal(np.asarray(out)[..., 1], 128)


# ---------------------------------------------------------------------------- item 10


def test_tile_and_threads_have_the_command_lines_limits():
    model = AttentiveDeblurNet(TINY)
    with pytest.raises(UsageError, match=f"at least {MIN_TILE}"):
        api.Deblurrer(model=model, device="cpu", tile=1)
    with pytest.raises(UsageError, match="overlap"):
        api.Deblurrer(model=model, device="cpu", tile=MIN_TILE, tile_overlap=-1)
    with pytest.raises(UsageError, match="CPU cores"):
        api.Deblurrer(model=model, device="cpu", threads=available_cores() + 1)
    api.Deblurrer(model=model, device="cpu", tile=MIN_TILE, threads=1)


# ---------------------------------------------------------------------------- issue 27, item 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("stray", [1.0000001, -1e-7])
def test_float_rounding_is_accepted_and_clipped(identity, dtype, stray):
    """A sample at 1.0000001 was refused as "samples from 1 to 1, outside 0..1"."""
    ramp = _ramp().astype(np.float64)
    image = np.repeat(ramp[..., None], 3, axis=2)
    image[0, 0] = image[-1, -1] = stray
    image = image.astype(dtype) if dtype != np.float16 else np.clip(image, 0, 1).astype(dtype)
    out = identity(image)
    assert out.dtype == dtype and out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out.astype(np.float64) - np.clip(image.astype(np.float64), 0, 1)).max() < 1e-3


def test_beyond_rounding_the_message_gives_the_exact_samples(identity):
    image = np.repeat(_ramp()[..., None], 3, axis=2)
    image[0, 0] = 1.001
    with pytest.raises(UsageError, match=r"samples from 0\.0041841003 to 1\.001, outside the 0\.\.1 its format means \(3 of 720 samples\)"):
        identity(image)
    image[0, 0] = np.float32(1.0000031)  # past the 1e-6 tolerance: named, not rounded away to "1"
    with pytest.raises(UsageError, match=r"to 1\.0000031,"):
        identity(image)


@pytest.mark.parametrize("dtype", [">u2", ">f4", ">f8", "<u2", "<f4"])
def test_either_byte_order_is_read_and_kept(identity, dtype):
    """Big-endian uint16 and float32 arrays were refused with "use uint16"."""
    native = np.dtype(dtype).newbyteorder("=")
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, (10, 14, 3)) if native.kind == "u" else rng.random((10, 14, 3))
    image = values.astype(dtype)
    out = identity(image)
    assert out.dtype == np.dtype(dtype)  # the caller's own byte order back
    expected = identity(values.astype(native))
    assert np.array_equal(out.astype(native), expected)
    if native.kind == "u":
        assert np.abs(out.astype(np.int64) - values).max() <= 1  # the identity network, through 16 bits


@pytest.mark.parametrize(
    "image, needle",
    [
        pytest.param(np.zeros((8, 9, 3), np.int64), "int64: signed integers have no range of their own", id="int64"),
        pytest.param(np.zeros((8, 9, 3), np.uint32), "uint32: its range is wider", id="uint32"),
        pytest.param(np.zeros((8, 9), bool), "bool: True/False are not samples", id="bool"),
        pytest.param(np.zeros((3, 16, 20), np.uint8), r"channels first\? pass array.transpose\(1, 2, 0\)", id="chw"),
    ],
)
def test_what_is_wrong_with_an_array_is_said(identity, image, needle):
    with pytest.raises(UsageError, match=needle):
        identity(image)

"""Issue 21, item 11: each writer's limits are known before the network runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deblur_cli.errors import OutputError
from deblur_cli.files import image_io
from deblur_cli.files.writers import check_output_fits


def _like(width: int, height: int, grey: bool = False, deep: bool = False, alpha: bool = False) -> image_io.LoadedImage:
    """A decoded image of that size without its pixels (a broadcast view)."""
    rgb = np.broadcast_to(np.zeros(3, np.float32), (height, width, 3))
    a = np.broadcast_to(np.zeros(1, np.uint8), (height, width)) if alpha else None
    return image_io.LoadedImage(Path("in.png"), rgb, a, grey, 16 if deep else 8, "PNG", None, None)


@pytest.mark.parametrize(
    "name, size, needle",
    [
        ("wide.jpg", (65_501, 10), "at most 65,500 px on a side"),
        ("tall.jpeg", (10, 70_000), "at most 65,500 px on a side"),
        ("wide.webp", (16_384, 10), "at most 16,383 px on a side"),
    ],
)
def test_side_limits(name, size, needle):
    with pytest.raises(OutputError, match=needle):
        check_output_fits(Path(name), size)
    check_output_fits(Path(name).with_suffix(".png"), size)  # PNG has room


def test_byte_limits_need_the_decoded_image():
    huge = _like(40_000, 30_000, deep=True)  # 40k x 30k x 3 x 2 bytes = 6.7 GiB
    check_output_fits(Path("x.tif"), huge.size)  # the size alone says nothing about bytes
    with pytest.raises(OutputError, match="a TIFF holds at most 4 GiB.*write PNG instead"):
        check_output_fits(Path("x.tif"), huge.size, huge)
    wide = _like(50_000, 30_000)  # 24-bit rows of 150,000 bytes: 4.2 GiB
    with pytest.raises(OutputError, match="a BMP file is at most 4 GiB"):
        check_output_fits(Path("x.bmp"), wide.size, wide)
    small = _like(20_000, 20_000, grey=True)  # 400 MB of grey
    check_output_fits(Path("x.tif"), small.size, small)
    check_output_fits(Path("x.bmp"), small.size, small)


def test_plan_refuses_a_jpeg_too_wide_before_anything_runs(tmp_path):
    from deblur_cli.pipeline import plan_image

    Image.new("L", (70_000, 2)).save(tmp_path / "wide.png")
    with pytest.raises(OutputError, match="70,000 x 2"):
        plan_image([tmp_path / "wide.png"], tmp_path / "wide.jpg")
    assert not (tmp_path / "wide.jpg").exists()

"""The limits of each image writer, known before any pixel is computed.

A JPEG is at most 65,500 px on a side (libjpeg), a WebP 16,383; a TIFF (Pillow's and ours
are classic TIFF, 32-bit offsets) holds at most 4 GiB of samples, a BMP's file size field
is 32 bits. :func:`check_output_fits` is asked while planning with the size the header
gives, and again once the image is decoded (channels and bit depth known), before the
network runs: an image too large for its output fails in seconds, not after the whole run.
"""

from __future__ import annotations

from pathlib import Path

from deblur_cli.errors import OutputError
from deblur_cli.files import image_io

#: Largest side each format can store, in pixels.
MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383, "PNG": 2**31 - 1, "TIFF": 2**32 - 1, "BMP": 2**31 - 1}
#: Largest sample data a classic TIFF can address (32-bit offsets), less room for its header.
TIFF_MAX_BYTES = 2**32 - 2**20
#: A BMP file's size field is 32 bits.
BMP_MAX_BYTES = 2**32 - 1
_BETTER = {"JPEG": "PNG or TIFF", "WEBP": "PNG or TIFF", "TIFF": "PNG", "BMP": "PNG"}


def check_output_fits(path: Path, size: tuple[int, int], like: image_io.LoadedImage | None = None) -> None:
    """OutputError when an image of ``size`` (width, height) cannot be written to ``path``;
    with ``like`` (the decoded input) also the byte limits its channels and depth imply."""
    fmt = image_io._output_format(Path(path))
    width, height = size
    side = MAX_SIDE[fmt]
    if width > side or height > side:
        _refuse(path, fmt, f"a {fmt} is at most {side:,} px on a side and this image is {width:,} x {height:,}")
    if like is None:
        return
    channels = (1 if like.is_grey else 3) + (1 if like.alpha is not None and fmt in ("PNG", "TIFF", "WEBP") else 0)
    if fmt == "TIFF":
        depth = 2 if like.bit_depth == 16 else 1
        if channels == 2 and depth == 2:
            channels = 4  # 16-bit grey + alpha is written as RGBA (see encode16)
        total = width * height * channels * depth
        if total > TIFF_MAX_BYTES:
            _refuse(path, fmt, f"a TIFF holds at most 4 GiB of samples and this image needs {total / 2**30:.1f} GiB")
    elif fmt == "BMP":
        row = (width * (8 if like.is_grey else 24) + 31) // 32 * 4
        total = row * height + 54 + (1024 if like.is_grey else 0)
        if total > BMP_MAX_BYTES:
            _refuse(path, fmt, f"a BMP file is at most 4 GiB and this image needs {total / 2**30:.1f} GiB")


def _refuse(path: Path, fmt: str, why: str) -> None:
    raise OutputError(f"cannot write {image_io.show(Path(path))}: {why}; write {_BETTER[fmt]} instead")

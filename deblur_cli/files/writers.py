"""The limits of each image writer, known before any pixel is computed.

Each format's record (:mod:`deblur_cli.files.formats`) gives them: a JPEG is at most 65,500
px on a side (libjpeg), a WebP 16,383; a TIFF (Pillow's and ours are classic TIFF, 32-bit
offsets) holds at most 4 GiB of samples, a BMP's file size field is 32 bits. :func:`check_output_fits` is asked while planning with the size the header
gives, and again once the image is decoded (channels and bit depth known), before the
network runs: an image too large for its output fails in seconds, not after the whole run.
"""

from __future__ import annotations

from pathlib import Path

from deblur_cli.errors import OutputError
from deblur_cli.files import formats, image_io
from deblur_cli.files.formats import ImageFormat


def check_output_fits(path: Path, size: tuple[int, int], like: image_io.LoadedImage | None = None) -> None:
    """OutputError when an image of ``size`` (width, height) cannot be written to ``path``;
    with ``like`` (the decoded input) also the byte limits its channels and depth imply."""
    fmt = image_io._output_format(Path(path))
    width, height = size
    side = fmt.max_side
    if side is not None and (width > side or height > side):
        roomy = [f for f in _lossless(fmt) if f.max_side is None or f.max_side >= max(width, height)]
        _refuse(path, roomy, f"a {fmt.name} is at most {side:,} px on a side and this image is {width:,} x {height:,}")
    if like is None or fmt.file_bytes is None or fmt.max_bytes is None:
        return
    channels = (1 if like.is_grey else 3) + (1 if like.alpha is not None and fmt.alpha else 0)
    total = fmt.file_bytes(width, height, channels, 2 if like.bit_depth == 16 and fmt.deep else 1)
    if total > fmt.max_bytes:
        what = "holds at most 4 GiB of samples" if fmt.name == "TIFF" else "file is at most 4 GiB"
        roomy = [f for f in _lossless(fmt) if f.max_bytes is None]
        _refuse(path, roomy, f"a {fmt.name} {what} and this image needs {total / 2**30:.1f} GiB")


def _lossless(fmt: ImageFormat) -> list[ImageFormat]:
    """The lossless formats a message may suggest instead of ``fmt``."""
    return [f for f in formats.FORMATS if f.write and f.suggested and not f.quality and f is not fmt]


def _refuse(path: Path, instead: list[ImageFormat], why: str) -> None:
    raise OutputError(f"cannot write {image_io.show(Path(path))}: {why}; write {' or '.join(f.name for f in instead)} instead")

"""Image files in and out: decoding, orientation, bit depth, alpha and metadata.

Inside the library an image is a float32 ``H x W x 3`` RGB array in ``[0, 1]``;
everything else about the file (alpha, grey, bit depth, EXIF, ICC profile) rides
along in :class:`LoadedImage` so that :func:`save_image` can write it back.

Decoding lives in :mod:`deblur_cli.files.decode` (Pillow, all 16 bits of deep PNG/TIFF,
orientation), the 16-bit PNG/TIFF encoders in :mod:`deblur_cli.files.encode16`; this
module is the package's one door to image files: the suffix lists, :func:`load_image`,
:func:`save_image` (photos, with their metadata), :func:`save_picture` (plain 8-bit
pictures such as heatmaps and training pairs) and the one float-to-integer rule
:func:`quantize`.

- WebP has no grey mode: grey input saved as WebP comes back as RGB.
- ``F`` (32-bit float) and 32-bit integer input is read in the range its file declares
  (floats 0..1, integers their type's full range, or the TIFF's SMin/SMaxSampleValue);
  samples outside it are refused, not clipped. It is reported and written as 16-bit.
- The EXIF thumbnail (IFD1) is not carried: it would show the blurry image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deblur_cli.errors import OutputError, UsageError
from deblur_cli.files import formats, ledger, metadata
from deblur_cli.files.decode import (
    MAX_PIXELS_ENV,
    check_file,
    check_mode,
    check_pixels,
    decode_planes,
    frame_count,
    header_orientation,
    one_line,
    open_image,
    orient,
    pillow_bomb_check_off,
    read_exif,
    show,
    stored_size,
)
from deblur_cli.files.encode16 import WRITERS as _WRITERS_16
from deblur_cli.files.fsutil import atomic_path, same_file
from deblur_cli.files.limits import DEFAULT_MAX_PIXELS
from deblur_cli.files.metadata import Extras, read_extras

#: The suffixes deblur reads and writes (from the format records of :mod:`.formats`).
SUPPORTED_SUFFIXES = formats.SUPPORTED_SUFFIXES
OUTPUT_SUFFIXES = formats.OUTPUT_SUFFIXES


@dataclass(eq=False)
class LoadedImage:
    """A decoded image plus what is needed to write it back faithfully."""

    path: Path
    rgb: np.ndarray  # float32, H x W x 3, [0, 1], oriented; grey replicated
    alpha: np.ndarray | None  # H x W, uint8 or uint16, oriented like rgb
    is_grey: bool
    bit_depth: int  # 8 or 16
    format: str  # Pillow format name of the source
    exif: bytes | None  # Orientation reset to 1 because it has been applied
    icc_profile: bytes | None
    n_frames: int = 1  # >1: only the first frame was used
    extras: Extras = field(default_factory=Extras)  # DPI, XMP, gamma, comments, lossless WebP

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after orientation."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# ----------------------------------------------------------------- loading


def is_supported(path: Path) -> bool:
    """True when ``path``'s suffix (any case) names a readable image type."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def load_image(path: Path, max_pixels: int | None = None) -> LoadedImage:
    """Decode ``path`` fully into a :class:`LoadedImage`.

    ``max_pixels``: None uses ``DEBLUR_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`;
    0 disables the limit. The header's dimensions are checked before decoding.
    Raises InputError (ResourceError when memory runs out) with a one-line message.
    """
    path = Path(path)
    name = show(path)
    limit = _resolve_limit(max_pixels)
    check_file(path, name)
    with pillow_bomb_check_off(), open_image(path, name) as im:
        check_pixels(im, limit, name)
        check_mode(im, name)
        n_frames = frame_count(im, name)
        planes = decode_planes(im, path, name)
        orientation, exif = read_exif(im)
        icc = im.info.get("icc_profile") or None
        fmt = im.format or "unknown"
        extras = read_extras(im, path)
    colour = orient(planes.colour, orientation)
    alpha = None if planes.alpha is None else np.ascontiguousarray(orient(planes.alpha, orientation))
    return LoadedImage(
        path=path,
        rgb=float_rgb(colour),
        alpha=alpha,
        is_grey=colour.shape[2] == 1,
        bit_depth=planes.bit_depth,
        format=fmt,
        exif=exif,
        icc_profile=icc if planes.keep_icc else None,
        n_frames=n_frames,
        extras=extras,
    )


def read_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone, after EXIF orientation where the
    header carries it (PNG EXIF stored after the pixels is not looked at)."""
    path = Path(path)
    name = show(path)
    check_file(path, name)
    with pillow_bomb_check_off(), open_image(path, name) as im:
        width, height = stored_size(im)
        if header_orientation(im) in (5, 6, 7, 8):
            width, height = height, width
    return width, height


def read_format(path: Path) -> str:
    """The format Pillow calls ``path``'s content (``JPEG``, ``PNG``, ...) from its header
    alone, whatever the file's name says (a file read from standard input has none)."""
    path = Path(path)
    name = show(path)
    check_file(path, name)
    with pillow_bomb_check_off(), open_image(path, name) as im:
        return im.format or "unknown"


def _resolve_limit(max_pixels: int | None, default: int = DEFAULT_MAX_PIXELS) -> int:
    """The pixel limit to enforce: argument, else environment, else ``default``."""
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return default
        try:
            max_pixels = int(raw.replace("_", ""))
        except ValueError:
            raise UsageError(f"{MAX_PIXELS_ENV} must be a whole number, got {raw!r}") from None
    if max_pixels < 0:
        raise UsageError(f"the pixel limit must be 0 (no limit) or positive, got {max_pixels}")
    return max_pixels


def float_rgb(colour: np.ndarray) -> np.ndarray:
    """H x W x (1|3) samples -> contiguous float32 H x W x 3 in [0, 1]: the one integer ->
    float rule (8 bits / 255, 16 bits / 65535; floats as they are), for files and the API."""
    if colour.dtype == np.uint8:
        rgb = np.divide(colour, 255.0, dtype=np.float32)
    elif colour.dtype == np.uint16:
        rgb = np.divide(colour, 65535.0, dtype=np.float32)
    else:
        rgb = np.ascontiguousarray(colour, dtype=np.float32)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return rgb


# ------------------------------------------------------------------ saving


def save_image(
    rgb: np.ndarray,
    path: Path,
    like: LoadedImage | None = None,
    quality: int = 95,
    *,
    overwrite: bool = False,
    record: bool = True,
) -> None:
    """Write ``rgb`` (float H x W x 3 in [0, 1]) to ``path`` atomically.

    The format comes from the suffix. ``like`` (the loaded input) supplies grey vs
    colour, bit depth (16 bits kept for PNG/TIFF), alpha (dropped for JPEG/BMP),
    EXIF and ICC profile (JPEG, PNG, TIFF, WebP). ``quality`` (1..100) applies to
    JPEG and WebP. Raises UsageError for a bad suffix or quality, OutputError when
    the output is the input or cannot be written; nothing is left on failure. Without
    ``overwrite`` an existing file at ``path`` is never replaced (see :func:`atomic_path`).
    ``record``: note the file in the record of what deblur wrote (:mod:`~deblur_cli.files.ledger`);
    False for a file that is removed at once (``deblur serve``'s answers).
    """
    path = Path(path)
    fmt = _output_format(path)
    _check_quality(quality)
    _check_array(rgb, like)
    if like is not None and same_file(path, like.path):
        raise OutputError(f"refusing to overwrite the input {show(path)}; choose another output path")
    samples = _output_samples(rgb, like, fmt)
    exif, icc, extras = (like.exif, like.icc_profile, like.extras) if like is not None else (None, None, Extras())
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            _encode(samples, tmp, fmt, quality, exif, icc, extras)
    except OSError as e:
        raise OutputError(f"cannot write {show(path)}: {e.strerror or one_line(e)}") from None
    if record:
        ledger.record(path)  # so that a later run knows this file for deblur's, not the user's


def dropped_on_save(like: LoadedImage, path: Path) -> list[str]:
    """What writing a result of ``like`` to ``path`` leaves out, one short phrase each.

    Library code does not print: callers show these (the CLI as ``note:`` lines). Empty
    when nothing is lost. UsageError for an output suffix no writer handles.
    """
    fmt = _output_format(Path(path))
    notes = []
    if like.n_frames > 1:
        notes.append(f"only the first of its {like.n_frames} frames (pages) was deblurred; the others are dropped")
    if like.alpha is not None and not fmt.alpha:
        keep = _either(f for f in formats.FORMATS if f.write and f.alpha)
        notes.append(f"its transparency (alpha channel) is dropped: {fmt.name} cannot store it; write {keep} to keep it")
    if like.bit_depth == 16 and not fmt.deep:
        keep = _either(f for f in formats.FORMATS if f.write and f.deep)
        notes.append(f"its 16 bits per sample are reduced to 8: {fmt.name} stores 8; write {keep} to keep them")
    return notes + metadata.dropped(like.exif, like.icc_profile, like.extras, fmt)


def _either(found: Iterable[formats.ImageFormat]) -> str:
    """``PNG, TIFF or WebP``: the formats a note suggests."""
    labels = [f.label for f in found if f.suggested]
    return ", ".join(labels[:-1]) + " or " + labels[-1] if len(labels) > 1 else "".join(labels)


def save_picture(
    path: Path, picture: np.ndarray | Image.Image, quality: int = 95, *, overwrite: bool = False
) -> None:
    """Write a plain picture (heatmap, figure, training pair) atomically; no metadata.

    ``picture``: an ``H x W x 3`` uint8 array, a float array in [0, 1] (quantized with
    :func:`to_uint8`) or a Pillow image. The format comes from the suffix; ``quality``
    (1..100) applies to JPEG and WebP. Raises UsageError / OutputError like :func:`save_image`.
    """
    path = Path(path)
    fmt = _output_format(path)
    _check_quality(quality)
    samples = np.asarray(picture.convert("RGB")) if isinstance(picture, Image.Image) else picture
    if samples.dtype != np.uint8:
        samples = to_uint8(samples)
    if samples.ndim == 2:
        samples = samples[..., None]
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            _encode(samples, tmp, fmt, quality, None, None, Extras())
    except OSError as e:
        raise OutputError(f"cannot write {show(path)}: {e.strerror or one_line(e)}") from None


def check_readable(path: Path) -> None:
    """The one input check before any work: InputError unless ``path`` is a non-empty regular file."""
    check_file(Path(path), show(Path(path)))


def check_output_suffix(path: Path) -> None:
    """UsageError unless an image writer handles ``path``'s suffix."""
    _output_format(Path(path))


def _output_format(path: Path) -> formats.ImageFormat:
    """The format written for the output suffix, or UsageError."""
    fmt = formats.by_suffix(path.suffix)
    if fmt is None or not fmt.write:
        allowed = ", ".join(sorted(OUTPUT_SUFFIXES))
        raise UsageError(
            f"cannot write {show(path)}: unsupported output type {path.suffix or '(none)'!r}; "
            f"use one of {allowed}"
        )
    if not formats.available(fmt):  # also registers the plugin that writes it
        raise UsageError(f"cannot write {show(path)}: deblur writes {fmt.label} with {fmt.missing}")
    return fmt


def _check_quality(quality: int) -> None:
    """JPEG/WebP quality must be a whole number in 1..100."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise UsageError(f"quality must be a whole number from 1 to 100, got {quality!r}")


def _check_array(rgb: np.ndarray, like: LoadedImage | None) -> None:
    """A caller bug, not a user error: wrong shape or an alpha of another size."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"expected a non-empty H x W x 3 array, got {getattr(rgb, 'shape', type(rgb))}")
    if like is not None and like.alpha is not None and like.alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha {like.alpha.shape} does not match image {rgb.shape[:2]}")


def _output_samples(rgb: np.ndarray, like: LoadedImage | None, fmt: formats.ImageFormat) -> np.ndarray:
    """H x W x C integer samples (C: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    deep = like is not None and like.bit_depth == 16 and fmt.deep
    dtype, maxval = (np.uint16, 65535.0) if deep else (np.uint8, 255.0)
    colour = rgb.mean(axis=2, keepdims=True) if like is not None and like.is_grey else rgb
    planes = [_quantize(colour, maxval, dtype)]
    if like is not None and like.alpha is not None and fmt.alpha:
        planes.append(_fit_alpha(like.alpha, dtype)[..., None])
    return np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]


def quantize(x: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """Float samples in [0, 1] -> integers of ``dtype`` (uint8 or uint16), rounded to nearest.

    The package's one float-to-integer rule: clipped to [0, 1] first, NaN becomes 0.
    """
    return _quantize(x, float(np.iinfo(dtype).max), dtype)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """:func:`quantize` to 8 bits (pictures, caches, JPEG round trips)."""
    return _quantize(x, 255.0, np.uint8)


def _quantize(x: np.ndarray, maxval: float, dtype: type) -> np.ndarray:
    """round(clip(x, 0, 1) * maxval) as ``dtype``; NaN becomes 0."""
    y = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(y, 0.0, 1.0, out=y)
    y *= maxval
    np.rint(y, out=y)
    return y.astype(dtype)


def _fit_alpha(alpha: np.ndarray, dtype: type) -> np.ndarray:
    """Alpha unchanged when depths match; otherwise rescaled 8 <-> 16 bits."""
    if alpha.dtype == dtype:
        return alpha
    if dtype == np.uint16:
        return alpha.astype(np.uint16) * 257
    return ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _encode(
    samples: np.ndarray, tmp: Path, fmt: formats.ImageFormat, quality: int, exif: bytes | None, icc: bytes | None,
    extras: Extras,
) -> None:
    """Write ``samples`` to ``tmp`` in ``fmt`` with what of the metadata ``fmt`` can hold
    (:mod:`deblur_cli.files.metadata`); 16-bit goes through our own encoders."""
    keep = metadata.kept(exif, icc, extras, fmt)
    if samples.dtype == np.uint16:  # only deep formats get 16-bit samples
        _WRITERS_16[fmt.name](tmp, samples, exif if "exif" in keep else None, icc if "icc" in keep else None, extras, keep)
        return
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options = metadata.pillow_options(exif, icc, extras, fmt)
    if fmt.quality and not options.get("lossless"):
        options["quality"] = int(quality)
    if fmt.name == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2  # 4:4:4 / 4:2:0
    image.save(tmp, format=fmt.name, **options)

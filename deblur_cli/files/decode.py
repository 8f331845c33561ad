"""Decoding image files with Pillow: the checks before decoding, every supported mode,
all 16 bits of deep PNG/TIFF, EXIF orientation. Used by :mod:`deblur_cli.files.image_io`, which
turns the decoded samples into the library's float RGB; 32-bit integer and float
samples are scaled by :mod:`deblur_cli.files.samples`.

Pillow has no 16-bit RGB mode: it decodes 48/64-bit RGB(A) PNG and TIFF to 8 bits. Such
files are decoded twice, once for the high and once for the low byte of every sample (by
swapping the tile's byte-order raw mode), which keeps all 16 bits at twice the decoding
time. 16-bit grey+alpha PNG is re-decoded as raw bytes the same way. Pillow (>= 11)
applies a TIFF's orientation itself while decoding and drops the tag; either way the
pixels come out oriented exactly once.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from deblur_cli.errors import InputError, ResourceError
from deblur_cli.files import formats
from deblur_cli.files.limits import MAX_PIXELS_ENV
from deblur_cli.files.samples import scaled_wide_samples

try:  # Pillow may be built without LittleCMS
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]


_SUPPORTED_MODES = frozenset(
    {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "YCbCr", "CMYK", "I", "F"}
    | {"I;16", "I;16L", "I;16B", "I;16N"}
)
# Tile raw modes of 16-bit colour data that Pillow would cut down to 8 bits.
_WIDE_RAWMODES = frozenset(f"{m};16{e}" for m in ("RGB", "RGBA") for e in "BLN")
_GREY_ALPHA_16 = "LA;16B"

_ORIENTATION_TAG = 0x0112
# Tags that describe a TIFF source's own pixel layout (or are carried
# separately): copied into another file they would describe the wrong data.
LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284}
    | {317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514}
    | {530, 531, 532, 34675, 37724}
)


@dataclass
class Planes:
    """Decoded samples before orientation and float conversion."""

    colour: np.ndarray  # H x W x 1 or 3; uint8, uint16 or float32 in [0, 1]
    alpha: np.ndarray | None
    bit_depth: int
    keep_icc: bool = True


def stored_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as stored, before any orientation (newer Pillow reports
    a TIFF's size already oriented)."""
    tags = getattr(im, "tag_v2", None)
    if im.format == "TIFF" and tags is not None and 256 in tags and 257 in tags:
        return int(tags[256]), int(tags[257])
    return im.size


def check_file(path: Path, name: str) -> None:
    """Refuse missing, non-regular and empty files before Pillow sees them."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {name}") from None
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name} is a folder, not an image (use 'deblur batch' for folders)")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block forever
        raise InputError(f"{name} is not a regular file")
    if st.st_size == 0:
        raise InputError(f"{name} is empty (0 bytes)")


class _BombCheckSwitch:
    """Turns Pillow's own decompression-bomb check off while any load runs.

    Pillow's check fires inside ``Image.open`` with its own (lower) limit, before
    ours could run; ours is done right after the header is parsed instead.
    Reference-counted so concurrent loads in threads do not restore it early.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    Image.MAX_IMAGE_PIXELS = self._saved


pillow_bomb_check_off = _BombCheckSwitch().off


@contextlib.contextmanager
def open_image(path: Path, name: str) -> Iterator[Image.Image]:
    """Open ``path`` with the allowed decoders; header errors become InputError."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    with fp:
        try:
            im = Image.open(fp, formats=formats.pillow_decoders())
        except UnidentifiedImageError:
            fp.seek(0)
            known = formats.unavailable(fp.read(64))
            if known is not None:  # a format deblur reads once its plugin is installed
                raise InputError(f"{name} is {known.label}, which deblur reads with {known.missing}") from None
            raise InputError(
                f"{name} is not an image in a supported format ({formats.readable_labels(', ')})"
            ) from None
        except Exception as e:  # noqa: BLE001 - any header failure is a bad input
            raise InputError(f"cannot read the image header of {name}: {one_line(e)}") from None
        with im:
            yield im


def check_pixels(im: Image.Image, limit: int, name: str) -> None:
    """Refuse images whose header claims more than ``limit`` pixels (0: no limit)."""
    width, height = im.size
    pixels = width * height
    if limit and pixels > limit:
        raise InputError(
            f"{name} is {width}x{height} = {pixels:,} pixels, over the limit of {limit:,} "
            f"(possible decompression bomb); raise it with --max-pixels N or "
            f"{MAX_PIXELS_ENV}=N (0 = no limit)"
        )


def check_mode(im: Image.Image, name: str) -> None:
    """Refuse colour modes that cannot be turned into RGB sensibly (LAB, HSV, ...)."""
    if im.mode not in _SUPPORTED_MODES:
        raise InputError(f"{name} has an unsupported colour mode: {im.mode}")


def frame_count(im: Image.Image, name: str) -> int:
    """Number of frames (pages); leaves the image on its first frame."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except Exception:  # noqa: BLE001 - a broken later frame: use the first
        try:
            im.seek(0)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{name} is corrupt: {one_line(e)}") from None
        return 1


def decode_planes(im: Image.Image, path: Path, name: str) -> Planes:
    """Decode the first frame fully (truncation is an error) into sample planes."""
    rawmode = _tile_rawmode(im)
    _load(im, name)
    if rawmode in _WIDE_RAWMODES or rawmode == _GREY_ALPHA_16:
        deep = _deep_planes(im, path, rawmode)
        if deep is not None:
            return deep
    return planes_from_mode(im, name)


def _load(im: Image.Image, name: str) -> None:
    """``im.load()`` with every decoder failure turned into a one-line error."""
    try:
        im.load()
    except MemoryError:
        raise ResourceError(f"not enough memory to decode {name}") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad data
        raise InputError(f"{name} is corrupt or truncated: {one_line(e)}") from None


def _tile_rawmode(im: Image.Image) -> str | None:
    """The raw (file) sample layout of the first tile, e.g. ``'RGB;16B'``."""
    if not getattr(im, "tile", None):
        return None
    args = im.tile[0][3]  # type: ignore[attr-defined]  # ImageFile's, checked above
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _deep_planes(im: Image.Image, path: Path, rawmode: str) -> Planes | None:
    """All 16 bits of a 16-bit colour or grey+alpha file, or None if Pillow cannot.

    The data was already decoded once (and so validated) to 8 bits; a second
    decode with another raw mode yields the missing low bytes.
    """
    try:
        if rawmode == _GREY_ALPHA_16:  # RGBA unpacks the 4 raw bytes as they are
            raw = _decode_as(path, "RGBA").astype(np.uint16)
            both = (raw[..., 0::2] << 8) | raw[..., 1::2]
            return Planes(both[..., :1], both[..., 1], 16)
        low = _decode_as(path, _swap_byte_order(rawmode))
    except Exception:  # noqa: BLE001 - unknown raw mode in this Pillow: keep 8 bits
        return None
    full = (np.asarray(im).astype(np.uint16) << 8) | low
    alpha = full[..., 3] if full.shape[2] == 4 else None
    return Planes(full[..., :3], alpha, 16)


def _decode_as(path: Path, rawmode: str) -> np.ndarray:
    """Decode the first frame again, unpacking the file's samples as ``rawmode``."""
    with open(path, "rb") as fp, Image.open(fp, formats=formats.pillow_decoders()) as im:
        im.tile = [_with_rawmode(tile, rawmode) for tile in im.tile]
        im.load()
        return np.asarray(im)


def _with_rawmode(tile: Any, rawmode: str) -> Any:
    """A copy of a Pillow tile descriptor with another raw mode."""
    args = tile[3]
    new_args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    if hasattr(tile, "_replace"):
        return tile._replace(args=new_args)
    return (tile[0], tile[1], tile[2], new_args)


def _swap_byte_order(rawmode: str) -> str:
    """'RGB;16B' -> 'RGB;16L' and back ('N' is native order): picks the low bytes."""
    native = "L" if sys.byteorder == "little" else "B"
    base, order = rawmode[:-1], rawmode[-1]
    order = native if order == "N" else order
    return base + ("L" if order == "B" else "B")


def planes_from_mode(im: Image.Image, name: str, wide_range: tuple[float, float, str] | None = None) -> Planes:
    """Samples of a decoded image in any supported Pillow mode: the one rule for files and
    for the Python API's PIL images. ``wide_range`` declares the range of mode I / F samples
    when the image carries none (see :func:`scaled_wide_samples`)."""
    mode = im.mode
    if mode in ("1", "L"):
        return Planes(np.asarray(im.convert("L"))[..., None], None, 8)
    if mode == "LA":
        la = np.asarray(im)
        return Planes(la[..., :1], la[..., 1].copy(), 8)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return planes_from_mode(im.convert("RGBA" if has_alpha else "RGB"), name)
    if mode in ("RGB", "RGBX", "YCbCr"):
        return Planes(np.asarray(im.convert("RGB")), None, 8)
    if mode == "RGBA":
        rgba = np.asarray(im)
        return Planes(rgba[..., :3], rgba[..., 3].copy(), 8)
    if mode == "CMYK":
        return Planes(np.asarray(_cmyk_to_rgb(im)), None, 8, keep_icc=False)
    if mode.startswith("I;16"):
        return Planes(np.asarray(im).astype(np.uint16)[..., None], None, 16)
    if mode in ("I", "F"):
        return Planes(scaled_wide_samples(im, name, wide_range)[..., None], None, 16)
    raise InputError(f"{name} has an unsupported colour mode: {mode}")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """CMYK -> sRGB through the embedded profile when possible, else Pillow's formula."""
    icc = im.info.get("icc_profile")
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or non-CMYK profile: fall back
    return im.convert("RGB")


def read_exif(im: Image.Image) -> tuple[int, bytes | None]:
    """(orientation, EXIF bytes with Orientation reset to 1); (1, None) if unreadable."""
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION_TAG, 1)
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        for tag in LAYOUT_TAGS & set(exif):
            del exif[tag]
        data = exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 - broken EXIF: no rotation, no EXIF
        return 1, None
    return _valid_orientation(orientation), data


def header_orientation(im: Image.Image) -> int:
    """EXIF orientation without decoding pixels (PNG EXIF after IDAT is skipped)."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # getexif() would decode the whole image to find it
    try:
        return _valid_orientation(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - broken EXIF
        return 1


def _valid_orientation(value: Any) -> int:
    """The orientation as an int in 1..8; anything else means 'as stored'."""
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1..8) to an H x W [x C] array, as a view."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.rot90(a, 2).swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def show(path: Path) -> str:
    """A printable one-line rendering of a path (non-UTF-8 bytes and control
    characters escaped), safe to put in an error message."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def one_line(error: BaseException) -> str:
    """The first line of an exception's text, or its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


"""Image files in and out: decoding, orientation, bit depth, alpha and metadata.

Inside the library an image is a float32 ``H x W x 3`` RGB array in ``[0, 1]``;
everything else about the file (alpha, grey, bit depth, EXIF, ICC profile) rides
along in :class:`LoadedImage` so that :func:`save_image` can write it back.

What Pillow cannot do, and how this module copes:

- Pillow has no 16-bit RGB mode: it decodes 48/64-bit RGB(A) PNG and TIFF to
  8 bits. Such files are decoded twice, once for the high and once for the low
  byte of every sample (by swapping the tile's byte-order raw mode), which keeps
  all 16 bits at twice the decoding time. 16-bit grey+alpha PNG is re-decoded as
  raw bytes the same way. Pillow cannot write these layouts either, so 16-bit
  PNG and TIFF output is written by the small encoders at the end of this module
  (PNG with the Sub filter; TIFF uncompressed, little-endian, one strip). Pillow
  cannot read 16-bit grey+alpha TIFF, so that one is written as 16-bit RGBA.
- Pillow (>= 11) applies a TIFF's orientation itself while decoding and drops
  the tag; either way the pixels come out oriented exactly once.
- WebP has no grey mode: grey input saved as WebP comes back as RGB.
- ``F`` (32-bit float) input is taken to be in ``[0, 1]`` and is clipped to it;
  it is reported and written as 16-bit.
- The EXIF thumbnail (IFD1) is not carried: it would show the blurry image.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags, UnidentifiedImageError

from deblur_cli.errors import InputError, OutputError, ResourceError, UsageError
from deblur_cli.fsutil import atomic_path, same_file

try:  # Pillow may be built without LittleCMS
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]

DEFAULT_MAX_PIXELS: int = 200_000_000
MAX_PIXELS_ENV = "DEBLUR_MAX_PIXELS"

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
)
OUTPUT_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
)

_SUFFIX_FORMAT = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
# Decoders Pillow may try; anything else (EPS, PSD, ...) is refused, which keeps
# exotic plugins (and Ghostscript) away from hostile files. The JPEG decoder also
# opens multi-picture (MPO) camera JPEGs.
_PILLOW_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF")
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
_METADATA_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "WEBP"})
_DEEP_FORMATS = frozenset({"PNG", "TIFF"})
_JPEG_MAX_EXIF = 65533  # one APP1 marker segment

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
_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284}
    | {317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514}
    | {530, 531, 532, 34675, 37724}
)


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

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after orientation."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass
class _Planes:
    """Decoded samples before orientation and float conversion."""

    colour: np.ndarray  # H x W x 1 or 3; uint8, uint16 or float32 in [0, 1]
    alpha: np.ndarray | None
    bit_depth: int
    keep_icc: bool = True


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
    name = _show(path)
    limit = _resolve_limit(max_pixels)
    _check_file(path, name)
    with _pillow_bomb_check_off(), _open(path, name) as im:
        _check_pixels(im, limit, name)
        _check_mode(im, name)
        n_frames = _frame_count(im, name)
        planes = _decode_planes(im, path, name)
        orientation, exif = _read_exif(im)
        icc = im.info.get("icc_profile") or None
        fmt = im.format or "unknown"
    colour = _orient(planes.colour, orientation)
    alpha = None if planes.alpha is None else np.ascontiguousarray(_orient(planes.alpha, orientation))
    return LoadedImage(
        path=path,
        rgb=_to_float_rgb(colour),
        alpha=alpha,
        is_grey=colour.shape[2] == 1,
        bit_depth=planes.bit_depth,
        format=fmt,
        exif=exif,
        icc_profile=icc if planes.keep_icc else None,
        n_frames=n_frames,
    )


def read_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone, after EXIF orientation where the
    header carries it (PNG EXIF stored after the pixels is not looked at)."""
    path = Path(path)
    name = _show(path)
    _check_file(path, name)
    with _pillow_bomb_check_off(), _open(path, name) as im:
        width, height = _stored_size(im)
        if _header_orientation(im) in (5, 6, 7, 8):
            width, height = height, width
    return width, height


def _stored_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as stored, before any orientation (newer Pillow reports
    a TIFF's size already oriented)."""
    tags = getattr(im, "tag_v2", None)
    if im.format == "TIFF" and tags is not None and 256 in tags and 257 in tags:
        return int(tags[256]), int(tags[257])
    return im.size


def _resolve_limit(max_pixels: int | None) -> int:
    """The pixel limit to enforce: argument, else environment, else default."""
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw.replace("_", ""))
        except ValueError:
            raise UsageError(f"{MAX_PIXELS_ENV} must be a whole number, got {raw!r}") from None
    if max_pixels < 0:
        raise UsageError(f"the pixel limit must be 0 (no limit) or positive, got {max_pixels}")
    return max_pixels


def _check_file(path: Path, name: str) -> None:
    """Refuse missing, non-regular and empty files before Pillow sees them."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {name}") from None
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name} is a folder, not an image")
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


_pillow_bomb_check_off = _BombCheckSwitch().off


@contextlib.contextmanager
def _open(path: Path, name: str) -> Iterator[Image.Image]:
    """Open ``path`` with the allowed decoders; header errors become InputError."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    with fp:
        try:
            im = Image.open(fp, formats=_PILLOW_FORMATS)
        except UnidentifiedImageError:
            raise InputError(
                f"{name} is not an image in a supported format (JPEG, PNG, TIFF, WebP, BMP, GIF)"
            ) from None
        except Exception as e:  # noqa: BLE001 - any header failure is a bad input
            raise InputError(f"cannot read the image header of {name}: {_one_line(e)}") from None
        with im:
            yield im


def _check_pixels(im: Image.Image, limit: int, name: str) -> None:
    """Refuse images whose header claims more than ``limit`` pixels (0: no limit)."""
    width, height = im.size
    pixels = width * height
    if limit and pixels > limit:
        raise InputError(
            f"{name} is {width}x{height} = {pixels:,} pixels, over the limit of {limit:,} "
            f"(possible decompression bomb); raise it with --max-pixels N or "
            f"{MAX_PIXELS_ENV}=N (0 = no limit)"
        )


def _check_mode(im: Image.Image, name: str) -> None:
    """Refuse colour modes that cannot be turned into RGB sensibly (LAB, HSV, ...)."""
    if im.mode not in _SUPPORTED_MODES:
        raise InputError(f"{name} has an unsupported colour mode: {im.mode}")


def _frame_count(im: Image.Image, name: str) -> int:
    """Number of frames (pages); leaves the image on its first frame."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except Exception:  # noqa: BLE001 - a broken later frame: use the first
        try:
            im.seek(0)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{name} is corrupt: {_one_line(e)}") from None
        return 1


def _decode_planes(im: Image.Image, path: Path, name: str) -> _Planes:
    """Decode the first frame fully (truncation is an error) into sample planes."""
    rawmode = _tile_rawmode(im)
    _load(im, name)
    if rawmode in _WIDE_RAWMODES or rawmode == _GREY_ALPHA_16:
        deep = _deep_planes(im, path, rawmode)
        if deep is not None:
            return deep
    return _planes_from_mode(im, name)


def _load(im: Image.Image, name: str) -> None:
    """``im.load()`` with every decoder failure turned into a one-line error."""
    try:
        im.load()
    except MemoryError:
        raise ResourceError(f"not enough memory to decode {name}") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad data
        raise InputError(f"{name} is corrupt or truncated: {_one_line(e)}") from None


def _tile_rawmode(im: Image.Image) -> str | None:
    """The raw (file) sample layout of the first tile, e.g. ``'RGB;16B'``."""
    if not getattr(im, "tile", None):
        return None
    args = im.tile[0][3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _deep_planes(im: Image.Image, path: Path, rawmode: str) -> _Planes | None:
    """All 16 bits of a 16-bit colour or grey+alpha file, or None if Pillow cannot.

    The data was already decoded once (and so validated) to 8 bits; a second
    decode with another raw mode yields the missing low bytes.
    """
    try:
        if rawmode == _GREY_ALPHA_16:  # RGBA unpacks the 4 raw bytes as they are
            raw = _decode_as(path, "RGBA").astype(np.uint16)
            both = (raw[..., 0::2] << 8) | raw[..., 1::2]
            return _Planes(both[..., :1], both[..., 1], 16)
        low = _decode_as(path, _swap_byte_order(rawmode))
    except Exception:  # noqa: BLE001 - unknown raw mode in this Pillow: keep 8 bits
        return None
    full = (np.asarray(im).astype(np.uint16) << 8) | low
    alpha = full[..., 3] if full.shape[2] == 4 else None
    return _Planes(full[..., :3], alpha, 16)


def _decode_as(path: Path, rawmode: str) -> np.ndarray:
    """Decode the first frame again, unpacking the file's samples as ``rawmode``."""
    with open(path, "rb") as fp, Image.open(fp, formats=_PILLOW_FORMATS) as im:
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


def _planes_from_mode(im: Image.Image, name: str) -> _Planes:
    """Samples of a decoded image in any supported Pillow mode."""
    mode = im.mode
    if mode in ("1", "L"):
        return _Planes(np.asarray(im.convert("L"))[..., None], None, 8)
    if mode == "LA":
        la = np.asarray(im)
        return _Planes(la[..., :1], la[..., 1].copy(), 8)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return _planes_from_mode(im.convert("RGBA" if has_alpha else "RGB"), name)
    if mode in ("RGB", "RGBX", "YCbCr"):
        return _Planes(np.asarray(im.convert("RGB")), None, 8)
    if mode == "RGBA":
        rgba = np.asarray(im)
        return _Planes(rgba[..., :3], rgba[..., 3].copy(), 8)
    if mode == "CMYK":
        return _Planes(np.asarray(_cmyk_to_rgb(im)), None, 8, keep_icc=False)
    if mode.startswith("I;16"):
        return _Planes(np.asarray(im).astype(np.uint16)[..., None], None, 16)
    if mode == "I":
        return _Planes(np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None], None, 16)
    if mode == "F":
        return _Planes(np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)[..., None], None, 16)
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


def _read_exif(im: Image.Image) -> tuple[int, bytes | None]:
    """(orientation, EXIF bytes with Orientation reset to 1); (1, None) if unreadable."""
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION_TAG, 1)
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        for tag in _LAYOUT_TAGS & set(exif):
            del exif[tag]
        data = exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 - broken EXIF: no rotation, no EXIF
        return 1, None
    return _valid_orientation(orientation), data


def _header_orientation(im: Image.Image) -> int:
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


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
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


def _to_float_rgb(colour: np.ndarray) -> np.ndarray:
    """H x W x (1|3) samples -> contiguous float32 H x W x 3 in [0, 1]."""
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
    rgb: np.ndarray, path: Path, like: LoadedImage | None = None, quality: int = 95
) -> None:
    """Write ``rgb`` (float H x W x 3 in [0, 1]) to ``path`` atomically.

    The format comes from the suffix. ``like`` (the loaded input) supplies grey vs
    colour, bit depth (16 bits kept for PNG/TIFF), alpha (dropped for JPEG/BMP),
    EXIF and ICC profile (JPEG, PNG, TIFF, WebP). ``quality`` (1..100) applies to
    JPEG and WebP. Raises UsageError for a bad suffix or quality, OutputError when
    the output is the input or cannot be written; nothing is left on failure.
    """
    path = Path(path)
    fmt = _output_format(path)
    _check_quality(quality)
    _check_array(rgb, like)
    if like is not None and same_file(path, like.path):
        raise OutputError(f"refusing to overwrite the input {_show(path)}; choose another output path")
    samples = _output_samples(rgb, like, fmt)
    exif, icc = _output_metadata(like, fmt)
    if fmt == "JPEG" and exif is not None and len(exif) > _JPEG_MAX_EXIF:
        exif = None  # cannot fit one JPEG marker; dropping it beats failing
    try:
        with atomic_path(path) as tmp:
            _encode(samples, tmp, fmt, quality, exif, icc)
    except OSError as e:
        raise OutputError(f"cannot write {_show(path)}: {e.strerror or _one_line(e)}") from None


def _output_format(path: Path) -> str:
    """Pillow format name for the output suffix, or UsageError."""
    fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        allowed = ", ".join(sorted(OUTPUT_SUFFIXES))
        raise UsageError(
            f"cannot write {_show(path)}: unsupported output type {path.suffix or '(none)'!r}; "
            f"use one of {allowed}"
        )
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


def _output_samples(rgb: np.ndarray, like: LoadedImage | None, fmt: str) -> np.ndarray:
    """H x W x C integer samples (C: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    deep = like is not None and like.bit_depth == 16 and fmt in _DEEP_FORMATS
    dtype, maxval = (np.uint16, 65535.0) if deep else (np.uint8, 255.0)
    colour = rgb.mean(axis=2, keepdims=True) if like is not None and like.is_grey else rgb
    planes = [_quantize(colour, maxval, dtype)]
    if like is not None and like.alpha is not None and fmt in _ALPHA_FORMATS:
        planes.append(_fit_alpha(like.alpha, dtype)[..., None])
    return np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]


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


def _output_metadata(like: LoadedImage | None, fmt: str) -> tuple[bytes | None, bytes | None]:
    """(EXIF, ICC) to embed, where the output format can hold them."""
    if like is None or fmt not in _METADATA_FORMATS:
        return None, None
    return like.exif or None, like.icc_profile or None


def _encode(
    samples: np.ndarray, tmp: Path, fmt: str, quality: int, exif: bytes | None, icc: bytes | None
) -> None:
    """Write ``samples`` to ``tmp`` in ``fmt``; 16-bit goes through our own encoders."""
    if samples.dtype == np.uint16:
        writer = _write_png16 if fmt == "PNG" else _write_tiff16
        writer(tmp, samples, exif, icc)
        return
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options: dict[str, Any] = {}
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if fmt == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2  # 4:4:4 / 4:2:0
    image.save(tmp, format=fmt, **options)


# ---------------------------------------------------- 16-bit PNG and TIFF


def _write_png16(path: Path, samples: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    """16-bit PNG (grey, grey+alpha, RGB, RGBA) with iCCP and eXIf chunks."""
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    step = channels * 2  # Sub filter: difference to the same byte of the previous pixel
    filtered = rows.copy()
    filtered[:, step:] -= rows[:, :-step]
    body = np.concatenate([np.ones((height, 1), np.uint8), filtered], axis=1)
    idat = zlib.compress(body.tobytes(), 6)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)))
        if icc:
            f.write(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
        if exif:
            f.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        for start in range(0, len(idat), 1 << 23):
            f.write(_png_chunk(b"IDAT", idat[start : start + (1 << 23)]))
        f.write(_png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC of type + payload."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _write_tiff16(path: Path, samples: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    """Uncompressed little-endian 16-bit TIFF: header, the IFD, then one strip.

    Pillow cannot read 16-bit grey+alpha TIFF, so that is written as RGBA.
    """
    if samples.shape[2] == 2:
        samples = samples[..., [0, 0, 0, 1]]
    data = samples.astype("<u2").tobytes()
    ifd = _tiff_ifd(samples.shape, len(data), exif, icc)
    with open(path, "wb") as f:
        f.write(b"II*\x00" + struct.pack("<I", 8))
        f.write(ifd.tobytes(8))  # Pillow adds the end of the IFD to StripOffsets
        f.write(data)


def _tiff_ifd(
    shape: tuple[int, ...], nbytes: int, exif: bytes | None, icc: bytes | None
) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The TIFF directory: EXIF tags (sub-IFDs included), then the layout tags."""
    height, width, channels = shape
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    if exif:
        meta = Image.Exif()
        meta.load(exif)
        for tag in set(meta) - _LAYOUT_TAGS:
            ifd[tag] = meta.get_ifd(tag) if tag in TiffTags.TAGS_V2_GROUPS else meta[tag]
    layout: dict[int, Any] = {
        256: width,
        257: height,
        258: (16,) * channels,  # BitsPerSample
        259: 1,  # no compression
        262: 2 if channels >= 3 else 1,  # RGB / BlackIsZero
        273: (0,),  # StripOffsets: relative to the end of the IFD, see above
        277: channels,
        278: height,  # RowsPerStrip: one strip
        279: (nbytes,),
        284: 1,  # chunky
    }
    if channels in (2, 4):
        layout[338] = (2,)  # ExtraSamples: unassociated alpha
    if icc:
        layout[34675] = icc
    for tag, value in layout.items():
        ifd[tag] = value
    return ifd


# ------------------------------------------------------------------ helpers


def _show(path: Path) -> str:
    """A printable one-line rendering of a path (non-UTF-8 bytes and control
    characters escaped), safe to put in an error message."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _one_line(error: BaseException) -> str:
    """The first line of an exception's text, or its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

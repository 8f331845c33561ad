"""Images in memory, PIL images and numpy arrays, turned into the library's float RGB by the
rules image files follow: the Python API's one input path.

* A PIL image goes through the same sample decoding as a file
  (:func:`deblur_cli.files.decode.planes_from_mode`): every mode a file may decode to,
  16-bit grey in either byte order (``I;16B`` too), CMYK through its profile, palettes.
  Premultiplied ``La`` / ``RGBa`` are unpremultiplied first; other modes Pillow can turn
  into RGB are converted, and the rest are refused.
* Samples have the range their type means and are never clipped: 8 and 16-bit integers
  their whole range; floats (arrays, mode ``F``) 0..1; mode ``I`` 0..65535 (what Pillow
  decodes 16-bit PNG to). NaN, infinity and samples outside the range are refused, with the
  one range rule of 32-bit files (:func:`deblur_cli.files.samples.check_in_range`); only
  float rounding (within ``FLOAT_TOLERANCE``, 1e-6) is accepted, and clipped.
* What is harmless is accepted: either byte order (``>u2``, ``>f4``: the result comes back
  in the array's own dtype), float16. What is not is named: a signed or wider integer
  dtype (no range of its own), channels first (``3 x H x W``).

Every refusal is a :class:`~deblur_cli.errors.UsageError` naming the expected range or
layout: the caller's data, not a file, is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from deblur_cli.errors import InputError, UsageError
from deblur_cli.files.samples import FILE_ADVICE, check_in_range

#: Modes whose image comes back in the same mode (see :func:`to_pil`).
KEPT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
#: Range of mode I samples when the image declares none (the API's documented 0..65535).
MODE_I_RANGE = (0.0, 65535.0, "mode I integer")
_UNPREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}
_ARRAY_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)
_DTYPE_ADVICE = "use uint8 (0..255), uint16 (0..65535) or floats in 0..1 (float16, float32 or float64)"


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """The shared decoding speaks of files (InputError); here the caller's data is wrong."""
    try:
        yield
    except InputError as e:
        raise UsageError(e.message.replace(FILE_ADVICE, "or pass 8- or 16-bit integer samples")) from None


def split_samples(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour H x W x (1|3), alpha H x W or None)`` from an array of a supported layout.

    UsageError for another dtype or shape, an empty array, or float samples outside 0..1
    (NaN and infinity included): they are refused, never clipped.
    """
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(samples).__name__}")
    samples = _native(samples)
    if samples.ndim == 2:
        samples = samples[..., None]
    if samples.ndim != 3 or samples.shape[2] not in (1, 2, 3, 4) or samples.shape[0] < 1 or samples.shape[1] < 1:
        first = " (channels first? pass array.transpose(1, 2, 0))" if samples.ndim == 3 and samples.shape[0] in (1, 3, 4) and samples.shape[2] > 4 else ""
        raise UsageError(
            f"unsupported image shape {samples.shape}{first}; use H x W, or H x W x C with C = 1, 2, 3 or 4"
        )
    channels = samples.shape[2]
    colour, alpha = (samples[..., : channels - 1], samples[..., channels - 1]) if channels in (2, 4) else (samples, None)
    if samples.dtype.kind == "f":
        with _as_usage_error():
            check_in_range(colour, 0.0, 1.0, f"{samples.dtype} floating-point", "the array")
            if alpha is not None:
                check_in_range(alpha, 0.0, 1.0, f"{samples.dtype} floating-point alpha", "the array")
        colour = np.clip(colour, 0.0, 1.0)  # float rounding (within FLOAT_TOLERANCE) only: the rest was refused
    return colour, alpha


def _native(samples: np.ndarray) -> np.ndarray:
    """``samples`` in native byte order, float16 widened to float32; a UsageError naming the
    dtype and what to pass for one without a range of its own (signed, wider, bool, ...)."""
    dtype = samples.dtype
    if dtype.kind in "uif" and dtype.newbyteorder("=") in _ARRAY_DTYPES:
        if dtype.byteorder not in ("=", "|") and dtype != dtype.newbyteorder("="):
            samples = samples.astype(dtype.newbyteorder("="))  # big-endian data from a file or the network
        return samples.astype(np.float32) if samples.dtype == np.float16 else samples
    why = {
        "i": "signed integers have no range of their own (is it 0..255? 0..65535?)",
        "u": "its range is wider than any photo's",
        "b": "True/False are not samples",
        "f": "its floats are not a type numpy computes with here",
    }.get(dtype.kind, "it holds no numbers")
    raise UsageError(f"unsupported array dtype {dtype}: {why}; {_DTYPE_ADVICE}")


def to_float_rgb(colour: np.ndarray) -> np.ndarray:
    """``H x W x (1|3)`` samples (checked) -> contiguous float32 ``H x W x 3`` in [0, 1], grey
    replicated: the one integer -> float rule of files (:func:`image_io.float_rgb`)."""
    from deblur_cli.files.image_io import float_rgb

    return np.ascontiguousarray(float_rgb(colour))


def join_samples(sharp: np.ndarray, alpha: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """The engine's float32 ``H x W x 3`` back in ``like``'s dtype and layout, alpha re-attached."""
    from deblur_cli.files.image_io import quantize  # the one float -> integer rule

    grey = like.ndim == 2 or like.shape[2] in (1, 2)
    colour = sharp.mean(axis=2, keepdims=True) if grey else sharp
    if like.dtype.kind == "u":  # uint8 or uint16, in either byte order
        colour = quantize(colour, like.dtype.type)
    else:
        colour = np.clip(colour, 0.0, 1.0).astype(like.dtype)
    if alpha is not None:
        colour = np.concatenate([colour, alpha[..., None].astype(colour.dtype)], axis=2)
    if like.ndim == 2:
        colour = colour[..., 0]
    return np.ascontiguousarray(colour, dtype=like.dtype)  # the caller's own dtype, byte order and float16 included


def from_pil(image: Any) -> tuple[np.ndarray, str]:
    """(samples, mode to return) of a PIL image, decoded as a file of that mode would be.

    The samples are an array :func:`split_samples` accepts: uint8, uint16 or float32 in
    0..1, grey or colour, alpha last.
    """
    from deblur_cli.files.decode import _SUPPORTED_MODES, planes_from_mode

    mode = image.mode
    if mode in _UNPREMULTIPLIED:
        mode = _UNPREMULTIPLIED[mode]
        image = image.convert(mode)
    elif mode not in _SUPPORTED_MODES:
        wanted = "RGBA" if mode.endswith(("A", "a")) or "transparency" in image.info else "RGB"
        try:
            image = image.convert(wanted)
        except (ValueError, OSError) as e:
            raise UsageError(f"PIL images in mode {mode} are not supported ({e}); convert it to RGB first") from None
    try:
        image.load()
    except Exception as e:  # noqa: BLE001 - a lazily opened file that turns out broken
        raise UsageError(f"the PIL image cannot be decoded: {e}") from None
    with _as_usage_error():
        planes = planes_from_mode(image, "the PIL image", MODE_I_RANGE if image.mode == "I" else None)
    colour = planes.colour
    if image.mode == "F":
        colour = colour.astype(np.float32)  # scaled from 0..1: the samples themselves
    elif image.mode == "I":
        colour = np.rint(colour * 65535.0).astype(np.uint16)
    alpha = planes.alpha
    if alpha is not None and alpha.dtype != colour.dtype:
        alpha = alpha.astype(colour.dtype)
    samples = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
    return (samples[..., 0] if samples.shape[2] == 1 else samples), mode


def to_pil(samples: np.ndarray, mode: str) -> Any:
    """A PIL image from samples made by :func:`join_samples`: the modes of :data:`KEPT_MODES`
    come back as they came (``I;16L``/``N`` as ``I;16``); others as what they decode to
    (grey ``L``, colour ``RGB``, with alpha ``LA``/``RGBA``)."""
    from PIL import Image

    if mode == "I":
        samples = samples.astype(np.int32)  # 2-D int32 -> mode I
    elif mode == "I;16B":
        samples = samples.astype(">u2")
    elif mode == "L" and samples.dtype != np.uint8:
        samples = samples.astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(samples))  # dtype and layout pick L, LA, RGB, RGBA, I;16 or F

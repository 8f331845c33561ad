"""32-bit integer (Pillow mode I) and float (mode F) image samples, scaled to [0, 1].

Used by :mod:`deblur_cli.files.decode` for 32-bit TIFFs and for the 16-bit data that
Pillow widens to mode I. The range is the one the file declares (TIFF SampleFormat,
BitsPerSample, SMin/SMaxSampleValue); samples outside it are refused with an
:class:`~deblur_cli.errors.InputError`, never clipped. Floating-point samples may stray by
float rounding (:data:`FLOAT_TOLERANCE` of the range): those are clipped, not refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from deblur_cli.errors import InputError

# TIFF tags of the sample layout: BitsPerSample, SampleFormat (1 unsigned, 2 signed, 3 float),
# SMinSampleValue, SMaxSampleValue (the range the samples use, when the writer says so).
_BITS, _SAMPLE_FORMAT, _SMIN, _SMAX = 258, 339, 340, 341
#: The end of the range message for a file (the API says what to pass instead).
FILE_ADVICE = "or save it as an 8- or 16-bit image"
#: How far (as a fraction of the range) floating-point samples may lie outside it and still
#: be accepted, then clipped: float32 arithmetic puts 1 - x + x at 1.0000001 (about 8 ulps
#: of float32 at 1.0 fit in it); anything further is a wrong scale, not rounding.
FLOAT_TOLERANCE = 1e-6


def scaled_wide_samples(
    im: Image.Image, name: str, declared: tuple[float, float, str] | None = None
) -> np.ndarray:
    """32-bit integer (mode I) or float (mode F) samples as float32 in [0, 1].

    The range is the one the file declares: SMin/SMaxSampleValue when present, else
    0..1 for floats and the full range of the integer type (0..65535 for 16-bit data
    that Pillow widened to I, 0..2**31-1 for int32, 0..2**32-1 for uint32). Samples
    outside it (a float TIFF holding 0..255, negative integers) are refused rather than
    clipped: clipping turned such files almost white without a word. ``declared``
    (low, high, kind) overrides the range, for images that come with none (the Python API's).
    """
    data = np.asarray(im)
    low, high, kind = declared if declared is not None else _declared_range(im)
    check_in_range(data, low, high, kind, name)  # integers checked as integers: exactly
    data = data if data.dtype.kind == "f" else data.astype(np.float64)  # int32 needs float64's 53 bits
    return np.clip((data - low) / (high - low), 0.0, 1.0).astype(np.float32)  # clips float rounding only


def check_in_range(data: np.ndarray, low: float, high: float, kind: str, name: str) -> None:
    """InputError unless every sample is finite and within ``low..high``: the one range rule
    for 32-bit files and for float arrays and PIL images of the API. Floating-point ``data``
    may stray by :data:`FLOAT_TOLERANCE` of the range (float rounding; the caller clips it);
    integers may not. The message gives the samples found exactly, and how many are out."""
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{name} holds NaN or infinite samples ({bad:,} of {data.size:,}); {kind} samples must lie in {_num(low)}..{_num(high)}")
    slack = FLOAT_TOLERANCE * (high - low) if data.dtype.kind == "f" else 0.0
    found_low, found_high = data.min(), data.max()
    if found_low < low - slack or found_high > high + slack:
        span = f"{_num(low)}..{_num(high)}"
        out = int(np.count_nonzero((data < low - slack) | (data > high + slack)))
        raise InputError(
            f"{name} has {kind} samples from {_num(found_low)} to {_num(found_high)}, outside the {span} its "
            f"format means ({out:,} of {data.size:,} samples); rescale it to {span} {FILE_ADVICE}"
        )


def _declared_range(im: Image.Image) -> tuple[float, float, str]:
    """(low, high, description) of the sample range of a mode I or F image."""
    tags = getattr(im, "tag_v2", None) or {}
    bits = _first(tags.get(_BITS), 16 if im.format == "PNG" else 32)
    sample_format = _first(tags.get(_SAMPLE_FORMAT), 3 if im.mode == "F" else 1)
    if im.mode == "F" or sample_format == 3:
        kind, low, high = f"{bits}-bit floating-point", 0.0, 1.0
    elif sample_format == 2:
        kind, low, high = f"{bits}-bit signed integer", 0.0, float(2 ** (bits - 1) - 1)
    else:
        kind, low, high = f"{bits}-bit integer", 0.0, float(2**bits - 1)
    smin, smax = tags.get(_SMIN), tags.get(_SMAX)
    if smin is not None and smax is not None:
        smin, smax = float(_first(smin, 0)), float(_first(smax, 0))
        if np.isfinite(smin) and np.isfinite(smax) and smax > smin:
            low, high = smin, smax
    return low, high, kind


def _num(x: Any) -> str:
    """A sample value for a message: whole numbers in full, others as the shortest text that
    reads back as the same number of their type (1.0000001 is not "1")."""
    if float(x).is_integer() and abs(float(x)) < 1e15:
        return str(int(x))
    return str(x) if isinstance(x, np.floating) else repr(float(x))


def _first(value: Any, default: Any) -> Any:
    """A TIFF tag's first value (tags of multi-sample images are tuples)."""
    if value is None:
        return default
    if isinstance(value, tuple):
        return value[0] if value else default
    return value

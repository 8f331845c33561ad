"""16-bit PNG and TIFF encoders: Pillow cannot write 16-bit RGB(A) or grey+alpha.

PNG with the Sub filter; TIFF uncompressed, little-endian, one strip. Pillow cannot read
16-bit grey+alpha TIFF, so that one is written as 16-bit RGBA.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

from deblur_cli.files.decode import LAYOUT_TAGS
from deblur_cli.files.metadata import Extras, png_chunks, tiff_tags


def write_png16(
    path: Path, samples: np.ndarray, exif: bytes | None, icc: bytes | None,
    extras: Extras = Extras(), keep: set[str] | frozenset[str] = frozenset(),
) -> None:
    """16-bit PNG (grey, grey+alpha, RGB, RGBA) with iCCP and eXIf chunks, and of ``extras``
    the items in ``keep``: pHYs (DPI), gAMA, iTXt (XMP, comment, text)."""
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
        if "dpi" in keep and extras.dpi:
            per_metre = [round(d / 0.0254) for d in extras.dpi]
            f.write(_png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1)))
        for kind, payload in png_chunks(extras, set(keep)):
            f.write(_png_chunk(kind, payload))
        for start in range(0, len(idat), 1 << 23):
            f.write(_png_chunk(b"IDAT", idat[start : start + (1 << 23)]))
        f.write(_png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC of type + payload."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def write_tiff16(
    path: Path, samples: np.ndarray, exif: bytes | None, icc: bytes | None,
    extras: Extras = Extras(), keep: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Uncompressed little-endian 16-bit TIFF: header, the IFD, then one strip; of ``extras``
    the items in ``keep`` (resolution, XMP, ImageDescription).

    Pillow cannot read 16-bit grey+alpha TIFF, so that is written as RGBA.
    """
    if samples.shape[2] == 2:
        samples = samples[..., [0, 0, 0, 1]]
    data = samples.astype("<u2").tobytes()
    ifd = _tiff_ifd(samples.shape, len(data), exif, icc, tiff_tags(extras, set(keep)))
    with open(path, "wb") as f:
        f.write(b"II*\x00" + struct.pack("<I", 8))
        f.write(ifd.tobytes(8))  # Pillow adds the end of the IFD to StripOffsets
        f.write(data)


def _tiff_ifd(
    shape: tuple[int, ...], nbytes: int, exif: bytes | None, icc: bytes | None, extra_tags: dict[int, Any]
) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The TIFF directory: EXIF tags (sub-IFDs included), then the layout tags."""
    height, width, channels = shape
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    if exif:
        meta = Image.Exif()
        meta.load(exif)
        for tag in set(meta) - LAYOUT_TAGS:
            ifd[tag] = meta.get_ifd(tag) if tag in TiffTags.TAGS_V2_GROUPS else meta[tag]
    for tag, value in extra_tags.items():
        ifd[tag] = value
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


#: The 16-bit writer of each deep format (``deep=True`` in :mod:`deblur_cli.files.formats`).
WRITERS = {"PNG": write_png16, "TIFF": write_tiff16}

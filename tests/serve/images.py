"""Test images for the server tests, encoded in memory."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

MAKE = 0x010F
ORIENTATION = 0x0112


def photo_array(width: int = 48, height: int = 32, seed: int = 0, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """Smooth colour gradients plus noise: something with edges to deblur."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([(x / width), (y / height), ((x + y) / (width + height))], axis=2)
    base = np.concatenate([base, np.full((height, width, 1), 0.6, np.float32)], axis=2)[..., :channels]
    values = np.clip(base * 0.8 + rng.random((height, width, channels), dtype=np.float32) * 0.2, 0, 1)
    top = np.iinfo(dtype).max
    return np.rint(values * top).astype(dtype)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(width: int = 48, height: int = 32, seed: int = 0) -> bytes:
    return encode(Image.fromarray(photo_array(width, height, seed)), "PNG")


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata(width: int = 48, height: int = 32) -> bytes:
    """A JPEG with EXIF (camera make, orientation 6: rotate to portrait) and an ICC profile."""
    exif = Image.Exif()
    exif[MAKE] = "deblur-test-camera"
    exif[ORIENTATION] = 6
    image = Image.fromarray(photo_array(width, height, seed=3))
    return encode(image, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=srgb_profile())


def png16_rgba(width: int = 40, height: int = 24) -> bytes:
    """A 16-bit RGBA PNG (Pillow cannot write one: use the package's own writer)."""
    import tempfile
    from pathlib import Path

    from deblur_cli.files.encode16 import write_png16

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deep.png"
        write_png16(path, photo_array(width, height, seed=5, channels=4, dtype=np.uint16), None, srgb_profile())
        return path.read_bytes()


def grey_png(width: int = 36, height: int = 28) -> bytes:
    return encode(Image.fromarray(photo_array(width, height, seed=7, channels=1)[..., 0]), "PNG")


def tiff(width: int = 40, height: int = 30) -> bytes:
    return encode(Image.fromarray(photo_array(width, height, seed=9)), "TIFF")


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height``: a decompression bomb's first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def heic_start() -> bytes:
    """The first bytes of a HEIC file (an ISO-BMFF ftyp box with the heic brand)."""
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)

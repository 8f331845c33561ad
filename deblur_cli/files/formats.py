"""One record per image format: everything deblur knows about it, and every table built from it.

The suffix lists (:data:`SUPPORTED_SUFFIXES`, :data:`OUTPUT_SUFFIXES`), the decoders Pillow
may try (:func:`pillow_decoders`), which formats keep alpha, 16 bits and which metadata
(:mod:`deblur_cli.files.metadata`), each writer's limits (:mod:`deblur_cli.files.writers`),
the media types and download suffixes of ``deblur serve`` and the list its page accepts
(:func:`accept_attribute`) are all derived from :data:`FORMATS`. ``tests/files/test_formats.py``
checks that every record is complete.

Adding a format is one :class:`ImageFormat` record: in :data:`FORMATS` here, or, when it
needs code (a Pillow plugin to enable), as ``FORMAT`` in a module of its own named in
:data:`FORMAT_MODULES` (one line). No Pillow import here: the records are plain data, so
the command line's help can use them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

#: The metadata items a format may hold (see :class:`deblur_cli.files.metadata.Extras`).
METADATA = frozenset({"exif", "icc", "dpi", "xmp", "gamma", "comment", "text", "lossless"})


@dataclass(frozen=True)
class ImageFormat:
    """An image file format.

    ``name``: Pillow's name of the format (what ``Image.open(...).format`` says and
    ``save(format=)`` takes); ``aliases``: other names Pillow reports for such files (a
    camera's multi-picture JPEG opens as ``MPO``). ``label``: its name in messages.
    ``suffixes``: lower case, the first one is written. ``mime``: its media type.
    ``read`` / ``write``: deblur decodes / encodes it; a format deblur reads but cannot
    write has its results written as :data:`FALLBACK` (:func:`written_as`). ``alpha``: it can
    store transparency; ``deep``: 16 bits per sample. ``max_side``: the largest side a
    written file may have, in px; ``max_bytes`` with ``file_bytes(width, height, channels,
    bytes_per_sample)``: a limit on the file or sample size. ``holds``: the metadata items
    (:data:`METADATA`) its writer carries. ``suggested``: named when a note tells the user
    which format would keep what another dropped. ``quality``: its writer takes
    ``--quality``. ``enable``: called once before Pillow opens or writes any file (e.g. to
    register a Pillow plugin); returns False when what it needs is not installed, and the
    format's decoder is then left out of :func:`pillow_decoders`. ``signature``: a regular
    expression matching the first bytes of such a file, and ``missing``: what to install,
    for a format with an ``enable`` that may fail, so that its files are named for what they
    are ("needs the heif extra") rather than "not an image".
    """

    name: str
    label: str
    suffixes: tuple[str, ...]
    mime: str
    read: bool = True
    write: bool = True
    alpha: bool = False
    deep: bool = False
    max_side: int | None = None
    max_bytes: int | None = None
    file_bytes: Callable[[int, int, int, int], int] | None = None
    holds: frozenset[str] = frozenset()
    suggested: bool = True
    quality: bool = False
    aliases: tuple[str, ...] = ()
    enable: Callable[[], bool] | None = None
    signature: bytes = b""
    missing: str = ""

    @property
    def suffix(self) -> str:
        """The suffix a file of this format is written with."""
        return self.suffixes[0]


def _tiff_bytes(width: int, height: int, channels: int, depth: int) -> int:
    """Sample bytes of a classic TIFF (32-bit offsets); 16-bit grey + alpha is written as
    RGBA (see :mod:`deblur_cli.files.encode16`)."""
    if channels == 2 and depth == 2:
        channels = 4
    return width * height * channels * depth


def _bmp_bytes(width: int, height: int, channels: int, depth: int) -> int:
    """A BMP file: rows padded to 4 bytes, 8-bit grey (with a palette) or 24-bit colour."""
    grey = channels == 1
    row = (width * (8 if grey else 24) + 31) // 32 * 4
    return row * height + 54 + (1024 if grey else 0)


#: Modules that each define one more format as ``FORMAT`` (an :class:`ImageFormat`).
FORMAT_MODULES: tuple[str, ...] = ("deblur_cli.files.avif", "deblur_cli.files.heif")  # AVIF first: both may be mif1

FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat(
        "JPEG", "JPEG", (".jpg", ".jpeg", ".jpe", ".jfif", ".jif", ".jfi"), "image/jpeg", max_side=65_500, quality=True,
        holds=frozenset({"exif", "icc", "dpi", "xmp", "comment"}), aliases=("MPO",),
    ),
    ImageFormat(
        "PNG", "PNG", (".png", ".apng"), "image/png", alpha=True, deep=True, max_side=2**31 - 1,
        holds=frozenset({"exif", "icc", "dpi", "xmp", "gamma", "comment", "text"}),
    ),
    ImageFormat(
        "TIFF", "TIFF", (".tif", ".tiff"), "image/tiff", alpha=True, deep=True, max_side=2**32 - 1,
        max_bytes=2**32 - 2**20, file_bytes=_tiff_bytes,  # 4 GiB less room for the header
        holds=frozenset({"exif", "icc", "dpi", "xmp", "comment"}),
    ),
    ImageFormat(
        "WEBP", "WebP", (".webp",), "image/webp", alpha=True, max_side=16_383, quality=True,
        holds=frozenset({"exif", "icc", "xmp", "lossless"}),
    ),
    ImageFormat(
        "BMP", "BMP", (".bmp", ".dib"), "image/bmp", max_side=2**31 - 1, max_bytes=2**32 - 1, file_bytes=_bmp_bytes,
        holds=frozenset({"dpi"}), suggested=False,
    ),
    ImageFormat("GIF", "GIF", (".gif",), "image/gif", write=False),
    *(importlib.import_module(module).FORMAT for module in FORMAT_MODULES),
)
#: Results of a format deblur cannot write are written in this one.
FALLBACK = "PNG"

_BY_NAME = {n: f for f in FORMATS for n in (f.name, *f.aliases)}
_BY_SUFFIX = {s: f for f in FORMATS for s in f.suffixes}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(s for f in FORMATS if f.read for s in f.suffixes)
OUTPUT_SUFFIXES: frozenset[str] = frozenset(s for f in FORMATS if f.write for s in f.suffixes)
_enabled: tuple[str, ...] | None = None


def pillow_decoders() -> tuple[str, ...]:
    """The decoders Pillow may try, each format's ``enable`` run the first time. Anything
    else (EPS, PSD, ...) is refused, which keeps exotic plugins (and Ghostscript) away from
    hostile files. The JPEG decoder also opens multi-picture (MPO) camera JPEGs."""
    global _enabled
    if _enabled is None:
        _enabled = tuple(f.name for f in FORMATS if f.read and (f.enable is None or f.enable()))
    return _enabled


def available(fmt: ImageFormat) -> bool:
    """True when deblur can use ``fmt`` here: it needs nothing, or its ``enable`` found it."""
    return fmt.enable is None or fmt.name in pillow_decoders()


def unavailable(head: bytes) -> ImageFormat | None:
    """The format of a file starting with ``head`` when it is one deblur knows but cannot use
    here (its plugin is not installed: :attr:`ImageFormat.missing`); else None."""
    found = (f for f in FORMATS if f.signature and re.match(f.signature, head, re.S))
    return next((f for f in found if not available(f)), None)


def by_suffix(suffix: str) -> ImageFormat | None:
    """The format of a file suffix (any case, with its dot), or None."""
    return _BY_SUFFIX.get(suffix.lower())


def by_name(name: str) -> ImageFormat:
    """The format Pillow calls ``name`` (or reports as it); KeyError for another."""
    return _BY_NAME[name]


def written_as(name: str) -> ImageFormat:
    """The format a result of an input Pillow calls ``name`` is written in: its own, or
    :data:`FALLBACK` for a format deblur cannot write."""
    fmt = _BY_NAME.get(name)
    return fmt if fmt is not None and fmt.write else _BY_NAME[FALLBACK]


def readable_labels(last: str = " or ") -> str:
    """The formats deblur reads, for messages: ``JPEG, PNG, TIFF, WebP, BMP or GIF``."""
    labels = [f.label for f in FORMATS if f.read]
    return ", ".join(labels[:-1]) + last + labels[-1] if len(labels) > 1 else labels[0]


def accept_attribute() -> str:
    """What a web page's ``<input type=file accept=...>`` offers: every readable suffix and
    media type."""
    readable = [f for f in FORMATS if f.read]
    return ",".join([*(f.mime for f in readable), *(s for f in readable for s in f.suffixes)])

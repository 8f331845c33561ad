"""HEIF / HEIC, the format phones save photos in (iPhones by default): read and written through
pillow-heif, a Pillow plugin over libheif, installed by the ``heif`` extra.

An optional extra rather than a dependency: its wheels bring libheif with the x265 encoder
(GPL) and the libde265 decoder (LGPL), 6 MB, which a user who never meets a HEIC need not
install; without it a HEIC file is named for what it is and what to install. The plugin turns
the file's rotation (irot/imir) into pixels and sets the EXIF orientation to 1, so deblur's own
orientation step does not turn it twice. EXIF, XMP and the ICC profile are read and written;
10- and 12-bit files are read as 8 bits (the plugin's default).
"""

from __future__ import annotations

from deblur_cli.files.formats import ImageFormat

#: The brands of an ISO base media file (``ftyp``) that hold HEVC-coded images. ``mif1`` and
#: ``msf1`` are generic: AVIF files may name them first, so AVIF's own record is asked first.
_BRANDS = rb"heic|heix|hevc|heim|heis|hevm|hevs|mif1|msf1"
INSTALL = "the heif extra: pip install \".[heif]\" in the checkout (pipx: pipx inject deblur-cli pillow-heif)"


def _enable() -> bool:
    """Register pillow-heif's opener and saver; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener(thumbnails=False)  # thumbnails: not read, never written
    return True


FORMAT = ImageFormat(
    "HEIF", "HEIF (HEIC)", (".heic", ".heif", ".hif"), "image/heic", alpha=True, quality=True,
    max_side=16_384,  # written and read back at that width; x265 refuses some shapes beyond
    holds=frozenset({"exif", "icc", "xmp"}), enable=_enable,
    signature=rb"^.{4}ftyp(" + _BRANDS + rb")", missing=INSTALL,
)

"""AVIF (AV1 images: Android phones, browsers' downloads): read and written by Pillow itself,
whose wheels have carried libavif since Pillow 11.3.

No extra package: where Pillow was built without libavif (older versions, some Linux
distributions' own builds) an AVIF file is named for what it is and what to install. EXIF,
XMP and the ICC profile are read and written; the file's rotation comes back as the EXIF
orientation, which deblur applies as for any photo.
"""

from __future__ import annotations

from deblur_cli.files.formats import ImageFormat

INSTALL = "a Pillow with AVIF support (Pillow 11.3 or newer from PyPI: pip install -U pillow)"


def _enable() -> bool:
    """True when this Pillow reads and writes AVIF (built with libavif)."""
    from PIL import features

    try:
        return bool(features.check("avif"))
    except ValueError:  # a Pillow that does not know the feature's name
        return False


FORMAT = ImageFormat(
    "AVIF", "AVIF", (".avif",), "image/avif", alpha=True, quality=True,
    max_side=32_768,  # written and read back at 30,000 px; libavif refuses 65,536
    holds=frozenset({"exif", "icc", "xmp"}), enable=_enable,
    signature=rb"^.{4}ftyp(avif|avis|(mif1|msf1).{4,28}?(avif|avis))", missing=INSTALL,
)

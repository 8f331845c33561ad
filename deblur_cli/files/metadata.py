"""What rides along with the pixels besides EXIF and the ICC profile: resolution (DPI), XMP,
PNG gamma, comments, PNG text chunks, and whether a WebP was lossless.

:func:`read_extras` collects them while a file is decoded; the writers of
:mod:`deblur_cli.files.image_io` and :mod:`deblur_cli.files.encode16` put back what the
output format can hold (its record's ``holds``, :mod:`deblur_cli.files.formats`), and :func:`dropped` names, for a ``note:``, what it
cannot: the gamma of a PNG written as JPEG, an EXIF block over the 64 KB a JPEG segment
holds, anything in a BMP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deblur_cli.files.formats import FORMATS, ImageFormat

#: EXIF in one JPEG APP1 segment: 65535 minus the length field ("Exif\0\0" is counted in).
JPEG_MAX_EXIF = 65533
#: XMP in one JPEG APP1 segment, after its 29-byte namespace header.
JPEG_MAX_XMP = 65504
#: PNG text keys carried as their own item, not as a text chunk.
_COMMENT_KEY, _XMP_KEY = "Comment", "XML:com.adobe.xmp"
_TIFF_DESCRIPTION, _TIFF_XMP = 270, 700

_NAMES = {
    "exif": "EXIF", "icc": "colour profile (ICC)", "dpi": "resolution (DPI)", "xmp": "XMP metadata",
    "gamma": "gamma (gAMA)", "comment": "comment", "text": "text chunks",
}


@dataclass(frozen=True)
class Extras:
    """Metadata of a source besides EXIF and ICC (see the module docstring)."""

    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    gamma: float | None = None
    comment: bytes | None = None
    text: tuple[tuple[str, str], ...] = ()  # PNG text chunks but Comment and XMP
    lossless: bool = False  # a lossless (VP8L) WebP


def read_extras(im: Any, path: Path) -> Extras:
    """The extras of an opened, decoded Pillow image (best effort: odd values are skipped)."""
    info = im.info
    dpi = info.get("dpi")
    dpi = (float(dpi[0]), float(dpi[1])) if _is_pair(dpi) and all(v > 0 for v in dpi) else None
    xmp = info.get("xmp")
    if xmp is None and im.format == "TIFF":
        xmp = getattr(im, "tag_v2", {}).get(_TIFF_XMP)
    xmp = xmp.encode("utf-8") if isinstance(xmp, str) else xmp if isinstance(xmp, bytes) else None
    comment = info.get("comment")
    text: list[tuple[str, str]] = []
    if im.format == "PNG":
        for key, value in (getattr(im, "text", None) or {}).items():
            if key == _COMMENT_KEY and comment is None:
                comment = value
            elif key != _XMP_KEY and isinstance(value, str):
                text.append((str(key), value))
    comment = comment.encode("utf-8") if isinstance(comment, str) else comment if isinstance(comment, bytes) else None
    gamma = info.get("gamma") if im.format == "PNG" else None
    return Extras(
        dpi=dpi,
        xmp=xmp or None,
        gamma=float(gamma) if isinstance(gamma, (int, float)) and gamma > 0 else None,
        comment=comment or None,
        text=tuple(text),
        lossless=im.format == "WEBP" and _webp_is_lossless(path),
    )


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)


def _webp_is_lossless(path: Path) -> bool:
    """True when the WebP's image data is a VP8L (lossless) chunk; reads the RIFF chunk list."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
                return False
            while chunk := f.read(8):
                if len(chunk) < 8:
                    return False
                kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if kind in (b"VP8L", b"VP8 "):
                    return kind == b"VP8L"
                if kind == b"ANMF":  # animation: the first frame's data starts 16 bytes in
                    f.seek(16, 1)
                    continue
                f.seek(size + (size & 1), 1)
    except OSError:
        return False
    return False


def present(exif: bytes | None, icc: bytes | None, extras: Extras) -> set[str]:
    """Which items a source has."""
    items = {"exif"} if exif else set()
    items |= {"icc"} if icc else set()
    items |= {name for name in ("dpi", "xmp", "gamma", "comment", "text") if getattr(extras, name)}
    return items


def kept(exif: bytes | None, icc: bytes | None, extras: Extras, fmt: ImageFormat) -> set[str]:
    """The items a ``fmt`` output of this source carries."""
    items = present(exif, icc, extras) & fmt.holds
    if fmt.name == "JPEG" and exif is not None and len(exif) > JPEG_MAX_EXIF:
        items.discard("exif")
    if fmt.name == "JPEG" and extras.xmp is not None and len(extras.xmp) > JPEG_MAX_XMP:
        items.discard("xmp")
    return items


def dropped(exif: bytes | None, icc: bytes | None, extras: Extras, fmt: ImageFormat) -> list[str]:
    """One phrase per reason for what a ``fmt`` output of this source leaves out."""
    lost = present(exif, icc, extras) - kept(exif, icc, extras, fmt)
    notes = []
    for item, limit in (("exif", JPEG_MAX_EXIF), ("xmp", JPEG_MAX_XMP)):
        if item in lost and fmt.name == "JPEG" and item in fmt.holds:
            size = len((exif or b"") if item == "exif" else (extras.xmp or b""))
            notes.append(f"its {_NAMES[item]} ({size:,} bytes) is dropped: a JPEG holds at most {limit:,} bytes of it; write PNG or TIFF to keep it")
            lost.discard(item)
    if lost:
        names = [_NAMES[k] for k in sorted(lost, key=list(_NAMES).index)]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        where = sorted(f.name for f in FORMATS if f.write and f.suggested and lost <= f.holds)
        hint = f"; write {' or '.join(where)} to keep {'it' if len(names) == 1 else 'them'}" if where else ""
        notes.append(f"its {listed} {'is' if len(names) == 1 else 'are'} dropped: {fmt.name} cannot store {'it' if len(names) == 1 else 'them'}{hint}")
    return notes


def pillow_options(exif: bytes | None, icc: bytes | None, extras: Extras, fmt: ImageFormat) -> dict[str, Any]:
    """Pillow ``save`` options that carry what a ``fmt`` output keeps."""
    keep = kept(exif, icc, extras, fmt)
    options: dict[str, Any] = {}
    if "exif" in keep:
        options["exif"] = exif
    if "icc" in keep:
        options["icc_profile"] = icc
    if "dpi" in keep:
        options["dpi"] = extras.dpi
    if extras.lossless and "lossless" in fmt.holds:  # never "dropped": other formats are lossless or say so
        options["lossless"] = True
    if fmt.name == "PNG":
        info = png_info(extras, keep)
        if info is not None:
            options["pnginfo"] = info
    elif fmt.name == "TIFF":
        tags = tiff_tags(extras, keep)
        if tags:
            options["tiffinfo"] = tags
    else:
        if "xmp" in keep:
            options["xmp"] = extras.xmp
        if "comment" in keep:
            options["comment"] = extras.comment
    return options


def png_info(extras: Extras, keep: set[str]) -> Any:
    """A PngInfo with gamma, XMP, comment and text chunks (None when there is nothing)."""
    from PIL import PngImagePlugin

    chunks = png_chunks(extras, keep)
    if not chunks:
        return None
    info = PngImagePlugin.PngInfo()
    for kind, payload in chunks:
        info.add(kind, payload)
    return info


def png_chunks(extras: Extras, keep: set[str]) -> list[tuple[bytes, bytes]]:
    """(type, payload) of the ancillary PNG chunks: gAMA, iTXt XMP, tEXt/iTXt comment and text."""
    chunks = []
    if "gamma" in keep:
        chunks.append((b"gAMA", struct.pack(">I", round(extras.gamma * 100000))))  # type: ignore[operator]
    if "xmp" in keep:
        chunks.append((b"iTXt", _XMP_KEY.encode() + b"\0\0\0\0\0" + extras.xmp))  # type: ignore[operator]
    pairs = ([(_COMMENT_KEY, extras.comment.decode("utf-8", "replace"))] if "comment" in keep and extras.comment else [])
    pairs += list(extras.text) if "text" in keep else []
    for key, value in pairs:
        chunks.append((b"iTXt", key.encode("latin-1", "replace")[:79] + b"\0\0\0\0\0" + value.encode("utf-8")))
    return chunks


def tiff_tags(extras: Extras, keep: set[str]) -> dict[int, Any]:
    """TIFF tags for XMP and the comment (ImageDescription); resolution as its three tags."""
    tags: dict[int, Any] = {}
    if "xmp" in keep:
        tags[_TIFF_XMP] = extras.xmp
    if "comment" in keep:
        tags[_TIFF_DESCRIPTION] = extras.comment.decode("utf-8", "replace")  # type: ignore[union-attr]
    if "dpi" in keep:
        tags.update({282: float(extras.dpi[0]), 283: float(extras.dpi[1]), 296: 2})  # type: ignore[index]
    return tags

"""An upload as an image: header checks before it waits, then deblur, score or preview it.

Uploads live in the user cache, not a shared ``/tmp``: each server makes its own folder
``<cache>/serve/uploads-<host>-<pid>-XXXX`` (:func:`uploads_folder`, mode 0700), and first
removes those of servers that are gone (killed with SIGKILL, they could not clean up).
Every upload is written into a private folder of its own inside it (``mkdtemp``: mode 0700,
a random name) under a fixed name, so that the package's one door to image files
(:mod:`deblur_cli.files.image_io`) decodes and encodes it exactly as ``deblur photo.jpg``
does: EXIF orientation applied and EXIF carried, ICC profile, 16 bits, alpha and grey kept,
decompression bombs refused from the header. Nothing the client sends names a path; its
file name only names the download. :meth:`Prepared.cleanup` removes the folder; the work
queue calls it once the work is over, whatever happened.

Messages from the image code name the temporary file; they are rewritten to name the
client's file instead, so no server path reaches a client.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from deblur_cli.errors import DeblurError, InputError, OutputError, ResourceError
from deblur_cli.files import formats, image_io, ledger
from deblur_cli.files.fsutil import owner_tag, remove_stale_folders
from deblur_cli.files.limits import SERVE_MAX_PIXELS
from deblur_cli.files.paths import DEFAULT_SUFFIX
from deblur_cli.quality.score import blur_score, measure
from deblur_cli.serve.jobs import Job
from deblur_cli.serve.uploads import ServeError, Upload

#: The formats deblur reads, for messages (from the format records of deblur_cli.files.formats).
READ_FORMATS = formats.readable_labels()
#: The name of every server's uploads folder in ``<cache>/serve/`` starts so, then its owner.
UPLOADS_PREFIX = "uploads-"

#: Image formats recognised by their first bytes that the tool does not read (415, not 400).
_OTHER_FORMATS: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (name, re.compile(pattern, re.S))
    for name, pattern in (
        ("JPEG XL", rb"^(\xff\x0a|\x00\x00\x00\x0cJXL \r\n\x87\n)"),
        ("JPEG 2000", rb"^(\x00\x00\x00\x0cjP  \r\n\x87\n|\xffO\xffQ)"),
        ("Photoshop (PSD)", rb"^8BPS"),
        ("OpenEXR", rb"^v/1\x01"),
        ("QOI", rb"^qoif"),
        ("DDS", rb"^DDS "),
        ("ICO/CUR", rb"^\x00\x00[\x01\x02]\x00[\x01-\xff]\x00"),
        ("GIMP XCF", rb"^gimp xcf"),
        ("Netpbm", rb"^P[1-7][ \t\r\n]"),
        ("SVG", rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]"),
        ("Canon/Fuji/Olympus/Panasonic raw", rb"^(FUJIFILMCCD-RAW|IIRO|IIU\x00|II\*\x00\x10\x00\x00\x00CR)"),
    )
)


@dataclass(eq=False)
class Prepared:
    """An upload on disk in its private folder, its header checked, ready to wait its turn."""

    folder: Path
    path: Path
    name: str  # the client's file name, printable, for messages and the download name
    width: int
    height: int
    max_pixels: int
    _gone: bool = field(default=False, repr=False)

    def cleanup(self) -> None:
        """Remove the private folder and everything in it (idempotent)."""
        if not self._gone:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._gone = True

    def message(self, error: DeblurError) -> str:
        """The error's message with the temporary paths replaced by the client's file name."""
        text = error.message.replace(str(self.path), self.name).replace(str(self.folder), "(upload)")
        return " ".join(text.split())


@dataclass(frozen=True)
class Deblurred:
    """A finished result: the encoded file and what the page shows next to it."""

    data: bytes
    media_type: str
    filename: str
    score_before: float
    score_after: float
    notes: tuple[str, ...]
    width: int
    height: int


def resolve_max_pixels(max_pixels: int | None) -> int:
    """The pixel limit in force: the option, else DEBLUR_MAX_PIXELS, else the server's own
    default :data:`~deblur_cli.files.limits.SERVE_MAX_PIXELS` (0: none)."""
    return image_io._resolve_limit(max_pixels, SERVE_MAX_PIXELS)  # the one rule, shared with the CLI


def display_name(filename: str) -> str:
    """The base name a client gave its file, printable and short; ``photo`` when it gave none."""
    base = PureWindowsPath(PurePosixPath(filename or "").name).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable() and c not in '"\\/:*?<>|')
    base = base.strip(" .")[:120]
    return base or "photo"


def download_name(filename: str, suffix: str) -> str:
    """``holiday.jpg`` -> ``holiday_deblurred.jpg``; the suffix follows the written format."""
    stem = Path(display_name(filename)).stem.strip(" .") or "photo"
    return f"{stem[:100]}{DEFAULT_SUFFIX}{suffix}"


def other_format(data: bytes) -> str | None:
    """The name of an image format the tool does not read, recognised from its first bytes."""
    head = data[:512]
    return next((name for name, pattern in _OTHER_FORMATS if pattern.match(head)), None)


def uploads_folder() -> Path:
    """A new folder for this server's uploads in the user cache (mode 0700); the folders of
    servers that are gone are removed first. OutputError when the cache cannot hold it."""
    parent = ledger.cache_dir() / "serve"
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale_folders(parent, UPLOADS_PREFIX)
        return Path(tempfile.mkdtemp(prefix=f"{UPLOADS_PREFIX}{owner_tag()}", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot make a folder for uploads in {parent}: {e.strerror or e}") from None


def prepare(upload: Upload, max_pixels: int, root: Path) -> Prepared:
    """Write the upload into a new private folder in ``root`` (:func:`uploads_folder`) and check
    its header; nothing is decoded.

    ServeError: 415 for an image format the tool does not read, 400 for anything else that
    its decoders refuse (not an image, a broken header), 413 for more pixels than ``max_pixels``.
    """
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=root))
    name = display_name(upload.filename)
    prepared = Prepared(folder, folder / "upload", name, 0, 0, max_pixels)
    try:
        prepared.path.write_bytes(upload.data)
        try:
            width, height = image_io.read_size(prepared.path)
        except InputError as e:
            known = formats.unavailable(upload.data[:64])
            if known is not None:  # HEIC without the heif extra: what it is, and what the server needs
                raise ServeError(415, f"{name} is {known.label}, which this server reads once it has {known.missing}") from None
            other = other_format(upload.data)
            if other is not None:
                raise ServeError(415, f"{name} is {other}, which this tool does not read; send {READ_FORMATS}") from None
            raise ServeError(400, prepared.message(e)) from None
        pixels = width * height
        if max_pixels and pixels > max_pixels:
            raise ServeError(
                413,
                f"{name} is {width}x{height} = {pixels:,} pixels, over this server's limit of "
                f"{max_pixels:,} (deblur serve --max-pixels)",
            )
        prepared.width, prepared.height = width, height
        return prepared
    except BaseException:
        prepared.cleanup()
        raise


def _load(prepared: Prepared) -> image_io.LoadedImage:
    """Decode the upload; its errors name the client's file."""
    try:
        return image_io.load_image(prepared.path, max_pixels=prepared.max_pixels)
    except ResourceError as e:
        raise ServeError(503, prepared.message(e)) from None
    except InputError as e:
        raise ServeError(400, prepared.message(e)) from None


def deblur(prepared: Prepared, deblurrer: object, job: Job, quality: int = 95) -> Deblurred:
    """Deblur the upload as ``deblur photo.jpg`` would and encode it in the upload's format.

    Runs on the work queue's thread; ``deblurrer`` is a :class:`deblur_cli.Deblurrer`.
    """
    loaded = _load(prepared)
    job.check()
    before = blur_score(loaded.rgb)
    job.check()
    try:
        sharp = deblurrer.run(loaded.rgb, progress=job.progress)  # type: ignore[attr-defined]
    except ResourceError as e:
        raise ServeError(503, prepared.message(e)) from None
    job.check()
    written = formats.written_as(loaded.format)  # GIF cannot be written: PNG, as the CLI does
    suffix, media_type = written.suffix, written.mime
    out = prepared.folder / f"result{suffix}"
    notes = tuple(image_io.dropped_on_save(loaded, out))
    # record=False: the user's record of written photos is no place for an answer deleted at once
    image_io.save_image(sharp, out, like=loaded, quality=quality, record=False)
    after = blur_score(image_io.load_image(out, max_pixels=0).rgb)  # the file's, as `deblur score` gives it
    return Deblurred(
        data=out.read_bytes(),
        media_type=media_type,
        filename=download_name(prepared.name, suffix),
        score_before=before,
        score_after=after,
        notes=notes,
        width=loaded.size[0],
        height=loaded.size[1],
    )


def score(prepared: Prepared, job: Job, threshold: float) -> dict[str, object]:
    """The blur score of the upload and its verdict against ``threshold``."""
    loaded = _load(prepared)
    job.check()
    verdict = measure(loaded.rgb).to_dict(threshold)  # the one rule of `deblur score` (whole frame, blurriest region)
    return {
        **verdict,
        "threshold": threshold,
        "width": loaded.size[0],
        "height": loaded.size[1],
    }


def preview(prepared: Prepared, job: Job) -> bytes:
    """An 8-bit PNG of the upload (oriented), for browsers that cannot show its format (TIFF)."""
    from PIL import Image

    loaded = _load(prepared)
    job.check()
    buffer = io.BytesIO()
    Image.fromarray(image_io.to_uint8(loaded.rgb)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


__all__ = [
    "Deblurred",
    "Prepared",
    "READ_FORMATS",
    "deblur",
    "display_name",
    "download_name",
    "other_format",
    "prepare",
    "preview",
    "resolve_max_pixels",
    "score",
    "uploads_folder",
]

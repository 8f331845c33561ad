"""The one rule set every output path follows, and the one folder walker.

Every command (``image``, ``batch``, ``attention-map``, ``evaluate``, ``make-pairs``,
``weights export``) checks its outputs here while it plans, before any weights are
loaded or any pixel is computed:

* an output is never an input (same path, symlink, hard link or another spelling);
* an output is never an existing folder, and never an existing file without ``overwrite``;
* two outputs of one run never share a path;
* the folder an output goes to can be written (probed, so read-only mounts, ACLs and
  root all count), or, when it does not exist yet, can be created;
* outputs are then written atomically (:mod:`deblur_cli.files.fsutil`), so a file under its
  final name is always complete.

The walker (:func:`walk_images`) is the only code that lists a folder tree of images:
recursive, sorted, symlinked folders not followed (loops cannot hang it), hidden files
and folders skipped (our own temp files start with a dot too), unreadable folders reported.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deblur_cli.errors import OutputError, UsageError
from deblur_cli.files import formats, image_io
from deblur_cli.files.fsutil import check_writable

#: Default suffix of outputs written next to their input (``photo.jpg`` -> ``photo_deblurred.jpg``).
DEFAULT_SUFFIX = "_deblurred"
#: Written when the input's own format cannot be written (e.g. a GIF): lossless.
FALLBACK_SUFFIX = formats.by_name(formats.FALLBACK).suffix


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class FileSet:
    """Files compared by identity: resolved path, or device and inode (hard links)."""

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._by_key: dict[str, Path] = {}
        self._by_id: dict[tuple[int, int], Path] = {}
        for p in paths:
            self.add(Path(p))

    def add(self, path: Path) -> None:
        self._by_key.setdefault(_key(path), path)
        ident = _identity(path)
        if ident is not None:
            self._by_id.setdefault(ident, path)

    def find(self, path: Path) -> Path | None:
        """The member that is the same file as ``path``, or None."""
        found = self._by_key.get(_key(path))
        if found is None:
            ident = _identity(path)
            found = self._by_id.get(ident) if ident is not None else None
        return found

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and self.find(Path(path)) is not None

    def __len__(self) -> int:
        return len(self._by_key)


# ----------------------------------------------------------------------------- output rules


def check_output_file(
    path: Path, inputs: FileSet, overwrite: bool, *, create_folder: bool = False
) -> None:
    """Refuse an output that would lose data or cannot be written; cheap, creates nothing.

    OutputError when ``path`` is one of ``inputs`` (whatever the spelling), is a folder,
    exists without ``overwrite``, or its folder is missing (unless ``create_folder``: then
    its nearest existing ancestor must be writable) or cannot be written.
    """
    path = Path(path)
    try:
        os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as e:  # a name over NAME_MAX, a loop of links, ...: pathlib would raise later
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    same = inputs.find(path)
    if same is not None:
        raise OutputError(f"output {path} is the input file {same}; choose another output name")
    if path.is_dir():
        raise OutputError(f"output {path} is a folder")
    if path.exists() and not path.is_file():  # renaming onto /dev/null (as root) would replace the device
        raise OutputError(f"output {path} is not a regular file (a device, FIFO or socket); choose another output name")
    folder = path.parent if str(path.parent) else Path(".")
    if not create_folder and not folder.is_dir():
        if folder.exists() or folder.is_symlink():
            raise OutputError(f"cannot write {path}: {folder} is not a folder")
        raise OutputError(f"output folder does not exist: {folder}")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
    check_writable(folder)


def split_collisions(
    jobs: Iterable[tuple[Path, Path]], inputs: FileSet = FileSet()
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(jobs kept, (source, why) refused): outputs that are one of ``inputs``, or that an
    earlier job already writes (``a.jpg`` and ``a.png`` both to ``a.png``)."""
    owner: dict[str, Path] = {}
    kept: list[tuple[Path, Path]] = []
    refused: list[tuple[Path, str]] = []
    for src, dst in jobs:
        key = _key(dst)
        if dst in inputs:
            refused.append((src, f"output {dst} would replace an input; {dst.name} is a photo deblur did not write: rename it or choose another output folder"))
        elif key in owner:
            refused.append((src, f"output {dst} is also the output of {owner[key]}; rename one of them"))
        else:
            owner[key] = src
            kept.append((src, dst))
    return kept, refused


def check_distinct(outputs: Iterable[tuple[Path, Path]]) -> None:
    """OutputError when two jobs (source, output) would write the same output file."""
    _, refused = split_collisions(outputs)
    if refused:
        raise OutputError(refused[0][1])


def check_output_folder(folder: Path, inputs: FileSet = FileSet()) -> None:
    """The folder outputs go to: a folder (or creatable), writable, not an input file."""
    folder = Path(folder)
    if folder in inputs:
        raise OutputError(f"output folder {folder} is an input file")
    if folder.is_symlink() and not folder.exists():
        raise OutputError(f"output folder {folder} is a broken symbolic link (to {os.readlink(folder)}); remove it or choose another folder")
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise OutputError(f"output {folder} is a file, not a folder")
    check_writable(folder)


def check_image_output(path: Path) -> None:
    """UsageError unless an image writer handles ``path``'s extension."""
    ext = Path(path).suffix.lower()
    if ext not in image_io.OUTPUT_SUFFIXES:
        allowed = ", ".join(sorted(image_io.OUTPUT_SUFFIXES))
        what = f"'{Path(path).suffix}' files" if ext else "a file without an extension"
        folder = "" if ext else " (or end it with / for a folder)"
        raise UsageError(f"cannot write {what} ({path}); use one of {allowed}{folder}")


# ----------------------------------------------------------------------------- naming


def normalise_format(output_format: str | None) -> str | None:
    """'.PNG' / 'png' -> '.png'; None stays None; UsageError for a format no writer handles."""
    if output_format is None:
        return None
    fmt = output_format.strip().lower()
    fmt = fmt if fmt.startswith(".") else f".{fmt}"
    if fmt not in image_io.OUTPUT_SUFFIXES:
        allowed = ", ".join(sorted(image_io.OUTPUT_SUFFIXES))
        raise UsageError(f"cannot write '{output_format}' files; use one of {allowed}")
    return fmt


def writable_suffix(suffix: str) -> str:
    """The input's extension when it can be written, else the lossless fallback."""
    return suffix if suffix.lower() in image_io.OUTPUT_SUFFIXES else FALLBACK_SUFFIX


#: Folders of the system rather than the user's: an input there (``/dev/stdin``,
#: ``/proc/self/fd/0``) gets no output next to it; the user names one with -o.
SYSTEM_FOLDERS = ("/dev", "/proc", "/sys")


def check_default_output_place(input_path: Path) -> None:
    """UsageError unless an output may be written next to ``input_path`` by default: a file
    (or folder) in a folder of the user's, not ``/dev/stdin`` or another system file."""
    here = Path(input_path)
    folders = {os.path.abspath(here.parent), os.path.realpath(here.parent)}
    for folder in folders:
        for system in SYSTEM_FOLDERS:
            if folder == system or folder.startswith(system + "/"):
                raise UsageError(
                    f"{input_path} is not a file in a folder of yours (it is under {system}), so its "
                    "result has no place next to it; name the output with -o"
                )


def default_output_path(input_path: Path, suffix: str = DEFAULT_SUFFIX, fmt: str | None = None) -> Path:
    """``photo.jpg`` -> ``photo_deblurred.jpg`` in the same folder (``fmt`` forces the extension).

    An input whose format cannot be written (e.g. GIF) gets a ``.png`` output.
    """
    input_path = Path(input_path)
    ext = fmt or writable_suffix(input_path.suffix)
    return input_path.with_name(f"{input_path.stem}{suffix}{ext}")


def output_in_folder(input_path: Path, folder: Path, suffix: str = DEFAULT_SUFFIX, fmt: str | None = None) -> Path:
    """Where ``input_path``'s result goes inside ``folder``: its own name (extension made
    writable), or, in the input's own folder, the suffixed default name (as ``batch`` does)."""
    input_path = Path(input_path)
    if same_folder(input_path.parent if str(input_path.parent) else Path("."), folder):
        return Path(folder) / default_output_path(input_path, suffix, fmt).name
    return Path(folder) / f"{input_path.stem}{fmt or writable_suffix(input_path.suffix)}"


def same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _key(a) == _key(b)


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies strictly inside ``folder`` (both resolved)."""
    p, f = _key(path), _key(folder)
    return p != f and p.startswith(f.rstrip(os.sep) + os.sep)


def default_batch_output(in_dir: Path) -> Path:
    """``photos/`` -> sibling ``photos_deblurred/``."""
    absolute = Path(os.path.abspath(in_dir))
    if not absolute.name:
        raise UsageError(f"cannot name an output folder for {in_dir}; pass one with -o")
    return absolute.with_name(f"{absolute.name}{DEFAULT_SUFFIX}")


# ----------------------------------------------------------------------------- the walker


#: Written into an output folder that lies inside the input tree (see ``pipeline.plan_batch``):
#: the walker never enters a folder that holds it, so earlier results are not taken for photos.
OUTPUT_MARKER = ".deblur-output"


def is_hidden(name: str) -> bool:
    """Hidden files and folders (and our ``.deblur-tmp-`` files) are never inputs."""
    return name.startswith(".")


@dataclass(frozen=True)
class Walk:
    """What :func:`walk_images` found under ``root``."""

    root: Path
    images: tuple[Path, ...]  # supported images, sorted by their path relative to root
    problems: tuple[tuple[Path, str], ...]  # (folder, why) for folders that could not be read
    skipped: tuple[Path, ...] = ()  # other visible files (HEIC, AVIF, .txt, ...): not read


def walk_images(root: Path, exclude: Iterable[Path] = ()) -> Walk:
    """Every supported image under ``root``, recursively, in a stable order.

    Symlinked folders are not followed (symlinked files are listed); hidden files and
    folders are skipped, and so are output folders of earlier batches (:data:`OUTPUT_MARKER`);
    other files (HEIC, AVIF, .txt, ...) are listed in ``skipped``; folders in ``exclude`` (e.g. an output folder inside the input
    tree) are not entered.
    """
    root = Path(root)
    skip = {_key(p) for p in exclude}
    problems: list[tuple[Path, str]] = []
    found: list[Path] = []
    others: list[Path] = []

    def on_error(err: OSError) -> None:
        where = Path(err.filename) if err.filename else root
        problems.append((where, f"cannot read folder: {err.strerror or err}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if not is_hidden(d) and _key(here / d) not in skip and not (here / d / OUTPUT_MARKER).exists()
        )
        visible = [here / n for n in sorted(filenames) if not is_hidden(n)]
        found.extend(p for p in visible if image_io.is_supported(p))
        others.extend(p for p in visible if not image_io.is_supported(p))
    found.sort(key=lambda p: p.relative_to(root).parts)
    others.sort(key=lambda p: p.relative_to(root).parts)
    return Walk(root, tuple(found), tuple(problems), tuple(others))

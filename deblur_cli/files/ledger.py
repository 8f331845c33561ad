"""The user cache folder, and the record of the images deblur wrote.

A file is taken for an earlier result of deblur only when deblur recorded writing it, never
by its name alone: a user's own ``x_deblurred.jpg`` is a photo like any other. Every image
output (:func:`deblur_cli.files.image_io.save_image`) is recorded here, in the user cache
(``$DEBLUR_CACHE_DIR`` overrides its place), by its device, inode, size and modification
time, the identity it had when deblur finished it; the absolute path rides along only so
that the record can be pruned. A file that was edited, replaced or copied since (another
identity) counts as the user's again: the safe direction. Recording never fails a write: a
cache that cannot be written just means later runs treat those outputs as the user's.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENV_CACHE_DIR = "DEBLUR_CACHE_DIR"
LEDGER_NAME = "written.tsv"
#: The record is pruned (entries whose file has changed or gone dropped) past this size.
PRUNE_BYTES = 4_000_000

Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def cache_dir() -> Path:
    """User cache folder: ``$DEBLUR_CACHE_DIR`` when set, else the platformdirs default."""
    override = os.environ.get(ENV_CACHE_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("deblur", appauthor=False))


def ledger_path() -> Path:
    return cache_dir() / LEDGER_NAME


def _identity(path: Path) -> Identity | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _line(ident: Identity, path: Path) -> bytes:
    return ("\t".join(map(str, ident)) + "\t" + os.fsencode(os.path.abspath(path)).hex() + "\n").encode("ascii")


def record(path: Path) -> None:
    """Note that deblur has just finished writing ``path`` (best effort)."""
    ident = _identity(Path(path))
    if ident is None:
        return
    target = ledger_path()
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _line(ident, Path(path)))  # one append: lines of concurrent runs do not mix
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > PRUNE_BYTES:
            _prune(target)


def _entries(target: Path) -> list[tuple[Identity, bytes]]:
    try:
        raw = target.read_bytes()
    except OSError:
        return []
    found = []
    for line in raw.splitlines():
        parts = line.split(b"\t")
        if len(parts) != 5:
            continue  # a line cut by a kill
        try:
            ident = tuple(int(p) for p in parts[:4])
            found.append((ident, bytes.fromhex(parts[4].decode("ascii"))))
        except ValueError:
            continue
    return found  # type: ignore[return-value]


def _prune(target: Path) -> None:
    """Keep only entries whose file still has the identity recorded (best effort)."""
    from deblur_cli.files.fsutil import atomic_write

    kept = b"".join(
        _line(ident, Path(os.fsdecode(raw))) for ident, raw in _entries(target)
        if _identity(Path(os.fsdecode(raw))) == ident
    )
    with contextlib.suppress(Exception):
        atomic_write(target, lambda f: f.write(kept), overwrite=True)


class Written:
    """The recorded outputs, read once (a plan asks about many files)."""

    def __init__(self) -> None:
        self._known = {ident for ident, _ in _entries(ledger_path())}

    def __contains__(self, path: object) -> bool:
        """True when ``path`` is a file deblur wrote and nobody has changed since."""
        if not isinstance(path, (str, os.PathLike)):
            return False
        ident = _identity(Path(path))
        return ident is not None and ident in self._known


def written_by_deblur(path: Path) -> bool:
    """One-off :class:`Written` check."""
    return Path(path) in Written()

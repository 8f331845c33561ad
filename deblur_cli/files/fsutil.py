"""Safe file writing: outputs appear under their final name only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from deblur_cli.errors import OutputError

TMP_PREFIX = ".deblur-tmp-"


def _default_mode() -> int:
    """Permissions a plain open() would give a new file (mkstemp uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def same_file(a: Path, b: Path) -> bool:
    """True when both paths name the same existing file (or resolve to the same path)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``final``'s folder; rename it onto ``final`` on success.

    On any exception the temporary file is removed and ``final`` is untouched.
    The temporary name keeps ``final``'s extension (or ``suffix``) so that
    writers that infer the format from the name still work.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    ext = suffix if suffix is not None else final.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=ext, dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(final: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``final`` atomically through ``write(fileobj)``; maps OS errors to OutputError."""
    try:
        with atomic_path(final) as tmp, open(tmp, "wb") as f:
            write(f)
            f.flush()
    except OSError as e:
        raise OutputError(f"cannot write {final}: {e.strerror or e}") from None


def check_writable(folder: Path) -> None:
    """OutputError unless a file can be created in ``folder``, or, where ``folder`` does not
    exist yet, in its nearest existing ancestor (which must then be a folder).

    Probes by creating and removing one of our temp files, the only test that sees
    read-only mounts, ACLs and root alike; runs before any expensive work.
    """
    folder = Path(folder) if str(folder) else Path(".")
    probe = folder
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot create folder {folder}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=probe)
    except OSError as e:
        raise OutputError(f"cannot write to {probe}: {e.strerror or e}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents); OutputError with a one-line reason."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create folder {folder}: {e.strerror or e}") from None


def remove_stale_temps(folders: Iterable[Path], before: float) -> None:
    """Delete our temp files left by a killed run (older than ``before``) in ``folders``."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(TMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < before:
                    os.unlink(entry.path)

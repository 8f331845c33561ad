"""Safe file writing: outputs appear under their final name only when complete, and never
over a file that appeared while the work ran.

Every writer of the package goes through :func:`atomic_path` (or :func:`atomic_write`):

* the data goes to a temporary file ``.deblur-tmp-<host>-<pid>-...`` in the output's folder,
  is flushed to disk, and is then *published* under its final name in one step;
* without ``overwrite`` the publishing step never replaces anything: a file that appeared
  at the final name after the plan checked it (another program, a second deblur run) is
  kept, and this output fails with an :class:`~deblur_cli.errors.OutputError`. The step is
  ``renameat2(RENAME_NOREPLACE)`` on Linux (``renamex_np(RENAME_EXCL)`` on macOS); where
  the file system refuses it, a hard link (``link`` fails on an existing name) and the
  temporary name removed; where it offers neither (FAT, exFAT, some network mounts), the
  final name is claimed by an exclusive create (``O_EXCL``) and the finished file renamed
  onto that claim, so for that moment an empty file stands under the final name;
* with ``overwrite`` it is ``rename`` (atomic replacement);
* temporary files left by a killed run are removed the first time a process writes into a
  folder: those whose process (same host) no longer exists, those of other hosts after a
  day, and untagged ones of older versions older than this process;
* work folders a process tags with :func:`owner_tag` (``deblur serve``'s uploads) are
  removed by the next process once theirs has gone (:func:`remove_stale_folders`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from deblur_cli.errors import OutputError

TMP_PREFIX = ".deblur-tmp-"
#: Temporary files of another host are taken for stale after this many seconds.
FOREIGN_TEMP_AGE_S = 24 * 3600
_STARTED = time.time()
_SWEPT: set[str] = set()
_SWEPT_LOCK = threading.Lock()
_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EXDEV, errno.EMLINK}
    | {getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.EOPNOTSUPP}
)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def owner_tag() -> str:
    """``<host>-<pid>-``: what names a file or folder as this process's, so that a later
    process can tell it from a live one's (:func:`remove_stale_temps`, :func:`remove_stale_folders`)."""
    return f"{_host_tag()}-{os.getpid()}-"


def temp_prefix() -> str:
    """The prefix of this process's temporary files: ours, the host's and the process's."""
    return f"{TMP_PREFIX}{owner_tag()}"


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
def atomic_path(final: Path, suffix: str | None = None, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``final``'s folder; publish it as ``final`` on success.

    Without ``overwrite`` a file found at ``final`` when publishing is never replaced: an
    OutputError says it appeared while the work ran (see the module docstring for how).
    On any exception the temporary file is removed and ``final`` is untouched. The
    temporary name keeps ``final``'s extension (or ``suffix``) so that writers that infer
    the format from the name still work.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    sweep_once(folder)
    ext = suffix if suffix is not None else final.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(), suffix=ext, dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        publish(tmp, final, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(final: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool = False) -> None:
    """Write ``final`` atomically through ``write(fileobj)``; maps OS errors to OutputError."""
    try:
        with atomic_path(final, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            write(f)
            f.flush()
    except OSError as e:
        raise OutputError(f"cannot write {final}: {e.strerror or e}") from None


def write_text(final: Path, text: str, *, overwrite: bool = False) -> None:
    """A text report (JSON, CSV) written atomically as UTF-8, its missing folder made first."""
    make_folder(Path(final).parent)
    atomic_write(Path(final), lambda f: f.write(text.encode("utf-8")), overwrite=overwrite)


# ----------------------------------------------------------------------------- publishing


def publish(tmp: Path, final: Path, *, overwrite: bool) -> None:
    """Give the finished file ``tmp`` the name ``final``; without ``overwrite`` never
    replace an existing entry (OutputError instead, ``tmp`` left for the caller)."""
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        _publish_new(Path(tmp), Path(final))
    except FileExistsError:
        raise OutputError(
            f"{final} appeared while deblur was working; it was left as it is "
            "(pass --overwrite to replace it)"
        ) from None


def _publish_new(tmp: Path, final: Path) -> None:
    """Rename without replacing; else link + unlink; else an exclusive claim + rename."""
    if _rename_noreplace(tmp, final):
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _UNSUPPORTED:
            raise
    else:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    claim = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(claim)
    try:
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(final)  # our own empty claim
        raise


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1  # Linux <linux/fs.h>
_RENAME_EXCL = 0x4  # macOS <stdio.h>
_RENAMEAT2 = _libc_function("renameat2") if sys.platform.startswith("linux") else None
_RENAMEX_NP = _libc_function("renamex_np") if sys.platform == "darwin" else None


def _rename_noreplace(tmp: Path, final: Path) -> bool:
    """Rename ``tmp`` to ``final`` unless ``final`` exists (FileExistsError). False when
    this system or file system has no such rename (the caller falls back)."""
    src, dst = os.fsencode(tmp), os.fsencode(final)
    if _RENAMEAT2 is not None:
        result = _RENAMEAT2(_AT_FDCWD, src, _AT_FDCWD, dst, ctypes.c_uint(_RENAME_NOREPLACE))
    elif _RENAMEX_NP is not None:
        result = _RENAMEX_NP(src, dst, ctypes.c_uint(_RENAME_EXCL))
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(err, os.strerror(err), str(final))
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(final))


# ----------------------------------------------------------------------------- folders


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
    if probe.is_symlink() and not probe.exists():
        raise OutputError(f"cannot create folder {folder}: {probe} is a broken symbolic link (to {os.readlink(probe)})")
    if not probe.is_dir():
        raise OutputError(f"cannot create folder {folder}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=temp_prefix(), dir=probe)
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


# ----------------------------------------------------------------------------- stale temps


def sweep_once(folder: Path) -> None:
    """:func:`remove_stale_temps` in ``folder``, the first time this process writes there."""
    key = os.path.realpath(folder)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return
        _SWEPT.add(key)
    remove_stale_temps([Path(folder)])


def remove_stale_temps(folders: Iterable[Path], before: float | None = None) -> None:
    """Delete temp files that a killed run left in ``folders``; live ones are kept.

    Stale: a temp of this host whose process has ended, one of another host older than
    :data:`FOREIGN_TEMP_AGE_S`, or an untagged one (older versions) older than ``before``
    (default: when this process started).
    """
    before = _STARTED if before is None else before
    host = _host_tag()
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(TMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and _is_stale(entry, host, before, TMP_PREFIX):
                    os.unlink(entry.path)


def remove_stale_folders(parent: Path, prefix: str) -> list[str]:
    """Delete the folders ``<prefix><host>-<pid>-*`` in ``parent`` whose process is gone, by the
    rule of :func:`remove_stale_temps` (another host's: after a day); the names removed.

    For work folders a process makes for itself (``deblur serve``'s uploads): a process killed
    with SIGKILL cannot remove its own, so the next one does.
    """
    host, removed = _host_tag(), list[str]()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False) and _is_stale(entry, host, _STARTED, prefix):
                shutil.rmtree(entry.path)
                removed.append(entry.name)
    return removed


def _is_stale(entry: os.DirEntry[str], host: str, before: float, prefix: str) -> bool:
    tag, _, rest = entry.name[len(prefix):].partition("-")
    pid_text = rest.partition("-")[0]
    mtime = entry.stat(follow_symlinks=False).st_mtime
    if len(tag) != 8 or not pid_text.isdigit():
        return mtime < before  # an older version's name: no owner recorded
    if tag != host:
        return mtime < time.time() - FOREIGN_TEMP_AGE_S
    return not _alive(int(pid_text))


def _alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host (ours included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number we cannot ask about: keep its file
    return True

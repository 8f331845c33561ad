"""Standard input and standard output as image files: ``-`` on the command line.

An image piped in is *spooled*: copied into a private folder of the user cache (mode 0700,
removed when the command ends; the folder of a killed process is removed by the next one),
so that every rule of files on disk applies to it unchanged (the header checked before
decoding, the pixel limit, every format and its metadata). A result for standard output is
written there under its format's suffix, then copied out. Messages name "standard input" and
"standard output", never the folder (:meth:`StreamFolder.shown`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from deblur_cli.errors import DeblurError, InputError, OutputError, UsageError
from deblur_cli.files import ledger
from deblur_cli.files.fsutil import owner_tag, remove_stale_folders

#: What stands for standard input (as an input) and standard output (as ``-o``).
STREAM = "-"
STDIN_NAME = "standard input"
STDOUT_NAME = "standard output"
#: The most a pipe may bring: the largest file any writer here makes (TIFF, BMP: 4 GiB).
MAX_STREAM_BYTES = 2**32
FOLDER_PREFIX = "pipe-"
_CHUNK = 1 << 20


def is_stream(arg: object) -> bool:
    """True for the text ``-`` (a file really named ``-`` is given as ``./-``; the command
    line keeps arguments as text until this is asked, since ``Path("./-")`` reads ``-``)."""
    return isinstance(arg, str) and arg == STREAM


class StreamFolder:
    """A private folder for one command's piped image and result; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: dict[str, str] = {}  # path in the folder -> what messages call it

    def arguments(
        self, inputs: list[str], output: str | None, output_format: str | None, stdin: BinaryIO, stdout: BinaryIO
    ) -> tuple[list[Path], Path | None]:
        """The command line's inputs and ``-o`` with ``-`` resolved: standard input spooled into
        this folder, ``-o -`` a file here named with ``output_format``'s suffix or else the
        written format of the input's content. UsageError for ``-`` among other inputs, ``-o -``
        with several, and an image from standard input without ``-o``."""
        piped = [p for p in inputs if is_stream(p)]
        if piped and len(inputs) > 1:
            raise UsageError(f"- ({STDIN_NAME}) is one image: give it alone, not with other inputs")
        if piped and output is None:
            raise UsageError(f"an image from {STDIN_NAME} has no folder for its result: name it with -o FILE, or -o - for {STDOUT_NAME}")
        if output is not None and is_stream(output):
            if len(inputs) != 1:
                raise UsageError(f"-o - ({STDOUT_NAME}) takes one image, not {len(inputs)}")
            check_terminal_output(stdout)
        sources = [self.spool(stdin)] if piped else [Path(p) for p in inputs]
        if output is None or not is_stream(output):
            return sources, None if output is None else Path(output)
        from deblur_cli.files import formats, image_io
        from deblur_cli.files.paths import normalise_format

        suffix = normalise_format(output_format) or formats.written_as(image_io.read_format(sources[0])).suffix
        return sources, self.result(suffix)

    def spool(self, stream: BinaryIO, max_bytes: int = MAX_STREAM_BYTES) -> Path:
        """Copy ``stream`` (standard input) into the folder; its file. UsageError when it is a
        terminal (nothing was piped), InputError when empty or larger than ``max_bytes``."""
        if _is_terminal(stream):
            raise UsageError(f"{STDIN_NAME} is a terminal: pipe an image into it (deblur - -o - < photo.jpg > sharp.jpg)")
        target = self.path / "stdin"
        size = 0
        with open(target, "wb") as f:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(f"{STDIN_NAME} brings more than {max_bytes:,} bytes, more than any image file here can be")
                f.write(chunk)
        if size == 0:
            raise InputError(f"{STDIN_NAME} is empty (0 bytes): pipe an image into it")
        self.names[str(target)] = STDIN_NAME
        return target

    def result(self, suffix: str) -> Path:
        """Where a result for standard output is written before it is sent (``suffix``: its format's)."""
        target = self.path / f"stdout{suffix}"
        self.names[str(target)] = STDOUT_NAME
        return target

    def send(self, path: Path, stream: BinaryIO) -> None:
        """Copy the finished result to ``stream`` (standard output). OutputError when it is a
        terminal (image bytes would garble it) or the reader went away."""
        if _is_terminal(stream):
            raise OutputError(f"{STDOUT_NAME} is a terminal: redirect it (> sharp.jpg) or name a file with -o")
        try:
            with open(path, "rb") as f:
                shutil.copyfileobj(f, stream, _CHUNK)
            stream.flush()
        except BrokenPipeError:
            raise OutputError(f"cannot write to {STDOUT_NAME}: the reading program went away (broken pipe)") from None
        except OSError as e:
            raise OutputError(f"cannot write to {STDOUT_NAME}: {e.strerror or e}") from None

    def shown(self, text: object) -> str:
        """``text`` (a path or a message) with this folder's files called by their stream's name."""
        shown = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
        for path, name in sorted(self.names.items(), key=lambda item: -len(item[0])):
            shown = shown.replace(path, name)
        return shown


def check_terminal_output(stream: BinaryIO) -> None:
    """OutputError before any work when standard output, asked for with ``-o -``, is a terminal."""
    if _is_terminal(stream):
        raise OutputError(f"{STDOUT_NAME} is a terminal: redirect it (> sharp.jpg) or name a file with -o")


@contextmanager
def stream_folder() -> Iterator[StreamFolder]:
    """A new :class:`StreamFolder` in the user cache, removed at the end; a DeblurError raised
    inside names the streams, not the folder's files."""
    parent = ledger.cache_dir() / "pipes"
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale_folders(parent, FOLDER_PREFIX)
        folder = StreamFolder(Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{owner_tag()}", dir=parent)))
    except OSError as e:
        raise OutputError(f"cannot make a folder for a piped image in {parent}: {e.strerror or e}") from None
    try:
        yield folder
    except DeblurError as e:
        e.message = folder.shown(e.message)
        e.args = (e.message,)
        raise
    finally:
        shutil.rmtree(folder.path, ignore_errors=True)


def _is_terminal(stream: BinaryIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False

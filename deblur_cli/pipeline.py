"""Glue for `deblur image` and `deblur batch`: paths, safety checks, load -> deblur -> save.

Safety rules enforced here (see docs/ARCHITECTURE.md):

* an output is never the input (same path, symlink, hard link or relative spelling);
* every check on the output runs before the expensive inference;
* outputs are written atomically by ``image_io.save_image`` (temp file + rename), so a
  file under its final name is always complete, even after SIGKILL;
* a batch skips outputs that already exist unless ``overwrite``, so a rerun resumes an
  interrupted run, and it keeps going past bad files, reporting them at the end.

``deblur_batch`` overlaps decoding and encoding with compute: a loader thread
prefetches the next image and a saver thread writes the previous result while the
calling thread runs the network. Progress callbacks are always called from the
calling thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from deblur_cli import image_io
from deblur_cli.errors import (
    DeblurError,
    InputError,
    OutputError,
    UsageError,
    WeightsError,
)
from deblur_cli.fsutil import TMP_PREFIX, same_file

ProgressFn = Callable[[int, int], None]

# Written when the input's own format cannot be written (e.g. a GIF): lossless.
FALLBACK_SUFFIX = ".png"

# Errors from the deblurrer that would repeat for every file: stop the batch.
_FATAL_COMPUTE_ERRORS = (UsageError, WeightsError)


class ImageDeblurrer(Protocol):
    """Anything that turns an H x W x 3 float32 RGB image in [0, 1] into a sharp one."""

    def run(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class SaveOptions:
    """How outputs are named and written."""

    quality: int = 95  # JPEG / WebP quality
    max_pixels: int | None = None  # decompression-bomb limit passed to load_image
    overwrite: bool = False
    suffix: str = "_deblurred"  # for default output names
    output_format: str | None = None  # e.g. ".png" to force an extension; None keeps the input's


# ---------------------------------------------------------------------------------------
# Single image


def _writable_suffix(suffix: str) -> str:
    """The input's extension when it can be written, else the lossless fallback."""
    return suffix if suffix.lower() in image_io.OUTPUT_SUFFIXES else FALLBACK_SUFFIX


def default_output_path(input_path: Path, suffix: str = "_deblurred") -> Path:
    """``photo.jpg`` -> ``photo_deblurred.jpg`` in the same folder.

    An input whose format cannot be written (e.g. GIF) gets a ``.png`` output.
    """
    input_path = Path(input_path)
    ext = _writable_suffix(input_path.suffix)
    return input_path.with_name(f"{input_path.stem}{suffix}{ext}")


def _is_same_dir(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse an output that would lose data or cannot be written; cheap, runs before inference.

    Raises OutputError when the output is the input (whatever the spelling), is a folder,
    lies in a missing folder, or exists without ``overwrite``; UsageError for an
    extension that no writer handles.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if same_file(input_path, output_path):
        raise OutputError(f"output {output_path} is the input file; choose another output name")
    if output_path.is_dir():
        raise OutputError(f"output {output_path} is a folder")
    ext = output_path.suffix.lower()
    if ext not in image_io.OUTPUT_SUFFIXES:
        allowed = ", ".join(sorted(image_io.OUTPUT_SUFFIXES))
        what = f"'{output_path.suffix}' files" if ext else "a file without an extension"
        raise UsageError(f"cannot write {what} ({output_path}); use one of {allowed}")
    folder = output_path.parent
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    if not overwrite and (output_path.exists() or output_path.is_symlink()):
        raise OutputError(f"{output_path} exists; pass --overwrite to replace it")


def deblur_file(
    deblurrer: ImageDeblurrer,
    input_path: Path,
    output_path: Path | None = None,
    options: SaveOptions = SaveOptions(),
    progress: ProgressFn | None = None,
) -> Path:
    """Deblur one image file and return the path written.

    ``output_path`` None -> ``default_output_path`` (with ``options.output_format`` when
    set); an existing folder -> the default name inside it. All path checks run before
    loading, and loading (which refuses corrupt files and decompression bombs) runs
    before inference.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"input not found: {input_path}")
    if input_path.is_dir():
        raise InputError(f"input is a folder, not an image: {input_path} (use 'deblur batch')")
    output_path = _resolve_output(input_path, output_path, options)
    check_output_path(input_path, output_path, options.overwrite)
    loaded = image_io.load_image(input_path, max_pixels=options.max_pixels)
    sharp = deblurrer.run(loaded.rgb, progress=progress)
    image_io.save_image(sharp, output_path, like=loaded, quality=options.quality)
    return output_path


def _resolve_output(input_path: Path, output_path: Path | None, options: SaveOptions) -> Path:
    fmt = _normalise_format(options.output_format)
    default = default_output_path(input_path, options.suffix)
    if fmt is not None:
        default = default.with_suffix(fmt)
    if output_path is None:
        return default
    output_path = Path(output_path)
    if output_path.is_dir():
        return output_path / default.name
    return output_path


def _normalise_format(output_format: str | None) -> str | None:
    """'.PNG' / 'png' -> '.png'; UsageError for a format no writer handles."""
    if output_format is None:
        return None
    fmt = output_format.strip().lower()
    fmt = fmt if fmt.startswith(".") else f".{fmt}"
    if fmt not in image_io.OUTPUT_SUFFIXES:
        allowed = ", ".join(sorted(image_io.OUTPUT_SUFFIXES))
        raise UsageError(f"cannot write '{output_format}' files; use one of {allowed}")
    return fmt


# ---------------------------------------------------------------------------------------
# Batch: planning


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch.

    ``kind``: "start" (total known), "file_start" (inference begins), "file_done"
    (message: the output path), "file_skipped" (output exists), "file_failed" (message:
    why), "tile" (inference progress inside the current file). For "tile", ``done`` and
    ``total`` count tiles of ``path``; for every other kind they count files finished
    (processed + skipped + failed) out of all files.
    """

    kind: str
    path: Path | None
    done: int
    total: int
    message: str = ""


@dataclass
class BatchResult:
    """What a batch did: (input, output) pairs processed or skipped, (input, reason) failed."""

    processed: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_batch(
    in_dir: Path, out_dir: Path, options: SaveOptions
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """List (input, output) jobs for every supported image under ``in_dir``, sorted.

    Walks recursively without following symlinked folders (so symlink loops cannot
    hang it; symlinked files are processed) and mirrors subfolders under ``out_dir``.
    Skips our own temp files, the output folder when it lies inside ``in_dir``, and,
    when ``out_dir`` is ``in_dir``, files already named with ``options.suffix``.
    Returns (jobs, problems): problems are folders that could not be read and inputs
    whose output would collide with an input or another job's output.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    fmt = _normalise_format(options.output_format)
    in_place = _is_same_dir(in_dir, out_dir)
    if in_place and not options.suffix:
        raise UsageError("writing into the input folder needs a non-empty output suffix")
    out_real = os.path.realpath(out_dir)
    problems: list[tuple[Path, str]] = []
    found: list[tuple[Path, Path]] = []

    def on_error(err: OSError) -> None:
        where = Path(err.filename) if err.filename else in_dir
        problems.append((where, f"cannot read folder: {err.strerror or err}"))

    for dirpath, dirnames, filenames in os.walk(in_dir, onerror=on_error, followlinks=False):
        here = Path(dirpath)
        if not in_place:  # never descend into our own output
            dirnames[:] = [d for d in dirnames if os.path.realpath(here / d) != out_real]
        dirnames.sort()
        rel = here.relative_to(in_dir)
        for name in sorted(filenames):
            src = here / name
            if name.startswith(TMP_PREFIX) or src.suffix.lower() not in image_io.SUPPORTED_SUFFIXES:
                continue
            if in_place:
                if src.stem.endswith(options.suffix):
                    continue  # an output of an earlier run
                dst = here / f"{src.stem}{options.suffix}{fmt or _writable_suffix(src.suffix)}"
            else:
                dst = out_dir / rel / f"{src.stem}{fmt or _writable_suffix(src.suffix)}"
            found.append((src, dst))

    found.sort(key=lambda job: job[0].relative_to(in_dir).parts)
    jobs, collisions = _drop_collisions(found)
    return jobs, problems + collisions


def _drop_collisions(
    found: list[tuple[Path, Path]],
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Refuse jobs whose output is an input, or is another job's output (a.jpg + a.png -> a.png)."""
    inputs = {os.path.normcase(os.path.realpath(src)) for src, _ in found}
    owner: dict[str, Path] = {}
    jobs: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    for src, dst in found:
        key = os.path.normcase(os.path.realpath(dst))
        if key in inputs:
            problems.append((src, f"output {dst} would replace an input; choose another output folder"))
        elif key in owner:
            problems.append((src, f"output {dst} is also the output of {owner[key]}; rename one of them"))
        else:
            owner[key] = src
            jobs.append((src, dst))
    return jobs, problems


def _remove_stale_temps(folders: Iterable[Path], before: float) -> None:
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


# ---------------------------------------------------------------------------------------
# Batch: running


@dataclass
class _Outcome:
    """A finished job: kind is "file_done", "file_skipped" or "file_failed"."""

    kind: str
    src: Path
    dst: Path
    message: str = ""


@dataclass
class _Loaded:
    src: Path
    dst: Path
    image: image_io.LoadedImage


@dataclass
class _Computed:
    src: Path
    dst: Path
    image: image_io.LoadedImage
    sharp: np.ndarray


_END = object()  # queue sentinel


def _failure_message(err: BaseException) -> str:
    if isinstance(err, DeblurError):
        return err.message
    if isinstance(err, MemoryError):
        return "not enough memory for this image"
    return f"internal error: {type(err).__name__}: {err}"


class _BatchRun:
    """One batch run: the three stages and the bookkeeping of outcomes and events."""

    def __init__(
        self,
        deblurrer: ImageDeblurrer,
        options: SaveOptions,
        total: int,
        progress: Callable[[BatchEvent], None] | None,
    ) -> None:
        self.deblurrer = deblurrer
        self.options = options
        self.total = total
        self.progress = progress
        self.result = BatchResult()

    # -- events -------------------------------------------------------------------------
    def emit(self, kind: str, path: Path | None, message: str = "") -> None:
        if self.progress is not None:
            self.progress(BatchEvent(kind, path, self.finished, self.total, message))

    @property
    def finished(self) -> int:
        r = self.result
        return len(r.processed) + len(r.skipped) + len(r.failed)

    def record(self, outcome: _Outcome) -> None:
        if outcome.kind == "file_done":
            self.result.processed.append((outcome.src, outcome.dst))
        elif outcome.kind == "file_skipped":
            self.result.skipped.append((outcome.src, outcome.dst))
        else:
            self.result.failed.append((outcome.src, outcome.message))
        self.emit(outcome.kind, outcome.src, outcome.message)

    # -- stages (each catches per-file errors so one file never aborts the batch) -------
    def prepare(self, src: Path, dst: Path) -> _Loaded | _Outcome:
        """Skip an existing output, check the output, decode the input."""
        if not self.options.overwrite and (dst.exists() or dst.is_symlink()):
            return _Outcome("file_skipped", src, dst, "output exists")
        try:
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"cannot create folder {dst.parent}: {e.strerror or e}") from None
            check_output_path(src, dst, self.options.overwrite)
            image = image_io.load_image(src, max_pixels=self.options.max_pixels)
        except Exception as e:
            return _Outcome("file_failed", src, dst, _failure_message(e))
        return _Loaded(src, dst, image)

    def compute(self, item: _Loaded) -> _Computed | _Outcome:
        """Run the network; errors that would hit every file propagate and end the batch."""
        self.emit("file_start", item.src)

        def tile(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(BatchEvent("tile", item.src, done, total))

        try:
            sharp = self.deblurrer.run(item.image.rgb, progress=tile)
        except _FATAL_COMPUTE_ERRORS:
            raise
        except Exception as e:
            return _Outcome("file_failed", item.src, item.dst, _failure_message(e))
        return _Computed(item.src, item.dst, item.image, sharp)

    def save(self, item: _Computed) -> _Outcome:
        try:
            image_io.save_image(item.sharp, item.dst, like=item.image, quality=self.options.quality)
        except BaseException as e:  # noqa: BLE001 - in the saver thread nothing may escape
            return _Outcome("file_failed", item.src, item.dst, _failure_message(e))
        return _Outcome("file_done", item.src, item.dst, str(item.dst))

    # -- drivers ------------------------------------------------------------------------
    def run_sequential(self, jobs: list[tuple[Path, Path]]) -> None:
        """The reference path: one file at a time, in the calling thread."""
        for src, dst in jobs:
            item = self.prepare(src, dst)
            if isinstance(item, _Loaded):
                item = self.compute(item)
            if isinstance(item, _Computed):
                item = self.save(item)
            self.record(item)

    def run_overlapped(self, jobs: list[tuple[Path, Path]]) -> None:
        """Decode the next file and encode the previous one while the network runs.

        Memory stays bounded: the loader decodes only when its single slot is free (one
        image prefetched), and the save queue holds one result beside the one being
        written. On any exception in the calling thread (Ctrl-C included) the loader
        stops, the results already computed are still saved, and the exception
        propagates; atomic writes mean no partial file is left under a final name.
        """
        loaded: queue.SimpleQueue[object] = queue.SimpleQueue()
        to_save: queue.Queue[object] = queue.Queue(maxsize=1)
        saved: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        slot = threading.Semaphore(1)
        stop = threading.Event()

        def loader() -> None:
            try:
                for src, dst in jobs:
                    while not slot.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    loaded.put(self.prepare(src, dst))
            finally:
                loaded.put(_END)

        def saver() -> None:
            while (item := to_save.get()) is not _END:
                saved.put(self.save(item))  # type: ignore[arg-type]

        threads = [
            threading.Thread(target=loader, name="deblur-loader", daemon=True),
            threading.Thread(target=saver, name="deblur-saver", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            while (item := loaded.get()) is not _END:
                slot.release()
                self._drain(saved)
                if isinstance(item, _Loaded):
                    item = self.compute(item)
                if isinstance(item, _Computed):
                    to_save.put(item)
                else:
                    self.record(item)  # type: ignore[arg-type]
        except BaseException:
            stop.set()
            to_save.put(_END)
            for t in threads:
                t.join()
            with contextlib.suppress(Exception):  # the callback may be what failed
                self._drain(saved)
            raise
        to_save.put(_END)
        for t in threads:
            t.join()
        self._drain(saved)

    def _drain(self, saved: queue.SimpleQueue[_Outcome]) -> None:
        while True:
            try:
                outcome = saved.get_nowait()
            except queue.Empty:
                return
            self.record(outcome)


def default_batch_output(in_dir: Path) -> Path:
    """``photos/`` -> sibling ``photos_deblurred/``."""
    absolute = Path(os.path.abspath(in_dir))
    if not absolute.name:
        raise UsageError(f"cannot name an output folder for {in_dir}; pass one with -o")
    return absolute.with_name(f"{absolute.name}_deblurred")


def prepare_batch_output(in_dir: Path, out_dir: Path | None, options: SaveOptions = SaveOptions()) -> Path:
    """Check the batch's folders and options and create the output folder; returns it."""
    in_dir = Path(in_dir)
    if not in_dir.exists():
        raise InputError(f"input folder not found: {in_dir}")
    if not in_dir.is_dir():
        raise InputError(f"not a folder: {in_dir} (use 'deblur image' for one file)")
    out_dir = default_batch_output(in_dir) if out_dir is None else Path(out_dir)
    _normalise_format(options.output_format)
    if "/" in options.suffix or os.sep in options.suffix:
        raise UsageError(f"the output suffix may not contain a path separator: {options.suffix!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output {out_dir} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out_dir}: {e.strerror or e}") from None
    return out_dir


def deblur_batch(
    deblurrer: ImageDeblurrer,
    in_dir: Path,
    out_dir: Path | None = None,
    options: SaveOptions = SaveOptions(),
    progress: Callable[[BatchEvent], None] | None = None,
    *,
    overlap: bool = True,
) -> BatchResult:
    """Deblur every supported image under ``in_dir`` into ``out_dir``, mirroring subfolders.

    ``out_dir`` None -> sibling ``<in_dir>_deblurred``; ``out_dir`` equal to ``in_dir``
    writes ``<stem><suffix><ext>`` next to each input. Existing outputs are skipped
    unless ``options.overwrite`` (so a rerun resumes an interrupted run), and stale temp
    files of a killed run are removed. Bad files are recorded in ``failed`` and the batch
    goes on; UsageError / WeightsError from the deblurrer (they would hit every file) and
    KeyboardInterrupt end it after the results already computed are saved.
    ``overlap=False`` runs the same stages one after another in the calling thread.
    """
    in_dir = Path(in_dir)
    out_dir = prepare_batch_output(in_dir, out_dir, options)

    started = time.time()
    jobs, problems = plan_batch(in_dir, out_dir, options)
    _remove_stale_temps({out_dir} | {dst.parent for _, dst in jobs}, before=started)

    run = _BatchRun(deblurrer, options, total=len(jobs) + len(problems), progress=progress)
    run.emit("start", None)
    for path, why in problems:
        run.record(_Outcome("file_failed", path, path, why))
    if overlap:
        run.run_overlapped(jobs)
    else:
        run.run_sequential(jobs)
    return run.result

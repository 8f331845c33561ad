"""Running a planned batch: decode the next file and encode the previous one while the
network runs; one bad file never ends the batch.

The plan (:func:`deblur_cli.pipeline.plan_batch` or ``plan_image``) decided every
(input, output) pair and checked the output rules; this module only executes it. Progress
callbacks are always called from the calling thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from deblur_cli.errors import DeblurError, UsageError, WeightsError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import make_folder
from deblur_cli.files.paths import FileSet, check_output_file
from deblur_cli.files.writers import check_output_fits
from deblur_cli.progress import Progress

#: ``keep(rgb) -> (deblur_it, why_not)``: which decoded images a batch deblurs.
KeepFn = Callable[[np.ndarray], tuple[bool, str]]

# Errors from the deblurrer that would repeat for every file: stop the batch.
_FATAL_COMPUTE_ERRORS = (UsageError, WeightsError)


class ImageDeblurrer(Protocol):
    """Anything that turns an H x W x 3 float32 RGB image in [0, 1] into a sharp one."""

    def run(self, rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch.

    ``kind``: "start" (total known), "file_start" (inference begins), "file_done"
    (message: the output path), "file_skipped" (output exists), "file_failed" (message:
    why), "file_left_alone" (the ``keep`` test said no; message: why),
    "tile" (inference progress inside the current file). For "tile", ``done`` and
    ``total`` count tiles of ``path``; for every other kind they count files finished
    (processed + skipped + failed + left alone) out of all files.
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
    left_alone: list[tuple[Path, str]] = field(default_factory=list)  # (input, why): `keep` said no
    notes: list[tuple[Path, str]] = field(default_factory=list)  # (input, what its output lost)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Outcome:
    """A finished job: kind is "file_done", "file_skipped", "file_failed" or "file_left_alone"."""

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


class BatchRun:
    """One batch run: the three stages and the bookkeeping of outcomes and events."""

    def __init__(
        self,
        deblurrer: ImageDeblurrer,
        quality: int,
        max_pixels: int | None,
        overwrite: bool,
        total: int,
        progress: Callable[[BatchEvent], None] | None,
        keep: KeepFn | None = None,
    ) -> None:
        self.deblurrer = deblurrer
        self.quality = quality
        self.max_pixels = max_pixels
        self.overwrite = overwrite
        self.total = total
        self.progress = progress
        self.keep = keep
        self.result = BatchResult()

    # -- events -------------------------------------------------------------------------
    def emit(self, kind: str, path: Path | None, message: str = "") -> None:
        if self.progress is not None:
            self.progress(BatchEvent(kind, path, self.finished, self.total, message))

    @property
    def finished(self) -> int:
        r = self.result
        return len(r.processed) + len(r.skipped) + len(r.failed) + len(r.left_alone)

    def record(self, outcome: Outcome) -> None:
        if outcome.kind == "file_done":
            self.result.processed.append((outcome.src, outcome.dst))
        elif outcome.kind == "file_skipped":
            self.result.skipped.append((outcome.src, outcome.dst))
        elif outcome.kind == "file_left_alone":
            self.result.left_alone.append((outcome.src, outcome.message))
        else:
            self.result.failed.append((outcome.src, outcome.message))
        self.emit(outcome.kind, outcome.src, outcome.message)

    # -- stages (each catches per-file errors so one file never aborts the batch) -------
    def prepare(self, src: Path, dst: Path) -> _Loaded | Outcome:
        """Skip an existing output, check the output again (files may have changed since
        the plan), decode the input."""
        try:  # inside: even stat() fails on some names (over NAME_MAX: "File name too long")
            if not self.overwrite and (dst.exists() or dst.is_symlink()):
                return Outcome("file_skipped", src, dst, "output exists")
            make_folder(dst.parent)
            check_output_file(dst, FileSet([src]), self.overwrite)
            image = image_io.load_image(src, max_pixels=self.max_pixels)
            check_output_fits(dst, image.size, image)  # before the network: the output's limits
            if self.keep is not None:
                wanted, why = self.keep(image.rgb)
                if not wanted:
                    return Outcome("file_left_alone", src, dst, why)
        except Exception as e:  # noqa: BLE001 - whatever a file does, it fails alone; the batch goes on
            return Outcome("file_failed", src, dst, _failure_message(e))
        return _Loaded(src, dst, image)

    def compute(self, item: _Loaded) -> _Computed | Outcome:
        """Run the network; errors that would hit every file propagate and end the batch."""
        self.emit("file_start", item.src)

        def tile(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(BatchEvent("tile", item.src, done, total))

        try:
            sharp = self.deblurrer.run(item.image.rgb, progress=tile)
        except _FATAL_COMPUTE_ERRORS:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a file does, it fails alone; the batch goes on
            return Outcome("file_failed", item.src, item.dst, _failure_message(e))
        return _Computed(item.src, item.dst, item.image, sharp)

    def save(self, item: _Computed) -> Outcome:
        try:
            image_io.save_image(item.sharp, item.dst, like=item.image, quality=self.quality, overwrite=self.overwrite)
            self.result.notes.extend((item.src, n) for n in image_io.dropped_on_save(item.image, item.dst))
        except BaseException as e:  # noqa: BLE001 - in the saver thread nothing may escape
            return Outcome("file_failed", item.src, item.dst, _failure_message(e))
        return Outcome("file_done", item.src, item.dst, str(item.dst))

    # -- drivers ------------------------------------------------------------------------
    def run_sequential(self, jobs: list[tuple[Path, Path]]) -> None:
        """The reference path: one file at a time, in the calling thread."""
        for src, dst in jobs:
            item: _Loaded | _Computed | Outcome = self.prepare(src, dst)
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
        saved: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
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
                    try:
                        loaded.put(self.prepare(src, dst))
                    except BaseException as e:  # noqa: BLE001 - a dead loader would end the batch silently
                        loaded.put(Outcome("file_failed", src, dst, _failure_message(e)))
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

    def _drain(self, saved: queue.SimpleQueue[Outcome]) -> None:
        while True:
            try:
                outcome = saved.get_nowait()
            except queue.Empty:
                return
            self.record(outcome)

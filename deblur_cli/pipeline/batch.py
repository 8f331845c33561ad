"""`deblur batch`: plan every (input, output) pair of a folder tree, then run it.

``plan_batch`` walks the input folder and decides and checks every output without loading
weights or touching a pixel; ``run_batch`` executes a plan (:mod:`.batch_run`: decode,
deblur and encode overlapped, one bad file never ends the batch). ``deblur_batch`` does
both in one call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from deblur_cli.errors import InputError, OutputError, UsageError
from deblur_cli.files import image_io
from deblur_cli.files.fsutil import make_folder, remove_stale_temps
from deblur_cli.files.ledger import Written
from deblur_cli.files.paths import (
    OUTPUT_MARKER,
    FileSet,
    check_default_output_place,
    check_output_folder,
    default_batch_output,
    default_output_path,
    is_inside,
    normalise_format,
    output_in_folder,
    same_folder,
    split_collisions,
    walk_images,
)
from deblur_cli.pipeline.batch_run import BatchEvent, BatchResult, BatchRun, ImageDeblurrer, KeepFn, Outcome
from deblur_cli.pipeline.image import Plan, SaveOptions


def plan_batch(in_dir: Path, out_dir: Path | None = None, options: SaveOptions = SaveOptions()) -> Plan:
    """Plan ``deblur batch``: (input, output) for every supported image under ``in_dir``.

    Outputs mirror the subfolders under ``out_dir`` (default: sibling ``<in_dir>_deblurred``);
    ``out_dir`` equal to ``in_dir`` writes ``<stem><suffix><ext>`` next to each input and
    leaves earlier results alone: files deblur recorded writing (:mod:`deblur_cli.files.ledger`),
    never judged by their name; a user's own ``x_deblurred.jpg`` is a photo, and ``x.jpg``,
    whose output it would be, is listed as failed. An output folder inside the
    input tree is left out of the walk; it must be new, empty or an earlier output folder
    (marked), so that a user's photos there are never taken for results. Folders that
    cannot be read and outputs that would collide with an input or another output are
    listed in ``problems`` (reported as failed, the rest goes on).
    """
    in_dir = Path(in_dir)
    if not in_dir.exists():
        raise InputError(f"input folder not found: {in_dir}")
    if not in_dir.is_dir():
        raise InputError(f"not a folder: {in_dir} (use 'deblur image' for one file)")
    if out_dir is None:
        check_default_output_place(in_dir)
    out_dir = default_batch_output(in_dir) if out_dir is None else Path(out_dir)
    fmt = normalise_format(options.output_format)
    if "/" in options.suffix or os.sep in options.suffix:
        raise UsageError(f"the output suffix may not contain a path separator: {options.suffix!r}")
    check_output_folder(out_dir)
    in_place = out_dir.is_dir() and same_folder(in_dir, out_dir)
    if in_place and not options.suffix:
        raise UsageError("writing into the input folder needs a non-empty output suffix")
    inside = not in_place and is_inside(out_dir, in_dir)
    if inside:
        _check_nested_output(in_dir, out_dir)
    walk = walk_images(in_dir, exclude=[] if in_place else [out_dir])
    written = Written() if in_place else None
    found = []
    for src in walk.images:
        if written is not None:
            if src in written:
                continue  # a result of an earlier run: deblur recorded writing it (never judged by name)
            found.append((src, default_output_path(src, options.suffix, fmt)))
        else:
            rel = src.parent.relative_to(in_dir)
            found.append((src, output_in_folder(src, out_dir / rel, options.suffix, fmt)))
    jobs, collisions = split_collisions(found, FileSet(src for src, _ in found))
    if not found and not walk.problems:
        raise InputError(_nothing_to_do(in_dir, walk.skipped))
    return Plan(tuple(jobs), options, walk.problems + tuple(collisions), out_dir, mark=inside, skipped=walk.skipped)


def _nothing_to_do(in_dir: Path, skipped: tuple[Path, ...]) -> str:
    """Why a batch has no work: an empty folder, or one without supported images."""
    if not skipped:
        return f"no images in {in_dir}: the folder is empty (hidden files are ignored)"
    names = ", ".join(p.name for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    kinds = ", ".join(sorted(image_io.SUPPORTED_SUFFIXES))
    return f"no supported images in {in_dir}: {len(skipped)} other file(s) ({names}); supported: {kinds}"


def _check_nested_output(in_dir: Path, out_dir: Path) -> None:
    """An output folder inside the input tree must hold nothing of the user's."""
    if not out_dir.is_dir() or (out_dir / OUTPUT_MARKER).exists():
        return
    try:
        holds = next(os.scandir(out_dir), None) is not None
    except OSError as e:
        raise OutputError(f"cannot read output folder {out_dir}: {e.strerror or e}") from None
    if holds:
        raise OutputError(
            f"output folder {out_dir} lies inside the input folder {in_dir} and already holds "
            "files; choose a new or empty folder, or one outside the input folder"
        )


def run_batch(
    deblurrer: ImageDeblurrer,
    plan: Plan,
    progress: Callable[[BatchEvent], None] | None = None,
    *,
    overlap: bool = True,
    keep: KeepFn | None = None,
) -> BatchResult:
    """Execute a plan file by file, keeping going past bad files (see :mod:`batch_run`).

    Existing outputs are skipped unless ``overwrite`` (a rerun resumes), stale temp files
    of a killed run are removed. UsageError / WeightsError from the deblurrer (they would
    hit every file) and KeyboardInterrupt end it after the results already computed are
    saved. ``keep(rgb) -> (deblur_it, why_not)``, asked after decoding, leaves the images it
    turns down alone (nothing written; listed in ``left_alone``), e.g. ``score.keep_blurry``.
    """
    started = time.time()
    if plan.out_dir is not None:
        make_folder(plan.out_dir)
        if plan.mark and not (plan.out_dir / OUTPUT_MARKER).exists():
            from deblur_cli.files.fsutil import atomic_write

            atomic_write(plan.out_dir / OUTPUT_MARKER, lambda f: f.write(b"written by deblur batch\n"), overwrite=True)
        remove_stale_temps({plan.out_dir} | {dst.parent for dst in plan.outputs}, before=started)
    o = plan.options
    run = BatchRun(deblurrer, o.quality, o.max_pixels, o.overwrite, len(plan.jobs) + len(plan.problems), progress, keep)
    run.emit("start", None)
    for path, why in plan.problems:
        run.record(Outcome("file_failed", path, path, why))
    (run.run_overlapped if overlap else run.run_sequential)(list(plan.jobs))
    return run.result


def deblur_batch(
    deblurrer: ImageDeblurrer,
    in_dir: Path,
    out_dir: Path | None = None,
    options: SaveOptions = SaveOptions(),
    progress: Callable[[BatchEvent], None] | None = None,
    *,
    overlap: bool = True,
    keep: KeepFn | None = None,
) -> BatchResult:
    """Deblur every supported image under ``in_dir`` into ``out_dir``: ``plan_batch`` + ``run_batch``."""
    return run_batch(deblurrer, plan_batch(in_dir, out_dir, options), progress, overlap=overlap, keep=keep)

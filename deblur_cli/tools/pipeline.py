"""`deblur image` and `deblur batch`: plan (every path and rule checked), then run.

``plan_image`` / ``plan_batch`` resolve the inputs and decide and check every output
(the rules live in :mod:`deblur_cli.files.paths`) without loading weights or touching a
pixel; ``run_image`` / ``run_batch`` execute a plan with any :class:`ImageDeblurrer`.
``deblur_file`` and ``deblur_batch`` do both in one call.

* an output is never an input (same path, symlink, hard link or relative spelling);
* every check on the outputs runs before the expensive inference;
* outputs are written atomically by ``image_io.save_image`` (temp file + rename), so a
  file under its final name is always complete, even after SIGKILL;
* a batch skips outputs that already exist unless ``overwrite``, so a rerun resumes an
  interrupted run, and it keeps going past bad files, reporting them at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deblur_cli.files import image_io
from deblur_cli.tools.batch_run import (
    BatchEvent,
    BatchResult,
    BatchRun,
    ImageDeblurrer,
    KeepFn,
    Outcome,
)
from deblur_cli.errors import InputError, OutputError, UsageError
from deblur_cli.files.fsutil import make_folder, remove_stale_temps
from deblur_cli.files.ledger import Written
from deblur_cli.files.writers import check_output_fits
from deblur_cli.files.paths import OUTPUT_MARKER as _OUTPUT_MARKER
from deblur_cli.files.paths import (
    DEFAULT_SUFFIX,
    FileSet,
    check_default_output_place,
    check_distinct,
    check_image_output,
    check_output_file,
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
from deblur_cli.progress import Progress

ProgressFn = Progress  # the name this module exported before deblur_cli.progress existed

#: Written into an output folder that lies inside the input tree, so a rerun knows the
#: files there are earlier results and not the user's photos (hidden: never an input; the
#: walker does not enter folders that hold it). Defined in :mod:`paths`.
OUTPUT_MARKER = _OUTPUT_MARKER

__all__ = [
    "BatchEvent",
    "BatchResult",
    "ImageDeblurrer",
    "KeepFn",
    "Plan",
    "SaveOptions",
    "check_output_path",
    "deblur_batch",
    "deblur_file",
    "default_output_path",
    "plan_batch",
    "plan_image",
    "run_batch",
    "run_image",
]


@dataclass(frozen=True)
class SaveOptions:
    """How outputs are named and written."""

    quality: int = 95  # JPEG / WebP quality
    max_pixels: int | None = None  # decompression-bomb limit passed to load_image
    overwrite: bool = False
    suffix: str = DEFAULT_SUFFIX  # for outputs written next to their input
    output_format: str | None = None  # e.g. ".png" to force an extension; None keeps the input's


@dataclass(frozen=True)
class Plan:
    """Everything a run will do, decided and checked before any weights are loaded.

    ``jobs``: (input, output) pairs; ``problems``: (input or folder, why) that a batch
    reports as failed; ``out_dir``: the folder to create (None: outputs go to existing
    folders); ``mark``: write :data:`OUTPUT_MARKER` there (output folder inside the input tree).
    """

    jobs: tuple[tuple[Path, Path], ...]
    options: SaveOptions
    problems: tuple[tuple[Path, str], ...] = ()
    out_dir: Path | None = None
    mark: bool = False
    skipped: tuple[Path, ...] = ()  # files in the input tree that are not supported images
    notes: tuple[tuple[Path, str], ...] = ()  # (input, why it is left out) for the user to read

    @property
    def outputs(self) -> list[Path]:
        return [dst for _, dst in self.jobs]


# ---------------------------------------------------------------------------------------
# image: one or several files


def check_output_path(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse an image output that would lose data or cannot be written (see :mod:`paths`).

    OutputError when the output is the input (whatever the spelling), is a folder, lies in
    a missing or unwritable folder, or exists without ``overwrite``; UsageError for an
    extension that no writer handles.
    """
    check_output_file(Path(output_path), FileSet([Path(input_path)]), overwrite)
    check_image_output(Path(output_path))


def plan_image(
    inputs: Sequence[Path] | Path,
    output: Path | None = None,
    options: SaveOptions = SaveOptions(),
    *,
    output_is_folder: bool = False,
) -> Plan:
    """Plan ``deblur image``: each input checked readable, each output named and checked.

    ``output`` None: ``<stem>_deblurred<ext>`` next to each input. An existing folder, a
    folder asked for with ``output_is_folder`` (``-o out/``) or any ``output`` with several
    inputs: results go inside it under the input's own name (suffixed when the folder is
    the input's own), and it is created when missing. Otherwise ``output`` is the file.
    """
    sources = _unique([Path(p) for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)])
    if not sources:
        raise UsageError("no input images given")
    for src in sources:
        image_io.check_readable(src)
    fmt = normalise_format(options.output_format)
    folder = _output_folder(output, len(sources), output_is_folder)
    if folder is not None:
        check_output_folder(folder, FileSet(sources))
        jobs = [(s, output_in_folder(s, folder, options.suffix, fmt)) for s in sources]
    elif output is None:
        for src in sources:
            check_default_output_place(src)
        jobs = [(s, default_output_path(s, options.suffix, fmt)) for s in sources]
    else:
        jobs = [(sources[0], Path(output))]
    jobs, notes = _leave_out_earlier_results(jobs)
    inputs_set = FileSet(src for src, _ in jobs)
    for src, dst in jobs:
        check_output_file(dst, inputs_set, options.overwrite, create_folder=folder is not None)
        check_image_output(dst)
        check_output_fits(dst, image_io.read_size(src))  # a 70,000 px wide JPEG fails now, not after the run
    check_distinct(jobs)
    return Plan(tuple(jobs), options, out_dir=folder, notes=notes)


def _leave_out_earlier_results(
    jobs: list[tuple[Path, Path]],
) -> tuple[list[tuple[Path, Path]], tuple[tuple[Path, str], ...]]:
    """Inputs that deblur wrote (recorded, not guessed from the name) as the output another
    input of this run writes again: ``deblur *.jpg`` run a second time picks up the first
    run's results, which are that run's outputs, not photos to deblur."""
    outputs = FileSet(dst for _, dst in jobs)
    written = Written()
    kept, notes = [], []
    for src, dst in jobs:
        owner = outputs.find(src)
        if owner is not None and src in written and len(jobs) > 1:
            notes.append((src, "left out: deblur wrote it in an earlier run as the output of another input given here"))
        else:
            kept.append((src, dst))
    return kept, tuple(notes)


def _unique(paths: list[Path]) -> list[Path]:
    """The inputs without repeats (``deblur a.jpg a.jpg`` deblurs it once)."""
    seen, out = FileSet(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _output_folder(output: Path | None, count: int, asked: bool) -> Path | None:
    """The folder results go into, or None when ``output`` names a file (or is absent)."""
    if output is None:
        return None
    output = Path(output)
    if asked or output.is_dir():
        return output
    if count == 1:
        return None
    if output.exists() or output.suffix.lower() in image_io.SUPPORTED_SUFFIXES:
        raise UsageError(f"{count} inputs need -o to name a folder, not the file {output}")
    return output


def run_image(
    deblurrer: ImageDeblurrer,
    plan: Plan,
    progress: Progress | None = None,
    on_note: Callable[[Path, str], None] | None = None,
) -> list[Path]:
    """Execute an image plan one file after another; the first failure raises. Returns outputs.

    Loading (which refuses corrupt files and decompression bombs) runs before inference.
    ``on_note(input, phrase)`` hears what an output could not keep (alpha written to JPEG,
    frames after the first, 16 bits written to 8): see :func:`image_io.dropped_on_save`.
    """
    if plan.out_dir is not None:
        make_folder(plan.out_dir)
    written = []
    for src, dst in plan.jobs:
        loaded = image_io.load_image(src, max_pixels=plan.options.max_pixels)
        check_output_fits(dst, loaded.size, loaded)  # byte limits, now that depth and channels are known
        sharp = deblurrer.run(loaded.rgb, progress=progress)
        image_io.save_image(sharp, dst, like=loaded, quality=plan.options.quality, overwrite=plan.options.overwrite)
        written.append(dst)
        for note in image_io.dropped_on_save(loaded, dst) if on_note is not None else ():
            on_note(src, note)
    return written


def deblur_file(
    deblurrer: ImageDeblurrer,
    input_path: Path,
    output_path: Path | None = None,
    options: SaveOptions = SaveOptions(),
    progress: Progress | None = None,
) -> Path:
    """Deblur one image file and return the path written (``plan_image`` + ``run_image``).

    ``output_path`` None -> ``default_output_path`` (with ``options.output_format`` when
    set); an existing folder -> the input's name inside it.
    """
    return run_image(deblurrer, plan_image([input_path], output_path, options), progress)[0]


# ---------------------------------------------------------------------------------------
# batch: a folder tree


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

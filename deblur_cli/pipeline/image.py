"""`deblur image`: plan (every path and rule checked), then run; the plan and save options
``deblur batch`` (:mod:`.batch`) shares.

``plan_image`` resolves the inputs and decides and checks every output (the rules live in
:mod:`deblur_cli.files.paths`) without loading weights or touching a pixel; ``run_image``
executes a plan with any :class:`ImageDeblurrer`. ``deblur_file`` does both in one call.

* an output is never an input (same path, symlink, hard link or relative spelling);
* every check on the outputs runs before the expensive inference;
* outputs are written atomically by ``image_io.save_image`` (temp file + rename), so a
  file under its final name is always complete, even after SIGKILL;
* a batch skips outputs that already exist unless ``overwrite``, so a rerun resumes an
  interrupted run, and it keeps going past bad files, reporting them at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deblur_cli.errors import UsageError
from deblur_cli.files import formats, image_io
from deblur_cli.files.fsutil import make_folder
from deblur_cli.files.ledger import Written
from deblur_cli.files.paths import (
    DEFAULT_SUFFIX,
    FileSet,
    check_default_output_place,
    check_distinct,
    check_image_output,
    check_output_file,
    check_output_folder,
    default_output_path,
    normalise_format,
    output_in_folder,
)
from deblur_cli.files.writers import check_output_fits
from deblur_cli.pipeline.batch_run import ImageDeblurrer
from deblur_cli.progress import Progress


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
        _check_format_agrees(Path(output), fmt)
    jobs, notes = _leave_out_earlier_results(jobs)
    inputs_set = FileSet(src for src, _ in jobs)
    for src, dst in jobs:
        check_output_file(dst, inputs_set, options.overwrite, create_folder=True)  # -o new/x.jpg: made, as -o new/ is
        check_image_output(dst)
        check_output_fits(dst, image_io.read_size(src))  # a 70,000 px wide JPEG fails now, not after the run
    check_distinct(jobs)
    return Plan(tuple(jobs), options, out_dir=folder, notes=notes)


def _check_format_agrees(output: Path, fmt: str | None) -> None:
    """UsageError when ``--format`` asks for another format than the output file's name says."""
    named, asked = formats.by_suffix(output.suffix), formats.by_suffix(fmt or "")
    if asked is not None and named is not None and named is not asked:
        raise UsageError(f"the output {output} is named as {named.label} but --format asks for {asked.label}; "
                         "change one of them (--format names the format of results whose name deblur chooses)")


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
        make_folder(dst.parent)  # an output file's missing folder (checked writable by the plan)
        loaded = image_io.load_image(src, max_pixels=plan.options.max_pixels)
        check_output_fits(dst, loaded.size, loaded)  # byte limits, now that depth and channels are known
        sharp = deblurrer.run(loaded.rgb, progress=progress)
        image_io.save_image(sharp, dst, like=loaded, quality=plan.options.quality, overwrite=plan.options.overwrite)
        written.append(dst)
        if on_note is not None:
            for note in image_io.dropped_on_save(loaded, dst):
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

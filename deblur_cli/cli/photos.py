"""`deblur image` and `deblur batch`, the main path: parse options, plan (inputs, every
output, weights located), load the method once, run, print. The work is in
:mod:`deblur_cli.pipeline`. Registered in :mod:`deblur_cli.cli.main`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from deblur_cli.cli.app import (
    JsonReport,
    MaxPixels,
    Overwrite,
    Quality,
    bar,
    console,
    handled_errors,
    info,
    print_failures,
    printable,
    tile_callback,
)
from deblur_cli.cli.options import inference_options, load, locate
from deblur_cli.errors import EXIT_FAILURES, UsageError
from deblur_cli.files.formats import FORMATS
from deblur_cli.methods import InferenceOptions

OutputFormat = Annotated[Optional[str], typer.Option("--format", metavar="FORMAT", help=f"Format of results whose name deblur chooses ({', '.join(f.suffix[1:] for f in FORMATS if f.write)}): next to their input, in a folder, or on standard output (-o -). Default: the input's own.", show_default=False)]


@inference_options()
def image_cmd(
    inputs: Annotated[list[str], typer.Argument(metavar="FILE", help="The blurry photo(s); - reads one from standard input (a file named - is ./-).", show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", metavar="FILE|FOLDER|-", help="The result's file (format from the extension), or a folder (existing, or written with a trailing /) where results keep their input's name; - writes it to standard output (format: --format, else the input's). Several inputs need a folder. Default: INPUT_deblurred.EXT next to each input.")] = None,
    output_format: OutputFormat = None,
    overwrite: Overwrite = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    json_path: JsonReport = None,
    *,
    inference: InferenceOptions,
) -> None:
    """Deblur one photo or several. [dim](Also: deblur photo.jpg -o sharp.jpg; deblur *.jpg -o sharp/; deblur - -o - < in.jpg > out.jpg)[/]"""
    with handled_errors():
        from deblur_cli.files.streams import is_stream, stream_folder

        if any(is_stream(p) for p in inputs) or (output is not None and is_stream(output)):
            with stream_folder() as streams:
                _image(inputs, output, output_format, overwrite, quality, max_pixels, json_path, inference, streams)
        else:
            _image(inputs, output, output_format, overwrite, quality, max_pixels, json_path, inference)


def _image(inputs, output, output_format, overwrite, quality, max_pixels, json_path, inference, streams=None) -> None:
    """`deblur image` itself; ``streams``: the folder of piped images, when - is used."""
    from deblur_cli.files.streams import is_stream
    from deblur_cli.pipeline import SaveOptions, plan_image, run_image

    shown = streams.shown if streams is not None else (lambda p: p)
    opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite, output_format=output_format)
    as_folder = output is not None and output.endswith(("/", "\\"))
    sources, target = ([Path(p) for p in inputs], Path(output) if output else None)
    if streams is not None:
        sources, target = streams.arguments(inputs, output, output_format, sys.stdin.buffer, sys.stdout.buffer)
    plan = plan_image(sources, target, opts, output_is_folder=as_folder)
    _check_report(json_path, plan, overwrite, to_stdout=output is not None and is_stream(output))
    _say_plan(plan, shown)
    deblurrer = load(locate(inference))
    t0 = time.perf_counter()
    if len(plan.jobs) > 1:
        _run_batch(deblurrer, plan, title="deblur image", on_result=lambda r: _report(json_path, "image", r, deblurrer, t0, overwrite))
        return
    with bar() as progress:
        task = progress.add_task(f"Deblurring {printable(Path(shown(plan.jobs[0][0])).name)}", total=None)
        notes: list[tuple[Path, str]] = []
        (written,) = run_image(deblurrer, plan, progress=tile_callback(progress, task), on_note=lambda p, n: notes.append((p, n)))
    if streams is not None and output is not None and is_stream(output):
        streams.send(written, sys.stdout.buffer)
    console.print(f"[green]wrote[/] {printable(shown(written))} [dim]({time.perf_counter() - t0:.1f} s, {deblurrer.device}, {deblurrer.precision})[/]", soft_wrap=True)
    print_failures("note:", [(shown(p), n) for p, n in (*plan.notes, *notes)])
    from deblur_cli.pipeline.report import single

    _report(json_path, "image", single(plan.jobs[0][0], written, notes), deblurrer, t0, overwrite, shown)


@inference_options()
def batch_cmd(
    in_dir: Annotated[Path, typer.Argument(metavar="FOLDER", help="Folder of photos (searched recursively).", show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FOLDER", help="Output folder; subfolders are mirrored. Default: FOLDER_deblurred next to the input FOLDER.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist (default: skip them, so an interrupted run resumes).")] = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    only_blurry: Annotated[bool, typer.Option("--only-blurry", help="Deblur only photos `deblur score` calls blurry (the whole frame above --threshold, or its blurriest region well above it); list the others.")] = False,
    threshold: Annotated[Optional[float], typer.Option(help="Blur score above which --only-blurry deblurs a photo (0 sharp .. 1 blurry). \\[default: 0.35]")] = None,
    json_path: JsonReport = None,
    *,
    inference: InferenceOptions,
) -> None:
    """Deblur every photo in a folder tree; keeps going past bad files and reports them at the end."""
    with handled_errors():
        from deblur_cli.pipeline import SaveOptions, plan_batch

        keep = None
        if only_blurry:
            from deblur_cli.quality.score import DEFAULT_THRESHOLD, keep_blurry

            keep = keep_blurry(DEFAULT_THRESHOLD if threshold is None else threshold)
        elif threshold is not None:
            raise UsageError("--threshold is the blur score above which --only-blurry deblurs; without --only-blurry every photo is deblurred, so add it or leave --threshold out")
        opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite)
        plan = plan_batch(in_dir, out_dir, opts)
        _check_report(json_path, plan, overwrite)
        _say_plan(plan)
        deblurrer = load(locate(inference))
        t0 = time.perf_counter()
        _run_batch(deblurrer, plan, keep, on_result=lambda r: _report(json_path, "batch", r, deblurrer, t0, overwrite))


def _check_report(json_path, plan, overwrite, to_stdout=False) -> None:
    """--json: the report's file checked with the outputs, before any work."""
    from deblur_cli.pipeline.report import check_report_output

    if json_path == "-" and to_stdout:
        raise UsageError("-o - and --json - both want standard output; write one of them to a file")
    if json_path is not None and json_path != "-":
        check_report_output(Path(json_path), plan, overwrite)


def _report(json_path, command, result, deblurrer, t0, overwrite, shown=lambda p: p) -> None:
    """--json: what the run did, to the file or to standard output (nothing else goes there)."""
    if json_path is None:
        return
    from deblur_cli.files.fsutil import write_text
    from deblur_cli.pipeline.report import report, to_text

    weights = deblurrer.weights_info
    run = {"method": deblurrer.options.method, "weights": None if weights is None else weights.source,
           "weights_sha256": None if weights is None else weights.sha256,
           "device": str(deblurrer.device), "precision": deblurrer.precision}
    text = to_text(report(command, result, run=run, seconds=time.perf_counter() - t0, shown=shown))
    if json_path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_text(Path(json_path), text, overwrite=overwrite)
    console.print(f"[green]wrote[/] {printable(json_path)}", soft_wrap=True)


def _say_plan(plan, shown=lambda p: p) -> None:
    """-v: each input and where its result goes."""
    for src, dst in plan.jobs:
        info(f"{printable(shown(src))} -> {printable(shown(dst))}")


def _run_batch(deblurrer, plan, keep=None, title="deblur batch", on_result=lambda result: None) -> None:
    """Run a plan of several files with a bar per file and per tile; summary; exit 1 on failures."""
    from deblur_cli.pipeline import run_batch

    with bar(transient=False) as progress:
        files = progress.add_task("Photos", total=None)
        tiles = progress.add_task("", total=None, visible=False)

        def on_event(ev) -> None:
            if ev.kind == "start":
                progress.update(files, total=ev.total)
            elif ev.kind == "file_start" and ev.path is not None:
                progress.update(tiles, description=f"  {printable(ev.path.name)}", completed=0, total=None, visible=True)
            elif ev.kind == "tile":
                progress.update(tiles, completed=ev.done, total=ev.total)
            elif ev.kind in ("file_done", "file_skipped", "file_failed", "file_left_alone"):
                progress.update(files, completed=ev.done, total=ev.total)

        result = run_batch(deblurrer, plan, progress=on_event, keep=keep)
        progress.update(tiles, visible=False)
    _batch_summary(result, getattr(plan, "skipped", ()), getattr(plan, "notes", ()), title)
    if result.processed:
        where = f"to {printable(plan.out_dir)}" if plan.out_dir is not None else "next to their inputs"
        console.print(f"[green]wrote {len(result.processed)} file(s)[/] {where}", soft_wrap=True)
    on_result(result)
    if not result.ok:
        raise typer.Exit(EXIT_FAILURES)


def _batch_summary(result, unsupported=(), plan_notes=(), title="deblur batch") -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_row("[green]deblurred[/]", str(len(result.processed)))
    table.add_row("[yellow]skipped (output exists)[/]", str(len(result.skipped)))
    table.add_row("[red]failed[/]", str(len(result.failed)))
    if getattr(result, "left_alone", None):
        table.add_row("[cyan]left alone (sharp enough)[/]", str(len(result.left_alone)))
    if unsupported:
        table.add_row("[yellow]skipped (not a supported image)[/]", str(len(unsupported)))
    console.print(table)
    print_failures("skipped", [(p, "not a supported image type") for p in unsupported])
    print_failures("left alone", getattr(result, "left_alone", []))
    print_failures("note:", [*plan_notes, *getattr(result, "notes", [])])
    print_failures("failed", result.failed)

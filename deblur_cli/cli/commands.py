"""The `deblur` command line: each command parses its options, calls the library's
``plan_*`` (inputs resolved, every output checked, weights located), then ``run_*``, and
prints. No checks of its own: the rules live in the library (see docs/ARCHITECTURE.md).

Shared parts (app, option types, console, error mapping) are in :mod:`deblur_cli.cli.app`;
`train` is in :mod:`deblur_cli.cli.train`, `weights ...` in :mod:`deblur_cli.cli.weights`.
"""

from __future__ import annotations

import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from deblur_cli.cli.app import (
    MaxPixels,
    Overwrite,
    Quality,
    _bar,
    _errors,
    _fail,
    _print_failures,
    _printable,
    _tile_callback,
    app,
    console,
    out,
)
from deblur_cli.cli.options import Weights, inference_options, load, locate
from deblur_cli.errors import EXIT_FAILURES, EXIT_INTERRUPTED
from deblur_cli.methods import InferenceOptions

__all__ = ["app", "main"]


# ----------------------------------------------------------------------------- image / batch


@app.command("image")
@inference_options()
def image_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="The blurry photo(s).", show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="The result's file (format from the extension), or a folder (existing, or written with a trailing /) where results keep their input's name. Several inputs need a folder. Default: INPUT_deblurred.EXT next to each input.")] = None,
    overwrite: Overwrite = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    *,
    inference: InferenceOptions,
) -> None:
    """Deblur one photo or several. [dim](Also: deblur photo.jpg -o sharp.jpg; deblur *.jpg -o sharp/)[/]"""
    with _errors():
        from deblur_cli.pipeline import SaveOptions, plan_image, run_image

        opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite)
        as_folder = output is not None and output.endswith(("/", "\\"))
        plan = plan_image(inputs, Path(output) if output else None, opts, output_is_folder=as_folder)
        deblurrer = load(locate(inference))
        if len(plan.jobs) > 1:
            _run_batch(deblurrer, plan, title="deblur image")
            return
        t0 = time.perf_counter()
        with _bar() as progress:
            task = progress.add_task(f"Deblurring {plan.jobs[0][0].name}", total=None)
            notes: list[tuple[Path, str]] = []
            (written,) = run_image(deblurrer, plan, progress=_tile_callback(progress, task), on_note=lambda p, n: notes.append((p, n)))
        console.print(f"[green]wrote[/] {_printable(written)} [dim]({time.perf_counter() - t0:.1f} s, {deblurrer.device}, {deblurrer.precision})[/]", soft_wrap=True)
        _print_failures("note:", [*plan.notes, *notes])


@app.command("batch")
@inference_options()
def batch_cmd(
    in_dir: Annotated[Path, typer.Argument(help="Folder of photos (searched recursively).", show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder; subfolders are mirrored. Default: IN_DIR_deblurred next to IN_DIR.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist (default: skip them, so an interrupted run resumes).")] = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    only_blurry: Annotated[bool, typer.Option("--only-blurry", help="Deblur only photos whose blur score (see `deblur score`) is above --threshold; list the others.")] = False,
    threshold: Annotated[float, typer.Option(help="Blur score above which --only-blurry deblurs a photo (0 sharp .. 1 blurry).")] = 0.35,
    *,
    inference: InferenceOptions,
) -> None:
    """Deblur every photo in a folder tree; keeps going past bad files and reports them at the end."""
    with _errors():
        from deblur_cli.pipeline import SaveOptions, plan_batch

        keep = None
        if only_blurry:
            from deblur_cli.quality.score import keep_blurry

            keep = keep_blurry(threshold)
        opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite)
        plan = plan_batch(in_dir, out_dir, opts)
        deblurrer = load(locate(inference))
        _run_batch(deblurrer, plan, keep)


def _run_batch(deblurrer, plan, keep=None, title="deblur batch") -> None:
    """Run a plan of several files with a bar per file and per tile; summary; exit 1 on failures."""
    from deblur_cli.pipeline import run_batch

    with _bar(transient=False) as progress:
        files = progress.add_task("Photos", total=None)
        tiles = progress.add_task("", total=None, visible=False)

        def on_event(ev) -> None:
            if ev.kind == "start":
                progress.update(files, total=ev.total)
            elif ev.kind == "file_start" and ev.path is not None:
                progress.update(tiles, description=f"  {_printable(ev.path.name)}", completed=0, total=None, visible=True)
            elif ev.kind == "tile":
                progress.update(tiles, completed=ev.done, total=ev.total)
            elif ev.kind in ("file_done", "file_skipped", "file_failed", "file_left_alone"):
                progress.update(files, completed=ev.done, total=ev.total)

        result = run_batch(deblurrer, plan, progress=on_event, keep=keep)
        progress.update(tiles, visible=False)
    _batch_summary(result, getattr(plan, "skipped", ()), getattr(plan, "notes", ()), title)
    if result.processed:
        where = f"to {_printable(plan.out_dir)}" if plan.out_dir is not None else "next to their inputs"
        console.print(f"[green]wrote {len(result.processed)} file(s)[/] {where}", soft_wrap=True)
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
    _print_failures("skipped", [(p, "not a supported image type") for p in unsupported])
    _print_failures("left alone", getattr(result, "left_alone", []))
    _print_failures("note:", [*plan_notes, *getattr(result, "notes", [])])
    _print_failures("failed", result.failed)


# ----------------------------------------------------------------------------- attention map


@app.command("attention-map")
@inference_options(only=("weights", "device", "threads"))
def attention_cmd(
    image: Annotated[Path, typer.Argument(help="The photo to analyse.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the maps and the summary figure.")] = Path("attention_maps"),
    blocks: Annotated[str, typer.Option(help="Blocks to show: enc1..enc9, dec1..dec9, comma-separated, or 'all'.")] = "enc2,enc5,enc8,dec2,dec5,dec8",
    scale: Annotated[str, typer.Option(help="finest or all (every scale of the network).")] = "finest",
    colormap: Annotated[str, typer.Option(help="Heatmap colours (red high, blue low by default).")] = "turbo",
    raw: Annotated[bool, typer.Option("--raw", help="Also save the maps as .npy and the channel attention as CSV.")] = False,
    max_side: Annotated[int, typer.Option(help="Larger images are analysed downscaled to this long side.")] = 2048,
    overwrite: Overwrite = False,
    *,
    inference: InferenceOptions,
) -> None:
    """Show where the network looks: spatial attention heatmaps, overlays and a Fig. 8-style summary."""
    with _errors():
        from deblur_cli.tools.attention import AttentionOptions, plan_attention, run_attention
        from deblur_cli.weights import load_model

        opts = AttentionOptions(blocks=blocks, scale=scale, colormap=colormap, raw=raw, max_side=max_side)
        from deblur_cli.network.engine import set_threads

        plan = plan_attention(image, out_dir, opts, overwrite=overwrite, weights=inference.weights)
        set_threads(inference.threads)
        model, _ = load_model(plan.weights)
        with _bar() as progress:
            task = progress.add_task(f"Attention maps of {_printable(image.name)}", total=None)
            result = run_attention(model, plan, progress=_tile_callback(progress, task), device=inference.device)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {_printable(note)}", soft_wrap=True)
        console.print(f"[green]wrote {len(result.files)} files[/] in {_printable(out_dir)}:", soft_wrap=True)
        for f in result.files:
            out.print(f"  {_printable(f)}", soft_wrap=True)


# ----------------------------------------------------------------------------- training, weights

from deblur_cli.cli import train as cli_train, weights as cli_weights  # noqa: E402, F401 - register `train` and `weights` here, in help order

# ----------------------------------------------------------------------------- evaluation


@app.command("evaluate")
@inference_options(precision="fp32", precision_help="fp32 by default for comparable scores; bf16/fp16 to trade accuracy for speed.")
def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Test pairs: GoPro layout (ROOT/<seq>/{blur,sharp}) or flat (ROOT/{blur,sharp}).", show_default=False)],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write all scores as JSON.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image scores as CSV.")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(help="Also save the deblurred images here.")] = None,
    blur_folder: Annotated[str, typer.Option(help="Blurry folder name in GoPro layouts (blur or blur_gamma).")] = "blur",
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N pairs.")] = None,
    overwrite: Overwrite = False,
    per_image: Annotated[Optional[bool], typer.Option("--per-image/--no-per-image", help="Show a row per image (default: when there are at most 30).", show_default=False)] = None,
    *,
    inference: InferenceOptions,
) -> None:
    """Measure weights on a test set: PSNR, SSIM and MS-SSIM per image, per sequence and overall."""
    with _errors():
        from deblur_cli.tools.evaluate import EvalOptions, plan_evaluate, run_evaluate

        opts = EvalOptions(blur_folder=blur_folder, save_dir=save_dir, limit=limit, overwrite=overwrite)
        plan = plan_evaluate(data, opts, json_path=json_path, csv_path=csv_path)
        deblurrer = load(locate(inference))
        with _bar() as progress:
            task = progress.add_task("Evaluating", total=None)
            report = run_evaluate(deblurrer.run, plan, progress=_tile_callback(progress, task))
        info = deblurrer.weights_info
        _eval_table(report, info.source if info is not None else inference.method, per_image if per_image is not None else len(report.images) <= 30)


def _eval_table(report, weights_name: str, per_image: bool) -> None:
    table = Table(title=f"deblur evaluate ({len(report.images)} pairs)", header_style="bold")
    for col in ("", "PSNR (dB)", "SSIM", "MS-SSIM"):
        table.add_column(col, justify="right" if col else "left")
    if per_image:
        for im in report.images:
            table.add_row(f"[dim]{_printable(im.sequence)}/[/]{_printable(im.name)}", f"{im.psnr:.2f}", f"{im.ssim:.4f}", f"{im.ms_ssim:.4f}")
        table.add_section()
    for name, scores in report.per_sequence():
        table.add_row(_printable(name), f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}", f"{scores['ms_ssim']:.4f}")
    o = report.overall()
    table.add_section()
    table.add_row("[dim]blurry input[/]", f"{o['input_psnr']:.2f}", f"{o['input_ssim']:.4f}", f"{o['input_ms_ssim']:.4f}")
    table.add_row(f"[bold]overall ({_printable(weights_name)})[/]", f"{o['psnr']:.2f}", f"{o['ssim']:.4f}", f"{o['ms_ssim']:.4f}")
    out.print(table)


# ----------------------------------------------------------------------------- synthesis


@app.command("make-pairs")
def make_pairs_cmd(
    sharp_dir: Annotated[Path, typer.Argument(help="Folder of sharp photos.", show_default=False)],
    out_dir: Annotated[Path, typer.Argument(help="New folder for the pairs (GoPro layout).", show_default=False)],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same pairs.")] = 0,
    crop: Annotated[Optional[int], typer.Option(help="Cut a random crop of this size from each photo (default: whole photo).")] = None,
    pairs_per_image: Annotated[int, typer.Option(min=1, help="Pairs made from each photo.")] = 1,
) -> None:
    """Blur sharp photos realistically into a training/test set (OUT_DIR/<photo>/{blur,sharp}/)."""
    with _errors():
        from deblur_cli.data.make_pairs import plan_make_pairs, run_make_pairs

        plan = plan_make_pairs(sharp_dir, out_dir, seed=seed, crop=crop, pairs_per_image=pairs_per_image)
        failed: list[tuple[Path, str]] = []
        with _bar() as progress:
            task = progress.add_task("Synthesising pairs", total=None)
            n = run_make_pairs(plan, _tile_callback(progress, task), on_error=lambda p, m: failed.append((p, m)))
        console.print(f"[green]wrote {n} pairs[/] to {_printable(out_dir)}", soft_wrap=True)
        _print_failures("skipped", failed)
        if failed:
            raise typer.Exit(EXIT_FAILURES)


# ----------------------------------------------------------------------------- score, video, export-onnx

from deblur_cli.cli import media as cli_media  # noqa: E402, F401 - register `score`, `video`, `weights export-onnx` (issue 14)
from deblur_cli.cli import serve as cli_serve  # noqa: E402, F401 - register `serve` (issue 20); it imports deblur_cli.serve inside the command

# ----------------------------------------------------------------------------- doctor (issue 11)


@app.command("doctor")
def doctor_cmd(weights: Weights = None) -> None:
    """Show versions, devices, threads, the weights in use (sha256-checked) and the cache: paste it into a bug report."""
    with _errors():
        from deblur_cli.tools.doctor import gather
        from deblur_cli.errors import WeightsError

        report = gather(weights)
        rows = report.rows()
        width = max(len(label) for label, _ in rows)
        for label, value in rows:  # plain aligned lines, one per row: they paste well
            out.print(f"{label:<{width}}  {_printable(value)}", soft_wrap=True)
        if not report.torch_ok:
            _fail(f"torch cannot be imported: {report.torch}", EXIT_FAILURES)
        if not report.weights.ok:
            raise WeightsError(f"weights {report.weights.spec or '(none)'}: {report.weights.message}")


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (and SIGHUP) end a run as Ctrl-C does: temporary files removed, finished
    outputs kept, exit 130."""
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    # Pillow warns about odd metadata (e.g. corrupt EXIF); the image still loads, so stay quiet.
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop_like_ctrl_c)
    try:
        app(prog_name="deblur")
    except KeyboardInterrupt:
        console.print("[bold red]error:[/] interrupted")
        sys.exit(EXIT_INTERRUPTED)

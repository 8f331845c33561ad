"""Commands beyond single photos: `deblur score`, `deblur video`, `deblur weights export-onnx`.

Thin, like every command: parse options, plan (every check before weights load), run, print.
The work is in :mod:`deblur_cli.quality.score`, :mod:`deblur_cli.tools.video` and :mod:`deblur_cli.tools.onnx_export`;
registered in :mod:`deblur_cli.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from deblur_cli.cli.app import (
    MaxPixels,
    Overwrite,
    bar,
    console,
    handled_errors,
    out,
    print_failures,
    printable,
    tile_callback,
)
from deblur_cli.cli.options import inference_options, load, locate
from deblur_cli.errors import EXIT_FAILURES, InputError, UsageError
from deblur_cli.methods import InferenceOptions

# ----------------------------------------------------------------------------- blur score


def score_cmd(
    inputs: Annotated[list[str], typer.Argument(metavar="FILE|FOLDER", help="Photos, or folders searched recursively; - reads one photo from standard input.", show_default=False)],
    json_path: Annotated[Optional[Path], typer.Option("--json", metavar="FILE|-", help="Also write the scores as JSON to this file ('-': standard output, no list).")] = None,
    threshold: Annotated[float, typer.Option(help="Photos scoring above this count as blurry (0 sharp .. 1 blurry); so do photos whose blurriest region scores above it by 0.30 or more.")] = 0.35,
    max_pixels: MaxPixels = None,
    overwrite: Overwrite = False,
) -> None:
    """Say how blurry each photo is: 0 sharp .. 1 very blurry (Crete-Roffet blur effect, of the whole frame and of its blurriest region; no network needed)."""
    with handled_errors():
        from deblur_cli.files.streams import is_stream, stream_folder

        if not any(is_stream(p) for p in inputs):
            _score([Path(p) for p in inputs], json_path, threshold, max_pixels, overwrite)
            return
        if sum(is_stream(p) for p in inputs) > 1:
            raise UsageError("- (standard input) is one photo: give it once")
        with stream_folder() as streams:
            paths = [streams.spool(sys.stdin.buffer) if is_stream(p) else Path(p) for p in inputs]
            _score(paths, json_path, threshold, max_pixels, overwrite, streams.shown)


def _score(inputs: list[Path], json_path: Path | None, threshold: float, max_pixels: int | None, overwrite: bool, shown=str) -> None:
    """`deblur score` itself; ``shown`` names a file in messages (a piped photo: standard input)."""
    from deblur_cli.quality import score

    score.check_threshold(threshold)
    files, problems, unsupported = score.find_images(inputs)
    to_stdout = json_path is not None and str(json_path) == "-"
    if json_path is not None and not to_stdout:
        score.check_json_output(json_path, files, overwrite)
    if not files and not problems:
        kinds = f"; {len(unsupported)} other file(s) skipped" if unsupported else ""
        raise InputError("no supported images found (" + ", ".join(str(p) for p in inputs) + ")" + kinds)
    with bar() as progress:
        task = progress.add_task("Scoring", total=len(files))
        scored, failed = score.score_images(files, threshold, max_pixels, progress=tile_callback(progress, task))
    failed = problems + failed
    text = shown(score.scores_json(scored, failed, threshold))
    if to_stdout:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    else:
        for s in scored:  # one line per photo (no table: paths stay whole and greppable)
            name = printable(shown(s.path))
            if s.score is None:  # its own verdict: neither sharp nor blurry
                out.print(f"  -    [yellow]unmeasurable[/]  {name}  [dim]({printable(s.why)})[/]", soft_wrap=True)
                continue
            verdict = "[red]blurry[/]" if s.blurry else "[green]sharp[/] "
            region = s.measure.region
            by_region = region is not None and s.score <= threshold and s.measure.region_is_blurry(threshold)
            why = f"  [dim](its blurriest region: {region.score:.3f} at x={region.x} y={region.y}, {region.width} px)[/]" if by_region and region else ""
            out.print(f"{s.score:.3f}  {verdict}  {name}{why}", soft_wrap=True)
        measured = [s for s in scored if s.score is not None]
        unmeasured = len(scored) - len(measured)
        tail = f"; {unmeasured} could not be measured" if unmeasured else ""
        console.print(f"{sum(s.blurry for s in measured)} of {len(measured)} blurry (threshold {threshold}){tail}")
        if json_path is not None:
            score.write_scores_json(json_path, text, overwrite=overwrite)
            console.print(f"[green]wrote[/] {printable(json_path)}", soft_wrap=True)
    print_failures("skipped", [(p, "not a supported image type") for p in unsupported])
    print_failures("failed", [(Path(shown(p)), why) for p, why in failed])
    if failed:
        raise typer.Exit(EXIT_FAILURES)


# ----------------------------------------------------------------------------- video


@inference_options()
def video_cmd(
    input: Annotated[Path, typer.Argument(metavar="FILE", help="The shaky video (anything FFmpeg reads: mp4, mov, mkv, webm, avi, ...).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Where to write (.mp4, .mov, .mkv or .webm). Default: INPUT_deblurred.EXT next to the input.")] = None,
    codec: Annotated[str, typer.Option(help="h264, hevc, vp9 or av1.")] = "h264",
    crf: Annotated[int, typer.Option(help="Constant quality: lower is better and larger (h264/hevc 0..51, vp9/av1 0..63).")] = 18,
    preset: Annotated[Optional[str], typer.Option(metavar="NAME", help="h264/hevc speed preset, ultrafast .. veryslow. \\[default: medium]")] = None,
    start: Annotated[Optional[str], typer.Option(metavar="TIME", help="Start here: seconds or \\[HH:]MM:SS (try a short piece first).")] = None,
    duration: Annotated[Optional[str], typer.Option(metavar="TIME", help="Length of the piece: seconds or \\[HH:]MM:SS.")] = None,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Copy the audio stream (not re-encoded).")] = True,
    overwrite: Overwrite = False,
    *,
    inference: InferenceOptions,
) -> None:
    """Deblur a video frame by frame; keeps frame rate, size, rotation and audio. Needs the \\[video] extra (PyAV)."""
    with handled_errors():
        from deblur_cli.tools import video

        opts = video.VideoOptions(
            codec=codec, crf=crf, preset=preset, start=video.parse_time(start),
            duration=video.parse_time(duration), audio=audio, overwrite=overwrite,
        )
        plan = video.plan_video(input, output, opts)
        for note in plan.notes:
            console.print(f"[yellow]note:[/] {printable(input.name)}: {printable(note)}", soft_wrap=True)
        deblurrer = load(locate(inference))
        columns = (
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"Deblurring {printable(input.name)}", total=plan.expected_frames, speed="", eta="?")

            def on_progress(p: video.VideoProgress) -> None:
                eta = "?" if p.eta_s is None else f"{int(p.eta_s // 60)}:{int(p.eta_s % 60):02d}"
                progress.update(task, completed=p.done, total=p.total, speed=f"{p.frames_per_s:.2f} frames/s", eta=eta)

            result = video.deblur_video(deblurrer, plan, progress=on_progress)
        fps = result.frames / result.wall_s if result.wall_s > 0 else 0.0
        console.print(
            f"[green]wrote[/] {printable(result.output)} [dim]({result.frames} frames, {result.seconds:.1f} s of video, "
            f"{fps:.2f} frames/s, {deblurrer.device}, {deblurrer.precision})[/]"
        )


# ----------------------------------------------------------------------------- ONNX export


def weights_export_onnx(
    name: Annotated[str, typer.Argument(metavar="NAME|PATH|URL", help="Registered weights NAME, a weights file PATH or an http(s) URL.", show_default=False)],
    out_file: Annotated[Path, typer.Argument(metavar="FILE", help="The .onnx file to write.", show_default=False)],
    check: Annotated[bool, typer.Option("--check/--no-check", help="Run the graph with onnxruntime on a test image and refuse it unless it matches torch to 50 dB PSNR.")] = True,
    overwrite: Overwrite = False,
) -> None:
    """Export weights as an ONNX graph (opset 17; any height and width >= 16 px) for deployment."""
    with handled_errors():
        from deblur_cli.tools import onnx_export

        onnx_export.require("onnx")
        if check:
            onnx_export.require("onnxruntime")
        InferenceOptions(weights=name).check_named()  # a typo in the name is said first, as for every command
        onnx_export.check_onnx_output(out_file, overwrite)  # .onnx: never a weights file
        from deblur_cli.weights import load_model

        model, _ = load_model(locate(InferenceOptions(weights=name)).weights)
        with bar() as progress:
            progress.add_task(f"Exporting {printable(name)}", total=None)
            result = onnx_export.export_onnx(model, out_file, overwrite=overwrite, check=check)
        checked = "not checked" if result.check_psnr_db is None else f"onnxruntime vs torch {result.check_psnr_db:.1f} dB"
        console.print(f"[green]wrote[/] {printable(result.path)} [dim](opset {result.opset}; {checked})[/]", soft_wrap=True)

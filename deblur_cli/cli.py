"""The `deblur` command line. Thin: parse options, call one library function, map errors.

torch and the heavy modules are imported inside the commands so that
`deblur --help` and `deblur --version` stay fast.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from deblur_cli import __version__
from deblur_cli.errors import EXIT_FAILURES, EXIT_INTERRUPTED, DeblurError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class _ImageByDefault(TyperGroup):
    """Treat `deblur photo.jpg ...` as `deblur image photo.jpg ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["image", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ImageByDefault,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
weights_app = typer.Typer(help="List, verify, download and export weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


def _version(value: bool) -> None:
    if value:
        out.print(f"deblur {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Remove motion blur from photos with an attentive multi-scale network.

    [bold]deblur photo.jpg -o sharp.jpg[/] deblurs one photo; [bold]deblur batch folder/[/] a whole folder tree.

    Exit codes: 0 ok, 1 some files failed, 2 usage, 3 bad input, 4 cannot write output, 5 weights problem, 6 out of memory or device unavailable, 7 bad dataset, 130 interrupted.
    """


def _printable(text: object) -> str:
    """User text (a path or a message) for the console: one line, never markup, and
    undecodable file-name bytes shown as \\xff rather than as surrogate escapes."""
    text = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    shown = raw.decode("utf-8", "backslashreplace")
    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in shown))


def _fail(message: str, code: int) -> None:
    console.print(f"[bold red]error:[/] {_printable(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """The one place where failures become a one-line message and an exit code."""
    try:
        yield
    except DeblurError as e:
        _fail(e.message, e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; finished outputs are kept, nothing half-written is left", EXIT_INTERRUPTED)
    except MemoryError:
        _fail("out of memory; try a smaller --tile", 6)
    except (typer.Exit, typer.Abort, click.exceptions.ClickException):
        raise
    except Exception as e:  # noqa: BLE001 - last resort: no traceback for users
        if os.environ.get("DEBLUR_DEBUG"):
            raise
        _fail(f"internal error: {type(e).__name__}: {e} (set DEBLUR_DEBUG=1 for a traceback)", EXIT_FAILURES)


# ----------------------------------------------------------------------------- shared options

Weights = Annotated[
    Optional[str],
    typer.Option("--weights", "-w", help="Registered weights NAME, a file PATH (.safetensors or .pth) or an http(s) URL.", rich_help_panel="Model"),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel="Model")]
Precision = Annotated[
    str, typer.Option(help="auto, fp32, bf16 or fp16 (CUDA only). auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.", rich_help_panel="Model")
]
Tile = Annotated[Optional[int], typer.Option(help="Tile side in pixels; default: chosen from free memory.", rich_help_panel="Model")]
TileOverlap = Annotated[Optional[int], typer.Option(help="Overlap between tiles in pixels; seams are blended. [default: 64]", rich_help_panel="Model", show_default=False)]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads for torch (default: all cores).", rich_help_panel="Model")]
Quality = Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")]
MaxPixels = Annotated[
    Optional[int], typer.Option(help="Refuse images with more pixels than this (decompression-bomb guard; 0 = no limit). Env: DEBLUR_MAX_PIXELS.")
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _deblurrer(weights: str | None, device: str, precision: str, tile: int | None, tile_overlap: int | None, threads: int | None):
    from deblur_cli.engine import Deblurrer, InferenceOptions
    from deblur_cli.weights import load_model

    _set_threads(threads)
    with _spinner("Loading weights"):
        model, info = load_model(weights)
    extra = {} if tile_overlap is None else {"tile_overlap": tile_overlap}
    opts = InferenceOptions(device=device, precision=precision, tile=tile, **extra)
    return Deblurrer(model, opts), info


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    with Progress(SpinnerColumn(), TextColumn(text), console=console, transient=True):
        yield


def _bar(transient: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def _tile_callback(progress: Progress, task: Any) -> Callable[[int, int], None]:
    def cb(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return cb


# ----------------------------------------------------------------------------- image / batch


@app.command("image")
def image_cmd(
    input: Annotated[Path, typer.Argument(help="The blurry photo.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write the result (format from the extension). Default: INPUT_deblurred.EXT next to the input.")] = None,
    overwrite: Overwrite = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    weights: Weights = None,
    device: Device = "auto",
    precision: Precision = "auto",
    tile: Tile = None,
    tile_overlap: TileOverlap = None,
    threads: Threads = None,
) -> None:
    """Deblur one photo. [dim](Also: deblur photo.jpg -o sharp.jpg)[/]"""
    with _errors():
        from deblur_cli.pipeline import SaveOptions, check_output_path, default_output_path, deblur_file

        target = output or default_output_path(input)
        opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite)
        if not input.exists() and not input.is_symlink():  # a dangling/looping link gets image_io's message
            raise _input_error(f"no such file: {input}")
        check_output_path(input, target, overwrite)  # fail before loading weights
        deblurrer, _ = _deblurrer(weights, device, precision, tile, tile_overlap, threads)
        t0 = time.perf_counter()
        with _bar() as progress:
            task = progress.add_task(f"Deblurring {input.name}", total=None)
            written = deblur_file(deblurrer, input, target, opts, progress=_tile_callback(progress, task))
        console.print(f"[green]wrote[/] {_printable(written)} [dim]({time.perf_counter() - t0:.1f} s, {deblurrer.device}, {deblurrer.precision})[/]")


def _input_error(message: str) -> DeblurError:
    from deblur_cli.errors import InputError

    return InputError(message)


@app.command("batch")
def batch_cmd(
    in_dir: Annotated[Path, typer.Argument(help="Folder of photos (searched recursively).", show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder; subfolders are mirrored. Default: IN_DIR_deblurred next to IN_DIR.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist (default: skip them, so an interrupted run resumes).")] = False,
    quality: Quality = 95,
    max_pixels: MaxPixels = None,
    weights: Weights = None,
    device: Device = "auto",
    precision: Precision = "auto",
    tile: Tile = None,
    tile_overlap: TileOverlap = None,
    threads: Threads = None,
) -> None:
    """Deblur every photo in a folder tree; keeps going past bad files and reports them at the end."""
    with _errors():
        from deblur_cli.pipeline import SaveOptions, deblur_batch, prepare_batch_output

        opts = SaveOptions(quality=quality, max_pixels=max_pixels, overwrite=overwrite)
        out_dir = prepare_batch_output(in_dir, out_dir, opts)  # fail before weights and the bar
        deblurrer, _ = _deblurrer(weights, device, precision, tile, tile_overlap, threads)
        with _bar(transient=False) as progress:
            files = progress.add_task("Photos", total=None)
            tiles = progress.add_task("", total=None, visible=False)

            def on_event(ev) -> None:
                if ev.kind == "start":
                    progress.update(files, total=ev.total)
                elif ev.kind == "file_start" and ev.path is not None:
                    progress.update(tiles, description=f"  {ev.path.name}", completed=0, total=None, visible=True)
                elif ev.kind == "tile":
                    progress.update(tiles, completed=ev.done, total=ev.total)
                elif ev.kind in ("file_done", "file_skipped", "file_failed"):
                    progress.update(files, completed=ev.done, total=ev.total)

            result = deblur_batch(deblurrer, in_dir, out_dir, opts, progress=on_event)
            progress.update(tiles, visible=False)
        _batch_summary(result)
        if not result.ok:
            raise typer.Exit(EXIT_FAILURES)


def _batch_summary(result) -> None:
    table = Table(title="deblur batch", show_header=True, header_style="bold")
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_row("[green]deblurred[/]", str(len(result.processed)))
    table.add_row("[yellow]skipped (output exists)[/]", str(len(result.skipped)))
    table.add_row("[red]failed[/]", str(len(result.failed)))
    console.print(table)
    _print_failures("failed", result.failed)


def _print_failures(label: str, failures: list[tuple[Path, str]]) -> None:
    """One escaped line per file that could not be processed."""
    for path, message in failures:
        console.print(f"[red]{label}[/] {_printable(path)}: {_printable(message)}", soft_wrap=True)


# ----------------------------------------------------------------------------- attention map


@app.command("attention-map")
def attention_cmd(
    image: Annotated[Path, typer.Argument(help="The photo to analyse.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for the maps and the summary figure.")] = Path("attention_maps"),
    blocks: Annotated[str, typer.Option(help="Blocks to show: enc1..enc9, dec1..dec9, comma-separated, or 'all'.")] = "enc2,enc5,enc8,dec2,dec5,dec8",
    scale: Annotated[str, typer.Option(help="finest or all (every scale of the network).")] = "finest",
    colormap: Annotated[str, typer.Option(help="Heatmap colours (red high, blue low by default).")] = "turbo",
    raw: Annotated[bool, typer.Option("--raw", help="Also save the maps as .npy and the channel attention as CSV.")] = False,
    max_side: Annotated[int, typer.Option(help="Larger images are analysed downscaled to this long side.")] = 2048,
    overwrite: Overwrite = False,
    weights: Weights = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Show where the network looks: spatial attention heatmaps, overlays and a Fig. 8-style summary."""
    with _errors():
        from deblur_cli.attention import AttentionOptions, attention_map, parse_blocks
        from deblur_cli.weights import load_model

        _set_threads(threads)
        with _spinner("Loading weights"):
            model, _ = load_model(weights)
        opts = AttentionOptions(
            blocks=parse_blocks(blocks, model.config.blocks_per_side), scale=scale, colormap=colormap, raw=raw, max_side=max_side
        )
        with _bar() as progress:
            task = progress.add_task(f"Attention maps of {image.name}", total=None)
            result = attention_map(model, image, out_dir, opts, progress=_tile_callback(progress, task), overwrite=overwrite, device=device)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}")
        console.print(f"[green]wrote {len(result.files)} files[/] in {out_dir}:")
        for f in result.files:
            out.print(f"  {f}")


# ----------------------------------------------------------------------------- training


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="GoPro layout (ROOT/<seq>/{blur,sharp}), flat layout (ROOT/{blur,sharp}) or a folder of sharp photos (blurred on the fly).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", help="Run folder: checkpoints, log.jsonl, train_config.json.")] = Path("runs/deblur"),
    steps: Annotated[Optional[int], typer.Option(help="Total training steps (default 100000, or the run's own on --resume).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML file with training options; a [model] table picks the architecture.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its newest checkpoint.")] = False,
    model: Annotated[Optional[str], typer.Option(help="Architecture preset: paper (default) or lite.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size per process (default 16).")] = None,
    crop: Annotated[Optional[int], typer.Option(help="Training crop size (default 256).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Initial learning rate (default 1e-4), polynomial decay to 0.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes (default 2).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Steps between checkpoints (default 500).")] = None,
    val_every: Annotated[Optional[int], typer.Option(help="Steps between validations (default 500).")] = None,
    val_data: Annotated[Optional[Path], typer.Option(help="Validation pairs (GoPro or flat layout); default: hold out 5% of --data.")] = None,
    blur_folder: Annotated[Optional[str], typer.Option(help="Blurry folder name in GoPro layouts (blur or blur_gamma).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default 0).")] = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Train the network. Multi-GPU: torchrun --nproc_per_node N -m deblur_cli train ..."""
    with _errors():
        from deblur_cli.train import build_config

        _set_threads(threads)
        overrides = dict(
            steps=steps, batch_size=batch_size, crop=crop, lr=lr, workers=workers, checkpoint_every=checkpoint_every,
            val_every=val_every, val_data=str(val_data) if val_data else None, blur_folder=blur_folder, seed=seed,
        )
        if model is not None:
            overrides["model"] = {"preset": model}
        cfg = build_config(config, **overrides)
        if not resume and steps is None and cfg.steps == 100_000:
            console.print("[dim]training for the default 100000 steps; pass --steps to change[/]")
        result, _ = _run_training(cfg, data, output, resume, device)
        console.print(f"[green]trained to step {result.step}[/]; newest checkpoint: {result.checkpoint}")
        console.print(f"export it with: deblur weights export {output} weights.safetensors")


def _run_training(cfg, data: Path, output: Path, resume: bool, device: str):
    from deblur_cli.train import train

    rank0 = int(os.environ.get("RANK", "0")) == 0
    with _bar(transient=False) as progress:
        task = progress.add_task("Training", total=cfg.steps, visible=rank0)
        state: dict[str, Any] = {}

        def on_event(ev) -> None:
            if not rank0:
                return
            if ev.kind == "start":
                progress.update(task, completed=ev.step, total=ev.total)
                console.print(f"[dim]{ev.message}; run folder {ev.path}[/]")
            elif ev.kind == "step":
                state.update(loss=ev.loss, lr=ev.lr, sps=ev.steps_per_s)
                desc = f"Training loss {ev.loss:.5f} lr {ev.lr:.2e} {ev.steps_per_s:.2f} steps/s"
                if "val" in state:
                    desc += f" val {state['val']:.2f} dB"
                progress.update(task, completed=ev.step, description=desc)
            elif ev.kind == "val":
                state["val"] = ev.val_psnr
                console.print(f"step {ev.step}: validation PSNR {ev.val_psnr:.2f} dB (blurry input {ev.val_input_psnr:.2f} dB)")

        return train(cfg, data, output, resume=resume, device=device, progress=on_event)


# ----------------------------------------------------------------------------- evaluation


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Test pairs: GoPro layout (ROOT/<seq>/{blur,sharp}) or flat (ROOT/{blur,sharp}).", show_default=False)],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write all scores as JSON.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image scores as CSV.")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(help="Also save the deblurred images here.")] = None,
    blur_folder: Annotated[str, typer.Option(help="Blurry folder name in GoPro layouts (blur or blur_gamma).")] = "blur",
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N pairs.")] = None,
    per_image: Annotated[Optional[bool], typer.Option("--per-image/--no-per-image", help="Show a row per image (default: when there are at most 30).", show_default=False)] = None,
    weights: Weights = None,
    device: Device = "auto",
    precision: Annotated[str, typer.Option(help="fp32 by default for comparable scores; bf16/fp16 to trade accuracy for speed.", rich_help_panel="Model")] = "fp32",
    tile: Tile = None,
    tile_overlap: TileOverlap = None,
    threads: Threads = None,
) -> None:
    """Measure weights on a test set: PSNR, SSIM and MS-SSIM per image, per sequence and overall."""
    with _errors():
        from deblur_cli.evaluate import EvalOptions, evaluate

        deblurrer, info = _deblurrer(weights, device, precision, tile, tile_overlap, threads)
        opts = EvalOptions(blur_folder=blur_folder, save_dir=save_dir, limit=limit)
        with _bar() as progress:
            task = progress.add_task("Evaluating", total=None)
            report = evaluate(deblurrer.run, data, opts, progress=_tile_callback(progress, task))
        _eval_table(report, info.source, per_image if per_image is not None else len(report.images) <= 30)
        if json_path:
            report.write_json(json_path)
        if csv_path:
            report.write_csv(csv_path)


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
        from deblur_cli.synthesis import make_pairs

        failed: list[tuple[Path, str]] = []
        with _bar() as progress:
            task = progress.add_task("Synthesising pairs", total=None)
            n = make_pairs(
                sharp_dir, out_dir, seed=seed, crop=crop, pairs_per_image=pairs_per_image,
                progress=_tile_callback(progress, task), on_error=lambda p, m: failed.append((p, m)),
            )
        console.print(f"[green]wrote {n} pairs[/] to {out_dir}")
        _print_failures("skipped", failed)
        if failed:
            raise typer.Exit(EXIT_FAILURES)


# ----------------------------------------------------------------------------- weights


@weights_app.command("list")
def weights_list() -> None:
    """Show the registered weights."""
    with _errors():
        from deblur_cli.weights import default_weights_name, list_weights

        entries = list_weights()
        if not entries:
            console.print("no trained weights are installed; train some with `deblur train` and use --weights PATH")
            return
        default = default_weights_name()
        table = Table(header_style="bold")
        for col in ("name", "architecture", "licence", "sha256", "description"):
            table.add_column(col)
        for e in entries:
            arch = f"widths {list(e.config.widths)}, {e.config.kernel_size}x{e.config.kernel_size}"
            name = f"{e.name} [green](default)[/]" if e.name == default else e.name
            table.add_row(name, arch, e.licence, e.sha256[:12], e.description)
        out.print(table)


@weights_app.command("verify")
def weights_verify() -> None:
    """Check the sha256 of every registered weights file."""
    with _errors():
        from deblur_cli.errors import WeightsError
        from deblur_cli.weights import verify_all

        results = verify_all()
        for entry, ok, message in results:
            mark = "[green]ok[/]" if ok else "[red]FAILED[/]"
            out.print(f"{mark} {entry.name}: {message}")
        if not results:
            console.print("no registered weights to verify")
        if not all(ok for _, ok, _ in results):
            raise WeightsError("some weights failed verification")


@weights_app.command("download")
def weights_download(name: Annotated[str, typer.Argument(help="Registered name or an http(s) URL.")]) -> None:
    """Download weights into the cache (DEBLUR_CACHE_DIR overrides its location)."""
    with _errors():
        from deblur_cli.weights import download, download_entry

        with _bar() as progress:
            task = progress.add_task(f"Downloading {name}", total=None)
            cb = _tile_callback(progress, task)
            path = download(name, progress=cb) if "://" in name else download_entry(name, progress=cb)
        console.print(f"[green]saved[/] {path}")


@weights_app.command("export")
def weights_export(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder.")],
    out_file: Annotated[Path, typer.Argument(help="The .safetensors file to write.")],
    half: Annotated[bool, typer.Option("--half", help="Store float16 (half the size).")] = False,
    step: Annotated[Optional[int], typer.Option(help="Export the checkpoint of this step (default: the newest).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Turn a training checkpoint into a weights file usable with --weights."""
    with _errors():
        from deblur_cli.errors import OutputError
        from deblur_cli.train import export_weights

        if out_file.suffix != ".safetensors":
            raise OutputError(f"the weights file must end in .safetensors: {out_file}")
        if out_file.exists() and not overwrite:
            raise OutputError(f"{out_file} exists; pass --overwrite to replace it")
        import torch

        path, done, sha = export_weights(run_dir, out_file, dtype=torch.float16 if half else None, step=step)
        console.print(f"[green]wrote[/] {_printable(path)} (step {done}, sha256 {sha})")


def main() -> None:
    """Console-script entry point."""
    # Pillow warns about odd metadata (e.g. corrupt EXIF); the image still loads, so stay quiet.
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
    try:
        app(prog_name="deblur")
    except KeyboardInterrupt:
        console.print("[bold red]error:[/] interrupted")
        sys.exit(EXIT_INTERRUPTED)

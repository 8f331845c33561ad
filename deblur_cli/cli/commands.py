"""`deblur attention-map`, `evaluate`, `make-pairs` and `doctor`: each parses its options,
calls the library's ``plan_*`` (inputs resolved, every output checked, weights located),
then ``run_*``, and prints. No checks of its own: the rules live in the library (see
docs/ARCHITECTURE.md). Registered in :mod:`deblur_cli.cli.main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from deblur_cli.cli.app import (
    Overwrite,
    bar,
    console,
    fail,
    handled_errors,
    out,
    print_failures,
    printable,
    tile_callback,
)
from deblur_cli.cli.options import Weights, inference_options, load, locate
from deblur_cli.errors import EXIT_FAILURES
from deblur_cli.methods import InferenceOptions

# ----------------------------------------------------------------------------- attention map


@inference_options(only=("weights", "device", "threads"))
def attention_cmd(
    image: Annotated[Path, typer.Argument(metavar="FILE", help="The photo to analyse.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--output", "-o", metavar="FOLDER", help="Folder for the maps and the summary figure.")] = Path("attention_maps"),
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
    with handled_errors():
        from deblur_cli.tools.attention import (
            AttentionOptions,
            plan_attention,
            run_attention,
        )
        from deblur_cli.weights import load_model

        opts = AttentionOptions(blocks=tuple(blocks.split(",")), scale=scale, colormap=colormap, raw=raw, max_side=max_side)
        from deblur_cli.network.engine import set_threads

        plan = plan_attention(image, out_dir, opts, overwrite=overwrite, weights=inference.weights)
        set_threads(inference.threads)
        model, _ = load_model(plan.weights)
        with bar() as progress:
            task = progress.add_task(f"Attention maps of {printable(image.name)}", total=None)
            result = run_attention(model, plan, progress=tile_callback(progress, task), device=inference.device)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {printable(note)}", soft_wrap=True)
        console.print(f"[green]wrote {len(result.files)} files[/] in {printable(out_dir)}:", soft_wrap=True)
        for f in result.files:
            out.print(f"  {printable(f)}", soft_wrap=True)


# ----------------------------------------------------------------------------- evaluation


@inference_options(precision="fp32", precision_help="fp32 by default for comparable scores; bf16/fp16 to trade accuracy for speed.")
def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="FOLDER", help="Test pairs: GoPro layout (ROOT/<seq>/{blur,sharp}) or flat (ROOT/{blur,sharp}).", show_default=False)],
    json_path: Annotated[Optional[Path], typer.Option("--json", metavar="FILE", help="Write all scores as JSON.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", metavar="FILE", help="Write per-image scores as CSV.")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(metavar="FOLDER", help="Also save the deblurred images here.")] = None,
    blur_folder: Annotated[str, typer.Option(metavar="NAME", help="Blurry folder name in GoPro layouts (blur or blur_gamma).")] = "blur",
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N pairs.")] = None,
    overwrite: Overwrite = False,
    per_image: Annotated[Optional[bool], typer.Option("--per-image/--no-per-image", help="Show a row per image (default: when there are at most 30).", show_default=False)] = None,
    *,
    inference: InferenceOptions,
) -> None:
    """Measure weights on a test set: PSNR, SSIM and MS-SSIM per image, per sequence and overall."""
    with handled_errors():
        from deblur_cli.tools.evaluate import EvalOptions, plan_evaluate, run_evaluate

        opts = EvalOptions(blur_folder=blur_folder, save_dir=save_dir, limit=limit, overwrite=overwrite)
        plan = plan_evaluate(data, opts, json_path=json_path, csv_path=csv_path)
        deblurrer = load(locate(inference))
        with bar() as progress:
            task = progress.add_task("Evaluating", total=None)
            report = run_evaluate(deblurrer.run, plan, progress=tile_callback(progress, task))
        info = deblurrer.weights_info
        _eval_table(report, info.source if info is not None else inference.method, per_image if per_image is not None else len(report.images) <= 30)


def _eval_table(report, weights_name: str, per_image: bool) -> None:
    table = Table(title=f"deblur evaluate ({len(report.images)} pairs)", header_style="bold")
    for col in ("", "PSNR (dB)", "SSIM", "MS-SSIM"):
        table.add_column(col, justify="right" if col else "left")
    if per_image:
        for im in report.images:
            table.add_row(f"[dim]{printable(im.sequence)}/[/]{printable(im.name)}", f"{im.psnr:.2f}", f"{im.ssim:.4f}", f"{im.ms_ssim:.4f}")
        table.add_section()
    for name, scores in report.per_sequence():
        table.add_row(printable(name), f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}", f"{scores['ms_ssim']:.4f}")
    o = report.overall()
    table.add_section()
    table.add_row("[dim]blurry input[/]", f"{o['input_psnr']:.2f}", f"{o['input_ssim']:.4f}", f"{o['input_ms_ssim']:.4f}")
    table.add_row(f"[bold]overall ({printable(weights_name)})[/]", f"{o['psnr']:.2f}", f"{o['ssim']:.4f}", f"{o['ms_ssim']:.4f}")
    out.print(table)


# ----------------------------------------------------------------------------- synthesis


def make_pairs_cmd(
    sharp_dir: Annotated[Path, typer.Argument(metavar="SHARP_FOLDER", help="Folder of sharp photos.", show_default=False)],
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_FOLDER", help="New folder for the pairs (GoPro layout).", show_default=False)],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same pairs.")] = 0,
    crop: Annotated[Optional[int], typer.Option(help="Cut a random crop of this size from each photo (default: whole photo).")] = None,
    pairs_per_image: Annotated[int, typer.Option(min=1, help="Pairs made from each photo.")] = 1,
) -> None:
    """Blur sharp photos realistically into a training/test set (OUT_FOLDER/<photo>/{blur,sharp}/)."""
    with handled_errors():
        from deblur_cli.data.make_pairs import plan_make_pairs, run_make_pairs

        plan = plan_make_pairs(sharp_dir, out_dir, seed=seed, crop=crop, pairs_per_image=pairs_per_image)
        failed: list[tuple[Path, str]] = []
        with bar() as progress:
            task = progress.add_task("Synthesising pairs", total=None)
            n = run_make_pairs(plan, tile_callback(progress, task), on_error=lambda p, m: failed.append((p, m)))
        console.print(f"[green]wrote {n} pairs[/] to {printable(out_dir)}", soft_wrap=True)
        print_failures("skipped", failed)
        if failed:
            raise typer.Exit(EXIT_FAILURES)


# ----------------------------------------------------------------------------- doctor


def doctor_cmd(weights: Weights = None) -> None:
    """Show versions, devices, threads, the weights in use (sha256-checked) and the cache: paste it into a bug report."""
    with handled_errors():
        from deblur_cli.errors import WeightsError
        from deblur_cli.tools.doctor import gather

        report = gather(weights)
        rows = report.rows()
        width = max(len(label) for label, _ in rows)
        for label, value in rows:  # plain aligned lines, one per row: they paste well
            out.print(f"{label:<{width}}  {printable(value)}", soft_wrap=True)
        if not report.torch_ok:
            fail(f"torch cannot be imported: {report.torch}", EXIT_FAILURES)
        if not report.weights.ok:
            raise WeightsError(f"weights {report.weights.spec or '(none)'}: {report.weights.message}")

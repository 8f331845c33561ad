"""`deblur train`: options in, the training package's ``train`` out (see docs/training.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from deblur_cli.cli.app import bar, checked_by, console, handled_errors, printable
from deblur_cli.cli.options import Device
from deblur_cli.network.limits import available_cores, check_threads

Threads = Annotated[Optional[int], typer.Option(callback=checked_by(check_threads), help=f"CPU threads for torch, 1 to the cores available ({available_cores()} here; default: all).", rich_help_panel="Model")]


def train_cmd(
    data: Annotated[Path, typer.Option("--data", metavar="FOLDER", help="GoPro layout (ROOT/<seq>/{blur,sharp}), flat layout (ROOT/{blur,sharp}) or a folder of sharp photos (blurred on the fly).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", metavar="FOLDER", help="Run folder: checkpoints, log.jsonl, train_config.json.")] = Path("runs/deblur"),
    steps: Annotated[Optional[int], typer.Option(help="Total training steps (default 100000, or the run's own on --resume).")] = None,
    config: Annotated[Optional[Path], typer.Option(metavar="FILE", help="TOML file with training options; a \\[model] table picks the architecture.")] = None,
    recipe: Annotated[Optional[str], typer.Option(metavar="NAME", help="cpu (default: Charbonnier+FFT, AdamW, cosine, EMA, lite network) or paper (the paper's own recipe and network).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its newest checkpoint. Options that define the run (model, recipe, crop, batch size, seed, loss, optimiser) must be left out or equal; others (steps, lr, ...) change it from there, with a note.")] = False,
    init: Annotated[Optional[str], typer.Option(metavar="NAME|PATH|URL", help="Start from these weights (registered name, file or URL); smaller kernels are zero-padded into larger ones.")] = None,
    time_budget: Annotated[Optional[str], typer.Option(metavar="DURATION", help="Stop cleanly with a checkpoint after this wall-clock time, e.g. 9m30s, 2h, 600.")] = None,
    model: Annotated[Optional[str], typer.Option(metavar="NAME", help="Architecture preset: lite (cpu recipe), k3, or paper.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size per process (cpu recipe 8, paper 16).")] = None,
    crop: Annotated[Optional[int], typer.Option(help="Training crop size (cpu recipe 128, paper 256).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (cpu recipe 1e-3, paper 1e-4).")] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="Linear warm-up steps before the decay.")] = None,
    horizon: Annotated[Optional[int], typer.Option(help="Steps over which the learning rate decays (default: --steps).")] = None,
    loss: Annotated[Optional[str], typer.Option(metavar="NAME", help="charbonnier_fft, mse_grad (paper) or psnr.")] = None,
    ema_decay: Annotated[Optional[float], typer.Option(help="EMA decay of the weights that are validated and exported; 0 turns EMA off.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Data loader processes (cpu recipe 1).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Steps between checkpoints.")] = None,
    val_every: Annotated[Optional[int], typer.Option(help="Steps between validations.")] = None,
    val_data: Annotated[Optional[Path], typer.Option(metavar="FOLDER", help="Validation pairs (GoPro or flat layout), scored every --val-every steps.")] = None,
    blur_folder: Annotated[Optional[str], typer.Option(metavar="NAME", help="Blurry folder name in GoPro layouts (blur or blur_gamma).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default 0).")] = None,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Train the network (see docs/training.md). Multi-GPU: torchrun --nproc_per_node N -m deblur_cli train ..."""
    with handled_errors():
        from deblur_cli.network.engine import set_threads
        from deblur_cli.training import build_config, plan_train
        from deblur_cli.training.config import parse_duration

        set_threads(threads)
        budget = parse_duration(time_budget) if time_budget is not None else None
        overrides: dict[str, Any] = dict(
            recipe=recipe, steps=steps, batch_size=batch_size, crop=crop, lr=lr, warmup_steps=warmup_steps,
            horizon=horizon, loss=loss, ema_decay=ema_decay, workers=workers, checkpoint_every=checkpoint_every,
            val_every=val_every, val_data=str(val_data) if val_data else None, blur_folder=blur_folder, seed=seed,
        )
        if model is not None:
            overrides["model"] = {"preset": model}
        cfg = build_config(config, resume_from=output if resume else None, **overrides)
        plan = plan_train(cfg, data, output, resume=resume, device=device, init=init)
        for note in plan.notes:
            console.print(f"[yellow]note:[/] {printable(note)}", soft_wrap=True)
        if not resume and steps is None and plan.cfg.steps == 100_000:
            console.print("[dim]training for the default 100000 steps; pass --steps to change[/]")
        result, _ = _run_training(plan, budget)
        why = " (time budget reached)" if result.stopped_by_budget else ""
        console.print(f"[green]trained to step {result.step}[/]{why}; newest checkpoint: {printable(result.checkpoint)}", soft_wrap=True)
        console.print(f"export it with: deblur weights export {printable(output)} weights.safetensors", soft_wrap=True)


def _run_training(plan, budget: float | None):
    from deblur_cli.training import EventKind, run_train

    rank0 = int(os.environ.get("RANK", "0")) == 0
    with bar(transient=False) as progress:
        task = progress.add_task("Training", total=plan.cfg.steps, visible=rank0)
        state: dict[str, Any] = {}

        def on_event(ev) -> None:
            if not rank0:
                return
            if ev.kind == EventKind.START:
                progress.update(task, completed=ev.step, total=ev.total)
                console.print(f"[dim]{printable(ev.message)}; run folder {printable(ev.path)}[/]", soft_wrap=True)
            elif ev.kind == EventKind.STEP:
                desc = f"Training loss {ev.loss:.5f} lr {ev.lr:.2e} {ev.steps_per_s:.2f} steps/s"
                if "val" in state:
                    desc += f" val {state['val']:.2f} dB"
                progress.update(task, completed=ev.step, description=desc)
            elif ev.kind == EventKind.VAL:
                state["val"] = ev.val_psnr
                console.print(f"step {ev.step}: validation PSNR {ev.val_psnr:.2f} dB (blurry input {ev.val_input_psnr:.2f} dB)")

        return run_train(plan, progress=on_event, time_budget=budget)

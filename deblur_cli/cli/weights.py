"""`deblur weights list | verify | download | export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.padding import Padding

from deblur_cli.cli.app import (
    Overwrite,
    console,
    download_bar,
    handled_errors,
    out,
    printable,
)


def weights_list() -> None:
    """Show the registered weights."""
    with handled_errors():
        from deblur_cli.network import architectures
        from deblur_cli.weights import default_weights_name, list_weights

        entries = list_weights()
        if not entries:
            console.print("no trained weights are installed; train some with `deblur train` and use --weights PATH")
            return
        default = default_weights_name()
        for i, e in enumerate(entries):  # a block per entry: a table cut descriptions into 40 lines at 80 columns
            arch = architectures.of(e.config).describe(e.config)
            mark = " [green](default)[/]" if e.name == default else ""
            out.print(("\n" if i else "") + f"[bold]{printable(e.name)}[/]{mark}  {arch}, {printable(e.licence)}, sha256 {e.sha256[:12]}")
            if e.description:
                out.print(Padding(printable(e.description), (0, 0, 0, 2), expand=False))


def weights_verify() -> None:
    """Check the sha256 of every registered weights file."""
    with handled_errors():
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


def weights_download(name: Annotated[str, typer.Argument(metavar="NAME|URL", help="Registered name or an http(s) URL.")]) -> None:
    """Download weights into the cache (DEBLUR_CACHE_DIR overrides its location); says so when they are bundled or cached already."""
    with handled_errors():
        from deblur_cli.weights import download_entry, get_entry, local_copy, resolve
        from deblur_cli.weights.download import cached_download

        had = ("cached" if cached_download(name).is_file() else None) if "://" in name else local_copy(get_entry(name))
        with download_bar() as progress:
            task = progress.add_task(f"Downloading {printable(name)}", total=None)

            def cb(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total or None)

            # a URL is checked (weights, architecture, shapes) before it is kept in the cache
            path = resolve(name, progress=cb).path if "://" in name else download_entry(name, progress=cb)
        if had == "bundled":
            console.print(f"{printable(name)} is bundled with deblur: nothing to download ({printable(path)})", soft_wrap=True)
        elif had == "cached":
            console.print(f"{printable(name)} was downloaded before: nothing to download ({printable(path)})", soft_wrap=True)
        else:
            console.print(f"[green]saved[/] {printable(path)}", soft_wrap=True)


def weights_export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_FOLDER", help="A training run folder.")],
    out_file: Annotated[Path, typer.Argument(metavar="FILE", help="The .safetensors file to write.")],
    half: Annotated[bool, typer.Option("--half", help="Store float16 (half the size).")] = False,
    step: Annotated[Optional[int], typer.Option(help="Export the checkpoint of this step (default: the newest).")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Export the optimiser's weights instead of their EMA (the default when the run keeps one).")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Turn a training checkpoint into a weights file usable with --weights (its EMA weights by default)."""
    with handled_errors():
        from deblur_cli.files.paths import FileSet, check_output_file
        from deblur_cli.training import export_weights
        from deblur_cli.weights import check_weights_name

        check_weights_name(out_file)  # the plan: the output's name and path rules, before any work
        check_output_file(out_file, FileSet(), overwrite, create_folder=True)  # made by export_weights
        import torch

        path, done, sha = export_weights(run_dir, out_file, dtype=torch.float16 if half else None, step=step, raw=raw, overwrite=overwrite)
        console.print(f"[green]wrote[/] {printable(path)} (step {done}, sha256 {sha})", soft_wrap=True)

"""The inference options every command that deblurs shares (image, batch, evaluate, video,
serve), declared once: :func:`inference_options` adds them to a command, builds the one
:class:`~deblur_cli.methods.InferenceOptions` value from them (checked there, once) and hands
it to the command as its ``inference`` parameter. A bad value is a usage error naming the
option (``--tile``), before anything else runs.

:func:`locate` and :func:`load` are a command's two steps with that value: find the
weights while planning (a download shows a bar), then build the
:class:`deblur_cli.Deblurrer` (a spinner while the weights load).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from deblur_cli.cli.app import download_bar, handled_errors, info, printable, spinner
from deblur_cli.files.bundled import registered_names
from deblur_cli.methods import InferenceOptions, OptionError, help_text, names
from deblur_cli.network.limits import DEFAULT_OVERLAP, MIN_TILE, available_cores

if TYPE_CHECKING:
    from deblur_cli.api import Deblurrer

F = TypeVar("F", bound=Callable[..., Any])
PANEL = "Model"


def _weights_help() -> str:
    """The --weights help, naming the registered weights and the default (read without torch)."""
    default, found = registered_names()
    known = f" ({', '.join(found)}; `deblur weights list`)" if found else ""
    chosen = f" \\[default: {default}]" if default else ""
    return f"Registered weights NAME{known}, a file PATH (.safetensors or .pth) or an http(s) URL.{chosen}"


Weights = Annotated[Optional[str], typer.Option("--weights", "-w", metavar="NAME|PATH|URL", help=_weights_help(), rich_help_panel=PANEL)]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=PANEL)]
Threads = Annotated[Optional[int], typer.Option(help=f"CPU threads for torch, 1 to the cores available ({available_cores()} here; default: all).", rich_help_panel=PANEL)]
PRECISION_HELP = "auto, fp32, bf16 or fp16 (CUDA only). auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."


def _shared(precision: str, precision_help: str) -> list[inspect.Parameter]:
    """The shared options as parameters, in help order; their names are InferenceOptions fields."""

    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    method = Annotated[str, typer.Option(help=f"How to deblur: {help_text()}.", rich_help_panel=PANEL)]
    prec = Annotated[str, typer.Option(help=precision_help, rich_help_panel=PANEL)]
    tile = Annotated[Optional[int], typer.Option(help=f"Tile side in pixels, at least {MIN_TILE}; default: chosen from free memory.", rich_help_panel=PANEL)]
    overlap = Annotated[Optional[int], typer.Option(help=f"Overlap between tiles in pixels; seams are blended. \\[default: {DEFAULT_OVERLAP}]", rich_help_panel=PANEL, show_default=False)]
    return [
        option("weights", Weights, None),
        option("method", method, names()[0]),
        option("device", Device, "auto"),
        option("precision", prec, precision),
        option("tile", tile, None),
        option("tile_overlap", overlap, None),
        option("threads", Threads, None),
    ]


def inference_options(
    precision: str = "auto", precision_help: str = PRECISION_HELP, only: tuple[str, ...] | None = None
) -> Callable[[F], F]:
    """Give a command the shared options; it receives them as ``inference: InferenceOptions``.

    ``precision``, ``precision_help``: that option's default and help (``evaluate`` scores
    in fp32 unless told otherwise). ``only``: the fields this command offers (the others
    keep their defaults), for a command that runs the network without deblurring.
    """

    def decorate(command: F) -> F:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "inference"]
        shared = [p for p in _shared(precision, precision_help) if only is None or p.name in only]
        fields = [p.name for p in shared]

        def wrapper(**values: Any) -> Any:
            chosen = {name: values.pop(name) for name in fields}
            inference = _build(chosen)
            with handled_errors():
                inference.check_named()  # an unknown weights name is said first, before the outputs' problems
            return command(**values, inference=inference)

        wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
        wrapper.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
        return wrapper  # type: ignore[return-value]

    return decorate


def option_name(field: str) -> str:
    """The command-line spelling of an InferenceOptions field."""
    return "--" + field.replace("_", "-")


def _build(values: dict[str, Any]) -> InferenceOptions:
    try:
        return InferenceOptions(**values)
    except OptionError as e:
        raise typer.BadParameter(e.message, param_hint=f"'{option_name(e.option)}'") from None


def locate(options: InferenceOptions) -> InferenceOptions:
    """The planning step: ``options`` with their weights found (a bar while one downloads)."""
    shown_name = printable(options.weights or "") if isinstance(options.weights, str) else ""
    with download_bar() as progress:
        task = progress.add_task(f"Weights {shown_name}".rstrip(), total=None, visible=False)

        def shown(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None, visible=True)

        return options.located(progress=shown)


def load(options: InferenceOptions) -> Deblurrer:
    """Build the method's runner (for the network: load the weights): the first costly step."""
    from deblur_cli.api import Deblurrer

    with spinner("Loading weights" if options.weights is not None else f"Starting the {options.method} method"):
        deblurrer = Deblurrer.from_options(options)
    weights = deblurrer.weights_info
    if weights is not None:
        info(f"weights {printable(weights.source)}: {printable(weights.path)}, sha256 {weights.sha256}")
    import torch

    info(f"method {options.method} on {deblurrer.device}, {deblurrer.precision}, {torch.get_num_threads()} threads, "
         f"tile {options.tile or 'from free memory'}, overlap {options.tile_overlap if options.tile_overlap is not None else DEFAULT_OVERLAP}")
    return deblurrer

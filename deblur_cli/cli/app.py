"""The command line's shared parts: the app, its option types, the console, the progress
bars and the one place where failures become a one-line message and an exit code.

The commands live in :mod:`deblur_cli.cli.photos` (image, batch),
:mod:`deblur_cli.cli.commands` (attention map, evaluation, pairs, doctor),
:mod:`deblur_cli.cli.train`, :mod:`deblur_cli.cli.weights`, :mod:`deblur_cli.cli.media`
(score, video, ONNX) and :mod:`deblur_cli.cli.serve`, and are registered in one list in
:mod:`deblur_cli.cli.main`; each parses options, calls the library's ``plan_*``, then its
``run_*``, and prints. torch is imported inside the commands only, so that
`deblur --help` and `deblur --version` stay fast.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from typer.core import TyperCommand, TyperGroup

from deblur_cli import __version__
from deblur_cli.errors import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_RESOURCE,
    EXIT_USAGE,
    DeblurError,
    redact,
)
from deblur_cli.files.formats import FORMATS
from deblur_cli.files.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from deblur_cli.progress import Progress as ProgressFn
from deblur_cli.tools.doctor import DISTRIBUTION

# click's exception base: typer >= 0.29 carries its own copy of click, older typer uses
# click itself; either way it is a base class of typer.BadParameter.
_ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
#: click's Context: click's own, or typer's copy of click (typer >= 0.29); typer.Context
#: derives from it, so the overrides below take either.
ClickContext = Any


console = Console(stderr=True, highlight=False)  # progress, notes, summaries: silenced by -q
errors = Console(stderr=True, highlight=False)  # errors (and a batch's failed files): never silenced
out = Console(highlight=False)  # the results a command was asked for (score lines, JSON): never silenced
_verbose = False
_ROOT_OPTIONS = frozenset({"--version", "--help", "--install-completion", "--show-completion"})


#: The value a parameter's help shows when its declaration names none, by the click type's
#: name; text is named after the parameter itself (``--device DEVICE``).
_METAVARS = {"integer": "N", "integer range": "N", "float": "X", "float range": "X", "path": "PATH", "file": "FILE"}


def help_metavar(param: Any) -> str:
    """What a parameter's help shows for its value: the declared metavar (FILE, FOLDER,
    NAME|PATH|URL), else one for its type (N, X, PATH) or its name (DEVICE), never a
    Python type name (typer >= 0.29 shows ``<list[Path]>``, ``<str>``); nothing for a flag."""
    if param.metavar is not None:
        return param.metavar
    if getattr(param, "is_flag", False):
        return ""  # a flag takes no value, so there is nothing to show
    return _METAVARS.get(_value_kind(param), (param.name or "value").upper())


def _value_kind(param: Any) -> str:
    """The name click gives the parameter's type (``integer``, ``path``, ...); typer >= 0.29
    keeps the annotation instead, which is mapped to the same names."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return str(getattr(getattr(param, "type", None), "name", "") or "").lower()
    annotation = descriptor.annotation
    while typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return {int: "integer", float: "float", Path: "path"}.get(annotation, "text")


class _FlagsWithoutType:
    """Help pages show a value name for each parameter (:func:`help_metavar`), the same on
    every typer version we accept."""

    def get_params(self, ctx: ClickContext) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            param.metavar = help_metavar(param)
            if param.param_type_name != "argument":
                continue
            if param.nargs != 1 and not param.metavar.endswith("..."):
                param.metavar += "..."  # FILE... : one or more
            if hasattr(param, "display_type_rich"):  # typer >= 0.29 adds the type: the name says it all
                param.display_type_rich = lambda ctx: None
        return params


class _Command(_FlagsWithoutType, TyperCommand):
    """A command whose help reads the same on every typer version we accept."""

    def collect_usage_pieces(self, ctx: ClickContext) -> list[str]:
        # typer >= 0.29 writes a required argument as `{input}`; write INPUT, [INPUT] if
        # optional, INPUT... if repeated, as click-based typer did.
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = param.metavar or (param.name or "").upper()  # FILE... when repeated (get_params)
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class _Group(_FlagsWithoutType, TyperGroup):
    """A command group with the same help conventions as `_Command`."""


class _Typer(typer.Typer):
    """`typer.Typer` whose commands default to `_Command` (so new commands get clean help)."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or _Command, **kwargs)


class _ImageByDefault(_Group):
    """Treat `deblur photo.jpg ...` as `deblur image photo.jpg ...`; usage errors in one line."""

    def main(  # type: ignore[override]  # click's own arguments, passed through
        self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        # typer prints click's usage errors as a boxed panel of several lines (or, without
        # rich markup, as usage + hint + error); the README promises one line on stderr.
        # So parse in click's non-standalone mode and print its errors ourselves.
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        args = sys.argv[1:] if args is None else list(args)
        empty = _empty_argument(args)
        if empty:
            errors.print(f"[bold red]error:[/] {printable(empty)}", soft_wrap=True)
            sys.exit(EXIT_USAGE)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as e:
            code = getattr(e, "exit_code", EXIT_USAGE)
            if type(e).__name__ != "NoArgsIsHelpError":  # bare `deblur`: typer has printed the help once
                _usage_line(e)
            sys.exit(code)
        except typer.Abort:
            errors.print("[bold red]error:[/] aborted", soft_wrap=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `deblur score dir | head`: the reader left; as click does
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
            sys.exit(EXIT_FAILURES)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        # Anything that is neither a command nor a root option starts an image command, so
        # options may come first too: `deblur -o sharp.jpg photo.jpg`.
        if args and args[0] not in self.commands and args[0] not in _ROOT_OPTIONS:
            args = ["image", *args]
        return super().parse_args(ctx, args)


app = _Typer(
    cls=_ImageByDefault,
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
weights_app = _Typer(cls=_Group, help="List, verify, download and export weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


def _empty_argument(args: list[str]) -> str | None:
    """Why an empty argument is refused: ``deblur ""`` would read as the folder ".", ``-o ""``
    as no output at all, ``--weights ""`` as the current folder. None when there is none."""
    for i, arg in enumerate(args):
        if arg == "":
            after = f" after {args[i - 1]}" if i and args[i - 1].startswith("-") else ""
            return 'an empty argument ("")' + after + "; name a file, a folder or a value"
    return None


def _version(value: bool) -> None:
    if value:
        out.print(f"{DISTRIBUTION} {__version__}")  # the name pip knows: `pip install deblur` is another project
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


def printable(text: object) -> str:
    """User text (a path or a message) for the console: one line, never markup, no URL
    credentials (:func:`deblur_cli.errors.redact`), and undecodable file-name bytes shown
    as \\xff rather than as surrogate escapes."""
    text = redact(os.fspath(text) if isinstance(text, os.PathLike) else str(text))
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    shown = raw.decode("utf-8", "backslashreplace")
    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in shown))


def _usage_line(error: Any) -> None:
    """A click usage error (bad option value, unknown option, missing argument) as one line."""
    message = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    errors.print(f"[bold red]error:[/] {printable(message)}{printable(hint)}", soft_wrap=True)


def fail(message: str, code: int) -> None:
    errors.print(f"[bold red]error:[/] {printable(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def handled_errors() -> Iterator[None]:
    """The one place where failures become a one-line message and an exit code."""
    try:
        yield
    except DeblurError as e:
        fail(e.message, e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; finished outputs are kept, nothing half-written is left", EXIT_INTERRUPTED)
    except MemoryError:
        fail("out of memory; try a smaller --tile", EXIT_RESOURCE)
    except (typer.Exit, typer.Abort, typer.BadParameter):  # typer's own exits and usage errors
        raise
    except Exception as e:
        if os.environ.get("DEBLUR_DEBUG"):
            raise
        fail(f"internal error: {type(e).__name__}: {e} (set DEBLUR_DEBUG=1 for a traceback)", EXIT_FAILURES)



# ----------------------------------------------------------------------------- shared options
# The inference options of the commands that deblur are in :mod:`deblur_cli.cli.options`.


def checked_by(check: Any) -> Any:
    """An option callback running the library's own check, its UsageError shown as click's
    usage error for the option."""

    def callback(value: Any) -> Any:
        try:
            check(value)
        except DeblurError as e:
            raise typer.BadParameter(e.message) from None
        return value

    return callback


Quality = Annotated[int, typer.Option(min=1, max=100, help=f"Quality of {'/'.join(f.label.split()[0] for f in FORMATS if f.quality)} outputs.")]
MaxPixels = Annotated[
    Optional[int], typer.Option(help=f"Refuse images with more pixels than this (decompression-bomb guard; 0 = no limit). Env: {MAX_PIXELS_ENV}. \\[default: {DEFAULT_MAX_PIXELS:_}]")
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]
JsonReport = Annotated[Optional[str], typer.Option("--json", metavar="FILE|-", help="Also write what was done, file by file, as JSON to FILE (-: standard output, which then carries only the JSON).", show_default=False)]


def download_bar() -> Progress:
    """A bar for a download: bytes so far of the size announced, rate, time left."""
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


@contextmanager
def spinner(text: str) -> Iterator[None]:
    with Progress(SpinnerColumn(), TextColumn(text), console=console, transient=True, disable=not console.is_terminal):
        yield


def bar(transient: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,  # a live display writes blank lines into logs and pipes
    )


def tile_callback(progress: Progress, task: Any) -> ProgressFn:
    def cb(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return cb


def print_failures(label: str, failures: list[tuple[Path, str]]) -> None:
    """One escaped line per file: ``failed`` ones even with -q (they make the exit code),
    the others (notes, skipped, left alone) as information."""
    shown_on = errors if label == "failed" else console
    for path, message in failures:
        shown_on.print(f"[red]{label}[/] {printable(path)}: {printable(message)}", soft_wrap=True)


# ----------------------------------------------------------------------------- -q / -v

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the results asked for (score lines, JSON): no progress, notes or summaries.", rich_help_panel="Output")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also say what was planned (each output) and what runs it (weights file and sha256, device, precision, threads).", rich_help_panel="Output")]


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """-q silences :data:`console` (progress bars, notes, summaries); -v lets :func:`info` speak."""
    global _verbose
    if quiet and verbose:
        raise typer.BadParameter("-q (quiet) and -v (verbose) contradict each other; give one", param_hint="'--quiet' / '--verbose'")
    console.quiet, _verbose = quiet, verbose


def info(text: str) -> None:
    """A line of detail for -v (markup allowed; user text must go through :func:`printable`)."""
    if _verbose:
        console.print(f"[dim]{text}[/]", soft_wrap=True)


def with_verbosity(command: Any) -> Any:
    """``command`` with -q/--quiet and -v/--verbose added (every command gets them, in
    :mod:`deblur_cli.cli.main`): they are applied before the command runs."""
    signature = inspect.signature(command, eval_str=True)
    added = [
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, annotation=Quiet, default=False),
        inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, annotation=Verbose, default=False),
    ]

    def wrapper(*args: Any, quiet: bool = False, verbose: bool = False, **kwargs: Any) -> Any:
        set_verbosity(quiet, verbose)
        return command(*args, **kwargs)

    functools.update_wrapper(wrapper, command)
    params = list(signature.parameters.values())
    wrapper.__signature__ = signature.replace(parameters=[*params, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in (*params, *added)}
    delattr(wrapper, "__wrapped__")  # typer must read the new signature, not the command's
    return wrapper

"""The `deblur` command list and its entry point.

Every command is registered here, in :data:`COMMANDS` (``deblur NAME``) and
:data:`WEIGHTS_COMMANDS` (``deblur weights NAME``), in the order ``--help`` lists them.
Adding a command: write its function in the module of its kind, add one line here.
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from deblur_cli.cli import commands, media, photos, serve, train, weights
from deblur_cli.cli.app import app, console, weights_app, with_verbosity
from deblur_cli.errors import EXIT_INTERRUPTED

#: ``deblur NAME``, in help order (``deblur weights ...`` is listed after them).
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("image", photos.image_cmd),
    ("batch", photos.batch_cmd),
    ("attention-map", commands.attention_cmd),
    ("train", train.train_cmd),
    ("evaluate", commands.evaluate_cmd),
    ("make-pairs", commands.make_pairs_cmd),
    ("score", media.score_cmd),
    ("video", media.video_cmd),
    ("serve", serve.serve_cmd),  # it imports deblur_cli.serve inside the command
    ("doctor", commands.doctor_cmd),
)
#: ``deblur weights NAME``, in help order.
WEIGHTS_COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("list", weights.weights_list),
    ("verify", weights.weights_verify),
    ("download", weights.weights_download),
    ("export", weights.weights_export),
    ("export-onnx", media.weights_export_onnx),
)

for _name, _command in COMMANDS:
    app.command(_name)(with_verbosity(_command))
for _name, _command in WEIGHTS_COMMANDS:
    weights_app.command(_name)(with_verbosity(_command))


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

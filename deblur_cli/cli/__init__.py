"""The ``deblur`` command line: parse options, call the library's ``plan_*`` then ``run_*``,
print. No checks of its own: the rules live in the library (docs/ARCHITECTURE.md).

Holds ``app`` (the Typer app, option types, console, progress bars, ``handled_errors``:
the one place where a ``DeblurError`` becomes one line on stderr and its exit code) <
``options`` (the inference options every deblurring command shares, declared once) < the
commands: ``photos`` (image, batch), ``commands`` (attention-map, evaluate, make-pairs,
doctor), ``train``, ``weights`` (``deblur weights ...``), ``media`` (score, video,
export-onnx), ``serve`` (``deblur serve``: it imports :mod:`deblur_cli.serve` inside the
command) < ``main`` (:data:`~deblur_cli.cli.main.COMMANDS`: every command registered in one
list, in help order; :func:`main`). torch is imported inside commands only.

Offers :data:`app` and :func:`main` (the ``deblur`` console script and ``python -m
deblur_cli``). Nothing in the library imports this package.

May import: the library, serve.
"""

from deblur_cli.cli.main import app, main

__all__ = ["app", "main"]

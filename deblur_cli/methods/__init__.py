"""Deblurring methods and the one inference-options value.

Holds ``registry`` (the :class:`Method` records behind ``--method``, the contract a new
method keeps in its docstring, and :class:`InferenceOptions`: method, weights, device,
precision, tile, tile overlap, threads; checked once, where it is built) < ``network``
(the ``network`` method: the trained network run by the engine).

Offers :class:`InferenceOptions`, :class:`OptionError`, :class:`Method`, :class:`Runner`,
:func:`register`, :func:`names`, :func:`get` and :func:`create`. Importing it does not
import torch.

May import: core, files, network, weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deblur_cli.methods.registry import (
    DEFAULT_METHOD,
    InferenceOptions,
    Method,
    OptionError,
    Runner,
    get,
    help_text,
    names,
    register,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def create(options: InferenceOptions, model: nn.Module | None = None) -> Runner:
    """The runner of ``options.method``, built from ``options``. ``model``: an already built
    network, for the ``network`` method only (the Python API's ``model=``)."""
    if model is not None:
        from deblur_cli.methods.network import NetworkRunner

        if options.method != "network":
            raise OptionError("method", f"a model is a network: it needs the network method, not {options.method!r}")
        return NetworkRunner(options, model)
    return get(options.method).create(options)


__all__ = [
    "DEFAULT_METHOD", "InferenceOptions", "Method", "OptionError", "Runner", "create", "get", "help_text",
    "names", "register",
]

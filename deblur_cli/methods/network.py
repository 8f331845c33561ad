"""The ``network`` method: the trained network of the registered architecture the weights
name, run by :class:`deblur_cli.network.engine.Engine` (tiles sized to memory, blended seams,
precision, out-of-memory retry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deblur_cli.methods.registry import Method, register
from deblur_cli.progress import Progress

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported when a runner is built
    from torch import nn

    from deblur_cli.methods.registry import InferenceOptions
    from deblur_cli.weights import LoadedWeights


class NetworkRunner:
    """A loaded network on its device; ``run`` as the method contract says."""

    def __init__(self, options: InferenceOptions, model: nn.Module | None = None) -> None:
        """Load ``options.weights`` (or use ``model``, an already built network).

        The device and precision are settled before the (slower) weights load, so that a
        missing GPU or fp16 on a CPU fails first.
        """
        from deblur_cli.network import engine

        engine.set_threads(options.threads)
        engine.resolve_precision(options.precision, engine.resolve_device(options.device))
        self.weights_info: LoadedWeights | None = None
        if model is None:
            from deblur_cli.weights import load_model

            model, self.weights_info = load_model(options.weights)
        self.engine = engine.Engine(model, options)
        self.device = self.engine.device
        self.precision = self.engine.precision

    def run(self, rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        return self.engine.run(rgb, progress=progress)


METHOD = register(
    Method(
        name="network",
        help="the trained attention network (--weights)",
        create=NetworkRunner,
        needs_weights=True,
    )
)

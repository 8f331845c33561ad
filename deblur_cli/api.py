"""The Python API: deblur PIL images and numpy arrays from your own code.

    from deblur_cli import Deblurrer
    deblurrer = Deblurrer()                 # bundled weights, device and precision chosen for you
    sharp = deblurrer(Image.open("a.jpg"))  # a PIL image in, a PIL image out
    sharp_array = deblurrer(array)          # uint8 / uint16 / float H x W (x 3 or 4) in, same out

This is a thin layer over the method registry (:mod:`deblur_cli.methods`): the options are
one :class:`~deblur_cli.methods.InferenceOptions` value, checked when it is built; the
method it names (the trained ``network`` by default) builds the runner, exactly as
``deblur photo.jpg`` does; the CLI, ``deblur video`` and ``deblur serve`` use this class too.
Only the conversion between your image and the runner's float32 ``H x W x 3`` in
``[0, 1]`` happens here. torch is imported when a :class:`Deblurrer` is built, not
when this module is imported.

Thread safety: one :class:`Deblurrer` may be shared by several threads. Calls are
serialised by a lock (one image at a time), because one pass already uses every core
(CPU) or most of the memory (GPU); run separate processes for parallel work.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from deblur_cli.methods import InferenceOptions

if TYPE_CHECKING:  # pragma: no cover - typing only; keeps torch and PIL out of import time
    from PIL import Image
    from torch import nn

    from deblur_cli.methods import Runner
    from deblur_cli.weights import LoadedWeights, LocatedWeights

ImageT = TypeVar("ImageT", "np.ndarray", "Image.Image")
ProgressFn = Callable[[int, int], None]

#: The name this value had before the command line, serve and the engine shared it.
DeblurOptions = InferenceOptions


class Deblurrer:
    """Loads a method (the trained network by default) once and deblurs any number of images.

    Accepts and returns the same kind of image (see :meth:`deblur`). Building one loads
    the weights and moves the network to the device, which takes about a second; keep
    it and reuse it. Safe to share between threads (calls run one at a time).
    """

    def __init__(
        self,
        weights: str | LocatedWeights | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_overlap: int | None = None,
        threads: int | None = None,
        method: str = "network",
        model: nn.Module | None = None,
    ) -> None:
        """Build the runner of ``method`` (``deblur_cli.methods.names()``): for ``network``,
        load ``weights`` (or use ``model``, an already built network). The arguments are the
        fields of :class:`~deblur_cli.methods.InferenceOptions`; :meth:`from_options` takes
        that value whole.

        Raises :class:`~deblur_cli.errors.WeightsError` for missing or bad weights,
        :class:`~deblur_cli.errors.UsageError` for a bad option and
        :class:`~deblur_cli.errors.ResourceError` when the device is not available.
        """
        options = InferenceOptions(weights, device, precision, tile, tile_overlap, threads, method)
        self._start(options, model)

    @classmethod
    def from_options(cls, options: InferenceOptions, model: nn.Module | None = None) -> Deblurrer:
        """A Deblurrer for an options value built elsewhere (the command line, serve)."""
        deblurrer = cls.__new__(cls)
        deblurrer._start(options, model)
        return deblurrer

    def _start(self, options: InferenceOptions, model: nn.Module | None) -> None:
        from deblur_cli.methods import create

        self.options = options
        self.runner: Runner = create(options, model)
        self._lock = threading.Lock()

    # ---- what the method chose -----------------------------------------------------------

    @property
    def device(self) -> Any:
        """Where the method runs (for the network: the torch device)."""
        return self.runner.device

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``: the resolved precision."""
        return self.runner.precision

    @property
    def weights_info(self) -> LoadedWeights | None:
        """The weights loaded (None for a method without weights, or a ``model`` given)."""
        return self.runner.weights_info

    # ---- running -------------------------------------------------------------------------

    def run(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        """Deblur a float32 ``H x W x 3`` RGB array in ``[0, 1]``; returns the same layout.

        This is the pipeline's deblurring step (``deblur image``, ``batch``, ``video``, serve).
        ``progress(done, total)`` is called from the calling thread.
        """
        with self._lock:
            return self.runner.run(rgb, progress=progress)

    def deblur(self, image: ImageT, progress: ProgressFn | None = None) -> ImageT:
        """Deblur a PIL image or a numpy array and return the same type, shape and depth.

        numpy: ``H x W`` (grey), ``H x W x 1``, ``H x W x 2`` (grey + alpha), ``H x W x 3``
        (RGB) or ``H x W x 4`` (RGBA); dtype ``uint8`` (0..255), ``uint16`` (0..65535) or
        float (``float16``/``float32``/``float64`` in ``[0, 1]``), either byte order (the result
        has the input's dtype). PIL: decoded by the same rules as a
        file of that mode (:mod:`deblur_cli.files.memory`); L, LA, RGB, RGBA, I;16 (I;16B
        too), I (0..65535) and F ([0, 1]) come back in the same mode, the others as what
        they decode to (1 as L, La as LA, P, CMYK, YCbCr as RGB or RGBA). Samples outside
        their range (floats outside 0..1, NaN, infinity) are a UsageError, never clipped;
        only float rounding (within 1e-6 of 0..1) is accepted, and clipped.
        Alpha passes through untouched; grey stays grey (the network sees three equal
        channels, the output is their mean). EXIF orientation is not applied (use
        ``PIL.ImageOps.exif_transpose`` first).
        """
        pil = _pil_module()
        if pil is not None and isinstance(image, pil.Image):
            from deblur_cli.files.memory import from_pil, to_pil

            samples, mode = from_pil(image)
            return to_pil(self._deblur_samples(samples, progress), mode)
        if isinstance(image, np.ndarray):
            return self._deblur_samples(image, progress)
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")

    __call__ = deblur

    def _deblur_samples(self, samples: np.ndarray, progress: ProgressFn | None) -> np.ndarray:
        colour, alpha = split_samples(samples)
        rgb = to_float_rgb(colour)
        sharp = self.run(rgb, progress)
        return join_samples(sharp, alpha, like=samples)


# ---- one call ----------------------------------------------------------------------------

_CACHE_LOCK = threading.Lock()
_CACHED: tuple[InferenceOptions, Deblurrer] | None = None


def deblur(
    image: ImageT,
    weights: str | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    tile_overlap: int | None = None,
    method: str = "network",
    progress: ProgressFn | None = None,
) -> ImageT:
    """Deblur one image in one call: ``sharp = deblur_cli.deblur(image)``.

    Same inputs and outputs as :meth:`Deblurrer.deblur`. The last :class:`Deblurrer`
    built is kept, so repeated calls with the same options load the weights only once.
    """
    global _CACHED
    wanted = InferenceOptions(weights, device, precision, tile, tile_overlap, method=method)
    with _CACHE_LOCK:
        if _CACHED is None or _CACHED[0] != wanted:
            _CACHED = None  # free the old model before loading the new one
            _CACHED = (wanted, Deblurrer.from_options(wanted))
        deblurrer = _CACHED[1]
    return deblurrer.deblur(image, progress)


# ---- conversions (no torch): the one input path of files.memory ---------------------------


def _pil_module() -> Any:
    """PIL.Image if it has been imported (a PIL image can only exist if it has)."""
    return sys.modules.get("PIL.Image")


def split_samples(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """See :func:`deblur_cli.files.memory.split_samples` (floats outside 0..1 are refused)."""
    from deblur_cli.files.memory import split_samples as split

    return split(samples)


def to_float_rgb(colour: np.ndarray) -> np.ndarray:
    """See :func:`deblur_cli.files.memory.to_float_rgb`."""
    from deblur_cli.files.memory import to_float_rgb as convert

    return convert(colour)


def join_samples(sharp: np.ndarray, alpha: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """See :func:`deblur_cli.files.memory.join_samples`."""
    from deblur_cli.files.memory import join_samples as join

    return join(sharp, alpha, like)

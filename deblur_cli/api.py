"""The Python API: deblur PIL images and numpy arrays from your own code.

    from deblur_cli import Deblurrer
    deblurrer = Deblurrer()                 # bundled weights, device and precision chosen for you
    sharp = deblurrer(Image.open("a.jpg"))  # a PIL image in, a PIL image out
    sharp_array = deblurrer(array)          # uint8 / uint16 / float H x W (x 3 or 4) in, same out

This is a thin layer over the engine: weights are loaded by :mod:`deblur_cli.weights`,
images run through :class:`deblur_cli.network.engine.Deblurrer` (tiling, padding, precision,
out-of-memory retry), exactly as ``deblur photo.jpg`` does; the CLI uses this class too.
Only the conversion between your image and the engine's float32 ``H x W x 3`` in
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np


if TYPE_CHECKING:  # pragma: no cover - typing only; keeps torch and PIL out of import time
    from PIL import Image

    from deblur_cli.network.engine import Deblurrer as EngineDeblurrer
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.weights import LoadedWeights, LocatedWeights

ImageT = TypeVar("ImageT", "np.ndarray", "Image.Image")
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DeblurOptions:
    """How to run the network; the same choices as the CLI's options.

    ``weights``: registered name, ``.safetensors``/``.pth`` path or http(s) URL (None: the
    default registered weights), or weights already located by ``deblur_cli.weights.resolve``. ``device``: ``auto|cpu|cuda|cuda:N``. ``precision``:
    ``auto|fp32|bf16|fp16``. ``tile``: tile side in pixels (None: chosen from free memory).
    ``tile_overlap``: pixels shared by neighbouring tiles (None: the engine's 64).
    ``threads``: torch CPU threads (None: leave torch's setting; note it is process-wide).
    """

    weights: str | LocatedWeights | None = None
    device: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    tile_overlap: int | None = None
    threads: int | None = None


class Deblurrer:
    """Loads weights once and deblurs any number of images with them.

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
        model: AttentiveDeblurNet | None = None,
    ) -> None:
        """Load ``weights`` (or use ``model``, an already built network) for inference.

        Raises :class:`~deblur_cli.errors.WeightsError` for missing or bad weights,
        :class:`~deblur_cli.errors.UsageError` for a bad option and
        :class:`~deblur_cli.errors.ResourceError` when the device is not available.
        """
        from deblur_cli.network import engine

        from deblur_cli.network.limits import check_threads, check_tile

        self.options = DeblurOptions(weights, device, precision, tile, tile_overlap, threads)
        check_threads(threads)  # the limits the command line's options check too
        check_tile(tile, tile_overlap)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        # Options are checked before the (slower) weights load.
        extra = {} if tile_overlap is None else {"tile_overlap": tile_overlap}
        inference = engine.InferenceOptions(device=device, precision=precision, tile=tile, **extra)
        engine.resolve_precision(inference.precision, engine.resolve_device(inference.device))  # fp16 on CPU, no CUDA
        self.weights_info: LoadedWeights | None = None
        if model is None:
            from deblur_cli.weights import load_model

            model, self.weights_info = load_model(weights)
        self.engine: EngineDeblurrer = engine.Deblurrer(model, inference)
        self._lock = threading.Lock()

    # ---- what the engine chose ---------------------------------------------------------

    @property
    def device(self) -> Any:
        """The torch device the network runs on."""
        return self.engine.device

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``: the resolved precision."""
        return self.engine.precision

    # ---- running -------------------------------------------------------------------------

    def run(self, rgb: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
        """Deblur a float32 ``H x W x 3`` RGB array in ``[0, 1]``; returns the same layout.

        This is the pipeline's model-running step (``deblur image``, ``batch``, ``video``).
        ``progress(done_tiles, total_tiles)`` is called from the calling thread.
        """
        with self._lock:
            return self.engine.run(rgb, progress=progress)

    def deblur(self, image: ImageT, progress: ProgressFn | None = None) -> ImageT:
        """Deblur a PIL image or a numpy array and return the same type, shape and depth.

        numpy: ``H x W`` (grey), ``H x W x 1``, ``H x W x 2`` (grey + alpha), ``H x W x 3``
        (RGB) or ``H x W x 4`` (RGBA); dtype ``uint8`` (0..255), ``uint16`` (0..65535) or
        float (``float32``/``float64`` in ``[0, 1]``). PIL: decoded by the same rules as a
        file of that mode (:mod:`deblur_cli.files.memory`); L, LA, RGB, RGBA, I;16 (I;16B
        too), I (0..65535) and F ([0, 1]) come back in the same mode, the others as what
        they decode to (1 as L, La as LA, P, CMYK, YCbCr as RGB or RGBA). Samples outside
        their range (floats outside 0..1, NaN, infinity) are a UsageError, never clipped.
        Alpha passes through untouched; grey stays grey (the network sees three equal
        channels, the output is their mean). EXIF orientation is not applied (use
        ``PIL.ImageOps.exif_transpose`` first).
        """
        pil = _pil_module()
        if pil is not None and isinstance(image, pil.Image):
            from deblur_cli.files.memory import from_pil, to_pil

            samples, mode = from_pil(image)
            return to_pil(self._deblur_samples(samples, progress), mode)  # type: ignore[return-value]
        if isinstance(image, np.ndarray):
            return self._deblur_samples(image, progress)  # type: ignore[return-value]
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")

    __call__ = deblur

    def _deblur_samples(self, samples: np.ndarray, progress: ProgressFn | None) -> np.ndarray:
        colour, alpha = split_samples(samples)
        rgb = to_float_rgb(colour)
        sharp = self.run(rgb, progress)
        return join_samples(sharp, alpha, like=samples)


# ---- one call ----------------------------------------------------------------------------

_CACHE_LOCK = threading.Lock()
_CACHED: tuple[DeblurOptions, Deblurrer] | None = None


def deblur(
    image: ImageT,
    weights: str | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    tile_overlap: int | None = None,
    progress: ProgressFn | None = None,
) -> ImageT:
    """Deblur one image in one call: ``sharp = deblur_cli.deblur(image)``.

    Same inputs and outputs as :meth:`Deblurrer.deblur`. The last :class:`Deblurrer`
    built is kept, so repeated calls with the same options load the weights only once.
    """
    global _CACHED
    wanted = DeblurOptions(weights, device, precision, tile, tile_overlap)
    with _CACHE_LOCK:
        if _CACHED is None or _CACHED[0] != wanted:
            _CACHED = None  # free the old model before loading the new one
            _CACHED = (wanted, Deblurrer(weights, device=device, precision=precision, tile=tile, tile_overlap=tile_overlap))
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

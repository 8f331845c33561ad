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

from deblur_cli.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover - typing only; keeps torch and PIL out of import time
    from PIL import Image

    from deblur_cli.network.engine import Deblurrer as EngineDeblurrer
    from deblur_cli.network.model import AttentiveDeblurNet
    from deblur_cli.weights import LoadedWeights, LocatedWeights

ImageT = TypeVar("ImageT", "np.ndarray", "Image.Image")
ProgressFn = Callable[[int, int], None]

#: PIL modes returned unchanged in mode; others are converted (see :func:`_from_pil`).
_PIL_KEPT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16", "I", "F"})


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

        self.options = DeblurOptions(weights, device, precision, tile, tile_overlap, threads)
        if threads is not None:
            if threads < 1:
                raise UsageError(f"threads must be at least 1, got {threads}")
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
        float (``float32``/``float64`` in ``[0, 1]``). PIL: modes L, LA, RGB, RGBA, I;16, I
        (0..65535) and F ([0, 1]) come back in the same mode; 1, P, PA, CMYK, YCbCr, ... are
        converted and come back as RGB or RGBA. Alpha passes through untouched; grey
        stays grey (the network sees it as three equal channels, the output is their mean).
        EXIF orientation is not applied (use ``PIL.ImageOps.exif_transpose`` first).
        """
        pil = _pil_module()
        if pil is not None and isinstance(image, pil.Image):
            samples, mode = _from_pil(image)
            return _to_pil(self._deblur_samples(samples, progress), mode)  # type: ignore[return-value]
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


# ---- conversions (no torch) ---------------------------------------------------------------


def _pil_module() -> Any:
    """PIL.Image if it has been imported (a PIL image can only exist if it has)."""
    return sys.modules.get("PIL.Image")


def split_samples(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour H x W x (1|3), alpha H x W or None)`` from an array of a supported layout.

    Raises UsageError for another dtype, shape or an empty array.
    """
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(samples).__name__}")
    if samples.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise UsageError(f"unsupported array dtype {samples.dtype}; use uint8, uint16, float32 or float64")
    if samples.ndim == 2:
        samples = samples[..., None]
    if samples.ndim != 3 or samples.shape[2] not in (1, 2, 3, 4) or samples.shape[0] < 1 or samples.shape[1] < 1:
        raise UsageError(
            f"unsupported image shape {samples.shape}; use H x W, or H x W x C with C = 1, 2, 3 or 4"
        )
    channels = samples.shape[2]
    if channels in (2, 4):
        return samples[..., : channels - 1], samples[..., channels - 1]
    return samples, None


def to_float_rgb(colour: np.ndarray) -> np.ndarray:
    """``H x W x (1|3)`` samples -> contiguous float32 ``H x W x 3`` in [0, 1] (grey replicated).

    Integers go through image_io's rule (the one used for files); floats are taken to be in
    [0, 1] and clipped to it, NaN becoming 0.
    """
    from deblur_cli.files.image_io import _to_float_rgb  # the one integer -> float rule

    if colour.dtype.kind == "f":
        colour = np.clip(np.nan_to_num(colour.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.ascontiguousarray(_to_float_rgb(colour))


def join_samples(sharp: np.ndarray, alpha: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """The engine's float32 ``H x W x 3`` back in ``like``'s dtype and layout, alpha re-attached."""
    grey = like.ndim == 2 or like.shape[2] in (1, 2)
    colour = sharp.mean(axis=2, keepdims=True) if grey else sharp
    if like.dtype in (np.uint8, np.uint16):
        from deblur_cli.files.image_io import quantize  # the one float -> integer rule

        colour = quantize(colour, like.dtype.type)
    else:
        colour = np.clip(colour, 0.0, 1.0).astype(like.dtype)
    if alpha is not None:
        colour = np.concatenate([colour, alpha[..., None]], axis=2)
    if like.ndim == 2:
        colour = colour[..., 0]
    return np.ascontiguousarray(colour)


def _from_pil(image: Image.Image) -> tuple[np.ndarray, str]:
    """Samples of a PIL image and the mode to return it in."""
    mode = image.mode
    if mode not in _PIL_KEPT_MODES:
        has_alpha = "A" in mode or "transparency" in image.info
        mode = "RGBA" if has_alpha else "RGB"
        image = image.convert(mode)
    samples = np.asarray(image)
    if mode == "I":  # 32-bit integer grey; Pillow opens 16-bit PNGs this way
        samples = np.clip(samples, 0, 65535).astype(np.uint16)
    elif mode == "F":
        samples = samples.astype(np.float32)
    elif samples.dtype not in (np.uint8, np.uint16):  # I;16 variants as big/little-endian views
        samples = samples.astype(np.uint16)
    return samples, mode


def _to_pil(samples: np.ndarray, mode: str) -> Image.Image:
    """A PIL image of ``mode`` from samples made by :func:`join_samples`."""
    from PIL import Image

    if mode == "I":
        samples = samples.astype(np.int32)  # 2-D int32 -> mode I
    return Image.fromarray(samples)  # the dtype and layout pick L, LA, RGB, RGBA, I;16 or F

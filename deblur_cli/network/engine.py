"""Inference: device and precision choice, padding, tiled passes with blended seams, OOM retry.

``Engine(model, options).run(rgb)`` takes a float32 ``H x W x 3`` image in
[0, 1] and returns the deblurred image of the same shape. Images larger than
the tile chosen for the device's memory are cut into overlapping tiles whose
outputs are blended (see :mod:`deblur_cli.network.tiling`). Tiles start on the model's
size multiple, so strided layers sample the same grid as on the whole image
and tiled output differs from whole-image output only through the context a
tile lacks near its edges and through channel attention's per-tile pooling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from torch import nn

from deblur_cli.errors import ResourceError, UsageError
from deblur_cli.network import architectures, limits
from deblur_cli.network.tiling import (
    Stitcher,
    Tile,
    fit_tile,
    padded_size,
    plan_tiles,
    reflect_indices,
    tile_window,
)
from deblur_cli.progress import Progress

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_OVERLAP = limits.DEFAULT_OVERLAP
#: Fraction of the overlap the blending ramp spans (centred; see tiling.blend_window).
BLEND_RAMP = 0.5
#: OOM retries halve the tile down to this side; below it the run fails with ResourceError.
#: The floor of ``--tile`` and of the API's ``tile`` too (:mod:`deblur_cli.network.limits`).
MIN_TILE = limits.MIN_TILE
#: Peak activation memory a CPU pass may use (the image arrays come on top), and at most
#: this fraction of the memory the kernel reports available.
CPU_BUDGET_BYTES = 1_500_000_000
CPU_AVAILABLE_FRACTION = 0.5
#: Fraction of the free CUDA memory a pass may use (cuDNN workspaces come on top).
CUDA_FREE_FRACTION = 0.6
#: Largest pass in pixels (4096^2): keeps every feature map well under 2^31 elements.
MAX_PASS_PIXELS = 4096 * 4096
#: Fixed overhead of a pass (oneDNN / cuDNN scratch), bytes.
_PASS_OVERHEAD_BYTES = 150_000_000


class EngineOptions(Protocol):
    """The fields of the one inference-options value (:class:`deblur_cli.methods.InferenceOptions`)
    that the engine reads, already checked where that value was built. ``tile`` None: chosen
    from the free memory; ``tile_overlap`` None: :data:`DEFAULT_OVERLAP`."""

    @property
    def device(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def tile(self) -> int | None: ...
    @property
    def tile_overlap(self) -> int | None: ...


class _Defaults:
    device, precision, tile, tile_overlap = "auto", "auto", None, None


def set_threads(threads: int | None) -> None:
    """The one place torch's CPU thread count is set (process-wide); None leaves it."""
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N`` into a usable device, or raise a clear error.

    The one device rule of the package (inference, attention maps and training): an unknown
    name is a UsageError (exit 2); CUDA asked for but missing is a ResourceError (exit 6).
    ``local_rank`` (a torchrun process's GPU) turns ``auto``/``cuda`` into ``cuda:<rank>``.
    """
    key = limits.check_device(name)
    if key == "auto":
        key = "cuda" if torch.cuda.is_available() else "cpu"
    if key == "cuda" and local_rank is not None and torch.cuda.is_available():
        key = f"cuda:{local_rank}"
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        index = key[5:]
        if not torch.cuda.is_available():
            raise ResourceError(
                f"{name} requested but CUDA is not available on this machine or PyTorch build;"
                " use --device cpu"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ResourceError(
                f"{name} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return torch.device(key)


@contextlib.contextmanager
def out_of_memory_as_error(what: str, hint: str) -> Iterator[None]:
    """Turn an out-of-memory failure inside the block into a one-line ResourceError.

    The one place that recognises out-of-memory from torch: CUDA's own error, and the CPU
    allocator's RuntimeError ("... alloc ..."). ``what`` says what ran, ``hint`` what to do.
    """
    try:
        yield
    except torch.OutOfMemoryError:
        raise ResourceError(f"out of GPU memory {what}; {hint}") from None
    except RuntimeError as e:
        if "alloc" not in str(e).lower():
            raise
        raise ResourceError(f"out of memory {what}; {hint}") from None


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """Pick ``fp32|bf16|fp16`` for ``device``; ``auto`` is fp16 on CUDA, bf16 on bf16 CPUs."""
    name = limits.check_precision(name)
    if device.type == "cuda":
        if name == "auto":
            return "fp16"
        if name == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("bf16 is not supported by this GPU; use fp16 or fp32")
        return name
    if name == "fp16":
        raise UsageError("fp16 needs CUDA; use bf16 or fp32 on CPU")
    if name == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return name


def _mem_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, or None where there is no such file."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _round_to_multiple(n: int, multiple: int) -> int:
    return max(multiple, int(round(n / multiple)) * multiple)


class Engine:
    """Runs a registered architecture's network on images of any size.

    The model is put in eval mode and moved to the resolved device (in place); its
    architecture (:mod:`deblur_cli.network.architectures`) says how much memory a pass takes.
    """

    def __init__(self, model: nn.Module, options: EngineOptions | None = None) -> None:
        options = options if options is not None else _Defaults()
        self.device = resolve_device(options.device)
        self.precision = resolve_precision(options.precision, self.device)
        self.tile = options.tile
        self.tile_overlap = DEFAULT_OVERLAP if options.tile_overlap is None else options.tile_overlap
        self.config = architectures.config_of(model)
        self.bytes_per_pixel = architectures.of(self.config).bytes_per_pixel(self.config, self.precision)
        self.multiple = self.config.size_multiple
        # channels_last makes oneDNN / cuDNN convolutions faster (measured in bench/speed.py),
        # and an HxWx3 numpy tile is already laid out that way.
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it

    # ---- memory ---------------------------------------------------------------------------

    def _memory_budget(self) -> int:
        """Bytes one forward pass may use on this device."""
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            return int(free * CUDA_FREE_FRACTION)
        available = _mem_available()
        if available is None:
            return CPU_BUDGET_BYTES
        return min(CPU_BUDGET_BYTES, int(available * CPU_AVAILABLE_FRACTION))

    def tile_size_for(self, height: int, width: int) -> int | None:
        """Tile side for a ``height x width`` image, or None to run it whole in one pass."""
        m = self.multiple
        hp, wp = padded_size(height, m), padded_size(width, m)
        if self.tile is not None:
            tile = _round_to_multiple(self.tile, m)
        else:
            budget = self._memory_budget() - _PASS_OVERHEAD_BYTES
            max_px = min(MAX_PASS_PIXELS, max(0.0, budget) / self.bytes_per_pixel)
            if hp * wp <= max_px:
                return None
            tile = max(padded_size(MIN_TILE, m), int(max_px**0.5) // m * m)
        if tile >= hp and tile >= wp:
            return None
        return tile

    # ---- running --------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One network pass on a padded ``1 x 3 x h x w`` batch; returns the finest output."""
        with self._autocast():
            return self.model(x)[-1]

    def _tile_input(self, rgb: np.ndarray, t: Tile) -> torch.Tensor:
        """The tile's pixels, reflect-padded past the image's bottom/right edges, as NCHW."""
        h, w = rgb.shape[:2]
        if t.y1 <= h and t.x1 <= w:
            patch = rgb[t.y0 : t.y1, t.x0 : t.x1]
        else:
            patch = rgb[np.ix_(reflect_indices(h, t.y1, t.y0), reflect_indices(w, t.x1, t.x0))]
        # HxWx3 permuted to 1x3xHxW is already channels_last; no copy on CPU.
        x = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).unsqueeze(0)
        return x.to(self.device, non_blocking=True)

    def _run_tiled(
        self,
        rgb: np.ndarray,
        tile: int | None,
        progress: Progress | None,
    ) -> np.ndarray:
        h, w = rgb.shape[:2]
        m = self.multiple
        hp, wp = padded_size(h, m), padded_size(w, m)
        if tile is None:
            tiles, overlap = [Tile(0, 0, hp, wp)], 0
        else:
            # Neighbours need a stride of at least one multiple; OOM retries may shrink the
            # tile below twice the requested overlap.
            overlap = min(self.tile_overlap, tile // 2, tile - m)
            sides = (fit_tile(hp, tile, overlap, m), fit_tile(wp, tile, overlap, m))
            tiles = plan_tiles(hp, wp, sides, overlap, align=m)
        stitch = Stitcher(h, w)
        if progress is not None:
            progress(0, len(tiles))
        for i, t in enumerate(tiles):
            out = self._forward(self._tile_input(rgb, t))
            inside = Tile(t.y0, t.x0, min(t.y1, h), min(t.x1, w))
            values = out[0, :, : inside.height, : inside.width].float().cpu()
            stitch.add(inside, values, tile_window(inside, h, w, overlap, BLEND_RAMP))
            if progress is not None:
                progress(i + 1, len(tiles))
        return stitch.result()

    def run(
        self, rgb: np.ndarray, progress: Progress | None = None
    ) -> np.ndarray:
        """Deblur a float32 ``H x W x 3`` image in [0, 1]; returns float32 ``H x W x 3`` in [0, 1].

        ``progress(done_tiles, total_tiles)`` is called before the first tile and after
        each one (again from 0 if an out-of-memory retry changes the tiling).
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError(f"expected an H x W x 3 image, got shape {rgb.shape}")
        rgb = np.asarray(rgb, dtype=np.float32)
        h, w = rgb.shape[:2]
        tile = self.tile_size_for(h, w)
        with torch.inference_mode(), self._cuda_flags():
            while True:
                try:
                    return self._run_tiled(rgb, tile, progress)
                except torch.OutOfMemoryError:
                    pass  # retry outside the handler, so the failed pass's tensors are freed
                tile = self._smaller_tile(tile, h, w)

    def _smaller_tile(self, tile: int | None, height: int, width: int) -> int:
        """Half the tile after an out-of-memory error, or ResourceError below MIN_TILE."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        m = self.multiple
        current = tile if tile is not None else max(padded_size(height, m), padded_size(width, m))
        floor = padded_size(MIN_TILE, m)
        if current <= floor:
            hint = "use --device cpu" if self.device.type == "cuda" else "free some memory"
            raise ResourceError(
                f"out of memory on {self.device} even with {current}px tiles;"
                f" close other programs or {hint}"
            )
        return max(floor, current // 2 // m * m)

    @contextlib.contextmanager
    def _cuda_flags(self) -> Iterator[None]:
        # Tiles share one shape, so cuDNN's autotuner pays off; scoped, not global.
        if self.device.type != "cuda":
            yield
            return
        cudnn = torch.backends.cudnn
        before = cudnn.benchmark
        cudnn.benchmark = True
        try:
            yield
        finally:
            cudnn.benchmark = before


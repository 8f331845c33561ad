"""The rules of the network's run options (device names, precisions, tile and thread limits),
applied once, where the one inference-options value is built
(:class:`deblur_cli.methods.InferenceOptions`), and by the device rule of the engine.

No torch here, so that options are checked before torch is imported.
"""

from __future__ import annotations

import os

from deblur_cli.errors import UsageError

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
#: Default overlap between neighbouring tiles, in pixels. With random weights the network's
#: output near a tile edge needs ~30 px of context to match the whole-image output to
#: 50 dB; 64 px overlap with a ramp over its central half keeps the seam pixels >= 30 px
#: from their tile's edge (default config, 128px tiles: 63-72 dB tiled vs whole; with
#: 32 px overlap and a full-width ramp: 48-54 dB).
DEFAULT_OVERLAP = 64

#: Smallest tile side: out-of-memory retries stop here, and below it a photo takes tens of
#: thousands of passes (12 MP with the default overlap: 47,000 at 16 or 32 px, 11,500 at 64).
MIN_TILE = 64


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None) -> None:
    """UsageError unless ``threads`` is None or 1 .. the cores available: more threads than
    cores only take turns (1000 threads on 2 cores ran 1.5x slower)."""
    if threads is None:
        return
    cores = available_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise UsageError(f"threads must be a whole number from 1 to {cores} (the CPU cores available), got {threads!r}")


def check_tile(tile: int | None, tile_overlap: int | None = None) -> None:
    """UsageError unless ``tile`` is None or at least :data:`MIN_TILE` pixels and
    ``tile_overlap`` None or 0 or more."""
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE):
        raise UsageError(f"the tile side must be at least {MIN_TILE} px, got {tile!r}")
    if tile_overlap is not None and (isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int) or tile_overlap < 0):
        raise UsageError(f"the tile overlap must be 0 or more px, got {tile_overlap!r}")


def check_precision(name: str) -> str:
    """``name`` in lower case without spaces; UsageError unless it is one of :data:`PRECISIONS`."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    return key


def check_device(name: str) -> str:
    """``name`` in lower case without spaces; UsageError unless it reads auto, cpu, cuda or
    cuda:N (whether that device exists is the engine's question)."""
    key = name.strip().lower() if isinstance(name, str) else ""
    index = key[5:] if key.startswith("cuda:") else ""
    if key not in ("auto", "cpu", "cuda") and not (index and index.isdigit()):
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return key

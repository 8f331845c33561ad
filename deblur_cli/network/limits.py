"""The limits of the inference options, checked the same way at both doors: the command
line (option callbacks, before any weights load) and the Python API (:class:`deblur_cli.Deblurrer`).

No torch here, so that the command line can check options before importing it.
"""

from __future__ import annotations

import os

from deblur_cli.errors import UsageError

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

"""The one progress-callback type every library function takes (library code never prints)."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total)``: ``done`` units of ``total`` finished (tiles, files, pairs, bytes).
#: ``total`` may be 0 when it is not known yet (e.g. a download without Content-Length).
Progress = Callable[[int, int], None]

__all__ = ["Progress"]

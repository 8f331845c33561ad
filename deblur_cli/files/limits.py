"""Limits on what is read, importable without numpy or Pillow (the command line's help shows them)."""

from __future__ import annotations

#: Images with more pixels than this are refused after reading their header (decompression bombs).
DEFAULT_MAX_PIXELS: int = 200_000_000
#: Environment variable overriding it (0: no limit); ``--max-pixels`` overrides both.
MAX_PIXELS_ENV = "DEBLUR_MAX_PIXELS"

"""Limits on what is read, importable without numpy or Pillow (the command line's help shows them)."""

from __future__ import annotations

#: Images with more pixels than this are refused after reading their header (decompression bombs).
DEFAULT_MAX_PIXELS: int = 200_000_000
#: ``deblur serve``'s default: an upload comes from elsewhere and a 12 KB PNG can declare
#: 10000 x 10000 (2.5 GB to decode); 50 MP is more than phones and most cameras write.
SERVE_MAX_PIXELS: int = 50_000_000
#: Environment variable overriding it (0: no limit); ``--max-pixels`` overrides both.
MAX_PIXELS_ENV = "DEBLUR_MAX_PIXELS"

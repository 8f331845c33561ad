"""Tests; the folders mirror the package (tests/files/ tests deblur_cli/files/, ...)."""

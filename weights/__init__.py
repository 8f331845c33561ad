"""Bundled weights files and their registry (a data package, installed inside deblur_cli)."""

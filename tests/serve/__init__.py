"""Tests of deblur_cli/serve/ (`deblur serve`: the page and the HTTP API)."""

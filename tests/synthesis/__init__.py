"""Tests of deblur_cli/synthesis/."""

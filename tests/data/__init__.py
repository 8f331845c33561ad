"""Tests of deblur_cli/data/."""

"""Tests of deblur_cli/weights/."""

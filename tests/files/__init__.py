"""Tests of deblur_cli/files/."""

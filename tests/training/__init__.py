"""Tests of deblur_cli/training/."""

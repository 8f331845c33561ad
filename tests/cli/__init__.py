"""Tests of deblur_cli/cli/."""

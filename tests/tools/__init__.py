"""Tests of deblur_cli/tools/."""

"""Tests of deblur_cli/quality/."""

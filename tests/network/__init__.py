"""Tests of deblur_cli/network/."""

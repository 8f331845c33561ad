"""Shared fixtures: tiny model configs keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import pytest
import torch

from deblur_cli.model import ModelConfig

TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def tiny_config() -> ModelConfig:
    return TINY

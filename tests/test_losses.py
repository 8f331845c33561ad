from __future__ import annotations

import torch

from deblur_cli.losses import gradient_loss, multiscale_loss


def test_loss_is_zero_for_identical_images():
    sharp = torch.rand(2, 3, 32, 32)
    outs = [torch.nn.functional.interpolate(sharp, size=(s, s), mode="bilinear", align_corners=False) for s in (8, 16)]
    assert multiscale_loss([*outs, sharp.clone()], sharp).item() == 0.0


def test_loss_positive_and_gradient_term_weighted():
    sharp = torch.rand(1, 3, 16, 16)
    pred = sharp + 0.1 * torch.randn_like(sharp)
    base = multiscale_loss([pred], sharp, grad_weight=0.0)
    full = multiscale_loss([pred], sharp, grad_weight=2.5)
    assert base > 0
    assert torch.isclose(full - base, 2.5 * gradient_loss(pred, sharp))


def test_gradient_loss_ignores_constant_offset():
    x = torch.rand(1, 3, 16, 16)
    assert gradient_loss(x + 0.3, x).item() < 1e-10

from __future__ import annotations

import torch

from deblur_cli.training.losses import gradient_loss, multiscale_loss


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


def test_charbonnier_fft_and_psnr_losses():
    from deblur_cli.training.losses import charbonnier_fft_loss, fft_l1, psnr_loss, training_loss

    sharp = torch.rand(2, 3, 16, 16)
    assert fft_l1(sharp, sharp).item() == 0.0
    same = charbonnier_fft_loss([sharp.clone()], sharp, eps=1e-3).item()
    assert abs(same - 1e-3) < 1e-6  # sqrt(0 + eps^2)
    noisy = sharp + 0.05 * torch.randn_like(sharp)
    assert charbonnier_fft_loss([noisy], sharp).item() > same
    assert fft_l1(noisy, sharp).item() > 0
    assert abs(psnr_loss([noisy], sharp).item() + 26.0) < 1.0  # PSNR of sigma 0.05 noise is ~26 dB
    class C:
        fft_weight, charbonnier_eps, grad_weight = 0.0, 1e-3, 0.0
    assert torch.isclose(training_loss("mse_grad", [noisy], sharp, C), multiscale_loss([noisy], sharp, 0.0))

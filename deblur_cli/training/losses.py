"""Training losses. Inputs are RGB in [0, 1], ``(N, 3, H, W)``; per-scale outputs coarsest first.

- ``mse_grad`` (the paper): sum over scales of MSE + ``grad_weight`` x gradient MSE at the finest.
- ``charbonnier_fft`` (the CPU recipe): sum over scales of Charbonnier + ``fft_weight`` x L1 of the
  2-D FFT difference at the finest scale. Charbonnier keeps near-clean crops weighing in the loss
  (MSE makes their loss ~170x smaller than a blurred crop's); the FFT term rewards restored detail.
- ``psnr``: sum over scales of -PSNR (dB) per image, so every crop counts as it counts in mean PSNR.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, as used by common rgb-to-grey conversions.
_GREY = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) grey."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _GREY[0] * r + _GREY[1] * g + _GREY[2] * b


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of horizontal and vertical forward differences ([1, -1]) of the grey images, summed."""
    p, t = to_grey(pred), to_grey(target)
    dx = F.mse_loss(p[..., :, 1:] - p[..., :, :-1], t[..., :, 1:] - t[..., :, :-1])
    dy = F.mse_loss(p[..., 1:, :] - p[..., :-1, :], t[..., 1:, :] - t[..., :-1, :])
    return dx + dy


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): a smooth L1, in units of the image range."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def fft_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the real and imaginary parts of the 2-D FFTs (norm='backward')."""
    diff = torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float())
    return diff.real.abs().mean() + diff.imag.abs().mean()


def neg_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Minus the mean per-image PSNR in dB (range 1), with a 1e-8 floor on the MSE."""
    mse = ((pred - target) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(mse + 1e-8)).mean()


def _targets(outputs: list[torch.Tensor], sharp: torch.Tensor):
    """Pairs (output_s, sharp resized bilinearly to scale s), like the network's input pyramid."""
    for out in outputs:
        target = sharp
        if out.shape[-2:] != sharp.shape[-2:]:
            target = F.interpolate(sharp, size=out.shape[-2:], mode="bilinear", align_corners=False)
        yield out.float(), target


def _total(losses: Iterator[torch.Tensor]) -> torch.Tensor:
    """The sum of one loss per scale (there is at least one scale)."""
    return functools.reduce(operator.add, losses)  # as sum() adds them, without its leading 0


def multiscale_loss(outputs: list[torch.Tensor], sharp: torch.Tensor, grad_weight: float = 2.5) -> torch.Tensor:
    """The paper's loss: sum over scales of MSE + ``grad_weight`` x gradient loss (finest)."""
    total = _total(F.mse_loss(o, t) for o, t in _targets(outputs, sharp))
    if grad_weight:
        total = total + grad_weight * gradient_loss(outputs[-1].float(), sharp)
    return total


def charbonnier_fft_loss(
    outputs: list[torch.Tensor], sharp: torch.Tensor, fft_weight: float = 0.05, eps: float = 1e-3
) -> torch.Tensor:
    """Sum over scales of Charbonnier + ``fft_weight`` x FFT L1 at the finest scale."""
    total = _total(charbonnier(o, t, eps) for o, t in _targets(outputs, sharp))
    if fft_weight:
        total = total + fft_weight * fft_l1(outputs[-1], sharp)
    return total


def psnr_loss(outputs: list[torch.Tensor], sharp: torch.Tensor) -> torch.Tensor:
    """Sum over scales of minus the per-image PSNR (dB)."""
    return _total(neg_psnr(o, t) for o, t in _targets(outputs, sharp))


def training_loss(name: str, outputs: list[torch.Tensor], sharp: torch.Tensor, cfg) -> torch.Tensor:
    """The loss ``name`` (``charbonnier_fft | mse_grad | psnr``) with weights from a TrainConfig."""
    if name == "charbonnier_fft":
        return charbonnier_fft_loss(outputs, sharp, cfg.fft_weight, cfg.charbonnier_eps)
    if name == "mse_grad":
        return multiscale_loss(outputs, sharp, cfg.grad_weight)
    if name == "psnr":
        return psnr_loss(outputs, sharp)
    raise ValueError(f"unknown loss {name!r}")

"""Training loss of the paper: multi-scale MSE plus a gradient loss on the finest scale."""

from __future__ import annotations

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


def multiscale_loss(
    outputs: list[torch.Tensor], sharp: torch.Tensor, grad_weight: float = 2.5
) -> torch.Tensor:
    """Sum over scales of MSE(output_s, sharp resized to scale s) + grad_weight x gradient loss (finest).

    ``outputs`` are the network's per-scale predictions, coarsest first.
    Targets are resized bilinearly, like the network's own input pyramid.
    """
    total = sharp.new_zeros(())
    for out in outputs:
        target = sharp
        if out.shape[-2:] != sharp.shape[-2:]:
            target = F.interpolate(sharp, size=out.shape[-2:], mode="bilinear", align_corners=False)
        total = total + F.mse_loss(out.float(), target)
    if grad_weight:
        total = total + grad_weight * gradient_loss(outputs[-1].float(), sharp)
    return total

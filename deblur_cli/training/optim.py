"""Optimisation pieces of the training loop: model construction, optimiser, learning-rate
schedule, EMA of the weights, and the mixed-precision rule."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch

from deblur_cli.network import architectures
from deblur_cli.training.checkpoints import identity_start, load_initial_weights
from deblur_cli.training.config import TrainConfig
from deblur_cli.training.data import seed_all


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the peak lr at a step: linear warm-up, then cosine or poly decay over the horizon."""
    warm, horizon, floor = cfg.warmup_steps, cfg.lr_horizon, cfg.min_lr_ratio

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, horizon - warm))
        decay = 0.5 * (1 + math.cos(math.pi * t)) if cfg.schedule == "cosine" else (1 - t) ** cfg.lr_power
        return floor + (1 - floor) * decay

    return factor


def apply_lr(optimizer: torch.optim.Optimizer, scheduler: Any, cfg: TrainConfig) -> None:
    """After a checkpoint is restored: its schedule state holds the peak lr the run started
    with; use ``cfg``'s, and ``cfg``'s lr at the current step (the very number the schedule
    gives when nothing changed, so an unchanged resume stays exact)."""
    factor = lr_factor(cfg)(scheduler.last_epoch)
    scheduler.base_lrs = [cfg.lr for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * factor


def use_bf16(cfg: TrainConfig, dev: torch.device) -> bool:
    """bf16 autocast on CUDA and on CPUs with native bf16 instructions (else it is slower)."""
    from deblur_cli.network.engine import cpu_has_native_bf16

    return cfg.bf16 and (dev.type == "cuda" or cpu_has_native_bf16())


class EMA:
    """Exponential moving average of a model's weights (what is validated and exported).

    The decay ramps up as min(decay, (1 + n) / (10 + n)) so early averages are not stuck at the start.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"], strict=True)
        self.updates = int(state["updates"])


def build_training(cfg: TrainConfig, dev: torch.device, init: str | None):
    """Model (identity start or ``init`` weights), optimiser, schedule and EMA for a run."""
    seed_all(cfg.seed)
    model = architectures.build(cfg.model)
    if init:
        load_initial_weights(model, init)
    elif cfg.identity_init:
        identity_start(model, required=False)  # a config that cannot start as the identity starts random
    model = model.to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
    params = model.parameters()
    optimizer: torch.optim.Optimizer
    if cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    return model, optimizer, scheduler, ema

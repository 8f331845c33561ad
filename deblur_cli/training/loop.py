"""The training loop: optimiser, schedule, EMA, mixed precision, validation, DDP, time budget."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from deblur_cli.errors import DataError, UsageError
from deblur_cli.files.fsutil import TMP_PREFIX, atomic_path
from deblur_cli.training.losses import training_loss
from deblur_cli.training.checkpoints import checkpoint_paths, load_latest_checkpoint, restore_rng, save_checkpoint
from deblur_cli.training.config import TrainConfig, saved_config
from deblur_cli.training.data import SeededSamples, StepSampler, open_datasets, open_extra_val_sets
from deblur_cli.training.optim import build_training, use_bf16


class EventKind(str, Enum):
    """What a :class:`TrainEvent` reports."""

    START = "start"
    STEP = "step"
    VAL = "val"
    CHECKPOINT = "checkpoint"
    DONE = "done"


@dataclass
class TrainEvent:
    """Progress report for the CLI."""

    kind: EventKind
    step: int
    total: int
    loss: float | None = None
    lr: float | None = None
    steps_per_s: float | None = None
    val_psnr: float | None = None
    val_input_psnr: float | None = None
    path: Path | None = None
    message: str = ""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    last_loss: float | None
    val_psnr: float | None
    stopped_by_budget: bool = False


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@torch.no_grad()
def validate(model: torch.nn.Module, val_ds: Dataset, device: torch.device, limit: int,
             bf16: bool = False) -> tuple[float, float]:
    """Mean PSNR (dB, RGB in [0,1], no border crop) of outputs and of the blurry inputs.

    Images are cropped to the network's size multiple (top-left) so no padding enters the score.
    """
    from deblur_cli.quality.metrics import psnr

    was_training = model.training
    model.eval()
    outs, ins = [], []
    m = model.config.size_multiple
    for i in range(min(limit, len(val_ds))):  # type: ignore[arg-type]
        blur, sharp = val_ds[i]
        h, w = (blur.shape[-2] // m) * m, (blur.shape[-1] // m) * m
        blur, sharp = blur[:, :h, :w], sharp[:, :h, :w]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(blur[None].to(device))[-1]
        outs.append(psnr(pred[0].float().clamp(0, 1).cpu(), sharp))
        ins.append(psnr(blur, sharp))
    model.train(was_training)
    finite = lambda xs: [min(x, 100.0) for x in xs]  # noqa: E731 - identical crops give inf
    return float(np.mean(finite(outs))), float(np.mean(finite(ins)))


def _trim_log(log_path: Path, step: int) -> None:
    """Drop log lines past the resumed step so the loss curve stays continuous."""
    if not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    with atomic_path(log_path, overwrite=True) as tmp:  # the run's own log
        tmp.write_text("".join(k + "\n" for k in kept))


def run_config(run_dir: Path, cfg: TrainConfig, resume: bool) -> TrainConfig:
    """The config a run uses: ``cfg``, or on resume the saved one (its ``steps`` may be extended)."""
    run_dir = Path(run_dir)
    if resume:
        saved = saved_config(run_dir)
        return saved if cfg.steps == saved.steps else TrainConfig.from_dict({**saved.to_dict(), "steps": cfg.steps})
    if checkpoint_paths(run_dir):
        raise UsageError(f"{run_dir} already holds checkpoints; pass --resume to continue or choose a new --output")
    return cfg


def prepare_run_dir(run_dir: Path, cfg: TrainConfig) -> None:
    """Create the run folder, drop files a killed save left, and record the config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / "checkpoints").glob(f"{TMP_PREFIX}*"):  # left by a run killed mid-save
        stale.unlink(missing_ok=True)
    with atomic_path(run_dir / "train_config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2))


@dataclass
class TrainPlan:
    """A checked training run: config (the saved one on resume), device, data; nothing written yet."""

    cfg: TrainConfig
    run_dir: Path
    device: str
    resume: bool
    init: str | None
    train_ds: Dataset
    val_ds: Dataset | None
    extra_val: dict[str, Dataset]


def plan_train(
    cfg: TrainConfig, data: Path, run_dir: Path, *, resume: bool = False, device: str = "auto", init: str | None = None
) -> TrainPlan:
    """Check everything a run needs before anything is written: the config (the saved one on
    ``resume``), the device, the run folder (writable, no checkpoints unless resuming) and the data."""
    from deblur_cli.network.engine import resolve_device
    from deblur_cli.files.paths import check_output_folder

    resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    run_dir = Path(run_dir)
    cfg = run_config(run_dir, cfg, resume)
    check_output_folder(run_dir)
    train_ds, val_ds = open_datasets(data, cfg)
    return TrainPlan(cfg, run_dir, device, resume, init, train_ds, val_ds, open_extra_val_sets(cfg))


def train(cfg: TrainConfig, data: Path, run_dir: Path, *, resume: bool = False, device: str = "auto",
          init: str | None = None, **run_options: Any) -> tuple[TrainResult, torch.nn.Module]:
    """:func:`plan_train`, then :func:`run_train` (``run_options``: progress, stop_after, time_budget)."""
    return run_train(plan_train(cfg, data, run_dir, resume=resume, device=device, init=init), **run_options)


def run_train(
    plan: TrainPlan,
    *,
    progress: Callable[[TrainEvent], None] | None = None,
    stop_after: int | None = None,
    time_budget: float | None = None,
) -> tuple[TrainResult, torch.nn.Module]:
    """Train (or resume) a planned run.

    ``plan.init``: weights (name, file or URL) to start from instead of a fresh network (ignored on
    a resume that finds a checkpoint). ``stop_after``: end after that many steps of this call.
    ``time_budget``: seconds of wall clock after which the run checkpoints and stops cleanly.
    Returns the result and the trained model (the EMA model when EMA is on).
    """
    from deblur_cli.network.engine import resolve_device

    t_start = time.perf_counter()
    notify = progress or (lambda e: None)
    cfg, run_dir, resume, init = plan.cfg, plan.run_dir, plan.resume, plan.init
    train_ds, val_ds = plan.train_ds, plan.val_ds
    dd = _init_distributed(resolve_device(plan.device, int(os.environ.get("LOCAL_RANK", "0"))))
    dev = resolve_device(plan.device, dd.local_rank)
    if dd.main:
        prepare_run_dir(run_dir, cfg)
    if dd.world > 1:
        dist.barrier()
        if not dd.main:
            cfg = saved_config(run_dir)

    found = load_latest_checkpoint(run_dir) if resume else None
    model, optimizer, scheduler, ema = build_training(cfg, dev, None if found else init)
    step, train_seconds, cpu_seconds, ckpt_path = 0, 0.0, 0.0, None
    if found is not None:
        ckpt, ckpt_path = found
        model.load_state_dict(ckpt["model"], strict=True)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None and "ema" in ckpt:
            ema.load_state_dict(ckpt["ema"])
        restore_rng(ckpt["rng"])
        step, train_seconds = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))
        cpu_seconds = float(ckpt.get("cpu_seconds", train_seconds))
        if dd.main:
            _trim_log(run_dir / "log.jsonl", step)
    net: torch.nn.Module = model
    if dd.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels

    loader = DataLoader(
        SeededSamples(train_ds, cfg.seed),
        batch_size=cfg.batch_size,
        sampler=StepSampler(step, cfg.batch_size, dd.rank, dd.world),
        num_workers=cfg.workers,
        persistent_workers=False,
        pin_memory=dev.type == "cuda",
        drop_last=True,
    )
    bf16 = use_bf16(cfg, dev)
    threads = torch.get_num_threads()
    notify(TrainEvent(EventKind.START, step, cfg.steps, path=run_dir,
                      message=f"device {dev}{' bf16' if bf16 else ''}, {threads} threads, {dd.world} process(es)"))
    eval_model = ema.model if ema is not None else model
    last_loss, val_psnr, by_budget = None, None, False
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    log = open(run_dir / "log.jsonl", "a") if dd.main else None
    t_last, s_last, t_seg = time.perf_counter(), step, time.perf_counter()

    def elapsed_total() -> float:
        return train_seconds + time.perf_counter() - t_seg

    def cpu_total() -> float:  # each segment counts its own thread count (runs may resume with others)
        return cpu_seconds + (time.perf_counter() - t_seg) * threads

    def write(entry: dict[str, Any]) -> None:
        if log:
            entry.update(train_seconds=round(elapsed_total(), 1), cpu_hours=round(cpu_total() / 3600, 4), time=time.time())
            log.write(json.dumps(entry) + "\n")
            log.flush()

    def checkpoint() -> Path:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "train_seconds": elapsed_total(), "cpu_seconds": cpu_total()}
        if ema is not None:
            state["ema"] = ema.state_dict()
        return save_checkpoint(run_dir, step, state, cfg)

    def validation(step: int) -> float:
        entry = {"step": step}
        entry["val_psnr"], entry["val_input_psnr"] = validate(eval_model, val_ds, dev, cfg.val_samples, bf16)
        for name, ds in plan.extra_val.items():
            entry[f"{name}_psnr"], entry[f"{name}_input_psnr"] = validate(eval_model, ds, dev, cfg.val_samples, bf16)
        write(entry)
        notify(TrainEvent(EventKind.VAL, step, cfg.steps, val_psnr=entry["val_psnr"], val_input_psnr=entry["val_input_psnr"]))
        return entry["val_psnr"]

    try:
        if dd.main and val_ds is not None and step == 0:
            val_psnr = validation(0)  # where the curve starts: the initial (or --init) weights
        batches = iter(loader)
        model.train()
        while step < end:
            blur, sharp = next(batches)
            blur, sharp = blur.to(dev, non_blocking=True), sharp.to(dev, non_blocking=True)
            if cfg.channels_last:
                blur = blur.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else nullcontext():
                outputs = net(blur)
            loss = training_loss(cfg.loss, outputs, sharp, cfg)
            if not torch.isfinite(loss):
                raise DataError(f"training diverged at step {step + 1} (loss {loss.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            step += 1
            last_loss = float(loss.detach())
            by_budget = time_budget is not None and time.perf_counter() - t_start >= time_budget
            final = step == end or by_budget
            if step % cfg.log_every == 0 or final:
                now = time.perf_counter()
                sps = (step - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, step
                lr = scheduler.get_last_lr()[0]
                write({"step": step, "loss": last_loss, "lr": lr, "steps_per_s": sps})
                notify(TrainEvent(EventKind.STEP, step, cfg.steps, loss=last_loss, lr=lr, steps_per_s=sps))
            if dd.main and val_ds is not None and (step % cfg.val_every == 0 or final):
                val_psnr = validation(step)
            if dd.main and (step % cfg.checkpoint_every == 0 or final):
                ckpt_path = checkpoint()
                notify(TrainEvent(EventKind.CHECKPOINT, step, cfg.steps, path=ckpt_path))
            if by_budget:
                break
    finally:
        if log:
            log.close()
    if dd.world > 1:
        dist.barrier()
    notify(TrainEvent(EventKind.DONE, step, cfg.steps, loss=last_loss, path=ckpt_path,
                      message="time budget reached" if by_budget else ""))
    return TrainResult(run_dir, step, ckpt_path, last_loss, val_psnr, by_budget), eval_model

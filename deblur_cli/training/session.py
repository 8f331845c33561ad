"""A training run in progress: its state, and the named steps :func:`~.loop.run_train`
takes (start, build or resume, the loader, one optimiser step, a report, a validation, a
checkpoint, the end). Also the events it reports and the validation score.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from deblur_cli.errors import DataError
from deblur_cli.files.fsutil import atomic_path
from deblur_cli.network import architectures
from deblur_cli.training.checkpoints import load_latest_checkpoint, restore_rng, save_checkpoint
from deblur_cli.training.config import TrainConfig, saved_config
from deblur_cli.training.data import SeededSamples, StepSampler
from deblur_cli.training.losses import training_loss
from deblur_cli.training.optim import apply_lr, build_training, use_bf16


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
    m = architectures.config_of(model).size_multiple
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
    notes: tuple[str, ...] = ()  # what a resume changes (lr, steps, ...), for the user


class Session:
    """One process's part of a planned run, from :meth:`start` to :meth:`finish`."""

    def __init__(self, plan: TrainPlan, notify: Callable[[TrainEvent], None]) -> None:
        """Join the process group (when launched by torchrun), pick the device, prepare the
        run folder (the first process; the others read its config back)."""
        from deblur_cli.network.engine import resolve_device

        self.plan, self.notify = plan, notify
        self.dd = _init_distributed(resolve_device(plan.device, int(os.environ.get("LOCAL_RANK", "0"))))
        self.dev = resolve_device(plan.device, self.dd.local_rank)
        self.cfg: TrainConfig = plan.cfg
        if self.dd.main:
            prepare_run_dir(plan.run_dir, self.cfg)
        if self.dd.world > 1:
            dist.barrier()
            if not self.dd.main:
                self.cfg = saved_config(plan.run_dir)
        self.step, self.train_seconds, self.cpu_seconds = 0, 0.0, 0.0
        self.checkpoint_path: Path | None = None
        self.last_loss: float | None = None
        self.bf16 = use_bf16(self.cfg, self.dev)
        self.threads = torch.get_num_threads()
        self.log: IO[str] | None = None

    # ---- before the first step ------------------------------------------------------------

    def build_or_resume(self) -> None:
        """Model, optimiser, schedule and EMA: fresh (or from ``plan.init``), or as the newest
        checkpoint left them when resuming."""
        found = load_latest_checkpoint(self.plan.run_dir) if self.plan.resume else None
        self.model, self.optimizer, self.scheduler, self.ema = build_training(
            self.cfg, self.dev, None if found else self.plan.init
        )
        if found is not None:
            self._restore(*found)
        self.net: torch.nn.Module = self.model
        if self.dd.world > 1:
            ids = [self.dev.index] if self.dev.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
        self.eval_model = self.ema.model if self.ema is not None else self.model

    def _restore(self, ckpt: dict[str, Any], path: Path) -> None:
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        apply_lr(self.optimizer, self.scheduler, self.cfg)  # a resume may change the peak lr or the schedule's shape
        if self.ema is not None and "ema" in ckpt:
            self.ema.load_state_dict(ckpt["ema"])
        restore_rng(ckpt["rng"])
        self.step, self.train_seconds = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))
        self.cpu_seconds = float(ckpt.get("cpu_seconds", self.train_seconds))
        self.checkpoint_path = path
        if self.dd.main:
            _trim_log(self.plan.run_dir / "log.jsonl", self.step)

    def batches(self) -> Any:
        """The training batches from the current step on (sample k is the same on any resume)."""
        loader = DataLoader(
            SeededSamples(self.plan.train_ds, self.cfg.seed),
            batch_size=self.cfg.batch_size,
            sampler=StepSampler(self.step, self.cfg.batch_size, self.dd.rank, self.dd.world),
            num_workers=self.cfg.workers,
            persistent_workers=False,
            pin_memory=self.dev.type == "cuda",
            drop_last=True,
        )
        return iter(loader)

    def announce(self) -> None:
        """Open the log and report the start; from here wall-clock and CPU time count."""
        self.log = open(self.plan.run_dir / "log.jsonl", "a") if self.dd.main else None  # noqa: SIM115 - closed by finish
        self.t_seg = self.t_last = time.perf_counter()
        self.s_last = self.step
        message = f"device {self.dev}{' bf16' if self.bf16 else ''}, {self.threads} threads, {self.dd.world} process(es)"
        self.notify(TrainEvent(EventKind.START, self.step, self.cfg.steps, path=self.plan.run_dir, message=message))

    # ---- the steps ------------------------------------------------------------------------

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> None:
        """One optimiser step on a batch; DataError when the loss stops being finite."""
        cfg, dev = self.cfg, self.dev
        blur, sharp = blur.to(dev, non_blocking=True), sharp.to(dev, non_blocking=True)
        if cfg.channels_last:
            blur = blur.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16) if self.bf16 else nullcontext():
            outputs = self.net(blur)
        loss = training_loss(cfg.loss, outputs, sharp, cfg)
        if not torch.isfinite(loss):
            raise DataError(f"training diverged at step {self.step + 1} (loss {loss.item()}); lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.last_loss = float(loss.detach())

    def report_step(self) -> None:
        """Log and report the loss, learning rate and speed since the last report."""
        now = time.perf_counter()
        sps = (self.step - self.s_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.s_last = now, self.step
        lr = self.scheduler.get_last_lr()[0]
        self.write({"step": self.step, "loss": self.last_loss, "lr": lr, "steps_per_s": sps})
        self.notify(TrainEvent(EventKind.STEP, self.step, self.cfg.steps, loss=self.last_loss, lr=lr, steps_per_s=sps))

    @property
    def validates(self) -> bool:
        """This process scores the validation sets (the first one, when there is a set)."""
        return self.dd.main and self.plan.val_ds is not None

    def validation(self) -> float:
        """Score the weights that are exported (EMA when on) on every validation set; log, report."""
        cfg, step = self.cfg, self.step
        entry: dict[str, Any] = {"step": step}
        sets = {"val": self.plan.val_ds, **self.plan.extra_val}
        for name, ds in sets.items():
            assert ds is not None
            entry[f"{name}_psnr"], entry[f"{name}_input_psnr"] = validate(self.eval_model, ds, self.dev, cfg.val_samples, self.bf16)
        self.write(entry)
        self.notify(TrainEvent(EventKind.VAL, step, cfg.steps, val_psnr=entry["val_psnr"], val_input_psnr=entry["val_input_psnr"]))
        return float(entry["val_psnr"])

    def checkpoint(self) -> None:
        """Save everything a resume needs; report it."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "train_seconds": self.elapsed(), "cpu_seconds": self.cpu_time()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        self.checkpoint_path = save_checkpoint(self.plan.run_dir, self.step, state, self.cfg)
        self.notify(TrainEvent(EventKind.CHECKPOINT, self.step, self.cfg.steps, path=self.checkpoint_path))

    # ---- time and the log -----------------------------------------------------------------

    def elapsed(self) -> float:
        """Wall-clock seconds of training, across resumes."""
        return self.train_seconds + time.perf_counter() - self.t_seg

    def cpu_time(self) -> float:
        """CPU seconds of training: each segment counts its own thread count (runs may resume with others)."""
        return self.cpu_seconds + (time.perf_counter() - self.t_seg) * self.threads

    def write(self, entry: dict[str, Any]) -> None:
        if self.log:
            entry.update(train_seconds=round(self.elapsed(), 1), cpu_hours=round(self.cpu_time() / 3600, 4), time=time.time())
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def close(self) -> None:
        if self.log:
            self.log.close()
            self.log = None

    def finish(self, by_budget: bool) -> None:
        """Wait for the other processes; report the end."""
        if self.dd.world > 1:
            dist.barrier()
        self.notify(TrainEvent(EventKind.DONE, self.step, self.cfg.steps, loss=self.last_loss, path=self.checkpoint_path,
                               message="time budget reached" if by_budget else ""))


def prepare_run_dir(run_dir: Path, cfg: TrainConfig) -> None:
    """Create the run folder, drop files a killed save left, and record the config."""
    from deblur_cli.files.fsutil import TMP_PREFIX

    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / "checkpoints").glob(f"{TMP_PREFIX}*"):  # left by a run killed mid-save
        stale.unlink(missing_ok=True)
    with atomic_path(run_dir / "train_config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2))

"""Training runs: the plan (config, device, run folder and data checked before anything is
written) and :func:`run_train`, which takes a :class:`~.session.Session` through its steps."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deblur_cli.errors import UsageError
from deblur_cli.training.checkpoints import checkpoint_paths
from deblur_cli.training.config import TrainConfig, resumed_config, saved_config
from deblur_cli.training.data import open_datasets, open_extra_val_sets
from deblur_cli.training.session import (
    EventKind,
    Session,
    TrainEvent,
    TrainPlan,
    TrainResult,
    prepare_run_dir,
    validate,
)

__all__ = ["EventKind", "TrainEvent", "TrainPlan", "TrainResult", "plan_train", "prepare_run_dir", "run_config",
           "run_train", "train", "validate"]


def run_config(run_dir: Path, cfg: TrainConfig, resume: bool) -> tuple[TrainConfig, tuple[str, ...]]:
    """The config a run uses, and notes on what a resume changes: ``cfg``, which on resume
    must agree with the saved one in everything that defines the run (``resumed_config``)."""
    run_dir = Path(run_dir)
    if resume:
        return resumed_config(saved_config(run_dir), cfg.to_dict(), f"the run in {run_dir}")
    if checkpoint_paths(run_dir):
        raise UsageError(f"{run_dir} already holds checkpoints; pass --resume to continue or choose a new --output")
    return cfg, ()


def plan_train(
    cfg: TrainConfig, data: Path, run_dir: Path, *, resume: bool = False, device: str = "auto", init: str | None = None
) -> TrainPlan:
    """Check everything a run needs before anything is written: the config (the saved one on
    ``resume``), the device, the run folder (writable, no checkpoints unless resuming) and the data."""
    from deblur_cli.files.paths import check_output_folder
    from deblur_cli.network.engine import resolve_device

    resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    run_dir = Path(run_dir)
    cfg, notes = run_config(run_dir, cfg, resume)
    check_output_folder(run_dir)
    train_ds, val_ds = open_datasets(data, cfg)
    if resume and init is not None and checkpoint_paths(run_dir):
        notes += (f"--init {init} is not used: the run continues from its newest checkpoint",)
    elif init is not None:
        from deblur_cli.weights import check_spec

        check_spec(init)  # a typo is said now, not after the run folder is prepared
    return TrainPlan(cfg, run_dir, device, resume, init, train_ds, val_ds, open_extra_val_sets(cfg), notes)


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
    started = time.perf_counter()
    run = Session(plan, progress or (lambda e: None))
    run.build_or_resume()
    batches = run.batches()
    cfg = run.cfg
    end = cfg.steps if stop_after is None else min(cfg.steps, run.step + stop_after)
    val_psnr, by_budget = None, False
    run.announce()
    try:
        if run.validates and run.step == 0:
            val_psnr = run.validation()  # where the curve starts: the initial (or --init) weights
        run.model.train()
        while run.step < end:
            run.train_step(*next(batches))
            by_budget = time_budget is not None and time.perf_counter() - started >= time_budget
            final = run.step == end or by_budget
            if run.step % cfg.log_every == 0 or final:
                run.report_step()
            if run.validates and (run.step % cfg.val_every == 0 or final):
                val_psnr = run.validation()
            if run.dd.main and (run.step % cfg.checkpoint_every == 0 or final):
                run.checkpoint()
            if by_budget:
                break
    finally:
        run.close()
    run.finish(by_budget)
    return TrainResult(plan.run_dir, run.step, run.checkpoint_path, run.last_loss, val_psnr, by_budget), run.eval_model

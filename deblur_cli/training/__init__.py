"""Training: configuration and recipes, deterministic data, losses, checkpoints, the loop.

Holds ``config`` < ``data`` < ``checkpoints`` < ``optim`` < ``session`` (a run in
progress: its state and named steps) < ``loop`` (the plan, ``run_train``), and ``losses``
(the training loss, used by ``session``); datasets come from :mod:`deblur_cli.data`. See
docs/training.md.

Offers the public names, re-exported here: ``build_config``, ``plan_train``, ``run_train``,
``export_weights``, checkpoints, events.

May import: core, files, network, weights, synthesis, quality, data.
"""

from deblur_cli.training.checkpoints import (
    checkpoint_paths,
    checkpoint_step,
    export_weights,
    identity_start,
    load_checkpoint,
    load_initial_weights,
    load_latest_checkpoint,
)
from deblur_cli.training.config import RECIPES, TrainConfig, build_config, model_config_from
from deblur_cli.training.data import SeededSamples, StepSampler, sample_seed, split_holdout
from deblur_cli.training.loop import (
    EventKind,
    TrainEvent,
    TrainPlan,
    TrainResult,
    plan_train,
    run_train,
    train,
    validate,
)
from deblur_cli.training.optim import EMA, lr_factor

__all__ = [
    "EMA", "RECIPES", "EventKind", "SeededSamples", "StepSampler", "TrainConfig", "TrainEvent", "TrainPlan", "TrainResult",
    "build_config", "checkpoint_paths", "checkpoint_step", "export_weights", "identity_start", "load_checkpoint",
    "load_initial_weights", "load_latest_checkpoint", "lr_factor", "model_config_from", "sample_seed",
    "plan_train", "run_train", "split_holdout", "train", "validate",
]

"""Training: configuration and recipes, deterministic data, checkpoints, the loop.

``config`` < ``data`` < ``checkpoints`` < ``optim`` < ``loop``; the public names are re-exported here.
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
from deblur_cli.training.optim import EMA, lr_factor
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

__all__ = [
    "EMA", "RECIPES", "EventKind", "SeededSamples", "StepSampler", "TrainConfig", "TrainEvent", "TrainPlan", "TrainResult",
    "build_config", "checkpoint_paths", "checkpoint_step", "export_weights", "identity_start", "load_checkpoint",
    "load_initial_weights", "load_latest_checkpoint", "lr_factor", "model_config_from", "sample_seed",
    "plan_train", "run_train", "split_holdout", "train", "validate",
]
